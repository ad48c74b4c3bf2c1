/*
 * bench/gemv_bench.c — GEMV on the GPU (batch 1 to 8 rows): microseconds,
 * achieved GB/s, the fraction of the device-to-device copy bandwidth and
 * the speedup over cuBLAS f16 measured in the same run (bench/gpu.sh runs
 * it; results in docs/performance.md).
 *
 * For each shape K x N (inputs x outputs) and format it launches the
 * kernels qcc builds for such a layer (codegen/cuda, NVRTC for this
 * device's SM) exactly as runtime/cuda.c does: batch 1 through the
 * shape-specialized 1-row kernel, 2..8 rows through the shape-specialized
 * 4-row kernel, once per 4 rows, except packed weights from 4 rows (8
 * bits: 5; qrt_qgemm_min_rows), which go through the fused GEMM (qk_qgemm_x16, qk_qgemm_<dt>_t8 or the tiled
 * qk_qgemm_<dt>, qk_qgemm_reduce; all timed; --fused-rows 0: the GEMV
 * instead, --fused-rows N: from N rows). Enough copies of a random weight (packed layout of
 * docs/formats.md) are cycled to overflow the L2 cache, so every timed
 * launch reads weights the previous launches did not touch. Each result is
 * checked against the CPU (runtime/qlinear.c; f64 for f16) and timed as a
 * CUDA graph of 64 back-to-back GEMVs with device events (median of 20).
 *
 * Bytes counted: the whole weight (codes, scales, zero points) once plus x
 * and y. Copy bandwidth: cuMemcpyDtoD of 1 GiB, bytes read plus written.
 * cuBLAS: cublasGemmEx f16 x f16 -> f32 with n = rows on the same shape.
 *
 *   gemv_bench [--variants | --vlist LIST] [--quick] [--hot] [--waves N] [--warps W] [--loads L]
 *              [--fast 0|1|2] [--xs FLOATS] [--shapes LIST] [--batches LIST] [--only V] [--dump DIR]
 *              [--fused-rows N]
 * --waves N: grids for up to N blocks per block slot of the device (fewer row tiles a block, several
 * waves; bench/NOTES-gemv.md, session 10), not the runtime's one wave.
 * LIST: comma-separated indices (1-based into the variant table `more`,
 * 0-based into the shape table) or batch sizes. Variants run at batch 1.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc/cuda.h"
#include "int8.h"
#include "qrt_cuda.h"

static const qrt_cu_api *cu;
static qrt_cu_stream stream;
static int hot; /* --hot: one copy of the weights (L2-resident when they fit), not a rotation through 320 MB */
static int waves = 1; /* --waves N: up to N blocks per block slot of the device (more, smaller blocks) */

#define CHECK(call)                                                                                      \
    do {                                                                                                 \
        qrt_cu_result r_ = (call);                                                                       \
        if (r_) {                                                                                        \
            char m_[256];                                                                                \
            qrt_cu_describe(cu, r_, #call, m_, sizeof m_);                                               \
            fprintf(stderr, "gemv_bench: %s (line %d)\n", m_, __LINE__);                                \
            exit(1);                                                                                     \
        }                                                                                                \
    } while (0)

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}
static float rndf(void) { return (float)(rnd() & 0xffffff) / 16777216.0f * 2.0f - 1.0f; }
static uint16_t f2h(float f) { /* positive normal values only (scales) */
    uint32_t b;
    memcpy(&b, &f, 4);
    return (uint16_t)(((b >> 23) - 112) << 10 | ((b >> 13) & 0x3ff));
}
static uint16_t f2h_signed(float f) {
    uint16_t m = f2h(fabsf(f) < 1e-4f ? 1e-4f : fabsf(f));
    return f < 0 ? (uint16_t)(m | 0x8000) : m;
}

static int cmp_f(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Median over `reps` of the time of one replay of `g`, in ms. */
static float time_graph(qrt_cu_graph_exec g, int reps) {
    qrt_cu_event e0, e1;
    CHECK(cu->EventCreate(&e0, 0));
    CHECK(cu->EventCreate(&e1, 0));
    float t[64];
    if (reps > 64) reps = 64;
    for (int i = 0; i < 3; i++) CHECK(cu->GraphLaunch(g, stream));
    for (int i = 0; i < reps; i++) {
        CHECK(cu->EventRecord(e0, stream));
        CHECK(cu->GraphLaunch(g, stream));
        CHECK(cu->EventRecord(e1, stream));
        CHECK(cu->EventSynchronize(e1));
        CHECK(cu->EventElapsedTime(&t[i], e0, e1));
    }
    cu->EventDestroy(e0);
    cu->EventDestroy(e1);
    qsort(t, (size_t)reps, sizeof t[0], cmp_f);
    return t[reps / 2];
}

static double copy_bandwidth(void) {
    size_t n = (size_t)1 << 30;
    qrt_cu_ptr a, b;
    CHECK(cu->MemAlloc(&a, n));
    CHECK(cu->MemAlloc(&b, n));
    CHECK(cu->MemsetD8(a, 1, n));
    qrt_cu_event e0, e1;
    CHECK(cu->EventCreate(&e0, 0));
    CHECK(cu->EventCreate(&e1, 0));
    float t[10];
    for (int i = 0; i < 13; i++) {
        CHECK(cu->EventRecord(e0, NULL));
        CHECK(cu->MemcpyDtoD(b, a, n));
        CHECK(cu->EventRecord(e1, NULL));
        CHECK(cu->EventSynchronize(e1));
        if (i >= 3) CHECK(cu->EventElapsedTime(&t[i - 3], e0, e1));
    }
    qsort(t, 10, sizeof t[0], cmp_f);
    cu->MemFree(a);
    cu->MemFree(b);
    return 2.0 * (double)n / (t[5] * 1e-3) / 1e9;
}

/* ---- formats and shapes ---- */

typedef struct fmt {
    int dt, group;
    const char *name;
} fmt;
static const fmt fmts[] = {
    {QRT_DT_Q4, 128, "q4 g128"}, {QRT_DT_Q3, 128, "q3 g128"}, {QRT_DT_Q2, 128, "q2 g128"},
    {QRT_DT_Q2, 64, "q2 g64"},   {QRT_DT_Q8, 128, "q8 g128"}, {QRT_DT_F16, 0, "f16"},
    {QRT_DT_I8, 0, "i8 w8a8"}, /* SmoothQuant: int8 weights, x quantized per token in the kernel */
};
enum { NF = sizeof fmts / sizeof fmts[0] };
static const int shapes[][2] = {{4096, 4096}, {4096, 11008}, {11008, 4096}, {14336, 4096}, {4096, 32000}, {8192, 28672}};
enum { NS = sizeof shapes / sizeof shapes[0] };

typedef struct variant {
    int warps, loads, fast, nopipe, xs, trace;
    const char *label;
    const char *defs; /* source lines put before the kernels (kernels.cu's #ifndef knobs) */
    qrt_cu_module mod;
    qrt_cuda_blob shape; /* only the gemv_* fields are used */
    const qc_cuda_linear *lin;
    int nl, cc;
    qc_cuda_build b; /* compiled on a thread of its own, loaded after */
} variant;

static void *build_variant(void *arg) {
    variant *v = arg;
    qc_cuda_opts o = {0};
    qc_err err;
    o.n_targets = 1;
    o.targets[0].arch = v->cc;
    o.opt_level = 2;
    o.gemv_warps = v->warps;
    o.gemv_loads = v->loads;
    o.gemv_fast = v->fast;
    o.gemv_nopipe = v->nopipe;
    o.gemv_xs = v->xs;
    qc_cuda_module m;
    if (qc_cuda_module_init(&m, v->lin, v->nl, 0, &o, &err)) {
        fprintf(stderr, "gemv_bench: %s\n", err.msg);
        exit(1);
    }
    const char *def = v->trace ? "#define QK_GEMV_TRACE 1\n" : v->defs; /* trace: phase timestamps over y */
    if (def) {
        size_t n = strlen(def);
        char *src = malloc(n + m.source_len + 1);
        memcpy(src, def, n);
        memcpy(src + n, m.source, m.source_len + 1);
        free(m.source);
        m.source = src;
        m.source_len += n;
    }
    if (qc_cuda_compile(&m, &o, NULL, &v->b, &err)) {
        fprintf(stderr, "gemv_bench: %s\n", err.msg);
        exit(1);
    }
    v->shape.gemv_warps = m.gemv_warps;
    v->shape.gemv_loads = m.gemv_loads;
    v->shape.gemv_xs = m.gemv_xs;
    v->shape.gemv_fast = m.gemv_fast;
    qc_cuda_module_free(&m);
    return NULL;
}

/* Random packed weight in the layout of docs/formats.md. */
static void fill_packed(uint8_t *w, const qrt_qlayout *l) {
    for (size_t i = 0; i < l->scales_off; i++) w[i] = (uint8_t)rnd(); /* codes (K % 128 == 0 here: no padding) */
    uint16_t *s = (uint16_t *)(w + l->scales_off);
    for (int64_t i = 0; i < l->N * l->G; i++) s[i] = f2h(0.002f + 0.004f * (float)(rnd() & 1023) / 1024.0f);
    if (!l->sym)
        for (int64_t i = 0; i < l->N * l->G; i++) w[l->zeros_off + i] = (uint8_t)(rnd() % (1u << l->bits));
}

/* ---- CPU references (threads over rows) ---- */

enum { MAXB = 8 };
typedef struct refjob {
    const uint8_t *w;
    const qrt_qlayout *l;
    const float *x;
    float *ref;
    int K, N, b, n0, n1;
} refjob;
static void *ref_packed(void *arg) { /* one batch row */
    refjob *j = arg;
    float *scratch = malloc(qrt_qgemv_scratch(j->l) * 4);
    qrt_qgemv(j->w, j->l, j->x + (size_t)j->b * j->K, j->ref + (size_t)j->b * j->N, scratch, 0);
    free(scratch);
    return NULL;
}
static void *ref_f16(void *arg) { /* rows n0..n1 of every batch row, f64 */
    refjob *j = arg;
    const uint16_t *h = (const uint16_t *)j->w;
    float *row = malloc((size_t)j->K * 4);
    for (int n = j->n0; n < j->n1; n++) {
        for (int k = 0; k < j->K; k++) row[k] = qrt_f16_to_f32(h[(size_t)n * j->K + k]);
        for (int b = 0; b < MAXB; b++) {
            const float *xb = j->x + (size_t)b * j->K;
            double acc = 0;
            for (int k = 0; k < j->K; k++) acc += (double)row[k] * xb[k];
            j->ref[(size_t)b * j->N + n] = (float)acc;
        }
    }
    free(row);
    return NULL;
}
static void reference(int dt, const uint8_t *w, const qrt_qlayout *l, const float *x, float *ref, int K, int N) {
    if (dt == QRT_DT_I8) { /* the CPU's kernel (runtime/int8.c), which the GPU matches bit for bit */
        void *scratch = malloc(qrt_i8_scratch(K, N, MAXB));
        qrt_i8_linear_isa(ref, x, MAXB, w, K, N, scratch, 0);
        free(scratch);
        return;
    }
    enum { NT = 16 };
    pthread_t th[NT];
    refjob jobs[NT];
    int nt = dt == QRT_DT_F16 ? NT : MAXB;
    for (int i = 0; i < nt; i++) {
        jobs[i] = (refjob){w, l, x, ref, K, N, i, (int)((int64_t)N * i / nt), (int)((int64_t)N * (i + 1) / nt)};
        if (pthread_create(&th[i], NULL, dt == QRT_DT_F16 ? ref_f16 : ref_packed, &jobs[i])) exit(1);
    }
    for (int i = 0; i < nt; i++) pthread_join(th[i], NULL);
}

/* ---- one GEMV configuration ---- */

typedef struct result {
    double us, gbs, err;
    double us_plain; /* without programmatic dependent launch (= us where PDL is off) */
    int grid, occ;
} result;

static int sms, pdl; /* pdl: launch as runtime/cuda.c does on sm_90+ (cuLaunchKernelEx, programmatic serialization) */
static int smem_optin; /* the device's opt-in shared memory per block */
static int fused_rows = -1; /* --fused-rows N: packed weights, N to 64 rows through the fused GEMM as the runtime
                             * launches it; 0: the GEMV at every row count; -1: where the runtime takes it
                             * (qrt_qgemm_min_rows) */

/* One launch into the stream: with the programmatic-serialization attribute when with_pdl. */
static void launch3(qrt_cu_function f, unsigned gx, unsigned gy, unsigned gz, unsigned threads, size_t smem,
                    void **args, int with_pdl) {
    if (with_pdl) {
        qrt_cu_launch_attr at;
        memset(&at, 0, sizeof at);
        at.id = QRT_CU_LAUNCH_ATTR_PROGRAMMATIC_STREAM_SERIALIZATION;
        at.value.i = 1;
        qrt_cu_launch_config lc = {gx, gy, gz, threads, 1, 1, (unsigned)smem, stream, &at, 1};
        CHECK(cu->LaunchKernelEx(&lc, f, args, NULL));
    } else {
        CHECK(cu->LaunchKernel(f, gx, gy, gz, threads, 1, 1, (unsigned)smem, stream, args, NULL));
    }
}
static void launch_gemv(qrt_cu_function f, unsigned grid, const qrt_gemv_shape *sh, void **args, int with_pdl) {
    launch3(f, grid, 1, 1, (unsigned)sh->threads, sh->smem, args, with_pdl);
}

/* ||y - ref|| / ||ref|| (1e30 when not finite) */
static double rel_err(const float *y, const float *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)y[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    return isfinite(num) ? sqrt(num / (den > 0 ? den : 1)) : 1e30;
}

/* A graph of what enqueue(ctx, i, p) launches for i < iters (p: with programmatic dependent launch), timed
 * with plain launches (res->us_plain), then (sm_90+) as the runtime launches (res->us): us per iteration. */
static void time_graphs(result *res, void (*enqueue)(void *, int, int), void *ctx, int iters, int quick) {
    for (int p = 0; p <= pdl; p++) {
        qrt_cu_graph gr;
        qrt_cu_graph_exec ge;
        CHECK(cu->StreamBeginCapture(stream, 2));
        for (int i = 0; i < iters; i++) enqueue(ctx, i, p);
        CHECK(cu->StreamEndCapture(stream, &gr));
        CHECK(cu->GraphInstantiateWithFlags(&ge, gr, 0));
        float ms = time_graph(ge, quick ? 5 : 20);
        res->us = ms * 1e3 / iters;
        if (p == 0) res->us_plain = res->us;
        cu->GraphExecDestroy(ge);
        cu->GraphDestroy(gr);
    }
}

/* Enough copies of the weight to overflow the L2 (one with --hot), uploaded (3 bits: repacked into the device
 * layout, as runtime/cuda.c does before a 3-bit weight's first use), stride bytes apart. */
static qrt_cu_ptr weight_copies(const variant *v, int dt, int K, int N, const uint8_t *host_w, size_t wbytes,
                                int quick, size_t *stride, int *copies) {
    *stride = (wbytes + 255) / 256 * 256;
    *copies = hot ? 1 : (int)((quick ? (64u << 20) : (320u << 20)) / *stride) + 1;
    if (*copies < 2 && !hot) *copies = 2;
    qrt_cu_ptr W;
    CHECK(cu->MemAlloc(&W, *stride * *copies));
    for (int c = 0; c < *copies; c++) CHECK(cu->MemcpyHtoD(W + *stride * c, host_w, wbytes));
    if (dt == QRT_DT_Q3) {
        qrt_cu_function fr;
        CHECK(cu->ModuleGetFunction(&fr, v->mod, "qk_repack_q3"));
        for (int c = 0; c < *copies; c++) {
            qrt_cu_ptr wc = W + *stride * c;
            void *rargs[] = {&wc, &K, &N};
            CHECK(cu->LaunchKernel(fr, 1024, 1, 1, 256, 1, 1, 0, stream, rargs, NULL));
        }
        CHECK(cu->StreamSynchronize(stream));
    }
    return W;
}

enum { MAXL = 2, ITER = 64 }; /* GEMV launches per iteration (rows / 4); iterations a graph */
/* One iteration of run_gemv: (W8A8: the quantization, then) a GEMV per 4 rows. */
typedef struct gemv_launches {
    qrt_cu_function f, fq;
    unsigned grid, rows;
    int nl;
    const qrt_gemv_shape *sh, *qsh;
    void **qargs;
    void *(*kargs)[MAXL][10];
} gemv_launches;
static void enqueue_gemv(void *ctx, int i, int p) {
    const gemv_launches *g = ctx;
    if (g->fq) launch_gemv(g->fq, g->rows, g->qsh, g->qargs, p);
    for (int j = 0; j < g->nl; j++) launch_gemv(g->f, g->grid, g->sh, g->kargs[i][j], p);
}

/* Times `rows`-row GEMVs of kernel set `v` over copies of the weight. */
static result run_gemv(const variant *v, int dt, int K, int N, int group, const uint8_t *host_w, size_t wbytes,
                       const float *x, const float *ref, int rows, int quick) {
    result res = {0, 0, 0, 0, 0, 0};
    int B = rows == 1 ? 1 : 4, bits = qrt_qdtype_bits(dt);
    int g = bits ? group : 0, sym = 0;
    char name[128];
    int32_t warps = 0;
    if (dt == QRT_DT_I8) {
        snprintf(name, sizeof name, "qk_gemv_i8_b%d", B);
    } else { /* shape-specialized, as qcc emits them for each linear (batch 1 and 4; "_w8": 8 warps a block) */
        qc_cuda_linear l = {dt, K, N, g, 0};
        qc_cuda_gemv_name(name, sizeof name, &l, B);
        qrt_cu_function t;
        size_t n = strlen(name);
        snprintf(name + n, sizeof name - n, "_w8");
        if (cu->ModuleGetFunction(&t, v->mod, name) == 0) warps = 8;
        else name[n] = '\0';
    }
    qrt_cu_function f;
    CHECK(cu->ModuleGetFunction(&f, v->mod, name));
    qrt_gemv_shape sh = qrt_gemv_shape_w(&v->shape, dt, K, B, warps);
    if (dt == QRT_DT_I8) { /* runtime/cuda.c i8_linear: 8 warps x 2 rows, x as int8 in shared memory */
        memset(&sh, 0, sizeof sh);
        sh.threads = 256, sh.smem = (size_t)B * ((K + 31) / 32 * 32);
    }
    if (sh.smem > 48 * 1024) CHECK(cu->FuncSetAttribute(f, QRT_CU_FUNC_ATTR_MAX_DYN_SMEM, (int)sh.smem));
    size_t stride;
    int copies;
    qrt_cu_ptr W = weight_copies(v, dt, K, N, host_w, wbytes, quick, &stride, &copies), X, Y;
    CHECK(cu->MemAlloc(&X, (size_t)K * 4 * MAXB));
    CHECK(cu->MemAlloc(&Y, (size_t)N * 4 * MAXB));
    CHECK(cu->MemcpyHtoD(X, x, (size_t)K * 4 * MAXB));
    int occ = 0;
    CHECK(cu->OccupancyMaxActiveBlocksPerMultiprocessor(&occ, f, sh.threads, sh.smem));
    unsigned grid = dt == QRT_DT_I8 ? (unsigned)((N + 15) / 16 < occ * sms ? (N + 15) / 16 : occ * sms)
                                    : qrt_gemv_grid(&sh, K, N, waves * occ * sms);
    res.grid = (int)grid;
    res.occ = occ;
    qrt_cu_ptr bias = 0;
    /* the runtime's launches (runtime/cuda.c linear()): chunks of B rows */
    int nl = (rows + B - 1) / B;
    qrt_cu_ptr xs[MAXL], ys[MAXL], sas[MAXL];
    int nr[MAXL], sv = sh.sv;
    /* W8A8: the runtime quantizes the step's rows first (qk_i8_quant), then the GEMV reads int8 rows and
     * scales (xs, sas); both kernels are timed */
    const int Kp = (K + 31) / 32 * 32;
    qrt_cu_ptr XQ = 0, SA = 0;
    qrt_cu_function fq = NULL;
    qrt_gemv_shape qsh;
    memset(&qsh, 0, sizeof qsh);
    qsh.threads = 1024;
    if (dt == QRT_DT_I8) {
        CHECK(cu->ModuleGetFunction(&fq, v->mod, "qk_i8_quant"));
        CHECK(cu->MemAlloc(&XQ, (size_t)MAXB * Kp + 64));
        SA = XQ + ((size_t)rows * Kp + 15) / 16 * 16;
    }
    void *qargs[] = {&X, &XQ, &SA, &K};
    for (int i = 0; i < nl; i++) {
        xs[i] = dt == QRT_DT_I8 ? XQ + (size_t)i * B * Kp : X + (size_t)i * B * K * 4;
        sas[i] = SA + (size_t)i * B * 4;
        ys[i] = Y + (size_t)i * B * N * 4;
        nr[i] = rows - i * B < B ? rows - i * B : B;
    }
    static qrt_cu_ptr nores = 0; /* no residual add in the epilogue */
    /* correctness: poison y, run once, compare */
    float *y = malloc((size_t)N * 4 * rows);
    CHECK(cu->MemsetD8(Y, 0xff, (size_t)N * 4 * MAXB));
    qrt_cu_ptr w0 = W;
    if (fq) CHECK(cu->LaunchKernel(fq, (unsigned)rows, 1, 1, 1024, 1, 1, 0, stream, qargs, NULL));
    for (int i = 0; i < nl; i++) {
        void *args[] = {&w0, &bias, &xs[i], &ys[i], &nr[i], &sv, &nores, &N, &g, &sym}; /* QK_GEMV_SPEC */
        if (dt == QRT_DT_I8) /* (w, bias, xq, sa, y, rows, K, N) */
            args[3] = &sas[i], args[4] = &ys[i], args[5] = &nr[i], args[6] = &K, args[7] = &N;
        CHECK(cu->LaunchKernel(f, grid, 1, 1, (unsigned)sh.threads, 1, 1, (unsigned)sh.smem, stream, args, NULL));
    }
    CHECK(cu->StreamSynchronize(stream));
    CHECK(cu->MemcpyDtoH(y, Y, (size_t)N * 4 * rows));
    if (v->trace && (size_t)grid * 5 * 8 <= (size_t)N * 4) { /* per-block timestamps (y row 1): mean phase lengths */
        CHECK(cu->MemcpyDtoH(y, Y + (size_t)N * 4, (size_t)grid * 5 * 8));
        const unsigned long long *t = (const unsigned long long *)y;
        unsigned long long t0 = ~0ull, t4 = 0;
        double ph[4] = {0, 0, 0, 0};
        for (unsigned b = 0; b < grid; b++) {
            const unsigned long long *q = t + 5 * b;
            if (q[0] < t0) t0 = q[0];
            if (q[4] > t4) t4 = q[4];
            for (int i = 0; i < 4; i++) ph[i] += (double)(q[i + 1] - q[i]) / grid;
        }
        unsigned long long first = ~0ull, last = 0, e0 = ~0ull; /* spread of block starts; of their ends */
        double emean = 0;
        for (unsigned b = 0; b < grid; b++) {
            if (t[5 * b] < first) first = t[5 * b];
            if (t[5 * b] > last) last = t[5 * b];
            if (t[5 * b + 4] < e0) e0 = t[5 * b + 4];
            emean += (double)(t[5 * b + 4] - t0) / grid;
        }
        printf("trace %s %dx%d: span %.2f us; per block: prefetch %.2f, x staging %.2f, items %.2f, store %.2f us; "
               "block starts spread %.2f us; ends: first %.2f, mean %.2f, last %.2f us\n",
               name, K, N, (t4 - t0) / 1e3, ph[0] / 1e3, ph[1] / 1e3, ph[2] / 1e3, ph[3] / 1e3, (last - first) / 1e3,
               (e0 - t0) / 1e3, emean / 1e3, (t4 - t0) / 1e3);
        free(y);
        if (XQ) cu->MemFree(XQ);
        cu->MemFree(W);
        cu->MemFree(X);
        cu->MemFree(Y);
        res.us = -1;
        return res;
    }
    res.err = rel_err(y, ref, (size_t)N * rows);
    free(y);
    /* timing: a graph of ITER GEMVs cycling through the copies */
    static qrt_cu_ptr wp[ITER];
    static void *kargs[ITER][MAXL][10];
    for (int i = 0; i < ITER; i++) {
        wp[i] = W + stride * (i % copies);
        for (int j = 0; j < nl; j++) {
            void **a = kargs[i][j];
            a[0] = &wp[i], a[1] = &bias, a[2] = &xs[j], a[3] = &ys[j], a[4] = &nr[j], a[5] = &sv;
            a[6] = &nores, a[7] = &N, a[8] = &g, a[9] = &sym; /* QK_GEMV_SPEC: (w, bias, x, y, rows, sv, res) */
            if (dt == QRT_DT_I8) a[3] = &sas[j], a[4] = &ys[j], a[5] = &nr[j], a[6] = &K, a[7] = &N;
        }
    }
    gemv_launches gl = {f, fq, grid, (unsigned)rows, nl, &sh, &qsh, qargs, kargs};
    time_graphs(&res, enqueue_gemv, &gl, ITER, quick);
    res.gbs = (double)(wbytes + (size_t)(K + N) * 4 * rows) / (res.us * 1e-6) / 1e9;
    if (XQ) cu->MemFree(XQ);
    cu->MemFree(W);
    cu->MemFree(X);
    cu->MemFree(Y);
    return res;
}

/* One iteration of run_fused: x to f16, the GEMM, the sum of the parts. */
typedef struct fused_launches {
    qrt_cu_function f, fx, fr;
    const qrt_qgemm_plan *pl;
    unsigned xgrid, rgrid;
    void **xargs, **rargs;
    void *(*kargs)[9];
} fused_launches;
static void enqueue_fused(void *ctx, int i, int p) {
    const fused_launches *l = ctx;
    launch3(l->fx, l->xgrid, 1, 1, 256, 0, l->xargs, p);
    launch3(l->f, l->pl->gx, (unsigned)l->pl->S, l->pl->gz, 256, l->pl->smem, l->kargs[i], p);
    if (l->pl->S > 1) launch3(l->fr, l->rgrid, 1, 1, 256, 0, l->rargs, p);
}

/* Packed weights, fused_rows .. 64 rows: the runtime's fused GEMM (runtime/cuda.c qgemm: qk_qgemm_x16, then
 * qk_qgemm_<dt>_t<8 nt> or qk_qgemm_<dt>, then qk_qgemm_reduce when k is split), all three timed, over the
 * same rotation of weight copies. res.us < 0: not this path. */
static result run_fused(const variant *v, int dt, int K, int N, int group, const uint8_t *host_w, size_t wbytes,
                        const float *x, const float *ref, int rows, int quick) {
    result res = {-1, 0, 0, 0, 0, 0};
    int bits = qrt_qdtype_bits(dt), g = group, sym = 0;
    if (!bits || !fused_rows || rows < (fused_rows < 0 ? qrt_qgemm_min_rows(bits) : fused_rows) || rows > 64)
        return res;
    const char *dn = dt == QRT_DT_Q2 ? "q2" : dt == QRT_DT_Q3 ? "q3" : dt == QRT_DT_Q4 ? "q4" : "q8";
    char name[64];
    qrt_cu_function f, fx, fr;
    qrt_qgemm_plan pl = qrt_qgemm_plan_of(rows, bits, K, N, 1, smem_optin);
    if (!pl.ok) return res;
    if (pl.nt) snprintf(name, sizeof name, "qk_qgemm_%s_t%d", dn, 8 * pl.nt);
    else snprintf(name, sizeof name, "qk_qgemm_%s", dn);
    CHECK(cu->ModuleGetFunction(&f, v->mod, name));
    CHECK(cu->ModuleGetFunction(&fx, v->mod, "qk_qgemm_x16"));
    CHECK(cu->ModuleGetFunction(&fr, v->mod, "qk_qgemm_reduce"));
    if (pl.smem > 48 * 1024) CHECK(cu->FuncSetAttribute(f, QRT_CU_FUNC_ATTR_MAX_DYN_SMEM, (int)pl.smem));
    size_t stride;
    int copies;
    qrt_cu_ptr W = weight_copies(v, dt, K, N, host_w, wbytes, quick, &stride, &copies), X, Y, XP, PART = 0;
    CHECK(cu->MemAlloc(&X, (size_t)K * 4 * rows));
    CHECK(cu->MemAlloc(&Y, (size_t)N * 4 * rows));
    CHECK(cu->MemAlloc(&XP, (size_t)pl.Kp * 2 * rows));
    if (pl.S > 1) CHECK(cu->MemAlloc(&PART, (size_t)pl.S * rows * N * 4));
    CHECK(cu->MemcpyHtoD(X, x, (size_t)K * 4 * rows));
    CHECK(cu->MemsetD8(Y, 0xff, (size_t)N * 4 * rows));
    static qrt_cu_ptr wp[ITER];
    qrt_cu_ptr bias = 0, yk = pl.S > 1 ? PART : Y;
    int P = pl.P, S = pl.S;
    unsigned xgrid = (unsigned)(((size_t)rows * pl.Kp / 16 + 255) / 256);
    void *xargs[] = {&XP, &X, &rows, &K, &P}, *rargs[] = {&Y, &yk, &bias, &rows, &N, &S};
    static void *kargs[ITER][9];
    for (int i = 0; i < ITER; i++) {
        wp[i] = W + stride * (i % copies);
        void **a = kargs[i];
        a[0] = &wp[i], a[1] = &bias, a[2] = &XP, a[3] = &yk, a[4] = &rows, a[5] = &K, a[6] = &N, a[7] = &g, a[8] = &sym;
    }
    fused_launches fl = {f, fx, fr, &pl, xgrid, (unsigned)(((size_t)rows * N + 255) / 256), xargs, rargs, kargs};
    enqueue_fused(&fl, 0, 0); /* correctness: once */
    CHECK(cu->StreamSynchronize(stream));
    float *y = malloc((size_t)N * 4 * rows);
    CHECK(cu->MemcpyDtoH(y, Y, (size_t)N * 4 * rows));
    res.err = rel_err(y, ref, (size_t)N * rows);
    free(y);
    time_graphs(&res, enqueue_fused, &fl, ITER, quick);
    res.gbs = (double)(wbytes + (size_t)(K + N) * 4 * rows) / (res.us * 1e-6) / 1e9;
    res.grid = (int)(pl.gx * (unsigned)S * pl.gz);
    CHECK(cu->OccupancyMaxActiveBlocksPerMultiprocessor(&res.occ, f, 256, pl.smem));
    cu->MemFree(W), cu->MemFree(X), cu->MemFree(Y), cu->MemFree(XP);
    if (PART) cu->MemFree(PART);
    return res;
}

/* cuBLAS f16 GEMM with n = rows over rotating copies of W [N, K] f16. */
static result run_cublas_f16(const qrt_cublas_api *cb, int K, int N, const uint16_t *w16, const uint16_t *x16,
                             int rows, int quick) {
    result res = {0, 0, 0, 0, 0, 0};
    qrt_cublas_handle h;
    if (cb->Create(&h) || cb->SetStream(h, stream)) {
        res.us = -1;
        return res;
    }
    size_t wbytes = (size_t)N * K * 2, stride = (wbytes + 255) / 256 * 256;
    int copies = (int)((quick ? (64u << 20) : (320u << 20)) / stride) + 1;
    if (copies < 2) copies = 2;
    if (hot) copies = 1;
    qrt_cu_ptr W, X, Y;
    CHECK(cu->MemAlloc(&W, stride * copies));
    CHECK(cu->MemAlloc(&X, (size_t)K * 2 * rows));
    CHECK(cu->MemAlloc(&Y, (size_t)N * 4 * rows));
    for (int c = 0; c < copies; c++) CHECK(cu->MemcpyHtoD(W + stride * c, w16, wbytes));
    CHECK(cu->MemcpyHtoD(X, x16, (size_t)K * 2 * rows));
    const float one = 1.0f, zero = 0.0f;
    qrt_cu_graph g;
    qrt_cu_graph_exec ge;
    /* warm-up outside the capture (cuBLAS picks and loads its kernels) */
    int st = cb->GemmEx(h, QRT_CUBLAS_OP_T, QRT_CUBLAS_OP_N, N, rows, K, &one, (const void *)W, QRT_CUDA_R_16F, K,
                        (const void *)X, QRT_CUDA_R_16F, K, &zero, (void *)Y, QRT_CUDA_R_32F, N,
                        QRT_CUBLAS_COMPUTE_32F, QRT_CUBLAS_GEMM_DEFAULT);
    CHECK(cu->StreamSynchronize(stream));
    if (st) {
        res.us = -1;
        cb->Destroy(h);
        return res;
    }
    CHECK(cu->StreamBeginCapture(stream, 2));
    for (int i = 0; i < ITER; i++)
        st |= cb->GemmEx(h, QRT_CUBLAS_OP_T, QRT_CUBLAS_OP_N, N, rows, K, &one,
                         (const void *)(W + stride * (i % copies)), QRT_CUDA_R_16F, K, (const void *)X,
                         QRT_CUDA_R_16F, K, &zero, (void *)Y, QRT_CUDA_R_32F, N, QRT_CUBLAS_COMPUTE_32F,
                         QRT_CUBLAS_GEMM_DEFAULT);
    CHECK(cu->StreamEndCapture(stream, &g));
    CHECK(cu->GraphInstantiateWithFlags(&ge, g, 0));
    float ms = time_graph(ge, quick ? 5 : 20);
    res.us = st ? -1 : ms * 1e3 / ITER;
    res.gbs = (double)(wbytes + (size_t)(K + N) * 2 * rows) / (res.us * 1e-6) / 1e9;
    cu->GraphExecDestroy(ge);
    cu->GraphDestroy(g);
    cu->MemFree(W);
    cu->MemFree(X);
    cu->MemFree(Y);
    cb->Destroy(h);
    return res;
}

static int parse_list(const char *s, int *out, int max) {
    int n = 0;
    while (*s && n < max) {
        out[n++] = atoi(s);
        const char *c = strchr(s, ',');
        if (!c) break;
        s = c + 1;
    }
    return n;
}

/* Targets of the issue (docs/performance.md): batch-1 us at 14336 x 4096. */
static const struct {
    const char *fmt;
    double us;
} targets[] = {{"q4 g128", 12.5}, {"q3 g128", 10.0}, {"q2 g64", 8.0}, {"q8 g128", 24.0}, {"f16", 41.0}};

int main(int argc, char **argv) {
    int no_pdl = 0;
    int warps = 0, loads = 0, fast = 0, xs = 0, variants = 0, quick = 0, only = -1, vl[8], nvl = 0;
    int shl[NS], nsh = NS, bl[4] = {1, 2, 4, 8}, nb = 4;
    for (int i = 0; i < NS; i++) shl[i] = i;
    const char *dump = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--warps") && i + 1 < argc) warps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--loads") && i + 1 < argc) loads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--fast") && i + 1 < argc) fast = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--xs") && i + 1 < argc) xs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--variants")) variants = 1;
        else if (!strcmp(argv[i], "--vlist") && i + 1 < argc) variants = 1, nvl = parse_list(argv[++i], vl, 8);
        else if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--no-pdl")) no_pdl = 1;
        else if (!strcmp(argv[i], "--hot")) hot = 1;
        else if (!strcmp(argv[i], "--fused-rows") && i + 1 < argc) fused_rows = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--waves") && i + 1 < argc) waves = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--dump") && i + 1 < argc) dump = argv[++i];
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--shapes") && i + 1 < argc) nsh = parse_list(argv[++i], shl, NS);
        else if (!strcmp(argv[i], "--batches") && i + 1 < argc) nb = parse_list(argv[++i], bl, 4);
        else {
            fprintf(stderr, "usage: gemv_bench [--variants | --vlist i,j,..] [--quick] [--no-pdl] [--hot] [--waves N] [--warps W] [--loads L] [--fast 0|1|2]\n"
                            "                  [--xs F] [--shapes i,j,..] [--batches 1,2,4,8] [--only V] [--dump DIR] [--fused-rows N]\n");
            return 2;
        }
    }
    if (waves < 1 || waves > 16) {
        fprintf(stderr, "gemv_bench: --waves %d: expected 1 to 16\n", waves);
        return 2;
    }
    for (int i = 0; i < nsh; i++)
        if (shl[i] < 0 || shl[i] >= NS) return 2;
    for (int i = 0; i < nb; i++)
        if (bl[i] < 1 || bl[i] > MAXB) return 2;
    char why[256];
    int nodev = 0;
    if (!(cu = qrt_cu_load(why, sizeof why, &nodev))) {
        fprintf(stderr, "gemv_bench: %s\n", why);
        return nodev ? 77 : 1;
    }
    if (!qc_nvrtc_available(why, sizeof why)) {
        fprintf(stderr, "gemv_bench: %s\n", why);
        return 1;
    }
    qrt_cu_device dev;
    qrt_cu_context ctx;
    int major, minor;
    char name[128];
    CHECK(cu->DeviceGet(&dev, 0));
    CHECK(cu->DeviceGetAttribute(&major, QRT_CU_ATTR_CC_MAJOR, dev));
    CHECK(cu->DeviceGetAttribute(&minor, QRT_CU_ATTR_CC_MINOR, dev));
    CHECK(cu->DeviceGetAttribute(&sms, QRT_CU_ATTR_MULTIPROCESSOR_COUNT, dev));
    CHECK(cu->DeviceGetAttribute(&smem_optin, QRT_CU_ATTR_SMEM_OPTIN, dev));
    CHECK(cu->DeviceGetName(name, sizeof name, dev));
    CHECK(cu->DevicePrimaryCtxRetain(&ctx, dev));
    CHECK(cu->CtxSetCurrent(ctx));
    CHECK(cu->StreamCreate(&stream, 1));
    int cc = 10 * major + minor;
    pdl = cc >= 90 && cu->LaunchKernelEx && !no_pdl;
    double copy = copy_bandwidth();
    printf("device: %s (sm_%d, %d SMs), NVRTC %s\n", name, cc, sms, qc_nvrtc_version());
    printf("device-to-device copy (1 GiB, read + write): %.0f GB/s\n", copy);

    qc_cuda_linear lin[NS * NF];
    int nl = 0;
    for (int s = 0; s < nsh; s++)
        for (int f = 0; f < NF; f++)
            lin[nl++] = (qc_cuda_linear){fmts[f].dt, shapes[shl[s]][0], shapes[shl[s]][1], fmts[f].group, 0};

    /* warps, loads, fast, no prefetch, xs; the first is the default (or the command line's) */
    static const struct {
        int warps, loads, fast, nopipe, xs, trace;
        const char *label, *defs;
    } more[] = {{0, 0, 0, 0, 0, 1, "trace (phase timestamps, batch 1)", NULL},
                {0, 0, 2, 0, 0, 0, "old float GEMV (fast 2)", NULL},
                {0, 0, 1, 0, 0, 0, "magic unpacking (fast 1)", NULL},
                {0, 16, 0, 0, 0, 0, "16 loads in flight", NULL},
                {12, 16, 0, 0, 0, 0, "12 warps, 16 loads", NULL},
                {20, 0, 0, 0, 0, 0, "20 warps", NULL},
                {8, 0, 0, 0, 0, 0, "8 warps", NULL},
                /* 8-10: fewer warps a block for every GEMV, 128 registers a thread (qcc --gemv-warps) */
                {8, 0, 0, 0, 0, 0, "8 warps, 2 blocks an SM", "#define QK_GEMV_MINB 2\n"},
                {4, 0, 0, 0, 0, 0, "4 warps, 4 blocks an SM", "#define QK_GEMV_MINB 4\n"},
                {4, 16, 0, 0, 0, 0, "4 warps, 4 blocks an SM, 16 loads", "#define QK_GEMV_MINB 4\n"}};
    variant vs[16];
    int nv = 0;
    memset(vs, 0, sizeof vs);
    vs[nv].warps = warps, vs[nv].loads = loads, vs[nv].fast = fast, vs[nv].xs = xs;
    vs[nv++].label = "default";
    if (variants)
        for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) {
            int pick = !nvl;
            for (int j = 0; j < nvl; j++) pick |= vl[j] == (int)i + 1;
            if (!pick) continue;
            vs[nv].warps = more[i].warps, vs[nv].loads = more[i].loads, vs[nv].fast = more[i].fast;
            vs[nv].nopipe = more[i].nopipe, vs[nv].xs = more[i].xs, vs[nv].trace = more[i].trace;
            vs[nv].defs = more[i].defs;
            vs[nv++].label = more[i].label;
        }
    pthread_t th[16];
    for (int v = 0; v < nv; v++) {
        vs[v].lin = lin, vs[v].nl = nl, vs[v].cc = cc;
        if (only >= 0 && v != only) continue;
        if (pthread_create(&th[v], NULL, build_variant, &vs[v])) return 1;
    }
    for (int v = 0; v < nv; v++) {
        if (only >= 0 && v != only) continue;
        pthread_join(th[v], NULL);
        CHECK(cu->ModuleLoadData(&vs[v].mod, vs[v].b.images[0].data));
        if (dump) { /* the cubin, for cuobjdump -sass */
            char path[512];
            snprintf(path, sizeof path, "%s/variant%d.cubin", dump, v);
            FILE *f = fopen(path, "wb");
            if (f) fwrite(vs[v].b.images[0].data, 1, vs[v].b.images[0].size, f), fclose(f);
        }
        qc_cuda_build_free(&vs[v].b);
    }
    for (int v = 0; v < nv; v++)
        if (only < 0 || v == only)
            printf("variant %d: %s (warps %d, loads %d, fast %d, xs %d)\n", v, vs[v].label, vs[v].shape.gemv_warps,
                   vs[v].shape.gemv_loads, vs[v].shape.gemv_fast, vs[v].shape.gemv_xs);

    const qrt_cublas_api *cb = qrt_cublas_load();
    printf("\nus: launched as runtime/cuda.c launches (%s); no PDL: plain launches\n",
           pdl ? "programmatic dependent launch" : "plain: no PDL on this device");
    printf("\n| K x N | format | rows | variant | us | GB/s | %% of copy | x cuBLAS f16 | rel. err vs CPU | grid (blocks/SM) | "
           "us no PDL |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
    int bad = 0;
    double at14[NF][4]; /* default kernel, 14336 x 4096, per format and batch */
    double q4_11008 = 0, cub_11008 = 0;
    for (int f = 0; f < NF; f++)
        for (int b = 0; b < 4; b++) at14[f][b] = 0;
    double cublas_us[NS][4];
    for (int s = 0; s < nsh; s++) {
        int K = shapes[shl[s]][0], N = shapes[shl[s]][1];
        float *x = malloc((size_t)K * 4 * MAXB), *ref = malloc((size_t)N * 4 * MAXB);
        for (size_t k = 0; k < (size_t)K * MAXB; k++) x[k] = rndf();
        /* cuBLAS first: the speedup column needs it */
        for (int b = 0; b < 4; b++) cublas_us[s][b] = -1;
        if (cb) {
            size_t n = (size_t)N * K;
            uint16_t *w16 = malloc(n * 2), *x16 = malloc((size_t)K * 2 * MAXB);
            for (size_t i = 0; i < n; i++) w16[i] = f2h_signed(0.05f * rndf());
            for (size_t k = 0; k < (size_t)K * MAXB; k++) x16[k] = f2h_signed(x[k]);
            for (int bi = 0; bi < nb; bi++) {
                result r = run_cublas_f16(cb, K, N, w16, x16, bl[bi], quick);
                cublas_us[s][bi] = r.us;
                if (r.us > 0)
                    printf("| %d x %d | f16 cuBLAS | %d | GemmEx | %.2f | %.0f | %.1f | 1.00 | - | - | %.2f |\n", K, N,
                           bl[bi], r.us, r.gbs, 100.0 * r.gbs / copy, r.us);
                else
                    printf("| %d x %d | f16 cuBLAS | %d | GemmEx | failed | | | | | | |\n", K, N, bl[bi]);
            }
            free(w16);
            free(x16);
        }
        for (int f = 0; f < NF; f++) {
            int dt = fmts[f].dt;
            uint8_t *w;
            size_t wbytes;
            qrt_qlayout l;
            memset(&l, 0, sizeof l);
            if (dt == QRT_DT_I8) { /* docs/formats.md: int8 [N, Kp] in [-127, 127], f32 scales [N] */
                size_t Kp = ((size_t)K + 31) / 32 * 32;
                wbytes = (size_t)N * Kp + ((size_t)4 * N + 15) / 16 * 16;
                w = calloc(1, wbytes);
                for (size_t i = 0; i < (size_t)N * Kp; i++) w[i] = (uint8_t)(int8_t)(rnd() % 255 - 127);
                for (int n = 0; n < N; n++) {
                    float sw = 0.05f / 127.0f * (0.5f + 0.5f * (float)(rnd() & 1023) / 1024.0f);
                    memcpy(w + (size_t)N * Kp + 4 * (size_t)n, &sw, 4);
                }
            } else if (qrt_qdtype_bits(dt)) {
                qrt_qlayout_init(&l, dt, N, K, fmts[f].group, 0);
                wbytes = l.size;
                w = calloc(1, wbytes);
                fill_packed(w, &l);
            } else { /* f16 in [-0.05, 0.05] */
                wbytes = (size_t)N * K * 2;
                w = malloc(wbytes);
                uint16_t *h = (uint16_t *)w;
                for (size_t i = 0; i < (size_t)N * K; i++) h[i] = f2h_signed(0.05f * rndf());
            }
            reference(dt, w, &l, x, ref, K, N);
            for (int v = 0; v < nv; v++) {
                if (only >= 0 && v != only) continue;
                for (int bi = 0; bi < nb; bi++) {
                    if (v > 0 && bl[bi] != 1) continue; /* variants: batch 1 only */
                    if (vs[v].trace && bl[bi] != 1) continue;
                    /* packed weights from fused_rows rows: the fused GEMM, as the runtime launches it (f16 x:
                     * the tolerance of test_cuda_kernels' fused cases) */
                    double tol = 1e-5;
                    result r = v == 0 ? run_fused(&vs[v], dt, K, N, fmts[f].group, w, wbytes, x, ref, bl[bi], quick)
                                      : (result){-1, 0, 0, 0, 0, 0};
                    if (r.us >= 0) tol = 5e-3;
                    else r = run_gemv(&vs[v], dt, K, N, fmts[f].group, w, wbytes, x, ref, bl[bi], quick);
                    if (r.us < 0) continue; /* trace: printed above */
                    double cub = cublas_us[s][bi];
                    char sp[32] = "-";
                    if (cub > 0) snprintf(sp, sizeof sp, "%.2f", cub / r.us);
                    printf("| %d x %d | %s | %d | %d | %.2f | %.0f | %.1f | %s | %.1e | %d (%d) | %.2f |\n", K, N,
                           fmts[f].name, bl[bi], v, r.us, r.gbs, 100.0 * r.gbs / copy, sp, r.err, r.grid, r.occ,
                           r.us_plain);
                    fflush(stdout);
                    if (!(r.err < tol)) bad = 1;
                    if (v == 0 && K == 14336 && N == 4096) at14[f][bi] = r.us;
                    if (v == 0 && K == 4096 && N == 11008 && dt == QRT_DT_Q4 && bl[bi] == 1)
                        q4_11008 = r.us, cub_11008 = cub;
                }
            }
            free(w);
        }
        free(x);
        free(ref);
    }
    if (!cb) printf("(cuBLAS not found: no f16 reference rows)\n");
    /* the targets, batch 1 */
    int have = 0;
    for (int bi = 0; bi < nb; bi++) have |= bl[bi] == 1;
    for (int s = 0; s < nsh && have; s++)
        if (shapes[shl[s]][0] == 14336 && shapes[shl[s]][1] == 4096) {
            int b1 = 0;
            while (bl[b1] != 1) b1++;
            printf("\ntargets (14336 x 4096, 1 row, default kernel):");
            for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++)
                for (int f = 0; f < NF; f++)
                    if (!strcmp(fmts[f].name, targets[t].fmt))
                        printf(" %s %.2f us (<= %.1f: %s);", targets[t].fmt, at14[f][b1], targets[t].us,
                               at14[f][b1] <= targets[t].us ? "met" : "MISSED");
            printf(" q3 < q4: %s\n", at14[1][b1] < at14[0][b1] ? "yes" : "NO");
        }
    if (q4_11008 > 0 && cub_11008 > 0)
        printf("target 4096 x 11008 q4 >= 3.5x cuBLAS f16: %.2fx (%s)\n", cub_11008 / q4_11008,
               cub_11008 / q4_11008 >= 3.5 ? "met" : "MISSED");
    if (bad) fprintf(stderr, "gemv_bench: a kernel disagrees with the CPU reference (rel. err >= 1e-5)\n");
    return bad;
}
