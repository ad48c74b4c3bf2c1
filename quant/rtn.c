/*
 * quant/rtn.c — the quantization grid and round-to-nearest (RTN).
 *
 * One grid per (row, group), fitted on min / max like the GPTQ reference
 * quantizer (its `find_params(weight=True)`), so RTN and GPTQ differ only in
 * how they round. Two deliberate differences: the scale is rounded UP to an
 * f16 value (the runtime stores f16 scales, so codes are computed against
 * exactly the scale that ships, and rounding up keeps every weight of the
 * group within scale/2 of the grid), and an all-zero group gets scale 1
 * (the reference widens it to [-1, 1]; either reconstructs zeros exactly).
 *
 *   maxq = 2^b - 1, the range always contains 0: lo = min(0, min w),
 *   hi = max(0, max w)
 *   asym: scale = f16_ceil((hi - lo) / maxq),  zero = round(-lo / scale)
 *         grid  = scale * ({0..maxq} - zero), covering [lo, hi] to +-scale/2
 *   sym:  a = max(-lo, hi), scale = f16_ceil(2a / maxq), zero = 2^(b-1)
 *         grid  = scale * {-2^(b-1) .. 2^(b-1) - 1}; +a sits scale/2 past
 *         the top level, -a inside the bottom one
 *   code(w) = clamp(round_half_even(w / scale) + zero, 0, maxq)
 *   value   = scale * (code - zero)
 */
#include <math.h>

#include "qc/quant.h"

/* Smallest f16 value >= x as a float, for x > 0 (65504 for larger x). */
static float f16_ceil(double x) {
    if (!(x > 0)) return 0;
    if (x >= 65504.0) return 65504.0f;
    uint16_t h = qc_f32_to_f16((float)x); /* nearest to the nearest float: fix up below */
    while (h < 0x7bff && (double)qc_f16_to_f32(h) < x) h++;
    while (h > 1 && (double)qc_f16_to_f32((uint16_t)(h - 1)) >= x) h--;
    return qc_f16_to_f32(h);
}

float qc_f16_ceil(float x) {
    return f16_ceil(x);
}

void qc_quant_fit(const float *w, int64_t n, int32_t bits, int32_t sym, float *scale,
                  float *zero) {
    const int32_t maxq = (1 << bits) - 1;
    float lo = 0, hi = 0;
    for (int64_t i = 0; i < n; i++) {
        if (w[i] < lo) lo = w[i];
        if (w[i] > hi) hi = w[i];
    }
    double range; /* in double: the f16 rounding above must see the exact quotient */
    if (sym) {
        double a = -lo > hi ? -(double)lo : (double)hi;
        range = 2 * a;
    } else {
        range = (double)hi - (double)lo;
    }
    float s = f16_ceil(range / maxq);
    if (s == 0) s = 1; /* all-zero group */
    *scale = s;
    if (sym) {
        *zero = (float)(1 << (bits - 1));
    } else {
        float z = rintf(-lo / s);
        *zero = z < 0 ? 0 : z > (float)maxq ? (float)maxq : z;
    }
}

uint8_t qc_quant_code(float w, float scale, float zero, int32_t bits) {
    const float maxq = (float)((1 << bits) - 1);
    float q = rintf(w / scale) + zero;
    if (!(q >= 0)) q = 0; /* also NaN */
    if (q > maxq) q = maxq;
    return (uint8_t)q;
}

void qc_rtn_quantize(const float *W, int64_t N, int64_t K, int32_t bits, int64_t group,
                     int32_t sym, uint8_t *codes, float *scales, float *zeros) {
    const int64_t g = qc_qgroup(K, group);
    if (!g || qc_qdtype(bits) < 0) return;
    const int64_t G = (K + g - 1) / g;
    for (int64_t n = 0; n < N; n++)
        for (int64_t t = 0; t < G; t++) {
            int64_t k0 = t * g, k1 = k0 + g < K ? k0 + g : K;
            float s, z;
            qc_quant_fit(W + n * K + k0, k1 - k0, bits, sym, &s, &z);
            scales[n * G + t] = s;
            zeros[n * G + t] = z;
            for (int64_t k = k0; k < k1; k++) codes[n * K + k] = qc_quant_code(W[n * K + k], s, z, bits);
        }
}
