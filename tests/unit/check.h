/* tests/unit/check.h — the unit tests' CHECK: print the message, count the
 * failure, give up after 20 (a broken kernel would otherwise print one line
 * per element). main() ends with `return fails != 0;`. */
#ifndef QC_TESTS_CHECK_H
#define QC_TESTS_CHECK_H
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

#endif
