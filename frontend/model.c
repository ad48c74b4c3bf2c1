/*
 * frontend/model.c — a checkpoint on disk into a qc_graph.
 *
 * Resolves MODEL (a .safetensors file, a sharded .index.json, or a directory
 * holding either) and the config.json / tokenizer.json beside it, checks that
 * every tensor the architecture needs is present with the shape config.json
 * implies and finite values, then writes the forward pass as a flat op list.
 *
 * Llama family (llama, mistral, qwen2, smollm), per layer:
 *   xb = rmsnorm(x) ; q,k,v = xb Wq^T (+bq), ... ; rope(q), rope(k)
 *   att = attention(q,k,v) ; x += att Wo^T
 *   xb = rmsnorm(x) ; hb = silu(xb Wg^T) * (xb Wu^T) ; x += hb Wd^T
 * then logits = rmsnorm(x) Wlm^T (Wlm = embedding table when tied).
 * The same eleven buffers serve every layer.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "qc/frontend.h"

static int is_dir(const char *p) {
    struct stat s;
    return stat(p, &s) == 0 && S_ISDIR(s.st_mode);
}

static int exists(const char *p) {
    struct stat s;
    return stat(p, &s) == 0;
}

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

/* Directory part of path ("." if none) into out. */
static void dir_of(const char *path, char *out, size_t cap) {
    const char *sl = strrchr(path, '/');
    if (!sl) snprintf(out, cap, ".");
    else if (sl == path) snprintf(out, cap, "/");
    else snprintf(out, cap, "%.*s", (int)(sl - path), path);
}

/* Scans a tensor for NaN/Inf. 0 or -1 with err. */
static int check_finite(const qc_st_tensor *t, qc_err *err) {
    size_t n = 0, esz = t->dtype == QRT_DT_F32 ? 4 : 2;
    n = t->nbytes / esz;
    const uint8_t *p = t->data;
    for (size_t i = 0; i < n; i++) {
        int bad;
        if (t->dtype == QRT_DT_F32) {
            float f;
            memcpy(&f, p + 4 * i, 4);
            bad = !isfinite(f);
        } else {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            bad = t->dtype == QRT_DT_F16 ? (h & 0x7c00) == 0x7c00 : (h & 0x7f80) == 0x7f80;
        }
        if (bad)
            return qc_err_set(err, "%s: tensor '%s': non-finite value at element %zu (offset %llu)",
                              t->file, t->name, i, (unsigned long long)(t->file_offset + i * esz));
    }
    return 0;
}

typedef struct builder {
    qc_graph *g;
    const qc_st *st;
    qc_err *err;
} builder;

/* Finds `name`, checks its shape ({rows} or {rows, cols}) and values, adds it
 * to the graph. Returns the tensor id or -1. */
static int32_t need(builder *b, const char *name, int32_t ndim, int64_t r, int64_t c) {
    const qc_st_tensor *t = qc_st_find(b->st, name);
    if (!t) {
        const qc_st_tensor *any = qc_st_count(b->st) ? qc_st_at(b->st, 0) : NULL;
        qc_err_set(b->err, "%s: tensor '%s' is missing (the architecture in config.json needs it)",
                   any ? any->file : "checkpoint", name);
        return -1;
    }
    int64_t want[2] = {r, c};
    int ok = t->ndim == ndim;
    for (int32_t i = 0; ok && i < ndim; i++) ok = t->shape[i] == want[i];
    if (!ok) {
        char got[96] = "", exp[64];
        for (int32_t i = 0; i < t->ndim && strlen(got) < 64; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? "," : "", (long long)t->shape[i]);
        if (ndim == 1) snprintf(exp, sizeof exp, "%lld", (long long)r);
        else snprintf(exp, sizeof exp, "%lld,%lld", (long long)r, (long long)c);
        qc_err_set(b->err, "%s: tensor '%s': shape [%s] disagrees with config.json (expected [%s]) (offset %llu)",
                   t->file, name, got, exp, (unsigned long long)t->file_offset);
        return -1;
    }
    if (check_finite(t, b->err)) return -1;
    /* The same checkpoint tensor may serve twice (tied embeddings). */
    for (int32_t i = 0; i < b->g->n_tensors; i++)
        if (strcmp(b->g->tensors[i].name, name) == 0) return i;
    return qc_graph_add_tensor(b->g, name, t->dtype, ndim, want, t->data, t->nbytes);
}

static void op_add(qc_graph *g, int32_t kind, int32_t out, int32_t a, int32_t bb, int32_t c,
                   int32_t w, int32_t bias, int32_t p0, int32_t p1, int32_t p2, int32_t p3, float f0) {
    qc_op op = qc_op_make(kind);
    op.out = out;
    op.in[0] = a;
    op.in[1] = bb;
    op.in[2] = c;
    op.w = w;
    op.bias = bias;
    op.p[0] = p0;
    op.p[1] = p1;
    op.p[2] = p2;
    op.p[3] = p3;
    op.f0 = f0;
    qc_graph_add_op(g, &op);
}

static int build_llama(builder *b) {
    qc_graph *g = b->g;
    const qc_config *c = &g->cfg;
    const int32_t D = c->dim, H = c->n_heads, KV = c->n_kv_heads, HD = c->head_dim, F = c->ffn_dim;
    const int32_t QD = H * HD, KD = KV * HD;
    enum { X, XB, Q, K, V, ATT, XB2, GATE, UP, HB, LOGITS };
    const int32_t widths[] = {D, D, QD, KD, KD, QD, D, F, F, F, c->vocab};
    for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++) qc_graph_add_buf(g, widths[i]);
    g->logits_buf = LOGITS;

    char nm[QC_NAME_MAX];
    int32_t emb = need(b, "model.embed_tokens.weight", 2, c->vocab, D);
    if (emb < 0) return -1;
    op_add(g, QRT_K_EMBED, X, -1, -1, -1, emb, -1, D, 0, 0, 0, 0);
    for (int32_t l = 0; l < c->n_layers; l++) {
#define W(suffix, nd, r, cc) \
    (snprintf(nm, sizeof nm, "model.layers.%d.%s", l, suffix), need(b, nm, nd, r, cc))
        int32_t an = W("input_layernorm.weight", 1, D, 0);
        int32_t wq = W("self_attn.q_proj.weight", 2, QD, D);
        int32_t wk = W("self_attn.k_proj.weight", 2, KD, D);
        int32_t wv = W("self_attn.v_proj.weight", 2, KD, D);
        int32_t wo = W("self_attn.o_proj.weight", 2, D, QD);
        int32_t fn = W("post_attention_layernorm.weight", 1, D, 0);
        int32_t wg = W("mlp.gate_proj.weight", 2, F, D);
        int32_t wu = W("mlp.up_proj.weight", 2, F, D);
        int32_t wd = W("mlp.down_proj.weight", 2, D, F);
        int32_t bq = -1, bk = -1, bv = -1;
        if (c->attn_bias) {
            bq = W("self_attn.q_proj.bias", 1, QD, 0);
            bk = W("self_attn.k_proj.bias", 1, KD, 0);
            bv = W("self_attn.v_proj.bias", 1, KD, 0);
            if (bq < 0 || bk < 0 || bv < 0) return -1;
        }
#undef W
        if (an < 0 || wq < 0 || wk < 0 || wv < 0 || wo < 0 || fn < 0 || wg < 0 || wu < 0 || wd < 0)
            return -1;
        op_add(g, QRT_K_RMSNORM, XB, X, -1, -1, an, -1, D, 0, 0, 0, c->norm_eps);
        op_add(g, QRT_K_LINEAR, Q, XB, -1, -1, wq, bq, D, QD, 0, 0, 0);
        op_add(g, QRT_K_LINEAR, K, XB, -1, -1, wk, bk, D, KD, 0, 0, 0);
        op_add(g, QRT_K_LINEAR, V, XB, -1, -1, wv, bv, D, KD, 0, 0, 0);
        op_add(g, QRT_K_ROPE, Q, -1, -1, -1, -1, -1, H, HD, 0, 0, c->rope_theta);
        op_add(g, QRT_K_ROPE, K, -1, -1, -1, -1, -1, KV, HD, 0, 0, c->rope_theta);
        op_add(g, QRT_K_ATTENTION, ATT, Q, K, V, -1, -1, l, H, KV, HD, 0);
        op_add(g, QRT_K_LINEAR, XB2, ATT, -1, -1, wo, -1, QD, D, 0, 0, 0);
        op_add(g, QRT_K_ADD, X, X, XB2, -1, -1, -1, D, 0, 0, 0, 0);
        op_add(g, QRT_K_RMSNORM, XB, X, -1, -1, fn, -1, D, 0, 0, 0, c->norm_eps);
        op_add(g, QRT_K_LINEAR, GATE, XB, -1, -1, wg, -1, D, F, 0, 0, 0);
        op_add(g, QRT_K_LINEAR, UP, XB, -1, -1, wu, -1, D, F, 0, 0, 0);
        op_add(g, QRT_K_SILU_MUL, HB, GATE, UP, -1, -1, -1, F, 0, 0, 0, 0);
        op_add(g, QRT_K_LINEAR, XB2, HB, -1, -1, wd, -1, F, D, 0, 0, 0);
        op_add(g, QRT_K_ADD, X, X, XB2, -1, -1, -1, D, 0, 0, 0, 0);
    }
    int32_t norm = need(b, "model.norm.weight", 1, D, 0);
    if (norm < 0) return -1;
    int32_t head = emb;
    if (!c->tie_embeddings || qc_st_find(b->st, "lm_head.weight")) {
        head = need(b, "lm_head.weight", 2, c->vocab, D);
        if (head < 0) return -1;
    }
    op_add(g, QRT_K_RMSNORM, XB, X, -1, -1, norm, -1, D, 0, 0, 0, c->norm_eps);
    op_add(g, QRT_K_LM_HEAD, LOGITS, XB, -1, -1, head, -1, D, c->vocab, 0, 0, 0);
    return 0;
}

int qc_model_load(qc_graph **gout, qc_st **st_out, const char *model_path, qc_err *err) {
    char weights[4096], dir[4096], cfg_path[4200], tok_path[4200];
    *gout = NULL;
    *st_out = NULL;
    if (!exists(model_path))
        return qc_err_set(err, "%s: cannot open: %s", model_path, strerror(errno));
    if (is_dir(model_path)) {
        snprintf(weights, sizeof weights, "%s/model.safetensors", model_path);
        if (!exists(weights)) snprintf(weights, sizeof weights, "%s/model.safetensors.index.json", model_path);
        if (!exists(weights))
            return qc_err_set(err, "%s: no model.safetensors or model.safetensors.index.json in this directory",
                              model_path);
    } else if (ends_with(model_path, ".safetensors") || ends_with(model_path, ".json")) {
        snprintf(weights, sizeof weights, "%s", model_path);
    } else if (ends_with(model_path, ".gguf")) {
        return qc_err_set(err, "%s: GGUF input is not supported yet (use the safetensors checkpoint)", model_path);
    } else {
        return qc_err_set(err, "%s: not a .safetensors file, an .index.json or a model directory", model_path);
    }
    dir_of(weights, dir, sizeof dir);
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", dir);
    snprintf(tok_path, sizeof tok_path, "%s/tokenizer.json", dir);

    qc_graph *g = qc_graph_new();
    qc_st *st = NULL;
    if (!g) return qc_err_set(err, "out of memory");
    if (qc_config_load(&g->cfg, cfg_path, err)) goto fail;
    if (qc_st_open(&st, weights, err)) goto fail;
    if (qc_tokenizer_load(&g->tokenizer, &g->tokenizer_size, tok_path, err)) goto fail;
    qc_st_hash(st, g->source_hash);
    const char *base = strrchr(weights, '/');
    base = base ? base + 1 : weights;
    size_t bl = strlen(base) < sizeof g->source_name ? strlen(base) : sizeof g->source_name - 1;
    memcpy(g->source_name, base, bl);
    g->source_name[bl] = 0;

    builder b = {g, st, err};
    if (build_llama(&b)) goto fail;
    if (qc_graph_verify(g, err)) goto fail;
    *gout = g;
    *st_out = st;
    return 0;
fail:
    qc_graph_free(g);
    qc_st_free(st);
    return -1;
}
