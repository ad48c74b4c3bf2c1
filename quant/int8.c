/*
 * quant/int8.c — W8A8 (SmoothQuant; Xiao et al., "SmoothQuant: Accurate and
 * Efficient Post-Training Quantization for Large Language Models", 2022):
 * the smoothing scales, int8 weights per output channel, and the reference
 * of the run-time product (activations quantized per token, int32 dot,
 * dequantized by the token's and the channel's scales).
 *
 * The layout (QRT_DT_I8) is in qc/quant.h and docs/formats.md. The
 * runtime's kernel (runtime/int8.c) implements qc_i8_quantize_act and
 * qc_i8_linear with the same float operations in the same order, so the
 * executor that calls these is the specification bit for bit
 * (tests/unit/test_int8.c checks it).
 */
#include <math.h>
#include <string.h>
#include <stdlib.h>

#include "qc/quant.h"

#define ROUNDUP(x, m) (((x) + (m)-1) / (m) * (m))

int qc_dtype_packed(int32_t dt) {
    return qc_qdtype_bits(dt) != 0 || dt == QRT_DT_I8;
}

void qc_smooth_scales(const float *xmax, const float *wmax, int64_t K, double alpha, float *s) {
    for (int64_t k = 0; k < K; k++) {
        double x = xmax[k] > 1e-5f ? (double)xmax[k] : 1e-5, w = wmax[k] > 1e-5f ? (double)wmax[k] : 1e-5;
        double v = pow(x, alpha) / pow(w, 1 - alpha);
        s[k] = (float)(v > 1e-5 ? v : 1e-5);
    }
}

size_t qc_i8_size(int64_t N, int64_t K) {
    if (N <= 0 || K <= 0 || N >= ((int64_t)1 << 31) || K >= ((int64_t)1 << 31)) return 0;
    return (size_t)(N * ROUNDUP(K, 32)) + (size_t)ROUNDUP(4 * N, 16);
}

void qc_i8_quantize(const float *W, int64_t N, int64_t K, void *out) {
    const int64_t Kp = ROUNDUP(K, 32);
    uint8_t *p = out;
    memset(p, 0, qc_i8_size(N, K));
    for (int64_t n = 0; n < N; n++) {
        const float *w = W + n * K;
        float amax = 0;
        for (int64_t k = 0; k < K; k++) amax = fabsf(w[k]) > amax ? fabsf(w[k]) : amax;
        float sc = amax > 0 ? amax / 127.0f : 1.0f;
        int8_t *q = (int8_t *)(p + n * Kp);
        for (int64_t k = 0; k < K; k++) {
            float v = rintf(w[k] / sc);
            q[k] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
        }
        memcpy(p + N * Kp + 4 * n, &sc, 4);
    }
}

void qc_i8_dequant(const void *packed, int64_t N, int64_t K, float *W) {
    const int64_t Kp = ROUNDUP(K, 32);
    const uint8_t *p = packed;
    for (int64_t n = 0; n < N; n++) {
        float sc;
        memcpy(&sc, p + N * Kp + 4 * n, 4);
        const int8_t *q = (const int8_t *)(p + n * Kp);
        for (int64_t k = 0; k < K; k++) W[n * K + k] = (float)q[k] * sc;
    }
}

float qc_i8_quantize_act(const float *x, int64_t K, int64_t Kp, int8_t *q) {
    float amax = 0;
    for (int64_t k = 0; k < K; k++) amax = fabsf(x[k]) > amax ? fabsf(x[k]) : amax;
    float inv = amax > 0 ? 127.0f / amax : 0.0f;
    for (int64_t k = 0; k < K; k++) {
        float v = rintf(x[k] * inv);
        q[k] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
    }
    for (int64_t k = K; k < Kp; k++) q[k] = 0;
    return amax / 127.0f;
}

int qc_i8_linear(const float *x, int64_t rows, const void *packed, int64_t N, int64_t K, float *y) {
    const int64_t Kp = ROUNDUP(K, 32);
    const uint8_t *p = packed;
    int8_t *xq = malloc((size_t)Kp);
    if (!xq) return -1;
    for (int64_t t = 0; t < rows; t++) {
        float sa = qc_i8_quantize_act(x + t * K, K, Kp, xq);
        for (int64_t n = 0; n < N; n++) {
            const int8_t *w = (const int8_t *)(p + n * Kp);
            int32_t acc = 0;
            for (int64_t k = 0; k < K; k++) acc += (int32_t)xq[k] * w[k];
            float sc;
            memcpy(&sc, p + N * Kp + 4 * n, 4);
            y[t * N + n] = ((float)acc * sa) * sc;
        }
    }
    free(xq);
    return 0;
}
