/*
 * codegen/llvm/emit.c — qc_codegen_llvm: context, target machine, checks,
 * optimization and output files for the host module (codegen/llvm/module.c
 * fills it).
 *
 * The target is fixed — x86_64-pc-linux-gnu, generic "x86-64" CPU, no
 * feature string, PIC — and never read from the host, so the object is a
 * function of the graph and the options alone. Every LLVM failure funnels
 * through qc_llvm_check, including errors the integrated assembler reports
 * through the context's diagnostic handler (e.g. an unreadable .incbin file),
 * which LLVM would otherwise print before calling exit().
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "llvm_cg.h"

#define TRIPLE "x86_64-pc-linux-gnu"
#define CPU "x86-64"

int qc_llvm_check(int failed, char **msg, void (*dispose)(char *), const char *what, qc_err *err) {
    if (failed) {
        const char *m = *msg && **msg ? *msg : "(no message)";
        size_t len = strcspn(m, "\n"); /* one line: LLVM appends source excerpts */
        if (len > 900) len = 900;
        qc_err_set(err, "%s: %.*s", what, (int)len, m);
    }
    if (*msg) dispose(*msg);
    *msg = NULL;
    return failed ? -1 : 0;
}

/* The first error the context reported while it ran (owned, LLVMDisposeMessage). */
typedef struct diag_state {
    char *first_error;
} diag_state;

static void on_diagnostic(LLVMDiagnosticInfoRef di, void *opaque) {
    diag_state *st = opaque;
    if (LLVMGetDiagInfoSeverity(di) != LLVMDSError) return;
    char *desc = LLVMGetDiagInfoDescription(di);
    if (!st->first_error)
        st->first_error = desc;
    else
        LLVMDisposeMessage(desc);
}

/* Size of a regular file we can open for reading, or -1 with err set. */
static int input_size(const char *what, const char *path, uint64_t *size, qc_err *err) {
    if (!path || !*path) return qc_err_set(err, "codegen: no %s file given", what);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return qc_err_set(err, "%s: cannot open %s file: %s", path, what, strerror(errno));
    struct stat st;
    int rc = fstat(fd, &st);
    int e = errno;
    close(fd);
    if (rc != 0) return qc_err_set(err, "%s: cannot stat %s file: %s", path, what, strerror(e));
    if (!S_ISREG(st.st_mode)) return qc_err_set(err, "%s: %s file is not a regular file", path, what);
    *size = (uint64_t)st.st_size;
    return 0;
}

static LLVMTargetMachineRef make_target_machine(int opt_level, qc_err *err) {
    static const LLVMCodeGenOptLevel levels[4] = {LLVMCodeGenLevelNone, LLVMCodeGenLevelLess,
                                                  LLVMCodeGenLevelDefault, LLVMCodeGenLevelAggressive};
    /* Registration is idempotent; only x86 is linked in as a host target. */
    LLVMInitializeX86TargetInfo();
    LLVMInitializeX86Target();
    LLVMInitializeX86TargetMC();
    LLVMInitializeX86AsmParser(); /* the module's inline assembly */
    LLVMInitializeX86AsmPrinter();

    LLVMTargetRef target = NULL;
    char *msg = NULL;
    if (qc_llvm_check(LLVMGetTargetFromTriple(TRIPLE, &target, &msg), &msg, LLVMDisposeMessage,
                      "codegen: llvm target " TRIPLE, err))
        return NULL;
    LLVMTargetMachineRef tm = LLVMCreateTargetMachine(target, TRIPLE, CPU, "", levels[opt_level],
                                                      LLVMRelocPIC, LLVMCodeModelDefault);
    if (!tm) qc_err_set(err, "codegen: llvm: cannot create a target machine for " TRIPLE);
    return tm;
}

/* Everything after the module is built: verify, optimize, write files. */
static int finish_module(LLVMModuleRef m, LLVMTargetMachineRef tm, diag_state *diag,
                         const qc_codegen_opts *o, qc_err *err) {
    char *msg = NULL;
    if (qc_llvm_check(LLVMVerifyModule(m, LLVMReturnStatusAction, &msg), &msg, LLVMDisposeMessage,
                      "codegen: llvm module verification", err))
        return -1;
    if (o->opt_level > 0) {
        static const char *const pipelines[4] = {"", "default<O1>", "default<O2>", "default<O3>"};
        LLVMPassBuilderOptionsRef pbo = LLVMCreatePassBuilderOptions();
        LLVMErrorRef e = LLVMRunPasses(m, pipelines[o->opt_level], tm, pbo);
        LLVMDisposePassBuilderOptions(pbo);
        char *em = e ? LLVMGetErrorMessage(e) : NULL; /* consumes e */
        if (qc_llvm_check(em != NULL, &em, LLVMDisposeErrorMessage, "codegen: llvm passes", err))
            return -1;
    }
    if (o->ir_path) {
        if (qc_llvm_check(LLVMPrintModuleToFile(m, o->ir_path, &msg), &msg, LLVMDisposeMessage,
                          o->ir_path, err))
            return -1;
    }
    if (o->obj_path) {
        int rc = qc_llvm_check(LLVMTargetMachineEmitToFile(tm, m, o->obj_path, LLVMObjectFile, &msg),
                               &msg, LLVMDisposeMessage, o->obj_path, err);
        if (rc == 0 && diag->first_error)
            rc = qc_llvm_check(1, &diag->first_error, LLVMDisposeMessage, o->obj_path, err);
        if (rc != 0) {
            unlink(o->obj_path); /* never leave a half-written object behind */
            return -1;
        }
    }
    if (diag->first_error) /* reported outside object emission */
        return qc_llvm_check(1, &diag->first_error, LLVMDisposeMessage, "codegen: llvm", err);
    return 0;
}

int qc_codegen_llvm(const qc_graph *g, const qc_codegen_opts *o, qc_err *err) {
    if (o->opt_level < 0 || o->opt_level > 3)
        return qc_err_set(err, "codegen: optimization level %d not in 0..3", o->opt_level);
    uint64_t wsize = 0, tsize = 0, isize = 0, csize = 0;
    if (input_size("weights", o->weights_path, &wsize, err)) return -1;
    if (input_size("tokenizer", o->tokenizer_path, &tsize, err)) return -1;
    if (input_size("info", o->info_path, &isize, err)) return -1;
    if (o->cuda_path && input_size("cuda", o->cuda_path, &csize, err)) return -1;

    LLVMTargetMachineRef tm = make_target_machine(o->opt_level, err);
    if (!tm) return -1;

    diag_state diag = {0};
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMContextSetDiagnosticHandler(ctx, on_diagnostic, &diag);
    LLVMModuleRef m = LLVMModuleCreateWithNameInContext("qm", ctx);
    LLVMSetSourceFileName(m, "qm", 2); /* the object's STT_FILE symbol: no paths */
    LLVMSetTarget(m, TRIPLE);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
    LLVMSetModuleDataLayout(m, td);
    LLVMDisposeTargetData(td);

    int rc = qc_llvm_build_module(m, g, o, wsize, err);
    if (rc == 0) rc = finish_module(m, tm, &diag, o, err);

    LLVMDisposeModule(m);
    if (diag.first_error) LLVMDisposeMessage(diag.first_error);
    LLVMContextDispose(ctx);
    LLVMDisposeTargetMachine(tm);
    return rc;
}
