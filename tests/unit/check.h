/* tests/unit/check.h — the unit tests' CHECK: print the message, count the
 * failure, give up after 20 (a broken kernel would otherwise print one line
 * per element). main() ends with `return fails != 0;`.
 * With QC_TEST_SEED defined first: a seeded splitmix64 stream (next64) and
 * uniform / normal doubles drawn from it (unif, normal). */
#ifndef QC_TESTS_CHECK_H
#define QC_TESTS_CHECK_H
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int fails;
#define CHECK(c, ...)                     \
    do {                                  \
        if (!(c)) {                       \
            fprintf(stderr, __VA_ARGS__); \
            fputc('\n', stderr);          \
            if (++fails > 20) exit(1);    \
        }                                 \
    } while (0)

#ifdef QC_TEST_SEED
static uint64_t rng = QC_TEST_SEED;
static inline uint64_t next64(void) { /* splitmix64 */
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static inline double unif(void) { return (double)(next64() >> 11) * 0x1p-53; }
static inline double normal(void) { return sqrt(-2 * log(1 - unif())) * cos(6.283185307179586 * unif()); }
#endif

#endif
