/*
 * runtime/int8.c — W8A8 linear layers (QRT_DT_I8, SmoothQuant): the input is
 * quantized to int8 per token at run time, multiplied with the int8 weight
 * in exact int32 arithmetic, and dequantized with the token's and the
 * output channel's scales:
 *     y[t][n] = ((float)sum_k xq[t][k] wq[n][k] * sa[t]) * sw[n]
 * The compiler's executor (quant/int8.c, qc_i8_linear) computes the same
 * float operations in the same order, so both give the same bits.
 *
 * Two kernels for the integer product, chosen at run time (the binary is
 * built for generic x86-64): plain C (GCC vectorizes it with SSE2) and
 * AVX2, which multiplies 32 byte pairs per instruction with the usual
 * sign trick — vpmaddubsw wants an unsigned operand, so it gets |x| and
 * w * sign(x); the pair sums are at most 2 * 127 * 127 < 2^15 (codes never
 * reach -128), so nothing saturates — then vpmaddwd against ones widens to
 * int32. Both are exact: the same integers, whatever the order.
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "int8.h"

#define ROUNDUP(x, m) (((x) + (m)-1) / (m) * (m))

int qrt_i8_has_avx2(void) {
    return __builtin_cpu_supports("avx2");
}

float qrt_i8_quantize_act(const float *x, int64_t K, int64_t Kp, int8_t *q) {
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

static void gemm_generic(const int8_t *xq, int64_t rows, const int8_t *wq, int64_t N, int64_t Kp,
                         int32_t *acc) {
    for (int64_t r = 0; r < rows; r++) {
        const int8_t *x = xq + r * Kp;
        for (int64_t n = 0; n < N; n++) {
            const int8_t *w = wq + n * Kp;
            int32_t s = 0;
            for (int64_t k = 0; k < Kp; k++) s += (int32_t)x[k] * (int32_t)w[k];
            acc[r * N + n] = s;
        }
    }
}

#define AVX2 __attribute__((target("avx2")))

AVX2 static inline __m256i dot32(__m256i x, __m256i w, __m256i ones) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(w, x)), ones);
}

AVX2 static inline int32_t hsum(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* NR tokens (1..4) against every weight row, two rows at a time: each
 * activation chunk is loaded once per two rows and each weight chunk once
 * per NR tokens (2 NR accumulators in registers). */
#define DEF_TILE(NR)                                                                           \
    AVX2 static void tile_avx2_##NR(const int8_t *xq, const int8_t *wq, int64_t N, int64_t Kp, \
                                    int32_t *acc) {                                           \
        const __m256i ones = _mm256_set1_epi16(1);                                            \
        int64_t n = 0;                                                                        \
        for (; n + 2 <= N; n += 2) {                                                          \
            const int8_t *w0 = wq + n * Kp, *w1 = w0 + Kp;                                    \
            __m256i a0[NR], a1[NR];                                                           \
            for (int r = 0; r < NR; r++) a0[r] = a1[r] = _mm256_setzero_si256();              \
            for (int64_t k = 0; k < Kp; k += 32) {                                            \
                __m256i wv0 = _mm256_loadu_si256((const __m256i *)(const void *)(w0 + k));    \
                __m256i wv1 = _mm256_loadu_si256((const __m256i *)(const void *)(w1 + k));    \
                for (int r = 0; r < NR; r++) {                                                \
                    __m256i xv = _mm256_loadu_si256((const __m256i *)(const void *)(xq + r * Kp + k)); \
                    a0[r] = _mm256_add_epi32(a0[r], dot32(xv, wv0, ones));                    \
                    a1[r] = _mm256_add_epi32(a1[r], dot32(xv, wv1, ones));                    \
                }                                                                             \
            }                                                                                 \
            for (int r = 0; r < NR; r++) {                                                    \
                acc[r * N + n] = hsum(a0[r]);                                                 \
                acc[r * N + n + 1] = hsum(a1[r]);                                             \
            }                                                                                 \
        }                                                                                     \
        for (; n < N; n++) {                                                                  \
            const int8_t *w = wq + n * Kp;                                                    \
            __m256i a[NR];                                                                    \
            for (int r = 0; r < NR; r++) a[r] = _mm256_setzero_si256();                       \
            for (int64_t k = 0; k < Kp; k += 32) {                                            \
                __m256i wv = _mm256_loadu_si256((const __m256i *)(const void *)(w + k));      \
                for (int r = 0; r < NR; r++) {                                                \
                    __m256i xv = _mm256_loadu_si256((const __m256i *)(const void *)(xq + r * Kp + k)); \
                    a[r] = _mm256_add_epi32(a[r], dot32(xv, wv, ones));                       \
                }                                                                             \
            }                                                                                 \
            for (int r = 0; r < NR; r++) acc[r * N + n] = hsum(a[r]);                         \
        }                                                                                     \
    }

DEF_TILE(1)
DEF_TILE(2)
DEF_TILE(3)
DEF_TILE(4)

static void gemm_avx2(const int8_t *xq, int64_t rows, const int8_t *wq, int64_t N, int64_t Kp,
                      int32_t *acc) {
    for (int64_t r0 = 0; r0 < rows; r0 += 4) {
        const int8_t *x = xq + r0 * Kp;
        int32_t *o = acc + r0 * N;
        switch (rows - r0 < 4 ? rows - r0 : 4) {
        case 1: tile_avx2_1(x, wq, N, Kp, o); break;
        case 2: tile_avx2_2(x, wq, N, Kp, o); break;
        case 3: tile_avx2_3(x, wq, N, Kp, o); break;
        default: tile_avx2_4(x, wq, N, Kp, o); break;
        }
    }
}

void qrt_i8_gemm(const int8_t *xq, int64_t rows, const int8_t *wq, int64_t N, int64_t Kp,
                 int32_t *acc, int32_t isa) {
    if (isa == 0) isa = qrt_i8_has_avx2() ? 2 : 1;
    if (isa == 2) gemm_avx2(xq, rows, wq, N, Kp, acc);
    else gemm_generic(xq, rows, wq, N, Kp, acc);
}

/* Scratch per token: Kp code bytes, its scale, N int32 sums. */
static size_t per_row(int64_t K, int64_t N) {
    return (size_t)ROUNDUP(K, 32) + 4 + 4 * (size_t)N;
}

size_t qrt_i8_scratch(int64_t K, int64_t N, int64_t rows) {
    return per_row(K, N) * (size_t)rows;
}

void qrt_i8_linear_isa(float *out, const float *a, int64_t rows, const void *w, int64_t K, int64_t N,
                       void *scratch, int32_t isa) {
    const int64_t Kp = ROUNDUP(K, 32);
    const uint8_t *sw = (const uint8_t *)w + N * Kp;
    int8_t *xq = scratch;
    float *sa = (float *)(void *)(xq + rows * Kp); /* rows * Kp is a multiple of 32 */
    int32_t *acc = (int32_t *)(void *)(sa + rows);
    for (int64_t t = 0; t < rows; t++) sa[t] = qrt_i8_quantize_act(a + t * K, K, Kp, xq + t * Kp);
    qrt_i8_gemm(xq, rows, (const int8_t *)w, N, Kp, acc, isa);
    for (int64_t n = 0; n < N; n++) {
        float s;
        memcpy(&s, sw + 4 * n, 4);
        for (int64_t t = 0; t < rows; t++) out[t * N + n] = ((float)acc[t * N + n] * sa[t]) * s;
    }
}

void qrt_i8_linear(qrt_ctx *c, float *out, const float *a, int32_t rows, const void *w, int32_t K,
                   int32_t N) {
    /* as many tokens per pass as the tile holds (at least one: the tile has
     * 256 rows of the widest input, and N and K are at most that width) */
    int64_t R = (int64_t)(c->wtile_cap * sizeof(float) / per_row(K, N));
    if (R < 1) R = 1;
    for (int64_t t0 = 0; t0 < rows; t0 += R) {
        int64_t nr = rows - t0 < R ? rows - t0 : R;
        qrt_i8_linear_isa(out + t0 * N, a + t0 * K, nr, w, K, N, c->wtile, 0);
    }
}
