/*
 * tests/fuzz/fuzz_gguf.c — libFuzzer target for the GGUF reader
 * (frontend/gguf.c, frontend/gguf_meta.c: qc_gguf_*).
 *
 * The bytes are one .gguf file, handed to qc_gguf_open as /proc/self/fd/N
 * of a memfd (a scratch file where memfd is missing). The file is mmap'd,
 * which ASan does not track, so after a successful open every view is
 * checked against the bytes it must come from:
 *   metadata  each value's view lies where the layout puts it (after its
 *             key and type) and inside the file, holds the file's bytes;
 *             keys are unique and qc_gguf_find_kv finds each; the typed
 *             getters and array accessors run on every key
 *   tensors   1..4 dims, unused ones 1, nbytes = rows x blocks x block
 *             bytes, data aligned, inside the file after the infos, not
 *             overlapping, equal to the file's bytes; every tensor a
 *             reader can dequantize is dequantized from an exact-size copy
 *             (so ASan sees a read past its bytes) into an exact-size output
 * then qc_gguf_config (an accepted config passes fz_check_config) and
 * qc_gguf_tokenizer (the runtime must open its blob, which must survive
 * fz_exercise_tok; both in fuzz.h).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc/frontend.h"
#include "qrt/tokenizer.h"
#include "fuzz.h"

static const uint8_t *file;  /* the input, as the reader's file */
static size_t file_size;
static const uint8_t *base;  /* where the reader mapped offset 0 */
static const char *cur_path; /* every error message names it */

static uint64_t rd64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Bytes of one value of scalar type t, 0 for strings/arrays/unknown. */
static uint64_t scalar_size(uint32_t t) {
    static const uint8_t sz[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return t < 13 ? sz[t] : 0;
}

/* [off, off+n) inside the file, and the mapped view there holds its bytes. */
static void check_view(const uint8_t *view, uint64_t off, uint64_t n, const char *what) {
    FZ_CHECK(off <= file_size && n <= file_size - off, "%s: [%llu, +%llu) outside the file (%zu bytes)", what,
             (unsigned long long)off, (unsigned long long)n, file_size);
    FZ_CHECK(view == base + off, "%s: view is not at file offset %llu", what, (unsigned long long)off);
    FZ_CHECK(n == 0 || memcmp(view, file + off, n) == 0, "%s: view does not hold the file's bytes", what);
}

/* The bytes of kv's value (after type, and after elem type + count for
 * arrays), checked element by element. */
static void check_kv(const qc_gguf *g, const qc_gguf_kv *kv) {
    FZ_CHECK(kv->key != NULL && kv->key[0] != 0, "empty key");
    FZ_CHECK(qc_gguf_find_kv(g, kv->key) == kv, "find_kv('%s') is not the key itself", kv->key);
    uint64_t kl = strlen(kv->key);
    FZ_CHECK(kv->offset <= file_size && 8 <= file_size - kv->offset && rd64(file + kv->offset) == kl &&
                 kv->offset + 8 + kl <= file_size && memcmp(file + kv->offset + 8, kv->key, kl) == 0,
             "key '%s' is not at offset %llu", kv->key, (unsigned long long)kv->offset);
    uint64_t off = kv->offset + 8 + kl + 4;
    FZ_CHECK(kv->type <= QC_GGUF_F64, "key '%s': type %u", kv->key, kv->type);
    if (kv->type == QC_GGUF_ARRAY) {
        FZ_CHECK(kv->elem_type != QC_GGUF_ARRAY && kv->elem_type <= QC_GGUF_F64, "key '%s': elem type %u", kv->key,
                 kv->elem_type);
        off += 12;
    } else {
        FZ_CHECK(kv->elem_type == kv->type && kv->n == 1, "key '%s': scalar with elem %u n %llu", kv->key,
                 kv->elem_type, (unsigned long long)kv->n);
    }
    FZ_CHECK(kv->n <= QC_GGUF_MAX_COUNT || kv->elem_type != QC_GGUF_STRING, "key '%s': %llu strings", kv->key,
             (unsigned long long)kv->n);
    if (kv->elem_type == QC_GGUF_STRING) {
        uint64_t p = off;
        for (uint64_t i = 0; i < kv->n; i++) {
            FZ_CHECK(p <= file_size && 8 <= file_size - p, "key '%s': string %llu outside the file", kv->key,
                     (unsigned long long)i);
            uint64_t len = rd64(file + p);
            FZ_CHECK(len <= file_size - p - 8, "key '%s': string %llu outside the file", kv->key,
                     (unsigned long long)i);
            p += 8 + len;
        }
        check_view(kv->data, off, p - off, kv->key);
    } else {
        uint64_t es = scalar_size(kv->elem_type);
        FZ_CHECK(es > 0, "key '%s': elem type %u has no size", kv->key, kv->elem_type);
        FZ_CHECK(kv->n <= file_size / es, "key '%s': %llu elements", kv->key, (unsigned long long)kv->n);
        check_view(kv->data, off, kv->n * es, kv->key);
    }

    /* the getters: found (1) or a type error (-1 with a message), never absent */
    qc_err err;
    int64_t i64;
    double d;
    int b;
    qc_gguf_str s;
    const qc_gguf_kv *arr;
    int rc;
    err.msg[0] = 0;
    if ((rc = qc_gguf_get_int(g, kv->key, &i64, &err)) < 0)
        fz_check_msg(err.msg, cur_path);
    FZ_CHECK(rc != 0, "get_int('%s') says absent", kv->key);
    if ((rc = qc_gguf_get_float(g, kv->key, &d, &err)) < 0)
        fz_check_msg(err.msg, cur_path);
    FZ_CHECK(rc != 0, "get_float('%s') says absent", kv->key);
    if ((rc = qc_gguf_get_bool(g, kv->key, &b, &err)) < 0)
        fz_check_msg(err.msg, cur_path);
    FZ_CHECK(rc != 0, "get_bool('%s') says absent", kv->key);
    if ((rc = qc_gguf_get_str(g, kv->key, &s, &err)) < 0)
        fz_check_msg(err.msg, cur_path);
    FZ_CHECK(rc != 0, "get_str('%s') says absent", kv->key);
    if (rc == 1)
        check_view((const uint8_t *)s.s, (uint64_t)((const uint8_t *)s.s - base), s.len, kv->key);
    if ((rc = qc_gguf_get_arr(g, kv->key, -1, &arr, &err)) < 0)
        fz_check_msg(err.msg, cur_path);
    FZ_CHECK((rc == 1) == (kv->type == QC_GGUF_ARRAY), "get_arr('%s'): %d", kv->key, rc);
    if (rc == 1) {
        FZ_CHECK(arr == kv, "get_arr('%s') gives another key", kv->key);
        if (kv->elem_type == QC_GGUF_STRING) {
            if (kv->n <= (1u << 16)) {
                qc_gguf_str *strs = malloc((kv->n ? kv->n : 1) * sizeof *strs);
                FZ_CHECK(strs != NULL, "out of memory");
                qc_gguf_arr_strings(kv, strs);
                for (uint64_t i = 0; i < kv->n; i++)
                    FZ_CHECK(strs[i].len == 0 || ((const uint8_t *)strs[i].s >= kv->data &&
                                                  (const uint8_t *)strs[i].s + strs[i].len <= base + file_size),
                             "key '%s': string %llu outside the array", kv->key, (unsigned long long)i);
                free(strs);
            }
        } else if (kv->elem_type != QC_GGUF_BOOL) {
            uint64_t n = kv->n < 4096 ? kv->n : 4096;
            for (uint64_t i = 0; i < n; i++) {
                volatile double f = qc_gguf_arr_float(kv, i);
                volatile int64_t v = qc_gguf_arr_int(kv, i);
                (void)f, (void)v;
            }
        }
    }
}

static int cmp_range(const void *a, const void *b) {
    const uint64_t *x = a, *y = b;
    return x[0] != y[0] ? (x[0] < y[0] ? -1 : 1) : 0;
}

static void check_tensors(const qc_gguf *g) {
    size_t n = qc_gguf_n_tensors(g);
    uint32_t al = qc_gguf_alignment(g);
    FZ_CHECK(al > 0, "alignment 0");
    uint64_t *r = malloc((n ? n : 1) * 2 * sizeof *r);
    size_t nr = 0;
    FZ_CHECK(r != NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const qc_gguf_tensor *t = qc_gguf_tensor_at(g, i);
        FZ_CHECK(t && t->name && t->name[0], "tensor %zu without a name", i);
        FZ_CHECK(qc_gguf_find_tensor(g, t->name) == t, "find_tensor('%s') is not the tensor itself", t->name);
        FZ_CHECK(t->ndim >= 1 && t->ndim <= QC_GGUF_MAX_DIMS, "tensor '%s': ndim %u", t->name, t->ndim);
        int64_t block, bytes;
        FZ_CHECK(qc_gguf_type_size(t->type, &block, &bytes) == 0, "tensor '%s': unknown type %u accepted", t->name,
                 t->type);
        uint64_t rows = 1;
        int ovf = 0;
        for (uint32_t d = 0; d < QC_GGUF_MAX_DIMS; d++) {
            FZ_CHECK(t->ne[d] >= 0, "tensor '%s': ne[%u] = %lld", t->name, d, (long long)t->ne[d]);
            FZ_CHECK(d < t->ndim || t->ne[d] == 1, "tensor '%s': unused ne[%u] = %lld", t->name, d,
                     (long long)t->ne[d]);
            if (d > 0)
                ovf |= __builtin_mul_overflow(rows, (uint64_t)t->ne[d], &rows);
        }
        FZ_CHECK(t->ne[0] % block == 0, "tensor '%s': row of %lld is not whole blocks of %lld", t->name,
                 (long long)t->ne[0], (long long)block);
        uint64_t want;
        ovf |= __builtin_mul_overflow(rows, (uint64_t)(t->ne[0] / block) * (uint64_t)bytes, &want);
        FZ_CHECK(!ovf && want == t->nbytes, "tensor '%s': %zu bytes, shape says %llu%s", t->name, t->nbytes,
                 (unsigned long long)want, ovf ? " (overflow)" : "");
        FZ_CHECK(t->file_offset % al == 0, "tensor '%s': offset %llu not aligned to %u", t->name,
                 (unsigned long long)t->file_offset, al);
        FZ_CHECK(t->file_offset > t->info_offset, "tensor '%s': data before its info", t->name);
        /* an empty tensor may have no view (and sit at the aligned end of a
         * file whose last padding is missing) */
        if (t->nbytes || t->data)
            check_view(t->data, t->file_offset, t->nbytes, t->name);
        if (t->nbytes) {
            r[2 * nr] = t->file_offset, r[2 * nr + 1] = t->file_offset + t->nbytes;
            nr++;
        }
        /* dequantize from an exact-size copy into an exact-size output */
        int64_t numel = (int64_t)(rows * (uint64_t)t->ne[0]);
        if (qc_gguf_can_dequant(t->type) && t->nbytes > 0 && numel <= (1 << 20)) {
            void *src = fz_dup(t->data, t->nbytes);
            float *dst = malloc((size_t)numel * sizeof *dst);
            FZ_CHECK(dst != NULL, "out of memory");
            FZ_CHECK(qc_gguf_dequant(t->type, src, dst, numel) == 0, "tensor '%s': dequant of %lld refused",
                     t->name, (long long)numel);
            free(dst);
            free(src);
        }
    }
    qsort(r, nr, 2 * sizeof *r, cmp_range);
    for (size_t i = 1; i < nr; i++)
        FZ_CHECK(r[2 * i - 1] <= r[2 * i], "tensor data ranges overlap at %llu", (unsigned long long)r[2 * i]);
    free(r);
}

static void check_meta(const qc_gguf *g, const char *path) {
    qc_config cfg;
    qc_err err;
    err.msg[0] = 0;
    memset(&cfg, 0, sizeof cfg);
    if (qc_gguf_config(g, &cfg, &err) != 0) {
        fz_note("config refused", err.msg);
        fz_check_msg(err.msg, path);
    } else {
        fz_note("config accepted", NULL);
        fz_check_config(&cfg);
    }
    uint8_t *blob = NULL;
    size_t size = 0;
    if (qc_gguf_tokenizer(g, &blob, &size, &err) != 0) {
        fz_note("tokenizer refused", err.msg);
        fz_check_msg(err.msg, path);
        return;
    }
    fz_note("tokenizer accepted", NULL);
    qrt_tok *t = NULL;
    char msg[256] = "";
    FZ_CHECK(qrt_tok_open(&t, blob, size, msg, sizeof msg) == 0,
             "the runtime refuses a blob the GGUF reader wrote (%zu bytes): %s", size, msg);
    fz_exercise_tok(t);
    qrt_tok_free(t);
    free(blob);
}

static void try_open(const char *path, const uint8_t *data, size_t size) {
    qc_gguf *g = NULL;
    qc_err err;
    err.msg[0] = 0;
    if (qc_gguf_open(&g, path, &err) != 0) {
        FZ_CHECK(g == NULL, "failed open left a handle");
        fz_note("refused", err.msg);
        fz_check_msg(err.msg, path);
        return;
    }
    fz_note("accepted", NULL);
    file = data, file_size = size, cur_path = path;
    FZ_CHECK(qc_gguf_version(g) == 2 || qc_gguf_version(g) == 3, "version %u", qc_gguf_version(g));
    /* the reader's mapping base, from the first key or tensor (checked by check_view) */
    base = NULL;
    if (qc_gguf_n_kv(g) > 0) {
        const qc_gguf_kv *kv = qc_gguf_kv_at(g, 0);
        base = kv->data - (kv->offset + 8 + strlen(kv->key) + 4 + (kv->type == QC_GGUF_ARRAY ? 12 : 0));
    } else if (qc_gguf_n_tensors(g) > 0) {
        base = (const uint8_t *)qc_gguf_tensor_at(g, 0)->data - qc_gguf_tensor_at(g, 0)->file_offset;
    }
    FZ_CHECK(qc_gguf_kv_at(g, qc_gguf_n_kv(g)) == NULL && qc_gguf_tensor_at(g, qc_gguf_n_tensors(g)) == NULL,
             "accessors past the end");
    for (size_t i = 0; i < qc_gguf_n_kv(g); i++)
        check_kv(g, qc_gguf_kv_at(g, i));
    check_tensors(g);
    uint8_t h[16];
    qc_gguf_hash(g, h);
    check_meta(g, path);
    qc_gguf_free(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[512];
    try_open(fz_memfile("model.gguf", data, size, path, sizeof path), data, size);
    return 0;
}
