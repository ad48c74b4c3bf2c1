/*
 * passes/convert.c — choose the storage dtype of every weight from --bits.
 *
 *   --bits 32  everything f32
 *   --bits 16  matrices (linears, embeddings, LM head) f16; 1-D tensors
 *              (norm weights, biases) stay f32: they are tiny and f16 would
 *              only cost accuracy
 * Requires: a verified graph. Sets: tensor.out_dtype. The bytes themselves
 * are converted while qc_pass_plan writes the blob, so no copy is held.
 */
#include "qc/passes.h"

int qc_pass_convert(qc_graph *g, const qc_opts *o, qc_err *err) {
    if (o->bits != 16 && o->bits != 32)
        return qc_err_set(err, "--bits %d: only 16 and 32 are implemented in this build", o->bits);
    for (int32_t i = 0; i < g->n_tensors; i++) {
        qc_tensor *t = &g->tensors[i];
        t->out_dtype = (o->bits == 16 && t->ndim == 2) ? QRT_DT_F16 : QRT_DT_F32;
    }
    return 0;
}
