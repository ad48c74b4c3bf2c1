/*
 * tests/fuzz/mkblob.c — tokenizer.json -> qrt tokenizer blob, as qcc embeds
 * it. Makes the seed blobs of the tok_blob corpus (tests/fuzz/make_seeds.py).
 *
 *   fuzz_mkblob TOKENIZER.json OUT
 */
#include <stdio.h>
#include <stdlib.h>

#include "qc/frontend.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s TOKENIZER.json OUT\n", argv[0]);
        return 2;
    }
    uint8_t *blob;
    size_t size;
    qc_err err;
    if (qc_tokenizer_load(&blob, &size, argv[1], &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    FILE *f = fopen(argv[2], "wb");
    int ok = f && fwrite(blob, 1, size, f) == size;
    if (f && fclose(f) != 0)
        ok = 0;
    free(blob);
    if (!ok) {
        fprintf(stderr, "%s: cannot write\n", argv[2]);
        return 1;
    }
    return 0;
}
