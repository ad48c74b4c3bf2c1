/*
 * frontend/safetensors.c — the safetensors reader (qc_st_* in qc/frontend.h).
 *
 * A .safetensors file is: u64 LE header length H, H bytes of JSON
 * {"NAME": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
 *  "__metadata__": {..strings..}}, then the data section, to which the
 * offsets are relative. A sharded checkpoint adds model.safetensors.index.json
 * whose "weight_map" maps each tensor name to a shard file beside it.
 *
 * The checkpoint is untrusted, so everything is checked before any tensor
 * byte is handed out: the header length against the file and a cap, the
 * JSON, every dtype, shape and offset pair (with overflow-safe size
 * arithmetic), that byte ranges of a file do not overlap, that names are
 * unique across shards and agree with the index. Files are mmap'd read-only
 * and tensors are borrowed views into them. Errors are one line:
 *   "PATH: tensor 'NAME': what (offset N)"   N = absolute byte offset in PATH
 *   "PATH: what"
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "qc/frontend.h"
#include "qc/json.h"
#include "qrt/abi.h"

typedef struct st_file {
    char *path;        /* as opened (index dir + shard name for shards) */
    const uint8_t *map; /* whole file, read-only */
    size_t size;
} st_file;

struct qc_st {
    qc_st_tensor *t;    /* [n], sorted by name */
    size_t n, cap;
    st_file *files;     /* [nfiles], sorted by path */
    size_t nfiles;
};

/* safetensors dtype names: the supported ones map to qrt dtypes. */
static const struct {
    const char *name;
    int32_t dtype; /* -1: a real safetensors dtype qcc does not take */
    int32_t size;
} dtypes[] = {
    {"F32", QRT_DT_F32, 4},  {"F16", QRT_DT_F16, 2},   {"BF16", QRT_DT_BF16, 2},
    {"F64", -1, 8},          {"I64", -1, 8},           {"U64", -1, 8},
    {"I32", -1, 4},          {"U32", -1, 4},           {"I16", -1, 2},
    {"U16", -1, 2},          {"I8", -1, 1},            {"U8", -1, 1},
    {"BOOL", -1, 1},         {"F8_E4M3", -1, 1},       {"F8_E5M2", -1, 1},
    {"F8_E8M0", -1, 1},      {"F6_E2M3", -1, 1},       {"F6_E3M2", -1, 1},
    {"F4", -1, 1},           {"C64", -1, 8},
};

/* A name made printable on one line (control bytes -> '?', long -> "..."). */
static const char *show(const char *s, char buf[96]) {
    size_t i = 0;
    for (; s[i] && i < 80; i++)
        buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    if (s[i])
        memcpy(buf + i, "...", 4);
    else
        buf[i] = 0;
    return buf;
}

static void unmap_file(st_file *f) {
    if (f->map && f->size)
        munmap((void *)f->map, f->size);
    free(f->path);
}

static int map_file(st_file *f, const char *path, qc_err *err) {
    memset(f, 0, sizeof *f);
    f->path = strdup(path);
    if (!f->path)
        return qc_err_set(err, "%s: out of memory", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return qc_err_set(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return qc_err_set(err, "%s: not a regular file", path);
    }
    f->size = (size_t)sb.st_size;
    if (f->size < 8) {
        close(fd);
        return qc_err_set(err, "%s: file is %zu bytes, too short for a safetensors header (8 bytes)",
                          path, f->size);
    }
    void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (m == MAP_FAILED) {
        f->size = 0;
        return qc_err_set(err, "%s: cannot mmap: %s", path, strerror(e));
    }
    f->map = m;
    return 0;
}

static int push_tensor(qc_st *st, const qc_st_tensor *t) {
    if (st->n == st->cap) {
        size_t nc = st->cap ? st->cap * 2 : 64;
        qc_st_tensor *q = realloc(st->t, nc * sizeof *q);
        if (!q)
            return -1;
        st->t = q;
        st->cap = nc;
    }
    st->t[st->n++] = *t;
    return 0;
}

/* Byte range of one tensor of the file being parsed (for the overlap check). */
typedef struct range {
    uint64_t begin, end;
    const char *name;
    size_t json_off; /* absolute offset of its data_offsets */
} range;

static int cmp_range(const void *a, const void *b) {
    const range *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

/* Parses one tensor entry of file f's header. hoff = 8 (JSON offsets are
 * relative to the header text, errors are absolute). */
static int parse_entry(qc_st *st, const st_file *f, const char *name, const qc_json *e,
                       uint64_t data_start, uint64_t data_size, range *r, qc_err *err) {
    const char *P = f->path;
    char nb[96];
    const char *N = show(name, nb);
    const size_t hoff = 8;
    if (e->type != QC_JSON_OBJECT)
        return qc_err_set(err, "%s: tensor '%s': entry is not a JSON object (offset %zu)", P, N,
                          hoff + e->offset);

    const qc_json *dt = qc_json_get(e, "dtype");
    if (!dt)
        return qc_err_set(err, "%s: tensor '%s': missing 'dtype' (offset %zu)", P, N, hoff + e->offset);
    if (dt->type != QC_JSON_STRING)
        return qc_err_set(err, "%s: tensor '%s': 'dtype' is not a string (offset %zu)", P, N,
                          hoff + dt->offset);
    int32_t dtype = -2, esize = 0;
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(dt->str, dtypes[i].name) == 0 && strlen(dtypes[i].name) == dt->len) {
            dtype = dtypes[i].dtype;
            esize = dtypes[i].size;
            break;
        }
    if (dtype == -2) {
        char db[96];
        return qc_err_set(err, "%s: tensor '%s': unknown dtype '%s' (offset %zu)", P, N,
                          show(dt->str, db), hoff + dt->offset);
    }
    if (dtype == -1)
        return qc_err_set(err, "%s: tensor '%s': unsupported dtype '%s' (supported: F32, F16, BF16) (offset %zu)",
                          P, N, dt->str, hoff + dt->offset);

    const qc_json *sh = qc_json_get(e, "shape");
    if (!sh)
        return qc_err_set(err, "%s: tensor '%s': missing 'shape' (offset %zu)", P, N, hoff + e->offset);
    if (sh->type != QC_JSON_ARRAY)
        return qc_err_set(err, "%s: tensor '%s': 'shape' is not an array (offset %zu)", P, N,
                          hoff + sh->offset);
    if (sh->n > QC_ST_MAX_DIMS)
        return qc_err_set(err, "%s: tensor '%s': shape has %zu dimensions, at most %d supported (offset %zu)",
                          P, N, sh->n, QC_ST_MAX_DIMS, hoff + sh->offset);
    qc_st_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = dtype;
    t.ndim = (int32_t)sh->n;
    int zero = 0;
    for (size_t i = 0; i < sh->n; i++) {
        const qc_json *d = &sh->items[i];
        if (d->type != QC_JSON_NUMBER || !d->is_int || d->i64 < 0)
            return qc_err_set(err, "%s: tensor '%s': shape entries must be non-negative integers (offset %zu)",
                              P, N, hoff + d->offset);
        t.shape[i] = d->i64;
        zero |= d->i64 == 0;
    }
    /* bytes = numel * esize, overflow-checked (a zero dimension makes it 0) */
    uint64_t bytes = zero ? 0 : (uint64_t)esize;
    for (size_t i = 0; i < sh->n && !zero; i++) {
        uint64_t d = (uint64_t)t.shape[i];
        if (bytes > UINT64_MAX / d)
            return qc_err_set(err, "%s: tensor '%s': shape is too large (size overflows 64 bits) (offset %zu)",
                              P, N, hoff + sh->offset);
        bytes *= d;
    }

    const qc_json *off = qc_json_get(e, "data_offsets");
    if (!off)
        return qc_err_set(err, "%s: tensor '%s': missing 'data_offsets' (offset %zu)", P, N, hoff + e->offset);
    size_t ooff = hoff + off->offset;
    if (off->type != QC_JSON_ARRAY || off->n != 2)
        return qc_err_set(err, "%s: tensor '%s': 'data_offsets' must be an array [begin, end] (offset %zu)",
                          P, N, ooff);
    for (int i = 0; i < 2; i++)
        if (off->items[i].type != QC_JSON_NUMBER || !off->items[i].is_int || off->items[i].i64 < 0)
            return qc_err_set(err, "%s: tensor '%s': data offsets must be non-negative integers (offset %zu)",
                              P, N, hoff + off->items[i].offset);
    uint64_t b = (uint64_t)off->items[0].i64, en = (uint64_t)off->items[1].i64;
    if (b > en)
        return qc_err_set(err, "%s: tensor '%s': data offsets [%llu, %llu) end before they begin (offset %zu)",
                          P, N, (unsigned long long)b, (unsigned long long)en, ooff);
    if (en > data_size)
        return qc_err_set(err, "%s: tensor '%s': data offsets [%llu, %llu) lie beyond the data section (%llu bytes) (offset %zu)",
                          P, N, (unsigned long long)b, (unsigned long long)en,
                          (unsigned long long)data_size, ooff);
    if (en - b != bytes) {
        char shp[160];
        size_t k = 0;
        shp[k++] = '[';
        for (int32_t i = 0; i < t.ndim; i++)
            k += (size_t)snprintf(shp + k, sizeof shp - k, "%s%lld", i ? ", " : "", (long long)t.shape[i]);
        snprintf(shp + k, sizeof shp - k, "]");
        return qc_err_set(err, "%s: tensor '%s': shape %s of %s needs %llu bytes but data offsets [%llu, %llu) hold %llu (offset %zu)",
                          P, N, shp, dt->str, (unsigned long long)bytes, (unsigned long long)b,
                          (unsigned long long)en, (unsigned long long)(en - b), ooff);
    }

    t.name = strdup(name);
    if (!t.name)
        return qc_err_set(err, "%s: out of memory", P);
    t.data = f->map + data_start + b;
    t.nbytes = (size_t)bytes;
    t.file = f->path;
    t.file_offset = data_start + b;
    if (push_tensor(st, &t)) {
        free((void *)t.name);
        return qc_err_set(err, "%s: out of memory", P);
    }
    r->begin = b;
    r->end = en;
    r->name = st->t[st->n - 1].name;
    r->json_off = ooff;
    return 0;
}

/* Validates the header of mapped file f and appends its tensors to st. */
static int parse_file(qc_st *st, const st_file *f, qc_err *err) {
    const char *P = f->path;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | f->map[i];
    if (hlen > QC_ST_MAX_HEADER)
        return qc_err_set(err, "%s: header length %llu exceeds the limit of %u bytes (offset 0)", P,
                          (unsigned long long)hlen, (unsigned)QC_ST_MAX_HEADER);
    if (hlen > f->size - 8)
        return qc_err_set(err, "%s: header length %llu lies beyond the file (%zu bytes) (offset 0)", P,
                          (unsigned long long)hlen, f->size);
    if (hlen < 2)
        return qc_err_set(err, "%s: header length %llu is too short for a JSON object (offset 0)", P,
                          (unsigned long long)hlen);

    /* Parse with an empty name, then restate the error with an absolute offset. */
    qc_json *h = NULL;
    qc_err je;
    if (qc_json_parse(&h, (const char *)f->map + 8, (size_t)hlen, "", &je)) {
        size_t jo = 0;
        int skip = 0;
        if (sscanf(je.msg, ": offset %zu: %n", &jo, &skip) == 1 && skip > 0)
            return qc_err_set(err, "%s: invalid JSON header: %s (offset %zu)", P, je.msg + skip, jo + 8);
        return qc_err_set(err, "%s: invalid JSON header:%s", P, je.msg);
    }
    if (h->type != QC_JSON_OBJECT) {
        qc_json_free(h);
        return qc_err_set(err, "%s: header is not a JSON object (offset 8)", P);
    }
    uint64_t data_start = 8 + hlen, data_size = f->size - data_start;
    range *rs = malloc((h->n ? h->n : 1) * sizeof *rs);
    if (!rs) {
        qc_json_free(h);
        return qc_err_set(err, "%s: out of memory", P);
    }
    size_t nr = 0;
    int rc = 0;
    for (size_t i = 0; i < h->n && rc == 0; i++) {
        const qc_json *e = &h->items[i];
        if (strcmp(h->keys[i], "__metadata__") == 0 && h->key_lens[i] == 12) {
            int ok = e->type == QC_JSON_OBJECT;
            for (size_t j = 0; ok && j < e->n; j++)
                ok = e->items[j].type == QC_JSON_STRING;
            if (!ok)
                rc = qc_err_set(err, "%s: '__metadata__' must be an object of strings (offset %zu)", P,
                                8 + e->offset);
            continue;
        }
        if (h->key_lens[i] != strlen(h->keys[i])) {
            rc = qc_err_set(err, "%s: tensor name contains a NUL byte (offset %zu)", P, 8 + e->offset);
            break;
        }
        rc = parse_entry(st, f, h->keys[i], e, data_start, data_size, &rs[nr], err);
        if (rc == 0)
            nr++;
    }
    if (rc == 0 && nr > 1) {
        qsort(rs, nr, sizeof *rs, cmp_range);
        /* Empty tensors occupy no bytes; among the rest each must begin at
         * or after the furthest end seen so far. */
        const range *last = NULL;
        for (size_t i = 0; i < nr; i++) {
            if (rs[i].begin == rs[i].end)
                continue;
            if (last && rs[i].begin < last->end) {
                char b1[96], b2[96];
                rc = qc_err_set(err, "%s: tensor '%s': data offsets [%llu, %llu) overlap tensor '%s' [%llu, %llu) (offset %zu)",
                                P, show(rs[i].name, b1), (unsigned long long)rs[i].begin,
                                (unsigned long long)rs[i].end, show(last->name, b2),
                                (unsigned long long)last->begin, (unsigned long long)last->end,
                                rs[i].json_off);
                break;
            }
            if (!last || rs[i].end > last->end)
                last = &rs[i];
        }
    }
    free(rs);
    qc_json_free(h);
    return rc;
}

static int cmp_tensor(const void *a, const void *b) {
    return strcmp(((const qc_st_tensor *)a)->name, ((const qc_st_tensor *)b)->name);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts the tensors by name and rejects a name held by two files. */
static int sort_tensors(qc_st *st, qc_err *err) {
    if (st->n > 1)
        qsort(st->t, st->n, sizeof *st->t, cmp_tensor);
    for (size_t i = 1; i < st->n; i++)
        if (strcmp(st->t[i - 1].name, st->t[i].name) == 0) {
            char nb[96];
            return qc_err_set(err, "%s: tensor '%s': also present in %s", st->t[i].file,
                              show(st->t[i].name, nb), st->t[i - 1].file);
        }
    return 0;
}

static int read_all(const char *path, char **out, size_t *len, qc_err *err) {
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return qc_err_set(err, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            if (cap >= (size_t)QC_ST_MAX_HEADER) {
                free(buf);
                fclose(fp);
                return qc_err_set(err, "%s: index file larger than %u bytes", path,
                                  (unsigned)QC_ST_MAX_HEADER);
            }
            char *q = realloc(buf, cap * 2);
            if (!q) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = q;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(fp);
    fclose(fp);
    if (!buf)
        return qc_err_set(err, "%s: out of memory", path);
    if (bad) {
        free(buf);
        return qc_err_set(err, "%s: read error", path);
    }
    *out = buf;
    *len = n;
    return 0;
}

/* A shard name must stay inside the index's directory. */
static int shard_name_ok(const char *s, size_t len) {
    if (len == 0 || strlen(s) != len || s[0] == '/')
        return 0;
    for (size_t i = 0; i < len; i++) /* control bytes would break the one-line error rule */
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    for (const char *p = s; *p;) {
        const char *q = strchr(p, '/');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        if (n == 0 || (n == 2 && p[0] == '.' && p[1] == '.'))
            return 0;
        p += n + (q ? 1 : 0);
    }
    return 1;
}

static int open_index(qc_st *st, const char *path, qc_err *err) {
    char *text = NULL;
    size_t len = 0;
    if (read_all(path, &text, &len, err))
        return -1;
    qc_json *root = NULL;
    int rc = qc_json_parse(&root, text, len, path, err);
    free(text);
    if (rc)
        return -1;
    char **names = NULL;
    char *dir = NULL;
    const qc_json *wm = qc_json_get(root, "weight_map");
    if (root->type != QC_JSON_OBJECT) {
        rc = qc_err_set(err, "%s: offset 0: index is not a JSON object", path);
        goto out;
    }
    if (!wm || wm->type != QC_JSON_OBJECT) {
        rc = qc_err_set(err, "%s: key 'weight_map': %s (offset %zu)", path,
                        wm ? "must be an object of tensor name -> shard file" : "missing",
                        wm ? wm->offset : root->offset);
        goto out;
    }
    if (wm->n == 0) {
        rc = qc_err_set(err, "%s: key 'weight_map': lists no tensors (offset %zu)", path, wm->offset);
        goto out;
    }
    /* Distinct shard names, sorted. */
    names = malloc(wm->n * sizeof *names);
    if (!names) {
        rc = qc_err_set(err, "%s: out of memory", path);
        goto out;
    }
    for (size_t i = 0; i < wm->n; i++) {
        const qc_json *v = &wm->items[i];
        char nb[96];
        if (wm->key_lens[i] != strlen(wm->keys[i])) {
            rc = qc_err_set(err, "%s: tensor name contains a NUL byte (offset %zu)", path, v->offset);
            goto out;
        }
        if (v->type != QC_JSON_STRING || !shard_name_ok(v->str, v->len)) {
            rc = qc_err_set(err, "%s: tensor '%s': shard must be a relative file name inside the index's directory (offset %zu)",
                            path, show(wm->keys[i], nb), v->offset);
            goto out;
        }
        names[i] = v->str;
    }
    qsort(names, wm->n, sizeof *names, cmp_str);
    size_t nd = 0;
    for (size_t i = 0; i < wm->n; i++)
        if (nd == 0 || strcmp(names[nd - 1], names[i]) != 0)
            names[nd++] = names[i];

    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path) + 1 : 0;
    st->files = calloc(nd, sizeof *st->files);
    dir = malloc(dlen + 1);
    if (!st->files || !dir) {
        rc = qc_err_set(err, "%s: out of memory", path);
        goto out;
    }
    memcpy(dir, path, dlen);
    dir[dlen] = 0;
    for (size_t i = 0; i < nd; i++) {
        size_t need = dlen + strlen(names[i]) + 1;
        char *full = malloc(need);
        if (!full) {
            rc = qc_err_set(err, "%s: out of memory", path);
            goto out;
        }
        snprintf(full, need, "%s%s", dir, names[i]);
        rc = map_file(&st->files[i], full, err);
        free(full);
        st->nfiles = i + 1;
        if (rc || (rc = parse_file(st, &st->files[i], err)))
            goto out;
    }
    if ((rc = sort_tensors(st, err)))
        goto out;

    /* Every mapped name must be in the shard the index names, and every
     * tensor of the shards must be mapped. */
    for (size_t i = 0; i < wm->n; i++) {
        const qc_st_tensor *t = qc_st_find(st, wm->keys[i]);
        const char *shard = wm->items[i].str;
        size_t fl = t ? strlen(t->file) : 0, sl = strlen(shard);
        if (!t || fl < sl || strcmp(t->file + fl - sl, shard) != 0 || fl - sl != dlen) {
            char nb[96];
            rc = qc_err_set(err, "%s: tensor '%s': mapped to shard '%s', which does not contain it (offset %zu)",
                            path, show(wm->keys[i], nb), shard, wm->items[i].offset);
            goto out;
        }
    }
    if (st->n != wm->n) {
        for (size_t i = 0; i < st->n; i++)
            if (!qc_json_get(wm, st->t[i].name)) {
                char nb[96];
                rc = qc_err_set(err, "%s: tensor '%s': not listed in the weight_map of %s",
                                st->t[i].file, show(st->t[i].name, nb), path);
                goto out;
            }
    }
out:
    free(dir);
    free(names);
    qc_json_free(root);
    return rc;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

int qc_st_open(qc_st **out, const char *path, qc_err *err) {
    *out = NULL;
    qc_st *st = calloc(1, sizeof *st);
    if (!st)
        return qc_err_set(err, "%s: out of memory", path);
    int rc;
    if (ends_with(path, ".json")) {
        rc = open_index(st, path, err);
    } else {
        st->files = calloc(1, sizeof *st->files);
        if (!st->files) {
            rc = qc_err_set(err, "%s: out of memory", path);
        } else {
            st->nfiles = 1;
            rc = map_file(&st->files[0], path, err);
            if (rc == 0)
                rc = parse_file(st, &st->files[0], err);
            if (rc == 0)
                rc = sort_tensors(st, err);
        }
    }
    if (rc) {
        qc_st_free(st);
        return -1;
    }
    *out = st;
    return 0;
}

void qc_st_free(qc_st *st) {
    if (!st)
        return;
    for (size_t i = 0; i < st->n; i++)
        free((void *)st->t[i].name);
    free(st->t);
    for (size_t i = 0; i < st->nfiles; i++)
        unmap_file(&st->files[i]);
    free(st->files);
    free(st);
}

size_t qc_st_count(const qc_st *st) { return st ? st->n : 0; }

const qc_st_tensor *qc_st_at(const qc_st *st, size_t i) {
    return st && i < st->n ? &st->t[i] : NULL;
}

const qc_st_tensor *qc_st_find(const qc_st *st, const char *name) {
    if (!st || !name)
        return NULL;
    size_t lo = 0, hi = st->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(st->t[mid].name, name);
        if (c == 0)
            return &st->t[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

void qc_st_hash(const qc_st *st, uint8_t out[16]) {
    XXH3_state_t s;
    XXH3_INITSTATE(&s);
    XXH3_128bits_reset(&s);
    for (size_t i = 0; st && i < st->nfiles; i++)
        XXH3_128bits_update(&s, st->files[i].map, st->files[i].size);
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(&s));
    memcpy(out, c.digest, 16);
}
