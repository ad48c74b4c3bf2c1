/*
 * tests/unit/test_tokenizer_wikitext.c — the whole wikitext-2 test text
 * (1.3 MB, one SentencePiece "word") through stories260K's tokenizer.json
 * must give exactly the 815,070 ids the HF `tokenizers` library gives
 * (BOS first). Also a timing guard: the BPE must be O(n log n).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qc/frontend.h"
#include "qrt/tokenizer.h"

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot open\n", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(b);
        return NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

int main(void) {
    uint8_t *blob;
    size_t blob_size, text_len, ref_len;
    qc_err err;
    if (qc_tokenizer_load(&blob, &blob_size, QC_DATA "/stories260K/tokenizer.json", &err)) {
        fprintf(stderr, "FAIL: %s\n", err.msg);
        return 1;
    }
    qrt_tok *t;
    char msg[256];
    if (qrt_tok_open(&t, blob, blob_size, msg, sizeof msg)) {
        fprintf(stderr, "FAIL: %s\n", msg);
        return 1;
    }
    char *text = slurp(QC_DATA "/text/wikitext2_test_gptq_joined.txt", &text_len);
    char *ref = slurp(QC_DATA "/stories260K/wikitext2_test_gptq_joined.ids.i32", &ref_len);
    if (!text || !ref)
        return 1;
    size_t n_ref = ref_len / 4;

    clock_t t0 = clock();
    int32_t *ids;
    size_t n;
    if (qrt_tok_encode(t, text, text_len, 0, &ids, &n)) {
        fprintf(stderr, "FAIL: encode\n");
        return 1;
    }
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    int fails = 0;
    if (!qrt_tok_add_bos(t) || qrt_tok_bos(t) != 1) {
        fprintf(stderr, "FAIL: expected add_bos with BOS 1, got %d / %d\n", qrt_tok_add_bos(t), qrt_tok_bos(t));
        fails++;
    }
    /* the reference is BOS + ids */
    size_t n_got = n + 1;
    size_t first = (size_t)-1;
    for (size_t i = 0; i < n_got && i < n_ref; i++) {
        int32_t r, g = i == 0 ? 1 : ids[i - 1];
        memcpy(&r, ref + 4 * i, 4);
        if (r != g) {
            first = i;
            fprintf(stderr, "FAIL: first mismatch at index %zu: got %d, want %d\n", i, g, r);
            break;
        }
    }
    if (first != (size_t)-1)
        fails++;
    if (n_got != n_ref) {
        fprintf(stderr, "FAIL: got %zu ids, want %zu\n", n_got, n_ref);
        fails++;
    }
    /* decoding the ids gives the text back */
    size_t o = 0;
    char *dec = malloc(text_len + 64);
    int32_t prev = qrt_tok_bos(t);
    for (size_t i = 0; i < n && o <= text_len; i++) {
        size_t need = qrt_tok_decode(t, prev, ids[i], dec + o, text_len + 64 - o);
        o += need;
        prev = ids[i];
    }
    if (o != text_len || memcmp(dec, text, text_len) != 0) {
        fprintf(stderr, "FAIL: decode does not give the text back (%zu vs %zu bytes)\n", o, text_len);
        fails++;
    }
    printf("wikitext: %zu bytes -> %zu ids (+BOS) in %.2f s\n", text_len, n, secs);
    if (secs > 10) {
        fprintf(stderr, "FAIL: encoding took %.1f s\n", secs);
        fails++;
    }
    free(dec);
    free(ids);
    free(text);
    free(ref);
    qrt_tok_free(t);
    free(blob);
    if (fails)
        return 1;
    printf("ok\n");
    return 0;
}
