/*
 * passes/quantize.c — --bits 8/4/3/2: every LINEAR weight becomes a packed
 * integer tensor (quant/pack.c layout, docs/formats.md).
 *
 * RTN quantizes each weight on its own. GPTQ calibrates (passes/calibrate.c)
 * and walks the model one layer at a time with the reference executor:
 *   X_s        residual stream entering the layer, kept for every window s
 *   per group  (linears reading the same input: q/k/v; o; gate/up; down,
 *              in op order — "true-sequential"): run the layer's ops up to
 *              the group from X_s, accumulate the Hessian of the group's
 *              input, GPTQ-quantize each weight of the group and give the
 *              executor the quantized values, so later groups see them
 *   then       X_s <- the layer's output with all its weights quantized.
 * AWQ (--method awq, awq+gptq) takes the same walk: before a layer's
 * groups are quantized, passes/awq.c searches and folds its per-channel
 * scales; then each weight (but q/k) gets AWQ's clipping search against
 * its group's Hessian and is rounded with RTN (awq), or is rounded by GPTQ
 * with and without the clipping, keeping the lower calibration error
 * (awq+gptq).
 * SmoothQuant (W8A8) is passes/smoothquant.c.
 * The LM head and the embeddings stay f16 unless --quantize-head BITS: then
 * the head alone is packed by RTN at BITS with --group-size (a tied head gets
 * its own copy, so the embedding lookup stays exact). Hessians accumulate in double in
 * row order (quant/hessian.c), so the result is the same for any -j.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc/passes.h"
#include "qc/quant.h"

/* Packs one quantized weight into t->owned and marks the tensor. */
static int store(qc_graph *g, int32_t ti, const qc_opts *o, int64_t group, const uint8_t *codes,
                 const float *scales, const float *zeros, qc_err *err) {
    qc_tensor *t = &g->tensors[ti];
    int64_t N = t->shape[0], K = t->shape[1];
    size_t sz = qc_qpack_size(o->bits, N, K, group, o->sym);
    void *p = sz ? malloc(sz) : NULL;
    if (!p) return qc_err_set(err, "tensor '%s': out of memory packing %d-bit weights", t->name, o->bits);
    if (qc_qpack(codes, scales, zeros, o->bits, N, K, group, o->sym, p)) {
        free(p);
        return qc_err_set(err, "tensor '%s': packing failed", t->name);
    }
    free(t->owned);
    t->owned = p;
    t->data = p;
    t->nbytes = sz;
    t->out_dtype = qc_qdtype(o->bits);
    t->qgroup = (int32_t)group;
    t->qsym = o->sym;
    return 0;
}

/* W [N,K] f32 copy of a tensor's checkpoint values. */
static float *weights_f32(const qc_tensor *t) {
    size_t n = (size_t)qc_tensor_numel(t);
    float *w = malloc(n * sizeof(float));
    if (w) qc_convert(t->data, t->dtype, w, QRT_DT_F32, n);
    return w;
}

static float *dup_f32(const float *w, size_t n) {
    float *c = malloc(n * sizeof(float));
    if (c) memcpy(c, w, n * sizeof(float));
    return c;
}

/* AWQ+GPTQ: GPTQ on the (scaled) weights as they are and on their clipped
 * copy; keeps whichever has the lower output error on the calibration
 * inputs, sum_n d_n H d_n^T with d = W - Q (clipping changes the grid GPTQ
 * rounds on and the weights it starts from; which is better depends on the
 * layer). W becomes the quantized values, codes / scales / zeros the winner's. */
static int gptq_clip_or_not(float *W, const double *H, int64_t N, int64_t K, int64_t group, int32_t G,
                            const qc_opts *o, const char *name, uint8_t *codes, float *scales, float *zeros,
                            qc_err *err) {
    const int32_t thr = o->threads > 0 ? o->threads : 1;
    size_t nk = (size_t)(N * K), ng = (size_t)(N * G);
    float *W0 = dup_f32(W, nk), *Wc = dup_f32(W, nk), *sc = malloc(ng * sizeof(float)), *zc = malloc(ng * sizeof(float));
    uint8_t *cc = malloc(nk);
    int rc = (!W0 || !Wc || !sc || !zc || !cc) ? qc_err_set(err, "tensor '%s': out of memory", name) : 0;
    if (!rc && qc_awq_clip(Wc, N, K, H, o->bits, group, o->sym, 20, 0.5, thr, NULL))
        rc = qc_err_set(err, "tensor '%s': out of memory in the clipping search", name);
    if (!rc)
        rc = qc_gptq_quantize(W, H, N, K, o->bits, group, o->sym, o->damp, o->act_order, thr, codes, scales, zeros, err);
    if (!rc)
        rc = qc_gptq_quantize(Wc, H, N, K, o->bits, group, o->sym, o->damp, o->act_order, thr, cc, sc, zc, err);
    if (!rc && qc_awq_error(W0, Wc, NULL, N, K, H, thr) < qc_awq_error(W0, W, NULL, N, K, H, thr)) {
        memcpy(W, Wc, nk * sizeof(float));
        memcpy(codes, cc, nk);
        memcpy(scales, sc, ng * sizeof(float));
        memcpy(zeros, zc, ng * sizeof(float));
    }
    free(W0), free(Wc), free(sc), free(zc), free(cc);
    return rc;
}

/* Quantizes the weight of op i: RTN, or GPTQ with Hessian H if `use_gptq`;
 * with `clip`, AWQ's clipping search (needs H) first clamps the weights
 * (RTN), or GPTQ runs with and without it (gptq_clip_or_not).
 * On success *Wout (if not NULL) holds the quantized values (for the executor). */
static int quantize_op(qc_graph *g, int32_t i, const qc_opts *o, const double *H, int clip, int use_gptq,
                       float **Wout, qc_err *err) {
    qc_op *op = &g->ops[i];
    const qc_tensor *t = &g->tensors[op->w];
    int64_t N = t->shape[0], K = t->shape[1];
    int64_t group = qc_qgroup(K, o->group_size);
    if (!group) return qc_err_set(err, "--group-size %d: must be -1 or a multiple of 32", o->group_size);
    int64_t G = (K + group - 1) / group;
    float *W = weights_f32(t), *scales = malloc((size_t)(N * G) * sizeof(float)),
          *zeros = malloc((size_t)(N * G) * sizeof(float));
    uint8_t *codes = malloc((size_t)(N * K));
    int rc = 0;
    if (!W || !scales || !zeros || !codes) rc = qc_err_set(err, "tensor '%s': out of memory", t->name);
    if (!rc && clip && use_gptq) {
        rc = gptq_clip_or_not(W, H, N, K, group, (int32_t)G, o, t->name, codes, scales, zeros, err);
    } else if (!rc && clip &&
               qc_awq_clip(W, N, K, H, o->bits, group, o->sym, 20, 0.5, o->threads > 0 ? o->threads : 1, NULL)) {
        rc = qc_err_set(err, "tensor '%s': out of memory in the clipping search", t->name);
    }
    if (!rc && use_gptq && !clip)
        rc = qc_gptq_quantize(W, H, N, K, o->bits, group, o->sym, o->damp, o->act_order,
                              o->threads > 0 ? o->threads : 1, codes, scales, zeros, err);
    if (!rc && !use_gptq) {
        qc_rtn_quantize(W, N, K, o->bits, group, o->sym, codes, scales, zeros);
    }
    if (!rc) rc = store(g, op->w, o, group, codes, scales, zeros, err);
    if (!rc) {
        qc_qdequant(g->tensors[op->w].owned, o->bits, N, K, group, o->sym, W);
        op->p[2] = (int32_t)group;
        op->p[3] = o->sym;
    }
    free(scales), free(zeros), free(codes);
    if (rc || !Wout) free(W);
    else *Wout = W;
    return rc;
}

/* The residual-stream buffer and, per layer, the op range [begin, end). */
static int layer_ranges(const qc_graph *g, int32_t *x, int32_t *begin, int32_t *end, qc_err *err) {
    int32_t L = g->cfg.n_layers, l = 0, emb = -1, last_x = -1;
    for (int32_t i = 0; i < g->n_ops && emb < 0; i++)
        if (g->ops[i].kind == QRT_K_EMBED) emb = i;
    if (emb < 0) return qc_err_set(err, "quantize: graph has no EMBED op");
    *x = g->ops[emb].out;
    begin[0] = emb + 1;
    for (int32_t i = emb + 1; i < g->n_ops; i++) {
        if (g->ops[i].kind == QRT_K_ATTENTION && g->ops[i].p[0] > l) { /* next layer starts */
            end[l] = last_x + 1;
            begin[++l] = last_x + 1;
        }
        if (g->ops[i].out == *x) last_x = i;
    }
    if (l != L - 1) return qc_err_set(err, "quantize: found %d layers, config says %d", l + 1, L);
    end[l] = last_x + 1;
    return 0;
}

/* GPTQ, AWQ and AWQ+GPTQ: the true-sequential walk over the layers. */
static int calibrated(qc_graph *g, const qc_opts *o, qc_err *err) {
    const int awq = o->method == QC_METHOD_AWQ || o->method == QC_METHOD_AWQ_GPTQ;
    const int use_gptq = o->method != QC_METHOD_AWQ;
    int32_t L = g->cfg.n_layers, X = 0, D = g->cfg.dim;
    int32_t *begin = calloc((size_t)L + 1, sizeof(int32_t)), *end = calloc((size_t)L + 1, sizeof(int32_t));
    qc_calib cal = {0};
    qc_exec *e = NULL;
    float *xs = NULL;
    int rc = (!begin || !end) ? qc_err_set(err, "out of memory") : 0;
    if (!rc) rc = layer_ranges(g, &X, begin, end, err);
    if (!rc && o->progress) o->progress(o->progress_ud, "calibration", 0, 1);
    if (!rc) rc = qc_calib_load(&cal, g, o, err);
    if (!rc && o->progress) o->progress(o->progress_ud, "calibration", 1, 1);
    int32_t T = cal.len;
    if (!rc && (!(e = qc_exec_new(g, T)) || !(xs = malloc((size_t)cal.n * T * D * sizeof(float)))))
        rc = qc_err_set(err, "out of memory for %d calibration windows of %d tokens", cal.n, T);
    /* X_s entering layer 0 */
    for (int32_t s = 0; !rc && s < cal.n; s++) {
        if (qc_exec_run(e, cal.tokens + (size_t)s * T, T, 0, 0, begin[0], NULL, NULL))
            rc = qc_err_set(err, "out of memory");
        else
            memcpy(xs + (size_t)s * T * D, qc_exec_buf(e, X, T), (size_t)T * D * sizeof(float));
    }
    for (int32_t l = 0; !rc && l < L; l++) {
        if (awq) rc = qc_awq_scale_layer(g, o, e, &cal, xs, X, begin[l], end[l], err);
        for (int32_t i = begin[l]; !rc && i < end[l]; i++) {
            qc_op *op = &g->ops[i];
            if (op->kind != QRT_K_LINEAR) continue;
            /* the group: this op and the LINEARs right after it on the same input */
            int32_t j = i + 1, in = op->in[0];
            while (j < end[l] && g->ops[j].kind == QRT_K_LINEAR && g->ops[j].in[0] == in) j++;
            int32_t K = op->p[0];
            qc_hessian h;
            if (qc_hessian_init(&h, K)) {
                rc = qc_err_set(err, "out of memory for a %d x %d Hessian", K, K);
                break;
            }
            for (int32_t s = 0; !rc && s < cal.n; s++) {
                const int32_t *tok = cal.tokens + (size_t)s * T;
                memcpy(qc_exec_buf(e, X, T), xs + (size_t)s * T * D, (size_t)T * D * sizeof(float));
                if (qc_exec_run(e, tok, T, 0, begin[l], i, NULL, NULL)) rc = qc_err_set(err, "out of memory");
                else qc_hessian_accumulate(&h, qc_exec_buf(e, in, T), T, o->threads > 0 ? o->threads : 1);
            }
            double *H = rc ? NULL : malloc((size_t)K * K * sizeof(double));
            if (!rc && !H) rc = qc_err_set(err, "out of memory");
            if (!rc) qc_hessian_finalize(&h, H);
            qc_hessian_free(&h);
            for (int32_t k = i; !rc && k < j; k++) {
                float *W = NULL;
                rc = quantize_op(g, k, o, H, awq && !qc_linear_feeds_qk(g, k), use_gptq, &W, err);
                if (!rc) qc_exec_set_weight(e, g->ops[k].w, W);
                free(W);
            }
            free(H);
            i = j - 1;
        }
        /* X_s <- this layer's output with its weights quantized */
        for (int32_t s = 0; !rc && s < cal.n; s++) {
            memcpy(qc_exec_buf(e, X, T), xs + (size_t)s * T * D, (size_t)T * D * sizeof(float));
            if (qc_exec_run(e, cal.tokens + (size_t)s * T, T, 0, begin[l], end[l], NULL, NULL))
                rc = qc_err_set(err, "out of memory");
            else
                memcpy(xs + (size_t)s * T * D, qc_exec_buf(e, X, T), (size_t)T * D * sizeof(float));
        }
        if (!rc && o->progress) o->progress(o->progress_ud, qc_method_name(o->method), l + 1, L);
    }
    qc_exec_free(e);
    qc_calib_free(&cal);
    free(xs), free(begin), free(end);
    return rc;
}

const char *qc_method_name(int32_t method) {
    switch (method) {
    case QC_METHOD_GPTQ: return "gptq";
    case QC_METHOD_RTN: return "rtn";
    case QC_METHOD_AWQ: return "awq";
    case QC_METHOD_AWQ_GPTQ: return "awq+gptq";
    case QC_METHOD_SMOOTHQUANT: return "smoothquant";
    default: return "?";
    }
}

static int quantize_linears(qc_graph *g, const qc_opts *o, qc_err *err);

/* --quantize-head: the LM head by RTN at o->head_bits. A head that shares
 * its tensor with the embedding (tied weights) first gets a tensor of its
 * own viewing the same bytes. */
static int quantize_head(qc_graph *g, const qc_opts *o, qc_err *err) {
    if (!o->head_bits) return 0;
    if (qc_qdtype(o->head_bits) < 0)
        return qc_err_set(err, "--quantize-head %d: supported widths are 2, 3, 4, 8", o->head_bits);
    for (int32_t i = 0; i < g->n_ops; i++) {
        if (g->ops[i].kind != QRT_K_LM_HEAD) continue;
        int32_t w = g->ops[i].w, shared = 0;
        for (int32_t j = 0; j < g->n_ops; j++) shared |= j != i && (g->ops[j].w == w || g->ops[j].bias == w);
        if (shared) {
            qc_tensor t = g->tensors[w];
            char name[QC_NAME_MAX + 16];
            snprintf(name, sizeof name, "%s (LM head)", t.name);
            int32_t c = qc_graph_add_tensor(g, name, t.dtype, t.ndim, t.shape, t.data, t.nbytes);
            g->ops[i].w = c;
            w = c;
        }
        qc_opts ho = *o;
        ho.bits = o->head_bits;
        if (quantize_op(g, i, &ho, NULL, 0, 0, NULL, err)) return -1;
    }
    return 0;
}

int qc_pass_quantize(qc_graph *g, const qc_opts *o, qc_err *err) {
    if (o->head_bits && o->bits >= 16) return qc_err_set(err, "--quantize-head needs --bits 8, 4, 3 or 2");
    return quantize_linears(g, o, err) || quantize_head(g, o, err) ? -1 : 0;
}

static int quantize_linears(qc_graph *g, const qc_opts *o, qc_err *err) {
    if (o->bits >= 16) {
        if (o->method == QC_METHOD_SMOOTHQUANT)
            return qc_err_set(err, "--method smoothquant is W8A8: it needs --bits 8, not %d", o->bits);
        return 0;
    }
    if (qc_qdtype(o->bits) < 0) return qc_err_set(err, "--bits %d: supported widths are 2, 3, 4, 8, 16, 32", o->bits);
    if (o->method == QC_METHOD_SMOOTHQUANT) {
        if (o->bits != 8) return qc_err_set(err, "--method smoothquant is W8A8: it needs --bits 8, not %d", o->bits);
        return qc_pass_smoothquant(g, o, err);
    }
    if (o->method != QC_METHOD_RTN) return calibrated(g, o, err);
    int32_t done = 0, total = 0;
    for (int32_t i = 0; i < g->n_ops; i++) total += g->ops[i].kind == QRT_K_LINEAR;
    for (int32_t i = 0; i < g->n_ops; i++) {
        if (g->ops[i].kind != QRT_K_LINEAR) continue;
        if (quantize_op(g, i, o, NULL, 0, 0, NULL, err)) return -1;
        if (o->progress) o->progress(o->progress_ud, "rtn", ++done, total);
    }
    return 0;
}
