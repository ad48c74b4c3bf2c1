/*
 * test_awq_fold.c — where AWQ / SmoothQuant fold their scales
 * (passes/awq.c: qc_linear_groups, qc_fold_scales), on real graphs.
 *
 *   1. stories260K (llama, 8 query / 4 KV heads): every layer has the four
 *      groups q/k/v (NORM), o (ROWS into v_proj, tie 2, head_dim 8),
 *      gate/up (NORM), down (ROWS into up_proj); the q/k linears are the
 *      ones that feed attention's q and k.
 *   2. Folding random scales (log-normal, spread e^+-2) into every group of
 *      every layer leaves the float model's logits unchanged up to rounding
 *      (the fold is exact in real arithmetic): max |dlogit| <= 2e-3 of the
 *      largest |logit| over 24 tokens, with the executor given the folded
 *      values; a deliberately wrong fold (the o_proj scales not tied across
 *      the two heads of a KV head) changes them by far more.
 *   3. The GPT-2 and OPT fixtures (tests/golden): LayerNorm groups fold
 *      (weight and bias), fc2 after ReLU folds into fc1 (OPT), after GELU
 *      it does not (GPT-2); the same logits check holds.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc/frontend.h"
#include "qc/passes.h"

#define QC_TEST_SEED 0xf01dab1e5ull
#include "check.h"


enum { T = 24 };

static float *logits(const qc_graph *g, qc_exec *e, const int32_t *tok) {
    const float *l = qc_exec_forward(e, tok, T, 0);
    float *c = malloc(sizeof(float) * T * g->cfg.vocab);
    memcpy(c, l, sizeof(float) * T * g->cfg.vocab);
    return c;
}

static double max_diff(const float *a, const float *b, size_t n, double *scale) {
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)a[i]));
    }
    *scale = m;
    return d;
}

/* Random scales for a group, tied where the group needs it (or not, if `untie`). */
static void scales(const qc_lgroup *G, float *s, int untie) {
    for (int32_t c = 0; c < G->K; c++) s[c] = (float)exp(4 * unif() - 2);
    if (G->fold == QC_FOLD_ROWS && G->tie > 1 && !untie)
        for (int32_t c = 0; c < G->K; c++) {
            int32_t hd = G->head_dim, c0 = (c / hd / G->tie) * G->tie * hd + c % hd;
            s[c] = s[c0];
        }
}

/* Folds random scales into every foldable group; returns the groups found. */
static int32_t fold_all(qc_graph *g, qc_exec *e, int untie_o, qc_lgroup *grp, int32_t cap) {
    int32_t ng = qc_linear_groups(g, 0, g->n_ops, grp, cap);
    for (int32_t i = 0; i < ng && i < cap; i++) {
        if (grp[i].fold == QC_FOLD_NONE) continue;
        float *s = malloc(sizeof(float) * grp[i].K);
        scales(&grp[i], s, untie_o);
        CHECK(qc_fold_scales(g, &grp[i], s, e) == 0, "fold");
        free(s);
    }
    return ng;
}

static qc_st *sts[8]; /* the graphs borrow the checkpoints' bytes: closed at exit */
static int nst;

static qc_graph *load(const char *path) {
    qc_graph *g = NULL;
    qc_st *st = NULL;
    qc_err err = {{0}};
    if (qc_model_load(&g, &st, path, &err)) {
        fprintf(stderr, "%s: %s\n", path, err.msg);
        exit(1);
    }
    if (nst < 8) sts[nst++] = st;
    for (int32_t i = 0; i < g->n_tensors; i++) g->tensors[i].out_dtype = QRT_DT_F32;
    return g;
}

/* Checks that folding random scales keeps the logits; `expect` lists the
 * fold of each group of layer 0 (NONE / NORM / ROWS). */
static void check_model(const char *path, const int32_t *expect, int32_t n_expect, int check_untie) {
    qc_graph *g = load(path);
    int32_t tok[T];
    for (int i = 0; i < T; i++) tok[i] = (int32_t)(1 + next64() % (uint64_t)(g->cfg.vocab - 1));
    qc_exec *e = qc_exec_new(g, T);
    float *ref = logits(g, e, tok);
    qc_lgroup grp[256];
    int32_t ng = fold_all(g, e, 0, grp, 256);
    CHECK(ng >= n_expect, "%s: %d groups", path, ng);
    for (int32_t i = 0; i < n_expect && i < ng; i++)
        CHECK(grp[i].fold == expect[i], "%s: group %d (%s): fold %d, expected %d", path, i,
              g->tensors[g->ops[grp[i].first].w].name, grp[i].fold, expect[i]);
    float *got = logits(g, e, tok);
    double scale, d = max_diff(ref, got, (size_t)T * g->cfg.vocab, &scale);
    printf("%s: %d groups, max |dlogit| %.3g of %.3g after folding\n", path, ng, d, scale);
    CHECK(d <= 2e-3 * scale, "%s: folding changed the logits by %g (max %g)", path, d, scale);
    free(got);
    qc_exec_free(e);
    qc_graph_free(g);
    if (check_untie) { /* the tie is needed: o_proj scales differing across a KV head's query heads */
        g = load(path);
        e = qc_exec_new(g, T);
        fold_all(g, e, 1, grp, 256);
        got = logits(g, e, tok);
        d = max_diff(ref, got, (size_t)T * g->cfg.vocab, &scale);
        CHECK(d > 1e-2 * scale, "%s: an untied o_proj fold went unnoticed (%g)", path, d);
        free(got);
        qc_exec_free(e);
        qc_graph_free(g);
    }
    free(ref);
}

int main(void) {
    /* 1. structure of stories260K */
    qc_graph *g = load(QC_DATA "/stories260K");
    qc_lgroup grp[64];
    int32_t ng = qc_linear_groups(g, 0, g->n_ops, grp, 64);
    CHECK(ng == 4 * g->cfg.n_layers, "%d groups", ng);
    for (int32_t i = 0; i < ng && i < 64; i++) {
        const qc_lgroup *G = &grp[i];
        const char *name = g->tensors[g->ops[G->first].w].name;
        const char *prev = G->prev >= 0 && g->ops[G->prev].w >= 0 ? g->tensors[g->ops[G->prev].w].name : "-";
        switch (i % 4) {
        case 0:
            CHECK(strstr(name, "q_proj") && G->end - G->first == 3 && G->fold == QC_FOLD_NORM &&
                      strstr(prev, "input_layernorm"), "group %d: %s fold %d prev %s", i, name, G->fold, prev);
            CHECK(qc_linear_feeds_qk(g, G->first) && qc_linear_feeds_qk(g, G->first + 1) &&
                      !qc_linear_feeds_qk(g, G->first + 2), "q/k detection in group %d", i);
            break;
        case 1:
            CHECK(strstr(name, "o_proj") && G->fold == QC_FOLD_ROWS && strstr(prev, "v_proj") && G->tie == 2 &&
                      G->head_dim == 8, "group %d: %s fold %d prev %s tie %d", i, name, G->fold, prev, G->tie);
            break;
        case 2:
            CHECK(strstr(name, "gate_proj") && G->end - G->first == 2 && G->fold == QC_FOLD_NORM &&
                      strstr(prev, "post_attention_layernorm"), "group %d: %s fold %d prev %s", i, name, G->fold, prev);
            break;
        default:
            CHECK(strstr(name, "down_proj") && G->fold == QC_FOLD_ROWS && strstr(prev, "up_proj") && G->tie == 1,
                  "group %d: %s fold %d prev %s", i, name, G->fold, prev);
            CHECK(!qc_linear_feeds_qk(g, G->first), "down is no q/k");
        }
    }
    qc_graph_free(g);

    /* 2. folding keeps the model */
    static const int32_t llama[] = {QC_FOLD_NORM, QC_FOLD_ROWS, QC_FOLD_NORM, QC_FOLD_ROWS};
    check_model(QC_DATA "/stories260K", llama, 4, 1);
    /* 3. GPT-2 (GELU: no fold for c_proj) and OPT (ReLU: fc2 into fc1) */
    static const int32_t gpt2[] = {QC_FOLD_NORM, QC_FOLD_ROWS, QC_FOLD_NORM, QC_FOLD_NONE};
    static const int32_t opt[] = {QC_FOLD_NORM, QC_FOLD_ROWS, QC_FOLD_NORM, QC_FOLD_ROWS};
    check_model(QC_TESTS_DIR "/golden/gpt2_tiny", gpt2, 4, 0);
    check_model(QC_TESTS_DIR "/golden/opt_tiny", opt, 4, 0);
    for (int i = 0; i < nst; i++) qc_st_free(sts[i]);
    if (fails) {
        fprintf(stderr, "test_awq_fold: %d failure(s)\n", fails);
        return 1;
    }
    printf("test_awq_fold: ok\n");
    return 0;
}
