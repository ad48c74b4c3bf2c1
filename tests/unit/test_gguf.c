/*
 * tests/unit/test_gguf.c — GGUF input (frontend/gguf.c, gguf_meta.c and the
 * GGUF path of frontend/model.c).
 *
 *  - the real stories260K.gguf: header, metadata getters, tensor infos, hash;
 *  - its config equals config.json's (but for the context length), its
 *    tokenizer blob equals the one built from tokenizer.json byte for byte
 *    (the merges synthesized from the scores reproduce HF's), and the
 *    wikitext-2 text encodes to the 815,070 reference ids through it;
 *  - qc_model_load of the GGUF gives the same graph as the safetensors
 *    checkpoint: every tensor byte-identical after the Q/K un-permutation;
 *  - every dequantized type: blocks packed in this file from known integer
 *    codes and scales (element-wise, from the layout ggml documents) must
 *    dequantize to code * scale (- min) exactly; F16 / BF16 special values;
 *    a round trip through a simple Q8_0 / Q4_0 quantizer;
 *  - a tiny model written here (GGUF v2, alignment 64) with Q8_0 / F16 / F32
 *    tensors and a byte-level tokenizer: the graph holds the dequantized,
 *    un-permuted rows;
 *  - every tests/bad/files/gguf/ fixture gives its cases.txt message; every
 *    truncation of a valid file and a few thousand byte mutations load or
 *    fail cleanly (run under the sanitizer build to catch memory errors).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "qc/frontend.h"
#include "qrt/tokenizer.h"

static int failures;
static char tmpdir[256];

#define CHECK(c)                                                                  \
    do {                                                                          \
        if (!(c)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
            failures++;                                                           \
        }                                                                         \
    } while (0)

#define STORIES QC_DATA "/stories260K"

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)sz + 1);
    if (!b || fread(b, 1, (size_t)sz, f) != (size_t)sz) {
        free(b);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *n = (size_t)sz;
    return b;
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
}

/* ---- a small GGUF writer ------------------------------------------------- */

typedef struct wb {
    uint8_t *p;
    size_t n, cap;
} wb;

static void put(wb *w, const void *d, size_t n) {
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2 + 256;
        w->p = realloc(w->p, w->cap);
        if (!w->p)
            exit(1);
    }
    memcpy(w->p + w->n, d, n);
    w->n += n;
}
static void put8(wb *w, uint8_t v) { put(w, &v, 1); }
static void put16(wb *w, uint16_t v) {
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    put(w, b, 2);
}
static void put32(wb *w, uint32_t v) {
    for (int i = 0; i < 4; i++)
        put8(w, (uint8_t)(v >> (8 * i)));
}
static void put64(wb *w, uint64_t v) {
    for (int i = 0; i < 8; i++)
        put8(w, (uint8_t)(v >> (8 * i)));
}
static void putf(wb *w, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    put32(w, u);
}
static void putstr(wb *w, const char *s) {
    put64(w, strlen(s));
    put(w, s, strlen(s));
}
static void kv_u32(wb *w, const char *k, uint32_t v) {
    putstr(w, k);
    put32(w, QC_GGUF_U32);
    put32(w, v);
}
static void kv_f32(wb *w, const char *k, float v) {
    putstr(w, k);
    put32(w, QC_GGUF_F32);
    putf(w, v);
}
static void kv_str(wb *w, const char *k, const char *v) {
    putstr(w, k);
    put32(w, QC_GGUF_STRING);
    putstr(w, v);
}

/* ---- f16 helpers for the tests (exact for the values used) --------------- */

/* float -> f16 bits for values that are exactly representable. */
static uint16_t to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = u >> 16 & 0x8000;
    int e = (int)(u >> 23 & 0xFF) - 127;
    uint32_t man = u & 0x7FFFFF;
    if (f == 0)
        return (uint16_t)sign;
    if (e < -14) { /* subnormal */
        return (uint16_t)(sign | ((man | 0x800000) >> (13 + (-14 - e))));
    }
    return (uint16_t)(sign | (uint32_t)(e + 15) << 10 | man >> 13);
}

static uint32_t rng = 12345;
static uint32_t rnd(void) {
    rng = rng * 1664525u + 1013904223u;
    return rng >> 8;
}

/* ---- dequantization: pack known codes, expect code * scale --------------- */

typedef struct blk {
    uint8_t b[292];
    float want[256];
} blk;

static void check_block(uint32_t type, const blk *k, int64_t n, const char *what) {
    float got[256];
    CHECK(qc_gguf_dequant(type, k->b, got, n) == 0);
    int bad = 0;
    for (int64_t i = 0; i < n && bad < 3; i++)
        if (got[i] != k->want[i]) {
            fprintf(stderr, "%s: element %lld: got %g, want %g\n", what, (long long)i, got[i], k->want[i]);
            bad++;
        }
    if (bad)
        failures++;
}

/* A power-of-two scale (exact in f16 and in every product below). */
static float pick_scale(void) { return ldexpf(1.0f, (int)(rnd() % 8) - 6) * (rnd() & 1 ? 1.0f : -1.0f); }

static void test_q4_0(void) {
    blk k = {{0}, {0}};
    float d = pick_scale();
    memcpy(k.b, &(uint16_t){to_f16(d)}, 2);
    for (int e = 0; e < 32; e++) {
        int q = (int)(rnd() % 16); /* stored code, value q - 8 */
        k.b[2 + e % 16] |= (uint8_t)(e < 16 ? q : q << 4);
        k.want[e] = (float)(q - 8) * d;
    }
    check_block(QC_GGML_Q4_0, &k, 32, "Q4_0");
}

static void test_q4_1(void) {
    blk k = {{0}, {0}};
    float d = pick_scale(), m = -1.5f;
    uint16_t h[2] = {to_f16(d), to_f16(m)};
    memcpy(k.b, h, 4);
    for (int e = 0; e < 32; e++) {
        int q = (int)(rnd() % 16);
        k.b[4 + e % 16] |= (uint8_t)(e < 16 ? q : q << 4);
        k.want[e] = (float)q * d + m;
    }
    check_block(QC_GGML_Q4_1, &k, 32, "Q4_1");
}

/* Q5_x: low 4 bits as Q4_x, bit 4 of element e is bit e of the u32 qh. */
static void test_q5(int with_min) {
    blk k = {{0}, {0}};
    float d = pick_scale(), m = 0.75f;
    uint16_t h[2] = {to_f16(d), to_f16(m)};
    memcpy(k.b, h, with_min ? 4 : 2);
    size_t qh = with_min ? 4 : 2, qs = qh + 4;
    for (int e = 0; e < 32; e++) {
        int q = (int)(rnd() % 32);
        k.b[qs + e % 16] |= (uint8_t)(e < 16 ? (q & 15) : (q & 15) << 4);
        k.b[qh + e / 8] |= (uint8_t)((q >> 4) << (e % 8));
        k.want[e] = with_min ? (float)q * d + m : (float)(q - 16) * d;
    }
    check_block(with_min ? QC_GGML_Q5_1 : QC_GGML_Q5_0, &k, 32, with_min ? "Q5_1" : "Q5_0");
}

static void test_q8_0(void) {
    blk k = {{0}, {0}};
    float d = pick_scale();
    memcpy(k.b, &(uint16_t){to_f16(d)}, 2);
    for (int e = 0; e < 32; e++) {
        int q = (int)(rnd() % 256) - 128;
        k.b[2 + e] = (uint8_t)(int8_t)q;
        k.want[e] = (float)q * d;
    }
    check_block(QC_GGML_Q8_0, &k, 32, "Q8_0");
}

/* Q2_K [scales 16 | qs 64 | d | dmin]: element e is sub-block e/16 (scale
 * byte: low nibble scale, high nibble min); its 2-bit code sits in byte
 * 32 (e/128) + e%32 of qs at bit 2 ((e%128)/32). */
static void test_q2_k(void) {
    blk k = {{0}, {0}};
    float d = pick_scale(), dmin = 0.125f;
    int sc[16], mn[16];
    for (int s = 0; s < 16; s++) {
        sc[s] = (int)(rnd() % 16), mn[s] = (int)(rnd() % 16);
        k.b[s] = (uint8_t)(sc[s] | mn[s] << 4);
    }
    uint16_t h[2] = {to_f16(d), to_f16(dmin)};
    memcpy(k.b + 80, h, 4);
    for (int e = 0; e < 256; e++) {
        int q = (int)(rnd() % 4);
        k.b[16 + 32 * (e / 128) + e % 32] |= (uint8_t)(q << (2 * ((e % 128) / 32)));
        k.want[e] = d * (float)sc[e / 16] * (float)q - dmin * (float)mn[e / 16];
    }
    check_block(QC_GGML_Q2_K, &k, 256, "Q2_K");
}

/* Q3_K [hmask 32 | qs 64 | scales 12 | d]: value q in -4..3 stored as
 * (q + 4) & 3 in qs (as Q2_K) plus a high bit (set when q >= 0) at bit e/32
 * of hmask[e % 32]; 16 six-bit scales s (value s - 32): low nibble in byte
 * i (i < 8) / high nibble of byte i-8, top two bits in byte 8 + i%4 at
 * bit 2 (i/4). */
static void test_q3_k(void) {
    blk k = {{0}, {0}};
    float d = pick_scale();
    int sc[16];
    for (int i = 0; i < 16; i++) {
        sc[i] = (int)(rnd() % 64);
        k.b[96 + (i < 8 ? i : i - 8)] |= (uint8_t)(i < 8 ? (sc[i] & 15) : (sc[i] & 15) << 4);
        k.b[96 + 8 + i % 4] |= (uint8_t)((sc[i] >> 4) << (2 * (i / 4)));
    }
    memcpy(k.b + 108, &(uint16_t){to_f16(d)}, 2);
    for (int e = 0; e < 256; e++) {
        int q = (int)(rnd() % 8) - 4;
        k.b[32 + 32 * (e / 128) + e % 32] |= (uint8_t)(((q + 4) & 3) << (2 * ((e % 128) / 32)));
        if (q >= 0)
            k.b[e % 32] |= (uint8_t)(1u << (e / 32));
        k.want[e] = d * (float)(sc[e / 16] - 32) * (float)q;
    }
    check_block(QC_GGML_Q3_K, &k, 256, "Q3_K");
}

/* The 12-byte scale/min packing of Q4_K / Q5_K: sub-block j < 4 keeps its
 * 6-bit scale in byte j and min in byte j+4; j >= 4 keeps the low nibbles in
 * byte j+4 (scale low, min high) and the top two bits in the top bits of
 * byte j-4 (scale) and byte j (min). */
static void pack_k4_scales(uint8_t *s, const int *sc, const int *mn) {
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            s[j] |= (uint8_t)sc[j];
            s[j + 4] |= (uint8_t)mn[j];
        } else {
            s[j + 4] |= (uint8_t)((sc[j] & 15) | (mn[j] & 15) << 4);
            s[j - 4] |= (uint8_t)((sc[j] >> 4) << 6);
            s[j] |= (uint8_t)((mn[j] >> 4) << 6);
        }
    }
}

/* Q4_K / Q5_K: 8 sub-blocks of 32 (e / 32); the 4 low bits of element e
 * are nibble (e%64)/32 of qs[32 (e/64) + e%32]; Q5_K's fifth bit is bit
 * e/32 of qh[e % 32]. value = d sc q - dmin m. */
static void test_q45_k(int five) {
    blk k = {{0}, {0}};
    float d = pick_scale(), dmin = 0.25f;
    int sc[8], mn[8];
    for (int j = 0; j < 8; j++)
        sc[j] = (int)(rnd() % 64), mn[j] = (int)(rnd() % 64);
    uint16_t h[2] = {to_f16(d), to_f16(dmin)};
    memcpy(k.b, h, 4);
    pack_k4_scales(k.b + 4, sc, mn);
    size_t qs = five ? 48 : 16;
    for (int e = 0; e < 256; e++) {
        int q = (int)(rnd() % (five ? 32 : 16));
        k.b[qs + 32 * (e / 64) + e % 32] |= (uint8_t)((q & 15) << (4 * ((e % 64) / 32)));
        if (five)
            k.b[16 + e % 32] |= (uint8_t)((q >> 4) << (e / 32));
        k.want[e] = d * (float)sc[e / 32] * (float)q - dmin * (float)mn[e / 32];
    }
    check_block(five ? QC_GGML_Q5_K : QC_GGML_Q4_K, &k, 256, five ? "Q5_K" : "Q4_K");
}

/* Q6_K [ql 128 | qh 64 | scales i8 16 | d]: value q in -32..31 stored as
 * q + 32; element e = 128h + 32r + l: low nibble (r >= 2: high nibble) of
 * ql[64h + 32 (r & 1) + l], top two bits at bit 2r of qh[32h + l];
 * scale index e / 16. */
static void test_q6_k(void) {
    blk k = {{0}, {0}};
    float d = pick_scale();
    int8_t sc[16];
    for (int i = 0; i < 16; i++) {
        sc[i] = (int8_t)((int)(rnd() % 64) - 32);
        k.b[192 + i] = (uint8_t)sc[i];
    }
    memcpy(k.b + 208, &(uint16_t){to_f16(d)}, 2);
    for (int e = 0; e < 256; e++) {
        int q = (int)(rnd() % 64) - 32, u = q + 32;
        int h = e / 128, r = (e % 128) / 32, l = e % 32;
        k.b[64 * h + 32 * (r & 1) + l] |= (uint8_t)((u & 15) << (4 * (r >> 1)));
        k.b[128 + 32 * h + l] |= (uint8_t)((u >> 4) << (2 * r));
        k.want[e] = d * (float)sc[e / 16] * (float)q;
    }
    check_block(QC_GGML_Q6_K, &k, 256, "Q6_K");
}

static void test_float_types(void) {
    /* f16 bits -> expected value by the IEEE formula */
    static const uint16_t hs[] = {0x0000, 0x8000, 0x3C00, 0xC000, 0x0001, 0x03FF, 0x0400, 0x7BFF, 0x3555, 0x7C00, 0xFC00};
    enum { N = sizeof hs / sizeof hs[0] };
    float got[N];
    CHECK(qc_gguf_dequant(QC_GGML_F16, hs, got, N) == 0);
    for (int i = 0; i < N; i++) {
        int e = hs[i] >> 10 & 31, m = hs[i] & 1023, s = hs[i] >> 15;
        double v = e == 31 ? INFINITY : e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
        if (s)
            v = -v;
        if (got[i] != (float)v || !signbit(got[i]) != !signbit(v)) {
            fprintf(stderr, "F16 %04x: got %g want %g\n", hs[i], got[i], v);
            failures++;
        }
    }
    uint16_t nan = 0x7E00;
    CHECK(qc_gguf_dequant(QC_GGML_F16, &nan, got, 1) == 0 && isnan(got[0]));
    static const uint16_t bs[] = {0x3F80, 0xC040, 0x0000, 0x7F80, 0x4049};
    float bw[] = {1.0f, -3.0f, 0.0f, INFINITY, 3.140625f};
    CHECK(qc_gguf_dequant(QC_GGML_BF16, bs, got, 5) == 0);
    for (int i = 0; i < 5; i++)
        CHECK(got[i] == bw[i]);
    float f[3] = {1.5f, -2.25f, 1e-30f}, g[3];
    CHECK(qc_gguf_dequant(QC_GGML_F32, f, g, 3) == 0 && memcmp(f, g, sizeof f) == 0);
    /* refusals */
    CHECK(qc_gguf_dequant(QC_GGML_Q4_0, f, g, 16) == -1);   /* not a whole block */
    CHECK(qc_gguf_dequant(16 /* IQ2_XXS */, f, g, 256) == -1);
    CHECK(qc_gguf_dequant(99, f, g, 1) == -1);
    CHECK(qc_gguf_can_dequant(QC_GGML_Q6_K) && !qc_gguf_can_dequant(15));
    int64_t bl, by;
    char tb[16];
    CHECK(qc_gguf_type_size(QC_GGML_Q4_K, &bl, &by) == 0 && bl == 256 && by == 144);
    CHECK(qc_gguf_type_size(QC_GGML_Q5_1, &bl, &by) == 0 && bl == 32 && by == 24);
    CHECK(qc_gguf_type_size(4, &bl, &by) == -1); /* Q4_2, removed from ggml */
    CHECK(strcmp(qc_gguf_type_name(QC_GGML_Q3_K, tb), "Q3_K") == 0);
    CHECK(strcmp(qc_gguf_type_name(77, tb), "type 77") == 0);
}

/* Round trip: a plain absmax quantizer (written here) into Q8_0 / Q4_0
 * blocks; dequantization must land within half a step of the input. */
static void test_round_trip(void) {
    for (int t = 0; t < 2; t++) {
        float x[64], y[64];
        uint8_t b[2 * 34] = {0};
        for (int i = 0; i < 64; i++)
            x[i] = ((float)(rnd() % 20001) - 10000.0f) / 3000.0f;
        for (int bi = 0; bi < 2; bi++) {
            float amax = 0;
            for (int i = 0; i < 32; i++)
                amax = fmaxf(amax, fabsf(x[32 * bi + i]));
            float d = t == 0 ? amax / 127.0f : amax / 7.0f;
            uint16_t dh = to_f16(d); /* not exact: use the rounded scale */
            float dr;
            qc_gguf_dequant(QC_GGML_F16, &dh, &dr, 1);
            d = dh ? dr : d;
            if (t == 0) {
                uint8_t *p = b + 34 * bi;
                memcpy(p, &dh, 2);
                for (int i = 0; i < 32; i++)
                    p[2 + i] = (uint8_t)(int8_t)lrintf(x[32 * bi + i] / d);
            } else {
                uint8_t *p = b + 18 * bi;
                memcpy(p, &dh, 2);
                for (int i = 0; i < 32; i++) {
                    long q = lrintf(x[32 * bi + i] / d) + 8;
                    q = q < 0 ? 0 : q > 15 ? 15 : q;
                    p[2 + i % 16] |= (uint8_t)(i < 16 ? q : q << 4);
                }
            }
        }
        CHECK(qc_gguf_dequant(t == 0 ? QC_GGML_Q8_0 : QC_GGML_Q4_0, b, y, 64) == 0);
        for (int bi = 0; bi < 2; bi++) {
            float amax = 0, worst = 0;
            for (int i = 0; i < 32; i++)
                amax = fmaxf(amax, fabsf(x[32 * bi + i]));
            for (int i = 0; i < 32; i++)
                worst = fmaxf(worst, fabsf(x[32 * bi + i] - y[32 * bi + i]));
            float step = amax / (t == 0 ? 127.0f : 7.0f);
            if (!(worst <= 0.51f * step * 1.01f + 1e-6f)) {
                fprintf(stderr, "%s round trip: error %g for step %g\n", t ? "Q4_0" : "Q8_0", worst, step);
                failures++;
            }
        }
    }
}

static void test_dequant(void) {
    for (int rep = 0; rep < 50; rep++) {
        test_q4_0();
        test_q4_1();
        test_q5(0);
        test_q5(1);
        test_q8_0();
        test_q2_k();
        test_q3_k();
        test_q45_k(0);
        test_q45_k(1);
        test_q6_k();
    }
    test_float_types();
    test_round_trip();
}

/* ---- the real file ------------------------------------------------------- */

static void test_real_file(void) {
    qc_gguf *g = NULL;
    qc_err err = {{0}};
    if (qc_gguf_open(&g, STORIES "/stories260K.gguf", &err)) {
        fprintf(stderr, "FAIL: %s\n", err.msg);
        failures++;
        return;
    }
    CHECK(qc_gguf_version(g) == 3);
    CHECK(qc_gguf_alignment(g) == 32);
    CHECK(qc_gguf_n_kv(g) == 19);
    CHECK(qc_gguf_n_tensors(g) == 48);
    CHECK(strcmp(qc_gguf_kv_at(g, 0)->key, "tokenizer.ggml.tokens") == 0);
    int64_t v = 0;
    double f = 0;
    qc_gguf_str s;
    CHECK(qc_gguf_get_int(g, "llama.block_count", &v, &err) == 1 && v == 5);
    CHECK(qc_gguf_get_int(g, "tokenizer.ggml.padding_token_id", &v, &err) == 1 && v == 4294967295ll);
    CHECK(qc_gguf_get_float(g, "llama.attention.layer_norm_rms_epsilon", &f, &err) == 1 && fabs(f - 1e-5) < 1e-10);
    CHECK(qc_gguf_get_str(g, "general.architecture", &s, &err) == 1 && s.len == 5 && memcmp(s.s, "llama", 5) == 0);
    CHECK(qc_gguf_get_int(g, "no.such.key", &v, &err) == 0);
    CHECK(qc_gguf_get_int(g, "general.architecture", &v, &err) == -1 &&
          strstr(err.msg, "stories260K.gguf: key 'general.architecture': expected an integer, found string (offset "));
    CHECK(qc_gguf_get_str(g, "llama.block_count", &s, &err) == -1 && strstr(err.msg, "expected a string, found u32"));
    int b = 0;
    CHECK(qc_gguf_get_bool(g, "llama.block_count", &b, &err) == -1 && strstr(err.msg, "expected a bool"));
    const qc_gguf_kv *kv = NULL;
    CHECK(qc_gguf_get_arr(g, "tokenizer.ggml.scores", QC_GGUF_STRING, &kv, &err) == -1 &&
          strstr(err.msg, "expected an array of string, found an array of f32"));
    CHECK(qc_gguf_get_arr(g, "tokenizer.ggml.tokens", QC_GGUF_STRING, &kv, &err) == 1 && kv->n == 512);
    if (kv && kv->n == 512) {
        qc_gguf_str *strs = malloc(512 * sizeof *strs);
        qc_gguf_arr_strings(kv, strs);
        CHECK(strs[1].len == 3 && memcmp(strs[1].s, "<s>", 3) == 0);
        CHECK(strs[259].len == 4 && memcmp(strs[259].s, "\xE2\x96\x81t", 4) == 0);
        free(strs);
    }
    CHECK(qc_gguf_get_arr(g, "tokenizer.ggml.scores", QC_GGUF_F32, &kv, &err) == 1 &&
          qc_gguf_arr_float(kv, 261) == -2.0);
    CHECK(qc_gguf_get_arr(g, "tokenizer.ggml.token_type", -1, &kv, &err) == 1 && qc_gguf_arr_int(kv, 0) == 2 &&
          qc_gguf_arr_int(kv, 3) == 6);

    const qc_gguf_tensor *t = qc_gguf_find_tensor(g, "token_embd.weight");
    CHECK(t && t->type == QC_GGML_F32 && t->ndim == 2 && t->ne[0] == 64 && t->ne[1] == 512 && t->ne[2] == 1);
    CHECK(t && t->nbytes == 512 * 64 * 4 && t->file_offset == 14176 && t->file_offset % 32 == 0);
    t = qc_gguf_find_tensor(g, "blk.4.ffn_norm.weight");
    CHECK(t && t->ndim == 1 && t->ne[0] == 64 && t->file_offset == 14176 + 1170944);
    CHECK(qc_gguf_tensor_at(g, 47) == t);
    CHECK(!qc_gguf_find_tensor(g, "blk.5.ffn_norm.weight"));

    size_t n;
    uint8_t *whole = slurp(STORIES "/stories260K.gguf", &n), h[16];
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(whole, n));
    qc_gguf_hash(g, h);
    CHECK(memcmp(h, c.digest, 16) == 0);
    free(whole);
    qc_gguf_free(g);
    qc_gguf_free(NULL);
}

/* Config, tokenizer and the whole graph against the safetensors checkpoint. */
static void test_equivalence(void) {
    qc_gguf *g = NULL;
    qc_err err = {{0}};
    qc_config a, b;
    if (qc_gguf_open(&g, STORIES "/stories260K.gguf", &err) || qc_gguf_config(g, &a, &err) ||
        qc_config_load(&b, STORIES "/config.json", &err)) {
        fprintf(stderr, "FAIL: %s\n", err.msg);
        failures++;
        qc_gguf_free(g);
        return;
    }
    CHECK(a.max_ctx == 2048 && b.max_ctx == 512); /* the GGUF says 2048 */
    a.max_ctx = b.max_ctx;
    CHECK(memcmp(&a, &b, sizeof a) == 0);

    uint8_t *bg = NULL, *bj = NULL;
    size_t ng = 0, nj = 0;
    CHECK(qc_gguf_tokenizer(g, &bg, &ng, &err) == 0);
    CHECK(qc_tokenizer_load(&bj, &nj, STORIES "/tokenizer.json", &err) == 0);
    CHECK(ng == nj && bg && bj && memcmp(bg, bj, ng) == 0);
    if (ng != nj || (bg && bj && memcmp(bg, bj, ng < nj ? ng : nj)))
        fprintf(stderr, "tokenizer blobs differ: %zu vs %zu bytes\n", ng, nj);

    /* wikitext-2 through the GGUF tokenizer: the 815,070 reference ids */
    qrt_tok *tk = NULL;
    char msg[256];
    size_t tl, rl;
    char *text = (char *)slurp(QC_DATA "/text/wikitext2_test_gptq_joined.txt", &tl);
    uint8_t *ref = slurp(STORIES "/wikitext2_test_gptq_joined.ids.i32", &rl);
    int32_t *ids = NULL;
    size_t nid = 0;
    CHECK(text && ref && qrt_tok_open(&tk, bg, ng, msg, sizeof msg) == 0);
    if (tk && text && ref && qrt_tok_encode(tk, text, tl, 0, &ids, &nid) == 0) {
        int32_t r0;
        memcpy(&r0, ref, 4);
        CHECK(qrt_tok_add_bos(tk) && qrt_tok_bos(tk) == r0);
        CHECK(nid + 1 == rl / 4 && memcmp(ids, ref + 4, 4 * nid) == 0);
    }
    free(ids);
    free(text);
    free(ref);
    qrt_tok_free(tk);
    free(bg);
    free(bj);
    qc_gguf_free(g);

    /* The graphs: same ops, tensors byte-identical (Q/K un-permuted). */
    qc_graph *gg = NULL, *gs = NULL;
    qc_st *st = NULL, *st2 = NULL;
    CHECK(qc_model_load(&gg, &st, STORIES "/stories260K.gguf", &err) == 0);
    CHECK(st == NULL);
    CHECK(qc_model_load(&gs, &st2, STORIES, &err) == 0);
    if (gg && gs) {
        CHECK(gg->n_tensors == gs->n_tensors && gg->n_ops == gs->n_ops && gg->n_bufs == gs->n_bufs);
        CHECK(gg->n_ops == gs->n_ops && memcmp(gg->ops, gs->ops, (size_t)gg->n_ops * sizeof *gg->ops) == 0);
        for (int32_t i = 0; i < gg->n_tensors && i < gs->n_tensors; i++) {
            const qc_tensor *x = &gg->tensors[i], *y = &gs->tensors[i];
            int same = x->dtype == y->dtype && x->ndim == y->ndim && x->shape[0] == y->shape[0] &&
                       (x->ndim == 1 || x->shape[1] == y->shape[1]) && x->nbytes == y->nbytes &&
                       memcmp(x->data, y->data, x->nbytes) == 0;
            if (!same) {
                fprintf(stderr, "tensor %d: %s differs from %s\n", i, x->name, y->name);
                failures++;
            }
            /* only Q and K are copies; the rest borrow the mmap */
            int qk = strstr(x->name, "attn_q") || strstr(x->name, "attn_k");
            CHECK(qk ? x->owned != NULL : x->owned == NULL);
        }
        CHECK(strcmp(gg->tensors[0].name, "token_embd.weight") == 0);
        CHECK(strcmp(gg->source_name, "stories260K.gguf") == 0);
        CHECK(gg->cfg.tie_embeddings == 1); /* output.weight equals token_embd.weight */
        CHECK(gg->tokenizer_size == gs->tokenizer_size &&
              memcmp(gg->tokenizer, gs->tokenizer, gg->tokenizer_size) == 0);
    } else {
        fprintf(stderr, "FAIL: %s\n", err.msg);
    }
    qc_graph_free(gg);
    qc_graph_free(gs);
    qc_st_free(st2);
}

/* ---- a tiny model with quantized tensors --------------------------------- */

#define TD 32 /* hidden */
#define TH 4  /* heads */
#define TKV 2 /* KV heads */
#define THD 8 /* head dim */
#define TF 64 /* ffn */
#define TV 6  /* vocab */

typedef struct ttensor {
    const char *name;
    uint32_t type;
    int64_t ne0, ne1; /* ne1 = 0: a vector */
    wb data;
    float *want; /* [rows * cols] dequantized, in file row order */
} ttensor;

/* Q8_0 rows of random codes with scale 2^-5; returns the values. */
static void fill_q8_0(ttensor *t) {
    int64_t rows = t->ne1 ? t->ne1 : 1, n = t->ne0 * rows;
    t->want = malloc((size_t)n * sizeof *t->want);
    for (int64_t b = 0; b < n / 32; b++) {
        put16(&t->data, to_f16(1.0f / 32));
        for (int i = 0; i < 32; i++) {
            int q = (int)(rnd() % 255) - 127;
            put8(&t->data, (uint8_t)(int8_t)q);
            t->want[32 * b + i] = (float)q / 32;
        }
    }
}

static void fill_f16(ttensor *t) {
    int64_t rows = t->ne1 ? t->ne1 : 1, n = t->ne0 * rows;
    t->want = malloc((size_t)n * sizeof *t->want);
    for (int64_t i = 0; i < n; i++) {
        float v = (float)((int)(rnd() % 201) - 100) / 256;
        put16(&t->data, to_f16(v));
        t->want[i] = v;
    }
}

static void fill_f32(ttensor *t, float base) {
    int64_t rows = t->ne1 ? t->ne1 : 1, n = t->ne0 * rows;
    t->want = malloc((size_t)n * sizeof *t->want);
    for (int64_t i = 0; i < n; i++) {
        float v = base + (float)((int)(rnd() % 201) - 100) / 1000;
        putf(&t->data, v);
        t->want[i] = v;
    }
}

/* Q4_K rows: every sub-block scale 1, min 0, d = 2^-4, dmin = 0; codes random. */
static void fill_q4_k(ttensor *t) {
    int64_t rows = t->ne1 ? t->ne1 : 1, n = t->ne0 * rows;
    t->want = malloc((size_t)n * sizeof *t->want);
    for (int64_t b = 0; b < n / 256; b++) {
        uint8_t qb[144] = {0};
        uint16_t h[2] = {to_f16(1.0f / 16), 0};
        memcpy(qb, h, 4);
        int sc[8] = {1, 1, 1, 1, 1, 1, 1, 1}, mn[8] = {0};
        pack_k4_scales(qb + 4, sc, mn);
        for (int e = 0; e < 256; e++) {
            int q = (int)(rnd() % 16);
            qb[16 + 32 * (e / 64) + e % 32] |= (uint8_t)(q << (4 * ((e % 64) / 32)));
            t->want[256 * b + e] = (float)q / 16;
        }
        put(&t->data, qb, sizeof qb);
    }
}

/* The HF row that GGUF row r of a Q/K projection with `heads` heads becomes. */
static int64_t hf_row(int64_t r, int64_t rows, int64_t heads) {
    int64_t hd = rows / heads, h = r / hd, k = r % hd;
    return h * hd + (k % 2) * (hd / 2) + k / 2;
}

static void test_tiny_quantized(void) {
    ttensor ts[] = {
        {"token_embd.weight", QC_GGML_Q8_0, TD, TV, {0}, 0},
        {"output_norm.weight", QC_GGML_F32, TD, 0, {0}, 0},
        {"output.weight", QC_GGML_F16, TD, TV, {0}, 0},
        {"blk.0.attn_norm.weight", QC_GGML_F32, TD, 0, {0}, 0},
        {"blk.0.attn_q.weight", QC_GGML_Q8_0, TD, TH * THD, {0}, 0},
        {"blk.0.attn_k.weight", QC_GGML_F16, TD, TKV * THD, {0}, 0},
        {"blk.0.attn_v.weight", QC_GGML_F16, TD, TKV * THD, {0}, 0},
        {"blk.0.attn_output.weight", QC_GGML_Q8_0, TH * THD, TD, {0}, 0},
        {"blk.0.ffn_norm.weight", QC_GGML_F32, TD, 0, {0}, 0},
        {"blk.0.ffn_gate.weight", QC_GGML_Q8_0, TD, TF, {0}, 0},
        {"blk.0.ffn_up.weight", QC_GGML_Q8_0, TD, TF, {0}, 0},
        {"blk.0.ffn_down.weight", QC_GGML_Q8_0, TF, TD, {0}, 0},
    };
    enum { NT = sizeof ts / sizeof ts[0] };
    for (int i = 0; i < NT; i++) {
        if (ts[i].type == QC_GGML_Q8_0)
            fill_q8_0(&ts[i]);
        else if (ts[i].type == QC_GGML_F16)
            fill_f16(&ts[i]);
        else
            fill_f32(&ts[i], 1.0f);
    }
    wb w = {0};
    put(&w, "GGUF", 4);
    put32(&w, 2); /* version 2 */
    put64(&w, NT);
    put64(&w, 14);
    kv_str(&w, "general.architecture", "llama");
    kv_u32(&w, "llama.block_count", 1);
    kv_u32(&w, "llama.embedding_length", TD);
    kv_u32(&w, "llama.feed_forward_length", TF);
    kv_u32(&w, "llama.attention.head_count", TH);
    kv_u32(&w, "llama.attention.head_count_kv", TKV);
    kv_f32(&w, "llama.attention.layer_norm_rms_epsilon", 1e-6f);
    kv_f32(&w, "llama.rope.freq_base", 500000.0f);
    kv_u32(&w, "general.alignment", 64);
    kv_str(&w, "tokenizer.ggml.model", "gpt2");
    kv_str(&w, "tokenizer.ggml.pre", "smollm");
    putstr(&w, "tokenizer.ggml.tokens");
    put32(&w, QC_GGUF_ARRAY);
    put32(&w, QC_GGUF_STRING);
    put64(&w, TV);
    /* "\xC4\xA0" is U+0120, GPT-2's spelling of a space byte */
    static const char *const toks[TV] = {"<|endoftext|>", "a", "b", "ab", "\xC4\xA0", "\xC4\240ab"};
    for (int i = 0; i < TV; i++)
        putstr(&w, toks[i]);
    putstr(&w, "tokenizer.ggml.token_type");
    put32(&w, QC_GGUF_ARRAY);
    put32(&w, QC_GGUF_I32);
    put64(&w, TV);
    for (int i = 0; i < TV; i++)
        put32(&w, i == 0 ? 3 : 1);
    putstr(&w, "tokenizer.ggml.merges");
    put32(&w, QC_GGUF_ARRAY);
    put32(&w, QC_GGUF_STRING);
    put64(&w, 2);
    putstr(&w, "a b");
    putstr(&w, "\xC4\xA0 ab");
    uint64_t off = 0;
    for (int i = 0; i < NT; i++) {
        putstr(&w, ts[i].name);
        put32(&w, ts[i].ne1 ? 2 : 1);
        put64(&w, (uint64_t)ts[i].ne0);
        if (ts[i].ne1)
            put64(&w, (uint64_t)ts[i].ne1);
        put32(&w, ts[i].type);
        put64(&w, off);
        off += (ts[i].data.n + 63) / 64 * 64;
    }
    while (w.n % 64)
        put8(&w, 0);
    for (int i = 0; i < NT; i++) {
        put(&w, ts[i].data.p, ts[i].data.n);
        while (w.n % 64)
            put8(&w, 0);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/tiny_q.gguf", tmpdir);
    write_file(path, w.p, w.n);

    qc_graph *g = NULL;
    qc_st *st = NULL;
    qc_err err = {{0}};
    if (qc_model_load(&g, &st, path, &err)) {
        fprintf(stderr, "FAIL: tiny quantized model: %s\n", err.msg);
        failures++;
    } else {
        CHECK(g->cfg.dim == TD && g->cfg.n_heads == TH && g->cfg.n_kv_heads == TKV && g->cfg.head_dim == THD);
        CHECK(g->cfg.vocab == TV && g->cfg.rope_theta == 500000.0f && g->cfg.tie_embeddings == 0);
        CHECK(g->cfg.max_ctx == 2048 && g->cfg.bos == -1);
        for (int i = 0; i < NT; i++) {
            const qc_tensor *t = NULL;
            for (int32_t j = 0; j < g->n_tensors; j++)
                if (strcmp(g->tensors[j].name, ts[i].name) == 0)
                    t = &g->tensors[j];
            if (!t) {
                fprintf(stderr, "FAIL: %s not in the graph\n", ts[i].name);
                failures++;
                continue;
            }
            int64_t rows = ts[i].ne1 ? ts[i].ne1 : ts[i].ne0, cols = ts[i].ne1 ? ts[i].ne0 : 1;
            int f16 = ts[i].type == QC_GGML_F16;
            CHECK(t->dtype == (f16 ? QRT_DT_F16 : QRT_DT_F32));
            CHECK(t->shape[0] == rows && (!ts[i].ne1 || t->shape[1] == cols));
            int64_t heads = strstr(ts[i].name, "attn_q") ? TH : strstr(ts[i].name, "attn_k") ? TKV : 0;
            /* borrowed unless dequantized or permuted */
            CHECK((ts[i].type == QC_GGML_Q8_0 || heads) ? t->owned != NULL : t->owned == NULL);
            int bad = 0;
            for (int64_t r = 0; r < rows && bad < 3; r++)
                for (int64_t c = 0; c < cols && bad < 3; c++) {
                    int64_t hr = heads ? hf_row(r, rows, heads) : r;
                    float got;
                    if (f16) {
                        uint16_t h16;
                        memcpy(&h16, (const uint8_t *)t->data + 2 * (hr * cols + c), 2);
                        qc_gguf_dequant(QC_GGML_F16, &h16, &got, 1);
                    } else {
                        memcpy(&got, (const uint8_t *)t->data + 4 * (hr * cols + c), 4);
                    }
                    if (got != ts[i].want[r * cols + c]) {
                        fprintf(stderr, "%s: file row %lld col %lld: got %g want %g\n", ts[i].name, (long long)r,
                                (long long)c, got, ts[i].want[r * cols + c]);
                        bad++;
                    }
                }
            failures += bad != 0;
        }
        /* the byte-level tokenizer from the metadata */
        qrt_tok *tk = NULL;
        char msg[256];
        int32_t *ids = NULL;
        size_t n = 0;
        CHECK(qrt_tok_open(&tk, g->tokenizer, g->tokenizer_size, msg, sizeof msg) == 0);
        if (tk && qrt_tok_encode(tk, "ab ab", 5, 0, &ids, &n) == 0)
            CHECK(n == 2 && ids[0] == 3 && ids[1] == 5);
        free(ids);
        qrt_tok_free(tk);
    }
    qc_graph_free(g);

    /* K-quants need rows of 256 (wider than this model): a Q4_K tensor
     * dequantizes to the codes it was packed from. */
    ttensor q = {"x", QC_GGML_Q4_K, 256, 2, {0}, 0};
    fill_q4_k(&q);
    float *y = malloc(512 * sizeof *y);
    CHECK(qc_gguf_dequant(QC_GGML_Q4_K, q.data.p, y, 512) == 0 && memcmp(y, q.want, 512 * sizeof *y) == 0);
    free(y);
    free(q.data.p);
    free(q.want);

    for (int i = 0; i < NT; i++) {
        free(ts[i].data.p);
        free(ts[i].want);
    }
    free(w.p);
}

/* ---- bad files ----------------------------------------------------------- */

static void test_bad_fixtures(void) {
    size_t n;
    char *cases = (char *)slurp(QC_TESTS_DIR "/bad/cases.txt", &n);
    if (!cases) {
        fprintf(stderr, "FAIL: no cases.txt\n");
        failures++;
        return;
    }
    cases[n] = 0;
    int seen = 0;
    for (char *line = strtok(cases, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "gguf/", 5) != 0)
            continue;
        char *tab = strchr(line, '\t');
        if (!tab)
            continue;
        *tab = 0;
        char path[512];
        snprintf(path, sizeof path, "%s/bad/files/%s", QC_TESTS_DIR, line);
        qc_graph *g = NULL;
        qc_st *st = NULL;
        qc_err err = {{0}};
        int rc = qc_model_load(&g, &st, path, &err);
        if (rc == 0 || strncmp(err.msg, path, strlen(path)) != 0 || !strstr(err.msg, tab + 1) ||
            strchr(err.msg, '\n')) {
            fprintf(stderr, "FAIL %s: got '%s', want '%s'\n", line, rc ? err.msg : "success", tab + 1);
            failures++;
        }
        qc_graph_free(g);
        seen++;
    }
    CHECK(seen >= 25);
    free(cases);
    /* the valid tiny model loads */
    qc_graph *g = NULL;
    qc_st *st = NULL;
    qc_err err = {{0}};
    CHECK(qc_model_load(&g, &st, QC_TESTS_DIR "/bad/files/gguf/ok_tiny.gguf", &err) == 0);
    qc_graph_free(g);
}

/* Generated bad headers around a valid file. */
static void test_bad_generated(void) {
    size_t n;
    uint8_t *ok = slurp(QC_TESTS_DIR "/bad/files/gguf/ok_tiny.gguf", &n);
    if (!ok) {
        failures++;
        return;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/gen.gguf", tmpdir);
    uint8_t *buf = malloc(n + 64);
    struct {
        size_t at;
        uint32_t v32;
        const char *want;
    } edits[] = {
        {4, 0x03000000u, "big-endian GGUF files are not supported"},
        {4, 0, "unsupported GGUF version 0"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        memcpy(buf, ok, n);
        memcpy(buf + edits[i].at, &edits[i].v32, 4);
        write_file(path, buf, n);
        qc_gguf *g = NULL;
        qc_err err = {{0}};
        if (qc_gguf_open(&g, path, &err) == 0 || !strstr(err.msg, edits[i].want)) {
            fprintf(stderr, "FAIL: edit %zu: '%s', want '%s'\n", i, err.msg, edits[i].want);
            failures++;
        }
        qc_gguf_free(g);
    }
    /* Every truncation fails cleanly with one line naming the file. */
    for (size_t cut = 0; cut < n; cut++) {
        write_file(path, ok, cut);
        qc_gguf *g = NULL;
        qc_err err = {{0}};
        int rc = qc_gguf_open(&g, path, &err);
        if (rc == 0 || strncmp(err.msg, path, strlen(path)) != 0 || strchr(err.msg, '\n')) {
            fprintf(stderr, "FAIL: truncated at %zu: %s\n", cut, rc ? err.msg : "opened");
            failures++;
            qc_gguf_free(g);
            break;
        }
    }
    /* Random mutations: load or fail, never crash (sanitizer build). */
    uint32_t loaded = 0, failed = 0;
    for (int it = 0; it < 3000; it++) {
        memcpy(buf, ok, n);
        int k = 1 + (int)(rnd() % 4);
        for (int j = 0; j < k; j++) {
            size_t at = rnd() % (n < 1600 ? n : 1600); /* mostly the header and metadata */
            if (rnd() % 4 == 0)
                at = rnd() % n;
            uint32_t kind = rnd() % 4;
            buf[at] = kind == 0 ? (uint8_t)rnd() : kind == 1 ? 0xFF : kind == 2 ? 0 : (uint8_t)(buf[at] ^ (1u << (rnd() % 8)));
        }
        write_file(path, buf, n);
        qc_graph *g = NULL;
        qc_st *st = NULL;
        qc_err err = {{0}};
        if (qc_model_load(&g, &st, path, &err) == 0) {
            loaded++;
        } else {
            failed++;
            if (strncmp(err.msg, path, strlen(path)) != 0) {
                fprintf(stderr, "FAIL: mutation %d: message does not name the file: %s\n", it, err.msg);
                failures++;
            }
        }
        qc_graph_free(g);
    }
    printf("mutations: %u loaded, %u refused\n", loaded, failed);
    free(buf);
    free(ok);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_gguf_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_dequant();
    test_real_file();
    test_equivalence();
    test_tiny_quantized();
    test_bad_fixtures();
    test_bad_generated();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", tmpdir);
    if (failures) {
        fprintf(stderr, "%d failures\n", failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}
