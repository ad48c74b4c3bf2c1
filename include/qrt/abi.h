/*
 * qrt/abi.h — the contract between code qcc generates and libqrt.
 *
 * Every executable qcc writes is: one object file emitted through LLVM (the
 * model's forward pass as straight-line kernel calls, plus embedded data
 * sections) linked against libqrt.a (main(), CLI, tokenizer, sampler, KV
 * cache, kernels). This header is everything the two halves agree on. The
 * numbers below end up inside shipped binaries: only append, never renumber.
 *
 * Symbols the generated object defines (libqrt declares them extern):
 *
 *   const int32_t qm_config[QRT_CFG_COUNT];    model constants, see QRT_CFG_*
 *   const int32_t qm_buf_widths[];             floats per token of each buffer
 *   void qm_forward(qrt_ctx *ctx);             one forward step over ctx's
 *                                              n_tokens tokens at position pos
 *   qm_weights_start[] .. qm_weights_end[]     weight blob, 64-byte aligned,
 *                                              read-only section, paged in by
 *                                              the OS (never copied)
 *   qm_tokenizer_start[] .. qm_tokenizer_end[] tokenizer blob (qrt/tokenizer.h)
 *   qm_info_start[] .. qm_info_end[]           --info JSON (UTF-8, no NUL)
 *   qm_cuda_start[] .. qm_cuda_end[]           device code (include/qc/cuda.h); only in
 *                                              executables built for a CUDA target
 *                                              (libqrt references them weakly)
 *
 * Kernel calling convention: every op of the IR becomes exactly one call of
 * the same C signature, qrt_kernel_fn, so the code generator needs one call
 * builder and the op table (QRT_KERNELS below) to name the function.
 */
#ifndef QRT_ABI_H
#define QRT_ABI_H

#include <stddef.h>
#include <stdint.h>

#define QRT_ABI_VERSION 1

/* Weight storage types. X(name, code, bytes-per-element*8 (0 = packed))
 * Q2..Q8: integer codes of 2/3/4/8 bits with f16 group scales (and uint8
 * zero points unless symmetric), one contiguous byte range per linear
 * weight [N, K]; the layout is in docs/formats.md. Group size and symmetry
 * are not part of the dtype: they travel in the LINEAR/LM_HEAD call (p2, p3).
 * I8: W8A8 (SmoothQuant): int8 codes [N, roundup(K, 32)] and f32 per-output-
 * channel scales [N]; the LINEAR kernel quantizes its input per token to
 * int8 and multiplies in int32 (docs/formats.md). p2, p3 unused. */
#define QRT_DTYPES(X) \
    X(F32, 0, 32)     \
    X(F16, 1, 16)     \
    X(BF16, 2, 16)    \
    X(Q2, 3, 0)       \
    X(Q3, 4, 0)       \
    X(Q4, 5, 0)       \
    X(Q8, 6, 0)       \
    X(I8, 7, 0)

typedef enum qrt_dtype {
#define X(n, c, b) QRT_DT_##n = c,
    QRT_DTYPES(X)
#undef X
    QRT_DT_COUNT
} qrt_dtype;

/* Indices into qm_config[]. */
typedef enum qrt_cfg {
    QRT_CFG_ABI_VERSION = 0,
    QRT_CFG_ARCH,        /* qrt_arch */
    QRT_CFG_N_LAYERS,
    QRT_CFG_DIM,         /* hidden size */
    QRT_CFG_N_HEADS,
    QRT_CFG_N_KV_HEADS,
    QRT_CFG_HEAD_DIM,
    QRT_CFG_FFN_DIM,
    QRT_CFG_VOCAB,
    QRT_CFG_MAX_CTX,     /* trained context length */
    QRT_CFG_N_BUFS,      /* entries of qm_buf_widths */
    QRT_CFG_LOGITS_BUF,  /* buffer id the LM head writes ([rows, vocab]) */
    QRT_CFG_BOS,         /* -1 if none */
    QRT_CFG_EOS,         /* -1 if none */
    QRT_CFG_MAX_BATCH,   /* most tokens one qm_forward call may take */
    QRT_CFG_COUNT
} qrt_cfg;

typedef enum qrt_arch {
    QRT_ARCH_LLAMA = 1,
    QRT_ARCH_GPT2 = 2,
    QRT_ARCH_OPT = 3
} qrt_arch;

typedef struct qrt_ctx qrt_ctx;

/*
 * One kernel call. Buffers are f32 activations laid out [n_tokens, width]
 * row-major (n_tokens and the position of the first token come from ctx).
 *   out      destination buffer
 *   a, b, c  input buffers (NULL where the op takes fewer)
 *   w        weight tensor inside the weight blob (NULL if none)
 *   bias     bias vector, always f32 (NULL if none)
 *   wdtype   qrt_dtype of w (and bias)
 *   p0..p3   op-specific integers, f0 op-specific float (see QRT_KERNELS)
 */
typedef void qrt_kernel_fn(qrt_ctx *ctx, float *out, const float *a,
                           const float *b, const float *c, const void *w,
                           const void *bias, int32_t wdtype, int32_t p0,
                           int32_t p1, int32_t p2, int32_t p3, float f0);

/*
 * The kernels. X(OP, symbol, what the arguments mean)
 * Shapes: D = model dim, T = ctx n_tokens, K = in features, N = out features.
 */
#define QRT_KERNELS(X)                                                              \
    X(EMBED, qrt_k_embed)       /* out[T,p0] = w[tok[t], :]; w [vocab, p0]         */ \
    X(RMSNORM, qrt_k_rmsnorm)   /* out[T,p0] = a*rsqrt(mean(a^2)+f0)*w              */ \
    X(LINEAR, qrt_k_linear)     /* out[T,p1] = a[T,p0] @ w[p1,p0]^T (+bias)          \
                                   packed w (Q2..Q8): p2 group size (= p0 or <= 0:   \
                                   per output channel), p3 1 if symmetric (no zero   \
                                   points), bias then F32                            */ \
    X(ROPE, qrt_k_rope)         /* rotate-half RoPE in place on out[T,p0*p1],        \
                                   p0 heads, p1 head_dim, f0 theta                   */ \
    X(ATTENTION, qrt_k_attention) /* out[T,p1*p3] = causal attn(a=q,b=k,c=v)         \
                                   p0 layer, p1 n_heads, p2 n_kv_heads, p3 head_dim; \
                                   k,v appended to the layer's KV cache              */ \
    X(SILU_MUL, qrt_k_silu_mul) /* out[T,p0] = silu(a) * b                          */ \
    X(ADD, qrt_k_add)           /* out[T,p0] = a + b                                */ \
    X(LM_HEAD, qrt_k_lm_head)   /* out[R,p1] = a[R,p0] @ w[p1,p0]^T where R = T or   \
                                   only the last row (ctx decides); p2, p3 as LINEAR */ \
    X(LAYERNORM, qrt_k_layernorm) /* out[T,p0] = (a - mean) * rsqrt(var + f0) * w    \
                                   + bias (bias may be NULL); GPT-2, OPT             */ \
    X(GELU, qrt_k_gelu)         /* out[T,p0] = gelu(a); p1 0: tanh approximation     \
                                   (gelu_new), 1: exact (erf)                        */ \
    X(RELU, qrt_k_relu)         /* out[T,p0] = max(a, 0)                             */ \
    X(POS_EMBED, qrt_k_pos_embed) /* out[T,p0] = a + w[pos + t + p1, :]: learned     \
                                   absolute positions, w [p2, p0], p1 the row of     \
                                   position 0 (OPT: 2); rows past p2 clamp to the last */

typedef enum qrt_kernel {
#define X(op, sym) QRT_K_##op,
    QRT_KERNELS(X)
#undef X
    QRT_K_COUNT
} qrt_kernel;

#define X(op, sym) qrt_kernel_fn sym;
QRT_KERNELS(X)
#undef X

/* Called by qm_forward once per buffer id before the first kernel. */
float *qrt_buf(qrt_ctx *ctx, int32_t id);

#endif
