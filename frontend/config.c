/*
 * frontend/config.c — config.json of the Llama family into qc_config.
 *
 * Hugging Face configs of llama, mistral, qwen2 and smollm describe the same
 * network (pre-norm RMSNorm, rotary attention with grouped KV heads, SwiGLU
 * MLP), differing only in defaults: qwen2 has q/k/v biases, mistral and
 * qwen2 may use a sliding window. Everything qcc cannot compile exactly
 * (other activations, RoPE scaling, pre-quantized weights, MLP biases) is
 * refused here with the key that asks for it, rather than compiled into a
 * model that silently computes something else. Errors are one line:
 *   "PATH: key 'NAME': what (offset N)"
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc/frontend.h"
#include "qc/json.h"
#include "qrt/abi.h"

#define CONFIG_MAX_BYTES (16u << 20)

typedef struct cfgp {
    const char *path;
    const qc_json *root;
    qc_err *err;
} cfgp;

static int key_err(const cfgp *c, const char *key, const qc_json *v, const char *what) {
    return qc_err_set(c->err, "%s: key '%s': %s (offset %zu)", c->path, key, what,
                      v ? v->offset : c->root->offset);
}

/* A member, treating JSON null as absent. */
static const qc_json *member(const cfgp *c, const char *key) {
    const qc_json *v = qc_json_get(c->root, key);
    return v && v->type == QC_JSON_NULL ? NULL : v;
}

/* Positive int32 under `key`; def < 0 means required. */
static int get_pos(const cfgp *c, const char *key, int64_t def, int32_t *out) {
    const qc_json *v = member(c, key);
    if (!v) {
        if (def < 0)
            return key_err(c, key, NULL, "missing");
        *out = (int32_t)def;
        return 0;
    }
    if (v->type != QC_JSON_NUMBER || !v->is_int || v->i64 <= 0 || v->i64 > INT32_MAX)
        return key_err(c, key, v, "must be a positive integer");
    *out = (int32_t)v->i64;
    return 0;
}

/* Positive finite number under `key`, or def if absent. */
static int get_posnum(const cfgp *c, const char *key, double def, float *out) {
    const qc_json *v = member(c, key);
    if (!v) {
        *out = (float)def;
        return 0;
    }
    if (v->type != QC_JSON_NUMBER || !((float)v->num > 0) || !isfinite((float)v->num))
        return key_err(c, key, v, "must be a positive number");
    *out = (float)v->num;
    return 0;
}

static int get_bool(const cfgp *c, const char *key, int def, int32_t *out) {
    const qc_json *v = member(c, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (v->type != QC_JSON_TRUE && v->type != QC_JSON_FALSE)
        return key_err(c, key, v, "must be true or false");
    *out = v->type == QC_JSON_TRUE;
    return 0;
}

/* Token id: an int, or an array whose first element is used; -1 if absent. */
static int get_token(const cfgp *c, const char *key, int32_t vocab, int32_t *out) {
    const qc_json *v = member(c, key);
    *out = -1;
    if (v && v->type == QC_JSON_ARRAY) {
        if (v->n == 0)
            return 0;
        v = &v->items[0];
    }
    if (!v)
        return 0;
    if (v->type != QC_JSON_NUMBER || !v->is_int || v->i64 < 0)
        return key_err(c, key, v, "must be a non-negative integer token id (or a list of them)");
    if (v->i64 >= vocab) {
        char what[96];
        snprintf(what, sizeof what, "token id %lld is not below vocab_size (%d)", (long long)v->i64, vocab);
        return key_err(c, key, v, what);
    }
    *out = (int32_t)v->i64;
    return 0;
}

static int read_file(const char *path, char **out, size_t *len, qc_err *err) {
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return qc_err_set(err, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf)
            break;
        if (n == cap) {
            if (cap >= CONFIG_MAX_BYTES) {
                free(buf);
                fclose(fp);
                return qc_err_set(err, "%s: larger than %u bytes, not a config.json", path, CONFIG_MAX_BYTES);
            }
            char *q = realloc(buf, cap * 2);
            if (!q) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = q;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(fp);
    fclose(fp);
    if (!buf)
        return qc_err_set(err, "%s: out of memory", path);
    if (bad) {
        free(buf);
        return qc_err_set(err, "%s: read error", path);
    }
    *out = buf;
    *len = n;
    return 0;
}

/* ---- gpt2 / opt ------------------------------------------------------------- */

/* A string member (NULL when absent); -1 when present but not a string. */
static int get_str(const cfgp *c, const char *key, const char **out) {
    const qc_json *v = member(c, key);
    *out = NULL;
    if (v && v->type != QC_JSON_STRING)
        return key_err(c, key, v, "must be a string");
    *out = v ? v->str : NULL;
    return 0;
}

/* activation_function into QC_ACT_* (def when absent). */
static int get_act(const cfgp *c, const char *def, int32_t *out) {
    const char *s;
    if (get_str(c, "activation_function", &s))
        return -1;
    if (!s)
        s = def;
    if (!strcmp(s, "gelu_new") || !strcmp(s, "gelu_pytorch_tanh") || !strcmp(s, "gelu_fast"))
        *out = QC_ACT_GELU_TANH;
    else if (!strcmp(s, "gelu"))
        *out = QC_ACT_GELU;
    else if (!strcmp(s, "relu"))
        *out = QC_ACT_RELU;
    else {
        char what[128];
        snprintf(what, sizeof what, "unsupported activation '%.40s' (supported: gelu_new, gelu, relu)", s);
        for (char *q = what; *q; q++)
            if ((unsigned char)*q < 0x20)
                *q = '?';
        return key_err(c, "activation_function", member(c, "activation_function"), what);
    }
    return 0;
}

/* A boolean that qcc only supports at `ok` (def when absent). */
static int need_bool(const cfgp *c, const char *key, int def, int ok, const char *what) {
    int32_t v = def;
    if (get_bool(c, key, def, &v))
        return -1;
    return v == ok ? 0 : key_err(c, key, member(c, key), what);
}

static int heads_split(qc_config *cfg, const cfgp *c, const char *dim_key) {
    if (cfg->dim % cfg->n_heads != 0) {
        char what[96];
        snprintf(what, sizeof what, "%d is not divisible by the number of heads (%d)", cfg->dim, cfg->n_heads);
        return key_err(c, dim_key, member(c, dim_key), what);
    }
    cfg->head_dim = cfg->dim / cfg->n_heads;
    cfg->n_kv_heads = cfg->n_heads;
    return 0;
}

/* GPT-2: LayerNorm (with bias) before attention and MLP, GELU (tanh), learned
 * absolute positions, biases everywhere, tied head. */
static int load_gpt2(qc_config *cfg, const cfgp *c) {
    snprintf(cfg->model_type, sizeof cfg->model_type, "gpt2");
    cfg->arch = QRT_ARCH_GPT2;
    if (get_pos(c, "n_embd", -1, &cfg->dim) || get_pos(c, "n_layer", -1, &cfg->n_layers) ||
        get_pos(c, "n_head", -1, &cfg->n_heads) || get_pos(c, "vocab_size", -1, &cfg->vocab) ||
        get_pos(c, "n_positions", 1024, &cfg->max_ctx) || heads_split(cfg, c, "n_embd"))
        return -1;
    if (cfg->dim > INT32_MAX / 4)
        return key_err(c, "n_embd", member(c, "n_embd"), "too large");
    if (get_pos(c, "n_inner", 4 * (int64_t)cfg->dim, &cfg->ffn_dim) ||
        get_posnum(c, "layer_norm_epsilon", 1e-5, &cfg->norm_eps) || get_act(c, "gelu_new", &cfg->act) ||
        get_bool(c, "tie_word_embeddings", 1, &cfg->tie_embeddings) ||
        get_token(c, "bos_token_id", cfg->vocab, &cfg->bos) || get_token(c, "eos_token_id", cfg->vocab, &cfg->eos) ||
        need_bool(c, "scale_attn_weights", 1, 1, "unscaled attention is not supported") ||
        need_bool(c, "scale_attn_by_inverse_layer_idx", 0, 0, "per-layer attention scaling is not supported") ||
        need_bool(c, "add_cross_attention", 0, 0, "cross-attention is not supported"))
        return -1;
    cfg->n_pos = cfg->max_ctx;
    cfg->pos_offset = 0;
    cfg->attn_bias = 1;
    return 0;
}

/* OPT: as GPT-2 with nn.Linear weights, ReLU, positions offset by 2, and
 * optionally LayerNorm after each residual add (do_layer_norm_before false). */
static int load_opt(qc_config *cfg, const cfgp *c) {
    snprintf(cfg->model_type, sizeof cfg->model_type, "opt");
    cfg->arch = QRT_ARCH_OPT;
    int32_t proj = 0, pre = 1;
    if (get_pos(c, "hidden_size", -1, &cfg->dim) || get_pos(c, "num_hidden_layers", -1, &cfg->n_layers) ||
        get_pos(c, "num_attention_heads", -1, &cfg->n_heads) || get_pos(c, "ffn_dim", -1, &cfg->ffn_dim) ||
        get_pos(c, "vocab_size", -1, &cfg->vocab) || get_pos(c, "max_position_embeddings", 2048, &cfg->max_ctx) ||
        heads_split(cfg, c, "hidden_size") || get_pos(c, "word_embed_proj_dim", cfg->dim, &proj) ||
        get_act(c, "relu", &cfg->act) || get_bool(c, "tie_word_embeddings", 1, &cfg->tie_embeddings) ||
        get_bool(c, "do_layer_norm_before", 1, &pre) || get_bool(c, "enable_bias", 1, &cfg->attn_bias) ||
        get_token(c, "bos_token_id", cfg->vocab, &cfg->bos) || get_token(c, "eos_token_id", cfg->vocab, &cfg->eos) ||
        need_bool(c, "layer_norm_elementwise_affine", 1, 1, "LayerNorm without weights is not supported") ||
        need_bool(c, "_remove_final_layer_norm", 0, 0, "not supported"))
        return -1;
    if (proj != cfg->dim)
        return key_err(c, "word_embed_proj_dim", member(c, "word_embed_proj_dim"),
                       "differs from hidden_size (project_in / project_out are not supported)");
    if (cfg->max_ctx > INT32_MAX - 2)
        return key_err(c, "max_position_embeddings", member(c, "max_position_embeddings"), "too large");
    cfg->post_norm = !pre;
    cfg->norm_eps = 1e-5f; /* torch.nn.LayerNorm's default; OPT's config has no key for it */
    cfg->n_pos = cfg->max_ctx + 2;
    cfg->pos_offset = 2;
    return 0;
}

static int load(qc_config *cfg, const cfgp *c) {
    char what[160];

    const qc_json *mt = member(c, "model_type");
    if (!mt)
        return key_err(c, "model_type", NULL, "missing");
    if (mt->type != QC_JSON_STRING)
        return key_err(c, "model_type", mt, "must be a string");
    if (strcmp(mt->str, "gpt2") == 0)
        return load_gpt2(cfg, c);
    if (strcmp(mt->str, "opt") == 0)
        return load_opt(cfg, c);
    int qwen2 = strcmp(mt->str, "qwen2") == 0, mistral = strcmp(mt->str, "mistral") == 0;
    if (!qwen2 && !mistral && strcmp(mt->str, "llama") != 0 && strcmp(mt->str, "smollm") != 0) {
        char shown[40];
        snprintf(shown, sizeof shown, "%s", mt->str);
        for (char *s = shown; *s; s++)
            if ((unsigned char)*s < 0x20)
                *s = '?';
        snprintf(what, sizeof what, "unsupported architecture '%s' (supported: llama, mistral, qwen2, smollm, gpt2, opt)",
                 shown);
        return key_err(c, "model_type", mt, what);
    }
    snprintf(cfg->model_type, sizeof cfg->model_type, "%s", mt->str);
    cfg->arch = QRT_ARCH_LLAMA;

    if (get_pos(c, "hidden_size", -1, &cfg->dim) || get_pos(c, "intermediate_size", -1, &cfg->ffn_dim) ||
        get_pos(c, "num_hidden_layers", -1, &cfg->n_layers) ||
        get_pos(c, "num_attention_heads", -1, &cfg->n_heads) ||
        get_pos(c, "num_key_value_heads", cfg->n_heads, &cfg->n_kv_heads) ||
        get_pos(c, "vocab_size", -1, &cfg->vocab) ||
        get_pos(c, "max_position_embeddings", 2048, &cfg->max_ctx))
        return -1;

    const qc_json *hd = member(c, "head_dim");
    if (hd) {
        if (get_pos(c, "head_dim", -1, &cfg->head_dim))
            return -1;
    } else {
        if (cfg->dim % cfg->n_heads != 0) {
            snprintf(what, sizeof what, "%d is not divisible by num_attention_heads (%d)", cfg->dim,
                     cfg->n_heads);
            return key_err(c, "hidden_size", member(c, "hidden_size"), what);
        }
        cfg->head_dim = cfg->dim / cfg->n_heads;
    }
    if ((int64_t)cfg->n_heads * cfg->head_dim > INT32_MAX)
        return key_err(c, "head_dim", hd, "num_attention_heads * head_dim is too large");
    if (cfg->head_dim % 2 != 0) {
        snprintf(what, sizeof what, "head dimension %d must be even for rotary embeddings", cfg->head_dim);
        return key_err(c, hd ? "head_dim" : "hidden_size", hd ? hd : member(c, "hidden_size"), what);
    }
    if (cfg->n_heads % cfg->n_kv_heads != 0) {
        snprintf(what, sizeof what, "%d does not divide num_attention_heads (%d)", cfg->n_kv_heads,
                 cfg->n_heads);
        return key_err(c, "num_key_value_heads", member(c, "num_key_value_heads"), what);
    }

    if (get_posnum(c, "rms_norm_eps", 1e-6, &cfg->norm_eps) ||
        get_posnum(c, "rope_theta", 10000.0, &cfg->rope_theta) ||
        get_bool(c, "tie_word_embeddings", 0, &cfg->tie_embeddings) ||
        get_bool(c, "attention_bias", qwen2, &cfg->attn_bias) ||
        get_token(c, "bos_token_id", cfg->vocab, &cfg->bos) ||
        get_token(c, "eos_token_id", cfg->vocab, &cfg->eos))
        return -1;

    /* What the Llama graph cannot express. */
    const qc_json *act = member(c, "hidden_act");
    if (act && act->type != QC_JSON_STRING)
        return key_err(c, "hidden_act", act, "must be a string");
    if (act && strcmp(act->str, "silu") != 0 && strcmp(act->str, "swish") != 0) {
        char shown[40];
        snprintf(shown, sizeof shown, "%s", act->str);
        for (char *s = shown; *s; s++)
            if ((unsigned char)*s < 0x20)
                *s = '?';
        snprintf(what, sizeof what, "unsupported activation '%s' (only silu)", shown);
        return key_err(c, "hidden_act", act, what);
    }
    const qc_json *rs = member(c, "rope_scaling");
    if (rs)
        return key_err(c, "rope_scaling", rs, "not supported (only plain RoPE; it must be null or absent)");
    const qc_json *qz = member(c, "quantization_config");
    if (qz)
        return key_err(c, "quantization_config", qz, "pre-quantized checkpoints are not supported");
    int32_t mlp_bias = 0;
    if (get_bool(c, "mlp_bias", 0, &mlp_bias))
        return -1;
    if (mlp_bias)
        return key_err(c, "mlp_bias", member(c, "mlp_bias"), "MLP biases are not supported");

    /* Sliding-window attention equals full attention as long as the context
     * stays within the window, so the usable context is capped to it. */
    int32_t use_sw = 1;
    if (qwen2 && get_bool(c, "use_sliding_window", 0, &use_sw))
        return -1;
    const qc_json *sw = member(c, "sliding_window");
    if (sw && use_sw && (mistral || qwen2)) {
        int32_t win;
        if (get_pos(c, "sliding_window", -1, &win))
            return -1;
        if (win < cfg->max_ctx)
            cfg->max_ctx = win;
    }
    return 0;
}

int qc_config_load(qc_config *cfg, const char *path, qc_err *err) {
    memset(cfg, 0, sizeof *cfg);
    cfg->bos = cfg->eos = -1;
    char *text = NULL;
    size_t len = 0;
    if (read_file(path, &text, &len, err))
        return -1;
    qc_json *root = NULL;
    int rc = qc_json_parse(&root, text, len, path, err);
    free(text);
    if (rc)
        return -1;
    if (root->type != QC_JSON_OBJECT) {
        size_t off = root->offset;
        qc_json_free(root);
        return qc_err_set(err, "%s: offset %zu: config is not a JSON object", path, off);
    }
    cfgp c = {path, root, err};
    rc = load(cfg, &c);
    qc_json_free(root);
    if (rc) {
        memset(cfg, 0, sizeof *cfg);
        cfg->bos = cfg->eos = -1;
    }
    return rc;
}
