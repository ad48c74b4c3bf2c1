/*
 * quant/gptq.c — GPTQ (Frantar, Ashkboos, Hoefler, Alistarh 2022): quantize
 * a linear weight one input column at a time, pushing each column's
 * rounding error onto the columns still to come so that ||W X - Q X|| stays
 * small for the calibration inputs X (through H = 2 X X^T / n).
 *
 * With U the upper Cholesky factor of H^-1 (U^T U = H^-1), the textbook
 * loop over columns i = 0..K-1 (in act-order when asked) is, per row:
 *     q_i = quant(w_i);  e = (w_i - q_i) / U[i][i];  w_j -= e * U[i][j]  (j > i)
 * Rows are independent, so threads take disjoint row tiles. The "lazy batch"
 * of the paper is a cache blocking of that loop: inside a block of B columns
 * the updates go column by column; the updates of columns past the block are
 * applied when the block is done, still one source column at a time in
 * ascending order. Every weight therefore sees exactly the textbook's
 * operations in the textbook's order: the result is bit-identical to the
 * unblocked loop (the unit test checks it), for any thread count.
 *
 * Groups (qc/quant.h): per-channel and act-order groups are static, fitted
 * on the original columns before any update. Otherwise B is a multiple of g
 * (a group never straddles a block) and each group is fitted on its values
 * as its block starts: they carry the updates of earlier blocks, not those
 * of earlier columns of the same block. This is what the GPTQ authors'
 * implementation does (it fits on the outer, lazily updated W), and it
 * measures better than fitting on the fully updated columns: stories260K
 * 3-bit g32 wikitext-2 ppl 150.45 / 148.04 (seeds 0 / 1) against 154.76 /
 * 158.8 (docs/quality.md). The grid then spans the weights before the
 * in-block error feedback has pushed some of them outward, and the few
 * that land outside are clamped instead of widening every step.
 *
 * H^-1 goes through LAPACK in double: dpotrf on the damped H, dpotri, dpotrf
 * on H^-1. OpenBLAS runs those with a blocking that depends on its thread
 * count, so they run with OpenBLAS pinned to one thread (a counted section:
 * concurrent callers share it, the last one out restores the count). The
 * LAPACK results still depend on which CPU kernels OpenBLAS picked for the
 * host; see docs/formats.md "Reproducibility".
 */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <lapacke.h>

#include "qc/quant.h"

enum {
    BLOCK = 128,    /* columns per lazy batch (rounded up to a multiple of g) */
    ROW_TILE = 16,  /* rows a thread carries through the column loop together */
    COL_CHUNK = 512 /* columns per pass of a lazy update (cache blocking) */
};

static int set_err(qc_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int set_err(qc_err *e, const char *fmt, ...) {
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- OpenBLAS pinned to one thread around LAPACK ---- */

static pthread_mutex_t serial_mu = PTHREAD_MUTEX_INITIALIZER;
static int serial_depth, serial_saved;

static void blas_serial_begin(void) {
    pthread_mutex_lock(&serial_mu);
    if (serial_depth++ == 0) {
        serial_saved = openblas_get_num_threads();
        openblas_set_num_threads(1);
    }
    pthread_mutex_unlock(&serial_mu);
}

static void blas_serial_end(void) {
    pthread_mutex_lock(&serial_mu);
    if (--serial_depth == 0 && serial_saved > 1) openblas_set_num_threads(serial_saved);
    pthread_mutex_unlock(&serial_mu);
}

/* Every LAPACK call goes through here: 0, or -1 with what failed and
 * LAPACK's info code in err. */
static int lapack_check(lapack_int info, const char *routine, const char *on, int64_t K,
                        qc_err *err) {
    if (info == 0) return 0;
    if (info < 0)
        return set_err(err, "GPTQ: LAPACK %s on %s (K = %lld): argument %d is invalid (info %d)",
                       routine, on, (long long)K, (int)-info, (int)info);
    if (!strcmp(routine, "dpotri"))
        return set_err(err, "GPTQ: LAPACK dpotri on %s (K = %lld): the Cholesky factor is singular "
                       "at diagonal element %d (info %d)", on, (long long)K, (int)info, (int)info);
    return set_err(err, "GPTQ: LAPACK %s on %s (K = %lld): not positive definite, leading minor %d "
                   "fails (info %d); the calibration inputs may be degenerate: raise --damp",
                   routine, on, (long long)K, (int)info, (int)info);
}

/* ---- act-order, H^-1 ---- */

typedef struct diag_ix {
    double d;
    int32_t i;
} diag_ix;

static int by_diag_desc(const void *a, const void *b) {
    const diag_ix *x = a, *y = b;
    if (x->d != y->d) return x->d > y->d ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

void qc_gptq_act_order(const double *H, int64_t K, int32_t *perm) {
    diag_ix *v = malloc((size_t)K * sizeof *v);
    if (!v) { /* identity is a valid (if unhelpful) order */
        for (int64_t i = 0; i < K; i++) perm[i] = (int32_t)i;
        return;
    }
    for (int64_t i = 0; i < K; i++) v[i] = (diag_ix){H[i * K + i], (int32_t)i};
    qsort(v, (size_t)K, sizeof *v, by_diag_desc); /* a total order: no ties left to qsort */
    for (int64_t i = 0; i < K; i++) perm[i] = v[i].i;
    free(v);
}

int qc_gptq_hinv64(const double *H, int64_t K, double damp, const int32_t *perm, double *A,
                   qc_err *err) {
    if (K <= 0 || K >= ((int64_t)1 << 31)) return set_err(err, "GPTQ: invalid K = %lld", (long long)K);
    if (!(damp >= 0) || !isfinite(damp)) return set_err(err, "GPTQ: invalid damping %g", damp);
    /* A = H permuted: A[i][j] = H[perm[i]][perm[j]] */
    for (int64_t i = 0; i < K; i++) {
        int64_t pi = perm ? perm[i] : i;
        for (int64_t j = 0; j < K; j++) {
            double v = H[pi * K + (perm ? perm[j] : j)];
            if (!isfinite(v))
                return set_err(err, "GPTQ: the Hessian has a non-finite entry at (%lld, %lld)",
                               (long long)pi, (long long)(perm ? perm[j] : j));
            A[i * K + j] = v;
        }
    }
    double mean = 0;
    for (int64_t i = 0; i < K; i++) {
        if (A[i * K + i] == 0) A[i * K + i] = 1; /* dead input */
        mean += A[i * K + i];
    }
    mean /= (double)K;
    for (int64_t i = 0; i < K; i++) A[i * K + i] += damp * mean;

    /* A is symmetric, so row-major upper == column-major lower: every call
     * works on the column-major lower triangle, i.e. our upper one.
     *   dpotrf: A = L L^T         (row-major upper now holds L^T)
     *   dpotri: A = (L L^T)^-1    (upper triangle)
     *   dpotrf: A^-1 = L2 L2^T    (row-major upper holds U = L2^T, U^T U = H^-1) */
    const lapack_int n = (lapack_int)K;
    blas_serial_begin();
    int rc = lapack_check(LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', n, A, n), "dpotrf", "the damped Hessian", K, err);
    if (!rc) rc = lapack_check(LAPACKE_dpotri(LAPACK_COL_MAJOR, 'L', n, A, n), "dpotri", "the damped Hessian", K, err);
    if (!rc) rc = lapack_check(LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', n, A, n), "dpotrf", "the inverse Hessian", K, err);
    blas_serial_end();
    if (!rc)
        for (int64_t i = 1; i < K; i++) memset(A + i * K, 0, (size_t)i * sizeof *A); /* below the diagonal */
    return rc;
}

int qc_gptq_hinv(const double *H, int64_t K, double damp, const int32_t *perm, float *U,
                 qc_err *err) {
    if (K <= 0 || K >= ((int64_t)1 << 31)) return set_err(err, "GPTQ: invalid K = %lld", (long long)K);
    double *A = malloc((size_t)K * (size_t)K * sizeof *A);
    if (!A) return set_err(err, "GPTQ: out of memory for a %lld x %lld Hessian", (long long)K, (long long)K);
    int rc = qc_gptq_hinv64(H, K, damp, perm, A, err);
    if (!rc)
        for (int64_t i = 0; i < K * K; i++) U[i] = (float)A[i];
    free(A);
    return rc;
}

/* ---- the solver ---- */

typedef struct job {
    float *W;
    int64_t N, K, g, G, B;
    const float *U;
    const int32_t *perm;
    int32_t bits, sym, is_static;
    uint8_t *codes;
    float *scales, *zeros;
    int64_t n0, n1; /* rows of this job */
    int ok;
} job;

static void *run_job(void *arg) {
    job *jb = arg;
    const int64_t K = jb->K, g = jb->g, G = jb->G, B = jb->B;
    const float *U = jb->U;
    const int32_t *perm = jb->perm;
    float *w = malloc((size_t)ROW_TILE * (size_t)K * sizeof *w); /* [ROW_TILE][K], permuted columns */
    float *e = malloc((size_t)ROW_TILE * (size_t)B * sizeof *e); /* [ROW_TILE][B] scaled errors */
    if (!w || !e) {
        free(w);
        free(e);
        return NULL;
    }
    for (int64_t n0 = jb->n0; n0 < jb->n1; n0 += ROW_TILE) {
        const int64_t R = jb->n1 - n0 < ROW_TILE ? jb->n1 - n0 : ROW_TILE;
        for (int64_t r = 0; r < R; r++) {
            const float *src = jb->W + (n0 + r) * K;
            for (int64_t i = 0; i < K; i++) w[r * K + i] = src[perm ? perm[i] : i];
            if (jb->is_static) /* groups of the original columns, before any update */
                for (int64_t t = 0; t < G; t++) {
                    int64_t k0 = t * g, k1 = k0 + g < K ? k0 + g : K;
                    qc_quant_fit(src + k0, k1 - k0, jb->bits, jb->sym, &jb->scales[(n0 + r) * G + t],
                                 &jb->zeros[(n0 + r) * G + t]);
                }
        }
        for (int64_t i1 = 0; i1 < K; i1 += B) {
            const int64_t i2 = i1 + B < K ? i1 + B : K;
            if (!jb->is_static) /* this block's groups, on its values as the block starts */
                for (int64_t r = 0; r < R; r++)
                    for (int64_t i = i1; i < i2; i += g)
                        qc_quant_fit(w + r * K + i, i + g < K ? g : K - i, jb->bits, jb->sym,
                                     &jb->scales[(n0 + r) * G + i / g], &jb->zeros[(n0 + r) * G + i / g]);
            for (int64_t i = i1; i < i2; i++) {
                const float *ui = U + i * K; /* row i of U */
                const float d = ui[i];
                const int64_t col = perm ? perm[i] : i; /* original column */
                for (int64_t r = 0; r < R; r++) {
                    float *wr = w + r * K;
                    const int64_t n = n0 + r;
                    const float s = jb->scales[n * G + col / g], z = jb->zeros[n * G + col / g];
                    const uint8_t q = qc_quant_code(wr[i], s, z, jb->bits);
                    const float deq = s * ((float)q - z);
                    const float ei = (wr[i] - deq) / d;
                    jb->codes[n * K + col] = q;
                    wr[i] = deq;
                    e[r * B + (i - i1)] = ei;
                    for (int64_t j = i + 1; j < i2; j++) wr[j] -= ei * ui[j];
                }
            }
            /* Lazy batch: columns [i2, K) receive the block's updates, source
             * column by source column in ascending order. */
            for (int64_t c0 = i2; c0 < K; c0 += COL_CHUNK) {
                const int64_t c1 = c0 + COL_CHUNK < K ? c0 + COL_CHUNK : K;
                for (int64_t b = 0; b < i2 - i1; b++) {
                    const float *ub = U + (i1 + b) * K;
                    for (int64_t r = 0; r < R; r++) {
                        float *wr = w + r * K;
                        const float eb = e[r * B + b];
                        for (int64_t j = c0; j < c1; j++) wr[j] -= eb * ub[j];
                    }
                }
            }
        }
        for (int64_t r = 0; r < R; r++) {
            float *dst = jb->W + (n0 + r) * K;
            for (int64_t i = 0; i < K; i++) dst[perm ? perm[i] : i] = w[r * K + i];
        }
    }
    free(w);
    free(e);
    jb->ok = 1;
    return NULL;
}

int qc_gptq_solve(float *W, int64_t N, int64_t K, const float *U, const int32_t *perm,
                  int32_t bits, int64_t group, int32_t sym, int32_t nthreads, uint8_t *codes,
                  float *scales, float *zeros, qc_err *err) {
    const int64_t g = qc_qgroup(K, group);
    if (qc_qdtype(bits) < 0) return set_err(err, "GPTQ: unsupported bits %d (2, 3, 4 or 8)", (int)bits);
    if (!g) return set_err(err, "GPTQ: group size %lld is not a multiple of 32 (K = %lld)",
                           (long long)group, (long long)K);
    if (N <= 0 || N >= ((int64_t)1 << 31)) return set_err(err, "GPTQ: invalid N = %lld", (long long)N);
    const int64_t G = (K + g - 1) / g;
    const int is_static = perm != NULL || g == K;
    const int64_t B = is_static ? BLOCK : (BLOCK + g - 1) / g * g;

    const int64_t tiles = (N + ROW_TILE - 1) / ROW_TILE;
    int32_t T = nthreads < 1 ? 1 : nthreads > 64 ? 64 : nthreads;
    if (T > tiles) T = (int32_t)tiles;
    job jobs[64];
    for (int32_t t = 0; t < T; t++) {
        int64_t a = tiles * t / T * ROW_TILE, b = tiles * (t + 1) / T * ROW_TILE;
        jobs[t] = (job){W, N, K, g, G, B, U, perm, bits, sym ? 1 : 0, is_static, codes, scales, zeros,
                        a, b < N ? b : N, 0};
    }
    pthread_t tid[64];
    int started[64] = {0};
    for (int32_t t = 1; t < T; t++) started[t] = pthread_create(&tid[t], NULL, run_job, &jobs[t]) == 0;
    run_job(&jobs[0]);
    for (int32_t t = 1; t < T; t++) {
        if (started[t]) pthread_join(tid[t], NULL);
        else run_job(&jobs[t]); /* no thread to be had: same rows, same result, here */
    }
    for (int32_t t = 0; t < T; t++) /* a job fails only before touching W */
        if (!jobs[t].ok) return set_err(err, "GPTQ: out of memory (K = %lld)", (long long)K);
    return 0;
}

int qc_gptq_quantize(float *W, const double *H, int64_t N, int64_t K, int32_t bits,
                     int64_t group, int32_t sym, double damp, int32_t act_order,
                     int32_t nthreads, uint8_t *codes, float *scales, float *zeros, qc_err *err) {
    if (K <= 0 || K >= ((int64_t)1 << 31)) return set_err(err, "GPTQ: invalid K = %lld", (long long)K);
    if (qc_qdtype(bits) < 0) return set_err(err, "GPTQ: unsupported bits %d (2, 3, 4 or 8)", (int)bits);
    if (!qc_qgroup(K, group))
        return set_err(err, "GPTQ: group size %lld is not a multiple of 32 (K = %lld)",
                       (long long)group, (long long)K);
    for (int64_t i = 0; i < K; i++) /* dead inputs: their weights can only add error */
        if (H[i * K + i] == 0)
            for (int64_t n = 0; n < N; n++) W[n * K + i] = 0;
    int32_t *perm = NULL;
    float *U = malloc((size_t)K * (size_t)K * sizeof *U);
    if (act_order) perm = malloc((size_t)K * sizeof *perm);
    if (!U || (act_order && !perm)) {
        free(U);
        free(perm);
        return set_err(err, "GPTQ: out of memory for a %lld x %lld inverse Hessian", (long long)K, (long long)K);
    }
    if (perm) qc_gptq_act_order(H, K, perm);
    int rc = qc_gptq_hinv(H, K, damp, perm, U, err);
    if (!rc) rc = qc_gptq_solve(W, N, K, U, perm, bits, group, sym, nthreads, codes, scales, zeros, err);
    free(U);
    free(perm);
    return rc;
}
