/*
 * quant/awq.c — the numerics of AWQ (Lin et al., "AWQ: Activation-aware
 * Weight Quantization for LLM Compression and Acceleration", 2023): the
 * per-input-channel scale search and the per-group clipping search.
 *
 * Both searches measure a candidate by the output error it causes on the
 * calibration inputs X of the layer. With H = c X^T X (the Hessian GPTQ
 * uses, quant/hessian.c) and an effective weight error D,
 *     ||X D^T||_F^2 = (1/c) sum_n D_n H D_n^T,
 * so no activations are kept and a candidate costs N K^2 (scale search)
 * or N K g (clipping) multiply-adds whatever the number of calibration
 * tokens. The authors evaluate the same quantity on a sample of the
 * tokens; here it is exact over all of them.
 *
 * Determinism: every row's error is a double sum in a fixed order (four
 * interleaved partial sums over columns, combined as (a0 + a1) + (a2 + a3),
 * then the rows' terms in column order); rows are independent, threads
 * split them, and the total adds the per-row errors in row order. The
 * library is built with -ffp-contract=off. So the result does not depend on
 * the thread count.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "qc/quant.h"

/* ---- running a row job on threads ---- */

typedef void row_fn(void *ctx, int64_t n0, int64_t n1, void *scratch);

typedef struct rjob {
    row_fn *fn;
    void *ctx;
    int64_t n0, n1;
    void *scratch;
} rjob;

static void *rjob_run(void *p) {
    rjob *j = p;
    if (j->n0 < j->n1) j->fn(j->ctx, j->n0, j->n1, j->scratch);
    return NULL;
}

/* Runs fn over rows [0, N) split across up to nthreads threads, each with
 * scratch_bytes of scratch. 0, or -1 (out of memory: nothing was run). */
static int parallel_rows(int64_t N, int32_t nthreads, row_fn *fn, void *ctx, size_t scratch_bytes) {
    enum { MAXT = 64 };
    int32_t T = nthreads < 1 ? 1 : nthreads > MAXT ? MAXT : nthreads;
    if (T > N) T = N > 0 ? (int32_t)N : 1;
    rjob jobs[MAXT];
    pthread_t tid[MAXT];
    int started[MAXT] = {0}, ok = 1;
    for (int32_t t = 0; t < T; t++) {
        jobs[t] = (rjob){fn, ctx, N * t / T, N * (t + 1) / T, malloc(scratch_bytes ? scratch_bytes : 1)};
        ok = ok && jobs[t].scratch;
    }
    if (ok) {
        for (int32_t t = 1; t < T; t++) started[t] = pthread_create(&tid[t], NULL, rjob_run, &jobs[t]) == 0;
        rjob_run(&jobs[0]);
        for (int32_t t = 1; t < T; t++) {
            if (started[t]) pthread_join(tid[t], NULL);
            else rjob_run(&jobs[t]); /* no thread to be had: same rows, same result, here */
        }
    }
    for (int32_t t = 0; t < T; t++) free(jobs[t].scratch);
    return ok ? 0 : -1;
}

/* d^T A d for the m x m block A (leading dimension ld) of a symmetric matrix. */
static double quad(const double *d, const double *A, int64_t ld, int64_t m) {
    double tot = 0;
    for (int64_t i = 0; i < m; i++) {
        if (d[i] == 0) continue; /* adds exactly 0 */
        const double *h = A + i * ld;
        double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        int64_t j = 0;
        for (; j + 4 <= m; j += 4) {
            a0 += h[j] * d[j];
            a1 += h[j + 1] * d[j + 1];
            a2 += h[j + 2] * d[j + 2];
            a3 += h[j + 3] * d[j + 3];
        }
        for (; j < m; j++) a0 += h[j] * d[j];
        tot += d[i] * ((a0 + a1) + (a2 + a3));
    }
    return tot;
}

static double sum_rows(const double *e, int64_t N) {
    double s = 0;
    for (int64_t n = 0; n < N; n++) s += e[n];
    return s;
}

/* ---- scales ---- */

void qc_awq_scales(const float *xmean, int64_t K, double a, float *s) {
    double mx = 0, mn = INFINITY;
    for (int64_t k = 0; k < K; k++) {
        double v = pow((double)xmean[k], a);
        if (!(v >= 1e-4)) v = 1e-4; /* the authors clamp after the power; also NaN */
        if (v > mx) mx = v;
        if (v < mn) mn = v;
    }
    double norm = sqrt(mx * mn);
    for (int64_t k = 0; k < K; k++) {
        double v = pow((double)xmean[k], a);
        if (!(v >= 1e-4)) v = 1e-4;
        s[k] = (float)(v / norm);
    }
}

/* ---- error of a given quantized weight ---- */

typedef struct err_ctx {
    const float *W, *Q, *s;
    int64_t K;
    const double *H;
    double *rowerr;
} err_ctx;

static void err_rows(void *p, int64_t n0, int64_t n1, void *scratch) {
    const err_ctx *c = p;
    double *d = scratch;
    for (int64_t n = n0; n < n1; n++) {
        const float *w = c->W + n * c->K, *q = c->Q + n * c->K;
        for (int64_t k = 0; k < c->K; k++)
            d[k] = (double)w[k] - (c->s ? (double)q[k] / (double)c->s[k] : (double)q[k]);
        c->rowerr[n] = quad(d, c->H, c->K, c->K);
    }
}

double qc_awq_error(const float *W, const float *Q, const float *s, int64_t N, int64_t K,
                    const double *H, int32_t nthreads) {
    double *rowerr = malloc((size_t)(N > 0 ? N : 1) * sizeof(double));
    if (!rowerr) return NAN;
    err_ctx c = {W, Q, s, K, H, rowerr};
    double e = parallel_rows(N, nthreads, err_rows, &c, (size_t)K * sizeof(double)) ? NAN : sum_rows(rowerr, N);
    free(rowerr);
    return e;
}

/* ---- scale search ---- */

typedef struct scale_ctx {
    const float *W, *s;
    int64_t K, g;
    int32_t bits, sym;
    const double *H;
    double *rowerr;
} scale_ctx;

/* rowerr[n] = error of RTN(W_n diag(s)) diag(1/s). */
static void scale_rows(void *p, int64_t n0, int64_t n1, void *scratch) {
    const scale_ctx *c = p;
    const int64_t K = c->K;
    double *d = scratch;
    float *ws = (float *)(d + K);
    for (int64_t n = n0; n < n1; n++) {
        const float *w = c->W + n * K;
        for (int64_t k = 0; k < K; k++) ws[k] = w[k] * c->s[k];
        for (int64_t k0 = 0; k0 < K; k0 += c->g) {
            int64_t k1 = k0 + c->g < K ? k0 + c->g : K;
            float sc, z;
            qc_quant_fit(ws + k0, k1 - k0, c->bits, c->sym, &sc, &z);
            for (int64_t k = k0; k < k1; k++) {
                float deq = sc * ((float)qc_quant_code(ws[k], sc, z, c->bits) - z);
                d[k] = (double)w[k] - (double)deq / (double)c->s[k];
            }
        }
        c->rowerr[n] = quad(d, c->H, K, K);
    }
}

int32_t qc_awq_search(const float *W, int64_t N, int64_t K, const float *xmean, const double *H,
                      int32_t bits, int64_t group, int32_t sym, int32_t n_grid, int32_t nthreads,
                      float *s, double *errs) {
    const int64_t g = qc_qgroup(K, group);
    if (!g || qc_qdtype(bits) < 0 || N <= 0 || n_grid < 1) return -1;
    float *sk = malloc((size_t)K * sizeof(float));
    double *rowerr = malloc((size_t)N * sizeof(double));
    int32_t best = -1;
    double best_err = 0;
    for (int32_t k = 0; sk && rowerr && k < n_grid; k++) {
        qc_awq_scales(xmean, K, (double)k / n_grid, sk);
        scale_ctx c = {W, sk, K, g, bits, sym ? 1 : 0, H, rowerr};
        if (parallel_rows(N, nthreads, scale_rows, &c, (size_t)K * (sizeof(double) + sizeof(float)))) {
            best = -1;
            break;
        }
        double e = sum_rows(rowerr, N);
        if (errs) errs[k] = e;
        if (best < 0 || e < best_err) {
            best = k;
            best_err = e;
            memcpy(s, sk, (size_t)K * sizeof(float));
        }
    }
    free(sk), free(rowerr);
    return best;
}

/* ---- clipping search ---- */

typedef struct clip_ctx {
    float *W;
    int64_t K, g, G;
    int32_t bits, sym, n_steps;
    double min_ratio;
    const double *H;
    float *ratios;
} clip_ctx;

static void clamp_group(const float *w, int64_t m, float lo, float hi, float *out) {
    for (int64_t k = 0; k < m; k++) out[k] = w[k] < lo ? lo : w[k] > hi ? hi : w[k];
}

static void clip_rows(void *p, int64_t n0, int64_t n1, void *scratch) {
    const clip_ctx *c = p;
    double *d = scratch;
    float *cw = (float *)(d + c->g);
    for (int64_t n = n0; n < n1; n++)
        for (int64_t t = 0; t < c->G; t++) {
            int64_t k0 = t * c->g, m = (k0 + c->g < c->K ? k0 + c->g : c->K) - k0;
            float *w = c->W + n * c->K + k0;
            float lo = 0, hi = 0;
            for (int64_t k = 0; k < m; k++) {
                if (w[k] < lo) lo = w[k];
                if (w[k] > hi) hi = w[k];
            }
            float best_r = 1;
            double best_e = 0;
            for (int32_t i = 0; i <= c->n_steps; i++) {
                float r = (float)(1.0 - i * (1.0 - c->min_ratio) / c->n_steps), sc, z;
                clamp_group(w, m, r * lo, r * hi, cw);
                qc_quant_fit(cw, m, c->bits, c->sym, &sc, &z);
                for (int64_t k = 0; k < m; k++)
                    d[k] = (double)w[k] - (double)(sc * ((float)qc_quant_code(cw[k], sc, z, c->bits) - z));
                double e = quad(d, c->H + k0 * c->K + k0, c->K, m);
                if (i == 0 || e < best_e) {
                    best_e = e;
                    best_r = r;
                }
            }
            if (best_r != 1) {
                clamp_group(w, m, best_r * lo, best_r * hi, cw);
                memcpy(w, cw, (size_t)m * sizeof(float));
            }
            if (c->ratios) c->ratios[n * c->G + t] = best_r;
        }
}

int qc_awq_clip(float *W, int64_t N, int64_t K, const double *H, int32_t bits, int64_t group,
                int32_t sym, int32_t n_steps, double min_ratio, int32_t nthreads, float *ratios) {
    const int64_t g = qc_qgroup(K, group);
    if (!g || qc_qdtype(bits) < 0 || n_steps < 1) return -1;
    clip_ctx c = {W, K, g, (K + g - 1) / g, bits, sym ? 1 : 0, n_steps, min_ratio, H, ratios};
    return parallel_rows(N, nthreads, clip_rows, &c, (size_t)g * (sizeof(double) + sizeof(float)));
}
