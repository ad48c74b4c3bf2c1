/*
 * qc/cuda.h — the CUDA half of codegen: the model's device code as CUDA C,
 * compiled by NVRTC into one image per target, packed into the section the
 * executable embeds as qm_cuda_start .. qm_cuda_end (layout below; the
 * reader is runtime/cuda.c).
 *
 *   qc_cuda_module_*   the source: codegen/cuda/kernels.cu (embedded in qcc
 *                      at build time) + #defines + one shape-specialized
 *                      GEMV per distinct linear (dtype, K, N, group, sym) of
 *                      the graph, and the list of kernel names it defines
 *   qc_cuda_compile    NVRTC (dlopen'd: qcc starts without the toolkit),
 *                      one program per target compiled in parallel; results
 *                      cached on disk under the xxh3-128 of
 *                      (NVRTC version, options, source)
 *   qc_cuda_blob       the embedded section's bytes
 *
 * Targets: "sm_XY" gives a cubin for SM X.Y (runs on X.Y' with Y' >= Y),
 * "compute_XY" PTX the driver JIT-compiles for X.Y and every later GPU.
 * Output depends only on the graph, the options and the NVRTC version.
 *
 * Section layout (little-endian; every offset from the section start):
 *   0   char[8]  "QCCUDA01"
 *   8   u32      header bytes (64)        12  u32  n_images
 *   16  u32      n_kernels                20  u32  gemv_warps
 *   24  u32      gemv_loads               28  u32  gemv_xs
 *   32  u32      gemv_fast                36  u32  0
 *   40  u64      names offset             48  u64  names bytes
 *   56  u64      0
 *   64  n_images x { u32 kind (0 cubin, 1 PTX), u32 arch (e.g. 90),
 *                    u64 offset, u64 bytes }        (24 bytes each)
 *   then the kernel names (each NUL-terminated), then the images, each on
 *   a 16-byte boundary (PTX includes its terminating NUL).
 */
#ifndef QC_CUDA_H
#define QC_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "qc/err.h"
#include "qc/ir.h"

#define QC_CUDA_DEFAULT_ARCHS "sm_80,sm_86,sm_89,sm_90,compute_90"
#define QC_CUDA_MAX_TARGETS 16
#define QC_CUDA_HEADER 64
#define QC_CUDA_IMAGE_ENTRY 24

typedef struct qc_cuda_target {
    int32_t ptx;  /* 1: compute_XY (PTX), 0: sm_XY (cubin) */
    int32_t arch; /* 10 * major + minor */
} qc_cuda_target;

typedef struct qc_cuda_opts {
    qc_cuda_target targets[QC_CUDA_MAX_TARGETS];
    int32_t n_targets;
    int32_t opt_level;     /* 0: generic kernels only (no shape specialization) */
    int32_t threads;       /* NVRTC programs compiled at once (<= 0: one per target) */
    const char *cache_dir; /* compiled images are kept here; NULL: no cache */
    /* GEMV launch shape (0: the defaults of kernels.cu), see the header there */
    int32_t gemv_warps, gemv_loads, gemv_xs, gemv_fast;
    int32_t gemv_nopipe, gemv_minb; /* tuning: no prefetch of the next item; min blocks per SM */
    int32_t fuse_norm; /* also the merged GEMVs with the RMSNorm before them (qk_gemvmn_*; qcc: unless --no-fuse-norm) */
    int32_t trace;     /* every kernel notes when it started and when its wait returned (QK_TRACE; qcc --cuda-trace) */
} qc_cuda_opts;

/* Parses a comma-separated target list ("sm_80,sm_90,compute_90") into o. */
int qc_cuda_parse_targets(qc_cuda_opts *o, const char *list, qc_err *err);

/* A linear layer shape to specialize a GEMV for. group: the normalized group
 * size (K for per channel, 0 for float dtypes). */
typedef struct qc_cuda_linear {
    int32_t dtype, K, N, group, sym;
} qc_cuda_linear;

typedef struct qc_cuda_module {
    char *source;       /* NUL-terminated CUDA C */
    size_t source_len;
    char *names;        /* kernel names, each NUL-terminated, n_names of them */
    size_t names_size;
    int32_t n_names;
    int32_t gemv_warps, gemv_loads, gemv_xs, gemv_fast; /* the values compiled in */
} qc_cuda_module;

/* The module for a set of linears; dtypes: bit d set = generic kernels for
 * weight dtype d (qrt_dtype). Linears are specialized unless opt_level is
 * 0; duplicates are merged, order is kept. */
int qc_cuda_module_init(qc_cuda_module *m, const qc_cuda_linear *lin, int32_t n_lin, uint32_t dtypes,
                        const qc_cuda_opts *o, qc_err *err);
/* The module for every LINEAR / LM_HEAD of a graph (after quantize). */
int qc_cuda_module_from_graph(qc_cuda_module *m, const qc_graph *g, const qc_cuda_opts *o, qc_err *err);
void qc_cuda_module_free(qc_cuda_module *m); /* accepts NULL */

/* Kernel name of a specialized GEMV (the runtime builds the same string). */
void qc_cuda_gemv_name(char *out, size_t cap, const qc_cuda_linear *l, int32_t batch);
/* The warps per block qcc gives a batch-1 GEMV kernel of l with `tiles` row tiles of 16 (merged or not):
 * 0 for the module's gemv_warps, or 8, then the kernel's name ends in "_w8" (codegen/cuda/cuda_gen.c). */
int32_t qc_cuda_gemv_warps(const qc_cuda_module *m, const qc_cuda_linear *l, int32_t tiles);

/* Two or three linears of l's dtype, K, group and sym with N[0..n) outputs
 * that read the same input (q / k / v, gate / up): one batch-1 kernel
 * (kernels.cu QK_GEMV_MULTI) that runtime/cuda.c launches in place of n
 * consecutive GEMVs. Added to m once (duplicates are skipped); a no-op for
 * dtypes the tensor-core GEMV does not take (f32, bf16) or gemv_fast 2. */
int qc_cuda_module_add_multi(qc_cuda_module *m, const qc_cuda_linear *l, int32_t n, const int32_t *N, qc_err *err);
/* Its name: qk_gemvm_<dt>_k<K>_n<N0>_n<N1>_n<N2 or 0>_g<group>_<a|s>. */
void qc_cuda_gemvm_name(char *out, size_t cap, const qc_cuda_linear *l, int32_t n, const int32_t *N);
/* The same linears right after the RMSNorm that makes their input, whose weight has dtype norm_dt (f32, f16
 * or bf16): the norm done in the kernel's prologue as well (kernels.cu QK_GEMV_MULTIN; runtime/cuda.c
 * launches it in place of RMSNORM + the n GEMVs), named
 * qk_gemvmn_<dt>_k<K>_n<N0>_n<N1>_n<N2 or 0>_g<group>_<a|s>_<norm dt>. */
int qc_cuda_module_add_multin(qc_cuda_module *m, const qc_cuda_linear *l, int32_t n, const int32_t *N, int32_t norm_dt,
                              qc_err *err);
void qc_cuda_gemvmn_name(char *out, size_t cap, const qc_cuda_linear *l, int32_t n, const int32_t *N, int32_t norm_dt);
/* A batch-1 GEMV of shape l whose input is the SILU_MUL before it, done in
 * its prologue (kernels.cu QK_GEMV_SILU; runtime/cuda.c launches it in
 * place of SILU_MUL + GEMV). Same rules as qc_cuda_module_add_multi. */
int qc_cuda_module_add_silu(qc_cuda_module *m, const qc_cuda_linear *l, qc_err *err);
/* Its name: qk_gemvs_<dt>_k<K>_n<N>_g<group>_<a|s>. */
void qc_cuda_gemvs_name(char *out, size_t cap, const qc_cuda_linear *l);

/* Two linears of shape l (gate, up) on one input whose outputs the SILU_MUL after them multiplies: one
 * batch-1 kernel that also writes that product (kernels.cu QK_GEMV_PAIR; runtime/cuda.c launches it in
 * place of the two GEMVs and the SILU_MUL, so the GEMV after reads the product as a plain input), and with
 * norm_dt >= 0 the same with the RMSNorm before them in its prologue (QK_GEMV_PAIRN). Same rules as
 * qc_cuda_module_add_multi. Names: qk_gemvp_<dt>_k<K>_n<N>_g<group>_<a|s>[_<norm dt> for qk_gemvpn_],
 * "_w8" appended for 8-warp blocks. */
int qc_cuda_module_add_pair(qc_cuda_module *m, const qc_cuda_linear *l, int32_t norm_dt, qc_err *err);
void qc_cuda_gemvp_name(char *out, size_t cap, const qc_cuda_linear *l, int32_t norm_dt);

/* Whether NVRTC can be loaded; if not, why (one line). */
int qc_nvrtc_available(char *why, size_t cap);
/* NVRTC's version as "MAJOR.MINOR", or NULL. */
const char *qc_nvrtc_version(void);

typedef struct qc_cuda_image {
    qc_cuda_target target;
    uint8_t *data;
    size_t size;
} qc_cuda_image;

typedef struct qc_cuda_build {
    qc_cuda_image images[QC_CUDA_MAX_TARGETS];
    int32_t n_images;
    int32_t cache_hits; /* images taken from the cache */
} qc_cuda_build;

/* Compiles the module for every target of o (or only `only` if not NULL). */
int qc_cuda_compile(const qc_cuda_module *m, const qc_cuda_opts *o, const qc_cuda_target *only,
                    qc_cuda_build *out, qc_err *err);
void qc_cuda_build_free(qc_cuda_build *b);

/* The embedded section's bytes (no trailer): malloc'd into *out. */
int qc_cuda_blob(const qc_cuda_module *m, const qc_cuda_build *b, uint8_t **out, size_t *size, qc_err *err);

#endif
