/*
 * runtime/compat/cblas.h — the CBLAS subset libqrt calls, for runtime-only
 * builds on machines without OpenBLAS (a GPU test machine). Implemented
 * naively in runtime/compat/blas_naive.c: correct, not fast. Executables
 * qcc writes always link the real OpenBLAS.
 */
#ifndef QRT_COMPAT_CBLAS_H
#define QRT_COMPAT_CBLAS_H

enum CBLAS_ORDER { CblasRowMajor = 101, CblasColMajor = 102 };
enum CBLAS_TRANSPOSE { CblasNoTrans = 111, CblasTrans = 112 };

void cblas_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int m, int n, int k,
                 float alpha, const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);
void cblas_sgemv(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, int m, int n, float alpha, const float *a,
                 int lda, const float *x, int incx, float beta, float *y, int incy);
void openblas_set_num_threads(int n);

#endif
