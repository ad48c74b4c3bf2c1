/*
 * frontend/tokblob.h — the qrt tokenizer blob under construction (internal
 * to frontend/).
 *
 * Two readers fill a qc_tokb: tokenizer.json (tokenizer_json.c) and GGUF
 * metadata (gguf_meta.c). Each decides the kind, flags, vocabulary, types,
 * merges and bos/eos/unk; this module indexes the vocabulary and writes the
 * blob whose format runtime/tokenizer.c documents (and reads). The numbers
 * below are that format's: they must match runtime/tokenizer.c.
 */
#ifndef QC_TOKBLOB_H
#define QC_TOKBLOB_H

#include <stddef.h>
#include <stdint.h>

#include "qc/err.h"

/* Header flags (blob version 1). */
enum {
    QC_TOKF_ADD_BOS = 1u << 0,
    QC_TOKF_ADD_EOS = 1u << 1,
    QC_TOKF_BYTE_FALLBACK = 1u << 2,
    QC_TOKF_FUSE_UNK = 1u << 3,
    QC_TOKF_IGNORE_MERGES = 1u << 4,
    QC_TOKF_PREFIX = 1u << 5,
    QC_TOKF_PREFIX_FIRST = 1u << 6,
    QC_TOKF_PREFIX_IF_MISSING = 1u << 7,
    QC_TOKF_SPLIT_DIGITS = 1u << 8,
    QC_TOKF_SPM_SPLIT = 1u << 9,
    QC_TOKF_STRIP_LEADING = 1u << 10,
};
/* Token types. */
enum { QC_TOKT_NORMAL = 0, QC_TOKT_SPECIAL = 1, QC_TOKT_BYTE = 2, QC_TOKT_UNUSED = 3, QC_TOKT_ADDED = 4 };
/* Byte-level split patterns. */
enum { QC_PRETOK_NONE = 0, QC_PRETOK_GPT2 = 1, QC_PRETOK_LLAMA3 = 2, QC_PRETOK_QWEN2 = 3 };

#define QC_TOKB_MAX_VOCAB (1 << 22) /* ids beyond 4M are refused (the largest real vocabularies are ~256k) */

typedef struct qc_tokb_str {
    const char *s; /* borrowed (JSON tree, GGUF mmap); not NUL-terminated in general */
    size_t len;
} qc_tokb_str;

typedef struct qc_tokb {
    uint32_t kind, flags, pretok; /* qrt_tok_kind, QC_TOKF_*, QC_PRETOK_* */
    int32_t n_vocab;
    qc_tokb_str *str; /* [n_vocab] */
    uint8_t *type;    /* [n_vocab] QC_TOKT_* */
    int32_t *slot;    /* string -> id, open addressing, -1 empty (qc_tokb_index) */
    size_t mask;
    uint32_t *merges; /* [3 * n_merges] (left, right, result); rank = index */
    size_t n_merges;
    int32_t bos, eos, unk; /* -1 none */
    uint8_t *chat;         /* chat section (owned; qc_chat_section), NULL: none -> blob version 1 */
    size_t chat_len;
} qc_tokb;

/* Allocates str (empty) and type (all UNUSED) for n_vocab ids. 0 or -1 (out of memory). */
int qc_tokb_alloc(qc_tokb *b, int32_t n_vocab);
/* Builds the string -> id index over every id that is not UNUSED (the first
 * id wins when two hold the same string). 0 or -1 (out of memory). */
int qc_tokb_index(qc_tokb *b);
/* The id of string s[0..n) (first id holding it), or -1. Needs qc_tokb_index. */
int32_t qc_tokb_find(const qc_tokb *b, const char *s, size_t n);
/* "<0xHH>" with upper-case hex, SentencePiece's byte-fallback spelling. */
int qc_tokb_is_byte_token(const char *s, size_t n);
/* Writes the blob (malloc'd, caller frees). `file` labels errors. 0 or -1. */
int qc_tokb_write(const qc_tokb *b, const char *file, qc_err *err, uint8_t **blob, size_t *size);
/* Recognises the family of a chat template (the Jinja source from
 * tokenizer_config.json / GGUF tokenizer.chat_template; frontend/chat_template.c)
 * and stores the description the runtime needs in b->chat. Needs
 * qc_tokb_index and bos/eos. 1 recognised, 0 not (b->chat stays NULL),
 * -1 out of memory. */
int qc_chat_section(qc_tokb *b, const char *tmpl, size_t len);
/* Frees str, type, slot, merges and chat (not the strings); accepts a zeroed qc_tokb. */
void qc_tokb_free(qc_tokb *b);

#endif
