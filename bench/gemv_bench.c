/*
 * bench/gemv_bench.c — batch-1 GEMV on the GPU: microseconds, achieved
 * GB/s and the fraction of the device-to-device copy bandwidth measured in
 * the same run (bench/gpu.sh runs it; results in docs/performance.md).
 *
 * For each shape K x N (inputs x outputs) and format it builds the same
 * specialized kernel qcc would (codegen/cuda, NVRTC for this device's SM),
 * fills enough copies of a random weight to overflow the L2 cache (every
 * timed launch reads a copy the previous launches did not touch), checks
 * the result against the CPU reference (runtime/qlinear.c) and times a
 * CUDA graph of back-to-back launches with device events.
 *
 * Bytes counted: the whole packed weight (codes, scales, zero points) plus
 * x and y once. Copy bandwidth: cuMemcpyDtoD of 1 GiB, bytes read plus
 * bytes written. f16 rows: cuBLAS (cublasGemmEx, n = 1) when libcublas is
 * there, and qcc's own f16 GEMV.
 *
 *   gemv_bench [--warps W] [--loads L] [--fast 0|1] [--variants] [--quick]
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc/cuda.h"
#include "qrt_cuda.h"

static const qrt_cu_api *cu;
static qrt_cu_stream stream;

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

typedef struct variant {
    int warps, loads, fast, nopipe, minb;
    qrt_cu_module mod;
    qrt_cuda_blob shape; /* only the gemv_* fields are used */
    const qc_cuda_linear *lin;
    int nl, cc;
    qc_cuda_build b;     /* compiled on a thread of its own, loaded after */
} variant;

static const char *dt_str(int dt) {
    static const char *const n[] = {"f32", "f16", "bf16", "q2", "q3", "q4", "q8"};
    return n[dt];
}

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
    o.gemv_minb = v->minb;
    qc_cuda_module m;
    if (qc_cuda_module_init(&m, v->lin, v->nl, 0, &o, &err) || qc_cuda_compile(&m, &o, NULL, &v->b, &err)) {
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

typedef struct result {
    double us, gbs;
    double err;
    int grid, occ, regs;
} result;

/* Times GEMV `name` of `mod` over `copies` weight copies. */
static result run_gemv(qrt_cu_module mod, const qrt_cuda_blob *shape, int dt, int K, int N, const uint8_t *host_w,
                       size_t wbytes, const float *x, const float *ref, int quick) {
    result res = {0, 0, 0, 0, 0, 0};
    qc_cuda_linear l = {dt, K, N, qrt_qdtype_bits(dt) ? 128 : 0, 0};
    char name[128];
    qc_cuda_gemv_name(name, sizeof name, &l, 1);
    qrt_cu_function f;
    CHECK(cu->ModuleGetFunction(&f, mod, name));
    qrt_gemv_shape sh = qrt_gemv_shape_of(shape, dt, K, 1);
    if (sh.smem > 48 * 1024) CHECK(cu->FuncSetAttribute(f, QRT_CU_FUNC_ATTR_MAX_DYN_SMEM, (int)sh.smem));
    size_t stride = (wbytes + 255) / 256 * 256;
    int copies = (int)((quick ? (64u << 20) : (320u << 20)) / stride) + 1;
    if (copies < 2) copies = 2;
    qrt_cu_ptr W, X, Y;
    CHECK(cu->MemAlloc(&W, stride * copies));
    CHECK(cu->MemAlloc(&X, (size_t)K * 4));
    CHECK(cu->MemAlloc(&Y, (size_t)N * 4));
    for (int c = 0; c < copies; c++) CHECK(cu->MemcpyHtoD(W + stride * c, host_w, wbytes));
    CHECK(cu->MemcpyHtoD(X, x, (size_t)K * 4));
    int occ = 0, sms = 0;
    qrt_cu_device dev;
    CHECK(cu->DeviceGet(&dev, 0));
    CHECK(cu->DeviceGetAttribute(&sms, QRT_CU_ATTR_MULTIPROCESSOR_COUNT, dev));
    CHECK(cu->OccupancyMaxActiveBlocksPerMultiprocessor(&occ, f, sh.threads, sh.smem));
    unsigned grid = qrt_gemv_grid(&sh, K, N, occ * sms);
    res.grid = (int)grid;
    res.occ = occ;
    qrt_cu_ptr bias = 0;
    int rows = 1, sv = sh.sv;
    /* correctness: poison y, run once, compare */
    float *y = malloc((size_t)N * 4);
    CHECK(cu->MemsetD8(Y, 0xff, (size_t)N * 4));
    qrt_cu_ptr w0 = W;
    void *args[] = {&w0, &bias, &X, &Y, &rows, &sv};
    CHECK(cu->LaunchKernel(f, grid, 1, 1, (unsigned)sh.threads, 1, 1, (unsigned)sh.smem, stream, args, NULL));
    CHECK(cu->StreamSynchronize(stream));
    CHECK(cu->MemcpyDtoH(y, Y, (size_t)N * 4));
    double num = 0, den = 0;
    for (int n = 0; n < N; n++) {
        double d = (double)y[n] - ref[n];
        num += d * d;
        den += (double)ref[n] * ref[n];
    }
    res.err = isfinite(num) ? sqrt(num / (den > 0 ? den : 1)) : 1e30;
    free(y);
    /* timing: a graph of ITER launches cycling through the copies */
    enum { ITER = 64 };
    qrt_cu_ptr wp[ITER];
    void *argv[ITER][6];
    for (int i = 0; i < ITER; i++) {
        wp[i] = W + stride * (i % copies);
        argv[i][0] = &wp[i], argv[i][1] = &bias, argv[i][2] = &X, argv[i][3] = &Y, argv[i][4] = &rows;
        argv[i][5] = &sv;
    }
    qrt_cu_graph g;
    qrt_cu_graph_exec ge;
    CHECK(cu->StreamBeginCapture(stream, 2));
    for (int i = 0; i < ITER; i++)
        CHECK(cu->LaunchKernel(f, grid, 1, 1, (unsigned)sh.threads, 1, 1, (unsigned)sh.smem, stream, argv[i], NULL));
    CHECK(cu->StreamEndCapture(stream, &g));
    CHECK(cu->GraphInstantiateWithFlags(&ge, g, 0));
    float ms = time_graph(ge, quick ? 5 : 20);
    res.us = ms * 1e3 / ITER;
    res.gbs = (double)(wbytes + (size_t)K * 4 + (size_t)N * 4) / (res.us * 1e-6) / 1e9;
    cu->GraphExecDestroy(ge);
    cu->GraphDestroy(g);
    cu->MemFree(W);
    cu->MemFree(X);
    cu->MemFree(Y);
    return res;
}

/* cuBLAS f16 GEMV (n = 1) over rotating copies of W [N, K] f16. */
static result run_cublas_f16(const qrt_cublas_api *cb, int K, int N, const uint16_t *w16, const uint16_t *x16,
                             int quick) {
    result res = {0, 0, 0, 0, 0, 0};
    qrt_cublas_handle h;
    if (cb->Create(&h) || cb->SetStream(h, stream)) {
        res.us = -1;
        return res;
    }
    size_t wbytes = (size_t)N * K * 2, stride = (wbytes + 255) / 256 * 256;
    int copies = (int)((quick ? (64u << 20) : (320u << 20)) / stride) + 1;
    if (copies < 2) copies = 2;
    qrt_cu_ptr W, X, Y;
    CHECK(cu->MemAlloc(&W, stride * copies));
    CHECK(cu->MemAlloc(&X, (size_t)K * 2));
    CHECK(cu->MemAlloc(&Y, (size_t)N * 4));
    for (int c = 0; c < copies; c++) CHECK(cu->MemcpyHtoD(W + stride * c, w16, wbytes));
    CHECK(cu->MemcpyHtoD(X, x16, (size_t)K * 2));
    const float one = 1.0f, zero = 0.0f;
    enum { ITER = 64 };
    qrt_cu_graph g;
    qrt_cu_graph_exec ge;
    /* warm-up outside the capture (cuBLAS picks and loads its kernels) */
    int st = cb->GemmEx(h, QRT_CUBLAS_OP_T, QRT_CUBLAS_OP_N, N, 1, K, &one, (const void *)W, QRT_CUDA_R_16F, K,
                        (const void *)X, QRT_CUDA_R_16F, K, &zero, (void *)Y, QRT_CUDA_R_32F, N,
                        QRT_CUBLAS_COMPUTE_32F, QRT_CUBLAS_GEMM_DEFAULT);
    CHECK(cu->StreamSynchronize(stream));
    if (st) {
        res.us = -1;
        return res;
    }
    CHECK(cu->StreamBeginCapture(stream, 2));
    for (int i = 0; i < ITER; i++)
        st |= cb->GemmEx(h, QRT_CUBLAS_OP_T, QRT_CUBLAS_OP_N, N, 1, K, &one, (const void *)(W + stride * (i % copies)),
                         QRT_CUDA_R_16F, K, (const void *)X, QRT_CUDA_R_16F, K, &zero, (void *)Y, QRT_CUDA_R_32F, N,
                         QRT_CUBLAS_COMPUTE_32F, QRT_CUBLAS_GEMM_DEFAULT);
    CHECK(cu->StreamEndCapture(stream, &g));
    CHECK(cu->GraphInstantiateWithFlags(&ge, g, 0));
    float ms = time_graph(ge, quick ? 5 : 20);
    res.us = st ? -1 : ms * 1e3 / ITER;
    res.gbs = (double)(wbytes + (size_t)K * 2 + (size_t)N * 4) / (res.us * 1e-6) / 1e9;
    cu->GraphExecDestroy(ge);
    cu->GraphDestroy(g);
    cu->MemFree(W);
    cu->MemFree(X);
    cu->MemFree(Y);
    cb->Destroy(h);
    return res;
}

int main(int argc, char **argv) {
    int warps = 0, loads = 0, fast = 0, variants = 0, quick = 0;
    const char *dump = NULL;
    int only = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--warps") && i + 1 < argc) warps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--loads") && i + 1 < argc) loads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--fast") && i + 1 < argc) fast = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--variants")) variants = 1;
        else if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--dump") && i + 1 < argc) dump = argv[++i];
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: gemv_bench [--warps W] [--loads L] [--fast 0|1] [--variants] [--quick] [--dump DIR]\n");
            return 2;
        }
    }
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
    int major, minor, sms;
    char name[128];
    CHECK(cu->DeviceGet(&dev, 0));
    CHECK(cu->DeviceGetAttribute(&major, QRT_CU_ATTR_CC_MAJOR, dev));
    CHECK(cu->DeviceGetAttribute(&minor, QRT_CU_ATTR_CC_MINOR, dev));
    CHECK(cu->DeviceGetAttribute(&sms, QRT_CU_ATTR_MULTIPROCESSOR_COUNT, dev));
    CHECK(cu->DeviceGetName(name, sizeof name, dev));
    CHECK(cu->DevicePrimaryCtxRetain(&ctx, dev));
    CHECK(cu->CtxSetCurrent(ctx));
    CHECK(cu->StreamCreate(&stream, 1));
    int cc = 10 * major + minor;
    double copy = copy_bandwidth();
    printf("device: %s (sm_%d, %d SMs), NVRTC %s\n", name, cc, sms, qc_nvrtc_version());
    printf("device-to-device copy (1 GiB, read + write): %.0f GB/s\n", copy);

    static const int shapes[][2] = {{14336, 4096}, {4096, 11008}};
    static const int dts[] = {QRT_DT_Q4, QRT_DT_Q3, QRT_DT_Q2, QRT_DT_Q8, QRT_DT_F16};
    enum { NS = 2, ND = 5 };
    qc_cuda_linear lin[NS * ND];
    int nl = 0;
    for (int s = 0; s < NS; s++)
        for (int d = 0; d < ND; d++)
            lin[nl++] = (qc_cuda_linear){dts[d], shapes[s][0], shapes[s][1], qrt_qdtype_bits(dts[d]) ? 128 : 0, 0};

    variant vs[8];
    int nv = 0;
    memset(vs, 0, sizeof vs);
    vs[nv].warps = warps, vs[nv].loads = loads, vs[nv++].fast = fast;
    if (variants) {
        /* warps, loads, fast, no prefetch, min blocks per SM */
        static const int more[][5] = {{8, 8, 0, 1, 1}, {8, 8, 0, 0, 3}, {8, 8, 1, 1, 1},
                                      {4, 8, 0, 1, 6}, {8, 4, 0, 1, 3}, {16, 8, 0, 0, 1}, {8, 8, 1, 0, 1}};
        for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) {
            vs[nv].warps = more[i][0], vs[nv].loads = more[i][1], vs[nv].fast = more[i][2];
            vs[nv].nopipe = more[i][3], vs[nv++].minb = more[i][4];
        }
    }
    pthread_t th[8];
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

    const qrt_cublas_api *cb = qrt_cublas_load();
    printf("\n| K x N | format | variant (warps/loads/fast/nopipe/minb) | us | GB/s | %% of copy | rel. err vs CPU | grid (blocks/SM) |\n");
    printf("|---|---|---|---|---|---|---|---|\n");
    int bad = 0;
    for (int s = 0; s < NS; s++) {
        int K = shapes[s][0], N = shapes[s][1];
        float *x = malloc((size_t)K * 4), *ref = malloc((size_t)N * 4);
        for (int k = 0; k < K; k++) x[k] = rndf();
        for (int d = 0; d < ND; d++) {
            int dt = dts[d];
            uint8_t *w;
            size_t wbytes;
            qrt_qlayout l;
            if (qrt_qdtype_bits(dt)) {
                qrt_qlayout_init(&l, dt, N, K, 128, 0);
                wbytes = l.size;
                w = calloc(1, wbytes);
                fill_packed(w, &l);
                float *scratch = malloc(qrt_qgemv_scratch(&l) * 4);
                qrt_qgemv(w, &l, x, ref, scratch, 0);
                free(scratch);
            } else { /* f16 in [-0.05, 0.05] */
                wbytes = (size_t)N * K * 2;
                w = malloc(wbytes);
                uint16_t *h = (uint16_t *)w;
                for (size_t i = 0; i < (size_t)N * K; i++) {
                    float f = 0.05f * rndf();
                    uint16_t m = f2h(fabsf(f) < 1e-4f ? 1e-4f : fabsf(f));
                    h[i] = f < 0 ? (uint16_t)(m | 0x8000) : m;
                }
                for (int n = 0; n < N; n++) {
                    double acc = 0;
                    for (int k = 0; k < K; k++) acc += (double)qrt_f16_to_f32(h[(size_t)n * K + k]) * x[k];
                    ref[n] = (float)acc;
                }
            }
            for (int v = 0; v < nv; v++) {
                if (only >= 0 && v != only) continue;
                result r = run_gemv(vs[v].mod, &vs[v].shape, dt, K, N, w, wbytes, x, ref, quick);
                printf("| %d x %d | %s%s | %d/%d/%d/%d/%d | %.2f | %.0f | %.1f | %.1e | %d (%d) |\n", K, N, dt_str(dt),
                       qrt_qdtype_bits(dt) ? " g128" : "", vs[v].shape.gemv_warps, vs[v].shape.gemv_loads,
                       vs[v].shape.gemv_fast, vs[v].nopipe, vs[v].minb ? vs[v].minb : 1, r.us, r.gbs,
                       100.0 * r.gbs / copy, r.err, r.grid, r.occ);
                if (!(r.err < 1e-4)) bad = 1;
            }
            if (dt == QRT_DT_F16 && cb) {
                uint16_t *x16 = malloc((size_t)K * 2);
                for (int k = 0; k < K; k++) {
                    float f = x[k];
                    uint16_t m = f2h(fabsf(f) < 1e-4f ? 1e-4f : fabsf(f));
                    x16[k] = f < 0 ? (uint16_t)(m | 0x8000) : m;
                }
                result r = run_cublas_f16(cb, K, N, (const uint16_t *)w, x16, quick);
                if (r.us > 0)
                    printf("| %d x %d | f16 | cuBLAS GemmEx | %.2f | %.0f | %.1f | - | - |\n", K, N, r.us, r.gbs,
                           100.0 * r.gbs / copy);
                else
                    printf("| %d x %d | f16 | cuBLAS GemmEx | failed | | | | |\n", K, N);
                free(x16);
            }
            free(w);
        }
        free(x);
        free(ref);
    }
    if (!cb) printf("(cuBLAS not found: no f16 reference row)\n");
    if (bad) fprintf(stderr, "gemv_bench: a kernel disagrees with the CPU reference (rel. err >= 1e-4)\n");
    return bad;
}
