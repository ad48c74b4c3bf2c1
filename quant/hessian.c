/*
 * quant/hessian.c — H = 2/n sum_r x_r x_r^T of a linear layer's inputs, the
 * second-order statistic GPTQ needs (one per distinct input of a layer).
 *
 * Determinism, the reason this is not a cblas_dsyrk call: the compiler's
 * output must be bit-identical for any thread count and on any machine, and
 * BLAS neither promises a summation order nor keeps it between its
 * single- and multi-threaded paths or between CPU-specific kernels. Here
 * every element is
 *     S[i][j] = (((S[i][j] + x_0i x_0j) + x_1i x_1j) + ...)   rows in input order
 * in double, where each product of two floats is exact. Vectorization runs
 * across j (independent elements, one mul and one add each, never a fused
 * multiply-add: the library is built with -ffp-contract=off and the AVX2
 * variant enables no FMA), and threads split the rows i of S. So blocking,
 * SIMD width and thread count change the speed, never a bit; the unit test
 * checks the result against a plain double loop with memcmp.
 *
 * Layout: S is [K, K] row-major, only its upper triangle (j >= i) is kept
 * up to date; qc_hessian_finalize mirrors it. The input chunk is packed into
 * panels of 4 columns, P[p][r][c] = X[r0 + r][4p + c] (zero past K), so the
 * 4 x 4 microkernel reads contiguous doubles.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "qc/quant.h"

enum { CHUNK = 128 }; /* input rows per packed chunk */

typedef double v4d __attribute__((vector_size(32)));
typedef double v2d __attribute__((vector_size(16)));

/* S[i0..i0+4)[j0..j0+W) += sum_r pi[r][a] * pj[r][b], r in order; pj is W
 * columns wide in rows of 4 (W = 8: two panels pj0, pj1). Entries outside
 * [0,K) are neither read nor written. VT holds VW doubles. */
#define DEF_KERNEL(name, attr, VT, VW)                                                          \
    attr static void name(double *S, int64_t K, int64_t i0, int64_t j0, const double *pi,       \
                          const double *pj, int64_t R) {                                        \
        double t[4][4];                                                                         \
        for (int a = 0; a < 4; a++)                                                             \
            for (int b = 0; b < 4; b++)                                                         \
                t[a][b] = i0 + a < K && j0 + b < K ? S[(i0 + a) * K + j0 + b] : 0;              \
        VT acc[4][4 / VW];                                                                      \
        memcpy(acc, t, sizeof t);                                                               \
        for (int64_t r = 0; r < R; r++) {                                                       \
            VT x[4 / VW];                                                                       \
            memcpy(x, pj + 4 * r, sizeof x);                                                    \
            for (int a = 0; a < 4; a++) {                                                       \
                double xi = pi[4 * r + a];                                                      \
                VT b;                                                                           \
                for (int v = 0; v < VW; v++) b[v] = xi;                                         \
                for (int v = 0; v < 4 / VW; v++) acc[a][v] += b * x[v];                         \
            }                                                                                   \
        }                                                                                       \
        memcpy(t, acc, sizeof t);                                                               \
        for (int a = 0; a < 4; a++)                                                             \
            for (int b = 0; b < 4; b++)                                                         \
                if (i0 + a < K && j0 + b < K) S[(i0 + a) * K + j0 + b] = t[a][b];               \
    }

/* 4 x 4 tiles: 4 accumulators of 4 doubles (AVX2) or 8 of 2 (SSE2) stay in registers. */
DEF_KERNEL(kernel_generic, , v2d, 2)
DEF_KERNEL(kernel_avx2, __attribute__((target("avx2"))), v4d, 4)

typedef void kernel_fn(double *, int64_t, int64_t, int64_t, const double *, const double *,
                       int64_t);

/* One thread's share: rows [i0, i1) of S (multiples of 4, i1 may pass K). */
typedef struct part {
    double *S;
    int64_t K;
    const float *X;
    int64_t n;
    int64_t i0, i1;
    kernel_fn *kernel;
    int ok;
} part;

static void *run_part(void *arg) {
    part *p = arg;
    const int64_t K = p->K;
    const int64_t np = (K + 3) / 4;  /* panels of 4 columns */
    const int64_t pfirst = p->i0 / 4; /* the first one our rows need */
    double *P = aligned_alloc(64, (size_t)(np - pfirst) * CHUNK * 4 * sizeof(double));
    if (!P) return NULL; /* p->ok stays 0: the caller redoes this part */
    for (int64_t r0 = 0; r0 < p->n; r0 += CHUNK) {
        int64_t R = p->n - r0 < CHUNK ? p->n - r0 : CHUNK;
        /* P[p - pfirst][r][c] = X[r0 + r][4p + c] */
        for (int64_t q = pfirst; q < np; q++) {
            double *d = P + (q - pfirst) * R * 4;
            for (int64_t r = 0; r < R; r++)
                for (int c = 0; c < 4; c++) {
                    int64_t col = 4 * q + c;
                    d[4 * r + c] = col < K ? (double)p->X[(r0 + r) * K + col] : 0.0;
                }
        }
        for (int64_t i = p->i0; i < p->i1 && i < K; i += 4) /* tiles on or above the diagonal */
            for (int64_t j = i; j < K; j += 4)
                p->kernel(p->S, K, i, j, P + (i / 4 - pfirst) * R * 4, P + (j / 4 - pfirst) * R * 4, R);
    }
    free(P);
    p->ok = 1;
    return NULL;
}

int qc_hessian_init(qc_hessian *h, int64_t K) {
    memset(h, 0, sizeof *h);
    if (K <= 0 || (uint64_t)K > ((uint64_t)1 << 28)) return -1;
    h->S = calloc((size_t)K * (size_t)K, sizeof(double));
    if (!h->S) return -1;
    h->K = K;
    return 0;
}

void qc_hessian_free(qc_hessian *h) {
    if (!h) return;
    free(h->S);
    h->S = NULL;
}

void qc_hessian_accumulate_isa(qc_hessian *h, const float *X, int64_t n, int32_t nthreads,
                               int32_t isa) {
    if (n <= 0) return;
    const int64_t K = h->K, units = (K + 3) / 4; /* 4-row units of S */
    if (isa == 0) isa = __builtin_cpu_supports("avx2") ? 2 : 1; /* same bits either way */
    int32_t T = nthreads < 1 ? 1 : nthreads > 64 ? 64 : nthreads;
    if (T > units) T = (int32_t)units;
    /* Split the units so each thread gets about the same share of the
     * triangle: unit u costs ~ K - 4u elements per row. */
    part parts[64];
    double total = 0, acc = 0;
    for (int64_t u = 0; u < units; u++) total += (double)(K - 4 * u);
    int64_t u = 0;
    for (int32_t t = 0; t < T; t++) {
        int64_t ub = u;
        double target = total * (t + 1) / T;
        while (u < units && (t == T - 1 || acc < target)) acc += (double)(K - 4 * u++);
        parts[t] = (part){h->S, K, X, n, 4 * ub, 4 * u, isa == 2 ? kernel_avx2 : kernel_generic, 0};
    }
    pthread_t tid[64];
    int started[64] = {0};
    for (int32_t t = 1; t < T; t++) started[t] = pthread_create(&tid[t], NULL, run_part, &parts[t]) == 0;
    run_part(&parts[0]);
    for (int32_t t = 1; t < T; t++)
        if (started[t]) pthread_join(tid[t], NULL);
    /* A part whose thread or pack buffer could not be had runs here (a part
     * fails only before adding anything), unpacked if need be. */
    for (int32_t t = 0; t < T; t++) {
        if (parts[t].ok) continue;
        if (!started[t]) run_part(&parts[t]);
        if (parts[t].ok) continue;
        for (int64_t r = 0; r < n; r++) /* same order per element as the kernel */
            for (int64_t i = parts[t].i0; i < parts[t].i1 && i < K; i++)
                for (int64_t j = i; j < K; j++)
                    h->S[i * K + j] += (double)X[r * K + i] * (double)X[r * K + j];
    }
    h->n += n;
}

void qc_hessian_accumulate(qc_hessian *h, const float *X, int64_t n, int32_t nthreads) {
    qc_hessian_accumulate_isa(h, X, n, nthreads, 0);
}

void qc_hessian_finalize(const qc_hessian *h, double *H) {
    const int64_t K = h->K;
    const double f = h->n > 0 ? 2.0 / (double)h->n : 0.0;
    for (int64_t i = 0; i < K; i++)
        for (int64_t j = i; j < K; j++) {
            double v = h->S[i * K + j] * f;
            H[i * K + j] = v;
            H[j * K + i] = v;
        }
}
