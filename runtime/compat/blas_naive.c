/*
 * runtime/compat/blas_naive.c — plain loops behind runtime/compat/cblas.h
 * (row-major only, which is all libqrt asks for). Runtime-only builds.
 */
#include <stddef.h>

#include "cblas.h"

/* Element (i, j) of op(X) for a row-major X with leading dimension ld. */
static float at(const float *x, int ld, enum CBLAS_TRANSPOSE t, int i, int j) {
    return t == CblasNoTrans ? x[(size_t)i * ld + j] : x[(size_t)j * ld + i];
}

void cblas_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int m, int n, int k,
                 float alpha, const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    (void)order;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            float s = 0.0f;
            for (int p = 0; p < k; p++) s += at(a, lda, ta, i, p) * at(b, ldb, tb, p, j);
            float *cij = &c[(size_t)i * ldc + j];
            *cij = alpha * s + (beta == 0.0f ? 0.0f : beta * *cij);
        }
}

void cblas_sgemv(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, int m, int n, float alpha, const float *a,
                 int lda, const float *x, int incx, float beta, float *y, int incy) {
    (void)order;
    int rows = ta == CblasNoTrans ? m : n, cols = ta == CblasNoTrans ? n : m;
    for (int i = 0; i < rows; i++) {
        float s = 0.0f;
        for (int j = 0; j < cols; j++) s += at(a, lda, ta, i, j) * x[(size_t)j * incx];
        float *yi = &y[(size_t)i * incy];
        *yi = alpha * s + (beta == 0.0f ? 0.0f : beta * *yi);
    }
}

void openblas_set_num_threads(int n) { (void)n; }
