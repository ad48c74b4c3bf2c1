/*
 * qc/quant.h — numerical kernels the passes call. Pure functions over
 * arrays: no IR, no I/O, no global state.
 */
#ifndef QC_QUANT_H
#define QC_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "qc/err.h"
#include "qrt/abi.h"

uint16_t qc_f32_to_f16(float f);  /* round to nearest even; overflow -> inf */
uint16_t qc_f32_to_bf16(float f); /* round to nearest even */
float qc_f16_to_f32(uint16_t h);
float qc_bf16_to_f32(uint16_t h);
/* Converts n elements between QRT_DT_F32/F16/BF16 (src and dst may not overlap). */
void qc_convert(const void *src, int32_t sdt, void *dst, int32_t ddt, size_t n);

/* ---- Integer weight quantization (quant/rtn.c, pack.c, hessian.c, gptq.c) ----
 *
 * A linear weight W is [N out, K in] f32 row-major. It is quantized per
 * output row in groups of g consecutive input columns (g a multiple of 32,
 * or g = K: one group per row, "per-channel"; any g <= 0 or g >= K means
 * per-channel). Group t of row n covers columns [t*g, min((t+1)*g, K)), so
 * G = ceil(K/g) groups per row and the last one may be shorter.
 *
 * Codes q are integers in [0, 2^bits - 1] (bits in {2, 3, 4, 8}); a code
 * stands for  w = scale * (q - zero)  with scale > 0 representable in f16
 * and zero an integer in [0, 2^bits - 1] (symmetric: zero = 2^(bits-1)).
 * Arrays: codes uint8 [N, K]; scales and zeros f32 [N, G] (zeros hold
 * integer values). docs/formats.md has the grids and the packed layout.
 */

/* Effective group size for K columns: K for per-channel (group <= 0 or
 * >= K), else group if it is a multiple of 32; 0 if invalid. */
int64_t qc_qgroup(int64_t K, int64_t group);
/* qrt_dtype for bits (QRT_DT_Q2, _Q3, _Q4, _Q8), -1 for other bits. */
int32_t qc_qdtype(int32_t bits);
/* Bits of a packed dtype, 0 if dt is not one. */
int32_t qc_qdtype_bits(int32_t dt);

/* Where each part of a packed weight lies (docs/formats.md). */
typedef struct qc_qlayout {
    int32_t bits, sym;
    int64_t N, K;
    int64_t group;     /* effective g (K when per-channel) */
    int64_t n_groups;  /* G = ceil(K / g) */
    int64_t row_words; /* 32-bit words per packed row = roundup(bits * ceil(K/32), 4) */
    size_t scales_off; /* = 4 * N * row_words: f16 [N, G] */
    size_t zeros_off;  /* = scales_off + roundup(2 * N * G, 16): uint8 [N, G] (asym only) */
    size_t size;       /* = zeros_off + (sym ? 0 : roundup(N * G, 16)) */
} qc_qlayout;
/* 0, or -1 if bits / group / N / K are invalid (N, K in [1, 2^31)). */
int qc_qlayout_init(qc_qlayout *l, int32_t bits, int64_t N, int64_t K, int64_t group, int32_t sym);
/* Bytes of the packed weight (a pure function of its arguments); 0 if invalid. */
size_t qc_qpack_size(int32_t bits, int64_t N, int64_t K, int64_t group, int32_t sym);

/* Packs codes [N,K], scales [N,G] (rounded to f16: pass f16-exact values to
 * keep them exact) and zeros [N,G] (ignored and may be NULL if sym) into
 * out[qc_qpack_size(...)], padding with zero bits. -1 (out untouched) if the
 * arguments are invalid or a code / zero lies outside [0, 2^bits - 1]. */
int qc_qpack(const uint8_t *codes, const float *scales, const float *zeros, int32_t bits,
             int64_t N, int64_t K, int64_t group, int32_t sym, void *out);
/* Exact inverse of qc_qpack (zeros may be NULL; sym gives 2^(bits-1)). */
void qc_qunpack(const void *packed, int32_t bits, int64_t N, int64_t K, int64_t group,
                int32_t sym, uint8_t *codes, float *scales, float *zeros);
/* W[N,K] = scale * (q - zero) in f32, the very values the runtime uses. */
void qc_qdequant(const void *packed, int32_t bits, int64_t N, int64_t K, int64_t group,
                 int32_t sym, float *W);

/* Smallest f16 value >= x, as f32 (x in (0, 65504]; larger x give 65504). */
float qc_f16_ceil(float x);
/* Min-max grid of one group w[0..n): the range always includes 0;
 *   asym: scale = f16_ceil((max - min) / (2^b - 1)), zero = round(-min / scale)
 *   sym:  scale = f16_ceil(2 max|w| / (2^b - 1)),    zero = 2^(b-1)
 * (the GPTQ reference's grids, the scale rounded UP to f16 so every w is
 * within scale/2 of the grid). An all-zero group gets scale 1. */
void qc_quant_fit(const float *w, int64_t n, int32_t bits, int32_t sym, float *scale,
                  float *zero);
/* Code of w: clamp(round_half_even(w / scale) + zero, 0, 2^bits - 1). */
uint8_t qc_quant_code(float w, float scale, float zero, int32_t bits);
/* Round-to-nearest quantization of W [N,K]: codes [N,K], scales/zeros [N,G]. */
void qc_rtn_quantize(const float *W, int64_t N, int64_t K, int32_t bits, int64_t group,
                     int32_t sym, uint8_t *codes, float *scales, float *zeros);

/* ---- Hessian of a linear layer's inputs (quant/hessian.c) ----
 * H = 2/n sum_r x_r x_r^T over the n input rows seen, accumulated in double
 * in a fixed order (row order; each product of two floats is exact in
 * double): the result is bit-identical for any thread count, chunking or
 * SIMD width and equals a plain sequential double loop. */
typedef struct qc_hessian {
    int64_t K;  /* input features */
    int64_t n;  /* rows accumulated so far */
    double *S;  /* [K, K] row-major; upper triangle (j >= i) holds sum x_i x_j */
} qc_hessian;
/* 0, or -1 if K <= 0 or out of memory. */
int qc_hessian_init(qc_hessian *h, int64_t K);
void qc_hessian_free(qc_hessian *h); /* accepts NULL and a zeroed struct */
/* Adds the rows of X [n, K] f32, using up to nthreads threads. */
void qc_hessian_accumulate(qc_hessian *h, const float *X, int64_t n, int32_t nthreads);
/* The same with the kernel chosen: isa 0 what the CPU has, 1 generic x86-64,
 * 2 AVX2 (for tests: all give the same bits). */
void qc_hessian_accumulate_isa(qc_hessian *h, const float *X, int64_t n, int32_t nthreads,
                               int32_t isa);
/* Writes the full symmetric H [K, K] = 2/n S (all zeros if n == 0). H may be h->S. */
void qc_hessian_finalize(const qc_hessian *h, double *H);

/* ---- GPTQ (quant/gptq.c) ----
 * Quantizes W [N,K] column by column in the order perm (act-order: by
 * decreasing diag(H)), spreading each column's rounding error over the
 * columns not yet quantized through the upper Cholesky factor of H^-1
 * (Frantar et al., "GPTQ", 2022), with lazy batch updates of 128 columns.
 *
 * Dead inputs (H[i][i] == 0): H[i][i] = 1 and W[:, i] = 0. Damping adds
 * damp * mean(diag H) to the diagonal. Groups: per-channel and act-order
 * groups are "static" (fitted once, from the columns in their original
 * order, before any update: the runtime needs no index table); otherwise a
 * group is fitted when its first column comes up, on the updated weights.
 *
 * Every reduction has a fixed order whatever nthreads or the OpenBLAS thread
 * count (the LAPACK calls run with OpenBLAS pinned to one thread). */

/* perm[K] = columns by decreasing H[i][i] (ties: lower index first). */
void qc_gptq_act_order(const double *H, int64_t K, int32_t *perm);
/* U [K,K] f32 row-major (zero below the diagonal) with U^T U = (Hp + l I)^-1,
 * Hp = H with rows/columns permuted by perm (NULL: identity), dead diagonal
 * entries set to 1, l = damp * mean(diag Hp). 0, or -1 with err set. */
int qc_gptq_hinv(const double *H, int64_t K, double damp, const int32_t *perm, float *U,
                 qc_err *err);
/* The same in double, as LAPACK leaves it (U's f32 rounding hides most of
 * LAPACK's last-bit differences, so tests of its determinism look here). */
int qc_gptq_hinv64(const double *H, int64_t K, double damp, const int32_t *perm, double *U,
                   qc_err *err);
/* The solver alone, given U from qc_gptq_hinv (same perm; W's dead columns
 * already zeroed): W [N,K] is replaced by its quantized values, codes / scales
 * / zeros as qc_rtn_quantize. 0, or -1 (out of memory) with err set. */
int qc_gptq_solve(float *W, int64_t N, int64_t K, const float *U, const int32_t *perm,
                  int32_t bits, int64_t group, int32_t sym, int32_t nthreads, uint8_t *codes,
                  float *scales, float *zeros, qc_err *err);
/* All of it: dead columns, act-order, damping, H^-1, solve. W [N,K] in/out
 * (quantized values on return), H [K,K] from qc_hessian_finalize. 0, or -1
 * with err set (invalid arguments, out of memory, H not positive definite
 * even after damping). */
int qc_gptq_quantize(float *W, const double *H, int64_t N, int64_t K, int32_t bits,
                     int64_t group, int32_t sym, double damp, int32_t act_order,
                     int32_t nthreads, uint8_t *codes, float *scales, float *zeros, qc_err *err);


/* ---- AWQ (quant/awq.c) ----
 * Activation-aware weight quantization (Lin et al., "AWQ", 2023): scale the
 * input channels of a group of linears that share an input by s (W' = W
 * diag(s), the 1/s folded into the op that produces the input), choose s
 * and a per-group clipping range to minimize the output error of the
 * quantized layer on calibration inputs.
 *
 * Every error here is measured through the Hessian of the inputs,
 * H = c X^T X (any c > 0, e.g. qc_hessian_finalize's 2/n): for an
 * effective weight error D [N,K],
 *     ||X D^T||_F^2 = (1/c) sum_n D_n H D_n^T
 * so a candidate costs N K^2 instead of rows * N * K and needs no kept
 * activations. Sums run in double in a fixed order (rows n independent,
 * added in row order at the end): the result is the same for any nthreads. */

/* s_j = max(xmean_j, 1e-4)^a, then s /= sqrt(max(s) min(s)) (the authors'
 * normalization), rounded to f32. a = 0 gives s = 1 exactly. */
void qc_awq_scales(const float *xmean, int64_t K, double a, float *s);
/* sum_n d_n^T H d_n with d_n = W_n - Q_n / s (s NULL: W_n - Q_n), H [K,K]
 * full symmetric. W, Q [N,K]. */
double qc_awq_error(const float *W, const float *Q, const float *s, int64_t N, int64_t K,
                    const double *H, int32_t nthreads);
/* Grid search over a = k / n_grid, k = 0 .. n_grid - 1: s = qc_awq_scales(xmean, a),
 * error of RTN(W diag(s)) diag(1/s) (bits, group, sym as qc_rtn_quantize).
 * Writes the best s (first minimum; k = 0 is plain RTN, so the result is
 * never worse than RTN) and, if errs is not NULL, errs[k] for every k.
 * Returns the best k, or -1 if out of memory. */
int32_t qc_awq_search(const float *W, int64_t N, int64_t K, const float *xmean, const double *H,
                      int32_t bits, int64_t group, int32_t sym, int32_t n_grid, int32_t nthreads,
                      float *s, double *errs);
/* Clipping search: for every (row, group) of W [N,K] with range [lo, hi]
 * (lo = min(0, min w), hi = max(0, max w)), try the ranges [r lo, r hi] for
 * r = 1 - i (1 - min_ratio) / n_steps, i = 0 .. n_steps; each candidate
 * clamps the group, quantizes it with RTN and costs d^T H_gg d, d = w -
 * Q(clamp(w)) over the group's columns. W is clamped in place to the best
 * range (first minimum; r = 1 leaves the group as it is). ratios [N,G] may be
 * NULL. 0, or -1 if out of memory (W untouched). */
int qc_awq_clip(float *W, int64_t N, int64_t K, const double *H, int32_t bits, int64_t group,
                int32_t sym, int32_t n_steps, double min_ratio, int32_t nthreads, float *ratios);

/* ---- SmoothQuant W8A8 (quant/int8.c) ----
 * Xiao et al., "SmoothQuant", 2022. Weights: int8 per output channel,
 * symmetric; activations: int8 per token, symmetric, quantized at run time;
 * the product is an exact int32 dot. Layout (QRT_DT_I8, docs/formats.md):
 *     Kp = roundup(K, 32)
 *     codes   int8 [N, Kp] at 0, row-major, columns >= K zero
 *     scales  f32  [N] at N * Kp, little-endian
 *     size    N * Kp + roundup(4 N, 16)
 * The runtime (runtime/int8.c) and qc_i8_linear compute the same bits. */

/* s_j = max(xmax_j, 1e-5)^alpha / max(wmax_j, 1e-5)^(1 - alpha), at least 1e-5. */
void qc_smooth_scales(const float *xmax, const float *wmax, int64_t K, double alpha, float *s);
/* Bytes of a QRT_DT_I8 weight [N,K]; 0 if N or K is out of [1, 2^31). */
size_t qc_i8_size(int64_t N, int64_t K);
/* Quantizes W [N,K] into out[qc_i8_size(N, K)]: scale_n = max|w_n| / 127
 * (1 if the row is all zero), code = clamp(rint(w / scale_n), -127, 127). */
void qc_i8_quantize(const float *W, int64_t N, int64_t K, void *out);
/* W [N,K] = code * scale_n, the values a float model would use. */
void qc_i8_dequant(const void *packed, int64_t N, int64_t K, float *W);
/* Per-token activation quantization, the runtime's rule:
 *   amax = max_k |x_k|, inv = amax > 0 ? 127 / amax : 0,
 *   q_k = clamp(rint(x_k * inv), -127, 127), returns amax / 127.
 * q[Kp] with q[K..Kp) = 0. */
float qc_i8_quantize_act(const float *x, int64_t K, int64_t Kp, int8_t *q);
/* y[rows, N] = per row t: acc_tn = sum_k q(x_t)_k code_nk (int32),
 * y_tn = ((float)acc_tn * sa_t) * scale_n. No bias. 0, or -1 (out of memory). */
int qc_i8_linear(const float *x, int64_t rows, const void *packed, int64_t N, int64_t K, float *y);
/* 1 if dt is stored as its own packed bytes (QRT_DT_Q2..Q8, QRT_DT_I8). */
int qc_dtype_packed(int32_t dt);

#endif
