/*
 * tests/fuzz/fuzz.h — helpers shared by the libFuzzer targets (fuzz_*.c).
 *
 * Each target defines LLVMFuzzerTestOneInput and is built two ways
 * (tests/fuzz/fuzz.cmake): with clang and -fsanitize=fuzzer for `make fuzz`,
 * and with the normal compiler, linked to tests/fuzz/replay.c, to replay its
 * committed corpus in every ctest run. So everything here is plain C11 that
 * gcc accepts warning-free, and a target never relies on libFuzzer itself.
 *
 * A target asserts the documented contract, not only "no crash": FZ_CHECK
 * prints what broke and aborts, which libFuzzer reports as a crash and the
 * replay driver as a failed test. FZ_SOFT is for contract points whose
 * violation corrupts no memory where it is found (an error message is one
 * line and names the file; an accepted config is in range): it aborts too,
 * unless QC_FUZZ_LAX=1 is set, so a long run can get past a known finding
 * of that kind to the deeper ones. ctest never sets it.
 *
 * Inputs that the library reads by path go to a memfd (fz_memfile, for
 * targets that define _GNU_SOURCE) or a private scratch directory (fz_dir,
 * removed at exit, or by a later run if this one died).
 */
#ifndef QC_FUZZ_H
#define QC_FUZZ_H

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#ifdef QRT_TOKENIZER_H
#define FZ_HAVE_TOK 1
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(c, ...)                                                                  \
    do {                                                                                  \
        if (!(c)) {                                                                       \
            fprintf(stderr, "fuzz: %s:%d: check failed: %s: ", __FILE__, __LINE__, #c);   \
            fprintf(stderr, __VA_ARGS__);                                                 \
            fputc('\n', stderr);                                                          \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

#define FZ_SOFT(c, ...)                                                                   \
    do {                                                                                  \
        if (!(c) && !fz_lax()) {                                                          \
            fprintf(stderr, "fuzz: %s:%d: soft check failed (QC_FUZZ_LAX=1 skips): %s: ", \
                    __FILE__, __LINE__, #c);                                              \
            fprintf(stderr, __VA_ARGS__);                                                 \
            fputc('\n', stderr);                                                          \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

static inline int fz_lax(void) {
    static int lax = -1;
    if (lax < 0) {
        const char *e = getenv("QC_FUZZ_LAX");
        lax = e && e[0] == '1';
    }
    return lax;
}

/* QC_FUZZ_VERBOSE=1: each run says whether the input was accepted and why
 * not (to check that seeds reach the code behind the parser). */
static inline void fz_note(const char *what, const char *msg) {
    static int verbose = -1;
    if (verbose < 0) {
        const char *e = getenv("QC_FUZZ_VERBOSE");
        verbose = e && e[0] == '1';
    }
    if (verbose)
        fprintf(stderr, "fuzz: %s%s%s\n", what, msg ? ": " : "", msg ? msg : "");
}

/* An error message: non-empty, one line, mentions `what` (a path). */
static inline void fz_check_msg(const char *msg, const char *what) {
    FZ_CHECK(msg[0] != 0, "empty error message");
    FZ_SOFT(strchr(msg, '\n') == NULL && strchr(msg, '\r') == NULL, "error message is not one line: %s", msg);
    FZ_SOFT(what == NULL || strstr(msg, what) != NULL, "error message does not name '%s': %s", what, msg);
}

/* ---- scratch directory ---------------------------------------------------- */

#define FZ_MAX_FILES 16

static char fz_dir_path[256];
static char fz_files[FZ_MAX_FILES][64];
static int fz_nfiles;

static inline void fz_cleanup(void) {
    char p[sizeof fz_dir_path + sizeof fz_files[0] + 2];
    for (int i = 0; i < fz_nfiles; i++) {
        size_t a = strnlen(fz_dir_path, sizeof fz_dir_path - 1), b = strnlen(fz_files[i], sizeof fz_files[0] - 1);
        memcpy(p, fz_dir_path, a);
        p[a] = '/';
        memcpy(p + a + 1, fz_files[i], b);
        p[a + 1 + b] = 0;
        unlink(p);
    }
    if (fz_dir_path[0])
        rmdir(fz_dir_path);
}

/* Removes the scratch directories of processes that are gone (libFuzzer
 * leaves with _Exit after a crash or a timeout, skipping atexit). Names are
 * qc_fuzz_<pid>_XXXXXX; the directories hold plain files only. */
static inline void fz_sweep(const char *base) {
    DIR *d = opendir(base);
    struct dirent *e;
    char p[512], q[1024];
    while (d && (e = readdir(d)) != NULL) {
        long pid;
        if (sscanf(e->d_name, "qc_fuzz_%ld_", &pid) != 1 || pid <= 0)
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue; /* still running (or not ours to judge) */
        snprintf(p, sizeof p, "%s/%s", base, e->d_name);
        DIR *sub = opendir(p);
        struct dirent *f;
        while (sub && (f = readdir(sub)) != NULL)
            if (f->d_name[0] != '.') {
                snprintf(q, sizeof q, "%s/%s", p, f->d_name);
                unlink(q);
            }
        if (sub)
            closedir(sub);
        rmdir(p);
    }
    if (d)
        closedir(d);
}

/* The scratch directory, created on first use: /dev/shm when it is there
 * (no disk traffic at thousands of runs a second), else $TMPDIR or /tmp. */
static inline const char *fz_dir(void) {
    if (fz_dir_path[0])
        return fz_dir_path;
    struct stat sb;
    const char *base = "/dev/shm";
    if (stat(base, &sb) != 0 || !S_ISDIR(sb.st_mode) || access(base, W_OK) != 0) {
        base = getenv("TMPDIR");
        if (!base || !base[0])
            base = "/tmp";
    }
    fz_sweep(base);
    snprintf(fz_dir_path, sizeof fz_dir_path, "%s/qc_fuzz_%ld_XXXXXX", base, (long)getpid());
    FZ_CHECK(mkdtemp(fz_dir_path) != NULL, "cannot create a scratch directory under %s", base);
    atexit(fz_cleanup);
    return fz_dir_path;
}

/* Full path of scratch file `name` (remembered, so it is removed at exit). */
static inline const char *fz_path(const char *name, char *buf, size_t cap) {
    int known = 0;
    for (int i = 0; i < fz_nfiles; i++)
        known |= strcmp(fz_files[i], name) == 0;
    if (!known) {
        FZ_CHECK(fz_nfiles < FZ_MAX_FILES && strlen(name) < sizeof fz_files[0], "too many scratch files");
        strcpy(fz_files[fz_nfiles++], name);
    }
    snprintf(buf, cap, "%s/%s", fz_dir(), name);
    return buf;
}

/* Writes data[0..n) to scratch file `name`; returns its path in buf. */
static inline const char *fz_write(const char *name, const void *data, size_t n, char *buf, size_t cap) {
    fz_path(name, buf, cap);
    FILE *f = fopen(buf, "wb");
    FZ_CHECK(f != NULL, "cannot write %s", buf);
    FZ_CHECK(n == 0 || fwrite(data, 1, n, f) == n, "short write to %s", buf);
    FZ_CHECK(fclose(f) == 0, "cannot write %s", buf);
    return buf;
}

static inline void fz_remove(const char *name) {
    char p[512];
    unlink(fz_path(name, p, sizeof p));
}

#ifdef _GNU_SOURCE
#include <sys/mman.h>

/* data as a file the library opens by path: /proc/self/fd/N of a memfd (no
 * disk traffic, no change to the library; one per process, rewritten each
 * run), or scratch file `name` where memfd_create is missing. */
static inline const char *fz_memfile(const char *name, const uint8_t *data, size_t size, char *path, size_t cap) {
    static int fd = -2;
    if (fd == -2)
        fd = memfd_create("qc_fuzz", MFD_CLOEXEC);
    if (fd < 0)
        return fz_write(name, data, size, path, cap);
    FZ_CHECK(ftruncate(fd, 0) == 0, "ftruncate of the memfd");
    for (size_t off = 0; off < size;) {
        ssize_t w = pwrite(fd, data + off, size - off, (off_t)off);
        FZ_CHECK(w > 0, "pwrite to the memfd");
        off += (size_t)w;
    }
    snprintf(path, cap, "/proc/self/fd/%d", fd);
    return path;
}
#endif

/* Splits data at every occurrence of sep into at most max parts; returns
 * the part count (1 when sep does not occur). */
static inline size_t fz_split(const uint8_t *data, size_t n, const char *sep, const uint8_t **part,
                              size_t *len, size_t max) {
    size_t sl = strlen(sep), np = 0, start = 0;
    for (size_t i = 0; np + 1 < max && sl <= n && i <= n - sl;) {
        if (memcmp(data + i, sep, sl) == 0) {
            part[np] = data + start, len[np] = i - start, np++;
            i += sl;
            start = i;
        } else {
            i++;
        }
    }
    part[np] = data + start, len[np] = n - start, np++;
    return np;
}

/* Exactly n malloc'd bytes (so ASan sees an access past the end). */
static inline void *fz_alloc(size_t n) {
    void *q = malloc(n ? n : 1);
    FZ_CHECK(q != NULL, "out of memory");
    return q;
}

/* A malloc'd copy of exactly n bytes (so ASan sees a read past the end). */
static inline void *fz_dup(const void *p, size_t n) {
    void *q = malloc(n ? n : 1);
    FZ_CHECK(q != NULL, "out of memory");
    if (n)
        memcpy(q, p, n);
    return q;
}

/* ---- an accepted model config (targets that include qc/ir.h first) -------- */
#ifdef QC_IR_H
#include <math.h>

/* What every stage after the frontend relies on without re-checking: sizes
 * positive, heads a multiple of KV heads, BOS/EOS in the vocabulary or -1,
 * eps positive and finite as a float; with rotary positions (llama) an even
 * head dimension and a positive finite theta. */
static inline void fz_check_config(const qc_config *cfg) {
    FZ_SOFT(memchr(cfg->model_type, 0, sizeof cfg->model_type) != NULL, "model_type not NUL-terminated");
    FZ_SOFT(cfg->n_layers > 0 && cfg->dim > 0 && cfg->n_heads > 0 && cfg->n_kv_heads > 0 && cfg->head_dim > 0 &&
                 cfg->ffn_dim > 0 && cfg->vocab > 0 && cfg->max_ctx > 0,
             "a size is not positive: layers %d dim %d heads %d kv %d head_dim %d ffn %d vocab %d ctx %d",
             (int)cfg->n_layers, (int)cfg->dim, (int)cfg->n_heads, (int)cfg->n_kv_heads, (int)cfg->head_dim,
             (int)cfg->ffn_dim, (int)cfg->vocab, (int)cfg->max_ctx);
    FZ_SOFT(cfg->n_kv_heads > 0 && cfg->n_heads % cfg->n_kv_heads == 0, "heads %d, kv heads %d",
            (int)cfg->n_heads, (int)cfg->n_kv_heads);
    if (cfg->arch == QRT_ARCH_LLAMA) /* rotary: GPT-2 / OPT have learned positions */
        FZ_SOFT(cfg->head_dim % 2 == 0 && cfg->rope_theta > 0 && isfinite(cfg->rope_theta),
                "rotary with head_dim %d, rope_theta %g", (int)cfg->head_dim, (double)cfg->rope_theta);
    FZ_SOFT((int64_t)cfg->n_heads * cfg->head_dim <= INT32_MAX, "heads x head_dim overflows");
    FZ_SOFT(cfg->bos >= -1 && cfg->bos < cfg->vocab && cfg->eos >= -1 && cfg->eos < cfg->vocab,
             "bos %d eos %d vocab %d", (int)cfg->bos, (int)cfg->eos, (int)cfg->vocab);
    FZ_SOFT(cfg->norm_eps > 0 && isfinite(cfg->norm_eps), "norm_eps %g accepted", (double)cfg->norm_eps);
    FZ_SOFT((cfg->tie_embeddings == 0 || cfg->tie_embeddings == 1) && (cfg->attn_bias == 0 || cfg->attn_bias == 1),
             "flags %d %d", (int)cfg->tie_embeddings, (int)cfg->attn_bias);
}
#endif /* QC_IR_H */

/* ---- tokenizer helpers (targets that include qrt/tokenizer.h first) ------- */
#ifdef FZ_HAVE_TOK

/* decode(id) with every buffer size that matters: the length query, an
 * exact-size buffer and a buffer one byte short (which must not be
 * overrun and must report the same length). Appends the piece to out. */
static inline size_t fz_decode_one(const qrt_tok *t, int32_t prev, int32_t id, char **out, size_t *len,
                                   size_t *cap) {
    size_t need = qrt_tok_decode(t, prev, id, NULL, 0);
    FZ_CHECK(need <= 64u << 10, "decode of id %d claims %zu bytes", (int)id, need);
    char *exact = fz_alloc(need);
    size_t got = qrt_tok_decode(t, prev, id, exact, need);
    FZ_CHECK(got == need, "decode of id %d after %d: %zu bytes, then %zu", (int)id, (int)prev, need, got);
    if (need > 0) {
        char *shortb = fz_alloc(need - 1);
        size_t got2 = qrt_tok_decode(t, prev, id, shortb, need - 1);
        FZ_CHECK(got2 == need, "decode into a short buffer: %zu, want %zu", got2, need);
        FZ_CHECK(need == 1 || memcmp(shortb, exact, need - 1) == 0, "decode into a short buffer differs");
        free(shortb);
    }
    if (out) {
        if (*len + need + 1 > *cap) {
            size_t nc = *cap ? *cap : 64;
            while (*len + need + 1 > nc)
                nc *= 2;
            char *q = realloc(*out, nc);
            FZ_CHECK(q != NULL, "out of memory");
            *out = q, *cap = nc;
        }
        memcpy(*out + *len, exact, need);
        *len += need;
    }
    free(exact);
    return need;
}

/* Concatenated decode of ids[0..n) starting with prev = -1; malloc'd. */
static inline char *fz_decode_all(const qrt_tok *t, const int32_t *ids, size_t n, size_t *len) {
    char *out = NULL;
    size_t cap = 0;
    *len = 0;
    int32_t prev = -1;
    for (size_t i = 0; i < n; i++) {
        fz_decode_one(t, prev, ids[i], &out, len, &cap);
        prev = ids[i];
    }
    if (!out)
        out = fz_alloc(1);
    return out;
}

/* Encodes text and checks what holds for every tokenizer: ids in range, a
 * bounded count (each byte of text yields at most a few tokens: a space can
 * become U+2581 and then three byte tokens; plus a prefix), determinism.
 * Returns the ids (caller frees) or NULL with *n = 0 if encode refused. */
static inline int32_t *fz_encode(const qrt_tok *t, const char *text, size_t len, int special, size_t *n) {
    int32_t *ids = NULL, *again = NULL;
    size_t n2 = 0;
    *n = 0;
    if (qrt_tok_encode(t, text, len, special, &ids, n) != 0)
        return NULL;
    int32_t nv = qrt_tok_vocab(t);
    FZ_CHECK(*n <= 3 * len + 3, "%zu ids for %zu bytes of text", *n, len);
    for (size_t i = 0; i < *n; i++)
        FZ_CHECK(ids[i] >= 0 && ids[i] < nv, "id %d at %zu out of range (vocab %d)", (int)ids[i], i, (int)nv);
    FZ_CHECK(qrt_tok_encode(t, text, len, special, &again, &n2) == 0, "second encode failed");
    FZ_CHECK(n2 == *n && (n2 == 0 || memcmp(again, ids, n2 * sizeof *ids) == 0), "encode is not deterministic");
    free(again);
    return ids;
}

/* Everything a caller may do with an opened tokenizer: the accessors, a
 * few fixed texts encoded and decoded with and without specials, and
 * every id decoded at the start, after BOS and after another token. */
static inline void fz_exercise_tok(const qrt_tok *t) {
#define FZ_T(s) {s, sizeof(s) - 1}
    static const struct {
        const char *s;
        size_t len;
    } texts[] = {
        FZ_T(""),
        FZ_T("Once upon a time, there was a little girl named Lily."),
        FZ_T(" leading space\n\ttabs and  two spaces  "),
        FZ_T("<s>a</s><unk><|endoftext|><|im_start|>user\n<|im_end|><tool>"),
        FZ_T("caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x98\x80 \xE2\x96\x81x 12345 don't"),
        FZ_T("\xFF\xFE\x80 bad utf-8 \xC3 \xED\xA0\x80 \x00 nul"),
    };
#undef FZ_T
    int32_t nv = qrt_tok_vocab(t), bos = qrt_tok_bos(t), eos = qrt_tok_eos(t);
    FZ_CHECK(nv >= 1, "vocab %d", (int)nv);
    FZ_CHECK(bos >= -1 && bos < nv && eos >= -1 && eos < nv, "bos %d eos %d vocab %d", (int)bos, (int)eos, (int)nv);
    int ab = qrt_tok_add_bos(t);
    FZ_CHECK(ab == 0 || ab == 1, "add_bos %d", ab);
    for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
        for (int special = 0; special < 2; special++) {
            char *text = fz_dup(texts[k].s, texts[k].len);
            size_t n, dl;
            int32_t *ids = fz_encode(t, text, texts[k].len, special, &n);
            free(fz_decode_all(t, ids, n, &dl));
            free(ids);
            free(text);
        }
    }
    /* every id (the first 4096 on huge vocabularies, to keep a run fast)
     * and the out-of-range ones, which decode to nothing */
    int32_t lim = nv < 4096 ? nv : 4096;
    for (int32_t v = -2; v < lim; v++) {
        fz_decode_one(t, -1, v, NULL, NULL, NULL);
        fz_decode_one(t, bos, v, NULL, NULL, NULL);
        fz_decode_one(t, v - 1, v, NULL, NULL, NULL);
    }
    static const int32_t outside[] = {INT32_MIN, -1000, INT32_MAX};
    for (size_t k = 0; k < 3; k++)
        FZ_CHECK(qrt_tok_decode(t, -1, outside[k], NULL, 0) == 0, "id %d decodes to something", (int)outside[k]);
    FZ_CHECK(qrt_tok_decode(t, -1, nv, NULL, 0) == 0, "id %d (= vocab size) decodes to something", (int)nv);
    fz_decode_one(t, nv, 0, NULL, NULL, NULL); /* an out-of-range prev */
}
#endif /* FZ_HAVE_TOK */

#endif
