/* frontend/err.c — qc_err formatting and the always-on assert (qc/err.h). */
#include <stdio.h>
#include <stdlib.h>

#include "qc/err.h"

int qc_err_set(qc_err *e, const char *fmt, ...) {
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

_Noreturn void qc_assert_fail(const char *what, const char *file, int line) {
    fprintf(stderr, "qcc: internal error: %s:%d: assertion failed: %s\n", file, line, what);
    abort();
}
