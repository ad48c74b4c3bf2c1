/*
 * qrt/tokenizer.h — the tokenizer every executable carries.
 *
 * qcc converts tokenizer.json (or GGUF metadata) into a compact binary blob
 * (format documented in runtime/tokenizer.c and docs/formats.md) embedded in
 * the executable; libqrt reads it in place. Two model kinds:
 *   QRT_TOK_SPM_BPE   SentencePiece-style BPE: spaces become U+2581, a U+2581
 *                     is prepended, characters missing from the vocabulary fall
 *                     back to <0xXX> byte tokens (Llama, Mistral, TinyStories).
 *   QRT_TOK_BYTE_BPE  GPT-2 byte-level BPE: bytes mapped to printable code
 *                     points, GPT-2 pre-tokenizer split, ranked merges
 *                     (GPT-2, OPT, SmolLM2, Qwen2).
 * Special tokens (added_tokens with special=true) are matched literally in
 * the input text only when the caller asks for it (parse_special).
 */
#ifndef QRT_TOKENIZER_H
#define QRT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef enum qrt_tok_kind { QRT_TOK_SPM_BPE = 1, QRT_TOK_BYTE_BPE = 2 } qrt_tok_kind;

typedef struct qrt_tok qrt_tok;

/* Opens a blob (borrowed; must outlive the tokenizer). 0, or -1 with a
 * one-line reason in err[errlen]. */
int qrt_tok_open(qrt_tok **out, const uint8_t *blob, size_t size, char *err, size_t errlen);
void qrt_tok_free(qrt_tok *t); /* accepts NULL */

int32_t qrt_tok_vocab(const qrt_tok *t);
int32_t qrt_tok_bos(const qrt_tok *t); /* -1 if none */
int32_t qrt_tok_eos(const qrt_tok *t); /* -1 if none */
int qrt_tok_add_bos(const qrt_tok *t); /* 1 if the model expects BOS first */

/* Encodes text[0..len) (arbitrary bytes; invalid UTF-8 goes through byte
 * fallback) without BOS. *ids is malloc'd (caller frees), *n its count.
 * 0 or -1 (out of memory). */
int qrt_tok_encode(const qrt_tok *t, const char *text, size_t len, int parse_special,
                   int32_t **ids, size_t *n);

/* The bytes token `id` stands for when it follows token `prev` (-1 at the
 * start): byte tokens give their byte, U+2581 gives a space, a leading
 * space right after BOS / at the start is dropped (SPM), special tokens give
 * nothing. Writes at most cap bytes to buf and returns the byte count the
 * piece needs (like snprintf, without a NUL). */
size_t qrt_tok_decode(const qrt_tok *t, int32_t prev, int32_t id, char *buf, size_t cap);

#endif
