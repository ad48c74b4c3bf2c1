/*
 * tests/qm_stubs.h — the symbols of a generated model object, empty, for
 * test programs that link the runtime (ctx.c binds these in an executable)
 * and build their qrt_model by hand. Include once per program.
 */
#ifndef QC_TESTS_QM_STUBS_H
#define QC_TESTS_QM_STUBS_H
#include "qrt.h"

const int32_t qm_config[QRT_CFG_COUNT];
const int32_t qm_buf_widths[1];
void qm_forward(qrt_ctx *ctx);
void qm_forward(qrt_ctx *ctx) { (void)ctx; }
const uint8_t qm_weights_start[16], qm_weights_end[1], qm_tokenizer_start[16], qm_tokenizer_end[1];
const uint8_t qm_info_start[16], qm_info_end[1];

#endif
