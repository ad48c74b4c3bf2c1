/*
 * tests/unit/test_codegen_rt.c — a stand-in for libqrt, linked by
 * test_codegen into the executable it builds from a generated object.
 *
 * It defines exactly what the generated code needs from the runtime
 * (qrt/abi.h: qrt_buf and one function per kernel) and a main() that prints,
 * one fact per line, what the object gave it: qm_config, qm_buf_widths, the
 * three blobs (size, 64-byte alignment, contents) and the call sequence of
 * qm_forward with every pointer mapped back to a buffer id or a blob offset
 * and the first float of each weight read from the embedded blob.
 * test_codegen compares that text with what the graph says it must be.
 */
#include <stdint.h>
#include <stdio.h>

#include "qrt/abi.h"

#define MAX_BUFS 8

struct qrt_ctx {
    float bufs[MAX_BUFS][64];
};

extern const int32_t qm_config[QRT_CFG_COUNT];
extern const int32_t qm_buf_widths[];
extern const unsigned char qm_weights_start[], qm_weights_end[];
extern const unsigned char qm_tokenizer_start[], qm_tokenizer_end[];
extern const unsigned char qm_info_start[], qm_info_end[];
void qm_forward(qrt_ctx *ctx);

static qrt_ctx the_ctx;

float *qrt_buf(qrt_ctx *ctx, int32_t id) {
    printf("qrt_buf ctx=%s id=%d\n", ctx == &the_ctx ? "ok" : "BAD", (int)id);
    return id >= 0 && id < MAX_BUFS ? ctx->bufs[id] : NULL;
}

static void put_buf(const char *name, const float *p) {
    if (!p) {
        printf(" %s=-", name);
        return;
    }
    for (int i = 0; i < MAX_BUFS; i++)
        if (p == the_ctx.bufs[i]) {
            printf(" %s=buf%d", name, i);
            return;
        }
    printf(" %s=?", name);
}

static void put_weight(const char *name, const void *p) {
    if (!p) {
        printf(" %s=-", name);
        return;
    }
    const unsigned char *c = p;
    if (c < qm_weights_start || c >= qm_weights_end) {
        printf(" %s=outside", name);
        return;
    }
    float v;
    __builtin_memcpy(&v, c, sizeof v);
    printf(" %s=+%ld(%g)", name, (long)(c - qm_weights_start), (double)v);
}

static void record(const char *sym, qrt_ctx *ctx, float *out, const float *a, const float *b,
                   const float *c, const void *w, const void *bias, int32_t wdtype, int32_t p0,
                   int32_t p1, int32_t p2, int32_t p3, float f0) {
    printf("%s ctx=%s", sym, ctx == &the_ctx ? "ok" : "BAD");
    put_buf("out", out);
    put_buf("a", a);
    put_buf("b", b);
    put_buf("c", c);
    put_weight("w", w);
    put_weight("bias", bias);
    printf(" dt=%d p=%d,%d,%d,%d f0=%g\n", (int)wdtype, (int)p0, (int)p1, (int)p2, (int)p3,
           (double)f0);
}

#define X(op, sym)                                                                          \
    void sym(qrt_ctx *ctx, float *out, const float *a, const float *b, const float *c,     \
             const void *w, const void *bias, int32_t wdtype, int32_t p0, int32_t p1,      \
             int32_t p2, int32_t p3, float f0) {                                            \
        record(#sym, ctx, out, a, b, c, w, bias, wdtype, p0, p1, p2, p3, f0);               \
    }
QRT_KERNELS(X)
#undef X

static void put_blob(const char *name, const unsigned char *s, const unsigned char *e) {
    printf("blob %s size=%ld align64=%d data=", name, (long)(e - s), (int)((uintptr_t)s % 64 == 0));
    for (const unsigned char *p = s; p < e && p < s + 32; p++)
        putchar(*p >= 0x20 && *p < 0x7f ? *p : '.');
    putchar('\n');
}

int main(void) {
    printf("config");
    for (int i = 0; i < QRT_CFG_COUNT; i++) printf(" %d", (int)qm_config[i]);
    printf("\nwidths");
    for (int i = 0; i < qm_config[QRT_CFG_N_BUFS]; i++) printf(" %d", (int)qm_buf_widths[i]);
    printf("\n");
    put_blob("weights", qm_weights_start, qm_weights_end);
    put_blob("tokenizer", qm_tokenizer_start, qm_tokenizer_end);
    put_blob("info", qm_info_start, qm_info_end);
    qm_forward(&the_ctx);
    printf("done\n");
    return 0;
}
