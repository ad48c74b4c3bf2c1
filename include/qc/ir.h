/*
 * qc/ir.h — the one IR every stage of qcc shares.
 *
 * A model is a qc_graph: the configuration (from config.json or GGUF
 * metadata), a table of weight tensors (borrowed views into the mmap'd
 * checkpoint until a pass produces new bytes), a fixed set of activation
 * buffers, and a flat list of ops. Each op is one call of a libqrt kernel
 * (qrt/abi.h): the op kinds ARE the runtime's kernel table, so what the
 * reference executor interprets and what codegen emits cannot drift apart.
 *
 * Buffers are f32 activations of shape [n_tokens, width]; the frontend
 * reuses the same few buffers in every layer (as llama2.c does), so no
 * liveness analysis is needed to keep memory at O(width * batch).
 *
 * Producers: frontend/ (qc_model_load). Consumers: passes/, codegen/.
 */
#ifndef QC_IR_H
#define QC_IR_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "qc/err.h"
#include "qrt/abi.h"

#define QC_VERSION "0.1.0"
#define QC_NAME_MAX 160

/* A weight tensor. */
typedef struct qc_tensor {
    char name[QC_NAME_MAX]; /* checkpoint name, e.g. "model.layers.0.self_attn.q_proj.weight" */
    int32_t dtype;          /* qrt_dtype of data[] */
    int32_t ndim;           /* 1 or 2 */
    int64_t shape[2];       /* row-major; a linear weight is [out N, in K] */
    const void *data;       /* borrowed view (mmap) or == owned */
    void *owned;            /* bytes a pass produced; freed with the graph */
    size_t nbytes;          /* bytes of data[] */
    int32_t out_dtype;      /* qrt_dtype it is stored as in the executable */
    uint64_t blob_offset;   /* byte offset in the weight blob (pass_plan) */
    uint64_t blob_nbytes;   /* bytes it takes there (pass_plan) */
    int32_t qgroup;         /* packed (QRT_DT_Q*) only: group size, K = per-channel */
    int32_t qsym;           /* packed only: 1 symmetric grid, 0 zero points */
} qc_tensor;

/* One op = one kernel call; field meanings per kind in qrt/abi.h QRT_KERNELS. */
typedef struct qc_op {
    int32_t kind;  /* qrt_kernel */
    int32_t out;   /* buffer id */
    int32_t in[3]; /* buffer ids, -1 if unused */
    int32_t w;     /* tensor id, -1 if none */
    int32_t bias;  /* tensor id, -1 if none */
    int32_t p[4];  /* integer params */
    float f0;      /* float param */
} qc_op;

typedef struct qc_config {
    char model_type[32]; /* "llama", "mistral", "qwen2", ... */
    int32_t arch;        /* qrt_arch */
    int32_t n_layers;
    int32_t dim;         /* hidden_size */
    int32_t n_heads;
    int32_t n_kv_heads;
    int32_t head_dim;
    int32_t ffn_dim;     /* intermediate_size */
    int32_t vocab;
    int32_t max_ctx;     /* max_position_embeddings */
    int32_t bos, eos;    /* -1 if unknown */
    float norm_eps;
    float rope_theta;
    int32_t tie_embeddings;
    int32_t attn_bias;   /* q/k/v projections carry biases (qwen2; opt: enable_bias, every linear) */
    /* gpt2 / opt (frontend/config.c; QRT_ARCH_GPT2 / QRT_ARCH_OPT) */
    int32_t act;         /* MLP activation, QC_ACT_* (llama: SwiGLU, QC_ACT_SILU) */
    int32_t n_pos;       /* rows of the learned position table (0: rotary) */
    int32_t pos_offset;  /* the row of position 0 (OPT: 2) */
    int32_t post_norm;   /* opt: do_layer_norm_before = false (LayerNorm after each residual add) */
} qc_config;

enum { QC_ACT_SILU = 0, QC_ACT_GELU_TANH = 1, QC_ACT_GELU = 2, QC_ACT_RELU = 3 };

typedef struct qc_graph {
    qc_config cfg;
    qc_tensor *tensors; /* [n_tensors], in the order the frontend adds them */
    int32_t n_tensors, cap_tensors;
    qc_op *ops;         /* [n_ops], execution order */
    int32_t n_ops, cap_ops;
    int32_t buf_widths[32]; /* floats per token of buffer i */
    int32_t n_bufs;
    int32_t logits_buf;  /* buffer the LM_HEAD op writes */
    uint8_t *tokenizer;  /* qrt tokenizer blob (owned), see qrt/tokenizer.h */
    size_t tokenizer_size;
    uint8_t source_hash[16]; /* xxh3-128 of the checkpoint bytes (weights files) */
    char source_name[256];   /* file name (no directory) of the checkpoint */
    void *source;                /* what borrowed tensors point into when the graph owns it
                                    (GGUF: the open qc_gguf), else NULL */
    void (*source_free)(void *); /* releases `source`; called by qc_graph_free */
} qc_graph;

qc_graph *qc_graph_new(void);
void qc_graph_free(qc_graph *g); /* accepts NULL */

/* Adds a tensor (borrowed data); returns its id. */
int32_t qc_graph_add_tensor(qc_graph *g, const char *name, int32_t dtype, int32_t ndim,
                            const int64_t *shape, const void *data, size_t nbytes);
/* Adds a buffer of the given width; returns its id. */
int32_t qc_graph_add_buf(qc_graph *g, int32_t width);
/* Appends an op; returns its index. */
int32_t qc_graph_add_op(qc_graph *g, const qc_op *op);
/* An op with every id set to -1 and the given kind. */
qc_op qc_op_make(int32_t kind);

/* Element count of a tensor (product of its shape). */
int64_t qc_tensor_numel(const qc_tensor *t);
/* Bytes n elements of dtype take, 0 if dtype is unknown. */
size_t qc_dtype_size(int32_t dtype, int64_t n);
const char *qc_dtype_name(int32_t dtype);
const char *qc_op_name(int32_t kind);
const char *qc_op_symbol(int32_t kind); /* runtime kernel symbol, e.g. "qrt_k_linear" */

/* Checks every id, width and shape the ops refer to. 0 or -1 with err set. */
int qc_graph_verify(const qc_graph *g, qc_err *err);
/* Human-readable listing of the graph (for --dump-after). */
void qc_graph_dump(const qc_graph *g, FILE *f);

#endif
