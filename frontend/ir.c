/*
 * frontend/ir.c — construction, checking and printing of the qc_graph IR
 * (qc/ir.h). The frontend builds graphs with these helpers; every pass may
 * call qc_graph_verify afterwards, and --dump-after prints qc_graph_dump.
 */
#include <stdlib.h>
#include <string.h>

#include "qc/ir.h"

static const char *const op_names[] = {
#define X(op, sym) #op,
    QRT_KERNELS(X)
#undef X
};
static const char *const op_syms[] = {
#define X(op, sym) #sym,
    QRT_KERNELS(X)
#undef X
};
_Static_assert(sizeof op_names / sizeof op_names[0] == QRT_K_COUNT, "op table");

qc_graph *qc_graph_new(void) {
    qc_graph *g = calloc(1, sizeof *g);
    if (g) g->logits_buf = -1;
    return g;
}

void qc_graph_free(qc_graph *g) {
    if (!g) return;
    for (int32_t i = 0; i < g->n_tensors; i++) free(g->tensors[i].owned);
    free(g->tensors);
    free(g->ops);
    free(g->tokenizer);
    if (g->source_free) g->source_free(g->source);
    free(g);
}

static void *grow(void *p, int32_t *cap, int32_t need, size_t elem) {
    if (need <= *cap) return p;
    int32_t nc = *cap ? *cap * 2 : 64;
    while (nc < need) nc *= 2;
    void *q = realloc(p, (size_t)nc * elem);
    QC_ASSERT(q != NULL);
    *cap = nc;
    return q;
}

int32_t qc_graph_add_tensor(qc_graph *g, const char *name, int32_t dtype, int32_t ndim,
                            const int64_t *shape, const void *data, size_t nbytes) {
    QC_ASSERT(ndim >= 1 && ndim <= 2);
    g->tensors = grow(g->tensors, &g->cap_tensors, g->n_tensors + 1, sizeof(qc_tensor));
    qc_tensor *t = &g->tensors[g->n_tensors];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = dtype;
    t->out_dtype = dtype;
    t->ndim = ndim;
    for (int32_t i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->data = data;
    t->nbytes = nbytes;
    return g->n_tensors++;
}

int32_t qc_graph_add_buf(qc_graph *g, int32_t width) {
    QC_ASSERT(g->n_bufs < (int32_t)(sizeof g->buf_widths / sizeof g->buf_widths[0]));
    g->buf_widths[g->n_bufs] = width;
    return g->n_bufs++;
}

int32_t qc_graph_add_op(qc_graph *g, const qc_op *op) {
    g->ops = grow(g->ops, &g->cap_ops, g->n_ops + 1, sizeof(qc_op));
    g->ops[g->n_ops] = *op;
    return g->n_ops++;
}

qc_op qc_op_make(int32_t kind) {
    qc_op op;
    memset(&op, 0, sizeof op);
    op.kind = kind;
    op.out = op.in[0] = op.in[1] = op.in[2] = -1;
    op.w = op.bias = -1;
    return op;
}

int64_t qc_tensor_numel(const qc_tensor *t) {
    int64_t n = 1;
    for (int32_t i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

size_t qc_dtype_size(int32_t dtype, int64_t n) {
    switch (dtype) {
    case QRT_DT_F32: return (size_t)n * 4;
    case QRT_DT_F16:
    case QRT_DT_BF16: return (size_t)n * 2;
    default: return 0;
    }
}

const char *qc_dtype_name(int32_t dtype) {
    switch (dtype) {
#define X(n, c, b) \
    case c: return #n;
        QRT_DTYPES(X)
#undef X
    default: return "?";
    }
}

const char *qc_op_name(int32_t kind) {
    return kind >= 0 && kind < QRT_K_COUNT ? op_names[kind] : "?";
}

const char *qc_op_symbol(int32_t kind) {
    return kind >= 0 && kind < QRT_K_COUNT ? op_syms[kind] : NULL;
}

/* Inputs an op kind reads and whether it takes a weight. */
static int op_arity(int32_t kind, int *needs_w) {
    *needs_w = 1;
    switch (kind) {
    case QRT_K_EMBED: return 0;
    case QRT_K_RMSNORM: return 1;
    case QRT_K_LINEAR: return 1;
    case QRT_K_LM_HEAD: return 1;
    case QRT_K_ROPE: *needs_w = 0; return 0;
    case QRT_K_ATTENTION: *needs_w = 0; return 3;
    case QRT_K_SILU_MUL: *needs_w = 0; return 2;
    case QRT_K_ADD: *needs_w = 0; return 2;
    case QRT_K_LAYERNORM: return 1;
    case QRT_K_GELU: *needs_w = 0; return 1;
    case QRT_K_RELU: *needs_w = 0; return 1;
    case QRT_K_POS_EMBED: return 1;
    default: return -1;
    }
}

int qc_graph_verify(const qc_graph *g, qc_err *err) {
    for (int32_t i = 0; i < g->n_ops; i++) {
        const qc_op *op = &g->ops[i];
        int needs_w;
        int ar = op_arity(op->kind, &needs_w);
        if (ar < 0) return qc_err_set(err, "verify: op %d: unknown kind %d", i, op->kind);
        if (op->out < 0 || op->out >= g->n_bufs)
            return qc_err_set(err, "verify: op %d (%s): bad output buffer %d", i, qc_op_name(op->kind), op->out);
        for (int j = 0; j < 3; j++) {
            int want = j < ar;
            if (want != (op->in[j] >= 0) || op->in[j] >= g->n_bufs)
                return qc_err_set(err, "verify: op %d (%s): bad input %d (%d)", i, qc_op_name(op->kind), j, op->in[j]);
        }
        if (needs_w != (op->w >= 0) || op->w >= g->n_tensors)
            return qc_err_set(err, "verify: op %d (%s): bad weight id %d", i, qc_op_name(op->kind), op->w);
        if (op->bias >= g->n_tensors)
            return qc_err_set(err, "verify: op %d (%s): bad bias id %d", i, qc_op_name(op->kind), op->bias);
        const qc_tensor *w = op->w >= 0 ? &g->tensors[op->w] : NULL;
        int32_t ow = g->buf_widths[op->out];
        switch (op->kind) {
        case QRT_K_LINEAR:
        case QRT_K_LM_HEAD:
            if (w->ndim != 2 || w->shape[0] != op->p[1] || w->shape[1] != op->p[0] ||
                g->buf_widths[op->in[0]] < op->p[0] || ow < op->p[1])
                return qc_err_set(err, "verify: op %d (%s %s): shape [%lld,%lld] vs K=%d N=%d", i,
                                  qc_op_name(op->kind), w->name, (long long)w->shape[0],
                                  (long long)w->shape[1], op->p[0], op->p[1]);
            if (op->bias >= 0 && qc_tensor_numel(&g->tensors[op->bias]) != op->p[1])
                return qc_err_set(err, "verify: op %d: bias %s has wrong size", i, g->tensors[op->bias].name);
            break;
        case QRT_K_EMBED:
            if (w->ndim != 2 || w->shape[1] != op->p[0] || ow < op->p[0])
                return qc_err_set(err, "verify: op %d (EMBED %s): bad shape", i, w->name);
            break;
        case QRT_K_RMSNORM:
            if (qc_tensor_numel(w) != op->p[0] || ow < op->p[0])
                return qc_err_set(err, "verify: op %d (RMSNORM %s): bad shape", i, w->name);
            break;
        case QRT_K_LAYERNORM:
            if (qc_tensor_numel(w) != op->p[0] || ow < op->p[0] || g->buf_widths[op->in[0]] < op->p[0] ||
                (op->bias >= 0 && qc_tensor_numel(&g->tensors[op->bias]) != op->p[0]))
                return qc_err_set(err, "verify: op %d (LAYERNORM %s): bad shape", i, w->name);
            break;
        case QRT_K_GELU:
        case QRT_K_RELU:
            if (op->p[0] <= 0 || ow < op->p[0] || g->buf_widths[op->in[0]] < op->p[0] || op->bias >= 0 ||
                (op->kind == QRT_K_GELU && (op->p[1] < 0 || op->p[1] > 1)))
                return qc_err_set(err, "verify: op %d (%s): bad width or variant", i, qc_op_name(op->kind));
            break;
        case QRT_K_POS_EMBED:
            if (w->ndim != 2 || w->shape[1] != op->p[0] || w->shape[0] != op->p[2] || op->p[2] < 1 ||
                op->p[1] < 0 || op->p[1] >= op->p[2] || ow < op->p[0] || g->buf_widths[op->in[0]] < op->p[0] ||
                op->bias >= 0)
                return qc_err_set(err, "verify: op %d (POS_EMBED %s): bad shape", i, w->name);
            break;
        default:
            break;
        }
    }
    if (g->logits_buf < 0 || g->logits_buf >= g->n_bufs)
        return qc_err_set(err, "verify: no logits buffer");
    return 0;
}

void qc_graph_dump(const qc_graph *g, FILE *f) {
    const qc_config *c = &g->cfg;
    fprintf(f, "graph %s: layers=%d dim=%d heads=%d/%d head_dim=%d ffn=%d vocab=%d ctx=%d\n",
            c->model_type, c->n_layers, c->dim, c->n_heads, c->n_kv_heads, c->head_dim,
            c->ffn_dim, c->vocab, c->max_ctx);
    for (int32_t i = 0; i < g->n_bufs; i++) fprintf(f, "  buf %d: width %d\n", i, g->buf_widths[i]);
    for (int32_t i = 0; i < g->n_tensors; i++) {
        const qc_tensor *t = &g->tensors[i];
        fprintf(f, "  tensor %d: %s %s->%s [%lld%s%lld] @%llu+%llu\n", i, t->name,
                qc_dtype_name(t->dtype), qc_dtype_name(t->out_dtype), (long long)t->shape[0],
                t->ndim > 1 ? "," : "", t->ndim > 1 ? (long long)t->shape[1] : 0LL,
                (unsigned long long)t->blob_offset, (unsigned long long)t->blob_nbytes);
    }
    for (int32_t i = 0; i < g->n_ops; i++) {
        const qc_op *o = &g->ops[i];
        fprintf(f, "  %%%d = %s(%d, %d, %d) w=%d bias=%d p=[%d %d %d %d] f=%g\n", o->out,
                qc_op_name(o->kind), o->in[0], o->in[1], o->in[2], o->w, o->bias, o->p[0],
                o->p[1], o->p[2], o->p[3], (double)o->f0);
    }
}
