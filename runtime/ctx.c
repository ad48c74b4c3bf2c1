/*
 * runtime/ctx.c — the model the generated object describes, and the state
 * of one sequence: activation buffers, KV cache, scratch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dummy.h"
#include "qrt.h"
#include "qrt_cuda.h"

#include <xxhash.h>

extern const int32_t qm_config[];
extern const int32_t qm_buf_widths[];
extern void qm_forward(qrt_ctx *ctx);
extern const uint8_t qm_weights_start[], qm_weights_end[];
extern const uint8_t qm_tokenizer_start[], qm_tokenizer_end[];
extern const uint8_t qm_info_start[], qm_info_end[];
/* Only in executables built with a CUDA target (weak: NULL otherwise). */
extern const uint8_t qm_cuda_start[] __attribute__((weak));
extern const uint8_t qm_cuda_end[] __attribute__((weak));

/* Each embedded section ends with a 16-byte trailer: the xxh3-128 of the
 * bytes before it (canonical order), written by qcc. */
static size_t payload(const uint8_t *start, const uint8_t *end) {
    size_t n = (size_t)(end - start);
    return n >= QRT_TRAILER ? n - QRT_TRAILER : 0;
}

void qrt_model_bind(qrt_model *m) {
    memcpy(m->cfg, qm_config, sizeof m->cfg);
    m->buf_widths = qm_buf_widths;
    m->forward = qm_forward;
    m->weights = qm_weights_start;
    m->weights_size = payload(qm_weights_start, qm_weights_end);
    m->tokenizer = qm_tokenizer_start;
    m->tokenizer_size = payload(qm_tokenizer_start, qm_tokenizer_end);
    m->info = (const char *)qm_info_start;
    m->info_size = payload(qm_info_start, qm_info_end);
    m->cuda = qm_cuda_start && qm_cuda_end ? qm_cuda_start : NULL;
    m->cuda_size = m->cuda ? payload(qm_cuda_start, qm_cuda_end) : 0;
    m->gpu = NULL;
    qrt_dummy_bind(m); /* --dummy-weights: the section is a descriptor (runtime/dummy.c) */
}

static int section_ok(const uint8_t *p, size_t n) {
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(p, n));
    return memcmp(c.digest, p + n, QRT_TRAILER) == 0;
}

const char *qrt_model_verify(const qrt_model *m) {
    if ((size_t)(qm_weights_end - qm_weights_start) < QRT_TRAILER ||
        (size_t)(qm_tokenizer_end - qm_tokenizer_start) < QRT_TRAILER ||
        (size_t)(qm_info_end - qm_info_start) < QRT_TRAILER)
        return "embedded sections";
    if (!section_ok((const uint8_t *)m->info, m->info_size)) return "info";
    if (!section_ok(m->tokenizer, m->tokenizer_size)) return "tokenizer";
    if (m->cuda && ((size_t)(qm_cuda_end - qm_cuda_start) < QRT_TRAILER || !section_ok(m->cuda, m->cuda_size)))
        return "cuda";
    if (!section_ok(m->weights, m->weights_size)) return "weights";
    return NULL;
}

float *qrt_buf(qrt_ctx *ctx, int32_t id) {
    return ctx->bufs[id];
}

qrt_ctx *qrt_ctx_new(const qrt_model *m, int32_t n_ctx) {
    qrt_ctx *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    const int32_t *cfg = m->cfg;
    int32_t nb = cfg[QRT_CFG_N_BUFS];
    c->m = m;
    c->n_ctx = n_ctx;
    c->max_batch = cfg[QRT_CFG_MAX_BATCH] < n_ctx ? cfg[QRT_CFG_MAX_BATCH] : n_ctx;
    c->bufs = calloc((size_t)nb, sizeof(float *));
    int ok = c->bufs != NULL;
    if (ok && m->gpu) {
        char msg[512];
        if (qrt_cuda_ctx_init(c, msg, sizeof msg) == 0) return c;
        fprintf(stderr, "notice: GPU context for %d tokens: %s; running on the CPU\n", n_ctx, msg);
    }
    qrt_dummy_host(); /* --dummy-weights: generated in host memory the first time the CPU needs them */
    for (int32_t i = 0; ok && i < nb; i++)
        ok = (c->bufs[i] = calloc((size_t)c->max_batch * m->buf_widths[i], sizeof(float))) != NULL;
    size_t kv = (size_t)cfg[QRT_CFG_N_LAYERS] * n_ctx * cfg[QRT_CFG_N_KV_HEADS] * cfg[QRT_CFG_HEAD_DIM];
    ok = ok && (c->kcache = calloc(kv, sizeof(float))) && (c->vcache = calloc(kv, sizeof(float))) &&
         (c->scores = calloc((size_t)c->max_batch * n_ctx, sizeof(float)));
    /* Tile for non-f32 weights: at least one row of the widest input. */
    int32_t kmax = cfg[QRT_CFG_DIM] > cfg[QRT_CFG_FFN_DIM] ? cfg[QRT_CFG_DIM] : cfg[QRT_CFG_FFN_DIM];
    if (cfg[QRT_CFG_N_HEADS] * cfg[QRT_CFG_HEAD_DIM] > kmax) kmax = cfg[QRT_CFG_N_HEADS] * cfg[QRT_CFG_HEAD_DIM];
    c->wtile_cap = (size_t)kmax * 256;
    ok = ok && (c->wtile = malloc(c->wtile_cap * sizeof(float)));
    if (!ok) {
        qrt_ctx_free(c);
        return NULL;
    }
    return c;
}

void qrt_ctx_free(qrt_ctx *c) {
    if (!c) return;
    qrt_cuda_ctx_release(c); /* device buffers; bufs[] entries become NULL */
    if (c->bufs)
        for (int32_t i = 0; i < c->m->cfg[QRT_CFG_N_BUFS]; i++) free(c->bufs[i]);
    free(c->bufs);
    free(c->kcache);
    free(c->vcache);
    free(c->scores);
    free(c->wtile);
    free(c);
}

const float *qrt_ctx_forward(qrt_ctx *c, const int32_t *tokens, int32_t n, int32_t pos, int all) {
    c->tokens = tokens;
    c->n_tokens = n;
    c->pos = pos;
    c->logits_all = all;
    if (c->gpu) return qrt_cuda_forward(c);
    c->m->forward(c);
    return c->bufs[c->m->cfg[QRT_CFG_LOGITS_BUF]];
}

int qrt_ctx_run(qrt_ctx *c, const int32_t *tokens, int32_t n, int32_t pos) {
    c->tokens = tokens;
    c->n_tokens = n;
    c->pos = pos;
    c->logits_all = 0;
    if (c->gpu) return qrt_cuda_run(c);
    c->m->forward(c);
    return 0;
}

int32_t qrt_ctx_sample(qrt_ctx *c, qrt_sampler *s) {
    if (!c->gpu) return qrt_sample(s, c->bufs[c->m->cfg[QRT_CFG_LOGITS_BUF]]);
    int32_t n = qrt_cuda_topk(c, qrt_sampler_k(s), s->val, s->idx);
    if (n > 0) return qrt_sample_from(s, s->val, s->idx, n);
    if (n == -1) return -1;
    const float *lg = qrt_cuda_logits(c); /* top-k off or too large: the whole row */
    return lg ? qrt_sample(s, lg) : -1;
}

int qrt_ctx_sync(qrt_ctx *c) { return c->gpu ? qrt_cuda_sync(c) : 0; }

const char *qrt_ctx_error(const qrt_ctx *c) {
    const char *e = c->gpu ? qrt_cuda_error(c->m) : NULL;
    return e ? e : "unknown error";
}
