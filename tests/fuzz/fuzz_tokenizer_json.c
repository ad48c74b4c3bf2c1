/*
 * tests/fuzz/fuzz_tokenizer_json.c — libFuzzer target for the tokenizer.json
 * converter (frontend/tokenizer_json.c, qc_tokenizer_load) and, through the
 * blobs it writes, the runtime tokenizer (runtime/tokenizer.c).
 *
 * The bytes are tokenizer.json in a private scratch directory. If they
 * contain CONFIG_SEP, the part after it becomes tokenizer_config.json beside
 * it (the converter reads BOS / EOS / add_bos from there), so both files are
 * fuzzed. When the converter accepts the input, the runtime must accept the
 * blob it wrote (the two halves of one format), and the tokenizer must
 * survive fz_exercise_tok: fixed texts encoded with and without specials,
 * ids in range, every id decoded into exact and short buffers.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qc/frontend.h"
#include "qrt/tokenizer.h"
#include "fuzz.h"

#define CONFIG_SEP "\n@@tokenizer_config.json@@\n"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *part[2];
    size_t len[2];
    size_t np = fz_split(data, size, CONFIG_SEP, part, len, 2);
    char path[512], cfg[512];
    if (np == 2)
        fz_write("tokenizer_config.json", part[1], len[1], cfg, sizeof cfg);
    else
        fz_remove("tokenizer_config.json");
    fz_write("tokenizer.json", part[0], len[0], path, sizeof path);

    uint8_t *blob = NULL;
    size_t bsize = 0;
    qc_err err;
    err.msg[0] = 0;
    if (qc_tokenizer_load(&blob, &bsize, path, &err) != 0) {
        FZ_CHECK(blob == NULL && bsize == 0, "failed load left a blob");
        fz_note("refused", err.msg);
        fz_check_msg(err.msg, fz_dir());
        return 0;
    }
    FZ_CHECK(blob != NULL && bsize > 0, "load succeeded without a blob");
    fz_note("accepted", NULL);
    qrt_tok *t = NULL;
    char msg[256] = "";
    FZ_CHECK(qrt_tok_open(&t, blob, bsize, msg, sizeof msg) == 0,
             "the runtime refuses a blob the frontend wrote (%zu bytes): %s", bsize, msg);
    fz_exercise_tok(t);
    qrt_tok_free(t);
    free(blob);
    return 0;
}
