/*
 * qc/frontend.h — checkpoint in, IR out.
 *
 *   qc_st_*        safetensors reader: a single .safetensors file or a sharded
 *                  model.safetensors.index.json; files are mmap'd, tensors are
 *                  borrowed views; every offset, size and shape is validated
 *                  before any byte of data is trusted.
 *   qc_config_*    config.json of the Llama family (llama, mistral, qwen2,
 *                  smollm) into qc_config.
 *   qc_tokenizer_* tokenizer.json into the qrt tokenizer blob the executable
 *                  embeds (qrt/tokenizer.h).
 *   qc_model_load  all of the above into a qc_graph.
 */
#ifndef QC_FRONTEND_H
#define QC_FRONTEND_H

#include <stddef.h>
#include <stdint.h>

#include "qc/err.h"
#include "qc/ir.h"

#define QC_ST_MAX_DIMS 8
#define QC_ST_MAX_HEADER (100u << 20) /* header lengths above 100 MiB are refused */

typedef struct qc_st_tensor {
    const char *name;            /* NUL-terminated, owned by the qc_st */
    int32_t dtype;               /* qrt_dtype (F32, F16, BF16) */
    int32_t ndim;
    int64_t shape[QC_ST_MAX_DIMS];
    const void *data;            /* view into the mmap'd file */
    size_t nbytes;
    const char *file;            /* path of the file that holds it */
    uint64_t file_offset;        /* absolute byte offset of data in that file */
} qc_st_tensor;

typedef struct qc_st qc_st;

/* Opens `path` (.safetensors or .index.json). 0 or -1 with err. */
int qc_st_open(qc_st **out, const char *path, qc_err *err);
void qc_st_free(qc_st *st); /* accepts NULL */
size_t qc_st_count(const qc_st *st);
const qc_st_tensor *qc_st_at(const qc_st *st, size_t i); /* sorted by name */
const qc_st_tensor *qc_st_find(const qc_st *st, const char *name); /* NULL if absent */
/* xxh3-128 over every file's bytes in file-name order (for --info). */
void qc_st_hash(const qc_st *st, uint8_t out[16]);

/* Reads config.json at `path` into cfg. 0 or -1 with err naming the key. */
int qc_config_load(qc_config *cfg, const char *path, qc_err *err);

/* Reads tokenizer.json (and tokenizer_config.json beside it when present)
 * into a newly malloc'd qrt tokenizer blob. */
int qc_tokenizer_load(uint8_t **blob, size_t *size, const char *path, qc_err *err);

/* Resolves MODEL (a .safetensors, an .index.json or a directory) and loads
 * weights, config.json and tokenizer.json into a new graph. `st_out`
 * receives the open checkpoint, which must outlive the graph (the graph
 * borrows its tensors). */
int qc_model_load(qc_graph **g, qc_st **st_out, const char *model_path, qc_err *err);

#endif
