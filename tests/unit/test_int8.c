/*
 * test_int8.c — W8A8 (QRT_DT_I8): the runtime's kernels (runtime/int8.c)
 * against scalar references and against the compiler's executor numerics
 * (quant/int8.c).
 *
 *   1. qrt_i8_gemm, generic and AVX2 (when the CPU has it), equals a plain
 *      int64 loop exactly on fresh random codes, for rows 1..9 (every tail of
 *      the 4-token tile), N = 37, Kp in {32, 64, 192, 4096}, and on
 *      all-extreme codes (+-127, the largest sums) at Kp = 4096.
 *   2. qrt_i8_quantize_act equals qc_i8_quantize_act bit for bit (codes and
 *      scale), including an all-zero row, and its codes are the rule's.
 *   3. qrt_i8_linear_isa (both kernels) equals qc_i8_linear (what the
 *      executor runs) bit for bit, for K in {64, 172, 200}.
 *   4. qc_i8_quantize: |w - code * scale| <= scale / 2, codes in [-127,
 *      127], padding zero, size = N * roundup(K, 32) + roundup(4N, 16).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "int8.h"
#include "qc/quant.h"

#define QC_TEST_SEED 0x1e8a8c0ffee5ull
#include "check.h"

static int8_t code(void) { return (int8_t)((int)(next64() % 255) - 127); }

static void gemm_ref(const int8_t *x, int64_t rows, const int8_t *w, int64_t N, int64_t Kp, int32_t *acc) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t n = 0; n < N; n++) {
            int64_t s = 0;
            for (int64_t k = 0; k < Kp; k++) s += (int64_t)x[r * Kp + k] * w[n * Kp + k];
            acc[r * N + n] = (int32_t)s;
        }
}

static void check_gemm(const int8_t *x, int64_t rows, const int8_t *w, int64_t N, int64_t Kp, const char *what) {
    int32_t *ref = malloc(sizeof(int32_t) * rows * N), *got = malloc(sizeof(int32_t) * rows * N);
    gemm_ref(x, rows, w, N, Kp, ref);
    for (int isa = 1; isa <= 2; isa++) {
        if (isa == 2 && !qrt_i8_has_avx2()) continue;
        memset(got, 0x5a, sizeof(int32_t) * rows * N);
        qrt_i8_gemm(x, rows, w, N, Kp, got, isa);
        CHECK(!memcmp(ref, got, sizeof(int32_t) * rows * N), "gemm %s isa %d rows %lld Kp %lld differs", what, isa,
              (long long)rows, (long long)Kp);
    }
    free(ref), free(got);
}

int main(void) {
    enum { N = 37 };
    if (!qrt_i8_has_avx2()) printf("test_int8: no AVX2 here, generic kernel only\n");

    /* 1. integer products */
    static const int64_t Kps[] = {32, 64, 192, 4096};
    for (int ki = 0; ki < 4; ki++) {
        int64_t Kp = Kps[ki];
        for (int64_t rows = 1; rows <= 9; rows++) {
            int8_t *x = malloc((size_t)(rows * Kp)), *w = malloc((size_t)(N * Kp));
            for (int64_t i = 0; i < rows * Kp; i++) x[i] = code();
            for (int64_t i = 0; i < N * Kp; i++) w[i] = code();
            check_gemm(x, rows, w, N, Kp, "random");
            free(x), free(w);
        }
    }
    {
        int64_t Kp = 4096, rows = 5;
        int8_t *x = malloc((size_t)(rows * Kp)), *w = malloc((size_t)(N * Kp));
        for (int64_t i = 0; i < rows * Kp; i++) x[i] = (int8_t)(i % 3 == 0 ? -127 : 127);
        for (int64_t i = 0; i < N * Kp; i++) w[i] = (int8_t)((i / Kp) % 2 ? -127 : 127);
        check_gemm(x, rows, w, N, Kp, "extreme");
        for (int64_t i = 0; i < rows * Kp; i++) x[i] = 127;
        for (int64_t i = 0; i < N * Kp; i++) w[i] = 127; /* 4096 * 127^2 = 66,064,384 */
        check_gemm(x, rows, w, N, Kp, "max");
        free(x), free(w);
    }

    /* 2. activation quantization */
    for (int trial = 0; trial < 50; trial++) {
        int64_t K = 1 + (int64_t)(next64() % 300), Kp = (K + 31) / 32 * 32;
        float *x = malloc(sizeof(float) * K);
        double mag = exp(3 * normal());
        for (int64_t k = 0; k < K; k++) x[k] = trial == 7 ? 0.0f : (float)(mag * normal() * (next64() % 20 ? 1 : 30));
        int8_t *q1 = malloc((size_t)Kp), *q2 = malloc((size_t)Kp);
        memset(q1, 0x55, (size_t)Kp), memset(q2, 0x66, (size_t)Kp);
        float s1 = qrt_i8_quantize_act(x, K, Kp, q1), s2 = qc_i8_quantize_act(x, K, Kp, q2);
        CHECK(!memcmp(&s1, &s2, 4) && !memcmp(q1, q2, (size_t)Kp), "act quant: runtime and compiler differ (K %lld)", (long long)K);
        float amax = 0;
        for (int64_t k = 0; k < K; k++) amax = fabsf(x[k]) > amax ? fabsf(x[k]) : amax;
        CHECK(s1 == amax / 127.0f, "act scale");
        for (int64_t k = 0; k < Kp; k++) {
            float want = k < K && amax > 0 ? rintf(x[k] * (127.0f / amax)) : 0.0f;
            want = want > 127 ? 127 : want < -127 ? -127 : want;
            CHECK(q1[k] == (int8_t)want, "act code %lld: %d vs %g", (long long)k, q1[k], (double)want);
        }
        free(x), free(q1), free(q2);
    }

    /* 3. the whole linear: runtime == executor, bit for bit */
    static const int64_t Ks[] = {64, 172, 200};
    for (int ki = 0; ki < 3; ki++) {
        int64_t K = Ks[ki], rows = 7;
        float *W = malloc(sizeof(float) * N * K), *x = malloc(sizeof(float) * rows * K);
        float *y0 = malloc(sizeof(float) * rows * N), *y1 = malloc(sizeof(float) * rows * N);
        for (int64_t i = 0; i < N * K; i++) W[i] = (float)(0.05 * normal());
        for (int64_t i = 0; i < rows * K; i++) x[i] = (float)(normal() * (i % K == 5 ? 40 : 1));
        size_t sz = qc_i8_size(N, K);
        CHECK(sz == (size_t)(N * ((K + 31) / 32 * 32) + (4 * N + 15) / 16 * 16), "size");
        void *p = malloc(sz), *scratch = malloc(qrt_i8_scratch(K, N, rows));
        qc_i8_quantize(W, N, K, p);
        /* 4. weight codes */
        float *Wd = malloc(sizeof(float) * N * K);
        qc_i8_dequant(p, N, K, Wd);
        int64_t Kp = (K + 31) / 32 * 32;
        for (int64_t n = 0; n < N; n++) {
            float sc;
            memcpy(&sc, (uint8_t *)p + N * Kp + 4 * n, 4);
            for (int64_t k = 0; k < Kp; k++) {
                int8_t q = ((int8_t *)p)[n * Kp + k];
                CHECK(q >= -127 && (k < K || q == 0), "code range / padding");
                if (k < K) CHECK(fabsf(W[n * K + k] - Wd[n * K + k]) <= sc / 2 * 1.0001f, "weight error");
            }
        }
        CHECK(qc_i8_linear(x, rows, p, N, K, y0) == 0, "qc_i8_linear");
        for (int isa = 1; isa <= 2; isa++) {
            if (isa == 2 && !qrt_i8_has_avx2()) continue;
            memset(y1, 0, sizeof(float) * rows * N);
            qrt_i8_linear_isa(y1, x, rows, p, K, N, scratch, isa);
            CHECK(!memcmp(y0, y1, sizeof(float) * rows * N), "linear K %lld isa %d: runtime != executor", (long long)K, isa);
        }
        /* and it is close to the float product */
        double worst = 0;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t n = 0; n < N; n++) {
                double d = 0, mag = 0;
                for (int64_t k = 0; k < K; k++) d += (double)W[n * K + k] * x[r * K + k], mag += fabs((double)W[n * K + k] * x[r * K + k]);
                double e = fabs(y0[r * N + n] - d) / mag;
                worst = e > worst ? e : worst;
            }
        CHECK(worst < 0.05, "W8A8 far from the float product: %g", worst);
        free(W), free(x), free(y0), free(y1), free(p), free(scratch), free(Wd);
    }
    if (fails) {
        fprintf(stderr, "test_int8: %d failure(s)\n", fails);
        return 1;
    }
    printf("test_int8: ok (AVX2 %s)\n", qrt_i8_has_avx2() ? "tested" : "absent");
    return 0;
}
