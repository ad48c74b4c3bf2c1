/*
 * tools/qcc.c — the compiler driver: main() and nothing else of substance.
 *
 * Reads the command line, runs the pipeline as a list of calls, prints the
 * one error line and exits. This is the only file that calls exit(), reads
 * the environment or installs signal handlers. The output is assembled in a
 * temporary directory and file beside it and renamed into place at the end,
 * so a failed or interrupted compile leaves nothing behind.
 *
 *   load (frontend) -> verify -> convert -> verify -> plan (weight blob)
 *   -> codegen (LLVM object) -> link (libqrt + static OpenBLAS) -> rename
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "qc/codegen.h"
#include "qc/cuda.h"
#include "qc/frontend.h"
#include "qc/passes.h"
#include "qrt/tokenizer.h"

#include <xxhash.h>

typedef struct args {
    const char *model, *out, *emit, *dump_after, *run_prompt;
    const char *target, *cuda_arch; /* NULL: the defaults */
    const char *dummy;              /* --dummy-weights CONFIG: no checkpoint (docs/dummy-weights.md) */
    int32_t fuse_norm;              /* the qk_gemvmn_* kernels (docs/cuda.md); --no-fuse-norm: 0 */
    int32_t cuda_trace;             /* --cuda-trace: kernels that note their timing (docs/cuda.md) */
    int32_t gemv_warps;             /* --gemv-warps: warps per block of the tensor-core GEMV (0: 16); fewer than
                                     * 16: as many blocks per SM in the launch bounds (128 registers a thread) */
    int32_t n_run;
    qc_opts o;
} args;

static void usage(void) {
    printf("usage: qcc MODEL [-o OUT] [-O0..-O3] [--bits 2|3|4|8|16|32] [--seed N] [-j N]\n"
           "           [--method gptq|rtn|awq|awq+gptq|smoothquant] [--alpha F]\n"
           "           [--group-size 32|64|128|-1] [--sym|--asym] [--act-order] [--quantize-head BITS]\n"
           "           [--damp F] [--calib FILE|DIR | --calib-tokens IDS.i32] [--calib-samples N] [--calib-seqlen L]\n"
           "           [--target cuda,cpu|cpu] [--cuda-arch sm_80,sm_86,sm_89,sm_90,compute_90] [--no-fuse-norm]\n"
           "           [--cuda-trace] [--gemv-warps 4..32]\n"
           "           [--emit exe|obj|llvm-ir|cuda-src|ptx] [--dump-after PASS] [-v] [--quiet]\n"
           "       qcc MODEL --run PROMPT [-n N]     (reference executor, greedy)\n"
           "       qcc --dummy-weights CONFIG.json [options]  (no checkpoint: seeded random weights\n"
           "                                 generated at start, for benchmarks; docs/dummy-weights.md)\n"
           "MODEL: a .safetensors file, a model.safetensors.index.json, or a directory\n"
           "holding one (config.json and tokenizer.json are read from beside it).\n");
}

/* ---- temporary files, removed on failure and on SIGINT/SIGTERM ---- */
static char tmp_dir[4200], tmp_out[4200];
static const char *const tmp_names[] = {"weights.bin", "tokenizer.bin", "info.json", "model.o", "cuda.bin"};

static void cleanup(void) { /* async-signal-safe: unlink/rmdir only */
    char p[4300];
    if (tmp_out[0]) unlink(tmp_out);
    if (!tmp_dir[0]) return;
    for (size_t i = 0; i < sizeof tmp_names / sizeof tmp_names[0]; i++) {
        size_t n = strlen(tmp_dir), m = strlen(tmp_names[i]);
        memcpy(p, tmp_dir, n);
        p[n] = '/';
        memcpy(p + n + 1, tmp_names[i], m + 1);
        unlink(p);
    }
    rmdir(tmp_dir);
}

static volatile pid_t child_pid; /* the NVRTC process while it runs */

static void on_signal(int sig) {
    if (child_pid > 0) { /* before the files it may be writing go */
        kill(child_pid, SIGKILL);
        waitpid(child_pid, NULL, 0);
    }
    cleanup();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_handlers(void) {
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
}

static _Noreturn void die(const char *msg) {
    fprintf(stderr, "qcc: error: %s\n", msg);
    cleanup();
    exit(1);
}

static int int_arg(const char *flag, const char *v, long lo, long hi, int32_t *out) {
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < lo || x > hi) {
        fprintf(stderr, "qcc: error: %s %s: expected an integer in [%ld, %ld]\n", flag, v, lo, hi);
        return -1;
    }
    *out = (int32_t)x;
    return 0;
}

static int parse(args *a, int argc, char **argv) {
    memset(a, 0, sizeof *a);
    a->emit = "exe";
    a->fuse_norm = 1;
    a->n_run = 32;
    a->o.bits = 16;
    a->o.opt_level = 2;
    a->o.group_size = 128;
    a->o.damp = 0.01;
    a->o.calib_samples = 128;
    a->o.alpha = 0.5;
    int bits_given = 0;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define TAKE()                                                         \
    do {                                                               \
        if (!v) {                                                      \
            fprintf(stderr, "qcc: error: %s needs a value\n", f);      \
            return -1;                                                 \
        }                                                              \
        i++;                                                           \
    } while (0)
        if (!strcmp(f, "-h") || !strcmp(f, "--help")) {
            usage();
            exit(0);
        } else if (!strcmp(f, "-o")) {
            TAKE();
            a->out = v;
        } else if (f[0] == '-' && f[1] == 'O' && f[2] >= '0' && f[2] <= '3' && !f[3]) {
            a->o.opt_level = f[2] - '0';
        } else if (!strcmp(f, "--bits")) {
            TAKE();
            char *end;
            long b = strtol(v, &end, 10);
            if (*end || (b != 2 && b != 3 && b != 4 && b != 8 && b != 16 && b != 32)) {
                fprintf(stderr, "qcc: error: --bits %s: expected one of 2, 3, 4, 8, 16, 32\n", v);
                return -1;
            }
            a->o.bits = (int32_t)b;
            bits_given = 1;
        } else if (!strcmp(f, "--seed")) {
            TAKE();
            a->o.seed = strtoull(v, NULL, 10);
        } else if (!strcmp(f, "-j")) {
            TAKE(); /* worker threads: the output never depends on them */
            if (int_arg(f, v, 1, 1024, &a->o.threads)) return -1;
        } else if (!strcmp(f, "--method")) {
            TAKE();
            if (!strcmp(v, "gptq")) a->o.method = QC_METHOD_GPTQ;
            else if (!strcmp(v, "rtn")) a->o.method = QC_METHOD_RTN;
            else if (!strcmp(v, "awq")) a->o.method = QC_METHOD_AWQ;
            else if (!strcmp(v, "awq+gptq")) a->o.method = QC_METHOD_AWQ_GPTQ;
            else if (!strcmp(v, "smoothquant")) a->o.method = QC_METHOD_SMOOTHQUANT;
            else {
                fprintf(stderr, "qcc: error: --method %s: expected gptq, rtn, awq, awq+gptq or smoothquant\n", v);
                return -1;
            }
        } else if (!strcmp(f, "--alpha")) {
            TAKE();
            char *end;
            a->o.alpha = strtod(v, &end);
            if (!*v || *end || !(a->o.alpha >= 0 && a->o.alpha <= 1)) {
                fprintf(stderr, "qcc: error: --alpha %s: expected a number in [0, 1]\n", v);
                return -1;
            }
        } else if (!strcmp(f, "--group-size")) {
            TAKE();
            if (int_arg(f, v, -1, 1 << 20, &a->o.group_size)) return -1;
            if (a->o.group_size == 0 || (a->o.group_size > 0 && a->o.group_size % 32)) {
                fprintf(stderr, "qcc: error: --group-size %s: expected -1 (per channel) or a positive multiple of 32\n", v);
                return -1;
            }
        } else if (!strcmp(f, "--sym")) {
            a->o.sym = 1;
        } else if (!strcmp(f, "--asym")) {
            a->o.sym = 0;
        } else if (!strcmp(f, "--act-order")) {
            a->o.act_order = 1;
        } else if (!strcmp(f, "--quantize-head")) {
            TAKE();
            if (int_arg(f, v, 2, 8, &a->o.head_bits)) return -1;
            if (a->o.head_bits == 5 || a->o.head_bits == 6 || a->o.head_bits == 7) {
                fprintf(stderr, "qcc: error: --quantize-head %s: expected 2, 3, 4 or 8\n", v);
                return -1;
            }
        } else if (!strcmp(f, "--damp")) {
            TAKE();
            char *end;
            a->o.damp = strtod(v, &end);
            if (*end || !(a->o.damp >= 0 && a->o.damp <= 1)) {
                fprintf(stderr, "qcc: error: --damp %s: expected a number in [0, 1]\n", v);
                return -1;
            }
        } else if (!strcmp(f, "--calib")) {
            TAKE();
            a->o.calib = v;
        } else if (!strcmp(f, "--calib-tokens")) {
            TAKE();
            a->o.calib_tokens = v;
        } else if (!strcmp(f, "--calib-samples")) {
            TAKE();
            if (int_arg(f, v, 1, 1 << 20, &a->o.calib_samples)) return -1;
        } else if (!strcmp(f, "--calib-seqlen")) {
            TAKE();
            if (int_arg(f, v, 2, 1 << 20, &a->o.calib_seqlen)) return -1;
        } else if (!strcmp(f, "--target")) {
            TAKE();
            if (strcmp(v, "cpu") && strcmp(v, "cuda") && strcmp(v, "cuda,cpu") && strcmp(v, "cpu,cuda")) {
                fprintf(stderr, "qcc: error: --target %s: expected cuda,cpu or cpu\n", v);
                return -1;
            }
            a->target = v;
        } else if (!strcmp(f, "--cuda-arch")) {
            TAKE();
            a->cuda_arch = v;
        } else if (!strcmp(f, "--fuse-norm")) { /* the default */
            a->fuse_norm = 1;
        } else if (!strcmp(f, "--no-fuse-norm")) {
            a->fuse_norm = 0;
        } else if (!strcmp(f, "--cuda-trace")) {
            a->cuda_trace = 1;
        } else if (!strcmp(f, "--gemv-warps")) {
            TAKE();
            if (int_arg(f, v, 4, 32, &a->gemv_warps)) return -1;
        } else if (!strcmp(f, "--emit")) {
            TAKE();
            if (strcmp(v, "exe") && strcmp(v, "obj") && strcmp(v, "llvm-ir") && strcmp(v, "cuda-src") &&
                strcmp(v, "ptx")) {
                fprintf(stderr, "qcc: error: --emit %s: expected exe, obj, llvm-ir, cuda-src or ptx\n", v);
                return -1;
            }
            a->emit = v;
        } else if (!strcmp(f, "--dump-after")) {
            TAKE();
            a->dump_after = v;
        } else if (!strcmp(f, "--dummy-weights")) {
            TAKE();
            a->dummy = v;
        } else if (!strcmp(f, "--run")) {
            TAKE();
            a->run_prompt = v;
        } else if (!strcmp(f, "-n")) {
            TAKE();
            a->n_run = atoi(v);
        } else if (!strcmp(f, "-v")) {
            a->o.verbose = 1;
        } else if (!strcmp(f, "--quiet")) {
            a->o.quiet = 1;
        } else if (f[0] == '-' && f[1]) {
            fprintf(stderr, "qcc: error: unknown option '%s' (see --help)\n", f);
            return -1;
        } else if (!a->model) {
            a->model = f;
        } else {
            fprintf(stderr, "qcc: error: more than one MODEL given ('%s', '%s')\n", a->model, f);
            return -1;
        }
#undef TAKE
    }
    if (a->o.calib && a->o.calib_tokens) {
        fprintf(stderr, "qcc: error: --calib and --calib-tokens both given: give one of them\n");
        return -1;
    }
    if (a->o.method == QC_METHOD_SMOOTHQUANT) { /* W8A8: --bits 8 is implied */
        if (bits_given && a->o.bits != 8) {
            fprintf(stderr, "qcc: error: --method smoothquant is W8A8: --bits %d given, it needs 8\n", a->o.bits);
            return -1;
        }
        a->o.bits = 8;
        a->o.group_size = -1; /* int8 per output channel, symmetric */
        a->o.sym = 1;
    }
    if (a->dummy && a->model) {
        fprintf(stderr, "qcc: error: --dummy-weights %s takes the place of MODEL ('%s'): give one of them\n", a->dummy,
                a->model);
        return -1;
    }
    if (a->dummy && a->run_prompt) {
        fprintf(stderr, "qcc: error: --run needs a checkpoint; --dummy-weights has no weights to run\n");
        return -1;
    }
    if (a->dummy && a->o.method == QC_METHOD_SMOOTHQUANT) {
        fprintf(stderr, "qcc: error: --dummy-weights: --method smoothquant (W8A8) is not supported\n");
        return -1;
    }
    if (!a->model && !a->dummy) {
        usage();
        return -1;
    }
    return 0;
}

static void dump(const args *a, const qc_graph *g, const char *pass) {
    if (a->dump_after && (!strcmp(a->dump_after, pass) || !strcmp(a->dump_after, "all"))) {
        fprintf(stderr, "; IR after %s\n", pass);
        qc_graph_dump(g, stderr);
    }
}

static void hex(char *out, const uint8_t h[16]) {
    for (int i = 0; i < 16; i++) sprintf(out + 2 * i, "%02x", h[i]);
}

/* Writes p[0..n) followed by its xxh3-128 (the integrity trailer every
 * embedded section carries; see runtime/ctx.c). */
static int write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(p, n));
    size_t w = fwrite(p, 1, n, f) + fwrite(c.digest, 1, 16, f);
    return (fclose(f) || w != n + 16) ? -1 : 0;
}

/* Bytes of the weight blob (after plan), and of the weights one decode step
 * reads: every tensor an op other than EMBED / POS_EMBED uses (those read one
 * row), each counted once. */
static void weight_bytes(const qc_graph *g, uint64_t *total, uint64_t *per_token) {
    *total = *per_token = 0;
    uint8_t *seen = calloc((size_t)g->n_tensors + 1, 1);
    for (int32_t i = 0; i < g->n_tensors; i++) {
        const qc_tensor *t = &g->tensors[i];
        if (t->blob_offset + t->blob_nbytes > *total) *total = t->blob_offset + t->blob_nbytes;
    }
    for (int32_t i = 0; i < g->n_ops && seen; i++) {
        const qc_op *op = &g->ops[i];
        int32_t ts[2] = {op->w, op->bias};
        for (int k = 0; k < 2; k++) {
            if (ts[k] < 0 || seen[ts[k]] || op->kind == QRT_K_EMBED || op->kind == QRT_K_POS_EMBED) continue;
            seen[ts[k]] = 1;
            *per_token += g->tensors[ts[k]].blob_nbytes;
        }
    }
    free(seen);
}

/* The JSON the executable prints for --info: everything that made it. */
static int write_info(const char *path, const qc_graph *g, const args *a, const uint8_t wh[16],
                      const char *targets) {
    char json[16384], flags[512], calib[300];
    int quant = a->o.bits < 16;
    const char *dtype = a->o.bits == 32 ? "f32" : a->o.bits == 16 ? "f16"
                      : a->o.method == QC_METHOD_SMOOTHQUANT ? "w8a8" : "int";
    const char *cf = a->o.calib_tokens ? a->o.calib_tokens : a->o.calib;
    const char *cb = cf ? strrchr(cf, '/') : NULL;
    cb = cb && cb[1] ? cb + 1 : cf;
    snprintf(calib, sizeof calib, "%s", !quant || a->o.method == QC_METHOD_RTN || a->dummy ? "none"
                                        : cb ? cb : "self-generated");
    for (char *p = calib; *p; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) *p = '_';
    snprintf(flags, sizeof flags, "-O%d --bits %d --seed %llu", a->o.opt_level, a->o.bits, (unsigned long long)a->o.seed);
    if (a->dummy && quant) /* no checkpoint: the method and calibration play no part */
        snprintf(flags + strlen(flags), sizeof flags - strlen(flags), " --dummy-weights --group-size %d %s",
                 a->o.group_size, a->o.sym ? "--sym" : "--asym");
    else if (a->dummy)
        snprintf(flags + strlen(flags), sizeof flags - strlen(flags), " --dummy-weights");
    else if (quant && a->o.method == QC_METHOD_SMOOTHQUANT) /* W8A8: per channel, symmetric */
        snprintf(flags + strlen(flags), sizeof flags - strlen(flags),
                 " --method smoothquant --alpha %g --calib-samples %d --calib-seqlen %d", a->o.alpha,
                 a->o.calib_samples, a->o.calib_seqlen);
    else if (quant)
        snprintf(flags + strlen(flags), sizeof flags - strlen(flags),
                 " --method %s --group-size %d %s%s --damp %g --calib-samples %d --calib-seqlen %d",
                 qc_method_name(a->o.method), a->o.group_size, a->o.sym ? "--sym" : "--asym",
                 a->o.act_order ? " --act-order" : "", a->o.damp, a->o.calib_samples, a->o.calib_seqlen);
    if (quant && a->o.head_bits)
        snprintf(flags + strlen(flags), sizeof flags - strlen(flags), " --quantize-head %d", a->o.head_bits);
    if (!a->fuse_norm) snprintf(flags + strlen(flags), sizeof flags - strlen(flags), " --no-fuse-norm");
    if (a->cuda_trace) snprintf(flags + strlen(flags), sizeof flags - strlen(flags), " --cuda-trace");
    if (a->gemv_warps) snprintf(flags + strlen(flags), sizeof flags - strlen(flags), " --gemv-warps %d", a->gemv_warps);
    char sh[33], whx[33];
    hex(sh, g->source_hash);
    hex(whx, wh);
    int64_t params = 0;
    for (int32_t i = 0; i < g->n_tensors; i++) params += qc_tensor_numel(&g->tensors[i]);
    const qc_config *c = &g->cfg;
    uint64_t wbytes, wtok;
    weight_bytes(g, &wbytes, &wtok);
    char dseed[64] = ""; /* dummy weights: the generator's seed (docs/dummy-weights.md) */
    if (a->dummy) snprintf(dseed, sizeof dseed, ", \"dummy_seed\": %llu", (unsigned long long)a->o.seed);
    int n = snprintf(json, sizeof json,
            "{\"qcc_version\": \"%s\", \"abi\": %d, \"architecture\": \"%s\", \"source\": \"%s\", "
            "\"source_xxh3_128\": \"%s\", \"weights_xxh3_128\": \"%s\", \"parameters\": %lld, "
            "\"bits\": %d, \"dtype\": \"%s\", \"layers\": %d, \"hidden\": %d, \"heads\": %d, "
            "\"kv_heads\": %d, \"vocab\": %d, \"context\": %d, \"targets\": %s, "
            "\"method\": \"%s\", \"group_size\": %d, \"sym\": %s, \"act_order\": %s, "
            "\"calibration\": \"%s\", \"flags\": \"%s\", \"weights\": \"%s\", \"weight_bytes\": %llu, "
            "\"weight_bytes_per_token\": %llu%s}",
            QC_VERSION, QRT_ABI_VERSION, c->model_type, g->source_name, sh, whx, (long long)params,
            a->o.bits, dtype, c->n_layers, c->dim, c->n_heads, c->n_kv_heads, c->vocab, c->max_ctx, targets,
            quant && !a->dummy ? qc_method_name(a->o.method) : "none", quant ? a->o.group_size : 0,
            a->o.sym ? "true" : "false", a->o.act_order && !a->dummy ? "true" : "false", calib, flags,
            a->dummy ? "dummy" : "checkpoint", (unsigned long long)wbytes, (unsigned long long)wtok, dseed);
    return n > 0 && (size_t)n < sizeof json ? write_file(path, json, (size_t)n) : -1;
}

/* Greedy generation with the reference executor (debugging aid). */
static int run_reference(const args *a, const qc_graph *g) {
    char err[256];
    qrt_tok *tok = NULL;
    if (qrt_tok_open(&tok, g->tokenizer, g->tokenizer_size, err, sizeof err)) die(err);
    int32_t *ids = NULL;
    size_t n = 0;
    if (qrt_tok_encode(tok, a->run_prompt, strlen(a->run_prompt), 0, &ids, &n)) die("out of memory");
    int32_t ctx = g->cfg.max_ctx, bos = qrt_tok_bos(tok);
    int32_t *seq = malloc(((size_t)ctx + 1) * sizeof(int32_t));
    size_t len = 0;
    if (!seq) die("out of memory");
    if (bos >= 0) seq[len++] = bos;
    for (size_t i = 0; i < n && len < (size_t)ctx; i++) seq[len++] = ids[i];
    free(ids);
    qc_exec *e = qc_exec_new(g, ctx);
    if (!e) die("out of memory");
    const float *lg = qc_exec_forward(e, seq, (int32_t)len, 0);
    int32_t prev = seq[len - 1];
    printf("%s", a->run_prompt);
    for (int32_t k = 0; k < a->n_run && len < (size_t)ctx; k++) {
        const float *row = lg + (size_t)(k == 0 ? len - 1 : 0) * g->cfg.vocab;
        int32_t best = 0;
        for (int32_t v = 1; v < g->cfg.vocab; v++)
            if (row[v] > row[best]) best = v;
        if (best == qrt_tok_eos(tok)) break;
        char piece[256];
        size_t m = qrt_tok_decode(tok, a->run_prompt[0] ? -2 : prev, best, piece, sizeof piece);
        fwrite(piece, 1, m < sizeof piece ? m : sizeof piece, stdout);
        seq[len] = best;
        lg = qc_exec_forward(e, &seq[len], 1, (int32_t)len);
        len++;
        prev = best;
    }
    printf("\n");
    qc_exec_free(e);
    free(seq);
    qrt_tok_free(tok);
    return 0;
}

/* ---- progress: a bar with ETA on a terminal, plain lines otherwise ---- */
static double t_stage;
static char cur_stage[32];
static int bar_open;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void progress(void *ud, const char *stage, int64_t done, int64_t total) {
    const args *a = ud;
    if (a->o.quiet) return;
    if (strcmp(stage, cur_stage)) {
        snprintf(cur_stage, sizeof cur_stage, "%s", stage);
        t_stage = now_s();
    }
    double el = now_s() - t_stage, eta = done ? el * (double)(total - done) / (double)done : 0;
    if (isatty(2)) {
        int w = 30, fill = total ? (int)(w * done / total) : 0;
        fprintf(stderr, "\r%-12s [%.*s%*s] %lld/%lld  %.0fs elapsed, ETA %.0fs ", stage, fill,
                "##############################", w - fill, "", (long long)done, (long long)total, el, eta);
        bar_open = 1;
        if (done == total) {
            fputc('\n', stderr);
            bar_open = 0;
        }
    } else if (done > 0 && (done == total || total < 10 || done % (total / 10) == 0)) {
        fprintf(stderr, "qcc: %s %lld/%lld (%.1fs elapsed, ETA %.0fs)\n", stage, (long long)done,
                (long long)total, el, eta);
    }
}

static void progress_end(void) {
    if (bar_open) fputc('\n', stderr);
    bar_open = 0;
}

/* Writes `n` bytes to `out` through a temporary file (--emit cuda-src / ptx). */
static void emit_file(const char *out, const void *p, size_t n) {
    snprintf(tmp_out, sizeof tmp_out, "%s.tmp", out);
    FILE *f = fopen(tmp_out, "wb");
    int ok = f && fwrite(p, 1, n, f) == n;
    if (f) ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp_out, out)) {
        qc_err e;
        qc_err_set(&e, "%s: cannot write: %s", out, strerror(errno));
        die(e.msg);
    }
    tmp_out[0] = 0;
}

static char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    char *p = NULL;
    long sz = -1;
    if (f && !fseek(f, 0, SEEK_END) && (sz = ftell(f)) >= 0 && !fseek(f, 0, SEEK_SET) && (p = malloc((size_t)sz + 1)))
        if (fread(p, 1, (size_t)sz, f) != (size_t)sz) free(p), p = NULL;
    if (f) fclose(f);
    *n = p ? (size_t)sz : 0;
    return p;
}

/* NVRTC runs in a child process. libnvrtc installs signal handlers of its
 * own, process-wide, from its compile threads; in-process they would take
 * SIGINT / SIGTERM from qcc's cleanup (seen: exit 4, a crash, a hang, the
 * temporary directory left behind). The child compiles and writes the CUDA
 * section (or, with `only`, the PTX) to `path`, then exits; the parent
 * keeps its handlers, and on a signal kills the child before cleaning up.
 * Errors: the child prints the one line, the parent exits 1. */
static void nvrtc_child(const args *a, const qc_cuda_module *m, const qc_cuda_opts *co, const qc_cuda_target *only,
                        const char *path) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) die("cannot start the NVRTC process (fork failed)");
    if (pid == 0) {
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        tmp_dir[0] = 0; /* the parent owns the temporary files */
        qc_err err = {{0}};
        qc_cuda_build b;
        double t0 = now_s();
        if (qc_cuda_compile(m, co, only, &b, &err)) {
            fprintf(stderr, "qcc: error: %s\n", err.msg);
            _exit(1);
        }
        uint8_t *blob = NULL;
        size_t blob_size = 0;
        int rc = 0;
        if (only) {
            rc = write_file(path, b.images[0].data, b.images[0].size - 1); /* without the NUL */
        } else if (qc_cuda_blob(m, &b, &blob, &blob_size, &err)) {
            fprintf(stderr, "qcc: error: %s\n", err.msg);
            _exit(1);
        } else {
            rc = write_file(path, blob, blob_size);
        }
        if (rc) {
            fprintf(stderr, "qcc: error: %s: writing the CUDA section failed: %s (disk full?)\n", path, strerror(errno));
            _exit(1);
        }
        if (a->o.verbose && !only)
            fprintf(stderr, "qcc: cuda: %d kernels, %d images (%d from the cache), %.1f MB, NVRTC %s, %.1f s\n",
                    (int)m->n_names, (int)b.n_images, (int)b.cache_hits, (double)blob_size / 1e6,
                    qc_nvrtc_version(), now_s() - t0);
        fflush(NULL);
        _exit(0);
    }
    child_pid = pid;
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    child_pid = 0;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return;
    if (WIFEXITED(st)) { /* the child said why */
        cleanup();
        exit(1);
    }
    char msg[96];
    snprintf(msg, sizeof msg, "NVRTC: the compile process died (signal %d)", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    die(msg);
}

/*
 * The CUDA part of the build: device code for the graph (codegen/cuda),
 * compiled by NVRTC for every --cuda-arch target into the section cpath.
 * Returns the --info "targets" value (owned). With the default --target,
 * a model the GPU kernels cannot run, or a machine without NVRTC, gives a
 * CPU-only executable and one notice; with --target cuda it is an error.
 * --emit cuda-src / ptx write the source / the PTX to `out` and exit here.
 */
static char *cuda_step(const args *a, const qc_graph *g, const char *out, const char *cpath) {
    int src = !strcmp(a->emit, "cuda-src"), ptx = !strcmp(a->emit, "ptx");
#ifdef QC_WITH_CUDA
    int explicit = (a->target && strcmp(a->target, "cpu")) || src || ptx;
    int want = !a->target ? 1 : strcmp(a->target, "cpu") != 0;
#else
    int explicit = (a->target && strcmp(a->target, "cpu")) || ptx;
    int want = explicit || src;
    if (want && !src) die("this qcc was built without CUDA (cmake -DQC_ENABLE_CUDA=ON, with the CUDA toolkit)");
#endif
    if (!want || (strcmp(a->emit, "exe") && !src && !ptx)) return strdup("[\"cpu\"]");
    qc_err err = {{0}};
    qc_cuda_opts co = {0};
    co.opt_level = a->o.opt_level;
    co.threads = a->o.threads;
    co.fuse_norm = a->fuse_norm;
    co.trace = a->cuda_trace;
    co.gemv_warps = a->gemv_warps;
    co.gemv_minb = a->gemv_warps && a->gemv_warps < 16 ? 16 / a->gemv_warps : 1; /* 128 registers at most, as 16 */
    if (qc_cuda_parse_targets(&co, a->cuda_arch ? a->cuda_arch : QC_CUDA_DEFAULT_ARCHS, &err)) die(err.msg);
    /* Compiled images are cached: QCC_CACHE_DIR, else $XDG_CACHE_HOME/qcc, else ~/.cache/qcc ("" = off). */
    char cache[4096] = "";
    const char *env = getenv("QCC_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (env) snprintf(cache, sizeof cache, "%s", env);
    else if (xdg && *xdg) snprintf(cache, sizeof cache, "%s/qcc/cuda", xdg);
    else if (home && *home) snprintf(cache, sizeof cache, "%s/.cache/qcc/cuda", home);
    co.cache_dir = cache[0] ? cache : NULL;

    qc_cuda_module m;
    if (qc_cuda_module_from_graph(&m, g, &co, &err)) {
        if (explicit) die(err.msg);
        if (!a->o.quiet) fprintf(stderr, "qcc: notice: %s; the executable runs on the CPU only\n", err.msg);
        return strdup("[\"cpu\"]");
    }
    if (src) {
        emit_file(out, m.source, m.source_len);
        cleanup();
        if (!a->o.quiet) fprintf(stderr, "qcc: wrote %s (CUDA C, %d kernels)\n", out, (int)m.n_names);
        exit(0);
    }
    char why[512];
    if (!qc_nvrtc_available(why, sizeof why)) {
        if (explicit) {
            qc_err_set(&err, "--target cuda: %s", why);
            die(err.msg);
        }
        if (!a->o.quiet) fprintf(stderr, "qcc: notice: %s; the executable runs on the CPU only\n", why);
        qc_cuda_module_free(&m);
        return strdup("[\"cpu\"]");
    }
    qc_cuda_target only = {1, 0}; /* --emit ptx: the first compute_XY target, else compute_ of the newest sm_XY */
    for (int32_t i = 0; i < co.n_targets && !only.arch; i++)
        if (co.targets[i].ptx) only = co.targets[i];
    int have_ptx = only.arch != 0;
    for (int32_t i = 0; i < co.n_targets && !have_ptx; i++)
        if (co.targets[i].arch > only.arch) only.arch = co.targets[i].arch;
    nvrtc_child(a, &m, &co, ptx ? &only : NULL, cpath);
    if (ptx) {
        size_t n = 0;
        char *text = read_all(cpath, &n);
        if (!text) die("cannot read back the PTX");
        emit_file(out, text, n);
        cleanup();
        if (!a->o.quiet) fprintf(stderr, "qcc: wrote %s (PTX for compute_%d)\n", out, (int)only.arch);
        exit(0);
    }
    /* --info: ["cuda", "cpu"], "cuda_archs": [...], "cuda_kernels": [...] */
    size_t cap = 256 + m.names_size * 2 + (size_t)co.n_targets * 24, n = 0;
    char *t = malloc(cap);
    if (!t) die("out of memory");
    n += (size_t)snprintf(t + n, cap - n, "[\"cuda\", \"cpu\"], \"cuda_archs\": [");
    for (int32_t i = 0; i < co.n_targets; i++)
        n += (size_t)snprintf(t + n, cap - n, "%s\"%s_%d\"", i ? ", " : "", co.targets[i].ptx ? "compute" : "sm",
                              (int)co.targets[i].arch);
    n += (size_t)snprintf(t + n, cap - n, "], \"cuda_kernels\": [");
    const char *k = m.names;
    for (int32_t i = 0; i < m.n_names; i++, k += strlen(k) + 1)
        n += (size_t)snprintf(t + n, cap - n, "%s\"%s\"", i ? ", " : "", k);
    snprintf(t + n, cap - n, "]");
    qc_cuda_module_free(&m);
    return t;
}

int main(int argc, char **argv) {
    args a;
    qc_err err = {{0}};
    if (parse(&a, argc, argv)) return 1;
    /* Installed before any work (also over an inherited SIG_IGN, as a shell
     * gives background jobs): an interrupted compile must clean up. */
    install_handlers();
    signal(SIGXFSZ, SIG_IGN); /* a file-size limit makes write() fail: the error path cleans up */
    a.o.progress = progress;
    a.o.progress_ud = &a;

    qc_graph *g = NULL;
    qc_st *st = NULL;
    if (a.dummy ? qc_model_load_dummy(&g, a.dummy, &err) : qc_model_load(&g, &st, a.model, &err)) die(err.msg);
    dump(&a, g, "load");
    if (qc_pass_convert(g, &a.o, &err) || qc_graph_verify(g, &err)) die(err.msg);
    dump(&a, g, "convert");
    /* --dummy-weights: the packed layouts quantization would give, no values */
    if ((a.dummy ? qc_pass_dummy_quantize(g, &a.o, &err) : qc_pass_quantize(g, &a.o, &err)) ||
        qc_graph_verify(g, &err))
        die(err.msg);
    progress_end();
    dump(&a, g, "quantize");
    if (a.run_prompt) {
        int rc = run_reference(&a, g);
        qc_graph_free(g);
        qc_st_free(st);
        return rc;
    }

    /* Output name: -o, else the model's name with .bin (.o / .ll). */
    char out[4096];
    if (a.out) {
        snprintf(out, sizeof out, "%s", a.out);
    } else {
        const char *ext = !strcmp(a.emit, "exe")        ? ".bin"
                          : !strcmp(a.emit, "obj")      ? ".o"
                          : !strcmp(a.emit, "cuda-src") ? ".cu"
                          : !strcmp(a.emit, "ptx")      ? ".ptx"
                                                        : ".ll";
        char base[1024];
        snprintf(base, sizeof base, "%s", a.dummy ? a.dummy : a.model);
        size_t bl = strlen(base);
        while (bl > 1 && base[bl - 1] == '/') base[--bl] = 0;
        char *b = strrchr(base, '/');
        b = b ? b + 1 : base;
        char *dot = strrchr(b, '.');
        if (dot && dot != b) *dot = 0;
        snprintf(out, sizeof out, "%s%s", b, ext);
    }

    snprintf(tmp_dir, sizeof tmp_dir, "%s.qcc-XXXXXX", out);
    if (!mkdtemp(tmp_dir)) {
        qc_err_set(&err, "%s: cannot create a temporary directory beside it: %s", out, strerror(errno));
        tmp_dir[0] = 0;
        die(err.msg);
    }
    char wpath[4300], tpath[4300], ipath[4300], opath[4300], cpath[4300];
    snprintf(cpath, sizeof cpath, "%s/%s", tmp_dir, tmp_names[4]);
    char *targets = cuda_step(&a, g, out, cpath);
    snprintf(wpath, sizeof wpath, "%s/%s", tmp_dir, tmp_names[0]);
    snprintf(tpath, sizeof tpath, "%s/%s", tmp_dir, tmp_names[1]);
    snprintf(ipath, sizeof ipath, "%s/%s", tmp_dir, tmp_names[2]);
    snprintf(opath, sizeof opath, "%s/%s", tmp_dir, tmp_names[3]);

    uint8_t whash[16];
    FILE *wf = fopen(wpath, "wb");
    if (!wf) {
        qc_err_set(&err, "%s: cannot write the weight blob: %s", wpath, strerror(errno));
        die(err.msg);
    }
    uint64_t dummy_size = 0; /* --dummy-weights: the blob the executable generates */
    int prc = a.dummy ? qc_pass_plan_dummy(g, a.o.seed, wf, whash, &dummy_size, &err) : qc_pass_plan(g, wf, whash, &err);
    if (fclose(wf) && !prc) prc = qc_err_set(&err, "%s: write failed: %s", wpath, strerror(errno));
    if (prc) {
        qc_err e2;
        qc_err_set(&e2, "%s: %s", out, err.msg);
        die(e2.msg);
    }
    dump(&a, g, "plan");
    if (write_file(tpath, g->tokenizer, g->tokenizer_size) || write_info(ipath, g, &a, whash, targets)) {
        qc_err_set(&err, "%s: cannot write temporary files: %s", tmp_dir, strerror(errno));
        die(err.msg);
    }

    snprintf(tmp_out, sizeof tmp_out, "%s.tmp", out);
    int is_exe = !strcmp(a.emit, "exe"), is_ir = !strcmp(a.emit, "llvm-ir");
    qc_codegen_opts co = {
        .weights_path = wpath,
        .tokenizer_path = tpath,
        .info_path = ipath,
        .cuda_path = strcmp(targets, "[\"cpu\"]") ? cpath : NULL,
        .obj_path = is_ir ? NULL : (is_exe ? opath : tmp_out),
        .ir_path = is_ir ? tmp_out : NULL,
        .opt_level = a.o.opt_level,
        .dummy_size = a.dummy ? (dummy_size ? dummy_size : 1) : 0,
    };
    if (qc_codegen_llvm(g, &co, &err)) die(err.msg);
    if (is_exe && qc_link_exe(opath, tmp_out, &err)) die(err.msg);
    if (rename(tmp_out, out)) {
        qc_err_set(&err, "%s: cannot write: %s", out, strerror(errno));
        die(err.msg);
    }
    tmp_out[0] = 0;
    cleanup();
    if (!a.o.quiet)
        fprintf(stderr, "qcc: wrote %s (%s, %d layers, %d-bit%s)\n", out, g->cfg.model_type, g->cfg.n_layers,
                a.o.bits, a.dummy ? ", dummy weights generated at start" : "");
    free(targets);
    qc_graph_free(g);
    qc_st_free(st);
    return 0;
}
