/*
 * runtime/qrt_cuda.h — the GPU path of libqrt (runtime/cuda.c), internal.
 *
 * The executable needs no CUDA library to start: libcuda.so.1 is opened
 * with dlopen and its entry points fetched with cuGetProcAddress, cuBLAS
 * (libcublas.so.13/.12) likewise when present. The device code is the
 * embedded qm_cuda section (layout in include/qc/cuda.h).
 *
 * How a step runs on the GPU: qm_forward is unchanged. qrt_buf returns
 * device pointers for a context made by qrt_cuda_ctx_init, and every
 * qrt_k_* forwards to the qrt_cuda_k_* of the same name, which translates
 * the weight pointer into the device copy of the weight blob
 * (dev_weights + (w - qm_weights_start)) and launches one kernel (two or
 * three for attention) on the context's stream. Position and token ids
 * live in a device "step block" written with one async copy per step, so
 * the decode step (one token) is captured once as a CUDA graph and replayed
 * for every later token. Prefill and perplexity chunks run uncaptured.
 */
#ifndef QRT_CUDA_H
#define QRT_CUDA_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "qrt.h"

/* ---- the driver API, as much as libqrt uses (cuda.h, CUDA 12 ABI) ---- */
typedef int qrt_cu_result;
typedef int qrt_cu_device;
typedef unsigned long long qrt_cu_ptr;
typedef struct CUctx_st *qrt_cu_context;
typedef struct CUmod_st *qrt_cu_module;
typedef struct CUfunc_st *qrt_cu_function;
typedef struct CUstream_st *qrt_cu_stream;
typedef struct CUevent_st *qrt_cu_event;
typedef struct CUgraph_st *qrt_cu_graph;
typedef struct CUgraphExec_st *qrt_cu_graph_exec;

#define QRT_CU_ATTR_MULTIPROCESSOR_COUNT 16
#define QRT_CU_ATTR_CC_MAJOR 75
#define QRT_CU_ATTR_CC_MINOR 76
#define QRT_CU_ATTR_SMEM_OPTIN 97
#define QRT_CU_ATTR_UNIFIED_ADDRESSING 41
#define QRT_CU_FUNC_ATTR_MAX_DYN_SMEM 8

/* cuLaunchKernelEx's CUlaunchConfig / CUlaunchAttribute (cuda.h, CUDA 12):
 * the attribute is an id, padding to 8 bytes, and a 64-byte value union. */
#define QRT_CU_LAUNCH_ATTR_CLUSTER_DIMENSION 4 /* value: unsigned x, y, z */
#define QRT_CU_LAUNCH_ATTR_PROGRAMMATIC_STREAM_SERIALIZATION 6
typedef struct qrt_cu_launch_attr {
    int id;
    char pad[4];
    union {
        char bytes[64];
        int i;
    } value;
} qrt_cu_launch_attr;
typedef struct qrt_cu_launch_config {
    unsigned grid_x, grid_y, grid_z, block_x, block_y, block_z, smem;
    qrt_cu_stream stream;
    qrt_cu_launch_attr *attrs;
    unsigned nattrs;
} qrt_cu_launch_config;

typedef struct qrt_cu_api {
    qrt_cu_result (*Init)(unsigned);
    qrt_cu_result (*DriverGetVersion)(int *);
    qrt_cu_result (*DeviceGetCount)(int *);
    qrt_cu_result (*DeviceGet)(qrt_cu_device *, int);
    qrt_cu_result (*DeviceGetAttribute)(int *, int, qrt_cu_device);
    qrt_cu_result (*DeviceGetName)(char *, int, qrt_cu_device);
    qrt_cu_result (*DeviceTotalMem)(size_t *, qrt_cu_device);
    qrt_cu_result (*DevicePrimaryCtxRetain)(qrt_cu_context *, qrt_cu_device);
    qrt_cu_result (*DevicePrimaryCtxRelease)(qrt_cu_device);
    qrt_cu_result (*CtxSetCurrent)(qrt_cu_context);
    qrt_cu_result (*CtxSynchronize)(void);
    qrt_cu_result (*StreamCreate)(qrt_cu_stream *, unsigned);
    qrt_cu_result (*StreamDestroy)(qrt_cu_stream);
    qrt_cu_result (*StreamSynchronize)(qrt_cu_stream);
    qrt_cu_result (*ModuleLoadData)(qrt_cu_module *, const void *);
    qrt_cu_result (*ModuleUnload)(qrt_cu_module);
    qrt_cu_result (*ModuleGetFunction)(qrt_cu_function *, qrt_cu_module, const char *);
    qrt_cu_result (*FuncSetAttribute)(qrt_cu_function, int, int);
    qrt_cu_result (*LaunchKernel)(qrt_cu_function, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                                  unsigned, qrt_cu_stream, void **, void **);
    qrt_cu_result (*MemAlloc)(qrt_cu_ptr *, size_t);
    qrt_cu_result (*MemFree)(qrt_cu_ptr);
    qrt_cu_result (*MemAllocHost)(void **, size_t);
    qrt_cu_result (*MemFreeHost)(void *);
    qrt_cu_result (*MemcpyHtoD)(qrt_cu_ptr, const void *, size_t);
    qrt_cu_result (*MemcpyDtoH)(void *, qrt_cu_ptr, size_t);
    qrt_cu_result (*MemcpyDtoD)(qrt_cu_ptr, qrt_cu_ptr, size_t);
    qrt_cu_result (*MemcpyHtoDAsync)(qrt_cu_ptr, const void *, size_t, qrt_cu_stream);
    qrt_cu_result (*MemcpyDtoHAsync)(void *, qrt_cu_ptr, size_t, qrt_cu_stream);
    qrt_cu_result (*MemsetD8)(qrt_cu_ptr, unsigned char, size_t);
    qrt_cu_result (*MemGetInfo)(size_t *, size_t *);
    qrt_cu_result (*StreamBeginCapture)(qrt_cu_stream, int);
    qrt_cu_result (*StreamEndCapture)(qrt_cu_stream, qrt_cu_graph *);
    qrt_cu_result (*GraphInstantiateWithFlags)(qrt_cu_graph_exec *, qrt_cu_graph, unsigned long long);
    qrt_cu_result (*GraphLaunch)(qrt_cu_graph_exec, qrt_cu_stream);
    qrt_cu_result (*GraphDestroy)(qrt_cu_graph);
    qrt_cu_result (*GraphExecDestroy)(qrt_cu_graph_exec);
    qrt_cu_result (*EventCreate)(qrt_cu_event *, unsigned);
    qrt_cu_result (*EventDestroy)(qrt_cu_event);
    qrt_cu_result (*EventRecord)(qrt_cu_event, qrt_cu_stream);
    qrt_cu_result (*EventSynchronize)(qrt_cu_event);
    qrt_cu_result (*EventElapsedTime)(float *, qrt_cu_event, qrt_cu_event);
    qrt_cu_result (*GetErrorString)(qrt_cu_result, const char **);
    qrt_cu_result (*OccupancyMaxActiveBlocksPerMultiprocessor)(int *, qrt_cu_function, int, size_t);
    /* optional (NULL when the driver lacks it): launches with attributes */
    qrt_cu_result (*LaunchKernelEx)(const struct qrt_cu_launch_config *, qrt_cu_function, void **, void **);
    qrt_cu_result (*ModuleGetGlobal)(qrt_cu_ptr *, size_t *, qrt_cu_module, const char *); /* optional */
} qrt_cu_api;

/* Opens libcuda.so.1 and calls cuInit(0) (once per process). NULL if there
 * is no driver or no device; *why then says which (nodev: 1 when the
 * machine simply has no GPU or driver, which is not worth a notice). */
const qrt_cu_api *qrt_cu_load(char *why, size_t cap, int *nodev);
/* Tests: every later qrt_cu_load returns api instead of libcuda's entry points (NULL: libcuda again). */
void qrt_cu_use(const qrt_cu_api *api);
/* "call: CUDA_ERROR_... (message)" for a failed driver call. */
void qrt_cu_describe(const qrt_cu_api *cu, qrt_cu_result r, const char *call, char *out, size_t cap);

/* ---- cuBLAS, when present ---- */
typedef struct cublasContext *qrt_cublas_handle;
typedef struct qrt_cublas_api {
    int (*Create)(qrt_cublas_handle *);
    int (*Destroy)(qrt_cublas_handle);
    int (*SetStream)(qrt_cublas_handle, qrt_cu_stream);
    int (*Sgemm)(qrt_cublas_handle, int, int, int, int, int, const float *, const float *, int, const float *,
                 int, const float *, float *, int);
    int (*GemmEx)(qrt_cublas_handle, int, int, int, int, int, const void *, const void *, int, int, const void *,
                  int, int, const void *, void *, int, int, int, int);
} qrt_cublas_api;
#define QRT_CUBLAS_OP_N 0
#define QRT_CUBLAS_OP_T 1
#define QRT_CUDA_R_32F 0
#define QRT_CUDA_R_16F 2
#define QRT_CUDA_R_16BF 14
#define QRT_CUBLAS_COMPUTE_32F 68
#define QRT_CUDA_R_8I 3
#define QRT_CUDA_R_32I 10
#define QRT_CUBLAS_COMPUTE_32I 72
#define QRT_CUBLAS_GEMM_DEFAULT (-1)
/* Opens libcublas (once per process); NULL if absent. */
const qrt_cublas_api *qrt_cublas_load(void);

/* ---- the embedded module ---- */
typedef struct qrt_cuda_image {
    int32_t ptx, arch;
    const uint8_t *data;
    size_t size;
} qrt_cuda_image;
typedef struct qrt_cuda_blob {
    int32_t n_images, n_kernels;
    int32_t gemv_warps, gemv_loads, gemv_xs, gemv_fast;
    qrt_cuda_image images[16];
    const char *names; /* n_kernels NUL-terminated names */
    size_t names_size;
} qrt_cuda_blob;
/* Parses a qm_cuda section (without its trailer). 0, or -1 if malformed. */
int qrt_cuda_blob_parse(qrt_cuda_blob *b, const uint8_t *p, size_t n);
/* The image to load on a device of compute capability cc (10 * major +
 * minor): the cubin of the same major with the highest minor <= the
 * device's, else the newest PTX not newer than the device. NULL if none. */
const qrt_cuda_image *qrt_cuda_blob_pick(const qrt_cuda_blob *b, int32_t cc);

/* GEMV launch shape for a weight dtype (must match gemv_core in kernels.cu):
 * rows per warp item, threads per block, x columns staged at once (sv),
 * dynamic shared memory. */
typedef struct qrt_gemv_shape {
    int32_t rows_per_warp, warps, threads, sv;
    int32_t mmax; /* tensor-core GEMV: row tiles of 16 per block at most */
    size_t smem;
} qrt_gemv_shape;
qrt_gemv_shape qrt_gemv_shape_of(const qrt_cuda_blob *b, int32_t dtype, int32_t K, int32_t batch);
/* The same for a tensor-core GEMV kernel of `warps` warps (qcc's "_w8" kernels: 8; 0: the module's). */
qrt_gemv_shape qrt_gemv_shape_w(const qrt_cuda_blob *b, int32_t dtype, int32_t K, int32_t batch, int32_t warps);
/* How runtime/cuda.c launches the fused dequantize + GEMM of a packed [N, K] weight for `rows` tokens:
 * qk_qgemm_x16 (x to f16 in the order of P, rows x Kp), then qk_qgemm_<dt>_t<8 nt> (nt > 0) or the tiled
 * qk_qgemm_<dt> (nt 0) on a grid (gx, S, gz) of 256 threads with smem bytes, then qk_qgemm_reduce when
 * S > 1 (parts [S, rows, N] f32). small: the module has the _t kernels; smem_optin: the device's limit.
 * ok 0: neither kernel fits the device's shared memory. */
typedef struct qrt_qgemm_plan {
    int32_t ok, nt, S, P, Kp;
    unsigned gx, gz;
    size_t smem;
} qrt_qgemm_plan;
qrt_qgemm_plan qrt_qgemm_plan_of(int32_t rows, int32_t bits, int32_t K, int32_t N, int small, int64_t smem_optin);
/* Packed weights of `bits`: chunks of this many tokens or more (up to --fused-gemm-max) take the fused GEMM;
 * fewer, the GEMV. */
int32_t qrt_qgemm_min_rows(int32_t bits);
/* Blocks to launch for N rows: with all of K staged at once the grid is
 * persistent (at most max_blocks: what fits on the device at once), else
 * one row group per warp. */
uint32_t qrt_gemv_grid(const qrt_gemv_shape *s, int32_t K, int32_t N, int32_t max_blocks);

/* ---- model and contexts ---- */
typedef struct qrt_cuda_opts {
    int32_t verbose;
    int32_t kv_f16;    /* KV cache in f16 (default f32) */
    int32_t no_graph;  /* run the decode step uncaptured */
    int32_t no_pdl;    /* launch without programmatic dependent launch (sm_90+) */
    int32_t no_cublas; /* prefill through qk_gemm_* even when cuBLAS is there */
    int32_t fuse_norm; /* one token: RMSNorm in the prologue of the merged GEMVs after it, residual adds in the
                        * epilogue of the GEMV before them (docs/cuda.md; the executables' default) */
    int32_t no_fuse_rope; /* one token: RoPE of q and k and the KV append as a kernel of their own instead of in
                           * the attention's prologue (qk_attn_rope_*, the default) */
    int32_t no_cluster;   /* one token: the attention's splits merged through global memory instead of as one
                           * thread block cluster per head (sm_90+, at most 8 splits; the default) */
    int32_t no_lookahead; /* greedy: wait for the host's turn instead of queuing the next decode step behind
                           * the sampling (qrt_cuda_topk) */
    int32_t fused_gemm_max; /* packed weights: prefill chunks of up to this many tokens through the fused
                             * dequantize + GEMM kernel, longer ones dequantize + cuBLAS; 0: the default
                             * (QRT_QG_MAX_DEFAULT), -1: never while cuBLAS is there */
} qrt_cuda_opts;

/* Brings the model onto the GPU: driver, device 0, module, weights. 0 ok;
 * 1: no GPU / driver (quiet); -1: error, `msg` says what. */
int qrt_cuda_init(qrt_model *m, const qrt_cuda_opts *o, char *msg, size_t cap);
void qrt_cuda_free(qrt_model *m);
/* One line about the device and the loaded image, for -v and --bench. */
const char *qrt_cuda_device_name(const qrt_model *m);

/* Fills c (m, n_ctx, max_batch already set) with device buffers, KV cache
 * and step block; c->bufs[] then holds device addresses. 0, or -1 with msg. */
int qrt_cuda_ctx_init(qrt_ctx *c, char *msg, size_t cap);
void qrt_cuda_ctx_release(qrt_ctx *c);
/* One step with the ctx fields set as qrt_ctx_forward sets them; host
 * logits, or NULL after a CUDA error (qrt_cuda_error says which). */
const float *qrt_cuda_forward(qrt_ctx *c);
/* qrt_cuda_forward in two halves: the pass (0, or -1 after a GPU error),
 * then the logits to the host (NULL after an error). */
int qrt_cuda_run(qrt_ctx *c);
const float *qrt_cuda_logits(qrt_ctx *c);
/* After qrt_cuda_run: the sampler's k candidates of the last row
 * (runtime/sampler.c's rule), computed on the GPU (qk_topk), so only k
 * (logit, id) pairs cross to the host. Returns k, -1 after a GPU error,
 * -2 if k is out of the kernel's range (1 .. QRT_TOPK_MAX, <= vocab).
 * Look-ahead: with k = 1 and a captured decode step, the step for the
 * chosen id at the next position is queued before this returns; a
 * qrt_cuda_run for exactly that token and position then launches nothing,
 * any other run simply follows it (it overwrites what it wrote), and
 * qrt_cuda_logits before the next run is an error. */
#define QRT_TOPK_MAX 1024
int32_t qrt_cuda_topk(qrt_ctx *c, int32_t k, float *val, int32_t *idx);
/* Waits until the GPU has done everything queued (a look-ahead step too). */
int qrt_cuda_sync(qrt_ctx *c);
const char *qrt_cuda_error(const qrt_model *m);
/* Writes the step block (n_tokens, pos, tokens of c) to the device: what
 * qrt_cuda_forward does first; tests that call kernels directly use it. */
int qrt_cuda_step_upload(qrt_ctx *c);

/* GPU twins of the kernels (qrt/abi.h), called by qrt_k_* when c->gpu. */
qrt_kernel_fn qrt_cuda_k_embed, qrt_cuda_k_rmsnorm, qrt_cuda_k_linear, qrt_cuda_k_rope,
    qrt_cuda_k_attention, qrt_cuda_k_silu_mul, qrt_cuda_k_add, qrt_cuda_k_lm_head;

/* For tests and benches: device memory of the model's context. */
qrt_cu_ptr qrt_cuda_alloc(qrt_model *m, size_t bytes);
void qrt_cuda_dfree(qrt_model *m, qrt_cu_ptr p);
int qrt_cuda_upload(qrt_model *m, qrt_cu_ptr dst, const void *src, size_t bytes);
int qrt_cuda_download(qrt_model *m, void *dst, qrt_cu_ptr src, size_t bytes); /* syncs the stream first */
/* Turns cuBLAS prefill on / off (when loaded); returns whether it is on. */
int qrt_cuda_use_cublas(qrt_model *m, int on);
/* Tests, benchmarks: the fused prefill GEMM's token limit (max >= 0 sets it); returns the old one. */
int32_t qrt_cuda_fused_gemm_max(qrt_model *m, int32_t max);
/* How many ops went into another op's kernel so far: 1 per qk_gemvm_* launch (q / k / v or gate / up in
 * one), 2 per qk_gemvmn_* (the same and the RMSNorm before them), 1 per qk_gemvs_* (SILU_MUL + the GEMV
 * after it), 1 per residual add done in the epilogue of the GEMV before it. */
int64_t qrt_cuda_merged(const qrt_model *m);
/* 1 while one-token attentions launch their splits as thread block clusters (docs/cuda.md) */
int qrt_cuda_clusters(const qrt_model *m);
/* qcc --cuda-trace builds: the last replayed decode steps as a time line, one row per kernel of the step
 * (docs/cuda.md), as a markdown table on f. 0 printed, -1 nothing to print (no trace in the module, no
 * replayed step yet, or fewer than 2 steps recorded). */
int qrt_cuda_trace_report(const qrt_model *m, FILE *f);

#endif
