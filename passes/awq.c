/*
 * passes/awq.c — AWQ's activation-aware scales (Lin et al., 2023), and the
 * structural analysis AWQ and SmoothQuant share: which linears read the
 * same input and where a per-channel scale of that input can be folded.
 *
 * For a layer (called by passes/quantize.c before the layer is quantized):
 *   1. run every calibration window through the layer once (the executor's
 *      hook sees each linear's input), accumulating per foldable group the
 *      Hessian H of the input (quant/hessian.c) and sum |x| per channel;
 *   2. per group, in op order: s = mean|x|^a normalized, a on a grid of 20,
 *      minimizing the output error of RTN(W diag(s)) diag(1/s) measured
 *      through H (quant/awq.c); a = 0 is RTN itself, so the chosen scales
 *      never do worse than RTN on the calibration data;
 *   3. fold: W diag(s) in the group's linears, 1/s into the norm weight
 *      (RMSNORM; LAYERNORM weight and bias) or the rows of the linear that
 *      produces the input (v_proj for o_proj, up_proj for down_proj, fc1
 *      for fc2 after a ReLU). With grouped-query attention the o_proj
 *      input channels of the query heads that share a KV head come from the
 *      same v rows, so their mean |x| is averaged over those heads first and
 *      the scales are equal by construction.
 * Folding is exact in real arithmetic, so the statistics of all groups can
 * come from one pass: a later group's input is unchanged by an earlier
 * group's fold (up to float rounding). The float model's tensors become
 * owned f32 copies (their storage dtype unchanged: norms stay f32 in the
 * blob, linears are quantized next), and the executor gets the same values.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc/passes.h"
#include "qc/quant.h"

enum { AWQ_GRID = 20 };

/* ---- structure ---- */

static int reads(const qc_op *op, int32_t buf) {
    return op->in[0] == buf || op->in[1] == buf || op->in[2] == buf ||
           (op->kind == QRT_K_ROPE && op->out == buf); /* ROPE rotates its output in place */
}

/* After op `writer`, is buf read only by ops in [lo, hi) until it is overwritten? */
static int only_read_by(const qc_graph *g, int32_t buf, int32_t writer, int32_t lo, int32_t hi) {
    for (int32_t i = writer + 1; i < g->n_ops; i++) {
        const qc_op *op = &g->ops[i];
        if (reads(op, buf) && (i < lo || i >= hi)) return 0;
        if (op->out == buf) return 1;
    }
    return 1;
}

static int32_t last_writer(const qc_graph *g, int32_t buf, int32_t before) {
    for (int32_t i = before - 1; i >= 0; i--)
        if (g->ops[i].out == buf) return i;
    return -1;
}

/* Ops that use tensor ti (as weight or bias). */
static int32_t uses(const qc_graph *g, int32_t ti) {
    int32_t n = 0;
    for (int32_t i = 0; i < g->n_ops; i++) n += (g->ops[i].w == ti) + (g->ops[i].bias == ti);
    return n;
}

/* A LINEAR whose weight (and bias) nothing else uses. */
static int private_linear(const qc_graph *g, int32_t i) {
    const qc_op *op = &g->ops[i];
    return op->kind == QRT_K_LINEAR && uses(g, op->w) == 1 && (op->bias < 0 || uses(g, op->bias) == 1) &&
           g->tensors[op->w].ndim == 2;
}

int32_t qc_linear_groups(const qc_graph *g, int32_t begin, int32_t end, qc_lgroup *out, int32_t cap) {
    int32_t n = 0;
    for (int32_t i = begin; i < end && i < g->n_ops; i++) {
        const qc_op *op = &g->ops[i];
        if (op->kind != QRT_K_LINEAR) continue;
        int32_t j = i + 1, in = op->in[0];
        while (j < g->n_ops && g->ops[j].kind == QRT_K_LINEAR && g->ops[j].in[0] == in) j++;
        qc_lgroup G = {i, j, in, op->p[0], QC_FOLD_NONE, -1, 1, op->p[0]};
        int ok = 1;
        for (int32_t k = i; k < j; k++)
            ok = ok && private_linear(g, k) && g->ops[k].p[0] == G.K && g->ops[k].out != in;
        int32_t w = ok ? last_writer(g, in, i) : -1;
        if (w >= 0 && only_read_by(g, in, w, i, j)) {
            const qc_op *pw = &g->ops[w];
            if ((pw->kind == QRT_K_RMSNORM || pw->kind == QRT_K_LAYERNORM) && pw->w >= 0 &&
                uses(g, pw->w) == 1 && (pw->bias < 0 || uses(g, pw->bias) == 1) &&
                qc_tensor_numel(&g->tensors[pw->w]) == G.K) {
                G.fold = QC_FOLD_NORM;
                G.prev = w;
            } else if (pw->kind == QRT_K_ATTENTION) {
                int32_t vb = pw->in[2], H = pw->p[1], KV = pw->p[2], hd = pw->p[3];
                int32_t v = last_writer(g, vb, w);
                if (v >= 0 && pw->in[0] != vb && pw->in[1] != vb && KV > 0 && H % KV == 0 &&
                    (int64_t)H * hd == G.K && private_linear(g, v) && g->ops[v].p[1] == KV * hd &&
                    only_read_by(g, vb, v, w, w + 1)) {
                    G.fold = QC_FOLD_ROWS;
                    G.prev = v;
                    G.tie = H / KV;
                    G.head_dim = hd;
                }
            } else if ((pw->kind == QRT_K_SILU_MUL && pw->in[0] != pw->in[1]) || pw->kind == QRT_K_RELU) {
                /* silu(a) * b is linear in b; relu(z / s) = relu(z) / s for s > 0 */
                int32_t src = pw->kind == QRT_K_RELU ? pw->in[0] : pw->in[1];
                int32_t u = last_writer(g, src, w);
                if (u >= 0 && private_linear(g, u) && g->ops[u].p[1] == G.K &&
                    only_read_by(g, src, u, w, w + 1)) {
                    G.fold = QC_FOLD_ROWS;
                    G.prev = u;
                }
            }
        }
        if (n < cap) out[n] = G;
        n++;
        i = j - 1;
    }
    return n;
}

int qc_linear_feeds_qk(const qc_graph *g, int32_t i) {
    int32_t buf = g->ops[i].out;
    for (int32_t k = i + 1; k < g->n_ops; k++) {
        const qc_op *op = &g->ops[k];
        if (op->kind == QRT_K_ATTENTION && (op->in[0] == buf || op->in[1] == buf)) return 1;
        if (op->out == buf && !reads(op, buf)) return 0;
    }
    return 0;
}

float *qc_tensor_own_f32(qc_tensor *t) {
    if (t->owned && t->data == t->owned && t->dtype == QRT_DT_F32) return t->owned;
    size_t n = (size_t)qc_tensor_numel(t);
    float *f = malloc(n * sizeof(float));
    if (!f) return NULL;
    qc_convert(t->data, t->dtype, f, QRT_DT_F32, n);
    free(t->owned);
    t->owned = f;
    t->data = f;
    t->dtype = QRT_DT_F32;
    t->nbytes = n * sizeof(float);
    return f;
}

/* ---- statistics of one pass through the layer ---- */

typedef struct stats {
    const qc_lgroup *grp;
    int32_t ng, threads;
    qc_hessian *h; /* [ng] (K = 0: not collected) */
    double **sabs; /* [ng][K] sum |x| */
} stats;

static int collect(void *ud, int32_t op_index, const float *in, int32_t n) {
    stats *st = ud;
    for (int32_t i = 0; i < st->ng; i++) {
        if (st->grp[i].first != op_index || !st->sabs[i]) continue;
        int32_t K = st->grp[i].K;
        qc_hessian_accumulate(&st->h[i], in, n, st->threads);
        double *s = st->sabs[i];
        for (int32_t r = 0; r < n; r++)
            for (int32_t k = 0; k < K; k++) s[k] += fabs((double)in[(size_t)r * K + k]);
    }
    return 0;
}

int qc_fold_scales(qc_graph *g, const qc_lgroup *G, const float *s, qc_exec *e) {
    const int32_t K = G->K;
    for (int32_t i = G->first; i < G->end; i++) {
        qc_tensor *t = &g->tensors[g->ops[i].w];
        float *W = qc_tensor_own_f32(t);
        if (!W) return -1;
        for (int64_t n = 0; n < t->shape[0]; n++)
            for (int32_t k = 0; k < K; k++) W[n * K + k] *= s[k];
        if (e) qc_exec_set_weight(e, g->ops[i].w, W);
    }
    const qc_op *p = &g->ops[G->prev];
    float *P = qc_tensor_own_f32(&g->tensors[p->w]);
    float *b = p->bias >= 0 ? qc_tensor_own_f32(&g->tensors[p->bias]) : NULL;
    if (!P || (p->bias >= 0 && !b)) return -1;
    if (G->fold == QC_FOLD_NORM) { /* norm weight (and LayerNorm bias) */
        for (int32_t k = 0; k < K; k++) {
            P[k] /= s[k];
            if (b) b[k] /= s[k];
        }
    } else { /* rows of the producing linear: row r feeds the input channels c with
              * (c / hd / tie) * hd + c % hd = r, whose scales are equal; take the first */
        int32_t Np = p->p[1], Kp = p->p[0];
        for (int32_t r = 0; r < Np; r++) {
            int32_t c = (r / G->head_dim) * G->tie * G->head_dim + r % G->head_dim;
            for (int32_t k = 0; k < Kp; k++) P[(size_t)r * Kp + k] /= s[c];
            if (b) b[r] /= s[c];
        }
    }
    if (e) {
        qc_exec_set_weight(e, p->w, P);
        if (b) qc_exec_set_weight(e, p->bias, b);
    }
    return 0;
}

/* Stacks the group's weights [sum N, K] (as they are now). */
static float *stack(const qc_graph *g, const qc_lgroup *G, int64_t *N) {
    *N = 0;
    for (int32_t i = G->first; i < G->end; i++) *N += g->tensors[g->ops[i].w].shape[0];
    float *W = malloc((size_t)(*N * G->K) * sizeof(float)), *p = W;
    for (int32_t i = G->first; W && i < G->end; i++) {
        const qc_tensor *t = &g->tensors[g->ops[i].w];
        size_t n = (size_t)qc_tensor_numel(t);
        qc_convert(t->data, t->dtype, p, QRT_DT_F32, n);
        p += n;
    }
    return W;
}

int qc_awq_scale_layer(qc_graph *g, const qc_opts *o, qc_exec *e, const qc_calib *cal,
                       const float *xs, int32_t X, int32_t begin, int32_t end, qc_err *err) {
    const int32_t T = cal->len, D = g->cfg.dim, thr = o->threads > 0 ? o->threads : 1;
    int32_t ng = qc_linear_groups(g, begin, end, NULL, 0);
    qc_lgroup *grp = calloc((size_t)ng + 1, sizeof *grp);
    qc_hessian *h = calloc((size_t)ng + 1, sizeof *h);
    double **sabs = calloc((size_t)ng + 1, sizeof *sabs);
    int rc = (!grp || !h || !sabs) ? qc_err_set(err, "AWQ: out of memory") : 0;
    if (!rc) qc_linear_groups(g, begin, end, grp, ng);
    for (int32_t i = 0; !rc && i < ng; i++) {
        if (grp[i].fold == QC_FOLD_NONE) continue;
        if (qc_hessian_init(&h[i], grp[i].K) || !(sabs[i] = calloc((size_t)grp[i].K, sizeof(double))))
            rc = qc_err_set(err, "AWQ: out of memory for a %d x %d Hessian", grp[i].K, grp[i].K);
    }
    stats st = {grp, ng, thr, h, sabs};
    for (int32_t s = 0; !rc && s < cal->n; s++) {
        memcpy(qc_exec_buf(e, X, T), xs + (size_t)s * T * D, (size_t)T * D * sizeof(float));
        if (qc_exec_run(e, cal->tokens + (size_t)s * T, T, 0, begin, end, collect, &st))
            rc = qc_err_set(err, "AWQ: out of memory");
    }
    for (int32_t i = 0; !rc && i < ng; i++) {
        const qc_lgroup *G = &grp[i];
        if (G->fold == QC_FOLD_NONE) continue;
        const int32_t K = G->K;
        double *H = malloc((size_t)K * K * sizeof(double));
        float *xmean = malloc((size_t)K * sizeof(float)), *s = malloc((size_t)K * sizeof(float));
        int64_t N = 0;
        float *W = stack(g, G, &N);
        double errs[AWQ_GRID];
        if (!H || !xmean || !s || !W) rc = qc_err_set(err, "AWQ: out of memory (K = %d)", K);
        if (!rc) {
            qc_hessian_finalize(&h[i], H);
            double rows = (double)h[i].n;
            for (int32_t k = 0; k < K; k++) xmean[k] = (float)(sabs[i][k] / rows);
            if (G->tie > 1) /* heads sharing a KV head share their v rows: one scale per v row */
                for (int32_t c = 0; c < K; c++) {
                    int32_t hd = G->head_dim, c0 = (c / hd / G->tie) * G->tie * hd + c % hd;
                    double m = 0;
                    for (int32_t t = 0; t < G->tie; t++) m += sabs[i][c0 + t * hd];
                    xmean[c] = (float)(m / G->tie / rows);
                }
            int32_t best = qc_awq_search(W, N, K, xmean, H, o->bits, qc_qgroup(K, o->group_size), o->sym,
                                         AWQ_GRID, thr, s, errs);
            if (best < 0) rc = qc_err_set(err, "AWQ: out of memory searching scales (K = %d)", K);
            else if (best > 0 && qc_fold_scales(g, G, s, e)) rc = qc_err_set(err, "AWQ: out of memory folding scales");
            if (!rc && o->verbose)
                fprintf(stderr, "qcc: awq %s (+%d): a = %.2f, error %.4g -> %.4g (%.1f%%)\n",
                        g->tensors[g->ops[G->first].w].name, G->end - G->first - 1, (double)best / AWQ_GRID,
                        errs[0], errs[best < 0 ? 0 : best], errs[0] > 0 ? 100.0 * errs[best < 0 ? 0 : best] / errs[0] : 100.0);
        }
        free(H), free(xmean), free(s), free(W);
    }
    for (int32_t i = 0; h && sabs && i < ng; i++) {
        qc_hessian_free(&h[i]);
        free(sabs[i]);
    }
    free(grp), free(h), free(sabs);
    return rc;
}
