/*
 * passes/smoothquant.c — --method smoothquant: W8A8 (Xiao et al.,
 * "SmoothQuant", 2022).
 *
 * Activations of LLMs have a few channels with very large magnitudes, which
 * per-token int8 quantization of the activations cannot represent together
 * with the rest. SmoothQuant moves part of that range into the weights:
 * for the linears right after a norm (q/k/v after input_layernorm,
 * gate/up after post_attention_layernorm),
 *     s_j = max|X_j|^alpha / max|W_j|^(1 - alpha)
 * over the calibration tokens and the group's weight columns, the norm
 * weight divided by s and the columns multiplied by s (exact in real
 * arithmetic). o_proj and down_proj are quantized unsmoothed, as in the
 * paper. Then every LINEAR becomes QRT_DT_I8: int8 weights per output
 * channel, activations quantized per token at run time, int32 products
 * (quant/int8.c; runtime/int8.c). The LM head and embeddings stay f16.
 *
 * The statistics come from one pass of the float model over the
 * calibration windows (the authors' procedure), max in any order is exact,
 * so the result does not depend on threads.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qc/passes.h"
#include "qc/quant.h"

typedef struct amax {
    const qc_lgroup *grp;
    int32_t ng;
    float **x; /* [ng][K] max |x| (NULL: not collected) */
} amax;

static int collect(void *ud, int32_t op_index, const float *in, int32_t n) {
    amax *a = ud;
    for (int32_t i = 0; i < a->ng; i++) {
        if (a->grp[i].first != op_index || !a->x[i]) continue;
        int32_t K = a->grp[i].K;
        float *m = a->x[i];
        for (int32_t r = 0; r < n; r++)
            for (int32_t k = 0; k < K; k++) {
                float v = fabsf(in[(size_t)r * K + k]);
                if (v > m[k]) m[k] = v;
            }
    }
    return 0;
}

/* s into the group: columns times s, norm weight (and bias) divided by s. */
static int smooth_group(qc_graph *g, const qc_lgroup *G, const float *xmax, double alpha) {
    const int32_t K = G->K;
    float *wmax = calloc((size_t)K, sizeof(float)), *s = malloc((size_t)K * sizeof(float));
    int rc = (!wmax || !s) ? -1 : 0;
    for (int32_t i = G->first; !rc && i < G->end; i++) {
        qc_tensor *t = &g->tensors[g->ops[i].w];
        const float *W = qc_tensor_own_f32(t);
        if (!W) rc = -1;
        for (int64_t n = 0; W && n < t->shape[0]; n++)
            for (int32_t k = 0; k < K; k++) {
                float v = fabsf(W[n * K + k]);
                if (v > wmax[k]) wmax[k] = v;
            }
    }
    if (!rc) qc_smooth_scales(xmax, wmax, K, alpha, s);
    if (!rc) rc = qc_fold_scales(g, G, s, NULL);
    free(wmax), free(s);
    return rc;
}

static int quantize_i8(qc_graph *g, qc_op *op, qc_err *err) {
    qc_tensor *t = &g->tensors[op->w];
    int64_t N = t->shape[0], K = t->shape[1];
    size_t sz = qc_i8_size(N, K);
    float *W = malloc((size_t)(N * K) * sizeof(float));
    void *p = sz ? malloc(sz) : NULL;
    if (!W || !p) {
        free(W), free(p);
        return qc_err_set(err, "tensor '%s': out of memory for int8 weights", t->name);
    }
    qc_convert(t->data, t->dtype, W, QRT_DT_F32, (size_t)(N * K));
    qc_i8_quantize(W, N, K, p);
    free(W);
    free(t->owned);
    t->owned = p;
    t->data = p;
    t->nbytes = sz;
    t->out_dtype = QRT_DT_I8;
    t->qgroup = (int32_t)K;
    t->qsym = 1;
    op->p[2] = 0;
    op->p[3] = 0;
    return 0;
}

int qc_pass_smoothquant(qc_graph *g, const qc_opts *o, qc_err *err) {
    qc_calib cal = {0};
    qc_exec *e = NULL;
    int32_t ng = qc_linear_groups(g, 0, g->n_ops, NULL, 0);
    qc_lgroup *grp = calloc((size_t)ng + 1, sizeof *grp);
    float **xm = calloc((size_t)ng + 1, sizeof *xm);
    int rc = (!grp || !xm) ? qc_err_set(err, "smoothquant: out of memory") : 0;
    if (!rc) qc_linear_groups(g, 0, g->n_ops, grp, ng);
    for (int32_t i = 0; !rc && i < ng; i++)
        if (grp[i].fold == QC_FOLD_NORM && !(xm[i] = calloc((size_t)grp[i].K, sizeof(float))))
            rc = qc_err_set(err, "smoothquant: out of memory");
    if (!rc && o->progress) o->progress(o->progress_ud, "calibration", 0, 1);
    if (!rc) rc = qc_calib_load(&cal, g, o, err);
    if (!rc && o->progress) o->progress(o->progress_ud, "calibration", 1, 1);
    if (!rc && !(e = qc_exec_new(g, cal.len)))
        rc = qc_err_set(err, "out of memory for calibration windows of %d tokens", cal.len);
    amax a = {grp, ng, xm};
    for (int32_t s = 0; !rc && s < cal.n; s++) {
        if (qc_exec_run(e, cal.tokens + (size_t)s * cal.len, cal.len, 0, 0, g->n_ops, collect, &a))
            rc = qc_err_set(err, "out of memory");
        if (!rc && o->progress) o->progress(o->progress_ud, "smoothquant", s + 1, cal.n);
    }
    qc_exec_free(e);
    qc_calib_free(&cal);
    double alpha = o->alpha;
    for (int32_t i = 0; !rc && i < ng; i++)
        if (xm[i] && smooth_group(g, &grp[i], xm[i], alpha))
            rc = qc_err_set(err, "smoothquant: out of memory");
    for (int32_t i = 0; !rc && i < g->n_ops; i++)
        if (g->ops[i].kind == QRT_K_LINEAR) rc = quantize_i8(g, &g->ops[i], err);
    for (int32_t i = 0; xm && i < ng; i++) free(xm[i]);
    free(grp), free(xm);
    return rc;
}
