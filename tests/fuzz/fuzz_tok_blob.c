/*
 * tests/fuzz/fuzz_tok_blob.c — libFuzzer target for the tokenizer blob
 * reader (runtime/tokenizer.c, qrt_tok_open).
 *
 * The bytes are a blob as embedded in an executable. The runtime validates
 * every count and offset before it trusts one, so any blob it opens must
 * then work without touching memory outside it (the fuzzer's buffer has
 * exactly `size` bytes, so ASan sees any read past the end): fixed texts
 * encoded with and without specials, ids in range, every id decoded at the
 * start, after BOS and after its neighbour (fz_exercise_tok in fuzz.h).
 * A refused blob leaves no tokenizer and a message.
 */
#include <stdint.h>
#include <stdlib.h>

#include "qrt/tokenizer.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    qrt_tok *t = NULL;
    char msg[256] = "";
    if (qrt_tok_open(&t, data, size, msg, sizeof msg) != 0) {
        FZ_CHECK(t == NULL, "failed open left a tokenizer");
        fz_note("refused", msg);
        fz_check_msg(msg, "tokenizer blob");
        return 0;
    }
    FZ_CHECK(t != NULL, "open succeeded without a tokenizer");
    fz_note("accepted", NULL);
    fz_exercise_tok(t);
    qrt_tok_free(t);
    return 0;
}
