/*
 * runtime/chat.c — conversations with the model's own chat template.
 *
 *   -i             interactive: each line of stdin is one user message (a
 *                  -p prompt, if given, is the first); EOF ends the chat,
 *                  Ctrl-C stops the reply being written (at the prompt:
 *                  ends the chat)
 *   --chat -p X    one user message X, the reply, exit
 *   --system TEXT  the system message (default: the one the template
 *                  inserts when there is none, e.g. SmolLM2's; "" = none)
 *
 * qcc reduced the template to the text around each message (qrt/tokenizer.h
 * qrt_chat_tmpl). A turn's tokens are the template parts (special tokens
 * parsed) around the user's text (never parsed: typing "<|im_end|>" cannot
 * forge a turn), encoded as one text. The KV cache is kept across turns:
 * each turn feeds only its new tokens at the positions after the previous
 * ones, then samples the reply token by token (streamed to stdout) until the
 * end-of-turn token, EOS, -n tokens or a full context, and feeds the
 * template's closing part (e.g. "<|im_end|>\n") so the next turn follows
 * the history exactly as the template would render it. When a turn does not
 * fit in the context any more, the conversation starts over (notice on
 * stderr) with the same system message.
 *
 * --dump-ids (hidden) prints every batch of ids fed and every reply's ids
 * on stderr, one line each:
 *   [feed pos=P n=N] id id ...
 *   [reply pos=P n=N stop=eot|eos|limit|ctx|interrupt] id id ...
 * (tests/e2e/chat.sh reads them).
 *
 * --dump-logits FILE (hidden) writes the logits of every position of the
 * prompt (--ids 1,2,3, or -p TEXT tokenized as for generation) as f32
 * [n, vocab], and nothing else (tests/golden compare them with PyTorch's).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "qrt.h"
#include "qrt/tokenizer.h"

static volatile sig_atomic_t stop_now;
static void on_sigint(int sig) {
    (void)sig;
    stop_now = 1;
}

typedef struct chat {
    const qrt_model *m;
    const qrt_tok *tok;
    const qrt_chat_tmpl *ct;
    const qrt_args *a;
    qrt_ctx *c;
    qrt_sampler s;
    int32_t n_ctx, pos, eos, eot;
    const char *sys;   /* system message, NULL none */
    size_t sys_len;
} chat;

static void dump(const char *head, const int32_t *ids, size_t n) {
    fputs(head, stderr);
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
    fputc('\n', stderr);
}

/* The tokens of one user turn (the first one of a conversation when pos is 0). */
static int encode_turn(const chat *ch, const char *user, size_t ulen, int32_t **ids, size_t *n) {
    const qrt_chat_tmpl *t = ch->ct;
    qrt_tok_span sp[10];
    size_t k = 0;
#define PART(i) (sp[k++] = (qrt_tok_span){t->part[i], t->len[i], 1})
#define TEXT(s, l) (sp[k++] = (qrt_tok_span){s, l, 0})
    int first = ch->pos == 0, sys = first && ch->sys;
    if (first) PART(QRT_CHAT_PREFIX);
    if (sys && !(t->flags & QRT_CHAT_SYS_IN_USER)) {
        PART(QRT_CHAT_SYS_PRE);
        TEXT(ch->sys, ch->sys_len);
        PART(QRT_CHAT_SYS_SUF);
    }
    PART(QRT_CHAT_USER_PRE);
    if (sys && (t->flags & QRT_CHAT_SYS_IN_USER)) {
        PART(QRT_CHAT_SYS_PRE);
        TEXT(ch->sys, ch->sys_len);
        PART(QRT_CHAT_SYS_SUF);
    }
    TEXT(user, ulen);
    PART(QRT_CHAT_USER_SUF);
    PART(QRT_CHAT_ASST_PRE);
#undef PART
#undef TEXT
    return qrt_tok_encode_spans(ch->tok, sp, k, ids, n);
}

static void step_failed(void) {
    fprintf(stderr, "\nerror: the forward pass failed (rerun with --device cpu)\n");
}

/* Feeds ids at ch->pos, leaving the last one's logits for qrt_ctx_sample.
 * 0, or -1 if the step failed. */
static int feed(chat *ch, const int32_t *ids, size_t n) {
    if (ch->a->dump_ids) {
        char head[64];
        snprintf(head, sizeof head, "[feed pos=%d n=%zu]", ch->pos, n);
        dump(head, ids, n);
    }
    for (size_t i = 0; i < n; i += (size_t)ch->c->max_batch) {
        int32_t k = n - i < (size_t)ch->c->max_batch ? (int32_t)(n - i) : ch->c->max_batch;
        if (qrt_ctx_run(ch->c, ids + i, k, ch->pos)) {
            step_failed();
            return -1;
        }
        ch->pos += k;
    }
    return 0;
}

/* Prints piece `id`; the reply's leading whitespace is dropped. 0, or -1 if
 * stdout is gone. */
static int emit(const chat *ch, int32_t prev, int32_t id, int *at_start) {
    char buf[256];
    size_t n = qrt_tok_decode(ch->tok, prev, id, buf, sizeof buf), o = 0;
    if (n > sizeof buf) n = sizeof buf;
    while (*at_start && o < n && (buf[o] == ' ' || buf[o] == '\n')) o++;
    if (o < n) *at_start = 0;
    if (o < n && fwrite(buf + o, 1, n - o, stdout) != n - o) return -1;
    return fflush(stdout) == 0 ? 0 : -1;
}

/* One user message in, one reply out. 0, 1 stdout closed / out of memory. */
static int turn(chat *ch, const char *user, size_t ulen) {
    int32_t *ids = NULL;
    size_t n = 0;
    if (encode_turn(ch, user, ulen, &ids, &n)) {
        fprintf(stderr, "error: out of memory while tokenizing\n");
        return 1;
    }
    if (ch->pos + (int64_t)n >= ch->n_ctx && ch->pos > 0) {
        fprintf(stderr, "\nnotice: the conversation filled the context of %d tokens; starting over (raise -c)\n",
                ch->n_ctx);
        ch->pos = 0;
        free(ids);
        if (encode_turn(ch, user, ulen, &ids, &n)) {
            fprintf(stderr, "error: out of memory while tokenizing\n");
            return 1;
        }
    }
    if ((int64_t)n >= ch->n_ctx) {
        fprintf(stderr, "error: the message is %zu tokens; the context holds %d (raise -c)\n", n, ch->n_ctx);
        free(ids);
        return 0; /* interactive: the user may type a shorter one */
    }
    int fed = feed(ch, ids, n);
    int32_t prev = ids[n - 1];
    free(ids);
    if (fed) return 1;

    size_t cap = 64, made = 0;
    int32_t *out = ch->a->dump_ids ? malloc(cap * sizeof *out) : NULL;
    const char *why = "limit";
    int rc = 0, at_start = 1;
    int32_t start = ch->pos;
    stop_now = 0;
    while ((int64_t)made < ch->a->n_predict) {
        if (stop_now) {
            why = "interrupt";
            break;
        }
        int32_t next = qrt_ctx_sample(ch->c, &ch->s);
        if (next < 0) {
            step_failed();
            rc = 1;
            break;
        }
        if (next == ch->eot || next == ch->eos) {
            why = next == ch->eot ? "eot" : "eos";
            break;
        }
        if (emit(ch, prev, next, &at_start)) {
            rc = 1;
            break;
        }
        if (out && made == cap) {
            int32_t *q = realloc(out, 2 * cap * sizeof *q);
            if (!q) {
                free(out);
                out = NULL;
            } else {
                out = q, cap *= 2;
            }
        }
        if (out) out[made] = next;
        made++;
        prev = next;
        if (ch->pos >= ch->n_ctx) {
            why = "ctx";
            break;
        }
        if (qrt_ctx_run(ch->c, &next, 1, ch->pos++)) {
            step_failed();
            rc = 1;
            break;
        }
    }
    if (!rc && (fputc('\n', stdout) == EOF || fflush(stdout))) rc = 1;
    if (ch->a->dump_ids) {
        char head[96];
        snprintf(head, sizeof head, "[reply pos=%d n=%zu stop=%s]", start, made, why);
        dump(head, out, out ? made : 0);
    }
    free(out);
    if (!strcmp(why, "ctx")) {
        fprintf(stderr, "notice: context of %d tokens is full (raise -c)\n", ch->n_ctx);
        return rc;
    }
    /* Close the turn as the template does ("<|im_end|>\n"); the next turn
     * starts over if it does not fit. */
    qrt_tok_span close = {ch->ct->part[QRT_CHAT_ASST_SUF], ch->ct->len[QRT_CHAT_ASST_SUF], 1};
    if (qrt_tok_encode_spans(ch->tok, &close, 1, &ids, &n)) {
        fprintf(stderr, "error: out of memory while tokenizing\n");
        return 1;
    }
    if (!rc && n && ch->pos + (int64_t)n < ch->n_ctx && feed(ch, ids, n)) rc = 1;
    free(ids);
    return rc;
}

int qrt_chat(const qrt_model *m, const qrt_tok *tok, const qrt_args *a, int32_t n_ctx) {
    chat ch = {.m = m, .tok = tok, .a = a, .n_ctx = n_ctx, .eos = qrt_tok_eos(tok), .eot = qrt_tok_eot(tok)};
    ch.ct = qrt_tok_chat(tok);
    if (!ch.ct) {
        fprintf(stderr, "error: this model carries no chat template qcc recognises (ChatML, Llama 2, Llama 3, "
                        "Mistral, Zephyr); -i and --chat need one: use -p for plain completion\n");
        return 1;
    }
    if (a->chat && !a->interactive && !a->prompt) {
        fprintf(stderr, "error: --chat needs -p MESSAGE (or use -i)\n");
        return 1;
    }
    if (a->system) {
        ch.sys = *a->system ? a->system : NULL;
        ch.sys_len = strlen(a->system);
    } else if (ch.ct->len[QRT_CHAT_DEFAULT_SYS]) {
        ch.sys = ch.ct->part[QRT_CHAT_DEFAULT_SYS];
        ch.sys_len = ch.ct->len[QRT_CHAT_DEFAULT_SYS];
    }
    if (a->verbose) {
        char piece[64] = "";
        size_t pl = 0;
        if (ch.eot >= 0) { /* special tokens decode to nothing: show the template's closing text */
            pl = ch.ct->len[QRT_CHAT_ASST_SUF] < sizeof piece - 1 ? ch.ct->len[QRT_CHAT_ASST_SUF] : sizeof piece - 1;
            memcpy(piece, ch.ct->part[QRT_CHAT_ASST_SUF], pl);
            while (pl && (piece[pl - 1] == '\n' || piece[pl - 1] == ' ')) piece[--pl] = 0;
        }
        fprintf(stderr, "chat template: %s, end of turn: id %d (%s), system message: %s\n",
                qrt_chat_family_name(ch.ct->family), ch.eot, piece,
                ch.sys ? (a->system ? "--system" : "the template's default") : "none");
    }
    ch.c = qrt_ctx_new(m, n_ctx);
    uint64_t seed = a->seed_set ? a->seed : (uint64_t)time(NULL);
    if (!ch.c || qrt_sampler_init(&ch.s, m->cfg[QRT_CFG_VOCAB], a->temp, a->top_k, a->top_p, seed)) {
        fprintf(stderr, "error: out of memory for a context of %d tokens\n", n_ctx);
        qrt_ctx_free(ch.c);
        return 1;
    }
    /* Ctrl-C: no SA_RESTART, so a read of stdin returns and ends the chat. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);

    int rc = 0;
    if (a->prompt) rc = turn(&ch, a->prompt, strlen(a->prompt));
    if (a->interactive) {
        int tty = isatty(0);
        char *line = NULL;
        size_t cap = 0;
        while (!rc) {
            if (tty && (fputs("> ", stdout) == EOF || fflush(stdout))) break;
            stop_now = 0;
            ssize_t len = getline(&line, &cap, stdin);
            if (len < 0) {
                if (tty) fputc('\n', stdout);
                break;
            }
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
            if (len == 0) continue;
            rc = turn(&ch, line, (size_t)len);
        }
        free(line);
    }
    qrt_sampler_free(&ch.s);
    qrt_ctx_free(ch.c);
    return rc;
}

/* ---- --dump-logits -------------------------------------------------------- */

int qrt_dump_logits(const qrt_model *m, const qrt_tok *tok, const qrt_args *a, int32_t n_ctx) {
    int32_t vocab = m->cfg[QRT_CFG_VOCAB], *seq = NULL;
    size_t n = 0;
    if (a->ids) { /* "1,2,3" */
        size_t cap = 1;
        for (const char *p = a->ids; *p; p++) cap += *p == ',';
        seq = malloc(cap * sizeof *seq);
        const char *p = a->ids;
        while (seq && *p) {
            char *end;
            errno = 0;
            long v = strtol(p, &end, 10);
            if (end == p || errno || v < 0 || v >= vocab || (*end && *end != ',')) {
                fprintf(stderr, "error: --ids: '%s' is not a comma-separated list of token ids below %d\n", a->ids,
                        vocab);
                free(seq);
                return 1;
            }
            seq[n++] = (int32_t)v;
            p = *end ? end + 1 : end;
        }
    } else {
        const char *prompt = a->prompt ? a->prompt : "";
        int32_t *ids = NULL, bos = qrt_tok_bos(tok);
        size_t k = 0;
        if (!qrt_tok_encode(tok, prompt, strlen(prompt), 0, &ids, &k)) {
            int add = bos >= 0 && (qrt_tok_add_bos(tok) || k == 0);
            if ((seq = malloc((k + 1) * sizeof *seq))) {
                if (add) seq[n++] = bos;
                memcpy(seq + n, ids, k * sizeof *ids);
                n += k;
            }
            free(ids);
        }
    }
    if (!seq) {
        fprintf(stderr, "error: out of memory\n");
        return 1;
    }
    if (n == 0 || (int64_t)n > n_ctx) {
        fprintf(stderr, "error: --dump-logits: %zu prompt tokens (need 1 to -c %d)\n", n, n_ctx);
        free(seq);
        return 1;
    }
    qrt_ctx *c = qrt_ctx_new(m, n_ctx);
    FILE *f = c ? fopen(a->dump_logits, "wb") : NULL;
    int rc = 0;
    /* Ctrl-C: stop after the chunk under way; the file keeps whole rows. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    stop_now = 0;
    size_t done = 0;
    if (!c) {
        fprintf(stderr, "error: out of memory for a context of %d tokens\n", n_ctx);
        rc = 1;
    } else if (!f) {
        fprintf(stderr, "error: %s: cannot write: %s\n", a->dump_logits, strerror(errno));
        rc = 1;
    }
    for (size_t i = 0; !rc && !stop_now && i < n; i += (size_t)c->max_batch) {
        int32_t k = n - i < (size_t)c->max_batch ? (int32_t)(n - i) : c->max_batch;
        const float *lg = qrt_ctx_forward(c, seq + i, k, (int32_t)i, 1);
        if (!lg) {
            step_failed();
            rc = 1;
        } else if (fwrite(lg, sizeof(float), (size_t)k * vocab, f) != (size_t)k * vocab) {
            fprintf(stderr, "error: %s: write failed\n", a->dump_logits);
            rc = 1;
        } else {
            done = i + (size_t)k;
        }
    }
    if (f && fclose(f) && !rc) {
        fprintf(stderr, "error: %s: write failed\n", a->dump_logits);
        rc = 1;
    }
    if (!rc && stop_now) {
        fprintf(stderr, "notice: interrupted after %zu of %zu positions (%s holds their logits)\n", done, n,
                a->dump_logits);
        rc = 130;
    }
    if (a->verbose) dump("[ids]", seq, n);
    qrt_ctx_free(c);
    free(seq);
    return rc;
}
