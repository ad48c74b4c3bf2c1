/*
 * codegen/llvm/llvm_cg.h — what the two halves of the LLVM backend share
 * (private to codegen/llvm/): module.c fills a module with the model,
 * emit.c owns the context, the target machine and the output files.
 */
#ifndef QC_LLVM_CG_H
#define QC_LLVM_CG_H

#include <stdint.h>

#include <llvm-c/Core.h>

#include "qc/codegen.h"

/*
 * The one gate every LLVM failure goes through: if `failed`, records
 * "WHAT: <first line of LLVM's message>" in err and returns -1, else 0.
 * *msg (may be NULL) is always released with `dispose` (LLVMDisposeMessage
 * or LLVMDisposeErrorMessage, whichever the API that made it names) and set
 * to NULL. msg is passed by address so that `qc_llvm_check(LLVMFoo(&m), &m,
 * ...)` reads m after LLVMFoo wrote it (arguments are unsequenced).
 */
int qc_llvm_check(int failed, char **msg, void (*dispose)(char *), const char *what, qc_err *err);

/*
 * Adds qm_config, qm_buf_widths, qm_forward and the blob inline assembly to
 * m (whose triple and data layout are already set). weights_size is the
 * size in bytes of o->weights_path; every tensor an op uses must lie inside.
 */
int qc_llvm_build_module(LLVMModuleRef m, const qc_graph *g, const qc_codegen_opts *o,
                         uint64_t weights_size, qc_err *err);

#endif
