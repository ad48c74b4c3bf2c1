/*
 * tests/dummy/gpu_hog.c — gpu_hog KEEP_MB COMMAND [ARGS...]
 *
 * Takes all but KEEP_MB megabytes of GPU 0's free memory (one cuMemAlloc
 * through the driver API, libcuda.so.1 dlopen'd: no CUDA headers or
 * toolkit needed), runs COMMAND while holding it, and exits with COMMAND's
 * status. The GPU out-of-memory test (tests/dummy/gpu.sh) runs an
 * executable under it so that its device allocation fails for real.
 * Exits 77 (ctest: skipped) when there is no driver or no GPU.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef int (*init_fn)(unsigned);
typedef int (*dev_fn)(int *, int);
typedef int (*retain_fn)(void **, int);
typedef int (*setctx_fn)(void *);
typedef int (*info_fn)(size_t *, size_t *);
typedef int (*alloc_fn)(unsigned long long *, size_t);

static void *sym(void *h, const char *name) {
    void *p = dlsym(h, name);
    if (!p) {
        fprintf(stderr, "gpu_hog: libcuda.so.1 lacks %s\n", name);
        exit(77);
    }
    return p;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: gpu_hog KEEP_MB COMMAND [ARGS...]\n");
        return 2;
    }
    size_t keep = (size_t)strtoull(argv[1], NULL, 10) << 20;
    void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "gpu_hog: no NVIDIA driver\n");
        return 77;
    }
    init_fn init;
    dev_fn dev;
    retain_fn retain;
    setctx_fn setctx;
    info_fn info;
    alloc_fn alloc;
    void *q; /* POSIX: data and function pointers agree */
    q = sym(h, "cuInit"), memcpy(&init, &q, sizeof q);
    q = sym(h, "cuDeviceGet"), memcpy(&dev, &q, sizeof q);
    q = sym(h, "cuDevicePrimaryCtxRetain"), memcpy(&retain, &q, sizeof q);
    q = sym(h, "cuCtxSetCurrent"), memcpy(&setctx, &q, sizeof q);
    q = sym(h, "cuMemGetInfo_v2"), memcpy(&info, &q, sizeof q);
    q = sym(h, "cuMemAlloc_v2"), memcpy(&alloc, &q, sizeof q);
    int d = 0;
    void *ctx = NULL;
    size_t fr = 0, tot = 0;
    if (init(0) || dev(&d, 0) || retain(&ctx, d) || setctx(ctx) || info(&fr, &tot)) {
        fprintf(stderr, "gpu_hog: no usable GPU\n");
        return 77;
    }
    unsigned long long p = 0;
    size_t take = fr > keep ? fr - keep : 0;
    while (take > ((size_t)64 << 20) && alloc(&p, take)) take -= (size_t)64 << 20; /* what fits */
    info(&fr, &tot);
    fprintf(stderr, "gpu_hog: holding %.2f GB of GPU memory, %.2f GB left free\n", (double)take / 1e9,
            (double)fr / 1e9);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("gpu_hog: fork");
        return 2;
    }
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        perror("gpu_hog: exec");
        _exit(127);
    }
    int st = 0;
    if (waitpid(pid, &st, 0) < 0) return 2;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
