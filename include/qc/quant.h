/*
 * qc/quant.h — numerical kernels the passes call. Pure functions over
 * arrays: no IR, no I/O, no global state.
 */
#ifndef QC_QUANT_H
#define QC_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "qrt/abi.h"

uint16_t qc_f32_to_f16(float f);  /* round to nearest even; overflow -> inf */
uint16_t qc_f32_to_bf16(float f); /* round to nearest even */
float qc_f16_to_f32(uint16_t h);
float qc_bf16_to_f32(uint16_t h);
/* Converts n elements between QRT_DT_F32/F16/BF16 (src and dst may not overlap). */
void qc_convert(const void *src, int32_t sdt, void *dst, int32_t ddt, size_t n);

#endif
