/*
 * qc/json.h — a strict RFC 8259 JSON parser for config.json, tokenizer.json
 * and safetensors headers.
 *
 * The whole document is parsed into one tree owned by the returned root;
 * qc_json_free releases it all. Strings are decoded (escapes, \uXXXX with
 * surrogate pairs) to UTF-8 and NUL-terminated; `len` gives the byte length
 * (a string may contain an escaped NUL). Every node records the byte offset
 * where it starts, so errors can point into the input. Object members keep
 * their document order; duplicate keys are an error. Nesting depth is capped
 * (QC_JSON_MAX_DEPTH) so hostile input cannot overflow the stack.
 */
#ifndef QC_JSON_H
#define QC_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "qc/err.h"

#define QC_JSON_MAX_DEPTH 128

typedef enum qc_json_type {
    QC_JSON_NULL,
    QC_JSON_FALSE,
    QC_JSON_TRUE,
    QC_JSON_NUMBER,
    QC_JSON_STRING,
    QC_JSON_ARRAY,
    QC_JSON_OBJECT
} qc_json_type;

typedef struct qc_json qc_json;
struct qc_json {
    qc_json_type type;
    size_t offset;      /* byte offset of the value's first character in the input */
    double num;         /* QC_JSON_NUMBER */
    int is_int;         /* number was written without fraction/exponent and fits int64 */
    int64_t i64;        /* its value when is_int */
    char *str;          /* QC_JSON_STRING: UTF-8, NUL-terminated */
    size_t len;         /* byte length of str */
    qc_json *items;     /* ARRAY: elements; OBJECT: member values */
    char **keys;        /* OBJECT: member keys (UTF-8, NUL-terminated) */
    size_t *key_lens;   /* OBJECT: byte lengths of keys */
    size_t n;           /* ARRAY/OBJECT: element / member count */
};

/* Parses text[0..len). `fname` only labels errors: "FILE: offset N: what".
 * Returns 0 and *out (free with qc_json_free), or -1 and err. */
int qc_json_parse(qc_json **out, const char *text, size_t len, const char *fname, qc_err *err);
void qc_json_free(qc_json *root); /* accepts NULL */

/* Member of an object by key, NULL if absent or v is not an object. */
const qc_json *qc_json_get(const qc_json *v, const char *key);
/* Typed getters: return 0 and the value, or -1 if absent or of another type. */
int qc_json_get_int(const qc_json *obj, const char *key, int64_t *out);
int qc_json_get_num(const qc_json *obj, const char *key, double *out);
const char *qc_json_get_str(const qc_json *obj, const char *key); /* NULL if absent / not a string */

#endif
