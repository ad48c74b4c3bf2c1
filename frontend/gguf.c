/*
 * frontend/gguf.c — the GGUF reader (qc_gguf_* in qc/frontend.h) and the
 * ggml block formats it dequantizes.
 *
 * A GGUF file (v2, v3; little-endian) is:
 *   "GGUF" | u32 version | u64 n_tensors | u64 n_kv
 *   n_kv x     { str key | u32 type | value }     value: scalar, str, or
 *                                                 u32 elem_type | u64 n | n values
 *   n_tensors x{ str name | u32 n_dims | u64 ne[n_dims] | u32 ggml type | u64 offset }
 *   padding to general.alignment (default 32)
 *   data section: tensor i at data_start + offset_i (a multiple of the alignment)
 * where str = u64 length | bytes (no NUL). Dimensions are innermost first:
 * ne[0] is the length of a row, so an HF weight [N, K] is stored as ne = {K, N}.
 *
 * The file is untrusted: every count, string length, dimension, type, offset
 * and size is checked (in overflow-safe 64-bit arithmetic) against the file
 * and a cap before anything is read through it; keys and tensor names must be
 * unique; tensor byte ranges must lie inside the file and not overlap. The
 * file is mmap'd read-only and tensors are borrowed views. Errors are one line:
 *   "PATH: what (offset N)"   "PATH: key 'K': what (offset N)"
 *   "PATH: tensor 'X': what (offset N)"      N = absolute byte offset in PATH
 *
 * Dequantization follows the block layouts of ggml (ggml-common.h): Q4_0,
 * Q4_1, Q5_0, Q5_1, Q8_0 (32 elements per block, f16 scale [+ f16 min]) and
 * the K-quants Q2_K..Q6_K (256-element super-blocks with 4-8 bit sub-block
 * scales), in the same float operation order as ggml's reference code, so
 * the f32 values equal llama.cpp's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "qc/frontend.h"

#define HEADER_BYTES 24u
#define MAX_KEY_LEN 65535u
#define MIN_KV_BYTES 14u     /* u64 key length, 1-byte key, u32 type, 1-byte value */
#define MIN_TENSOR_BYTES 33u /* u64 name length, 1-byte name, u32 n_dims, one u64 dim, u32 type, u64 offset */

struct qc_gguf {
    char *path;
    const uint8_t *map; /* whole file, read-only */
    size_t size;
    uint32_t version, alignment;
    uint64_t data_start; /* absolute offset of the data section */
    qc_gguf_kv *kv;      /* [n_kv], file order */
    size_t n_kv;
    const qc_gguf_kv **kv_by_key;      /* [n_kv] sorted by key */
    qc_gguf_tensor *t;   /* [n_t], file order */
    size_t n_t;
    const qc_gguf_tensor **t_by_name;  /* [n_t] sorted by name */
};

/* ---- little-endian reads ------------------------------------------------- */

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* A name made printable on one line (control bytes -> '?', long -> "..."). */
static const char *show(const char *s, size_t n, char buf[96]) {
    size_t i = 0;
    for (; i < n && i < 80; i++)
        buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    if (i < n)
        memcpy(buf + i, "...", 4);
    else
        buf[i] = 0;
    return buf;
}

/* ---- value types --------------------------------------------------------- */

/* Bytes of one scalar of value type t; 0 for STRING / ARRAY; -1 unknown. */
static int vsize(uint32_t t) {
    switch (t) {
    case QC_GGUF_U8: case QC_GGUF_I8: case QC_GGUF_BOOL: return 1;
    case QC_GGUF_U16: case QC_GGUF_I16: return 2;
    case QC_GGUF_U32: case QC_GGUF_I32: case QC_GGUF_F32: return 4;
    case QC_GGUF_U64: case QC_GGUF_I64: case QC_GGUF_F64: return 8;
    case QC_GGUF_STRING: case QC_GGUF_ARRAY: return 0;
    default: return -1;
    }
}

static const char *vname(uint32_t t) {
    static const char *const names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                        "bool", "string", "array", "u64", "i64", "f64"};
    return t < sizeof names / sizeof names[0] ? names[t] : "?";
}

/* ---- ggml tensor types --------------------------------------------------- */

static const struct {
    uint32_t id;
    const char *name;
    int32_t block, bytes;
} ggml_types[] = {
    {0, "F32", 1, 4},           {1, "F16", 1, 2},          {2, "Q4_0", 32, 18},     {3, "Q4_1", 32, 20},
    {6, "Q5_0", 32, 22},        {7, "Q5_1", 32, 24},       {8, "Q8_0", 32, 34},     {9, "Q8_1", 32, 36},
    {10, "Q2_K", 256, 84},      {11, "Q3_K", 256, 110},    {12, "Q4_K", 256, 144},  {13, "Q5_K", 256, 176},
    {14, "Q6_K", 256, 210},     {15, "Q8_K", 256, 292},    {16, "IQ2_XXS", 256, 66}, {17, "IQ2_XS", 256, 74},
    {18, "IQ3_XXS", 256, 98},   {19, "IQ1_S", 256, 50},    {20, "IQ4_NL", 32, 18},  {21, "IQ3_S", 256, 110},
    {22, "IQ2_S", 256, 82},     {23, "IQ4_XS", 256, 136},  {24, "I8", 1, 1},        {25, "I16", 1, 2},
    {26, "I32", 1, 4},          {27, "I64", 1, 8},         {28, "F64", 1, 8},       {29, "IQ1_M", 256, 56},
    {30, "BF16", 1, 2},         {34, "TQ1_0", 256, 54},    {35, "TQ2_0", 256, 66},  {39, "MXFP4", 32, 17},
};

static int type_index(uint32_t type) {
    for (size_t i = 0; i < sizeof ggml_types / sizeof ggml_types[0]; i++)
        if (ggml_types[i].id == type)
            return (int)i;
    return -1;
}

const char *qc_gguf_type_name(uint32_t type, char buf[16]) {
    int i = type_index(type);
    if (i >= 0)
        return ggml_types[i].name;
    snprintf(buf, 16, "type %u", type);
    return buf;
}

int qc_gguf_type_size(uint32_t type, int64_t *block, int64_t *bytes) {
    int i = type_index(type);
    if (i < 0)
        return -1;
    *block = ggml_types[i].block;
    *bytes = ggml_types[i].bytes;
    return 0;
}

/* ---- errors -------------------------------------------------------------- */

typedef struct rd {
    const qc_gguf *g;
    uint64_t pos; /* read position */
    qc_err *err;
} rd;

/* Checks that n more bytes are readable at r->pos; `what` names the thing. */
static int need(rd *r, uint64_t n, const char *what) {
    uint64_t left = r->g->size - r->pos;
    if (n > left)
        return qc_err_set(r->err, "%s: truncated: %s needs %llu bytes but only %llu remain (offset %llu)",
                          r->g->path, what, (unsigned long long)n, (unsigned long long)left,
                          (unsigned long long)r->pos);
    return 0;
}

int qc_gguf_key_err(const qc_gguf *g, const qc_gguf_kv *kv, const char *key, qc_err *err, const char *fmt, ...) {
    char what[512], kb[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const char *k = kv ? kv->key : key;
    if (kv)
        return qc_err_set(err, "%s: key '%s': %s (offset %llu)", g->path, show(k, strlen(k), kb), what,
                          (unsigned long long)kv->offset);
    return qc_err_set(err, "%s: key '%s': %s", g->path, show(k, strlen(k), kb), what);
}

/* ---- parsing ------------------------------------------------------------- */

/* Reads a GGUF string at r->pos: its bytes (view) and length. */
static int read_str(rd *r, const char *what, const uint8_t **s, uint64_t *len) {
    if (need(r, 8, what))
        return -1;
    uint64_t n = rd64(r->g->map + r->pos);
    r->pos += 8;
    if (need(r, n, what))
        return -1;
    *s = r->g->map + r->pos;
    *len = n;
    r->pos += n;
    return 0;
}

/* Copies a key / tensor name: 1..maxlen bytes, no NUL. */
static char *dup_name(rd *r, const uint8_t *s, uint64_t len, uint64_t maxlen, const char *what, uint64_t at) {
    char nb[96];
    if (len == 0 || len > maxlen) {
        qc_err_set(r->err, "%s: %s '%s' has length %llu, expected 1 to %llu (offset %llu)", r->g->path, what,
                   show((const char *)s, (size_t)len, nb), (unsigned long long)len, (unsigned long long)maxlen,
                   (unsigned long long)at);
        return NULL;
    }
    if (memchr(s, 0, (size_t)len)) {
        qc_err_set(r->err, "%s: %s '%s' contains a NUL byte (offset %llu)", r->g->path, what,
                   show((const char *)s, (size_t)len, nb), (unsigned long long)at);
        return NULL;
    }
    char *d = malloc((size_t)len + 1);
    if (!d) {
        qc_err_set(r->err, "%s: out of memory", r->g->path);
        return NULL;
    }
    memcpy(d, s, (size_t)len);
    d[len] = 0;
    return d;
}

static int parse_kv(rd *r, qc_gguf_kv *kv) {
    const qc_gguf *g = r->g;
    uint64_t at = r->pos;
    const uint8_t *ks;
    uint64_t klen;
    if (read_str(r, "a metadata key", &ks, &klen))
        return -1;
    char *key = dup_name(r, ks, klen, MAX_KEY_LEN, "metadata key", at);
    if (!key)
        return -1;
    kv->key = key;
    kv->offset = at;
    char what[160], kb[96];
    snprintf(what, sizeof what, "the value of key '%s'", show(key, strlen(key), kb));
    if (need(r, 4, what))
        return -1;
    kv->type = rd32(g->map + r->pos);
    r->pos += 4;
    kv->elem_type = kv->type;
    kv->n = 1;
    if (kv->type == QC_GGUF_ARRAY) {
        if (need(r, 12, what))
            return -1;
        kv->elem_type = rd32(g->map + r->pos);
        kv->n = rd64(g->map + r->pos + 4);
        r->pos += 12;
        if (kv->elem_type == QC_GGUF_ARRAY)
            return qc_gguf_key_err(g, kv, NULL, r->err, "nested arrays are not supported");
        if (kv->n > QC_GGUF_MAX_COUNT)
            return qc_gguf_key_err(g, kv, NULL, r->err, "array of %llu elements exceeds the limit of %u",
                                   (unsigned long long)kv->n, (unsigned)QC_GGUF_MAX_COUNT);
    }
    int sz = vsize(kv->elem_type);
    if (sz < 0)
        return qc_gguf_key_err(g, kv, NULL, r->err, "unknown value type %u", kv->elem_type);
    kv->data = g->map + r->pos;
    if (sz > 0) {
        uint64_t left = g->size - r->pos;
        if (kv->n > left / (uint64_t)sz)
            return qc_gguf_key_err(g, kv, NULL, r->err, "truncated: %llu values of type %s do not fit in the %llu bytes left",
                                   (unsigned long long)kv->n, vname(kv->elem_type), (unsigned long long)left);
        if (kv->elem_type == QC_GGUF_BOOL)
            for (uint64_t i = 0; i < kv->n; i++)
                if (kv->data[i] > 1)
                    return qc_gguf_key_err(g, kv, NULL, r->err, "bool value %u is neither 0 nor 1",
                                           kv->data[i]);
        r->pos += kv->n * (uint64_t)sz;
        return 0;
    }
    /* strings: each u64 length + bytes, all inside the file */
    if (kv->n > (g->size - r->pos) / 8)
        return qc_gguf_key_err(g, kv, NULL, r->err, "truncated: %llu strings cannot fit in the %llu bytes left",
                               (unsigned long long)kv->n, (unsigned long long)(g->size - r->pos));
    for (uint64_t i = 0; i < kv->n; i++) {
        const uint8_t *s;
        uint64_t len;
        if (read_str(r, what, &s, &len))
            return -1;
    }
    return 0;
}

static int parse_tensor(rd *r, qc_gguf_tensor *t) {
    const qc_gguf *g = r->g;
    uint64_t at = r->pos;
    const uint8_t *ns;
    uint64_t nlen;
    if (read_str(r, "a tensor name", &ns, &nlen))
        return -1;
    char *name = dup_name(r, ns, nlen, QC_NAME_MAX - 1, "tensor name", at);
    if (!name)
        return -1;
    t->name = name;
    t->info_offset = at;
    char what[160], nb[96], tb[16];
    const char *N = show(name, strlen(name), nb);
    snprintf(what, sizeof what, "the info of tensor '%s'", N);
    if (need(r, 4, what))
        return -1;
    uint32_t nd = rd32(g->map + r->pos);
    if (nd < 1 || nd > QC_GGUF_MAX_DIMS)
        return qc_err_set(r->err, "%s: tensor '%s': %u dimensions, expected 1 to %d (offset %llu)", g->path, N, nd,
                          QC_GGUF_MAX_DIMS, (unsigned long long)r->pos);
    r->pos += 4;
    t->ndim = nd;
    if (need(r, 8ull * nd + 12, what))
        return -1;
    uint64_t numel = 1;
    int zero = 0;
    for (uint32_t i = 0; i < QC_GGUF_MAX_DIMS; i++) {
        uint64_t d = 1;
        if (i < nd) {
            d = rd64(g->map + r->pos);
            if (d > (uint64_t)INT64_MAX)
                return qc_err_set(r->err, "%s: tensor '%s': dimension %u is %llu, too large (offset %llu)", g->path,
                                  N, i, (unsigned long long)d, (unsigned long long)r->pos);
            r->pos += 8;
        }
        t->ne[i] = (int64_t)d;
        if (d == 0)
            zero = 1;
        else if (!zero && numel > (uint64_t)INT64_MAX / d)
            return qc_err_set(r->err, "%s: tensor '%s': element count overflows 64 bits (offset %llu)", g->path, N,
                              (unsigned long long)at);
        else
            numel *= d;
    }
    if (zero)
        numel = 0;
    t->type = rd32(g->map + r->pos);
    int64_t block, bytes;
    if (qc_gguf_type_size(t->type, &block, &bytes))
        return qc_err_set(r->err, "%s: tensor '%s': unknown tensor type %u (offset %llu)", g->path, N, t->type,
                          (unsigned long long)r->pos);
    if (t->ne[0] % block != 0)
        return qc_err_set(r->err, "%s: tensor '%s': rows of %lld elements are not a multiple of the %s block (%lld) (offset %llu)",
                          g->path, N, (long long)t->ne[0], qc_gguf_type_name(t->type, tb), (long long)block,
                          (unsigned long long)r->pos);
    r->pos += 4;
    uint64_t nblocks = numel / (uint64_t)block;
    if (nblocks > UINT64_MAX / (uint64_t)bytes || nblocks * (uint64_t)bytes > SIZE_MAX)
        return qc_err_set(r->err, "%s: tensor '%s': size overflows (offset %llu)", g->path, N,
                          (unsigned long long)at);
    t->nbytes = (size_t)(nblocks * (uint64_t)bytes);
    uint64_t off = rd64(g->map + r->pos);
    if (off % g->alignment != 0)
        return qc_err_set(r->err, "%s: tensor '%s': data offset %llu is not a multiple of the alignment (%u) (offset %llu)",
                          g->path, N, (unsigned long long)off, g->alignment, (unsigned long long)r->pos);
    t->file_offset = off; /* relative until the data section is known */
    r->pos += 8;
    return 0;
}

static int cmp_kv(const void *a, const void *b) {
    return strcmp((*(const qc_gguf_kv *const *)a)->key, (*(const qc_gguf_kv *const *)b)->key);
}
static int cmp_tname(const void *a, const void *b) {
    return strcmp((*(const qc_gguf_tensor *const *)a)->name, (*(const qc_gguf_tensor *const *)b)->name);
}
/* By data offset, then file order (the pointers index one array). */
static int cmp_toff(const void *a, const void *b) {
    const qc_gguf_tensor *x = *(const qc_gguf_tensor *const *)a, *y = *(const qc_gguf_tensor *const *)b;
    if (x->file_offset != y->file_offset)
        return x->file_offset < y->file_offset ? -1 : 1;
    return x < y ? -1 : x > y;
}

static int parse(qc_gguf *g, qc_err *err) {
    const char *P = g->path;
    if (g->size < HEADER_BYTES) {
        if (g->size >= 4 && memcmp(g->map, "GGUF", 4) != 0)
            return qc_err_set(err, "%s: not a GGUF file (bad magic) (offset 0)", P);
        return qc_err_set(err, "%s: truncated: file is %zu bytes, too short for a GGUF header (%u bytes)", P, g->size,
                          HEADER_BYTES);
    }
    if (memcmp(g->map, "GGUF", 4) != 0) {
        char mb[96];
        return qc_err_set(err, "%s: not a GGUF file: magic '%s', expected 'GGUF' (offset 0)", P,
                          show((const char *)g->map, 4, mb));
    }
    g->version = rd32(g->map + 4);
    if (g->version == 1)
        return qc_err_set(err, "%s: GGUF version 1 is not supported (supported: 2, 3) (offset 4)", P);
    if (g->version != 2 && g->version != 3) {
        if ((g->version & 0xFFFF) == 0 && (g->version >> 16) != 0)
            return qc_err_set(err, "%s: big-endian GGUF files are not supported (version field %08x) (offset 4)", P,
                              g->version);
        return qc_err_set(err, "%s: unsupported GGUF version %u (supported: 2, 3) (offset 4)", P, g->version);
    }
    uint64_t n_t = rd64(g->map + 8), n_kv = rd64(g->map + 16);
    uint64_t body = g->size - HEADER_BYTES;
    if (n_t > QC_GGUF_MAX_COUNT)
        return qc_err_set(err, "%s: tensor count %llu exceeds the limit of %u (offset 8)", P, (unsigned long long)n_t,
                          (unsigned)QC_GGUF_MAX_COUNT);
    if (n_kv > QC_GGUF_MAX_COUNT)
        return qc_err_set(err, "%s: metadata key count %llu exceeds the limit of %u (offset 16)", P,
                          (unsigned long long)n_kv, (unsigned)QC_GGUF_MAX_COUNT);
    if (n_kv * MIN_KV_BYTES > body)
        return qc_err_set(err, "%s: metadata key count %llu lies beyond the file (%zu bytes) (offset 16)", P,
                          (unsigned long long)n_kv, g->size);
    if (n_t * MIN_TENSOR_BYTES > body - n_kv * MIN_KV_BYTES)
        return qc_err_set(err, "%s: tensor count %llu lies beyond the file (%zu bytes) (offset 8)", P,
                          (unsigned long long)n_t, g->size);
    g->kv = calloc(n_kv ? n_kv : 1, sizeof *g->kv);
    g->kv_by_key = malloc((n_kv ? n_kv : 1) * sizeof *g->kv_by_key);
    g->t = calloc(n_t ? n_t : 1, sizeof *g->t);
    g->t_by_name = malloc((n_t ? n_t : 1) * sizeof *g->t_by_name);
    if (!g->kv || !g->kv_by_key || !g->t || !g->t_by_name)
        return qc_err_set(err, "%s: out of memory", P);

    rd r = {g, HEADER_BYTES, err};
    for (uint64_t i = 0; i < n_kv; i++) {
        g->n_kv = i + 1; /* so that free() sees the key parse_kv may have allocated */
        if (parse_kv(&r, &g->kv[i]))
            return -1;
        g->kv_by_key[i] = &g->kv[i];
    }
    if (g->n_kv > 1)
        qsort(g->kv_by_key, g->n_kv, sizeof *g->kv_by_key, cmp_kv);
    for (size_t i = 1; i < g->n_kv; i++) {
        const qc_gguf_kv *a = g->kv_by_key[i - 1], *b = g->kv_by_key[i];
        if (strcmp(a->key, b->key) == 0) {
            const qc_gguf_kv *later = a->offset > b->offset ? a : b, *first = later == a ? b : a;
            return qc_gguf_key_err(g, later, NULL, err, "appears twice (first at offset %llu)",
                                   (unsigned long long)first->offset);
        }
    }

    g->alignment = 32;
    const qc_gguf_kv *al = qc_gguf_find_kv(g, "general.alignment");
    if (al) {
        uint32_t a = al->type == QC_GGUF_U32 ? rd32(al->data) : 0;
        if (al->type != QC_GGUF_U32 || a == 0 || (a & (a - 1)) != 0)
            return qc_gguf_key_err(g, al, NULL, err, "must be a u32 power of two");
        g->alignment = a;
    }

    for (uint64_t i = 0; i < n_t; i++) {
        g->n_t = i + 1;
        if (parse_tensor(&r, &g->t[i]))
            return -1;
        g->t_by_name[i] = &g->t[i];
    }
    if (g->n_t > 1)
        qsort(g->t_by_name, g->n_t, sizeof *g->t_by_name, cmp_tname);
    for (size_t i = 1; i < g->n_t; i++) {
        const qc_gguf_tensor *a = g->t_by_name[i - 1], *b = g->t_by_name[i];
        if (strcmp(a->name, b->name) == 0) {
            char nb[96];
            const qc_gguf_tensor *later = a->info_offset > b->info_offset ? a : b, *first = later == a ? b : a;
            return qc_err_set(err, "%s: tensor '%s': appears twice (first at offset %llu) (offset %llu)", P,
                              show(later->name, strlen(later->name), nb), (unsigned long long)first->info_offset,
                              (unsigned long long)later->info_offset);
        }
    }

    /* The data section starts at the next multiple of the alignment. */
    uint64_t ds = r.pos + (g->alignment - r.pos % g->alignment) % g->alignment;
    g->data_start = ds;
    uint64_t dsize = ds <= g->size ? g->size - ds : 0;
    for (size_t i = 0; i < g->n_t; i++) {
        qc_gguf_tensor *t = &g->t[i];
        uint64_t off = t->file_offset;
        if (off > dsize || t->nbytes > dsize - off) {
            char nb[96];
            return qc_err_set(err, "%s: tensor '%s': data offset %llu + %zu bytes lies beyond the end of the data section (%llu bytes at offset %llu) (offset %llu)",
                              P, show(t->name, strlen(t->name), nb), (unsigned long long)off, t->nbytes,
                              (unsigned long long)dsize, (unsigned long long)ds, (unsigned long long)t->info_offset);
        }
        t->file_offset = ds + off;
        t->data = t->nbytes ? g->map + t->file_offset : NULL;
    }
    /* No two non-empty tensors may share bytes. */
    const qc_gguf_tensor **ord = malloc((g->n_t ? g->n_t : 1) * sizeof *ord);
    if (!ord)
        return qc_err_set(err, "%s: out of memory", P);
    for (size_t i = 0; i < g->n_t; i++)
        ord[i] = &g->t[i];
    if (g->n_t > 1)
        qsort(ord, g->n_t, sizeof *ord, cmp_toff);
    const qc_gguf_tensor *last = NULL;
    int rc = 0;
    for (size_t i = 0; i < g->n_t && rc == 0; i++) {
        const qc_gguf_tensor *t = ord[i];
        if (t->nbytes == 0)
            continue;
        if (last && t->file_offset < last->file_offset + last->nbytes) {
            char b1[96], b2[96];
            rc = qc_err_set(err, "%s: tensor '%s': data [%llu, %llu) overlaps tensor '%s' [%llu, %llu) (offset %llu)", P,
                            show(t->name, strlen(t->name), b1), (unsigned long long)t->file_offset,
                            (unsigned long long)(t->file_offset + t->nbytes), show(last->name, strlen(last->name), b2),
                            (unsigned long long)last->file_offset,
                            (unsigned long long)(last->file_offset + last->nbytes),
                            (unsigned long long)t->info_offset);
        }
        if (!last || t->file_offset + t->nbytes > last->file_offset + last->nbytes)
            last = t;
    }
    free(ord);
    return rc;
}

/* ---- open / free / lookups ----------------------------------------------- */

int qc_gguf_open(qc_gguf **out, const char *path, qc_err *err) {
    *out = NULL;
    qc_gguf *g = calloc(1, sizeof *g);
    if (!g || !(g->path = strdup(path))) {
        free(g);
        return qc_err_set(err, "%s: out of memory", path);
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        qc_err_set(err, "%s: cannot open: %s", path, strerror(errno));
        qc_gguf_free(g);
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        qc_err_set(err, "%s: not a regular file", path);
        qc_gguf_free(g);
        return -1;
    }
    g->size = (size_t)sb.st_size;
    if (g->size > 0) {
        void *m = mmap(NULL, g->size, PROT_READ, MAP_PRIVATE, fd, 0);
        int e = errno;
        if (m == MAP_FAILED) {
            close(fd);
            g->size = 0;
            qc_err_set(err, "%s: cannot mmap: %s", path, strerror(e));
            qc_gguf_free(g);
            return -1;
        }
        g->map = m;
    }
    close(fd);
    if (parse(g, err)) {
        qc_gguf_free(g);
        return -1;
    }
    *out = g;
    return 0;
}

void qc_gguf_free(qc_gguf *g) {
    if (!g)
        return;
    for (size_t i = 0; g->kv && i < g->n_kv; i++)
        free((void *)g->kv[i].key);
    for (size_t i = 0; g->t && i < g->n_t; i++)
        free((void *)g->t[i].name);
    free(g->kv);
    free((void *)g->kv_by_key);
    free(g->t);
    free((void *)g->t_by_name);
    if (g->map)
        munmap((void *)g->map, g->size);
    free(g->path);
    free(g);
}

const char *qc_gguf_path(const qc_gguf *g) { return g->path; }
uint32_t qc_gguf_version(const qc_gguf *g) { return g->version; }
uint32_t qc_gguf_alignment(const qc_gguf *g) { return g->alignment; }
size_t qc_gguf_n_kv(const qc_gguf *g) { return g ? g->n_kv : 0; }
size_t qc_gguf_n_tensors(const qc_gguf *g) { return g ? g->n_t : 0; }
const qc_gguf_kv *qc_gguf_kv_at(const qc_gguf *g, size_t i) { return g && i < g->n_kv ? &g->kv[i] : NULL; }
const qc_gguf_tensor *qc_gguf_tensor_at(const qc_gguf *g, size_t i) { return g && i < g->n_t ? &g->t[i] : NULL; }

const qc_gguf_kv *qc_gguf_find_kv(const qc_gguf *g, const char *key) {
    size_t lo = 0, hi = g ? g->n_kv : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const qc_gguf_kv *kv = g->kv_by_key[mid];
        int c = strcmp(kv->key, key);
        if (c == 0)
            return kv;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const qc_gguf_tensor *qc_gguf_find_tensor(const qc_gguf *g, const char *name) {
    size_t lo = 0, hi = g ? g->n_t : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const qc_gguf_tensor *t = g->t_by_name[mid];
        int c = strcmp(t->name, name);
        if (c == 0)
            return t;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

void qc_gguf_hash(const qc_gguf *g, uint8_t out[16]) {
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(g->size ? g->map : (const uint8_t *)"", g->size));
    memcpy(out, c.digest, 16);
}

/* ---- typed metadata ------------------------------------------------------ */

/* An integer scalar at p of type t into *v; 0, or -1 if t is not an integer
 * type or the value does not fit int64. */
static int int_of(uint32_t t, const uint8_t *p, int64_t *v) {
    switch (t) {
    case QC_GGUF_U8: *v = p[0]; return 0;
    case QC_GGUF_I8: *v = (int8_t)p[0]; return 0;
    case QC_GGUF_U16: *v = rd16(p); return 0;
    case QC_GGUF_I16: *v = (int16_t)rd16(p); return 0;
    case QC_GGUF_U32: *v = rd32(p); return 0;
    case QC_GGUF_I32: *v = (int32_t)rd32(p); return 0;
    case QC_GGUF_U64: {
        uint64_t u = rd64(p);
        if (u > (uint64_t)INT64_MAX)
            return -1;
        *v = (int64_t)u;
        return 0;
    }
    case QC_GGUF_I64: *v = (int64_t)rd64(p); return 0;
    default: return -1;
    }
}

static double float_of(uint32_t t, const uint8_t *p) {
    if (t == QC_GGUF_F32) {
        uint32_t u = rd32(p);
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    if (t == QC_GGUF_F64) {
        uint64_t u = rd64(p);
        double d;
        memcpy(&d, &u, 8);
        return d;
    }
    int64_t v = 0;
    if (t == QC_GGUF_U64)
        return (double)rd64(p);
    int_of(t, p, &v);
    return (double)v;
}

int qc_gguf_get_int(const qc_gguf *g, const char *key, int64_t *out, qc_err *err) {
    const qc_gguf_kv *kv = qc_gguf_find_kv(g, key);
    if (!kv)
        return 0;
    if (kv->type == QC_GGUF_U64 && rd64(kv->data) > (uint64_t)INT64_MAX)
        return qc_gguf_key_err(g, kv, NULL, err, "value %llu is too large", (unsigned long long)rd64(kv->data));
    if (kv->type == QC_GGUF_ARRAY || int_of(kv->type, kv->data, out))
        return qc_gguf_key_err(g, kv, NULL, err, "expected an integer, found %s%s",
                               kv->type == QC_GGUF_ARRAY ? "an array of " : "", vname(kv->elem_type));
    return 1;
}

int qc_gguf_get_float(const qc_gguf *g, const char *key, double *out, qc_err *err) {
    const qc_gguf_kv *kv = qc_gguf_find_kv(g, key);
    if (!kv)
        return 0;
    int64_t dummy;
    if (kv->type != QC_GGUF_F32 && kv->type != QC_GGUF_F64 &&
        (kv->type == QC_GGUF_ARRAY || kv->type == QC_GGUF_U64 || int_of(kv->type, kv->data, &dummy)))
        return qc_gguf_key_err(g, kv, NULL, err, "expected a number, found %s%s",
                               kv->type == QC_GGUF_ARRAY ? "an array of " : "", vname(kv->elem_type));
    *out = float_of(kv->type, kv->data);
    return 1;
}

int qc_gguf_get_bool(const qc_gguf *g, const char *key, int *out, qc_err *err) {
    const qc_gguf_kv *kv = qc_gguf_find_kv(g, key);
    if (!kv)
        return 0;
    if (kv->type != QC_GGUF_BOOL)
        return qc_gguf_key_err(g, kv, NULL, err, "expected a bool, found %s%s",
                               kv->type == QC_GGUF_ARRAY ? "an array of " : "", vname(kv->elem_type));
    *out = kv->data[0];
    return 1;
}

int qc_gguf_get_str(const qc_gguf *g, const char *key, qc_gguf_str *out, qc_err *err) {
    const qc_gguf_kv *kv = qc_gguf_find_kv(g, key);
    if (!kv)
        return 0;
    if (kv->type != QC_GGUF_STRING)
        return qc_gguf_key_err(g, kv, NULL, err, "expected a string, found %s%s",
                               kv->type == QC_GGUF_ARRAY ? "an array of " : "", vname(kv->elem_type));
    out->len = (size_t)rd64(kv->data);
    out->s = (const char *)kv->data + 8;
    return 1;
}

int qc_gguf_get_arr(const qc_gguf *g, const char *key, int32_t elem, const qc_gguf_kv **out, qc_err *err) {
    const qc_gguf_kv *kv = qc_gguf_find_kv(g, key);
    if (!kv)
        return 0;
    if (kv->type != QC_GGUF_ARRAY || (elem >= 0 && kv->elem_type != (uint32_t)elem)) {
        if (elem >= 0)
            return qc_gguf_key_err(g, kv, NULL, err, "expected an array of %s, found %s%s", vname((uint32_t)elem),
                                   kv->type == QC_GGUF_ARRAY ? "an array of " : "", vname(kv->elem_type));
        return qc_gguf_key_err(g, kv, NULL, err, "expected an array, found %s", vname(kv->type));
    }
    *out = kv;
    return 1;
}

double qc_gguf_arr_float(const qc_gguf_kv *kv, uint64_t i) {
    int sz = vsize(kv->elem_type);
    return sz > 0 ? float_of(kv->elem_type, kv->data + i * (uint64_t)sz) : 0.0;
}

int64_t qc_gguf_arr_int(const qc_gguf_kv *kv, uint64_t i) {
    int sz = vsize(kv->elem_type);
    int64_t v = 0;
    if (sz > 0 && int_of(kv->elem_type, kv->data + i * (uint64_t)sz, &v))
        v = kv->elem_type == QC_GGUF_U64 ? INT64_MAX : 0;
    return v;
}

void qc_gguf_arr_strings(const qc_gguf_kv *kv, qc_gguf_str *out) {
    const uint8_t *p = kv->data;
    for (uint64_t i = 0; i < kv->n; i++) {
        uint64_t len = rd64(p);
        out[i].s = (const char *)p + 8;
        out[i].len = (size_t)len;
        p += 8 + len;
    }
}

/* ---- dequantization ------------------------------------------------------ */

/* IEEE half -> float, exact for every input (subnormals, inf, NaN). */
static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = h >> 10 & 0x1F, man = h & 0x3FF, bits;
    if (exp == 0x1F) {
        bits = sign | 0x7F800000u | man << 13;
    } else if (exp != 0) {
        bits = sign | (exp + 112) << 23 | man << 13;
    } else if (man == 0) {
        bits = sign;
    } else { /* subnormal: normalize */
        int e = -1;
        do {
            e++;
            man <<= 1;
        } while (!(man & 0x400));
        bits = sign | (uint32_t)(112 - e) << 23 | (man & 0x3FF) << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static float bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static float half(const uint8_t *p) { return f16_to_f32(rd16(p)); }

/* Q4_0 [d f16 | qs 16]: y[j] = (lo(qs[j]) - 8) d, y[j+16] = (hi(qs[j]) - 8) d */
static void dq_q4_0(const uint8_t *b, float *y) {
    float d = half(b);
    for (int j = 0; j < 16; j++) {
        y[j] = (float)((b[2 + j] & 0x0F) - 8) * d;
        y[j + 16] = (float)((b[2 + j] >> 4) - 8) * d;
    }
}

/* Q4_1 [d f16 | m f16 | qs 16]: y = q d + m */
static void dq_q4_1(const uint8_t *b, float *y) {
    float d = half(b), m = half(b + 2);
    for (int j = 0; j < 16; j++) {
        y[j] = (float)(b[4 + j] & 0x0F) * d + m;
        y[j + 16] = (float)(b[4 + j] >> 4) * d + m;
    }
}

/* Q5_0 [d f16 | qh u32 | qs 16]: bit j of qh is bit 4 of element j */
static void dq_q5_0(const uint8_t *b, float *y) {
    float d = half(b);
    uint32_t qh = rd32(b + 2);
    for (int j = 0; j < 16; j++) {
        int lo = (b[6 + j] & 0x0F) | (int)((qh >> j & 1) << 4);
        int hi = (b[6 + j] >> 4) | (int)((qh >> (j + 16) & 1) << 4);
        y[j] = (float)(lo - 16) * d;
        y[j + 16] = (float)(hi - 16) * d;
    }
}

/* Q5_1 [d f16 | m f16 | qh u32 | qs 16]: y = q d + m */
static void dq_q5_1(const uint8_t *b, float *y) {
    float d = half(b), m = half(b + 2);
    uint32_t qh = rd32(b + 4);
    for (int j = 0; j < 16; j++) {
        int lo = (b[8 + j] & 0x0F) | (int)((qh >> j & 1) << 4);
        int hi = (b[8 + j] >> 4) | (int)((qh >> (j + 16) & 1) << 4);
        y[j] = (float)lo * d + m;
        y[j + 16] = (float)hi * d + m;
    }
}

/* Q8_0 [d f16 | qs i8 x 32]: y = q d */
static void dq_q8_0(const uint8_t *b, float *y) {
    float d = half(b);
    for (int j = 0; j < 32; j++)
        y[j] = (float)(int8_t)b[2 + j] * d;
}

/* Q2_K [scales 16 | qs 64 | d f16 | dmin f16]: 16 sub-blocks of 16; scale
 * byte s: y = d (s & 15) q - dmin (s >> 4), q 2 bits. Element 128h + 32j + l
 * (l < 32) is bits 2j..2j+1 of qs[32h + l], sub-block 8h + 2j + (l >= 16). */
static void dq_q2_k(const uint8_t *b, float *y) {
    const uint8_t *sc = b, *qs = b + 16;
    float d = half(b + 80), dmin = half(b + 82);
    for (int h = 0; h < 2; h++)
        for (int j = 0; j < 4; j++)
            for (int k = 0; k < 2; k++) {
                uint8_t s = sc[8 * h + 2 * j + k];
                float dl = d * (float)(s & 0x0F), ml = dmin * (float)(s >> 4);
                for (int l = 0; l < 16; l++)
                    y[128 * h + 32 * j + 16 * k + l] = dl * (float)(qs[32 * h + 16 * k + l] >> (2 * j) & 3) - ml;
            }
}

/* Q3_K [hmask 32 | qs 64 | scales 12 | d f16]: 16 sub-blocks of 16, 6-bit
 * scales (biased by 32): scale i = low 4 bits (i < 8: byte i low nibble,
 * else byte i-8 high nibble) | 2 bits from byte 8 + i%4 at bit 2 (i/4).
 * q = 2 low bits as Q2_K, minus 4 when the hmask bit (bit 4h + j of
 * hmask[16k + l]) is clear. */
static void dq_q3_k(const uint8_t *b, float *y) {
    const uint8_t *hm = b, *qs = b + 32, *sb = b + 96;
    float d = half(b + 108);
    int sc[16];
    for (int i = 0; i < 16; i++) {
        int lo = i < 8 ? sb[i] & 0x0F : sb[i - 8] >> 4;
        int hi = sb[8 + i % 4] >> (2 * (i / 4)) & 3;
        sc[i] = (lo | hi << 4) - 32;
    }
    for (int h = 0; h < 2; h++)
        for (int j = 0; j < 4; j++)
            for (int k = 0; k < 2; k++) {
                float dl = d * (float)sc[8 * h + 2 * j + k];
                for (int l = 0; l < 16; l++) {
                    int i = 16 * k + l;
                    int q = (qs[32 * h + i] >> (2 * j) & 3) - ((hm[i] >> (4 * h + j) & 1) ? 0 : 4);
                    y[128 * h + 32 * j + i] = dl * (float)q;
                }
            }
}

/* The 6-bit scale and min of sub-block j (0..7) of Q4_K / Q5_K packed in 12 bytes. */
static void scale_min_k4(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0x0F) | (q[j - 4] >> 6) << 4;
        *m = (q[j + 4] >> 4) | (q[j] >> 6) << 4;
    }
}

/* Q4_K [d f16 | dmin f16 | scales 12 | qs 128]: 8 sub-blocks of 32;
 * element 64c + l is the low nibble of qs[32c + l] (sub-block 2c), 64c+32+l
 * the high nibble (sub-block 2c+1); y = d sc q - dmin m. */
static void dq_q4_k(const uint8_t *b, float *y) {
    float d = half(b), dmin = half(b + 2);
    const uint8_t *s = b + 4, *qs = b + 16;
    for (int c = 0; c < 4; c++) {
        int sc1, m1, sc2, m2;
        scale_min_k4(2 * c, s, &sc1, &m1);
        scale_min_k4(2 * c + 1, s, &sc2, &m2);
        float d1 = d * (float)sc1, o1 = dmin * (float)m1, d2 = d * (float)sc2, o2 = dmin * (float)m2;
        for (int l = 0; l < 32; l++) {
            y[64 * c + l] = d1 * (float)(qs[32 * c + l] & 0x0F) - o1;
            y[64 * c + 32 + l] = d2 * (float)(qs[32 * c + l] >> 4) - o2;
        }
    }
}

/* Q5_K [d | dmin | scales 12 | qh 32 | qs 128]: as Q4_K plus a fifth bit,
 * bit 2c (low nibble) / 2c+1 (high nibble) of qh[l]. */
static void dq_q5_k(const uint8_t *b, float *y) {
    float d = half(b), dmin = half(b + 2);
    const uint8_t *s = b + 4, *qh = b + 16, *qs = b + 48;
    for (int c = 0; c < 4; c++) {
        int sc1, m1, sc2, m2;
        scale_min_k4(2 * c, s, &sc1, &m1);
        scale_min_k4(2 * c + 1, s, &sc2, &m2);
        float d1 = d * (float)sc1, o1 = dmin * (float)m1, d2 = d * (float)sc2, o2 = dmin * (float)m2;
        for (int l = 0; l < 32; l++) {
            int lo = (qs[32 * c + l] & 0x0F) + ((qh[l] >> (2 * c) & 1) ? 16 : 0);
            int hi = (qs[32 * c + l] >> 4) + ((qh[l] >> (2 * c + 1) & 1) ? 16 : 0);
            y[64 * c + l] = d1 * (float)lo - o1;
            y[64 * c + 32 + l] = d2 * (float)hi - o2;
        }
    }
}

/* Q6_K [ql 128 | qh 64 | scales i8 16 | d f16]: 16 sub-blocks of 16; in
 * half h, element 128h + 32r + l (r = 0..3, l < 32) has low 4 bits from
 * ql[64h + l + 32 (r & 1)] (nibble r >> 1), 2 high bits from qh[32h + l] at
 * bit 2r; y = d scale[8h + l/16 + 2r] (q - 32). */
static void dq_q6_k(const uint8_t *b, float *y) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = half(b + 208);
    for (int h = 0; h < 2; h++)
        for (int r = 0; r < 4; r++)
            for (int l = 0; l < 32; l++) {
                uint8_t lb = ql[64 * h + l + 32 * (r & 1)];
                int lo = (r >> 1) ? lb >> 4 : lb & 0x0F;
                int q = (lo | (qh[32 * h + l] >> (2 * r) & 3) << 4) - 32;
                y[128 * h + 32 * r + l] = d * (float)sc[8 * h + l / 16 + 2 * r] * (float)q;
            }
}

int qc_gguf_can_dequant(uint32_t type) {
    switch (type) {
    case QC_GGML_F32: case QC_GGML_F16: case QC_GGML_BF16: case QC_GGML_Q4_0: case QC_GGML_Q4_1:
    case QC_GGML_Q5_0: case QC_GGML_Q5_1: case QC_GGML_Q8_0: case QC_GGML_Q2_K: case QC_GGML_Q3_K:
    case QC_GGML_Q4_K: case QC_GGML_Q5_K: case QC_GGML_Q6_K:
        return 1;
    default:
        return 0;
    }
}

int qc_gguf_dequant(uint32_t type, const void *src, float *dst, int64_t n) {
    int64_t block, bytes;
    if (!qc_gguf_can_dequant(type) || qc_gguf_type_size(type, &block, &bytes) || n < 0 || n % block != 0)
        return -1;
    const uint8_t *p = src;
    int64_t nb = n / block;
    void (*fn)(const uint8_t *, float *) = NULL;
    switch (type) {
    case QC_GGML_F32:
        memcpy(dst, src, (size_t)n * 4);
        return 0;
    case QC_GGML_F16:
        for (int64_t i = 0; i < n; i++)
            dst[i] = half(p + 2 * i);
        return 0;
    case QC_GGML_BF16:
        for (int64_t i = 0; i < n; i++)
            dst[i] = bf16_to_f32(rd16(p + 2 * i));
        return 0;
    case QC_GGML_Q4_0: fn = dq_q4_0; break;
    case QC_GGML_Q4_1: fn = dq_q4_1; break;
    case QC_GGML_Q5_0: fn = dq_q5_0; break;
    case QC_GGML_Q5_1: fn = dq_q5_1; break;
    case QC_GGML_Q8_0: fn = dq_q8_0; break;
    case QC_GGML_Q2_K: fn = dq_q2_k; break;
    case QC_GGML_Q3_K: fn = dq_q3_k; break;
    case QC_GGML_Q4_K: fn = dq_q4_k; break;
    case QC_GGML_Q5_K: fn = dq_q5_k; break;
    case QC_GGML_Q6_K: fn = dq_q6_k; break;
    default: return -1;
    }
    for (int64_t i = 0; i < nb; i++)
        fn(p + i * bytes, dst + i * block);
    return 0;
}
