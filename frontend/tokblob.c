/*
 * frontend/tokblob.c — indexes a tokenizer vocabulary and writes the qrt
 * tokenizer blob (frontend/tokblob.h; format in runtime/tokenizer.c and
 * docs/tokenizer.md). Shared by tokenizer.json and GGUF metadata.
 */
#include <stdlib.h>
#include <string.h>

#include "tokblob.h"

int qc_tokb_alloc(qc_tokb *b, int32_t n_vocab) {
    b->n_vocab = n_vocab;
    b->str = calloc((size_t)n_vocab, sizeof *b->str);
    b->type = malloc((size_t)n_vocab);
    if (!b->str || !b->type)
        return -1;
    memset(b->type, QC_TOKT_UNUSED, (size_t)n_vocab);
    return 0;
}

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
    return h ^ h >> 29;
}

int32_t qc_tokb_find(const qc_tokb *b, const char *s, size_t n) {
    for (size_t h = hash_bytes(s, n) & b->mask;; h = (h + 1) & b->mask) {
        int32_t id = b->slot[h];
        if (id < 0)
            return -1;
        if (b->str[id].len == n && memcmp(b->str[id].s, s, n) == 0)
            return id;
    }
}

int qc_tokb_index(qc_tokb *b) {
    size_t cap = 16;
    while (cap < 2 * (size_t)b->n_vocab)
        cap <<= 1;
    free(b->slot);
    b->slot = malloc(cap * sizeof *b->slot);
    if (!b->slot)
        return -1;
    memset(b->slot, 0xFF, cap * sizeof *b->slot);
    b->mask = cap - 1;
    for (int32_t id = 0; id < b->n_vocab; id++) {
        if (b->type[id] == QC_TOKT_UNUSED)
            continue;
        const qc_tokb_str *t = &b->str[id];
        size_t h = hash_bytes(t->s, t->len) & b->mask;
        while (b->slot[h] >= 0 &&
               !(b->str[b->slot[h]].len == t->len && memcmp(b->str[b->slot[h]].s, t->s, t->len) == 0))
            h = (h + 1) & b->mask;
        if (b->slot[h] < 0)
            b->slot[h] = id;
    }
    return 0;
}

int qc_tokb_is_byte_token(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>')
        return 0;
    for (int k = 3; k < 5; k++)
        if (!((s[k] >= '0' && s[k] <= '9') || (s[k] >= 'A' && s[k] <= 'F')))
            return 0;
    return 1;
}

static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}

int qc_tokb_write(const qc_tokb *c, const char *file, qc_err *err, uint8_t **blob, size_t *size) {
    uint64_t pool = 0;
    for (int32_t i = 0; i < c->n_vocab; i++)
        pool += c->type[i] == QC_TOKT_UNUSED ? 0 : c->str[i].len;
    uint64_t nv = (uint64_t)c->n_vocab;
    uint64_t off_types = 64 + 4 * (nv + 1), off_merges = off_types + ((nv + 3) & ~(uint64_t)3);
    uint64_t off_pool = off_merges + 12 * (uint64_t)c->n_merges, total = off_pool + pool + c->chat_len;
    if (pool > UINT32_MAX || c->chat_len > UINT32_MAX || total > SIZE_MAX)
        return qc_err_set(err, "%s: tokenizer too large (%llu bytes of token text)", file,
                          (unsigned long long)pool);
    uint8_t *b = calloc(1, (size_t)total);
    if (!b)
        return qc_err_set(err, "%s: out of memory", file);
    memcpy(b, "QTOK", 4);
    put32(b + 4, c->chat ? 2 : 1); /* version 2 = version 1 + a chat section after the pool */
    put32(b + 8, 64);
    put32(b + 12, c->kind);
    put32(b + 16, c->flags);
    put32(b + 20, c->pretok);
    put32(b + 24, (uint32_t)c->n_vocab);
    put32(b + 28, (uint32_t)c->n_merges);
    put32(b + 32, (uint32_t)c->bos);
    put32(b + 36, (uint32_t)c->eos);
    put32(b + 40, (uint32_t)c->unk);
    put32(b + 44, (uint32_t)pool);
    if (c->chat) {
        put32(b + 48, (uint32_t)c->chat_len);
        memcpy(b + off_pool + pool, c->chat, c->chat_len);
    }
    uint32_t o = 0;
    for (int32_t i = 0; i < c->n_vocab; i++) {
        put32(b + 64 + 4 * (size_t)i, o);
        b[off_types + (size_t)i] = c->type[i];
        if (c->type[i] != QC_TOKT_UNUSED) {
            memcpy(b + off_pool + o, c->str[i].s, c->str[i].len);
            o += (uint32_t)c->str[i].len;
        }
    }
    put32(b + 64 + 4 * nv, o);
    for (size_t i = 0; i < 3 * c->n_merges; i++)
        put32(b + off_merges + 4 * i, c->merges[i]);
    *blob = b;
    *size = (size_t)total;
    return 0;
}

void qc_tokb_free(qc_tokb *b) {
    free(b->str);
    free(b->type);
    free(b->slot);
    free(b->merges);
    free(b->chat);
    b->chat = NULL;
    b->chat_len = 0;
    b->str = NULL;
    b->type = NULL;
    b->slot = NULL;
    b->merges = NULL;
}
