/*
 * runtime/cli.c — the executable's command line. Flag names follow
 * llama.cpp's so people need not learn new ones.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qrt.h"

static void usage(const char *prog) {
    printf("usage: %s [options]\n"
           "  -p, --prompt TEXT       prompt to continue (default: none, start from BOS)\n"
           "  -n, --n-predict N       tokens to generate (default 128; in a chat: per reply)\n"
           "  -i, --interactive       chat with the model's chat template, one message per line of stdin\n"
           "  --chat                  -p is one chat message (default: -p is plain text to continue)\n"
           "  --system TEXT           the chat's system message (default: the template's own, if any)\n"
           "  --temp T                sampling temperature, 0 = greedy (default 0.8)\n"
           "  --top-k K               keep the K most likely tokens, 0 = off (default 40)\n"
           "  --top-p P               nucleus sampling mass, 1 = off (default 0.95)\n"
           "  --seed S                random seed (default: from the clock)\n"
           "  -c, --ctx-size N        context length (default: the model's)\n"
           "  -t, --threads N         CPU threads (default: all cores)\n"
           "  --device cpu|cuda       where to run (default: cuda when available, else cpu)\n"
           "  --cache-type f32|f16    GPU KV cache element type (default f32)\n"
           "  --no-cuda-graph         GPU: launch every decode step's kernels instead of replaying a graph\n"
           "  --no-pdl                GPU: no programmatic dependent launch (sm_90+: each kernel starts only\n"
           "                          when the one before it has finished)\n"
           "  --no-fuse-norm          GPU: RMSNorms and residual adds as kernels of their own (default: each\n"
           "                          RMSNorm inside the q/k/v and gate/up GEMVs after it, each residual add in\n"
           "                          the GEMV before it; docs/cuda.md)\n"
           "  --no-fuse-rope          GPU: RoPE of q and k and the KV append as a kernel of their own (default:\n"
           "                          in the decode attention's prologue; docs/cuda.md)\n"
           "  --no-cluster            GPU: decode attention splits merged through global memory (default on\n"
           "                          sm_90+: each head's splits one thread block cluster; docs/cuda.md)\n"
           "  --no-lookahead          GPU, greedy: wait for the host between decode steps (default: the next\n"
           "                          step is queued behind the sampling kernel; docs/cuda.md)\n"
           "  --fused-gemm-max N      GPU, packed weights: prefill chunks of 4 to N tokens (default 64) read the\n"
           "                          weights packed in one fused dequantize + GEMM kernel; longer ones, or all\n"
           "                          with N = 0, dequantize to f16 for cuBLAS (up to 8 tokens: the GEMV)\n"
           "                          (docs/cuda.md)\n"
           "  --perplexity FILE       perplexity of FILE over windows of -c tokens\n"
           "  --stride N              window stride for --perplexity (default: -c, no overlap)\n"
           "  --bench                 measure prefill and decode tokens/s\n"
           "  --prompt-len N, --gen N sizes for --bench (default 128, 64)\n"
           "  --info                  print what built this file (JSON) and exit\n"
           "  --no-verify             skip the start-up integrity check of the embedded sections\n"
           "  -v, --verbose           timings and notices on stderr\n"
           "  -h, --help              this text\n",
           prog);
}

static int num(const char *flag, const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "error: %s: invalid value '%s' (expected a number in [%g, %g])\n", flag, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int qrt_args_parse(qrt_args *a, int argc, char **argv) {
    memset(a, 0, sizeof *a);
    a->n_predict = 128;
    a->temp = 0.8f;
    a->fuse_norm = 1;
    a->top_k = 40;
    a->top_p = 0.95f;
    a->prompt_len = 128;
    a->gen_len = 64;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        double v;
#define IS(x) (strcmp(f, x) == 0)
#define VAL()                                                              \
    (i + 1 < argc ? argv[++i]                                              \
                  : (fprintf(stderr, "error: %s needs a value\n", f), (char *)NULL))
#define NUM(lo, hi)                                   \
    do {                                              \
        const char *s_ = VAL();                       \
        if (!s_ || num(f, s_, lo, hi, &v)) return -1; \
    } while (0)
        if (IS("-h") || IS("--help")) {
            usage(argv[0]);
            return 1;
        } else if (IS("-p") || IS("--prompt")) {
            if (!(a->prompt = VAL())) return -1;
        } else if (IS("-n") || IS("--n-predict")) {
            NUM(0, 1e9);
            a->n_predict = (int32_t)v;
        } else if (IS("--temp")) {
            NUM(0, 100);
            a->temp = (float)v;
        } else if (IS("--top-k")) {
            NUM(0, 1e9);
            a->top_k = (int32_t)v;
        } else if (IS("--top-p")) {
            NUM(0, 1);
            a->top_p = (float)v;
        } else if (IS("--seed")) {
            NUM(0, 1.8e19);
            a->seed = (uint64_t)v;
            a->seed_set = 1;
        } else if (IS("-c") || IS("--ctx-size")) {
            NUM(0, 1 << 24);
            a->n_ctx = (int32_t)v;
        } else if (IS("-t") || IS("--threads")) {
            NUM(0, 4096);
            a->threads = (int32_t)v;
        } else if (IS("--perplexity")) {
            if (!(a->perplexity = VAL())) return -1;
        } else if (IS("--stride")) {
            NUM(1, 1 << 24);
            a->stride = (int32_t)v;
        } else if (IS("--bench")) {
            a->bench = 1;
        } else if (IS("--prompt-len")) {
            NUM(1, 1 << 24);
            a->prompt_len = (int32_t)v;
        } else if (IS("--gen")) {
            NUM(1, 1 << 24);
            a->gen_len = (int32_t)v;
        } else if (IS("-i") || IS("--interactive")) {
            a->interactive = 1;
        } else if (IS("--chat")) {
            a->chat = 1;
        } else if (IS("--system")) {
            if (!(a->system = VAL())) return -1;
        } else if (IS("--dump-ids")) { /* hidden debugging flags (runtime/chat.c) */
            a->dump_ids = 1;
        } else if (IS("--dump-logits")) {
            if (!(a->dump_logits = VAL())) return -1;
        } else if (IS("--ids")) {
            if (!(a->ids = VAL())) return -1;
        } else if (IS("--info")) {
            a->info = 1;
        } else if (IS("--no-verify")) {
            a->no_verify = 1;
        } else if (IS("-v") || IS("--verbose")) {
            a->verbose = 1;
        } else if (IS("--cache-type")) {
            const char *t = VAL();
            if (!t) return -1;
            if (strcmp(t, "f32") && strcmp(t, "f16")) {
                fprintf(stderr, "error: --cache-type: unknown type '%s' (expected f32 or f16)\n", t);
                return -1;
            }
            a->kv_f16 = t[1] == '1';
        } else if (IS("--no-cuda-graph")) {
            a->no_graph = 1;
        } else if (IS("--no-pdl")) {
            a->no_pdl = 1;
        } else if (IS("--fuse-norm")) { /* the default */
            a->fuse_norm = 1;
        } else if (IS("--no-fuse-norm")) {
            a->fuse_norm = 0;
        } else if (IS("--no-fuse-rope")) {
            a->no_fuse_rope = 1;
        } else if (IS("--no-cluster")) {
            a->no_cluster = 1;
        } else if (IS("--no-lookahead")) {
            a->no_lookahead = 1;
        } else if (IS("--fused-gemm-max")) {
            NUM(0, 1 << 20);
            a->fused_gemm_max = v > 0 ? (int32_t)v : -1;
        } else if (IS("--device")) {
            const char *d = VAL();
            if (!d) return -1;
            if (strcmp(d, "cpu") == 0) a->device = 1;
            else if (strcmp(d, "cuda") == 0) a->device = 2;
            else {
                fprintf(stderr, "error: --device: unknown device '%s' (expected cpu or cuda)\n", d);
                return -1;
            }
        } else {
            fprintf(stderr, "error: unknown option '%s' (see --help)\n", f);
            return -1;
        }
#undef IS
#undef VAL
#undef NUM
    }
    return 0;
}
