/*
 * codegen/link.c — object + libqrt.a -> one executable, through the system
 * C compiler driver (`cc`, spawned directly: no shell, no quoting issues).
 *
 * The command line, and why each piece is there:
 *   cc -o OUT OBJ RUNTIME libopenblas.a libgfortran.a libquadmath.a
 *      -lm -lpthread -ldl            what libqrt and OpenBLAS need from libc
 *      -pie                          the object is PIC, libqrt is -fPIE and
 *                                    Debian's static OpenBLAS/gfortran link
 *                                    into a PIE; said explicitly so a driver
 *                                    with another default gives the same file
 *      -static-libgcc                unwinder bits gfortran may want come from
 *                                    libgcc_eh.a, never libgcc_s.so
 *      -Wl,--build-id=sha1           the build id is a hash of the contents:
 *                                    same inputs, same bytes
 *      -Wl,-z,noexecstack            OpenBLAS's assembly objects carry no
 *                                    .note.GNU-stack; the stack stays NX
 * The static archives make `ldd OUT` list only libc, libm (and the loader):
 * no libopenblas/libgfortran shared objects. --gc-sections is not used: the
 * archives are linked member by member anyway, and the gain is small next to
 * the risk of dropping a section only the runtime reaches by symbol.
 * The driver's output (stdout and stderr) is captured; on failure the first
 * line that names the problem goes into the error message.
 */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qc/codegen.h"

extern char **environ;

#ifndef QC_QRT_LIB
#error "QC_QRT_LIB (absolute path of libqrt.a) must be defined by the build"
#endif

static int readable(const char *what, const char *path, qc_err *err) {
    if (!path || !*path) return qc_err_set(err, "link: no %s given", what);
    struct stat st;
    if (stat(path, &st) != 0) return qc_err_set(err, "%s: %s: %s", path, what, strerror(errno));
    if (!S_ISREG(st.st_mode)) return qc_err_set(err, "%s: %s is not a regular file", path, what);
    return 0;
}

/* Picks the line of the driver's output that best says what went wrong. */
static void first_error_line(const char *out, char *line, size_t cap) {
    static const char *const keys[] = {"error", "undefined reference", "cannot find", NULL};
    const char *pick = NULL;
    for (int k = 0; keys[k] && !pick; k++) {
        const char *p = strstr(out, keys[k]);
        if (p) {
            while (p > out && p[-1] != '\n') p--;
            pick = p;
        }
    }
    if (!pick) { /* else the first non-empty line */
        pick = out;
        while (*pick == '\n') pick++;
    }
    size_t n = strcspn(pick, "\n");
    if (n >= cap) n = cap - 1;
    memcpy(line, pick, n);
    line[n] = '\0';
}

/* Runs argv[0] (found on PATH) with stdin from /dev/null and stdout+stderr
 * captured into *out (malloc'd, NUL-terminated). Returns the wait status or -1. */
static int run_capture(char *const argv[], char **out, qc_err *err) {
    *out = NULL;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return qc_err_set(err, "link: pipe: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        return qc_err_set(err, "link: cannot run '%s': %s", argv[0], strerror(rc));
    }
    size_t n = 0, cap = 4096;
    char *buf = malloc(cap);
    QC_ASSERT(buf != NULL);
    for (;;) {
        if (cap - n < 1024) {
            char *q = realloc(buf, cap * 2);
            QC_ASSERT(q != NULL);
            buf = q;
            cap *= 2;
        }
        ssize_t r = read(fds[0], buf + n, cap - n - 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            free(buf);
            return qc_err_set(err, "link: waitpid: %s", strerror(errno));
        }
    }
    *out = buf;
    return status;
}

int qc_link_exe_with(const char *obj_path, const char *runtime_lib, const char *out_path, qc_err *err) {
    if (readable("object file", obj_path, err) || readable("runtime library", runtime_lib, err) ||
        readable("static OpenBLAS", QC_OPENBLAS_STATIC, err) ||
        readable("static libgfortran", QC_GFORTRAN_STATIC, err) ||
        readable("static libquadmath", QC_QUADMATH_STATIC, err))
        return -1;
    if (!out_path || !*out_path) return qc_err_set(err, "link: no output path given");

    const char *argv[] = {
        "cc", "-o", out_path, obj_path, runtime_lib,
        QC_OPENBLAS_STATIC, QC_GFORTRAN_STATIC, QC_QUADMATH_STATIC,
        "-lm", "-lpthread", "-ldl",
        "-pie", "-static-libgcc", "-Wl,--build-id=sha1", "-Wl,-z,noexecstack",
        NULL,
    };
    char *out = NULL;
    int status = run_capture((char *const *)argv, &out, err);
    if (status == -1) return -1;
    int rc = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char line[600];
        first_error_line(out, line, sizeof line);
        if (WIFEXITED(status))
            qc_err_set(err, "%s: linking failed (cc exit %d): %s", out_path, WEXITSTATUS(status), line);
        else
            qc_err_set(err, "%s: linking failed (cc killed by signal %d): %s", out_path,
                       WIFSIGNALED(status) ? WTERMSIG(status) : 0, line);
        unlink(out_path);
        rc = -1;
    }
    free(out);
    return rc;
}

int qc_link_exe(const char *obj_path, const char *out_path, qc_err *err) {
    return qc_link_exe_with(obj_path, QC_QRT_LIB, out_path, err);
}
