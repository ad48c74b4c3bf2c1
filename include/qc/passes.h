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

typedef enum qc_method { QC_METHOD_GPTQ = 0, QC_METHOD_RTN = 1 } qc_method;

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
    int32_t calib_samples; /* windows */
    int32_t calib_seqlen;  /* tokens per window (0: min(2048, context)) */
    int32_t threads;       /* worker threads; never changes the output */
    /* Progress of long stages (may be NULL): the driver draws it, so no
     * clock is read inside the passes. */
    void (*progress)(void *ud, const char *stage, int64_t done, int64_t total);
    void *progress_ud;
} qc_opts;

int qc_pass_convert(qc_graph *g, const qc_opts *o, qc_err *err);
/* qc_pass_quantize: --bits 8/4/3/2 rewrite every LINEAR weight into a packed
 * QRT_DT_Q* tensor (owned bytes, quant/pack.c layout) by RTN or GPTQ;
 * embeddings and the LM head keep f16. GPTQ calibrates with the reference
 * executor layer by layer, true-sequentially (q/k/v, o, gate/up, down), each
 * layer's inputs computed from the already-quantized layers before it.
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

#endif
