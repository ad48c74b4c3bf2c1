/*
 * codegen/llvm/module.c — the model as an LLVM module.
 *
 * What the executable needs from the compiler, and nothing else (qrt/abi.h):
 *   qm_config[QRT_CFG_COUNT]  i32 constants the runtime sizes itself by;
 *   qm_buf_widths[n_bufs]     floats per token of each activation buffer;
 *   qm_forward(ctx)           the op list as straight-line kernel calls: each
 *                             buffer pointer fetched once at entry, every
 *                             shape/param an immediate, every weight pointer a
 *                             constant `qm_weights_start + blob_offset`
 *                             (--dummy-weights: `qrt_dummy_base + blob_offset`,
 *                             the pointer loaded once at entry: the runtime
 *                             generates the weights at start, qrt/dummy.h);
 *   qm_{weights,tokenizer,info,cuda}_{start,end}
 *                             the data blobs, pulled in by `.incbin` in module
 *                             inline assembly: the integrated assembler copies
 *                             the file into the object without LLVM ever
 *                             building a constant for it, and the linker puts
 *                             it in a read-only PROGBITS section that the OS
 *                             pages in from the executable (never copied).
 * Symbols are created in a fixed order from the graph alone, so the module
 * (and the object) depend on nothing else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llvm_cg.h"

/* Growable string for the inline assembly. */
typedef struct strbuf {
    char *p;
    size_t n, cap;
} strbuf;

static void sb_put(strbuf *s, const char *str, size_t len) {
    if (s->n + len + 1 > s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 1024;
        while (nc < s->n + len + 1) nc *= 2;
        char *q = realloc(s->p, nc);
        QC_ASSERT(q != NULL);
        s->p = q;
        s->cap = nc;
    }
    memcpy(s->p + s->n, str, len);
    s->n += len;
    s->p[s->n] = '\0';
}

static void sb_puts(strbuf *s, const char *str) { sb_put(s, str, strlen(str)); }

/* Appends `path` as an assembler string literal: quote and backslash escaped,
 * every byte outside printable ASCII as a three-digit octal escape. */
static void sb_put_asm_string(strbuf *s, const char *path) {
    sb_puts(s, "\"");
    for (const unsigned char *c = (const unsigned char *)path; *c; c++) {
        char tmp[8];
        if (*c == '"' || *c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)*c;
            sb_put(s, tmp, 2);
        } else if (*c >= 0x20 && *c < 0x7f) {
            sb_put(s, (const char *)c, 1);
        } else {
            snprintf(tmp, sizeof tmp, "\\%03o", *c);
            sb_puts(s, tmp);
        }
    }
    sb_puts(s, "\"");
}

/*
 * One embedded blob, 64-byte aligned, between qm_NAME_start and qm_NAME_end.
 * Small blobs go to .rodata.qm_NAME. A large one goes to .lrodata.qm_NAME
 * with SHF_X86_64_LARGE ("l"): the linker places .lrodata after .bss, at the
 * end of the image, so gigabytes of weights never sit between the code and
 * the .rodata/.eh_frame it reaches with 32-bit PC-relative offsets.
 */
static void put_blob(strbuf *s, const char *name, const char *path, int large) {
    char line[256];
    snprintf(line, sizeof line,
             "\t.pushsection .%srodata.qm_%s,\"a%s\",@progbits\n"
             "\t.balign 64\n"
             "\t.globl qm_%s_start\n"
             "\t.hidden qm_%s_start\n"
             "\t.type qm_%s_start,@object\n"
             "qm_%s_start:\n"
             "\t.incbin ",
             large ? "l" : "", name, large ? "l" : "", name, name, name, name);
    sb_puts(s, line);
    sb_put_asm_string(s, path);
    snprintf(line, sizeof line,
             "\n"
             "\t.globl qm_%s_end\n"
             "\t.hidden qm_%s_end\n"
             "\t.type qm_%s_end,@object\n"
             "qm_%s_end:\n"
             "\t.popsection\n",
             name, name, name, name);
    sb_puts(s, line);
}

/* A constant i32 array global, external linkage, read-only. */
static void add_i32_array(LLVMModuleRef m, const char *name, const int32_t *v, unsigned n) {
    LLVMContextRef ctx = LLVMGetModuleContext(m);
    LLVMTypeRef i32 = LLVMInt32TypeInContext(ctx);
    LLVMValueRef *elts = malloc((n ? n : 1) * sizeof *elts);
    QC_ASSERT(elts != NULL);
    for (unsigned i = 0; i < n; i++) elts[i] = LLVMConstInt(i32, (uint64_t)(int64_t)v[i], 1);
    LLVMValueRef gv = LLVMAddGlobal(m, LLVMArrayType2(i32, n), name);
    LLVMSetInitializer(gv, LLVMConstArray2(i32, elts, n));
    LLVMSetGlobalConstant(gv, 1);
    LLVMSetAlignment(gv, 16);
    free(elts);
}

static void add_config(LLVMModuleRef m, const qc_graph *g) {
    int32_t cfg[QRT_CFG_COUNT] = {0};
    const qc_config *c = &g->cfg;
    cfg[QRT_CFG_ABI_VERSION] = QRT_ABI_VERSION;
    cfg[QRT_CFG_ARCH] = c->arch;
    cfg[QRT_CFG_N_LAYERS] = c->n_layers;
    cfg[QRT_CFG_DIM] = c->dim;
    cfg[QRT_CFG_N_HEADS] = c->n_heads;
    cfg[QRT_CFG_N_KV_HEADS] = c->n_kv_heads;
    cfg[QRT_CFG_HEAD_DIM] = c->head_dim;
    cfg[QRT_CFG_FFN_DIM] = c->ffn_dim;
    cfg[QRT_CFG_VOCAB] = c->vocab;
    cfg[QRT_CFG_MAX_CTX] = c->max_ctx;
    cfg[QRT_CFG_N_BUFS] = g->n_bufs;
    cfg[QRT_CFG_LOGITS_BUF] = g->logits_buf;
    cfg[QRT_CFG_BOS] = c->bos;
    cfg[QRT_CFG_EOS] = c->eos;
    cfg[QRT_CFG_MAX_BATCH] = (c->max_ctx > 0 && c->max_ctx < 512) ? c->max_ctx : 512;
    add_i32_array(m, "qm_config", cfg, QRT_CFG_COUNT);
    add_i32_array(m, "qm_buf_widths", g->buf_widths, (unsigned)g->n_bufs);
}

/* Checks every id an op refers to, and that its tensors lie in the blob. */
static int check_op(const qc_graph *g, int32_t i, uint64_t weights_size, qc_err *err) {
    const qc_op *op = &g->ops[i];
    if (op->kind < 0 || op->kind >= QRT_K_COUNT || !qc_op_symbol(op->kind))
        return qc_err_set(err, "codegen: op %d: unknown kind %d", (int)i, (int)op->kind);
    int32_t bufs[4] = {op->out, op->in[0], op->in[1], op->in[2]};
    for (int k = 0; k < 4; k++)
        if (bufs[k] < -1 || bufs[k] >= g->n_bufs)
            return qc_err_set(err, "codegen: op %d (%s): buffer id %d out of range [0, %d)",
                              (int)i, qc_op_name(op->kind), (int)bufs[k], (int)g->n_bufs);
    int32_t ts[2] = {op->w, op->bias};
    for (int k = 0; k < 2; k++) {
        if (ts[k] < -1 || ts[k] >= g->n_tensors)
            return qc_err_set(err, "codegen: op %d (%s): tensor id %d out of range [0, %d)",
                              (int)i, qc_op_name(op->kind), (int)ts[k], (int)g->n_tensors);
        if (ts[k] < 0) continue;
        const qc_tensor *t = &g->tensors[ts[k]];
        if (t->blob_offset > weights_size || t->blob_nbytes > weights_size - t->blob_offset)
            return qc_err_set(err,
                              "%s: tensor '%s': blob bytes [%llu, +%llu) lie beyond the weight blob (%llu bytes)",
                              "codegen", t->name, (unsigned long long)t->blob_offset,
                              (unsigned long long)t->blob_nbytes, (unsigned long long)weights_size);
    }
    return 0;
}

/* The kernel function for op kind `kind`, declared on first use. */
static LLVMValueRef kernel_fn(LLVMModuleRef m, LLVMTypeRef fty, int32_t kind) {
    const char *sym = qc_op_symbol(kind);
    LLVMValueRef f = LLVMGetNamedFunction(m, sym);
    if (!f) {
        f = LLVMAddFunction(m, sym, fty);
        LLVMSetLinkage(f, LLVMExternalLinkage);
    }
    return f;
}

static void add_fn_attr(LLVMValueRef f, const char *name, uint64_t val) {
    LLVMContextRef ctx = LLVMGetTypeContext(LLVMTypeOf(f));
    unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
    QC_ASSERT(kind != 0);
    LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(ctx, kind, val));
}

static int add_forward(LLVMModuleRef m, const qc_graph *g, uint64_t weights_size, uint64_t dummy_size,
                       qc_err *err) {
    if (dummy_size) weights_size = dummy_size; /* the blob the runtime generates */
    for (int32_t i = 0; i < g->n_ops; i++)
        if (check_op(g, i, weights_size, err)) return -1;

    LLVMContextRef ctx = LLVMGetModuleContext(m);
    LLVMTypeRef ptr = LLVMPointerTypeInContext(ctx, 0);
    LLVMTypeRef i8 = LLVMInt8TypeInContext(ctx);
    LLVMTypeRef i32 = LLVMInt32TypeInContext(ctx);
    LLVMTypeRef i64 = LLVMInt64TypeInContext(ctx);
    LLVMTypeRef f32 = LLVMFloatTypeInContext(ctx);
    LLVMTypeRef voidt = LLVMVoidTypeInContext(ctx);

    /* void qm_forward(qrt_ctx *ctx) */
    LLVMTypeRef fwd_ty = LLVMFunctionType(voidt, &ptr, 1, 0);
    LLVMValueRef fwd = LLVMAddFunction(m, "qm_forward", fwd_ty);
    add_fn_attr(fwd, "nounwind", 0);
    add_fn_attr(fwd, "uwtable", 2); /* async unwind tables: debuggers and profilers can walk through it */
    LLVMValueRef ctxv = LLVMGetParam(fwd, 0);
    LLVMSetValueName2(ctxv, "ctx", 3);

    /* float *qrt_buf(qrt_ctx *ctx, int32_t id) */
    LLVMTypeRef buf_args[2] = {ptr, i32};
    LLVMTypeRef buf_ty = LLVMFunctionType(ptr, buf_args, 2, 0);
    LLVMValueRef buf_fn = LLVMAddFunction(m, "qrt_buf", buf_ty);

    /* qrt_kernel_fn: (ctx, out, a, b, c, w, bias, wdtype, p0, p1, p2, p3, f0) */
    LLVMTypeRef k_args[13] = {ptr, ptr, ptr, ptr, ptr, ptr, ptr, i32, i32, i32, i32, i32, f32};
    LLVMTypeRef k_ty = LLVMFunctionType(voidt, k_args, 13, 0);

    /* The weight blob's start, defined by the inline assembly in this module. */
    LLVMValueRef wstart = LLVMAddGlobal(m, LLVMArrayType2(i8, 0), "qm_weights_start");
    LLVMSetLinkage(wstart, LLVMExternalLinkage);
    LLVMSetVisibility(wstart, LLVMHiddenVisibility); /* hidden => dso_local: PC-relative, no GOT */
    LLVMSetGlobalConstant(wstart, 1);
    LLVMSetAlignment(wstart, 64);

    LLVMBuilderRef b = LLVMCreateBuilderInContext(ctx);
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(ctx, fwd, "entry");
    LLVMPositionBuilderAtEnd(b, entry);

    LLVMValueRef bufs[sizeof g->buf_widths / sizeof g->buf_widths[0]];
    QC_ASSERT(g->n_bufs >= 0 && (size_t)g->n_bufs <= sizeof bufs / sizeof bufs[0]);
    for (int32_t i = 0; i < g->n_bufs; i++) {
        char name[16];
        snprintf(name, sizeof name, "buf%d", (int)i);
        LLVMValueRef args[2] = {ctxv, LLVMConstInt(i32, (uint64_t)i, 0)};
        bufs[i] = LLVMBuildCall2(b, buf_ty, buf_fn, args, 2, name);
    }

    /* --dummy-weights: the runtime's pointer to the weights it generated */
    LLVMValueRef dbase = NULL;
    if (dummy_size) {
        LLVMValueRef gv = LLVMAddGlobal(m, ptr, "qrt_dummy_base");
        LLVMSetLinkage(gv, LLVMExternalLinkage);
        dbase = LLVMBuildLoad2(b, ptr, gv, "wbase");
    }

    LLVMValueRef null = LLVMConstNull(ptr);
    for (int32_t i = 0; i < g->n_ops; i++) {
        const qc_op *op = &g->ops[i];
        LLVMValueRef args[13];
        args[0] = ctxv;
        args[1] = op->out >= 0 ? bufs[op->out] : null;
        for (int k = 0; k < 3; k++) args[2 + k] = op->in[k] >= 0 ? bufs[op->in[k]] : null;
        int32_t tids[2] = {op->w, op->bias};
        for (int k = 0; k < 2; k++) {
            if (tids[k] < 0) {
                args[5 + k] = null;
                continue;
            }
            LLVMValueRef off = LLVMConstInt(i64, g->tensors[tids[k]].blob_offset, 0);
            args[5 + k] = dbase ? LLVMBuildGEP2(b, i8, dbase, &off, 1, "") : LLVMConstGEP2(i8, wstart, &off, 1);
        }
        args[7] = LLVMConstInt(i32, (uint64_t)(int64_t)(op->w >= 0 ? g->tensors[op->w].out_dtype : 0), 1);
        for (int k = 0; k < 4; k++) args[8 + k] = LLVMConstInt(i32, (uint64_t)(int64_t)op->p[k], 1);
        args[12] = LLVMConstReal(f32, (double)op->f0);
        LLVMBuildCall2(b, k_ty, kernel_fn(m, k_ty, op->kind), args, 13, "");
    }
    LLVMBuildRetVoid(b);
    LLVMDisposeBuilder(b);
    return 0;
}

int qc_llvm_build_module(LLVMModuleRef m, const qc_graph *g, const qc_codegen_opts *o,
                         uint64_t weights_size, qc_err *err) {
    if (g->n_bufs < 0 || (size_t)g->n_bufs > sizeof g->buf_widths / sizeof g->buf_widths[0])
        return qc_err_set(err, "codegen: %d buffers (at most %zu)", (int)g->n_bufs,
                          sizeof g->buf_widths / sizeof g->buf_widths[0]);
    if (g->logits_buf < -1 || g->logits_buf >= g->n_bufs)
        return qc_err_set(err, "codegen: logits buffer %d out of range [0, %d)", (int)g->logits_buf,
                          (int)g->n_bufs);

    add_config(m, g);
    if (add_forward(m, g, weights_size, o->dummy_size, err)) return -1;

    strbuf s = {0};
    put_blob(&s, "weights", o->weights_path, 1);
    put_blob(&s, "tokenizer", o->tokenizer_path, 0);
    put_blob(&s, "info", o->info_path, 0);
    if (o->cuda_path) put_blob(&s, "cuda", o->cuda_path, 0); /* device code: only with a CUDA target */
    LLVMSetModuleInlineAsm2(m, s.p, s.n);
    free(s.p);
    return 0;
}
