/*
 * runtime/main.c — main() of every executable qcc writes.
 *
 * Modes: generate (default), --perplexity FILE, --bench, --info. The model
 * itself (qm_forward, its constants and its embedded data) comes from the
 * object qcc generated; this file only drives it.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "qrt.h"
#include "qrt/tokenizer.h"
#include "qrt_cuda.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Ctrl-C: every mode polls this between forward calls (a chunk of at most
 * max_batch tokens, or one token), keeps what it finished, says so on one
 * notice line and exits 130. Polling rather than exiting from the handler
 * keeps stdout whole: no half-written line, no lost stdio buffer. */
static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

/* Feeds ids[0..n) starting at position pos in chunks of max_batch, leaving
 * the last token's logits for qrt_ctx_sample. 0, or -1 after a GPU error or
 * when Ctrl-C stopped it before the last chunk (check `interrupted` first). */
static int feed(qrt_ctx *c, const int32_t *ids, int32_t n, int32_t pos) {
    for (int32_t i = 0; i < n; i += c->max_batch) {
        if (interrupted) return -1;
        int32_t k = n - i < c->max_batch ? n - i : c->max_batch;
        if (qrt_ctx_run(c, ids + i, k, pos + i)) return -1;
    }
    return 0;
}

static void step_failed(const qrt_ctx *c) {
    fprintf(stderr, "\nerror: GPU: %s (rerun with --device cpu)\n", qrt_ctx_error(c));
}

static int emit(const qrt_tok *tok, int32_t prev, int32_t id) {
    char buf[256];
    size_t n = qrt_tok_decode(tok, prev, id, buf, sizeof buf);
    if (n > sizeof buf) n = sizeof buf;
    if (n && fwrite(buf, 1, n, stdout) != n) return -1;
    return fflush(stdout) == 0 ? 0 : -1;
}

static int generate(const qrt_model *m, const qrt_tok *tok, const qrt_args *a, int32_t n_ctx) {
    int32_t *ids = NULL;
    size_t n_prompt = 0;
    const char *prompt = a->prompt ? a->prompt : "";
    if (qrt_tok_encode(tok, prompt, strlen(prompt), 0, &ids, &n_prompt)) {
        fprintf(stderr, "error: out of memory while tokenizing the prompt\n");
        return 1;
    }
    int32_t bos = qrt_tok_bos(tok);
    int add_bos = bos >= 0 && (qrt_tok_add_bos(tok) || n_prompt == 0);
    size_t n = n_prompt + (size_t)add_bos;
    int32_t *seq = malloc((n + 1) * sizeof(int32_t));
    if (!seq) {
        free(ids);
        fprintf(stderr, "error: out of memory\n");
        return 1;
    }
    if (add_bos) seq[0] = bos;
    memcpy(seq + add_bos, ids, n_prompt * sizeof(int32_t));
    free(ids);
    if ((int64_t)n >= n_ctx) {
        fprintf(stderr, "error: the prompt is %zu tokens; the context holds %d (raise -c)\n", n, n_ctx);
        free(seq);
        return 1;
    }
    qrt_ctx *c = qrt_ctx_new(m, n_ctx);
    qrt_sampler s;
    uint64_t seed = a->seed_set ? a->seed : (uint64_t)time(NULL);
    if (!c || qrt_sampler_init(&s, m->cfg[QRT_CFG_VOCAB], a->temp, a->top_k, a->top_p, seed)) {
        fprintf(stderr, "error: out of memory for a context of %d tokens\n", n_ctx);
        qrt_ctx_free(c);
        free(seq);
        return 1;
    }
    if (a->prompt && (fputs(a->prompt, stdout) == EOF || fflush(stdout))) return 1;
    double t0 = now_s();
    int live = feed(c, seq, (int32_t)n, 0) == 0;
    double t1 = now_s();
    int32_t prev = seq[n - 1], pos = (int32_t)n, made = 0, rc = 0, failed = !live && !interrupted;
    if (failed) step_failed(c);
    if (a->prompt) prev = -2; /* the prompt was echoed as typed: keep the next piece's space */
    int32_t eos = qrt_tok_eos(tok), eot = qrt_tok_eot(tok); /* a chat model's end of turn ends it too */
    while (live && made < a->n_predict && !interrupted) {
        int32_t next = qrt_ctx_sample(c, &s);
        if (next < 0) {
            step_failed(c);
            failed = 1;
            break;
        }
        if (next == eos || next == eot) break;
        if (emit(tok, prev, next)) {
            rc = 1; /* stdout closed: stop quietly */
            break;
        }
        made++;
        prev = next;
        if (pos >= n_ctx) {
            fprintf(stderr, "\nnotice: context of %d tokens is full; stopping (raise -c)\n", n_ctx);
            break;
        }
        if (qrt_ctx_run(c, &next, 1, pos++)) {
            step_failed(c);
            live = 0;
            failed = 1;
        }
    }
    double t2 = now_s();
    if (!rc) {
        fputc('\n', stdout);
        fflush(stdout);
    }
    if (interrupted && !failed) fprintf(stderr, "notice: interrupted after %d generated tokens\n", made);
    if (a->verbose)
        fprintf(stderr, "prompt: %zu tokens, %.1f tok/s; generated: %d tokens, %.1f tok/s\n", n,
                (double)n / (t1 - t0), made, made / (t2 - t1 > 0 ? t2 - t1 : 1e-9));
    qrt_sampler_free(&s);
    qrt_ctx_free(c);
    free(seq);
    return failed ? 1 : interrupted ? 130 : 0;
}

/* Reads a whole file; NULL with errno on failure. */
static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        char *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    if (buf && ferror(f)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

/* Negative log-likelihood of `target` under logits[vocab]. */
static double nll(const float *logits, int32_t vocab, int32_t target) {
    float mx = logits[0];
    for (int32_t i = 1; i < vocab; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0;
    for (int32_t i = 0; i < vocab; i++) sum += exp((double)logits[i] - mx);
    return log(sum) + mx - logits[target];
}

static int perplexity(const qrt_model *m, const qrt_tok *tok, const qrt_args *a, int32_t n_ctx) {
    size_t len;
    char *text = slurp(a->perplexity, &len);
    if (!text) {
        fprintf(stderr, "error: %s: cannot read: %s\n", a->perplexity, strerror(errno));
        return 1;
    }
    int32_t *ids = NULL;
    size_t n_ids = 0;
    int bad = qrt_tok_encode(tok, text, len, 0, &ids, &n_ids);
    free(text);
    int32_t bos = qrt_tok_bos(tok);
    int32_t *all = bad ? NULL : malloc((n_ids + 1) * sizeof(int32_t));
    if (!all) {
        free(ids);
        fprintf(stderr, "error: out of memory while tokenizing %s\n", a->perplexity);
        return 1;
    }
    size_t n = 0;
    if (bos >= 0 && qrt_tok_add_bos(tok)) all[n++] = bos;
    memcpy(all + n, ids, n_ids * sizeof(int32_t));
    n += n_ids;
    free(ids);
    int32_t stride = a->stride ? a->stride : n_ctx;
    if (stride > n_ctx) stride = n_ctx;
    if (n < (size_t)n_ctx) {
        fprintf(stderr, "error: %s: %zu tokens, fewer than one window of %d (lower -c)\n",
                a->perplexity, n, n_ctx);
        free(all);
        return 1;
    }
    qrt_ctx *c = qrt_ctx_new(m, n_ctx);
    int32_t vocab = m->cfg[QRT_CFG_VOCAB];
    if (!c) {
        fprintf(stderr, "error: out of memory for a context of %d tokens\n", n_ctx);
        free(all);
        return 1;
    }
    double sum = 0, t0 = now_s();
    size_t scored = 0, windows = 0, total = (n - (size_t)n_ctx) / (size_t)stride + 1;
    /* Window w covers [start, start + n_ctx); it scores the predictions not
     * scored by the window before (all n_ctx - 1 of them when stride = n_ctx).
     * A window Ctrl-C cut short does not count. */
    for (size_t start = 0; windows < total && !interrupted; start += (size_t)stride) {
        int32_t first = windows == 0 ? 0 : n_ctx - 1 - stride; /* first scored row */
        if (first < 0) first = 0;
        double wsum = 0;
        size_t wscored = 0;
        for (int32_t i = 0; i < n_ctx && !interrupted; i += c->max_batch) {
            int32_t k = n_ctx - i < c->max_batch ? n_ctx - i : c->max_batch;
            const float *lg = qrt_ctx_forward(c, all + start + i, k, i, 1);
            if (!lg) {
                step_failed(c);
                qrt_ctx_free(c);
                free(all);
                return 1;
            }
            for (int32_t r = 0; r < k; r++) {
                int32_t row = i + r;
                if (row < first || row >= n_ctx - 1) continue;
                wsum += nll(lg + (size_t)r * vocab, vocab, all[start + row + 1]);
                wscored++;
            }
        }
        if (interrupted) break;
        sum += wsum;
        scored += wscored;
        windows++;
        if (a->verbose && windows % 100 == 0)
            fprintf(stderr, "[%zu] ppl so far %.4f\n", windows, exp(sum / (double)scored));
    }
    double t1 = now_s();
    if (windows) /* nothing to print when Ctrl-C came before the first window ended */
        printf("tokens: %zu\nwindows: %zu\nscored: %zu\nperplexity: %.4f\n", n, windows, scored,
               exp(sum / (double)scored));
    fflush(stdout);
    if (interrupted) fprintf(stderr, "notice: interrupted after %zu of %zu windows\n", windows, total);
    if (a->verbose) fprintf(stderr, "%.1f s, %.0f tokens/s\n", t1 - t0, (double)(windows * n_ctx) / (t1 - t0));
    qrt_ctx_free(c);
    free(all);
    return interrupted ? 130 : 0;
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static int bench(const qrt_model *m, const qrt_args *a, int32_t n_ctx) {
    int32_t pl = a->prompt_len, gl = a->gen_len, vocab = m->cfg[QRT_CFG_VOCAB];
    if (pl + gl > n_ctx) {
        fprintf(stderr, "error: --prompt-len %d + --gen %d exceed the context of %d (raise -c)\n", pl, gl, n_ctx);
        return 1;
    }
    qrt_ctx *c = qrt_ctx_new(m, n_ctx);
    int32_t *ids = malloc((size_t)pl * sizeof(int32_t));
    qrt_sampler greedy;
    if (!c || !ids || qrt_sampler_init(&greedy, vocab, 0.0f, 0, 1.0f, 0)) {
        fprintf(stderr, "error: out of memory\n");
        qrt_ctx_free(c);
        free(ids);
        return 1;
    }
    uint64_t x = 12345;
    for (int32_t i = 0; i < pl; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)((x >> 33) % (uint64_t)vocab);
    }
    enum { REPS = 5 };
    double pp[REPS], tg[REPS];
    int done = 0; /* repetitions measured in full; Ctrl-C drops the one under way */
    while (done < REPS && !interrupted) {
        /* greedy, as generation runs it: on the GPU only the token id
         * crosses to the host; the first one ends the prompt's timing, which
         * starts after the step the last repetition queued ahead (look-ahead) */
        int synced = qrt_ctx_sync(c) == 0;
        double t0 = now_s();
        int32_t best = !synced || feed(c, ids, pl, 0) ? -1 : qrt_ctx_sample(c, &greedy);
        double t1 = now_s();
        for (int32_t i = 0; i < gl && best >= 0 && !interrupted; i++)
            best = qrt_ctx_run(c, &best, 1, pl + i) ? -1 : qrt_ctx_sample(c, &greedy);
        double t2 = now_s();
        if (interrupted) break;
        if (best < 0) {
            step_failed(c);
            qrt_sampler_free(&greedy);
            qrt_ctx_free(c);
            free(ids);
            return 1;
        }
        pp[done] = pl / (t1 - t0);
        tg[done] = gl / (t2 - t1);
        done++;
        if (a->verbose)
            fprintf(stderr, "[%d/%d] prefill %.1f tokens/s, decode %.1f tokens/s\n", done, REPS, pp[done - 1],
                    tg[done - 1]);
    }
    if (done) {
        qsort(pp, (size_t)done, sizeof(double), cmp_double);
        qsort(tg, (size_t)done, sizeof(double), cmp_double);
        const char *dev = c->gpu ? qrt_cuda_device_name(m) : "cpu";
        printf("| device | test | tokens/s (median of %d) |\n|---|---|---|\n", done);
        printf("| %s | prefill %d | %.1f |\n| %s | decode %d | %.1f |\n", dev, pl, pp[done / 2], dev, gl,
               tg[done / 2]);
    }
    if (done && c->gpu) qrt_cuda_trace_report(m, stdout); /* qcc --cuda-trace builds only */
    fflush(stdout);
    if (interrupted) fprintf(stderr, "notice: interrupted after %d of %d repetitions\n", done, REPS);
    qrt_sampler_free(&greedy);
    qrt_ctx_free(c);
    free(ids);
    return interrupted ? 130 : 0;
}

/* ---- --info ---------------------------------------------------------------- */

/* A string from the file as a JSON string: anything but printable ASCII
 * becomes '?' (kernel names are C identifiers; this only matters for a
 * damaged section read with --no-verify). */
static void put_str(const char *p) {
    putchar('"');
    for (; *p; p++) putchar(*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\' ? *p : '?');
    putchar('"');
}

/* "NAME": {"bytes": N, "xxh3_128": "HEX" — the hash as its trailer stores
 * it (canonical byte order, as qcc's "weights_xxh3_128"); the caller closes
 * the object. A section with no payload has no trailer to show (null). */
static void put_section(const char *name, const uint8_t *p, size_t n) {
    printf("\"%s\": {\"bytes\": %zu, \"xxh3_128\": ", name, n);
    if (!n) {
        printf("null");
        return;
    }
    putchar('"');
    for (int i = 0; i < QRT_TRAILER; i++) printf("%02x", p[n + i]);
    putchar('"');
}

/* What the CUDA section itself holds (layout in include/qc/cuda.h): its
 * images as "sm_XY" (cubin) / "compute_XY" (PTX) and its kernel names. */
static void put_cuda(const uint8_t *p, size_t n) {
    qrt_cuda_blob b;
    if (qrt_cuda_blob_parse(&b, p, n)) {
        printf(", \"malformed\": true");
        return;
    }
    printf(", \"archs\": [");
    for (int32_t i = 0; i < b.n_images; i++)
        printf("%s\"%s_%d\"", i ? ", " : "", b.images[i].ptx ? "compute" : "sm", (int)b.images[i].arch);
    printf("], \"kernels\": %d, \"kernel_names\": [", (int)b.n_kernels);
    /* the parser checked that the last byte of the names is a NUL */
    for (const char *k = b.names, *end = b.names + b.names_size; k < end; k += strlen(k) + 1) {
        if (k != b.names) printf(", ");
        put_str(k);
    }
    putchar(']');
}

/* --info: the JSON qcc embedded (what built the file), with two members
 * the runtime adds from the file itself: "verified" (the sections were
 * re-hashed at start: false with --no-verify) and "sections", each
 * embedded section's payload size and stored xxh3-128. */
static int info(const qrt_model *m, int verified) {
    size_t n = m->info_size;
    while (n && (m->info[n - 1] == ' ' || m->info[n - 1] == '\n')) n--;
    if (!n || m->info[n - 1] != '}') { /* not qcc's object (a damaged file, --no-verify): as it is */
        fwrite(m->info, 1, m->info_size, stdout);
        putchar('\n');
        return fflush(stdout) ? 1 : 0;
    }
    size_t body = n - 1; /* up to the closing brace */
    while (body && (m->info[body - 1] == ' ' || m->info[body - 1] == '\n')) body--;
    fwrite(m->info, 1, body, stdout);
    printf("%s\"verified\": %s, \"sections\": {", body > 1 ? ", " : "", verified ? "true" : "false");
    put_section("weights", m->weights, m->weights_size);
    printf("}, ");
    put_section("tokenizer", m->tokenizer, m->tokenizer_size);
    printf("}, ");
    put_section("info", (const uint8_t *)m->info, m->info_size);
    putchar('}');
    if (m->cuda) {
        printf(", ");
        put_section("cuda", m->cuda, m->cuda_size);
        put_cuda(m->cuda, m->cuda_size);
        putchar('}');
    }
    printf("}}\n");
    return fflush(stdout) ? 1 : 0;
}

int main(int argc, char **argv) {
    qrt_model m;
    qrt_args a;
    qrt_model_bind(&m);
    int rc = qrt_args_parse(&a, argc, argv);
    if (rc) return rc > 0 ? 0 : 1;
    if (m.cfg[QRT_CFG_ABI_VERSION] != QRT_ABI_VERSION) {
        fprintf(stderr, "error: model ABI %d, runtime ABI %d\n", m.cfg[QRT_CFG_ABI_VERSION], QRT_ABI_VERSION);
        return 1;
    }
    const char *bad = a.no_verify ? NULL : qrt_model_verify(&m);
    if (bad) {
        fprintf(stderr, "error: %s: the embedded %s section is corrupted (xxh3-128 mismatch); "
                        "the file was damaged after qcc wrote it\n", argv[0], bad);
        return 1;
    }
    if (a.info) return info(&m, !a.no_verify);
    /* Where to run: the GPU when the file has CUDA kernels and the machine a
     * usable GPU (--device cpu: never). Anything in the way -> the CPU, with
     * one notice line when the GPU was asked for or something broke. */
    if (a.device != 1) {
        char why[512];
        qrt_cuda_opts co = {.verbose = a.verbose, .kv_f16 = a.kv_f16, .no_graph = a.no_graph,
                              .no_pdl = a.no_pdl, .fuse_norm = a.fuse_norm,
                              .no_fuse_rope = a.no_fuse_rope, .no_cluster = a.no_cluster,
                              .no_lookahead = a.no_lookahead, .fused_gemm_max = a.fused_gemm_max};
        int g = qrt_cuda_init(&m, &co, why, sizeof why);
        if (g < 0 || (g > 0 && (a.device == 2 || a.verbose)))
            fprintf(stderr, "notice: %s; running on the CPU\n", why);
    }
    if (a.threads > 0) openblas_set_num_threads(a.threads);
    int32_t n_ctx = a.n_ctx ? a.n_ctx : m.cfg[QRT_CFG_MAX_CTX];
    if (n_ctx < 2) {
        fprintf(stderr, "error: -c %d: the context must hold at least 2 tokens\n", n_ctx);
        return 1;
    }
    if (m.cfg[QRT_CFG_ARCH] != QRT_ARCH_LLAMA && n_ctx > m.cfg[QRT_CFG_MAX_CTX]) { /* GPT-2, OPT */
        fprintf(stderr, "error: -c %d: this model has learned positions for %d tokens only\n", n_ctx,
                m.cfg[QRT_CFG_MAX_CTX]);
        return 1;
    }
    signal(SIGINT, on_sigint);
    signal(SIGPIPE, SIG_IGN);
    if (a.bench) return bench(&m, &a, n_ctx);
    char err[256];
    qrt_tok *tok = NULL;
    if (qrt_tok_open(&tok, m.tokenizer, m.tokenizer_size, err, sizeof err)) {
        fprintf(stderr, "error: embedded tokenizer: %s\n", err);
        return 1;
    }
    rc = a.dump_logits                 ? qrt_dump_logits(&m, tok, &a, n_ctx)
         : a.interactive || a.chat     ? qrt_chat(&m, tok, &a, n_ctx)
         : a.perplexity                ? perplexity(&m, tok, &a, n_ctx)
                                       : generate(&m, tok, &a, n_ctx);
    qrt_tok_free(tok);
    qrt_cuda_free(&m);
    return rc;
}
