/*
 * qrt/dummy.h — weights an executable generates at start instead of
 * embedding them (qcc --dummy-weights; docs/dummy-weights.md).
 *
 * qcc lays the weights out exactly as it would for a checkpoint (same
 * offsets, dtypes and packed layouts), but embeds in place of the weight
 * blob a descriptor: which generator fills which byte range. The generated
 * code adds weight offsets to the pointer qrt_dummy_base (runtime/dummy.c)
 * instead of qm_weights_start; the runtime reserves that many bytes at
 * start and fills them on the GPU (a kernel per range) or on the host.
 *
 * Descriptor (the qm_weights section's bytes; little-endian):
 *   0   char[8] "QCDUMMY1"        8   u32 header bytes (64)
 *   12  u32 n_segments            16  u64 blob bytes (what the code addresses)
 *   24  u64 seed                  32  u32 n_tensors       36..63 zero
 *   64  n_segments x 48 bytes:
 *       0 u32 kind   4 u32 bits (CODES)   8 u64 offset in the blob
 *       16 u64 count (elements; CODES: rows)   24 u64 key
 *       32 u32 p0 (CODES: data words per row)   36 u32 p1 (CODES: words per row)
 *       40 u32 value (UNIFORM: f32 bits of a * 2^-23; CONST: the value)   44 u32 zero
 * Bytes no segment covers are zero.
 *
 * The generator (counter-based: any element can be computed on its own):
 *   mix(z)       splitmix64's finalizer
 *   key(t)       mix(seed + (t + 1) * GOLDEN), t = the tensor's index in the graph
 *   rnd(key, i)  mix(key + i * GOLDEN)
 *   UNIFORM      element i = (float)((int32)(rnd >> 40) - 2^23) * value   (f32; F16: rounded to nearest even)
 *   CODES        32-bit word j of row n (j < p0) = high half of rnd(key, n * p0 + j), then in every code
 *                field a code 0 becomes 2^(bits-1) (the zero point): codes are symmetric about it
 *   CONSTn       count elements of n bits, all `value`
 */
#ifndef QRT_DUMMY_H
#define QRT_DUMMY_H

#include <stdint.h>

#define QRT_DUMMY_MAGIC "QCDUMMY1"
#define QRT_DUMMY_HEADER 64
#define QRT_DUMMY_SEG 48
#define QRT_DUMMY_GOLDEN 0x9E3779B97F4A7C15ull

enum {
    QRT_DUMMY_UNIFORM_F32 = 1,
    QRT_DUMMY_UNIFORM_F16 = 2,
    QRT_DUMMY_CONST32 = 3,
    QRT_DUMMY_CONST16 = 4,
    QRT_DUMMY_CONST8 = 5,
    QRT_DUMMY_CODES = 6
};

static inline uint64_t qrt_dummy_mix(uint64_t z) {
    z ^= z >> 30;
    z *= 0xBF58476D1CE4E5B9ull;
    z ^= z >> 27;
    z *= 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint64_t qrt_dummy_key(uint64_t seed, uint64_t tensor) {
    return qrt_dummy_mix(seed + (tensor + 1) * QRT_DUMMY_GOLDEN);
}

#endif
