/*
 * codegen/cuda/nvrtc.c — CUDA C to cubin / PTX with NVRTC, and the section
 * the executable embeds.
 *
 * NVRTC is opened with dlopen on first use (qcc runs, and builds CPU-only
 * executables, on machines without the CUDA toolkit); it needs no GPU.
 * Each target is one NVRTC program: --gpu-architecture=sm_XY gives a cubin
 * (nvrtcGetCUBIN), compute_XY gives PTX (nvrtcGetPTX). Programs are
 * independent, so up to opts->threads of them compile at once.
 *
 * Every NVRTC call goes through NVRTC_CHECK, which fetches the program's log
 * before it looks at the status, so a failed compile reports the compiler's
 * first error line rather than a bare status code.
 *
 * Cache: an image is a pure function of (NVRTC version, options, source);
 * its file is <cache_dir>/<xxh3-128 of those>.img holding the image and its
 * own xxh3-128 trailer (a damaged file is ignored and rewritten). Files are
 * written to a temporary name and renamed, so concurrent qcc runs are safe.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "qc/cuda.h"

/* The few NVRTC declarations used (nvrtc.h, stable since CUDA 11). */
typedef int nvrtcResult;
typedef struct _nvrtcProgram *nvrtcProgram;
static struct nvrtc_api {
    const char *(*GetErrorString)(nvrtcResult);
    nvrtcResult (*Version)(int *, int *);
    nvrtcResult (*CreateProgram)(nvrtcProgram *, const char *, const char *, int, const char *const *,
                                 const char *const *);
    nvrtcResult (*DestroyProgram)(nvrtcProgram *);
    nvrtcResult (*CompileProgram)(nvrtcProgram, int, const char *const *);
    nvrtcResult (*GetPTXSize)(nvrtcProgram, size_t *);
    nvrtcResult (*GetPTX)(nvrtcProgram, char *);
    nvrtcResult (*GetCUBINSize)(nvrtcProgram, size_t *);
    nvrtcResult (*GetCUBIN)(nvrtcProgram, char *);
    nvrtcResult (*GetProgramLogSize)(nvrtcProgram, size_t *);
    nvrtcResult (*GetProgramLog)(nvrtcProgram, char *);
} nv;
static int nv_state; /* 0 not tried, 1 loaded, -1 failed */
static char nv_why[512], nv_version[32];
static pthread_once_t nv_once = PTHREAD_ONCE_INIT;

static void nv_load(void) {
    static const char *const libs[] = {
#ifdef QC_NVRTC_PATH
        QC_NVRTC_PATH,
#endif
        "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so", "/usr/local/cuda/lib64/libnvrtc.so",
    };
    void *h = NULL;
    for (size_t i = 0; i < sizeof libs / sizeof libs[0] && !h; i++) h = dlopen(libs[i], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(nv_why, sizeof nv_why, "NVRTC not found (libnvrtc.so.13/.12: %s)", dlerror());
        nv_state = -1;
        return;
    }
    struct {
        const char *name;
        void **slot;
    } syms[] = {
#define S(n) {"nvrtc" #n, (void **)&nv.n}
        S(GetErrorString), S(Version), S(CreateProgram), S(DestroyProgram), S(CompileProgram), S(GetPTXSize),
        S(GetPTX), S(GetCUBINSize), S(GetCUBIN), S(GetProgramLogSize), S(GetProgramLog),
#undef S
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        *syms[i].slot = dlsym(h, syms[i].name);
        if (!*syms[i].slot) {
            snprintf(nv_why, sizeof nv_why, "NVRTC: symbol %s missing", syms[i].name);
            nv_state = -1;
            return;
        }
    }
    int major = 0, minor = 0;
    if (nv.Version(&major, &minor) != 0 || major < 11) {
        snprintf(nv_why, sizeof nv_why, "NVRTC %d.%d is too old (need 11 or later)", major, minor);
        nv_state = -1;
        return;
    }
    snprintf(nv_version, sizeof nv_version, "%d.%d", major, minor);
    nv_state = 1;
}

int qc_nvrtc_available(char *why, size_t cap) {
    pthread_once(&nv_once, nv_load);
    if (nv_state != 1 && why && cap) snprintf(why, cap, "%s", nv_why);
    return nv_state == 1;
}

const char *qc_nvrtc_version(void) { return qc_nvrtc_available(NULL, 0) ? nv_version : NULL; }

/* ---- the disk cache ---- */

static void hex16(char *out, const uint8_t h[16]) {
    for (int i = 0; i < 16; i++) sprintf(out + 2 * i, "%02x", h[i]);
}

static void cache_path(char *out, size_t cap, const char *dir, const uint8_t key[16]) {
    char hx[33];
    hex16(hx, key);
    snprintf(out, cap, "%s/%s.img", dir, hx);
}

static int cache_get(const char *dir, const uint8_t key[16], uint8_t **data, size_t *size) {
    char path[4200];
    cache_path(path, sizeof path, dir, key);
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    struct stat st;
    uint8_t *buf = NULL;
    int ok = fstat(fileno(f), &st) == 0 && st.st_size > 16 && (buf = malloc((size_t)st.st_size)) &&
             fread(buf, 1, (size_t)st.st_size, f) == (size_t)st.st_size;
    fclose(f);
    if (ok) {
        size_t n = (size_t)st.st_size - 16;
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits(buf, n));
        ok = memcmp(c.digest, buf + n, 16) == 0;
        *size = n;
    }
    if (!ok) {
        free(buf);
        return -1;
    }
    *data = buf;
    return 0;
}

/* mkdir -p; errors surface when the file is written. */
static void make_dirs(const char *dir) {
    char p[4096];
    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            mkdir(p, 0755);
            *s = '/';
        }
    mkdir(p, 0755);
}

static void cache_put(const char *dir, const uint8_t key[16], const uint8_t *data, size_t size) {
    char path[4200], tmp[4300];
    make_dirs(dir);
    cache_path(path, sizeof path, dir, key);
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return; /* the cache is an optimization: never an error */
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(data, size));
    int ok = fwrite(data, 1, size, f) == size && fwrite(c.digest, 1, 16, f) == 16;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) unlink(tmp);
}

/* ---- one NVRTC program per target ---- */

typedef struct job {
    const qc_cuda_module *m;
    qc_cuda_target target;
    const char *cache_dir;
    uint8_t key[16];
    uint8_t *data;
    size_t size;
    int from_cache;
    char err[1024];
} job;

static void target_name(char *out, size_t cap, qc_cuda_target t) {
    snprintf(out, cap, "%s_%d", t.ptx ? "compute" : "sm", (int)t.arch);
}

/* Options of a target's program; they are part of the cache key. */
static int job_options(const job *j, char opts[][64]) {
    char tn[32];
    target_name(tn, sizeof tn, j->target);
    snprintf(opts[0], 64, "--gpu-architecture=%s", tn);
    snprintf(opts[1], 64, "--std=c++17");
    snprintf(opts[2], 64, "--fmad=true");
    return 3;
}

/* The first line of the log that says "error", else its first line. */
static void log_line(char *out, size_t cap, const char *log) {
    const char *p = strstr(log, "error");
    if (p)
        while (p > log && p[-1] != '\n') p--;
    else
        p = log;
    size_t n = strcspn(p, "\n");
    if (n >= cap) n = cap - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

#define NVRTC_CHECK(call, what)                                                                          \
    do {                                                                                                 \
        nvrtcResult r_ = (call);                                                                         \
        char line_[600] = "";                                                                            \
        size_t ls_ = 0;                                                                                  \
        if (prog && nv.GetProgramLogSize(prog, &ls_) == 0 && ls_ > 1) {                                  \
            char *log_ = malloc(ls_);                                                                    \
            if (log_ && nv.GetProgramLog(prog, log_) == 0) log_line(line_, sizeof line_, log_);          \
            free(log_);                                                                                  \
        }                                                                                                \
        if (r_ != 0) {                                                                                   \
            snprintf(j->err, sizeof j->err, "NVRTC (%s) %s: %s%s%s", tn, what, nv.GetErrorString(r_),    \
                     line_[0] ? ": " : "", line_);                                                       \
            goto out;                                                                                    \
        }                                                                                                \
    } while (0)

static void *job_run(void *arg) {
    job *j = arg;
    char tn[32];
    target_name(tn, sizeof tn, j->target);
    if (j->cache_dir && cache_get(j->cache_dir, j->key, &j->data, &j->size) == 0) {
        j->from_cache = 1;
        return NULL;
    }
    char opts[4][64];
    const char *optv[4];
    int nopt = job_options(j, opts);
    for (int i = 0; i < nopt; i++) optv[i] = opts[i];
    nvrtcProgram prog = NULL;
    size_t size = 0;
    NVRTC_CHECK(nv.CreateProgram(&prog, j->m->source, "qcc_kernels.cu", 0, NULL, NULL), "create");
    NVRTC_CHECK(nv.CompileProgram(prog, nopt, optv), "compile");
    if (j->target.ptx) {
        NVRTC_CHECK(nv.GetPTXSize(prog, &size), "PTX size"); /* includes the NUL */
        j->data = malloc(size);
        QC_ASSERT(j->data != NULL);
        NVRTC_CHECK(nv.GetPTX(prog, (char *)j->data), "PTX");
    } else {
        NVRTC_CHECK(nv.GetCUBINSize(prog, &size), "CUBIN size");
        j->data = malloc(size);
        QC_ASSERT(j->data != NULL);
        NVRTC_CHECK(nv.GetCUBIN(prog, (char *)j->data), "CUBIN");
    }
    j->size = size;
    if (j->cache_dir) cache_put(j->cache_dir, j->key, j->data, j->size);
out:
    if (prog) nv.DestroyProgram(&prog);
    if (j->err[0]) {
        free(j->data);
        j->data = NULL;
    }
    return NULL;
}

int qc_cuda_compile(const qc_cuda_module *m, const qc_cuda_opts *o, const qc_cuda_target *only,
                    qc_cuda_build *out, qc_err *err) {
    memset(out, 0, sizeof *out);
    char why[512];
    if (!qc_nvrtc_available(why, sizeof why)) return qc_err_set(err, "cuda: %s", why);
    int32_t n = only ? 1 : o->n_targets;
    if (n < 1 || n > QC_CUDA_MAX_TARGETS)
        return qc_err_set(err, "cuda: %d targets (1 to %d)", (int)n, QC_CUDA_MAX_TARGETS);
    job *jobs = calloc((size_t)n, sizeof *jobs);
    QC_ASSERT(jobs != NULL);
    for (int32_t i = 0; i < n; i++) {
        job *j = &jobs[i];
        j->m = m;
        j->target = only ? *only : o->targets[i];
        j->cache_dir = o->cache_dir;
        char opts[4][64];
        int nopt = job_options(j, opts);
        XXH3_state_t *st = XXH3_createState();
        QC_ASSERT(st != NULL);
        XXH3_128bits_reset(st);
        XXH3_128bits_update(st, nv_version, strlen(nv_version) + 1);
        for (int k = 0; k < nopt; k++) XXH3_128bits_update(st, opts[k], strlen(opts[k]) + 1);
        XXH3_128bits_update(st, m->source, m->source_len);
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits_digest(st));
        XXH3_freeState(st);
        memcpy(j->key, c.digest, 16);
    }
    /* Identical programs (same key) compile once: later ones copy the first. */
    int32_t threads = o->threads > 0 ? o->threads : n;
    pthread_t *tids = calloc((size_t)n, sizeof *tids);
    QC_ASSERT(tids != NULL);
    for (int32_t base = 0; base < n; base += threads) {
        int32_t end = base + threads < n ? base + threads : n, started = 0;
        for (int32_t i = base; i < end; i++) {
            int dup = 0;
            for (int32_t k = 0; k < i && !dup; k++) dup = !memcmp(jobs[k].key, jobs[i].key, 16);
            if (dup) continue;
            if (pthread_create(&tids[started], NULL, job_run, &jobs[i]) == 0)
                started++;
            else
                job_run(&jobs[i]); /* no thread: compile here */
        }
        for (int32_t k = 0; k < started; k++) pthread_join(tids[k], NULL);
    }
    free(tids);
    int rc = 0;
    for (int32_t i = 0; i < n; i++) {
        job *j = &jobs[i];
        if (!j->data && !j->err[0])
            for (int32_t k = 0; k < i; k++)
                if (!memcmp(jobs[k].key, j->key, 16) && jobs[k].data) {
                    j->data = malloc(jobs[k].size);
                    QC_ASSERT(j->data != NULL);
                    memcpy(j->data, jobs[k].data, jobs[k].size);
                    j->size = jobs[k].size;
                    break;
                }
        if (j->err[0] && rc == 0) rc = qc_err_set(err, "cuda: %s", j->err);
        out->images[i].target = j->target;
        out->images[i].data = j->data;
        out->images[i].size = j->size;
        out->cache_hits += j->from_cache;
    }
    out->n_images = n;
    free(jobs);
    if (rc) qc_cuda_build_free(out);
    return rc;
}

void qc_cuda_build_free(qc_cuda_build *b) {
    if (!b) return;
    for (int32_t i = 0; i < b->n_images; i++) free(b->images[i].data);
    memset(b, 0, sizeof *b);
}

/* ---- the embedded section ---- */

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

int qc_cuda_blob(const qc_cuda_module *m, const qc_cuda_build *b, uint8_t **out, size_t *size, qc_err *err) {
    size_t off = QC_CUDA_HEADER + (size_t)b->n_images * QC_CUDA_IMAGE_ENTRY;
    size_t names_off = off;
    off += m->names_size;
    size_t img_off[QC_CUDA_MAX_TARGETS];
    for (int32_t i = 0; i < b->n_images; i++) {
        if (!b->images[i].data) return qc_err_set(err, "cuda: image %d missing", (int)i);
        off = (off + 15) / 16 * 16;
        img_off[i] = off;
        off += b->images[i].size;
    }
    uint8_t *p = calloc(1, off);
    QC_ASSERT(p != NULL);
    memcpy(p, "QCCUDA01", 8);
    put32(p + 8, QC_CUDA_HEADER);
    put32(p + 12, (uint32_t)b->n_images);
    put32(p + 16, (uint32_t)m->n_names);
    put32(p + 20, (uint32_t)m->gemv_warps);
    put32(p + 24, (uint32_t)m->gemv_loads);
    put32(p + 28, (uint32_t)m->gemv_xs);
    put32(p + 32, (uint32_t)m->gemv_fast);
    put64(p + 40, names_off);
    put64(p + 48, m->names_size);
    for (int32_t i = 0; i < b->n_images; i++) {
        uint8_t *e = p + QC_CUDA_HEADER + (size_t)i * QC_CUDA_IMAGE_ENTRY;
        put32(e, (uint32_t)b->images[i].target.ptx);
        put32(e + 4, (uint32_t)b->images[i].target.arch);
        put64(e + 8, img_off[i]);
        put64(e + 16, b->images[i].size);
        memcpy(p + img_off[i], b->images[i].data, b->images[i].size);
    }
    memcpy(p + names_off, m->names, m->names_size);
    *out = p;
    *size = off;
    return 0;
}
