/*
 * test_awq.c — AWQ's scale and clipping searches (quant/awq.c).
 *
 *   1. qc_awq_scales: a = 0 gives s = 1 exactly; otherwise sqrt(max s *
 *      min s) = 1 and s follows mean|x|^a.
 *   2. qc_awq_error through the Hessian equals ||X D^T||^2 computed from the
 *      activations themselves (relative 1e-9), D = W - Q / s.
 *   3. On a synthetic layer whose inputs have a few high-magnitude channels
 *      (the situation AWQ is for), the searched scales give a lower output
 *      error ||X W^T - (X / s) Q(W diag s)^T||^2, computed directly from X,
 *      than RTN — at 4 and 3 bits, per-channel and g32, sym and asym — and
 *      errs[0] is RTN's error.
 *   4. Clipping never raises the per-(row, group) error and lowers the total
 *      at 3 bits; ratios lie in [0.5, 1].
 *   5. Determinism: 1 and 3 threads give the same bits (scales, errors,
 *      clipped weights).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc/quant.h"

#define QC_TEST_SEED 0xa3e5c0de1234ull
#include "check.h"


enum { N = 48, K = 128, ROWS = 1024 };

/* X [ROWS, K]: per-channel magnitudes, channels 3, 40, 77, 100 twenty times larger. */
static float *make_x(void) {
    float *X = malloc((size_t)ROWS * K * sizeof(float));
    double mag[K];
    for (int k = 0; k < K; k++) mag[k] = exp(0.3 * normal()) * (k == 3 || k == 40 || k == 77 || k == 100 ? 20 : 1);
    for (int r = 0; r < ROWS; r++) {
        double common = normal();
        for (int k = 0; k < K; k++) X[r * K + k] = (float)(mag[k] * (0.8 * normal() + 0.2 * common));
    }
    return X;
}

static float *make_w(void) {
    float *W = malloc((size_t)N * K * sizeof(float));
    for (int i = 0; i < N * K; i++) W[i] = (float)(0.05 * normal());
    return W;
}

/* sum over rows of ||x (W - Q/s)^T||^2, from the activations, in double. */
static double direct_err(const float *X, const float *W, const float *Q, const float *s) {
    double e = 0;
    for (int r = 0; r < ROWS; r++)
        for (int n = 0; n < N; n++) {
            double y = 0;
            for (int k = 0; k < K; k++)
                y += (double)X[r * K + k] * ((double)W[n * K + k] - (double)Q[n * K + k] / (s ? (double)s[k] : 1.0));
            e += y * y;
        }
    return e;
}

/* Q = RTN(W diag s) dequantized (s NULL: RTN(W)). */
static void rtn_deq(const float *W, const float *s, int bits, int64_t group, int sym, float *Q) {
    int64_t g = qc_qgroup(K, group), G = (K + g - 1) / g;
    float *Ws = malloc(sizeof(float) * N * K), *sc = malloc(sizeof(float) * N * G), *z = malloc(sizeof(float) * N * G);
    uint8_t *codes = malloc((size_t)N * K);
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) Ws[n * K + k] = W[n * K + k] * (s ? s[k] : 1.0f);
    qc_rtn_quantize(Ws, N, K, bits, group, sym, codes, sc, z);
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++)
            Q[n * K + k] = sc[n * G + k / g] * ((float)codes[n * K + k] - z[n * G + k / g]);
    free(Ws), free(sc), free(z), free(codes);
}

int main(void) {
    float *X = make_x(), *W = make_w(), *Q = malloc(sizeof(float) * N * K);
    double *H = malloc(sizeof(double) * K * K);
    float xmean[K], s[K], s3[K];
    qc_hessian h;
    CHECK(qc_hessian_init(&h, K) == 0, "hessian init");
    qc_hessian_accumulate(&h, X, ROWS, 2);
    qc_hessian_finalize(&h, H); /* = 2/ROWS X^T X */
    qc_hessian_free(&h);
    const double c = 2.0 / ROWS;
    for (int k = 0; k < K; k++) {
        double m = 0;
        for (int r = 0; r < ROWS; r++) m += fabs((double)X[r * K + k]);
        xmean[k] = (float)(m / ROWS);
    }

    /* 1. scales */
    qc_awq_scales(xmean, K, 0.0, s);
    for (int k = 0; k < K; k++) CHECK(s[k] == 1.0f, "a = 0: s[%d] = %g", k, (double)s[k]);
    qc_awq_scales(xmean, K, 0.5, s);
    float mx = 0, mn = INFINITY;
    for (int k = 0; k < K; k++) mx = s[k] > mx ? s[k] : mx, mn = s[k] < mn ? s[k] : mn;
    CHECK(fabs((double)mx * mn - 1) < 1e-5, "normalization: max %g min %g", (double)mx, (double)mn);
    CHECK(fabs(s[40] / s[41] - sqrt(xmean[40] / xmean[41])) < 1e-4 * s[40] / s[41], "s ~ xmean^a");

    /* 2. the Hessian form of the error */
    rtn_deq(W, s, 3, 32, 0, Q);
    double eh = qc_awq_error(W, Q, s, N, K, H, 2) / c, ed = direct_err(X, W, Q, s);
    CHECK(fabs(eh - ed) <= 1e-9 * ed, "error through H %.12g vs direct %.12g", eh, ed);

    /* 3. search beats RTN, on the activations themselves */
    static const int bits_[] = {4, 3};
    static const int64_t groups[] = {-1, 32};
    for (int bi = 0; bi < 2; bi++)
        for (int gi = 0; gi < 2; gi++)
            for (int sym = 0; sym < 2; sym++) {
                int bits = bits_[bi];
                int64_t group = groups[gi];
                double errs[20], errs3[20];
                int32_t best = qc_awq_search(W, N, K, xmean, H, bits, group, sym, 20, 1, s, errs);
                int32_t best3 = qc_awq_search(W, N, K, xmean, H, bits, group, sym, 20, 3, s3, errs3);
                CHECK(best > 0, "b%d g%lld sym%d: best a = %d / 20 (RTN kept)", bits, (long long)group, sym, best);
                CHECK(best == best3 && !memcmp(s, s3, sizeof s) && !memcmp(errs, errs3, sizeof errs),
                      "b%d g%lld sym%d: 1 and 3 threads differ", bits, (long long)group, sym);
                rtn_deq(W, NULL, bits, group, sym, Q);
                double e_rtn = direct_err(X, W, Q, NULL);
                CHECK(fabs(errs[0] / c - e_rtn) <= 1e-9 * e_rtn, "errs[0] %.10g is not RTN's %.10g", errs[0] / c, e_rtn);
                rtn_deq(W, s, bits, group, sym, Q);
                double e_awq = direct_err(X, W, Q, s);
                printf("b%d g%-3lld %s: RTN %.5g  AWQ %.5g (a = %.2f, %.1f%%)\n", bits, (long long)group,
                       sym ? "sym " : "asym", e_rtn, e_awq, best / 20.0, 100 * e_awq / e_rtn);
                CHECK(e_awq < 0.95 * e_rtn, "b%d g%lld sym%d: AWQ %.6g not below RTN %.6g", bits,
                      (long long)group, sym, e_awq, e_rtn);
            }

    /* 4. clipping */
    for (int gi = 0; gi < 2; gi++) {
        int64_t group = groups[gi], g = qc_qgroup(K, group), G = (K + g - 1) / g;
        float *Wc = malloc(sizeof(float) * N * K), *Wc3 = malloc(sizeof(float) * N * K);
        float *ratios = malloc(sizeof(float) * N * G);
        memcpy(Wc, W, sizeof(float) * N * K);
        memcpy(Wc3, W, sizeof(float) * N * K);
        CHECK(qc_awq_clip(Wc, N, K, H, 3, group, 0, 20, 0.5, 1, ratios) == 0, "clip");
        CHECK(qc_awq_clip(Wc3, N, K, H, 3, group, 0, 20, 0.5, 3, NULL) == 0, "clip 3 threads");
        CHECK(!memcmp(Wc, Wc3, sizeof(float) * N * K), "clip: 1 and 3 threads differ");
        int clipped = 0;
        for (int i = 0; i < N * G; i++) {
            CHECK(ratios[i] >= 0.5f && ratios[i] <= 1.0f, "ratio %g", (double)ratios[i]);
            clipped += ratios[i] < 1;
        }
        rtn_deq(W, NULL, 3, group, 0, Q);
        double e0 = direct_err(X, W, Q, NULL);
        rtn_deq(Wc, NULL, 3, group, 0, Q); /* RTN of the clipped weights, error against the original */
        double e1 = direct_err(X, W, Q, NULL);
        printf("clip g%-3lld: RTN %.5g  clipped %.5g (%d of %lld groups clipped)\n", (long long)group, e0, e1,
               clipped, (long long)(N * G));
        CHECK(clipped > 0 && e1 < e0, "g%lld: clipping did not help (%g vs %g)", (long long)group, e1, e0);
        free(Wc), free(Wc3), free(ratios);
    }
    free(X), free(W), free(Q), free(H);
    if (fails) {
        fprintf(stderr, "test_awq: %d failure(s)\n", fails);
        return 1;
    }
    printf("test_awq: ok\n");
    return 0;
}
