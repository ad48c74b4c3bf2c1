/*
 * frontend/model.c — a checkpoint on disk into a qc_graph.
 *
 * Resolves MODEL (a .safetensors file, a sharded .index.json, or a directory
 * holding either) and the config.json / tokenizer.json beside it, or a .gguf
 * file (config and tokenizer from its metadata), checks that every tensor the
 * architecture needs is present with the shape the config implies and finite
 * values, then writes the forward pass as a flat op list.
 *
 * GGUF tensors are named the llama.cpp way (token_embd, blk.N.attn_q, ...)
 * and keep those names in the graph. F32 / F16 / BF16 tensors stay borrowed
 * views into the mmap (the graph owns the open file, g->source); quantized
 * ones are dequantized into owned f32 copies. llama.cpp's converter permutes
 * the rows of Q and K (and their biases) within each head so that RoPE
 * rotates interleaved pairs; our ROPE kernel rotates halves (HF order), so
 * those rows are put back: HF row h*hd + j (j < hd/2) = GGUF row h*hd + 2j,
 * HF row h*hd + hd/2 + j = GGUF row h*hd + 2j + 1.
 *
 * Llama family (llama, mistral, qwen2, smollm), per layer:
 *   xb = rmsnorm(x) ; q,k,v = xb Wq^T (+bq), ... ; rope(q), rope(k)
 *   att = attention(q,k,v) ; x += att Wo^T
 *   xb = rmsnorm(x) ; hb = silu(xb Wg^T) * (xb Wu^T) ; x += hb Wd^T
 * then logits = rmsnorm(x) Wlm^T (Wlm = embedding table when tied).
 * The same eleven buffers serve every layer.
 *
 * qc_model_load_dummy (qcc --dummy-weights) builds the same Llama graph from
 * config.json alone: tensors with shapes and no data, and a byte-level
 * tokenizer; the executable generates the values at start
 * (docs/dummy-weights.md).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <xxhash.h>

#include "qc/frontend.h"
#include "qrt/tokenizer.h"
#include "tokblob.h"

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

/* Scans a tensor (F32, F16 or BF16 data) for NaN/Inf. Element i came from
 * file offset file_offset + (i / block) * block_bytes. 0 or -1 with err. */
static int check_values(const char *file, const char *name, int32_t dtype, const void *data, size_t nbytes,
                        uint64_t file_offset, uint64_t block, uint64_t block_bytes, qc_err *err) {
    size_t n = 0, esz = dtype == QRT_DT_F32 ? 4 : 2;
    n = nbytes / esz;
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++) {
        int bad;
        if (dtype == QRT_DT_F32) {
            float f;
            memcpy(&f, p + 4 * i, 4);
            bad = !isfinite(f);
        } else {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            bad = dtype == QRT_DT_F16 ? (h & 0x7c00) == 0x7c00 : (h & 0x7f80) == 0x7f80;
        }
        if (bad)
            return qc_err_set(err, "%s: tensor '%s': non-finite value at element %zu (offset %llu)",
                              file, name, i, (unsigned long long)(file_offset + i / block * block_bytes));
    }
    return 0;
}

static int check_finite(const qc_st_tensor *t, qc_err *err) {
    uint64_t esz = t->dtype == QRT_DT_F32 ? 4 : 2;
    return check_values(t->file, t->name, t->dtype, t->data, t->nbytes, t->file_offset, 1, esz, err);
}

/* Where the weights come from: a safetensors checkpoint (st) or a GGUF file (gg). */
typedef struct builder {
    qc_graph *g;
    const qc_st *st;
    const qc_gguf *gg;
    qc_err *err;
} builder;

static int32_t need_gguf(builder *b, const char *hf_name, int32_t ndim, int64_t r, int64_t c, int32_t heads);

/* --dummy-weights (no checkpoint: st and gg both NULL): the tensor with its
 * shape and no data (F16 matrices, F32 vectors: what a checkpoint would
 * usually hold; qc_pass_convert decides the storage as for a real one). */
static int32_t need_dummy(builder *b, const char *name, int32_t ndim, int64_t r, int64_t c) {
    for (int32_t i = 0; i < b->g->n_tensors; i++)
        if (strcmp(b->g->tensors[i].name, name) == 0) return i;
    int64_t shape[2] = {r, c}, n = ndim == 2 ? r * c : r;
    if (r > ((int64_t)1 << 40) / (ndim == 2 ? c : 1)) {
        qc_err_set(b->err, "tensor '%s': [%lld, %lld] is too large", name, (long long)r, (long long)c);
        return -1;
    }
    int32_t dt = ndim == 2 ? QRT_DT_F16 : QRT_DT_F32;
    return qc_graph_add_tensor(b->g, name, dt, ndim, shape, NULL, (size_t)n * (dt == QRT_DT_F16 ? 2 : 4));
}

/* Finds `name`, checks its shape ({rows} or {rows, cols}) and values, adds it
 * to the graph. `heads` > 0 marks a Q or K projection (weight or bias) with
 * that many heads, whose rows GGUF stores permuted. Returns the tensor id or -1. */
static int32_t need(builder *b, const char *name, int32_t ndim, int64_t r, int64_t c, int32_t heads) {
    if (b->gg)
        return need_gguf(b, name, ndim, r, c, heads);
    if (!b->st)
        return need_dummy(b, name, ndim, r, c);
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
    int32_t emb = need(b, "model.embed_tokens.weight", 2, c->vocab, D, 0);
    if (emb < 0) return -1;
    op_add(g, QRT_K_EMBED, X, -1, -1, -1, emb, -1, D, 0, 0, 0, 0);
    for (int32_t l = 0; l < c->n_layers; l++) {
#define W(suffix, nd, r, cc, heads) \
    (snprintf(nm, sizeof nm, "model.layers.%d.%s", l, suffix), need(b, nm, nd, r, cc, heads))
        int32_t an = W("input_layernorm.weight", 1, D, 0, 0);
        int32_t wq = W("self_attn.q_proj.weight", 2, QD, D, H);
        int32_t wk = W("self_attn.k_proj.weight", 2, KD, D, KV);
        int32_t wv = W("self_attn.v_proj.weight", 2, KD, D, 0);
        int32_t wo = W("self_attn.o_proj.weight", 2, D, QD, 0);
        int32_t fn = W("post_attention_layernorm.weight", 1, D, 0, 0);
        int32_t wg = W("mlp.gate_proj.weight", 2, F, D, 0);
        int32_t wu = W("mlp.up_proj.weight", 2, F, D, 0);
        int32_t wd = W("mlp.down_proj.weight", 2, D, F, 0);
        int32_t bq = -1, bk = -1, bv = -1;
        if (c->attn_bias) {
            bq = W("self_attn.q_proj.bias", 1, QD, 0, H);
            bk = W("self_attn.k_proj.bias", 1, KD, 0, KV);
            bv = W("self_attn.v_proj.bias", 1, KD, 0, 0);
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
    int32_t norm = need(b, "model.norm.weight", 1, D, 0, 0);
    if (norm < 0) return -1;
    int32_t head = emb;
    if (!c->tie_embeddings || (b->st && qc_st_find(b->st, "lm_head.weight"))) {
        head = need(b, "lm_head.weight", 2, c->vocab, D, 0);
        if (head < 0) return -1;
    }
    op_add(g, QRT_K_RMSNORM, XB, X, -1, -1, norm, -1, D, 0, 0, 0, c->norm_eps);
    op_add(g, QRT_K_LM_HEAD, LOGITS, XB, -1, -1, head, -1, D, c->vocab, 0, 0, 0);
    return 0;
}

/* ---- GPT-2 and OPT ---------------------------------------------------------- */

/* Element size of a checkpoint dtype (F32, F16, BF16). */
static size_t esize(int32_t dtype) { return dtype == QRT_DT_F32 ? 4 : 2; }

/* A safetensors tensor of shape [r, c] (c = 0: a vector [r]), checked and finite. */
static const qc_st_tensor *find_shaped(builder *b, const char *name, int64_t r, int64_t c) {
    const qc_st_tensor *t = qc_st_find(b->st, name);
    if (!t) {
        const qc_st_tensor *any = qc_st_count(b->st) ? qc_st_at(b->st, 0) : NULL;
        qc_err_set(b->err, "%s: tensor '%s' is missing (the architecture in config.json needs it)",
                   any ? any->file : "checkpoint", name);
        return NULL;
    }
    int ok = c ? t->ndim == 2 && t->shape[0] == r && t->shape[1] == c : t->ndim == 1 && t->shape[0] == r;
    if (!ok) {
        char got[96] = "";
        for (int32_t i = 0; i < t->ndim && strlen(got) < 64; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? "," : "", (long long)t->shape[i]);
        if (c)
            qc_err_set(b->err, "%s: tensor '%s': shape [%s] disagrees with config.json (expected [%lld,%lld]) (offset %llu)",
                       t->file, name, got, (long long)r, (long long)c, (unsigned long long)t->file_offset);
        else
            qc_err_set(b->err, "%s: tensor '%s': shape [%s] disagrees with config.json (expected [%lld]) (offset %llu)",
                       t->file, name, got, (long long)r, (unsigned long long)t->file_offset);
        return NULL;
    }
    return check_finite(t, b->err) ? NULL : t;
}

/* GPT-2's Conv1D weight [K, n * N] (stored input-major) as n owned [N, K]
 * linear weights (transposed; split along the output for the fused q/k/v
 * projection, named NAME[q], NAME[k], NAME[v]). 0 or -1. */
static int need_conv1d(builder *b, const char *name, int64_t K, int64_t N, int n, int32_t *ids) {
    const qc_st_tensor *t = find_shaped(b, name, K, n * N);
    if (!t)
        return -1;
    size_t es = esize(t->dtype);
    const uint8_t *src = t->data;
    for (int s = 0; s < n; s++) {
        uint8_t *dst = malloc((size_t)(N * K) * es);
        if (!dst)
            return qc_err_set(b->err, "%s: tensor '%s': out of memory", t->file, name);
        for (int64_t o = 0; o < N; o++)
            for (int64_t k = 0; k < K; k++)
                memcpy(dst + (size_t)(o * K + k) * es, src + (size_t)(k * n * N + s * N + o) * es, es);
        char nm[QC_NAME_MAX];
        if (snprintf(nm, sizeof nm, n == 1 ? "%s" : "%s[%c]", name, "qkv"[s % 3]) >= (int)sizeof nm) {
            free(dst);
            return qc_err_set(b->err, "%s: tensor '%s': name too long", t->file, name);
        }
        int64_t shape[2] = {N, K};
        ids[s] = qc_graph_add_tensor(b->g, nm, t->dtype, 2, shape, dst, (size_t)(N * K) * es);
        b->g->tensors[ids[s]].owned = dst;
    }
    return 0;
}

/* A bias vector [n * N] as n borrowed slices of N (NAME[q], ...). 0 or -1. */
static int need_split_vec(builder *b, const char *name, int64_t N, int n, int32_t *ids) {
    const qc_st_tensor *t = find_shaped(b, name, n * N, 0);
    if (!t)
        return -1;
    size_t es = esize(t->dtype);
    for (int s = 0; s < n; s++) {
        char nm[QC_NAME_MAX];
        if (snprintf(nm, sizeof nm, "%s[%c]", name, "qkv"[s % 3]) >= (int)sizeof nm)
            return qc_err_set(b->err, "%s: tensor '%s': name too long", t->file, name);
        ids[s] = qc_graph_add_tensor(b->g, nm, t->dtype, 1, &N, (const uint8_t *)t->data + (size_t)(s * N) * es,
                                     (size_t)N * es);
    }
    return 0;
}

/*
 * GPT-2 (pre-LayerNorm):
 *   x = wte[tok] + wpe[pos]
 *   per layer: xb = ln_1(x) ; q,k,v = xb Wqkv + b (Conv1D, split) ; att = attention(q,k,v)
 *              x += att Wproj + b ; xb = ln_2(x) ; x += gelu(xb Wfc + b) Wproj2 + b
 *   logits = ln_f(x) wte^T
 * OPT: the same with nn.Linear weights, ReLU, position rows offset by 2
 * (pos + 2), and with do_layer_norm_before = false LayerNorm after each
 * residual add instead (x = ln(x + att), x = ln(x + mlp), no final norm).
 */
static int build_gpt(builder *b) {
    qc_graph *g = b->g;
    const qc_config *c = &g->cfg;
    const int32_t D = c->dim, F = c->ffn_dim, H = c->n_heads, HD = c->head_dim;
    const int gpt2 = c->arch == QRT_ARCH_GPT2, post = c->post_norm, bias = c->attn_bias;
    enum { X, XB, Q, K, V, ATT, XB2, HB, LOGITS };
    const int32_t widths[] = {D, D, D, D, D, D, D, F, c->vocab};
    for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++) qc_graph_add_buf(g, widths[i]);
    g->logits_buf = LOGITS;

    /* Hugging Face saves these with or without the outer module's prefix. */
    const char *pre = gpt2 ? (qc_st_find(b->st, "transformer.wte.weight") ? "transformer." : "")
                           : (qc_st_find(b->st, "decoder.embed_tokens.weight") ? "decoder." : "model.decoder.");
    char nm[QC_NAME_MAX];
#define NM(...) (snprintf(nm, sizeof nm, __VA_ARGS__), nm)
#define VEC(fmt, ...) need(b, NM("%s" fmt, pre, __VA_ARGS__), 1, D, 0, 0)
    int32_t emb = need(b, NM("%s%s", pre, gpt2 ? "wte.weight" : "embed_tokens.weight"), 2, c->vocab, D, 0);
    int32_t wpe = emb < 0 ? -1 : need(b, NM("%s%s", pre, gpt2 ? "wpe.weight" : "embed_positions.weight"), 2,
                                      c->n_pos, D, 0);
    if (emb < 0 || wpe < 0) return -1;
    op_add(g, QRT_K_EMBED, X, -1, -1, -1, emb, -1, D, 0, 0, 0, 0);
    op_add(g, QRT_K_POS_EMBED, X, X, -1, -1, wpe, -1, D, c->pos_offset, c->n_pos, 0, 0);
    const int32_t act = c->act == QC_ACT_RELU ? QRT_K_RELU : QRT_K_GELU, exact = c->act == QC_ACT_GELU;
    for (int32_t l = 0; l < c->n_layers; l++) {
        int32_t ln1w, ln1b, ln2w, ln2b, w[3], bq[3] = {-1, -1, -1}, wo, bo = -1, w1, b1 = -1, w2, b2 = -1;
        if (gpt2) {
            ln1w = VEC("h.%d.ln_1.weight", l);
            ln1b = VEC("h.%d.ln_1.bias", l);
            ln2w = VEC("h.%d.ln_2.weight", l);
            ln2b = VEC("h.%d.ln_2.bias", l);
            if (ln1w < 0 || ln1b < 0 || ln2w < 0 || ln2b < 0 ||
                need_conv1d(b, NM("%sh.%d.attn.c_attn.weight", pre, l), D, D, 3, w) ||
                need_split_vec(b, NM("%sh.%d.attn.c_attn.bias", pre, l), D, 3, bq) ||
                need_conv1d(b, NM("%sh.%d.attn.c_proj.weight", pre, l), D, D, 1, &wo) ||
                (bo = VEC("h.%d.attn.c_proj.bias", l)) < 0 ||
                need_conv1d(b, NM("%sh.%d.mlp.c_fc.weight", pre, l), D, F, 1, &w1) ||
                (b1 = need(b, NM("%sh.%d.mlp.c_fc.bias", pre, l), 1, F, 0, 0)) < 0 ||
                need_conv1d(b, NM("%sh.%d.mlp.c_proj.weight", pre, l), F, D, 1, &w2) ||
                (b2 = VEC("h.%d.mlp.c_proj.bias", l)) < 0)
                return -1;
        } else {
            static const char *const qkv[3] = {"q_proj", "k_proj", "v_proj"};
            ln1w = VEC("layers.%d.self_attn_layer_norm.weight", l);
            ln1b = VEC("layers.%d.self_attn_layer_norm.bias", l);
            ln2w = VEC("layers.%d.final_layer_norm.weight", l);
            ln2b = VEC("layers.%d.final_layer_norm.bias", l);
            if (ln1w < 0 || ln1b < 0 || ln2w < 0 || ln2b < 0) return -1;
            for (int s = 0; s < 3; s++) {
                w[s] = need(b, NM("%slayers.%d.self_attn.%s.weight", pre, l, qkv[s]), 2, D, D, 0);
                if (w[s] < 0 || (bias && (bq[s] = VEC("layers.%d.self_attn.%s.bias", l, qkv[s])) < 0)) return -1;
            }
            wo = need(b, NM("%slayers.%d.self_attn.out_proj.weight", pre, l), 2, D, D, 0);
            if (wo < 0 || (bias && (bo = VEC("layers.%d.self_attn.out_proj.bias", l)) < 0)) return -1;
            w1 = need(b, NM("%slayers.%d.fc1.weight", pre, l), 2, F, D, 0);
            if (w1 < 0 || (bias && (b1 = need(b, NM("%slayers.%d.fc1.bias", pre, l), 1, F, 0, 0)) < 0)) return -1;
            w2 = need(b, NM("%slayers.%d.fc2.weight", pre, l), 2, D, F, 0);
            if (w2 < 0 || (bias && (b2 = VEC("layers.%d.fc2.bias", l)) < 0)) return -1;
        }
        /* attention block: pre-norm reads ln_1(x), post-norm reads x and norms the sum */
        int32_t in = post ? X : XB;
        if (!post) op_add(g, QRT_K_LAYERNORM, XB, X, -1, -1, ln1w, ln1b, D, 0, 0, 0, c->norm_eps);
        op_add(g, QRT_K_LINEAR, Q, in, -1, -1, w[0], bq[0], D, D, 0, 0, 0);
        op_add(g, QRT_K_LINEAR, K, in, -1, -1, w[1], bq[1], D, D, 0, 0, 0);
        op_add(g, QRT_K_LINEAR, V, in, -1, -1, w[2], bq[2], D, D, 0, 0, 0);
        op_add(g, QRT_K_ATTENTION, ATT, Q, K, V, -1, -1, l, H, H, HD, 0);
        op_add(g, QRT_K_LINEAR, XB2, ATT, -1, -1, wo, bo, D, D, 0, 0, 0);
        if (post) {
            op_add(g, QRT_K_ADD, XB, X, XB2, -1, -1, -1, D, 0, 0, 0, 0);
            op_add(g, QRT_K_LAYERNORM, X, XB, -1, -1, ln1w, ln1b, D, 0, 0, 0, c->norm_eps);
        } else {
            op_add(g, QRT_K_ADD, X, X, XB2, -1, -1, -1, D, 0, 0, 0, 0);
            op_add(g, QRT_K_LAYERNORM, XB, X, -1, -1, ln2w, ln2b, D, 0, 0, 0, c->norm_eps);
        }
        /* MLP block */
        op_add(g, QRT_K_LINEAR, HB, in, -1, -1, w1, b1, D, F, 0, 0, 0);
        op_add(g, act, HB, HB, -1, -1, -1, -1, F, exact, 0, 0, 0);
        op_add(g, QRT_K_LINEAR, XB2, HB, -1, -1, w2, b2, F, D, 0, 0, 0);
        if (post) {
            op_add(g, QRT_K_ADD, XB, X, XB2, -1, -1, -1, D, 0, 0, 0, 0);
            op_add(g, QRT_K_LAYERNORM, X, XB, -1, -1, ln2w, ln2b, D, 0, 0, 0, c->norm_eps);
        } else {
            op_add(g, QRT_K_ADD, X, X, XB2, -1, -1, -1, D, 0, 0, 0, 0);
        }
    }
    int32_t normed = X;
    if (!post) {
        const char *fin = gpt2 ? "ln_f" : "final_layer_norm";
        int32_t fw = VEC("%s.weight", fin), fb = fw < 0 ? -1 : VEC("%s.bias", fin);
        if (fw < 0 || fb < 0) return -1;
        op_add(g, QRT_K_LAYERNORM, XB, X, -1, -1, fw, fb, D, 0, 0, 0, c->norm_eps);
        normed = XB;
    }
#undef VEC
#undef NM
    int32_t head = emb;
    if (!c->tie_embeddings || qc_st_find(b->st, "lm_head.weight")) {
        head = need(b, "lm_head.weight", 2, c->vocab, D, 0);
        if (head < 0) return -1;
    }
    op_add(g, QRT_K_LM_HEAD, LOGITS, normed, -1, -1, head, -1, D, c->vocab, 0, 0, 0);
    return 0;
}

/* ---- GGUF ---------------------------------------------------------------- */

/* The llama.cpp name of an HF tensor name build_llama asks for. */
static void gguf_name(const char *hf, char *out, size_t cap) {
    static const char *const top[][2] = {
        {"model.embed_tokens.weight", "token_embd.weight"},
        {"model.norm.weight", "output_norm.weight"},
        {"lm_head.weight", "output.weight"},
    };
    static const char *const layer[][2] = {
        {"input_layernorm.weight", "attn_norm.weight"},
        {"self_attn.q_proj.weight", "attn_q.weight"},
        {"self_attn.k_proj.weight", "attn_k.weight"},
        {"self_attn.v_proj.weight", "attn_v.weight"},
        {"self_attn.o_proj.weight", "attn_output.weight"},
        {"self_attn.q_proj.bias", "attn_q.bias"},
        {"self_attn.k_proj.bias", "attn_k.bias"},
        {"self_attn.v_proj.bias", "attn_v.bias"},
        {"post_attention_layernorm.weight", "ffn_norm.weight"},
        {"mlp.gate_proj.weight", "ffn_gate.weight"},
        {"mlp.up_proj.weight", "ffn_up.weight"},
        {"mlp.down_proj.weight", "ffn_down.weight"},
    };
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
        if (strcmp(hf, top[i][0]) == 0) {
            snprintf(out, cap, "%s", top[i][1]);
            return;
        }
    int l = -1, used = 0;
    if (sscanf(hf, "model.layers.%d.%n", &l, &used) == 1 && used > 0)
        for (size_t i = 0; i < sizeof layer / sizeof layer[0]; i++)
            if (strcmp(hf + used, layer[i][0]) == 0) {
                snprintf(out, cap, "blk.%d.%s", l, layer[i][1]);
                return;
            }
    QC_ASSERT(!"build_llama asked for a tensor with no GGUF name");
}

/* "r,c" of a GGUF tensor in row-major (HF) order: ne reversed. */
static void gguf_shape(const qc_gguf_tensor *t, char *out, size_t cap) {
    out[0] = 0;
    for (uint32_t i = t->ndim; i-- > 0;)
        snprintf(out + strlen(out), cap - strlen(out), "%lld%s", (long long)t->ne[i], i ? "," : "");
}

/* Rows of `heads` heads in GGUF's interleaved order -> HF's rotate-half
 * order (see the top of the file). rows = heads * hd, row_bytes each. */
static void unpermute_rows(uint8_t *dst, const uint8_t *src, int64_t rows, int32_t heads, size_t row_bytes) {
    int64_t hd = rows / heads;
    for (int64_t h = 0; h < heads; h++)
        for (int64_t j = 0; j < hd / 2; j++)
            for (int64_t half = 0; half < 2; half++)
                memcpy(dst + (size_t)(h * hd + half * (hd / 2) + j) * row_bytes,
                       src + (size_t)(h * hd + 2 * j + half) * row_bytes, row_bytes);
}

static int32_t need_gguf(builder *b, const char *hf_name, int32_t ndim, int64_t r, int64_t c, int32_t heads) {
    const char *P = qc_gguf_path(b->gg);
    char name[QC_NAME_MAX], tb[16];
    gguf_name(hf_name, name, sizeof name);
    const qc_gguf_tensor *t = qc_gguf_find_tensor(b->gg, name);
    if (!t) {
        qc_err_set(b->err, "%s: tensor '%s' is missing (the llama architecture needs it)", P, name);
        return -1;
    }
    for (int32_t i = 0; i < b->g->n_tensors; i++)
        if (strcmp(b->g->tensors[i].name, name) == 0) return i;
    /* An HF [r, c] weight is ne = {c, r}; a vector [r] is ne = {r}. */
    int64_t want[QC_GGUF_MAX_DIMS] = {ndim == 2 ? c : r, ndim == 2 ? r : 1, 1, 1};
    int ok = 1;
    for (int i = 0; i < QC_GGUF_MAX_DIMS; i++) ok &= t->ne[i] == want[i];
    if (!ok) {
        char got[96], exp[64];
        gguf_shape(t, got, sizeof got);
        if (ndim == 1) snprintf(exp, sizeof exp, "%lld", (long long)r);
        else snprintf(exp, sizeof exp, "%lld,%lld", (long long)r, (long long)c);
        qc_err_set(b->err, "%s: tensor '%s': shape [%s] disagrees with the GGUF metadata (expected [%s]) (offset %llu)",
                   P, name, got, exp, (unsigned long long)t->info_offset);
        return -1;
    }
    if (!qc_gguf_can_dequant(t->type)) {
        qc_err_set(b->err, "%s: tensor '%s': unsupported tensor type %s (supported: F32, F16, BF16, Q4_0, Q4_1, "
                   "Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) (offset %llu)",
                   P, name, qc_gguf_type_name(t->type, tb), (unsigned long long)t->info_offset);
        return -1;
    }
    int64_t numel = r * (ndim == 2 ? c : 1), block = 1, bbytes = 4;
    qc_gguf_type_size(t->type, &block, &bbytes);
    int32_t dtype = t->type == QC_GGML_F16 ? QRT_DT_F16 : t->type == QC_GGML_BF16 ? QRT_DT_BF16 : QRT_DT_F32;
    const void *data = t->data;
    size_t nbytes = t->nbytes;
    uint8_t *owned = NULL;
    if (t->type != QC_GGML_F32 && dtype == QRT_DT_F32) { /* a block format: dequantize */
        if ((uint64_t)numel > SIZE_MAX / 4 || !(owned = malloc((size_t)numel * 4))) {
            qc_err_set(b->err, "%s: tensor '%s': out of memory", P, name);
            return -1;
        }
        qc_gguf_dequant(t->type, t->data, (float *)owned, numel);
        data = owned;
        nbytes = (size_t)numel * 4;
    }
    if (check_values(P, name, dtype, data, nbytes, t->file_offset, (uint64_t)block, (uint64_t)bbytes, b->err)) {
        free(owned);
        return -1;
    }
    if (heads > 0) {
        uint8_t *perm = malloc(nbytes ? nbytes : 1);
        if (!perm) {
            free(owned);
            qc_err_set(b->err, "%s: tensor '%s': out of memory", P, name);
            return -1;
        }
        unpermute_rows(perm, data, r, heads, nbytes / (size_t)r);
        free(owned);
        data = owned = perm;
    }
    int64_t shape[2] = {r, c};
    int32_t id = qc_graph_add_tensor(b->g, name, dtype, ndim, shape, data, nbytes);
    b->g->tensors[id].owned = owned;
    return id;
}

static void release_gguf(void *p) { qc_gguf_free(p); }

static int load_gguf(qc_graph **gout, const char *path, qc_err *err) {
    qc_gguf *gg = NULL;
    if (qc_gguf_open(&gg, path, err)) return -1;
    qc_graph *g = qc_graph_new();
    if (!g) {
        qc_gguf_free(gg);
        return qc_err_set(err, "out of memory");
    }
    g->source = gg;
    g->source_free = release_gguf;
    if (qc_gguf_config(gg, &g->cfg, err) ||
        qc_gguf_tokenizer(gg, &g->tokenizer, &g->tokenizer_size, err)) {
        qc_graph_free(g);
        return -1;
    }
    qc_gguf_hash(gg, g->source_hash);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(g->source_name, sizeof g->source_name, "%s", base);
    builder b = {g, NULL, gg, err};
    if (build_llama(&b) || qc_graph_verify(g, err)) {
        qc_graph_free(g);
        return -1;
    }
    *gout = g;
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
        return load_gguf(gout, model_path, err);
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

    builder b = {g, st, NULL, err};
    if (g->cfg.arch == QRT_ARCH_LLAMA ? build_llama(&b) : build_gpt(&b)) goto fail;
    if (qc_graph_verify(g, err)) goto fail;
    *gout = g;
    *st_out = st;
    return 0;
fail:
    qc_graph_free(g);
    qc_st_free(st);
    return -1;
}

/* ---- --dummy-weights: config.json alone ----------------------------------- */

/* GPT-2's byte -> code point map (as runtime/tokenizer.c): printable
 * Latin-1 bytes stand for themselves, the other 68 become U+0100 onwards. */
static uint32_t byte_cp(uint8_t b) {
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) return b;
    return 256u + (b <= 0x20 ? b : b <= 0xA0 ? 33u + (b - 0x7Fu) : 67u);
}

/*
 * The tokenizer of a dummy-weight executable (docs/dummy-weights.md): byte
 * level, no merges, no pre-tokenizer, vocab_size ids. BOS and EOS are
 * config.json's bos_token_id / eos_token_id (1 and 2 when absent), spelled
 * <s> and </s>; the first 256 other ids are the bytes 0x00..0xFF in order;
 * every id after them decodes as "<ID>" (never produced by encoding). Text
 * round-trips byte for byte; BOS is added at the start.
 */
static int dummy_tokenizer(qc_graph *g, const char *path, qc_err *err) {
    qc_config *c = &g->cfg;
    int32_t V = c->vocab;
    if (c->bos < 0) c->bos = V > 1 ? 1 : 0;
    if (c->eos < 0) c->eos = c->bos == 2 || V < 3 ? c->bos : 2;
    int32_t specials = c->bos == c->eos ? 1 : 2;
    if (V < 256 + specials)
        return qc_err_set(err, "%s: key 'vocab_size': %d is too small for --dummy-weights (its byte-level tokenizer "
                          "needs 256 byte tokens + BOS/EOS = %d)", path, V, 256 + specials);
    qc_tokb b = {0};
    char *pool = malloc((size_t)V * 16);
    if (!pool || qc_tokb_alloc(&b, V)) {
        free(pool);
        qc_tokb_free(&b);
        return qc_err_set(err, "%s: out of memory", path);
    }
    b.kind = QRT_TOK_BYTE_BPE;
    b.flags = QC_TOKF_ADD_BOS;
    b.pretok = QC_PRETOK_NONE;
    b.bos = c->bos;
    b.eos = c->eos;
    b.unk = -1;
    int32_t next_byte = 0;
    for (int32_t id = 0; id < V; id++) {
        char *s = pool + (size_t)id * 16;
        size_t n;
        if (id == c->bos || id == c->eos) {
            n = (size_t)snprintf(s, 16, "%s", id == c->bos ? "<s>" : "</s>");
            b.type[id] = QC_TOKT_SPECIAL;
        } else if (next_byte < 256) {
            uint32_t cp = byte_cp((uint8_t)next_byte++);
            if (cp < 0x80) {
                s[0] = (char)cp;
                n = 1;
            } else { /* U+0080..U+0143: two bytes of UTF-8 */
                s[0] = (char)(0xC0 | cp >> 6);
                s[1] = (char)(0x80 | (cp & 0x3F));
                n = 2;
            }
            b.type[id] = QC_TOKT_NORMAL;
        } else {
            n = (size_t)snprintf(s, 16, "<%d>", (int)id);
            b.type[id] = QC_TOKT_NORMAL;
        }
        b.str[id].s = s;
        b.str[id].len = n;
    }
    int rc = qc_tokb_index(&b) ? qc_err_set(err, "%s: out of memory", path)
                               : qc_tokb_write(&b, path, err, &g->tokenizer, &g->tokenizer_size);
    qc_tokb_free(&b);
    free(pool);
    return rc;
}

static int read_all(const char *path, uint8_t **out, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t cap = 4096, len = 0;
    uint8_t *p = malloc(cap);
    while (p) {
        len += fread(p + len, 1, cap - len, f);
        if (len < cap) break;
        uint8_t *q = cap < (64u << 20) ? realloc(p, cap * 2) : NULL;
        if (!q) free(p);
        p = q;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!p || bad) {
        free(p);
        return -1;
    }
    *out = p;
    *n = len;
    return 0;
}

int qc_model_load_dummy(qc_graph **gout, const char *config_path, qc_err *err) {
    *gout = NULL;
    qc_graph *g = qc_graph_new();
    if (!g) return qc_err_set(err, "out of memory");
    if (qc_config_load(&g->cfg, config_path, err)) goto fail;
    if (g->cfg.arch != QRT_ARCH_LLAMA) {
        qc_err_set(err, "%s: key 'model_type': --dummy-weights supports the llama family (llama, mistral, qwen2, "
                   "smollm), not '%s'", config_path, g->cfg.model_type);
        goto fail;
    }
    if (dummy_tokenizer(g, config_path, err)) goto fail;
    /* --info's source hash: the config's bytes (there is no checkpoint) */
    uint8_t *text = NULL;
    size_t n = 0;
    if (read_all(config_path, &text, &n)) {
        qc_err_set(err, "%s: cannot read: %s", config_path, strerror(errno));
        goto fail;
    }
    XXH128_canonical_t h;
    XXH128_canonicalFromHash(&h, XXH3_128bits(text, n));
    memcpy(g->source_hash, h.digest, 16);
    free(text);
    const char *base = strrchr(config_path, '/');
    snprintf(g->source_name, sizeof g->source_name, "%s", base ? base + 1 : config_path);
    builder b = {g, NULL, NULL, err};
    if (build_llama(&b) || qc_graph_verify(g, err)) goto fail;
    *gout = g;
    return 0;
fail:
    qc_graph_free(g);
    return -1;
}
