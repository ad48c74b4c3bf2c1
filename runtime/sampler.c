/*
 * runtime/sampler.c — next-token choice.
 *
 * Temperature 0: the largest logit (ties: the lowest id). Otherwise, in
 * this order (llama.cpp's): the candidates are the top-k logits (all of
 * them when top-k is off), sorted by logit, ties lowest id first;
 * p_i = exp((l_i - l_0) / T) normalized over the candidates; top-p keeps
 * the shortest prefix whose mass reaches p; one draw from a seeded
 * splitmix64 generator picks among the kept (the same seed gives the same
 * text on every machine).
 *
 * The candidates are a pure function of the logits, so the GPU computes
 * them itself (runtime/cuda.c, qk_topk) and only k (logit, id) pairs cross
 * to the host, which finishes here with qrt_sample_from: GPU and CPU draw
 * the same token from the same logits.
 */
#include <math.h>
#include <stdlib.h>

#include "qrt.h"

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int qrt_sampler_init(qrt_sampler *s, int32_t vocab, float temp, int32_t top_k, float top_p, uint64_t seed) {
    s->temp = temp;
    s->top_k = top_k;
    s->top_p = top_p;
    s->rng = seed;
    s->vocab = vocab;
    s->probs = malloc((size_t)vocab * sizeof(float));
    s->idx = malloc((size_t)vocab * sizeof(int32_t));
    s->val = malloc((size_t)vocab * sizeof(float));
    return s->probs && s->idx && s->val ? 0 : -1;
}

void qrt_sampler_free(qrt_sampler *s) {
    free(s->probs);
    free(s->idx);
    free(s->val);
}

int32_t qrt_sampler_k(const qrt_sampler *s) {
    if (s->temp <= 0.0f) return 1;
    return s->top_k > 0 && s->top_k < s->vocab ? s->top_k : s->vocab;
}

/* a before b: larger logit, then lower id */
static int before(float va, int32_t ia, float vb, int32_t ib) {
    return va > vb || (va == vb && ia < ib);
}

/* Sift-down in a heap whose root is the candidate that sorts LAST. */
static void sift(float *v, int32_t *ix, int32_t n, int32_t i) {
    for (;;) {
        int32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && before(v[m], ix[m], v[l], ix[l])) m = l;
        if (r < n && before(v[m], ix[m], v[r], ix[r])) m = r;
        if (m == i) return;
        float tv = v[i];
        int32_t ti = ix[i];
        v[i] = v[m], ix[i] = ix[m], v[m] = tv, ix[m] = ti;
        i = m;
    }
}

int32_t qrt_sample_candidates(const qrt_sampler *s, const float *logits, float *val, int32_t *idx) {
    const int32_t n = s->vocab, k = qrt_sampler_k(s);
    for (int32_t i = 0; i < k; i++) val[i] = logits[i], idx[i] = i;
    for (int32_t i = k / 2 - 1; i >= 0; i--) sift(val, idx, k, i);
    for (int32_t i = k; i < n; i++)
        if (before(logits[i], i, val[0], idx[0])) {
            val[0] = logits[i], idx[0] = i;
            sift(val, idx, k, 0);
        }
    for (int32_t m = k - 1; m > 0; m--) { /* heap sort: the last in order goes to the back */
        float tv = val[0];
        int32_t ti = idx[0];
        val[0] = val[m], idx[0] = idx[m], val[m] = tv, idx[m] = ti;
        sift(val, idx, m, 0);
    }
    return k;
}

int32_t qrt_sample_from(qrt_sampler *s, const float *val, const int32_t *idx, int32_t n) {
    if (s->temp <= 0.0f || n == 1) return idx[0];
    double sum = 0;
    for (int32_t i = 0; i < n; i++) sum += (s->probs[i] = expf((val[i] - val[0]) / s->temp));
    int32_t keep = n;
    if (s->top_p < 1.0f) {
        double mass = 0;
        for (int32_t i = 0; i < n; i++)
            if ((mass += s->probs[i] / sum) >= s->top_p) {
                keep = i + 1;
                break;
            }
    }
    double mass = 0;
    for (int32_t i = 0; i < keep; i++) mass += s->probs[i];
    double r = (double)(splitmix64(&s->rng) >> 11) * (1.0 / 9007199254740992.0) * mass;
    for (int32_t i = 0; i < keep; i++)
        if ((r -= s->probs[i]) < 0) return idx[i];
    return idx[keep - 1];
}

int32_t qrt_sample(qrt_sampler *s, const float *logits) {
    if (s->temp <= 0.0f) { /* greedy: no candidate list needed */
        int32_t best = 0;
        for (int32_t i = 1; i < s->vocab; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }
    int32_t n = qrt_sample_candidates(s, logits, s->val, s->idx);
    return qrt_sample_from(s, s->val, s->idx, n);
}
