/*
 * runtime/kernels.c — the CPU kernels generated code calls (qrt/abi.h).
 *
 * Activations are f32 [n_tokens, width] row-major. Matrix products go to
 * OpenBLAS: f32 weights directly (sgemm / sgemv on the embedded bytes, no
 * copy), f16/bf16 weights through a dequantized tile of rows. Everything else
 * is a plain loop: at batch 1 these are memory-trivial next to the linears.
 * The reference executor (passes/exec.c) is the specification these match.
 */
#include <math.h>
#include <string.h>

#include <cblas.h>
#include <emmintrin.h>

#include "int8.h"
#include "qrt.h"
#include "qrt_cuda.h"

float qrt_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalize */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                exp--;
            }
            bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float qrt_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

void qrt_row_to_f32(const void *w, int32_t dt, int64_t row, int64_t n, float *out) {
    if (dt == QRT_DT_F32) {
        memcpy(out, (const float *)w + row * n, (size_t)n * sizeof(float));
        return;
    }
    const uint16_t *p = (const uint16_t *)w + row * n;
    if (dt == QRT_DT_F16)
        for (int64_t i = 0; i < n; i++) out[i] = qrt_f16_to_f32(p[i]);
    else
        for (int64_t i = 0; i < n; i++) out[i] = qrt_bf16_to_f32(p[i]);
}

void qrt_k_embed(qrt_ctx *c, float *out, const float *a, const float *b, const float *cc,
                 const void *w, const void *bias, int32_t wdtype, int32_t dim, int32_t p1,
                 int32_t p2, int32_t p3, float f0) {
    if (c->gpu) { /* runtime/cuda.c */
        qrt_cuda_k_embed(c, out, a, b, cc, w, bias, wdtype, dim, p1, p2, p3, f0);
        return;
    }
    (void)a, (void)b, (void)cc, (void)bias, (void)p1, (void)p2, (void)p3, (void)f0;
    int32_t vocab = c->m->cfg[QRT_CFG_VOCAB];
    for (int32_t t = 0; t < c->n_tokens; t++) {
        int32_t id = c->tokens[t];
        if (id < 0 || id >= vocab) id = 0; /* ids are validated by the caller */
        qrt_row_to_f32(w, wdtype, id, dim, out + (size_t)t * dim);
    }
}

void qrt_k_rmsnorm(qrt_ctx *c, float *out, const float *a, const float *b, const float *cc,
                   const void *w, const void *bias, int32_t wdtype, int32_t dim, int32_t p1,
                   int32_t p2, int32_t p3, float eps) {
    if (c->gpu) { /* runtime/cuda.c */
        qrt_cuda_k_rmsnorm(c, out, a, b, cc, w, bias, wdtype, dim, p1, p2, p3, eps);
        return;
    }
    (void)b, (void)cc, (void)bias, (void)p1, (void)p2, (void)p3;
    float wrow[dim];
    qrt_row_to_f32(w, wdtype, 0, dim, wrow);
    for (int32_t t = 0; t < c->n_tokens; t++) {
        const float *x = a + (size_t)t * dim;
        float *y = out + (size_t)t * dim;
        float ss = 0;
        for (int32_t i = 0; i < dim; i++) ss += x[i] * x[i];
        float r = 1.0f / sqrtf(ss / (float)dim + eps);
        for (int32_t i = 0; i < dim; i++) y[i] = w ? x[i] * r * wrow[i] : x[i] * r;
    }
}

/* out[rows, N] = a[rows, K] @ w[N, K]^T + bias. */
static void linear(qrt_ctx *c, float *out, const float *a, int32_t rows, const void *w,
                   const void *bias, int32_t dt, int32_t K, int32_t N, int32_t group, int32_t sym) {
    if (dt == QRT_DT_I8) {
        qrt_i8_linear(c, out, a, rows, w, K, N);
    } else if (dt >= QRT_DT_Q2) {
        qrt_qlinear(c, out, a, rows, w, dt, K, N, group, sym);
    } else if (dt == QRT_DT_F32) {
        if (rows == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, N, K, 1.0f, w, K, a, 1, 0.0f, out, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, N, K, 1.0f, a, K, w, K,
                        0.0f, out, N);
    } else {
        /* Dequantize a tile of TN weight rows, multiply, repeat. */
        int32_t TN = (int32_t)(c->wtile_cap / (size_t)K);
        if (TN > N) TN = N;
        for (int32_t n0 = 0; n0 < N; n0 += TN) {
            int32_t nn = N - n0 < TN ? N - n0 : TN;
            for (int32_t r = 0; r < nn; r++)
                qrt_row_to_f32(w, dt, n0 + r, K, c->wtile + (size_t)r * K);
            if (rows == 1)
                cblas_sgemv(CblasRowMajor, CblasNoTrans, nn, K, 1.0f, c->wtile, K, a, 1, 0.0f,
                            out + n0, 1);
            else
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, nn, K, 1.0f, a, K,
                            c->wtile, K, 0.0f, out + n0, N);
        }
    }
    if (bias) { /* biases are always stored f32 (1-D tensors are never narrowed) */
        const float *bv = bias;
        for (int32_t t = 0; t < rows; t++)
            for (int32_t n = 0; n < N; n++) out[(size_t)t * N + n] += bv[n];
    }
}

void qrt_k_linear(qrt_ctx *c, float *out, const float *a, const float *b, const float *cc,
                  const void *w, const void *bias, int32_t wdtype, int32_t K, int32_t N,
                  int32_t group, int32_t sym, float f0) {
    if (c->gpu) { /* runtime/cuda.c */
        qrt_cuda_k_linear(c, out, a, b, cc, w, bias, wdtype, K, N, group, sym, f0);
        return;
    }
    (void)b, (void)cc, (void)f0;
    linear(c, out, a, c->n_tokens, w, bias, wdtype, K, N, group, sym);
}

void qrt_k_lm_head(qrt_ctx *c, float *out, const float *a, const float *b, const float *cc,
                   const void *w, const void *bias, int32_t wdtype, int32_t K, int32_t N,
                   int32_t group, int32_t sym, float f0) {
    if (c->gpu) { /* runtime/cuda.c */
        qrt_cuda_k_lm_head(c, out, a, b, cc, w, bias, wdtype, K, N, group, sym, f0);
        return;
    }
    (void)b, (void)cc, (void)f0;
    if (c->logits_all)
        linear(c, out, a, c->n_tokens, w, bias, wdtype, K, N, group, sym);
    else
        linear(c, out, a + (size_t)(c->n_tokens - 1) * K, 1, w, bias, wdtype, K, N, group, sym);
}

/* Rotate-half RoPE (Hugging Face layout): pairs (i, i + hd/2) of each head. */
void qrt_k_rope(qrt_ctx *c, float *out, const float *a, const float *b, const float *cc,
                const void *w, const void *bias, int32_t wdtype, int32_t heads, int32_t hd,
                int32_t p2, int32_t p3, float theta) {
    if (c->gpu) { /* runtime/cuda.c */
        qrt_cuda_k_rope(c, out, a, b, cc, w, bias, wdtype, heads, hd, p2, p3, theta);
        return;
    }
    (void)a, (void)b, (void)cc, (void)w, (void)bias, (void)wdtype, (void)p2, (void)p3;
    int32_t half = hd / 2;
    float inv[half];
    for (int32_t i = 0; i < half; i++) inv[i] = 1.0f / powf(theta, (float)(2 * i) / (float)hd);
    for (int32_t t = 0; t < c->n_tokens; t++) {
        float pos = (float)(c->pos + t);
        for (int32_t i = 0; i < half; i++) {
            float ang = pos * inv[i], co = cosf(ang), si = sinf(ang);
            for (int32_t h = 0; h < heads; h++) {
                float *x = out + ((size_t)t * heads + h) * hd;
                float x0 = x[i], x1 = x[i + half];
                x[i] = x0 * co - x1 * si;
                x[i + half] = x1 * co + x0 * si;
            }
        }
    }
}

/* Softmax of row[0..n) in place, then zeros in row[n..len). SSE2 (every
 * x86-64 has it): exp through x = k ln2 + r, |r| <= ln2/2, a degree-6
 * Taylor polynomial for e^r (relative error < 3e-7) and 2^k from the
 * exponent bits. Inputs are <= 0 after subtracting the row max. */
static __m128 exp_neg4(__m128 x) {
    x = _mm_max_ps(x, _mm_set1_ps(-87.0f));
    __m128i k = _mm_cvtps_epi32(_mm_mul_ps(x, _mm_set1_ps(1.44269504f)));
    __m128 kf = _mm_cvtepi32_ps(k);
    __m128 r = _mm_sub_ps(_mm_sub_ps(x, _mm_mul_ps(kf, _mm_set1_ps(0.693145752f))),
                          _mm_mul_ps(kf, _mm_set1_ps(1.42860677e-6f)));
    __m128 p = _mm_set1_ps(1.0f / 720);
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(1.0f / 120));
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(1.0f / 24));
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(1.0f / 6));
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(0.5f));
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(1.0f));
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(1.0f));
    __m128 two_k = _mm_castsi128_ps(_mm_slli_epi32(_mm_add_epi32(k, _mm_set1_epi32(127)), 23));
    return _mm_mul_ps(p, two_k);
}

static void softmax_row(float *row, int32_t n, int32_t len) {
    int32_t j = 0;
    __m128 m4 = _mm_set1_ps(-INFINITY);
    for (; j + 4 <= n; j += 4) m4 = _mm_max_ps(m4, _mm_loadu_ps(row + j));
    float mv[4];
    _mm_storeu_ps(mv, m4);
    float mx = mv[0] > mv[1] ? mv[0] : mv[1];
    mx = mx > mv[2] ? mx : mv[2];
    mx = mx > mv[3] ? mx : mv[3];
    for (; j < n; j++) mx = row[j] > mx ? row[j] : mx;
    __m128 mxv = _mm_set1_ps(mx), s4 = _mm_setzero_ps();
    for (j = 0; j + 4 <= n; j += 4) {
        __m128 e = exp_neg4(_mm_sub_ps(_mm_loadu_ps(row + j), mxv));
        _mm_storeu_ps(row + j, e);
        s4 = _mm_add_ps(s4, e);
    }
    float sv[4];
    _mm_storeu_ps(sv, s4);
    float sum = (sv[0] + sv[1]) + (sv[2] + sv[3]);
    if (j < n) {
        float tail[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
        memcpy(tail, row + j, (size_t)(n - j) * sizeof(float));
        _mm_storeu_ps(tail, exp_neg4(_mm_sub_ps(_mm_loadu_ps(tail), mxv)));
        for (int32_t u = 0; u < n - j; u++) sum += (row[j + u] = tail[u]);
    }
    __m128 inv = _mm_set1_ps(1.0f / sum);
    for (j = 0; j + 4 <= n; j += 4) _mm_storeu_ps(row + j, _mm_mul_ps(_mm_loadu_ps(row + j), inv));
    for (; j < n; j++) row[j] *= 1.0f / sum;
    for (j = n; j < len; j++) row[j] = 0.0f;
}

/* Causal attention with grouped KV heads; appends this call's k, v to the
 * cache. Per query head: S = q K^T (sgemm over every cached position),
 * row-wise softmax over the causal prefix, out = P V (sgemm). Rows past a
 * token's own position get probability 0. */
void qrt_k_attention(qrt_ctx *c, float *out, const float *q, const float *k, const float *v,
                     const void *w, const void *bias, int32_t wdtype, int32_t layer,
                     int32_t heads, int32_t kv_heads, int32_t hd, float f0) {
    if (c->gpu) { /* runtime/cuda.c */
        qrt_cuda_k_attention(c, out, q, k, v, w, bias, wdtype, layer, heads, kv_heads, hd, f0);
        return;
    }
    (void)w, (void)bias, (void)wdtype, (void)f0;
    const int32_t kvd = kv_heads * hd, group = heads / kv_heads, T = c->n_tokens, L = c->pos + T;
    float *kc = c->kcache + (size_t)layer * c->n_ctx * kvd;
    float *vc = c->vcache + (size_t)layer * c->n_ctx * kvd;
    memcpy(kc + (size_t)c->pos * kvd, k, (size_t)T * kvd * sizeof(float));
    memcpy(vc + (size_t)c->pos * kvd, v, (size_t)T * kvd * sizeof(float));
    const float scale = 1.0f / sqrtf((float)hd);
    float *S = c->scores; /* [T, L] */
    for (int32_t h = 0; h < heads; h++) {
        const float *kh = kc + (size_t)(h / group) * hd, *vh = vc + (size_t)(h / group) * hd;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, L, hd, scale, q + (size_t)h * hd,
                    heads * hd, kh, kvd, 0.0f, S, L);
        for (int32_t t = 0; t < T; t++) softmax_row(S + (size_t)t * L, c->pos + t + 1, L);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, L, 1.0f, S, L, vh, kvd, 0.0f,
                    out + (size_t)h * hd, heads * hd);
    }
}

void qrt_k_silu_mul(qrt_ctx *c, float *out, const float *a, const float *b, const float *cc,
                    const void *w, const void *bias, int32_t wdtype, int32_t width, int32_t p1,
                    int32_t p2, int32_t p3, float f0) {
    if (c->gpu) { /* runtime/cuda.c */
        qrt_cuda_k_silu_mul(c, out, a, b, cc, w, bias, wdtype, width, p1, p2, p3, f0);
        return;
    }
    (void)cc, (void)w, (void)bias, (void)wdtype, (void)p1, (void)p2, (void)p3, (void)f0;
    size_t n = (size_t)c->n_tokens * width;
    for (size_t i = 0; i < n; i++) out[i] = a[i] / (1.0f + expf(-a[i])) * b[i];
}

void qrt_k_add(qrt_ctx *c, float *out, const float *a, const float *b, const float *cc,
               const void *w, const void *bias, int32_t wdtype, int32_t width, int32_t p1,
               int32_t p2, int32_t p3, float f0) {
    if (c->gpu) { /* runtime/cuda.c */
        qrt_cuda_k_add(c, out, a, b, cc, w, bias, wdtype, width, p1, p2, p3, f0);
        return;
    }
    (void)cc, (void)w, (void)bias, (void)wdtype, (void)p1, (void)p2, (void)p3, (void)f0;
    size_t n = (size_t)c->n_tokens * width;
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

/* ---- GPT-2 / OPT ------------------------------------------------------------ */

/* LayerNorm over each row: mean and variance accumulated in double. */
void qrt_k_layernorm(qrt_ctx *c, float *out, const float *a, const float *b, const float *cc,
                     const void *w, const void *bias, int32_t wdtype, int32_t dim, int32_t p1,
                     int32_t p2, int32_t p3, float eps) {
    (void)b, (void)cc, (void)p1, (void)p2, (void)p3;
    float wrow[dim];
    qrt_row_to_f32(w, wdtype, 0, dim, wrow);
    const float *bv = bias; /* always f32 */
    for (int32_t t = 0; t < c->n_tokens; t++) {
        const float *x = a + (size_t)t * dim;
        float *y = out + (size_t)t * dim;
        double s = 0, ss = 0;
        for (int32_t i = 0; i < dim; i++) s += x[i];
        float mean = (float)(s / dim);
        for (int32_t i = 0; i < dim; i++) ss += (double)(x[i] - mean) * (x[i] - mean);
        float r = (float)(1.0 / sqrt(ss / dim + eps));
        for (int32_t i = 0; i < dim; i++) y[i] = (x[i] - mean) * r * wrow[i] + (bv ? bv[i] : 0.0f);
    }
}

void qrt_k_gelu(qrt_ctx *c, float *out, const float *a, const float *b, const float *cc,
                const void *w, const void *bias, int32_t wdtype, int32_t width, int32_t exact,
                int32_t p2, int32_t p3, float f0) {
    (void)b, (void)cc, (void)w, (void)bias, (void)wdtype, (void)p2, (void)p3, (void)f0;
    size_t n = (size_t)c->n_tokens * width;
    if (exact)
        for (size_t i = 0; i < n; i++) out[i] = 0.5f * a[i] * (1.0f + erff(a[i] * 0.70710678f));
    else
        for (size_t i = 0; i < n; i++) {
            float x = a[i];
            out[i] = 0.5f * x * (1.0f + tanhf(0.79788456f * (x + 0.044715f * x * x * x)));
        }
}

void qrt_k_relu(qrt_ctx *c, float *out, const float *a, const float *b, const float *cc,
                const void *w, const void *bias, int32_t wdtype, int32_t width, int32_t p1,
                int32_t p2, int32_t p3, float f0) {
    (void)b, (void)cc, (void)w, (void)bias, (void)wdtype, (void)p1, (void)p2, (void)p3, (void)f0;
    size_t n = (size_t)c->n_tokens * width;
    for (size_t i = 0; i < n; i++) out[i] = a[i] > 0.0f ? a[i] : 0.0f;
}

void qrt_k_pos_embed(qrt_ctx *c, float *out, const float *a, const float *b, const float *cc,
                     const void *w, const void *bias, int32_t wdtype, int32_t dim, int32_t offset,
                     int32_t rows, int32_t p3, float f0) {
    (void)b, (void)cc, (void)bias, (void)p3, (void)f0;
    float row[dim];
    for (int32_t t = 0; t < c->n_tokens; t++) {
        int64_t r = (int64_t)c->pos + t + offset;
        if (r >= rows) r = rows - 1; /* the executable refuses -c beyond the table; never read past it */
        qrt_row_to_f32(w, wdtype, r, dim, row);
        for (int32_t i = 0; i < dim; i++) out[(size_t)t * dim + i] = a[(size_t)t * dim + i] + row[i];
    }
}
