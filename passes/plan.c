/*
 * passes/plan.c — lay the weights out in the blob the executable embeds.
 *
 * Tensors are placed in graph order, each at a 64-byte aligned offset
 * (cache lines; also what vector loads and a future GPU upload want), and
 * written converted to their out_dtype. Padding bytes are zero, so the blob
 * — and its xxh3-128 in --info — depends only on the weights and options.
 * The blob ends with a 16-byte trailer, its own xxh3-128 (canonical byte
 * order), which the executable checks before trusting the weights.
 * Requires: out_dtype set (qc_pass_convert). Sets: blob_offset, blob_nbytes.
 */
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "qc/passes.h"
#include "qc/quant.h"

#define ALIGN 64
#define CHUNK (1 << 16) /* elements converted per write */

int qc_pass_plan(qc_graph *g, FILE *f, uint8_t hash[16], qc_err *err) {
    XXH3_state_t *st = XXH3_createState();
    uint8_t *buf = malloc((size_t)CHUNK * 4);
    static const uint8_t zeros[ALIGN];
    if (!st || !buf) {
        XXH3_freeState(st);
        free(buf);
        return qc_err_set(err, "out of memory");
    }
    XXH3_128bits_reset(st);
    uint64_t off = 0;
    int rc = 0;
    for (int32_t i = 0; i < g->n_tensors && !rc; i++) {
        qc_tensor *t = &g->tensors[i];
        size_t pad = (size_t)((ALIGN - off % ALIGN) % ALIGN);
        if (pad) {
            if (fwrite(zeros, 1, pad, f) != pad) rc = -1;
            XXH3_128bits_update(st, zeros, pad);
            off += pad;
        }
        int64_t n = qc_tensor_numel(t);
        t->blob_offset = off;
        if (qc_dtype_packed(t->out_dtype)) { /* packed by qc_pass_quantize: copied as is */
            t->blob_nbytes = t->nbytes;
            if (fwrite(t->owned, 1, t->nbytes, f) != t->nbytes) rc = -1;
            XXH3_128bits_update(st, t->owned, t->nbytes);
            off += t->blob_nbytes;
            continue;
        }
        t->blob_nbytes = qc_dtype_size(t->out_dtype, n);
        size_t in_es = qc_dtype_size(t->dtype, 1), out_es = qc_dtype_size(t->out_dtype, 1);
        for (int64_t j = 0; j < n && !rc; j += CHUNK) {
            size_t k = (size_t)(n - j < CHUNK ? n - j : CHUNK);
            qc_convert((const uint8_t *)t->data + (size_t)j * in_es, t->dtype, buf, t->out_dtype, k);
            if (fwrite(buf, out_es, k, f) != k) rc = -1;
            XXH3_128bits_update(st, buf, k * out_es);
        }
        off += t->blob_nbytes;
    }
    XXH128_hash_t h = XXH3_128bits_digest(st);
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, h);
    memcpy(hash, c.digest, 16);
    XXH3_freeState(st);
    free(buf);
    /* Integrity trailer: the executable re-hashes the blob at start. */
    if (!rc && fwrite(hash, 1, 16, f) != 16) rc = -1;
    if (rc || fflush(f)) return qc_err_set(err, "writing the weight blob failed (disk full?)");
    return 0;
}
