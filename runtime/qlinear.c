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

/* ---- row dequantization, generic C ---- */

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

static void dequant_row_generic(const void *w, const qrt_qlayout *l, int64_t n, float *out) {
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

/* ---- batch 1, generic C ----
 * SSE2 has no per-lane shift counts, so instead of decoding a block in
 * natural order, the generic kernel takes 4 lanes whose codes sit at the
 * same shift (e.g. for 4 bits the 4 words of a block, each shifted by 4j)
 * and reads x through the matching permutation, built once per call:
 *   xperm[32b + p] = x[32b + nat(p)]:
 *     4 bits:    p = 4j + i,      nat = 8i + j                (word i, shift 4j)
 *     2, 3 bits: p = 4j + i,      nat = {0, 16, 8, 24}[i] + j (lanes w0, w1,
 *                                  w0>>16, w1>>16, shift 2j)
 *     8 bits:    p = 8j + 4h + i, nat = 16h + 4i + j          (word 4h+i, shift 8j)
 */
typedef uint32_t v4u __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));
typedef float v4f __attribute__((vector_size(16)));

static int64_t nat_index(int32_t bits, int p) {
    static const int off23[4] = {0, 16, 8, 24};
    int i = p % 4;
    switch (bits) {
    case 4: return 8 * i + p / 4;
    case 8: return 16 * ((p / 4) % 2) + 4 * i + p / 8;
    default: return off23[i] + p / 4;
    }
}

static v4f tofloat(v4u q) {
    return __builtin_convertvector((v4i)q, v4f); /* codes < 256: the signed conversion is exact */
}

static v4f load4f(const float *p) {
    v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* sum over one block of code * xperm, as 4 lanes (two independent chains) */
static v4f blk_generic(int32_t bits, const uint8_t *bw, const float *xp) {
    uint32_t w[8];
    memcpy(w, bw, 4 * (size_t)bits);
    v4f p0 = {0}, p1 = {0};
    if (bits == 4) {
        v4u v = {w[0], w[1], w[2], w[3]};
        for (uint32_t j = 0; j < 8; j += 2) {
            p0 += tofloat((v >> (4 * j)) & 15) * load4f(xp + 4 * j);
            p1 += tofloat((v >> (4 * j + 4)) & 15) * load4f(xp + 4 * j + 4);
        }
    } else if (bits == 8) {
        v4u v0 = {w[0], w[1], w[2], w[3]}, v1 = {w[4], w[5], w[6], w[7]};
        for (uint32_t j = 0; j < 4; j++) {
            p0 += tofloat((v0 >> (8 * j)) & 255) * load4f(xp + 8 * j);
            p1 += tofloat((v1 >> (8 * j)) & 255) * load4f(xp + 8 * j + 4);
        }
    } else {
        v4u v = {w[0], w[1], w[0] >> 16, w[1] >> 16};
        v4u h = {0, 0, 0, 0}; /* 3 bits: bit 2 of value j is bit j of word 2 */
        if (bits == 3) h = (v4u){w[2], w[2] >> 16, w[2] >> 8, w[2] >> 24};
        for (uint32_t j = 0; j < 8; j += 2) {
            v4u q0 = ((v >> (2 * j)) & 3) | (((h >> j) & 1) << 2);
            v4u q1 = ((v >> (2 * j + 2)) & 3) | (((h >> (j + 1)) & 1) << 2);
            p0 += tofloat(q0) * load4f(xp + 4 * j);
            p1 += tofloat(q1) * load4f(xp + 4 * j + 4);
        }
    }
    return p0 + p1;
}

static void gemv_generic(const void *w, const qrt_qlayout *l, const float *xperm,
                         const float *xsum, float *out) {
    const int64_t nblk = (l->K + 31) / 32, bpg = (l->g + 31) / 32; /* blocks per group */
    for (int64_t n = 0; n < l->N; n++) {
        const uint8_t *row = (const uint8_t *)w + 4 * n * l->row_words;
        v4f acc = {0};
        float zacc = 0;
        for (int64_t t = 0; t < l->G; t++) {
            v4f p = {0};
            int64_t b1 = (t + 1) * bpg < nblk ? (t + 1) * bpg : nblk;
            for (int64_t b = t * bpg; b < b1; b++)
                p += blk_generic(l->bits, row + 4 * l->bits * b, xperm + 32 * b);
            float s = scale_at(w, l, n * l->G + t);
            acc += s * p;
            zacc += s * zero_at(w, l, n * l->G + t) * xsum[t];
        }
        out[n] = (acc[0] + acc[2]) + (acc[1] + acc[3]) - zacc;
    }
}

/* ---- AVX2 + FMA ---- */

#define AVX2 __attribute__((target("avx2,fma")))

/* The 32 codes of one block as 4 x 8 int32 lanes, natural order. */
AVX2 static inline void decode_avx2(int32_t bits, const uint8_t *bw, __m256i q[4]) {
    const __m256i s2 = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14), m3 = _mm256_set1_epi32(3);
    const __m256i s2h = _mm256_add_epi32(s2, _mm256_set1_epi32(16));
    if (bits == 2 || bits == 3) {
        __m256i v0 = _mm256_set1_epi32((int)word_at(bw)), v1 = _mm256_set1_epi32((int)word_at(bw + 4));
        q[0] = _mm256_and_si256(_mm256_srlv_epi32(v0, s2), m3);
        q[1] = _mm256_and_si256(_mm256_srlv_epi32(v0, s2h), m3);
        q[2] = _mm256_and_si256(_mm256_srlv_epi32(v1, s2), m3);
        q[3] = _mm256_and_si256(_mm256_srlv_epi32(v1, s2h), m3);
        if (bits == 3) { /* bit 2 of value j is bit j of word 2 */
            const __m256i id = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), one = _mm256_set1_epi32(1);
            const __m256i h = _mm256_set1_epi32((int)word_at(bw + 8));
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                __m256i hb = _mm256_srlv_epi32(h, _mm256_add_epi32(id, _mm256_set1_epi32(8 * c)));
                q[c] = _mm256_or_si256(q[c], _mm256_slli_epi32(_mm256_and_si256(hb, one), 2));
            }
        }
    } else if (bits == 4) {
        const __m256i sh = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28), m = _mm256_set1_epi32(15);
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++)
            q[i] = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)word_at(bw + 4 * i)), sh), m);
    } else {
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++)
            q[i] = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(bw + 8 * i)));
    }
}

/* One kernel per bits so decode_avx2 folds; four FMA chains per block (one
 * chain would be latency-bound). */
#define DEF_GEMV_AVX2(BITS)                                                                       \
    AVX2 static void gemv_avx2_b##BITS(const void *w, const qrt_qlayout *l, const float *xpad,    \
                                       const float *xsum, float *out) {                          \
        const int64_t nblk = (l->K + 31) / 32, bpg = (l->g + 31) / 32;                            \
        for (int64_t n = 0; n < l->N; n++) {                                                      \
            const uint8_t *row = (const uint8_t *)w + 4 * n * l->row_words;                       \
            __m256 acc = _mm256_setzero_ps();                                                     \
            float zacc = 0;                                                                       \
            for (int64_t t = 0; t < l->G; t++) {                                                  \
                __m256 p0 = _mm256_setzero_ps(), p1 = p0, p2 = p0, p3 = p0;                       \
                int64_t b1 = (t + 1) * bpg < nblk ? (t + 1) * bpg : nblk;                         \
                for (int64_t b = t * bpg; b < b1; b++) {                                          \
                    __m256i q[4];                                                                 \
                    decode_avx2(BITS, row + 4 * BITS * b, q);                                     \
                    const float *x = xpad + 32 * b;                                               \
                    p0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q[0]), _mm256_loadu_ps(x), p0);       \
                    p1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q[1]), _mm256_loadu_ps(x + 8), p1);   \
                    p2 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q[2]), _mm256_loadu_ps(x + 16), p2);  \
                    p3 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q[3]), _mm256_loadu_ps(x + 24), p3);  \
                }                                                                                 \
                __m256 ps = _mm256_add_ps(_mm256_add_ps(p0, p1), _mm256_add_ps(p2, p3));          \
                float s = scale_at(w, l, n * l->G + t);                                           \
                acc = _mm256_fmadd_ps(_mm256_set1_ps(s), ps, acc);                               \
                zacc += s * zero_at(w, l, n * l->G + t) * xsum[t];                                \
            }                                                                                     \
            __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));    \
            h = _mm_add_ps(h, _mm_movehl_ps(h, h));                                               \
            h = _mm_add_ss(h, _mm_movehdup_ps(h));                                                \
            out[n] = _mm_cvtss_f32(h) - zacc;                                                     \
        }                                                                                         \
    }

DEF_GEMV_AVX2(2)
DEF_GEMV_AVX2(3)
DEF_GEMV_AVX2(4)
DEF_GEMV_AVX2(8)

/* scale * (code - zero): one subtraction then one multiplication, as in the
 * reference, so the same bits. */
#define DEF_DEQUANT_AVX2(BITS)                                                                    \
    AVX2 static void dequant_avx2_b##BITS(const void *w, const qrt_qlayout *l, int64_t n,         \
                                          float *out) {                                          \
        const uint8_t *row = (const uint8_t *)w + 4 * n * l->row_words;                           \
        const int64_t nblk = (l->K + 31) / 32;                                                    \
        for (int64_t b = 0; b < nblk; b++) {                                                      \
            __m256i q[4];                                                                         \
            float tmp[32];                                                                        \
            decode_avx2(BITS, row + 4 * BITS * b, q);                                             \
            const int64_t k0 = 32 * b, t = n * l->G + k0 / l->g;                                  \
            const __m256 s = _mm256_set1_ps(scale_at(w, l, t)), z = _mm256_set1_ps(zero_at(w, l, t)); \
            float *dst = l->K - k0 >= 32 ? out + k0 : tmp;                                        \
            for (int i = 0; i < 4; i++)                                                           \
                _mm256_storeu_ps(dst + 8 * i, _mm256_mul_ps(s, _mm256_sub_ps(_mm256_cvtepi32_ps(q[i]), z))); \
            if (dst == tmp) memcpy(out + k0, tmp, (size_t)(l->K - k0) * sizeof(float));          \
        }                                                                                         \
    }

DEF_DEQUANT_AVX2(2)
DEF_DEQUANT_AVX2(3)
DEF_DEQUANT_AVX2(4)
DEF_DEQUANT_AVX2(8)

/* ---- entry points ---- */

int qrt_qgemv_has_avx2(void) {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

void qrt_qdequant_row(const void *w, const qrt_qlayout *l, int64_t n, float *out, int32_t isa) {
    if (isa == 0) isa = qrt_qgemv_has_avx2() ? 2 : 1;
    if (isa != 2) {
        dequant_row_generic(w, l, n, out);
        return;
    }
    switch (l->bits) {
    case 2: dequant_avx2_b2(w, l, n, out); break;
    case 3: dequant_avx2_b3(w, l, n, out); break;
    case 4: dequant_avx2_b4(w, l, n, out); break;
    default: dequant_avx2_b8(w, l, n, out); break;
    }
}

/* Scratch: xs [roundup(K, 32)] = x zero-padded (permuted for the generic
 * kernel), then xsum [G] = group sums of x. */
size_t qrt_qgemv_scratch(const qrt_qlayout *l) {
    return (size_t)ROUNDUP(l->K, 32) + (size_t)l->G;
}

void qrt_qgemv(const void *w, const qrt_qlayout *l, const float *x, float *out, float *scratch,
               int32_t isa) {
    const int64_t Kp = ROUNDUP(l->K, 32);
    float *xs = scratch, *xsum = scratch + Kp;
    if (isa == 0) isa = qrt_qgemv_has_avx2() ? 2 : 1;
    for (int64_t b = 0; b < Kp; b += 32)
        for (int p = 0; p < 32; p++) {
            int64_t k = b + (isa == 2 ? p : nat_index(l->bits, p));
            xs[b + p] = k < l->K ? x[k] : 0.0f;
        }
    for (int64_t t = 0; t < l->G; t++) {
        int64_t k1 = (t + 1) * l->g < l->K ? (t + 1) * l->g : l->K;
        float s = 0;
        for (int64_t k = t * l->g; k < k1; k++) s += x[k];
        xsum[t] = s;
    }
    if (isa != 2) {
        gemv_generic(w, l, xs, xsum, out);
        return;
    }
    switch (l->bits) {
    case 2: gemv_avx2_b2(w, l, xs, xsum, out); break;
    case 3: gemv_avx2_b3(w, l, xs, xsum, out); break;
    case 4: gemv_avx2_b4(w, l, xs, xsum, out); break;
    default: gemv_avx2_b8(w, l, xs, xsum, out); break;
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
        for (int32_t r = 0; r < nn; r++) qrt_qdequant_row(w, &l, n0 + r, c->wtile + (size_t)r * K, 0);
        if (rows == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, nn, K, 1.0f, c->wtile, K, a, 1, 0.0f, out + n0, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, nn, K, 1.0f, a, K, c->wtile, K,
                        0.0f, out + n0, N);
    }
}
