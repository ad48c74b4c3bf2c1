/*
 * runtime/dummy.c — the weights of an executable built with qcc
 * --dummy-weights (descriptor and generator: qrt/dummy.h; the choices:
 * docs/dummy-weights.md).
 *
 * qrt_dummy_bind (from qrt_model_bind) recognises the descriptor that such
 * an executable embeds in place of its weight blob and reserves the address
 * range the generated code adds its weight offsets to (qrt_dummy_base):
 * PROT_NONE and MAP_NORESERVE, so even a 138 GB range costs nothing until
 * it is filled. Then the first place the weights are needed fills them:
 *   qrt_dummy_gpu_fill  (qrt_cuda_init) the device copy, one kernel launch
 *                       per descriptor segment (runtime/dummy_fill.cu, as
 *                       PTX); the host range is never touched
 *   qrt_dummy_host      (qrt_ctx_new, a CPU context) the reserved range
 *                       itself, made writable, on every core; read-only
 *                       afterwards, like embedded weights
 * Both compute exactly the same bytes. The first fill prints the one notice
 * line that the weights are not a trained model's.
 *
 * Test hook: QRT_DUMMY_DUMP=FILE writes the filled blob to FILE (from the
 * host range, or copied back from the device): tests/dummy compares it
 * with an independent reimplementation of the generator.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "dummy.h"
#include "dummy_fill_ptx.h"
#include "qrt/dummy.h"

const uint8_t *qrt_dummy_base;

typedef struct seg {
    uint32_t kind, bits;
    uint64_t off, count, key;
    uint32_t p0, p1, value;
} seg;

static struct {
    int on, bad;        /* a descriptor was found; it is malformed */
    uint64_t size, seed;
    uint32_t n;
    seg *segs;
    uint8_t *base;      /* the reserved range */
    size_t reserved;    /* its length (size rounded up to pages) */
    int host_done, noticed;
} D;

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Bytes a segment covers, 0 if its fields make no sense. */
static uint64_t seg_bytes(const seg *s) {
    switch (s->kind) {
    case QRT_DUMMY_UNIFORM_F32:
    case QRT_DUMMY_CONST32: return s->count <= (UINT64_MAX >> 3) ? s->count * 4 : 0;
    case QRT_DUMMY_UNIFORM_F16:
    case QRT_DUMMY_CONST16: return s->count <= (UINT64_MAX >> 3) ? s->count * 2 : 0;
    case QRT_DUMMY_CONST8: return s->count;
    case QRT_DUMMY_CODES:
        if ((s->bits != 2 && s->bits != 3 && s->bits != 4 && s->bits != 8) || !s->p0 || s->p0 % s->bits ||
            s->p1 < s->p0 || s->count > (UINT64_MAX >> 8) / s->p1)
            return 0;
        return s->count * s->p1 * 4;
    default: return 0;
    }
}

void qrt_dummy_bind(const qrt_model *m) {
    const uint8_t *p = m->weights;
    size_t n = m->weights_size;
    if (!p || n < QRT_DUMMY_HEADER || memcmp(p, QRT_DUMMY_MAGIC, 8)) return;
    uint32_t ns = rd32(p + 12);
    if (rd32(p + 8) != QRT_DUMMY_HEADER || (n - QRT_DUMMY_HEADER) / QRT_DUMMY_SEG != ns ||
        (n - QRT_DUMMY_HEADER) % QRT_DUMMY_SEG)
        return; /* not a descriptor: the integrity check judges it as a weight blob */
    D.on = 1;
    D.size = rd64(p + 16);
    D.seed = rd64(p + 24);
    D.n = ns;
    D.segs = calloc(ns ? ns : 1, sizeof *D.segs);
    if (!D.segs || D.size == 0 || D.size > ((uint64_t)1 << 46)) {
        D.bad = 1;
        return;
    }
    for (uint32_t i = 0; i < ns; i++) {
        const uint8_t *e = p + QRT_DUMMY_HEADER + (size_t)i * QRT_DUMMY_SEG;
        seg *s = &D.segs[i];
        s->kind = rd32(e);
        s->bits = rd32(e + 4);
        s->off = rd64(e + 8);
        s->count = rd64(e + 16);
        s->key = rd64(e + 24);
        s->p0 = rd32(e + 32);
        s->p1 = rd32(e + 36);
        s->value = rd32(e + 40);
        uint64_t b = seg_bytes(s);
        if ((s->count && !b) || s->off > D.size || b > D.size - s->off) D.bad = 1;
    }
    long pg = sysconf(_SC_PAGESIZE);
    size_t page = pg > 0 ? (size_t)pg : 4096;
    D.reserved = (size_t)((D.size + page - 1) / page * page);
    void *r = mmap(NULL, D.reserved, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r == MAP_FAILED) {
        D.bad = 1;
        return;
    }
    D.base = r;
    qrt_dummy_base = r;
}

size_t qrt_dummy_size(void) { return D.on ? (size_t)D.size : 0; }

static void notice(const char *where, double secs) {
    if (D.noticed) return;
    D.noticed = 1;
    double b = (double)D.size;
    fprintf(stderr,
            "notice: dummy weights (qcc --dummy-weights, seed %llu): %.2f %s of random values generated on the %s "
            "in %.2f s, not a trained model; the output is meaningless\n",
            (unsigned long long)D.seed, b >= 1e9 ? b / 1e9 : b >= 1e6 ? b / 1e6 : b / 1e3,
            b >= 1e9 ? "GB" : b >= 1e6 ? "MB" : "kB", where, secs);
}

/* ---- the host generator (the same bytes as runtime/dummy_fill.cu) ---- */

static uint16_t f32_to_f16(float f) { /* round to nearest even, as quant/convert.c */
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);
    if (ax < 0x38800000u) {
        if (ax < 0x33000000u) return (uint16_t)sign;
        uint32_t e = ax >> 23, mm = (ax & 0x7fffff) | 0x800000, shift = 126 - e;
        uint32_t r = mm >> shift, rem = mm & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ax + 0xfff + ((ax >> 13) & 1);
    return (uint16_t)(sign | ((r - 0x38000000u) >> 13));
}

static uint32_t fix_word(uint32_t w, uint32_t bits) { /* every code 0 -> 2^(bits-1) */
    uint32_t t;
    if (bits == 2) {
        t = (w | w >> 1) & 0x55555555u;
        return w | (~t & 0x55555555u) << 1;
    }
    if (bits == 4) {
        t = w | w >> 1;
        t |= t >> 2;
        t &= 0x11111111u;
        return w | (~t & 0x11111111u) << 3;
    }
    t = w | w >> 1;
    t |= t >> 2;
    t |= t >> 4;
    t &= 0x01010101u;
    return w | (~t & 0x01010101u) << 7;
}

static uint32_t even_bits(uint32_t x) {
    x &= 0x55555555u;
    x = (x | x >> 1) & 0x33333333u;
    x = (x | x >> 2) & 0x0F0F0F0Fu;
    x = (x | x >> 4) & 0x00FF00FFu;
    return (x | x >> 8) & 0x0000FFFFu;
}

/* Items [lo, hi) of segment s into the blob at base: elements, or for CODES
 * 32-value blocks. */
static void gen(const seg *s, uint64_t lo, uint64_t hi, uint8_t *base) {
    uint8_t *p = base + s->off;
    if (s->kind == QRT_DUMMY_UNIFORM_F32 || s->kind == QRT_DUMMY_UNIFORM_F16) {
        float a;
        memcpy(&a, &s->value, 4);
        for (uint64_t i = lo; i < hi; i++) {
            uint64_t r = qrt_dummy_mix(s->key + i * QRT_DUMMY_GOLDEN);
            float v = (float)((int32_t)(r >> 40) - 8388608) * a;
            if (s->kind == QRT_DUMMY_UNIFORM_F16) {
                uint16_t h = f32_to_f16(v);
                memcpy(p + 2 * i, &h, 2);
            } else {
                memcpy(p + 4 * i, &v, 4);
            }
        }
    } else if (s->kind == QRT_DUMMY_CONST32 || s->kind == QRT_DUMMY_CONST16) {
        size_t es = s->kind == QRT_DUMMY_CONST32 ? 4 : 2;
        uint32_t v32 = s->value;
        uint16_t v16 = (uint16_t)s->value;
        for (uint64_t i = lo; i < hi; i++) memcpy(p + es * i, es == 4 ? (const void *)&v32 : (const void *)&v16, es);
    } else if (s->kind == QRT_DUMMY_CONST8) {
        memset(p + lo, (int)(uint8_t)s->value, (size_t)(hi - lo));
    } else if (s->kind == QRT_DUMMY_CODES) {
        uint64_t bpr = s->p0 / s->bits;
        for (uint64_t it = lo; it < hi; it++) {
            uint64_t n = it / bpr, j0 = (it - n * bpr) * s->bits, src = n * s->p0 + j0;
            uint32_t w[8];
            for (uint32_t k = 0; k < s->bits; k++)
                w[k] = (uint32_t)(qrt_dummy_mix(s->key + (src + k) * QRT_DUMMY_GOLDEN) >> 32);
            if (s->bits == 3)
                w[2] |= even_bits(~(w[0] | w[0] >> 1)) | even_bits(~(w[1] | w[1] >> 1)) << 16;
            else
                for (uint32_t k = 0; k < s->bits; k++) w[k] = fix_word(w[k], s->bits);
            memcpy(p + 4 * (n * s->p1 + j0), w, 4 * (size_t)s->bits);
        }
    }
}

static uint64_t seg_items(const seg *s) {
    return s->kind == QRT_DUMMY_CODES ? s->count * (s->p0 / s->bits) : s->count;
}

#define CHUNK ((uint64_t)1 << 20) /* items per work unit */

typedef struct work {
    uint64_t next;  /* next work unit, taken atomically */
    uint64_t total; /* work units over all segments */
    uint64_t *first; /* [n + 1]: the first unit of each segment */
} work;

static void *worker(void *arg) {
    work *w = arg;
    for (;;) {
        uint64_t u = __atomic_fetch_add(&w->next, 1, __ATOMIC_RELAXED);
        if (u >= w->total) return NULL;
        uint32_t lo = 0, hi = D.n; /* the segment holding unit u */
        while (hi - lo > 1) {
            uint32_t mid = (lo + hi) / 2;
            if (w->first[mid] <= u) lo = mid;
            else hi = mid;
        }
        const seg *s = &D.segs[lo];
        uint64_t a = (u - w->first[lo]) * CHUNK, items = seg_items(s), b = a + CHUNK < items ? a + CHUNK : items;
        gen(s, a, b, D.base);
    }
}

/* Host memory the fill may take: MemAvailable + SwapFree (0: unknown). */
static uint64_t host_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long kb, avail = 0, swap = 0;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) avail = kb;
        else if (sscanf(line, "SwapFree: %llu kB", &kb) == 1) swap = kb;
    }
    fclose(f);
    return (avail + swap) * 1024ull;
}

static void dump(const char *where, qrt_cu_ptr dev, const qrt_cu_api *cu) {
    const char *path = getenv("QRT_DUMMY_DUMP");
    if (!path || !*path) return;
    FILE *f = fopen(path, "wb");
    int ok = f != NULL;
    if (ok && !cu) {
        ok = fwrite(D.base, 1, (size_t)D.size, f) == D.size;
    } else if (ok) {
        size_t chunk = (size_t)64 << 20;
        uint8_t *buf = malloc(chunk);
        ok = buf != NULL;
        for (uint64_t o = 0; ok && o < D.size; o += chunk) {
            size_t k = D.size - o < chunk ? (size_t)(D.size - o) : chunk;
            ok = cu->MemcpyDtoH(buf, dev + o, k) == 0 && fwrite(buf, 1, k, f) == k;
        }
        free(buf);
    }
    if (f) ok = fclose(f) == 0 && ok;
    if (!ok) fprintf(stderr, "notice: QRT_DUMMY_DUMP=%s: could not write the %s fill\n", path, where);
}

void qrt_dummy_host(void) {
    if (!D.on || D.host_done) return;
    if (D.bad) {
        fprintf(stderr, "error: the dummy-weight descriptor in this executable is malformed (rebuild it)\n");
        exit(1);
    }
    uint64_t avail = host_available();
    if ((avail && D.size > avail) ||
        mprotect(D.base, D.reserved, PROT_READ | PROT_WRITE) != 0) {
        fprintf(stderr,
                "error: dummy weights: the CPU needs %.2f GB of host memory for them, %.2f GB is available%s; "
                "this machine cannot run this model\n",
                (double)D.size / 1e9, (double)avail / 1e9, avail && D.size > avail ? "" : " (mprotect refused)");
        exit(1);
    }
#ifdef MADV_HUGEPAGE
    madvise(D.base, D.reserved, MADV_HUGEPAGE); /* fewer page faults while filling; a hint only */
#endif
    double t0 = now_s();
    work w = {0, 0, calloc((size_t)D.n + 1, sizeof(uint64_t))};
    if (!w.first) {
        fprintf(stderr, "error: out of memory\n");
        exit(1);
    }
    for (uint32_t i = 0; i < D.n; i++) {
        w.first[i] = w.total;
        w.total += (seg_items(&D.segs[i]) + CHUNK - 1) / CHUNK;
    }
    w.first[D.n] = w.total;
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    int nt = nc < 1 ? 1 : nc > 64 ? 64 : (int)nc, started = 0;
    pthread_t th[64];
    for (int i = 1; i < nt; i++)
        if (pthread_create(&th[started], NULL, worker, &w) == 0) started++;
    worker(&w);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    free(w.first);
    mprotect(D.base, D.reserved, PROT_READ);
    D.host_done = 1;
    notice("CPU", now_s() - t0);
    dump("host", 0, NULL);
}

/* ---- on the GPU ---- */

int qrt_dummy_gpu_fill(const qrt_cu_api *cu, qrt_cu_stream stream, qrt_cu_ptr dst, int32_t sms, char *msg,
                       size_t cap) {
    if (!D.on) return 0;
    if (D.bad) {
        snprintf(msg, cap, "the dummy-weight descriptor in this executable is malformed");
        return -1;
    }
    double t0 = now_s();
    qrt_cu_module mod = NULL;
    qrt_cu_function fu = NULL, fc = NULL, fq = NULL;
    /* padding is zero; the memset runs on the legacy stream, which our
     * non-blocking stream does not wait for: synchronize */
    qrt_cu_result r = cu->MemsetD8(dst, 0, (size_t)D.size);
    const char *call = "cuMemsetD8";
    if (r == 0) r = cu->CtxSynchronize();
    if (r == 0) {
        call = "cuModuleLoadData (dummy-weight fill kernels, PTX)";
        r = cu->ModuleLoadData(&mod, qrt_dummy_ptx);
    }
    if (r == 0) {
        call = "cuModuleGetFunction";
        r = cu->ModuleGetFunction(&fu, mod, "qd_uniform");
        if (r == 0) r = cu->ModuleGetFunction(&fc, mod, "qd_const");
        if (r == 0) r = cu->ModuleGetFunction(&fq, mod, "qd_codes");
    }
    unsigned max_blocks = (unsigned)(sms > 0 ? sms : 16) * 16;
    for (uint32_t i = 0; r == 0 && i < D.n; i++) {
        const seg *s = &D.segs[i];
        uint64_t items = seg_items(s);
        if (!items) continue;
        uint64_t blocks = (items + 255) / 256;
        unsigned grid = blocks < max_blocks ? (unsigned)blocks : max_blocks;
        qrt_cu_ptr p = dst + s->off;
        float a;
        memcpy(&a, &s->value, 4);
        uint32_t half = s->kind == QRT_DUMMY_UNIFORM_F16, size = s->kind == QRT_DUMMY_CONST32 ? 4
                                                               : s->kind == QRT_DUMMY_CONST16 ? 2 : 1;
        uint64_t count = s->count, key = s->key;
        uint32_t bits = s->bits, dw = s->p0, rs = s->p1, value = s->value;
        void *ua[] = {&p, &count, &key, &a, &half}, *ca[] = {&p, &count, &value, &size},
             *qa[] = {&p, &count, &key, &bits, &dw, &rs};
        call = "cuLaunchKernel (dummy-weight fill)";
        if (s->kind == QRT_DUMMY_UNIFORM_F32 || s->kind == QRT_DUMMY_UNIFORM_F16)
            r = cu->LaunchKernel(fu, grid, 1, 1, 256, 1, 1, 0, stream, ua, NULL);
        else if (s->kind == QRT_DUMMY_CODES)
            r = cu->LaunchKernel(fq, grid, 1, 1, 256, 1, 1, 0, stream, qa, NULL);
        else
            r = cu->LaunchKernel(fc, grid, 1, 1, 256, 1, 1, 0, stream, ca, NULL);
    }
    if (r == 0) {
        call = "cuStreamSynchronize (dummy-weight fill)";
        r = cu->StreamSynchronize(stream);
    }
    if (mod) cu->ModuleUnload(mod);
    if (r != 0) {
        qrt_cu_describe(cu, r, call, msg, cap);
        return -1;
    }
    notice("GPU", now_s() - t0);
    dump("device", dst, cu);
    return 0;
}
