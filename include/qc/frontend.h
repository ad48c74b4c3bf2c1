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
/* --dummy-weights: a Llama-family config.json alone into a graph whose
 * tensors have shapes and no data (data NULL; F16 matrices, F32 vectors),
 * with a byte-level tokenizer of vocab_size ids (BOS / EOS from the config,
 * else 1 / 2) and the config's xxh3-128 as the source hash. The executable
 * fills the weights at start (docs/dummy-weights.md). */
int qc_model_load_dummy(qc_graph **g, const char *config_path, qc_err *err);

/* ---- GGUF (frontend/gguf.c, frontend/gguf_meta.c) --------------------------
 *
 *   qc_gguf_*      GGUF v2/v3 reader: the file is mmap'd read-only; header,
 *                  metadata (every value type, arrays of scalars or strings),
 *                  tensor infos and general.alignment are validated before a
 *                  byte of tensor data is trusted. Tensors are borrowed views.
 *   qc_gguf_dequant  ggml block formats -> f32.
 *   qc_gguf_config / qc_gguf_tokenizer  llama metadata into qc_config and the
 *                  qrt tokenizer blob.
 * Errors: "PATH: what (offset N)", "PATH: tensor 'X': what (offset N)",
 * "PATH: key 'K': what (offset N)" (N = absolute byte offset in PATH).
 * qc_model_load also takes a .gguf path: *st_out is then NULL and the graph
 * owns the open file (qc_graph.source), which its tensors may borrow from.
 */

/* Metadata value types (GGUF spec numbering). */
typedef enum qc_gguf_vtype {
    QC_GGUF_U8 = 0, QC_GGUF_I8 = 1, QC_GGUF_U16 = 2, QC_GGUF_I16 = 3, QC_GGUF_U32 = 4, QC_GGUF_I32 = 5,
    QC_GGUF_F32 = 6, QC_GGUF_BOOL = 7, QC_GGUF_STRING = 8, QC_GGUF_ARRAY = 9, QC_GGUF_U64 = 10,
    QC_GGUF_I64 = 11, QC_GGUF_F64 = 12
} qc_gguf_vtype;

/* Tensor types this reader dequantizes (ggml numbering; other ggml types are
 * parsed, sized and refused when a model needs them). */
enum {
    QC_GGML_F32 = 0, QC_GGML_F16 = 1, QC_GGML_Q4_0 = 2, QC_GGML_Q4_1 = 3, QC_GGML_Q5_0 = 6,
    QC_GGML_Q5_1 = 7, QC_GGML_Q8_0 = 8, QC_GGML_Q2_K = 10, QC_GGML_Q3_K = 11, QC_GGML_Q4_K = 12,
    QC_GGML_Q5_K = 13, QC_GGML_Q6_K = 14, QC_GGML_BF16 = 30
};

#define QC_GGUF_MAX_DIMS 4
#define QC_GGUF_MAX_COUNT (1u << 24) /* tensor / key / array-of-string counts above 16M are refused */

typedef struct qc_gguf_kv {
    const char *key;     /* NUL-terminated, owned by the qc_gguf */
    uint32_t type;       /* qc_gguf_vtype of the value */
    uint32_t elem_type;  /* arrays: type of the elements (never ARRAY); scalars: == type */
    uint64_t n;          /* arrays: element count; scalars: 1 */
    const uint8_t *data; /* view of the value (arrays: of the first element; strings: u64 length, bytes) */
    uint64_t offset;     /* absolute file offset of the key */
} qc_gguf_kv;

typedef struct qc_gguf_tensor {
    const char *name;    /* NUL-terminated, owned by the qc_gguf */
    uint32_t type;       /* ggml type */
    uint32_t ndim;       /* 1..4 */
    int64_t ne[QC_GGUF_MAX_DIMS]; /* elements per dimension, INNERMOST FIRST (ne[0] = row length);
                                     unused dims are 1; an HF [N, K] weight has ne = {K, N} */
    const void *data;    /* view into the mmap'd file (aligned to general.alignment) */
    size_t nbytes;
    uint64_t file_offset; /* absolute byte offset of data */
    uint64_t info_offset; /* absolute byte offset of the tensor's info entry (for errors) */
} qc_gguf_tensor;

typedef struct qc_gguf_str {
    const char *s; /* view into the file, NOT NUL-terminated */
    size_t len;
} qc_gguf_str;

typedef struct qc_gguf qc_gguf;

/* Opens and validates a GGUF file. 0 or -1 with err. */
int qc_gguf_open(qc_gguf **out, const char *path, qc_err *err);
void qc_gguf_free(qc_gguf *g); /* accepts NULL */
const char *qc_gguf_path(const qc_gguf *g);
uint32_t qc_gguf_version(const qc_gguf *g);
uint32_t qc_gguf_alignment(const qc_gguf *g);
size_t qc_gguf_n_kv(const qc_gguf *g);
const qc_gguf_kv *qc_gguf_kv_at(const qc_gguf *g, size_t i);                 /* file order */
const qc_gguf_kv *qc_gguf_find_kv(const qc_gguf *g, const char *key);        /* NULL if absent */
size_t qc_gguf_n_tensors(const qc_gguf *g);
const qc_gguf_tensor *qc_gguf_tensor_at(const qc_gguf *g, size_t i);         /* file order */
const qc_gguf_tensor *qc_gguf_find_tensor(const qc_gguf *g, const char *name); /* NULL if absent */
/* xxh3-128 of the whole file (canonical bytes), as qc_st_hash. */
void qc_gguf_hash(const qc_gguf *g, uint8_t out[16]);

/* Typed metadata getters: 1 found (value in *out), 0 absent, -1 with err
 * ("PATH: key 'K': expected ... (offset N)") when the value has another type.
 * _int takes any integer type (u64 above INT64_MAX is an error); _float
 * takes f32, f64 or an integer; _str gives a view (not NUL-terminated). */
int qc_gguf_get_int(const qc_gguf *g, const char *key, int64_t *out, qc_err *err);
int qc_gguf_get_float(const qc_gguf *g, const char *key, double *out, qc_err *err);
int qc_gguf_get_bool(const qc_gguf *g, const char *key, int *out, qc_err *err);
int qc_gguf_get_str(const qc_gguf *g, const char *key, qc_gguf_str *out, qc_err *err);
/* An array whose elements are of type elem (-1: any): 1 with *out, 0 absent, -1 with err. */
int qc_gguf_get_arr(const qc_gguf *g, const char *key, int32_t elem, const qc_gguf_kv **out, qc_err *err);
/* Element i of a numeric array as double / int64 (i < kv->n). */
double qc_gguf_arr_float(const qc_gguf_kv *kv, uint64_t i);
int64_t qc_gguf_arr_int(const qc_gguf_kv *kv, uint64_t i);
/* The strings of a string array into out[kv->n] (views, validated by open). */
void qc_gguf_arr_strings(const qc_gguf_kv *kv, qc_gguf_str *out);
/* "PATH: key 'K': <fmt> (offset N)" into err; returns -1. */
int qc_gguf_key_err(const qc_gguf *g, const qc_gguf_kv *kv, const char *key, qc_err *err, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* ggml type name ("Q4_K"; "type N" for numbers it does not know, in buf). */
const char *qc_gguf_type_name(uint32_t type, char buf[16]);
/* Block geometry of a ggml type: elements per block and bytes per block.
 * 0, or -1 for a type number it does not know. */
int qc_gguf_type_size(uint32_t type, int64_t *block, int64_t *bytes);
/* 1 if qc_gguf_dequant handles the type (F32, F16, BF16, Q4_0, Q4_1, Q5_0,
 * Q5_1, Q8_0, Q2_K..Q6_K). */
int qc_gguf_can_dequant(uint32_t type);
/* Dequantizes n elements (a whole number of blocks) of `type` from src
 * (which holds exactly the bytes n elements take) into dst[n]. 0, or -1 if
 * the type is not handled or n is not a multiple of its block. */
int qc_gguf_dequant(uint32_t type, const void *src, float *dst, int64_t n);

/* llama metadata (general.architecture "llama") into cfg, checked against the
 * tensors (vocab from the token list / embedding, tied output when output.weight
 * is absent or byte-identical to token_embd.weight). 0 or -1 with err. */
int qc_gguf_config(const qc_gguf *g, qc_config *cfg, qc_err *err);
/* tokenizer.ggml.* metadata into a newly malloc'd qrt tokenizer blob:
 * "llama" (SentencePiece BPE, merges synthesized from the scores) or "gpt2"
 * (byte-level BPE, tokenizer.ggml.merges, pre-tokenizer from tokenizer.ggml.pre). */
int qc_gguf_tokenizer(const qc_gguf *g, uint8_t **blob, size_t *size, qc_err *err);

#endif
