/*
 * quant/convert.c — scalar conversions between f32 and the 16-bit float
 * formats, round-to-nearest-even (what PyTorch's .half() / .bfloat16() do).
 * Pure functions over arrays: no IR, no I/O.
 */
#include <string.h>

#include "qc/quant.h"

uint16_t qc_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* inf / nan */
        return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* rounds past 65504 */
    if (ax < 0x38800000u) { /* f16 subnormal or zero */
        if (ax < 0x33000000u) return (uint16_t)sign;
        uint32_t e = ax >> 23, m = (ax & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e; /* m * 2^(e-150) on the 2^-24 grid */
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ax + 0xfff + ((ax >> 13) & 1); /* round to nearest even at bit 13 */
    return (uint16_t)(sign | ((r - 0x38000000u) >> 13));
}

uint16_t qc_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
    return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

float qc_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, bits;
    if (e == 0) {
        if (m == 0) {
            bits = sign;
        } else {
            e = 127 - 15 + 1;
            while (!(m & 0x400)) {
                m <<= 1;
                e--;
            }
            bits = sign | (e << 23) | ((m & 0x3ff) << 13);
        }
    } else if (e == 31) {
        bits = sign | 0x7f800000u | (m << 13);
    } else {
        bits = sign | ((e + 127 - 15) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float qc_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Checkpoint views need not be aligned (a safetensors header may have any
 * length), so every load goes through memcpy. */
void qc_convert(const void *src, int32_t sdt, void *dst, int32_t ddt, size_t n) {
    const char *s = src;
    for (size_t i = 0; i < n; i++) {
        float v;
        uint16_t h;
        switch (sdt) {
        case QRT_DT_F32: memcpy(&v, s + 4 * i, 4); break;
        case QRT_DT_F16: memcpy(&h, s + 2 * i, 2); v = qc_f16_to_f32(h); break;
        default: memcpy(&h, s + 2 * i, 2); v = qc_bf16_to_f32(h); break;
        }
        switch (ddt) {
        case QRT_DT_F32: memcpy((char *)dst + 4 * i, &v, 4); break;
        case QRT_DT_F16: ((uint16_t *)dst)[i] = qc_f32_to_f16(v); break;
        default: ((uint16_t *)dst)[i] = qc_f32_to_bf16(v); break;
        }
    }
}
