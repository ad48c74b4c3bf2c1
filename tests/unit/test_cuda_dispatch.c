/*
 * tests/unit/test_cuda_dispatch.c — runtime/cuda.c's choice of kernels, on
 * a fake driver (no GPU needed: label unit, runs in CI).
 *
 * The fake driver (qrt_cu_use) keeps "device memory" in host memory, knows
 * the kernels the module names, and records every launch instead of running
 * it: the kernel's name and, for the kernels checked here, its arguments.
 * A one-layer Llama-shaped model calls the qrt_k_* entry points in the order
 * the generated host code does. Checked: which kernels the runtime launches
 * and which buffers each reads and writes, for one decode step
 *   --no-fuse-norm --no-fuse-rope
 *                 RMSNorm; q/k/v merged; RoPE + append; attention; o;
 *                 residual add + RMSNorm; gate/up merged; SiLU + down;
 *                 residual add + final RMSNorm; LM head
 *   default       each RMSNorm inside the merged q/k/v and gate/up GEMVs
 *                 (input: the residual stream, output still written), the
 *                 RoPEs and the append inside the attention, each residual
 *                 add in the epilogue of the GEMV before it (o and SiLU +
 *                 down), the final RMSNorm on its own before the LM head;
 *                 an add into the GEMV's own input is not fused;
 * for a 4-token step (prefill: none of that fused in either mode, 4-row
 * GEMVs with nothing in their epilogue); decode steps through
 * qrt_ctx_forward (the first eager, the second captured into a graph with
 * the same kernels, the third a replay); a launch that fails (one error
 * line naming the driver call); the attention's 8 splits as one thread
 * block cluster per head, launched again without when the driver refuses
 * clusters. With 4-bit weights, 3-bit ones (each
 * repacked once into the device layout, before the first GEMV that reads
 * it) and W8A8 (each linear: qk_i8_quant into the context's int8 scratch,
 * qk_gemv_i8_b1 from it; a linear wider than the scratch grows it and drops
 * the captured graph, which held the old address, so the next decode step
 * is captured again). The kernels themselves are checked on a GPU
 * (tests/gpu).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc/cuda.h"
#include "qrt_cuda.h"

#include "../qm_stubs.h" /* the model object's symbols: the test builds its qrt_model by hand */

static int fails;
#define CHECK(cond, ...)                                                                                     \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                                      \
            printf(__VA_ARGS__);                                                                             \
            printf("\n");                                                                                    \
            fails++;                                                                                         \
        }                                                                                                    \
    } while (0)

/* ---- the fake driver ---- */

enum { MAXLOG = 256, MAXARG = 16 };
static struct {
    char name[160];
    unsigned long long v[MAXARG]; /* arguments as signature() reads them (floats: their bits) */
    int nv;
    unsigned gy, cly; /* grid y; cluster y (0: no cluster) */
} launches[MAXLOG];
static int refuse_cluster; /* cuLaunchKernelEx refuses clusters (CUDA_ERROR_INVALID_VALUE), as an old driver */
static int n_launch, n_captured, n_graph_launch, capturing, n_upload;
static int fake_uva = 1;   /* kernels address pinned host memory (CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING) */
static int no_lookahead;   /* bring_up's qrt_cuda_opts.no_lookahead */
enum { FAKE_TOK = 37 };    /* the id the fake qk_topk picks first */
static const char *mod_names; /* the kernels the module has: NUL-separated, n_mod of them */
static int n_mod;
static const void *host_blob;
static qrt_cu_ptr dev_blob; /* where the runtime uploaded host_blob */

static qrt_cu_result f_ok0(void) { return 0; }
static qrt_cu_result f_init(unsigned f) { return (void)f, 0; }
static qrt_cu_result f_version(int *v) { return *v = 12080, 0; }
static qrt_cu_result f_count(int *n) { return *n = 1, 0; }
static qrt_cu_result f_dev(qrt_cu_device *d, int i) { return *d = i, 0; }
static qrt_cu_result f_attr(int *v, int a, qrt_cu_device d) {
    (void)d;
    *v = a == QRT_CU_ATTR_CC_MAJOR ? 9 : a == QRT_CU_ATTR_CC_MINOR ? 0 : a == QRT_CU_ATTR_MULTIPROCESSOR_COUNT ? 132
         : a == QRT_CU_ATTR_SMEM_OPTIN                              ? 232448
         : a == QRT_CU_ATTR_UNIFIED_ADDRESSING                      ? fake_uva
                                                                    : 0;
    return 0;
}
static qrt_cu_result f_name(char *s, int n, qrt_cu_device d) { return (void)d, snprintf(s, (size_t)n, "fake GPU"), 0; }
static qrt_cu_result f_total(size_t *b, qrt_cu_device d) { return (void)d, *b = (size_t)80 << 30, 0; }
static qrt_cu_result f_retain(qrt_cu_context *c, qrt_cu_device d) {
    return (void)d, *c = (qrt_cu_context)(uintptr_t)0x10, 0;
}
static qrt_cu_result f_release(qrt_cu_device d) { return (void)d, 0; }
static qrt_cu_result f_setcur(qrt_cu_context c) { return (void)c, 0; }
static qrt_cu_result f_screate(qrt_cu_stream *s, unsigned f) { return (void)f, *s = (qrt_cu_stream)(uintptr_t)0x20, 0; }
static qrt_cu_result f_sdestroy(qrt_cu_stream s) { return (void)s, 0; }
static qrt_cu_result f_ssync(qrt_cu_stream s) { return (void)s, 0; }
static qrt_cu_result f_mload(qrt_cu_module *m, const void *img) {
    return (void)img, *m = (qrt_cu_module)(uintptr_t)0x30, 0;
}
static qrt_cu_result f_munload(qrt_cu_module m) { return (void)m, 0; }
/* a function handle is 1 + the kernel's index in mod_names */
static qrt_cu_result f_getfn(qrt_cu_function *f, qrt_cu_module m, const char *name) {
    (void)m;
    const char *k = mod_names;
    for (int i = 0; i < n_mod; i++, k += strlen(k) + 1)
        if (!strcmp(k, name)) return *f = (qrt_cu_function)(uintptr_t)(i + 1), 0;
    return 500; /* CUDA_ERROR_NOT_FOUND */
}
static const char *fn_name(qrt_cu_function f) {
    const char *k = mod_names;
    for (int i = 1; i < (int)(uintptr_t)f; i++) k += strlen(k) + 1;
    return k;
}
static qrt_cu_result f_fattr(qrt_cu_function f, int a, int v) { return (void)f, (void)a, (void)v, 0; }
/* The argument kinds of the kernels this test looks into: p pointer, i int, f float (kernels.cu). */
static const char *signature(const char *name) {
    if (!strncmp(name, "qk_gemvmn_", 10)) return "ppppppppppiiipfp";
    if (!strncmp(name, "qk_gemvm_", 9)) return "ppppppppppiii";
    if (!strncmp(name, "qk_gemvs_", 9)) return "ppppppiip";
    if (!strncmp(name, "qk_gemvpn_", 10)) return "ppppppppiiipfp";
    if (!strncmp(name, "qk_gemvp_", 9)) return "ppppppppiii";
    if (!strncmp(name, "qk_gemv_", 8) && strstr(name, "_k")) return "ppppiip"; /* QK_GEMV_SPEC */
    if (!strncmp(name, "qk_rmsnorm_", 11)) return "pppif";
    if (!strncmp(name, "qk_add_rmsnorm_", 15)) return "pppppif";
    if (!strcmp(name, "qk_add")) return "pppi";
    if (!strcmp(name, "qk_repack_q3")) return "pii";
    if (!strcmp(name, "qk_i8_quant")) return "pppi";
    if (!strncmp(name, "qk_attn_rope_", 13)) return "pppppppppppiiiii";
    if (!strncmp(name, "qk_gemv_i8_b", 12)) return "pppppiii";
    if (!strcmp(name, "qk_topk")) return "piipppi";
    if (!strncmp(name, "qk_qgemm_q", 10)) return "ppppiiiii";
    return "";
}
static const char *fail_kernel; /* launches of this kernel fail (CUDA_ERROR_LAUNCH_FAILED) */
static qrt_cu_result record(qrt_cu_function f, void **args) {
    if (n_launch == MAXLOG) return 1;
    const char *name = fn_name(f), *sig = signature(name);
    if (fail_kernel && !strcmp(name, fail_kernel)) return 719;
    snprintf(launches[n_launch].name, sizeof launches[n_launch].name, "%s", name);
    int n = 0;
    for (; sig[n] && n < MAXARG; n++) {
        unsigned long long v = 0;
        if (sig[n] == 'p') memcpy(&v, args[n], 8);
        else memcpy(&v, args[n], 4);
        launches[n_launch].v[n] = v;
    }
    launches[n_launch++].nv = n;
    n_captured += capturing;
    if (!strcmp(name, "qk_topk")) { /* as the kernel: k candidates FAKE_TOK, FAKE_TOK + 1, ...; greedy: st */
        const unsigned long long *a = launches[n_launch - 1].v;
        float *val = (float *)(uintptr_t)a[3];
        int32_t *idx = (int32_t *)(uintptr_t)a[4], *st = (int32_t *)(uintptr_t)a[5], k = (int32_t)a[2];
        for (int32_t j = 0; j < k; j++) val[j] = 1.0f - (float)j, idx[j] = FAKE_TOK + j;
        if (st && k == 1) st[0] = 1, st[1] = (int32_t)a[6], st[4] = FAKE_TOK;
    }
    return 0;
}
static qrt_cu_result f_launch(qrt_cu_function f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                              unsigned bz, unsigned smem, qrt_cu_stream s, void **args, void **extra) {
    (void)gx, (void)gy, (void)gz, (void)bx, (void)by, (void)bz, (void)smem, (void)s, (void)extra;
    return record(f, args);
}
static qrt_cu_result f_launch_ex(const qrt_cu_launch_config *lc, qrt_cu_function f, void **args, void **extra) {
    (void)extra;
    unsigned cly = 0;
    for (unsigned i = 0; i < lc->nattrs; i++)
        if (lc->attrs[i].id == QRT_CU_LAUNCH_ATTR_CLUSTER_DIMENSION) {
            unsigned dim[3];
            memcpy(dim, lc->attrs[i].value.bytes, sizeof dim);
            if (refuse_cluster) return 1;
            cly = dim[0] == 1 && dim[2] == 1 ? dim[1] : 0;
        }
    qrt_cu_result r = record(f, args);
    if (r == 0) launches[n_launch - 1].gy = lc->grid_y, launches[n_launch - 1].cly = cly;
    return r;
}
static qrt_cu_result f_malloc(qrt_cu_ptr *p, size_t n) {
    void *h = calloc(1, n ? n : 1);
    *p = (qrt_cu_ptr)(uintptr_t)h;
    return h ? 0 : 2;
}
static qrt_cu_result f_free(qrt_cu_ptr p) { return free((void *)(uintptr_t)p), 0; }
static qrt_cu_result f_hmalloc(void **p, size_t n) { return (*p = calloc(1, n ? n : 1)) ? 0 : 2; }
static qrt_cu_result f_hfree(void *p) { return free(p), 0; }
static qrt_cu_result f_htod(qrt_cu_ptr d, const void *s, size_t n) {
    if (s == host_blob) dev_blob = d;
    memcpy((void *)(uintptr_t)d, s, n);
    return 0;
}
static qrt_cu_result f_dtoh(void *d, qrt_cu_ptr s, size_t n) { return memcpy(d, (const void *)(uintptr_t)s, n), 0; }
static qrt_cu_result f_dtod(qrt_cu_ptr d, qrt_cu_ptr s, size_t n) {
    return memmove((void *)(uintptr_t)d, (const void *)(uintptr_t)s, n), 0;
}
static qrt_cu_result f_htod_a(qrt_cu_ptr d, const void *s, size_t n, qrt_cu_stream st) {
    n_upload++;
    return (void)st, f_htod(d, s, n);
}
static qrt_cu_result f_dtoh_a(void *d, qrt_cu_ptr s, size_t n, qrt_cu_stream st) { return (void)st, f_dtoh(d, s, n); }
static qrt_cu_result f_memset(qrt_cu_ptr d, unsigned char v, size_t n) {
    return memset((void *)(uintptr_t)d, v, n), 0;
}
static qrt_cu_result f_meminfo(size_t *fr, size_t *tot) { return *fr = (size_t)60 << 30, *tot = (size_t)80 << 30, 0; }
static qrt_cu_result f_bcap(qrt_cu_stream s, int m) { return (void)s, (void)m, capturing = 1, 0; }
static qrt_cu_result f_ecap(qrt_cu_stream s, qrt_cu_graph *g) {
    return (void)s, capturing = 0, *g = (qrt_cu_graph)(uintptr_t)0x40, 0;
}
static qrt_cu_result f_ginst(qrt_cu_graph_exec *e, qrt_cu_graph g, unsigned long long f) {
    return (void)g, (void)f, *e = (qrt_cu_graph_exec)(uintptr_t)0x50, 0;
}
static qrt_cu_result f_glaunch(qrt_cu_graph_exec e, qrt_cu_stream s) { return (void)e, (void)s, n_graph_launch++, 0; }
static qrt_cu_result f_gdestroy(qrt_cu_graph g) { return (void)g, 0; }
static qrt_cu_result f_gedestroy(qrt_cu_graph_exec e) { return (void)e, 0; }
static qrt_cu_result f_ecreate(qrt_cu_event *e, unsigned f) { return (void)f, *e = (qrt_cu_event)(uintptr_t)0x60, 0; }
static qrt_cu_result f_edestroy(qrt_cu_event e) { return (void)e, 0; }
static qrt_cu_result f_erecord(qrt_cu_event e, qrt_cu_stream s) { return (void)e, (void)s, 0; }
static qrt_cu_result f_esync(qrt_cu_event e) { return (void)e, 0; }
static qrt_cu_result f_etime(float *ms, qrt_cu_event a, qrt_cu_event b) { return (void)a, (void)b, *ms = 1.0f, 0; }
static qrt_cu_result f_errstr(qrt_cu_result r, const char **s) { return (void)r, *s = "fake driver error", 0; }
static qrt_cu_result f_occ(int *n, qrt_cu_function f, int t, size_t smem) {
    return (void)f, (void)t, (void)smem, *n = 1, 0;
}

static const qrt_cu_api fake = {
    .Init = f_init, .DriverGetVersion = f_version, .DeviceGetCount = f_count, .DeviceGet = f_dev,
    .DeviceGetAttribute = f_attr, .DeviceGetName = f_name, .DeviceTotalMem = f_total,
    .DevicePrimaryCtxRetain = f_retain, .DevicePrimaryCtxRelease = f_release, .CtxSetCurrent = f_setcur,
    .CtxSynchronize = f_ok0, .StreamCreate = f_screate, .StreamDestroy = f_sdestroy, .StreamSynchronize = f_ssync,
    .ModuleLoadData = f_mload, .ModuleUnload = f_munload, .ModuleGetFunction = f_getfn, .FuncSetAttribute = f_fattr,
    .LaunchKernel = f_launch, .MemAlloc = f_malloc, .MemFree = f_free, .MemAllocHost = f_hmalloc,
    .MemFreeHost = f_hfree, .MemcpyHtoD = f_htod, .MemcpyDtoH = f_dtoh, .MemcpyDtoD = f_dtod,
    .MemcpyHtoDAsync = f_htod_a, .MemcpyDtoHAsync = f_dtoh_a, .MemsetD8 = f_memset, .MemGetInfo = f_meminfo,
    .StreamBeginCapture = f_bcap, .StreamEndCapture = f_ecap, .GraphInstantiateWithFlags = f_ginst,
    .GraphLaunch = f_glaunch, .GraphDestroy = f_gdestroy, .GraphExecDestroy = f_gedestroy, .EventCreate = f_ecreate,
    .EventDestroy = f_edestroy, .EventRecord = f_erecord, .EventSynchronize = f_esync, .EventElapsedTime = f_etime,
    .GetErrorString = f_errstr, .OccupancyMaxActiveBlocksPerMultiprocessor = f_occ, .LaunchKernelEx = f_launch_ex,
};

/* ---- the model: one Llama layer, 4-bit q/k/v/o/gate/up/down, f16 LM head, f32 norms ---- */

enum { D = 256, F = 512, HEADS = 4, KVH = 2, HD = 64, VOCAB = 64, NBUF = 13, NCTX = 512 }; /* 8 attention splits */
static int32_t WDT = QRT_DT_Q4; /* the linears' format: 4 bits, then 3 (repacked on the device at first use) */
static const char *DTN = "q4";
enum { B_H, B_XN, B_Q, B_K, B_V, B_ATT, B_O, B_GATE, B_UP, B_S, B_DOWN, B_LOGITS, B_WIDE }; /* buffers */
static uint8_t *blob;
static size_t blob_size;
static size_t off_n1, off_n2, off_nf, off_w[8], off_wide; /* q k v o gate up down lm; W8A8: WIDE_K -> WIDE_N */
enum { WIDE_K = 4096, WIDE_N = 64 }; /* wider than the scratch for max_batch rows of the model's widest input */
static const int32_t wK[8] = {D, D, D, D, D, D, F, D}, wN[8] = {HEADS * HD, KVH * HD, KVH * HD, D, F, F, D, VOCAB};

static size_t blob_add(size_t n) {
    size_t at = blob_size;
    blob_size += (n + 63) / 64 * 64;
    return at;
}

static size_t i8bytes(int32_t K, int32_t N) { /* docs/formats.md: int8 [N, K rounded to 32], f32 scales [N] */
    return (size_t)N * ((K + 31) / 32 * 32) + ((size_t)4 * N + 15) / 16 * 16;
}
static size_t wbytes(int i) {
    if (i == 7) return (size_t)wN[i] * wK[i] * 2; /* f16 */
    if (WDT == QRT_DT_I8) return i8bytes(wK[i], wN[i]);
    qrt_qlayout q;
    if (qrt_qlayout_init(&q, WDT, wN[i], wK[i], 128, 0)) exit(1);
    return q.size;
}

static qrt_cu_ptr dev(size_t off) { return dev_blob + off; }

/* The calls of one decode step as the generated host code makes them. */
static void step(qrt_ctx *c, int with_extra) {
    float **b = c->bufs;
    const void *w[8];
    for (int i = 0; i < 8; i++) w[i] = blob + off_w[i];
    const float eps = 1e-5f;
#define LIN(out, in, i)                                                                                      \
    qrt_k_linear(c, b[out], b[in], NULL, NULL, w[i], NULL, (i) == 7 ? QRT_DT_F16 : WDT, wK[i], wN[i],          \
                 (i) == 7 ? 0 : 128, 0, 0.0f)
    qrt_k_rmsnorm(c, b[B_XN], b[B_H], NULL, NULL, blob + off_n1, NULL, QRT_DT_F32, D, 0, 0, 0, eps);
    LIN(B_Q, B_XN, 0);
    LIN(B_K, B_XN, 1);
    LIN(B_V, B_XN, 2);
    qrt_k_rope(c, b[B_Q], NULL, NULL, NULL, NULL, NULL, 0, HEADS, HD, 0, 0, 10000.0f);
    qrt_k_rope(c, b[B_K], NULL, NULL, NULL, NULL, NULL, 0, KVH, HD, 0, 0, 10000.0f);
    qrt_k_attention(c, b[B_ATT], b[B_Q], b[B_K], b[B_V], NULL, NULL, 0, 0, HEADS, KVH, HD, 0.0f);
    LIN(B_O, B_ATT, 3);
    qrt_k_add(c, b[B_H], b[B_H], b[B_O], NULL, NULL, NULL, 0, D, 0, 0, 0, 0.0f);
    qrt_k_rmsnorm(c, b[B_XN], b[B_H], NULL, NULL, blob + off_n2, NULL, QRT_DT_F32, D, 0, 0, 0, eps);
    LIN(B_GATE, B_XN, 4);
    LIN(B_UP, B_XN, 5);
    qrt_k_silu_mul(c, b[B_S], b[B_GATE], b[B_UP], NULL, NULL, NULL, 0, F, 0, 0, 0, 0.0f);
    LIN(B_DOWN, B_S, 6);
    qrt_k_add(c, b[B_H], b[B_DOWN], b[B_H], NULL, NULL, NULL, 0, D, 0, 0, 0, 0.0f);
    qrt_k_rmsnorm(c, b[B_XN], b[B_H], NULL, NULL, blob + off_nf, NULL, QRT_DT_F32, D, 0, 0, 0, eps);
    qrt_k_lm_head(c, b[B_LOGITS], b[B_XN], NULL, NULL, w[7], NULL, QRT_DT_F16, D, VOCAB, 0, 0, 0.0f);
    if (with_extra) { /* a residual add into the input of the GEMV before it: never fused */
        LIN(B_O, B_H, 3);
        qrt_k_add(c, b[B_H], b[B_H], b[B_O], NULL, NULL, NULL, 0, D, 0, 0, 0, 0.0f);
    }
#undef LIN
}

/* The model's forward for qrt_ctx_forward: the embedding, the step above, no extra. */
static void forward(qrt_ctx *c) {
    qrt_k_embed(c, c->bufs[B_H], NULL, NULL, NULL, blob + off_w[7], NULL, QRT_DT_F16, D, 0, 0, 0, 0.0f);
    step(c, 0);
}

/* 3 bits: every weight is repacked into the device layout once (qk_repack_q3), before the first GEMV that
 * reads it. Checks that over the launches so far and removes the repacks from the log; returns how many. */
static qrt_cu_ptr repacked[16];
static int n_repacked;
static int strip_repacks(void) {
    int n = 0, j = 0;
    for (int i = 0; i < n_launch; i++) {
        const char *name = launches[i].name;
        if (!strcmp(name, "qk_repack_q3")) {
            qrt_cu_ptr w = launches[i].v[0];
            for (int r = 0; r < n_repacked; r++) CHECK(repacked[r] != w, "weight %#llx repacked twice", w);
            if (n_repacked < 16) repacked[n_repacked++] = w;
            n++;
            continue;
        }
        int nw = !strncmp(name, "qk_gemvm", 8) ? 3 : !strncmp(name, "qk_gemv", 7) ? 1 : 0; /* weights: args 0.. */
        if (WDT != QRT_DT_Q3 || strstr(name, "_f16_")) nw = 0;
        for (int k = 0; k < nw; k++) {
            qrt_cu_ptr w = launches[i].v[k];
            int seen = w == 0;
            for (int r = 0; r < n_repacked && !seen; r++) seen = repacked[r] == w;
            CHECK(seen, "launch %d (%s) reads weight %#llx before its repack", i, name, w);
        }
        launches[j++] = launches[i];
    }
    n_launch = j;
    return n;
}

/* Checks that launch i is kernel `name`; 1 if it is. */
static int at(int i, const char *name) {
    int ok = i < n_launch && !strcmp(launches[i].name, name);
    CHECK(ok, "launch %d: want %s, got %s", i, name, i < n_launch ? launches[i].name : "(none)");
    return ok;
}
#define ARG(i, k, want)                                                                                      \
    CHECK(launches[i].v[k] == (unsigned long long)(want), "launch %d (%s) argument %d: %#llx, want %#llx (%s)", \
          i, launches[i].name, k, launches[i].v[k], (unsigned long long)(want), #want)

/* The model on the fake GPU and a one-token context at position 5; NULL after a failed check. */
static qrt_ctx *bring_up(qrt_model *mp, const uint8_t *sec, size_t sec_size, int fuse, const int32_t *widths) {
    qrt_model m;
    memset(&m, 0, sizeof m);
    m.cfg[QRT_CFG_ABI_VERSION] = QRT_ABI_VERSION;
    m.cfg[QRT_CFG_N_LAYERS] = 1;
    m.cfg[QRT_CFG_DIM] = D;
    m.cfg[QRT_CFG_N_HEADS] = HEADS;
    m.cfg[QRT_CFG_N_KV_HEADS] = KVH;
    m.cfg[QRT_CFG_HEAD_DIM] = HD;
    m.cfg[QRT_CFG_FFN_DIM] = F;
    m.cfg[QRT_CFG_VOCAB] = VOCAB;
    m.cfg[QRT_CFG_MAX_CTX] = NCTX;
    m.cfg[QRT_CFG_N_BUFS] = NBUF;
    m.cfg[QRT_CFG_LOGITS_BUF] = B_LOGITS;
    m.cfg[QRT_CFG_MAX_BATCH] = 4;
    m.buf_widths = widths;
    m.forward = qm_forward;
    m.weights = blob;
    m.weights_size = blob_size;
    m.cuda = sec;
    m.cuda_size = sec_size;
    qrt_cuda_opts o = {0};
    o.no_cublas = 1;
    o.fuse_norm = fuse;
    o.no_fuse_rope = !fuse;
    o.no_lookahead = no_lookahead;
    char msg[512];
    host_blob = blob;
    *mp = m;
    int rc = qrt_cuda_init(mp, &o, msg, sizeof msg);
    CHECK(rc == 0, "qrt_cuda_init: %s", msg);
    if (rc) return NULL;
    qrt_ctx *c = qrt_ctx_new(mp, NCTX);
    CHECK(c && c->gpu, "a GPU context");
    if (!c || !c->gpu) return NULL;
    static int32_t tok = 3;
    c->n_tokens = 1, c->pos = 5, c->tokens = &tok, c->logits_all = 0;
    CHECK(qrt_cuda_step_upload(c) == 0, "step upload");
    return c;
}

/* Decode steps through qrt_ctx_forward from position pos, as an executable runs them: the first one of a
 * context eagerly, the next captured into a graph (the same kernels), then replays of it (no kernel
 * launched). recapture: the context's graph was dropped, so the first step here is captured at once, with
 * the kernels of `n_eager` eager ones. Returns the kernels of the eager (or captured) step. */
static int forward_steps(qrt_ctx *c, int32_t pos, int recapture, int n_eager) {
    static const int32_t tok = 3;
    static char first[MAXLOG][160];
    static int nfirst;
    for (int s = recapture; s < 3 + recapture; s++) {
        n_launch = n_captured = n_graph_launch = 0;
        const float *lg = qrt_ctx_forward(c, &tok, 1, pos + s, 0);
        CHECK(lg != NULL, "decode step %d: %s", s, qrt_ctx_error(c) ? qrt_ctx_error(c) : "?");
        CHECK(strip_repacks() == 0, "decode step %d repacked a weight again", s);
        if (s == 0) {
            nfirst = n_launch;
            for (int j = 0; j < n_launch; j++) memcpy(first[j], launches[j].name, 160);
            CHECK(n_launch > 0 && n_captured == 0 && n_graph_launch == 0, "step 1 eager: %d launches, %d captured",
                  n_launch, n_captured);
        } else if (s == 1) {
            int ok = n_launch == (recapture ? n_eager : nfirst) && n_captured == n_launch && n_graph_launch == 1;
            for (int j = 0; ok && j < n_launch && !recapture; j++) ok = !strcmp(first[j], launches[j].name);
            CHECK(ok, "step %d: %d launches, %d captured, %d graph launches; want %d, all captured, 1",
                  s + 1 - recapture, n_launch, n_captured, n_graph_launch, recapture ? n_eager : nfirst);
            if (recapture) nfirst = n_launch;
        } else {
            CHECK(n_launch == 0 && n_graph_launch == 1, "step %d: %d launches, %d graph launches; want 0, 1",
                  s + 1 - recapture, n_launch, n_graph_launch);
        }
    }
    return nfirst;
}

static void run(const uint8_t *sec, size_t sec_size, int fuse, int32_t *widths) {
    qrt_model m;
    qrt_ctx *c = bring_up(&m, sec, sec_size, fuse, widths);
    if (!c) return;
    n_launch = 0;
    int64_t merged0 = qrt_cuda_merged(&m);
    step(c, 1);
    float y;
    CHECK(qrt_cuda_download(&m, &y, (qrt_cu_ptr)(uintptr_t)c->bufs[B_LOGITS], 4) == 0, "download (flushes)");
    int64_t merged = qrt_cuda_merged(&m) - merged0;
    n_repacked = 0;
    int nrep = strip_repacks();
    CHECK(nrep == (WDT == QRT_DT_Q3 ? 7 : 0), "%d weights repacked (want %d)", nrep, WDT == QRT_DT_Q3 ? 7 : 0);
    qrt_cu_ptr bf[NBUF];
    for (int i = 0; i < NBUF; i++) bf[i] = (qrt_cu_ptr)(uintptr_t)c->bufs[i];
    const char *mode = fuse ? "default" : "--no-fuse-norm --no-fuse-rope";
    printf("%s %s: %d launches, %lld fused ops:", DTN, mode, n_launch, (long long)merged);
    for (int i = 0; i < n_launch; i++) printf(" %s", launches[i].name);
    printf("\n");
    char qkv[64], gu[64], qkvn[64], gun[64], o_[64], down[64];
    /* batch-1 GEMVs of packed weights this small: 8 warps a block (qc_cuda_gemv_warps); gate / up and the
     * SILU_MUL of their outputs one kernel (qk_gemvp[n]_*), so down reads the product as a plain input */
    snprintf(qkv, sizeof qkv, "qk_gemvm_%s_k256_n256_n128_n128_g128_a_w8", DTN);
    snprintf(gu, sizeof gu, "qk_gemvp_%s_k256_n512_g128_a_w8", DTN);
    snprintf(qkvn, sizeof qkvn, "qk_gemvmn_%s_k256_n256_n128_n128_g128_a_f32_w8", DTN);
    snprintf(gun, sizeof gun, "qk_gemvpn_%s_k256_n512_g128_a_f32_w8", DTN);
    snprintf(o_, sizeof o_, "qk_gemv_%s_k256_n256_g128_a_b1_w8", DTN);
    snprintf(down, sizeof down, "qk_gemv_%s_k512_n256_g128_a_b1_w8", DTN);
    const char *lm = "qk_gemv_f16_k256_n64_g0_a_b1", *lmn = "qk_gemvmn_f16_k256_n64_n0_n0_g0_a_f32";
    int i = 0;
    if (fuse) {
        CHECK(n_launch == 8 && merged == 10, "8 launches and 10 fused ops (got %d, %lld)", n_launch, (long long)merged);
        if (at(i, qkvn)) { /* RMSNorm of h inside q/k/v; the normalized x still written */
            ARG(i, 0, dev(off_w[0]));
            ARG(i, 6, bf[B_H]);
            ARG(i, 7, bf[B_Q]);
            ARG(i, 8, bf[B_K]);
            ARG(i, 9, bf[B_V]);
            ARG(i, 13, dev(off_n1));
            ARG(i, 15, bf[B_XN]);
            float eps;
            memcpy(&eps, &launches[i].v[14], 4);
            CHECK(eps == 1e-5f, "eps %g", eps);
        }
        if (at(++i, "qk_attn_rope_f32")) { /* RoPE of q and k, the append, the attention */
            ARG(i, 0, bf[B_Q]);
            ARG(i, 1, bf[B_K]);
            ARG(i, 2, bf[B_V]);
            ARG(i, 5, bf[B_ATT]);
            CHECK(launches[i].v[9] && launches[i].v[10], "RoPE tables");
            /* a head's 8 splits (512 positions, 64 at least each) as one thread block cluster */
            CHECK(launches[i].gy == 8 && launches[i].cly == 8, "attention: grid y %u, cluster y %u (want 8, 8)",
                  launches[i].gy, launches[i].cly);
        }
        if (at(++i, o_)) { /* o, then h += o in its epilogue */
            ARG(i, 2, bf[B_ATT]);
            ARG(i, 3, bf[B_O]);
            ARG(i, 6, bf[B_H]);
        }
        if (at(++i, gun)) { /* RMSNorm of h, gate, up, silu(gate) * up */
            ARG(i, 0, dev(off_w[4]));
            ARG(i, 1, dev(off_w[5]));
            ARG(i, 4, bf[B_H]);
            ARG(i, 5, bf[B_GATE]);
            ARG(i, 6, bf[B_UP]);
            ARG(i, 7, bf[B_S]);
            ARG(i, 11, dev(off_n2));
            ARG(i, 13, bf[B_XN]);
        }
        if (at(++i, down)) { /* down of the product, h += down */
            ARG(i, 0, dev(off_w[6]));
            ARG(i, 2, bf[B_S]);
            ARG(i, 3, bf[B_DOWN]);
            ARG(i, 6, bf[B_H]);
        }
        if (at(++i, lmn)) { /* the final norm in the LM head's prologue: x = h, its output still written */
            ARG(i, 0, dev(off_w[7]));
            ARG(i, 1, 0);
            ARG(i, 6, bf[B_H]);
            ARG(i, 7, bf[B_LOGITS]);
            ARG(i, 13, dev(off_nf));
            ARG(i, 15, bf[B_XN]);
        }
        if (at(++i, o_)) { /* its output is added into its own input: not in the epilogue */
            ARG(i, 2, bf[B_H]);
            ARG(i, 6, 0);
        }
        if (at(++i, "qk_add")) {
            ARG(i, 0, bf[B_H]);
            ARG(i, 1, bf[B_H]);
            ARG(i, 2, bf[B_O]);
        }
    } else {
        CHECK(n_launch == 12 && merged == 3, "12 launches and 3 fused ops (got %d, %lld)", n_launch, (long long)merged);
        if (at(i, "qk_rmsnorm_f32")) {
            ARG(i, 0, bf[B_XN]);
            ARG(i, 1, bf[B_H]);
        }
        if (at(++i, qkv)) ARG(i, 6, bf[B_XN]);
        at(++i, "qk_rope_append_f32");
        at(++i, "qk_attn_f32");
        if (at(++i, o_)) ARG(i, 6, 0);
        if (at(++i, "qk_add_rmsnorm_f32")) {
            ARG(i, 0, bf[B_XN]);
            ARG(i, 1, bf[B_H]);
            ARG(i, 3, bf[B_O]);
        }
        if (at(++i, gu)) {
            ARG(i, 4, bf[B_XN]);
            ARG(i, 7, bf[B_S]);
        }
        if (at(++i, down)) {
            ARG(i, 2, bf[B_S]);
            ARG(i, 6, 0);
        }
        if (at(++i, "qk_add_rmsnorm_f32")) ARG(i, 3, bf[B_H]);
        at(++i, lm);
        at(++i, o_);
        at(++i, "qk_add");
    }
    /* 4 tokens (prefill): none of the norm / residual fusions applies, whatever the option; each packed linear
     * is x to f16 and the fused GEMM for 8 tokens (kernels.cu qgemms_core), or with --fused-gemm-max 0 the
     * GEMV for 4 rows, no residual in its epilogue; the norms and adds as their own kernels */
    static const int32_t toks[4] = {3, 4, 5, 6};
    for (int gemv = 0; gemv < 2; gemv++) {
        int32_t old = qrt_cuda_fused_gemm_max(&m, gemv ? 0 : -1);
        c->n_tokens = 4, c->pos = 0, c->tokens = toks;
        CHECK(qrt_cuda_step_upload(c) == 0, "step upload");
        n_launch = 0;
        step(c, 0);
        qrt_cuda_download(&m, &y, (qrt_cu_ptr)(uintptr_t)c->bufs[B_LOGITS], 4);
        strip_repacks();
        qrt_cuda_fused_gemm_max(&m, old);
        char b4[16], t8[32]; /* the 4-row GEMVs of this format; its fused GEMM for up to 8 tokens */
        snprintf(b4, sizeof b4, "qk_gemv_%s_", DTN);
        snprintf(t8, sizeof t8, "qk_qgemm_%s_t8", DTN);
        static const char *const pre[] = {"qk_rmsnorm_f32", "G", "G", "G", "qk_rope_append_f32", "qk_attn_tc64_f32",
                                          "G", "qk_add_rmsnorm_f32", "G", "G", "qk_silu_mul", "G",
                                          "qk_add_rmsnorm_f32", "qk_gemv_f16_k256_n64_g0_a_b1"};
        /* fused: one x conversion per input (q / k / v and gate / up share theirs) */
        int np = (int)(sizeof pre / sizeof pre[0]), okp = n_launch == np + (gemv ? 0 : 4);
        for (int j = 0, li = 0; okp && j < np; j++, li++) {
            const char *name = launches[li].name;
            if (strcmp(pre[j], "G")) okp = !strcmp(name, pre[j]);
            else if (gemv)
                okp = !strncmp(name, b4, strlen(b4)) && strstr(name, "_b4") && launches[li].v[6] == 0; /* no residual */
            else
                okp = (!strcmp(pre[j - 1], "G") || (!strcmp(name, "qk_qgemm_x16") && ++li)) &&
                      !strcmp(launches[li].name, t8) && launches[li].v[4] == 4;
        }
        CHECK(okp, "prefill of 4 tokens%s: %d launches (want %d), first %s", gemv ? " (GEMV)" : "", n_launch,
              np + (gemv ? 0 : 4), n_launch ? launches[0].name : "-");
        printf("%s %s: prefill of 4 tokens%s: %d launches:", DTN, mode, gemv ? " (GEMV)" : "", n_launch);
        for (int j = 0; j < n_launch; j++) printf(" %s", launches[j].name);
        printf("\n");
    }
    m.forward = forward;
    int nfirst = forward_steps(c, 6, 0, 0);
    printf("%s %s: decode steps eager / captured / replayed: %d kernels, then a graph\n", DTN, mode, nfirst);
    if (fuse) { /* a driver that refuses clusters: the attention launched again without, and from then on */
        refuse_cluster = 1;
        for (int k = 0; k < 2; k++) {
            n_launch = 0;
            step(c, 0);
            qrt_cuda_download(&m, &y, (qrt_cu_ptr)(uintptr_t)c->bufs[B_LOGITS], 4);
            int a = -1;
            for (int j = 0; j < n_launch; j++)
                if (!strcmp(launches[j].name, "qk_attn_rope_f32")) a = j;
            CHECK(!qrt_cuda_error(&m) && a >= 0 && launches[a].cly == 0 && launches[a].gy == 8,
                  "clusters refused, step %d: %s; attention launch %d (cluster y %u)", k,
                  qrt_cuda_error(&m) ? qrt_cuda_error(&m) : "ok", a, a >= 0 ? launches[a].cly : 0);
        }
        refuse_cluster = 0;
    }
    /* a kernel that fails to launch: the step reports it, one line naming the call and the driver's message */
    fail_kernel = fuse ? "qk_attn_rope_f32" : "qk_attn_f32";
    step(c, 0);
    qrt_cuda_download(&m, &y, (qrt_cu_ptr)(uintptr_t)c->bufs[B_LOGITS], 4);
    const char *e = qrt_cuda_error(&m);
    CHECK(e && !strcmp(e, "cuLaunchKernelEx: CUDA error 719 (fake driver error)"), "error line: %s", e ? e : "(none)");
    fail_kernel = NULL;
    qrt_ctx_free(c);
    qrt_cuda_free(&m);
}

/* Greedy look-ahead (qrt_cuda_topk, docs/cuda.md): once the decode step is a graph, a k = 1 sampling also has
 * qk_topk write the id and the next position into the step block, and the step is replayed right behind it;
 * the run for exactly that token and position then launches and uploads nothing, any other run uploads its
 * step block and replays after it. Not for k > 1, not with --no-lookahead; logits read while a step is
 * queued ahead are an error. Candidates written by the kernel into pinned memory (uva) or copied. */
static void run_lookahead(const uint8_t *sec, size_t sec_size, int32_t *widths, int off) {
    qrt_model m;
    no_lookahead = off;
    qrt_ctx *c = bring_up(&m, sec, sec_size, 1, widths);
    no_lookahead = 0;
    if (!c) return;
    m.forward = forward;
    forward_steps(c, 6, 0, 0); /* positions 6, 7 (captured), 8 (replayed) */
    float val[4];
    int32_t idx[4];
    for (int round = 0; round < 2; round++) {
        const int32_t next = 9 + round;
        n_launch = n_graph_launch = n_upload = 0;
        int32_t k = qrt_cuda_topk(c, 1, val, idx);
        CHECK(k == 1 && idx[0] == FAKE_TOK && val[0] == 1.0f, "greedy: %d candidates, id %d", k, idx[0]);
        CHECK(n_launch == 1 && n_graph_launch == !off, "greedy (%s): %d launches, %d graph launches (want 1, %d)",
              off ? "--no-lookahead" : "default", n_launch, n_graph_launch, !off);
        if (n_launch == 1 && at(0, "qk_topk")) {
            const int32_t *st = (const int32_t *)(uintptr_t)launches[0].v[5];
            CHECK(off ? st == NULL : st && st[0] == 1 && st[1] == next && st[4] == FAKE_TOK,
                  "step block from qk_topk: %d %d %d (want 1 %d %d)", st ? st[0] : -1, st ? st[1] : -1,
                  st ? st[4] : -1, next, FAKE_TOK);
        }
        /* round 0: the token the sampler chose (queued already); round 1: another one */
        const int32_t tok = round ? FAKE_TOK + 5 : idx[0];
        n_launch = n_graph_launch = n_upload = 0;
        CHECK(qrt_ctx_run(c, &tok, 1, next) == 0, "run: %s", qrt_cuda_error(&m) ? qrt_cuda_error(&m) : "?");
        const int queued = !off && !round;
        CHECK(n_launch == 0 && n_graph_launch == !queued && n_upload == !queued,
              "run %d at %d after the sampling: %d launches, %d graph launches, %d uploads (want 0, %d, %d)", tok,
              next, n_launch, n_graph_launch, n_upload, !queued, !queued);
    }
    n_launch = n_graph_launch = 0;
    int32_t k = qrt_cuda_topk(c, 4, val, idx);
    CHECK(k == 4 && idx[3] == FAKE_TOK + 3 && val[3] == -2.0f && n_graph_launch == 0 && n_launch == 1 &&
              launches[0].v[5] == 0,
          "top-4: %d candidates, last %d %g; %d graph launches, step block %#llx (want none)", k, idx[3], val[3],
          n_graph_launch, n_launch ? launches[0].v[5] : 0);
    if (!off) {
        qrt_ctx_run(c, &idx[0], 1, 11);
        k = qrt_cuda_topk(c, 1, val, idx);
        CHECK(k == 1 && qrt_cuda_logits(c) == NULL && qrt_cuda_error(&m) && strstr(qrt_cuda_error(&m), "look-ahead"),
              "logits while a step is queued: %s", qrt_cuda_error(&m) ? qrt_cuda_error(&m) : "no error");
    }
    printf("look-ahead (%s, candidates %s): checked\n", off ? "off" : "on", fake_uva ? "in pinned memory" : "copied");
    qrt_ctx_free(c);
    qrt_cuda_free(&m);
}

/* W8A8: every linear is per-token int8 quantization (qk_i8_quant, into the context's scratch) + the int8 GEMV
 * reading that scratch; no norm / residual fusion applies (no merged int8 GEMVs). A linear wider than the model
 * grows the scratch, which drops the captured decode graph (it holds the old address): the next decode step
 * is captured again. */
static void run_w8a8(const uint8_t *sec, size_t sec_size, int32_t *widths) {
    qrt_model m;
    qrt_ctx *c = bring_up(&m, sec, sec_size, 1, widths);
    if (!c) return;
    n_launch = 0;
    step(c, 1);
    float y;
    qrt_cuda_download(&m, &y, (qrt_cu_ptr)(uintptr_t)c->bufs[B_LOGITS], 4);
    CHECK(!qrt_cuda_error(&m), "%s", qrt_cuda_error(&m));
    static const char *const want[] = {"qk_rmsnorm_f32", "L", "L", "L", "qk_attn_rope_f32", "L",
                                       "qk_add_rmsnorm_f32", "L", "L", "qk_silu_mul", "L", "qk_add_rmsnorm_f32",
                                       "qk_gemv_f16_k256_n64_g0_a_b1", "L", "qk_add"};
    static const int lin_in[] = {B_XN, B_XN, B_XN, B_ATT, B_XN, B_XN, B_S, B_H}, lin_out[] = {B_Q, B_K, B_V, B_O,
                                                                                             B_GATE, B_UP, B_DOWN, B_O};
    int i = 0, l = 0;
    qrt_cu_ptr scratch = 0;
    printf("i8: %d launches:", n_launch);
    for (int j = 0; j < n_launch; j++) printf(" %s", launches[j].name);
    printf("\n");
    for (size_t w = 0; w < sizeof want / sizeof want[0]; w++, i++) {
        if (strcmp(want[w], "L")) {
            at(i, want[w]);
            continue;
        }
        /* a linear: its input quantized into the scratch, then the GEMV from there into its output */
        if (at(i, "qk_i8_quant") && at(i + 1, "qk_gemv_i8_b1")) {
            ARG(i, 0, (qrt_cu_ptr)(uintptr_t)c->bufs[lin_in[l]]);
            ARG(i + 1, 2, launches[i].v[1]);
            ARG(i + 1, 3, launches[i].v[2]);
            ARG(i + 1, 4, (qrt_cu_ptr)(uintptr_t)c->bufs[lin_out[l]]);
            ARG(i, 3, wK[l == 7 ? 3 : l]);
            if (!scratch) scratch = launches[i].v[1];
            ARG(i, 1, scratch);
        }
        i++, l++;
    }
    CHECK(i == n_launch, "%d launches, want %d", n_launch, i);
    m.forward = forward;
    int n_eager = forward_steps(c, 6, 0, 0);
    /* the wide linear (not in the model: as the kernel tests call it) */
    n_launch = 0;
    qrt_k_linear(c, c->bufs[B_O], c->bufs[B_WIDE], NULL, NULL, blob + off_wide, NULL, QRT_DT_I8, WIDE_K, WIDE_N, 0,
                 0, 0.0f);
    qrt_cuda_download(&m, &y, (qrt_cu_ptr)(uintptr_t)c->bufs[B_O], 4);
    CHECK(!qrt_cuda_error(&m), "%s", qrt_cuda_error(&m));
    if (at(0, "qk_i8_quant") && at(1, "qk_gemv_i8_b1")) {
        ARG(0, 3, WIDE_K);
        ARG(1, 2, launches[0].v[1]);
    }
    int n = forward_steps(c, 9, 1, n_eager); /* the graph held the old scratch: captured again */
    printf("i8: the wide linear grew the scratch; the next decode steps: %d kernels eager, captured, replayed\n", n);
    qrt_ctx_free(c);
    qrt_cuda_free(&m);
}

int main(void) {
    int32_t widths[NBUF];
    for (int i = 0; i < NBUF; i++) widths[i] = i == B_WIDE ? WIDE_K : F;
    static const int32_t dts[3] = {QRT_DT_Q4, QRT_DT_Q3, QRT_DT_I8};
    for (int d = 0; d < 3; d++) {
        WDT = dts[d], DTN = d == 0 ? "q4" : d == 1 ? "q3" : "i8";
        size_t cap = i8bytes(WIDE_K, WIDE_N) + 64;
        for (int i = 0; i < 8; i++) cap += wbytes(i) + 64;
        cap += 3 * (D * 4 + 64);
        blob = aligned_alloc(64, (cap + 63) / 64 * 64);
        memset(blob, 0, cap);
        blob_size = 0;
        off_n1 = blob_add(D * 4), off_n2 = blob_add(D * 4), off_nf = blob_add(D * 4);
        for (int i = 0; i < 8; i++) off_w[i] = blob_add(wbytes(i));
        off_wide = blob_add(i8bytes(WIDE_K, WIDE_N));

        /* The module qcc would emit for this model (qc_cuda_module_from_graph's choices),
         * not compiled: the fake driver only needs the kernels' names. */
        qc_cuda_linear lin[8];
        for (int i = 0; i < 8; i++)
            lin[i] = (qc_cuda_linear){i == 7 ? QRT_DT_F16 : WDT, wK[i], wN[i], i == 7 || WDT == QRT_DT_I8 ? 0 : 128, 0};
        qc_cuda_opts o = {0};
        o.opt_level = 2;
        qc_cuda_module mod;
        qc_err err;
        int32_t nqkv[3] = {wN[0], wN[1], wN[2]}, ngu[2] = {F, F}, nlm[1] = {VOCAB};
        qc_cuda_build b;
        memset(&b, 0, sizeof b);
        static uint8_t image[64] = "fake cubin";
        b.n_images = 1;
        b.images[0].target = (qc_cuda_target){0, 90};
        b.images[0].data = image;
        b.images[0].size = sizeof image;
        uint8_t *sec = NULL;
        size_t sec_size = 0;
        /* gate / up + SILU_MUL: the pair kernels in place of the merged gate / up and the SiLU-prologue ones
         * (none of them for W8A8) */
        int paired = WDT != QRT_DT_I8;
        if (qc_cuda_module_init(&mod, lin, 8, 0, &o, &err) || qc_cuda_module_add_multi(&mod, &lin[0], 3, nqkv, &err) ||
            qc_cuda_module_add_multin(&mod, &lin[0], 3, nqkv, QRT_DT_F32, &err) ||
            (!paired && (qc_cuda_module_add_multi(&mod, &lin[4], 2, ngu, &err) ||
                         qc_cuda_module_add_multin(&mod, &lin[4], 2, ngu, QRT_DT_F32, &err) ||
                         qc_cuda_module_add_silu(&mod, &lin[6], &err))) ||
            qc_cuda_module_add_multin(&mod, &lin[7], 1, nlm, QRT_DT_F32, &err) ||
            (paired && (qc_cuda_module_add_pair(&mod, &lin[4], -1, &err) ||
                        qc_cuda_module_add_pair(&mod, &lin[4], QRT_DT_F32, &err))) ||
            qc_cuda_blob(&mod, &b, &sec, &sec_size, &err)) {
            fprintf(stderr, "module: %s\n", err.msg);
            return 1;
        }
        mod_names = mod.names, n_mod = mod.n_names;
        qrt_cu_use(&fake);
        if (WDT == QRT_DT_I8) {
            run_w8a8(sec, sec_size, widths);
        } else {
            run(sec, sec_size, 0, widths);
            run(sec, sec_size, 1, widths);
            if (WDT == QRT_DT_Q4) {
                run_lookahead(sec, sec_size, widths, 0);
                run_lookahead(sec, sec_size, widths, 1);
                fake_uva = 0;
                run_lookahead(sec, sec_size, widths, 0);
                fake_uva = 1;
            }
        }
        qrt_cu_use(NULL);
        free(sec);
        qc_cuda_module_free(&mod);
        free(blob);
    }
    if (fails) {
        printf("%d checks failed\n", fails);
        return 1;
    }
    printf("ok\n");
    return 0;
}
