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

/* ---- chat ----------------------------------------------------------------
 * A blob may carry the model's chat template, reduced by qcc to its family
 * and the text around each message (frontend/chat_template.c). A turn is
 *   [PREFIX once at the start of the conversation]
 *   [SYS_PRE system SYS_SUF]        (QRT_CHAT_SYS_IN_USER: inside the first
 *                                    user message, right after USER_PRE)
 *   USER_PRE user USER_SUF ASST_PRE  reply  ASST_SUF
 * The parts contain special tokens as text (encode them with parse_special);
 * the reply ends at the end-of-turn token `eot`, which ASST_SUF starts with
 * (the Llama 2 family: after a space). DEFAULT_SYS is the system message
 * the template inserts when the conversation has none (empty: none). */
enum { QRT_CHAT_NONE = 0, QRT_CHAT_CHATML = 1, QRT_CHAT_LLAMA2 = 2, QRT_CHAT_MISTRAL = 3, QRT_CHAT_ZEPHYR = 4,
       QRT_CHAT_LLAMA3 = 5, QRT_CHAT_FAMILIES };
enum { QRT_CHAT_PREFIX, QRT_CHAT_SYS_PRE, QRT_CHAT_SYS_SUF, QRT_CHAT_USER_PRE, QRT_CHAT_USER_SUF,
       QRT_CHAT_ASST_PRE, QRT_CHAT_ASST_SUF, QRT_CHAT_DEFAULT_SYS, QRT_CHAT_N_PARTS };
#define QRT_CHAT_SYS_IN_USER 1u

typedef struct qrt_chat_tmpl {
    uint32_t family;  /* QRT_CHAT_* */
    uint32_t flags;   /* QRT_CHAT_SYS_IN_USER */
    int32_t eot;      /* end-of-turn token id (-1: none) */
    const char *part[QRT_CHAT_N_PARTS]; /* in the blob, not NUL-terminated */
    size_t len[QRT_CHAT_N_PARTS];
} qrt_chat_tmpl;

/* The chat template, NULL if the blob has none. */
const qrt_chat_tmpl *qrt_tok_chat(const qrt_tok *t);
/* "chatml", "llama2", ... ("none" for 0, "?" beyond). */
const char *qrt_chat_family_name(uint32_t family);
/* The end-of-turn token of the chat template (-1 if none). */
int32_t qrt_tok_eot(const qrt_tok *t);

/* Encodes the concatenation of n spans as one text (BPE merges and
 * pre-tokenization run across span boundaries, as if the whole were one
 * string), matching special tokens only inside spans with parse_special set
 * (a special token must lie within one such span). Added (non-special)
 * literal tokens match everywhere. As qrt_tok_encode otherwise. */
typedef struct qrt_tok_span {
    const char *text;
    size_t len;
    int parse_special;
} qrt_tok_span;
int qrt_tok_encode_spans(const qrt_tok *t, const qrt_tok_span *spans, size_t n_spans, int32_t **ids,
                         size_t *n);

#endif
