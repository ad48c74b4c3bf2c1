/*
 * runtime/qlinear.c — linear layers over packed integer weights (dtypes
 * QRT_DT_Q2/Q3/Q4/Q8, layout in docs/formats.md; quant/pack.c writes it).
 *
 * Three ways through a weight, each checked against the first:
 *   qrt_qdequant_row_ref  scalar reference: one code at a time, straight
 *                         from the layout's definition
 *   qrt_qgemv             batch 1: dequantize and dot in one pass, never
 *                         materializing a row (generic C that GCC
 *                         vectorizes, or AVX2+FMA when the CPU has it)
 *   qrt_qlinear rows > 1  dequantize a tile of rows into ctx->wtile, then
 *                         one cblas_sgemm per tile
 * The fused form factors the scale and zero point out of each group:
 *   sum_k s (q_k - z) x_k = s * (sum_k q_k x_k - z * sum_k x_k)
 * so the inner loop is a plain integer-to-float dot and the group sums of x
 * are computed once per call, not once per row.
 *
 * The layout arithmetic is repeated here (libqrt may not include compiler
 * headers); tests/unit/test_quant_qlinear.c checks it against quant/pack.c.
 * Weights are read as 32-bit little-endian words; the blob is 64-byte
 * aligned and every section of a packed weight 16-byte aligned.
 */
#include <immintrin.h>
#include <string.h>

#include <cblas.h>

#include "qrt.h"

#define ROUNDUP(x, m) (((x) + (m)-1) / (m) * (m))

int32_t qrt_qdtype_bits(int32_t dt) {
    switch (dt) {
    case QRT_DT_Q2: return 2;
    case QRT_DT_Q3: return 3;
    case QRT_DT_Q4: return 4;
    case QRT_DT_Q8: return 8;
    default: return 0;
    }
}

int qrt_qlayout_init(qrt_qlayout *l, int32_t dtype, int64_t N, int64_t K, int64_t group,
                     int32_t sym) {
    memset(l, 0, sizeof *l);
    int32_t bits = qrt_qdtype_bits(dtype);
    int64_t g = group <= 0 || group >= K ? K : group; /* per-channel */
    if (!bits || N <= 0 || K <= 0 || N >= ((int64_t)1 << 31) || K >= ((int64_t)1 << 31) ||
        (g != K && g % 32))
        return -1;
    l->bits = bits;
    l->sym = sym ? 1 : 0;
    l->N = N;
    l->K = K;
    l->g = g;
    l->G = (K + g - 1) / g;
    l->row_words = ROUNDUP(bits * ((K + 31) / 32), 4); /* whole blocks of 32, 16-byte rows */
    l->scales_off = (size_t)(4 * N * l->row_words);   /* f16 [N, G] */
    l->zeros_off = l->scales_off + (size_t)ROUNDUP(2 * N * l->G, 16); /* uint8 [N, G] */
    l->size = l->zeros_off + (l->sym ? 0 : (size_t)ROUNDUP(N * l->G, 16));
    return 0;
}

static uint32_t word_at(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static float scale_at(const void *w, const qrt_qlayout *l, int64_t i) {
    uint16_t h;
    memcpy(&h, (const uint8_t *)w + l->scales_off + 2 * i, 2);
    return qrt_f16_to_f32(h);
}

static float zero_at(const void *w, const qrt_qlayout *l, int64_t i) {
    return l->sym ? (float)(1 << (l->bits - 1)) : (float)((const uint8_t *)w)[l->zeros_off + i];
}

void qrt_qdequant_row_ref(const void *w, const qrt_qlayout *l, int64_t n, float *out) {
    const uint8_t *row = (const uint8_t *)w + 4 * n * l->row_words;
    for (int64_t k = 0; k < l->K; k++) {
        int64_t blk = k / 32, j = k % 32; /* block blk: words [bits*blk, bits*blk + bits) */
        const uint8_t *bw = row + 4 * l->bits * blk;
        uint32_t q;
        if (l->bits == 3) { /* low 2 bits: word j/16 at 2*(j%16); bit 2: word 2, bit j */
            q = (word_at(bw + 4 * (j / 16)) >> (2 * (j % 16))) & 3;
            q |= ((word_at(bw + 8) >> j) & 1) << 2;
        } else { /* word j/(32/b) at b*(j%(32/b)) */
            int64_t per = 32 / l->bits;
            q = (word_at(bw + 4 * (j / per)) >> (l->bits * (j % per))) & ((1u << l->bits) - 1);
        }
        int64_t t = k / l->g;
        out[k] = scale_at(w, l, n * l->G + t) * ((float)q - zero_at(w, l, n * l->G + t));
    }
}

/* ---- generic C: decode one block of 32 codes ---- */

static void decode_b2(const uint32_t *bw, float *q) {
    for (int j = 0; j < 32; j++) q[j] = (float)((bw[j >> 4] >> (2 * (j & 15))) & 3);
}
static void decode_b3(const uint32_t *bw, float *q) {
    for (int j = 0; j < 32; j++)
        q[j] = (float)(((bw[j >> 4] >> (2 * (j & 15))) & 3) | ((bw[2] >> j) & 1) << 2);
}
static void decode_b4(const uint32_t *bw, float *q) {
    for (int j = 0; j < 32; j++) q[j] = (float)((bw[j >> 3] >> (4 * (j & 7))) & 15);
}
static void decode_b8(const uint32_t *bw, float *q) {
    for (int j = 0; j < 32; j++) q[j] = (float)((bw[j >> 2] >> (8 * (j & 3))) & 255);
}

typedef void decode_fn(const uint32_t *, float *);

static decode_fn *decoder(int32_t bits) {
    switch (bits) {
    case 2: return decode_b2;
    case 3: return decode_b3;
    case 4: return decode_b4;
    default: return decode_b8;
    }
}

void qrt_qdequant_row(const void *w, const qrt_qlayout *l, int64_t n, float *out) {
    decode_fn *dec = decoder(l->bits);
    const uint8_t *row = (const uint8_t *)w + 4 * n * l->row_words;
    const int64_t nblk = (l->K + 31) / 32;
    for (int64_t b = 0; b < nblk; b++) {
        uint32_t bw[8];
        float q[32];
        memcpy(bw, row + 4 * l->bits * b, 4 * (size_t)l->bits);
        dec(bw, q);
        int64_t k0 = 32 * b, m = l->K - k0 < 32 ? l->K - k0 : 32;
        /* groups are whole blocks unless per-channel: one (s, z) per block */
        int64_t t = k0 / l->g;
        float s = scale_at(w, l, n * l->G + t), z = zero_at(w, l, n * l->G + t);
        for (int64_t j = 0; j < m; j++) out[k0 + j] = s * (q[j] - z);
    }
}

/* Scratch: xpad [roundup(K, 32)] = x then zeros; xsum [G] group sums of x. */
size_t qrt_qgemv_scratch(const qrt_qlayout *l) {
    return (size_t)ROUNDUP(l->K, 32) + (size_t)l->G;
}

static void prepare_x(const qrt_qlayout *l, const float *x, float *xpad, float *xsum) {
    memcpy(xpad, x, (size_t)l->K * sizeof(float));
    memset(xpad + l->K, 0, (size_t)(ROUNDUP(l->K, 32) - l->K) * sizeof(float));
    for (int64_t t = 0; t < l->G; t++) {
        int64_t k1 = (t + 1) * l->g < l->K ? (t + 1) * l->g : l->K;
        float s = 0;
        for (int64_t k = t * l->g; k < k1; k++) s += x[k];
        xsum[t] = s;
    }
}

static void gemv_generic(const void *w, const qrt_qlayout *l, const float *xpad,
                         const float *xsum, float *out) {
    decode_fn *dec = decoder(l->bits);
    const int64_t nblk = (l->K + 31) / 32, bpg = (l->g + 31) / 32; /* blocks per group */
    for (int64_t n = 0; n < l->N; n++) {
        const uint8_t *row = (const uint8_t *)w + 4 * n * l->row_words;
        float acc[8] = {0}, zacc = 0;
        for (int64_t t = 0; t < l->G; t++) {
            float p[8] = {0};
            int64_t b1 = (t + 1) * bpg < nblk ? (t + 1) * bpg : nblk;
            for (int64_t b = t * bpg; b < b1; b++) {
                uint32_t bw[8];
                float q[32];
                memcpy(bw, row + 4 * l->bits * b, 4 * (size_t)l->bits);
                dec(bw, q);
                const float *x = xpad + 32 * b;
                for (int j = 0; j < 32; j += 8)
                    for (int v = 0; v < 8; v++) p[v] += q[j + v] * x[j + v];
            }
            float s = scale_at(w, l, n * l->G + t);
            for (int v = 0; v < 8; v++) acc[v] += s * p[v];
            zacc += s * zero_at(w, l, n * l->G + t) * xsum[t];
        }
        out[n] = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) - zacc;
    }
}

/* ---- AVX2 + FMA ---- */

#define AVX2 __attribute__((target("avx2,fma")))

/* p += codes(block) * x, 32 values, one block per call. */
AVX2 static inline __m256 blk_b2(const uint8_t *bw, const float *x, __m256 p) {
    const __m256i lo = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14), m = _mm256_set1_epi32(3);
    const __m256i hi = _mm256_add_epi32(lo, _mm256_set1_epi32(16));
    for (int i = 0; i < 2; i++) {
        __m256i v = _mm256_set1_epi32((int)word_at(bw + 4 * i));
        __m256i q0 = _mm256_and_si256(_mm256_srlv_epi32(v, lo), m);
        __m256i q1 = _mm256_and_si256(_mm256_srlv_epi32(v, hi), m);
        p = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q0), _mm256_loadu_ps(x + 16 * i), p);
        p = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q1), _mm256_loadu_ps(x + 16 * i + 8), p);
    }
    return p;
}

AVX2 static inline __m256 blk_b3(const uint8_t *bw, const float *x, __m256 p) {
    const __m256i lo = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14), m3 = _mm256_set1_epi32(3);
    const __m256i hi = _mm256_add_epi32(lo, _mm256_set1_epi32(16)), one = _mm256_set1_epi32(1);
    const __m256i id = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i h = _mm256_set1_epi32((int)word_at(bw + 8));
    for (int c = 0; c < 4; c++) { /* values 8c .. 8c+7 */
        __m256i v = _mm256_set1_epi32((int)word_at(bw + 4 * (c >> 1)));
        __m256i q = _mm256_and_si256(_mm256_srlv_epi32(v, (c & 1) ? hi : lo), m3);
        __m256i b2 = _mm256_and_si256(_mm256_srlv_epi32(h, _mm256_add_epi32(id, _mm256_set1_epi32(8 * c))), one);
        q = _mm256_or_si256(q, _mm256_slli_epi32(b2, 2));
        p = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q), _mm256_loadu_ps(x + 8 * c), p);
    }
    return p;
}

AVX2 static inline __m256 blk_b4(const uint8_t *bw, const float *x, __m256 p) {
    const __m256i sh = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28), m = _mm256_set1_epi32(15);
    for (int i = 0; i < 4; i++) {
        __m256i v = _mm256_set1_epi32((int)word_at(bw + 4 * i));
        __m256i q = _mm256_and_si256(_mm256_srlv_epi32(v, sh), m);
        p = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q), _mm256_loadu_ps(x + 8 * i), p);
    }
    return p;
}

AVX2 static inline __m256 blk_b8(const uint8_t *bw, const float *x, __m256 p) {
    for (int i = 0; i < 4; i++) {
        __m256i q = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(bw + 8 * i)));
        p = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q), _mm256_loadu_ps(x + 8 * i), p);
    }
    return p;
}

#define DEF_GEMV_AVX2(BITS)                                                                      \
    AVX2 static void gemv_avx2_b##BITS(const void *w, const qrt_qlayout *l, const float *xpad,   \
                                       const float *xsum, float *out) {                         \
        const int64_t nblk = (l->K + 31) / 32, bpg = (l->g + 31) / 32;                           \
        for (int64_t n = 0; n < l->N; n++) {                                                     \
            const uint8_t *row = (const uint8_t *)w + 4 * n * l->row_words;                      \
            __m256 acc = _mm256_setzero_ps();                                                    \
            float zacc = 0;                                                                      \
            for (int64_t t = 0; t < l->G; t++) {                                                 \
                __m256 p = _mm256_setzero_ps();                                                  \
                int64_t b1 = (t + 1) * bpg < nblk ? (t + 1) * bpg : nblk;                        \
                for (int64_t b = t * bpg; b < b1; b++)                                           \
                    p = blk_b##BITS(row + 4 * BITS * b, xpad + 32 * b, p);                      \
                float s = scale_at(w, l, n * l->G + t);                                          \
                acc = _mm256_fmadd_ps(_mm256_set1_ps(s), p, acc);                               \
                zacc += s * zero_at(w, l, n * l->G + t) * xsum[t];                               \
            }                                                                                    \
            __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));   \
            h = _mm_add_ps(h, _mm_movehl_ps(h, h));                                              \
            h = _mm_add_ss(h, _mm_movehdup_ps(h));                                               \
            out[n] = _mm_cvtss_f32(h) - zacc;                                                    \
        }                                                                                        \
    }

DEF_GEMV_AVX2(2)
DEF_GEMV_AVX2(3)
DEF_GEMV_AVX2(4)
DEF_GEMV_AVX2(8)

int qrt_qgemv_has_avx2(void) {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

void qrt_qgemv(const void *w, const qrt_qlayout *l, const float *x, float *out, float *scratch,
               int32_t isa) {
    float *xpad = scratch, *xsum = scratch + ROUNDUP(l->K, 32);
    prepare_x(l, x, xpad, xsum);
    if (isa == 0) isa = qrt_qgemv_has_avx2() ? 2 : 1;
    if (isa != 2) {
        gemv_generic(w, l, xpad, xsum, out);
        return;
    }
    switch (l->bits) {
    case 2: gemv_avx2_b2(w, l, xpad, xsum, out); break;
    case 3: gemv_avx2_b3(w, l, xpad, xsum, out); break;
    case 4: gemv_avx2_b4(w, l, xpad, xsum, out); break;
    default: gemv_avx2_b8(w, l, xpad, xsum, out); break;
    }
}

void qrt_qlinear(qrt_ctx *c, float *out, const float *a, int32_t rows, const void *w,
                 int32_t dtype, int32_t K, int32_t N, int32_t group, int32_t sym) {
    qrt_qlayout l;
    if (qrt_qlayout_init(&l, dtype, N, K, group, sym)) return; /* the compiler wrote it: cannot happen */
    if (rows == 1 && qrt_qgemv_scratch(&l) <= c->wtile_cap) {
        qrt_qgemv(w, &l, a, out, c->wtile, 0);
        return;
    }
    /* Dequantize a tile of TN weight rows, multiply, repeat. */
    int32_t TN = (int32_t)(c->wtile_cap / (size_t)K);
    if (TN > N) TN = N;
    for (int32_t n0 = 0; n0 < N; n0 += TN) {
        int32_t nn = N - n0 < TN ? N - n0 : TN;
        for (int32_t r = 0; r < nn; r++) qrt_qdequant_row(w, &l, n0 + r, c->wtile + (size_t)r * K);
        if (rows == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, nn, K, 1.0f, c->wtile, K, a, 1, 0.0f, out + n0, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, nn, K, 1.0f, a, K, c->wtile, K,
                        0.0f, out + n0, N);
    }
}
