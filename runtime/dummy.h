/*
 * runtime/dummy.h — weights generated at start (qcc --dummy-weights),
 * runtime/dummy.c; the descriptor and the generator are in qrt/dummy.h,
 * the choices in docs/dummy-weights.md.
 */
#ifndef QRT_DUMMY_RT_H
#define QRT_DUMMY_RT_H

#include <stddef.h>
#include <stdint.h>

#include "qrt.h"
#include "qrt_cuda.h"

/* The pointer the generated code of a dummy-weight executable adds its
 * weight offsets to (NULL in other executables, which never read it). */
extern const uint8_t *qrt_dummy_base;

/* Called by qrt_model_bind: if m's weights section is a dummy-weight
 * descriptor, checks it and reserves the blob's address range (no memory
 * is committed: PROT_NONE, MAP_NORESERVE); qrt_dummy_base points there. */
void qrt_dummy_bind(const qrt_model *m);
/* Bytes of the generated blob; 0 for an executable with embedded weights. */
size_t qrt_dummy_size(void);
/* Fills the reserved range on the host (all cores) unless already done,
 * then makes it read-only. On the first fill of the process, one notice
 * line. When the host cannot hold the weights (or the descriptor is
 * broken) prints one error line and exits 1: nothing else can run them. */
void qrt_dummy_host(void);
/* Fills the device copy dst (qrt_dummy_size() bytes, already allocated) on
 * `stream` with the kernels of runtime/dummy_fill.cu and waits for them.
 * 0, or -1 with a one-line reason in msg. */
int qrt_dummy_gpu_fill(const qrt_cu_api *cu, qrt_cu_stream stream, qrt_cu_ptr dst, int32_t sms, char *msg,
                       size_t cap);

#endif
