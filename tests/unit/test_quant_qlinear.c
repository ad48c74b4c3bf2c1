/*
 * test_quant_qlinear.c — the runtime's packed-weight kernels
 * (runtime/qlinear.c) against the compiler's packer (quant/pack.c).
 *
 * For bits {2,3,4,8} x group {32, 64, 128, per-channel} x {sym, asym} x
 * K {172, 200, 64, 256}, N = 37, fresh seeded random codes / scales / zeros
 * / activations:
 *   - qrt_qlayout_init agrees with qc_qlayout_init field by field;
 *   - qrt_qdequant_row_ref and qrt_qdequant_row (generic and AVX2) equal
 *     qc_qdequant bit for bit;
 *   - qrt_qgemv (generic, and AVX2 when the CPU has it) and qrt_qlinear at
 *     batch 1 and 5 (several weight tiles, and a tile too small for the
 *     fused path) equal the double-precision dot of the reference
 *     dequantization within 2e-6 * sum_k |w_k x_k| (+ 1e-30) per output.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc/quant.h"
#include "qrt.h"

#define QC_TEST_SEED 0x41c7e5d00dull
#include "check.h"


static const double TOL = 2e-6;
static double worst;

/* out[r][n] vs sum_k Wref[n][k] a[r][k] in double. */
static void compare(const char *what, const float *out, const float *Wref, const float *a,
                    int64_t rows, int64_t N, int64_t K, int bits, int64_t g, int sym) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t n = 0; n < N; n++) {
            double d = 0, mag = 0;
            for (int64_t k = 0; k < K; k++) {
                d += (double)Wref[n * K + k] * a[r * K + k];
                mag += fabs((double)Wref[n * K + k] * a[r * K + k]);
            }
            double e = fabs(out[r * N + n] - d);
            if (mag > 0 && e / mag > worst) worst = e / mag;
            CHECK(e <= TOL * mag + 1e-30, "%s b%d K%lld g%lld sym%d row %lld out %lld: %.9g vs %.9g (tol %g)",
                  what, bits, (long long)K, (long long)g, sym, (long long)r, (long long)n,
                  (double)out[r * N + n], d, TOL * mag);
        }
}

int main(void) {
    static const int BITS[] = {2, 3, 4, 8};
    static const int64_t GROUPS[] = {32, 64, 128, -1}, KS[] = {172, 200, 64, 256};
    const int64_t N = 37, B = 5;
    const int avx2 = qrt_qgemv_has_avx2();
    for (int bi = 0; bi < 4; bi++)
        for (int gi = 0; gi < 4; gi++)
            for (int ki = 0; ki < 4; ki++)
                for (int sym = 0; sym <= 1; sym++) {
                    const int bits = BITS[bi], maxq = (1 << bits) - 1;
                    const int64_t K = KS[ki], g = qc_qgroup(K, GROUPS[gi]), G = (K + g - 1) / g;
                    qc_qlayout ql;
                    qrt_qlayout rl;
                    CHECK(qc_qlayout_init(&ql, bits, N, K, GROUPS[gi], sym) == 0, "qc layout");
                    CHECK(qrt_qlayout_init(&rl, qc_qdtype(bits), N, K, GROUPS[gi], sym) == 0, "qrt layout");
                    CHECK(rl.bits == ql.bits && rl.sym == ql.sym && rl.g == ql.group && rl.G == ql.n_groups &&
                              rl.row_words == ql.row_words && rl.scales_off == ql.scales_off &&
                              rl.zeros_off == ql.zeros_off && rl.size == ql.size,
                          "layouts disagree: b%d K%lld g%lld sym%d", bits, (long long)K, (long long)g, sym);
                    CHECK(qrt_qdtype_bits(qc_qdtype(bits)) == bits, "dtype bits");

                    uint8_t *q = malloc((size_t)(N * K)), *p = aligned_alloc(64, (ql.size + 63) / 64 * 64);
                    float *s = malloc((size_t)(N * G) * 4), *z = malloc((size_t)(N * G) * 4);
                    float *Wq = malloc((size_t)(N * K) * 4), *row = malloc((size_t)K * 4);
                    float *a = malloc((size_t)(B * K) * 4), *out = malloc((size_t)(B * N) * 4);
                    for (int64_t i = 0; i < N * K; i++) q[i] = (uint8_t)(next64() % (uint64_t)(maxq + 1));
                    for (int64_t i = 0; i < N * G; i++) {
                        s[i] = qc_f16_ceil((float)(0.001 + 0.05 * unif()));
                        z[i] = sym ? 0 : (float)(next64() % (uint64_t)(maxq + 1));
                    }
                    for (int64_t i = 0; i < B * K; i++) a[i] = (float)normal();
                    CHECK(qc_qpack(q, s, z, bits, N, K, GROUPS[gi], sym, p) == 0, "pack");
                    qc_qdequant(p, bits, N, K, GROUPS[gi], sym, Wq);
                    for (int64_t n = 0; n < N; n++) {
                        qrt_qdequant_row_ref(p, &rl, n, row);
                        CHECK(!memcmp(row, Wq + n * K, (size_t)K * 4), "ref row %lld != qc_qdequant", (long long)n);
                        for (int isa = 1; isa <= 2; isa++) {
                            if (isa == 2 && !avx2) continue;
                            qrt_qdequant_row(p, &rl, n, row, isa);
                            CHECK(!memcmp(row, Wq + n * K, (size_t)K * 4), "row %lld (isa %d) != reference",
                                  (long long)n, isa);
                        }
                    }
                    float *scratch = malloc(qrt_qgemv_scratch(&rl) * 4);
                    for (int isa = 1; isa <= 2; isa++) {
                        if (isa == 2 && !avx2) continue;
                        qrt_qgemv(p, &rl, a, out, scratch, isa);
                        compare(isa == 1 ? "gemv generic" : "gemv avx2", out, Wq, a, 1, N, K, bits, g, sym);
                    }
                    free(scratch);
                    /* through qrt_qlinear: a tile of 8 rows (5 tiles), and one too
                     * small for the fused path's scratch (falls back to tiles) */
                    size_t caps[2] = {(size_t)K * 8, (size_t)K};
                    for (int ci = 0; ci < 2; ci++) {
                        qrt_ctx c;
                        memset(&c, 0, sizeof c);
                        c.wtile_cap = caps[ci];
                        c.wtile = malloc(c.wtile_cap * 4);
                        for (int64_t rows = 1; rows <= B; rows += B - 1) {
                            memset(out, 0xff, (size_t)(B * N) * 4);
                            qrt_qlinear(&c, out, a, (int32_t)rows, p, qc_qdtype(bits), (int32_t)K, (int32_t)N,
                                        (int32_t)GROUPS[gi], sym);
                            compare(rows == 1 ? "qlinear batch 1" : "qlinear batch 5", out, Wq, a, rows, N, K,
                                    bits, g, sym);
                        }
                        free(c.wtile);
                    }
                    free(q), free(p), free(s), free(z), free(Wq), free(row), free(a), free(out);
                }
    printf("qlinear: worst |y - ref| = %.3g * sum|w x| (tolerance %g), avx2 %s\n", worst, TOL,
           avx2 ? "tested" : "not available");
    if (fails) return 1;
    printf("ok\n");
    return 0;
}
