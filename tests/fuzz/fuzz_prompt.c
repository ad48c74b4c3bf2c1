/*
 * tests/fuzz/fuzz_prompt.c — libFuzzer target for prompt encoding with a
 * fixed, valid tokenizer (runtime/tokenizer.c: qrt_tok_encode / decode).
 *
 * The first byte picks one of the tokenizers below (converted once, at the
 * first run, from tokenizer.json by the frontend, so a change of the blob
 * format never strands this target); the rest is the prompt, arbitrary
 * bytes: invalid UTF-8, NULs, U+2581, special-token spellings. It is
 * encoded with and without parse_special, the ids checked to be in range
 * and decoded into exact and short buffers, and without parse_special
 * decode(encode(text)) must give the text back, byte for byte, by the same
 * rules tests/unit/test_tokenizer.c uses for random text:
 *   EXACT        the same bytes (byte-level BPE; SPM with Prepend/Replace)
 *   PREFIX_SPACE byte-level add_prefix_space: " " + text unless it starts
 *                with a space
 *   META_LEADING Metaspace pre-tokenizer: a leading space merges into the
 *                prepended U+2581 and is lost
 * For SentencePiece-style tokenizers a U+2581 in the text decodes to a
 * space, so the round trip is only asserted for texts without one.
 * Also: without parse_special, BOS / EOS never appear.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc/frontend.h"
#include "qrt/tokenizer.h"
#include "fuzz.h"

#ifndef QC_DATA
#error "QC_DATA (../shared/data) must be defined"
#endif
#ifndef QC_TESTS_DIR
#error "QC_TESTS_DIR (tests/) must be defined"
#endif

enum { RT_EXACT, RT_PREFIX_SPACE, RT_META_LEADING };

static const struct {
    const char *path;
    int rt;
    int spm; /* SentencePiece-style: U+2581 is a space */
} toks[] = {
    {QC_DATA "/stories260K/tokenizer.json", RT_EXACT, 1}, /* with tokenizer_config.json: BOS 1, EOS 2 */
    {QC_TESTS_DIR "/unit/tok_gpt2.json", RT_EXACT, 0},
    {QC_TESTS_DIR "/unit/tok_smol.json", RT_EXACT, 0},
    {QC_TESTS_DIR "/unit/tok_prefix.json", RT_PREFIX_SPACE, 0},
    {QC_TESTS_DIR "/unit/tok_llama3.json", RT_EXACT, 0},
    {QC_TESTS_DIR "/unit/tok_qwen2.json", RT_EXACT, 0},
    {QC_TESTS_DIR "/unit/tok_metaspace.json", RT_META_LEADING, 1},
    {QC_TESTS_DIR "/unit/tok_metaspace_nosplit.json", RT_META_LEADING, 1},
};
#define NTOK (sizeof toks / sizeof toks[0])

static qrt_tok *tok[NTOK];
static uint8_t *blob[NTOK];

static void free_all(void) {
    for (size_t i = 0; i < NTOK; i++) {
        qrt_tok_free(tok[i]);
        free(blob[i]);
    }
}

static void load_all(void) {
    for (size_t i = 0; i < NTOK; i++) {
        qc_err err;
        size_t size;
        char msg[256];
        FZ_CHECK(qc_tokenizer_load(&blob[i], &size, toks[i].path, &err) == 0, "setup: %s", err.msg);
        FZ_CHECK(qrt_tok_open(&tok[i], blob[i], size, msg, sizeof msg) == 0, "setup: %s: %s", toks[i].path, msg);
    }
    atexit(free_all);
}

static int has_meta(const char *s, size_t n) {
    for (size_t i = 0; i + 3 <= n; i++)
        if (memcmp(s + i, "\xE2\x96\x81", 3) == 0)
            return 1;
    return 0;
}

static void hexdump(const char *what, const char *s, size_t n) {
    fprintf(stderr, "%s (%zu bytes): ", what, n);
    for (size_t i = 0; i < n && i < 256; i++)
        fprintf(stderr, "%02x", (unsigned char)s[i]);
    fprintf(stderr, "\n");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!tok[0])
        load_all();
    if (size == 0)
        return 0;
    size_t k = data[0] % NTOK;
    const qrt_tok *t = tok[k];
    size_t len = size - 1;
    char *text = fz_dup(data + 1, len); /* exact size: ASan sees a read past the prompt */
    int32_t bos = qrt_tok_bos(t), eos = qrt_tok_eos(t);

    for (int special = 0; special < 2; special++) {
        size_t n, dl;
        int32_t *ids = fz_encode(t, text, len, special, &n);
        FZ_CHECK(ids != NULL || n == 0, "encode refused");
        if (!special)
            for (size_t i = 0; i < n; i++)
                FZ_CHECK(ids[i] != bos && ids[i] != eos, "%s: BOS/EOS id %d at %zu without parse_special",
                         toks[k].path, (int)ids[i], i);
        char *dec = fz_decode_all(t, ids, n, &dl);
        if (!special && !(toks[k].spm && has_meta(text, len))) {
            char *want = fz_alloc(len + 1);
            size_t wl = len;
            memcpy(want, text, len);
            if (toks[k].rt == RT_PREFIX_SPACE && len && text[0] != ' ') {
                want[0] = ' ';
                memcpy(want + 1, text, wl++);
            } else if (toks[k].rt == RT_META_LEADING && len && text[0] == ' ') {
                memmove(want, want + 1, --wl);
            }
            if (dl != wl || memcmp(dec, want, wl) != 0) {
                hexdump("text   ", text, len);
                hexdump("decoded", dec, dl);
                FZ_CHECK(0, "%s: decode(encode(text)) != text", toks[k].path);
            }
            free(want);
        }
        free(dec);
        free(ids);
    }
    free(text);
    return 0;
}
