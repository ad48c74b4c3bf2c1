// What a kernel boundary costs on this GPU, against what the decode step's
// kernels pay (bench/NOTES-gemv.md, session 8). Chains of 64 launches of one
// kernel, captured in a CUDA graph with programmatic dependent launch (as
// runtime/cuda.c launches), timed over replays; and one persistent kernel
// crossing 64 grid-wide barriers. Prints one table, microseconds per kernel
// (or per barrier), median of 20 replays.
//
//   nvcc -O3 -arch=sm_90 -o launch_floor bench/launch_floor.cu && ./launch_floor
//
// Rows:
//   empty, full SM    a block per SM that fills it (512 threads, 160 KB of shared memory): the next
//                     kernel's block can only start where one of this kernel's has ended, as with the GEMVs
//   empty, small      128-thread blocks, 2 per SM: the next kernel's blocks fit beside this one's
//   x staged          full-SM blocks that, after the wait, read the previous kernel's 16 KB output, take
//                     its max |x| over the block, stage it in shared memory, write 16 KB for the next one:
//                     a GEMV's prologue and epilogue without its weights
//   grid barrier      one persistent kernel of full-SM blocks, 64 barriers (atomic arrive, spin on a
//                     generation word)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <cuda_runtime.h>

#define CK(x)                                                                                         \
    do {                                                                                              \
        cudaError_t e_ = (x);                                                                         \
        if (e_ != cudaSuccess) {                                                                      \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_));       \
            exit(1);                                                                                  \
        }                                                                                             \
    } while (0)

__device__ __forceinline__ void dep(void) {
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
}

__global__ void __launch_bounds__(512, 1) k_empty(float *y) {
    dep();
    if (threadIdx.x == 0 && blockIdx.x == 0 && y[1] == 12345.0f) y[0] = 1.0f; /* never: keeps the read */
}

__global__ void __launch_bounds__(128) k_small(float *y) {
    dep();
    if (threadIdx.x == 0 && blockIdx.x == 0 && y[1] == 12345.0f) y[0] = 1.0f;
}

/* x: the previous kernel's output (K floats), out: this kernel's (K floats, block 0 writes it) */
__global__ void __launch_bounds__(512, 1) k_stage(const float *x, float *out, int K) {
    extern __shared__ float4 sm4[];
    __shared__ float red[16];
    float *sm = (float *)sm4;
    dep();
    float mx = 0.0f;
    float4 v[2];
    for (int r = 0; r < 2; r++) {
        const int i = threadIdx.x + r * 512;
        v[r] = i < K / 4 ? ((const float4 *)x)[i] : make_float4(0, 0, 0, 0);
        mx = fmaxf(mx, fmaxf(fmaxf(fabsf(v[r].x), fabsf(v[r].y)), fmaxf(fabsf(v[r].z), fabsf(v[r].w))));
    }
    for (int o = 16; o; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = mx;
    __syncthreads();
    mx = 0.0f;
    for (int i = 0; i < 16; i++) mx = fmaxf(mx, red[i]);
    const float s = mx > 0.0f ? 1.0f / mx : 1.0f;
    for (int r = 0; r < 2; r++) {
        const int i = threadIdx.x + r * 512;
        if (i < K / 4) sm4[i] = make_float4(v[r].x * s, v[r].y * s, v[r].z * s, v[r].w * s);
    }
    __syncthreads();
    if (blockIdx.x == 0)
        for (int i = threadIdx.x; i < K; i += 512) out[i] = sm[(i * 7) % K] * mx + 1e-3f; /* the next input */
}

/* 64 grid barriers: bar[0] arrivals, bar[1] generation */
__global__ void __launch_bounds__(512, 1) k_barriers(unsigned *bar, int n, float *y) {
    float acc = 0.0f;
    for (int it = 0; it < n; it++) {
        __syncthreads();
        if (threadIdx.x == 0) {
            volatile unsigned *gen = bar + 1;
            const unsigned g = *gen;
            __threadfence();
            if (atomicAdd(bar, 1u) == gridDim.x - 1) {
                bar[0] = 0;
                __threadfence();
                atomicAdd(bar + 1, 1u);
            } else {
                while (*gen == g) {
                }
            }
            __threadfence();
        }
        __syncthreads();
        acc += (float)it;
    }
    if (threadIdx.x == 0 && blockIdx.x == 0) y[2] = acc;
}

static void launch_pdl(cudaStream_t s, const void *f, dim3 g, dim3 b, size_t smem, void **args) {
    cudaLaunchConfig_t c = {};
    cudaLaunchAttribute a[1];
    a[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    a[0].val.programmaticStreamSerializationAllowed = 1;
    c.gridDim = g, c.blockDim = b, c.dynamicSmemBytes = smem, c.stream = s, c.attrs = a, c.numAttrs = 1;
    CK(cudaLaunchKernelExC(&c, f, args));
}

enum { CHAIN = 64, REPS = 20 };

static float median(std::vector<float> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

/* median us per kernel of a captured chain; mk(i) launches kernel i */
template <class F>
static float chain(cudaStream_t s, F mk) {
    cudaGraph_t g;
    cudaGraphExec_t e;
    CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed));
    for (int i = 0; i < CHAIN; i++) mk(i);
    CK(cudaStreamEndCapture(s, &g));
    CK(cudaGraphInstantiate(&e, g, 0));
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    std::vector<float> t;
    for (int r = 0; r < REPS + 3; r++) {
        CK(cudaEventRecord(a, s));
        CK(cudaGraphLaunch(e, s));
        CK(cudaEventRecord(b, s));
        CK(cudaEventSynchronize(b));
        float ms;
        CK(cudaEventElapsedTime(&ms, a, b));
        if (r >= 3) t.push_back(ms * 1000.0f / CHAIN);
    }
    CK(cudaGraphExecDestroy(e));
    CK(cudaGraphDestroy(g));
    return median(t);
}

int main(void) {
    cudaDeviceProp p;
    CK(cudaGetDeviceProperties(&p, 0));
    const int sms = p.multiProcessorCount, K = 4096;
    cudaStream_t s;
    CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    float *y, *xa, *xb;
    unsigned *bar;
    CK(cudaMalloc(&y, 64));
    CK(cudaMalloc(&xa, K * 4));
    CK(cudaMalloc(&xb, K * 4));
    CK(cudaMalloc(&bar, 8));
    CK(cudaMemset(y, 0, 64));
    CK(cudaMemset(xa, 0, K * 4));
    CK(cudaMemset(xb, 0, K * 4));
    CK(cudaMemset(bar, 0, 8));
    const size_t big = 160 * 1024;
    CK(cudaFuncSetAttribute(k_empty, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)big));
    CK(cudaFuncSetAttribute(k_stage, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)big));
    printf("%s, %d SMs; chains of %d launches in a graph, median of %d replays\n\n", p.name, sms, CHAIN, REPS);
    printf("| chain | us per kernel, PDL | us per kernel, plain |\n|---|---|---|\n");
    float r[3][2];
    for (int pdl = 0; pdl < 2; pdl++) {
        auto go = [&](const void *f, dim3 g, dim3 b, size_t smem, void **args) {
            if (pdl) launch_pdl(s, f, g, b, smem, args);
            else {
                cudaLaunchConfig_t c = {};
                c.gridDim = g, c.blockDim = b, c.dynamicSmemBytes = smem, c.stream = s;
                CK(cudaLaunchKernelExC(&c, f, args));
            }
        };
        r[0][pdl] = chain(s, [&](int) {
            void *a[] = {&y};
            go((const void *)k_empty, dim3(sms), dim3(512), big, a);
        });
        r[1][pdl] = chain(s, [&](int) {
            void *a[] = {&y};
            go((const void *)k_small, dim3(2 * sms), dim3(128), 0, a);
        });
        r[2][pdl] = chain(s, [&](int i) {
            float *in = i & 1 ? xb : xa, *out = i & 1 ? xa : xb;
            int k = K;
            void *a[] = {&in, &out, &k};
            go((const void *)k_stage, dim3(sms), dim3(512), big, a);
        });
    }
    const char *names[3] = {"empty, full SM", "empty, small blocks", "x staged (16 KB), full SM"};
    for (int i = 0; i < 3; i++) printf("| %s | %.2f | %.2f |\n", names[i], r[i][1], r[i][0]);
    /* the persistent kernel: 64 barriers, against 1 (its launch) */
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    float per[2];
    for (int v = 0; v < 2; v++) {
        std::vector<float> t;
        int n = v ? CHAIN + 1 : 1;
        for (int rr = 0; rr < REPS + 3; rr++) {
            void *args[] = {&bar, &n, &y};
            CK(cudaEventRecord(a, s));
            CK(cudaLaunchCooperativeKernel((const void *)k_barriers, dim3(sms), dim3(512), args, 0, s));
            CK(cudaEventRecord(b, s));
            CK(cudaEventSynchronize(b));
            float ms;
            CK(cudaEventElapsedTime(&ms, a, b));
            if (rr >= 3) t.push_back(ms * 1000.0f);
        }
        per[v] = median(t);
    }
    printf("| grid barrier in one persistent kernel (%d blocks) | %.2f per barrier | |\n", sms,
           (per[1] - per[0]) / CHAIN);
    return 0;
}
