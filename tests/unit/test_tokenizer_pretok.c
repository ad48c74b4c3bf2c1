/*
 * tests/unit/test_tokenizer_pretok.c — the hand-written pre-tokenizers of
 * runtime/tokenizer.c against the regexes themselves.
 *
 * tok_pretok.expect holds, for ~350 strings (corner cases and seeded random
 * mixes of ASCII, contractions, whitespace kinds, Latin-1, Greek, Cyrillic,
 * Arabic, Devanagari, CJK, emoji, combining marks, Unicode digits), where
 * HF `tokenizers` splits them with the GPT-2, Llama-3 and Qwen2 patterns
 * (made by tok_make_fixtures.py). This file includes the runtime source to
 * reach its static helpers; it links nothing else.
 */
#include "../../runtime/tokenizer.c"

static int fails;

static size_t unhex(const char *h, uint8_t *out) {
    size_t n = 0;
    if (h[0] == '-')
        return 0;
    for (; h[0] && h[1]; h += 2) {
        unsigned v;
        sscanf(h, "%2x", &v);
        out[n++] = (uint8_t)v;
    }
    return n;
}

static size_t piece(int pat, const uint8_t *s, size_t i, size_t n) {
    return pat == PRETOK_GPT2 ? gpt2_piece(s, i, n) : llama3_piece(s, i, n, pat == PRETOK_LLAMA3 ? 3 : 1);
}

int main(void) {
    FILE *f = fopen(QC_TESTS_DIR "/unit/tok_pretok.expect", "r");
    if (!f) {
        fprintf(stderr, "FAIL: cannot open tok_pretok.expect\n");
        return 1;
    }
    static char line[1 << 16];
    static uint8_t text[1 << 15];
    size_t n = 0, cases[PRETOK_COUNT] = {0};
    int pat = PRETOK_GPT2;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (line[0] == 'P') {
            pat = strcmp(line + 2, "gpt2") == 0 ? PRETOK_GPT2 : strcmp(line + 2, "llama3") == 0 ? PRETOK_LLAMA3
                                                                                                : PRETOK_QWEN2;
        } else if (line[0] == 'T') {
            n = unhex(line + 2, text);
        } else if (line[0] == 'S') {
            char got[1 << 14];
            size_t o = 0;
            for (size_t i = 0; i < n;) {
                size_t e = piece(pat, text, i, n);
                if (e <= i || e > n) {
                    o += (size_t)snprintf(got + o, sizeof got - o, " <stuck at %zu>", i);
                    break;
                }
                o += (size_t)snprintf(got + o, sizeof got - o, "%s%zu", o ? " " : "", e);
                i = e;
                if (o > sizeof got - 32)
                    break;
            }
            cases[pat]++;
            if (strcmp(got, line + 2) != 0 && fails++ < 10) {
                fprintf(stderr, "FAIL: pattern %d splits '%.*s' at\n  %s, HF at\n  %s\n", pat, (int)n, (char *)text,
                        got, line + 2);
            }
        }
    }
    fclose(f);
    for (int p = PRETOK_GPT2; p < PRETOK_COUNT; p++)
        if (cases[p] < 100) {
            fprintf(stderr, "FAIL: only %zu cases for pattern %d\n", cases[p], p);
            fails++;
        }

    /* the GPT-2 byte map is a bijection onto its 256 code points */
    for (int b = 0; b < 256; b++) {
        uint32_t cp = byte_cp((uint8_t)b);
        if (cp_byte(cp) != b || (cp >= 256 && cp >= 256 + 68)) {
            fprintf(stderr, "FAIL: byte map at %d\n", b);
            fails++;
        }
    }
    if (byte_cp(' ') != 0x120 || byte_cp('\n') != 0x10A || byte_cp(0xAD) != 0x143 || byte_cp('a') != 'a' ||
        cp_byte(0x2581) != -1 || cp_byte(0xAD) != -1) {
        fprintf(stderr, "FAIL: byte map values\n");
        fails++;
    }
    /* UTF-8 decoding refuses overlongs, surrogates, > U+10FFFF, truncation */
    static const char *const bad[] = {"\xC0\x80", "\xE0\x80\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xE4\xB8",
                                      "\x80", "\xFF"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint32_t cp;
        if (utf8_dec((const uint8_t *)bad[i], strlen(bad[i]), &cp) != 0) {
            fprintf(stderr, "FAIL: utf8_dec accepts bad sequence %zu\n", i);
            fails++;
        }
    }
    uint32_t cp;
    if (utf8_dec((const uint8_t *)"\xF0\x9F\x98\x80", 4, &cp) != 4 || cp != 0x1F600) {
        fprintf(stderr, "FAIL: utf8_dec of U+1F600\n");
        fails++;
    }
    if (fails)
        return 1;
    printf("pre-tokenizer: %zu / %zu / %zu splits agree with HF (gpt2 / llama3 / qwen2)\nok\n", cases[1], cases[2],
           cases[3]);
    return 0;
}
