/*
 * test_quant_pack.c — packed weight layout and RTN (quant/pack.c, rtn.c).
 *
 * For every bits in {2,3,4,8} x group {32, 64, 128, per-channel} x {sym,
 * asym} x K in {172, 200, 64, 96} (K not a multiple of the group, groups
 * larger than K) on fresh seeded random codes / scales / zeros:
 *   - qc_qpack_size equals the docs/formats.md formulas, recomputed here;
 *   - qc_qpack's bytes equal an independent bit-by-bit builder written from
 *     docs/formats.md (so every padding bit is zero too);
 *   - qc_qunpack is its exact inverse; qc_qdequant gives scale*(q - zero)
 *     exactly.
 * RTN on random weights with outliers, all-zero and tiny groups: every
 * |w - dequant(w)| <= scale/2 * (1 + 1e-6), no other code of the grid is
 * closer (beyond 1e-6 relative), scales are f16 values > 0, zeros integers
 * in range (2^(b-1) when symmetric).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc/quant.h"

#define QC_TEST_SEED 0x5eed1234abcdull
#include "check.h"


#define RUP(x, m) (((x) + (m)-1) / (m) * (m))

/* docs/formats.md, written out again independently. */
static size_t expect_size(int bits, int64_t N, int64_t K, int64_t g, int sym, int64_t *G,
                          int64_t *rw, size_t *soff, size_t *zoff) {
    *G = (K + g - 1) / g;
    *rw = RUP(bits * ((K + 31) / 32), 4);
    *soff = (size_t)(4 * N * *rw);
    *zoff = *soff + (size_t)RUP(2 * N * *G, 16);
    return *zoff + (sym ? 0 : (size_t)RUP(N * *G, 16));
}

static void set_bit(uint8_t *p, int64_t bit) { p[bit / 8] |= (uint8_t)(1u << (bit % 8)); }

/* Builds the packed bytes bit by bit: within row n, value k sits in block
 * k/32; for b != 3 its bits are bits [32*(b*blk) + b*(k%32), +b) of the
 * row's little-endian bit stream, for b = 3 its low 2 bits at
 * 32*(3*blk) + 2*(k%32) and its high bit at 32*(3*blk + 2) + k%32. */
static void build_expected(const uint8_t *q, const float *s, const float *z, int bits, int64_t N,
                           int64_t K, int64_t g, int sym, uint8_t *out) {
    int64_t G, rw;
    size_t soff, zoff, size = expect_size(bits, N, K, g, sym, &G, &rw, &soff, &zoff);
    memset(out, 0, size);
    for (int64_t n = 0; n < N; n++) {
        uint8_t *row = out + 4 * n * rw;
        for (int64_t k = 0; k < K; k++) {
            int64_t blk = k / 32, j = k % 32, base = 32 * bits * blk;
            uint32_t v = q[n * K + k];
            if (bits == 3) {
                for (int b = 0; b < 2; b++)
                    if (v >> b & 1) set_bit(row, base + 2 * j + b);
                if (v >> 2 & 1) set_bit(row, base + 64 + j);
            } else {
                for (int b = 0; b < bits; b++)
                    if (v >> b & 1) set_bit(row, base + bits * j + b);
            }
        }
    }
    for (int64_t i = 0; i < N * G; i++) {
        uint16_t h = qc_f32_to_f16(s[i]);
        out[soff + 2 * i] = (uint8_t)h;
        out[soff + 2 * i + 1] = (uint8_t)(h >> 8);
        if (!sym) out[zoff + i] = (uint8_t)z[i];
    }
}

static const int BITS[] = {2, 3, 4, 8};
static const int64_t GROUPS[] = {32, 64, 128, -1};
static const int64_t KS[] = {172, 200, 64, 96};

static void test_pack(void) {
    const int64_t N = 7;
    for (int bi = 0; bi < 4; bi++)
        for (int gi = 0; gi < 4; gi++)
            for (int ki = 0; ki < 4; ki++)
                for (int sym = 0; sym <= 1; sym++) {
                    int bits = BITS[bi], maxq = (1 << bits) - 1;
                    int64_t K = KS[ki], g = qc_qgroup(K, GROUPS[gi]);
                    CHECK(g == (GROUPS[gi] < 0 || GROUPS[gi] >= K ? K : GROUPS[gi]), "qgroup");
                    int64_t G, rw;
                    size_t soff, zoff, size = expect_size(bits, N, K, g, sym, &G, &rw, &soff, &zoff);
                    qc_qlayout l;
                    CHECK(qc_qlayout_init(&l, bits, N, K, GROUPS[gi], sym) == 0, "layout");
                    CHECK(l.size == size && l.scales_off == soff && l.zeros_off == zoff &&
                              l.row_words == rw && l.n_groups == G && l.group == g,
                          "layout b%d K%lld g%lld sym%d", bits, (long long)K, (long long)g, sym);
                    CHECK(qc_qpack_size(bits, N, K, GROUPS[gi], sym) == size, "size");
                    CHECK(soff % 16 == 0 && zoff % 16 == 0 && size % 16 == 0, "alignment");

                    uint8_t *q = malloc((size_t)(N * K)), *q2 = malloc((size_t)(N * K));
                    float *s = malloc((size_t)(N * G) * 4), *z = malloc((size_t)(N * G) * 4);
                    float *s2 = malloc((size_t)(N * G) * 4), *z2 = malloc((size_t)(N * G) * 4);
                    float *W = malloc((size_t)(N * K) * 4);
                    uint8_t *p = malloc(size), *e = malloc(size);
                    for (int64_t i = 0; i < N * K; i++) q[i] = (uint8_t)(next64() % (uint64_t)(maxq + 1));
                    if (bits == 3) q[0] = 7, q[1] = 0; /* extremes */
                    for (int64_t i = 0; i < N * G; i++) {
                        s[i] = qc_f16_ceil((float)(1e-4 + unif()));
                        z[i] = sym ? (float)(1 << (bits - 1)) : (float)(next64() % (uint64_t)(maxq + 1));
                    }
                    CHECK(qc_qpack(q, s, z, bits, N, K, GROUPS[gi], sym, p) == 0, "pack");
                    build_expected(q, s, z, bits, N, K, g, sym, e);
                    CHECK(memcmp(p, e, size) == 0, "bytes differ from the spec: b%d K%lld g%lld sym%d",
                          bits, (long long)K, (long long)g, sym);
                    qc_qunpack(p, bits, N, K, GROUPS[gi], sym, q2, s2, z2);
                    CHECK(memcmp(q, q2, (size_t)(N * K)) == 0, "codes round trip b%d K%lld", bits, (long long)K);
                    CHECK(memcmp(s, s2, (size_t)(N * G) * 4) == 0, "scales round trip");
                    CHECK(memcmp(z, z2, (size_t)(N * G) * 4) == 0, "zeros round trip");
                    qc_qdequant(p, bits, N, K, GROUPS[gi], sym, W);
                    for (int64_t n = 0; n < N; n++)
                        for (int64_t k = 0; k < K; k++) {
                            int64_t t = n * G + k / g;
                            CHECK(W[n * K + k] == s[t] * ((float)q[n * K + k] - z[t]), "dequant");
                        }
                    /* a code or a zero out of range is refused */
                    q[3] = (uint8_t)(maxq + 1);
                    if (bits < 8) CHECK(qc_qpack(q, s, z, bits, N, K, GROUPS[gi], sym, p) == -1, "bad code");
                    free(q), free(q2), free(s), free(z), free(s2), free(z2), free(W), free(p), free(e);
                }
    CHECK(qc_qpack_size(5, 4, 64, 32, 0) == 0, "bits 5 accepted");
    CHECK(qc_qpack_size(4, 4, 200, 48, 0) == 0, "group 48 accepted");
    CHECK(qc_qpack_size(4, 0, 64, 32, 0) == 0, "N 0 accepted");
    CHECK(qc_qpack_size(4, 4, 64, 128, 1) == qc_qpack_size(4, 4, 64, -1, 1), "group > K is per-channel");
    CHECK(qc_qdtype(3) == QRT_DT_Q3 && qc_qdtype_bits(QRT_DT_Q8) == 8 && qc_qdtype(5) == -1, "dtypes");
}

static int is_f16(float v) { return qc_f16_to_f32(qc_f32_to_f16(v)) == v; }

static void test_rtn(void) {
    const int64_t N = 9;
    double worst = 0;
    for (int bi = 0; bi < 4; bi++)
        for (int gi = 0; gi < 4; gi++)
            for (int ki = 0; ki < 4; ki++)
                for (int sym = 0; sym <= 1; sym++) {
                    int bits = BITS[bi], maxq = (1 << bits) - 1;
                    int64_t K = KS[ki], g = qc_qgroup(K, GROUPS[gi]), G = (K + g - 1) / g;
                    float *W = malloc((size_t)(N * K) * 4), *s = malloc((size_t)(N * G) * 4);
                    float *z = malloc((size_t)(N * G) * 4);
                    uint8_t *q = malloc((size_t)(N * K));
                    for (int64_t n = 0; n < N; n++)
                        for (int64_t k = 0; k < K; k++) {
                            double v = 0.02 * normal();
                            if (next64() % 97 == 0) v *= 30;          /* outliers */
                            if (n == 1) v = 0;                        /* all-zero row */
                            if (n == 2) v = 1e-9 * normal();          /* below f16's range */
                            if (n == 3) v = fabs(v) + 0.5;            /* all positive */
                            if (n == 4) v = -fabs(v) - 0.5;           /* all negative */
                            W[n * K + k] = (float)v;
                        }
                    qc_rtn_quantize(W, N, K, bits, GROUPS[gi], sym, q, s, z);
                    for (int64_t n = 0; n < N; n++)
                        for (int64_t k = 0; k < K; k++) {
                            int64_t t = n * G + k / g;
                            float sc = s[t], zz = z[t], w = W[n * K + k];
                            CHECK(sc > 0 && is_f16(sc), "scale %g not a positive f16", (double)sc);
                            CHECK(zz == floorf(zz) && zz >= 0 && zz <= (float)maxq, "zero %g", (double)zz);
                            if (sym) CHECK(zz == (float)(1 << (bits - 1)), "sym zero %g", (double)zz);
                            CHECK(q[n * K + k] <= maxq, "code");
                            double deq = sc * ((float)q[n * K + k] - zz), err = fabs(deq - w);
                            CHECK(err <= sc / 2 * (1 + 1e-6), "b%d g%lld sym%d row %lld: |%g - %g| > %g / 2",
                                  bits, (long long)g, sym, (long long)n, (double)w, deq, (double)sc);
                            if (err / sc > worst) worst = err / sc;
                            for (int d = -1; d <= 1; d += 2) { /* nearest: no neighbour closer */
                                int qq = q[n * K + k] + d;
                                if (qq < 0 || qq > maxq) continue;
                                double alt = fabs(sc * ((float)qq - zz) - w);
                                CHECK(alt >= err - 1e-6 * sc, "code %d closer than %d", qq, q[n * K + k]);
                            }
                            if (n == 1) CHECK(sc == 1 && deq == 0, "all-zero group: scale %g", (double)sc);
                        }
                    free(W), free(s), free(z), free(q);
                }
    printf("rtn: worst |w - q| = %.6f scale (bound 0.5)\n", worst);
}

int main(void) {
    test_pack();
    test_rtn();
    if (fails) return 1;
    printf("ok\n");
    return 0;
}
