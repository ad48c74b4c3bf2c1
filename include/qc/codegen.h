/*
 * qc/codegen.h — IR to object file to executable.
 *
 * qc_codegen_llvm builds the host module through the LLVM 19 C API:
 *   - qm_config[QRT_CFG_COUNT] and qm_buf_widths[n_bufs] as constant i32 arrays;
 *   - qm_forward(ctx): one call per IR op, in order, to the op's libqrt kernel
 *     (qrt/abi.h, one signature for all), every shape and param a constant,
 *     every weight pointer `qm_weights_start + blob_offset` (a constant GEP),
 *     buffer pointers fetched once at entry with qrt_buf(ctx, id);
 *   - the weight blob, tokenizer blob, info JSON and (when built for a GPU)
 *     the CUDA section (qm_cuda_start/end, include/qc/cuda.h) embedded through
 *     module-level inline assembly (.section .rodata.qm_*, .balign 64,
 *     .incbin "FILE", start/end symbols), which the integrated assembler
 *     handles without building LLVM constants for gigabytes of data.
 * It emits an object file (and optionally the module as text) for the host
 * target through an LLVM TargetMachine. Output depends only on the graph and
 * the options: no timestamps, no host CPU features (generic x86-64 CPU).
 *
 * qc_link_exe links that object with libqrt.a and static OpenBLAS (plus
 * gfortran/quadmath) into a single executable that needs only libc, libm,
 * libpthread, libdl at run time.
 */
#ifndef QC_CODEGEN_H
#define QC_CODEGEN_H

#include "qc/err.h"
#include "qc/ir.h"

typedef struct qc_codegen_opts {
    const char *weights_path;   /* file with the weight blob (.incbin'd) */
    const char *tokenizer_path; /* file with the tokenizer blob */
    const char *info_path;      /* file with the --info JSON */
    const char *obj_path;       /* object file to write; NULL: don't */
    const char *ir_path;        /* textual LLVM IR to write; NULL: don't */
    int opt_level;              /* 0..3 */
    const char *cuda_path;      /* file with the CUDA section (qc/cuda.h); NULL: CPU only */
    uint64_t dummy_size;        /* --dummy-weights: weights_path holds the generator's descriptor
                                   (qrt/dummy.h) and weight pointers are qrt_dummy_base + offset,
                                   inside a blob of this many bytes the runtime fills; 0: embedded */
} qc_codegen_opts;

int qc_codegen_llvm(const qc_graph *g, const qc_codegen_opts *o, qc_err *err);

/* Links obj_path + the runtime into out_path (written directly; the caller
 * renames it into place). */
int qc_link_exe(const char *obj_path, const char *out_path, qc_err *err);
/* The same with another runtime archive in place of the built-in libqrt.a
 * path (tests link against a stand-in runtime). */
int qc_link_exe_with(const char *obj_path, const char *runtime_lib, const char *out_path,
                     qc_err *err);

#endif
