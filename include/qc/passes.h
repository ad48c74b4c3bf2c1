/*
 * qc/passes.h — IR to IR, and the reference executor.
 *
 * The pipeline (tools/qcc.c lists it in order):
 *   qc_pass_convert  choose each tensor's storage dtype from --bits
 *                    requires: a verified graph; sets: tensor.out_dtype
 *   qc_pass_plan     lay the weights out in the blob (64-byte aligned, tensor
 *                    order) and write it; requires: out_dtype; sets:
 *                    blob_offset, blob_nbytes
 * Every pass returns 0 or -1 with err set, and leaves a graph that
 * qc_graph_verify accepts.
 */
#ifndef QC_PASSES_H
#define QC_PASSES_H

#include <stdint.h>
#include <stdio.h>

#include "qc/err.h"
#include "qc/ir.h"

typedef enum qc_method {
    QC_METHOD_GPTQ = 0,
    QC_METHOD_RTN = 1,
    QC_METHOD_AWQ = 2,        /* AWQ scales + clipping, then RTN */
    QC_METHOD_AWQ_GPTQ = 3,   /* AWQ scales + clipping, then GPTQ on the rescaled weights */
    QC_METHOD_SMOOTHQUANT = 4 /* SmoothQuant W8A8 (--bits 8 only): QRT_DT_I8 linears */
} qc_method;

typedef struct qc_opts {
    int32_t bits;          /* 32 (f32), 16 (f16), 8/4/3/2 (packed integer linears) */
    int32_t opt_level;     /* 0..3 */
    uint64_t seed;         /* calibration windows / self-generated calibration text */
    int32_t verbose;
    int32_t quiet;
    int32_t method;        /* qc_method */
    int32_t group_size;    /* 32/64/128..., -1 = per output channel */
    int32_t sym;           /* symmetric grid (no zero points) */
    int32_t act_order;     /* GPTQ: columns by decreasing Hessian diagonal */
    double damp;           /* GPTQ: fraction of mean(diag H) added to the diagonal */
    const char *calib;     /* calibration text: a file or a directory of *.txt; NULL: self-generated */
    const char *calib_tokens; /* or: token ids (int32 LE), consecutive windows of calib_seqlen */
    int32_t calib_samples; /* windows */
    int32_t calib_seqlen;  /* tokens per window (0: min(2048, context)) */
    int32_t threads;       /* worker threads; never changes the output */
    /* Progress of long stages (may be NULL): the driver draws it, so no
     * clock is read inside the passes. */
    void (*progress)(void *ud, const char *stage, int64_t done, int64_t total);
    void *progress_ud;
    double alpha;          /* SmoothQuant migration strength (0..1; the driver defaults it to 0.5) */
    int32_t head_bits;     /* --quantize-head: 8/4/3/2 packs the LM head by RTN; 0 keeps it f16 */
} qc_opts;

/* "gptq", "rtn", "awq", "awq+gptq", "smoothquant" ("?" for others). */
const char *qc_method_name(int32_t method);

int qc_pass_convert(qc_graph *g, const qc_opts *o, qc_err *err);
/* qc_pass_quantize: --bits 8/4/3/2 rewrite every LINEAR weight into a packed
 * QRT_DT_Q* tensor (owned bytes, quant/pack.c layout) by RTN or GPTQ;
 * embeddings and the LM head keep f16 (the head is packed by RTN at
 * o->head_bits when that is set, --quantize-head). GPTQ calibrates with the reference
 * executor layer by layer, true-sequentially (q/k/v, o, gate/up, down), each
 * layer's inputs computed from the already-quantized layers before it.
 * AWQ / AWQ+GPTQ: the same walk with AWQ's scales folded per layer first
 * and its clipping search before rounding; SmoothQuant: W8A8, QRT_DT_I8
 * (--bits 8 only; see qc_pass_smoothquant).
 * Requires: convert. Sets: out_dtype, owned, qgroup, qsym, op.p[2..3]. */
int qc_pass_quantize(qc_graph *g, const qc_opts *o, qc_err *err);

/* Calibration token windows (passes/calibrate.c). */
typedef struct qc_calib {
    int32_t n, len;  /* windows, tokens each */
    int32_t *tokens; /* [n, len] */
} qc_calib;
int qc_calib_load(qc_calib *c, const qc_graph *g, const qc_opts *o, qc_err *err);
void qc_calib_free(qc_calib *c);
/* Assigns offsets and writes the blob to f; *hash receives its xxh3-128. */
int qc_pass_plan(qc_graph *g, FILE *f, uint8_t hash[16], qc_err *err);
/* --dummy-weights (docs/dummy-weights.md): qc_pass_dummy_quantize gives
 * every LINEAR the packed dtype, group, sym and byte size qc_pass_quantize
 * would (--bits 8/4/3/2; inputs a multiple of 32), without values;
 * qc_pass_plan_dummy assigns the same offsets as qc_pass_plan and writes
 * to f, in place of the blob, the descriptor of the weights the executable
 * generates at start (qrt/dummy.h) + its xxh3-128 trailer; *hash is that
 * xxh3-128, *blob_bytes the size of the blob the code addresses. */
int qc_pass_dummy_quantize(qc_graph *g, const qc_opts *o, qc_err *err);
int qc_pass_plan_dummy(qc_graph *g, uint64_t seed, FILE *f, uint8_t hash[16], uint64_t *blob_bytes, qc_err *err);

/* The reference CPU executor: the specification generated code must match.
 * fp32 throughout, weights rounded through their storage dtype, plain loops
 * and OpenBLAS sgemm. */
typedef struct qc_exec qc_exec;
qc_exec *qc_exec_new(const qc_graph *g, int32_t n_ctx); /* NULL on OOM */
void qc_exec_free(qc_exec *e);
/* Runs tokens[0..n) at positions pos..pos+n-1 (n any size, pos + n <= n_ctx);
 * returns logits [n, vocab] (owned by e, valid until the next call). */
const float *qc_exec_forward(qc_exec *e, const int32_t *tokens, int32_t n, int32_t pos);
/* Called before each LINEAR / LM_HEAD op with its input [n, K]; a non-zero
 * return stops the run (qc_exec_run then returns 1). */
typedef int qc_exec_hook(void *ud, int32_t op_index, const float *in, int32_t n);
/* Runs only ops [begin, end) on the current buffers. 0, 1 (hook stopped),
 * -1 (out of memory). */
int qc_exec_run(qc_exec *e, const int32_t *tokens, int32_t n, int32_t pos, int32_t begin,
                int32_t end, qc_exec_hook *hook, void *ud);
/* Buffer `id`, grown to hold `rows` tokens (NULL on OOM). */
float *qc_exec_buf(qc_exec *e, int32_t id, int32_t rows);
/* Replaces the executor's f32 copy of a weight (e.g. by its quantized value). */
void qc_exec_set_weight(qc_exec *e, int32_t tensor, const float *w);


/* ---- AWQ and SmoothQuant (passes/awq.c, passes/smoothquant.c) ---- */

/* LINEAR ops [first, end) that read the same input buffer (q/k/v; o;
 * gate/up; down), and where a per-input-channel scale s of that input can be
 * folded (x / s computed by the op that produces it, W diag(s) in the
 * linears) without changing the float model:
 *   QC_FOLD_NORM  the input is an RMSNORM's or LAYERNORM's output read by
 *                 nothing else: its weight (and bias) is divided by s
 *   QC_FOLD_ROWS  the input is linear in the rows of one LINEAR (prev): an
 *                 ATTENTION output in its v rows (o_proj after v_proj), a
 *                 SILU_MUL output in its b rows (down_proj after up_proj),
 *                 a RELU output in its input's rows (fc2 after fc1; relu is
 *                 positively homogeneous; GELU is not, so no fold there);
 *                 the linear's bias is divided too;
 *                 input channel c maps to row
 *                     r = (c / head_dim / tie) * head_dim + c % head_dim
 *                 (tie = query heads per KV head; 1 and head_dim = K when
 *                 not through attention), so s must be equal over the tie
 *                 heads of a KV head
 *   QC_FOLD_NONE  anything else (the group is quantized without scales)
 * Structure only, no tensor names: every tensor a fold rewrites is used by
 * one op, and every buffer involved is read by nothing else. */
typedef enum qc_fold { QC_FOLD_NONE = 0, QC_FOLD_NORM = 1, QC_FOLD_ROWS = 2 } qc_fold;
typedef struct qc_lgroup {
    int32_t first, end; /* LINEAR ops [first, end) */
    int32_t in;         /* their input buffer */
    int32_t K;          /* its width (the ops' p0) */
    int32_t fold;       /* qc_fold */
    int32_t prev;       /* the RMSNORM (NORM) or LINEAR (ROWS) op the 1/s folds into */
    int32_t tie, head_dim;
} qc_lgroup;
/* The groups whose first op lies in [begin, end), in op order; returns how
 * many (at most cap are written). */
int32_t qc_linear_groups(const qc_graph *g, int32_t begin, int32_t end, qc_lgroup *out, int32_t cap);
/* 1 if LINEAR op i produces an ATTENTION's q or k (its output error is
 * seen through the softmax: AWQ does not clip these). */
int qc_linear_feeds_qk(const qc_graph *g, int32_t i);
/* Folds s into group G: its linears' columns times s, the producer (G->prev:
 * norm weight and bias, or linear rows and bias) divided by s. The executor
 * e (may be NULL) gets the new values. 0, or -1 if out of memory. */
int qc_fold_scales(qc_graph *g, const qc_lgroup *G, const float *s, qc_exec *e);
/* Makes tensor ti an owned f32 copy (dtype F32; out_dtype kept: the blob
 * still stores it as before) and returns its values, NULL on OOM. */
float *qc_tensor_own_f32(qc_tensor *t);

/* AWQ scale search for the layer whose ops are [begin, end): runs the
 * calibration windows (residual stream xs [cal->n, cal->len, dim] entering
 * the layer, buffer X) through the layer once, collecting per group the
 * Hessian and the mean |x| of its input; searches s (quant/awq.c) for every
 * foldable group and folds it: the linears' columns times s, the norm
 * weight or the previous linear's rows divided by s (owned f32 tensors,
 * given to the executor too). Quantizes nothing. 0 or -1 with err set. */
int qc_awq_scale_layer(qc_graph *g, const qc_opts *o, qc_exec *e, const qc_calib *cal,
                       const float *xs, int32_t X, int32_t begin, int32_t end, qc_err *err);
/* SmoothQuant W8A8: one calibration pass of the float model records max|x|
 * per input channel of every linear; groups after a norm get s_j =
 * max|x_j|^alpha / max|W_j|^(1-alpha) folded into the norm weight; then
 * every LINEAR becomes QRT_DT_I8 (int8 per output channel; the executor and
 * the runtime quantize activations per token). 0 or -1 with err set. */
int qc_pass_smoothquant(qc_graph *g, const qc_opts *o, qc_err *err);

#endif
