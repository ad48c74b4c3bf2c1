/*
 * test_sampler.c — runtime/sampler.c, the rule the GPU's candidate kernel
 * must reproduce.
 *
 *   1. qrt_sample_candidates equals a full qsort by (logit desc, id asc) cut
 *      to k, for k in {1, 2, 40, 1000, vocab}, on fresh random logits drawn
 *      from a few levels (so ties are everywhere) and on all-equal logits.
 *   2. Greedy (temp 0) is the first largest logit.
 *   3. The draw follows the renormalized distribution: on logits with
 *      probabilities 0.5 / 0.3 / 0.15 / 0.05, 200,000 draws land within 0.005
 *      of p (temp 1), of p restricted to the top 2 (top-k 2: 0.625 / 0.375),
 *      and top-p 0.79 keeps exactly ids {0, 1}, top-p 0.81 exactly {0, 1, 2}.
 *   4. The same seed draws the same sequence.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qrt.h"

#define QC_TEST_SEED 0x5a3b1e9d77ull
#include "check.h"

static const float *keys;
static int by_ref(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (keys[x] != keys[y]) return keys[x] > keys[y] ? -1 : 1;
    return (x > y) - (x < y);
}

static void test_candidates(void) {
    const int32_t V = 5000;
    float *lg = malloc(V * sizeof(float)), *val = malloc(V * sizeof(float));
    int32_t *idx = malloc(V * sizeof(int32_t)), *ref = malloc(V * sizeof(int32_t));
    const int32_t ks[] = {1, 2, 40, 1000, 0};
    for (int rep = 0; rep < 6; rep++) {
        for (int32_t i = 0; i < V; i++)
            lg[i] = rep == 5 ? 0.25f : (float)(next64() % 37) * 0.5f - 9.0f; /* 37 levels: ties */
        for (int32_t i = 0; i < V; i++) ref[i] = i;
        keys = lg;
        qsort(ref, V, sizeof(int32_t), by_ref);
        for (int ki = 0; ki < 5; ki++) {
            qrt_sampler s;
            CHECK(qrt_sampler_init(&s, V, 1.0f, ks[ki], 1.0f, 1) == 0, "init");
            int32_t n = qrt_sample_candidates(&s, lg, val, idx), want = ks[ki] ? ks[ki] : V;
            CHECK(n == want, "k %d: %d candidates, want %d", ks[ki], n, want);
            int32_t bad = 0;
            for (int32_t i = 0; i < n && i < want; i++) bad += idx[i] != ref[i] || val[i] != lg[ref[i]];
            CHECK(bad == 0, "rep %d k %d: %d candidates differ from the sorted reference", rep, ks[ki], bad);
            qrt_sampler_free(&s);
        }
        qrt_sampler g;
        qrt_sampler_init(&g, V, 0.0f, 40, 0.9f, 1);
        CHECK(qrt_sample(&g, lg) == ref[0], "greedy: %d, want %d", qrt_sample(&g, lg), ref[0]);
        qrt_sampler_free(&g);
    }
    free(lg), free(val), free(idx), free(ref);
}

/* Frequencies of 200,000 draws over 6 ids (4 live ones). */
static void freq(float temp, int32_t k, float p, uint64_t seed, double *f) {
    const float lg[6] = {logf(0.5f), logf(0.3f), logf(0.15f), logf(0.05f), -1e30f, -1e30f};
    qrt_sampler s;
    qrt_sampler_init(&s, 6, temp, k, p, seed);
    memset(f, 0, 6 * sizeof *f);
    for (int i = 0; i < 200000; i++) f[qrt_sample(&s, lg)] += 1.0 / 200000;
    qrt_sampler_free(&s);
}

static void test_distribution(void) {
    double f[6];
    const double p[4] = {0.5, 0.3, 0.15, 0.05};
    freq(1.0f, 0, 1.0f, 11, f);
    for (int i = 0; i < 4; i++) CHECK(fabs(f[i] - p[i]) < 0.005, "temp 1: id %d freq %.4f, want %.2f", i, f[i], p[i]);
    CHECK(f[4] == 0 && f[5] == 0, "temp 1: drew an impossible id");
    freq(1.0f, 2, 1.0f, 12, f);
    CHECK(fabs(f[0] - 0.625) < 0.005 && fabs(f[1] - 0.375) < 0.005 && f[2] == 0,
          "top-k 2: %.4f %.4f %.4f, want 0.625 0.375 0", f[0], f[1], f[2]);
    freq(1.0f, 0, 0.79f, 13, f);
    CHECK(f[0] > 0.55 && f[1] > 0.3 && f[2] == 0 && f[3] == 0, "top-p 0.79: %.4f %.4f %.4f %.4f", f[0], f[1], f[2], f[3]);
    freq(1.0f, 0, 0.81f, 14, f);
    CHECK(f[2] > 0.1 && f[3] == 0, "top-p 0.81: %.4f %.4f %.4f %.4f", f[0], f[1], f[2], f[3]);
    double a[6], b[6];
    freq(0.7f, 3, 0.95f, 99, a);
    freq(0.7f, 3, 0.95f, 99, b);
    CHECK(!memcmp(a, b, sizeof a), "the same seed drew differently");
}

int main(void) {
    test_candidates();
    test_distribution();
    if (fails) fprintf(stderr, "%d check(s) failed\n", fails);
    else printf("ok\n");
    return fails != 0;
}
