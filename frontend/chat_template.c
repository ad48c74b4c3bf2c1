/*
 * frontend/chat_template.c — a model's chat template, recognised at compile
 * time and reduced to the few strings the runtime needs (no Jinja).
 *
 * Chat templates are Jinja programs (tokenizer_config.json "chat_template",
 * GGUF tokenizer.chat_template). Almost every model uses one of a handful of
 * families, which differ only in the text around each message. qcc looks for
 * the family's marker strings in the template source and writes a small
 * description (the blob's chat section, format in runtime/tokenizer.c and
 * docs/tokenizer.md):
 *
 *   family   marker                          per message                              end of turn
 *   chatml   <|im_start|>                    <|im_start|>ROLE\n TEXT <|im_end|>\n     <|im_end|>
 *   llama3   <|start_header_id|>             <|start_header_id|>ROLE<|end_header_id|>\n\n TEXT <|eot_id|>
 *                                                                                     <|eot_id|>
 *   llama2   [INST] and <<SYS>>              BOS[INST] <<SYS>>\nSYS\n<</SYS>>\n\nUSER [/INST] REPLY EOS
 *                                                                                     EOS
 *   mistral  [INST] without <<SYS>>          BOS once, [INST] SYS\n\nUSER [/INST]REPLY EOS
 *                                                                                     EOS
 *   zephyr   <|user|> and <|assistant|>      <|ROLE|>\n TEXT EOS\n                    EOS
 *
 * ChatML templates that insert a default system message when the
 * conversation has none (SmolLM2, Qwen2) carry it as a literal inside
 * '<|im_start|>system\n...<|im_end|>'; it is extracted when that literal
 * holds plain text. A template that uses bos_token outside [INST] gets BOS
 * once at the start of the conversation. Templates of no known family (and
 * templates whose marker tokens are not in the vocabulary) give no section:
 * the executable then refuses -i / --chat with a clear message.
 */
#include <stdlib.h>
#include <string.h>

#include "qrt/tokenizer.h"
#include "tokblob.h"

static const char *find(const char *h, size_t n, const char *needle, size_t from) {
    size_t m = strlen(needle);
    for (size_t i = from; m <= n && i <= n - m; i++)
        if (memcmp(h + i, needle, m) == 0)
            return h + i;
    return NULL;
}

static int has(const char *h, size_t n, const char *needle) { return find(h, n, needle, 0) != NULL; }

/* A growable byte buffer; a failed allocation sticks in `oom`. */
typedef struct buf {
    uint8_t *p;
    size_t n, cap;
    int oom;
} buf;

static void put(buf *b, const void *s, size_t n) {
    if (b->oom || n == 0)
        return;
    if (b->n + n > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 256;
        while (nc < b->n + n)
            nc *= 2;
        uint8_t *q = realloc(b->p, nc);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q, b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void put32(buf *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, x, 4);
}

/* The text of token id (empty for -1). */
static void tok_text(const qc_tokb *b, int32_t id, const char **s, size_t *n) {
    *s = "";
    *n = 0;
    if (id >= 0 && id < b->n_vocab) {
        *s = b->str[id].s;
        *n = b->str[id].len;
    }
}

/* Is `s` a literal token (special or added) of the vocabulary? */
static int is_literal(const qc_tokb *b, const char *s) {
    int32_t id = qc_tokb_find(b, s, strlen(s));
    return id >= 0 && (b->type[id] == QC_TOKT_SPECIAL || b->type[id] == QC_TOKT_ADDED);
}

/* ChatML's default system message: the plain text of a literal
 * '<|im_start|>system\n TEXT <|im_end|>' in the template ("\n" written as a
 * newline or as the two characters of a Jinja escape). Unescaped into out. */
static void default_system(const char *t, size_t n, buf *out) {
    static const char open[] = "<|im_start|>system";
    for (const char *p = find(t, n, open, 0); p; p = find(t, n, open, (size_t)(p - t) + 1)) {
        size_t i = (size_t)(p - t) + strlen(open);
        if (i < n && t[i] == '\n')
            i += 1;
        else if (i + 1 < n && t[i] == '\\' && t[i + 1] == 'n')
            i += 2;
        else
            continue;
        const char *end = find(t, n, "<|im_end|>", i);
        if (!end)
            return;
        size_t e = (size_t)(end - t);
        int plain = e > i;
        for (size_t k = i; k < e && plain; k++)
            plain = !strchr("{}'\"+%", t[k]) || (t[k] == '\'' && k > i && t[k - 1] == '\\');
        if (!plain)
            continue;
        for (size_t k = i; k < e; k++) {
            char c = t[k];
            if (c == '\\' && k + 1 < e) {
                char d = t[++k];
                c = d == 'n' ? '\n' : d == 't' ? '\t' : d;
            }
            put(out, &c, 1);
        }
        return;
    }
}

int qc_chat_section(qc_tokb *b, const char *t, size_t n) {
    const char *bos, *eos;
    size_t nbos, neos;
    tok_text(b, b->bos, &bos, &nbos);
    tok_text(b, b->eos, &eos, &neos);
    enum { PRE, SYS_PRE, SYS_SUF, USER_PRE, USER_SUF, ASST_PRE, ASST_SUF, DEF_SYS, NP };
    buf part[NP];
    memset(part, 0, sizeof part);
    uint32_t family = 0, flags = 0;
    int32_t eot = -1;
#define P(k, lit) put(&part[k], lit, strlen(lit))
#define PB(k, s, len) put(&part[k], s, len)
    if (has(t, n, "<|im_start|>")) {
        if (!is_literal(b, "<|im_start|>") || !is_literal(b, "<|im_end|>"))
            return 0;
        family = QRT_CHAT_CHATML;
        eot = qc_tokb_find(b, "<|im_end|>", 10);
        if (has(t, n, "bos_token") && nbos)
            PB(PRE, bos, nbos);
        P(SYS_PRE, "<|im_start|>system\n");
        P(SYS_SUF, "<|im_end|>\n");
        P(USER_PRE, "<|im_start|>user\n");
        P(USER_SUF, "<|im_end|>\n");
        P(ASST_PRE, "<|im_start|>assistant\n");
        P(ASST_SUF, "<|im_end|>\n");
        default_system(t, n, &part[DEF_SYS]);
    } else if (has(t, n, "<|start_header_id|>")) {
        if (!is_literal(b, "<|start_header_id|>") || !is_literal(b, "<|end_header_id|>") ||
            !is_literal(b, "<|eot_id|>"))
            return 0;
        family = QRT_CHAT_LLAMA3;
        eot = qc_tokb_find(b, "<|eot_id|>", 10);
        if (nbos)
            PB(PRE, bos, nbos);
        P(SYS_PRE, "<|start_header_id|>system<|end_header_id|>\n\n");
        P(SYS_SUF, "<|eot_id|>");
        P(USER_PRE, "<|start_header_id|>user<|end_header_id|>\n\n");
        P(USER_SUF, "<|eot_id|>");
        P(ASST_PRE, "<|start_header_id|>assistant<|end_header_id|>\n\n");
        P(ASST_SUF, "<|eot_id|>");
    } else if (has(t, n, "[INST]") && has(t, n, "[/INST]")) {
        if (!neos)
            return 0;
        eot = b->eos;
        flags |= QRT_CHAT_SYS_IN_USER;
        if (has(t, n, "<<SYS>>")) { /* Llama 2: BOS before every [INST] */
            family = QRT_CHAT_LLAMA2;
            PB(USER_PRE, bos, nbos);
            P(USER_PRE, "[INST] ");
            P(SYS_PRE, "<<SYS>>\n");
            P(SYS_SUF, "\n<</SYS>>\n\n");
            P(ASST_SUF, " ");
        } else { /* Mistral: BOS once */
            family = QRT_CHAT_MISTRAL;
            PB(PRE, bos, nbos);
            P(USER_PRE, "[INST] ");
            P(SYS_SUF, "\n\n");
        }
        P(USER_SUF, " [/INST]");
        PB(ASST_SUF, eos, neos);
    } else if (has(t, n, "<|user|>") && has(t, n, "<|assistant|>")) {
        if (!neos)
            return 0;
        family = QRT_CHAT_ZEPHYR;
        eot = b->eos;
        if (has(t, n, "bos_token") && nbos)
            PB(PRE, bos, nbos);
        P(SYS_PRE, "<|system|>\n");
        PB(SYS_SUF, eos, neos);
        P(SYS_SUF, "\n");
        P(USER_PRE, "<|user|>\n");
        PB(USER_SUF, eos, neos);
        P(USER_SUF, "\n");
        P(ASST_PRE, "<|assistant|>\n");
        PB(ASST_SUF, eos, neos);
        P(ASST_SUF, "\n");
    }
#undef P
#undef PB
    int rc = family ? 1 : 0;
    buf sec = {0};
    if (family) {
        put(&sec, "QCHT", 4);
        put32(&sec, family);
        put32(&sec, (uint32_t)eot);
        put32(&sec, flags);
        put32(&sec, NP);
        for (int k = 0; k < NP; k++) {
            put32(&sec, (uint32_t)part[k].n);
            put(&sec, part[k].p, part[k].n);
            rc = part[k].oom ? -1 : rc;
        }
        rc = sec.oom ? -1 : rc;
    }
    for (int k = 0; k < NP; k++)
        free(part[k].p);
    if (rc == 1) {
        free(b->chat);
        b->chat = sec.p;
        b->chat_len = sec.n;
    } else {
        free(sec.p);
    }
    return rc;
}
