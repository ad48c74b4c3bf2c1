/*
 * tests/gpu/test_cuda_kernels.c — every GPU kernel against the CPU on fresh
 * random data (label gpu: needs an NVIDIA GPU; exits 77 without one).
 *
 * A synthetic model (random weights of every dtype in one blob, the device
 * code compiled here by NVRTC for this GPU) is brought up with
 * qrt_cuda_init exactly as an executable does; kernels are called through
 * the public qrt_k_* entry points with a GPU context and with a CPU context
 * on the same inputs. Outputs are poisoned with NaN before each GPU call,
 * so an unwritten element fails. Error: ||gpu - ref|| / ||ref||.
 *
 * References and tolerances:
 *   LINEAR / LM_HEAD   f64 dot of the scalar dequantization (qrt_qdequant_row_ref,
 *                      qrt_row_to_f32) with x: 2e-6 (f32 GEMV and qk_gemm);
 *                      5e-3 for cuBLAS prefill of f16/bf16/packed weights and the
 *                      fused packed GEMM, 2 rows or more (activations rounded to f16/bf16); the
 *                      fused GEMM against qk_dequant + cuBLAS: 1e-5 (the same
 *                      f16 products, summed in another order)
 *   EMBED              CPU kernel, exact
 *   RMSNORM, SILU_MUL, ADD, ROPE   CPU kernel, 2e-6
 *   ATTENTION          CPU kernel, f32 KV cache 2e-5, f16 KV cache 3e-3;
 *                      prefill chunks then decode steps, several splits
 * The same module also runs from PTX (driver JIT) for one GEMV.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc/cuda.h"
#include "int8.h"
#include "qrt_cuda.h"

#include "../qm_stubs.h" /* the model object's symbols: the test builds its qrt_model by hand */

static int fails;
static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}
static float rndf(void) { return (float)(rnd() & 0xffffff) / 16777216.0f * 2.0f - 1.0f; }
static uint16_t f2h(float f) { /* normal range, truncating */
    uint32_t b;
    memcpy(&b, &f, 4);
    uint32_t s = (b >> 16) & 0x8000, e = (b >> 23) & 0xff;
    if (e < 113) return (uint16_t)s;
    return (uint16_t)(s | ((e - 112) << 10) | ((b >> 13) & 0x3ff));
}

/* ---- the model ---- */

enum { NBUF = 8, WIDTH = 16384, MAXB = 320, NCTX = 1024, MODEL_WIDE = 4096 /* cfg dim = ffn dim */ };
static int32_t widths[NBUF];
static uint8_t *blob;
static size_t blob_size, blob_cap;

/* Appends n bytes (64-byte aligned) to the weight blob; returns the offset. */
static size_t blob_add(size_t n) {
    size_t off = (blob_size + 63) / 64 * 64;
    if (off + n > blob_cap) {
        fprintf(stderr, "blob full\n");
        exit(1);
    }
    blob_size = off + n;
    return off;
}

typedef struct lin_case {
    int32_t dt, K, N, group, sym, bias;
    size_t off, boff; /* weight, bias offsets in the blob */
} lin_case;

static lin_case lins[] = {
    {QRT_DT_Q4, 4096, 1000, 128, 0, 0, 0, 0}, {QRT_DT_Q3, 172, 64, 32, 0, 1, 0, 0},
    {QRT_DT_Q2, 256, 96, -1, 1, 0, 0, 0},     {QRT_DT_Q8, 512, 200, 64, 1, 1, 0, 0},
    {QRT_DT_Q4, 172, 48, -1, 0, 0, 0, 0},     {QRT_DT_Q3, 4096, 333, 128, 1, 0, 0, 0},
    {QRT_DT_Q2, 1024, 130, 32, 0, 0, 0, 0},   {QRT_DT_Q8, 172, 70, -1, 0, 0, 0, 0},
    {QRT_DT_F16, 172, 64, 0, 0, 1, 0, 0},     {QRT_DT_F16, 512, 130, 0, 0, 0, 0, 0},
    {QRT_DT_BF16, 256, 96, 0, 0, 0, 0, 0},    {QRT_DT_F32, 64, 512, 0, 0, 0, 0, 0},
    {QRT_DT_F32, 172, 64, 0, 0, 1, 0, 0},     {QRT_DT_F32, 4096, 257, 0, 0, 0, 0, 0},
    /* K > 4096: 2..8 rows stage x in pieces (the GEMV's non-persistent path) */
    {QRT_DT_Q8, 8192, 72, 128, 0, 0, 0, 0},   {QRT_DT_F32, 8192, 40, 0, 0, 1, 0, 0},
    /* W8A8: bit-exact against the CPU's kernel; N = 333 is not a multiple of 4 (cuBLAS may refuse it) */
    {QRT_DT_I8, 172, 64, 0, 0, 1, 0, 0},      {QRT_DT_I8, 4096, 1000, 0, 0, 0, 0, 0},
    {QRT_DT_I8, 4096, 333, 0, 0, 1, 0, 0},    {QRT_DT_I8, 11008, 256, 0, 0, 0, 0, 0},
    /* K = N: test_residual adds into the GEMV's own input */
    {QRT_DT_Q4, 256, 256, 128, 0, 1, 0, 0},   {QRT_DT_F16, 256, 256, 0, 0, 0, 0, 0},
};
#define NLIN ((int)(sizeof lins / sizeof lins[0]))
static const char *const dn[] = {"f32", "f16", "bf16", "q2", "q3", "q4", "q8", "i8"}; /* qrt_dtype names */

/* Runs of linears that read the same x (q / k / v, gate / up): one qk_gemvm_* launch at one token. */
static lin_case mlins[] = {
    {QRT_DT_Q4, 512, 256, 128, 0, 0, 0, 0},  {QRT_DT_Q4, 512, 64, 128, 0, 0, 0, 0},
    {QRT_DT_Q4, 512, 64, 128, 0, 0, 0, 0},   {QRT_DT_Q3, 1024, 300, 32, 1, 1, 0, 0},
    {QRT_DT_Q3, 1024, 300, 32, 1, 1, 0, 0},  {QRT_DT_F16, 256, 96, 0, 0, 0, 0, 0},
    {QRT_DT_F16, 256, 40, 0, 0, 1, 0, 0},    {QRT_DT_F16, 256, 130, 0, 0, 0, 0, 0},
    {QRT_DT_Q8, 4096, 1000, 128, 0, 0, 0, 0}, {QRT_DT_Q8, 4096, 1000, 128, 0, 0, 0, 0},
    {QRT_DT_Q2, 2048, 4000, 64, 0, 0, 0, 0}, {QRT_DT_Q2, 2048, 48, 64, 0, 0, 0, 0},
};
static const int mgroups[] = {3, 2, 3, 2, 2}; /* consecutive runs of mlins */
#define NMLIN ((int)(sizeof mlins / sizeof mlins[0]))
/* Linears that read a SILU_MUL's output: one qk_gemvs_* launch at one token. */
static lin_case slins[] = {
    {QRT_DT_Q4, 1024, 200, 128, 0, 0, 0, 0}, {QRT_DT_F16, 512, 64, 0, 0, 1, 0, 0},
    {QRT_DT_Q3, 4096, 256, 128, 1, 0, 0, 0}, {QRT_DT_Q2, 11008, 96, 64, 0, 0, 0, 0},
};
#define NSLIN ((int)(sizeof slins / sizeof slins[0]))
/* Gate / up pairs (two linears of one shape) whose outputs a SILU_MUL multiplies: one qk_gemvp[n]_* launch. */
static lin_case plins[] = {
    {QRT_DT_Q4, 4096, 1000, 128, 0, 0, 0, 0}, {QRT_DT_Q4, 4096, 1000, 128, 0, 0, 0, 0},
    {QRT_DT_Q3, 1024, 300, 32, 1, 1, 0, 0},   {QRT_DT_Q3, 1024, 300, 32, 1, 1, 0, 0},
    {QRT_DT_F16, 512, 130, 0, 0, 1, 0, 0},    {QRT_DT_F16, 512, 130, 0, 0, 1, 0, 0},
    {QRT_DT_Q2, 2048, 204, 64, 0, 0, 0, 0},   {QRT_DT_Q2, 2048, 204, 64, 0, 0, 0, 0},
    {QRT_DT_Q8, 256, 64, -1, 0, 0, 0, 0},     {QRT_DT_Q8, 256, 64, -1, 0, 0, 0, 0},
};
#define NPLIN ((int)(sizeof plins / sizeof plins[0]))
#define NMG ((int)(sizeof mgroups / sizeof mgroups[0]))

static void fill_weight(lin_case *l) {
    uint8_t *w;
    if (l->dt == QRT_DT_I8) { /* docs/formats.md: int8 [N, Kp] (zero past K), f32 scales [N] */
        size_t Kp = ((size_t)l->K + 31) / 32 * 32;
        l->off = blob_add((size_t)l->N * Kp + ((size_t)4 * l->N + 15) / 16 * 16);
        w = blob + l->off;
        for (size_t n = 0; n < (size_t)l->N; n++)
            for (size_t k = 0; k < Kp; k++) w[n * Kp + k] = (uint8_t)(k < (size_t)l->K ? (int8_t)(rnd() % 255 - 127) : 0);
        for (int32_t n = 0; n < l->N; n++) {
            float sw = 0.001f + 0.01f * (float)(rnd() & 1023) / 1024.0f;
            memcpy(w + (size_t)l->N * Kp + 4 * (size_t)n, &sw, 4);
        }
    } else if (qrt_qdtype_bits(l->dt)) {
        qrt_qlayout q;
        if (qrt_qlayout_init(&q, l->dt, l->N, l->K, l->group, l->sym)) exit(1);
        l->off = blob_add(q.size);
        w = blob + l->off;
        for (size_t i = 0; i < q.scales_off; i++) w[i] = (uint8_t)rnd();
        uint16_t *s = (uint16_t *)(w + q.scales_off);
        for (int64_t i = 0; i < q.N * q.G; i++) s[i] = f2h(0.01f + 0.02f * (float)(rnd() & 1023) / 1024.0f);
        if (!q.sym)
            for (int64_t i = 0; i < q.N * q.G; i++) w[q.zeros_off + i] = (uint8_t)(rnd() % (1u << q.bits));
    } else {
        size_t n = (size_t)l->N * l->K;
        l->off = blob_add(n * (l->dt == QRT_DT_F32 ? 4 : 2));
        w = blob + l->off;
        for (size_t i = 0; i < n; i++) {
            float f = 0.1f * rndf();
            if (l->dt == QRT_DT_F32) memcpy(w + 4 * i, &f, 4);
            else {
                uint32_t b;
                memcpy(&b, &f, 4);
                uint16_t h = l->dt == QRT_DT_F16 ? f2h(f) : (uint16_t)(b >> 16);
                memcpy(w + 2 * i, &h, 2);
            }
        }
    }
    if (l->bias) {
        l->boff = blob_add((size_t)l->N * 4);
        for (int32_t i = 0; i < l->N; i++) ((float *)(blob + l->boff))[i] = rndf();
    }
}

/* f64 reference: y[r, n] = sum_k W[n, k] x[r, k] (+ bias); W8A8: the CPU's own kernel (plain C), which the
 * GPU matches bit for bit. */
static void ref_linear(const lin_case *l, const float *x, int rows, float *y) {
    if (l->dt == QRT_DT_I8) {
        void *scratch = malloc(qrt_i8_scratch(l->K, l->N, rows));
        qrt_i8_linear_isa(y, x, rows, blob + l->off, l->K, l->N, scratch, 1);
        free(scratch);
        if (l->bias)
            for (int r = 0; r < rows; r++)
                for (int32_t n = 0; n < l->N; n++) y[(size_t)r * l->N + n] += ((const float *)(blob + l->boff))[n];
        return;
    }
    float *row = malloc((size_t)l->K * 4);
    qrt_qlayout q;
    int packed = qrt_qdtype_bits(l->dt) != 0;
    if (packed) qrt_qlayout_init(&q, l->dt, l->N, l->K, l->group, l->sym);
    for (int32_t n = 0; n < l->N; n++) {
        if (packed) qrt_qdequant_row_ref(blob + l->off, &q, n, row);
        else qrt_row_to_f32(blob + l->off, l->dt, n, l->K, row);
        for (int r = 0; r < rows; r++) {
            double acc = l->bias ? ((const float *)(blob + l->boff))[n] : 0.0;
            for (int32_t k = 0; k < l->K; k++) acc += (double)row[k] * x[(size_t)r * l->K + k];
            y[(size_t)r * l->N + n] = (float)acc;
        }
    }
    free(row);
}

/* ---- helpers ---- */

static qrt_model mg; /* on the GPU */
static qrt_model mc; /* the same on the CPU */
static qrt_ctx *cg, *cc;

static double rel_err(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        if (!isfinite(a[i])) return INFINITY;
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

static void report(const char *what, double err, double tol) {
    int ok = err <= tol;
    printf("%-58s rel err %.2e  tol %.0e  %s\n", what, err, tol, ok ? "ok" : "FAIL");
    if (!ok) fails++;
}
/* A count of fused ops (qrt_cuda_merged) against the one wanted. */
static void report_count(const char *what, int64_t got, int64_t want) {
    char w[80];
    snprintf(w, sizeof w, "  %s (want %lld)", what, (long long)want);
    printf("%-58s %lld  %s\n", w, (long long)got, got == want ? "ok" : "FAIL");
    if (got != want) fails++;
}

#define DEVP(p) ((qrt_cu_ptr)(uintptr_t)(p))

static void put(int buf, const float *host, size_t n) {
    if (qrt_cuda_upload(&mg, DEVP(cg->bufs[buf]), host, n * 4)) exit(1);
    memcpy(cc->bufs[buf], host, n * 4);
}
static void poison(int buf, size_t n) {
    float *nan = malloc(n * 4);
    for (size_t i = 0; i < n; i++) nan[i] = NAN;
    qrt_cuda_upload(&mg, DEVP(cg->bufs[buf]), nan, n * 4);
    free(nan);
}
static float *get(int buf, size_t n) {
    float *h = malloc(n * 4);
    if (qrt_cuda_download(&mg, h, DEVP(cg->bufs[buf]), n * 4)) {
        fprintf(stderr, "download: %s\n", qrt_cuda_error(&mg) ? qrt_cuda_error(&mg) : "?");
        exit(1);
    }
    return h;
}
static void set_step(int32_t n, int32_t pos, const int32_t *tokens, int all) {
    cg->n_tokens = cc->n_tokens = n;
    cg->pos = cc->pos = pos;
    cg->tokens = cc->tokens = tokens;
    cg->logits_all = cc->logits_all = all;
    if (qrt_cuda_step_upload(cg)) exit(1);
}
static void rand_buf(float *h, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) h[i] = scale * rndf();
}

static void check_gpu_alive(const char *where) {
    const char *e = qrt_cuda_error(&mg);
    if (e) {
        fprintf(stderr, "%s: GPU error: %s\n", where, e);
        exit(1);
    }
}

/* Buffer 0 through linear l again with --fused-gemm-max 0 (the GEMV up to 8 rows, else dequantize + cuBLAS
 * where it is on): the output. */
static float *linear_unfused(const lin_case *l, int rows) {
    int32_t old = qrt_cuda_fused_gemm_max(&mg, 0);
    poison(1, (size_t)rows * l->N);
    qrt_k_linear(cg, cg->bufs[1], cg->bufs[0], NULL, NULL, blob + l->off, l->bias ? blob + l->boff : NULL, l->dt,
                 l->K, l->N, l->group, l->sym, 0.0f);
    qrt_cuda_fused_gemm_max(&mg, old);
    float *y = get(1, (size_t)rows * l->N);
    check_gpu_alive("linear (--fused-gemm-max 0)");
    return y;
}

static void test_linear(int cublas) {
    int use = qrt_cuda_use_cublas(&mg, cublas);
    int32_t qmax = qrt_cuda_fused_gemm_max(&mg, MAXB); /* packed weights: every row count through the fused GEMM */
    /* packed: 4-8, 13, 27 and 37 rows through qk_qgemm_<dt>_t8 / _t16 / _t32 / _t64 (8 bits: _t8 from 5 rows
     * only), 65 and 300 (and 8 bits from 9) through qk_qgemm_<dt>; fewer rows through the GEMV
     * (qrt_qgemm_min_rows) */
    static const int rows_list[] = {1, 2, 4, 5, 8, 13, 27, 37, 65, 300};
    float *x = malloc((size_t)MAXB * WIDTH * 4);
    for (int li = 0; li < NLIN; li++) {
        lin_case *l = &lins[li];
        for (size_t ri = 0; ri < sizeof rows_list / sizeof rows_list[0]; ri++) {
            int rows = rows_list[ri];
            /* the fused GEMM's x scratch holds rows x the model's width (wider: qk_gemm or cuBLAS) */
            int packed = l->dt >= QRT_DT_Q2 && l->dt <= QRT_DT_Q8;
            int fused = packed && rows >= qrt_qgemm_min_rows(qrt_qdtype_bits(l->dt)) && l->K <= MODEL_WIDE;
            if (rows <= 8 && cublas && !fused) continue; /* GEMV: tested once */
            if ((size_t)rows * l->K > (size_t)MAXB * WIDTH || (size_t)rows * l->N > (size_t)MAXB * WIDTH) continue;
            if (rows > MAXB) continue;
            rand_buf(x, (size_t)rows * l->K, 1.0f);
            float *ref = malloc((size_t)rows * l->N * 4);
            ref_linear(l, x, rows, ref);
            set_step(rows, 0, NULL, 0);
            put(0, x, (size_t)rows * l->K);
            poison(1, (size_t)rows * l->N);
            qrt_k_linear(cg, cg->bufs[1], cg->bufs[0], NULL, NULL, blob + l->off, l->bias ? blob + l->boff : NULL,
                         l->dt, l->K, l->N, l->group, l->sym, 0.0f);
            float *y = get(1, (size_t)rows * l->N);
            check_gpu_alive("linear");
            char what[160];
            snprintf(what, sizeof what, "LINEAR %s K=%d N=%d g=%d %s%s rows=%d %s", dn[l->dt], l->K, l->N, l->group,
                     l->sym ? "sym" : "asym", l->bias ? " +bias" : "", rows,
                     l->dt == QRT_DT_I8 ? (rows <= 8 || !use ? "gemv_i8" : "cuBLAS int8") :
                     fused ? "fused qgemm" : rows <= 8 ? (li % 2 ? "gemv generic" : "gemv specialized") :
                     use ? "cuBLAS" : "qk_gemm");
            double tol = l->dt == QRT_DT_I8 ? 0.0 : ((rows > 8 && use) || fused) && l->dt != QRT_DT_F32 ? 5e-3 : 2e-6;
            report(what, rel_err(y, ref, (size_t)rows * l->N), tol);
            if (fused && rows <= 8 && !use) { /* the GEMV these rows take without the fused GEMM */
                float *yg = linear_unfused(l, rows);
                snprintf(what, sizeof what, "LINEAR %s K=%d N=%d g=%d %s%s rows=%d %s", dn[l->dt], l->K, l->N,
                         l->group, l->sym ? "sym" : "asym", l->bias ? " +bias" : "", rows,
                         li % 2 ? "gemv generic" : "gemv specialized");
                report(what, rel_err(yg, ref, (size_t)rows * l->N), 2e-6);
                free(yg);
            }
            if (fused && use && rows > 8) {
                /* the same f16 weights and activations through qk_dequant_* + cuBLAS: only the order of the
                 * f32 sums differs */
                float *yc = linear_unfused(l, rows);
                snprintf(what, sizeof what, "LINEAR %s K=%d N=%d g=%d %s%s rows=%d dequantize + cuBLAS", dn[l->dt],
                         l->K, l->N, l->group, l->sym ? "sym" : "asym", l->bias ? " +bias" : "", rows);
                report(what, rel_err(yc, ref, (size_t)rows * l->N), tol);
                snprintf(what, sizeof what, "LINEAR %s K=%d N=%d g=%d rows=%d fused vs dequantize + cuBLAS",
                         dn[l->dt], l->K, l->N, l->group, rows);
                report(what, rel_err(y, yc, (size_t)rows * l->N), 1e-5);
                free(yc);
            }
            free(y);
            free(ref);
        }
    }
    qrt_cuda_fused_gemm_max(&mg, qmax);
    /* LM_HEAD: last row only, and every row */
    lin_case *l = &lins[0];
    int T = 4;
    rand_buf(x, (size_t)T * l->K, 1.0f);
    float *ref = malloc((size_t)T * l->N * 4);
    ref_linear(l, x, T, ref);
    /* every row: the fused GEMM (x rounded to f16), then the 4-row GEMV (--fused-gemm-max 0) */
    for (int all = 0; all < 3; all++) {
        int32_t old = qrt_cuda_fused_gemm_max(&mg, all == 2 ? 0 : -1);
        set_step(T, 0, NULL, all > 0);
        put(0, x, (size_t)T * l->K);
        poison(1, (size_t)(all ? T : 1) * l->N);
        qrt_k_lm_head(cg, cg->bufs[1], cg->bufs[0], NULL, NULL, blob + l->off, NULL, l->dt, l->K, l->N, l->group,
                      l->sym, 0.0f);
        qrt_cuda_fused_gemm_max(&mg, old);
        float *y = get(1, (size_t)(all ? T : 1) * l->N);
        report(all == 2 ? "LM_HEAD q4 all 4 rows gemv" : all ? "LM_HEAD q4 all 4 rows fused" : "LM_HEAD q4 last of 4 rows",
               rel_err(y, all ? ref : ref + (size_t)(T - 1) * l->N, (size_t)(all ? T : 1) * l->N),
               all == 1 ? 5e-3 : 2e-6);
        free(y);
    }
    free(ref);
    free(x);
}

/* Outputs 1 .. n of the run of n mlins from i0 on input x against the f64 reference. */
static void check_merged(const char *prefix, int i0, int n, const float *x, double tol) {
    for (int j = 0; j < n; j++) {
        const lin_case *l = &mlins[i0 + j];
        float *ref = malloc((size_t)l->N * 4), *y = get(1 + j, (size_t)l->N);
        ref_linear(l, x, 1, ref);
        char what[200];
        snprintf(what, sizeof what, "%.40s %d: %s K=%d N=%d g=%d %s%s", prefix, n, dn[l->dt], l->K, l->N, l->group,
                 l->sym ? "sym" : "asym", l->bias ? " +bias" : "");
        report(what, rel_err(y, ref, (size_t)l->N), tol);
        free(y);
        free(ref);
    }
}

/* Each run of mlins called as the host code calls it (one token, consecutive, same x), outputs in buffers
 * 1, 2, 3: one merged launch per run, every output against the f64 reference. */
static void test_merged(void) {
    for (int gi = 0, i0 = 0; gi < NMG; i0 += mgroups[gi++]) {
        const lin_case *l0 = &mlins[i0];
        float *x = malloc((size_t)l0->K * 4);
        rand_buf(x, (size_t)l0->K, 1.0f);
        set_step(1, 0, NULL, 0);
        put(0, x, (size_t)l0->K);
        for (int j = 0; j < mgroups[gi]; j++) poison(1 + j, (size_t)mlins[i0 + j].N);
        int64_t before = qrt_cuda_merged(&mg);
        for (int j = 0; j < mgroups[gi]; j++) {
            const lin_case *l = &mlins[i0 + j];
            qrt_k_linear(cg, cg->bufs[1 + j], cg->bufs[0], NULL, NULL, blob + l->off, l->bias ? blob + l->boff : NULL,
                         l->dt, l->K, l->N, l->group, l->sym, 0.0f);
        }
        check_merged("MERGED", i0, mgroups[gi], x, 2e-6);
        report_count("merged launches", qrt_cuda_merged(&mg) - before, 1);
        free(x);
    }
}

/* max |x| / rms(x) over that of uniform x (sqrt 3): what a GEMV check's tolerance scales with when x is not
 * uniform (test_silu_linear) */
static double peak_of(const float *x, int32_t n) {
    double mx = 0, ss = 0;
    for (int32_t k = 0; k < n; k++) {
        double v = fabs((double)x[k]);
        mx = v > mx ? v : mx;
        ss += v * v;
    }
    return mx / sqrt(ss / n) / sqrt(3.0);
}

/* SILU_MUL (buffers 2, 3 -> 4) then a linear of buffer 4 (-> 1) at one token: one qk_gemvs_* launch; the
 * product and the linear's output against the CPU. */
static void test_silu_linear(void) {
    for (int i = 0; i < NSLIN; i++) {
        const lin_case *l = &slins[i];
        float *a = malloc((size_t)l->K * 4), *b = malloc((size_t)l->K * 4);
        rand_buf(a, (size_t)l->K, 4.0f);
        rand_buf(b, (size_t)l->K, 1.0f);
        set_step(1, 0, NULL, 0);
        put(2, a, (size_t)l->K);
        put(3, b, (size_t)l->K);
        poison(4, (size_t)l->K);
        poison(1, (size_t)l->N);
        int64_t before = qrt_cuda_merged(&mg);
        qrt_ctx *cs[2] = {cg, cc};
        for (int d = 0; d < 2; d++) {
            qrt_k_silu_mul(cs[d], cs[d]->bufs[4], cs[d]->bufs[2], cs[d]->bufs[3], NULL, NULL, NULL, 0, l->K, 0, 0, 0,
                           0.0f);
            qrt_k_linear(cs[d], cs[d]->bufs[1], cs[d]->bufs[4], NULL, NULL, blob + l->off,
                         l->bias ? blob + l->boff : NULL, l->dt, l->K, l->N, l->group, l->sym, 0.0f);
        }
        /* the GEMV against the f64 reference on the GPU's own product (expf differs from the CPU's by an ulp
         * here and there, which the sum can amplify); the product against the CPU's */
        float *ref = malloc((size_t)l->N * 4), *y = get(4, (size_t)l->K);
        ref_linear(l, y, 1, ref);
        char what[160];
        snprintf(what, sizeof what, "SILU_MUL+LINEAR %s K=%d N=%d: product", dn[l->dt], l->K, l->N);
        report(what, rel_err(y, cc->bufs[4], (size_t)l->K), 2e-6);
        free(y);
        y = get(1, (size_t)l->N);
        /* The GEMV keeps x to 22 bits of max |x| (hi + lo f16 parts), so its error grows with max |x| / rms(x):
         * the 2e-6 of the other GEMV checks is for uniform x (max / rms = sqrt(3)); silu(a) * b is peakier. */
        double peak = peak_of(cc->bufs[4], l->K), tol = 2e-6 * (peak > 1 ? peak : 1);
        snprintf(what, sizeof what, "SILU_MUL+LINEAR %s K=%d N=%d g=%d %s%s: linear (max/rms %.1f)", dn[l->dt], l->K,
                 l->N, l->group, l->sym ? "sym" : "asym", l->bias ? " +bias" : "", peak * sqrt(3.0));
        report(what, rel_err(y, ref, (size_t)l->N), tol);
        free(y);
        report_count("fused launches", qrt_cuda_merged(&mg) - before, 1);
        /* in place (the product over a): not fused (block 0 would overwrite what the others read), still right */
        put(2, a, (size_t)l->K);
        poison(1, (size_t)l->N);
        before = qrt_cuda_merged(&mg);
        for (int d = 0; d < 2; d++) {
            qrt_k_silu_mul(cs[d], cs[d]->bufs[2], cs[d]->bufs[2], cs[d]->bufs[3], NULL, NULL, NULL, 0, l->K, 0, 0, 0,
                           0.0f);
            qrt_k_linear(cs[d], cs[d]->bufs[1], cs[d]->bufs[2], NULL, NULL, blob + l->off,
                         l->bias ? blob + l->boff : NULL, l->dt, l->K, l->N, l->group, l->sym, 0.0f);
        }
        y = get(2, (size_t)l->K);
        ref_linear(l, y, 1, ref);
        snprintf(what, sizeof what, "SILU_MUL in place + LINEAR %s K=%d N=%d: product", dn[l->dt], l->K, l->N);
        report(what, rel_err(y, cc->bufs[2], (size_t)l->K), 2e-6);
        free(y);
        y = get(1, (size_t)l->N);
        snprintf(what, sizeof what, "SILU_MUL in place + LINEAR %s K=%d N=%d: linear", dn[l->dt], l->K, l->N);
        report(what, rel_err(y, ref, (size_t)l->N), tol);
        free(y);
        report_count("fused launches", qrt_cuda_merged(&mg) - before, 0);
        free(ref);
        free(a);
        free(b);
    }
}

/* Each pair of plins on buffer 0 (-> 1, 2) at one token, then SILU_MUL (1, 2 -> 4): one qk_gemvp_* launch
 * that writes all three; and the same after RMSNORM (0 -> 5; norm weights f32, f16, bf16 in turn): one
 * qk_gemvpn_* launch that writes buffer 5 too. Gate and up against the f64 reference, the product against
 * silu(gate) * up of the GPU's own outputs, the norm against the CPU's. */
static void test_pair(const size_t norm_off[3]) {
    for (int p = 0; p < NPLIN / 2; p++)
        for (int nrm = 0; nrm < 2; nrm++) {
            const lin_case *lg = &plins[2 * p], *lu = &plins[2 * p + 1];
            const int K = lg->K, N = lg->N, d = p % 3;
            float *h = malloc((size_t)K * 4);
            rand_buf(h, (size_t)K, nrm ? 3.0f : 1.0f);
            set_step(1, 0, NULL, 0);
            put(0, h, (size_t)K);
            poison(1, (size_t)N), poison(2, (size_t)N), poison(4, (size_t)N), poison(5, (size_t)K);
            int64_t before = qrt_cuda_merged(&mg);
            if (nrm) {
                qrt_k_rmsnorm(cg, cg->bufs[5], cg->bufs[0], NULL, NULL, blob + norm_off[d], NULL, d, K, 0, 0, 0, 1e-5f);
                qrt_k_rmsnorm(cc, cc->bufs[5], cc->bufs[0], NULL, NULL, blob + norm_off[d], NULL, d, K, 0, 0, 0, 1e-5f);
            }
            float *x = nrm ? cg->bufs[5] : cg->bufs[0];
            qrt_k_linear(cg, cg->bufs[1], x, NULL, NULL, blob + lg->off, lg->bias ? blob + lg->boff : NULL, lg->dt, K, N,
                         lg->group, lg->sym, 0.0f);
            qrt_k_linear(cg, cg->bufs[2], x, NULL, NULL, blob + lu->off, lu->bias ? blob + lu->boff : NULL, lu->dt, K, N,
                         lu->group, lu->sym, 0.0f);
            qrt_k_silu_mul(cg, cg->bufs[4], cg->bufs[1], cg->bufs[2], NULL, NULL, NULL, 0, N, 0, 0, 0, 0.0f);
            float *gy = get(1, (size_t)N), *uy = get(2, (size_t)N), *py = get(4, (size_t)N);
            int64_t fused = qrt_cuda_merged(&mg) - before; /* (after the downloads: they launch what was held) */
            const float *xr = nrm ? cc->bufs[5] : h;
            double tol = 2e-6;
            char what[200];
            if (nrm) {
                float *xn = get(5, (size_t)K);
                snprintf(what, sizeof what, "RMSNORM(%s)+PAIR %s K=%d N=%d: norm", dn[d], dn[lg->dt], K, N);
                report(what, rel_err(xn, cc->bufs[5], (size_t)K), 1e-6);
                free(xn);
                const double peak = peak_of(xr, K); /* the normalized x is not uniform */
                tol = 2e-6 * (peak > 1 ? peak : 1);
            }
            float *ref = malloc((size_t)N * 4), *pr = malloc((size_t)N * 4);
            ref_linear(lg, xr, 1, ref);
            snprintf(what, sizeof what, "%sPAIR %s K=%d N=%d g=%d %s%s: gate", nrm ? "RMSNORM+" : "", dn[lg->dt], K, N,
                     lg->group, lg->sym ? "sym" : "asym", lg->bias ? " +bias" : "");
            report(what, rel_err(gy, ref, (size_t)N), tol);
            ref_linear(lu, xr, 1, ref);
            snprintf(what, sizeof what, "%sPAIR %s K=%d N=%d: up", nrm ? "RMSNORM+" : "", dn[lg->dt], K, N);
            report(what, rel_err(uy, ref, (size_t)N), tol);
            for (int32_t n = 0; n < N; n++) pr[n] = gy[n] / (1.0f + expf(-gy[n])) * uy[n];
            snprintf(what, sizeof what, "%sPAIR %s K=%d N=%d: silu(gate) * up", nrm ? "RMSNORM+" : "", dn[lg->dt], K, N);
            report(what, rel_err(py, pr, (size_t)N), 2e-6);
            report_count("fused ops (pair, norm)", fused, 2 + nrm);
            free(ref), free(pr), free(gy), free(uy), free(py), free(h);
        }
}

/* RMSNORM (buffer 0 -> 5) then each run of mlins reading buffer 5 (-> 1, 2, 3) at one token: one qk_gemvmn_*
 * launch that also does the norm (weights f32, f16, bf16 in turn) and writes buffer 5; the norm against the
 * CPU's, each output against the f64 reference on the CPU's normalized x. */
static void test_norm_merged(const size_t norm_off[3]) {
    for (int gi = 0, i0 = 0; gi < NMG; i0 += mgroups[gi++]) {
        const lin_case *l0 = &mlins[i0];
        const int d = gi % 3, K = l0->K;
        float *h = malloc((size_t)K * 4);
        rand_buf(h, (size_t)K, 3.0f);
        set_step(1, 0, NULL, 0);
        put(0, h, (size_t)K);
        poison(5, (size_t)K);
        for (int j = 0; j < mgroups[gi]; j++) poison(1 + j, (size_t)mlins[i0 + j].N);
        int64_t before = qrt_cuda_merged(&mg);
        qrt_ctx *cs[2] = {cg, cc};
        for (int c = 0; c < 2; c++) {
            qrt_k_rmsnorm(cs[c], cs[c]->bufs[5], cs[c]->bufs[0], NULL, NULL, blob + norm_off[d], NULL, d, K, 0, 0, 0,
                          1e-5f);
            for (int j = 0; j < mgroups[gi] && c == 0; j++) {
                const lin_case *l = &mlins[i0 + j];
                qrt_k_linear(cg, cg->bufs[1 + j], cg->bufs[5], NULL, NULL, blob + l->off,
                             l->bias ? blob + l->boff : NULL, l->dt, l->K, l->N, l->group, l->sym, 0.0f);
            }
        }
        char what[160];
        float *xn = get(5, (size_t)K);
        snprintf(what, sizeof what, "RMSNORM(%s)+MERGED %d: %s K=%d: norm", dn[d], mgroups[gi], dn[l0->dt], K);
        report(what, rel_err(xn, cc->bufs[5], (size_t)K), 1e-6);
        double peak = peak_of(cc->bufs[5], K), tol = 2e-6 * (peak > 1 ? peak : 1); /* x is not uniform */
        snprintf(what, sizeof what, "RMSNORM(%s)+MERGED", dn[d]);
        check_merged(what, i0, mgroups[gi], cc->bufs[5], tol);
        report_count("fused ops (norm, merge)", qrt_cuda_merged(&mg) - before, 2);
        free(xn);
        free(h);
    }
}

/* LINEAR (buffer 0 -> 1) then the residual add 6 += 1 at one token: the add in the GEMV's epilogue where the
 * GEMV is specialized (even lins) and held (packed or f16 weights), else its own kernel; buffer 6 must equal
 * r + y exactly. Also the SILU_MUL + LINEAR + add of each slins (the add in qk_gemvs_*'s epilogue), and an add
 * into the GEMV's own input (not fused: other blocks still read it). */
static void check_residual(const char *what, const float *r, int32_t N, int64_t before, int64_t want) {
    float *y = get(1, (size_t)N), *rr = get(6, (size_t)N), *sum = malloc((size_t)N * 4);
    int64_t fused = qrt_cuda_merged(&mg) - before; /* (after the downloads: they launch what was held) */
    for (int32_t n = 0; n < N; n++) sum[n] = r[n] + y[n];
    char w2[200];
    snprintf(w2, sizeof w2, "%s: res += y", what);
    report(w2, rel_err(rr, sum, (size_t)N), 0.0);
    report_count("fused ops", fused, want);
    free(y);
    free(rr);
    free(sum);
}
static void test_residual(void) {
    float *x = malloc((size_t)WIDTH * 4), *r = malloc((size_t)WIDTH * 4);
    for (int li = 0; li < NLIN; li++) {
        const lin_case *l = &lins[li];
        if (l->dt == QRT_DT_I8 || l->K > WIDTH || l->N > WIDTH) continue;
        rand_buf(x, (size_t)l->K, 1.0f);
        rand_buf(r, (size_t)l->N, 2.0f);
        set_step(1, 0, NULL, 0);
        put(0, x, (size_t)l->K);
        put(6, r, (size_t)l->N);
        poison(1, (size_t)l->N);
        int64_t before = qrt_cuda_merged(&mg);
        qrt_k_linear(cg, cg->bufs[1], cg->bufs[0], NULL, NULL, blob + l->off, l->bias ? blob + l->boff : NULL, l->dt,
                     l->K, l->N, l->group, l->sym, 0.0f);
        qrt_k_add(cg, cg->bufs[6], cg->bufs[6], cg->bufs[1], NULL, NULL, NULL, 0, l->N, 0, 0, 0, 0.0f);
        char what[160];
        snprintf(what, sizeof what, "LINEAR+ADD %s K=%d N=%d %s", dn[l->dt], l->K, l->N,
                 li % 2 ? "generic" : "specialized");
        /* held for the add: one-token GEMVs of packed or f16 weights (f32 / bf16 ones are launched at once) */
        int held = qrt_qdtype_bits(l->dt) || l->dt == QRT_DT_F16;
        check_residual(what, r, l->N, before, li % 2 == 0 && held ? 1 : 0);
    }
    for (int i = 0; i < NSLIN; i++) {
        const lin_case *l = &slins[i];
        float *a = malloc((size_t)l->K * 4), *b = malloc((size_t)l->K * 4);
        rand_buf(a, (size_t)l->K, 4.0f);
        rand_buf(b, (size_t)l->K, 1.0f);
        rand_buf(r, (size_t)l->N, 2.0f);
        set_step(1, 0, NULL, 0);
        put(2, a, (size_t)l->K);
        put(3, b, (size_t)l->K);
        put(6, r, (size_t)l->N);
        int64_t before = qrt_cuda_merged(&mg);
        qrt_k_silu_mul(cg, cg->bufs[4], cg->bufs[2], cg->bufs[3], NULL, NULL, NULL, 0, l->K, 0, 0, 0, 0.0f);
        qrt_k_linear(cg, cg->bufs[1], cg->bufs[4], NULL, NULL, blob + l->off, l->bias ? blob + l->boff : NULL, l->dt,
                     l->K, l->N, l->group, l->sym, 0.0f);
        qrt_k_add(cg, cg->bufs[6], cg->bufs[1], cg->bufs[6], NULL, NULL, NULL, 0, l->N, 0, 0, 0, 0.0f);
        char what[160];
        snprintf(what, sizeof what, "SILU_MUL+LINEAR+ADD %s K=%d N=%d", dn[l->dt], l->K, l->N);
        check_residual(what, r, l->N, before, 2);
        free(a);
        free(b);
    }
    /* into the GEMV's input (K = N): x' = x + W x, not fused */
    const lin_case *l = NULL;
    for (int li = 0; li < NLIN && !l; li += 2) /* a specialized one */
        if (lins[li].K == lins[li].N) l = &lins[li];
    if (l) {
        rand_buf(x, (size_t)l->K, 1.0f);
        set_step(1, 0, NULL, 0);
        put(6, x, (size_t)l->K);
        int64_t before = qrt_cuda_merged(&mg);
        qrt_k_linear(cg, cg->bufs[1], cg->bufs[6], NULL, NULL, blob + l->off, l->bias ? blob + l->boff : NULL, l->dt,
                     l->K, l->N, l->group, l->sym, 0.0f);
        qrt_k_add(cg, cg->bufs[6], cg->bufs[6], cg->bufs[1], NULL, NULL, NULL, 0, l->N, 0, 0, 0, 0.0f);
        char what[160];
        snprintf(what, sizeof what, "LINEAR+ADD into its input %s K=N=%d", dn[l->dt], l->K);
        check_residual(what, x, l->N, before, 0);
    }
    free(x);
    free(r);
}

static void test_small_ops(size_t emb_off[3], size_t norm_off[3], int32_t dim) {
    int32_t toks[8] = {3, 0, 511, 17, 17, 250, 1, 99};
    int T = 8;
    size_t n = (size_t)T * dim;
    float *a = malloc(n * 4), *b = malloc(n * 4);
    for (int d = 0; d < 3; d++) {
        set_step(T, 0, toks, 0);
        poison(1, n);
        qrt_k_embed(cg, cg->bufs[1], NULL, NULL, NULL, blob + emb_off[d], NULL, d, dim, 0, 0, 0, 0.0f);
        qrt_k_embed(cc, cc->bufs[1], NULL, NULL, NULL, blob + emb_off[d], NULL, d, dim, 0, 0, 0, 0.0f);
        float *y = get(1, n);
        char what[64];
        snprintf(what, sizeof what, "EMBED %s dim=%d T=%d", dn[d], dim, T);
        report(what, rel_err(y, cc->bufs[1], n), 0.0);
        free(y);
        /* 173: not a multiple of 4, rmsnorm_core's two-pass path */
        for (int32_t dd = dim; dd >= 172; dd = dd == dim ? 172 : dd == 172 ? 173 : 0) {
            size_t nn = (size_t)T * dd;
            rand_buf(a, nn, 3.0f);
            put(0, a, nn);
            poison(1, nn);
            qrt_k_rmsnorm(cg, cg->bufs[1], cg->bufs[0], NULL, NULL, blob + norm_off[d], NULL, d, dd, 0, 0, 0, 1e-5f);
            qrt_k_rmsnorm(cc, cc->bufs[1], cc->bufs[0], NULL, NULL, blob + norm_off[d], NULL, d, dd, 0, 0, 0, 1e-5f);
            y = get(1, nn);
            snprintf(what, sizeof what, "RMSNORM %s dim=%d T=%d", dn[d], dd, T);
            report(what, rel_err(y, cc->bufs[1], nn), 2e-6);
            free(y);
        }
    }
    set_step(T, 0, toks, 0);
    rand_buf(a, n, 4.0f);
    rand_buf(b, n, 2.0f);
    put(0, a, n);
    put(2, b, n);
    poison(1, n);
    qrt_k_silu_mul(cg, cg->bufs[1], cg->bufs[0], cg->bufs[2], NULL, NULL, NULL, 0, dim, 0, 0, 0, 0.0f);
    qrt_k_silu_mul(cc, cc->bufs[1], cc->bufs[0], cc->bufs[2], NULL, NULL, NULL, 0, dim, 0, 0, 0, 0.0f);
    float *y = get(1, n);
    report("SILU_MUL T=8", rel_err(y, cc->bufs[1], n), 2e-6);
    free(y);
    poison(1, n);
    qrt_k_add(cg, cg->bufs[1], cg->bufs[0], cg->bufs[2], NULL, NULL, NULL, 0, dim, 0, 0, 0, 0.0f);
    qrt_k_add(cc, cc->bufs[1], cc->bufs[0], cc->bufs[2], NULL, NULL, NULL, 0, dim, 0, 0, 0, 0.0f);
    y = get(1, n);
    report("ADD T=8", rel_err(y, cc->bufs[1], n), 0.0);
    free(y);
    /* a residual add whose output the next RMSNorm reads: one fused kernel on the GPU (runtime/cuda.c) */
    for (int32_t dd = dim; dd >= 172; dd = dd == dim ? 172 : dd == 172 ? 173 : 0) {
        size_t nn = (size_t)T * dd;
        rand_buf(a, nn, 3.0f);
        rand_buf(b, nn, 1.0f);
        put(0, a, nn);
        put(2, b, nn);
        poison(1, nn);
        poison(3, nn);
        qrt_k_add(cg, cg->bufs[1], cg->bufs[0], cg->bufs[2], NULL, NULL, NULL, 0, dd, 0, 0, 0, 0.0f);
        qrt_k_rmsnorm(cg, cg->bufs[3], cg->bufs[1], NULL, NULL, blob + norm_off[1], NULL, 1, dd, 0, 0, 0, 1e-5f);
        qrt_k_add(cc, cc->bufs[1], cc->bufs[0], cc->bufs[2], NULL, NULL, NULL, 0, dd, 0, 0, 0, 0.0f);
        qrt_k_rmsnorm(cc, cc->bufs[3], cc->bufs[1], NULL, NULL, blob + norm_off[1], NULL, 1, dd, 0, 0, 0, 1e-5f);
        char what[64];
        y = get(1, nn);
        snprintf(what, sizeof what, "ADD+RMSNORM f16 dim=%d T=%d: sum", dd, T);
        report(what, rel_err(y, cc->bufs[1], nn), 0.0);
        free(y);
        y = get(3, nn);
        snprintf(what, sizeof what, "ADD+RMSNORM f16 dim=%d T=%d: norm", dd, T);
        report(what, rel_err(y, cc->bufs[3], nn), 2e-6);
        free(y);
    }
    /* RoPE in place: heads x hd at positions pos .. pos + T - 1 */
    static const struct { int heads, hd, pos; float theta; } rc[] = {{8, 64, 7, 10000.0f}, {4, 8, 500, 10000.0f},
                                                                     {2, 128, 900, 500000.0f}};
    for (size_t i = 0; i < sizeof rc / sizeof rc[0]; i++) {
        size_t nn = (size_t)T * rc[i].heads * rc[i].hd;
        rand_buf(a, nn, 1.0f);
        set_step(T, rc[i].pos, toks, 0);
        put(0, a, nn);
        qrt_k_rope(cg, cg->bufs[0], NULL, NULL, NULL, NULL, NULL, 0, rc[i].heads, rc[i].hd, 0, 0, rc[i].theta);
        qrt_k_rope(cc, cc->bufs[0], NULL, NULL, NULL, NULL, NULL, 0, rc[i].heads, rc[i].hd, 0, 0, rc[i].theta);
        y = get(0, nn);
        char what[96];
        snprintf(what, sizeof what, "ROPE heads=%d hd=%d pos=%d theta=%g", rc[i].heads, rc[i].hd, rc[i].pos,
                 (double)rc[i].theta);
        report(what, rel_err(y, cc->bufs[0], nn), 2e-6);
        free(y);
    }
    free(a);
    free(b);
}

/* Prefill chunks, then decode steps; outputs compared after every call. */
static void test_attention(const char *kv, double tol) {
    /* head_dim 64, 8, 128 and 256: 16, 2, 32 and 32 lanes per position (two float4 each at 256) in
     * kernels.cu attn_core; the cache and split buffers are sized for 2 layers x 2 KV heads x 64 */
    static const struct { int layer, heads, kvh, hd; } ac[] = {{1, 8, 2, 64}, {0, 8, 4, 8}, {1, 4, 1, 128}, {0, 2, 1, 256}};
    static const int chunks[] = {37, 200, 63, 1, 1, 1, 5, 1, 1};
    /* rope: q's and k's RoPE right before, as the host code calls them (one qk_rope_append_* on the GPU);
     * q and k after it compared too, except for one token: the RoPEs go into the attention
     * (qk_attn_rope_*), which leaves q and k as they were and appends the rotated k to the cache (the
     * chunks after it read that) */
    for (size_t i = 0; i < 2 * sizeof ac / sizeof ac[0]; i++) {
        const int rope = i >= sizeof ac / sizeof ac[0];
        int pos = 0;
        double worst = 0;
        if (rope) i -= sizeof ac / sizeof ac[0];
        for (size_t s = 0; s < sizeof chunks / sizeof chunks[0]; s++) {
            int T = chunks[s];
            size_t nq = (size_t)T * ac[i].heads * ac[i].hd, nk = (size_t)T * ac[i].kvh * ac[i].hd;
            float *q = malloc(nq * 4), *k = malloc(nk * 4), *v = malloc(nk * 4);
            rand_buf(q, nq, 1.0f);
            rand_buf(k, nk, 1.0f);
            rand_buf(v, nk, 1.0f);
            set_step(T, pos, NULL, 0);
            put(0, q, nq);
            put(2, k, nk);
            put(3, v, nk);
            poison(1, nq);
            qrt_ctx *cs[2] = {cg, cc};
            for (int d = 0; d < 2 && rope; d++) {
                qrt_k_rope(cs[d], cs[d]->bufs[0], NULL, NULL, NULL, NULL, NULL, 0, ac[i].heads, ac[i].hd, 0, 0, 1e4f);
                qrt_k_rope(cs[d], cs[d]->bufs[2], NULL, NULL, NULL, NULL, NULL, 0, ac[i].kvh, ac[i].hd, 0, 0, 1e4f);
            }
            int64_t before = qrt_cuda_merged(cg->m);
            qrt_k_attention(cg, cg->bufs[1], cg->bufs[0], cg->bufs[2], cg->bufs[3], NULL, NULL, 0, ac[i].layer,
                            ac[i].heads, ac[i].kvh, ac[i].hd, 0.0f);
            if (rope && T == 1 && s == 3) report_count("RoPEs in the attention", qrt_cuda_merged(cg->m) - before, 2);
            qrt_k_attention(cc, cc->bufs[1], cc->bufs[0], cc->bufs[2], cc->bufs[3], NULL, NULL, 0, ac[i].layer,
                            ac[i].heads, ac[i].kvh, ac[i].hd, 0.0f);
            float *y = get(1, nq);
            check_gpu_alive("attention");
            double e = rel_err(y, cc->bufs[1], nq);
            if (e > worst) worst = e;
            free(y);
            for (int b = 0; b < 2 && rope && T > 1; b++) { /* the roped q and k */
                size_t n = b ? nk : nq;
                y = get(b ? 2 : 0, n);
                e = rel_err(y, cc->bufs[b ? 2 : 0], n);
                if (e > worst) worst = e;
                free(y);
            }
            free(q);
            free(k);
            free(v);
            pos += T;
        }
        char what[120];
        snprintf(what, sizeof what, "ATTENTION%s %s KV heads=%d kv=%d hd=%d, prefill+decode to pos %d",
                 rope ? "+ROPE" : "", kv, ac[i].heads, ac[i].kvh, ac[i].hd, pos);
        report(what, worst, tol);
        if (rope) i += sizeof ac / sizeof ac[0];
    }
}

static int no_cluster; /* the next setup: --no-cluster */
static int setup(qrt_model *m, int kv_f16, const uint8_t *cuda, size_t cuda_size) {
    memset(m, 0, sizeof *m);
    m->cfg[QRT_CFG_ABI_VERSION] = QRT_ABI_VERSION;
    m->cfg[QRT_CFG_N_LAYERS] = 2;
    m->cfg[QRT_CFG_DIM] = MODEL_WIDE;
    m->cfg[QRT_CFG_N_HEADS] = 8;
    m->cfg[QRT_CFG_N_KV_HEADS] = 2;
    m->cfg[QRT_CFG_HEAD_DIM] = 64;
    m->cfg[QRT_CFG_FFN_DIM] = MODEL_WIDE;
    m->cfg[QRT_CFG_VOCAB] = 512;
    m->cfg[QRT_CFG_MAX_CTX] = NCTX;
    m->cfg[QRT_CFG_N_BUFS] = NBUF;
    m->cfg[QRT_CFG_LOGITS_BUF] = 1;
    m->cfg[QRT_CFG_MAX_BATCH] = MAXB;
    m->buf_widths = widths;
    m->forward = qm_forward;
    m->weights = blob;
    m->weights_size = blob_size;
    m->cuda = cuda;
    m->cuda_size = cuda_size;
    if (!cuda) return 0;
    qrt_cuda_opts o = {0};
    o.kv_f16 = kv_f16;
    o.fuse_norm = !kv_f16; /* as the executables (the f16 pass: --no-fuse-norm, attention only) */
    o.no_cluster = no_cluster;
    o.verbose = 1;
    char msg[512];
    int rc = qrt_cuda_init(m, &o, msg, sizeof msg);
    if (rc) fprintf(stderr, "qrt_cuda_init: %s\n", msg);
    return rc;
}

int main(void) {
    char why[512];
    int nodev = 0;
    const qrt_cu_api *cu = qrt_cu_load(why, sizeof why, &nodev);
    if (!cu) {
        printf("skipped: %s\n", why);
        return 77;
    }
    if (!qc_nvrtc_available(why, sizeof why)) {
        printf("skipped: %s\n", why);
        return 77;
    }
    for (int i = 0; i < NBUF; i++) widths[i] = WIDTH;
    blob_cap = (size_t)96 << 20;
    blob = aligned_alloc(64, blob_cap);
    for (int i = 0; i < NLIN; i++) fill_weight(&lins[i]);
    for (int i = 0; i < NMLIN; i++) fill_weight(&mlins[i]);
    for (int i = 0; i < NSLIN; i++) fill_weight(&slins[i]);
    for (int i = 0; i < NPLIN; i++) fill_weight(&plins[i]);
    int32_t dim = 4096, vocab = 512;
    size_t emb_off[3], norm_off[3];
    for (int d = 0; d < 3; d++) {
        size_t es = d == 0 ? 4 : 2;
        emb_off[d] = blob_add((size_t)vocab * dim * es);
        norm_off[d] = blob_add((size_t)dim * es);
        for (size_t i = 0; i < (size_t)vocab * dim + dim; i++) {
            float f = rndf();
            uint8_t *p = blob + (i < (size_t)vocab * dim ? emb_off[d] + i * es : norm_off[d] + (i - (size_t)vocab * dim) * es);
            uint32_t b;
            memcpy(&b, &f, 4);
            uint16_t h = d == 1 ? f2h(f) : (uint16_t)(b >> 16);
            if (d == 0) memcpy(p, &f, 4);
            else memcpy(p, &h, 2);
        }
    }

    /* Device code: even-numbered linears specialized, odd ones through the generic GEMV. */
    qc_cuda_linear spec[NLIN];
    int ns = 0;
    for (int i = 0; i < NLIN; i += 2) {
        int32_t bits = qrt_qdtype_bits(lins[i].dt), K = lins[i].K;
        spec[ns++] = (qc_cuda_linear){lins[i].dt, K, lins[i].N,
                                      bits ? (lins[i].group <= 0 || lins[i].group >= K ? K : lins[i].group) : 0,
                                      bits ? lins[i].sym : 0};
    }
    qrt_cu_device dev;
    int major = 0, minor = 0;
    cu->DeviceGet(&dev, 0);
    cu->DeviceGetAttribute(&major, QRT_CU_ATTR_CC_MAJOR, dev);
    cu->DeviceGetAttribute(&minor, QRT_CU_ATTR_CC_MINOR, dev);
    qc_cuda_opts o = {0};
    qc_err err;
    o.opt_level = 2;
    o.n_targets = 2;
    o.targets[0] = (qc_cuda_target){0, 10 * major + minor};
    o.targets[1] = (qc_cuda_target){1, 10 * major + minor};
    qc_cuda_module mod;
    qc_cuda_build b;
    uint8_t *sec = NULL, *sec_ptx = NULL;
    size_t sec_size = 0, sec_ptx_size = 0;
    int merr = qc_cuda_module_init(&mod, spec, ns, 0x7f, &o, &err);
    for (int gi = 0, i0 = 0; gi < NMG && !merr; i0 += mgroups[gi++]) {
        const lin_case *l = &mlins[i0];
        int32_t bits = qrt_qdtype_bits(l->dt), N[3];
        for (int j = 0; j < mgroups[gi]; j++) N[j] = mlins[i0 + j].N;
        qc_cuda_linear ml = {l->dt, l->K, 0, bits ? (l->group <= 0 || l->group >= l->K ? l->K : l->group) : 0,
                             bits ? l->sym : 0};
        merr = qc_cuda_module_add_multi(&mod, &ml, mgroups[gi], N, &err);
        if (!merr) merr = qc_cuda_module_add_multin(&mod, &ml, mgroups[gi], N, gi % 3, &err); /* test_norm_merged */
    }
    for (int i = 0; i < NSLIN && !merr; i++) {
        const lin_case *l = &slins[i];
        int32_t bits = qrt_qdtype_bits(l->dt);
        qc_cuda_linear sl = {l->dt, l->K, l->N, bits ? (l->group <= 0 || l->group >= l->K ? l->K : l->group) : 0,
                             bits ? l->sym : 0};
        merr = qc_cuda_module_add_silu(&mod, &sl, &err);
    }
    for (int i = 0; i < NPLIN && !merr; i += 2) { /* test_pair */
        const lin_case *l = &plins[i];
        int32_t bits = qrt_qdtype_bits(l->dt);
        qc_cuda_linear pl = {l->dt, l->K, l->N, bits ? (l->group <= 0 || l->group >= l->K ? l->K : l->group) : 0,
                             bits ? l->sym : 0};
        merr = qc_cuda_module_add_pair(&mod, &pl, -1, &err);
        if (!merr) merr = qc_cuda_module_add_pair(&mod, &pl, (i / 2) % 3, &err);
    }
    if (merr || qc_cuda_compile(&mod, &o, NULL, &b, &err) ||
        qc_cuda_blob(&mod, &b, &sec, &sec_size, &err)) {
        fprintf(stderr, "device code: %s\n", err.msg);
        return 1;
    }
    qc_cuda_build bp = b; /* the PTX image alone */
    bp.images[0] = b.images[1];
    bp.n_images = 1;
    if (qc_cuda_blob(&mod, &bp, &sec_ptx, &sec_ptx_size, &err)) return 1;

    if (setup(&mc, 0, NULL, 0)) return 1;
    for (int kv = 0; kv < 2; kv++) {
        if (setup(&mg, kv, sec, sec_size)) return 1;
        cg = qrt_ctx_new(&mg, NCTX);
        cc = qrt_ctx_new(&mc, NCTX);
        if (!cg || !cg->gpu || !cc) {
            fprintf(stderr, "contexts\n");
            return 1;
        }
        if (kv == 0) {
            test_small_ops(emb_off, norm_off, dim);
            test_linear(0);
            test_merged();
            test_silu_linear();
            test_norm_merged(norm_off);
            test_pair(norm_off);
            test_residual();
            if (qrt_cuda_use_cublas(&mg, 1)) test_linear(1);
            else printf("cuBLAS not found: prefill through qk_qgemm / qk_gemm only\n");
            test_attention("f32", 2e-5);
        } else {
            test_attention("f16", 3e-3);
        }
        qrt_ctx_free(cg);
        qrt_ctx_free(cc);
        qrt_cuda_free(&mg);
    }
    /* a context of 512: 8 attention splits per head, one thread block cluster each on sm_90+ (at 1024 above:
     * 16 splits, merged through global memory); and the same with --no-cluster */
    for (int ncl = 0; ncl < 2; ncl++) {
        no_cluster = ncl;
        if (setup(&mg, 0, sec, sec_size)) return 1;
        cg = qrt_ctx_new(&mg, 512);
        cc = qrt_ctx_new(&mc, 512);
        if (!cg || !cg->gpu || !cc) {
            fprintf(stderr, "contexts\n");
            return 1;
        }
        test_attention(ncl ? "f32 -c 512 --no-cluster" : "f32 -c 512", 2e-5);
        int ccmaj = 0;
        const char *sm = strstr(qrt_cuda_device_name(&mg), "(sm_");
        if (sm) ccmaj = atoi(sm + 4) / 10;
        report_count("attention splits as clusters", qrt_cuda_clusters(&mg), !ncl && ccmaj >= 9);
        qrt_ctx_free(cg);
        qrt_ctx_free(cc);
        qrt_cuda_free(&mg);
    }
    no_cluster = 0;
    /* PTX only: the driver compiles it for this GPU */
    if (setup(&mg, 0, sec_ptx, sec_ptx_size)) return 1;
    cg = qrt_ctx_new(&mg, NCTX);
    cc = qrt_ctx_new(&mc, NCTX);
    printf("PTX JIT: %s\n", qrt_cuda_device_name(&mg));
    {
        lin_case *l = &lins[0];
        float *x = malloc((size_t)l->K * 4), *ref = malloc((size_t)l->N * 4);
        rand_buf(x, (size_t)l->K, 1.0f);
        ref_linear(l, x, 1, ref);
        set_step(1, 0, NULL, 0);
        put(0, x, (size_t)l->K);
        poison(1, (size_t)l->N);
        qrt_k_linear(cg, cg->bufs[1], cg->bufs[0], NULL, NULL, blob + l->off, NULL, l->dt, l->K, l->N, l->group,
                     l->sym, 0.0f);
        float *y = get(1, (size_t)l->N);
        report("LINEAR q4 K=4096 N=1000 rows=1 from PTX", rel_err(y, ref, (size_t)l->N), 2e-6);
        free(y);
        free(x);
        free(ref);
    }
    qrt_ctx_free(cg);
    qrt_ctx_free(cc);
    qrt_cuda_free(&mg);
    qc_cuda_build_free(&b);
    qc_cuda_module_free(&mod);
    free(sec);
    free(sec_ptx);
    free(blob);
    printf(fails ? "FAILED: %d checks\n" : "all kernels agree with the CPU\n", fails);
    return fails ? 1 : 0;
}
