/*
 * runtime/int8.h — W8A8 linear layers (QRT_DT_I8, runtime/int8.c).
 * Layout in docs/formats.md: int8 codes [N, Kp = roundup(K, 32)], then f32
 * per-output-channel scales [N]. Not part of the ABI.
 */
#ifndef QRT_INT8_H
#define QRT_INT8_H

#include <stdint.h>

#include "qrt.h"

/* 1 if the AVX2 kernel can run here. */
int qrt_i8_has_avx2(void);
/* Per-token activation quantization: amax = max|x_k|, inv = amax > 0 ?
 * 127 / amax : 0, q_k = clamp(rint(x_k * inv), -127, 127), q[K..Kp) = 0;
 * returns amax / 127. (Bit-identical to the compiler's qc_i8_quantize_act.) */
float qrt_i8_quantize_act(const float *x, int64_t K, int64_t Kp, int8_t *q);
/* acc[r, n] = sum_{k < Kp} xq[r, k] wq[n, k] in int32 (exact: |codes| <= 127,
 * Kp < 2^17). isa: 0 the best the CPU has, 1 generic x86-64, 2 AVX2 (only if
 * qrt_i8_has_avx2()); all give the same integers. */
void qrt_i8_gemm(const int8_t *xq, int64_t rows, const int8_t *wq, int64_t N, int64_t Kp,
                 int32_t *acc, int32_t isa);
/* out[rows, N] = ((float)acc * sa_t) * scale_n for a QRT_DT_I8 weight (no
 * bias). Uses c->wtile as scratch. */
void qrt_i8_linear(qrt_ctx *c, float *out, const float *a, int32_t rows, const void *w, int32_t K,
                   int32_t N);
/* The same with the scratch and the kernel given: scratch holds
 * qrt_i8_scratch(K, N, rows) bytes. */
size_t qrt_i8_scratch(int64_t K, int64_t N, int64_t rows);
void qrt_i8_linear_isa(float *out, const float *a, int64_t rows, const void *w, int64_t K, int64_t N,
                       void *scratch, int32_t isa);

#endif
