/*
 * runtime/dummy_fill.cu — the GPU fill kernels of --dummy-weights
 * executables (runtime/dummy.c, qrt/dummy.h; docs/dummy-weights.md).
 *
 * The executable must not need the CUDA toolkit, so these kernels travel as
 * PTX text (runtime/dummy_fill_ptx.h, which the driver JIT-compiles once at
 * start). Regenerate it after editing this file:
 *     runtime/dummy_fill_ptx.sh      (nvcc -ptx -arch=compute_80)
 * Every value equals runtime/dummy.c's host generator bit for bit (the GPU
 * test compares the two fills byte for byte).
 */
typedef unsigned long long u64;
typedef unsigned int u32;

#define GOLDEN 0x9E3779B97F4A7C15ull

__device__ __forceinline__ u64 mix(u64 z) {
    z ^= z >> 30;
    z *= 0xBF58476D1CE4E5B9ull;
    z ^= z >> 27;
    z *= 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* element i = (float)((int)(rnd >> 40) - 2^23) * a  (f32, or rounded to f16) */
extern "C" __global__ void qd_uniform(void *dst, u64 n, u64 key, float a, u32 half) {
    for (u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x; i < n; i += (u64)gridDim.x * blockDim.x) {
        u64 r = mix(key + i * GOLDEN);
        float v = __fmul_rn((float)((int)(r >> 40) - 8388608), a);
        if (half) {
            unsigned short h;
            asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(v));
            ((unsigned short *)dst)[i] = h;
        } else {
            ((float *)dst)[i] = v;
        }
    }
}

/* count elements of `size` bytes (1, 2, 4), all `value` */
extern "C" __global__ void qd_const(void *dst, u64 n, u32 value, u32 size) {
    for (u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x; i < n; i += (u64)gridDim.x * blockDim.x) {
        if (size == 4) ((u32 *)dst)[i] = value;
        else if (size == 2) ((unsigned short *)dst)[i] = (unsigned short)value;
        else ((unsigned char *)dst)[i] = (unsigned char)value;
    }
}

/* A word of 2-, 4- or 8-bit codes with every code 0 made 2^(bits-1). */
__device__ __forceinline__ u32 fix_word(u32 w, u32 bits) {
    u32 t;
    if (bits == 2) {
        t = (w | w >> 1) & 0x55555555u;
        return w | (~t & 0x55555555u) << 1;
    }
    if (bits == 4) {
        t = w | w >> 1;
        t |= t >> 2;
        t &= 0x11111111u;
        return w | (~t & 0x11111111u) << 3;
    }
    t = w | w >> 1; /* 8 */
    t |= t >> 2;
    t |= t >> 4;
    t &= 0x01010101u;
    return w | (~t & 0x01010101u) << 7;
}

/* bit i of the result = bit 2i of x (i < 16) */
__device__ __forceinline__ u32 even_bits(u32 x) {
    x &= 0x55555555u;
    x = (x | x >> 1) & 0x33333333u;
    x = (x | x >> 2) & 0x0F0F0F0Fu;
    x = (x | x >> 4) & 0x00FF00FFu;
    return (x | x >> 8) & 0x0000FFFFu;
}

/* Packed codes: rows x (dw data words, stride rs words); one thread per
 * 32-value block (bits words). Word j of row n = high half of
 * rnd(key, n * dw + j), then every code 0 becomes 2^(bits-1). 3 bits: words
 * 0, 1 hold the low two bits of values 0..15, 16..31, word 2 the third bit. */
extern "C" __global__ void qd_codes(u32 *dst, u64 rows, u64 key, u32 bits, u32 dw, u32 rs) {
    u64 bpr = dw / bits, items = rows * bpr;
    for (u64 it = blockIdx.x * (u64)blockDim.x + threadIdx.x; it < items; it += (u64)gridDim.x * blockDim.x) {
        u64 n = it / bpr, j0 = (it - n * bpr) * bits, src = n * dw + j0, o = n * rs + j0;
        if (bits == 3) {
            u32 w0 = (u32)(mix(key + src * GOLDEN) >> 32), w1 = (u32)(mix(key + (src + 1) * GOLDEN) >> 32);
            u32 w2 = (u32)(mix(key + (src + 2) * GOLDEN) >> 32);
            u32 z0 = ~(w0 | w0 >> 1), z1 = ~(w1 | w1 >> 1);
            dst[o] = w0;
            dst[o + 1] = w1;
            dst[o + 2] = w2 | even_bits(z0) | even_bits(z1) << 16;
        } else {
            for (u32 k = 0; k < bits; k++)
                dst[o + k] = fix_word((u32)(mix(key + (src + k) * GOLDEN) >> 32), bits);
        }
    }
}
