/*
 * runtime/qrt.h — libqrt's internal interfaces (not part of the ABI).
 *
 * libqrt is linked into every executable qcc writes. It depends on nothing
 * of the compiler: it only knows the symbols the generated object defines
 * (qrt/abi.h) and reads everything else from them at run time.
 */
#ifndef QRT_INTERNAL_H
#define QRT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "qrt/abi.h"

/* Model constants read from qm_config[] at start. */
typedef struct qrt_model {
    int32_t cfg[QRT_CFG_COUNT];
    const int32_t *buf_widths; /* [cfg[QRT_CFG_N_BUFS]] */
    void (*forward)(qrt_ctx *);
    const uint8_t *weights;    /* embedded weight blob */
    size_t weights_size;
    const uint8_t *tokenizer;
    size_t tokenizer_size;
    const char *info;          /* --info JSON, not NUL-terminated */
    size_t info_size;
    const uint8_t *cuda;       /* embedded device code (include/qc/cuda.h), NULL if none */
    size_t cuda_size;
    struct qrt_gpu *gpu;       /* set by qrt_cuda_init: the model is on a GPU (runtime/cuda.c) */
} qrt_model;

/* The state of one running sequence. Buffers are [max_batch, width] f32. */
struct qrt_ctx {
    const qrt_model *m;
    int32_t n_tokens;       /* tokens in the current qm_forward call */
    int32_t pos;            /* position of the first of them */
    const int32_t *tokens;  /* [n_tokens] */
    int32_t logits_all;     /* LM head on every row (perplexity) or only the last */
    int32_t max_batch;      /* most tokens per call */
    int32_t n_ctx;          /* KV cache length (positions) */
    float **bufs;           /* [n_bufs] -> [max_batch * width] */
    float *kcache, *vcache; /* [n_layers][n_ctx][n_kv_heads * head_dim] */
    float *scores;          /* [max_batch, n_ctx] attention scores */
    float *wtile;           /* dequantized weight tile for non-f32 linears */
    size_t wtile_cap;       /* floats in wtile */
    struct qrt_gpu_ctx *gpu; /* non-NULL: bufs[] are device addresses, kernels run on the GPU */
};

#define QRT_TRAILER 16 /* xxh3-128 after each embedded section */

/* Binds the symbols of the generated object. */
void qrt_model_bind(qrt_model *m);
/* Re-hashes every embedded section against its trailer: NULL if all are
 * intact, else the name of the first damaged one. */
const char *qrt_model_verify(const qrt_model *m);
/* Allocates a context for n_ctx positions: on the GPU when the model is
 * there (falling back to the CPU with a notice if the GPU lacks memory).
 * NULL on out of memory. */
qrt_ctx *qrt_ctx_new(const qrt_model *m, int32_t n_ctx);
void qrt_ctx_free(qrt_ctx *c);
/* Runs tokens[0..n) at positions pos.. (n <= max_batch, pos + n <= n_ctx).
 * Returns the logits buffer: [n, vocab] if all, else [1, vocab]; NULL after
 * a GPU error (qrt_ctx_error says which). */
const float *qrt_ctx_forward(qrt_ctx *c, const int32_t *tokens, int32_t n, int32_t pos, int all);
const char *qrt_ctx_error(const qrt_ctx *c);

/* Half-precision conversions used by kernels. */
float qrt_f16_to_f32(uint16_t h);
float qrt_bf16_to_f32(uint16_t h);
/* Converts n elements of row `row` of a [*, n] weight of dtype dt to f32. */
void qrt_row_to_f32(const void *w, int32_t dt, int64_t row, int64_t n, float *out);

/* Sampling. */
typedef struct qrt_sampler {
    float temp;    /* 0: greedy */
    int32_t top_k; /* <= 0: off */
    float top_p;   /* >= 1: off */
    uint64_t rng;  /* state of a splitmix64 generator */
    int32_t vocab;
    float *probs;  /* [vocab] */
    int32_t *idx;  /* [vocab] candidates' ids */
    float *val;    /* [vocab] candidates' logits */
} qrt_sampler;
int qrt_sampler_init(qrt_sampler *s, int32_t vocab, float temp, int32_t top_k, float top_p, uint64_t seed);
void qrt_sampler_free(qrt_sampler *s);
/* The next token from the logits of the last position (runtime/sampler.c). */
int32_t qrt_sample(qrt_sampler *s, const float *logits);
/* How many candidates a draw looks at: 1 (greedy), top-k, or the vocabulary. */
int32_t qrt_sampler_k(const qrt_sampler *s);
/* The candidates: the qrt_sampler_k largest logits, by logit descending,
 * ties lowest id first, into val / idx; returns their count. */
int32_t qrt_sample_candidates(const qrt_sampler *s, const float *logits, float *val, int32_t *idx);
/* The draw among n candidates in that order (what qrt_sample does after
 * qrt_sample_candidates; the GPU path computes the candidates itself). */
int32_t qrt_sample_from(qrt_sampler *s, const float *val, const int32_t *idx, int32_t n);
/* Generation without the logits on the host: qrt_ctx_run is qrt_ctx_forward
 * (all = 0) that returns 0 / -1 and leaves the logits where they are;
 * qrt_ctx_sample then draws the next token from them (on the GPU only the
 * sampler's candidates cross to the host). -1 after a GPU error. */
int qrt_ctx_run(qrt_ctx *c, const int32_t *tokens, int32_t n, int32_t pos);
int32_t qrt_ctx_sample(qrt_ctx *c, qrt_sampler *s);
/* Waits until the device has done all it was given (on the GPU a greedy
 * qrt_ctx_sample may have queued the next step already: docs/cuda.md,
 * look-ahead); 0, or -1 after a GPU error. */
int qrt_ctx_sync(qrt_ctx *c);

/* Command line of the executable. */
typedef struct qrt_args {
    const char *prompt;     /* -p */
    int32_t n_predict;      /* -n */
    float temp;             /* --temp */
    int32_t top_k;          /* --top-k */
    float top_p;            /* --top-p */
    uint64_t seed;          /* --seed */
    int32_t seed_set;
    int32_t n_ctx;          /* -c (0: model's) */
    int32_t threads;        /* -t (0: default) */
    const char *perplexity; /* --perplexity FILE */
    int32_t stride;         /* --stride (0: = n_ctx, non-overlapping) */
    int32_t info;           /* --info */
    int32_t bench;          /* --bench */
    int32_t prompt_len;     /* --prompt-len for --bench */
    int32_t gen_len;        /* --gen for --bench */
    int32_t device;         /* 0 auto, 1 cpu, 2 cuda */
    int32_t kv_f16;         /* --cache-type f16 (GPU KV cache) */
    int32_t no_graph;       /* --no-cuda-graph */
    int32_t no_pdl;         /* --no-pdl */
    int32_t fuse_norm;      /* 1, --no-fuse-norm: 0 */
    int32_t no_fuse_rope;   /* --no-fuse-rope */
    int32_t no_cluster;     /* --no-cluster */
    int32_t no_lookahead;   /* --no-lookahead */
    int32_t fused_gemm_max; /* --fused-gemm-max N: N, or -1 for 0; 0 the default */
    int32_t verbose;
    int32_t no_verify;      /* --no-verify */
    int32_t interactive;    /* -i: chat, one user message per line of stdin */
    int32_t chat;           /* --chat: -p is one user message of a chat */
    const char *system;     /* --system TEXT (NULL: the template's default) */
    int32_t dump_ids;       /* --dump-ids (hidden): every token id fed / generated, on stderr */
    const char *dump_logits; /* --dump-logits FILE (hidden): f32 logits of every prompt position */
    const char *ids;        /* --ids 1,2,3 (hidden): the prompt as token ids */
} qrt_args;
/* Parses argv. 0 ok, 1 help printed (exit 0), -1 error printed (exit 1). */
int qrt_args_parse(qrt_args *a, int argc, char **argv);

/* runtime/chat.c: -i and --chat with the embedded chat template; and the
 * --dump-logits debugging mode. Return the process exit status. */
typedef struct qrt_tok qrt_tok;
int qrt_chat(const qrt_model *m, const qrt_tok *tok, const qrt_args *a, int32_t n_ctx);
int qrt_dump_logits(const qrt_model *m, const qrt_tok *tok, const qrt_args *a, int32_t n_ctx);

/* Packed integer weights (runtime/qlinear.c; layout in docs/formats.md). */
typedef struct qrt_qlayout {
    int32_t bits, sym;
    int64_t N, K;
    int64_t g;          /* group size (K when per-channel) */
    int64_t G;          /* groups per row = ceil(K / g) */
    int64_t row_words;  /* 32-bit words per row = roundup(bits * ceil(K/32), 4) */
    size_t scales_off;  /* f16 [N, G] at 4 * N * row_words */
    size_t zeros_off;   /* uint8 [N, G] at scales_off + roundup(2 N G, 16) (asym) */
    size_t size;        /* zeros_off + (sym ? 0 : roundup(N G, 16)) */
} qrt_qlayout;
/* Bits of a packed dtype (QRT_DT_Q2..Q8), 0 for any other dtype. */
int32_t qrt_qdtype_bits(int32_t dt);
/* 0, or -1 if the dtype / shape / group (multiple of 32, or <= 0 / >= K:
 * per-channel) is invalid. */
int qrt_qlayout_init(qrt_qlayout *l, int32_t dtype, int64_t N, int64_t K, int64_t group,
                     int32_t sym);
/* Row n of the weight as f32 [K]: scale * (code - zero). The _ref form is
 * the scalar reference (one code at a time); all give the same bits.
 * isa (here and below): 0 the best the CPU has, 1 generic x86-64, 2 AVX2+FMA
 * (only if qrt_qgemv_has_avx2()). */
void qrt_qdequant_row_ref(const void *w, const qrt_qlayout *l, int64_t n, float *out);
void qrt_qdequant_row(const void *w, const qrt_qlayout *l, int64_t n, float *out, int32_t isa);
/* out[N] = W x (batch 1, fused). scratch: qrt_qgemv_scratch(l) floats. */
size_t qrt_qgemv_scratch(const qrt_qlayout *l);
int qrt_qgemv_has_avx2(void);
void qrt_qgemv(const void *w, const qrt_qlayout *l, const float *x, float *out, float *scratch,
               int32_t isa);
/* out[rows, N] = a[rows, K] @ W^T for a packed weight of dtype Q2..Q8, group
 * size `group` and `sym` (the LINEAR kernel's p2, p3). Uses c->wtile. */
void qrt_qlinear(qrt_ctx *c, float *out, const float *a, int32_t rows, const void *w,
                 int32_t dtype, int32_t K, int32_t N, int32_t group, int32_t sym);

#endif
