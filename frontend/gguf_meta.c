/*
 * frontend/gguf_meta.c — GGUF metadata into qc_config and the qrt tokenizer
 * blob (qc_gguf_config, qc_gguf_tokenizer in qc/frontend.h).
 *
 * Config: general.architecture must be "llama" (llama.cpp's name for the
 * whole Llama family: Llama 1-3, Mistral, SmolLM, TinyStories ...); the
 * llama.* keys give the shape. What the Llama graph cannot express exactly
 * (mixture of experts, RoPE scaling or frequency factors, partial rotary
 * dimensions) is refused with the key that asks for it.
 *
 * Tokenizer: tokenizer.ggml.model
 *   "llama"  SentencePiece BPE with byte fallback. llama.cpp stores no merges
 *            for these: SentencePiece merges the adjacent pair whose
 *            concatenation is the highest-scoring piece. The blob's BPE ranks
 *            merges instead, so a ranked list is synthesized from the vocabulary
 *            exactly as Hugging Face's converter builds tokenizer.json: for
 *            every normal piece t and every split t = a + b (at a UTF-8
 *            character boundary) with a and b in the vocabulary, a merge
 *            (a, b) -> t; ranked by t's score (descending), then t's id, then
 *            a's and b's ids. For stories260K this reproduces tokenizer.json's
 *            merge list exactly (tests/unit/test_gguf.c).
 *   "gpt2"   byte-level BPE with tokenizer.ggml.merges ("a b" strings); the
 *            split pattern comes from tokenizer.ggml.pre.
 * token_type: 1 normal, 2 unknown and 3 control -> special, 4 user-defined
 * -> added (matched literally), 5 unused, 6 byte (<0xHH>).
 * Errors are one line: "PATH: key 'K': what (offset N)".
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc/frontend.h"
#include "qrt/abi.h"
#include "qrt/tokenizer.h"
#include "tokblob.h"

/* GGUF token types (llama.cpp's llama_token_type). */
enum { GT_UNDEFINED = 0, GT_NORMAL = 1, GT_UNKNOWN = 2, GT_CONTROL = 3, GT_USER = 4, GT_UNUSED = 5, GT_BYTE = 6 };

/* ---- config -------------------------------------------------------------- */

/* Positive int32 under `key`; def < 0 means required. */
static int get_pos(const qc_gguf *g, const char *key, int64_t def, int32_t *out, qc_err *err) {
    int64_t v;
    int rc = qc_gguf_get_int(g, key, &v, err);
    if (rc < 0)
        return -1;
    if (rc == 0) {
        if (def < 0)
            return qc_gguf_key_err(g, NULL, key, err, "missing");
        *out = (int32_t)def;
        return 0;
    }
    if (v <= 0 || v > INT32_MAX)
        return qc_gguf_key_err(g, qc_gguf_find_kv(g, key), NULL, err, "must be a positive integer (is %lld)",
                               (long long)v);
    *out = (int32_t)v;
    return 0;
}

/* Positive finite number under `key`; def < 0 means required. */
static int get_posnum(const qc_gguf *g, const char *key, double def, float *out, qc_err *err) {
    double v;
    int rc = qc_gguf_get_float(g, key, &v, err);
    if (rc < 0)
        return -1;
    if (rc == 0) {
        if (def < 0)
            return qc_gguf_key_err(g, NULL, key, err, "missing");
        *out = (float)def;
        return 0;
    }
    if (!((float)v > 0) || !isfinite((float)v))
        return qc_gguf_key_err(g, qc_gguf_find_kv(g, key), NULL, err, "must be a positive number (is %g)", v);
    *out = (float)v;
    return 0;
}

/* A token id key: -1 when absent or "none" (-1 / 0xFFFFFFFF as llama.cpp
 * writes it), else it must be below vocab. */
static int get_token(const qc_gguf *g, const char *key, int32_t vocab, int32_t *out, qc_err *err) {
    int64_t v;
    *out = -1;
    int rc = qc_gguf_get_int(g, key, &v, err);
    if (rc <= 0)
        return rc;
    if (v == -1 || v == 0xFFFFFFFFll)
        return 0;
    if (v < 0 || v >= vocab)
        return qc_gguf_key_err(g, qc_gguf_find_kv(g, key), NULL, err, "token id %lld is not below the vocabulary size (%d)",
                               (long long)v, vocab);
    *out = (int32_t)v;
    return 0;
}

static int is(const qc_gguf_str *s, const char *lit) { return s->len == strlen(lit) && memcmp(s->s, lit, s->len) == 0; }

/* s made printable and short for messages. */
static const char *shown(const qc_gguf_str *s, char buf[48]) {
    size_t n = s->len < 40 ? s->len : 40, i;
    for (i = 0; i < n; i++)
        buf[i] = (unsigned char)s->s[i] < 0x20 || s->s[i] == 0x7f ? '?' : s->s[i];
    if (n < s->len)
        memcpy(buf + n, "...", 4);
    else
        buf[n] = 0;
    return buf;
}

static int tensors_equal(const qc_gguf_tensor *a, const qc_gguf_tensor *b) {
    if (a->type != b->type || a->nbytes != b->nbytes)
        return 0;
    for (int i = 0; i < QC_GGUF_MAX_DIMS; i++)
        if (a->ne[i] != b->ne[i])
            return 0;
    return a->nbytes == 0 || memcmp(a->data, b->data, a->nbytes) == 0;
}

int qc_gguf_config(const qc_gguf *g, qc_config *cfg, qc_err *err) {
    memset(cfg, 0, sizeof *cfg);
    qc_gguf_str arch;
    char sb[48];
    int rc = qc_gguf_get_str(g, "general.architecture", &arch, err);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return qc_gguf_key_err(g, NULL, "general.architecture", err, "missing");
    if (!is(&arch, "llama"))
        return qc_gguf_key_err(g, qc_gguf_find_kv(g, "general.architecture"), NULL, err,
                               "unsupported architecture '%s' (supported: llama)", shown(&arch, sb));
    snprintf(cfg->model_type, sizeof cfg->model_type, "llama");
    cfg->arch = QRT_ARCH_LLAMA;
    if (get_pos(g, "llama.block_count", -1, &cfg->n_layers, err) ||
        get_pos(g, "llama.embedding_length", -1, &cfg->dim, err) ||
        get_pos(g, "llama.feed_forward_length", -1, &cfg->ffn_dim, err) ||
        get_pos(g, "llama.attention.head_count", -1, &cfg->n_heads, err) ||
        get_pos(g, "llama.attention.head_count_kv", cfg->n_heads, &cfg->n_kv_heads, err) ||
        get_pos(g, "llama.context_length", 2048, &cfg->max_ctx, err))
        return -1;
    const char *hd_key = "llama.embedding_length";
    if (qc_gguf_find_kv(g, "llama.attention.key_length")) {
        hd_key = "llama.attention.key_length";
        if (get_pos(g, hd_key, -1, &cfg->head_dim, err))
            return -1;
    } else {
        if (cfg->dim % cfg->n_heads != 0)
            return qc_gguf_key_err(g, qc_gguf_find_kv(g, hd_key), NULL, err,
                                   "%d is not divisible by llama.attention.head_count (%d)", cfg->dim, cfg->n_heads);
        cfg->head_dim = cfg->dim / cfg->n_heads;
    }
    int32_t vlen = cfg->head_dim, rot = cfg->head_dim;
    if (get_pos(g, "llama.attention.value_length", cfg->head_dim, &vlen, err) ||
        get_pos(g, "llama.rope.dimension_count", cfg->head_dim, &rot, err))
        return -1;
    if (vlen != cfg->head_dim)
        return qc_gguf_key_err(g, qc_gguf_find_kv(g, "llama.attention.value_length"), NULL, err,
                               "%d differs from the key length %d (not supported)", vlen, cfg->head_dim);
    if (rot != cfg->head_dim)
        return qc_gguf_key_err(g, qc_gguf_find_kv(g, "llama.rope.dimension_count"), NULL, err,
                               "%d differs from the head dimension %d (partial rotary embeddings are not supported)",
                               rot, cfg->head_dim);
    if ((int64_t)cfg->n_heads * cfg->head_dim > INT32_MAX)
        return qc_gguf_key_err(g, qc_gguf_find_kv(g, hd_key), NULL, err, "head_count * head dimension is too large");
    if (cfg->head_dim % 2 != 0)
        return qc_gguf_key_err(g, qc_gguf_find_kv(g, hd_key), NULL, err,
                               "head dimension %d must be even for rotary embeddings", cfg->head_dim);
    if (cfg->n_heads % cfg->n_kv_heads != 0)
        return qc_gguf_key_err(g, qc_gguf_find_kv(g, "llama.attention.head_count_kv"), NULL, err,
                               "%d does not divide llama.attention.head_count (%d)", cfg->n_kv_heads, cfg->n_heads);
    if (get_posnum(g, "llama.attention.layer_norm_rms_epsilon", -1, &cfg->norm_eps, err) ||
        get_posnum(g, "llama.rope.freq_base", 10000.0, &cfg->rope_theta, err))
        return -1;

    /* What the Llama graph cannot express. */
    int64_t experts = 0;
    if (qc_gguf_get_int(g, "llama.expert_count", &experts, err) < 0)
        return -1;
    if (experts > 0)
        return qc_gguf_key_err(g, qc_gguf_find_kv(g, "llama.expert_count"), NULL, err,
                               "mixture-of-experts models are not supported");
    qc_gguf_str st;
    if ((rc = qc_gguf_get_str(g, "llama.rope.scaling.type", &st, err)) < 0)
        return -1;
    if (rc == 1 && !is(&st, "none"))
        return qc_gguf_key_err(g, qc_gguf_find_kv(g, "llama.rope.scaling.type"), NULL, err,
                               "RoPE scaling '%s' is not supported (only plain RoPE)", shown(&st, sb));
    const qc_gguf_tensor *rf = qc_gguf_find_tensor(g, "rope_freqs.weight");
    if (rf)
        return qc_err_set(err, "%s: tensor 'rope_freqs.weight': RoPE frequency factors are not supported (only plain RoPE) (offset %llu)",
                          qc_gguf_path(g), (unsigned long long)rf->info_offset);

    /* Vocabulary: the token list, else llama.vocab_size, else the embedding rows. */
    const qc_gguf_kv *toks = NULL;
    if (qc_gguf_get_arr(g, "tokenizer.ggml.tokens", QC_GGUF_STRING, &toks, err) < 0)
        return -1;
    int32_t vs = 0;
    if (get_pos(g, "llama.vocab_size", 0, &vs, err))
        return -1;
    const qc_gguf_tensor *emb = qc_gguf_find_tensor(g, "token_embd.weight");
    if (toks) {
        if (toks->n == 0 || toks->n > QC_TOKB_MAX_VOCAB)
            return qc_gguf_key_err(g, toks, NULL, err, "%llu tokens, expected 1 to %d", (unsigned long long)toks->n,
                                   QC_TOKB_MAX_VOCAB);
        cfg->vocab = (int32_t)toks->n;
        if (vs && vs != cfg->vocab)
            return qc_gguf_key_err(g, qc_gguf_find_kv(g, "llama.vocab_size"), NULL, err,
                                   "%d disagrees with the %d entries of tokenizer.ggml.tokens", vs, cfg->vocab);
    } else if (vs) {
        cfg->vocab = vs;
    } else if (emb && emb->ne[1] > 0 && emb->ne[1] <= INT32_MAX) {
        cfg->vocab = (int32_t)emb->ne[1];
    } else {
        return qc_gguf_key_err(g, NULL, "tokenizer.ggml.tokens", err, "missing (and no llama.vocab_size)");
    }
    if (get_token(g, "tokenizer.ggml.bos_token_id", cfg->vocab, &cfg->bos, err) ||
        get_token(g, "tokenizer.ggml.eos_token_id", cfg->vocab, &cfg->eos, err))
        return -1;

    /* Tied output: no output.weight, or one byte-identical to the embedding. */
    const qc_gguf_tensor *out = qc_gguf_find_tensor(g, "output.weight");
    cfg->tie_embeddings = !out || (emb && tensors_equal(out, emb));
    cfg->attn_bias = qc_gguf_find_tensor(g, "blk.0.attn_q.bias") != NULL;
    return 0;
}

/* ---- tokenizer ----------------------------------------------------------- */

typedef struct cand {
    float score;    /* score of the result */
    uint32_t res, l, r;
} cand;

static int cmp_cand(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    if (x->res != y->res)
        return x->res < y->res ? -1 : 1;
    if (x->l != y->l)
        return x->l < y->l ? -1 : 1;
    return x->r < y->r ? -1 : x->r > y->r;
}

/* SentencePiece merges from scores (see the top of the file). */
static int synth_merges(qc_tokb *b, const float *scores, const char *P, qc_err *err) {
    cand *c = NULL;
    size_t n = 0, cap = 0;
    for (int32_t t = 0; t < b->n_vocab; t++) {
        if (b->type[t] != QC_TOKT_NORMAL)
            continue;
        const char *s = b->str[t].s;
        size_t len = b->str[t].len;
        for (size_t j = 1; j < len; j++) {
            if (((uint8_t)s[j] & 0xC0) == 0x80) /* not a character boundary */
                continue;
            int32_t l = qc_tokb_find(b, s, j), r = l < 0 ? -1 : qc_tokb_find(b, s + j, len - j);
            if (r < 0)
                continue;
            if (n == cap) {
                size_t nc = cap ? 2 * cap : 1024;
                cand *q = realloc(c, nc * sizeof *q);
                if (!q) {
                    free(c);
                    return qc_err_set(err, "%s: out of memory", P);
                }
                c = q, cap = nc;
            }
            c[n++] = (cand){scores[t], (uint32_t)t, (uint32_t)l, (uint32_t)r};
        }
    }
    if (n > 1)
        qsort(c, n, sizeof *c, cmp_cand);
    b->merges = malloc((n ? n : 1) * 3 * sizeof *b->merges);
    if (!b->merges) {
        free(c);
        return qc_err_set(err, "%s: out of memory", P);
    }
    for (size_t i = 0; i < n; i++) {
        b->merges[3 * i] = c[i].l;
        b->merges[3 * i + 1] = c[i].r;
        b->merges[3 * i + 2] = c[i].res;
    }
    b->n_merges = n;
    free(c);
    return 0;
}

/* tokenizer.ggml.merges: "left right" strings, every side and their
 * concatenation in the vocabulary. */
static int load_merges(const qc_gguf *g, qc_tokb *b, const qc_gguf_kv *kv, qc_err *err) {
    const char *P = qc_gguf_path(g);
    qc_gguf_str *m = malloc((kv->n ? kv->n : 1) * sizeof *m);
    b->merges = malloc((kv->n ? kv->n : 1) * 3 * sizeof *b->merges);
    size_t cat_cap = 64; /* never NULL: an empty side still gets a valid pointer */
    char *cat = malloc(cat_cap);
    int rc = 0;
    if (!m || !b->merges || !cat) {
        rc = qc_err_set(err, "%s: out of memory", P);
        goto out;
    }
    qc_gguf_arr_strings(kv, m);
    for (uint64_t i = 0; i < kv->n && rc == 0; i++) {
        const char *s = m[i].s, *sp = memchr(s, ' ', m[i].len);
        char sb[48];
        if (!sp || memchr(sp + 1, ' ', m[i].len - (size_t)(sp + 1 - s))) {
            rc = qc_gguf_key_err(g, kv, NULL, err, "merge %llu '%s' is not \"left right\"", (unsigned long long)i,
                                 shown(&m[i], sb));
            break;
        }
        size_t na = (size_t)(sp - s), nb = m[i].len - na - 1;
        if (na + nb > cat_cap) {
            char *q = realloc(cat, na + nb);
            if (!q) {
                rc = qc_err_set(err, "%s: out of memory", P);
                break;
            }
            cat = q, cat_cap = na + nb;
        }
        memcpy(cat, s, na);
        memcpy(cat + na, sp + 1, nb);
        int32_t l = qc_tokb_find(b, s, na), r = qc_tokb_find(b, sp + 1, nb), res = qc_tokb_find(b, cat, na + nb);
        if (l < 0 || r < 0 || res < 0) {
            qc_gguf_str bad = l < 0 ? (qc_gguf_str){s, na} : r < 0 ? (qc_gguf_str){sp + 1, nb} : (qc_gguf_str){cat, na + nb};
            rc = qc_gguf_key_err(g, kv, NULL, err, "merge %llu: token '%s' is not in the vocabulary",
                                 (unsigned long long)i, shown(&bad, sb));
            break;
        }
        b->merges[3 * i] = (uint32_t)l;
        b->merges[3 * i + 1] = (uint32_t)r;
        b->merges[3 * i + 2] = (uint32_t)res;
    }
    if (rc == 0)
        b->n_merges = kv->n;
out:
    free(cat);
    free(m);
    return rc;
}

/* A bool key with a default; -1 on a type error. */
static int flag(const qc_gguf *g, const char *key, int def, int *out, qc_err *err) {
    int v = def;
    if (qc_gguf_get_bool(g, key, &v, err) < 0)
        return -1;
    *out = v;
    return 0;
}

static int convert(const qc_gguf *g, qc_tokb *b, qc_gguf_str **strs, float **scores_out, qc_err *err) {
    const char *P = qc_gguf_path(g);
    char sb[48];
    qc_gguf_str model;
    int rc = qc_gguf_get_str(g, "tokenizer.ggml.model", &model, err);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return qc_gguf_key_err(g, NULL, "tokenizer.ggml.model", err, "missing (the file carries no tokenizer)");
    int spm = is(&model, "llama");
    if (!spm && !is(&model, "gpt2"))
        return qc_gguf_key_err(g, qc_gguf_find_kv(g, "tokenizer.ggml.model"), NULL, err,
                               "unsupported tokenizer model '%s' (supported: llama, gpt2)", shown(&model, sb));
    b->kind = spm ? QRT_TOK_SPM_BPE : QRT_TOK_BYTE_BPE;

    const qc_gguf_kv *toks = NULL, *types = NULL, *scores = NULL, *merges = NULL;
    if (qc_gguf_get_arr(g, "tokenizer.ggml.tokens", QC_GGUF_STRING, &toks, err) < 0 ||
        qc_gguf_get_arr(g, "tokenizer.ggml.token_type", -1, &types, err) < 0 ||
        qc_gguf_get_arr(g, "tokenizer.ggml.scores", QC_GGUF_F32, &scores, err) < 0 ||
        qc_gguf_get_arr(g, "tokenizer.ggml.merges", QC_GGUF_STRING, &merges, err) < 0)
        return -1;
    if (!toks)
        return qc_gguf_key_err(g, NULL, "tokenizer.ggml.tokens", err, "missing");
    if (toks->n == 0 || toks->n > QC_TOKB_MAX_VOCAB)
        return qc_gguf_key_err(g, toks, NULL, err, "%llu tokens, expected 1 to %d", (unsigned long long)toks->n,
                               QC_TOKB_MAX_VOCAB);
    const qc_gguf_kv *per[2] = {types, scores};
    for (int k = 0; k < 2; k++)
        if (per[k] && per[k]->n != toks->n)
            return qc_gguf_key_err(g, per[k], NULL, err, "has %llu entries but tokenizer.ggml.tokens has %llu",
                                   (unsigned long long)per[k]->n, (unsigned long long)toks->n);
    if (types && (types->elem_type == QC_GGUF_STRING || types->elem_type == QC_GGUF_F32 ||
                  types->elem_type == QC_GGUF_F64 || types->elem_type == QC_GGUF_BOOL))
        return qc_gguf_key_err(g, types, NULL, err, "expected an array of integers");
    if (spm && !scores)
        return qc_gguf_key_err(g, NULL, "tokenizer.ggml.scores", err,
                               "missing (SentencePiece BPE merges by score)");
    if (!spm && !merges)
        return qc_gguf_key_err(g, NULL, "tokenizer.ggml.merges", err, "missing (byte-level BPE needs merges)");

    int32_t n = (int32_t)toks->n;
    if (qc_tokb_alloc(b, n) < 0 || !(*strs = malloc((size_t)n * sizeof **strs)) ||
        !(*scores_out = malloc((size_t)n * sizeof **scores_out)))
        return qc_err_set(err, "%s: out of memory", P);
    qc_gguf_arr_strings(toks, *strs);
    int have_bytes = 0;
    for (int32_t i = 0; i < n; i++) {
        const qc_gguf_str *s = &(*strs)[i];
        int64_t ty = types ? qc_gguf_arr_int(types, (uint64_t)i) : GT_NORMAL;
        float sc = scores ? (float)qc_gguf_arr_float(scores, (uint64_t)i) : 0.0f;
        if (!isfinite(sc))
            return qc_gguf_key_err(g, scores, NULL, err, "score of token %d is not finite", i);
        (*scores_out)[i] = sc;
        b->str[i] = (qc_tokb_str){s->s, s->len};
        uint8_t t;
        switch (ty) {
        case GT_UNDEFINED:
        case GT_NORMAL:
            t = spm && !types && qc_tokb_is_byte_token(s->s, s->len) ? QC_TOKT_BYTE : QC_TOKT_NORMAL;
            break;
        case GT_UNKNOWN:
        case GT_CONTROL: t = QC_TOKT_SPECIAL; break;
        case GT_USER: t = QC_TOKT_ADDED; break;
        case GT_UNUSED: t = QC_TOKT_UNUSED; break;
        case GT_BYTE:
            if (!spm)
                return qc_gguf_key_err(g, types, NULL, err, "token %d is a byte token, which byte-level BPE does not use",
                                       i);
            if (!qc_tokb_is_byte_token(s->s, s->len))
                return qc_gguf_key_err(g, types, NULL, err, "byte token %d '%s' is not spelled <0xHH>", i,
                                       shown(s, sb));
            t = QC_TOKT_BYTE;
            break;
        default:
            return qc_gguf_key_err(g, types, NULL, err, "token %d has unknown type %lld", i, (long long)ty);
        }
        if ((t == QC_TOKT_SPECIAL || t == QC_TOKT_ADDED) && s->len == 0)
            return qc_gguf_key_err(g, toks, NULL, err, "special or user-defined token %d is empty", i);
        b->type[i] = t;
        have_bytes |= t == QC_TOKT_BYTE;
    }
    if (qc_tokb_index(b) < 0)
        return qc_err_set(err, "%s: out of memory", P);

    /* Merges and pre-tokenizer. */
    int prefix, add_bos, add_eos, rmws = 0;
    if (flag(g, "tokenizer.ggml.add_space_prefix", spm, &prefix, err) ||
        flag(g, "tokenizer.ggml.add_bos_token", spm, &add_bos, err) ||
        flag(g, "tokenizer.ggml.add_eos_token", 0, &add_eos, err) ||
        flag(g, "tokenizer.ggml.remove_extra_whitespaces", 0, &rmws, err))
        return -1;
    if (rmws)
        return qc_gguf_key_err(g, qc_gguf_find_kv(g, "tokenizer.ggml.remove_extra_whitespaces"), NULL, err,
                               "whitespace normalization is not supported");
    if (spm) {
        if (synth_merges(b, *scores_out, P, err))
            return -1;
        b->pretok = QC_PRETOK_NONE;
        b->flags |= QC_TOKF_FUSE_UNK | (have_bytes ? QC_TOKF_BYTE_FALLBACK : 0u);
        if (prefix)
            b->flags |= QC_TOKF_PREFIX | QC_TOKF_STRIP_LEADING;
    } else {
        if (load_merges(g, b, merges, err))
            return -1;
        qc_gguf_str pre;
        if ((rc = qc_gguf_get_str(g, "tokenizer.ggml.pre", &pre, err)) < 0)
            return -1;
        if (rc == 0)
            return qc_gguf_key_err(g, NULL, "tokenizer.ggml.pre", err,
                                   "missing (byte-level BPE needs it to choose the split pattern)");
        if (is(&pre, "gpt2") || is(&pre, "gpt-2")) {
            b->pretok = QC_PRETOK_GPT2;
        } else if (is(&pre, "smollm")) {
            b->pretok = QC_PRETOK_GPT2;
            b->flags |= QC_TOKF_SPLIT_DIGITS;
        } else if (is(&pre, "llama-bpe") || is(&pre, "llama3") || is(&pre, "llama-v3")) {
            b->pretok = QC_PRETOK_LLAMA3;
        } else if (is(&pre, "qwen2") || is(&pre, "deepseek-r1-qwen")) {
            b->pretok = QC_PRETOK_QWEN2;
        } else {
            return qc_gguf_key_err(g, qc_gguf_find_kv(g, "tokenizer.ggml.pre"), NULL, err,
                                   "unsupported pre-tokenizer '%s' (supported: gpt2, smollm, llama-bpe, qwen2)",
                                   shown(&pre, sb));
        }
        if (prefix)
            b->flags |= QC_TOKF_PREFIX | QC_TOKF_PREFIX_IF_MISSING;
    }

    /* Specials. */
    int64_t unk = -1;
    if (get_token(g, "tokenizer.ggml.bos_token_id", n, &b->bos, err) ||
        get_token(g, "tokenizer.ggml.eos_token_id", n, &b->eos, err) ||
        get_token(g, "tokenizer.ggml.unknown_token_id", n, &b->unk, err))
        return -1;
    for (int32_t i = 0; b->unk < 0 && unk < 0 && types && i < n; i++)
        if (qc_gguf_arr_int(types, (uint64_t)i) == GT_UNKNOWN)
            unk = i;
    if (b->unk < 0)
        b->unk = (int32_t)unk;
    const int32_t ids[3] = {b->bos, b->eos, b->unk};
    static const char *const keys[3] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                                        "tokenizer.ggml.unknown_token_id"};
    for (int k = 0; k < 3; k++)
        if (ids[k] >= 0 && b->type[ids[k]] == QC_TOKT_UNUSED)
            return qc_gguf_key_err(g, qc_gguf_find_kv(g, keys[k]), keys[k], err, "token %d is an unused id", ids[k]);
    if (add_bos && b->bos >= 0)
        b->flags |= QC_TOKF_ADD_BOS;
    if (add_eos && b->eos >= 0)
        b->flags |= QC_TOKF_ADD_EOS;

    /* The chat template, when the file carries one (frontend/chat_template.c). */
    qc_gguf_str tmpl;
    if ((rc = qc_gguf_get_str(g, "tokenizer.chat_template", &tmpl, err)) < 0)
        return -1;
    if (rc == 1 && qc_chat_section(b, tmpl.s, tmpl.len) < 0)
        return qc_err_set(err, "%s: out of memory", P);
    return 0;
}

int qc_gguf_tokenizer(const qc_gguf *g, uint8_t **blob, size_t *size, qc_err *err) {
    *blob = NULL;
    *size = 0;
    qc_tokb b = {.bos = -1, .eos = -1, .unk = -1};
    qc_gguf_str *strs = NULL;
    float *scores = NULL;
    int rc = convert(g, &b, &strs, &scores, err);
    if (rc == 0)
        rc = qc_tokb_write(&b, qc_gguf_path(g), err, blob, size);
    qc_tokb_free(&b);
    free(strs);
    free(scores);
    return rc;
}
