/*
 * tests/fuzz/fuzz_safetensors.c — libFuzzer target for the safetensors
 * reader (frontend/safetensors.c, qc_st_*).
 *
 * Two shapes of input:
 *   single file   the bytes are one .safetensors file. It is handed to
 *                 qc_st_open as /proc/self/fd/N of a memfd (no disk I/O, no
 *                 change to the library), or a scratch file where memfd is
 *                 missing.
 *   sharded       the bytes contain SHARD_SEP: the part before the first one
 *                 is model.safetensors.index.json, the parts after it are the
 *                 shard files 1.safetensors, 2.safetensors, ... (at most 4),
 *                 all in a private scratch directory. Shard names in the
 *                 index cannot leave that directory (the reader refuses
 *                 absolute names and "..").
 * After a successful open every tensor is checked against the bytes it
 * came from: the view lies inside its file's data section and holds exactly
 * the file's bytes at file_offset (memcmp reads all of them), nbytes is
 * numel times the element size, names are sorted and unique and
 * qc_st_find finds each, ranges of one file do not overlap. Mapped memory
 * is not tracked by ASan, hence the explicit bounds checks. On failure the
 * message must be one line naming a file.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc/frontend.h"
#include "qrt/abi.h"
#include "fuzz.h"

#define SHARD_SEP "\n@@shard@@\n"
#define MAX_SHARDS 4

typedef struct src {
    const char *name; /* file name as the reader sees its path end */
    const uint8_t *bytes;
    size_t size;
} src;

static int esize_of(int32_t dtype) {
    switch (dtype) {
    case QRT_DT_F32:
        return 4;
    case QRT_DT_F16:
    case QRT_DT_BF16:
        return 2;
    default:
        return 0;
    }
}

static int cmp_u64pair(const void *a, const void *b) {
    const uint64_t *x = a, *y = b;
    return x[0] != y[0] ? (x[0] < y[0] ? -1 : 1) : (x[1] < y[1] ? -1 : x[1] > y[1]);
}

static const char *path_end(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static void check_open(const qc_st *st, const src *files, size_t nfiles) {
    size_t n = qc_st_count(st);
    FZ_CHECK(qc_st_at(st, n) == NULL, "qc_st_at past the end");
    uint64_t *ranges = malloc((n ? n : 1) * 3 * sizeof *ranges); /* (file, begin, end) of non-empty tensors */
    size_t nr = 0;
    FZ_CHECK(ranges != NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const qc_st_tensor *t = qc_st_at(st, i);
        FZ_CHECK(t && t->name && t->file, "tensor %zu incomplete", i);
        FZ_CHECK(qc_st_find(st, t->name) == t, "qc_st_find('%s') is not tensor %zu", t->name, i);
        if (i > 0)
            FZ_CHECK(strcmp(qc_st_at(st, i - 1)->name, t->name) < 0, "names not sorted / unique at %zu", i);
        int es = esize_of(t->dtype);
        FZ_CHECK(es > 0, "tensor '%s': dtype %d handed out", t->name, (int)t->dtype);
        FZ_CHECK(t->ndim >= 0 && t->ndim <= QC_ST_MAX_DIMS, "tensor '%s': ndim %d", t->name, (int)t->ndim);
        /* nbytes = numel * esize; a zero dimension makes it 0 whatever the others */
        uint64_t want = (uint64_t)es;
        int zero = 0, ovf = 0;
        for (int32_t d = 0; d < t->ndim; d++) {
            FZ_CHECK(t->shape[d] >= 0, "tensor '%s': negative dim", t->name);
            zero |= t->shape[d] == 0;
            ovf |= __builtin_mul_overflow(want, (uint64_t)t->shape[d], &want);
        }
        FZ_CHECK(zero || !ovf, "tensor '%s': accepted a shape whose size overflows", t->name);
        FZ_CHECK((zero ? 0 : want) == t->nbytes, "tensor '%s': %zu bytes, shape says %llu", t->name, t->nbytes,
                 (unsigned long long)(zero ? 0 : want));
        size_t f = nfiles;
        for (size_t k = 0; k < nfiles; k++)
            if (strcmp(path_end(t->file), files[k].name) == 0)
                f = k;
        FZ_CHECK(f < nfiles, "tensor '%s' in unknown file '%s'", t->name, t->file);
        const src *s = &files[f];
        uint64_t hlen = 0;
        for (int b = 7; b >= 0; b--)
            hlen = hlen << 8 | s->bytes[b];
        FZ_CHECK(t->file_offset >= 8 + hlen && t->file_offset <= s->size && t->nbytes <= s->size - t->file_offset,
                 "tensor '%s': [%llu, +%zu) outside the data section of '%s' (%zu bytes, header %llu)", t->name,
                 (unsigned long long)t->file_offset, t->nbytes, s->name, s->size, (unsigned long long)hlen);
        FZ_CHECK(t->nbytes == 0 || memcmp(t->data, s->bytes + t->file_offset, t->nbytes) == 0,
                 "tensor '%s': view does not hold the file's bytes", t->name);
        if (t->nbytes) {
            uint64_t *r = ranges + 3 * nr++;
            r[0] = f, r[1] = t->file_offset, r[2] = t->file_offset + t->nbytes;
        }
    }
    /* no overlap among the non-empty ranges of one file */
    qsort(ranges, nr, 3 * sizeof *ranges, cmp_u64pair);
    for (size_t i = 1; i < nr; i++) {
        const uint64_t *a = ranges + 3 * (i - 1), *b = ranges + 3 * i;
        if (a[0] == b[0])
            FZ_CHECK(a[2] <= b[1], "ranges [%llu,%llu) and [%llu,%llu) overlap", (unsigned long long)a[1],
                     (unsigned long long)a[2], (unsigned long long)b[1], (unsigned long long)b[2]);
    }
    free(ranges);
    uint8_t h[16];
    qc_st_hash(st, h);
}

/* what: a substring every error message must contain (the file's path or
 * the scratch directory). */
static void try_open(const char *path, const src *files, size_t nfiles, const char *what) {
    qc_st *st = NULL;
    qc_err err;
    err.msg[0] = 0;
    if (qc_st_open(&st, path, &err) != 0) {
        FZ_CHECK(st == NULL, "failed open left a handle");
        fz_note("refused", err.msg);
        fz_check_msg(err.msg, what);
        return;
    }
    fz_note("accepted", NULL);
    check_open(st, files, nfiles);
    qc_st_free(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *part[MAX_SHARDS + 1];
    size_t len[MAX_SHARDS + 1];
    size_t np = fz_split(data, size, SHARD_SEP, part, len, MAX_SHARDS + 1);
    char path[512];
    if (np == 1) {
        fz_memfile("model.safetensors", data, size, path, sizeof path);
        src f = {path_end(path), data, size};
        try_open(path, &f, 1, path);
        return 0;
    }
    /* sharded: every run starts from the same directory contents */
    static const char *const shard[MAX_SHARDS] = {"1.safetensors", "2.safetensors", "3.safetensors",
                                                  "4.safetensors"};
    src files[MAX_SHARDS + 1];
    char sp[512];
    for (size_t k = 0; k < MAX_SHARDS; k++) {
        if (k + 1 < np) {
            files[k] = (src){shard[k], part[k + 1], len[k + 1]};
            fz_write(shard[k], part[k + 1], len[k + 1], sp, sizeof sp);
        } else {
            fz_remove(shard[k]);
        }
    }
    /* the index itself, should a shard name point back at it */
    files[np - 1] = (src){"model.safetensors.index.json", part[0], len[0]};
    fz_write(files[np - 1].name, part[0], len[0], path, sizeof path);
    try_open(path, files, np, fz_dir());
    return 0;
}
