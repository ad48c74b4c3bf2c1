/*
 * runtime/cuda.c — the GPU path of libqrt (overview in qrt_cuda.h).
 *
 * Start-up (qrt_cuda_init): dlopen libcuda.so.1, cuInit, device 0 and its
 * primary context, one non-blocking stream; pick the best image of the
 * embedded qm_cuda section for the device (its own cubin, else PTX the
 * driver JIT-compiles) and cuModuleLoadData it; copy the weight blob to the
 * device once. Any failure there means "run on the CPU" (main prints one
 * notice line); nothing here exits.
 *
 * A context (qrt_cuda_ctx_init): activation buffers, KV cache (f32 or f16),
 * the step block {n_tokens, pos, -, -, tokens[max_batch]} in device memory
 * with a pinned host twin, pinned host logits, attention split scratch.
 *
 * A step (qrt_cuda_forward): one async copy of the step block, qm_forward
 * (the generated code calls qrt_k_*, which land in qrt_cuda_k_* below), one
 * async copy of the logits back, one stream synchronization. The first
 * one-token step runs eagerly (every lazy initialization — kernel lookups,
 * shared-memory limits, RoPE tables — happens there), the second is
 * captured as a CUDA graph and every later one replays it.
 *
 * Errors: every driver call goes through CK(), which records the first
 * failure (call, error name, message) in the model's GPU state; launches
 * after a failure are skipped and the step returns NULL.
 */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dummy.h"
#include "qrt_cuda.h"

/* ---- the driver ---- */

static qrt_cu_api cu_api;
static const qrt_cu_api *cu_loaded;
static int cu_tried, cu_nodev;
static char cu_why[256];

const qrt_cu_api *qrt_cu_load(char *why, size_t cap, int *nodev) {
    if (!cu_tried) {
        cu_tried = 1;
        void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            snprintf(cu_why, sizeof cu_why, "no NVIDIA driver (libcuda.so.1 not found)");
            cu_nodev = 1;
            goto done;
        }
        typedef qrt_cu_result gpa2_fn(const char *, void **, int, unsigned long long, int *);
        typedef qrt_cu_result gpa1_fn(const char *, void **, int, unsigned long long);
        gpa2_fn *gpa2;
        gpa1_fn *gpa1;
        void *p2 = dlsym(h, "cuGetProcAddress_v2"), *p1 = dlsym(h, "cuGetProcAddress");
        memcpy(&gpa2, &p2, sizeof gpa2); /* POSIX: data and function pointers agree */
        memcpy(&gpa1, &p1, sizeof gpa1);
        if (!gpa2 && !gpa1) {
            snprintf(cu_why, sizeof cu_why, "libcuda.so.1 has no cuGetProcAddress (driver older than CUDA 11.3)");
            goto done;
        }
        struct {
            const char *name;
            void **slot;
        } syms[] = {
#define S(n) {"cu" #n, (void **)&cu_api.n}
            S(Init), S(DriverGetVersion), S(DeviceGetCount), S(DeviceGet), S(DeviceGetAttribute),
            S(DeviceGetName), S(DeviceTotalMem), S(DevicePrimaryCtxRetain), S(DevicePrimaryCtxRelease),
            S(CtxSetCurrent), S(CtxSynchronize), S(StreamCreate), S(StreamDestroy), S(StreamSynchronize),
            S(ModuleLoadData), S(ModuleUnload), S(ModuleGetFunction), S(FuncSetAttribute), S(LaunchKernel),
            S(MemAlloc), S(MemFree), S(MemAllocHost), S(MemFreeHost), S(MemcpyHtoD), S(MemcpyDtoH),
            S(MemcpyDtoD), S(MemcpyHtoDAsync), S(MemcpyDtoHAsync), S(MemsetD8), S(MemGetInfo),
            S(StreamBeginCapture), S(StreamEndCapture), S(GraphInstantiateWithFlags), S(GraphLaunch),
            S(GraphDestroy), S(GraphExecDestroy), S(EventCreate), S(EventDestroy), S(EventRecord),
            S(EventSynchronize), S(EventElapsedTime), S(GetErrorString),
            S(OccupancyMaxActiveBlocksPerMultiprocessor),
#undef S
        };
        for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
            /* The CUDA 12.0 ABI of each entry point (the _v2 forms), legacy default stream. */
            int status = 0;
            qrt_cu_result r = gpa2 ? gpa2(syms[i].name, syms[i].slot, 12000, 1, &status)
                                   : gpa1(syms[i].name, syms[i].slot, 12000, 1);
            if (r != 0 || !*syms[i].slot) {
                snprintf(cu_why, sizeof cu_why, "the NVIDIA driver lacks %s (error %d); it is older than CUDA 12",
                         syms[i].name, r);
                goto done;
            }
        }
        { /* optional entry points */
            int status = 0;
            void **slot = (void **)&cu_api.LaunchKernelEx;
            if ((gpa2 ? gpa2("cuLaunchKernelEx", slot, 12000, 1, &status) : gpa1("cuLaunchKernelEx", slot, 12000, 1)) != 0)
                *slot = NULL;
            slot = (void **)&cu_api.ModuleGetGlobal;
            if ((gpa2 ? gpa2("cuModuleGetGlobal", slot, 12000, 1, &status) : gpa1("cuModuleGetGlobal", slot, 12000, 1)) != 0)
                *slot = NULL;
        }
        qrt_cu_result r = cu_api.Init(0);
        if (r != 0) {
            const char *s = NULL;
            cu_api.GetErrorString(r, &s);
            snprintf(cu_why, sizeof cu_why, "cuInit: %s", s ? s : "unknown error");
            cu_nodev = r == 100; /* CUDA_ERROR_NO_DEVICE */
            goto done;
        }
        int n = 0;
        if (cu_api.DeviceGetCount(&n) != 0 || n < 1) {
            snprintf(cu_why, sizeof cu_why, "no CUDA device");
            cu_nodev = 1;
            goto done;
        }
        cu_loaded = &cu_api;
    }
done:
    if (!cu_loaded) {
        if (why && cap) snprintf(why, cap, "%s", cu_why);
        if (nodev) *nodev = cu_nodev;
    }
    return cu_loaded;
}

void qrt_cu_use(const qrt_cu_api *api) {
    cu_loaded = api;
    cu_tried = api != NULL;
    cu_nodev = 0;
    cu_why[0] = '\0';
}

void qrt_cu_describe(const qrt_cu_api *cu, qrt_cu_result r, const char *call, char *out, size_t cap) {
    const char *s = NULL;
    if (cu) cu->GetErrorString(r, &s);
    snprintf(out, cap, "%s: CUDA error %d (%s)", call, r, s ? s : "unknown");
}

/* ---- cuBLAS ---- */

static qrt_cublas_api cublas_api;
static const qrt_cublas_api *cublas_loaded;
static int cublas_tried;

const qrt_cublas_api *qrt_cublas_load(void) {
    if (cublas_tried) return cublas_loaded;
    cublas_tried = 1;
    static const char *const libs[] = {"libcublas.so.13", "libcublas.so.12", "/usr/local/cuda/lib64/libcublas.so.13",
                                       "/usr/local/cuda/lib64/libcublas.so.12"};
    void *h = NULL;
    for (size_t i = 0; i < sizeof libs / sizeof libs[0] && !h; i++) h = dlopen(libs[i], RTLD_NOW | RTLD_LOCAL);
    if (!h) return NULL;
    struct {
        const char *name;
        void **slot;
    } syms[] = {
        {"cublasCreate_v2", (void **)&cublas_api.Create},   {"cublasDestroy_v2", (void **)&cublas_api.Destroy},
        {"cublasSetStream_v2", (void **)&cublas_api.SetStream}, {"cublasSgemm_v2", (void **)&cublas_api.Sgemm},
        {"cublasGemmEx", (void **)&cublas_api.GemmEx},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++)
        if (!(*syms[i].slot = dlsym(h, syms[i].name))) return NULL;
    cublas_loaded = &cublas_api;
    return cublas_loaded;
}

/* ---- the embedded module ---- */

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

int qrt_cuda_blob_parse(qrt_cuda_blob *b, const uint8_t *p, size_t n) {
    memset(b, 0, sizeof *b);
    if (n < 64 || memcmp(p, "QCCUDA01", 8) || rd32(p + 8) != 64) return -1;
    uint32_t ni = rd32(p + 12);
    if (ni > 16 || 64 + (uint64_t)ni * 24 > n) return -1;
    b->n_images = (int32_t)ni;
    b->n_kernels = (int32_t)rd32(p + 16);
    b->gemv_warps = (int32_t)rd32(p + 20);
    b->gemv_loads = (int32_t)rd32(p + 24);
    b->gemv_xs = (int32_t)rd32(p + 28);
    b->gemv_fast = (int32_t)rd32(p + 32);
    if (b->gemv_warps < 1 || b->gemv_warps > 32 || b->gemv_loads < 1 || b->gemv_loads > 64 ||
        b->gemv_xs < 4096 || b->gemv_xs % 4096)
        return -1;
    uint64_t no = rd64(p + 40), ns = rd64(p + 48);
    if (no > n || ns > n - no || (ns && p[no + ns - 1] != 0)) return -1;
    b->names = (const char *)p + no;
    b->names_size = ns;
    for (uint32_t i = 0; i < ni; i++) {
        const uint8_t *e = p + 64 + (size_t)i * 24;
        uint64_t off = rd64(e + 8), size = rd64(e + 16);
        if (off > n || size > n - off || size == 0) return -1;
        b->images[i].ptx = rd32(e) != 0;
        b->images[i].arch = (int32_t)rd32(e + 4);
        b->images[i].data = p + off;
        b->images[i].size = size;
        if (b->images[i].ptx && p[off + size - 1] != 0) return -1; /* PTX is a C string */
    }
    return 0;
}

const qrt_cuda_image *qrt_cuda_blob_pick(const qrt_cuda_blob *b, int32_t cc) {
    const qrt_cuda_image *best = NULL;
    for (int32_t i = 0; i < b->n_images; i++) { /* cubin: same major, minor <= the device's */
        const qrt_cuda_image *im = &b->images[i];
        if (!im->ptx && im->arch / 10 == cc / 10 && im->arch <= cc && (!best || im->arch > best->arch)) best = im;
    }
    if (best) return best;
    for (int32_t i = 0; i < b->n_images; i++) { /* PTX: not newer than the device */
        const qrt_cuda_image *im = &b->images[i];
        if (im->ptx && im->arch <= cc && (!best || im->arch > best->arch)) best = im;
    }
    return best;
}

/* GEMV launch shapes; must match codegen/cuda/kernels.cu.
 * Packed and f16 weights: gemv_mma (tensor cores). Blocks of gemv_warps
 * warps work on tiles of 16 rows (rows_per_warp 16 marks this kernel), x
 * is staged in pieces of sv columns (a multiple of the item width CK) in
 * records of 128 bytes, shared memory as qk_mlay_make. The blob's
 * gemv_loads (weights in flight) and gemv_fast (unpacking variant) only
 * matter inside the kernel; gemv_fast 2 selects the float GEMV for every
 * dtype.
 * f32 and bf16 weights: gemv_core, with the fixed shape QK_LGEMV_* (8
 * warps, 8 loads, 16384 floats of x): U 16-byte units of UV values per
 * lane, chunks of CH columns, x padded by PADX floats after every UV. */
#define GEMV_MMAX(batch) ((batch) == 1 ? 16 : 8) /* QK_GEMV_MMAX */
qrt_gemv_shape qrt_gemv_shape_of(const qrt_cuda_blob *b, int32_t dtype, int32_t K, int32_t batch) {
    return qrt_gemv_shape_w(b, dtype, K, batch, 0);
}

qrt_gemv_shape qrt_gemv_shape_w(const qrt_cuda_blob *b, int32_t dtype, int32_t K, int32_t batch, int32_t warps) {
    qrt_gemv_shape s;
    int32_t bits = qrt_qdtype_bits(dtype), esize = dtype == QRT_DT_F32 ? 4 : 2;
    if (b->gemv_fast != 2 && (bits || dtype == QRT_DT_F16)) {
        /* qk_mf: an item is 4 lanes x LPI lane blocks of LV columns */
        int32_t LV = bits == 3 || bits == 2 ? 64 : bits == 4 ? 32 : bits == 8 ? 16 : 8;
        int32_t CK = 4 * LV * (bits == 3 ? 1 : bits ? 2 : 4);
        int32_t rp32 = 1, xsv = bits == 8 ? 16 : 32;
        int64_t kr = ((int64_t)K + CK - 1) / CK * CK;
        /* records + x sums per column and batch row, in 1/32 bytes */
        int64_t per32 = 128 * rp32 + 4 * (32 / xsv) + 1;
        int64_t cap = (int64_t)b->gemv_xs * 4 * 32 / per32 / batch / CK * CK;
        if (cap < CK) cap = CK;
        s.sv = (int32_t)(kr < cap ? kr : cap);
        int64_t nrec = s.sv / 32 * rp32, nxs = s.sv / xsv;
        int64_t xsum = batch * nrec * 128, zero = xsum + (batch * nxs * 4 + 127) / 128 * 128 + 16;
        int32_t w = warps > 0 ? warps : b->gemv_warps;
        int64_t part = zero - 16 + 1152, misc = part + (int64_t)GEMV_MMAX(batch) * w * 16 * batch * 4;
        s.smem = (size_t)(misc + 1024);
        s.rows_per_warp = 16;
        s.mmax = GEMV_MMAX(batch);
        s.warps = w;
        s.threads = 32 * w;
        return s;
    }
    int32_t U = bits == 3 ? 3 : bits == 2 ? 2 : bits == 4 ? 4 : 8;
    int32_t UV = bits == 3 ? 128 : bits ? 128 / bits : 16 / esize;
    int32_t CH = 32 * (bits == 3 ? 1 : U) * UV, PADX = UV == 4 ? 0 : 4;
    int32_t R = 8 / U > 0 ? 8 / U : 1;
    int32_t kr = (K + CH - 1) / CH * CH, cap = 16384 / batch / CH * CH;
    if (cap < CH) cap = CH;
    s.rows_per_warp = R;
    s.mmax = 0;
    s.warps = 8;
    s.threads = 32 * 8;
    s.sv = kr < cap ? kr : cap;
    s.smem = (size_t)batch * (size_t)(s.sv + s.sv / UV * PADX) * sizeof(float);
    return s;
}

uint32_t qrt_gemv_grid(const qrt_gemv_shape *s, int32_t K, int32_t N, int32_t max_blocks) {
    if (s->rows_per_warp == 16) { /* gemv_mma: m tiles per block, ceil(tiles / m) blocks */
        int64_t tiles = (N + 15) / 16, m = max_blocks > 0 ? (tiles + max_blocks - 1) / max_blocks : 1;
        if (m < 1) m = 1;
        if (m > s->mmax) m = s->mmax;
        return (uint32_t)((tiles + m - 1) / m);
    }
    int64_t groups = (N + s->rows_per_warp - 1) / s->rows_per_warp;
    int64_t blocks = (groups + s->warps - 1) / s->warps;
    if (s->sv >= K && max_blocks > 0 && blocks > max_blocks) blocks = max_blocks;
    return (uint32_t)blocks;
}

/* ---- model state ---- */

#define NFN 256 /* kernel lookup table (open addressing) */

typedef struct fn_slot {
    char name[96];
    qrt_cu_function f; /* NULL: looked up, absent */
    int32_t used;
    int32_t smem_set;  /* dynamic shared memory limit raised to this */
    int32_t occ_smem, occ; /* blocks of it that fit on one SM with occ_smem bytes of shared memory */
} fn_slot;

/* Prefill of packed weights up to G->qgemm_max tokens (and at any length without cuBLAS): one fused
 * dequantize + GEMM kernel (qk_qgemm_*, codegen/cuda/kernels.cu), no f16 copy of the weight. Tiles of
 * QRT_QG_BM tokens x QRT_QG_BN rows; where they are too few to fill the GPU, k is split over S blocks whose
 * parts qk_qgemm_reduce adds in order. S depends on T, K and N only (QRT_QG_SLOTS is a constant, not the
 * device's SM count), so the sums do not depend on the size of the GPU. */
#define QRT_QG_BM 64
#define QRT_QG_BN 128
#define QRT_QG_BK 64
#define QRT_QG_NS 4
#define QRT_QG_SMEM(bits) /* kernels.cu qgemm_core's layout */ \
    ((QRT_QG_NS * QRT_QG_BM + 2 * QRT_QG_BN) * 72 * 2 + QRT_QG_NS * 256 * ((bits) == 8 ? 32 : (bits) == 2 ? 8 : 16))
#define QRT_QG_SLOTS 264                                  /* blocks aimed at: 2 per SM of a 132-SM H100 */
/* Up to 64 tokens: qk_qgemm_<dt>_t<8 NT> (kernels.cu qgemms_core), W dequantized in registers; blocks of
 * QRT_QS_BN(nt) rows (128 up to 16 tokens, 256 beyond), k in chunks of 128; two blocks an SM up to 16 tokens,
 * one beyond, on QRT_QS_SLOTS SMs (a 132-SM H100: a constant, so S does not depend on the device). */
#define QRT_QS_MT(nt) ((nt) <= 2 ? 1 : 2)
#define QRT_QS_BN(nt) (128 * QRT_QS_MT(nt))
#define QRT_QS_NS 4
#define QRT_QS_XLD 320
#define QRT_QS_SLOTS 132
#define QRT_QS_SMEM(bits, nt) /* kernels.cu qgemms_core's layout */ \
    ((size_t)QRT_QS_NS * 8 * (nt) * QRT_QS_XLD +                   \
     (size_t)8 * QRT_QS_NS * 2 * QRT_QS_MT(nt) * 32 * ((bits) == 8 ? 32 : (bits) == 2 ? 8 : 16))
#define QRT_QG_PART ((size_t)16 << 20)                    /* split-k parts, bytes */
#define QRT_QG_MAX_DEFAULT 64                             /* tokens; docs/performance.md, session 12 */
struct qrt_gpu {
    const qrt_cu_api *cu;
    const qrt_cublas_api *cublas;
    qrt_cublas_handle blas;
    int32_t use_cublas;  /* 1 on, 0 absent, 2 switched off (tests), -1 not tried: loaded at the first prefill */
    int32_t qgemm_max;   /* packed weights: prefill chunks of up to this many tokens through qk_qgemm_* */
    uint64_t writes;     /* launches, graph replays and uploads so far: what may have changed device memory */
    qrt_cu_device dev;
    qrt_cu_context ctx;
    qrt_cu_stream stream;
    qrt_cu_module mod;
    int32_t cc, sms, smem_optin, kv_f16, no_graph;
    int32_t pdl; /* launch with programmatic dependent launch (sm_90+, cuLaunchKernelEx present) */
    int32_t fuse_norm; /* qrt_cuda_opts.fuse_norm: pnorm and the residual adds (plin.res, psilu.res) */
    int32_t fuse_rope; /* qrt_cuda_opts.no_fuse_rope == 0: one token's RoPEs in the attention (qk_attn_rope_*) */
    int32_t cluster;   /* one-token attention splits launched as clusters (launch_attn) */
    int32_t lookahead; /* greedy: the next decode step queued behind the sampling (qrt_cuda_topk) */
    int32_t uva;       /* pinned host memory is addressable by kernels at its host address */
    qrt_cu_ptr step_dev; /* the step block of the context whose RoPEs are held back */
    qrt_cuda_blob blob;
    qrt_cu_ptr weights;          /* device copy of the weight blob */
    qrt_cu_ptr *q3set;           /* 3-bit weights already in the device layout (open addressing, q3_ready) */
    size_t q3cap, q3n;
    const uint8_t *host_weights; /* qm_weights_start */
    size_t weights_size;
    fn_slot fns[NFN];
    int32_t capturing, capture_failed;
    /* an element-wise op not yet launched: a residual add (qrt_cuda_k_add), fused with the RMSNorm that
     * reads its output right after it (qk_add_rmsnorm_*), or a SILU_MUL, fused with the one-token GEMV
     * that reads it (qk_gemvs_*); else launched on its own before the next launch or sync */
    struct {
        int32_t on, width, rows; /* on: PEND_ADD or PEND_SILU */
        qrt_cu_ptr out, a, b;
    } pend;
    /* one-token linears not yet launched (qrt_cuda_k_linear), all reading x with one format: launched
     * as one kernel (qk_gemvm_*, when qcc emitted it) before the next launch or sync */
    struct {
        int32_t n, dt, K, g, s;
        int32_t norm; /* the pending RMSNorm (pnorm) makes x: done in the merged kernel's prologue */
        struct qrt_ctx *c;
        qrt_cu_ptr x, y[3];
        qrt_cu_ptr res; /* one linear: the residual add after it, res += y, in its epilogue (0: none) */
        const void *w[3], *bias[3];
        int32_t N[3];
    } plin;
    /* a one-token RMSNorm not yet launched (qrt_cuda_k_rmsnorm): done in the prologue of the merged
     * linears that read its output (qk_gemvmn_*) when they come next, else launched on its own */
    struct {
        int32_t on, dim, wdt;
        float eps;
        qrt_cu_ptr out, x, w;
    } pnorm;
    /* a one-token SILU_MUL + GEMV not yet launched (qk_gemvs_*, silu_linear): held so that the residual
     * add after it can go into its epilogue */
    struct {
        int32_t on, sv, smem, N;
        unsigned grid, threads;
        qrt_cu_function f;
        qrt_cu_ptr w, bias, a, b, xo, y, res;
    } psilu;
    /* RoPEs not yet launched (qrt_cuda_k_rope): done by the attention's qk_rope_append_* when they are
     * its q and k, else launched on their own */
    struct {
        int32_t n, rows, heads[2], hd[2];
        qrt_cu_ptr x[2], inv[2];
    } prope;
    /* qcc --cuda-trace: the module's qk_trace / qk_trace_n (kernels.cu QK_TRACE, one record per launch);
     * here, per record, the kernel (its fns slot; a graph replay adds the captured step's), and where the
     * last graph replays began */
    qrt_cu_ptr trace, trace_n;
    int16_t *tslot;         /* [TRACE_N] by record number mod TRACE_N */
    uint32_t tcount;        /* records so far (= the device's qk_trace_n) */
    int16_t *tstep;         /* the kernels of the captured decode step */
    int32_t n_tstep, cap_tstep;
    uint32_t treplay[64];   /* first record of graph replay i (mod 64) */
    uint32_t n_treplay;
    int64_t merged; /* ops fused into another op's kernel (qrt_cuda_merged): per merged-linear launch 1, its
                     * RMSNorm 1, a SILU_MUL 1, a residual add 1, the two RoPEs in an attention 2 */
    char failed[512]; /* first error; non-empty = the GPU path is dead */
    char name[256];
};

/* Records a failed driver call; during graph capture only marks the capture. */
static int ck(struct qrt_gpu *G, qrt_cu_result r, const char *call) {
    if (r == 0) return 0;
    if (G->capturing) {
        G->capture_failed = 1;
        return -1;
    }
    char fn[64]; /* "G->cu->MemAlloc(&p, n)" (CK's text of the call) -> "cuMemAlloc" */
    const char *p = strstr(call, "cu->");
    if (p) {
        p += 4;
        snprintf(fn, sizeof fn, "cu%.*s", (int)strcspn(p, "( "), p);
        call = fn;
    }
    if (!G->failed[0]) qrt_cu_describe(G->cu, r, call, G->failed, sizeof G->failed);
    return -1;
}
#define CK(call) ck(G, (call), #call)

static qrt_cu_function fn_get(struct qrt_gpu *G, const char *name) {
    uint32_t h = 2166136261u;
    for (const char *p = name; *p; p++) h = (h ^ (uint8_t)*p) * 16777619u;
    for (uint32_t i = 0; i < NFN; i++) {
        fn_slot *s = &G->fns[(h + i) % NFN];
        if (s->used && !strcmp(s->name, name)) return s->f;
        if (!s->used) {
            s->used = 1;
            snprintf(s->name, sizeof s->name, "%s", name);
            if (G->cu->ModuleGetFunction(&s->f, G->mod, name) != 0) s->f = NULL;
            return s->f;
        }
    }
    qrt_cu_function f = NULL; /* table full: look up every time */
    if (G->cu->ModuleGetFunction(&f, G->mod, name) != 0) f = NULL;
    return f;
}

/* A kernel that must exist. */
static qrt_cu_function fn_need(struct qrt_gpu *G, const char *name) {
    qrt_cu_function f = fn_get(G, name);
    if (!f && !G->failed[0])
        snprintf(G->failed, sizeof G->failed, "kernel %s is not in the embedded CUDA module", name);
    return f;
}

static fn_slot *fn_slot_of(struct qrt_gpu *G, const char *name) {
    uint32_t h = 2166136261u;
    for (const char *p = name; *p; p++) h = (h ^ (uint8_t)*p) * 16777619u;
    for (uint32_t i = 0; i < NFN; i++) {
        fn_slot *s = &G->fns[(h + i) % NFN];
        if (!s->used) return NULL;
        if (!strcmp(s->name, name)) return s;
    }
    return NULL;
}

/* Blocks of f that run at once on the whole device (threads, smem per block). */
static int32_t fn_max_blocks(struct qrt_gpu *G, qrt_cu_function f, const char *name, int threads, size_t smem) {
    fn_slot *s = fn_slot_of(G, name);
    if (s && s->occ && s->occ_smem == (int32_t)smem) return s->occ * G->sms;
    int occ = 0;
    if (G->cu->OccupancyMaxActiveBlocksPerMultiprocessor(&occ, f, threads, smem) != 0 || occ < 1) occ = 1;
    if (s) s->occ = occ, s->occ_smem = (int32_t)smem;
    return occ * G->sms;
}

/* Raises a function's dynamic shared memory limit when it needs > 48 KB. */
static int fn_smem(struct qrt_gpu *G, qrt_cu_function f, const char *name, size_t smem) {
    if (smem <= 48 * 1024) return 0;
    if ((int64_t)smem > G->smem_optin) {
        if (!G->failed[0])
            snprintf(G->failed, sizeof G->failed, "%s needs %zu bytes of shared memory; the device allows %d", name,
                     smem, (int)G->smem_optin);
        return -1;
    }
    uint32_t h = 2166136261u;
    for (const char *p = name; *p; p++) h = (h ^ (uint8_t)*p) * 16777619u;
    for (uint32_t i = 0; i < NFN; i++) {
        fn_slot *s = &G->fns[(h + i) % NFN];
        if (!s->used) break;
        if (!strcmp(s->name, name)) {
            if (s->smem_set >= (int32_t)smem) return 0;
            s->smem_set = (int32_t)smem;
            break;
        }
    }
    return CK(G->cu->FuncSetAttribute(f, QRT_CU_FUNC_ATTR_MAX_DYN_SMEM, (int)smem));
}

/* --cuda-trace: the kernel of each device record (kernels.cu QK_TRACE), in launch order: an eager launch
 * adds its own, a capture notes the step's, a graph replay adds them all */
enum { TRACE_N = 8192 }; /* kernels.cu QK_TRACE_N */
static void trace_launch(struct qrt_gpu *G, qrt_cu_function f) {
    int16_t slot = -1;
    for (uint32_t i = 0; i < NFN && slot < 0; i++)
        if (G->fns[i].used && G->fns[i].f == f) slot = (int16_t)i;
    if (G->capturing) {
        if (G->n_tstep == G->cap_tstep) {
            int32_t nc = G->cap_tstep ? 2 * G->cap_tstep : 512;
            int16_t *nn = realloc(G->tstep, (size_t)nc * sizeof *nn);
            if (!nn) return;
            G->tstep = nn, G->cap_tstep = nc;
        }
        G->tstep[G->n_tstep++] = slot;
        return;
    }
    G->tslot[G->tcount++ % TRACE_N] = slot;
}
static void trace_replay(struct qrt_gpu *G) {
    G->treplay[G->n_treplay++ % 64] = G->tcount;
    for (int32_t i = 0; i < G->n_tstep; i++) G->tslot[G->tcount++ % TRACE_N] = G->tstep[i];
}

/* cly > 1: blocks (x, cly y .. cly y + cly - 1) form a thread block cluster (sm_90+, cuLaunchKernelEx). Returns
 * the driver's result. */
static qrt_cu_result launch_cl(struct qrt_gpu *G, qrt_cu_function f, unsigned gx, unsigned gy, unsigned gz,
                               unsigned bx, size_t smem, void **args, unsigned cly) {
    qrt_cu_result r;
    if (G->pdl || cly > 1) {
        qrt_cu_launch_attr at[2];
        unsigned n = 0;
        memset(at, 0, sizeof at);
        if (G->pdl) { /* every kernel of the module waits for its predecessor itself (kernels.cu qk_dep_wait) */
            at[n].id = QRT_CU_LAUNCH_ATTR_PROGRAMMATIC_STREAM_SERIALIZATION;
            at[n++].value.i = 1;
        }
        if (cly > 1) {
            const unsigned dim[3] = {1, cly, 1};
            at[n].id = QRT_CU_LAUNCH_ATTR_CLUSTER_DIMENSION;
            memcpy(at[n++].value.bytes, dim, sizeof dim);
        }
        qrt_cu_launch_config lc = {gx, gy ? gy : 1, gz ? gz : 1, bx, 1, 1, (unsigned)smem, G->stream, at, n};
        r = G->cu->LaunchKernelEx(&lc, f, args, NULL);
    } else {
        r = G->cu->LaunchKernel(f, gx, gy ? gy : 1, gz ? gz : 1, bx, 1, 1, (unsigned)smem, G->stream, args, NULL);
    }
    if (r == 0 && G->tslot) trace_launch(G, f);
    G->writes++;
    return r;
}

static void launch(struct qrt_gpu *G, qrt_cu_function f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                   size_t smem, void **args) {
    if (!f || G->failed[0]) return;
    ck(G, launch_cl(G, f, gx, gy, gz, bx, smem, args, 0), G->pdl ? "cuLaunchKernelEx" : "cuLaunchKernel");
}

/* The one-token attention: the splits of a head as one cluster (kernels.cu attn_core merges them through
 * distributed shared memory) where that can be (sm_90+, at most 8 splits, not --no-cluster); a driver that
 * refuses the first such launch (never inside a capture: the first decode step runs eagerly) turns it off. */
static void launch_attn(struct qrt_gpu *G, qrt_cu_function f, unsigned heads, unsigned nsplit, void **args) {
    if (!f || G->failed[0]) return;
    if (G->cluster && nsplit > 1 && nsplit <= 8) {
        qrt_cu_result r = launch_cl(G, f, heads, nsplit, 1, 128, 0, args, nsplit);
        /* CUDA_ERROR_INVALID_VALUE, _NOT_SUPPORTED, _INVALID_CLUSTER_SIZE: no clusters here; else a real error */
        if ((r != 1 && r != 801 && r != 912) || G->capturing) {
            ck(G, r, "cuLaunchKernelEx");
            return;
        }
        G->cluster = 0;
    }
    launch(G, f, heads, nsplit, 1, 128, 0, args);
}

static unsigned grid_for(size_t n, unsigned threads) {
    size_t g = (n + threads - 1) / threads;
    return (unsigned)(g < 1 ? 1 : g > 4096 ? 4096 : g);
}

/* Launches the pending residual add, if any. Every entry point that launches, copies or synchronizes
 * calls this first, so the stream sees the kernels in the order the host code asked for them. */
enum { PEND_ADD = 1, PEND_SILU = 2 };
static void flush_linears(struct qrt_gpu *G);
static void norm_now(struct qrt_gpu *G);
static void silu_now(struct qrt_gpu *G);
static void flush(struct qrt_gpu *G) {
    if (G->plin.n) flush_linears(G);
    if (G->pnorm.on) norm_now(G);
    if (G->psilu.on) silu_now(G);
    for (int32_t i = 0; i < G->prope.n; i++) {
        void *args[] = {&G->prope.x[i], &G->step_dev, &G->prope.inv[i], &G->prope.heads[i], &G->prope.hd[i]};
        launch(G, fn_need(G, "qk_rope"), (unsigned)G->prope.rows, (unsigned)G->prope.heads[i], 1, 64, 0, args);
    }
    G->prope.n = 0;
    if (!G->pend.on) return;
    const char *kernel = G->pend.on == PEND_ADD ? "qk_add" : "qk_silu_mul";
    G->pend.on = 0;
    int32_t n = G->pend.rows * G->pend.width;
    void *args[] = {&G->pend.out, &G->pend.a, &G->pend.b, &n};
    launch(G, fn_need(G, kernel), grid_for((size_t)n, 256), 1, 1, 256, 0, args);
}

/* cuMemAlloc that, when the device lacks the memory, leaves one line saying
 * what needed how much and how much was free:
 * "out of GPU memory: WHAT need X GB, DEVICE has Y GB free (of Z GB)". */
static int dev_alloc(struct qrt_gpu *G, qrt_cu_ptr *p, size_t bytes, const char *what, const char *dev) {
    size_t fr = 0, tot = 0;
    int known = G->cu->MemGetInfo(&fr, &tot) == 0;
    qrt_cu_result r = known && bytes > fr ? 2 /* CUDA_ERROR_OUT_OF_MEMORY */ : G->cu->MemAlloc(p, bytes ? bytes : 16);
    if (r == 2 && known) {
        if (!G->failed[0])
            snprintf(G->failed, sizeof G->failed, "out of GPU memory: %s need %.2f GB, %s has %.2f GB free (of %.2f GB)",
                     what, (double)bytes / 1e9, dev, (double)fr / 1e9, (double)tot / 1e9);
        return -1;
    }
    return ck(G, r, "cuMemAlloc");
}

int qrt_cuda_init(qrt_model *m, const qrt_cuda_opts *o, char *msg, size_t cap) {
    msg[0] = '\0';
    if (!m->cuda || !m->cuda_size) {
        snprintf(msg, cap, "this executable has no CUDA kernels (built with --target cpu)");
        return 1;
    }
    int nodev = 0;
    const qrt_cu_api *cu = qrt_cu_load(msg, cap, &nodev);
    if (!cu) return nodev ? 1 : -1;
    struct qrt_gpu *G = calloc(1, sizeof *G);
    if (!G) {
        snprintf(msg, cap, "out of memory");
        return -1;
    }
    G->cu = cu;
    G->kv_f16 = o->kv_f16;
    G->no_graph = o->no_graph;
    G->pdl = !o->no_pdl;
    G->fuse_norm = o->fuse_norm;
    G->fuse_rope = !o->no_fuse_rope;
    G->cluster = !o->no_cluster;
    G->lookahead = !o->no_lookahead;
    G->qgemm_max = o->fused_gemm_max > 0 ? o->fused_gemm_max : o->fused_gemm_max < 0 ? 0 : QRT_QG_MAX_DEFAULT;
    const int32_t *cfg = m->cfg;
    int major = 0, minor = 0;
    const qrt_cuda_image *im = NULL;
    if (qrt_cuda_blob_parse(&G->blob, m->cuda, m->cuda_size)) {
        snprintf(G->failed, sizeof G->failed, "the embedded CUDA section is malformed");
        goto fail;
    }
    if (cfg[QRT_CFG_HEAD_DIM] % 4 || cfg[QRT_CFG_HEAD_DIM] > 512 || cfg[QRT_CFG_N_KV_HEADS] <= 0 ||
        cfg[QRT_CFG_N_HEADS] % cfg[QRT_CFG_N_KV_HEADS]) {
        snprintf(G->failed, sizeof G->failed, "head_dim %d / heads %d / kv heads %d not supported on the GPU",
                 cfg[QRT_CFG_HEAD_DIM], cfg[QRT_CFG_N_HEADS], cfg[QRT_CFG_N_KV_HEADS]);
        goto fail;
    }
    if (CK(cu->DeviceGet(&G->dev, 0)) || CK(cu->DeviceGetAttribute(&major, QRT_CU_ATTR_CC_MAJOR, G->dev)) ||
        CK(cu->DeviceGetAttribute(&minor, QRT_CU_ATTR_CC_MINOR, G->dev)) ||
        CK(cu->DeviceGetAttribute(&G->sms, QRT_CU_ATTR_MULTIPROCESSOR_COUNT, G->dev)) ||
        CK(cu->DeviceGetAttribute(&G->smem_optin, QRT_CU_ATTR_SMEM_OPTIN, G->dev)))
        goto fail;
    if (cu->DeviceGetAttribute(&G->uva, QRT_CU_ATTR_UNIFIED_ADDRESSING, G->dev) != 0) G->uva = 0;
    G->cc = 10 * major + minor;
    G->pdl = G->pdl && G->cc >= 90 && cu->LaunchKernelEx;
    G->cluster = G->cluster && G->cc >= 90 && cu->LaunchKernelEx;
    char dname[128] = "?";
    cu->DeviceGetName(dname, sizeof dname, G->dev);
    im = qrt_cuda_blob_pick(&G->blob, G->cc);
    if (!im) {
        snprintf(G->failed, sizeof G->failed, "no embedded CUDA code runs on %s (sm_%d); rebuild with --cuda-arch sm_%d",
                 dname, (int)G->cc, (int)G->cc);
        goto fail;
    }
    snprintf(G->name, sizeof G->name, "%s (sm_%d, %d SMs), %s %s_%d", dname, (int)G->cc, (int)G->sms,
             im->ptx ? "PTX JIT from" : "cubin", im->ptx ? "compute" : "sm", (int)im->arch);
    if (CK(cu->DevicePrimaryCtxRetain(&G->ctx, G->dev)) || CK(cu->CtxSetCurrent(G->ctx)) ||
        CK(cu->StreamCreate(&G->stream, 1 /* CU_STREAM_NON_BLOCKING */)) ||
        CK(cu->ModuleLoadData(&G->mod, im->data)))
        goto fail;
    size_t tsz = 0;
    if (cu->ModuleGetGlobal && (cu->ModuleGetGlobal(&G->trace, &tsz, G->mod, "qk_trace") != 0 ||
                                cu->ModuleGetGlobal(&G->trace_n, &tsz, G->mod, "qk_trace_n") != 0))
        G->trace = G->trace_n = 0; /* a module without --cuda-trace */
    if (G->trace && !(G->tslot = calloc(TRACE_N, sizeof *G->tslot))) G->trace = 0;
    /* --dummy-weights: the blob is generated on the device (runtime/dummy.c) */
    size_t dsize = qrt_dummy_size();
    G->host_weights = dsize ? qrt_dummy_base : m->weights;
    G->weights_size = dsize ? dsize : m->weights_size;
    if (dev_alloc(G, &G->weights, G->weights_size, "the weights", dname) ||
        (dsize ? qrt_dummy_gpu_fill(cu, G->stream, G->weights, G->sms, G->failed, sizeof G->failed)
               : m->weights_size && CK(cu->MemcpyHtoD(G->weights, m->weights, m->weights_size))))
        goto fail;
    G->use_cublas = o->no_cublas ? 0 : -1;
    m->gpu = G;
    if (o->verbose)
        fprintf(stderr, "cuda: %s; weights %.1f MB on the device; programmatic dependent launch %s\n", G->name,
                (double)G->weights_size / 1e6, G->pdl ? "on" : "off");
    return 0;
fail:
    snprintf(msg, cap, "%s", G->failed);
    m->gpu = G; /* release what was made */
    qrt_cuda_free(m);
    return -1;
}

void qrt_cuda_free(qrt_model *m) {
    struct qrt_gpu *G = m->gpu;
    if (!G) return;
    if (G->blas) G->cublas->Destroy(G->blas);
    if (G->weights) G->cu->MemFree(G->weights);
    free(G->q3set);
    free(G->tslot);
    free(G->tstep);
    if (G->mod) G->cu->ModuleUnload(G->mod);
    if (G->stream) G->cu->StreamDestroy(G->stream);
    if (G->ctx) G->cu->DevicePrimaryCtxRelease(G->dev);
    free(G);
    m->gpu = NULL;
}

const char *qrt_cuda_device_name(const qrt_model *m) { return m->gpu ? m->gpu->name : "cpu"; }

/* The records (kernels.cu QK_TRACE: per launch, block 0's start and the end of its dependency wait, in
 * launch order) of the last R replayed decode steps: each replay's kernels and the eager ones after it
 * (sampling) up to the next replay. A kernel's time runs from the end of its wait (its predecessor done) to
 * the end of the next kernel's (itself done): the critical path of the step, kernel by kernel. "early" is
 * how long before that its block 0 was already running (programmatic dependent launch). The last row runs
 * to the next replay's first wait, so it includes the host's turn between steps. */
int qrt_cuda_trace_report(const qrt_model *m, FILE *f) {
    struct qrt_gpu *G = m->gpu;
    if (!G || !G->tslot || G->n_tstep < 1 || G->n_treplay < 3 || G->failed[0]) return -1;
    uint32_t cnt = 0, nr = G->n_treplay < 64 ? G->n_treplay : 64;
    uint64_t(*rec)[2] = malloc(sizeof(uint64_t[TRACE_N][2]));
    if (!rec || CK(G->cu->StreamSynchronize(G->stream)) || CK(G->cu->MemcpyDtoH(&cnt, G->trace_n, 4)) ||
        CK(G->cu->MemcpyDtoH(rec, G->trace, sizeof(uint64_t[TRACE_N][2]))) || cnt != G->tcount) {
        if (rec && cnt != G->tcount)
            fprintf(stderr, "trace: %u device records, %u launches noted; no time line\n", cnt, G->tcount);
        free(rec);
        return -1;
    }
    /* the last replay's period (its kernels and the eager ones after it), and the replays before it with
     * the same period whose records are all still in the ring */
    uint32_t last = G->treplay[(G->n_treplay - 2) % 64], per = G->treplay[(G->n_treplay - 1) % 64] - last;
    int32_t R = 0;
    double *dt = calloc(per, sizeof(double)), *early = calloc(per, sizeof(double)), total = 0;
    for (uint32_t r = 1; r < nr && dt && early; r++) {
        uint32_t a = G->treplay[(G->n_treplay - 1 - r) % 64], b = G->treplay[(G->n_treplay - r) % 64];
        if (b - a != per || cnt - a > TRACE_N) break;
        for (uint32_t i = 0; i < per; i++) {
            const uint64_t *x = rec[(a + i) % TRACE_N], *y = rec[(a + i + 1) % TRACE_N];
            dt[i] += (double)(y[1] - x[1]) / 1e3, early[i] += (double)(x[1] - x[0]) / 1e3;
        }
        R++;
    }
    if (R < 1) {
        free(rec), free(dt), free(early);
        return -1;
    }
    for (uint32_t i = 0; i < per; i++) dt[i] /= R, early[i] /= R, total += dt[i];
    fprintf(f, "\nTime line of a decode step (mean of %d replayed steps; %u kernels: %d in the graph, %u after it; "
               "%.1f us):\n\n| # | kernel | us | early us |\n|---|---|---|---|\n",
            R, per, (int)G->n_tstep, per - (uint32_t)G->n_tstep, total);
    for (uint32_t i = 0; i < per; i++) {
        int16_t sl = G->tslot[(last + i) % TRACE_N];
        fprintf(f, "| %u | `%s`%s | %.2f | %.2f |\n", i, sl >= 0 ? G->fns[sl].name : "?",
                i == per - 1 ? " (to the next step)" : "", dt[i], early[i]);
    }
    fprintf(f, "\n| kernel | per step | us per step | share |\n|---|---|---|---|\n"); /* by kernel, first seen first */
    for (uint32_t i = 0; i < per; i++) {
        int16_t sl = G->tslot[(last + i) % TRACE_N];
        int32_t seen = 0, c = 0;
        double sum = 0;
        for (uint32_t j = 0; j < i && !seen; j++) seen = G->tslot[(last + j) % TRACE_N] == sl;
        if (seen) continue;
        for (uint32_t j = i; j < per; j++)
            if (G->tslot[(last + j) % TRACE_N] == sl) c++, sum += dt[j];
        fprintf(f, "| `%s` | %d | %.1f | %.1f%% |\n", sl >= 0 ? G->fns[sl].name : "?", c, sum, 100 * sum / total);
    }
    free(rec), free(dt), free(early);
    return 0;
}
const char *qrt_cuda_error(const qrt_model *m) {
    return m->gpu && m->gpu->failed[0] ? m->gpu->failed : NULL;
}

/* cuBLAS for prefill GEMMs, opened on first use (never inside a capture:
 * only steps of more than 8 tokens use it, and those are not captured). */
static int cublas_on(struct qrt_gpu *G) {
    if (G->use_cublas >= 0) return G->use_cublas == 1;
    G->use_cublas = 0;
    if ((G->cublas = qrt_cublas_load()) != NULL && G->cublas->Create(&G->blas) == 0) {
        if (G->cublas->SetStream(G->blas, G->stream) == 0) G->use_cublas = 1;
        else G->cublas->Destroy(G->blas), G->blas = NULL;
    }
    return G->use_cublas;
}

/* ---- contexts ---- */

#define NROPE 8

struct qrt_gpu_ctx {
    qrt_cu_ptr bufs[32];
    qrt_cu_ptr kc, vc;      /* [n_layers][n_ctx][kv_heads * head_dim], f32 or f16 */
    qrt_cu_ptr step;        /* int32 [4 + max_batch] */
    int32_t *h_step;        /* pinned twin */
    float *h_logits;        /* pinned [max_batch, vocab] */
    qrt_cu_ptr part;        /* attention splits [heads, nsplit, head_dim + 4], then heads counters */
    qrt_cu_ptr cnt;         /* inside part: splits done per head (qk_attn_* resets them) */
    int32_t nsplit, minsplit; /* decode attention blocks per head: launched, used at least */
    qrt_cu_ptr x16, w16;    /* cuBLAS prefill: activations and a weight tile in f16 */
    qrt_cu_ptr i8x;         /* W8A8: the step's tokens as int8 [rows, Kp] and their scales */
    size_t i8x_size;
    qrt_cu_ptr qgp;         /* fused prefill GEMM: split-k parts [S, rows, N] (QRT_QG_PART bytes), then x as f16
                             * [max_batch, qgx_k] in the kernel's k order (qk_qgemm_x16) */
    int32_t qgx_k;
    struct { /* what qgx holds: x = a [rows, K] in the order of P, valid while G->writes is at */
        qrt_cu_ptr a;
        int32_t rows, K, P;
        uint64_t at;
    } qgx_of;
    size_t x16_elems, w16_elems;
    struct {
        float theta;
        int32_t hd;
        qrt_cu_ptr inv;
    } rope[NROPE];
    int32_t n_rope;
    qrt_cu_graph graph;
    qrt_cu_graph_exec exec;
    int32_t decode_steps, graph_off;
    qrt_cu_ptr topk;        /* sampling candidates: float [QRT_TOPK_MAX] + int32 [QRT_TOPK_MAX], where qk_topk
                             * writes them: h_cand itself when kernels address pinned memory, else device memory */
    float *h_cand;          /* pinned: the candidates on the host */
    qrt_cu_event cand_ev;   /* recorded after qk_topk (and the copy) */
    /* look-ahead (greedy, a captured step): qk_topk also wrote its id and the next position into the step
     * block and the step for them is queued already; qrt_cuda_run with exactly that token and position
     * then has nothing to do */
    int32_t ahead, ahead_tok, ahead_pos;
};

static qrt_cu_ptr dalloc(struct qrt_gpu *G, size_t n, int *ok) {
    qrt_cu_ptr p = 0;
    if (*ok && CK(G->cu->MemAlloc(&p, n ? n : 16))) *ok = 0;
    return p;
}

/* Prefill of packed weights dequantizes them into an f16 scratch, then one
 * cuBLAS GEMM per tile of rows (qrt_cuda_linear). One GEMM over a whole
 * linear is faster than several over parts of it (Llama-2-7B 4-bit, 512
 * tokens: 14.7k tok/s with 32 MB tiles, 17.2k with whole linears;
 * docs/performance.md, session 11), so the scratch holds the model's widest
 * linear (every linear has the hidden size on one side), up to
 * QRT_W16_CAP elements; wider ones go in equal tiles. */
#define QRT_W16_CAP ((size_t)64 << 20) /* 128 MB */
/* The widest linear input of the model (hidden, FFN or q width). */
static int32_t widest_input(const int32_t *cfg) {
    int32_t kmax = cfg[QRT_CFG_DIM] > cfg[QRT_CFG_FFN_DIM] ? cfg[QRT_CFG_DIM] : cfg[QRT_CFG_FFN_DIM];
    int32_t qd = cfg[QRT_CFG_N_HEADS] * cfg[QRT_CFG_HEAD_DIM];
    return qd > kmax ? qd : kmax;
}
static size_t prefill_w16_elems(const int32_t *cfg) {
    size_t kmax = (size_t)widest_input(cfg), n = kmax * (size_t)cfg[QRT_CFG_DIM];
    if (n > QRT_W16_CAP) n = QRT_W16_CAP;
    if (n < ((size_t)16 << 20)) n = (size_t)16 << 20; /* the W8A8 GEMM's int32 scratch too (i8_linear) */
    if (n < kmax * 64) n = kmax * 64;
    return n;
}
/* Rows per tile of an N x K weight: equal tiles that fit the scratch. */
static int32_t prefill_tile(size_t w16_elems, int32_t K, int32_t N) {
    int32_t cap = (int32_t)(w16_elems / (size_t)K);
    if (cap < 1) cap = 1; /* K wider than the scratch: cannot happen within the model's widths (kmax * 64) */
    int32_t nt = (N + cap - 1) / cap;
    int32_t tile = (N + nt - 1) / nt;
    tile = (tile + 7) / 8 * 8;
    return tile < cap ? tile : cap;
}

/* K rounded up to whole k-steps: the width of the fused GEMM's f16 x (qk_qgemm_x16) */
static int32_t qg_kp(int32_t K) { return (K + QRT_QG_BK - 1) / QRT_QG_BK * QRT_QG_BK; }
static size_t qgx_bytes(int32_t rows, int32_t K) { return (size_t)rows * qg_kp(K) * 2; }
static int32_t qgemm_splits(int32_t T, int32_t K, int32_t N) {
    int64_t base = (int64_t)((N + QRT_QG_BN - 1) / QRT_QG_BN) * ((T + QRT_QG_BM - 1) / QRT_QG_BM);
    int32_t steps = (K + QRT_QG_BK - 1) / QRT_QG_BK;
    int64_t S = QRT_QG_SLOTS / base; /* one wave: a partial second one costs a whole block's time */
    if (S > steps / 8) S = steps / 8; /* at least 8 k-steps a block */
    while (S > 1 && (size_t)S * T * N * sizeof(float) > QRT_QG_PART) S--;
    return S < 1 ? 1 : (int32_t)S;
}

static int32_t qgemms_splits(int32_t T, int32_t nt, int32_t K, int32_t N) {
    int32_t base = (N + QRT_QS_BN(nt) - 1) / QRT_QS_BN(nt), chunks = ((K + 31) / 32 + 3) / 4;
    int32_t S = QRT_QS_SLOTS * (nt <= 2 ? 2 : 1) / base; /* kernels.cu QK_QS_MINB */
    if (S > chunks / 4) S = chunks / 4; /* at least 4 chunks a block */
    while (S > 1 && (size_t)S * T * N * sizeof(float) > QRT_QG_PART) S--;
    return S < 1 ? 1 : S;
}

int32_t qrt_qgemm_min_rows(int32_t bits) {
    /* fewer rows: the 4-row GEMV is as fast or faster (2 rows: 5% faster end to end; 8 bits at 4 rows: 1.4x
     * faster at 14336 x 4096; docs/performance.md, session 13) */
    return bits == 8 ? 5 : 4;
}

qrt_qgemm_plan qrt_qgemm_plan_of(int32_t rows, int32_t bits, int32_t K, int32_t N, int small, int64_t smem_optin) {
    qrt_qgemm_plan p;
    memset(&p, 0, sizeof p);
    /* up to 64 tokens: the register-dequantizing kernel for 8 nt tokens, where the module has it and the
     * device's shared memory holds its ring (else the tiled one); 8 bits: the tiled kernel is faster from 9
     * tokens (docs/performance.md, session 13) */
    int32_t nt = rows <= 8 ? 1 : rows <= 16 ? 2 : rows <= 32 ? 4 : rows <= 64 ? 8 : 0;
    if (!small || (bits == 8 && nt > 1) || (int64_t)QRT_QS_SMEM(bits, nt) > smem_optin) nt = 0;
    p.nt = nt;
    p.P = bits == 8 ? 4 : bits == 2 ? 16 : 8, p.Kp = qg_kp(K);
    if (nt) {
        p.S = qgemms_splits(rows, nt, K, N), p.gx = (unsigned)((N + QRT_QS_BN(nt) - 1) / QRT_QS_BN(nt)), p.gz = 1;
        p.smem = QRT_QS_SMEM(bits, nt);
    } else {
        p.S = qgemm_splits(rows, K, N), p.gx = (unsigned)((N + QRT_QG_BN - 1) / QRT_QG_BN);
        p.gz = (unsigned)((rows + QRT_QG_BM - 1) / QRT_QG_BM), p.smem = QRT_QG_SMEM(bits);
    }
    p.ok = (int64_t)p.smem <= smem_optin;
    return p;
}

/* Before allocating a context: do its buffers and KV cache fit in what the
 * device has free? If not, one line in msg saying how much they need. */
static int ctx_fits(const qrt_ctx *c, char *msg, size_t cap) {
    struct qrt_gpu *G = c->m->gpu;
    const int32_t *cfg = c->m->cfg;
    size_t fr = 0, tot = 0, need = 0;
    if (G->cu->MemGetInfo(&fr, &tot) != 0) return 0;
    for (int32_t i = 0; i < cfg[QRT_CFG_N_BUFS]; i++) need += (size_t)c->max_batch * c->m->buf_widths[i] * sizeof(float);
    size_t kv = 2 * (size_t)cfg[QRT_CFG_N_LAYERS] * c->n_ctx * cfg[QRT_CFG_N_KV_HEADS] * cfg[QRT_CFG_HEAD_DIM] *
                (G->kv_f16 ? 2 : 4);
    need += kv;
    if (G->use_cublas) /* qrt_cuda_ctx_init's prefill scratch */
        need += 2 * ((size_t)c->max_batch * widest_input(cfg) + prefill_w16_elems(cfg));
    if (fn_get(G, "qk_qgemm_reduce")) need += QRT_QG_PART + qgx_bytes(c->max_batch, widest_input(cfg));
    if (need <= fr) return 0;
    snprintf(msg, cap, "out of GPU memory: a context of %d tokens needs %.2f GB (KV cache %.2f GB), the GPU has "
             "%.2f GB free (of %.2f GB)", (int)c->n_ctx, (double)need / 1e9, (double)kv / 1e9, (double)fr / 1e9,
             (double)tot / 1e9);
    return -1;
}

int qrt_cuda_ctx_init(qrt_ctx *c, char *msg, size_t cap) {
    struct qrt_gpu *G = c->m->gpu;
    const int32_t *cfg = c->m->cfg;
    if (ctx_fits(c, msg, cap)) return -1;
    struct qrt_gpu_ctx *X = calloc(1, sizeof *X);
    if (!X) {
        snprintf(msg, cap, "out of memory");
        return -1;
    }
    c->gpu = X;
    int ok = !G->failed[0];
    int32_t nb = cfg[QRT_CFG_N_BUFS];
    for (int32_t i = 0; i < nb && i < 32; i++) {
        X->bufs[i] = dalloc(G, (size_t)c->max_batch * c->m->buf_widths[i] * sizeof(float), &ok);
        c->bufs[i] = (float *)(uintptr_t)X->bufs[i];
    }
    size_t esize = G->kv_f16 ? 2 : 4;
    size_t kv = (size_t)cfg[QRT_CFG_N_LAYERS] * c->n_ctx * cfg[QRT_CFG_N_KV_HEADS] * cfg[QRT_CFG_HEAD_DIM] * esize;
    X->kc = dalloc(G, kv, &ok);
    X->vc = dalloc(G, kv, &ok);
    X->step = dalloc(G, (4 + (size_t)c->max_batch) * sizeof(int32_t), &ok);
    /* Decode attention splits: the graph fixes the number of blocks per head, enough for about 128
     * positions each at the full context (at most 8 blocks per SM, at least 64 positions each); the
     * kernel uses as many as the current length needs (kernels.cu QK_ATT_SPOS), at least `minsplit`
     * (2 blocks per SM) (bench/NOTES-gemv.md, session 4). */
    int32_t heads = cfg[QRT_CFG_N_HEADS], hd = cfg[QRT_CFG_HEAD_DIM];
    int32_t lo = (2 * G->sms + heads - 1) / heads, hi = (8 * G->sms + heads - 1) / heads;
    int32_t want = c->n_ctx / 128, maxs = (c->n_ctx + 63) / 64;
    if (want < lo) want = lo;
    if (want > hi) want = hi;
    if (want > maxs) want = maxs;
    if (want > 1024) want = 1024; /* kernels.cu QK_ATT_MAXS */
    if (want < 1) want = 1;
    int32_t chunk = ((c->n_ctx + want - 1) / want + 63) / 64 * 64;
    X->nsplit = (c->n_ctx + chunk - 1) / chunk;
    X->minsplit = lo < X->nsplit ? lo : X->nsplit;
    size_t pbytes = (size_t)heads * X->nsplit * (hd + 4) * sizeof(float);
    X->part = dalloc(G, pbytes + (size_t)heads * sizeof(uint32_t), &ok);
    X->cnt = X->part + pbytes;
    if (ok && (CK(G->cu->MemsetD8(X->cnt, 0, (size_t)heads * sizeof(uint32_t))) || CK(G->cu->CtxSynchronize())))
        ok = 0;
    int32_t kmax = widest_input(cfg);
    if (G->use_cublas) { /* scratch for cuBLAS prefill (not yet loaded: -1) */
        X->x16_elems = (size_t)c->max_batch * kmax;
        X->w16_elems = prefill_w16_elems(cfg);
        X->x16 = dalloc(G, X->x16_elems * 2, &ok);
        X->w16 = dalloc(G, X->w16_elems * 2, &ok);
    }
    if (fn_get(G, "qk_qgemm_reduce")) { /* packed weights: the fused GEMM's scratch */
        X->qgx_k = qg_kp(kmax);
        X->qgp = dalloc(G, QRT_QG_PART + qgx_bytes(c->max_batch, kmax), &ok);
    }
    if (fn_get(G, "qk_i8_quant")) { /* W8A8 linears: int8 tokens and scales */
        X->i8x_size = (size_t)c->max_batch * ((kmax + 31) / 32 * 32 + 4) + 64;
        X->i8x = dalloc(G, X->i8x_size, &ok);
    }
    size_t lsize = (size_t)c->max_batch * cfg[QRT_CFG_VOCAB] * sizeof(float);
    if (ok && (CK(G->cu->MemAllocHost((void **)&X->h_step, (4 + (size_t)c->max_batch) * sizeof(int32_t))) ||
               CK(G->cu->MemAllocHost((void **)&X->h_logits, lsize))))
        ok = 0;
    if (ok) {
        memset(X->h_step, 0, (4 + (size_t)c->max_batch) * sizeof(int32_t));
        ok = !CK(G->cu->MemcpyHtoD(X->step, X->h_step, (4 + (size_t)c->max_batch) * sizeof(int32_t)));
    }
    if (!ok) {
        snprintf(msg, cap, "%s", G->failed[0] ? G->failed : "out of GPU memory");
        G->failed[0] = '\0'; /* the model stays usable for a smaller context */
        qrt_cuda_ctx_release(c);
        return -1;
    }
    return 0;
}

void qrt_cuda_ctx_release(qrt_ctx *c) {
    struct qrt_gpu_ctx *X = c->gpu;
    if (!X) return;
    struct qrt_gpu *G = c->m->gpu;
    const qrt_cu_api *cu = G->cu;
    G->pend.on = 0, G->plin.n = 0, G->prope.n = 0; /* the context's buffers are going away */
    G->pnorm.on = 0, G->psilu.on = 0;
    cu->StreamSynchronize(G->stream);
    if (X->exec) cu->GraphExecDestroy(X->exec);
    if (X->graph) cu->GraphDestroy(X->graph);
    for (int i = 0; i < 32; i++)
        if (X->bufs[i]) cu->MemFree(X->bufs[i]);
    if (X->cand_ev) cu->EventDestroy(X->cand_ev);
    if (X->h_cand && X->topk != (qrt_cu_ptr)(uintptr_t)X->h_cand) cu->MemFree(X->topk);
    X->topk = 0;
    if (X->h_cand) cu->MemFreeHost(X->h_cand);
    qrt_cu_ptr ps[] = {X->kc, X->vc, X->step, X->part, X->x16, X->w16, X->i8x, X->qgp};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
        if (ps[i]) cu->MemFree(ps[i]);
    for (int32_t i = 0; i < X->n_rope; i++) cu->MemFree(X->rope[i].inv);
    if (X->h_step) cu->MemFreeHost(X->h_step);
    if (X->h_logits) cu->MemFreeHost(X->h_logits);
    free(X);
    c->gpu = NULL;
    for (int32_t i = 0; i < c->m->cfg[QRT_CFG_N_BUFS] && c->bufs; i++) c->bufs[i] = NULL;
}

/* One replay of the captured decode step (noted for --cuda-trace). */
static void replay(struct qrt_gpu *G, struct qrt_gpu_ctx *X) {
    if (G->tslot) trace_replay(G);
    CK(G->cu->GraphLaunch(X->exec, G->stream));
    G->writes++;
}

/* The decode step as a graph: captured on the second one-token step. */
static void run_captured(qrt_ctx *c) {
    struct qrt_gpu *G = c->m->gpu;
    struct qrt_gpu_ctx *X = c->gpu;
    if (!X->exec) {
        G->capturing = 1;
        G->n_tstep = 0;
        G->capture_failed = 0;
        qrt_cu_result r = G->cu->StreamBeginCapture(G->stream, 2 /* CU_STREAM_CAPTURE_MODE_RELAXED */);
        if (r == 0) {
            c->m->forward(c);
            flush(G);
            r = G->cu->StreamEndCapture(G->stream, &X->graph);
        }
        G->capturing = 0;
        if (r == 0 && !G->capture_failed)
            r = G->cu->GraphInstantiateWithFlags(&X->exec, X->graph, 0);
        if (r != 0 || G->capture_failed) {
            if (X->graph) G->cu->GraphDestroy(X->graph);
            X->graph = NULL;
            X->exec = NULL;
            X->graph_off = 1; /* eager from now on */
            c->m->forward(c);
            flush(G);
            return;
        }
    }
    replay(G, X);
}

int qrt_cuda_step_upload(qrt_ctx *c) {
    struct qrt_gpu *G = c->m->gpu;
    struct qrt_gpu_ctx *X = c->gpu;
    int32_t n = c->n_tokens;
    flush(G);
    X->h_step[0] = n;
    X->h_step[1] = c->pos;
    if (c->tokens) memcpy(X->h_step + 4, c->tokens, (size_t)n * sizeof(int32_t));
    return CK(G->cu->MemcpyHtoDAsync(X->step, X->h_step, (4 + (size_t)n) * sizeof(int32_t), G->stream));
}

int qrt_cuda_run(qrt_ctx *c) {
    struct qrt_gpu *G = c->m->gpu;
    struct qrt_gpu_ctx *X = c->gpu;
    if (G->failed[0]) return -1;
    if (X->ahead) { /* queued by qrt_cuda_topk for this token and position? */
        X->ahead = 0;
        if (c->n_tokens == 1 && !c->logits_all && c->tokens && c->tokens[0] == X->ahead_tok &&
            c->pos == X->ahead_pos)
            return 0;
    }
    if (qrt_cuda_step_upload(c)) return -1;
    int32_t n = c->n_tokens;
    if (n == 1 && !c->logits_all && !G->no_graph && !X->graph_off && X->decode_steps++ > 0)
        run_captured(c);
    else
        c->m->forward(c);
    flush(G);
    return G->failed[0] ? -1 : 0;
}

const float *qrt_cuda_logits(qrt_ctx *c) {
    struct qrt_gpu *G = c->m->gpu;
    struct qrt_gpu_ctx *X = c->gpu;
    int32_t rows = c->logits_all ? c->n_tokens : 1, vocab = c->m->cfg[QRT_CFG_VOCAB];
    flush(G);
    if (X->ahead) { /* the logits buffer is the queued step's now */
        snprintf(G->failed, sizeof G->failed, "internal: logits read after the next step was queued (look-ahead)");
        return NULL;
    }
    CK(G->cu->MemcpyDtoHAsync(X->h_logits, X->bufs[c->m->cfg[QRT_CFG_LOGITS_BUF]],
                              (size_t)rows * vocab * sizeof(float), G->stream));
    CK(G->cu->StreamSynchronize(G->stream));
    return G->failed[0] ? NULL : X->h_logits;
}

const float *qrt_cuda_forward(qrt_ctx *c) {
    return qrt_cuda_run(c) ? NULL : qrt_cuda_logits(c);
}

/* The candidates' buffers: pinned host memory written by qk_topk directly where kernels can address it
 * (unified addressing), else device memory copied after it; an event to wait for them alone. */
static int cand_init(struct qrt_gpu *G, struct qrt_gpu_ctx *X) {
    if (CK(G->cu->MemAllocHost((void **)&X->h_cand, QRT_TOPK_MAX * 8)) || CK(G->cu->EventCreate(&X->cand_ev, 2)))
        return -1; /* 2: CU_EVENT_DISABLE_TIMING */
    if (G->uva) X->topk = (qrt_cu_ptr)(uintptr_t)X->h_cand;
    else if (dev_alloc(G, &X->topk, QRT_TOPK_MAX * 8, "sampling candidates", G->name))
        return -1;
    return 0;
}

int32_t qrt_cuda_topk(qrt_ctx *c, int32_t k, float *val, int32_t *idx) {
    struct qrt_gpu *G = c->m->gpu;
    struct qrt_gpu_ctx *X = c->gpu;
    int32_t vocab = c->m->cfg[QRT_CFG_VOCAB];
    if (k < 1 || k > QRT_TOPK_MAX || k > vocab) return -2;
    flush(G);
    if (G->failed[0] || (!X->cand_ev && cand_init(G, X))) return -1;
    if (X->ahead) { /* the logits buffer is the queued step's now */
        snprintf(G->failed, sizeof G->failed, "internal: sampling twice after the next step was queued (look-ahead)");
        return -1;
    }
    /* greedy after a captured step: the next step (this id at the next position, as qrt_cuda_run would
     * write the step block) is queued right behind qk_topk, so the GPU does not wait for the host's turn */
    int32_t next = c->pos + c->n_tokens;
    int ahead = k == 1 && G->lookahead && X->exec && !X->graph_off && !G->no_graph && next < c->n_ctx;
    qrt_cu_ptr lg = X->bufs[c->m->cfg[QRT_CFG_LOGITS_BUF]], v = X->topk, ix = X->topk + QRT_TOPK_MAX * 4;
    qrt_cu_ptr st = ahead ? X->step : 0;
    void *args[] = {&lg, &vocab, &k, &v, &ix, &st, &next};
    launch(G, fn_need(G, "qk_topk"), 1, 1, 1, 1024, 0, args);
    if (X->topk != (qrt_cu_ptr)(uintptr_t)X->h_cand) {
        CK(G->cu->MemcpyDtoHAsync(X->h_cand, v, (size_t)k * 4, G->stream));
        CK(G->cu->MemcpyDtoHAsync(X->h_cand + QRT_TOPK_MAX, ix, (size_t)k * 4, G->stream));
    }
    CK(G->cu->EventRecord(X->cand_ev, G->stream));
    if (ahead && !G->failed[0]) {
        X->decode_steps++;
        replay(G, X);
    }
    CK(G->cu->EventSynchronize(X->cand_ev));
    if (G->failed[0]) return -1;
    memcpy(val, X->h_cand, (size_t)k * sizeof(float));
    memcpy(idx, X->h_cand + QRT_TOPK_MAX, (size_t)k * sizeof(int32_t));
    if (ahead) X->ahead = 1, X->ahead_tok = idx[0], X->ahead_pos = next;
    return k;
}

int qrt_cuda_sync(qrt_ctx *c) {
    struct qrt_gpu *G = c->m->gpu;
    flush(G);
    CK(G->cu->StreamSynchronize(G->stream));
    return G->failed[0] ? -1 : 0;
}

/* ---- the kernels ---- */

#define DEV(p) ((qrt_cu_ptr)(uintptr_t)(p))

/* A weight (or bias) pointer inside the embedded blob -> its device copy. */
static qrt_cu_ptr wdev(struct qrt_gpu *G, const void *w) {
    if (!w) return 0;
    return G->weights + (qrt_cu_ptr)((const uint8_t *)w - G->host_weights);
}

static const char *dt_name(int32_t dt) {
    static const char *const n[] = {"f32", "f16", "bf16", "q2", "q3", "q4", "q8", "i8"};
    return dt >= 0 && dt < 8 ? n[dt] : "?";
}

/* 3-bit weights are read on the device in a layout of their own (kernels.cu qk_q3w3): each one is
 * repacked in place the first time a kernel is about to read it, which is never inside a capture (the
 * first step of every context runs eagerly), and the host waits for that so no later kernel, started
 * early by programmatic dependent launch, can see the old bytes. */
static size_t q3_slot(const struct qrt_gpu *G, qrt_cu_ptr p) {
    size_t i = (size_t)((p >> 4) * 0x9E3779B97F4A7C15ull >> 20) & (G->q3cap - 1);
    while (G->q3set[i] && G->q3set[i] != p) i = (i + 1) & (G->q3cap - 1);
    return i;
}
static void q3_ready(struct qrt_gpu *G, qrt_cu_ptr wp, int32_t K, int32_t N) {
    if (G->failed[0] || (G->q3cap && G->q3set[q3_slot(G, wp)] == wp)) return;
    if (G->capturing) {
        snprintf(G->failed, sizeof G->failed, "a 3-bit weight was first used inside a CUDA graph capture");
        return;
    }
    if (2 * (G->q3n + 1) > G->q3cap) { /* grow: at most half full */
        size_t oc = G->q3cap, nc = oc ? 2 * oc : 256;
        qrt_cu_ptr *old = G->q3set, *nw = calloc(nc, sizeof *nw);
        if (!nw) {
            snprintf(G->failed, sizeof G->failed, "out of memory");
            return;
        }
        G->q3set = nw, G->q3cap = nc;
        for (size_t i = 0; i < oc; i++)
            if (old[i]) G->q3set[q3_slot(G, old[i])] = old[i];
        free(old);
    }
    qrt_cu_function f = fn_need(G, "qk_repack_q3");
    if (!f) return;
    size_t blocks = (size_t)N * (size_t)((K + 31) / 32);
    void *args[] = {&wp, &K, &N};
    if (CK(G->cu->LaunchKernel(f, grid_for(blocks, 256), 1, 1, 256, 1, 1, 0, G->stream, args, NULL)))
        return;
    if (G->tslot) trace_launch(G, f);
    if (CK(G->cu->StreamSynchronize(G->stream))) return;
    G->q3set[q3_slot(G, wp)] = wp;
    G->q3n++;
}

/* The device address of a linear's weight, 3-bit ones in the device layout. */
static qrt_cu_ptr wlin(struct qrt_gpu *G, const void *w, int32_t dt, int32_t K, int32_t N) {
    qrt_cu_ptr wp = wdev(G, w);
    if (dt == QRT_DT_Q3 && wp) q3_ready(G, wp, K, N);
    return wp;
}

void qrt_cuda_k_embed(qrt_ctx *c, float *out, const float *a, const float *b, const float *cc, const void *w,
                      const void *bias, int32_t wdtype, int32_t dim, int32_t p1, int32_t p2, int32_t p3,
                      float f0) {
    (void)a, (void)b, (void)cc, (void)bias, (void)p1, (void)p2, (void)p3, (void)f0;
    struct qrt_gpu *G = c->m->gpu;
    char name[64];
    flush(G);
    snprintf(name, sizeof name, "qk_embed_%s", dt_name(wdtype));
    qrt_cu_ptr o = DEV(out), wp = wdev(G, w), st = c->gpu->step;
    int32_t vocab = c->m->cfg[QRT_CFG_VOCAB];
    void *args[] = {&o, &wp, &st, &dim, &vocab};
    launch(G, fn_need(G, name), (unsigned)c->n_tokens, 1, 1, 128, 0, args);
}

void qrt_cuda_k_rmsnorm(qrt_ctx *c, float *out, const float *a, const float *b, const float *cc, const void *w,
                        const void *bias, int32_t wdtype, int32_t dim, int32_t p1, int32_t p2, int32_t p3,
                        float eps) {
    (void)b, (void)cc, (void)bias, (void)p1, (void)p2, (void)p3;
    struct qrt_gpu *G = c->m->gpu;
    char name[64];
    qrt_cu_ptr o = DEV(out), x = DEV(a), wp = wdev(G, w);
    /* x stays in registers: up to 4 float4 per thread (kernels.cu rmsnorm_core) */
    unsigned threads = (unsigned)((dim + 16 * 32 - 1) / (16 * 32) * 32);
    threads = threads < 128 ? 128 : threads > 1024 ? 1024 : threads;
    if (G->pend.on == PEND_ADD && G->pend.out == x && G->pend.width == dim && G->pend.rows == c->n_tokens) {
        G->pend.on = 0; /* the residual add that made x: one kernel writes both */
        snprintf(name, sizeof name, "qk_add_rmsnorm_%s", dt_name(wdtype));
        void *args[] = {&o, &G->pend.out, &G->pend.a, &G->pend.b, &wp, &dim, &eps};
        launch(G, fn_need(G, name), (unsigned)c->n_tokens, 1, 1, threads, 0, args);
        return;
    }
    flush(G);
    if (G->fuse_norm && c->n_tokens == 1 && o != x && !G->failed[0]) { /* held: the linears after it may take it */
        G->pnorm.on = 1, G->pnorm.out = o, G->pnorm.x = x, G->pnorm.w = wp;
        G->pnorm.wdt = wdtype, G->pnorm.dim = dim, G->pnorm.eps = eps;
        return;
    }
    snprintf(name, sizeof name, "qk_rmsnorm_%s", dt_name(wdtype));
    void *args[] = {&o, &x, &wp, &dim, &eps};
    launch(G, fn_need(G, name), (unsigned)c->n_tokens, 1, 1, threads, 0, args);
}

/* Launches the held RMSNorm on its own (one token). */
static void norm_now(struct qrt_gpu *G) {
    char name[64];
    int32_t dim = G->pnorm.dim;
    float eps = G->pnorm.eps;
    unsigned threads = (unsigned)((dim + 16 * 32 - 1) / (16 * 32) * 32);
    threads = threads < 128 ? 128 : threads > 1024 ? 1024 : threads;
    G->pnorm.on = 0;
    snprintf(name, sizeof name, "qk_rmsnorm_%s", dt_name(G->pnorm.wdt));
    void *args[] = {&G->pnorm.out, &G->pnorm.x, &G->pnorm.w, &dim, &eps};
    launch(G, fn_need(G, name), 1, 1, 1, threads, 0, args);
}

/* Launches the held SILU_MUL + GEMV (silu_linear), with the residual add in its epilogue if one came. */
static void silu_now(struct qrt_gpu *G) {
    G->psilu.on = 0;
    int32_t rows = 1, sv = G->psilu.sv;
    void *args[] = {&G->psilu.w, &G->psilu.bias, &G->psilu.a, &G->psilu.b, &G->psilu.xo, &G->psilu.y, &rows, &sv,
                    &G->psilu.res};
    launch(G, G->psilu.f, G->psilu.grid, 1, 1, G->psilu.threads, (size_t)G->psilu.smem, args);
}

static void linear_now(qrt_ctx *c, qrt_cu_ptr out, qrt_cu_ptr a, int32_t rows, const void *w, const void *bias,
                       int32_t dt, int32_t K, int32_t N, int32_t group, int32_t sym, qrt_cu_ptr res);
/* A shape-specialized GEMV kernel by its name (n characters in name[cap]): the one of 8 warps a block
 * ("_w8", qc_cuda_gemv_warps) if the module has it, *warps = 8, else the name itself (*warps = 0, the
 * module's); name keeps the suffix of the one found. NULL: neither. */
static qrt_cu_function gemv_fn(struct qrt_gpu *G, char *name, size_t n, size_t cap, int32_t *warps) {
    *warps = 0;
    if (n + 4 < cap) {
        memcpy(name + n, "_w8", 4);
        qrt_cu_function f = fn_get(G, name);
        if (f) return *warps = 8, f;
        name[n] = '\0';
    }
    return fn_get(G, name);
}

/* The kernel `name` (n characters; with norm, the held RMSNorm's weight dtype is appended) for the pending
 * linears' x, its launch shape in *sh; NULL: the module has no such kernel, or with norm x does not fit the
 * one-piece staging the norm needs (kernels.cu gemv_mma: `fused`). */
static qrt_cu_function merged_fn(struct qrt_gpu *G, char *name, int n, size_t cap, int norm, qrt_gemv_shape *sh) {
    if (norm) n += snprintf(name + n, cap - (size_t)n, "_%s", dt_name(G->pnorm.wdt));
    int32_t warps = 0;
    qrt_cu_function f = gemv_fn(G, name, (size_t)n, cap, &warps);
    if (!f) return NULL;
    *sh = qrt_gemv_shape_w(&G->blob, G->plin.dt, G->plin.K, 1, warps);
    return norm && (sh->sv < G->plin.K || sh->sv > 32 * sh->threads) ? NULL : f;
}

/* Row tiles per block for `tiles` tiles of kernel f: as few as fill the blocks that fit on the device. */
static int32_t merged_m(struct qrt_gpu *G, qrt_cu_function f, const char *name, const qrt_gemv_shape *sh,
                        int32_t tiles) {
    int32_t mb = fn_max_blocks(G, f, name, sh->threads, sh->smem), m = (tiles + mb - 1) / mb;
    return m < 1 ? 1 : m > sh->mmax ? sh->mmax : m;
}

/* Pending linears i .. i + k - 1 (k 2 or 3) as one qk_gemvm_* kernel, or with norm as one qk_gemvmn_* kernel
 * that also does the held RMSNorm; 0: the module has no such kernel (nothing launched). */
static int multi_now(struct qrt_gpu *G, int32_t i, int32_t k, int norm) {
    char name[160];
    int n = snprintf(name, sizeof name, "qk_gemvm%s_%s_k%d_n%d_n%d_n%d_g%d_%c", norm ? "n" : "", dt_name(G->plin.dt),
                     (int)G->plin.K, (int)G->plin.N[i], k > 1 ? (int)G->plin.N[i + 1] : 0,
                     k > 2 ? (int)G->plin.N[i + 2] : 0, (int)G->plin.g, G->plin.s ? 's' : 'a');
    qrt_gemv_shape sh;
    qrt_cu_function f = merged_fn(G, name, n, sizeof name, norm, &sh);
    if (!f) return 0;
    if (fn_smem(G, f, name, sh.smem)) return 1;
    int32_t tiles = 0;
    for (int32_t j = 0; j < k; j++) tiles += (G->plin.N[i + j] + 15) / 16;
    int32_t m = merged_m(G, f, name, &sh, tiles);
    unsigned grid = 0;
    qrt_cu_ptr wp[3] = {0, 0, 0}, bp[3] = {0, 0, 0}, yp[3] = {0, 0, 0};
    for (int32_t j = 0; j < k; j++) {
        grid += (unsigned)(((G->plin.N[i + j] + 15) / 16 + m - 1) / m);
        wp[j] = wlin(G, G->plin.w[i + j], G->plin.dt, G->plin.K, G->plin.N[i + j]);
        bp[j] = wdev(G, G->plin.bias[i + j]), yp[j] = G->plin.y[i + j];
    }
    int32_t rows = 1, sv = sh.sv;
    qrt_cu_ptr x = norm ? G->pnorm.x : G->plin.x; /* norm: the norm's input; its output is written too */
    void *args[] = {&wp[0], &wp[1], &wp[2], &bp[0], &bp[1], &bp[2], &x,           &yp[0],
                    &yp[1], &yp[2], &rows,   &sv,    &m,     &G->pnorm.w, &G->pnorm.eps, &G->pnorm.out};
    launch(G, f, grid, 1, 1, (unsigned)sh.threads, sh.smem, args);
    if (norm) G->pnorm.on = 0;
    G->merged += (k > 1) + (norm != 0);
    return 1;
}

/* The two pending linears (gate, up: one shape) and the SILU_MUL of their outputs into out as one
 * qk_gemvp_* kernel, or qk_gemvpn_* with the held RMSNorm when it makes their input; 0: the module has no
 * such kernel (nothing launched, nothing changed). */
static int pair_now(struct qrt_gpu *G, qrt_cu_ptr out) {
    char name[160];
    const int norm = G->plin.norm;
    int n = snprintf(name, sizeof name, "qk_gemvp%s_%s_k%d_n%d_g%d_%c", norm ? "n" : "", dt_name(G->plin.dt),
                     (int)G->plin.K, (int)G->plin.N[0], (int)G->plin.g, G->plin.s ? 's' : 'a');
    qrt_gemv_shape sh;
    qrt_cu_function f = merged_fn(G, name, n, sizeof name, norm, &sh);
    if (!f) return 0;
    G->plin.n = 0, G->plin.norm = 0;
    if (fn_smem(G, f, name, sh.smem)) return 1;
    const int32_t tiles = (G->plin.N[0] + 7) / 8; /* 8 rows of each linear */
    int32_t m = merged_m(G, f, name, &sh, tiles);
    unsigned grid = (unsigned)((tiles + m - 1) / m);
    qrt_cu_ptr w0 = wlin(G, G->plin.w[0], G->plin.dt, G->plin.K, G->plin.N[0]);
    qrt_cu_ptr w1 = wlin(G, G->plin.w[1], G->plin.dt, G->plin.K, G->plin.N[1]);
    qrt_cu_ptr b0 = wdev(G, G->plin.bias[0]), b1 = wdev(G, G->plin.bias[1]);
    int32_t rows = 1, sv = sh.sv;
    qrt_cu_ptr x = norm ? G->pnorm.x : G->plin.x; /* norm: the norm's input; its output is written too */
    void *args[] = {&w0, &w1,   &b0, &b1, &x,  &G->plin.y[0], &G->plin.y[1], &out, &rows, &sv,
                    &m,  &G->pnorm.w, &G->pnorm.eps, &G->pnorm.out};
    launch(G, f, grid, 1, 1, (unsigned)sh.threads, sh.smem, args);
    if (norm) G->pnorm.on = 0;
    G->merged += 2 + (norm != 0);
    return 1;
}

/* Launches the pending linears: three or two at a time through qk_gemvm_* where the module has it
 * (all of them through qk_gemvmn_* when the held RMSNorm makes their input), the rest one by one. */
static void flush_linears(struct qrt_gpu *G) {
    int32_t n = G->plin.n, norm = G->plin.norm;
    qrt_cu_ptr res = G->plin.res;
    G->plin.n = 0, G->plin.norm = 0, G->plin.res = 0;
    if (norm) {
        if (multi_now(G, 0, n, 1)) return; /* (the norm too; one linear: the LM head, when qcc emitted it) */
        norm_now(G);
    }
    for (int32_t i = 0; i < n && !G->failed[0];) {
        int32_t k = n - i >= 3 ? 3 : n - i;
        for (; k >= 2; k--)
            if (multi_now(G, i, k, 0)) break;
        if (k >= 2) {
            i += k;
            continue;
        }
        linear_now(G->plin.c, G->plin.y[i], G->plin.x, 1, G->plin.w[i], G->plin.bias[i], G->plin.dt, G->plin.K,
                   G->plin.N[i], G->plin.g, G->plin.s, n == 1 ? res : 0);
        i++;
    }
}

/* out[rows, N] = a[rows, K] W^T + bias on the device. */
static void linear(qrt_ctx *c, qrt_cu_ptr out, qrt_cu_ptr a, int32_t rows, const void *w, const void *bias,
                   int32_t dt, int32_t K, int32_t N, int32_t group, int32_t sym) {
    flush(c->m->gpu);
    linear_now(c, out, a, rows, w, bias, dt, K, N, group, sym, 0);
}

/* W8A8 (kernels.cu gemv_i8): the tokens quantized by qk_i8_quant into the context's int8 scratch, then up
 * to 8 of them through the GEMV (4 at a time), more through cuBLAS's int8 GEMM (int32 sums in the
 * dequantization tile, as many tokens at a time as it holds) + qk_i8_scale; without cuBLAS, or where it
 * refuses the shape, the GEMV 4 tokens at a time. */
static void i8_linear(qrt_ctx *c, qrt_cu_ptr out, qrt_cu_ptr a, int32_t rows, qrt_cu_ptr wp, qrt_cu_ptr bp,
                      int32_t K, int32_t N) {
    struct qrt_gpu *G = c->m->gpu;
    struct qrt_gpu_ctx *X = c->gpu;
    const int32_t Kp = (K + 31) / 32 * 32;
    size_t need = ((size_t)rows * Kp + 15) / 16 * 16 + (size_t)rows * 4;
    if (need > X->i8x_size) { /* a linear wider than the model's widths (tests): a larger scratch, never in a capture */
        if (G->capturing) {
            snprintf(G->failed, sizeof G->failed, "W8A8 scratch of %zu bytes needed inside a CUDA graph capture", need);
            return;
        }
        if (X->i8x && (CK(G->cu->StreamSynchronize(G->stream)) || CK(G->cu->MemFree(X->i8x)))) return;
        X->i8x = 0, X->i8x_size = 0;
        if (X->exec) { /* a captured decode step holds the old address: capture it again */
            G->cu->GraphExecDestroy(X->exec);
            G->cu->GraphDestroy(X->graph);
            X->exec = NULL, X->graph = NULL;
        }
        if (CK(G->cu->MemAlloc(&X->i8x, need))) return;
        X->i8x_size = need;
    }
    qrt_cu_ptr xq = X->i8x, sa = X->i8x + ((size_t)rows * Kp + 15) / 16 * 16;
    void *qargs[] = {&a, &xq, &sa, &K};
    launch(G, fn_need(G, "qk_i8_quant"), (unsigned)rows, 1, 1, 1024, 0, qargs);
    if (rows > 8 && cublas_on(G) && X->w16) {
        const qrt_cublas_api *cb = G->cublas;
        const int32_t one = 1, zero = 0;
        qrt_cu_ptr acc = X->w16;
        int32_t chunk = (int32_t)(X->w16_elems * 2 / 4 / (size_t)N);
        qrt_cu_function fs = fn_need(G, "qk_i8_scale");
        int rc = 0;
        for (int32_t t0 = 0; t0 < rows && !rc && !G->failed[0]; t0 += chunk) {
            int32_t nt = rows - t0 < chunk ? rows - t0 : chunk;
            qrt_cu_ptr xt = xq + (size_t)t0 * Kp, st = sa + (size_t)t0 * 4, yt = out + (size_t)t0 * N * 4;
            rc = cb->GemmEx(G->blas, QRT_CUBLAS_OP_T, QRT_CUBLAS_OP_N, N, nt, Kp, &one, (const void *)wp, QRT_CUDA_R_8I,
                            Kp, (const void *)xt, QRT_CUDA_R_8I, Kp, &zero, (void *)acc, QRT_CUDA_R_32I, N,
                            QRT_CUBLAS_COMPUTE_32I, QRT_CUBLAS_GEMM_DEFAULT);
            void *sargs[] = {&acc, &st, &wp, &bp, &yt, &nt, &K, &N};
            if (!rc) launch(G, fs, grid_for((size_t)nt * N, 256), 1, 1, 256, 0, sargs);
        }
        if (!rc || G->failed[0]) return;
        /* cuBLAS refused the shape (it launched nothing): the GEMV below */
    }
    int32_t B = rows == 1 ? 1 : 4;
    char name[32];
    snprintf(name, sizeof name, "qk_gemv_i8_b%d", (int)B);
    qrt_cu_function f = fn_need(G, name);
    size_t smem = (size_t)B * Kp;
    if (!f || fn_smem(G, f, name, smem)) return;
    unsigned grid = (unsigned)((N + 15) / 16); /* 8 warps x 2 rows */
    int32_t mb = fn_max_blocks(G, f, name, 256, smem);
    if (mb > 0 && grid > (unsigned)mb) grid = (unsigned)mb;
    for (int32_t r0 = 0; r0 < rows; r0 += B) {
        qrt_cu_ptr x = xq + (size_t)r0 * Kp, s = sa + (size_t)r0 * 4, y = out + (size_t)r0 * N * 4;
        int32_t nr = rows - r0 < B ? rows - r0 : B;
        void *args[] = {&wp, &bp, &x, &s, &y, &nr, &K, &N};
        launch(G, f, grid, 1, 1, 256, smem, args);
    }
}

/* ... and res += out (res not 0): the residual add after the linear, in the specialized GEMV's epilogue where
 * there is one, else as its own kernel after it. */
static int linear_go(qrt_ctx *c, qrt_cu_ptr out, qrt_cu_ptr a, int32_t rows, const void *w, const void *bias,
                     int32_t dt, int32_t K, int32_t N, int32_t group, int32_t sym, qrt_cu_ptr res);
static void linear_now(qrt_ctx *c, qrt_cu_ptr out, qrt_cu_ptr a, int32_t rows, const void *w, const void *bias,
                       int32_t dt, int32_t K, int32_t N, int32_t group, int32_t sym, qrt_cu_ptr res) {
    struct qrt_gpu *G = c->m->gpu;
    if (linear_go(c, out, a, rows, w, bias, dt, K, N, group, sym, res) || !res) return;
    int32_t n = rows * N;
    void *args[] = {&res, &res, &out, &n};
    launch(G, fn_need(G, "qk_add"), grid_for((size_t)n, 256), 1, 1, 256, 0, args);
}
/* Packed weights, qrt_qgemm_min_rows tokens or more: the fused dequantize + GEMM (QRT_QS_* up to 64 tokens,
 * else QRT_QG_*).
 * 1: not in the module, or not for this device. */
static int qgemm(qrt_ctx *c, qrt_cu_ptr out, qrt_cu_ptr a, int32_t rows, qrt_cu_ptr wp, qrt_cu_ptr bp, int32_t dt,
                 int32_t K, int32_t N, int32_t g, int32_t s) {
    struct qrt_gpu *G = c->m->gpu;
    struct qrt_gpu_ctx *X = c->gpu;
    char name[48];
    snprintf(name, sizeof name, "qk_qgemm_%s", dt_name(dt));
    qrt_cu_function f = fn_get(G, name), fr = fn_get(G, "qk_qgemm_reduce"), fx = fn_get(G, "qk_qgemm_x16");
    int32_t bits = qrt_qdtype_bits(dt);
    qrt_qgemm_plan pl = qrt_qgemm_plan_of(rows, bits, K, N, 1, G->smem_optin);
    if (pl.nt) { /* the module's _t kernel, else the tiled one */
        char sname[48];
        snprintf(sname, sizeof sname, "qk_qgemm_%s_t%d", dt_name(dt), (int)(8 * pl.nt));
        qrt_cu_function fs = fn_get(G, sname);
        if (fs) f = fs, snprintf(name, sizeof name, "%s", sname);
        else pl = qrt_qgemm_plan_of(rows, bits, K, N, 0, G->smem_optin);
    }
    if (!pl.ok || !f || !fr || !fx || !X->qgp || K > X->qgx_k || fn_smem(G, f, name, pl.smem))
        return 1; /* (K: tests) */
    /* x to f16 in the kernel's k order: pairs (k, k + P / 2) in groups of P (kernels.cu qk_qg) */
    qrt_cu_ptr xp = X->qgp + QRT_QG_PART;
    int32_t P = pl.P, Kp = pl.Kp, S = pl.S;
    void *xargs[] = {&xp, &a, &rows, &K, &P};
    /* q / k / v (and gate / up) read the same x: converted once, unless anything ran or was written since */
    if (X->qgx_of.a != a || X->qgx_of.rows != rows || X->qgx_of.K != K || X->qgx_of.P != P ||
        X->qgx_of.at != G->writes) {
        launch(G, fx, grid_for((size_t)rows * Kp / 16, 256), 1, 1, 256, 0, xargs);
        X->qgx_of.a = a, X->qgx_of.rows = rows, X->qgx_of.K = K, X->qgx_of.P = P;
    }
    qrt_cu_ptr y = S > 1 ? X->qgp : out;
    void *args[] = {&wp, &bp, &xp, &y, &rows, &K, &N, &g, &s};
    launch(G, f, pl.gx, (unsigned)S, pl.gz, 256, pl.smem, args);
    if (S > 1) {
        void *rargs[] = {&out, &y, &bp, &rows, &N, &S};
        launch(G, fr, grid_for((size_t)rows * N, 256), 1, 1, 256, 0, rargs);
    }
    X->qgx_of.at = G->writes; /* (these launches wrote y and out, not a) */
    return 0;
}
/* 1: res was added */
static int linear_go(qrt_ctx *c, qrt_cu_ptr out, qrt_cu_ptr a, int32_t rows, const void *w, const void *bias,
                     int32_t dt, int32_t K, int32_t N, int32_t group, int32_t sym, qrt_cu_ptr res) {
    struct qrt_gpu *G = c->m->gpu;
    struct qrt_gpu_ctx *X = c->gpu;
    if (dt == QRT_DT_I8) {
        i8_linear(c, out, a, rows, wdev(G, w), wdev(G, bias), K, N);
        return 0;
    }
    int32_t bits = qrt_qdtype_bits(dt);
    int32_t g = bits ? (group <= 0 || group >= K ? K : group) : 0, s = bits ? (sym ? 1 : 0) : 0;
    qrt_cu_ptr wp = wlin(G, w, dt, K, N), bp = wdev(G, bias);
    char name[96];
    if (bits && rows >= qrt_qgemm_min_rows(bits) && rows <= 8 && rows <= G->qgemm_max &&
        !qgemm(c, out, a, rows, wp, bp, dt, K, N, g, s))
        return 0;
    if (rows <= 8) {
        int32_t B = rows == 1 ? 1 : 4;
        int n = snprintf(name, sizeof name, "qk_gemv_%s_k%d_n%d_g%d_%c_b%d", dt_name(dt), (int)K, (int)N, (int)g,
                         s ? 's' : 'a', (int)B);
        int32_t warps = 0;
        qrt_cu_function f = gemv_fn(G, name, (size_t)n, sizeof name, &warps); /* qcc specializes batches 1, 4 */
        qrt_gemv_shape sh = qrt_gemv_shape_w(&G->blob, dt, K, B, warps);
        int generic = f == NULL;
        if (generic) {
            snprintf(name, sizeof name, "qk_gemv_%s_b%d", dt_name(dt), (int)B);
            f = fn_need(G, name);
        }
        if (!f || fn_smem(G, f, name, sh.smem)) return 1;
        unsigned grid = qrt_gemv_grid(&sh, K, N, fn_max_blocks(G, f, name, sh.threads, sh.smem));
        for (int32_t r0 = 0; r0 < rows; r0 += B) {
            qrt_cu_ptr x = a + (size_t)r0 * K * 4, y = out + (size_t)r0 * N * 4, r = res ? res + (size_t)r0 * N * 4 : 0;
            int32_t nr = rows - r0 < B ? rows - r0 : B, sv = sh.sv;
            void *gargs[] = {&wp, &bp, &x, &y, &nr, &sv, &K, &N, &g, &s}; /* qk_gemv_<dt>_b<B> */
            void *sargs[] = {&wp, &bp, &x, &y, &nr, &sv, &r};             /* QK_GEMV_SPEC */
            launch(G, f, grid, 1, 1, (unsigned)sh.threads, sh.smem, generic ? gargs : sargs);
        }
        if (res && !generic) G->merged++;
        return !generic;
    }
    if (bits && (rows <= G->qgemm_max || !cublas_on(G)) && !qgemm(c, out, a, rows, wp, bp, dt, K, N, g, s)) return 0;
    if (cublas_on(G) && X->x16 && (size_t)rows * K <= X->x16_elems) { /* (wider than the model: tests) */
        const qrt_cublas_api *cb = G->cublas;
        const float one = 1.0f, zero = 0.0f;
        int rc = 0;
        if (G->failed[0]) return 1;
        if (dt == QRT_DT_F32) {
            rc = cb->Sgemm(G->blas, QRT_CUBLAS_OP_T, QRT_CUBLAS_OP_N, N, rows, K, &one, (const float *)wp, K,
                           (const float *)a, K, &zero, (float *)out, N);
        } else {
            /* activations to f16 (bf16 for bf16 weights), then f16 x f16 -> f32 */
            int bf = dt == QRT_DT_BF16;
            int32_t n = rows * K;
            qrt_cu_ptr x16 = X->x16;
            void *cargs[] = {&x16, &a, &n};
            launch(G, fn_need(G, bf ? "qk_to_bf16" : "qk_to_f16"), grid_for((size_t)n, 256), 1, 1, 256, 0, cargs);
            int typ = bf ? QRT_CUDA_R_16BF : QRT_CUDA_R_16F;
            if (!bits) {
                rc = cb->GemmEx(G->blas, QRT_CUBLAS_OP_T, QRT_CUBLAS_OP_N, N, rows, K, &one, (const void *)wp, typ,
                                K, (const void *)x16, typ, K, &zero, (void *)out, QRT_CUDA_R_32F, N,
                                QRT_CUBLAS_COMPUTE_32F, QRT_CUBLAS_GEMM_DEFAULT);
            } else {
                int32_t tile = prefill_tile(X->w16_elems, K, N);
                snprintf(name, sizeof name, "qk_dequant_%s", dt_name(dt));
                qrt_cu_function fd = fn_need(G, name);
                for (int32_t n0 = 0; n0 < N && !rc; n0 += tile) {
                    int32_t nn = N - n0 < tile ? N - n0 : tile;
                    qrt_cu_ptr w16 = X->w16, y = out + (size_t)n0 * 4;
                    void *dargs[] = {&w16, &wp, &n0, &nn, &K, &N, &g, &s};
                    launch(G, fd, grid_for((size_t)nn * ((K + 7) / 8), 256), 1, 1, 256, 0, dargs); /* 8 values a thread */
                    rc = cb->GemmEx(G->blas, QRT_CUBLAS_OP_T, QRT_CUBLAS_OP_N, nn, rows, K, &one, (const void *)w16,
                                    QRT_CUDA_R_16F, K, (const void *)x16, QRT_CUDA_R_16F, K, &zero, (void *)y,
                                    QRT_CUDA_R_32F, N, QRT_CUBLAS_COMPUTE_32F, QRT_CUBLAS_GEMM_DEFAULT);
                }
            }
        }
        if (rc) {
            snprintf(G->failed, sizeof G->failed, "cuBLAS GEMM %dx%dx%d (%s) failed: status %d", (int)rows, (int)N,
                     (int)K, dt_name(dt), rc);
            return 1;
        }
        if (bias) {
            void *bargs[] = {&out, &bp, &rows, &N};
            launch(G, fn_need(G, "qk_add_bias"), grid_for((size_t)rows * N, 256), 1, 1, 256, 0, bargs);
        }
        return 0;
    }
    snprintf(name, sizeof name, "qk_gemm_%s", dt_name(dt));
    void *args[] = {&wp, &bp, &a, &out, &rows, &K, &N, &g, &s};
    launch(G, fn_need(G, name), (unsigned)((N + 63) / 64), (unsigned)((rows + 63) / 64), 1, 256, 0, args);
    return 0;
}

/* The pending SILU_MUL and the one-token GEMV that reads its output as one kernel (qk_gemvs_*), when the
 * module has it and x fits the GEMV's one-piece staging: held (psilu, silu_now) for the residual add after
 * it; 0: not done, nothing held. */
static int silu_linear(qrt_ctx *c, qrt_cu_ptr out, const void *w, const void *bias, int32_t dt, int32_t K, int32_t N,
                       int32_t g, int32_t s) {
    struct qrt_gpu *G = c->m->gpu;
    char name[128];
    snprintf(name, sizeof name, "qk_gemvs_%s_k%d_n%d_g%d_%c", dt_name(dt), (int)K, (int)N, (int)g, s ? 's' : 'a');
    qrt_cu_function f = fn_get(G, name);
    qrt_gemv_shape sh = qrt_gemv_shape_of(&G->blob, dt, K, 1);
    if (!f || sh.sv < K || sh.sv > 32 * sh.threads) return 0; /* kernels.cu gemv_mma: `fused` */
    if (fn_smem(G, f, name, sh.smem)) return 1;
    G->psilu.grid = qrt_gemv_grid(&sh, K, N, fn_max_blocks(G, f, name, sh.threads, sh.smem));
    G->psilu.w = wlin(G, w, dt, K, N), G->psilu.bias = wdev(G, bias);
    G->psilu.f = f, G->psilu.threads = (unsigned)sh.threads, G->psilu.smem = (int32_t)sh.smem, G->psilu.sv = sh.sv;
    G->psilu.a = G->pend.a, G->psilu.b = G->pend.b, G->psilu.xo = G->pend.out, G->psilu.y = out, G->psilu.res = 0;
    G->psilu.N = N;
    G->pend.on = 0;
    G->psilu.on = !G->failed[0];
    G->merged++;
    if (!G->fuse_norm) silu_now(G); /* (nothing to wait for) */
    return 1;
}

void qrt_cuda_k_linear(qrt_ctx *c, float *out, const float *a, const float *b, const float *cc, const void *w,
                       const void *bias, int32_t wdtype, int32_t K, int32_t N, int32_t group, int32_t sym,
                       float f0) {
    (void)b, (void)cc, (void)f0;
    struct qrt_gpu *G = c->m->gpu;
    int32_t bits = qrt_qdtype_bits(wdtype);
    /* in place (out == a) or several rows: one kernel of its own */
    if (c->n_tokens != 1 || !(bits || wdtype == QRT_DT_F16) || DEV(out) == DEV(a)) {
        linear(c, DEV(out), DEV(a), c->n_tokens, w, bias, wdtype, K, N, group, sym);
        return;
    }
    int32_t g = bits ? (group <= 0 || group >= K ? K : group) : 0, s = bits ? (sym ? 1 : 0) : 0;
    /* (every block reads all of x and x2 while block 0 writes the product: not when it overwrites either) */
    if (G->pend.on == PEND_SILU && G->pend.out == DEV(a) && G->pend.width == K && G->pend.rows == 1 &&
        G->pend.out != G->pend.a && G->pend.out != G->pend.b && DEV(out) != G->pend.a && DEV(out) != G->pend.b &&
        silu_linear(c, DEV(out), w, bias, wdtype, K, N, g, s))
        return;
    /* one token: held back, merged with the linears after it that read the same x (flush_linears) */
    int same_out = 0; /* a pending linear writes the same buffer: keep their order */
    for (int32_t j = 0; j < G->plin.n; j++) same_out |= G->plin.y[j] == DEV(out);
    /* with the held RMSNorm in the prologue, every block reads the norm's input and block 0 writes its output */
    int norm_hazard = G->plin.norm && (DEV(out) == G->pnorm.x || DEV(out) == G->pnorm.out);
    if (G->plin.n && (G->plin.n == 3 || G->plin.c != c || G->plin.x != DEV(a) || G->plin.dt != wdtype ||
                      G->plin.K != K || G->plin.g != g || G->plin.s != s || same_out || G->plin.res || norm_hazard))
        flush(G);
    if (G->pend.on || G->prope.n || G->psilu.on) flush(G);
    int norm = 0; /* the held RMSNorm makes x: it goes with these linears (flush_linears) */
    if (G->pnorm.on && !G->plin.n) {
        norm = G->pnorm.out == DEV(a) && G->pnorm.dim == K && DEV(out) != G->pnorm.x && DEV(out) != G->pnorm.out;
        if (!norm) flush(G);
    }
    if (G->failed[0]) return;
    int32_t i = G->plin.n++;
    if (i == 0) G->plin.norm = norm, G->plin.res = 0;
    G->plin.c = c, G->plin.x = DEV(a), G->plin.dt = wdtype, G->plin.K = K, G->plin.g = g, G->plin.s = s;
    G->plin.y[i] = DEV(out), G->plin.w[i] = w, G->plin.bias[i] = bias, G->plin.N[i] = N;
}

void qrt_cuda_k_lm_head(qrt_ctx *c, float *out, const float *a, const float *b, const float *cc, const void *w,
                        const void *bias, int32_t wdtype, int32_t K, int32_t N, int32_t group, int32_t sym,
                        float f0) {
    (void)b, (void)cc, (void)f0;
    if (c->logits_all)
        linear(c, DEV(out), DEV(a), c->n_tokens, w, bias, wdtype, K, N, group, sym);
    else if (c->n_tokens == 1) /* as a LINEAR: held, so the final RMSNorm can go into its prologue */
        qrt_cuda_k_linear(c, out, a, b, cc, w, bias, wdtype, K, N, group, sym, f0);
    else
        linear(c, DEV(out), DEV(a) + (size_t)(c->n_tokens - 1) * K * 4, 1, w, bias, wdtype, K, N, group, sym);
}

void qrt_cuda_k_rope(qrt_ctx *c, float *out, const float *a, const float *b, const float *cc, const void *w,
                     const void *bias, int32_t wdtype, int32_t heads, int32_t hd, int32_t p2, int32_t p3,
                     float theta) {
    (void)a, (void)b, (void)cc, (void)w, (void)bias, (void)wdtype, (void)p2, (void)p3;
    struct qrt_gpu *G = c->m->gpu;
    struct qrt_gpu_ctx *X = c->gpu;
    qrt_cu_ptr inv = 0;
    for (int32_t i = 0; i < X->n_rope && !inv; i++)
        if (X->rope[i].theta == theta && X->rope[i].hd == hd) inv = X->rope[i].inv;
    if (!inv) { /* first use: never inside a capture (the first decode step runs eagerly) */
        int32_t half = hd / 2;
        float tab[256];
        if (X->n_rope == NROPE || half > 256 || G->capturing) {
            if (!G->failed[0]) snprintf(G->failed, sizeof G->failed, "RoPE table (theta %g, head_dim %d)", theta, hd);
            return;
        }
        for (int32_t i = 0; i < half; i++) tab[i] = 1.0f / powf(theta, (float)(2 * i) / (float)hd); /* as kernels.c */
        if (CK(G->cu->MemAlloc(&inv, (size_t)half * sizeof(float) + 16)) ||
            CK(G->cu->MemcpyHtoD(inv, tab, (size_t)half * sizeof(float))))
            return;
        X->rope[X->n_rope].theta = theta;
        X->rope[X->n_rope].hd = hd;
        X->rope[X->n_rope++].inv = inv;
    }
    /* held back: the attention after q's and k's RoPE does both (qrt_cuda_k_attention) */
    if (G->prope.n == 2 || G->plin.n || G->pend.on || G->pnorm.on || G->psilu.on ||
        (G->prope.n && G->step_dev != X->step))
        flush(G);
    if (G->failed[0]) return;
    int32_t i = G->prope.n++;
    G->step_dev = X->step, G->prope.rows = c->n_tokens;
    G->prope.x[i] = DEV(out), G->prope.inv[i] = inv, G->prope.heads[i] = heads, G->prope.hd[i] = hd;
}

void qrt_cuda_k_attention(qrt_ctx *c, float *out, const float *q, const float *k, const float *v, const void *w,
                          const void *bias, int32_t wdtype, int32_t layer, int32_t heads, int32_t kv_heads,
                          int32_t hd, float f0) {
    (void)w, (void)bias, (void)wdtype, (void)f0;
    struct qrt_gpu *G = c->m->gpu;
    struct qrt_gpu_ctx *X = c->gpu;
    const char *kv = G->kv_f16 ? "f16" : "f32";
    size_t lsize = (size_t)c->n_ctx * kv_heads * hd * (G->kv_f16 ? 2 : 4);
    qrt_cu_ptr kc = X->kc + (size_t)layer * lsize, vc = X->vc + (size_t)layer * lsize;
    qrt_cu_ptr kp = DEV(k), vp = DEV(v), qp = DEV(q), o = DEV(out), st = X->step, part = X->part;
    int32_t T = c->n_tokens, kvd = kv_heads * hd;
    char name[64];
    const char *wide = hd > 128 ? "w_" : ""; /* one token: the kernels for head_dim > 128 (kernels.cu QK_DEF_ATTN) */
    /* the held RoPEs are q's and k's: one token, they go into the attention (qk_attn_rope_*); more, into
     * the append (qk_rope_append_*) */
    int32_t held = G->prope.n == 2 && G->prope.x[0] == qp && G->prope.x[1] == kp && G->prope.heads[0] == heads &&
                   G->prope.heads[1] == kv_heads && G->prope.hd[0] == hd && G->prope.hd[1] == hd &&
                   G->prope.rows == T;
    int32_t rope = held && T == 1 && G->fuse_rope;
    if (held) G->prope.n = 0;
    if (held && !rope) {
        snprintf(name, sizeof name, "qk_rope_append_%s", kv);
        void *rargs[] = {&qp, &kp, &vp, &kc, &vc, &st, &G->prope.inv[0], &G->prope.inv[1], &heads, &kv_heads, &hd};
        launch(G, fn_need(G, name), (unsigned)T, (unsigned)(heads + kv_heads), 1, 64, 0, rargs);
    } else if (!held) {
        flush(G);
        snprintf(name, sizeof name, "qk_kv_append_%s", kv);
        void *aargs[] = {&kp, &vp, &kc, &vc, &st, &kvd, &T};
        launch(G, fn_need(G, name), grid_for((size_t)T * kvd, 256), 1, 1, 256, 0, aargs);
    }
    if (T > 1 && (hd == 64 || hd == 128)) { /* prefill on the tensor cores: a block per (head, 64 tokens) */
        enum { AT2_Q = 64, AT2_K = 64 }; /* kernels.cu QK_AT2_Q, QK_AT2_K, QK_AT2_SMEM */
        snprintf(name, sizeof name, "qk_attn_tc%d_%s", (int)hd, kv);
        size_t smem = (size_t)4 * (AT2_K * (hd + 8) + hd * (AT2_K + 8));
        qrt_cu_function f = fn_need(G, name);
        if (!f || fn_smem(G, f, name, smem)) return;
        void *targs[] = {&qp, &kc, &vc, &o, &st, &heads, &kv_heads, &T};
        launch(G, f, (unsigned)heads, (unsigned)((T + AT2_Q - 1) / AT2_Q), 1, 128, smem, targs);
        return;
    }
    if (T > 1 && hd <= 256) { /* prefill: a block per (head, ATT_QT tokens), K and V through shared memory */
        enum { ATT_QT = 16, ATT_KT = 32 }; /* kernels.cu QK_AT_QT, QK_AT_KT */
        snprintf(name, sizeof name, "qk_attn_tile_%s", kv);
        size_t smem = (size_t)(ATT_QT * (hd + 4) + ATT_KT * (hd + 4) + ATT_KT * hd + ATT_QT * (ATT_KT + 1)) * sizeof(float);
        qrt_cu_function f = fn_need(G, name);
        if (!f || fn_smem(G, f, name, smem)) return;
        void *targs[] = {&qp, &kc, &vc, &o, &st, &heads, &kv_heads, &hd, &T};
        launch(G, f, (unsigned)heads, (unsigned)((T + ATT_QT - 1) / ATT_QT), 1, 8 * ATT_QT, smem, targs);
        return;
    }
    /* one token: split the positions over blocks; more (head_dim > 256): one block per (head, token) */
    int32_t nsplit = T == 1 ? X->nsplit : 1, minsplit = T == 1 ? X->minsplit : 1; /* kernels.cu attn_core */
    if (rope) { /* the RoPEs and the append inside the attention (qk_attn_rope_*) */
        snprintf(name, sizeof name, "qk_attn_rope_%s%s", wide, kv);
        void *args[] = {&qp, &kp, &vp, &kc, &vc, &o, &part, &X->cnt, &st, &G->prope.inv[0], &G->prope.inv[1],
                        &heads, &kv_heads, &hd, &minsplit, &nsplit};
        G->merged += 2;
        launch_attn(G, fn_need(G, name), (unsigned)heads, (unsigned)nsplit, args);
        return;
    }
    snprintf(name, sizeof name, "qk_attn_%s%s", wide, kv);
    void *args[] = {&qp, &kc, &vc, &o, &part, &X->cnt, &st, &heads, &kv_heads, &hd, &minsplit, &nsplit};
    if (T == 1)
        launch_attn(G, fn_need(G, name), (unsigned)heads, (unsigned)nsplit, args);
    else
        launch(G, fn_need(G, name), (unsigned)heads, (unsigned)nsplit, (unsigned)T, 128, 0, args);
}

/* out = a (+ or silu *) b over the step's tokens, held back: launched by the next entry point, fused into
 * it where it can take it. */
static void hold(qrt_ctx *c, int32_t kind, float *out, const float *a, const float *b, int32_t width) {
    struct qrt_gpu *G = c->m->gpu;
    flush(G);
    if (G->failed[0]) return;
    G->pend.on = kind;
    G->pend.out = DEV(out), G->pend.a = DEV(a), G->pend.b = DEV(b);
    G->pend.width = width, G->pend.rows = c->n_tokens;
}

void qrt_cuda_k_silu_mul(qrt_ctx *c, float *out, const float *a, const float *b, const float *cc, const void *w,
                         const void *bias, int32_t wdtype, int32_t width, int32_t p1, int32_t p2, int32_t p3,
                         float f0) {
    (void)cc, (void)w, (void)bias, (void)wdtype, (void)p1, (void)p2, (void)p3, (void)f0;
    struct qrt_gpu *G = c->m->gpu;
    const qrt_cu_ptr o = DEV(out), ga = DEV(a), gb = DEV(b);
    /* right after the held gate / up linears that make a and b: one kernel also writes the product (every
     * block reads x, and block 0 writes the held norm's output: not when the product overwrites either) */
    if (c->n_tokens == 1 && G->plin.n == 2 && G->plin.c == c && G->plin.y[0] == ga && G->plin.y[1] == gb &&
        G->plin.N[0] == width && G->plin.N[1] == width && !G->plin.res && !G->pend.on && !G->psilu.on &&
        !G->prope.n && o != ga && o != gb && o != G->plin.x &&
        (!G->plin.norm || (o != G->pnorm.x && o != G->pnorm.out)) && pair_now(G, o))
        return;
    hold(c, PEND_SILU, out, a, b, width); /* fused into the GEMV that reads it (silu_linear) */
}

void qrt_cuda_k_add(qrt_ctx *c, float *out, const float *a, const float *b, const float *cc, const void *w,
                    const void *bias, int32_t wdtype, int32_t width, int32_t p1, int32_t p2, int32_t p3,
                    float f0) {
    (void)cc, (void)w, (void)bias, (void)wdtype, (void)p1, (void)p2, (void)p3, (void)f0;
    struct qrt_gpu *G = c->m->gpu;
    qrt_cu_ptr o = DEV(out), y = o == DEV(a) ? DEV(b) : DEV(a);
    /* the residual add right after a held one-token linear that makes the other operand: o += y in that
     * GEMV's epilogue (not where o is an input of that GEMV: other blocks may still read it) */
    if (G->fuse_norm && c->n_tokens == 1 && (o == DEV(a) || o == DEV(b)) && o != y) {
        if (G->plin.n == 1 && !G->plin.res && !G->plin.norm && G->plin.c == c && G->plin.y[0] == y &&
            G->plin.N[0] == width && o != G->plin.x) {
            G->plin.res = o;
            return;
        }
        if (G->psilu.on && !G->psilu.res && G->psilu.y == y && G->psilu.N == width && o != G->psilu.a &&
            o != G->psilu.b && o != G->psilu.xo) {
            G->psilu.res = o;
            G->merged++;
            return;
        }
    }
    hold(c, PEND_ADD, out, a, b, width); /* fused into qrt_cuda_k_rmsnorm when that comes next */
}

/* ---- for tests and benches ---- */

qrt_cu_ptr qrt_cuda_alloc(qrt_model *m, size_t bytes) {
    struct qrt_gpu *G = m->gpu;
    qrt_cu_ptr p = 0;
    return CK(G->cu->MemAlloc(&p, bytes ? bytes : 16)) ? 0 : p;
}

void qrt_cuda_dfree(qrt_model *m, qrt_cu_ptr p) {
    if (p) m->gpu->cu->MemFree(p);
}

int qrt_cuda_upload(qrt_model *m, qrt_cu_ptr dst, const void *src, size_t bytes) {
    struct qrt_gpu *G = m->gpu;
    flush(G);
    G->writes++;
    return CK(G->cu->StreamSynchronize(G->stream)) || CK(G->cu->MemcpyHtoD(dst, src, bytes)) ? -1 : 0;
}

int qrt_cuda_download(qrt_model *m, void *dst, qrt_cu_ptr src, size_t bytes) {
    struct qrt_gpu *G = m->gpu;
    flush(G);
    return CK(G->cu->StreamSynchronize(G->stream)) || CK(G->cu->MemcpyDtoH(dst, src, bytes)) ? -1 : 0;
}

int64_t qrt_cuda_merged(const qrt_model *m) { return m->gpu ? m->gpu->merged : 0; }
int qrt_cuda_clusters(const qrt_model *m) { return m->gpu ? m->gpu->cluster : 0; }

int32_t qrt_cuda_fused_gemm_max(qrt_model *m, int32_t max) {
    int32_t old = m->gpu->qgemm_max;
    if (max >= 0) m->gpu->qgemm_max = max;
    return old;
}

int qrt_cuda_use_cublas(qrt_model *m, int on) {
    struct qrt_gpu *G = m->gpu;
    if (!on) {
        if (G->use_cublas != 0) G->use_cublas = 2;
        return 0;
    }
    if (G->use_cublas == 2) G->use_cublas = G->blas ? 1 : -1;
    return cublas_on(G);
}
