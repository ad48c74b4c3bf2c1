/*
 * passes/plan.c — lay the weights out in the blob the executable embeds.
 *
 * Tensors are placed in graph order, each at a 64-byte aligned offset
 * (cache lines; also what vector loads and a future GPU upload want), and
 * written converted to their out_dtype. Padding bytes are zero, so the blob
 * — and its xxh3-128 in --info — depends only on the weights and options.
 * The blob ends with a 16-byte trailer, its own xxh3-128 (canonical byte
 * order), which the executable checks before trusting the weights.
 * Requires: out_dtype set (qc_pass_convert). Sets: blob_offset, blob_nbytes.
 *
 * --dummy-weights: qc_pass_dummy_quantize gives every LINEAR the packed
 * dtype and size qc_pass_quantize would, without values; qc_pass_plan_dummy
 * lays the tensors out the same way and writes, in place of their bytes,
 * the descriptor of the generator the executable runs at start (qrt/dummy.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "qc/passes.h"
#include "qc/quant.h"
#include "qrt/dummy.h"

#define ALIGN 64
#define CHUNK (1 << 16) /* elements converted per write */

int qc_pass_plan(qc_graph *g, FILE *f, uint8_t hash[16], qc_err *err) {
    XXH3_state_t *st = XXH3_createState();
    uint8_t *buf = malloc((size_t)CHUNK * 4);
    static const uint8_t zeros[ALIGN];
    if (!st || !buf) {
        XXH3_freeState(st);
        free(buf);
        return qc_err_set(err, "out of memory");
    }
    XXH3_128bits_reset(st);
    uint64_t off = 0;
    int rc = 0;
    for (int32_t i = 0; i < g->n_tensors && !rc; i++) {
        qc_tensor *t = &g->tensors[i];
        size_t pad = (size_t)((ALIGN - off % ALIGN) % ALIGN);
        if (pad) {
            if (fwrite(zeros, 1, pad, f) != pad) rc = -1;
            XXH3_128bits_update(st, zeros, pad);
            off += pad;
        }
        int64_t n = qc_tensor_numel(t);
        t->blob_offset = off;
        if (qc_dtype_packed(t->out_dtype)) { /* packed by qc_pass_quantize: copied as is */
            t->blob_nbytes = t->nbytes;
            if (fwrite(t->owned, 1, t->nbytes, f) != t->nbytes) rc = -1;
            XXH3_128bits_update(st, t->owned, t->nbytes);
            off += t->blob_nbytes;
            continue;
        }
        t->blob_nbytes = qc_dtype_size(t->out_dtype, n);
        size_t in_es = qc_dtype_size(t->dtype, 1), out_es = qc_dtype_size(t->out_dtype, 1);
        for (int64_t j = 0; j < n && !rc; j += CHUNK) {
            size_t k = (size_t)(n - j < CHUNK ? n - j : CHUNK);
            qc_convert((const uint8_t *)t->data + (size_t)j * in_es, t->dtype, buf, t->out_dtype, k);
            if (fwrite(buf, out_es, k, f) != k) rc = -1;
            XXH3_128bits_update(st, buf, k * out_es);
        }
        off += t->blob_nbytes;
    }
    XXH128_hash_t h = XXH3_128bits_digest(st);
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, h);
    memcpy(hash, c.digest, 16);
    XXH3_freeState(st);
    free(buf);
    /* Integrity trailer: the executable re-hashes the blob at start. */
    if (!rc && fwrite(hash, 1, 16, f) != 16) rc = -1;
    if (rc || fflush(f)) return qc_err_set(err, "writing the weight blob failed (disk full?)");
    return 0;
}

/* ---- --dummy-weights (docs/dummy-weights.md, qrt/dummy.h) ---- */

/* The packed form qc_pass_quantize would give op i's weight, without values. */
static int dummy_pack(qc_graph *g, int32_t i, int32_t bits, const qc_opts *o, qc_err *err) {
    qc_op *op = &g->ops[i];
    qc_tensor *t = &g->tensors[op->w];
    int64_t N = t->shape[0], K = t->shape[1], group = qc_qgroup(K, o->group_size);
    if (!group) return qc_err_set(err, "--group-size %d: must be -1 or a multiple of 32", o->group_size);
    if (K % 32)
        return qc_err_set(err, "--dummy-weights --bits %d: tensor '%s': %lld inputs, not a multiple of 32", bits,
                          t->name, (long long)K);
    if (!qc_dtype_packed(t->out_dtype)) {
        t->out_dtype = qc_qdtype(bits);
        t->qgroup = (int32_t)group;
        t->qsym = o->sym;
        t->nbytes = qc_qpack_size(bits, N, K, group, o->sym);
        if (!t->nbytes) return qc_err_set(err, "tensor '%s': cannot be packed", t->name);
    }
    op->p[2] = (int32_t)group;
    op->p[3] = o->sym;
    return 0;
}

int qc_pass_dummy_quantize(qc_graph *g, const qc_opts *o, qc_err *err) {
    if (o->head_bits && o->bits >= 16) return qc_err_set(err, "--quantize-head needs --bits 8, 4, 3 or 2");
    if (o->bits >= 16) return 0;
    if (o->method == QC_METHOD_SMOOTHQUANT)
        return qc_err_set(err, "--dummy-weights: --method smoothquant (W8A8) is not supported");
    if (qc_qdtype(o->bits) < 0) return qc_err_set(err, "--bits %d: supported widths are 2, 3, 4, 8, 16, 32", o->bits);
    if (o->head_bits && qc_qdtype(o->head_bits) < 0)
        return qc_err_set(err, "--quantize-head %d: supported widths are 2, 3, 4, 8", o->head_bits);
    for (int32_t i = 0; i < g->n_ops; i++)
        if (g->ops[i].kind == QRT_K_LINEAR && dummy_pack(g, i, o->bits, o, err)) return -1;
    for (int32_t i = 0; i < g->n_ops && o->head_bits; i++) { /* --quantize-head, as qc_pass_quantize */
        if (g->ops[i].kind != QRT_K_LM_HEAD) continue;
        int32_t w = g->ops[i].w, shared = 0;
        for (int32_t j = 0; j < g->n_ops; j++) shared |= j != i && (g->ops[j].w == w || g->ops[j].bias == w);
        if (shared) { /* tied embeddings: the head gets its own tensor */
            qc_tensor t = g->tensors[w];
            char name[QC_NAME_MAX + 16];
            snprintf(name, sizeof name, "%s (LM head)", t.name);
            g->ops[i].w = qc_graph_add_tensor(g, name, t.dtype, t.ndim, t.shape, NULL, t.nbytes);
            g->tensors[g->ops[i].w].out_dtype = t.out_dtype;
        }
        if (dummy_pack(g, i, o->head_bits, o, err)) return -1;
    }
    return 0;
}

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> 8 * i);
}
static void put64(uint8_t *p, uint64_t v) {
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

int qc_pass_plan_dummy(qc_graph *g, uint64_t seed, FILE *f, uint8_t hash[16], uint64_t *blob_bytes, qc_err *err) {
    enum { ROLE_MATRIX = 0, ROLE_ONES = 1, ROLE_ZEROS = 2 };
    uint8_t *role = calloc((size_t)g->n_tensors + 1, 1);
    uint8_t *d = malloc(QRT_DUMMY_HEADER + (size_t)QRT_DUMMY_SEG * 3 * ((size_t)g->n_tensors + 1));
    if (!role || !d) {
        free(role);
        free(d);
        return qc_err_set(err, "out of memory");
    }
    for (int32_t i = 0; i < g->n_ops; i++) {
        const qc_op *op = &g->ops[i];
        if ((op->kind == QRT_K_RMSNORM || op->kind == QRT_K_LAYERNORM) && op->w >= 0) role[op->w] = ROLE_ONES;
        if (op->bias >= 0) role[op->bias] = ROLE_ZEROS;
    }
    uint32_t ns = 0;
#define SEG(kind_, bits_, off_, count_, key_, p0_, p1_, value_)              \
    do {                                                                     \
        uint8_t *s_ = d + QRT_DUMMY_HEADER + (size_t)ns++ * QRT_DUMMY_SEG;   \
        memset(s_, 0, QRT_DUMMY_SEG);                                        \
        put32(s_, kind_), put32(s_ + 4, bits_), put64(s_ + 8, off_);         \
        put64(s_ + 16, count_), put64(s_ + 24, key_), put32(s_ + 32, p0_);   \
        put32(s_ + 36, p1_), put32(s_ + 40, value_);                         \
    } while (0)
    uint64_t off = 0;
    int rc = 0;
    for (int32_t i = 0; i < g->n_tensors && !rc; i++) {
        qc_tensor *t = &g->tensors[i];
        off = (off + ALIGN - 1) / ALIGN * ALIGN;
        t->blob_offset = off;
        uint64_t key = qrt_dummy_key(seed, (uint64_t)i);
        int64_t n = qc_tensor_numel(t);
        if (qc_dtype_packed(t->out_dtype)) {
            int32_t bits = qc_qdtype_bits(t->out_dtype);
            qc_qlayout l;
            if (!bits || qc_qlayout_init(&l, bits, t->shape[0], t->shape[1], t->qgroup, t->qsym)) {
                rc = qc_err_set(err, "tensor '%s': cannot be packed", t->name);
                break;
            }
            /* scale: w = s (q - z) with codes symmetric about z has variance
             * s^2 (2^(b-1) - 1)(2^b - 1) / 6; s makes it 1/K (each linear keeps
             * the RMS of its input) */
            double var = (double)((1 << (bits - 1)) - 1) * (double)((1 << bits) - 1) / 6.0;
            uint16_t s = qc_f32_to_f16((float)(1.0 / sqrt((double)l.K * var)));
            if (s < 0x0400) s = 0x0400; /* the smallest normal f16 */
            t->blob_nbytes = l.size;
            SEG(QRT_DUMMY_CODES, (uint32_t)bits, off, (uint64_t)l.N, key, (uint32_t)(bits * (l.K / 32)),
                (uint32_t)l.row_words, 0u);
            SEG(QRT_DUMMY_CONST16, 0u, off + l.scales_off, (uint64_t)(l.N * l.n_groups), 0ull, 0u, 0u, (uint32_t)s);
            if (!l.sym)
                SEG(QRT_DUMMY_CONST8, 0u, off + l.zeros_off, (uint64_t)(l.N * l.n_groups), 0ull, 0u, 0u,
                    1u << (bits - 1));
        } else if (t->out_dtype == QRT_DT_F32 || t->out_dtype == QRT_DT_F16) {
            int f16 = t->out_dtype == QRT_DT_F16;
            t->blob_nbytes = qc_dtype_size(t->out_dtype, n);
            if (t->ndim == 2 && role[i] == ROLE_MATRIX) { /* uniform in [-a, a), a = sqrt(3 / K): variance 1/K */
                float a = (float)sqrt(3.0 / (double)t->shape[1]);
                SEG(f16 ? QRT_DUMMY_UNIFORM_F16 : QRT_DUMMY_UNIFORM_F32, 0u, off, (uint64_t)n, key, 0u, 0u,
                    f32_bits(a * 0x1p-23f));
            } else if (role[i] == ROLE_ONES) { /* norm weights */
                SEG(f16 ? QRT_DUMMY_CONST16 : QRT_DUMMY_CONST32, 0u, off, (uint64_t)n, 0ull, 0u, 0u,
                    f16 ? 0x3C00u : 0x3F800000u);
            } /* biases: zero */
        } else {
            rc = qc_err_set(err, "tensor '%s': --dummy-weights cannot generate %s weights", t->name,
                            qc_dtype_name(t->out_dtype));
        }
        off += t->blob_nbytes;
    }
#undef SEG
    if (!rc) {
        memset(d, 0, QRT_DUMMY_HEADER);
        memcpy(d, QRT_DUMMY_MAGIC, 8);
        put32(d + 8, QRT_DUMMY_HEADER);
        put32(d + 12, ns);
        put64(d + 16, off);
        put64(d + 24, seed);
        put32(d + 32, (uint32_t)g->n_tensors);
        size_t len = QRT_DUMMY_HEADER + (size_t)ns * QRT_DUMMY_SEG;
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits(d, len));
        memcpy(hash, c.digest, 16);
        /* the integrity trailer, as qc_pass_plan writes */
        if (fwrite(d, 1, len, f) != len || fwrite(hash, 1, 16, f) != 16 || fflush(f))
            rc = qc_err_set(err, "writing the weight descriptor failed (disk full?)");
        *blob_bytes = off;
    }
    free(role);
    free(d);
    return rc;
}
