/*
 * frontend/json.c — strict RFC 8259 JSON parser (qc/json.h).
 *
 * Everything qcc reads besides tensor bytes is JSON: config.json,
 * tokenizer.json (several MB, objects of ~50k members) and safetensors
 * headers, all untrusted. So the parser is strict (no comments, no trailing
 * commas, no leading zeros, no lone surrogates, no raw control characters,
 * no invalid UTF-8, no duplicate keys), bounded (nesting depth capped, every
 * read bounds-checked against len, input need not be NUL-terminated) and
 * linear (containers grow geometrically, duplicate keys are found with a
 * hash table once an object is large). Every error is one line:
 * "FILE: offset N: what".
 *
 * Numbers follow the RFC grammar exactly; integral literals that fit int64
 * are also kept exactly (is_int/i64). The double is converted with strtod
 * after swapping '.' for the current locale's decimal point, so the result
 * does not depend on setlocale().
 */
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc/json.h"

typedef struct parser {
    const unsigned char *s;
    size_t len;
    size_t pos;
    const char *fname;
    qc_err *err;
} parser;

static int fail_at(parser *p, size_t off, const char *what) {
    return qc_err_set(p->err, "%s: offset %zu: %s", p->fname, off, what);
}

static void skip_ws(parser *p) {
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

static void free_node(qc_json *v) {
    if (v->type == QC_JSON_STRING) {
        free(v->str);
    } else if (v->type == QC_JSON_ARRAY || v->type == QC_JSON_OBJECT) {
        for (size_t i = 0; i < v->n; i++)
            free_node(&v->items[i]);
        if (v->keys)
            for (size_t i = 0; i < v->n; i++)
                free(v->keys[i]);
        free(v->items);
        free(v->keys);
        free(v->key_lens);
    }
}

static int parse_value(parser *p, qc_json *v, int depth);

/* Appends the UTF-8 encoding of code point cp (<= 0x10FFFF, not a surrogate). */
static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Reads 4 hex digits at p->pos (after "\u"). */
static int read_hex4(parser *p, uint32_t *out) {
    if (p->len - p->pos < 4)
        return fail_at(p, p->pos, "truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = p->s[p->pos + (size_t)i];
        uint32_t d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return fail_at(p, p->pos + (size_t)i, "invalid hex digit in \\u escape");
        v = v << 4 | d;
    }
    p->pos += 4;
    *out = v;
    return 0;
}

/* Length of the valid UTF-8 sequence starting at s[0] (lead byte >= 0x80),
 * or 0 if invalid (bad lead, truncated, overlong, surrogate, > U+10FFFF). */
static size_t utf8_seq(const unsigned char *s, size_t avail) {
    unsigned char c = s[0];
    size_t n;
    uint32_t cp, min;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2, cp = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* Parses a string at p->pos (the opening quote) into a new buffer. */
static int parse_string(parser *p, char **out, size_t *out_len) {
    size_t start = p->pos++;
    /* Find the closing quote first: decoded output is never longer than
     * the raw span, so one allocation suffices. */
    size_t end = p->pos;
    while (end < p->len && p->s[end] != '"') {
        if (p->s[end] == '\\')
            end++;
        end++;
    }
    if (end >= p->len)
        return fail_at(p, start, "unterminated string");
    char *o = malloc(end - p->pos + 1);
    if (!o)
        return fail_at(p, start, "out of memory");
    size_t n = 0;
    while (p->pos < end) {
        unsigned char c = p->s[p->pos];
        if (c == '\\') {
            size_t esc = p->pos;
            unsigned char e = p->s[p->pos + 1];
            p->pos += 2;
            switch (e) {
            case '"': o[n++] = '"'; break;
            case '\\': o[n++] = '\\'; break;
            case '/': o[n++] = '/'; break;
            case 'b': o[n++] = '\b'; break;
            case 'f': o[n++] = '\f'; break;
            case 'n': o[n++] = '\n'; break;
            case 'r': o[n++] = '\r'; break;
            case 't': o[n++] = '\t'; break;
            case 'u': {
                uint32_t cp;
                if (read_hex4(p, &cp))
                    goto fail;
                if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    fail_at(p, esc, "lone low surrogate in \\u escape");
                    goto fail;
                }
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    uint32_t lo;
                    if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u') {
                        fail_at(p, esc, "lone high surrogate in \\u escape");
                        goto fail;
                    }
                    p->pos += 2;
                    if (read_hex4(p, &lo))
                        goto fail;
                    if (lo < 0xDC00 || lo > 0xDFFF) {
                        fail_at(p, esc, "lone high surrogate in \\u escape");
                        goto fail;
                    }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                n += put_utf8(o + n, cp);
                break;
            }
            default:
                fail_at(p, esc, "invalid escape in string");
                goto fail;
            }
            if (p->pos > end) { /* an escape ran across the quote we found */
                fail_at(p, esc, "invalid escape in string");
                goto fail;
            }
        } else if (c < 0x20) {
            fail_at(p, p->pos, "unescaped control character in string");
            goto fail;
        } else if (c < 0x80) {
            o[n++] = (char)c;
            p->pos++;
        } else {
            size_t k = utf8_seq(p->s + p->pos, end - p->pos);
            if (!k) {
                fail_at(p, p->pos, "invalid UTF-8 in string");
                goto fail;
            }
            memcpy(o + n, p->s + p->pos, k);
            n += k;
            p->pos += k;
        }
    }
    o[n] = '\0';
    p->pos = end + 1;
    *out = o;
    *out_len = n;
    return 0;
fail:
    free(o);
    return -1;
}

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static int parse_number(parser *p, qc_json *v) {
    size_t start = p->pos, i = p->pos;
    int neg = 0, integral = 1;
    if (i < p->len && p->s[i] == '-')
        neg = 1, i++;
    if (i >= p->len || !is_digit(p->s[i]))
        return fail_at(p, i, "invalid number: expected a digit");
    if (p->s[i] == '0') {
        i++;
        if (i < p->len && is_digit(p->s[i]))
            return fail_at(p, start, "invalid number: leading zero");
    } else {
        while (i < p->len && is_digit(p->s[i]))
            i++;
    }
    if (i < p->len && p->s[i] == '.') {
        integral = 0, i++;
        if (i >= p->len || !is_digit(p->s[i]))
            return fail_at(p, i, "invalid number: expected a digit after '.'");
        while (i < p->len && is_digit(p->s[i]))
            i++;
    }
    if (i < p->len && (p->s[i] == 'e' || p->s[i] == 'E')) {
        integral = 0, i++;
        if (i < p->len && (p->s[i] == '+' || p->s[i] == '-'))
            i++;
        if (i >= p->len || !is_digit(p->s[i]))
            return fail_at(p, i, "invalid number: expected a digit in exponent");
        while (i < p->len && is_digit(p->s[i]))
            i++;
    }
    v->type = QC_JSON_NUMBER;
    v->offset = start;
    p->pos = i;

    if (integral) { /* exact int64, accumulated as a negative to reach INT64_MIN */
        int64_t acc = 0;
        int fits = 1;
        for (size_t k = start + (size_t)neg; k < i; k++) {
            int d = p->s[k] - '0';
            if (acc < (INT64_MIN + d) / 10) {
                fits = 0;
                break;
            }
            acc = acc * 10 - d;
        }
        if (fits && !neg && acc == INT64_MIN)
            fits = 0;
        if (fits) {
            v->is_int = 1;
            v->i64 = neg ? acc : -acc;
        }
    }

    /* Locale-independent strtod: rewrite '.' as the locale's radix. */
    char stackbuf[128];
    const char *radix = localeconv()->decimal_point;
    size_t rlen = radix && *radix ? strlen(radix) : 1;
    size_t need = (i - start) * (rlen > 1 ? rlen : 1) + 1;
    char *buf = need <= sizeof stackbuf ? stackbuf : malloc(need);
    if (!buf)
        return fail_at(p, start, "out of memory");
    size_t b = 0;
    for (size_t k = start; k < i; k++) {
        if (p->s[k] == '.' && radix && *radix) {
            memcpy(buf + b, radix, rlen);
            b += rlen;
        } else {
            buf[b++] = (char)p->s[k];
        }
    }
    buf[b] = '\0';
    errno = 0;
    char *endp;
    double d = strtod(buf, &endp);
    int bad = (size_t)(endp - buf) != b;
    int range = errno == ERANGE && isinf(d);
    if (buf != stackbuf)
        free(buf);
    if (bad)
        return fail_at(p, start, "invalid number");
    if (range)
        return fail_at(p, start, "number out of range");
    v->num = d;
    return 0;
}

static int expect_word(parser *p, const char *w, qc_json_type t, qc_json *v) {
    size_t n = strlen(w);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, w, n) != 0)
        return fail_at(p, p->pos, "invalid literal");
    v->type = t;
    v->offset = p->pos;
    p->pos += n;
    return 0;
}

/* Grows *arr (elements of size sz) so that index n fits; geometric. */
static int grow(void **arr, size_t *cap, size_t n, size_t sz) {
    if (n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 4;
    if (nc > SIZE_MAX / sz)
        return -1;
    void *q = realloc(*arr, nc * sz);
    if (!q)
        return -1;
    *arr = q;
    *cap = nc;
    return 0;
}

static int parse_array(parser *p, qc_json *v, int depth) {
    v->type = QC_JSON_ARRAY;
    v->offset = p->pos++;
    size_t cap = 0;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ']') {
        p->pos++;
        return 0;
    }
    for (;;) {
        if (grow((void **)&v->items, &cap, v->n, sizeof *v->items))
            return fail_at(p, p->pos, "out of memory");
        qc_json *it = &v->items[v->n];
        memset(it, 0, sizeof *it);
        skip_ws(p);
        if (parse_value(p, it, depth + 1)) {
            free_node(it);
            return -1;
        }
        v->n++;
        skip_ws(p);
        if (p->pos >= p->len)
            return fail_at(p, p->pos, "unexpected end of input in array");
        if (p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->s[p->pos] == ']') {
            p->pos++;
            return 0;
        }
        return fail_at(p, p->pos, "expected ',' or ']' in array");
    }
}

static uint64_t hash_key(const char *k, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * 1099511628211ull;
    return h;
}

/* Reports the first member (in document order) whose key repeats an earlier
 * one. Small objects compare pairwise; large ones use a hash table. */
static int check_dup_keys(parser *p, const qc_json *v, const size_t *key_off) {
    size_t dup = SIZE_MAX;
    if (v->n <= 16) {
        for (size_t j = 1; j < v->n && dup == SIZE_MAX; j++)
            for (size_t i = 0; i < j; i++)
                if (v->key_lens[i] == v->key_lens[j] &&
                    memcmp(v->keys[i], v->keys[j], v->key_lens[j]) == 0) {
                    dup = j;
                    break;
                }
    } else {
        size_t cap = 32;
        while (cap < v->n * 2)
            cap *= 2;
        size_t *tab = malloc(cap * sizeof *tab);
        if (!tab)
            return fail_at(p, v->offset, "out of memory");
        for (size_t i = 0; i < cap; i++)
            tab[i] = SIZE_MAX;
        for (size_t j = 0; j < v->n && dup == SIZE_MAX; j++) {
            size_t h = (size_t)hash_key(v->keys[j], v->key_lens[j]) & (cap - 1);
            for (;;) {
                size_t i = tab[h];
                if (i == SIZE_MAX) {
                    tab[h] = j;
                    break;
                }
                if (v->key_lens[i] == v->key_lens[j] &&
                    memcmp(v->keys[i], v->keys[j], v->key_lens[j]) == 0) {
                    dup = j;
                    break;
                }
                h = (h + 1) & (cap - 1);
            }
        }
        free(tab);
    }
    if (dup == SIZE_MAX)
        return 0;
    /* the key as shown: at most 64 bytes, control bytes as '?' (one line) */
    char shown[65];
    size_t n = v->key_lens[dup] > 64 ? 64 : v->key_lens[dup];
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)v->keys[dup][i];
        shown[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    shown[n] = 0;
    return qc_err_set(p->err, "%s: offset %zu: duplicate key '%s%s'", p->fname, key_off[dup],
                      shown, v->key_lens[dup] > 64 ? "..." : "");
}

static int parse_object(parser *p, qc_json *v, int depth) {
    v->type = QC_JSON_OBJECT;
    v->offset = p->pos++;
    size_t cap = 0, kcap = 0, lcap = 0, ocap = 0;
    size_t *key_off = NULL;
    int rc = -1;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == '}') {
        p->pos++;
        return 0;
    }
    for (;;) {
        skip_ws(p);
        if (p->pos >= p->len) {
            fail_at(p, p->pos, "unexpected end of input in object");
            goto out;
        }
        if (p->s[p->pos] != '"') {
            fail_at(p, p->pos, "expected a string key in object");
            goto out;
        }
        if (grow((void **)&v->items, &cap, v->n, sizeof *v->items) ||
            grow((void **)&v->keys, &kcap, v->n, sizeof *v->keys) ||
            grow((void **)&v->key_lens, &lcap, v->n, sizeof *v->key_lens) ||
            grow((void **)&key_off, &ocap, v->n, sizeof *key_off)) {
            fail_at(p, p->pos, "out of memory");
            goto out;
        }
        size_t koff = p->pos;
        char *key;
        size_t klen;
        if (parse_string(p, &key, &klen))
            goto out;
        skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != ':') {
            free(key);
            fail_at(p, p->pos, p->pos >= p->len ? "unexpected end of input in object"
                                                : "expected ':' after object key");
            goto out;
        }
        p->pos++;
        skip_ws(p);
        qc_json *it = &v->items[v->n];
        memset(it, 0, sizeof *it);
        if (parse_value(p, it, depth + 1)) {
            free(key);
            free_node(it);
            goto out;
        }
        v->keys[v->n] = key;
        v->key_lens[v->n] = klen;
        key_off[v->n] = koff;
        v->n++;
        skip_ws(p);
        if (p->pos >= p->len) {
            fail_at(p, p->pos, "unexpected end of input in object");
            goto out;
        }
        if (p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->s[p->pos] == '}') {
            p->pos++;
            rc = check_dup_keys(p, v, key_off);
            goto out;
        }
        fail_at(p, p->pos, "expected ',' or '}' in object");
        goto out;
    }
out:
    free(key_off);
    return rc;
}

static int parse_value(parser *p, qc_json *v, int depth) {
    if (p->pos >= p->len)
        return fail_at(p, p->pos, "unexpected end of input");
    unsigned char c = p->s[p->pos];
    switch (c) {
    case '{':
    case '[':
        if (depth >= QC_JSON_MAX_DEPTH) {
            char what[64];
            snprintf(what, sizeof what, "nesting deeper than %d levels", QC_JSON_MAX_DEPTH);
            return fail_at(p, p->pos, what);
        }
        return c == '{' ? parse_object(p, v, depth) : parse_array(p, v, depth);
    case '"':
        v->type = QC_JSON_STRING;
        v->offset = p->pos;
        return parse_string(p, &v->str, &v->len);
    case 't': return expect_word(p, "true", QC_JSON_TRUE, v);
    case 'f': return expect_word(p, "false", QC_JSON_FALSE, v);
    case 'n': return expect_word(p, "null", QC_JSON_NULL, v);
    default:
        if (c == '-' || is_digit(c))
            return parse_number(p, v);
        return fail_at(p, p->pos, "unexpected character");
    }
}

int qc_json_parse(qc_json **out, const char *text, size_t len, const char *fname, qc_err *err) {
    *out = NULL;
    parser p = {(const unsigned char *)text, len, 0, fname ? fname : "<json>", err};
    qc_json *root = calloc(1, sizeof *root);
    if (!root)
        return fail_at(&p, 0, "out of memory");
    if (!text && len) {
        free(root);
        return fail_at(&p, 0, "no input");
    }
    skip_ws(&p);
    if (parse_value(&p, root, 0)) {
        qc_json_free(root);
        return -1;
    }
    skip_ws(&p);
    if (p.pos != p.len) {
        qc_json_free(root);
        return fail_at(&p, p.pos, "unexpected characters after the JSON value");
    }
    *out = root;
    return 0;
}

void qc_json_free(qc_json *root) {
    if (!root)
        return;
    free_node(root);
    free(root);
}

const qc_json *qc_json_get(const qc_json *v, const char *key) {
    if (!v || v->type != QC_JSON_OBJECT || !key)
        return NULL;
    size_t kl = strlen(key);
    for (size_t i = 0; i < v->n; i++)
        if (v->key_lens[i] == kl && memcmp(v->keys[i], key, kl) == 0)
            return &v->items[i];
    return NULL;
}

int qc_json_get_int(const qc_json *obj, const char *key, int64_t *out) {
    const qc_json *v = qc_json_get(obj, key);
    if (!v || v->type != QC_JSON_NUMBER || !v->is_int)
        return -1;
    *out = v->i64;
    return 0;
}

int qc_json_get_num(const qc_json *obj, const char *key, double *out) {
    const qc_json *v = qc_json_get(obj, key);
    if (!v || v->type != QC_JSON_NUMBER)
        return -1;
    *out = v->num;
    return 0;
}

const char *qc_json_get_str(const qc_json *obj, const char *key) {
    const qc_json *v = qc_json_get(obj, key);
    if (!v || v->type != QC_JSON_STRING)
        return NULL;
    return v->str;
}
