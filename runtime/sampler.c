/*
 * runtime/sampler.c — next-token choice: greedy at temperature 0, else
 * softmax(logits / T) restricted to the top-k and then to the smallest set
 * whose mass reaches top-p, drawn with a seeded splitmix64 generator (the
 * same seed gives the same text on every machine).
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
    return s->probs && s->idx ? 0 : -1;
}

void qrt_sampler_free(qrt_sampler *s) {
    free(s->probs);
    free(s->idx);
}

static const float *sort_keys;
static int by_prob_desc(const void *a, const void *b) {
    float pa = sort_keys[*(const int32_t *)a], pb = sort_keys[*(const int32_t *)b];
    if (pa != pb) return pa < pb ? 1 : -1;
    return *(const int32_t *)a - *(const int32_t *)b; /* ties: lower id first */
}

int32_t qrt_sample(qrt_sampler *s, const float *logits) {
    int32_t n = s->vocab, best = 0;
    for (int32_t i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    if (s->temp <= 0.0f) return best;
    double sum = 0;
    for (int32_t i = 0; i < n; i++) {
        s->probs[i] = expf((logits[i] - logits[best]) / s->temp);
        sum += s->probs[i];
        s->idx[i] = i;
    }
    for (int32_t i = 0; i < n; i++) s->probs[i] = (float)(s->probs[i] / sum);
    sort_keys = s->probs;
    qsort(s->idx, (size_t)n, sizeof(int32_t), by_prob_desc);
    int32_t keep = n;
    if (s->top_k > 0 && s->top_k < keep) keep = s->top_k;
    double mass = 0;
    if (s->top_p < 1.0f) {
        for (int32_t i = 0; i < keep; i++) {
            mass += s->probs[s->idx[i]];
            if (mass >= s->top_p) {
                keep = i + 1;
                break;
            }
        }
    }
    mass = 0;
    for (int32_t i = 0; i < keep; i++) mass += s->probs[s->idx[i]];
    double r = (double)(splitmix64(&s->rng) >> 11) * (1.0 / 9007199254740992.0) * mass;
    for (int32_t i = 0; i < keep; i++) {
        r -= s->probs[s->idx[i]];
        if (r < 0) return s->idx[i];
    }
    return s->idx[keep - 1];
}
