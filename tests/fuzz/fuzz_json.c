/*
 * tests/fuzz/fuzz_json.c — libFuzzer target for the JSON parser
 * (frontend/json.c, qc_json_parse).
 *
 * The bytes are the document. On success the tree must keep every promise
 * of qc/json.h: each node's offset points at the first character of its
 * value in the input, strings are NUL-terminated UTF-8 of the stated
 * length, numbers equal strtod/strtoll of their own text (is_int exactly
 * when the literal is integral and fits int64), nesting stays within
 * QC_JSON_MAX_DEPTH, object keys are unique and qc_json_get finds each.
 * On failure the message is one line naming the file.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qc/json.h"
#include "fuzz.h"

#define FNAME "fuzz.json"

/* Length of the valid UTF-8 sequence at s (as RFC 3629: no overlongs,
 * surrogates or code points above U+10FFFF), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t avail) {
    unsigned c = s[0];
    size_t n;
    uint32_t v, min;
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0)
        n = 2, v = c & 0x1Fu, min = 0x80;
    else if ((c & 0xF0) == 0xE0)
        n = 3, v = c & 0x0Fu, min = 0x800;
    else if ((c & 0xF8) == 0xF0)
        n = 4, v = c & 0x07u, min = 0x10000;
    else
        return 0;
    if (n > avail)
        return 0;
    for (size_t k = 1; k < n; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (s[k] & 0x3Fu);
    }
    return v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) ? 0 : n;
}

static void check_utf8(const char *s, size_t len) {
    FZ_CHECK(s != NULL, "string without bytes");
    FZ_CHECK(s[len] == 0, "string not NUL-terminated at its length %zu", len);
    for (size_t i = 0; i < len;) {
        size_t l = utf8_len((const unsigned char *)s + i, len - i);
        FZ_CHECK(l > 0, "decoded string has invalid UTF-8 at byte %zu", i);
        i += l;
    }
}

/* The number literal at text[off..): its extent per the RFC grammar. */
static void check_number(const qc_json *v, const char *text, size_t len) {
    size_t i = v->offset, start = i;
    int integral = 1;
    if (i < len && text[i] == '-')
        i++;
    while (i < len && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.' || text[i] == 'e' || text[i] == 'E' ||
                       ((text[i] == '+' || text[i] == '-') && (text[i - 1] == 'e' || text[i - 1] == 'E')))) {
        integral &= text[i] >= '0' && text[i] <= '9';
        i++;
    }
    FZ_CHECK(i > start && i - start < 100000, "number at %zu has no digits", start);
    char *lit = fz_dup(text + start, i - start);
    lit = realloc(lit, i - start + 1);
    FZ_CHECK(lit != NULL, "out of memory");
    lit[i - start] = 0;
    errno = 0;
    char *end;
    double d = strtod(lit, &end); /* the C locale: the target never calls setlocale */
    FZ_CHECK(*end == 0, "number literal '%s' is not all strtod's", lit);
    FZ_CHECK(d == v->num || (isnan(d) && isnan(v->num)), "number '%s': num %.17g, strtod %.17g", lit, v->num, d);
    errno = 0;
    long long ll = integral ? strtoll(lit, &end, 10) : 0;
    int fits = integral && errno == 0 && *end == 0;
    FZ_CHECK(v->is_int == fits, "number '%s': is_int %d, want %d", lit, v->is_int, fits);
    FZ_CHECK(!fits || v->i64 == (int64_t)ll, "number '%s': i64 %lld, want %lld", lit, (long long)v->i64, ll);
    free(lit);
}

static void walk(const qc_json *v, const char *text, size_t len, int depth) {
    FZ_CHECK(depth <= QC_JSON_MAX_DEPTH + 1, "depth %d beyond the cap", depth);
    FZ_CHECK(v->offset < len, "offset %zu beyond the input (%zu bytes)", v->offset, len);
    char c = text[v->offset];
    switch (v->type) {
    case QC_JSON_NULL:
        FZ_CHECK(len - v->offset >= 4 && memcmp(text + v->offset, "null", 4) == 0, "null at %zu", v->offset);
        break;
    case QC_JSON_FALSE:
        FZ_CHECK(len - v->offset >= 5 && memcmp(text + v->offset, "false", 5) == 0, "false at %zu", v->offset);
        break;
    case QC_JSON_TRUE:
        FZ_CHECK(len - v->offset >= 4 && memcmp(text + v->offset, "true", 4) == 0, "true at %zu", v->offset);
        break;
    case QC_JSON_NUMBER:
        FZ_CHECK(c == '-' || (c >= '0' && c <= '9'), "number at %zu starts with '%c'", v->offset, c);
        check_number(v, text, len);
        break;
    case QC_JSON_STRING:
        FZ_CHECK(c == '"', "string at %zu starts with '%c'", v->offset, c);
        check_utf8(v->str, v->len);
        /* a string's escapes never expand: 6 bytes of \uXXXX give at most 3 */
        FZ_CHECK(v->len <= len - v->offset, "string at %zu decodes to %zu bytes", v->offset, v->len);
        break;
    case QC_JSON_ARRAY:
        FZ_CHECK(c == '[', "array at %zu starts with '%c'", v->offset, c);
        FZ_CHECK(v->n == 0 || v->items != NULL, "array without items");
        for (size_t i = 0; i < v->n; i++) {
            FZ_CHECK(v->items[i].offset > v->offset, "element before its array");
            FZ_CHECK(i == 0 || v->items[i].offset > v->items[i - 1].offset, "elements out of order");
            walk(&v->items[i], text, len, depth + 1);
        }
        break;
    case QC_JSON_OBJECT:
        FZ_CHECK(c == '{', "object at %zu starts with '%c'", v->offset, c);
        FZ_CHECK(v->n == 0 || (v->items && v->keys && v->key_lens), "object without members");
        for (size_t i = 0; i < v->n; i++) {
            check_utf8(v->keys[i], v->key_lens[i]);
            FZ_CHECK(v->items[i].offset > v->offset, "member before its object");
            FZ_CHECK(i == 0 || v->items[i].offset > v->items[i - 1].offset, "members out of order");
            /* unique keys: then qc_json_get finds each NUL-free key's own value */
            if (strlen(v->keys[i]) == v->key_lens[i])
                FZ_CHECK(qc_json_get(v, v->keys[i]) == &v->items[i], "key '%s' is not found as itself",
                         v->keys[i]);
            if (v->n <= 64) /* the quadratic cross-check only on small objects */
                for (size_t j = 0; j < i; j++)
                    FZ_CHECK(v->key_lens[i] != v->key_lens[j] ||
                                 memcmp(v->keys[i], v->keys[j], v->key_lens[i]) != 0,
                             "duplicate key '%s' accepted", v->keys[i]);
            walk(&v->items[i], text, len, depth + 1);
        }
        /* the typed getters agree with the tree */
        for (size_t i = 0; i < v->n; i++) {
            if (strlen(v->keys[i]) != v->key_lens[i])
                continue;
            const qc_json *m = &v->items[i];
            int64_t i64;
            double d;
            FZ_CHECK((qc_json_get_int(v, v->keys[i], &i64) == 0) == (m->type == QC_JSON_NUMBER && m->is_int),
                     "get_int");
            FZ_CHECK((qc_json_get_num(v, v->keys[i], &d) == 0) == (m->type == QC_JSON_NUMBER), "get_num");
            FZ_CHECK((qc_json_get_str(v, v->keys[i]) != NULL) == (m->type == QC_JSON_STRING), "get_str");
        }
        break;
    default:
        FZ_CHECK(0, "unknown node type %d", (int)v->type);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    qc_json *root = NULL;
    qc_err err;
    err.msg[0] = 0;
    const char *text = (const char *)data;
    if (qc_json_parse(&root, text, size, FNAME, &err) != 0) {
        FZ_CHECK(root == NULL, "failed parse left a tree");
        fz_note("refused", err.msg);
        fz_check_msg(err.msg, FNAME);
        return 0;
    }
    FZ_CHECK(root != NULL, "parse succeeded without a tree");
    FZ_CHECK(size > 0, "empty input accepted");
    fz_note("accepted", NULL);
    walk(root, text, size, 1);
    FZ_CHECK(qc_json_get(root, "") == NULL || root->type == QC_JSON_OBJECT, "qc_json_get on a non-object");
    qc_json_free(root);
    return 0;
}
