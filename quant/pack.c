/*
 * quant/pack.c — the packed layout of a quantized linear weight (dtypes
 * QRT_DT_Q2/Q3/Q4/Q8), the one byte range the runtime's kernels read.
 * docs/formats.md is the specification; runtime/qlinear.c computes the same
 * offsets independently and tests/unit/test_quant_qlinear.c checks they agree.
 *
 * Per row n: ceil(K/32) blocks of 32 codes, each block exactly `bits` 32-bit
 * little-endian words (so a group, a multiple of 32 columns, never straddles
 * a word), the row padded with zero words to a multiple of 4 words (16
 * bytes: one coalesced vector load on a GPU). Inside a block, value j:
 *   bits 2, 4, 8: word j / (32/b), bits [b*(j % (32/b)), +b)
 *   bits 3:       low 2 bits in word j / 16, bits [2*(j % 16), +2);
 *                 bit 2 in word 2, bit j
 * Then f16 scales [N, G], then (asymmetric only) uint8 zeros [N, G], each
 * section starting at a 16-byte boundary.
 */
#include <string.h>

#include "qc/quant.h"

#define ROUNDUP(x, m) (((x) + (m)-1) / (m) * (m))

int64_t qc_qgroup(int64_t K, int64_t group) {
    if (K <= 0) return 0;
    if (group <= 0 || group >= K) return K;
    return group % 32 == 0 ? group : 0;
}

int32_t qc_qdtype(int32_t bits) {
    switch (bits) {
    case 2: return QRT_DT_Q2;
    case 3: return QRT_DT_Q3;
    case 4: return QRT_DT_Q4;
    case 8: return QRT_DT_Q8;
    default: return -1;
    }
}

int32_t qc_qdtype_bits(int32_t dt) {
    switch (dt) {
    case QRT_DT_Q2: return 2;
    case QRT_DT_Q3: return 3;
    case QRT_DT_Q4: return 4;
    case QRT_DT_Q8: return 8;
    default: return 0;
    }
}

int qc_qlayout_init(qc_qlayout *l, int32_t bits, int64_t N, int64_t K, int64_t group, int32_t sym) {
    memset(l, 0, sizeof *l);
    int64_t g = qc_qgroup(K, group);
    if (qc_qdtype(bits) < 0 || N <= 0 || N >= ((int64_t)1 << 31) || K >= ((int64_t)1 << 31) || !g)
        return -1;
    l->bits = bits;
    l->sym = sym ? 1 : 0;
    l->N = N;
    l->K = K;
    l->group = g;
    l->n_groups = (K + g - 1) / g;
    l->row_words = ROUNDUP(bits * ((K + 31) / 32), 4);
    /* N, K < 2^31 and row_words <= 8 * 2^26: every product below fits in 64 bits. */
    l->scales_off = (size_t)(4 * N * l->row_words);
    l->zeros_off = l->scales_off + (size_t)ROUNDUP(2 * N * l->n_groups, 16);
    l->size = l->zeros_off + (l->sym ? 0 : (size_t)ROUNDUP(N * l->n_groups, 16));
    return 0;
}

size_t qc_qpack_size(int32_t bits, int64_t N, int64_t K, int64_t group, int32_t sym) {
    qc_qlayout l;
    return qc_qlayout_init(&l, bits, N, K, group, sym) ? 0 : l.size;
}

/* Word index (within the row) and bit offset of the low bits of column k;
 * for 3 bits also the word of its high bit (its bit offset is k % 32). */
static void locate(int32_t bits, int64_t k, int64_t *word, int *shift, int64_t *hiword) {
    int64_t blk = k / 32, j = k % 32;
    if (bits == 3) {
        *word = 3 * blk + j / 16;
        *shift = (int)(2 * (j % 16));
        *hiword = 3 * blk + 2;
    } else {
        int64_t per = 32 / bits; /* values per word */
        *word = bits * blk + j / per;
        *shift = (int)(bits * (j % per));
        *hiword = -1;
    }
}

static void put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Code of column k of the packed row r (little-endian words). */
static uint32_t get_code(const uint8_t *r, int32_t bits, int64_t k) {
    int64_t w, hw;
    int sh;
    locate(bits, k, &w, &sh, &hw);
    if (bits == 3)
        return ((get_u32(r + 4 * w) >> sh) & 3) | ((get_u32(r + 4 * hw) >> (k % 32)) & 1) << 2;
    return (get_u32(r + 4 * w) >> sh) & ((1u << bits) - 1);
}

static float get_scale(const uint8_t *p, const qc_qlayout *l, int64_t i) {
    const uint8_t *s = p + l->scales_off + 2 * i;
    return qc_f16_to_f32((uint16_t)(s[0] | s[1] << 8));
}

static float get_zero(const uint8_t *p, const qc_qlayout *l, int64_t i) {
    return l->sym ? (float)(1 << (l->bits - 1)) : (float)p[l->zeros_off + i];
}

int qc_qpack(const uint8_t *codes, const float *scales, const float *zeros, int32_t bits,
             int64_t N, int64_t K, int64_t group, int32_t sym, void *out) {
    qc_qlayout l;
    if (qc_qlayout_init(&l, bits, N, K, group, sym)) return -1;
    const int32_t maxq = (1 << bits) - 1;
    const int64_t NG = N * l.n_groups;
    for (int64_t i = 0; i < N * K; i++)
        if (codes[i] > maxq) return -1;
    if (!l.sym)
        for (int64_t i = 0; i < NG; i++)
            if (!(zeros[i] >= 0 && zeros[i] <= (float)maxq && zeros[i] == (float)(int32_t)zeros[i]))
                return -1;

    uint8_t *o = out;
    memset(o, 0, l.size); /* padding words, padding bytes of the sections */
    for (int64_t n = 0; n < N; n++) {
        uint8_t *r = o + 4 * n * l.row_words; /* row n: words [n*row_words, +row_words) */
        const uint8_t *q = codes + n * K;
        for (int64_t k = 0; k < K; k++) {
            int64_t w, hw;
            int sh;
            locate(bits, k, &w, &sh, &hw);
            if (bits == 3) {
                put_u32(r + 4 * w, get_u32(r + 4 * w) | (uint32_t)(q[k] & 3) << sh);
                put_u32(r + 4 * hw, get_u32(r + 4 * hw) | (uint32_t)(q[k] >> 2) << (k % 32));
            } else {
                put_u32(r + 4 * w, get_u32(r + 4 * w) | (uint32_t)q[k] << sh);
            }
        }
    }
    for (int64_t i = 0; i < NG; i++) { /* (n, t) at index i = n*G + t */
        uint16_t h = qc_f32_to_f16(scales[i]);
        o[l.scales_off + 2 * i] = (uint8_t)h;
        o[l.scales_off + 2 * i + 1] = (uint8_t)(h >> 8);
        if (!l.sym) o[l.zeros_off + i] = (uint8_t)zeros[i];
    }
    return 0;
}

void qc_qunpack(const void *packed, int32_t bits, int64_t N, int64_t K, int64_t group,
                int32_t sym, uint8_t *codes, float *scales, float *zeros) {
    qc_qlayout l;
    if (qc_qlayout_init(&l, bits, N, K, group, sym)) return;
    const uint8_t *p = packed;
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++)
            codes[n * K + k] = (uint8_t)get_code(p + 4 * n * l.row_words, bits, k);
    for (int64_t i = 0; i < N * l.n_groups; i++) {
        if (scales) scales[i] = get_scale(p, &l, i);
        if (zeros) zeros[i] = get_zero(p, &l, i);
    }
}

void qc_qdequant(const void *packed, int32_t bits, int64_t N, int64_t K, int64_t group,
                 int32_t sym, float *W) {
    qc_qlayout l;
    if (qc_qlayout_init(&l, bits, N, K, group, sym)) return;
    const uint8_t *p = packed;
    for (int64_t n = 0; n < N; n++)
        for (int64_t t = 0; t < l.n_groups; t++) {
            float s = get_scale(p, &l, n * l.n_groups + t), z = get_zero(p, &l, n * l.n_groups + t);
            int64_t k1 = (t + 1) * l.group < K ? (t + 1) * l.group : K;
            for (int64_t k = t * l.group; k < k1; k++)
                W[n * K + k] = s * ((float)get_code(p + 4 * n * l.row_words, bits, k) - z);
        }
}
