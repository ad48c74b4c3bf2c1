/*
 * passes/calibrate.c — the token windows GPTQ calibrates on.
 *
 * --calib FILE       the file's text; --calib DIR: every *.txt in it,
 *                    concatenated in file-name order (byte order, so the
 *                    result does not depend on the locale or the file system)
 * --calib-tokens F   token ids (int32, little-endian): the file is cut into
 *                    consecutive windows of --calib-seqlen, the first
 *                    min(--calib-samples, all) are used: someone else's
 *                    calibration set, exactly (bench/ref_windows.py)
 * (none)             text the unquantized model writes itself: sequences
 *                    sampled from BOS at temperature 1 by the reference
 *                    executor, seeded, so a checkpoint alone is enough
 * Windows of --calib-seqlen tokens start at positions drawn with a seeded
 * splitmix64 generator; nothing here reads a clock or the environment.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/stat.h>

#include "qc/passes.h"
#include "qrt/tokenizer.h"

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Appends the whole of `path` to *buf. 0 or -1 with err. */
static int append_file(char **buf, size_t *len, const char *path, qc_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return qc_err_set(err, "%s: cannot open: %s", path, strerror(errno));
    for (;;) {
        char *nb = realloc(*buf, *len + (1 << 20));
        if (!nb) {
            fclose(f);
            return qc_err_set(err, "%s: out of memory", path);
        }
        *buf = nb;
        size_t r = fread(*buf + *len, 1, 1 << 20, f);
        *len += r;
        if (r < (1 << 20)) break;
    }
    int bad = ferror(f);
    fclose(f);
    return bad ? qc_err_set(err, "%s: read error", path) : 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int read_text(const char *path, char **text, size_t *len, qc_err *err) {
    struct stat st;
    *text = NULL;
    *len = 0;
    if (stat(path, &st)) return qc_err_set(err, "%s: --calib: cannot open: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return append_file(text, len, path, err);
    DIR *d = opendir(path);
    if (!d) return qc_err_set(err, "%s: --calib: cannot open: %s", path, strerror(errno));
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".txt")) continue;
        char **nn = realloc(names, (n + 1) * sizeof *names);
        if (!nn || !(nn[n] = strdup(e->d_name))) rc = qc_err_set(err, "%s: out of memory", path);
        if (nn) names = nn, n += !rc;
    }
    closedir(d);
    if (!rc && !n) rc = qc_err_set(err, "%s: --calib: no *.txt files in this directory", path);
    if (n) qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", path, names[i]);
        if (!rc) rc = append_file(text, len, p, err);
        free(names[i]);
    }
    free(names);
    return rc;
}

/* Sequences the model writes itself, from BOS, at temperature 1. */
static int self_generate(qc_calib *c, const qc_graph *g, uint64_t *rng, int32_t bos, qc_err *err) {
    qc_exec *e = qc_exec_new(g, c->len);
    double *p = malloc((size_t)g->cfg.vocab * sizeof(double));
    if (!e || !p) {
        qc_exec_free(e);
        free(p);
        return qc_err_set(err, "out of memory for self-generated calibration");
    }
    for (int32_t s = 0; s < c->n; s++) {
        int32_t *t = c->tokens + (size_t)s * c->len;
        t[0] = bos >= 0 ? bos : 0;
        for (int32_t i = 0; i + 1 < c->len; i++) {
            const float *lg = qc_exec_forward(e, &t[i], 1, i);
            double mx = lg[0], sum = 0;
            for (int32_t v = 1; v < g->cfg.vocab; v++) mx = lg[v] > mx ? lg[v] : mx;
            for (int32_t v = 0; v < g->cfg.vocab; v++) sum += (p[v] = exp(lg[v] - mx));
            double r = (double)(splitmix64(rng) >> 11) * (1.0 / 9007199254740992.0) * sum;
            int32_t pick = g->cfg.vocab - 1;
            for (int32_t v = 0; v < g->cfg.vocab; v++)
                if ((r -= p[v]) < 0) {
                    pick = v;
                    break;
                }
            t[i + 1] = pick;
        }
    }
    qc_exec_free(e);
    free(p);
    return 0;
}

/* --calib-tokens: c->len is set, c->n is the cap; allocates c->tokens. */
static int read_tokens(qc_calib *c, const char *path, int32_t vocab, qc_err *err) {
    char *buf = NULL;
    size_t len = 0;
    int rc = append_file(&buf, &len, path, err);
    if (!rc && (len == 0 || len % 4))
        rc = qc_err_set(err, "%s: --calib-tokens: %zu bytes, not a whole number of int32 token ids", path, len);
    size_t n_ids = len / 4, wins = n_ids / (size_t)c->len;
    if (!rc && (!wins || n_ids % (size_t)c->len))
        rc = qc_err_set(err, "%s: --calib-tokens: %zu ids, not a whole number of windows of %d (--calib-seqlen)",
                        path, n_ids, c->len);
    if (!rc && wins < (size_t)c->n) c->n = (int32_t)wins;
    if (!rc && !(c->tokens = malloc((size_t)c->n * c->len * sizeof(int32_t))))
        rc = qc_err_set(err, "%s: out of memory", path);
    for (size_t i = 0; !rc && i < (size_t)c->n * c->len; i++) {
        const uint8_t *p = (const uint8_t *)buf + 4 * i;
        int32_t id = (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        if (id < 0 || id >= vocab)
            rc = qc_err_set(err, "%s: --calib-tokens: id %d at byte offset %zu is outside the vocabulary (%d)",
                            path, id, 4 * i, vocab);
        else
            c->tokens[i] = id;
    }
    free(buf);
    return rc;
}

int qc_calib_load(qc_calib *c, const qc_graph *g, const qc_opts *o, qc_err *err) {
    memset(c, 0, sizeof *c);
    c->n = o->calib_samples > 0 ? o->calib_samples : 128;
    c->len = o->calib_seqlen > 0 ? o->calib_seqlen : (g->cfg.max_ctx < 2048 ? g->cfg.max_ctx : 2048);
    if (c->len > g->cfg.max_ctx)
        return qc_err_set(err, "--calib-seqlen %d: longer than the model's context (%d)", c->len, g->cfg.max_ctx);
    if (o->calib_tokens) {
        int rc = read_tokens(c, o->calib_tokens, g->cfg.vocab, err);
        if (rc) qc_calib_free(c);
        return rc;
    }
    c->tokens = malloc((size_t)c->n * c->len * sizeof(int32_t));
    if (!c->tokens) return qc_err_set(err, "out of memory for %d calibration windows", c->n);
    uint64_t rng = o->seed ^ 0x51ca11b7a7e5ull;
    char msg[256];
    qrt_tok *tok = NULL;
    if (qrt_tok_open(&tok, g->tokenizer, g->tokenizer_size, msg, sizeof msg)) {
        qc_calib_free(c);
        return qc_err_set(err, "tokenizer: %s", msg);
    }
    int32_t bos = qrt_tok_bos(tok);
    int rc = 0;
    if (!o->calib) {
        rc = self_generate(c, g, &rng, bos, err);
    } else {
        char *text = NULL;
        size_t len = 0, n_ids = 0;
        int32_t *ids = NULL;
        rc = read_text(o->calib, &text, &len, err);
        if (!rc && !len) rc = qc_err_set(err, "%s: --calib: the calibration text is empty", o->calib);
        if (!rc && qrt_tok_encode(tok, text, len, 0, &ids, &n_ids))
            rc = qc_err_set(err, "%s: out of memory while tokenizing", o->calib);
        if (!rc && n_ids < (size_t)c->len + 1)
            rc = qc_err_set(err, "%s: --calib: %zu tokens, fewer than one calibration window of %d",
                            o->calib, n_ids, c->len);
        for (int32_t s = 0; !rc && s < c->n; s++) {
            size_t start = (size_t)(splitmix64(&rng) % (uint64_t)(n_ids - (size_t)c->len));
            memcpy(c->tokens + (size_t)s * c->len, ids + start, (size_t)c->len * sizeof(int32_t));
        }
        free(text);
        free(ids);
    }
    qrt_tok_free(tok);
    if (rc) qc_calib_free(c);
    return rc;
}

void qc_calib_free(qc_calib *c) {
    free(c->tokens);
    memset(c, 0, sizeof *c);
}
