/*
 * qc/err.h — how the compiler reports failure.
 *
 * Functions that can fail on untrusted input return 0 on success and -1 on
 * failure, filling a caller-owned qc_err with ONE line: the file, then the
 * tensor / JSON key / byte offset where it applies, then what is wrong, e.g.
 *   "model.safetensors: tensor 'lm_head.weight': data offsets [0, 96) lie beyond the file (80 bytes)"
 * Only tools/qcc.c prints it and exits.
 */
#ifndef QC_ERR_H
#define QC_ERR_H

#include <stdarg.h>

typedef struct qc_err {
    char msg[1024];
} qc_err;

/* Formats into e (if non-NULL) and returns -1, so callers can `return qc_err_set(...)`. */
int qc_err_set(qc_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Always-on internal invariant check (never for untrusted input). */
#define QC_ASSERT(c) \
    ((c) ? (void)0 : qc_assert_fail(#c, __FILE__, __LINE__))
_Noreturn void qc_assert_fail(const char *what, const char *file, int line);

#endif
