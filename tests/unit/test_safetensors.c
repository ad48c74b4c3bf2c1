/*
 * tests/unit/test_safetensors.c — the safetensors reader (frontend/safetensors.c).
 *
 * Reads the real stories260K checkpoint (names, shapes, offsets, bytes, the
 * xxh3-128 hash against a one-shot hash of the file), writes an F16/BF16 file
 * and a 2-shard index into a temp dir and reads them back, then replays every
 * hand-made bad file of tests/bad/files/st/ and a set of generated broken
 * inputs, asserting the error names the file and says what is wrong. Last,
 * a few thousand byte-mutations of a small file must each load or fail
 * cleanly (run under the sanitizer build to catch memory errors).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "qc/frontend.h"

static int failures;
static char tmpdir[256];

#define CHECK(c)                                                                  \
    do {                                                                          \
        if (!(c)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
            failures++;                                                           \
        }                                                                         \
    } while (0)

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
}

static uint8_t *read_whole(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)sz + 1);
    if (fread(b, 1, (size_t)sz, f) != (size_t)sz) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *n = (size_t)sz;
    return b;
}

/* A safetensors file from a header text and data bytes; returns its size. */
static size_t make_st(uint8_t *out, const char *header, const void *data, size_t dlen) {
    size_t h = strlen(header);
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(out + 8, header, h);
    if (dlen)
        memcpy(out + 8 + h, data, dlen);
    return 8 + h + dlen;
}

static void tmp_path(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

/* Writes a safetensors file into the temp dir and returns its path. */
static const char *write_st(const char *name, const char *header, const void *data, size_t dlen) {
    static char path[512];
    static uint8_t buf[1 << 16];
    tmp_path(path, sizeof path, name);
    write_file(path, buf, make_st(buf, header, data, dlen));
    return path;
}

/* Opening `path` must fail with "PATH..." containing `want`. */
static void expect_fail(const char *path, const char *prefix, const char *want, int line) {
    qc_st *st = NULL;
    qc_err e = {{0}};
    if (qc_st_open(&st, path, &e) == 0) {
        fprintf(stderr, "test_safetensors.c:%d: %s opened but should fail (%s)\n", line, path, want);
        qc_st_free(st);
        failures++;
        return;
    }
    if (strncmp(e.msg, prefix, strlen(prefix)) != 0 || !strstr(e.msg, want) || strchr(e.msg, '\n')) {
        fprintf(stderr, "test_safetensors.c:%d: got \"%s\"\n   want prefix \"%s\" and \"%s\"\n", line, e.msg,
                prefix, want);
        failures++;
    }
    CHECK(st == NULL);
}
#define FAIL(path, want) expect_fail((path), (path), (want), __LINE__)

static void test_stories(void) {
    const char *path = QC_DATA "/stories260K/model.safetensors";
    qc_st *st = NULL;
    qc_err e = {{0}};
    if (qc_st_open(&st, path, &e)) {
        fprintf(stderr, "open %s: %s\n", path, e.msg);
        failures++;
        return;
    }
    CHECK(qc_st_count(st) == 47);
    const qc_st_tensor *t = qc_st_find(st, "model.embed_tokens.weight");
    CHECK(t != NULL);
    size_t fsize = 0;
    uint8_t *bytes = read_whole(path, &fsize);
    CHECK(bytes != NULL && fsize == 1045096);
    if (t && bytes) {
        CHECK(t->dtype == QRT_DT_F32 && t->ndim == 2 && t->shape[0] == 512 && t->shape[1] == 64);
        CHECK(t->nbytes == 131072 && t->file_offset == 8 + 4960);
        CHECK(memcmp(t->data, bytes + t->file_offset, t->nbytes) == 0);
        CHECK(strcmp(t->file, path) == 0);
    }
    t = qc_st_find(st, "model.layers.3.self_attn.k_proj.weight");
    CHECK(t && t->ndim == 2 && t->shape[0] == 32 && t->shape[1] == 64 && t->nbytes == 8192);
    CHECK(t && t->file_offset == 8 + 4960 + 808960);
    t = qc_st_find(st, "model.norm.weight");
    CHECK(t && t->ndim == 1 && t->shape[0] == 64);
    CHECK(qc_st_find(st, "lm_head.weight") == NULL);
    CHECK(qc_st_find(st, "") == NULL && qc_st_find(st, "zzz") == NULL);
    CHECK(strcmp(qc_st_at(st, 0)->name, "model.embed_tokens.weight") == 0);
    CHECK(strcmp(qc_st_at(st, 46)->name, "model.norm.weight") == 0);
    CHECK(qc_st_at(st, 47) == NULL);
    for (size_t i = 1; i < qc_st_count(st); i++)
        CHECK(strcmp(qc_st_at(st, i - 1)->name, qc_st_at(st, i)->name) < 0);
    for (size_t i = 0; i < qc_st_count(st); i++)
        CHECK(qc_st_find(st, qc_st_at(st, i)->name) == qc_st_at(st, i));

    uint8_t h[16];
    qc_st_hash(st, h);
    if (bytes) {
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits(bytes, fsize));
        CHECK(memcmp(h, c.digest, 16) == 0);
    }
    free(bytes);
    qc_st_free(st);
    qc_st_free(NULL);
}

static void test_written(void) {
    /* F16 [2,3], BF16 [3], an empty F32 [0,4], a scalar F32 [] */
    const uint16_t w[6] = {0x3C00, 0xC000, 0x3800, 0x0000, 0x7BFF, 0x8001};
    const uint16_t b[3] = {0x3F80, 0xBF80, 0x4000};
    const float s = 3.5f;
    uint8_t data[64];
    memcpy(data, w, 12);
    memcpy(data + 12, b, 6);
    memcpy(data + 20, &s, 4); /* bytes 18..20 are a hole: allowed */
    const char *hdr =
        "{\"__metadata__\":{\"format\":\"pt\"},"
        "\"w\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
        "\"empty\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[12,12]},"
        "\"bias\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[12,18]},"
        "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[20,24]}}   ";
    const char *path = write_st("f16.safetensors", hdr, data, 24);
    qc_st *st = NULL;
    qc_err e = {{0}};
    if (qc_st_open(&st, path, &e)) {
        fprintf(stderr, "open %s: %s\n", path, e.msg);
        failures++;
        return;
    }
    size_t H = 8 + strlen(hdr);
    CHECK(qc_st_count(st) == 4);
    const char *order[4] = {"bias", "empty", "s", "w"};
    for (size_t i = 0; i < 4 && i < qc_st_count(st); i++)
        CHECK(strcmp(qc_st_at(st, i)->name, order[i]) == 0);
    const qc_st_tensor *t = qc_st_find(st, "w");
    CHECK(t && t->dtype == QRT_DT_F16 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3);
    CHECK(t && t->nbytes == 12 && t->file_offset == H && memcmp(t->data, w, 12) == 0);
    t = qc_st_find(st, "bias");
    CHECK(t && t->dtype == QRT_DT_BF16 && t->ndim == 1 && t->shape[0] == 3 && t->nbytes == 6);
    CHECK(t && t->file_offset == H + 12 && memcmp(t->data, b, 6) == 0);
    t = qc_st_find(st, "empty");
    CHECK(t && t->nbytes == 0 && t->shape[0] == 0 && t->shape[1] == 4);
    t = qc_st_find(st, "s");
    CHECK(t && t->ndim == 0 && t->nbytes == 4 && memcmp(t->data, &s, 4) == 0);
    uint8_t h1[16], h2[16];
    qc_st_hash(st, h1);
    qc_st_free(st);

    /* the hash changes with one data byte */
    data[21] ^= 1;
    write_st("f16.safetensors", hdr, data, 24);
    CHECK(qc_st_open(&st, path, &e) == 0);
    qc_st_hash(st, h2);
    CHECK(memcmp(h1, h2, 16) != 0);
    qc_st_free(st);
}

static void test_sharded(void) {
    float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    char p1[512], p2[512], idx[512];
    /* shard 2 holds "a" and "c", shard 1 holds "b": the hash must still
     * cover shard 1 first (file-name order), not weight_map order. */
    write_st("model-00002-of-00002.safetensors",
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"c\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[8,24]}}",
             v, 24);
    write_st("model-00001-of-00002.safetensors",
             "{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", v + 7, 4);
    tmp_path(p1, sizeof p1, "model-00001-of-00002.safetensors");
    tmp_path(p2, sizeof p2, "model-00002-of-00002.safetensors");
    tmp_path(idx, sizeof idx, "model.safetensors.index.json");
    const char *index = "{\"metadata\":{\"total_size\":28},\"weight_map\":{"
                        "\"a\":\"model-00002-of-00002.safetensors\","
                        "\"c\":\"model-00002-of-00002.safetensors\","
                        "\"b\":\"model-00001-of-00002.safetensors\"}}";
    write_file(idx, index, strlen(index));
    qc_st *st = NULL;
    qc_err e = {{0}};
    if (qc_st_open(&st, idx, &e)) {
        fprintf(stderr, "open %s: %s\n", idx, e.msg);
        failures++;
        return;
    }
    CHECK(qc_st_count(st) == 3);
    const qc_st_tensor *a = qc_st_find(st, "a"), *b = qc_st_find(st, "b"), *c = qc_st_find(st, "c");
    /* t->data need not be aligned (these headers are unpadded): read with memcpy */
    float fa[2] = {0}, fb = 0, fc[4] = {0};
    if (a && b && c && a->nbytes == 8 && b->nbytes == 4 && c->nbytes == 16) {
        memcpy(fa, a->data, 8);
        memcpy(&fb, b->data, 4);
        memcpy(fc, c->data, 16);
    }
    CHECK(a && strcmp(a->file, p2) == 0 && fa[1] == 2.0f);
    CHECK(b && strcmp(b->file, p1) == 0 && fb == 8.0f);
    CHECK(c && strcmp(c->file, p2) == 0 && c->shape[1] == 2 && fc[3] == 6.0f);
    CHECK(a && c && a->file == c->file); /* each shard opened once */
    size_t n1, n2;
    uint8_t *b1 = read_whole(p1, &n1), *b2 = read_whole(p2, &n2);
    uint8_t *cat = malloc(n1 + n2);
    memcpy(cat, b1, n1);
    memcpy(cat + n1, b2, n2);
    XXH128_canonical_t cc;
    XXH128_canonicalFromHash(&cc, XXH3_128bits(cat, n1 + n2));
    uint8_t h[16];
    qc_st_hash(st, h);
    CHECK(memcmp(h, cc.digest, 16) == 0);
    free(b1);
    free(b2);
    free(cat);
    qc_st_free(st);

    /* broken indexes over the same shards */
    const struct {
        const char *json, *want;
    } bad[] = {
        {"{\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\",\"b\":\"model-00001-of-00002.safetensors\","
         "\"c\":\"model-00002-of-00002.safetensors\"}}",
         "tensor 'a': mapped to shard 'model-00001-of-00002.safetensors', which does not contain it (offset 19)"},
        {"{\"weight_map\":{\"a\":\"model-00002-of-00002.safetensors\",\"b\":\"model-00001-of-00002.safetensors\"}}",
         "tensor 'c': not listed in the weight_map of"},
        {"{\"weight_map\":{\"a\":\"../model-00002-of-00002.safetensors\"}}",
         "tensor 'a': shard must be a relative file name inside the index's directory (offset 19)"},
        {"{\"weight_map\":{\"a\":\"/etc/passwd\"}}", "shard must be a relative file name"},
        {"{\"weight_map\":{\"a\":7}}", "shard must be a relative file name"},
        {"{\"weight_map\":{}}", "key 'weight_map': lists no tensors (offset 14)"},
        {"{\"metadata\":{}}", "key 'weight_map': missing (offset 0)"},
        {"{\"weight_map\":[]}", "key 'weight_map': must be an object"},
        {"[]", "index is not a JSON object"},
        {"{\"weight_map\":{\"a\":\"x.safetensors\",}}", "offset 35: expected a string key"},
        {"{\"weight_map\":{\"a\":\"nope.safetensors\"}}", "nope.safetensors: cannot open"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(idx, bad[i].json, strlen(bad[i].json));
        /* errors about a shard name the shard; the rest name the index */
        const char *prefix = strstr(bad[i].want, "nope") || strstr(bad[i].want, "not listed") ? tmpdir : idx;
        expect_fail(idx, prefix, bad[i].want, __LINE__);
    }

    /* a tensor present in two shards */
    write_st("model-00001-of-00002.safetensors",
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", v, 4);
    const char *dup = "{\"weight_map\":{\"a\":\"model-00002-of-00002.safetensors\","
                      "\"b\":\"model-00001-of-00002.safetensors\",\"c\":\"model-00002-of-00002.safetensors\"}}";
    write_file(idx, dup, strlen(dup));
    expect_fail(idx, tmpdir, "tensor 'a': also present in", __LINE__);
}

/* The committed fixtures (tests/bad/make_bad.py), one per error. */
static void test_fixtures(void) {
    static const struct {
        const char *file, *want;
    } cases[] = {
        {"truncated.safetensors", "file is 3 bytes, too short for a safetensors header"},
        {"header_beyond.safetensors", "header length 1000 lies beyond the file (42 bytes) (offset 0)"},
        {"header_too_large.safetensors", "header length 1099511627776 exceeds the limit"},
        {"empty_header.safetensors", "header length 0 is too short"},
        {"bad_json.safetensors", "invalid JSON header: expected a string key in object (offset 65)"},
        {"not_object.safetensors", "header is not a JSON object (offset 8)"},
        {"bad_metadata.safetensors", "'__metadata__' must be an object of strings"},
        {"missing_dtype.safetensors", "tensor 'b': missing 'dtype'"},
        {"unknown_dtype.safetensors", "tensor 'b': unknown dtype 'Q4_K'"},
        {"unsupported_dtype.safetensors", "tensor 'b': unsupported dtype 'F64'"},
        {"bad_shape.safetensors", "tensor 'b': shape entries must be non-negative integers"},
        {"too_many_dims.safetensors", "tensor 'b': shape has 9 dimensions, at most 8 supported"},
        {"size_mismatch.safetensors", "tensor 'b': shape [8] of F32 needs 32 bytes but data offsets [16, 32) hold 16"},
        {"offsets_reversed.safetensors", "tensor 'b': data offsets [32, 16) end before they begin"},
        {"offsets_beyond.safetensors", "tensor 'b': data offsets [16, 48) lie beyond the data section (32 bytes)"},
        {"overlap.safetensors", "tensor 'b': data offsets [8, 24) overlap tensor 'a' [0, 16)"},
        {"index_missing_tensor.index.json", "tensor 'zz': mapped to shard 'shard_a.safetensors', which does not contain it"},
        {"index_missing_shard.index.json", "no_such_shard.safetensors: cannot open"},
    };
    char path[1024], prefix[1024];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(path, sizeof path, "%s/bad/files/st/%s", QC_TESTS_DIR, cases[i].file);
        snprintf(prefix, sizeof prefix, "%s", path);
        if (strstr(cases[i].file, "missing_shard"))
            snprintf(prefix, sizeof prefix, "%s/bad/files/st/no_such_shard", QC_TESTS_DIR);
        expect_fail(path, prefix, cases[i].want, __LINE__);
    }
    /* the good tiny models open */
    const char *good[] = {"ok_tiny/model.safetensors", "ok_tiny_sharded/model.safetensors.index.json",
                          "st/shard_a.safetensors"};
    const size_t count[] = {11, 11, 1};
    for (size_t i = 0; i < 3; i++) {
        qc_st *st = NULL;
        qc_err e = {{0}};
        snprintf(path, sizeof path, "%s/bad/files/%s", QC_TESTS_DIR, good[i]);
        if (qc_st_open(&st, path, &e)) {
            fprintf(stderr, "open %s: %s\n", path, e.msg);
            failures++;
            continue;
        }
        CHECK(qc_st_count(st) == count[i]);
        qc_st_free(st);
    }
}

/* Broken files generated here, for checks the fixtures do not cover. */
static void test_generated(void) {
    float d[8] = {0};
    const char *p;
    char missing[512];
    tmp_path(missing, sizeof missing, "does-not-exist.safetensors");
    FAIL(missing, "cannot open");
    FAIL(tmpdir, "not a regular file");

    p = write_st("x.safetensors", "", NULL, 0); /* exactly 8 bytes */
    FAIL(p, "header length 0 is too short");
    p = write_st("x.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                                  "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", d, 8);
    FAIL(p, "invalid JSON header: duplicate key 'a' (offset 62)");
    p = write_st("x.safetensors", "{\"a\":[]}", d, 8);
    FAIL(p, "tensor 'a': entry is not a JSON object (offset 13)");
    p = write_st("x.safetensors", "{\"a\":{\"dtype\":5,\"shape\":[1],\"data_offsets\":[0,4]}}", d, 8);
    FAIL(p, "tensor 'a': 'dtype' is not a string (offset 22)");
    p = write_st("x.safetensors", "{\"a\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", d, 8);
    FAIL(p, "tensor 'a': unknown dtype 'f32' (offset 22)");
    p = write_st("x.safetensors", "{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}}", d, 8);
    FAIL(p, "tensor 'a': unsupported dtype 'F8_E4M3'");
    p = write_st("x.safetensors", "{\"a\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}", d, 8);
    FAIL(p, "unsupported dtype 'I32'");
    p = write_st("x.safetensors", "{\"a\":{\"dtype\":\"BOOL\",\"shape\":[4],\"data_offsets\":[0,4]}}", d, 8);
    FAIL(p, "unsupported dtype 'BOOL'");
    p = write_st("x.safetensors", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", d, 8);
    FAIL(p, "tensor 'a': missing 'shape'");
    p = write_st("x.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,4]}}", d, 8);
    FAIL(p, "tensor 'a': 'shape' is not an array");
    p = write_st("x.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", d, 8);
    FAIL(p, "shape entries must be non-negative integers (offset 37)");
    p = write_st("x.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", d, 8);
    FAIL(p, "tensor 'a': missing 'data_offsets'");
    p = write_st("x.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", d, 8);
    FAIL(p, "'data_offsets' must be an array [begin, end] (offset 55)");
    p = write_st("x.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,-4]}}", d, 8);
    FAIL(p, "data offsets must be non-negative integers");
    p = write_st("x.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,1e3]}}", d, 8);
    FAIL(p, "data offsets must be non-negative integers");
    p = write_st("x.safetensors",
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,99999999999999999999]}}", d, 8);
    FAIL(p, "data offsets must be non-negative integers");
    /* numel * 4 overflows 64 bits */
    p = write_st("x.safetensors",
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", d, 8);
    FAIL(p, "tensor 'a': shape is too large");
    p = write_st("x.safetensors",
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[9223372036854775807,0],\"data_offsets\":[0,0]}}", d, 8);
    {
        qc_st *st = NULL;
        qc_err e;
        CHECK(qc_st_open(&st, p, &e) == 0 && qc_st_count(st) == 1 && qc_st_at(st, 0)->nbytes == 0);
        qc_st_free(st);
    }
    /* overlaps: containment, and one hidden behind an empty tensor */
    p = write_st("x.safetensors", "{\"big\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[0,32]},"
                                  "\"in\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", d, 32);
    FAIL(p, "tensor 'in': data offsets [8, 16) overlap tensor 'big' [0, 32)");
    p = write_st("x.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                                  "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]},"
                                  "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[12,28]}}", d, 32);
    FAIL(p, "tensor 'b': data offsets [12, 28) overlap tensor 'a' [0, 16)");
    p = write_st("x.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[0,32]},"
                                  "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
                                  "\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[28,32]}}", d, 32);
    FAIL(p, "tensor 'b': data offsets [4, 8) overlap tensor 'a' [0, 32)");
    /* a name with a newline is shown on one line */
    p = write_st("x.safetensors", "{\"a\\nb\":{\"dtype\":\"Q\",\"shape\":[1],\"data_offsets\":[0,4]}}", d, 8);
    FAIL(p, "tensor 'a?b': unknown dtype 'Q'");
    p = write_st("x.safetensors", "{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", d, 8);
    FAIL(p, "tensor name contains a NUL byte");
    /* truncations of a valid file */
    const char *hdr = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    uint8_t buf[256];
    size_t n = make_st(buf, hdr, d, 8);
    char path[512];
    tmp_path(path, sizeof path, "trunc.safetensors");
    for (size_t k = 0; k < n; k++) {
        write_file(path, buf, k);
        qc_st *st = NULL;
        qc_err e = {{0}};
        if (qc_st_open(&st, path, &e) == 0) {
            fprintf(stderr, "truncated file of %zu bytes opened\n", k);
            failures++;
            qc_st_free(st);
        } else {
            CHECK(strncmp(e.msg, path, strlen(path)) == 0);
        }
    }
}

/* Byte mutations of a small valid file: each must open or fail cleanly. */
static void test_mutations(void) {
    const char *hdr = "{\"__metadata__\":{\"k\":\"v\"},"
                      "\"w\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
                      "\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[12,18]}}";
    uint8_t base[256], buf[256];
    uint8_t data[18] = {0};
    size_t n = make_st(base, hdr, data, sizeof data);
    char path[512];
    tmp_path(path, sizeof path, "mut.safetensors");
    uint32_t rng = 12345;
    int opened = 0;
    for (int it = 0; it < 3000; it++) {
        memcpy(buf, base, n);
        int flips = 1 + it % 3;
        for (int k = 0; k < flips; k++) {
            rng = rng * 1664525u + 1013904223u;
            size_t pos = (rng >> 8) % n;
            rng = rng * 1664525u + 1013904223u;
            buf[pos] = (uint8_t)(rng >> 24);
        }
        write_file(path, buf, n);
        qc_st *st = NULL;
        qc_err e = {{0}};
        if (qc_st_open(&st, path, &e) == 0) {
            opened++;
            for (size_t i = 0; i < qc_st_count(st); i++) {
                const qc_st_tensor *t = qc_st_at(st, i);
                CHECK(t->file_offset + t->nbytes <= n);
            }
            qc_st_free(st);
        } else {
            CHECK(strncmp(e.msg, path, strlen(path)) == 0 && !strchr(e.msg, '\n'));
        }
    }
    CHECK(opened > 0 && opened < 3000);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "%s", "/tmp/qc_test_st_XXXXXX");
    const char *base = getenv("TMPDIR");
    if (base && *base && strlen(base) < 200)
        snprintf(tmpdir, sizeof tmpdir, "%s/qc_test_st_XXXXXX", base);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_stories();
    test_written();
    test_sharded();
    test_fixtures();
    test_generated();
    test_mutations();
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", tmpdir);
    if (failures) {
        fprintf(stderr, "test_safetensors: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_safetensors: ok\n");
    return 0;
}
