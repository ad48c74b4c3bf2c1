/*
 * tests/unit/test_tokenizer.c — tokenizer.json -> blob -> encode / decode.
 *
 *   fixtures     tests/unit/tok_<name>.json + .expect, made with the HF
 *                `tokenizers` package (tok_make_fixtures.py): every style
 *                qcc supports (GPT-2, SmolLM2 digits, add_prefix_space,
 *                Llama-3 / Qwen2 split patterns, Metaspace with and without
 *                split, stories260K's Prepend/Replace) must give HF's ids
 *   round trip   random bytes (invalid UTF-8, NULs, multibyte characters)
 *                encode -> decode back to the same bytes
 *   greedy       stories260K's greedy_256 ids decode to greedy_256.txt
 *   specials     parse_special on / off, bos / eos / add_bos
 *   bad input    truncated and corrupted blobs are refused (or, when they
 *                still validate, work without touching memory they should
 *                not: run this under the sanitizer build); bad tokenizer.json
 *                files give one line naming the key
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qc/frontend.h"
#include "qrt/tokenizer.h"

static int fails;

static void fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    fails++;
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap + 1);
    size_t r;
    while (b && (r = fread(b + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *q = realloc(b, 2 * cap + 1);
            if (!q) {
                free(b);
                b = NULL;
                break;
            }
            b = q, cap *= 2;
        }
    }
    fclose(f);
    if (b)
        b[n] = 0;
    *len = n;
    return b;
}

typedef struct loaded {
    uint8_t *blob;
    size_t size;
    qrt_tok *tok;
} loaded;

static int load(loaded *L, const char *path) {
    qc_err err;
    char msg[256];
    memset(L, 0, sizeof *L);
    if (qc_tokenizer_load(&L->blob, &L->size, path, &err)) {
        fail("%s", err.msg);
        return -1;
    }
    if (qrt_tok_open(&L->tok, L->blob, L->size, msg, sizeof msg)) {
        fail("%s: %s", path, msg);
        free(L->blob);
        return -1;
    }
    return 0;
}

static void unload(loaded *L) {
    qrt_tok_free(L->tok);
    free(L->blob);
}

/* Concatenated qrt_tok_decode pieces, starting with prev = -1. */
static char *decode_all(const qrt_tok *t, const int32_t *ids, size_t n, size_t *len) {
    size_t cap = 64, o = 0;
    char *out = malloc(cap);
    int32_t prev = -1;
    for (size_t i = 0; out && i < n; i++) {
        size_t need = qrt_tok_decode(t, prev, ids[i], NULL, 0);
        if (o + need + 1 > cap) {
            while (o + need + 1 > cap)
                cap *= 2;
            char *q = realloc(out, cap);
            if (!q) {
                free(out);
                return NULL;
            }
            out = q;
        }
        size_t got = qrt_tok_decode(t, prev, ids[i], out + o, need);
        if (got != need)
            fail("decode of %d: %zu bytes, then %zu", ids[i], need, got);
        o += need;
        prev = ids[i];
    }
    *len = o;
    return out;
}

static size_t unhex(const char *h, char *out) {
    size_t n = 0;
    if (h[0] == '-')
        return 0;
    for (; h[0] && h[1] && h[0] != '\n'; h += 2) {
        unsigned v;
        sscanf(h, "%2x", &v);
        out[n++] = (char)v;
    }
    return n;
}

static void show(const char *what, const int32_t *ids, size_t n) {
    fprintf(stderr, "  %s:", what);
    for (size_t i = 0; i < n && i < 40; i++)
        fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "%s\n", n > 40 ? " ..." : "");
}

/* ---- fixtures: HF's ids for many strings ---------------------------------- */

static void test_fixture(const char *tok_path, const char *expect_path) {
    loaded L;
    if (load(&L, tok_path))
        return;
    size_t len;
    char *ex = slurp(expect_path, &len);
    if (!ex) {
        fail("%s: cannot open", expect_path);
        unload(&L);
        return;
    }
    char *text = malloc(len), *dtext = malloc(len);
    int32_t *want = malloc(len * sizeof *want);
    size_t n_text = 0, n_want = 0, cases = 0, bad = 0, bad_dec = 0;
    for (char *line = strtok(ex, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == 'T') {
            n_text = unhex(line + 2, text);
        } else if (line[0] == 'I') {
            n_want = 0;
            for (char *p = line + 2; *p && *p != '-';) {
                char *e;
                want[n_want++] = (int32_t)strtol(p, &e, 10);
                if (e == p)
                    break;
                p = e;
            }
        } else if (line[0] == 'D') {
            size_t n_dec = unhex(line + 2, dtext);
            int32_t *ids;
            size_t n;
            cases++;
            if (qrt_tok_encode(L.tok, text, n_text, 1, &ids, &n)) {
                fail("%s: encode failed", tok_path);
                continue;
            }
            if (n != n_want || (n && memcmp(ids, want, n * sizeof *ids) != 0)) {
                if (bad++ < 5) {
                    fail("%s: encode '%.*s' differs from HF", tok_path, (int)n_text, text);
                    show("got ", ids, n);
                    show("want", want, n_want);
                }
            } else {
                /* HF's decode skips special tokens and strips once at the start;
                 * ours strips after every BOS: compare where they agree */
                int has_special = 0;
                for (size_t i = 0; i < n; i++)
                    has_special |= qrt_tok_decode(L.tok, 0, ids[i], NULL, 0) == 0;
                size_t n_got;
                char *got = decode_all(L.tok, ids, n, &n_got);
                if (!has_special && (n_got != n_dec || memcmp(got, dtext, n_dec) != 0) && bad_dec++ < 5)
                    fail("%s: decode of '%.*s' gives '%.*s', HF '%.*s'", tok_path, (int)n_text, text, (int)n_got,
                         got, (int)n_dec, dtext);
                free(got);
            }
            free(ids);
        }
    }
    if (bad || bad_dec)
        fail("%s: %zu of %zu encodings and %zu decodings differ", tok_path, bad, cases, bad_dec);
    else if (cases < 50)
        fail("%s: only %zu cases", expect_path, cases);
    else
        printf("%-40s %zu cases agree with HF\n", strrchr(tok_path, '/') + 1, cases);
    free(text);
    free(dtext);
    free(want);
    free(ex);
    unload(&L);
}

/* ---- round trip ------------------------------------------------------------ */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) { /* xorshift64*, fixed seed */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 32);
}

static size_t random_text(char *buf, size_t max) {
    static const char *const pieces[] = {"a", "e", "the", " ", "  ", "\n", "\t", "\r\n", "'s", "0", "42", ".", ",",
                                         "\xC3\xA9", "\xE4\xB8\xAD", "\xF0\x9F\x98\x80", "\xC2\xA0", "Once",
                                         " upon", "\xE2\x80\x83", "\xD0\x96", "\xCE\xA9"};
    size_t n = 0, len = rnd() % max;
    while (n < len) {
        uint32_t k = rnd() % 10;
        if (k < 5) { /* a piece of real-looking text */
            const char *p = pieces[rnd() % (sizeof pieces / sizeof pieces[0])];
            size_t l = strlen(p);
            if (n + l > len)
                break;
            memcpy(buf + n, p, l);
            n += l;
        } else if (k < 6) {
            buf[n++] = 0; /* NUL */
        } else if (k < 8) {
            buf[n++] = (char)(0x80 + rnd() % 0x80); /* stray continuation / lead bytes */
        } else {
            buf[n++] = (char)(rnd() % 256);
        }
    }
    return n;
}

/* Text never contains U+2581 for SPM (it decodes to a space). */
static int has_meta(const char *s, size_t n) {
    for (size_t i = 0; i + 3 <= n; i++)
        if (memcmp(s + i, "\xE2\x96\x81", 3) == 0)
            return 1;
    return 0;
}

/* How decode(encode(text)) relates to text: */
enum {
    RT_EXACT,        /* the same bytes */
    RT_PREFIX_SPACE, /* byte-level add_prefix_space: " " + text unless it starts with a space */
    RT_META_LEADING, /* Metaspace: a leading space merges into the prepended U+2581 and is lost */
};

static void test_round_trip(const char *tok_path, int rounds, int mode) {
    loaded L;
    if (load(&L, tok_path))
        return;
    char buf[512];
    int bad = 0;
    for (int r = 0; r < rounds; r++) {
        size_t n = random_text(buf, sizeof buf);
        if (r == 0)
            n = 0;
        if (r == 1)
            memcpy(buf, " starts with a space", n = 20);
        if (r == 2)
            memcpy(buf, "  two", n = 5);
        if (r == 3)
            memcpy(buf, "\xFF\x00\xFE", n = 3);
        if (has_meta(buf, n))
            continue;
        int32_t *ids;
        size_t n_ids, n_dec;
        if (qrt_tok_encode(L.tok, buf, n, 0, &ids, &n_ids)) {
            fail("round trip: encode failed");
            break;
        }
        char *dec = decode_all(L.tok, ids, n_ids, &n_dec);
        char want[sizeof buf + 1];
        size_t n_want = n;
        memcpy(want, buf, n);
        if (mode == RT_PREFIX_SPACE && n && buf[0] != ' ') {
            want[0] = ' ';
            memcpy(want + 1, buf, n_want++);
        } else if (mode == RT_META_LEADING && n && buf[0] == ' ') {
            memmove(want, want + 1, --n_want);
        }
        if ((n_dec != n_want || memcmp(dec, want, n_want) != 0) && bad++ < 3) {
            fail("%s: round trip of %zu bytes gives %zu bytes", tok_path, n, n_dec);
            for (size_t i = 0; i < n && i < 64; i++)
                fprintf(stderr, "%02x", (uint8_t)buf[i]);
            fprintf(stderr, "\n");
            show("ids", ids, n_ids);
        }
        /* BOS first: the leading space is dropped after BOS too */
        if (n_ids && qrt_tok_bos(L.tok) >= 0) {
            size_t need = qrt_tok_decode(L.tok, qrt_tok_bos(L.tok), ids[0], NULL, 0);
            if (need != qrt_tok_decode(L.tok, -1, ids[0], NULL, 0))
                fail("%s: decode after BOS differs from decode at the start", tok_path);
        }
        free(dec);
        free(ids);
    }
    if (!bad)
        printf("%-40s %d random round trips\n", strrchr(tok_path, '/') + 1, rounds);
    unload(&L);
}

/* ---- stories260K: greedy text, specials, properties ----------------------- */

static void test_stories(void) {
    loaded L;
    if (load(&L, QC_DATA "/stories260K/tokenizer.json"))
        return;
    const qrt_tok *t = L.tok;
    if (qrt_tok_vocab(t) != 512 || qrt_tok_bos(t) != 1 || qrt_tok_eos(t) != 2 || !qrt_tok_add_bos(t))
        fail("stories: vocab %d bos %d eos %d add_bos %d", qrt_tok_vocab(t), qrt_tok_bos(t), qrt_tok_eos(t),
             qrt_tok_add_bos(t));

    /* greedy_256_ids.json (BOS first) decodes to greedy_256.txt, which has
     * no trailing newline: compare byte for byte */
    size_t n_json, n_txt;
    char *js = slurp(QC_DATA "/stories260K/greedy_256_ids.json", &n_json);
    char *txt = slurp(QC_DATA "/stories260K/greedy_256.txt", &n_txt);
    if (!js || !txt) {
        fail("stories: greedy_256 files missing");
    } else {
        int32_t ids[1024] = {0};
        size_t n = 0;
        for (char *p = js; *p && n < 1024; p++)
            if (*p >= '0' && *p <= '9')
                ids[n++] = (int32_t)strtol(p, &p, 10);
        size_t n_dec;
        char *dec = decode_all(t, ids, n, &n_dec);
        if (n != 257 || ids[0] != 1)
            fail("greedy_256_ids.json: %zu ids, first %d", n, ids[0]);
        if (n_dec != n_txt || memcmp(dec, txt, n_txt) != 0)
            fail("greedy_256: decoded text (%zu bytes) differs from greedy_256.txt (%zu bytes)", n_dec, n_txt);
        else
            printf("%-40s %zu ids decode to the %zu bytes of greedy_256.txt\n", "stories260K", n, n_txt);
        /* and encoding the text back gives the same ids after BOS */
        int32_t *re;
        size_t n_re;
        if (qrt_tok_encode(t, txt, n_txt, 0, &re, &n_re) == 0) {
            if (n_re != n - 1 || memcmp(re, ids + 1, n_re * sizeof *re) != 0)
                fail("greedy_256.txt re-encodes to other ids (%zu vs %zu)", n_re, n - 1);
            free(re);
        }
        free(dec);
    }
    free(js);
    free(txt);

    /* special tokens only with parse_special */
    int32_t *ids;
    size_t n;
    if (qrt_tok_encode(t, "a<s>b", 5, 1, &ids, &n) == 0) {
        int32_t want[] = {261, 1, 268}; /* HF: ['▁a', '<s>', '▁b'] */
        if (n != 3 || memcmp(ids, want, sizeof want) != 0)
            fail("stories: 'a<s>b' with specials"), show("got", ids, n);
        free(ids);
    }
    if (qrt_tok_encode(t, "a<s>b", 5, 0, &ids, &n) == 0) {
        for (size_t i = 0; i < n; i++)
            if (ids[i] == 1)
                fail("stories: '<s>' matched without parse_special");
        size_t n_dec;
        char *dec = decode_all(t, ids, n, &n_dec);
        if (n_dec != 5 || memcmp(dec, "a<s>b", 5) != 0)
            fail("stories: 'a<s>b' without specials does not round-trip");
        free(dec);
        free(ids);
    }
    /* decode: special tokens give nothing, bytes give their byte, BOS strips */
    char b[16];
    if (qrt_tok_decode(t, -1, 1, b, sizeof b) != 0 || qrt_tok_decode(t, -1, 2, b, sizeof b) != 0)
        fail("stories: <s> / </s> should decode to nothing");
    if (qrt_tok_decode(t, 5, 13, b, sizeof b) != 1 || b[0] != '\n')
        fail("stories: <0x0A> should decode to a newline");
    if (qrt_tok_decode(t, 1, 270, b, sizeof b) != 1 || b[0] != 'h' || qrt_tok_decode(t, 5, 270, b, sizeof b) != 2 ||
        memcmp(b, " h", 2) != 0)
        fail("stories: '\xE2\x96\x81h' decodes to 'h' after BOS and ' h' elsewhere");
    if (qrt_tok_decode(t, 5, 270, b, 1) != 2 || b[0] != ' ')
        fail("stories: decode with a short buffer must still return the full length");
    if (qrt_tok_decode(t, -1, -5, b, sizeof b) != 0 || qrt_tok_decode(t, -1, 512, b, sizeof b) != 0)
        fail("stories: out-of-range ids decode to nothing");
    unload(&L);
}

/* ---- bad blobs ------------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}

/* Opens a (possibly corrupt) blob; if it validates, it must also work. */
static int try_blob(const uint8_t *b, size_t n) {
    uint8_t *copy = malloc(n ? n : 1); /* exact size, so ASan sees overreads */
    memcpy(copy, b, n);
    qrt_tok *t = NULL;
    char msg[256] = "";
    int rc = qrt_tok_open(&t, copy, n, msg, sizeof msg);
    if (rc == 0) {
        char text[200];
        size_t len = random_text(text, sizeof text);
        int32_t *ids;
        size_t n_ids;
        for (int ps = 0; ps < 2; ps++)
            if (qrt_tok_encode(t, text, len, ps, &ids, &n_ids) == 0) {
                size_t n_dec;
                free(decode_all(t, ids, n_ids, &n_dec));
                free(ids);
            }
        for (int32_t id = -1; id <= qrt_tok_vocab(t); id++) {
            char d[64];
            qrt_tok_decode(t, id - 1, id, d, sizeof d);
        }
        qrt_tok_free(t);
    } else if (t || !msg[0] || strchr(msg, '\n')) {
        fail("bad blob: rc -1 needs *out NULL and a one-line reason ('%s')", msg);
    }
    free(copy);
    return rc;
}

static void test_bad_blobs(const char *tok_path) {
    loaded L;
    if (load(&L, tok_path))
        return;
    const uint8_t *b = L.blob;
    size_t n = L.size;
    if (try_blob(b, n) != 0)
        fail("%s: the good blob does not open", tok_path);
    /* every truncation */
    size_t refused = 0, tried = 0;
    for (size_t k = 0; k < n; k += k < 256 ? 1 : 37, tried++)
        refused += try_blob(b, k) != 0;
    if (refused != tried)
        fail("%s: %zu of %zu truncated blobs were accepted", tok_path, tried - refused, tried);
    /* lying counts and offsets */
    uint8_t *m = malloc(n + 64);
    static const struct {
        size_t off;
        uint32_t val;
    } lies[] = {
        {0, 0x4B4F5451 ^ 1}, {4, 2}, {8, 32}, {12, 3}, {16, 0xFFFFFFFF}, {20, 9}, {24, 0}, {24, 0xFFFFFFFF},
        {24, 0x40000000}, {28, 0xFFFFFFFF}, {28, 0x15555555}, {32, 0x7FFFFFFF}, {36, 0xFFFFFFFE}, {40, 1u << 30},
        {44, 0xFFFFFFFF}, {44, 0}, {48, 1}, {64, 1}, {68, 0xFFFFFF00}, {72, 0}};
    for (size_t i = 0; i < sizeof lies / sizeof lies[0]; i++) {
        memcpy(m, b, n);
        put32(m + lies[i].off, lies[i].val);
        if (try_blob(m, n) == 0)
            fail("%s: blob with u32 %#x at offset %zu accepted", tok_path, lies[i].val, lies[i].off);
    }
    /* a merge that names a token beyond the vocabulary; a bad token type */
    uint32_t nv = b[24] | b[25] << 8 | (uint32_t)b[26] << 16 | (uint32_t)b[27] << 24;
    uint32_t nm = b[28] | b[29] << 8 | (uint32_t)b[30] << 16 | (uint32_t)b[31] << 24;
    size_t off_types = 64 + 4 * ((size_t)nv + 1), off_merges = off_types + ((nv + 3) & ~3u);
    if (nm) {
        memcpy(m, b, n);
        put32(m + off_merges + 4, nv);
        if (try_blob(m, n) == 0)
            fail("%s: merge with right id = n_vocab accepted", tok_path);
    }
    memcpy(m, b, n);
    m[off_types + nv / 2] = 9;
    if (try_blob(m, n) == 0)
        fail("%s: token type 9 accepted", tok_path);
    /* random corruption: must never crash (may or may not validate) */
    for (int r = 0; r < 3000; r++) {
        memcpy(m, b, n);
        int flips = 1 + (int)(rnd() % 4);
        for (int f = 0; f < flips; f++) {
            size_t at = rnd() % 3 ? rnd() % (off_merges + 8 < n ? off_merges + 8 : n) : rnd() % n;
            m[at] = (uint8_t)rnd();
        }
        try_blob(m, n);
    }
    printf("%-40s %zu truncations, %zu lies, 3000 corruptions\n", strrchr(tok_path, '/') + 1, tried,
           sizeof lies / sizeof lies[0]);
    free(m);
    unload(&L);
    qrt_tok *t = (qrt_tok *)1;
    if (qrt_tok_open(&t, NULL, 0, NULL, 0) != -1 || t)
        fail("qrt_tok_open(NULL) must fail with *out = NULL");
    qrt_tok_free(NULL);
}

/* ---- tokenizer.json errors -------------------------------------------------- */

static void expect_error(const char *json, const char *cfg, const char *want) {
    char dir[] = "/tmp/qc_tok_XXXXXX", path[64], cpath[80];
    if (!mkdtemp(dir)) {
        fail("mkdtemp");
        return;
    }
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    snprintf(cpath, sizeof cpath, "%s/tokenizer_config.json", dir);
    FILE *f = fopen(path, "wb");
    fputs(json, f);
    fclose(f);
    if (cfg) {
        f = fopen(cpath, "wb");
        fputs(cfg, f);
        fclose(f);
    }
    uint8_t *blob = NULL;
    size_t size;
    qc_err err = {{0}};
    int rc = qc_tokenizer_load(&blob, &size, path, &err);
    if (!want) {
        if (rc)
            fail("tokenizer.json should load: %s", err.msg);
    } else if (rc == 0 || !strstr(err.msg, want) || !strstr(err.msg, dir) || strchr(err.msg, '\n')) {
        fail("error '%s' should name the file and say '%s'", rc ? err.msg : "(none)", want);
    }
    free(blob);
    unlink(path);
    unlink(cpath);
    rmdir(dir);
}

#define BL_PRE "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false}"
#define SPM_NORM                                                                                         \
    "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"\\u2581\"}," \
    "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\\u2581\"}]}"

static void test_json_errors(void) {
    qc_err err;
    uint8_t *blob;
    size_t size;
    if (qc_tokenizer_load(&blob, &size, "/nonexistent/tokenizer.json", &err) == 0 ||
        strcmp(err.msg, "/nonexistent/tokenizer.json: cannot open: No such file or directory") != 0)
        fail("missing file: '%s'", err.msg);
    expect_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"a b\"]}," BL_PRE "}", NULL,
                 "key 'model.merges[0]': token 'ab' not in vocab");
    expect_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[\"a b\",[\"a\",\"c\"]]}," BL_PRE
                 "}",
                 NULL, "key 'model.merges[1]': token 'c' not in vocab");
    expect_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a  a\"]}," BL_PRE "}", NULL,
                 "key 'model.merges[0]': expected");
    expect_error("{\"model\":{\"type\":\"Unigram\",\"vocab\":[]}}", NULL, "key 'model.type': unsupported tokenizer "
                                                                        "model 'Unigram'");
    expect_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":0},\"merges\":[]}," BL_PRE "}", NULL,
                 "key 'model.vocab.b': id 0 is also used by 'a'");
    expect_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-3},\"merges\":[]}," BL_PRE "}", NULL,
                 "key 'model.vocab.a'");
    expect_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":99999999999},\"merges\":[]}," BL_PRE "}", NULL,
                 "key 'model.vocab.a'");
    expect_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}", NULL, "key 'pre_tokenizer'");
    expect_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},"
                 "\"pre_tokenizer\":{\"type\":\"Whitespace\"}}",
                 NULL, "unsupported pre_tokenizer 'Whitespace'");
    expect_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},"
                 "\"normalizer\":{\"type\":\"Lowercase\"}," BL_PRE "}",
                 NULL, "key 'normalizer': unsupported normalizer 'Lowercase'");
    expect_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"pre_tokenizer\":{\"type\":\"Sequence\","
                 "\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\w+\"},\"behavior\":\"Isolated\","
                 "\"invert\":false},{\"type\":\"ByteLevel\",\"use_regex\":false}]}}",
                 NULL, "key 'pre_tokenizer.pretokenizers[0].pattern.Regex': unsupported split pattern");
    expect_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"added_tokens\":[{\"id\":1}]," BL_PRE
                 "}",
                 NULL, "key 'added_tokens[0].content'");
    expect_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[],\"unk_token\":\"<unk>\"}," SPM_NORM "}",
                 NULL, "key 'model.unk_token': token '<unk>' not in vocab");
    expect_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}," SPM_NORM "}",
                 "{\"bos_token\":\"<s>\"}", "tokenizer_config.json: key 'bos_token': token '<s>' not in the vocab");
    expect_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}," SPM_NORM "}", "{\"bos_token\":",
                 "tokenizer_config.json: offset");
    expect_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]," SPM_NORM, NULL, "tokenizer.json: offset");
    expect_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"<s>\":1},\"merges\":[]}," SPM_NORM "}",
                 "{\"bos_token\":{\"content\":\"<s>\"},\"add_bos_token\":true}", NULL);
}

/* ---- a hand-made byte-level tokenizer -------------------------------------- */

/* Vocabulary: the four byte tokens of "h", "i", " " (U+0120 "Ġ"), "!", and
 * merges h+i, Ġ+hi; no unk, so bytes outside the vocabulary are dropped
 * (as HF does). Expectations derived by hand. */
static void test_tiny(void) {
    static const char json[] =
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"h\":0,\"i\":1,\"\\u0120\":2,\"!\":3,\"hi\":4,\"\\u0120hi\":5,"
        "\"<|end|>\":6},\"merges\":[\"h i\",[\"\\u0120\",\"hi\"]]},"
        "\"added_tokens\":[{\"id\":6,\"content\":\"<|end|>\",\"special\":true}]," BL_PRE
        ",\"decoder\":{\"type\":\"ByteLevel\"}}";
    char dir[] = "/tmp/qc_tok_XXXXXX", path[64];
    if (!mkdtemp(dir))
        return;
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    FILE *f = fopen(path, "wb");
    fputs(json, f);
    fclose(f);
    loaded L;
    if (load(&L, path) == 0) {
        static const struct {
            const char *text;
            int special;
            int32_t ids[8];
            size_t n;
        } cases[] = {
            {"hi hi!", 1, {4, 5, 3}, 3},
            {"hi  hi", 1, {4, 2, 5}, 3},             /* "hi", " ", " hi": \s+(?!\S) leaves one space */
            {"hihi", 1, {4, 4}, 2},                  /* one word, two merges */
            {"hi!hi", 1, {4, 3, 4}, 3},
            {"x hi", 1, {5}, 1},                     /* 'x' has no token and no unk: dropped */
            {"hi<|end|> hi", 1, {4, 6, 5}, 3},
            {"hi<|end|>", 0, {4}, 1},                /* as text: '<', '|', 'e', ... have no token */
            {"", 1, {0}, 0},
        };
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            int32_t *ids;
            size_t n;
            if (qrt_tok_encode(L.tok, cases[c].text, strlen(cases[c].text), cases[c].special, &ids, &n))
                continue;
            size_t want_n = cases[c].n;
            if (n != want_n || (n && memcmp(ids, cases[c].ids, n * sizeof *ids) != 0)) {
                fail("tiny: '%s'", cases[c].text);
                show("got ", ids, n);
                show("want", cases[c].ids, want_n);
            }
            free(ids);
        }
        char b[8];
        if (qrt_tok_decode(L.tok, -1, 5, b, sizeof b) != 3 || memcmp(b, " hi", 3) != 0)
            fail("tiny: '\xC4\xA0hi' decodes to ' hi' (byte-level keeps the space)");
        if (qrt_tok_add_bos(L.tok) || qrt_tok_bos(L.tok) != -1 || qrt_tok_eos(L.tok) != -1)
            fail("tiny: no bos/eos expected");
        unload(&L);
    }
    unlink(path);
    rmdir(dir);
}

int main(void) {
    static const struct {
        const char *name;
        int rt;
    } fixtures[] = {{"gpt2", RT_EXACT},   {"smol", RT_EXACT},      {"prefix", RT_PREFIX_SPACE},
                    {"llama3", RT_EXACT}, {"qwen2", RT_EXACT},     {"metaspace", RT_META_LEADING},
                    {"metaspace_nosplit", RT_META_LEADING}};
    char tp[512], ep[512];
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) {
        snprintf(tp, sizeof tp, "%s/unit/tok_%s.json", QC_TESTS_DIR, fixtures[i].name);
        snprintf(ep, sizeof ep, "%s/unit/tok_%s.expect", QC_TESTS_DIR, fixtures[i].name);
        test_fixture(tp, ep);
        test_round_trip(tp, 300, fixtures[i].rt);
    }
    snprintf(ep, sizeof ep, "%s/unit/tok_stories.expect", QC_TESTS_DIR);
    test_fixture(QC_DATA "/stories260K/tokenizer.json", ep);
    test_round_trip(QC_DATA "/stories260K/tokenizer.json", 3000, RT_EXACT);
    test_stories();
    test_bad_blobs(QC_DATA "/stories260K/tokenizer.json");
    snprintf(tp, sizeof tp, "%s/unit/tok_gpt2.json", QC_TESTS_DIR);
    test_bad_blobs(tp);
    test_json_errors();
    test_tiny();
    if (fails) {
        fprintf(stderr, "%d failure(s)\n", fails);
        return 1;
    }
    printf("ok\n");
    return 0;
}
