/*
 * passes/exec.c — the reference CPU executor over the IR.
 *
 * The specification the generated executable must match, the engine that
 * calibration will run, and `qcc --run`. Deliberately plain: every weight is
 * materialised once as f32 (rounded through its storage dtype, so an f16
 * build is specified exactly), every op is a readable loop except the matrix
 * products (OpenBLAS sgemm), and the LM head always produces every row.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "qc/passes.h"
#include "qc/quant.h"

struct qc_exec {
    const qc_graph *g;
    int32_t n_ctx, cap;  /* KV positions; rows the buffers hold */
    float **w;           /* [n_tensors] f32 copies */
    float **buf;         /* [n_bufs] -> [cap, width] */
    float **kc, **vc;    /* [n_layers] -> [n_ctx, kv_dim] */
    int32_t n_layers;
};

void qc_exec_free(qc_exec *e) {
    if (!e) return;
    for (int32_t i = 0; e->w && i < e->g->n_tensors; i++) free(e->w[i]);
    for (int32_t i = 0; e->buf && i < e->g->n_bufs; i++) free(e->buf[i]);
    for (int32_t i = 0; e->kc && i < e->n_layers; i++) free(e->kc[i]), free(e->vc[i]);
    free(e->w), free(e->buf), free(e->kc), free(e->vc);
    free(e);
}

qc_exec *qc_exec_new(const qc_graph *g, int32_t n_ctx) {
    qc_exec *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->g = g;
    e->n_ctx = n_ctx;
    e->n_layers = g->cfg.n_layers;
    e->w = calloc((size_t)g->n_tensors, sizeof(float *));
    e->buf = calloc((size_t)g->n_bufs, sizeof(float *));
    e->kc = calloc((size_t)e->n_layers, sizeof(float *));
    e->vc = calloc((size_t)e->n_layers, sizeof(float *));
    if (!e->w || !e->buf || !e->kc || !e->vc) goto oom;
    for (int32_t i = 0; i < g->n_tensors; i++) {
        const qc_tensor *t = &g->tensors[i];
        size_t n = (size_t)qc_tensor_numel(t);
        float *f = malloc(n * sizeof(float));
        if (!f) goto oom;
        e->w[i] = f;
        if (t->out_dtype == QRT_DT_I8) { /* W8A8: run_op multiplies the codes themselves */
            qc_i8_dequant(t->owned, t->shape[0], t->shape[1], f);
        } else if (qc_qdtype_bits(t->out_dtype)) { /* packed: the values the runtime will use */
            qc_qdequant(t->owned, qc_qdtype_bits(t->out_dtype), t->shape[0], t->shape[1], t->qgroup,
                        t->qsym, f);
        } else if (t->out_dtype == t->dtype || t->out_dtype == QRT_DT_F32) {
            qc_convert(t->data, t->dtype, f, QRT_DT_F32, n);
        } else { /* round through the storage dtype */
            uint16_t *tmp = malloc(n * sizeof(uint16_t));
            if (!tmp) goto oom;
            qc_convert(t->data, t->dtype, tmp, t->out_dtype, n);
            qc_convert(tmp, t->out_dtype, f, QRT_DT_F32, n);
            free(tmp);
        }
    }
    size_t kvd = (size_t)g->cfg.n_kv_heads * g->cfg.head_dim;
    for (int32_t l = 0; l < e->n_layers; l++)
        if (!(e->kc[l] = calloc((size_t)n_ctx * kvd, sizeof(float))) ||
            !(e->vc[l] = calloc((size_t)n_ctx * kvd, sizeof(float))))
            goto oom;
    return e;
oom:
    qc_exec_free(e);
    return NULL;
}

static int ensure_rows(qc_exec *e, int32_t n) {
    if (n <= e->cap) return 0;
    for (int32_t i = 0; i < e->g->n_bufs; i++) {
        float *p = realloc(e->buf[i], (size_t)n * e->g->buf_widths[i] * sizeof(float));
        if (!p) return -1;
        e->buf[i] = p;
    }
    e->cap = n;
    return 0;
}

/* y[n, N] = x[n, K] @ W[N, K]^T + b */
static void matmul(float *y, const float *x, const float *W, const float *b, int32_t n, int32_t K, int32_t N) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, N, K, 1.0f, x, K, W, K, 0.0f, y, N);
    if (b)
        for (int32_t t = 0; t < n; t++)
            for (int32_t j = 0; j < N; j++) y[(size_t)t * N + j] += b[j];
}

static void run_op(qc_exec *e, const qc_op *op, const int32_t *tok, int32_t n, int32_t pos) {
    float *out = e->buf[op->out];
    const float *a = op->in[0] >= 0 ? e->buf[op->in[0]] : NULL;
    const float *b = op->in[1] >= 0 ? e->buf[op->in[1]] : NULL;
    const float *c = op->in[2] >= 0 ? e->buf[op->in[2]] : NULL;
    const float *w = op->w >= 0 ? e->w[op->w] : NULL;
    const float *bias = op->bias >= 0 ? e->w[op->bias] : NULL;
    const int32_t *p = op->p;
    switch (op->kind) {
    case QRT_K_EMBED:
        for (int32_t t = 0; t < n; t++)
            memcpy(out + (size_t)t * p[0], w + (size_t)tok[t] * p[0], (size_t)p[0] * sizeof(float));
        break;
    case QRT_K_RMSNORM:
        for (int32_t t = 0; t < n; t++) {
            const float *x = a + (size_t)t * p[0];
            double ss = 0;
            for (int32_t i = 0; i < p[0]; i++) ss += (double)x[i] * x[i];
            float r = (float)(1.0 / sqrt(ss / p[0] + op->f0));
            for (int32_t i = 0; i < p[0]; i++) out[(size_t)t * p[0] + i] = x[i] * r * w[i];
        }
        break;
    case QRT_K_LINEAR:
    case QRT_K_LM_HEAD:
        if (e->g->tensors[op->w].out_dtype == QRT_DT_I8) { /* W8A8: int8 activations per token */
            QC_ASSERT(qc_i8_linear(a, n, e->g->tensors[op->w].owned, p[1], p[0], out) == 0);
            for (int32_t t = 0; bias && t < n; t++)
                for (int32_t j = 0; j < p[1]; j++) out[(size_t)t * p[1] + j] += bias[j];
            break;
        }
        matmul(out, a, w, bias, n, p[0], p[1]);
        break;
    case QRT_K_ROPE: { /* rotate-half: (x[i], x[i+hd/2]) rotated by pos * theta^(-2i/hd) */
        int32_t heads = p[0], hd = p[1], half = hd / 2;
        for (int32_t t = 0; t < n; t++)
            for (int32_t i = 0; i < half; i++) {
                double ang = (double)(pos + t) * pow(op->f0, -2.0 * i / hd);
                float co = (float)cos(ang), si = (float)sin(ang);
                for (int32_t h = 0; h < heads; h++) {
                    float *x = out + ((size_t)t * heads + h) * hd;
                    float x0 = x[i], x1 = x[i + half];
                    x[i] = x0 * co - x1 * si;
                    x[i + half] = x1 * co + x0 * si;
                }
            }
        break;
    }
    case QRT_K_ATTENTION: {
        int32_t layer = p[0], H = p[1], KV = p[2], hd = p[3], kvd = KV * hd;
        memcpy(e->kc[layer] + (size_t)pos * kvd, b, (size_t)n * kvd * sizeof(float));
        memcpy(e->vc[layer] + (size_t)pos * kvd, c, (size_t)n * kvd * sizeof(float));
        double *s = malloc((size_t)(pos + n) * sizeof(double));
        QC_ASSERT(s != NULL);
        for (int32_t t = 0; t < n; t++)
            for (int32_t h = 0; h < H; h++) {
                const float *q = a + ((size_t)t * H + h) * hd;
                int32_t kh = h / (H / KV), last = pos + t;
                double mx = -INFINITY, sum = 0;
                for (int32_t j = 0; j <= last; j++) {
                    const float *k = e->kc[layer] + (size_t)j * kvd + (size_t)kh * hd;
                    double d = 0;
                    for (int32_t i = 0; i < hd; i++) d += (double)q[i] * k[i];
                    s[j] = d / sqrt((double)hd);
                    if (s[j] > mx) mx = s[j];
                }
                for (int32_t j = 0; j <= last; j++) sum += (s[j] = exp(s[j] - mx));
                float *o = out + ((size_t)t * H + h) * hd;
                double acc[hd];
                memset(acc, 0, sizeof acc);
                for (int32_t j = 0; j <= last; j++) {
                    const float *v = e->vc[layer] + (size_t)j * kvd + (size_t)kh * hd;
                    for (int32_t i = 0; i < hd; i++) acc[i] += s[j] * v[i];
                }
                for (int32_t i = 0; i < hd; i++) o[i] = (float)(acc[i] / sum);
            }
        free(s);
        break;
    }
    case QRT_K_SILU_MUL:
        for (size_t i = 0; i < (size_t)n * p[0]; i++) out[i] = (float)(a[i] / (1.0 + exp(-(double)a[i])) * b[i]);
        break;
    case QRT_K_ADD:
        for (size_t i = 0; i < (size_t)n * p[0]; i++) out[i] = a[i] + b[i];
        break;
    case QRT_K_LAYERNORM: /* (x - mean) / sqrt(var + eps) * w + bias, in double */
        for (int32_t t = 0; t < n; t++) {
            const float *x = a + (size_t)t * p[0];
            double mean = 0, var = 0;
            for (int32_t i = 0; i < p[0]; i++) mean += x[i];
            mean /= p[0];
            for (int32_t i = 0; i < p[0]; i++) var += (x[i] - mean) * (x[i] - mean);
            double r = 1.0 / sqrt(var / p[0] + op->f0);
            for (int32_t i = 0; i < p[0]; i++)
                out[(size_t)t * p[0] + i] = (float)((x[i] - mean) * r * w[i] + (bias ? bias[i] : 0.0));
        }
        break;
    case QRT_K_GELU: /* p1 0: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); 1: 0.5 x (1 + erf(x / sqrt 2)) */
        for (size_t i = 0; i < (size_t)n * p[0]; i++) {
            double x = a[i];
            out[i] = (float)(p[1] ? 0.5 * x * (1.0 + erf(x / sqrt(2.0)))
                                  : 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x))));
        }
        break;
    case QRT_K_RELU:
        for (size_t i = 0; i < (size_t)n * p[0]; i++) out[i] = a[i] > 0 ? a[i] : 0.0f;
        break;
    case QRT_K_POS_EMBED: /* learned absolute positions: row pos + t + p1 of w [p2, p0] */
        for (int32_t t = 0; t < n; t++) {
            int64_t r = (int64_t)pos + t + p[1];
            if (r >= p[2]) r = p[2] - 1;
            for (int32_t i = 0; i < p[0]; i++)
                out[(size_t)t * p[0] + i] = a[(size_t)t * p[0] + i] + w[(size_t)r * p[0] + i];
        }
        break;
    default:
        QC_ASSERT(!"unknown op");
    }
}

int qc_exec_run(qc_exec *e, const int32_t *tokens, int32_t n, int32_t pos, int32_t begin,
                int32_t end, qc_exec_hook *hook, void *ud) {
    QC_ASSERT(n > 0 && pos >= 0 && pos + n <= e->n_ctx && begin >= 0 && end <= e->g->n_ops);
    if (ensure_rows(e, n)) return -1;
    for (int32_t i = begin; i < end; i++) {
        const qc_op *op = &e->g->ops[i];
        if (hook && (op->kind == QRT_K_LINEAR || op->kind == QRT_K_LM_HEAD) && hook(ud, i, e->buf[op->in[0]], n))
            return 1;
        run_op(e, op, tokens, n, pos);
    }
    return 0;
}

const float *qc_exec_forward(qc_exec *e, const int32_t *tokens, int32_t n, int32_t pos) {
    if (qc_exec_run(e, tokens, n, pos, 0, e->g->n_ops, NULL, NULL)) return NULL;
    return e->buf[e->g->logits_buf];
}

float *qc_exec_buf(qc_exec *e, int32_t id, int32_t rows) {
    return ensure_rows(e, rows) ? NULL : e->buf[id];
}

void qc_exec_set_weight(qc_exec *e, int32_t tensor, const float *w) {
    size_t n = (size_t)qc_tensor_numel(&e->g->tensors[tensor]);
    memcpy(e->w[tensor], w, n * sizeof(float));
}
