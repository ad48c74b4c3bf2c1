/*
 * frontend/tokenizer_json.c — tokenizer.json (Hugging Face `tokenizers`)
 * into the qrt tokenizer blob every executable embeds.
 *
 * The blob format is documented at the top of runtime/tokenizer.c (and in
 * docs/tokenizer.md); this file only decides what goes into it:
 *   - the kind: SentencePiece-style BPE (normalizer Prepend "▁" + Replace
 *     " " -> "▁", or a Metaspace pre-tokenizer) or GPT-2 byte-level BPE
 *     (a ByteLevel pre-tokenizer, possibly after Digits or a Split with the
 *     Llama-3 / Qwen2 pattern);
 *   - model.vocab, model.merges ("a b" strings or ["a", "b"] pairs; every
 *     side and the concatenation must be in the vocabulary, as HF demands),
 *     added_tokens (special -> control tokens, others -> literal tokens);
 *   - bos / eos / add_bos from tokenizer_config.json beside the file when it
 *     says, else from the post_processor template, else from common names.
 * Anything the runtime would not reproduce faithfully (another model type, a
 * normalizer or pre-tokenizer we do not implement) is refused with one line
 * naming the file and the JSON key, never approximated silently.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc/frontend.h"
#include "qc/json.h"
#include "qrt/tokenizer.h"
#include "tokblob.h"

static const char META[] = "\xE2\x96\x81"; /* U+2581, SentencePiece's space */

/* The Split regexes of Llama-3 and Qwen2 tokenizer.json files, verbatim. */
static const char PAT_LLAMA3[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char PAT_QWEN2[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char PAT_GPT2[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

typedef struct conv {
    const char *file; /* labels errors */
    qc_err *err;
    int spm_hint, byte_hint; /* evidence for each kind */
    qc_tokb b;               /* what goes into the blob; strings borrowed from the JSON tree */
} conv;

/* ---- small helpers ------------------------------------------------------- */

static int read_file(const char *path, char **out, size_t *len, qc_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return qc_err_set(err, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            size_t c = cap ? 2 * cap : 1 << 16;
            char *q = realloc(buf, c);
            if (!q) {
                free(buf);
                fclose(f);
                return qc_err_set(err, "%s: out of memory", path);
            }
            buf = q, cap = c;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return qc_err_set(err, "%s: read error", path);
    }
    *out = buf;
    *len = n;
    return 0;
}

static int is_str(const qc_json *v, const char *s) {
    return v && v->type == QC_JSON_STRING && strlen(s) == v->len && memcmp(v->str, s, v->len) == 0;
}

/* A boolean member: 1 / 0, `def` when absent or null, -1 when another type. */
static int get_bool(const qc_json *obj, const char *key, int def) {
    const qc_json *v = qc_json_get(obj, key);
    if (!v || v->type == QC_JSON_NULL)
        return def;
    if (v->type == QC_JSON_TRUE)
        return 1;
    if (v->type == QC_JSON_FALSE)
        return 0;
    return -1;
}

static const char *type_of(const qc_json *v) { return v ? qc_json_get_str(v, "type") : NULL; }

/* The id of string s[0..n) (first id holding it), or -1. */
static int32_t find(const conv *c, const char *s, size_t n) { return qc_tokb_find(&c->b, s, n); }

/* ---- what kind of tokenizer ---------------------------------------------- */

static int unsupported(conv *c, const char *key, const char *what, const char *name) {
    return qc_err_set(c->err, "%s: key '%s': unsupported %s '%s'", c->file, key, what, name ? name : "?");
}

static int normalizer_one(conv *c, const qc_json *n, const char *key) {
    const char *ty = type_of(n);
    if (ty && strcmp(ty, "Prepend") == 0) {
        if (!is_str(qc_json_get(n, "prepend"), META))
            return qc_err_set(c->err, "%s: key '%s.prepend': only \"\\u2581\" is supported", c->file, key);
        c->b.flags |= QC_TOKF_PREFIX;
        c->spm_hint = 1;
        return 0;
    }
    if (ty && strcmp(ty, "Replace") == 0) {
        const qc_json *pat = qc_json_get(n, "pattern");
        if (!is_str(qc_json_get(pat, "String"), " ") || !is_str(qc_json_get(n, "content"), META))
            return qc_err_set(c->err, "%s: key '%s': only Replace \" \" -> \"\\u2581\" is supported", c->file,
                              key);
        c->spm_hint = 1;
        return 0;
    }
    /* NFC: the runtime assumes its input is already NFC (docs/tokenizer.md). */
    if (ty && strcmp(ty, "NFC") == 0)
        return 0;
    return unsupported(c, key, "normalizer", ty);
}

static int detect_normalizer(conv *c, const qc_json *n) {
    if (!n || n->type == QC_JSON_NULL)
        return 0;
    const char *ty = type_of(n);
    if (ty && strcmp(ty, "Sequence") == 0) {
        const qc_json *list = qc_json_get(n, "normalizers");
        if (!list || list->type != QC_JSON_ARRAY)
            return qc_err_set(c->err, "%s: key 'normalizer.normalizers': expected an array", c->file);
        for (size_t i = 0; i < list->n; i++) {
            char key[64];
            snprintf(key, sizeof key, "normalizer.normalizers[%zu]", i);
            if (normalizer_one(c, &list->items[i], key) < 0)
                return -1;
        }
        return 0;
    }
    return normalizer_one(c, n, "normalizer");
}

static int pretok_one(conv *c, const qc_json *p, const char *key) {
    char k2[96];
    const char *ty = type_of(p);
    if (ty && strcmp(ty, "ByteLevel") == 0) {
        int prefix = get_bool(p, "add_prefix_space", 1), regex = get_bool(p, "use_regex", 1);
        if (prefix < 0 || regex < 0)
            return qc_err_set(c->err, "%s: key '%s': add_prefix_space / use_regex must be booleans", c->file, key);
        if (prefix)
            c->b.flags |= QC_TOKF_PREFIX | QC_TOKF_PREFIX_IF_MISSING;
        if (regex) {
            if (c->b.pretok != QC_PRETOK_NONE)
                return qc_err_set(c->err, "%s: key '%s': two split patterns", c->file, key);
            c->b.pretok = QC_PRETOK_GPT2;
        }
        c->byte_hint = 1;
        return 0;
    }
    if (ty && strcmp(ty, "Digits") == 0) {
        if (get_bool(p, "individual_digits", 0) != 1)
            return qc_err_set(c->err, "%s: key '%s.individual_digits': only true is supported", c->file, key);
        if (c->b.pretok != QC_PRETOK_NONE)
            return qc_err_set(c->err, "%s: key '%s': Digits after a split pattern is not supported", c->file, key);
        c->b.flags |= QC_TOKF_SPLIT_DIGITS;
        return 0;
    }
    if (ty && strcmp(ty, "Split") == 0) {
        const qc_json *pat = qc_json_get(qc_json_get(p, "pattern"), "Regex");
        const char *beh = qc_json_get_str(p, "behavior");
        snprintf(k2, sizeof k2, "%s.pattern.Regex", key);
        if (!pat || pat->type != QC_JSON_STRING)
            return qc_err_set(c->err, "%s: key '%s': expected a regex string", c->file, k2);
        if (!beh || strcmp(beh, "Isolated") != 0 || get_bool(p, "invert", 0) != 0)
            return qc_err_set(c->err, "%s: key '%s': only behavior Isolated, invert false is supported", c->file,
                              key);
        if (c->b.pretok != QC_PRETOK_NONE)
            return qc_err_set(c->err, "%s: key '%s': two split patterns", c->file, key);
        if (strcmp(pat->str, PAT_LLAMA3) == 0)
            c->b.pretok = QC_PRETOK_LLAMA3;
        else if (strcmp(pat->str, PAT_QWEN2) == 0)
            c->b.pretok = QC_PRETOK_QWEN2;
        else if (strcmp(pat->str, PAT_GPT2) == 0)
            c->b.pretok = QC_PRETOK_GPT2;
        else
            return qc_err_set(c->err, "%s: key '%s': unsupported split pattern (only the GPT-2, Llama-3 and "
                              "Qwen2 patterns are implemented)", c->file, k2);
        return 0;
    }
    if (ty && strcmp(ty, "Metaspace") == 0) {
        if (!is_str(qc_json_get(p, "replacement"), META))
            return qc_err_set(c->err, "%s: key '%s.replacement': only \"\\u2581\" is supported", c->file, key);
        const char *scheme = qc_json_get_str(p, "prepend_scheme");
        int prefix = get_bool(p, "add_prefix_space", 1), split = get_bool(p, "split", 1);
        if (prefix < 0 || split < 0)
            return qc_err_set(c->err, "%s: key '%s': add_prefix_space / split must be booleans", c->file, key);
        if (scheme && strcmp(scheme, "always") == 0)
            prefix = 1;
        else if (scheme && strcmp(scheme, "first") == 0)
            prefix = 1, c->b.flags |= QC_TOKF_PREFIX_FIRST;
        else if (scheme && strcmp(scheme, "never") == 0)
            prefix = 0;
        else if (scheme)
            return unsupported(c, key, "prepend_scheme", scheme);
        if (prefix)
            c->b.flags |= QC_TOKF_PREFIX | QC_TOKF_PREFIX_IF_MISSING;
        if (split)
            c->b.flags |= QC_TOKF_SPM_SPLIT;
        c->spm_hint = 1;
        return 0;
    }
    return unsupported(c, key, "pre_tokenizer", ty);
}

static int detect_pretok(conv *c, const qc_json *p) {
    if (!p || p->type == QC_JSON_NULL)
        return 0;
    const char *ty = type_of(p);
    if (ty && strcmp(ty, "Sequence") == 0) {
        const qc_json *list = qc_json_get(p, "pretokenizers");
        if (!list || list->type != QC_JSON_ARRAY)
            return qc_err_set(c->err, "%s: key 'pre_tokenizer.pretokenizers': expected an array", c->file);
        for (size_t i = 0; i < list->n; i++) {
            char key[64];
            snprintf(key, sizeof key, "pre_tokenizer.pretokenizers[%zu]", i);
            if (pretok_one(c, &list->items[i], key) < 0)
                return -1;
        }
        return 0;
    }
    return pretok_one(c, p, "pre_tokenizer");
}

/* Only one thing of the decoder matters: whether it strips the space the
 * encoder prepended (Strip start >= 1, or a prepending Metaspace). */
static void detect_decoder(conv *c, const qc_json *d) {
    const char *ty = type_of(d);
    if (!ty)
        return;
    if (strcmp(ty, "Sequence") == 0) {
        const qc_json *list = qc_json_get(d, "decoders");
        for (size_t i = 0; list && list->type == QC_JSON_ARRAY && i < list->n; i++)
            detect_decoder(c, &list->items[i]);
    } else if (strcmp(ty, "Strip") == 0) {
        int64_t start = 0;
        if (is_str(qc_json_get(d, "content"), " ") && qc_json_get_int(d, "start", &start) == 0 && start >= 1)
            c->b.flags |= QC_TOKF_STRIP_LEADING;
    } else if (strcmp(ty, "Metaspace") == 0) {
        const char *scheme = qc_json_get_str(d, "prepend_scheme");
        int prefix = get_bool(d, "add_prefix_space", 1);
        if (scheme ? strcmp(scheme, "never") != 0 : prefix == 1)
            c->b.flags |= QC_TOKF_STRIP_LEADING;
    } else if (strcmp(ty, "ByteLevel") == 0) {
        c->byte_hint = 1;
    }
}

/* ---- vocabulary and merges ----------------------------------------------- */

static int load_vocab(conv *c, const qc_json *model, const qc_json *added) {
    const qc_json *vocab = qc_json_get(model, "vocab");
    if (!vocab || vocab->type != QC_JSON_OBJECT)
        return qc_err_set(c->err, "%s: key 'model.vocab': missing or not an object", c->file);
    if (added && added->type != QC_JSON_ARRAY && added->type != QC_JSON_NULL)
        return qc_err_set(c->err, "%s: key 'added_tokens': expected an array", c->file);
    size_t n_added = added && added->type == QC_JSON_ARRAY ? added->n : 0;
    int64_t max_id = -1;
    for (size_t i = 0; i < vocab->n; i++) {
        const qc_json *v = &vocab->items[i];
        if (v->type != QC_JSON_NUMBER || !v->is_int || v->i64 < 0 || v->i64 >= QC_TOKB_MAX_VOCAB)
            return qc_err_set(c->err, "%s: key 'model.vocab.%s': id is not an integer in [0, %d)", c->file,
                              vocab->keys[i], QC_TOKB_MAX_VOCAB);
        if (v->i64 > max_id)
            max_id = v->i64;
    }
    for (size_t i = 0; i < n_added; i++) {
        int64_t id;
        if (qc_json_get_int(&added->items[i], "id", &id) < 0 || id < 0 || id >= QC_TOKB_MAX_VOCAB)
            return qc_err_set(c->err, "%s: key 'added_tokens[%zu].id': missing or not an integer in [0, %d)",
                              c->file, i, QC_TOKB_MAX_VOCAB);
        if (id > max_id)
            max_id = id;
    }
    if (max_id < 0)
        return qc_err_set(c->err, "%s: key 'model.vocab': empty vocabulary", c->file);
    if (qc_tokb_alloc(&c->b, (int32_t)max_id + 1) < 0)
        return qc_err_set(c->err, "%s: out of memory", c->file);
    for (size_t i = 0; i < vocab->n; i++) {
        int32_t id = (int32_t)vocab->items[i].i64;
        if (c->b.type[id] != QC_TOKT_UNUSED)
            return qc_err_set(c->err, "%s: key 'model.vocab.%s': id %d is also used by '%s'", c->file,
                              vocab->keys[i], id, c->b.str[id].s);
        c->b.str[id] = (qc_tokb_str){vocab->keys[i], vocab->key_lens[i]};
        c->b.type[id] = c->spm_hint && qc_tokb_is_byte_token(vocab->keys[i], vocab->key_lens[i]) ? QC_TOKT_BYTE
                                                                                                 : QC_TOKT_NORMAL;
    }
    for (size_t i = 0; i < n_added; i++) {
        const qc_json *a = &added->items[i];
        const qc_json *content = qc_json_get(a, "content");
        int special = get_bool(a, "special", 0);
        if (!content || content->type != QC_JSON_STRING || content->len == 0)
            return qc_err_set(c->err, "%s: key 'added_tokens[%zu].content': missing or not a non-empty string",
                              c->file, i);
        if (special < 0)
            return qc_err_set(c->err, "%s: key 'added_tokens[%zu].special': not a boolean", c->file, i);
        int32_t id = (int32_t)qc_json_get(a, "id")->i64;
        c->b.str[id] = (qc_tokb_str){content->str, content->len};
        c->b.type[id] = special ? QC_TOKT_SPECIAL : QC_TOKT_ADDED;
    }
    if (qc_tokb_index(&c->b) < 0)
        return qc_err_set(c->err, "%s: out of memory", c->file);
    return 0;
}

/* One side of a merge: its id, or an error naming the key. */
static int merge_side(conv *c, size_t i, const char *s, size_t n, int32_t *id) {
    *id = find(c, s, n);
    if (*id < 0)
        return qc_err_set(c->err, "%s: key 'model.merges[%zu]': token '%.*s' not in vocab", c->file, i,
                          (int)(n > 200 ? 200 : n), s);
    return 0;
}

static int load_merges(conv *c, const qc_json *model) {
    const qc_json *m = qc_json_get(model, "merges");
    if (!m || m->type == QC_JSON_NULL)
        return 0;
    if (m->type != QC_JSON_ARRAY)
        return qc_err_set(c->err, "%s: key 'model.merges': expected an array", c->file);
    if (m->n > UINT32_MAX / 3)
        return qc_err_set(c->err, "%s: key 'model.merges': too many merges", c->file);
    c->b.merges = malloc((m->n ? m->n : 1) * 3 * sizeof *c->b.merges);
    if (!c->b.merges)
        return qc_err_set(c->err, "%s: out of memory", c->file);
    size_t cat_cap = 64; /* never NULL: an empty side still gets a valid pointer */
    char *cat = malloc(cat_cap);
    if (!cat)
        return qc_err_set(c->err, "%s: out of memory", c->file);
    for (size_t i = 0; i < m->n; i++) {
        const qc_json *e = &m->items[i];
        const char *a, *b;
        size_t na, nb;
        if (e->type == QC_JSON_STRING) { /* "a b": exactly one space (as HF) */
            const char *sp = memchr(e->str, ' ', e->len);
            if (!sp || memchr(sp + 1, ' ', e->len - (size_t)(sp + 1 - e->str)))
                return free(cat), qc_err_set(c->err, "%s: key 'model.merges[%zu]': expected \"left right\"",
                                             c->file, i);
            a = e->str, na = (size_t)(sp - e->str);
            b = sp + 1, nb = e->len - na - 1;
        } else if (e->type == QC_JSON_ARRAY && e->n == 2 && e->items[0].type == QC_JSON_STRING &&
                   e->items[1].type == QC_JSON_STRING) {
            a = e->items[0].str, na = e->items[0].len;
            b = e->items[1].str, nb = e->items[1].len;
        } else {
            free(cat);
            return qc_err_set(c->err, "%s: key 'model.merges[%zu]': expected \"left right\" or [left, right]",
                              c->file, i);
        }
        int32_t l, r, res;
        if (merge_side(c, i, a, na, &l) < 0 || merge_side(c, i, b, nb, &r) < 0)
            return free(cat), -1;
        if (na + nb > cat_cap) {
            char *q = realloc(cat, na + nb);
            if (!q)
                return free(cat), qc_err_set(c->err, "%s: out of memory", c->file);
            cat = q, cat_cap = na + nb;
        }
        memcpy(cat, a, na);
        memcpy(cat + na, b, nb);
        if (merge_side(c, i, cat, na + nb, &res) < 0)
            return free(cat), -1;
        c->b.merges[3 * i] = (uint32_t)l;
        c->b.merges[3 * i + 1] = (uint32_t)r;
        c->b.merges[3 * i + 2] = (uint32_t)res;
    }
    free(cat);
    c->b.n_merges = m->n;
    return 0;
}

/* ---- bos / eos ----------------------------------------------------------- */

/* A token named by tokenizer_config.json ("<s>" or {"content": "<s>"}):
 * 1 and its id, 0 when absent / null, -1 on error. */
static int config_token(conv *c, const qc_json *cfg, const char *cfg_file, const char *key, int32_t *id) {
    const qc_json *v = qc_json_get(cfg, key);
    if (!v || v->type == QC_JSON_NULL)
        return 0;
    if (v->type == QC_JSON_OBJECT)
        v = qc_json_get(v, "content");
    if (!v || v->type != QC_JSON_STRING)
        return qc_err_set(c->err, "%s: key '%s': expected a token string", cfg_file, key);
    *id = find(c, v->str, v->len);
    if (*id < 0)
        return qc_err_set(c->err, "%s: key '%s': token '%s' not in the vocabulary of %s", cfg_file, key, v->str,
                          c->file);
    return 1;
}

/* TemplateProcessing's "single" template: the special tokens before and
 * after the sequence ($A). Looks inside a Sequence post-processor too. */
static void template_ends(conv *c, const qc_json *pp, int32_t *first, int32_t *last) {
    const char *ty = type_of(pp);
    if (ty && strcmp(ty, "Sequence") == 0) {
        const qc_json *list = qc_json_get(pp, "processors");
        for (size_t i = 0; list && list->type == QC_JSON_ARRAY && i < list->n; i++)
            template_ends(c, &list->items[i], first, last);
        return;
    }
    if (!ty || strcmp(ty, "TemplateProcessing") != 0)
        return;
    const qc_json *single = qc_json_get(pp, "single");
    if (!single || single->type != QC_JSON_ARRAY)
        return;
    int seen_seq = 0;
    for (size_t i = 0; i < single->n; i++) {
        const qc_json *it = &single->items[i];
        const qc_json *sp = qc_json_get(qc_json_get(it, "SpecialToken"), "id");
        if (qc_json_get(it, "Sequence")) {
            seen_seq = 1;
        } else if (sp && sp->type == QC_JSON_STRING) {
            int32_t id = find(c, sp->str, sp->len);
            if (id >= 0 && !seen_seq && i == 0)
                *first = id;
            if (id >= 0 && seen_seq && i + 1 == single->n)
                *last = id;
        }
    }
}

static int32_t common_name(const conv *c, const char *const *names) {
    for (; *names; names++) {
        int32_t id = find(c, *names, strlen(*names));
        if (id >= 0)
            return id;
    }
    return -1;
}

/* tokenizer_config.json's "chat_template": a string, or a list of
 * {"name", "template"} (the one named "default", else the first). A
 * malloc'd copy in *out (NULL if none). 0, or -1 out of memory. */
static int chat_template(const qc_json *cfg, char **out, size_t *len) {
    const qc_json *v = qc_json_get(cfg, "chat_template"), *pick = NULL;
    *out = NULL;
    *len = 0;
    if (v && v->type == QC_JSON_STRING) {
        pick = v;
    } else if (v && v->type == QC_JSON_ARRAY) {
        for (size_t i = 0; i < v->n; i++) {
            const qc_json *tp = qc_json_get(&v->items[i], "template");
            const char *name = qc_json_get_str(&v->items[i], "name");
            if (tp && tp->type == QC_JSON_STRING && (!pick || (name && strcmp(name, "default") == 0)))
                pick = tp;
        }
    }
    if (!pick)
        return 0;
    if (!(*out = malloc(pick->len + 1)))
        return -1;
    memcpy(*out, pick->str, pick->len + 1);
    *len = pick->len;
    return 0;
}

static int load_specials(conv *c, const qc_json *root, const qc_json *model, const char *path) {
    /* unk from the model */
    const qc_json *unk = qc_json_get(model, "unk_token");
    c->b.unk = -1;
    if (unk && unk->type == QC_JSON_STRING) {
        c->b.unk = find(c, unk->str, unk->len);
        if (c->b.unk < 0)
            return qc_err_set(c->err, "%s: key 'model.unk_token': token '%s' not in vocab", c->file, unk->str);
    } else if (unk && unk->type != QC_JSON_NULL) {
        return qc_err_set(c->err, "%s: key 'model.unk_token': expected a string", c->file);
    }

    int32_t t_first = -1, t_last = -1;
    template_ends(c, qc_json_get(root, "post_processor"), &t_first, &t_last);

    /* tokenizer_config.json beside tokenizer.json, when present */
    char cfg_path[4096];
    const char *sl = strrchr(path, '/');
    int dl = sl ? (int)(sl - path) + 1 : 0;
    snprintf(cfg_path, sizeof cfg_path, "%.*stokenizer_config.json", dl, path);
    int have_bos = 0, have_eos = 0, add_bos = -1, add_eos = -1;
    char *tmpl = NULL;
    size_t tmpl_len = 0;
    c->b.bos = c->b.eos = -1;
    FILE *probe = fopen(cfg_path, "rb");
    if (probe) {
        fclose(probe);
        char *text;
        size_t len;
        qc_json *cfg = NULL;
        if (read_file(cfg_path, &text, &len, c->err) < 0)
            return -1;
        int rc = qc_json_parse(&cfg, text, len, cfg_path, c->err);
        free(text);
        if (rc < 0)
            return -1;
        if (cfg->type != QC_JSON_OBJECT) {
            qc_json_free(cfg);
            return qc_err_set(c->err, "%s: expected a JSON object", cfg_path);
        }
        if ((have_bos = config_token(c, cfg, cfg_path, "bos_token", &c->b.bos)) < 0 ||
            (have_eos = config_token(c, cfg, cfg_path, "eos_token", &c->b.eos)) < 0) {
            qc_json_free(cfg);
            return -1;
        }
        add_bos = get_bool(cfg, "add_bos_token", -2);
        add_eos = get_bool(cfg, "add_eos_token", -2);
        rc = chat_template(cfg, &tmpl, &tmpl_len);
        qc_json_free(cfg);
        if (rc < 0)
            return qc_err_set(c->err, "%s: out of memory", cfg_path);
        if (add_bos == -1 || add_eos == -1) {
            free(tmpl);
            return qc_err_set(c->err, "%s: key 'add_bos_token' / 'add_eos_token': not a boolean", cfg_path);
        }
        if (add_bos == -2)
            add_bos = -1;
        if (add_eos == -2)
            add_eos = -1;
    }
    static const char *const bos_names[] = {"<s>", "<|begin_of_text|>", "<|startoftext|>", "<|endoftext|>", NULL};
    static const char *const eos_names[] = {"</s>", "<|end_of_text|>", "<|endoftext|>", "<|im_end|>", "<|eot_id|>",
                                            NULL};
    if (!have_bos)
        c->b.bos = t_first >= 0 ? t_first : common_name(c, bos_names);
    if (!have_eos)
        c->b.eos = t_last >= 0 ? t_last : common_name(c, eos_names);
    if (add_bos < 0) /* not said: whatever the template prepends */
        add_bos = t_first >= 0 && t_first == c->b.bos;
    if (add_eos < 0)
        add_eos = t_last >= 0 && t_last == c->b.eos;
    if (add_bos && c->b.bos >= 0)
        c->b.flags |= QC_TOKF_ADD_BOS;
    if (add_eos && c->b.eos >= 0)
        c->b.flags |= QC_TOKF_ADD_EOS;

    /* The chat template: tokenizer_config.json, else chat_template.jinja beside. */
    if (!tmpl) {
        char jpath[4096];
        snprintf(jpath, sizeof jpath, "%.*schat_template.jinja", dl, path);
        probe = fopen(jpath, "rb");
        if (probe) {
            fclose(probe);
            if (read_file(jpath, &tmpl, &tmpl_len, c->err) < 0)
                return -1;
        }
    }
    int rc = tmpl ? qc_chat_section(&c->b, tmpl, tmpl_len) : 0;
    free(tmpl);
    if (rc < 0)
        return qc_err_set(c->err, "%s: out of memory", c->file);
    return 0;
}

static int convert(conv *c, const qc_json *root, const char *path) {
    if (root->type != QC_JSON_OBJECT)
        return qc_err_set(c->err, "%s: expected a JSON object", c->file);
    const qc_json *model = qc_json_get(root, "model");
    if (!model || model->type != QC_JSON_OBJECT)
        return qc_err_set(c->err, "%s: key 'model': missing or not an object", c->file);
    const char *mt = qc_json_get_str(model, "type");
    if (mt && strcmp(mt, "BPE") != 0)
        return unsupported(c, "model.type", "tokenizer model", mt);
    if (!mt && !qc_json_get(model, "merges"))
        return qc_err_set(c->err, "%s: key 'model.type': missing (and no merges: not a BPE model)", c->file);
    const qc_json *dropout = qc_json_get(model, "dropout");
    if (dropout && dropout->type != QC_JSON_NULL && !(dropout->type == QC_JSON_NUMBER && dropout->num == 0))
        return qc_err_set(c->err, "%s: key 'model.dropout': BPE dropout is not supported", c->file);
    static const char *const affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int k = 0; k < 2; k++) {
        const qc_json *v = qc_json_get(model, affixes[k]);
        if (v && v->type != QC_JSON_NULL && !(v->type == QC_JSON_STRING && v->len == 0))
            return qc_err_set(c->err, "%s: key 'model.%s': not supported", c->file, affixes[k]);
    }

    if (detect_normalizer(c, qc_json_get(root, "normalizer")) < 0 ||
        detect_pretok(c, qc_json_get(root, "pre_tokenizer")) < 0)
        return -1;
    detect_decoder(c, qc_json_get(root, "decoder"));
    if (c->spm_hint && c->byte_hint)
        return qc_err_set(c->err, "%s: key 'pre_tokenizer': mixes SentencePiece (U+2581) and byte-level "
                          "pieces", c->file);
    if (!c->spm_hint && !c->byte_hint)
        return qc_err_set(c->err, "%s: key 'pre_tokenizer': neither SentencePiece-style (Metaspace, or "
                          "Prepend/Replace U+2581 normalizers) nor byte-level (ByteLevel)", c->file);
    c->b.kind = c->spm_hint ? QRT_TOK_SPM_BPE : QRT_TOK_BYTE_BPE;
    if (c->b.kind == QRT_TOK_SPM_BPE) {
        if (c->b.pretok != QC_PRETOK_NONE || (c->b.flags & QC_TOKF_SPLIT_DIGITS))
            return qc_err_set(c->err, "%s: key 'pre_tokenizer': split patterns with SentencePiece-style BPE "
                              "are not supported", c->file);
    } else {
        c->b.flags &= ~(uint32_t)QC_TOKF_STRIP_LEADING; /* byte-level decoders keep every space */
    }

    int fb = get_bool(model, "byte_fallback", 0), fu = get_bool(model, "fuse_unk", 0),
        im = get_bool(model, "ignore_merges", 0);
    if (fb < 0 || fu < 0 || im < 0)
        return qc_err_set(c->err, "%s: key 'model.byte_fallback' / 'fuse_unk' / 'ignore_merges': not a boolean",
                          c->file);
    if (fb && c->b.kind == QRT_TOK_SPM_BPE)
        c->b.flags |= QC_TOKF_BYTE_FALLBACK;
    if (fu)
        c->b.flags |= QC_TOKF_FUSE_UNK;
    if (im)
        c->b.flags |= QC_TOKF_IGNORE_MERGES;

    if (load_vocab(c, model, qc_json_get(root, "added_tokens")) < 0 || load_merges(c, model) < 0 ||
        load_specials(c, root, model, path) < 0)
        return -1;
    return 0;
}

int qc_tokenizer_load(uint8_t **blob, size_t *size, const char *path, qc_err *err) {
    if (!blob || !size || !path)
        return qc_err_set(err, "tokenizer: bad arguments");
    *blob = NULL;
    *size = 0;
    char *text;
    size_t len;
    if (read_file(path, &text, &len, err) < 0)
        return -1;
    qc_json *root = NULL;
    int rc = qc_json_parse(&root, text, len, path, err);
    free(text);
    if (rc < 0)
        return -1;
    conv c = {.file = path, .err = err, .b = {.bos = -1, .eos = -1, .unk = -1}};
    rc = convert(&c, root, path);
    if (rc == 0)
        rc = qc_tokb_write(&c.b, path, err, blob, size);
    qc_json_free(root);
    qc_tokb_free(&c.b);
    /* Token text from the file may hold control bytes: keep the message one line. */
    for (char *q = err && rc ? err->msg : NULL; q && *q; q++)
        if ((unsigned char)*q < 0x20 || *q == 0x7f)
            *q = '?';
    return rc;
}
