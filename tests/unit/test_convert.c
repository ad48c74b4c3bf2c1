/*
 * test_convert.c — f32 <-> f16 / bf16 conversions (quant/convert.c).
 * Every f16 value round-trips; random f32 values convert to the nearest
 * representable value (ties to even), checked against a double-precision
 * search over neighbours rather than against the same bit tricks.
 */
#include <string.h>

#include "check.h"
#include "qc/quant.h"

static uint64_t rng = 42;
static uint32_t next32(void) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng >> 32);
}

int main(void) {
    for (uint32_t h = 0; h < 65536; h++) {
        float f = qc_f16_to_f32((uint16_t)h);
        if (isnan(f)) continue;
        CHECK(qc_f32_to_f16(f) == h, "f16 %04x -> %g -> %04x", h, (double)f, qc_f32_to_f16(f));
        uint16_t b = (uint16_t)h;
        float fb = qc_bf16_to_f32(b);
        if (!isnan(fb)) CHECK(qc_f32_to_bf16(fb) == b, "bf16 %04x round trip", h);
    }
    for (int i = 0; i < 2000000; i++) {
        uint32_t bits = next32();
        if (i % 2) bits = (bits & 0x807fffffu) | ((100u + next32() % 50u) << 23); /* f16 range */
        float f;
        memcpy(&f, &bits, 4);
        if (!isfinite(f)) continue;
        uint16_t h = qc_f32_to_f16(f);
        double v = qc_f16_to_f32(h), err = fabs(v - f);
        if (isinf(v)) {
            CHECK(fabs(f) >= 65520.0, "%g overflowed", (double)f);
            continue;
        }
        /* no neighbour is closer, and on a tie the even one wins */
        for (int d = -1; d <= 1; d += 2) {
            uint16_t n = (uint16_t)(h + d);
            if ((h & 0x7fff) == 0 && d < 0) n = (uint16_t)((h ^ 0x8000) + 1);
            double nv = qc_f16_to_f32(n);
            if (isnan(nv) || isinf(nv)) continue;
            double ne = fabs(nv - f);
            CHECK(ne > err || (ne == err && !(h & 1)), "%.9g -> %04x (%g) but %04x (%g) is closer",
                  (double)f, h, v, n, nv);
        }
    }
    if (fails) return 1;
    printf("ok\n");
    return 0;
}
