/*
 * tests/unit/test_json.c — the strict JSON parser (frontend/json.c).
 *
 * Valid documents must decode to exact values (escapes, surrogate pairs,
 * int64 limits, nesting); every invalid document must fail with the
 * expected message at the expected byte offset. A 60k-member object checks
 * that parsing and duplicate detection stay linear.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qc/json.h"

static int failures;

#define CHECK(c)                                                          \
    do {                                                                  \
        if (!(c)) {                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
            failures++;                                                   \
        }                                                                 \
    } while (0)

static qc_json *parse_ok(const char *text, size_t len, int line) {
    qc_json *v = NULL;
    qc_err e = {{0}};
    if (qc_json_parse(&v, text, len, "t.json", &e)) {
        fprintf(stderr, "test_json.c:%d: unexpected error: %s\n", line, e.msg);
        failures++;
        return NULL;
    }
    return v;
}
#define OK(s) parse_ok((s), strlen(s), __LINE__)

/* Parses text expecting failure with message "t.json: offset OFF: ...WHAT...". */
static void bad(const char *text, size_t len, size_t off, const char *what, int line) {
    qc_json *v = NULL;
    qc_err e = {{0}};
    if (qc_json_parse(&v, text, len, "t.json", &e) == 0) {
        fprintf(stderr, "test_json.c:%d: parsed but should fail: %.60s\n", line, text);
        qc_json_free(v);
        failures++;
        return;
    }
    char want[64];
    snprintf(want, sizeof want, "t.json: offset %zu: ", off);
    if (strncmp(e.msg, want, strlen(want)) != 0 || !strstr(e.msg, what)) {
        fprintf(stderr, "test_json.c:%d: got \"%s\", want \"%s...%s\"\n", line, e.msg, want, what);
        failures++;
    }
    if (v) {
        fprintf(stderr, "test_json.c:%d: *out not NULL on failure\n", line);
        failures++;
    }
}
#define BAD(s, off, what) bad((s), strlen(s), (off), (what), __LINE__)

static void test_valid(void) {
    qc_json *v = OK(" { \"a\" : [1, -2, 3.5, 1e2, -0, 0.25E-1, true, false, null, {}, []], \"b\": {\"c\": \"d\"} } ");
    if (v) {
        CHECK(v->type == QC_JSON_OBJECT && v->n == 2 && v->offset == 1);
        const qc_json *a = qc_json_get(v, "a");
        CHECK(a && a->type == QC_JSON_ARRAY && a->n == 11);
        if (a && a->n == 11) {
            CHECK(a->items[0].is_int && a->items[0].i64 == 1 && a->items[0].num == 1.0);
            CHECK(a->items[0].offset == 10);
            CHECK(a->items[1].is_int && a->items[1].i64 == -2);
            CHECK(!a->items[2].is_int && a->items[2].num == 3.5);
            CHECK(!a->items[3].is_int && a->items[3].num == 100.0);
            CHECK(a->items[4].is_int && a->items[4].i64 == 0);
            CHECK(a->items[5].num == 0.025);
            CHECK(a->items[6].type == QC_JSON_TRUE && a->items[7].type == QC_JSON_FALSE);
            CHECK(a->items[8].type == QC_JSON_NULL);
            CHECK(a->items[9].type == QC_JSON_OBJECT && a->items[9].n == 0);
            CHECK(a->items[10].type == QC_JSON_ARRAY && a->items[10].n == 0);
        }
        const qc_json *b = qc_json_get(v, "b");
        CHECK(b && strcmp(qc_json_get_str(b, "c"), "d") == 0);
        CHECK(qc_json_get(v, "zz") == NULL && qc_json_get_str(v, "a") == NULL);
        CHECK(v->keys && strcmp(v->keys[0], "a") == 0 && v->key_lens[1] == 1);
        qc_json_free(v);
    }

    /* escapes, \u to UTF-8, surrogate pair, escaped NUL, raw UTF-8 kept */
    v = OK("\"q\\\"b\\\\s\\/\\b\\f\\n\\r\\t|\\u0041\\u00e9\\u20AC\\uD83D\\uDE00\\u0000|\xc3\xa9\xf0\x9f\x98\x80\"");
    if (v) {
        const char want[] = "q\"b\\s/\b\f\n\r\t|A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\0|\xc3\xa9\xf0\x9f\x98\x80";
        CHECK(v->type == QC_JSON_STRING && v->len == sizeof want - 1);
        CHECK(memcmp(v->str, want, sizeof want) == 0);
        qc_json_free(v);
    }

    /* int64 limits, and integers beyond them fall back to double */
    v = OK("[9223372036854775807, -9223372036854775808, 9223372036854775808, 1.0, 12345678901234567890123]");
    if (v) {
        CHECK(v->items[0].is_int && v->items[0].i64 == INT64_MAX);
        CHECK(v->items[1].is_int && v->items[1].i64 == INT64_MIN);
        CHECK(!v->items[2].is_int && v->items[2].num == 9223372036854775808.0);
        CHECK(!v->items[3].is_int && v->items[3].num == 1.0);
        CHECK(!v->items[4].is_int && v->items[4].num > 1.2e22);
        qc_json_free(v);
    }

    /* typed getters */
    v = OK("{\"i\": 42, \"f\": 0.5, \"s\": \"x\", \"n\": null}");
    if (v) {
        int64_t i = 0;
        double d = 0;
        CHECK(qc_json_get_int(v, "i", &i) == 0 && i == 42);
        CHECK(qc_json_get_int(v, "f", &i) == -1);
        CHECK(qc_json_get_int(v, "s", &i) == -1);
        CHECK(qc_json_get_int(v, "absent", &i) == -1);
        CHECK(qc_json_get_num(v, "f", &d) == 0 && d == 0.5);
        CHECK(qc_json_get_num(v, "i", &d) == 0 && d == 42.0);
        CHECK(qc_json_get_num(v, "n", &d) == -1);
        CHECK(qc_json_get(NULL, "i") == NULL);
        qc_json_free(v);
    }

    /* scalars at top level, deep but allowed nesting */
    v = OK("  \"s\"\n");
    CHECK(v && v->type == QC_JSON_STRING && v->offset == 2);
    qc_json_free(v);
    v = OK("0");
    CHECK(v && v->is_int && v->i64 == 0);
    qc_json_free(v);
    char deep[2 * QC_JSON_MAX_DEPTH + 1];
    memset(deep, '[', QC_JSON_MAX_DEPTH);
    memset(deep + QC_JSON_MAX_DEPTH, ']', QC_JSON_MAX_DEPTH);
    deep[2 * QC_JSON_MAX_DEPTH] = 0;
    v = OK(deep);
    qc_json_free(v);

    /* input need not be NUL-terminated: parse a prefix */
    v = parse_ok("[1,2]garbage", 5, __LINE__);
    CHECK(v && v->n == 2);
    qc_json_free(v);
    qc_json_free(NULL);
}

static void test_invalid(void) {
    BAD("", 0, "unexpected end of input");
    BAD("   ", 3, "unexpected end of input");
    BAD("{} x", 3, "unexpected characters after");
    BAD("[1,]", 3, "unexpected character");
    BAD("{\"a\":1,}", 7, "expected a string key");
    BAD("{\"a\" 1}", 5, "expected ':'");
    BAD("{'a':1}", 1, "expected a string key");
    BAD("[1 2]", 3, "expected ',' or ']'");
    BAD("{\"a\":1 \"b\":2}", 7, "expected ',' or '}'");
    BAD("[1, 2", 5, "unexpected end of input in array");
    BAD("{\"a\": 1", 7, "unexpected end of input in object");
    BAD("{\"a\":", 5, "unexpected end of input");
    BAD("\"abc", 0, "unterminated string");
    BAD("[\"a\\\"]", 1, "unterminated string");
    BAD("\"a\\x\"", 2, "invalid escape");
    BAD("\"\\u12G4\"", 5, "invalid hex digit");
    BAD("\"\\u12\"", 3, "truncated \\u escape");
    BAD("[\"\\u12\"]", 6, "invalid hex digit");
    BAD("\"ab\\uD800\"", 3, "lone high surrogate");
    BAD("\"ab\\uD800\\u0041\"", 3, "lone high surrogate");
    BAD("\"ab\\uDC00\"", 3, "lone low surrogate");
    BAD("\"a\tb\"", 2, "unescaped control character");
    BAD("\"a\nb\"", 2, "unescaped control character");
    bad("\"a\0b\"", 5, 2, "unescaped control character", __LINE__);
    BAD("\"\xc3\"", 1, "invalid UTF-8");
    BAD("\"\xc0\xaf\"", 1, "invalid UTF-8");       /* overlong '/' */
    BAD("\"x\xed\xa0\x80\"", 2, "invalid UTF-8");  /* encoded surrogate */
    BAD("\"\xf4\x90\x80\x80\"", 1, "invalid UTF-8"); /* > U+10FFFF */
    BAD("\"\xff\"", 1, "invalid UTF-8");
    BAD("[01]", 1, "leading zero");
    BAD("-01", 0, "leading zero");
    BAD("[-]", 2, "expected a digit");
    BAD("1.", 2, "after '.'");
    BAD(".5", 0, "unexpected character");
    BAD("1e", 2, "exponent");
    BAD("1e+", 3, "exponent");
    BAD("+1", 0, "unexpected character");
    BAD("1e999", 0, "out of range");
    BAD("-1e999", 0, "out of range");
    BAD("[NaN]", 1, "unexpected character");
    BAD("[Infinity]", 1, "unexpected character");
    BAD("tru", 0, "invalid literal");
    BAD("[nul]", 1, "invalid literal");
    BAD("\xef\xbb\xbf{}", 0, "unexpected character"); /* BOM */
    BAD("{\"a\":1, \"b\":2, \"a\":3}", 15, "duplicate key 'a'");
    BAD("{\"x\":{\"k\":1,\"k\":1}}", 12, "duplicate key 'k'");
    BAD("/* c */ {}", 0, "unexpected character");

    /* depth bomb: one level too many, and a huge one */
    char deep[QC_JSON_MAX_DEPTH + 2];
    memset(deep, '[', QC_JSON_MAX_DEPTH + 1);
    deep[QC_JSON_MAX_DEPTH + 1] = 0;
    BAD(deep, QC_JSON_MAX_DEPTH, "nesting deeper than");
    size_t nb = 1000000;
    char *bomb = malloc(nb + 1);
    memset(bomb, '[', nb);
    bomb[nb] = 0;
    bad(bomb, nb, QC_JSON_MAX_DEPTH, "nesting deeper than", __LINE__);
    memset(bomb, '{', nb);
    for (size_t i = 0; i + 5 < nb; i += 5)
        memcpy(bomb + i, "{\"a\":", 5);
    bad(bomb, nb, 5 * QC_JSON_MAX_DEPTH, "nesting deeper than", __LINE__);
    free(bomb);

    /* truncations of a valid document all fail */
    const char *doc = "{\"a\": [1, 2.5e3, \"x\\u00e9\\uD83D\\uDE00\", {\"b\": null}], \"c\": true}";
    size_t dl = strlen(doc);
    for (size_t n = 0; n < dl; n++) {
        qc_json *v = NULL;
        qc_err e = {{0}};
        if (qc_json_parse(&v, doc, n, "t.json", &e) == 0) {
            fprintf(stderr, "truncated doc of %zu bytes parsed\n", n);
            failures++;
            qc_json_free(v);
        } else {
            CHECK(strncmp(e.msg, "t.json: offset ", 15) == 0);
        }
    }
    qc_json *v = parse_ok(doc, dl, __LINE__);
    qc_json_free(v);

    /* NULL err is allowed */
    v = NULL;
    CHECK(qc_json_parse(&v, "[", 1, NULL, NULL) == -1 && v == NULL);
}

/* An object of 60000 members (like a tokenizer vocab), then the same with
 * one duplicate at the end: both must be fast. */
static void test_large(void) {
    size_t n = 60000, cap = n * 32 + 64;
    char *buf = malloc(cap);
    size_t len = 0;
    buf[len++] = '{';
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s\"tok_%zu\\u00e9\": %zu", i ? "," : "", i, i);
    size_t dup_at = len + 1;
    size_t closed = len;
    buf[len++] = '}';
    clock_t t0 = clock();
    qc_json *v = parse_ok(buf, len, __LINE__);
    if (v) {
        CHECK(v->n == n);
        int64_t x = -1;
        CHECK(qc_json_get_int(v, "tok_59999\xc3\xa9", &x) == 0 && x == 59999);
        CHECK(strcmp(v->keys[123], "tok_123\xc3\xa9") == 0);
        qc_json_free(v);
    }
    len = closed;
    len += (size_t)snprintf(buf + len, cap - len, ",\"tok_7\\u00e9\": 1}");
    bad(buf, len, dup_at, "duplicate key 'tok_7\xc3\xa9'", __LINE__);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    if (secs > 2.0) {
        fprintf(stderr, "large object took %.2f s (quadratic?)\n", secs);
        failures++;
    }
    free(buf);
}

/* Byte mutations of a document with every construct: each must parse or
 * fail with a well-formed message (the sanitizer build catches the rest). */
static void test_mutations(void) {
    const char *doc = "{\"a\": [1, -2.5e-3, true, false, null, \"x\\u00e9\\uD83D\\uDE00\\n\xc3\xa9\"],"
                      " \"b\": {\"c\": {}, \"d\": [], \"e\": 0}}";
    size_t n = strlen(doc);
    char buf[256];
    uint32_t rng = 99;
    int ok = 0;
    for (int it = 0; it < 20000; it++) {
        memcpy(buf, doc, n);
        for (int k = 0; k <= it % 3; k++) {
            rng = rng * 1664525u + 1013904223u;
            size_t pos = (rng >> 8) % n;
            rng = rng * 1664525u + 1013904223u;
            buf[pos] = (char)(rng >> 24);
        }
        qc_json *v = NULL;
        qc_err e = {{0}};
        if (qc_json_parse(&v, buf, n, "t.json", &e) == 0)
            ok++;
        else
            CHECK(strncmp(e.msg, "t.json: offset ", 15) == 0 && v == NULL);
        qc_json_free(v);
    }
    CHECK(ok > 0 && ok < 20000);
}

int main(void) {
    test_valid();
    test_mutations();
    test_invalid();
    test_large();
    if (failures) {
        fprintf(stderr, "test_json: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_json: ok\n");
    return 0;
}
