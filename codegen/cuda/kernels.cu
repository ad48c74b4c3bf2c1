/*
 * codegen/cuda/kernels.cu — the device code of every qcc executable's GPU
 * path. qcc embeds this text at build time, prepends a few #defines (which
 * dtypes the model uses, launch-shape constants), appends one specialized
 * GEMV per linear shape of the model (codegen/cuda/cuda_gen.c) and compiles
 * the whole with NVRTC into a cubin per SM and PTX. No CUDA headers: NVRTC's
 * built-ins (vector types, math, intrinsics) are all this file uses.
 *
 * Every kernel mirrors one CPU kernel of runtime/kernels.c (the
 * specification; passes/exec.c is the reference executor). Activations are
 * f32 [T, width] row-major. What changes between decode steps — the
 * position and the token ids — is read from the step block in device
 * memory (int32 words: [0] tokens this step, [1] position of the first,
 * [4 + t] token id t), never from kernel arguments: the runtime captures
 * the decode step (T = 1) once as a CUDA graph and replays it unchanged.
 *
 * Names are extern "C" so the runtime finds them with cuModuleGetFunction:
 *   qk_embed_<dt> qk_rmsnorm_<dt> qk_add_rmsnorm_<dt> qk_rope qk_kv_append_<kv>
 *   qk_rope_append_<kv> qk_attn[_rope][_w]_<kv> qk_attn_tile_<kv> qk_silu_mul qk_add qk_add_bias qk_to_f16
 *   qk_to_bf16 qk_topk
 *   qk_gemv_<dt>_b1, _b4       GEMV for 1 / up to 4 rows, shape in the arguments
 *   qk_gemv_<dt>_k<K>_n<N>_g<G>_<s|a>_b1   batch 1 with the shape baked in
 *   qk_gemvm_<dt>_k<K>_n<N0>_n<N1>_n<N2>_g<G>_<s|a>   2-3 linears on one x, batch 1
 *   qk_gemvp_<dt>_k<K>_n<N>_g<G>_<s|a>   gate / up and the SILU_MUL of their outputs, batch 1
 *   qk_gemm_<dt>               tiled GEMM for rows > 8 (no cuBLAS)
 *   qk_dequant_<dt>            packed weight rows -> f16 (cuBLAS prefill)
 *   qk_qgemm_<dt>, qk_qgemm_x16, qk_qgemm_reduce   prefill GEMM reading packed weights (dequantization fused)
 * <dt> is f32 f16 bf16 q2 q3 q4 q8 (qrt_dtype), <kv> f32 or f16.
 */
typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;

/* qrt_dtype codes (include/qrt/abi.h). */
#define QK_F32 0
#define QK_F16 1
#define QK_BF16 2
#define QK_Q2 3
#define QK_Q3 4
#define QK_Q4 5
#define QK_Q8 6
#define QK_I8 7

/* Launch shape of the tensor-core GEMV (packed weights and f16; gemv_mma
 * below); the runtime reads the values a module was compiled with from the
 * blob header (qrt_cuda_blob in runtime/cuda.c). */
#ifndef QK_GEMV_WARPS
#define QK_GEMV_WARPS 16 /* warps per block */
#endif
#ifndef QK_GEMV_LOADS
#define QK_GEMV_LOADS 8 /* 16-byte weight loads per lane in flight (items prefetched = LOADS / loads per item) */
#endif
#ifndef QK_GEMV_XS
#define QK_GEMV_XS 40960 /* shared memory for the staged x, in floats (x 4 bytes) */
#endif
#ifndef QK_GEMV_MINB
#define QK_GEMV_MINB 1 /* __launch_bounds__ minimum blocks per SM (caps registers) */
#endif
#ifndef QK_GEMV_FAST
#define QK_GEMV_FAST 0 /* 0: codes as f16 subnormals; 1: 0x6400 magic + one HSUB2; 2: the float GEMV for every dtype */
#endif
/* 2-4 rows in one n-tile when a lane block's four lanes share a group (gemv_mma: sg) */
#define QK_SG(DT, B) ((B) > 1 && (B) <= 4 && ((DT) == QK_Q4 || (DT) == QK_Q8))
/* row tiles of 16 per block at most, batch 1 / more rows (runtime/cuda.c: same values) */
#define QK_GEMV_MMAX(B) ((B) == 1 ? 16 : 8)
/* The float GEMV (gemv_core: f32 and bf16 weights, and every dtype when
 * QK_GEMV_FAST is 2) has a launch shape of its own, fixed. */
#define QK_LGEMV_WARPS 8
#define QK_LGEMV_LOADS 8
#define QK_LGEMV_XS 16384
#ifndef QK_LGEMV_PIPE
#define QK_LGEMV_PIPE 1 /* load the next item while computing this one (two register buffers) */
#endif
#define QK_LGEMV_FAST 0
#ifndef QK_GEMV_PIPE
#define QK_GEMV_PIPE 1 /* 0: one item of weights in flight per warp */
#endif
#ifndef QK_GEMV_TRACE
#define QK_GEMV_TRACE 0 /* gemv_bench --trace: phase timestamps over y */
#endif

/* The step block. */
#define QK_ST_N 0
#define QK_ST_POS 1
#define QK_ST_TOK 4

#define QK_NEG_INF __int_as_float(0xff800000u)
#define QK_FULL 0xffffffffu

/* ---- helpers ---- */

__device__ __forceinline__ float qk_h2f(u16 h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}
__device__ __forceinline__ u16 qk_f2h(float f) {
    u16 h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}
__device__ __forceinline__ float qk_bf2f(u16 h) { return __uint_as_float((u32)h << 16); }
__device__ __forceinline__ u16 qk_f2bf(float f) {
    u16 h;
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}

/* Element i of a float-typed weight (f32, f16, bf16) as f32. */
template <int DT>
__device__ __forceinline__ float qk_ld(const void *w, size_t i) {
    if (DT == QK_F32) return __ldg((const float *)w + i);
    if (DT == QK_F16) return qk_h2f(__ldg((const u16 *)w + i));
    return qk_bf2f(__ldg((const u16 *)w + i));
}

/* 16 bytes of weights read once: no L1 allocation (coalesced loads), or
 * through L1 when the lanes of a warp share sectors between instructions. */
__device__ __forceinline__ uint4 qk_ld_stream(const void *p) {
    uint4 v;
    asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
        : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
        : "l"(p));
    return v;
}
__device__ __forceinline__ uint4 qk_ld_l1(const void *p) {
    uint4 v;
    asm("ld.global.nc.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
    return v;
}

/* A u16 / u8 zero-extended straight into a 32-bit register: no instruction
 * touches it until it is used (a separate zero-extension would wait for the load). */
__device__ __forceinline__ u32 qk_ldu16(const void *p) {
    u32 v;
    asm("ld.global.nc.u16 %0, [%1];" : "=r"(v) : "l"(p));
    return v;
}
__device__ __forceinline__ u32 qk_ldu32(const void *p) {
    u32 v;
    asm("ld.global.nc.u32 %0, [%1];" : "=r"(v) : "l"(p));
    return v;
}
__device__ __forceinline__ u32 qk_ldu8(const void *p) {
    u32 v;
    asm("ld.global.nc.u8 %0, [%1];" : "=r"(v) : "l"(p));
    return v;
}
__device__ __forceinline__ uint2 qk_ld8(const void *p) {
    uint2 v;
    asm("ld.global.nc.v2.u32 {%0, %1}, [%2];" : "=r"(v.x), "=r"(v.y) : "l"(p));
    return v;
}

/* Programmatic dependent launch (sm_90+; runtime/cuda.c launches every
 * kernel of this module with it there). A kernel may start while the one
 * before it in the stream still runs: qk_dep_wait() returns once that one
 * has finished and its writes are visible, so every kernel calls it before
 * it reads an activation or writes anything; only constant weights may be
 * read before it (the GEMV prefetches its first items). qk_dep_go() lets
 * the next kernel be launched. Both are no-ops on older GPUs and for
 * launches without the attribute. */
__device__ __forceinline__ void qk_dep_wait(void) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void qk_dep_go(void) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
#ifndef QK_TRACE
#define QK_DEP() \
    do { \
        qk_dep_wait(); \
        qk_dep_go(); \
    } while (0)
#else
/* qcc --cuda-trace: block 0 of every launch notes, in launch order, the global timer when it started and
 * when its dependency wait returned (= when the kernel before it had finished); the runtime turns a replayed
 * decode step's records into a per-kernel time line (runtime/cuda.c qrt_cuda_trace_report). */
#define QK_TRACE_N 8192
__device__ unsigned long long qk_trace[QK_TRACE_N][2];
__device__ unsigned qk_trace_n;
__device__ __forceinline__ unsigned long long qk_gtime(void) {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}
#define QK_DEP() \
    do { \
        const unsigned long long t0_ = qk_gtime(); \
        qk_dep_wait(); \
        if ((blockIdx.x | blockIdx.y | blockIdx.z | threadIdx.x | threadIdx.y) == 0) { \
            const unsigned i_ = atomicAdd(&qk_trace_n, 1u) % QK_TRACE_N; \
            qk_trace[i_][0] = t0_; \
            qk_trace[i_][1] = qk_gtime(); \
        } \
        qk_dep_go(); \
    } while (0)
#endif

__device__ __forceinline__ float qk_warp_sum(float v) {
#pragma unroll
    for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(QK_FULL, v, o);
    return v;
}
__device__ __forceinline__ float qk_warp_max(float v) {
#pragma unroll
    for (int o = 16; o; o >>= 1) v = fmaxf(v, __shfl_xor_sync(QK_FULL, v, o));
    return v;
}
/* Sum / max over the block; every thread gets the result. red: 32 floats. */
__device__ float qk_block_sum(float v, float *red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = qk_warp_sum(v);
    if (lane == 0) red[warp] = v;
    __syncthreads();
    v = qk_warp_sum(lane < nw ? red[lane] : 0.0f);
    __syncthreads();
    return v;
}
__device__ float qk_block_max(float v, float *red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = qk_warp_max(v);
    if (lane == 0) red[warp] = v;
    __syncthreads();
    v = qk_warp_max(lane < nw ? red[lane] : QK_NEG_INF);
    __syncthreads();
    return v;
}

/* Dynamic shared memory (GEMV). */
extern __shared__ float4 qk_smem4[];

/* ---- packed weights (docs/formats.md) ---- */

template <int DT>
struct qk_fmt {
    static const int bits = DT == QK_Q2 ? 2 : DT == QK_Q3 ? 3 : DT == QK_Q4 ? 4 : DT == QK_Q8 ? 8 : 0;
    static const int esize = DT == QK_F32 ? 4 : 2; /* float formats */
    /* GEMV mapping (gemv_core). Every 16 bytes of a row are a "unit" of UV
     * values; lane i of a warp loads units i, 32 + i, ..., 32 (U - 1) + i of
     * a chunk of CH = 32 U UV values, so each load instruction reads 512
     * contiguous bytes. 3 bits: a 32-value block is 12 bytes, so units and
     * blocks do not line up; there a lane loads 3 consecutive units, a piece
     * of 128 values (COAL 0). */
    static const int COAL = bits != 3;
    static const int U = bits == 3 ? 3 : bits == 2 ? 2 : bits == 4 ? 4 : 8;
    static const int UV = bits == 3 ? 128 : bits ? 128 / bits : 16 / esize;
    static const int CH = 32 * (COAL ? U : 1) * UV;
    static const int PADX = UV == 4 ? 0 : 4;  /* x in shared memory: 4 floats of padding after each UV */
    static const int NBU = bits == 2 ? 2 : bits == 3 ? 4 : 1; /* 32-value blocks per unit (piece for 3 bits) */
    static const int R = QK_LGEMV_LOADS / U > 0 ? QK_LGEMV_LOADS / U : 1; /* rows per warp */
    static const int per = bits ? 32 / bits : 1;                         /* codes per word (not 3 bits) */
    static const int half = 1 << (bits ? bits - 1 : 0);                    /* the implicit zero of sym */
};

/* Layout of a packed [N, K] weight with group size g (K when per channel). */
struct qk_qlayout {
    size_t row_bytes, scales_off, zeros_off;
    int G;
};
__device__ __forceinline__ qk_qlayout qk_qlayout_make(int bits, int K, int N, int g) {
    qk_qlayout l;
    l.G = (K + g - 1) / g;
    l.row_bytes = (size_t)4 * ((bits * ((K + 31) / 32) + 3) / 4 * 4);
    l.scales_off = (size_t)N * l.row_bytes;
    l.zeros_off = l.scales_off + ((size_t)2 * N * l.G + 15) / 16 * 16;
    return l;
}

/* 3 bits on the device. The embedded layout (docs/formats.md: words 0-1
 * the low bit pairs, word 2 the high bits) costs the tensor-core GEMV two
 * mma steps per code pair, so the runtime repacks every 3-bit weight in
 * place once, before its first use (qk_repack_q3), and every kernel here
 * reads this layout instead. A 32-value block is still 3 words (12 bytes):
 *   value v < 24:       word v / 8, bits [4 (v % 8), +3)   (nibble v % 8)
 *   value v = 24 + n:   bit i of its code at bit 4 n + 3 of word i
 * So words 0-2 unpack like 4-bit words masked to 3 bits, and their nibble
 * bits 3 gathered give a fourth such word (qk_q3w3: codes at nibble bits
 * 1-3). Scales and zero points do not move. */
__device__ __forceinline__ u32 qk_q3w3(u32 w0, u32 w1, u32 w2) {
    return ((w0 >> 2) & 0x22222222u) | ((w1 >> 1) & 0x44444444u) | (w2 & 0x88888888u);
}
/* Code of value v (0..31) of a block in the device layout. */
__device__ __forceinline__ u32 qk_q3code(u32 w0, u32 w1, u32 w2, int v) {
    if (v < 24) return ((v < 8 ? w0 : v < 16 ? w1 : w2) >> (4 * (v & 7))) & 7u;
    return (qk_q3w3(w0, w1, w2) >> (4 * (v - 24) + 1)) & 7u;
}
/* One block from the embedded layout to the device layout. */
__device__ __forceinline__ void qk_q3_repack(u32 &w0, u32 &w1, u32 &w2) {
    u32 o[3] = {0u, 0u, 0u};
#pragma unroll
    for (int v = 0; v < 32; v++) {
        const u32 q = (((v < 16 ? w0 : w1) >> (2 * (v & 15))) & 3u) | ((w2 >> v) & 1u) << 2;
        if (v < 24) {
            o[v >> 3] |= q << (4 * (v & 7));
        } else {
            const int b = 4 * (v - 24) + 3;
            o[0] |= (q & 1u) << b, o[1] |= ((q >> 1) & 1u) << b, o[2] |= (q >> 2) << b;
        }
    }
    w0 = o[0], w1 = o[1], w2 = o[2];
}
/* One block from the device layout back to the embedded one (the float GEMV's bit-plane unpacking). */
__device__ __forceinline__ void qk_q3_planes(u32 &w0, u32 &w1, u32 &w2) {
    u32 o[3] = {0u, 0u, 0u};
#pragma unroll
    for (int v = 0; v < 32; v++) {
        const u32 q = qk_q3code(w0, w1, w2, v);
        o[v >> 4] |= (q & 3u) << (2 * (v & 15));
        o[2] |= (q >> 2) << v;
    }
    w0 = o[0], w1 = o[1], w2 = o[2];
}

/* Weight (n, k) as f32: scale * (code - zero), exactly as the CPU reference
 * (qrt_qdequant_row_ref); for float formats the stored value (3 bits: in
 * the device layout above). */
template <int DT>
__device__ __forceinline__ float qk_wval(const u8 *w, int n, int k, int K, int N, int g, int sym) {
    typedef qk_fmt<DT> F;
    if (!F::bits) return qk_ld<DT>(w, (size_t)n * K + k);
    const qk_qlayout l = qk_qlayout_make(F::bits, K, N, g);
    const u32 *bw = (const u32 *)(w + (size_t)n * l.row_bytes + (size_t)4 * F::bits * (k >> 5));
    const int j = k & 31;
    u32 q;
    if (F::bits == 3)
        q = qk_q3code(__ldg(bw), __ldg(bw + 1), __ldg(bw + 2), j);
    else
        q = (__ldg(bw + j / F::per) >> (F::bits * (j % F::per))) & ((1u << F::bits) - 1);
    const size_t t = (size_t)n * l.G + k / g;
    const float s = qk_h2f(__ldg((const u16 *)(w + l.scales_off) + t));
    const float z = sym ? (float)F::half : (float)__ldg(w + l.zeros_off + t);
    return s * ((float)q - z);
}

/* Code bytes to floats: byte m of word v becomes the f32 2^23 + byte
 * (exact), or, for the fast variant, 0.5 + byte / 256 (bytes < 128). */
__device__ __forceinline__ float qk_mag(u32 v, int m) {
    return __uint_as_float(__byte_perm(v, 0x4B000000u, 0x7540u | m));
}
__device__ __forceinline__ float qk_mag_fast(u32 v, int m) {
    return __uint_as_float(__byte_perm(v, 0x3F000000u, 0x7054u | (m << 8)));
}
/* Component c of v (c a compile-time constant after unrolling: the
 * register array wr stays in registers). */
__device__ __forceinline__ u32 qk_word(const uint4 &v, int c) {
    return c == 0 ? v.x : c == 1 ? v.y : c == 2 ? v.z : v.w;
}
/* Nibble m of the low 16 bits of t to the low nibble of byte m. */
__device__ __forceinline__ u32 qk_spread4(u32 t) {
    t &= 0xffffu;
    t = (t | (t << 8)) & 0x00ff00ffu;
    return (t | (t << 4)) & 0x0f0f0f0fu;
}

/* Bytes s of the 32 codes of one packed block, 4 codes per word: byte m of
 * codes4(..., i) holds the code of value c(i, m) of the block, where x is
 * read as float4 X[i/4] and the value's float is component i%4 of it:
 *   bits 2/3 (value j at word j/16, bits 2(j%16)): group i = 4h + s (h half,
 *     s shift) -> byte m = value 16h + 4m + s  -> x float4 4h+m, comp s
 *   bits 4: group i = 2w + e -> byte m = value 8w + 2m + e -> x float4 2w + m/2, comp 2(m%2) + e
 *   bits 8: group i = w -> byte m = value 4w + m -> x float4 w, comp m
 * The GEMV below spells these out per bit width. */

/* ---- GEMV: y[b, n] = x[b, :] . W[n, :] (+ bias), b < rows <= B ----
 *
 * Work item = (row group of R rows, chunk of CH columns). For each of the R
 * rows a lane issues U 16-byte loads (units, qk_fmt): R * U independent
 * loads in flight, each warp instruction reading 512 contiguous bytes. x is
 * staged in shared memory with PADX floats of padding after every UV values,
 * so the lanes' float4 reads of their units fall in distinct banks; every x
 * value read there serves the R rows.
 *
 * When all of K fits (sv >= K), x is staged once per block with cp.async
 * while the first item's weights are already on their way, and the grid is
 * persistent: warp w of the grid takes row groups w, w + (warps in the
 * grid), ...; the next item's weights and scales are loaded before the
 * current one is computed (two register buffers). Otherwise x comes in
 * stages of sv columns and each warp takes one row group.
 *
 * Packed codes become exact floats by a byte permute into 2^23 + q; one
 * subtraction gives q - z; each 32-value block's dot is scaled once:
 * sum s (q - z) x = s * sum (q - z) x. */

/* One item's loads: weights, and scale | zero << 16 of each 32-value block
 * of each unit (the first block only when a unit lies in one group). */
template <int DT>
struct qk_buf {
    uint4 w[qk_fmt<DT>::R][qk_fmt<DT>::U];
    u32 sz[qk_fmt<DT>::R][qk_fmt<DT>::U][qk_fmt<DT>::NBU];
};

__device__ __forceinline__ void qk_cp16(float *dst, const float *src, int bytes) {
    u32 d;
    asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(d) : "l"(dst));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(bytes) : "memory");
}
__device__ __forceinline__ void qk_cp_wait(void) { asm volatile("cp.async.wait_all;\n" ::: "memory"); }

/* x[b][s0, s0 + sv) -> xs[b][...] padded; zeros past K and for b >= rows.
 * Asynchronous (cp.async) when rows are 16-byte aligned: qk_cp_wait, then
 * a barrier, before reading. */
template <int B, int UV, int PADX>
__device__ __forceinline__ void qk_stage_x(float *xs, const float *x, int rows, int s0, int sv, int K, int xstride) {
    const int nv4 = sv / 4;
    for (int i = threadIdx.x; i < B * nv4; i += blockDim.x) {
        const int b = i / nv4, e = (i - b * nv4) * 4, k = s0 + e;
        float *dst = xs + b * xstride + e + e / UV * PADX;
        const float *xr = x + (size_t)b * K;
        if ((K & 3) == 0) {
            const int live = b < rows && k < K;
            qk_cp16(dst, live ? xr + k : x, live ? 16 : 0);
        } else {
            float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (b < rows) {
                v.x = k < K ? xr[k] : 0.0f;
                v.y = k + 1 < K ? xr[k + 1] : 0.0f;
                v.z = k + 2 < K ? xr[k + 2] : 0.0f;
                v.w = k + 3 < K ? xr[k + 3] : 0.0f;
            }
            *(float4 *)dst = v;
        }
    }
}

/* First column of unit u of this lane in the chunk starting at c0. */
template <int DT>
__device__ __forceinline__ int qk_unit_col(int c0, int u, int lane) {
    typedef qk_fmt<DT> F;
    return F::COAL ? c0 + F::UV * (32 * u + lane) : c0 + F::UV * lane;
}

template <int DT>
__device__ __forceinline__ void gemv_load(qk_buf<DT> &bf, const u8 *__restrict__ w, const qk_qlayout &l,
                                          bool vec_rows, int n0, int c0, int K, int N, int g, int sym) {
    typedef qk_fmt<DT> F;
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int r = 0; r < F::R; r++) {
        const int n = n0 + r;
#pragma unroll
        for (int u = 0; u < F::U; u++) {
            const int k = qk_unit_col<DT>(c0, u, lane);
            /* byte offset in the row: 16 per unit (3 bits: 12 per 32-value block, then 16 per load) */
            const size_t off = F::COAL ? (size_t)k / F::UV * 16 : (size_t)(k / 32) * 12 + 16 * u;
            if (n < N && k < K && (F::bits || vec_rows) && off + 16 <= l.row_bytes) {
                const u8 *p = w + (size_t)n * l.row_bytes + off;
                bf.w[r][u] = F::COAL ? qk_ld_stream(p) : qk_ld_l1(p);
            } else {
                bf.w[r][u] = make_uint4(0, 0, 0, 0);
            }
        }
    }
    if (!F::bits) return;
    const u16 *scales = (const u16 *)(w + l.scales_off);
    const u8 *zeros = w + l.zeros_off;
    const bool one = g % (F::NBU * 32) == 0; /* a unit (piece) lies in one group */
#pragma unroll
    for (int r = 0; r < F::R; r++) {
        const int n = n0 + r < N ? n0 + r : N - 1;
#pragma unroll
        for (int u = 0; u < (F::COAL ? F::U : 1); u++) {
            const int k = qk_unit_col<DT>(c0, u, lane);
#pragma unroll
            for (int j = 0; j < F::NBU; j++) {
                if (j > 0 && one) break;
                const int kb = k + 32 * j;
                const size_t gi = (size_t)n * l.G + (kb < K ? kb / g : 0);
                bf.sz[r][u][j] = (u32)__ldg(scales + gi) | (sym ? 0u : (u32)__ldg(zeros + gi) << 16);
            }
        }
    }
}

/* Dot products of one 32-value block of R rows with B rows of x: words
 * QK_W(r, i) (i < bits) of the block, x at xb + b * xstride (natural order);
 * ba[r][b] += sum (q - z) x (exact) or sum (0.5 + q/256) x (fast, with
 * xsum[b] += sum x). For 8 bits a "block" here is 16 values (4 words). */
#define QK_X4(b, f) (*(const float4 *)(xb + (b) * xstride + 4 * (f)))
template <int BITS, int R, int B, int FAST, typename WF>
__device__ __forceinline__ void qk_block_dot(float (&ba)[R][B], float (&xsum)[B], const WF &word, const float *xb,
                                             int xstride, const float (&zf)[R]) {
    float p[R][B][4]; /* four independent FMA chains per row and batch row */
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int b = 0; b < B; b++) p[r][b][0] = p[r][b][1] = p[r][b][2] = p[r][b][3] = 0.0f;
    if (BITS == 8) {
#pragma unroll
        for (int f = 0; f < 4; f++) {
            float4 xv[B];
#pragma unroll
            for (int b = 0; b < B; b++) xv[b] = QK_X4(b, f);
#pragma unroll
            for (int r = 0; r < R; r++) {
                const u32 v = word(r, f);
                const float q0 = qk_mag(v, 0) - zf[r], q1 = qk_mag(v, 1) - zf[r];
                const float q2 = qk_mag(v, 2) - zf[r], q3 = qk_mag(v, 3) - zf[r];
#pragma unroll
                for (int b = 0; b < B; b++) {
                    p[r][b][f] = fmaf(q0, xv[b].x, p[r][b][f]);
                    p[r][b][f] = fmaf(q1, xv[b].y, p[r][b][f]);
                    p[r][b][f] = fmaf(q2, xv[b].z, p[r][b][f]);
                    p[r][b][f] = fmaf(q3, xv[b].w, p[r][b][f]);
                }
            }
        }
    } else if (BITS == 4) {
#pragma unroll
        for (int wi = 0; wi < 4; wi++) {
            float4 xa[B], xc[B];
#pragma unroll
            for (int b = 0; b < B; b++) {
                xa[b] = QK_X4(b, 2 * wi);
                xc[b] = QK_X4(b, 2 * wi + 1);
                if (FAST) xsum[b] += (xa[b].x + xa[b].y) + (xa[b].z + xa[b].w) + ((xc[b].x + xc[b].y) + (xc[b].z + xc[b].w));
            }
#pragma unroll
            for (int r = 0; r < R; r++) {
                const u32 v = word(r, wi);
                const u32 lo = v & 0x0f0f0f0fu, hi = (v >> 4) & 0x0f0f0f0fu;
                float q[8];
#pragma unroll
                for (int m = 0; m < 4; m++) {
                    if (FAST) {
                        q[2 * m] = qk_mag_fast(lo, m), q[2 * m + 1] = qk_mag_fast(hi, m);
                    } else {
                        q[2 * m] = qk_mag(lo, m) - zf[r], q[2 * m + 1] = qk_mag(hi, m) - zf[r];
                    }
                }
#pragma unroll
                for (int b = 0; b < B; b++) {
                    p[r][b][wi] = fmaf(q[0], xa[b].x, p[r][b][wi]);
                    p[r][b][wi] = fmaf(q[1], xa[b].y, p[r][b][wi]);
                    p[r][b][wi] = fmaf(q[2], xa[b].z, p[r][b][wi]);
                    p[r][b][wi] = fmaf(q[3], xa[b].w, p[r][b][wi]);
                    p[r][b][wi] = fmaf(q[4], xc[b].x, p[r][b][wi]);
                    p[r][b][wi] = fmaf(q[5], xc[b].y, p[r][b][wi]);
                    p[r][b][wi] = fmaf(q[6], xc[b].z, p[r][b][wi]);
                    p[r][b][wi] = fmaf(q[7], xc[b].w, p[r][b][wi]);
                }
            }
        }
    } else { /* 2 and 3 bits: two halves of 16 values */
        u32 pl[R][3]; /* 3 bits: the block back in bit planes (qk_q3_planes) */
#pragma unroll
        for (int r = 0; r < R; r++) {
            pl[r][0] = word(r, 0), pl[r][1] = word(r, 1), pl[r][2] = BITS == 3 ? word(r, 2) : 0u;
            if (BITS == 3) qk_q3_planes(pl[r][0], pl[r][1], pl[r][2]);
        }
#pragma unroll
        for (int h = 0; h < 2; h++) {
            float4 xv[4][B];
#pragma unroll
            for (int m = 0; m < 4; m++)
#pragma unroll
                for (int b = 0; b < B; b++) {
                    xv[m][b] = QK_X4(b, 4 * h + m);
                    if (FAST) xsum[b] += (xv[m][b].x + xv[m][b].y) + (xv[m][b].z + xv[m][b].w);
                }
#pragma unroll
            for (int r = 0; r < R; r++) {
                const u32 v = pl[r][h];
                /* 3 bits: bit 2 of value j is bit j of word 2; spread the half's
                 * 16 bits so that byte m, bit s + 2 holds value 4m + s's. */
                const u32 hb = BITS == 3 ? qk_spread4(pl[r][2] >> (16 * h)) << 2 : 0u;
#pragma unroll
                for (int s = 0; s < 4; s++) {
                    u32 c = (v >> (2 * s)) & 0x03030303u;
                    if (BITS == 3) c |= (hb >> s) & 0x04040404u;
#pragma unroll
                    for (int m = 0; m < 4; m++) {
                        const float q = FAST ? qk_mag_fast(c, m) : qk_mag(c, m) - zf[r];
#pragma unroll
                        for (int b = 0; b < B; b++) {
                            const float xm = s == 0 ? xv[m][b].x : s == 1 ? xv[m][b].y : s == 2 ? xv[m][b].z : xv[m][b].w;
                            p[r][b][s] = fmaf(q, xm, p[r][b][s]);
                        }
                    }
                }
            }
        }
    }
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int b = 0; b < B; b++) ba[r][b] += (p[r][b][0] + p[r][b][1]) + (p[r][b][2] + p[r][b][3]);
}
#undef QK_X4

/* Words of block `blk` of the loaded units, as qk_block_dot reads them. */
template <int DT>
struct qk_words {
    const qk_buf<DT> &bf;
    int u0, w0; /* unit and word of the block's first word */
    __device__ __forceinline__ u32 operator()(int r, int i) const {
        const int t = w0 + i; /* compile-time after unrolling */
        return qk_word(bf.w[r][u0 + t / 4], t % 4);
    }
};

/* acc[r][b] += this item's share; xs: the stage's x, item columns from c0
 * (sc0: c0 relative to the stage). */
template <int DT, int B>
__device__ __forceinline__ void gemv_compute(float (&acc)[qk_fmt<DT>::R][B], const qk_buf<DT> &bf,
                                             const float *xs, int xstride, int c0, int sc0,
                                             const u8 *__restrict__ w, bool vec_rows, int n0, int K, int N,
                                             int g, int sym) {
    typedef qk_fmt<DT> F;
    const int U = F::U, R = F::R, lane = threadIdx.x & 31;
    if (!F::bits) {
        /* f32: 4 values per unit; f16/bf16: 8. */
        const int per = F::UV;
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int e = sc0 + per * (32 * u + lane), kp = c0 + per * (32 * u + lane);
            const float *xu = xs + e + e / per * F::PADX;
            float xv[B][8];
#pragma unroll
            for (int b = 0; b < B; b++) {
                const float4 a = *(const float4 *)(xu + b * xstride);
                xv[b][0] = a.x, xv[b][1] = a.y, xv[b][2] = a.z, xv[b][3] = a.w;
                if (per == 8) {
                    const float4 c = *(const float4 *)(xu + b * xstride + 4);
                    xv[b][4] = c.x, xv[b][5] = c.y, xv[b][6] = c.z, xv[b][7] = c.w;
                }
            }
#pragma unroll
            for (int r = 0; r < R; r++) {
                float wv[8];
                if (vec_rows) {
                    const u32 q[4] = {bf.w[r][u].x, bf.w[r][u].y, bf.w[r][u].z, bf.w[r][u].w};
#pragma unroll
                    for (int i = 0; i < 4; i++) {
                        if (DT == QK_F32) {
                            wv[i] = __uint_as_float(q[i]);
                        } else if (DT == QK_F16) {
                            wv[2 * i] = qk_h2f((u16)(q[i] & 0xffff));
                            wv[2 * i + 1] = qk_h2f((u16)(q[i] >> 16));
                        } else {
                            wv[2 * i] = __uint_as_float(q[i] << 16);
                            wv[2 * i + 1] = __uint_as_float(q[i] & 0xffff0000u);
                        }
                    }
                } else { /* rows not 16-byte aligned: element loads */
                    const int n = n0 + r;
#pragma unroll
                    for (int i = 0; i < per; i++) {
                        const int k = kp + i;
                        wv[i] = n < N && k < K ? qk_ld<DT>(w, (size_t)n * K + k) : 0.0f;
                    }
                }
#pragma unroll
                for (int b = 0; b < B; b++)
#pragma unroll
                    for (int i = 0; i < per; i++) acc[r][b] = fmaf(wv[i], xv[b][i], acc[r][b]);
            }
        }
        return;
    }
    const int fast = QK_LGEMV_FAST && F::bits <= 4;
    const bool one = g % (F::NBU * 32) == 0;
    /* blocks of this item: for each unit (3 bits: the piece) NB blocks of 32 values (8 bits: 16 values) */
    const int NU = F::COAL ? U : 1, NB = F::bits == 8 ? 1 : F::NBU;
#pragma unroll
    for (int u = 0; u < NU; u++) {
        const int k0 = qk_unit_col<DT>(c0, u, lane), e0 = k0 - c0 + sc0;
        const float *xu = xs + e0 + e0 / F::UV * F::PADX;
#pragma unroll
        for (int j = 0; j < NB; j++) {
            const int kb = k0 + 32 * j;
            if (kb >= K) break;
            float sc[R], zf[R];
#pragma unroll
            for (int r = 0; r < R; r++) {
                const u32 v = one ? bf.sz[r][u][0] : bf.sz[r][u][j]; /* constant indices: registers */
                sc[r] = qk_h2f((u16)(v & 0xffff));
                const float z = sym ? (float)F::half : (float)(v >> 16);
                zf[r] = fast ? 128.0f + z : 8388608.0f + z;
            }
            float ba[R][B], xsum[B];
#pragma unroll
            for (int b = 0; b < B; b++) {
                xsum[b] = 0.0f;
#pragma unroll
                for (int r = 0; r < R; r++) ba[r][b] = 0.0f;
            }
            /* the block's first word: unit u (+ j blocks of bits words); 3 bits: the piece's words */
            const qk_words<DT> word = {bf, F::COAL ? u : 0, F::bits * j};
            qk_block_dot<F::bits, R, B, QK_LGEMV_FAST && F::bits <= 4>(ba, xsum, word, xu + 32 * j, xstride, zf);
#pragma unroll
            for (int r = 0; r < R; r++)
#pragma unroll
                for (int b = 0; b < B; b++) {
                    float d = ba[r][b];
                    if (fast) d = fmaf(256.0f, d, -zf[r] * xsum[b]);
                    acc[r][b] = fmaf(sc[r], d, acc[r][b]);
                }
        }
    }
}

/* Warp sums of one row group's accumulators -> y (+ bias); clears acc. */
template <int R, int B>
__device__ __forceinline__ void gemv_store(float (&acc)[R][B], float *__restrict__ y, const float *__restrict__ bias,
                                           int n0, int N, int rows, float *__restrict__ res) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int r = 0; r < R; r++) {
        const int n = n0 + r;
#pragma unroll
        for (int b = 0; b < B; b++) {
            const float v = qk_warp_sum(acc[r][b]);
            if (lane == 0 && n < N && b < rows) {
                const float o = v + (bias ? bias[n] : 0.0f);
                y[(size_t)b * N + n] = o;
                if (res) res[(size_t)b * N + n] += o;
            }
            acc[r][b] = 0.0f;
        }
    }
}

template <int DT, int B>
__device__ __forceinline__ void gemv_core(const u8 *__restrict__ w, const float *__restrict__ bias,
                                          const float *__restrict__ x, float *__restrict__ y,
                                          int rows, int sv, int K, int N, int g, int sym, float *__restrict__ res = NULL) {
    typedef qk_fmt<DT> F;
    const int R = F::R, CH = F::CH, W = QK_LGEMV_WARPS;
    extern __shared__ float4 qk_smem4[];
    QK_DEP();
    float *xs = (float *)qk_smem4; /* [B][sv + sv / UV * PADX] */
    const int xstride = sv + sv / F::UV * F::PADX;
    const int warp = threadIdx.x >> 5;
    qk_qlayout l;
    if (F::bits)
        l = qk_qlayout_make(F::bits, K, N, g);
    else
        l.row_bytes = (size_t)K * F::esize, l.scales_off = l.zeros_off = 0, l.G = 0;
    const bool vec_rows = (l.row_bytes & 15) == 0; /* float formats: 16-byte aligned rows */
    const int NG = (N + R - 1) / R, NC = (K + CH - 1) / CH, TW = gridDim.x * W;
    int rg = blockIdx.x * W + warp;
    float acc[R][B];
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int b = 0; b < B; b++) acc[r][b] = 0.0f;
    if (sv >= K) { /* persistent and pipelined */
        qk_buf<DT> nx;
        qk_stage_x<B, F::UV, F::PADX>(xs, x, rows, 0, sv, K, xstride);
        if (rg < NG) gemv_load<DT>(nx, w, l, vec_rows, rg * R, 0, K, N, g, sym);
        qk_cp_wait();
        __syncthreads();
        int c = 0;
        if (!QK_LGEMV_PIPE) { /* one buffer: loads of an item, then its compute */
            for (; rg < NG; rg += TW) {
                for (c = 0; c < NC; c++) {
                    if (c || rg != blockIdx.x * W + warp) gemv_load<DT>(nx, w, l, vec_rows, rg * R, c * CH, K, N, g, sym);
                    gemv_compute<DT, B>(acc, nx, xs, xstride, c * CH, c * CH, w, vec_rows, rg * R, K, N, g, sym);
                }
                gemv_store<R, B>(acc, y, bias, rg * R, N, rows, res);
            }
            return;
        }
        while (rg < NG) {
            const qk_buf<DT> cur = nx;
            int rg2 = rg, c2 = c + 1;
            if (c2 == NC) c2 = 0, rg2 += TW;
            if (rg2 < NG) gemv_load<DT>(nx, w, l, vec_rows, rg2 * R, c2 * CH, K, N, g, sym);
            gemv_compute<DT, B>(acc, cur, xs, xstride, c * CH, c * CH, w, vec_rows, rg * R, K, N, g, sym);
            if (c == NC - 1) gemv_store<R, B>(acc, y, bias, rg * R, N, rows, res);
            rg = rg2, c = c2;
        }
        return;
    }
    for (int s0 = 0; s0 < K; s0 += sv) { /* x in stages; one row group per warp */
        __syncthreads();
        qk_stage_x<B, F::UV, F::PADX>(xs, x, rows, s0, sv, K, xstride);
        qk_cp_wait();
        __syncthreads();
        if (rg >= NG) continue;
        const int s1 = min(s0 + sv, K);
        for (int c0 = s0; c0 < s1; c0 += CH) {
            qk_buf<DT> bf;
            gemv_load<DT>(bf, w, l, vec_rows, rg * R, c0, K, N, g, sym);
            gemv_compute<DT, B>(acc, bf, xs, xstride, c0, c0 - s0, w, vec_rows, rg * R, K, N, g, sym);
        }
    }
    if (rg < NG) gemv_store<R, B>(acc, y, bias, rg * R, N, rows, res);
}

/* ---- GEMV on the tensor cores: packed weights (2, 3, 4, 8 bits) and f16 ----
 *
 * y[b, n] = x[b, :] . W[n, :] (+ bias) for b < rows <= B, weights read in
 * their embedded layout (docs/formats.md), products on the tensor cores
 * (mma.sync m16n8k16, f16 x f16 -> f32), so the CUDA cores only unpack
 * codes: one LOP3 (or PRMT) turns two codes into an f16x2 register.
 *
 * Exactness. A code q at bit p of a 16-bit half, everything else masked
 * off, IS the f16 subnormal q * 2^(p-24): no conversion, no subtraction
 * (QK_GEMV_FAST 1 instead ORs the 0x6400 exponent in and subtracts 1024
 * with one HSUB2: q * 2^p, a normal f16). x is split per batch row into
 * f16 hi + lo (x * 2^e = hi + lo to 22 bits, e chosen from max |x| so that
 * nothing overflows), each an mma column, and the column of a code at bit p
 * holds x * 2^-p, so every product q * x * 2^-24 is exact in f32 and all
 * bit positions share one f32 accumulator. The zero point is not
 * subtracted per code: each 32-value block's x sum is staged with x and
 * s * (sum q x - z sum x) is taken per block. Error against the CPU's
 * exact f32 result: the hi/lo split (2^-22 of each x) and f32 accumulation
 * on the tensor cores, a few 1e-7 relative (test_cuda_kernels: 2e-6).
 *
 * Mapping. A warp works on items: one tile of 16 rows x CK columns. Lane
 * (gq = lane / 4, c = lane % 4) loads 16 bytes (q3: 48, f16: 2 x 16) of
 * rows n0 + gq and n0 + gq + 8 at column n0... + c * LV, so each load
 * instruction reads 8 rows x 64 contiguous bytes. The lane's unpacked
 * pairs are its A fragment registers (a0/a2 from row gq, a1/a3 from row
 * gq + 8): an mma step sums over 16 k-slots, the slots 2c, 2c+1, 2c+8,
 * 2c+9 being lane c's. The k-order within a slot pair is whatever the
 * unpacking gives; x is staged in shared memory in that order ("records"
 * of 16 f16x2 pairs hi + 16 lo, 128 bytes).
 * Packed formats: mma column 2c' + h (h: hi / lo) of n-tile t holds batch
 * row t's x in lane c''s k-slots only (zero elsewhere), so lane (gq, c)
 * ends up holding the sums of ITS OWN codes for rows gq, gq + 8 in its four
 * accumulator registers and applies its own block's scale and zero point:
 * any group size (a multiple of 32) works. f16: no scales, column 2b + h
 * is batch row b's x everywhere, one n-tile for B <= 4.
 *
 * Work split: the block takes m consecutive tiles (m = ceil(tiles / grid),
 * at most QK_GEMV_MMAX(B)), its warps split the m x (chunks of K) items
 * evenly (a contiguous range each, across tile boundaries), each warp's
 * per-tile partial sums go to shared memory and are summed in warp order
 * at the end: deterministic, and balanced to one item per warp. x is
 * staged once per block (in pieces of sv columns when it does not fit).
 * Each warp keeps D items of weights in flight in registers. */

template <int DT>
struct qk_mf {
    static const int bits = DT == QK_Q2 ? 2 : DT == QK_Q3 ? 3 : DT == QK_Q4 ? 4 : DT == QK_Q8 ? 8 : 0;
    /* An item: lane c holds LPI lane blocks of LV values of rows gq and gq + 8,
     * block j at column kc + j * 4 LV + c * LV (16 bytes of codes; q3: 24 = two
     * 32-value blocks, read as 3 x 8 bytes; f16: 8 values). */
    static const int LV = DT == QK_Q3 ? 64 : DT == QK_Q2 ? 64 : DT == QK_Q4 ? 32 : DT == QK_Q8 ? 16 : 8;
    static const int LPI = DT == QK_Q3 ? 1 : DT == QK_F16 ? 4 : 2;
    static const int CK = 4 * LV * LPI;                            /* columns per item */
    static const int NW = DT == QK_Q3 ? 6 : 4 * LPI;                /* code words per row, lane and item */
    static const int NSB = DT == QK_Q3 || DT == QK_Q2 ? 2 : 1;      /* 32-value scale blocks per lane block (q8: 16) */
    static const int NS = bits ? NSB * LPI : 1;
    static const int RP32 = 1;                                       /* x records per 32 columns */
    static const int XSV = DT == QK_Q8 ? 16 : 32;                   /* columns per staged x sum */
    static const int SPAN = DT == QK_Q8 ? 4 : DT == QK_Q2 ? 16 : 8; /* staging: columns per thread */
    static const int IB = 8 * NW;                                    /* bytes per lane and item (both rows) */
    static const int D0 = QK_GEMV_LOADS * 16 / IB;
    static const int D = !QK_GEMV_PIPE ? 1 : D0 < 2 ? 2 : D0 > 4 ? 4 : D0; /* items in flight per warp */
};

/* Shared memory of gemv_mma, bytes (runtime/cuda.c computes the same):
 * records B x (sv / 32 * RP32) x 128 | x sums B x sv / XSV floats, padded
 * to 128 | 16 + zeros 1024 + 112 | partials MMAX x W x 16 x B floats |
 * misc 1024 (max |x| per warp and row, 2^e and exponent per row). */
struct qk_mlay {
    int nrec, nxs, xsum, zero, part, misc, size;
};
template <int DT, int B, int W = QK_GEMV_WARPS>
__device__ __forceinline__ qk_mlay qk_mlay_make(int sv) {
    typedef qk_mf<DT> F;
    qk_mlay L;
    L.nrec = sv / 32 * F::RP32;
    L.nxs = sv / F::XSV;
    L.xsum = B * L.nrec * 128;
    L.zero = L.xsum + (B * L.nxs * 4 + 127) / 128 * 128 + 16;
    L.part = L.zero - 16 + 1152;
    L.misc = L.part + QK_GEMV_MMAX(B) * W * 16 * B * 4;
    L.size = L.misc + 1024;
    return L;
}

/* One item in registers: code words of rows gq (a) and gq + 8 (b), and the
 * raw scale (f16 bits) and zero point of each 32-value block, kept apart so
 * that nothing waits for these loads before the item is computed. */
template <int DT>
struct qk_mit {
    u32 a[qk_mf<DT>::NW], b[qk_mf<DT>::NW];
    u32 sa[qk_mf<DT>::NS], sb[qk_mf<DT>::NS], za[qk_mf<DT>::NS], zb[qk_mf<DT>::NS];
};

/* How an item's scales are loaded (the same in every load path):
 * 0: one (scale, zero) per 32-value block (NSB per lane block, or one when
 *    the lane block's blocks share a group);
 * 1 (q4, g == 128, G even): lane blocks 0 and 1 are groups t, t + 1 with t
 *    even: one 4-byte load for both scales, one 2-byte load for both zeros;
 * 2: every lane block of the item in one group: loaded once (q8 g128). */
template <int DT>
__device__ __forceinline__ int qk_smode(int g, int K, const qk_qlayout &l) {
    typedef qk_mf<DT> F;
    if (F::LPI < 2 || !F::bits) return 0;
    if (g >= K || g % F::CK == 0) return 2;
    if (DT == QK_Q4 && g == 4 * F::LV && (l.G & 1) == 0) return 1;
    return 0;
}

__device__ __forceinline__ void qk_mma(float (&d)[4], u32 a0, u32 a1, u32 a2, u32 a3, u32 b0, u32 b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

/* Four 8 x 8 matrices of 16-bit values from shared memory (ldmatrix .x4):
 * lane l gives the address of row l % 8 of matrix l / 8 (16 bytes, 16-byte
 * aligned); r[m] is matrix m's fragment (row lane / 4, columns 2 (lane % 4)
 * and + 1), the B operand of qk_mma when the rows are its columns. */
__device__ __forceinline__ void qk_ldsm4(u32 (&r)[4], const void *p) {
    const unsigned a = (unsigned)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}

/* Two codes as an f16x2 A register: the bits m of v. */
#if QK_GEMV_FAST == 1
#define QK_MAGIC 0x64006400u
#define QK_ASCALE 1.0f /* A = q * 2^p */
#define QK_AEXP 0
__device__ __forceinline__ u32 qk_fix(u32 r) {
    u32 o;
    asm("sub.rn.f16x2 %0, %1, %2;" : "=r"(o) : "r"(r), "r"(QK_MAGIC));
    return o;
}
__device__ __forceinline__ u32 qk_ha(u32 v, u32 m) { return qk_fix((v & m) | QK_MAGIC); }
#else
#define QK_MAGIC 0u
#define QK_ASCALE 5.9604644775390625e-8f /* A = q * 2^(p - 24) */
#define QK_AEXP 24
__device__ __forceinline__ u32 qk_fix(u32 r) { return r; }
__device__ __forceinline__ u32 qk_ha(u32 v, u32 m) { return v & m; }
#endif
/* Bytes (0, 2) / (1, 3) of v as two codes: PRMT (plus the magic). */
__device__ __forceinline__ u32 qk_hb02(u32 v) { return qk_fix(__byte_perm(v, QK_MAGIC ? 0x64646464u : 0u, 0x4240)); }
__device__ __forceinline__ u32 qk_hb13(u32 v) { return qk_fix(__byte_perm(v, QK_MAGIC ? 0x64646464u : 0u, 0x4341)); }

/* (f16(a), f16(b)) and the rounding residuals (f16(a - hi.a), ...), low half first. */
__device__ __forceinline__ void qk_x2(float a, float b, u32 &hi, u32 &lo) {
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(hi) : "f"(b), "f"(a));
    const float ra = a - qk_h2f((u16)(hi & 0xffff)), rb = b - qk_h2f((u16)(hi >> 16));
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(lo) : "f"(rb), "f"(ra));
}
/* Pairs (slot, slot + 1) of a record: (a0, b0) and (a1, b1), each times sc. */
__device__ __forceinline__ void qk_xput(char *rec, int slot, float sc, float a0, float b0, float a1, float b1) {
    uint2 h, l;
    qk_x2(a0 * sc, b0 * sc, h.x, l.x);
    qk_x2(a1 * sc, b1 * sc, h.y, l.y);
    *(uint2 *)(rec + 4 * slot) = h;
    *(uint2 *)(rec + 64 + 4 * slot) = l;
}

/* One staging span: S columns from kr (relative to the piece) of batch row
 * b, already times 2^e, into the records in the k-order of the unpacking
 * below. */
template <int DT>
__device__ __forceinline__ void qk_mspan(char *sm, int nrec, int b, int kr, const float *v) {
    char *rb = sm + (size_t)b * nrec * 128;
    if (DT == QK_F16) {
        char *rec = rb + (kr / 32) * 128;
        const int slot = (kr & 31) / 2;
        uint4 h, l;
        qk_x2(v[0], v[1], h.x, l.x);
        qk_x2(v[2], v[3], h.y, l.y);
        qk_x2(v[4], v[5], h.z, l.z);
        qk_x2(v[6], v[7], h.w, l.w);
        *(uint4 *)(rec + 4 * slot) = h, *(uint4 *)(rec + 64 + 4 * slot) = l;
    } else if (DT == QK_Q4 || DT == QK_Q3) { /* word w: pairs (0,4) (2,6) at slots 2w; (1,5) (3,7) / 16 at 8 + 2w */
        char *rec = rb + (kr / 32) * 128;
        const int w = (kr / 8) & 3;
        const float sc = DT == QK_Q3 && w == 3 ? 0.5f : 1.0f; /* q3: word 3's codes sit at nibble bit 1 */
        qk_xput(rec, 2 * w, sc, v[0], v[4], v[2], v[6]);
        qk_xput(rec, 8 + 2 * w, sc * 0.0625f, v[1], v[5], v[3], v[7]);
    } else if (DT == QK_Q8) { /* word w of half hb: (0,2) (1,3) at 8 hb + 2w */
        char *rec = rb + (kr / 32) * 128;
        qk_xput(rec, 8 * ((kr / 16) & 1) + 2 * ((kr / 4) & 3), 1.0f, v[0], v[2], v[1], v[3]);
    } else if (DT == QK_Q2) { /* word w of a 64-value lane block; bit pair p */
        char *rec = rb + (kr / 64) * 256;
        const int w = (kr / 16) & 3;
#pragma unroll
        for (int p = 0; p < 4; p++)
            qk_xput(rec + (p >> 1) * 128, 2 * (4 * (p & 1) + w), 1.0f / (float)(1 << (2 * p)), v[p], v[8 + p], v[4 + p],
                    v[12 + p]);
    }
}
/* The x sums: s is this lane's span sum; the spans of one sum are on
 * consecutive lanes (all 32 lanes call this). */
template <int DT>
__device__ __forceinline__ void qk_msum(char *sm, int xsum, int nxs, bool live, int b, int kr, float s) {
    typedef qk_mf<DT> F;
    if (DT == QK_F16) return;
    s += __shfl_xor_sync(QK_FULL, s, 1);
    if (F::XSV / F::SPAN == 4) s += __shfl_xor_sync(QK_FULL, s, 2);
    if (live && (kr % F::XSV) == 0) ((float *)(sm + xsum))[b * nxs + kr / F::XSV] = s * QK_ASCALE;
}

/* Stages x[b][s0, s0 + sv) (times 2^e_b, zero past K and for b >= rows)
 * as records in the k-order of the unpacking below, and the block sums. */
template <int DT, int B>
__device__ __forceinline__ void qk_mstage(char *sm, const qk_mlay &L, const float *__restrict__ x, int rows, int s0,
                                          int sv, int K) {
    typedef qk_mf<DT> F;
    const int S = F::SPAN, nsp = sv / S, total = B * nsp;
    const float *es = (const float *)(sm + L.misc + 512);
    for (int base = 0; base < total; base += blockDim.x) { /* whole warps: the sums are shuffled */
        const int idx = base + threadIdx.x;
        const bool live = idx < total;
        const int b = live ? idx / nsp : 0, kr = live ? (idx - b * nsp) * S : 0, k = s0 + kr;
        float v[S];
        const float e = es[b];
        const float *xr = x + (size_t)b * K;
        if (live && b < rows && (K & 3) == 0 && k + S <= K) {
#pragma unroll
            for (int i = 0; i < S; i += 4) {
                const float4 q = *(const float4 *)(xr + k + i);
                v[i] = q.x * e, v[i + 1] = q.y * e, v[i + 2] = q.z * e, v[i + 3] = q.w * e;
            }
        } else {
#pragma unroll
            for (int i = 0; i < S; i++) v[i] = live && b < rows && k + i < K ? xr[k + i] * e : 0.0f;
        }
        if (live) qk_mspan<DT>(sm, L.nrec, b, kr, v);
        float su = 0.0f;
#pragma unroll
        for (int i = 0; i < S; i++) su += v[i];
        qk_msum<DT>(sm, L.xsum, L.nxs, live, b, kr, su);
    }
}

/* The load cursor of a warp: item (tile tl, chunk ci of the piece, first
 * column kc); p: row n0 + gq at this lane's bytes of the item (advanced
 * per item); srow: the row's first scale; tin: all rows of the tile exist.
 * PAIR: a tile is rows n0 .. n0 + 7 of two weights of one shape (gate and
 * up) as its rows 0-7 and 8-15; dw: the second weight's address minus the
 * first's. */
struct qk_cur {
    int tl, ci, kc;
    bool tin;
    const u8 *p;
    size_t srow;
    long long dw;
};
template <int DT>
__device__ __forceinline__ unsigned qk_moff(int kc, int j, int i, int c);
template <int DT, int PAIR = 0>
__device__ __forceinline__ void qk_cur_tile(qk_cur &q, const u8 *w, const qk_qlayout &l, int tile0, int N) {
    const int TR = PAIR ? 8 : 16, n0 = (tile0 + q.tl) * TR, lane = threadIdx.x & 31, gq = lane >> 2;
    q.tin = n0 + TR <= N;
    q.p = w + (size_t)(n0 + gq) * l.row_bytes + qk_moff<DT>(q.kc, 0, 0, lane & 3); /* dereferenced only when tin */
    q.srow = (size_t)(n0 + gq) * l.G;
}
template <int DT, int PAIR = 0>
__device__ __forceinline__ void qk_cur_next(qk_cur &q, const u8 *w, const qk_qlayout &l, int tile0, int N, int kcp,
                                            int s0) {
    typedef qk_mf<DT> F;
    q.kc += F::CK;
    q.p += DT == QK_F16 ? 2 * F::CK : DT == QK_Q3 ? F::CK / 32 * 12 : F::CK * F::bits / 8;
    if (++q.ci == kcp) {
        q.ci = 0, q.kc = s0, q.tl++;
        qk_cur_tile<DT, PAIR>(q, w, l, tile0, N);
    }
}

/* Byte offset in a row of lane block j's load i (q3: 8-byte loads, else 16). */
template <int DT>
__device__ __forceinline__ unsigned qk_moff(int kc, int j, int i, int c) {
    typedef qk_mf<DT> F;
    if (DT == QK_F16) return 2u * (unsigned)(kc + 32 * j + 8 * c);
    const unsigned col = (unsigned)(kc + j * 4 * F::LV + c * F::LV);
    if (DT == QK_Q3) return col / 32 * 12 + 8 * i;
    return col * F::bits / 8;
}

/* Loads the item at the cursor. */
template <int DT, int PAIR = 0>
__device__ __forceinline__ void qk_mload(qk_mit<DT> &it, const qk_cur &q, const u8 *__restrict__ w,
                                         const qk_qlayout &l, int tile0, int K, int N, int g, int sym, bool one,
                                         int smode) {
    typedef qk_mf<DT> F;
    const int lane = threadIdx.x & 31, gq = lane >> 2, c = lane & 3;
    const u16 *scales = (const u16 *)(w + l.scales_off);
    const u8 *zeros = w + l.zeros_off;
    if (q.tin && q.kc + F::CK <= K && (DT != QK_F16 || (K & 7) == 0)) { /* inside: no checks */
        const u8 *pa = q.p, *pb = PAIR ? q.p + q.dw : q.p + 8 * l.row_bytes;
        /* rows gq + 8 (PAIR: row gq of the second weight): their scales and zero points at [ia] */
        const u16 *scb = PAIR ? (const u16 *)((const u8 *)scales + q.dw) : scales + 8 * (size_t)l.G;
        const u8 *zrb = PAIR ? zeros + q.dw : zeros + 8 * (size_t)l.G;
#pragma unroll
        for (int j = 0; j < F::LPI; j++) {
            if (DT == QK_Q3) {
#pragma unroll
                for (int i = 0; i < 3; i++) {
                    const uint2 va = qk_ld8(pa + 8 * i), vb = qk_ld8(pb + 8 * i);
                    it.a[2 * i] = va.x, it.a[2 * i + 1] = va.y, it.b[2 * i] = vb.x, it.b[2 * i + 1] = vb.y;
                }
            } else {
                const unsigned o = DT == QK_F16 ? 64 * j : j * 4 * F::LV * F::bits / 8; /* lane block j */
                const uint4 va = qk_ld_stream(pa + o), vb = qk_ld_stream(pb + o);
                it.a[4 * j] = va.x, it.a[4 * j + 1] = va.y, it.a[4 * j + 2] = va.z, it.a[4 * j + 3] = va.w;
                it.b[4 * j] = vb.x, it.b[4 * j + 1] = vb.y, it.b[4 * j + 2] = vb.z, it.b[4 * j + 3] = vb.w;
            }
            if (!F::bits || (j > 0 && smode)) continue;
            const unsigned col = (unsigned)(q.kc + j * 4 * F::LV + c * F::LV);
#pragma unroll
            for (int sb = 0; sb < F::NSB; sb++) {
                if (sb > 0 && one) break;
                const size_t ia = q.srow + (col + 32 * sb) / (unsigned)g;
                if (smode == 1) { /* scales t, t + 1 in one word, zeros in one half-word */
                    it.sa[0] = qk_ldu32(scales + ia), it.sb[0] = qk_ldu32(scb + ia);
                    if (!sym) it.za[0] = qk_ldu16(zeros + ia), it.zb[0] = qk_ldu16(zrb + ia);
                    continue;
                }
                it.sa[F::NSB * j + sb] = qk_ldu16(scales + ia);
                it.sb[F::NSB * j + sb] = qk_ldu16(scb + ia);
                if (!sym) it.za[F::NSB * j + sb] = qk_ldu8(zeros + ia), it.zb[F::NSB * j + sb] = qk_ldu8(zrb + ia);
            }
        }
        return;
    }
    /* an edge tile or chunk: every load checked (PAIR: rows b from the second weight, wb) */
    const int n0 = (tile0 + q.tl) * (PAIR ? 8 : 16), na = n0 + gq, nb = PAIR ? na : na + 8;
    const int ra = na < N ? na : N - 1, rb = nb < N ? nb : N - 1;
    const u8 *wb = PAIR ? w + q.dw : w;
    const u16 *scalesb = (const u16 *)(wb + l.scales_off);
    const u8 *zerosb = wb + l.zeros_off;
#pragma unroll
    for (int j = 0; j < F::LPI; j++) {
        const int col = q.kc + (DT == QK_F16 ? 32 * j + 8 * c : j * 4 * F::LV + c * F::LV);
        if (DT == QK_F16 && (K & 7)) { /* rows not 16-byte aligned: element loads */
            const u16 *pa = (const u16 *)w + (size_t)ra * K, *pb = (const u16 *)wb + (size_t)rb * K;
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int k0 = col + 2 * e;
                it.a[4 * j + e] = (na < N && k0 < K ? __ldg(pa + k0) : 0) |
                                  (na < N && k0 + 1 < K ? (u32)__ldg(pa + k0 + 1) << 16 : 0u);
                it.b[4 * j + e] = (nb < N && k0 < K ? __ldg(pb + k0) : 0) |
                                  (nb < N && k0 + 1 < K ? (u32)__ldg(pb + k0 + 1) << 16 : 0u);
            }
            continue;
        }
        const u8 *pa = w + (size_t)ra * l.row_bytes, *pb = wb + (size_t)rb * l.row_bytes;
        if (DT == QK_Q3) {
#pragma unroll
            for (int i = 0; i < 3; i++) {
                const unsigned o = qk_moff<DT>(q.kc, j, i, c);
                const bool ok = col < K && o + 8 <= l.row_bytes;
                const uint2 va = ok && na < N ? qk_ld8(pa + o) : make_uint2(0, 0);
                const uint2 vb = ok && nb < N ? qk_ld8(pb + o) : make_uint2(0, 0);
                it.a[2 * i] = va.x, it.a[2 * i + 1] = va.y, it.b[2 * i] = vb.x, it.b[2 * i + 1] = vb.y;
            }
        } else {
            const unsigned o = qk_moff<DT>(q.kc, j, 0, c);
            const bool ok = col < K && o + 16 <= l.row_bytes;
            const uint4 va = ok && na < N ? qk_ld_stream(pa + o) : make_uint4(0, 0, 0, 0);
            const uint4 vb = ok && nb < N ? qk_ld_stream(pb + o) : make_uint4(0, 0, 0, 0);
            it.a[4 * j] = va.x, it.a[4 * j + 1] = va.y, it.a[4 * j + 2] = va.z, it.a[4 * j + 3] = va.w;
            it.b[4 * j] = vb.x, it.b[4 * j + 1] = vb.y, it.b[4 * j + 2] = vb.z, it.b[4 * j + 3] = vb.w;
        }
        if (!F::bits || (j > 0 && smode == 2)) continue;
#pragma unroll
        for (int sb = 0; sb < F::NSB; sb++) {
            if (sb > 0 && one) break;
            const int kb = col + 32 * sb, t = (kb < K ? kb : 0) / g;
            const size_t ia = (size_t)ra * l.G + t, ib = (size_t)rb * l.G + t;
            const u32 sa = qk_ldu16(scales + ia), sb2 = qk_ldu16(scalesb + ib);
            const u32 za = sym ? 0u : qk_ldu8(zeros + ia), zb = sym ? 0u : qk_ldu8(zerosb + ib);
            if (smode == 1) { /* the packed form of the fast path (edge items only: waits here) */
                it.sa[0] = j ? it.sa[0] | sa << 16 : sa, it.sb[0] = j ? it.sb[0] | sb2 << 16 : sb2;
                it.za[0] = j ? it.za[0] | za << 8 : za, it.zb[0] = j ? it.zb[0] | zb << 8 : zb;
                continue;
            }
            it.sa[F::NSB * j + sb] = sa, it.sb[F::NSB * j + sb] = sb2;
            it.za[F::NSB * j + sb] = za, it.zb[F::NSB * j + sb] = zb;
        }
    }
}

/* acc[r][t] += s * (sum over the lane's codes of q x - z * xsum), rows
 * gq (r 0) and gq + 8 (r 1) of n-tile (batch row) t. */
template <int NT>
__device__ __forceinline__ void qk_mepi(float (&acc)[2][NT], const float (&C)[NT][4], u32 sa, u32 sb, u32 za, u32 zb,
                                        const float (&xs)[NT], int sym, float zs) {
    const float s0 = qk_h2f((u16)sa), s1 = qk_h2f((u16)sb);
    const float z0 = sym ? zs : (float)za, z1 = sym ? zs : (float)zb;
#pragma unroll
    for (int t = 0; t < NT; t++) {
        acc[0][t] = fmaf(s0, fmaf(-z0, xs[t], C[t][0] + C[t][1]), acc[0][t]);
        acc[1][t] = fmaf(s1, fmaf(-z1, xs[t], C[t][2] + C[t][3]), acc[1][t]);
    }
}

template <int NT>
__device__ __forceinline__ void qk_mzero(float (&C)[NT][4]) {
#pragma unroll
    for (int t = 0; t < NT; t++) C[t][0] = C[t][1] = C[t][2] = C[t][3] = 0.0f;
}

/* B fragments of steps 2 i2 and 2 i2 + 1 for every n-tile: 16 bytes at
 * record i2 / 4, unit i2 % 4 from each lane's source. */
template <int NT>
__device__ __forceinline__ void qk_mldb(uint4 (&bq)[NT], const char *sm, const int (&bo)[NT], int i2, int rows) {
#pragma unroll
    for (int t = 0; t < NT; t++)
        bq[t] = NT > 1 && t >= rows ? make_uint4(0, 0, 0, 0)
                                    : *(const uint4 *)(sm + bo[t] + (i2 >> 2) * 128 + (i2 & 3) * 16);
}
/* One mma step per n-tile; h selects the step of the pair loaded in bq. */
template <int NT>
__device__ __forceinline__ void qk_mstep(float (&C)[NT][4], const uint4 (&bq)[NT], int h, u32 a0, u32 a1, u32 a2, u32 a3,
                                         int rows) {
#pragma unroll
    for (int t = 0; t < NT; t++) {
        if (NT > 1 && t >= rows) continue;
        qk_mma(C[t], a0, a1, a2, a3, h ? bq[t].z : bq[t].x, h ? bq[t].w : bq[t].y);
    }
}

/* Lane block j of an item of a packed weight: acc += the lane's share. bo:
 * the lane's x records for this block (or the zero area), xs: its x sums
 * (n-tile t at + t * xstr). */
template <int DT, int NT, int SG = 0>
__device__ __forceinline__ void qk_mblock(float (&acc)[2][NT], const qk_mit<DT> &it, int j, const char *sm,
                                          const int (&bo)[NT], const float *xs, int xstr, bool one, int smode, int sym,
                                          int rows) {
    typedef qk_mf<DT> F;
    const float zs = (float)(1 << (F::bits ? F::bits - 1 : 0));
    const u32 *wa = it.a + (DT == QK_Q3 ? 0 : 4 * j), *wb = it.b + (DT == QK_Q3 ? 0 : 4 * j);
    const int e = smode ? 0 : F::NSB * j; /* first scale block */
    const u32 sa0 = smode == 1 ? it.sa[0] >> (16 * j) : it.sa[e];
    const u32 sb0 = smode == 1 ? it.sb[0] >> (16 * j) : it.sb[e];
    const u32 za0 = smode == 1 ? (it.za[0] >> (8 * j)) & 0xff : it.za[e];
    const u32 zb0 = smode == 1 ? (it.zb[0] >> (8 * j)) & 0xff : it.zb[e];
    float C[NT][4];
    uint4 bq[NT];
    float xv[NT];
    qk_mzero<NT>(C);
    if (DT == QK_Q4) {
        /* step 4p + w: a0 = nibbles (0, 4) + p of word w, a2 = (2, 6) + p; p = 1 at bit 4 */
#pragma unroll
        for (int p = 0; p < 2; p++) {
            const u32 M = p ? 0x00f000f0u : 0x000f000fu;
#pragma unroll
            for (int w = 0; w < 4; w++) {
                if (!(w & 1)) qk_mldb<NT>(bq, sm, bo, 2 * p + w / 2, rows);
                qk_mstep<NT>(C, bq, w & 1, qk_ha(wa[w], M), qk_ha(wb[w], M), qk_ha(wa[w] >> 8, M), qk_ha(wb[w] >> 8, M),
                             rows);
            }
        }
#pragma unroll
        for (int t = 0; t < NT; t++) xv[t] = SG ? (xs[0] + xs[1]) + (xs[2] + xs[3]) : xs[t * xstr];
        qk_mepi<NT>(acc, C, sa0, sb0, za0, zb0, xv, sym, zs);
    } else if (DT == QK_Q8) {
        /* step w: a0 = bytes (0, 2) of word w, a2 = bytes (1, 3) */
#pragma unroll
        for (int w = 0; w < 4; w++) {
            if (!(w & 1)) qk_mldb<NT>(bq, sm, bo, w / 2, rows);
            qk_mstep<NT>(C, bq, w & 1, qk_hb02(wa[w]), qk_hb02(wb[w]), qk_hb13(wa[w]), qk_hb13(wb[w]), rows);
        }
#pragma unroll
        for (int t = 0; t < NT; t++) xv[t] = SG ? (xs[0] + xs[1]) + (xs[2] + xs[3]) : xs[t * xstr];
        qk_mepi<NT>(acc, C, sa0, sb0, za0, zb0, xv, sym, zs);
    } else if (DT == QK_Q2) {
        /* step 4p + w: a0 = 2-bit values (p, 8 + p) of word w, a2 = (4 + p, 12 + p); words 0-1 and
         * 2-3 are two 32-value blocks (two accumulators unless they share a group) */
        float C1[NT][4];
        qk_mzero<NT>(C1);
#pragma unroll
        for (int p = 0; p < 4; p++) {
            const u32 M = 0x00030003u << (2 * p);
#pragma unroll
            for (int w = 0; w < 4; w++) {
                if (!(w & 1)) qk_mldb<NT>(bq, sm, bo, 2 * p + w / 2, rows);
                if (w < 2)
                    qk_mstep<NT>(C, bq, w & 1, qk_ha(wa[w], M), qk_ha(wb[w], M), qk_ha(wa[w] >> 8, M),
                                 qk_ha(wb[w] >> 8, M), rows);
                else
                    qk_mstep<NT>(C1, bq, w & 1, qk_ha(wa[w], M), qk_ha(wb[w], M), qk_ha(wa[w] >> 8, M),
                                 qk_ha(wb[w] >> 8, M), rows);
            }
        }
        if (one) {
#pragma unroll
            for (int t = 0; t < NT; t++) {
                xv[t] = xs[t * xstr] + xs[t * xstr + 1];
                C[t][0] += C1[t][0], C[t][1] += C1[t][1], C[t][2] += C1[t][2], C[t][3] += C1[t][3];
            }
            qk_mepi<NT>(acc, C, it.sa[e], it.sb[e], it.za[e], it.zb[e], xv, sym, zs);
        } else {
#pragma unroll
            for (int t = 0; t < NT; t++) xv[t] = xs[t * xstr];
            qk_mepi<NT>(acc, C, it.sa[e], it.sb[e], it.za[e], it.zb[e], xv, sym, zs);
#pragma unroll
            for (int t = 0; t < NT; t++) xv[t] = xs[t * xstr + 1];
            qk_mepi<NT>(acc, C1, it.sa[e + 1], it.sb[e + 1], it.za[e + 1], it.zb[e + 1], xv, sym, zs);
        }
    } else if (DT == QK_Q3) {
        /* block jb = words 3jb .. 3jb + 2 in the device layout (qk_q3w3): words 0-2 and the
         * gathered word 3 unpack as q4's words 0-3 (steps 4p + w), masked to 3 bits; word 3's
         * codes sit at nibble bit 1 (staged x times 1/2) */
#pragma unroll
        for (int jb = 0; jb < 2; jb++) {
            const u32 *A = wa + 3 * jb, *Bw = wb + 3 * jb;
            const u32 a3 = qk_q3w3(A[0], A[1], A[2]), b3 = qk_q3w3(Bw[0], Bw[1], Bw[2]);
#pragma unroll
            for (int p = 0; p < 2; p++) {
#pragma unroll
                for (int w = 0; w < 4; w++) {
                    const u32 M = w < 3 ? (p ? 0x00700070u : 0x00070007u) : (p ? 0x00e000e0u : 0x000e000eu);
                    const u32 ua = w < 3 ? A[w] : a3, ub = w < 3 ? Bw[w] : b3;
                    if (!(w & 1)) qk_mldb<NT>(bq, sm, bo, 4 * jb + 2 * p + w / 2, rows);
                    qk_mstep<NT>(C, bq, w & 1, qk_ha(ua, M), qk_ha(ub, M), qk_ha(ua >> 8, M), qk_ha(ub >> 8, M), rows);
                }
            }
            if (!one) {
#pragma unroll
                for (int t = 0; t < NT; t++) xv[t] = xs[t * xstr + jb];
                qk_mepi<NT>(acc, C, it.sa[e + jb], it.sb[e + jb], it.za[e + jb], it.zb[e + jb], xv, sym, zs);
                qk_mzero<NT>(C);
            }
        }
        if (one) {
#pragma unroll
            for (int t = 0; t < NT; t++) xv[t] = xs[t * xstr] + xs[t * xstr + 1];
            qk_mepi<NT>(acc, C, it.sa[e], it.sb[e], it.za[e], it.zb[e], xv, sym, zs);
        }
    }
}

/* QK_GEMV_TRACE (bench only): thread 0 of each block records the global
 * timer at start, weights requested, x staged, loop done, end, and writes
 * them to y's second row (gemv_bench's trace variant: batch 1, y has 8 rows). */
#if QK_GEMV_TRACE
#define QK_TRACE(i) \
    do { \
        if (threadIdx.x == 0) asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(qk_tr[i])); \
    } while (0)
#else
#define QK_TRACE(i) \
    do { \
    } while (0)
#endif

__device__ __forceinline__ float qk_silu(float a) { return a / (1.0f + expf(-a)); } /* as qk_silu_mul */

/* Row tiles [tile0, tile0 + m) of 16 rows (fewer at the end) of one block.
 * MODE (batch 1, x read in one piece; block 0 also writes the input it
 * computed to xo):
 *   QK_MX_SILU  the input is silu(x) * x2, as qk_silu_mul computes it;
 *   QK_MX_NORM  the input is RMSNorm(x) with the weight nw (dtype NDT, NULL:
 *               none) and eps, as qk_rmsnorm computes it (up to the order of
 *               the sum of squares and of the two products).
 * res (not NULL): res[n] += y[n] after y is written (the residual add after
 * the linear; each element is written by one thread).
 * PAIR (batch 1): two linears of one shape, w (bias, out y) and w2 (bias2,
 * out y2), in tiles of 8 rows of each (qk_cur); also yp[n] = silu(y[n]) *
 * y2[n], as the SILU_MUL after them computes it. */
#define QK_MX_PLAIN 0
#define QK_MX_SILU 1
#define QK_MX_NORM 2
template <int DT, int B, int MODE = QK_MX_PLAIN, int NDT = QK_F32, int W = QK_GEMV_WARPS, int PAIR = 0>
__device__ __forceinline__ void gemv_mma(const u8 *__restrict__ w, const float *__restrict__ bias,
                                         const float *__restrict__ x, float *__restrict__ y, int rows, int sv, int K,
                                         int N, int g, int sym, int tile0, int m, const float *__restrict__ x2 = NULL,
                                         float *__restrict__ xo = NULL, float *__restrict__ res = NULL,
                                         const void *__restrict__ nw = NULL, float eps = 0.0f,
                                         const u8 *__restrict__ w2 = NULL, const float *__restrict__ bias2 = NULL,
                                         float *__restrict__ y2 = NULL, float *__restrict__ yp = NULL) {
    const bool SILU = MODE == QK_MX_SILU, NORM = MODE == QK_MX_NORM;
    typedef qk_mf<DT> F;
    const int NT = F::bits ? B : 1, D = F::D, CK = F::CK;
    char *sm = (char *)qk_smem4;
#if QK_GEMV_TRACE
    unsigned long long qk_tr[5];
#endif
    sv = sv / CK * CK; /* the runtime gives a multiple of CK (qrt_gemv_shape_of) */
    const qk_mlay L = qk_mlay_make<DT, B, W>(sv);
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gq = lane >> 2, c = lane & 3;
    qk_qlayout l;
    if (F::bits)
        l = qk_qlayout_make(F::bits, K, N, g);
    else
        l.row_bytes = (size_t)K * 2, l.scales_off = l.zeros_off = 0, l.G = 1;
    const bool one = g >= K || g % (F::NSB * 32) == 0; /* a lane block's scale blocks share one group */
    const int smode = F::bits ? qk_smode<DT>(g, K, l) : 0;
    const int T = PAIR ? (N + 7) / 8 : (N + 15) / 16, nt = min(m, T - tile0);
    if (m > QK_GEMV_MMAX(B)) __trap(); /* qrt_gemv_grid launches at least ceil(tiles / MMAX) blocks */
    if (nt <= 0) return;
    const int Kp = (K + CK - 1) / CK * CK, npiece = (Kp + sv - 1) / sv;
    float *part = (float *)(sm + L.part), *misc = (float *)(sm + L.misc);

    QK_TRACE(0);
    /* zero the partial sums and the zero area */
    for (int i = tid; i < QK_GEMV_MMAX(B) * W * 16 * B; i += blockDim.x) part[i] = 0.0f;
    for (int i = tid; i < 1136 / 4; i += blockDim.x) ((float *)(sm + L.zero - 16))[i] = 0.0f;

    float acc[2][NT];
#pragma unroll
    for (int r = 0; r < 2; r++)
#pragma unroll
        for (int t = 0; t < NT; t++) acc[r][t] = 0.0f;
    qk_mit<DT> buf[D];
#pragma unroll
    for (int d = 0; d < D; d++)
#pragma unroll
        for (int i = 0; i < F::NS; i++) buf[d].za[i] = buf[d].zb[i] = 0; /* sym: never loaded */
    /* the lane's x records (packed: only the lanes whose mma columns carry x; f16: batch row
     * gq / 2, hi or lo), or the zero area */
    /* 2 to 4 rows of q4 / q8 whose four lanes' lane blocks lie in one group (sg): one n-tile
     * carries every batch row, column 2b + h holding row b's x in all lanes' k-slots, so lane c
     * gets row c's sums over the four lanes' codes, which share one scale and zero point: one
     * mma per step as for one row, where the per-lane columns need one n-tile per row */
    const bool sg = QK_SG(DT, B) && (g >= K || g % (4 * F::LV) == 0);
    const bool act = sg ? (gq >> 1) < rows : F::bits ? (gq >> 1) == c : gq < 2 * B;
    const int bo0 = !act ? L.zero
                    : F::bits ? (sg ? (gq >> 1) * L.nrec * 128 : 0) + (c * F::LV / 32 * F::RP32) * 128 + (gq & 1) * 64 +
                                    (DT == QK_Q8 ? (c & 1) * 32 : 0)
                              : (gq >> 1) * L.nrec * 128 + (gq & 1) * 64 + 16 * c;
    float sacc[2][1] = {{0.0f}, {0.0f}}; /* sg: batch row c's sums, rows gq and gq + 8 */
    float res0 = 0.0f;
    const int bstep = act ? CK / 32 * F::RP32 * 128 : 0; /* per item */
    const int bjstep = act ? 4 * F::LV / 32 * F::RP32 * 128 : 0; /* per lane block */
    /* batch 1 with all of x in one piece: x read once into registers (max and staging in
     * one pass, one round trip); else a max pass, then staging per piece */
    const int S = F::SPAN, NR = 32 / F::SPAN;
    const bool fused = B == 1 && npiece == 1 && sv / S <= NR * (int)blockDim.x;
    if (MODE && !fused) __trap(); /* runtime/cuda.c launches these forms only when x fits in one piece */

    for (int pc = 0; pc < npiece; pc++) {
        const int s0 = pc * sv, kcp = min(sv, Kp - s0) / CK; /* columns, chunks of this piece */
        const int items = nt * kcp;
        const int i0 = warp * items / W, i1 = (warp + 1) * items / W;
        qk_cur ql;
        ql.tl = i0 / kcp, ql.ci = i0 - ql.tl * kcp, ql.kc = s0 + ql.ci * CK;
        ql.dw = PAIR ? (long long)(size_t)w2 - (long long)(size_t)w : 0;
        qk_cur_tile<DT, PAIR>(ql, w, l, tile0, N);
#pragma unroll
        for (int d = 0; d < D; d++)
            if (i0 + d < i1) {
                qk_mload<DT, PAIR>(buf[d], ql, w, l, tile0, K, N, g, sym, one, smode);
                qk_cur_next<DT, PAIR>(ql, w, l, tile0, N, kcp, s0);
            }
        QK_TRACE(1);
        if (pc == 0) QK_DEP(); /* the weights above are constant: prefetched before the wait */
        if (pc == 0 && res && tid < nt * 16 * B) { /* the residual this thread adds to first (epilogue), requested
                                                    * now: its round trip off the block's last steps */
            const int rr = (tid / B) % 16, b = tid % B, n = (tile0 + tid / (16 * B)) * 16 + rr;
            if (n < N && b < rows) res0 = res[(size_t)b * N + n];
        }
        if (fused) {
            const int nsp = sv / S;
            float v[NR][S];
            float mx = 0.0f, ss = 0.0f;
#pragma unroll
            for (int r = 0; r < NR; r++) {
                const int k = (tid + r * (int)blockDim.x) * S;
                if ((K & 3) == 0 && k + S <= K && rows > 0) {
#pragma unroll
                    for (int i = 0; i < S; i += 4) {
                        float4 q = *(const float4 *)(x + k + i);
                        if (SILU) {
                            const float4 q2 = *(const float4 *)(x2 + k + i);
                            q.x = qk_silu(q.x) * q2.x, q.y = qk_silu(q.y) * q2.y;
                            q.z = qk_silu(q.z) * q2.z, q.w = qk_silu(q.w) * q2.w;
                            if (blockIdx.x == 0) *(float4 *)(xo + k + i) = q;
                        }
                        if (NORM) { /* the sum of squares of x; v = x * weight (times rs below) */
                            ss += q.x * q.x + q.y * q.y + q.z * q.z + q.w * q.w;
                            if (nw && NDT == QK_F32) {
                                const float4 wv = __ldg((const float4 *)nw + (k + i) / 4);
                                q.x *= wv.x, q.y *= wv.y, q.z *= wv.z, q.w *= wv.w;
                            } else if (nw) {
                                q.x *= qk_ld<NDT>(nw, k + i), q.y *= qk_ld<NDT>(nw, k + i + 1);
                                q.z *= qk_ld<NDT>(nw, k + i + 2), q.w *= qk_ld<NDT>(nw, k + i + 3);
                            }
                        }
                        v[r][i] = q.x, v[r][i + 1] = q.y, v[r][i + 2] = q.z, v[r][i + 3] = q.w;
                    }
                } else {
#pragma unroll
                    for (int i = 0; i < S; i++) {
                        const bool in = k + i < K && rows > 0;
                        v[r][i] = !in ? 0.0f : SILU ? qk_silu(x[k + i]) * x2[k + i] : x[k + i];
                        if (SILU && in && blockIdx.x == 0) xo[k + i] = v[r][i];
                        if (NORM) {
                            ss += v[r][i] * v[r][i];
                            if (in && nw) v[r][i] *= qk_ld<NDT>(nw, k + i);
                        }
                    }
                }
            }
            if (NORM) { /* rs = 1 / sqrt(mean(x^2) + eps) over the block; the normalized x to xo */
                ss = qk_warp_sum(ss);
                if (lane == 0) misc[32 + warp] = ss;
                __syncthreads();
                ss = 0.0f;
                for (int i = 0; i < W; i++) ss += misc[32 + i];
                const float rs = 1.0f / sqrtf(ss / (float)K + eps);
#pragma unroll
                for (int r = 0; r < NR; r++) {
                    const int k = (tid + r * (int)blockDim.x) * S;
#pragma unroll
                    for (int i = 0; i < S; i++) v[r][i] *= rs;
                    if (blockIdx.x == 0 && rows > 0) {
                        if ((K & 3) == 0 && k + S <= K) {
#pragma unroll
                            for (int i = 0; i < S; i += 4)
                                *(float4 *)(xo + k + i) = make_float4(v[r][i], v[r][i + 1], v[r][i + 2], v[r][i + 3]);
                        } else {
#pragma unroll
                            for (int i = 0; i < S; i++)
                                if (k + i < K) xo[k + i] = v[r][i];
                        }
                    }
                }
            }
#pragma unroll
            for (int r = 0; r < NR; r++)
#pragma unroll
                for (int i = 0; i < S; i++) mx = fmaxf(mx, fabsf(v[r][i]));
            mx = qk_warp_max(mx);
            if (lane == 0) misc[warp] = mx;
            __syncthreads();
            mx = 0.0f;
            for (int i = 0; i < W; i++) mx = fmaxf(mx, misc[i]);
            const int ex = (int)((__float_as_uint(mx) >> 23) & 0xff);
            int e = mx > 0.0f ? 141 - ex : 0; /* max |x| 2^e in [2^14, 2^15) */
            e = e < -125 ? -125 : e > 125 ? 125 : e;
            const float es = __int_as_float((127 + e) << 23);
            if (tid == 0) misc[132] = (float)((F::bits ? QK_AEXP : 0) - e);
#pragma unroll
            for (int r = 0; r < NR; r++) {
                const int idx = tid + r * (int)blockDim.x, kr = idx * S;
                const bool live = idx < nsp;
                float su = 0.0f;
#pragma unroll
                for (int i = 0; i < S; i++) v[r][i] *= es, su += v[r][i];
                if (live) qk_mspan<DT>(sm, L.nrec, 0, kr, v[r]);
                qk_msum<DT>(sm, L.xsum, L.nxs, live, 0, kr, su);
            }
        } else {
            if (pc == 0) { /* max |x| per batch row */
                const int K4 = (K + 3) / 4;
#pragma unroll
                for (int b = 0; b < B; b++) {
                    float mx = 0.0f;
                    if (b < rows) {
                        const float *xr = x + (size_t)b * K;
                        for (int i = tid; i < K4; i += blockDim.x) {
                            if ((K & 3) == 0) {
                                const float4 q = *(const float4 *)(xr + 4 * i);
                                mx = fmaxf(mx, fmaxf(fmaxf(fabsf(q.x), fabsf(q.y)), fmaxf(fabsf(q.z), fabsf(q.w))));
                            } else {
                                for (int j = 4 * i; j < 4 * i + 4 && j < K; j++) mx = fmaxf(mx, fabsf(xr[j]));
                            }
                        }
                    }
                    mx = qk_warp_max(mx);
                    if (lane == 0) misc[warp * B + b] = mx;
                }
            }
            __syncthreads(); /* pc 0: the maxima are in; else: every warp is done with the last piece */
            if (pc == 0) {
                if (tid < B) {
                    float mx = 0.0f;
                    for (int i = 0; i < W; i++) mx = fmaxf(mx, misc[i * B + tid]);
                    const int ex = (int)((__float_as_uint(mx) >> 23) & 0xff);
                    int e = mx > 0.0f ? 141 - ex : 0; /* max |x| 2^e in [2^14, 2^15) */
                    e = e < -125 ? -125 : e > 125 ? 125 : e;
                    misc[128 + tid] = __int_as_float((127 + e) << 23);
                    misc[132 + tid] = (float)((F::bits ? QK_AEXP : 0) - e);
                }
                __syncthreads();
            }
            qk_mstage<DT, B>(sm, L, x, rows, s0, sv, K);
        }
        __syncthreads();
        QK_TRACE(2);

        int tlc = i0 / kcp, cic = i0 - tlc * kcp; /* compute cursor */
        for (int ib = i0; ib < i1; ib += D) {
#pragma unroll
            for (int d = 0; d < D; d++) {
                const int i = ib + d;
                if (i >= i1) break;
                if (QK_SG(DT, B) && sg) {
                    const float *xs = (const float *)(sm + L.xsum) + cic * (CK / F::XSV) + min(c, B - 1) * L.nxs;
#pragma unroll
                    for (int j = 0; j < F::LPI; j++) {
                        int bj[1] = {bo0 + cic * bstep + j * bjstep};
                        qk_mblock<DT, 1, 1>(sacc, buf[d], j, sm, bj, xs + j * (4 * F::LV / F::XSV), 0, one, smode, sym, 1);
                    }
                } else if (F::bits) {
                    int bo[NT];
#pragma unroll
                    for (int t = 0; t < NT; t++) bo[t] = bo0 + cic * bstep + (act ? t * L.nrec * 128 : 0);
                    const float *xs = (const float *)(sm + L.xsum) + cic * (CK / F::XSV) + c * (F::LV / F::XSV);
#pragma unroll
                    for (int j = 0; j < F::LPI; j++) {
                        int bj[NT];
#pragma unroll
                        for (int t = 0; t < NT; t++) bj[t] = bo[t] + j * bjstep;
                        qk_mblock<DT, NT>(acc, buf[d], j, sm, bj, xs + j * (4 * F::LV / F::XSV), L.nxs, one, smode,
                                          sym, rows);
                    }
                } else { /* f16: lane (gq, c) holds batch row c for rows gq, gq + 8 */
                    float Cf[4] = {0.0f, 0.0f, 0.0f, 0.0f};
                    const int bo = bo0 + cic * bstep;
#pragma unroll
                    for (int j = 0; j < F::LPI; j++) {
                        const uint4 bq = *(const uint4 *)(sm + bo + (act ? 128 * j : 0));
                        qk_mma(Cf, buf[d].a[4 * j], buf[d].b[4 * j], buf[d].a[4 * j + 1], buf[d].b[4 * j + 1], bq.x, bq.y);
                        qk_mma(Cf, buf[d].a[4 * j + 2], buf[d].b[4 * j + 2], buf[d].a[4 * j + 3], buf[d].b[4 * j + 3],
                               bq.z, bq.w);
                    }
                    acc[0][0] += Cf[0] + Cf[1];
                    acc[1][0] += Cf[2] + Cf[3];
                }
                if (i + D < i1) {
                    qk_mload<DT, PAIR>(buf[d], ql, w, l, tile0, K, N, g, sym, one, smode);
                    qk_cur_next<DT, PAIR>(ql, w, l, tile0, N, kcp, s0);
                }
                if (cic == kcp - 1 || i == i1 - 1) { /* the warp's last item of tile tlc: partial sums out */
                    float *pp = part + ((tlc * W + warp) * 16 + gq) * B;
                    if (QK_SG(DT, B) && sg) {
                        if (c < B) {
                            pp[c] += sacc[0][0];
                            pp[8 * B + c] += sacc[1][0];
                        }
                        sacc[0][0] = sacc[1][0] = 0.0f;
                    } else if (F::bits) {
#pragma unroll
                        for (int r = 0; r < 2; r++)
#pragma unroll
                            for (int t = 0; t < NT; t++) {
                                float v = acc[r][t];
                                v += __shfl_xor_sync(QK_FULL, v, 1);
                                v += __shfl_xor_sync(QK_FULL, v, 2);
                                if (c == 0) pp[8 * r * B + t] += v;
                                acc[r][t] = 0.0f;
                            }
                    } else {
                        if (c < B) {
                            pp[c] += acc[0][0];
                            pp[8 * B + c] += acc[1][0];
                        }
                        acc[0][0] = acc[1][0] = 0.0f;
                    }
                }
                if (++cic == kcp) cic = 0, tlc++;
            }
        }
    }
    QK_TRACE(3);
    __syncthreads();
    if (PAIR) { /* rows rr (w) and rr + 8 (w2) of a tile are row n of both */
        for (int i = tid; i < nt * 8; i += blockDim.x) {
            const int tl = i / 8, rr = i % 8, n = (tile0 + tl) * 8 + rr;
            float s = 0.0f, s2 = 0.0f;
            for (int v = 0; v < W; v++) s += part[(tl * W + v) * 16 + rr], s2 += part[(tl * W + v) * 16 + rr + 8];
            if (n < N && rows > 0) {
                const float a = ldexpf(s, (int)misc[132]) + (bias ? bias[n] : 0.0f);
                const float b = ldexpf(s2, (int)misc[132]) + (bias2 ? bias2[n] : 0.0f);
                y[n] = a, y2[n] = b, yp[n] = qk_silu(a) * b;
            }
        }
        return;
    }
    for (int i = tid; i < nt * 16 * B; i += blockDim.x) {
        const int tl = i / (16 * B), rr = (i / B) % 16, b = i % B, n = (tile0 + tl) * 16 + rr;
        float s = 0.0f;
        for (int v = 0; v < W; v++) s += part[((tl * W + v) * 16 + rr) * B + b];
        if (n < N && b < rows) {
            const float o = ldexpf(s, (int)misc[132 + b]) + (bias ? bias[n] : 0.0f);
            y[(size_t)b * N + n] = o;
            if (res) res[(size_t)b * N + n] = (i == tid ? res0 : res[(size_t)b * N + n]) + o;
        }
    }
#if QK_GEMV_TRACE
    QK_TRACE(4);
    __syncthreads();
    if (tid == 0)
        for (int i = 0; i < 5; i++) ((unsigned long long *)(y + N))[blockIdx.x * 5 + i] = qk_tr[i]; /* row 1 */
#endif
}

/* ---- tiled GEMM for rows > 8 without cuBLAS: y[T, N] = x[T, K] W^T ----
 * 64 x 64 output tile per block of 256 threads (4 x 4 each), K in steps
 * of 32 through shared memory; weights dequantized while loaded. */
#define QK_TM 64
#define QK_TN 64
#define QK_TK 32
template <int DT>
__device__ __forceinline__ void gemm_core(const u8 *__restrict__ w, const float *__restrict__ bias,
                                          const float *__restrict__ x, float *__restrict__ y, int T,
                                          int K, int N, int g, int sym) {
    __shared__ float As[QK_TK][QK_TM + 4];
    __shared__ float Ws[QK_TK][QK_TN + 4];
    const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    const int m0 = blockIdx.y * QK_TM, n0 = blockIdx.x * QK_TN;
    float c[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) c[i][j] = 0.0f;
    for (int k0 = 0; k0 < K; k0 += QK_TK) {
        for (int i = tid; i < QK_TM * QK_TK; i += 256) {
            const int mm = i / QK_TK, kk = i % QK_TK, m = m0 + mm, k = k0 + kk;
            As[kk][mm] = m < T && k < K ? x[(size_t)m * K + k] : 0.0f;
        }
        for (int i = tid; i < QK_TN * QK_TK; i += 256) {
            const int nn = i / QK_TK, kk = i % QK_TK, n = n0 + nn, k = k0 + kk;
            Ws[kk][nn] = n < N && k < K ? qk_wval<DT>(w, n, k, K, N, g, sym) : 0.0f;
        }
        __syncthreads();
#pragma unroll 8
        for (int kk = 0; kk < QK_TK; kk++) {
            float a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; i++) a[i] = As[kk][ty * 4 + i], b[i] = Ws[kk][tx * 4 + i];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) c[i][j] = fmaf(a[i], b[j], c[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int m = m0 + ty * 4 + i;
        if (m >= T) continue;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int n = n0 + tx * 4 + j;
            if (n < N) y[(size_t)m * N + n] = c[i][j] + (bias ? bias[n] : 0.0f);
        }
    }
}

/* Packed rows n0 .. n0 + nn - 1 as f16 [nn, K] (cuBLAS prefill). A thread
 * per 8 consecutive values of a row: one code word (or part of one) read,
 * the scale and zero point read once, one 16-byte store, so a warp writes
 * 512 contiguous bytes. Same values as qk_wval: f16(s * (q - z)). */
template <int DT>
__device__ __forceinline__ void dequant_core(u16 *out, const u8 *w, int n0, int nn, int K, int N, int g,
                                             int sym) {
    typedef qk_fmt<DT> F;
    const qk_qlayout l = qk_qlayout_make(F::bits, K, N, g);
    const unsigned K8 = (K + 7) >> 3, total = (unsigned)nn * K8; /* the runtime's tile: well under 2^32 */
    const u16 *scales = (const u16 *)(w + l.scales_off);
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        const int r = (int)(i / K8), k0 = (int)(i - r * K8) << 3, n = n0 + r, j0 = k0 & 31;
        const u32 *bw = (const u32 *)(w + (size_t)n * l.row_bytes + (size_t)4 * F::bits * (k0 >> 5));
        u32 q[8];
        if (F::bits == 4) {
            const u32 v = __ldg(bw + (j0 >> 3));
#pragma unroll
            for (int e = 0; e < 8; e++) q[e] = (v >> (4 * e)) & 15u;
        } else if (F::bits == 8) {
            const u32 v0 = __ldg(bw + (j0 >> 2)), v1 = __ldg(bw + (j0 >> 2) + 1);
#pragma unroll
            for (int e = 0; e < 4; e++) q[e] = (v0 >> (8 * e)) & 255u, q[4 + e] = (v1 >> (8 * e)) & 255u;
        } else if (F::bits == 2) {
            const u32 v = __ldg(bw + (j0 >> 4)) >> (2 * (j0 & 15));
#pragma unroll
            for (int e = 0; e < 8; e++) q[e] = (v >> (2 * e)) & 3u;
        } else { /* 3 bits (device layout, qk_q3w3): values 0-23 nibbles of words 0-2, 24-31 their bits 3 */
            const u32 v = j0 < 24 ? __ldg(bw + (j0 >> 3)) : qk_q3w3(__ldg(bw), __ldg(bw + 1), __ldg(bw + 2)) >> 1;
#pragma unroll
            for (int e = 0; e < 8; e++) q[e] = (v >> (4 * e)) & 7u;
        }
        u16 h[8];
        if (g % 8 == 0) { /* the 8 values share one group */
            const size_t t = (size_t)n * l.G + k0 / g;
            const float sc = qk_h2f(__ldg(scales + t));
            const float z = sym ? (float)F::half : (float)__ldg(w + l.zeros_off + t);
#pragma unroll
            for (int e = 0; e < 8; e++) h[e] = qk_f2h(sc * ((float)q[e] - z));
        } else {
#pragma unroll
            for (int e = 0; e < 8; e++) {
                const size_t t = (size_t)n * l.G + (k0 + e < K ? k0 + e : k0) / g;
                const float z = sym ? (float)F::half : (float)__ldg(w + l.zeros_off + t);
                h[e] = qk_f2h(qk_h2f(__ldg(scales + t)) * ((float)q[e] - z));
            }
        }
        u16 *o = out + (size_t)r * K + k0;
        if ((K & 7) == 0) {
            uint4 v;
            v.x = h[0] | (u32)h[1] << 16, v.y = h[2] | (u32)h[3] << 16;
            v.z = h[4] | (u32)h[5] << 16, v.w = h[6] | (u32)h[7] << 16;
            *(uint4 *)o = v;
        } else {
#pragma unroll
            for (int e = 0; e < 8; e++)
                if (k0 + e < K) o[e] = h[e];
        }
    }
}

/* ---- Prefill GEMM with the dequantization fused (packed weights, T > 8 tokens) ----
 * y [T, N] = x [T, K] W^T for a packed W, without the f16 copy of W that
 * qk_dequant_* + cuBLAS go through: the block's tile of W is read packed,
 * dequantized to exactly qk_dequant's f16 values (s (q - z): the difference
 * of two small integers is exact in f16, and one f16 multiplication rounds
 * the exact product once, as the f32 product rounded to f16 does), x is
 * rounded to f16 as qk_to_f16 does, and the products are summed in f32 by
 * mma.sync m16n8k16. So it computes what the cuBLAS path computes, in
 * another order.
 *
 * k order: the codes of a word come out in pairs (k, k + P/2) (one LOP3 per
 * pair with the 0x6400 magic: 1024 + q as f16), P = 8 for 4 and 3 bits, 4
 * for 8, 16 for 2. The W tile in shared memory keeps that order and
 * qk_qgemm_x16 writes x in the same order (f16 [T, Kp], Kp = K rounded up
 * to QK_QG_BK, zeros past K), so no code is moved; the sum over k does not
 * care.
 *
 * Block: 256 threads, a tile of QK_QG_BM tokens x QK_QG_BN output rows,
 * k-steps of QK_QG_BK. Thread i copies one 32-value block of weight row
 * i / 2 (bits x 4 bytes) and 32 bytes of one token's x with cp.async,
 * QK_QG_NS - 1 steps ahead (a ring in shared memory; the first weights
 * before the dependency wait); at its step it dequantizes its own block
 * into the f16 W tile (two buffers); one barrier a step. Warps: 2 x 4, each
 * 32 tokens x 32 rows (2 x 4 mma tiles), fragments by ldmatrix.
 *
 * Split k (gridDim.y = S > 1): block z sums its share of the k-steps into
 * part [z, T, N], which qk_qgemm_reduce adds in z order, so the result
 * depends on S, which the runtime derives from T, K and N only. */
#define QK_QG_BM 64
#define QK_QG_BN 128
#define QK_QG_BK 64
#define QK_QG_LD 72 /* halves per f16 tile row: 144 bytes, so ldmatrix's 8 rows hit 8 different bank quads */
#define QK_QG_NS 4 /* k-steps in the copy ring */
/* Dynamic shared memory (runtime/cuda.c QRT_QG_SMEM computes its size): the ring's x tiles (QK_QG_NS x
 * QK_QG_BM rows), two f16 W tiles (QK_QG_BN rows), rows of QK_QG_LD halves; then the ring's raw codes,
 * qk_qg::CB bytes a thread and step. */

template <int DT>
struct qk_qg {
    static const int bits = qk_fmt<DT>::bits;
    static const int CB = bits == 8 ? 32 : bits == 2 ? 8 : 16; /* raw bytes a thread and step */
};
__device__ __forceinline__ u32 qk_hsub2(u32 a, u32 b) {
    u32 d;
    asm("sub.rn.f16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
    return d;
}
__device__ __forceinline__ u32 qk_hmul2(u32 a, u32 b) {
    u32 d;
    asm("mul.rn.f16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
    return d;
}
/* BYTES from src to shared memory, or zeros (on: 0; nothing is read then); 16 bytes: qk_cp16 */
template <int BYTES>
__device__ __forceinline__ void qk_cpa(void *dst, const void *src, bool on) {
    if (BYTES == 16) {
        qk_cp16((float *)dst, (const float *)src, on ? 16 : 0);
    } else {
        const unsigned d = (unsigned)__cvta_generic_to_shared(dst);
        asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(d), "l"(src), "n"(BYTES),
                     "r"(on ? BYTES : 0)
                     : "memory");
    }
}
__device__ __forceinline__ void qk_cpa_commit(void) { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void qk_cpa_wait(void) {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

/* Thread i's copy for a k-step: block b of weight row n. Rows past N are zeros (their sums are not
 * written), read from nowhere. Blocks past the row's last (the step past K) are read from the last block: x
 * is zero there. */
template <int DT>
__device__ __forceinline__ void qg_issue(u8 *raw, const u8 *__restrict__ wrow, bool non, int b, int nb, int sub = 16) {
    typedef qk_fmt<DT> F;
    const u8 *p = wrow + 4 * F::bits * (b < nb ? b : nb - 1);
    if (F::bits == 4) {
        qk_cpa<16>(raw, p, non);
    } else if (F::bits == 8) { /* its second 16 bytes at raw + sub */
        qk_cpa<16>(raw, p, non), qk_cpa<16>(raw + sub, p + 16, non);
    } else if (F::bits == 2) {
        qk_cpa<8>(raw, p, non);
    } else {
        qk_cpa<4>(raw, p, non), qk_cpa<4>(raw + 4, p + 4, non), qk_cpa<4>(raw + 8, p + 8, non);
    }
}
#if QK_NEED_Q2 || QK_NEED_Q3 || QK_NEED_Q4 || QK_NEED_Q8
/* x [T, K] f32 -> xp [T, Kp] f16 for qk_qgemm_<dt> (Kp = K rounded up to QK_QG_BK, zeros past K): rounded
 * as qk_to_f16 does, in the weights' k order of P (slot pair j of 16 holds k a, a + P / 2; P = 8 for 4 and
 * 3 bits, 4 for 8, 16 for 2: runtime/cuda.c qgemm); a thread per 16 values. */
extern "C" __global__ void qk_qgemm_x16(u16 *xp, const float *x, int T, int K, int P) {
    QK_DEP();
    const int Kp = (K + QK_QG_BK - 1) / QK_QG_BK * QK_QG_BK, U = Kp / 16;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < T * U; i += gridDim.x * blockDim.x) {
        const int t = i / U, k0 = 16 * (i - t * U);
        const float *p = x + (size_t)t * K + k0;
        float v[16];
        if ((K & 3) == 0 && k0 + 16 <= K) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const float4 f = *(const float4 *)(p + 4 * e);
                v[4 * e] = f.x, v[4 * e + 1] = f.y, v[4 * e + 2] = f.z, v[4 * e + 3] = f.w;
            }
        } else {
#pragma unroll
            for (int e = 0; e < 16; e++) v[e] = k0 + e < K ? p[e] : 0.0f;
        }
        u32 h[8];
#pragma unroll
        for (int j = 0; j < 8; j++) {
            const int a = P * ((2 * j) / P) + ((2 * j) % P) / 2;
            asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(h[j]) : "f"(v[a + P / 2]), "f"(v[a]));
        }
        uint4 *o = (uint4 *)(xp + (size_t)t * Kp + k0);
        o[0] = make_uint4(h[0], h[1], h[2], h[3]);
        o[1] = make_uint4(h[4], h[5], h[6], h[7]);
    }
}
#endif
/* This thread's 32 bytes of token t's x (16 values from k0 of xp) for a step, or zeros past T (a clamped
 * address that every block read would make one L2 slice the bottleneck). */
__device__ __forceinline__ void qg_issue_x(u16 *xs, const u16 *__restrict__ xp, int t, bool ton, int Kp, int k0) {
    const u16 *p = xp + (size_t)t * Kp + k0;
    qk_cpa<16>(xs, p, ton), qk_cpa<16>(xs + 8, p + 8, ton);
}
/* (scale | zero << 16) of the group of block b of a row (srow, zrow: its scales and zero points); gb blocks
 * a group (0: one group), gsh = log2 gb when that is a power of two, else -1 */
template <int DT>
__device__ __forceinline__ u32 qg_sz(const u16 *srow, const u8 *zrow, int b, int nb, int gb, int gsh, int sym) {
    b = b < nb ? b : nb - 1;
    const int t = gb == 0 ? 0 : gsh >= 0 ? b >> gsh : b / gb;
    return qk_ldu16(srow + t) | (sym ? (u32)qk_fmt<DT>::half : qk_ldu8(zrow + t)) << 16;
}
/* The words of a raw block (8 bits: its second 16 bytes at raw + sub; 2 to 4 bits leave the rest of wv unset);
 * 3 bits: words 0-2 and, as word 3, their bits 3 gathered (qk_q3w3) shifted to nibble bits 0-2. */
template <int DT>
__device__ __forceinline__ void qg_words(u32 (&wv)[8], const u8 *raw, int sub = 16) {
    typedef qk_fmt<DT> F;
    if (F::bits == 8) {
        const uint4 a = *(const uint4 *)raw, c = *(const uint4 *)(raw + sub);
        wv[0] = a.x, wv[1] = a.y, wv[2] = a.z, wv[3] = a.w, wv[4] = c.x, wv[5] = c.y, wv[6] = c.z, wv[7] = c.w;
    } else if (F::bits == 2) {
        const uint2 a = *(const uint2 *)raw;
        wv[0] = a.x, wv[1] = a.y;
    } else {
        const uint4 a = *(const uint4 *)raw;
        wv[0] = a.x, wv[1] = a.y, wv[2] = a.z, wv[3] = F::bits == 4 ? a.w : qk_q3w3(a.x, a.y, a.z) >> 1;
    }
}
/* Pair j (0-15) of a block's words as f16x2 of 1024 + q (the 0x6400 magic), in the k order above. */
template <int DT>
__device__ __forceinline__ u32 qg_pair(const u32 (&wv)[8], int j) {
    typedef qk_fmt<DT> F;
    if (F::bits == 8) return ((wv[j >> 1] >> (8 * (j & 1))) & 0x00ff00ffu) | 0x64006400u;
    if (F::bits == 2) return ((wv[j >> 3] >> (2 * (j & 7))) & 0x00030003u) | 0x64006400u;
    return ((wv[j >> 2] >> (4 * (j & 3))) & (F::bits == 4 ? 0x000f000fu : 0x00070007u)) | 0x64006400u;
}
/* s (q - z) from a pair of 1024 + q, sz = scale | zero << 16: exactly qk_dequant's f16 values. */
__device__ __forceinline__ u32 qg_sq(u32 h, u32 sz) {
    return qk_hmul2(qk_hsub2(h, (0x6400u | (sz >> 16)) * 0x10001u), (sz & 0xffffu) * 0x10001u);
}
/* The 32 values of a raw block as 16 f16x2 in the k order above, to the f16 tile at d (16-byte aligned). */
template <int DT>
__device__ __forceinline__ void qg_dequant(u16 *d, const u8 *raw, u32 sz) {
    u32 wv[8], h[16];
    qg_words<DT>(wv, raw);
#pragma unroll
    for (int i = 0; i < 16; i++) h[i] = qg_sq(qg_pair<DT>(wv, i), sz);
#pragma unroll
    for (int i = 0; i < 4; i++) *(uint4 *)(d + 8 * i) = make_uint4(h[4 * i], h[4 * i + 1], h[4 * i + 2], h[4 * i + 3]);
}

template <int DT>
__device__ __forceinline__ void qgemm_core(const u8 *__restrict__ w, const float *__restrict__ bias,
                                           const u16 *__restrict__ xp, float *__restrict__ y, int T, int K, int N,
                                           int g, int sym) {
    typedef qk_qg<DT> Q;
    extern __shared__ __align__(16) u16 qg_sm[];
    const qk_qlayout l = qk_qlayout_make(qk_fmt<DT>::bits, K, N, g);
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int m0 = blockIdx.z * QK_QG_BM, n0 = blockIdx.x * QK_QG_BN;
    const int Kp = (K + QK_QG_BK - 1) / QK_QG_BK * QK_QG_BK, steps = Kp / QK_QG_BK, nb = (K + 31) >> 5;
    const int S = gridDim.y, z = blockIdx.y;
    const int s0 = (int)((long long)steps * z / S), s1 = (int)((long long)steps * (z + 1) / S);
    /* this thread's copies: weight row wr, 32-value half wc of a step; token xr, 16 values xc */
    const int wr = tid >> 1, wc = tid & 1, xr = tid >> 2, xc = tid & 3;
    const bool non = n0 + wr < N, ton = m0 + xr < T;
    const int wn_ = non ? n0 + wr : N - 1, xt = ton ? m0 + xr : T - 1;
    const u8 *wrow = w + (size_t)wn_ * l.row_bytes, *zrow = w + l.zeros_off + (size_t)wn_ * l.G;
    const u16 *srow = (const u16 *)(w + l.scales_off) + (size_t)wn_ * l.G;
    const int gb = g >= K ? 0 : g / 32, gsh = gb && !(gb & (gb - 1)) ? __ffs(gb) - 1 : -1;
    u16 *xs0 = qg_sm, *ws0 = xs0 + QK_QG_NS * QK_QG_BM * QK_QG_LD;
    u8 *raw0 = (u8 *)(ws0 + 2 * QK_QG_BN * QK_QG_LD);
    u16 *xdst = xs0 + xr * QK_QG_LD + 16 * xc;
    float acc[2][4][4];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[i][j][e] = 0.0f;
    /* weights (constant) before the dependency wait: the first steps' copies and scale; x after it. Commit
     * group i holds step i's x (and group 0 all of these weights) */
    u32 sz = s0 < s1 ? qg_sz<DT>(srow, zrow, 2 * s0 + wc, nb, gb, gsh, sym) : 0;
#pragma unroll
    for (int i = 0; i < QK_QG_NS - 1; i++)
        if (s0 + i < s1) qg_issue<DT>(raw0 + (i * 256 + tid) * Q::CB, wrow, non, 2 * (s0 + i) + wc, nb);
    QK_DEP();
#pragma unroll
    for (int i = 0; i < QK_QG_NS - 1; i++) {
        if (s0 + i < s1) qg_issue_x(xdst + i * QK_QG_BM * QK_QG_LD, xp, xt, ton, Kp, QK_QG_BK * (s0 + i) + 16 * xc);
        qk_cpa_commit();
    }
    const int wm = warp & 1, wn = warp >> 1, lr = lane & 7, lm = lane >> 3;
    for (int s = s0; s < s1; s++) {
        const int r = (s - s0) % QK_QG_NS, buf = (s - s0) & 1;
        u16 *xs = xs0 + r * QK_QG_BM * QK_QG_LD, *ws = ws0 + buf * QK_QG_BN * QK_QG_LD;
        qk_cpa_wait<QK_QG_NS - 2>(); /* this thread's copies of step s have landed */
        qg_dequant<DT>(ws + wr * QK_QG_LD + 32 * wc, raw0 + (r * 256 + tid) * Q::CB, sz);
        if (s + 1 < s1) sz = qg_sz<DT>(srow, zrow, 2 * (s + 1) + wc, nb, gb, gsh, sym);
        __syncthreads(); /* step s's x and W tiles complete; every warp is past step s - 1's mma */
        {
            const int sn = s + QK_QG_NS - 1, rn = (sn - s0) % QK_QG_NS; /* into step s - 1's slot */
            if (sn < s1) {
                qg_issue<DT>(raw0 + (rn * 256 + tid) * Q::CB, wrow, non, 2 * sn + wc, nb);
                qg_issue_x(xdst + rn * QK_QG_BM * QK_QG_LD, xp, xt, ton, Kp, QK_QG_BK * sn + 16 * xc);
            }
            qk_cpa_commit();
        }
#pragma unroll
        for (int kk = 0; kk < QK_QG_BK; kk += 16) {
            u32 a[2][4], b[2][4];
#pragma unroll
            for (int i = 0; i < 2; i++) /* tokens 32 wm + 16 i + (lr + 8 (lm & 1)), k kk + 8 (lm >> 1) */
                qk_ldsm4(a[i], xs + (32 * wm + 16 * i + lr + 8 * (lm & 1)) * QK_QG_LD + kk + 8 * (lm >> 1));
#pragma unroll
            for (int j = 0; j < 2; j++) /* rows 32 wn + 16 j + (lr + 8 (lm >> 1)), k kk + 8 (lm & 1) */
                qk_ldsm4(b[j], ws + (32 * wn + 16 * j + lr + 8 * (lm >> 1)) * QK_QG_LD + kk + 8 * (lm & 1));
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int j = 0; j < 4; j++)
                    qk_mma(acc[i][j], a[i][0], a[i][1], a[i][2], a[i][3], b[j >> 1][2 * (j & 1)],
                           b[j >> 1][2 * (j & 1) + 1]);
        }
    }
    /* C fragment of mma tile (i, j): tokens 32 wm + 16 i + lane / 4 (+ 8), rows 32 wn + 8 j + 2 (lane % 4) (+ 1) */
    float *out = S > 1 ? y + (size_t)z * T * N : y; /* S > 1: parts for qk_qgemm_reduce */
    const bool addb = S == 1 && bias;
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int n = n0 + 32 * wn + 8 * j + 2 * (lane & 3);
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const int t = m0 + 32 * wm + 16 * i + (lane >> 2) + 8 * h;
                if (t >= T) continue;
                float v0 = acc[i][j][2 * h], v1 = acc[i][j][2 * h + 1];
                float *o = out + (size_t)t * N + n;
                if (n + 1 < N) {
                    if (addb) v0 = __fadd_rn(v0, bias[n]), v1 = __fadd_rn(v1, bias[n + 1]);
                    if ((N & 1) == 0)
                        *(float2 *)o = make_float2(v0, v1);
                    else
                        o[0] = v0, o[1] = v1;
                } else if (n < N) {
                    o[0] = addb ? __fadd_rn(v0, bias[n]) : v0;
                }
            }
        }
}
/* ---- The same product for up to 64 tokens, W dequantized in registers (qk_qgemm_<dt>_t<8 NT>) ----
 * Where the tokens are few, qgemm_core's trip of W through a shared f16 tile costs more than the product:
 * here W is the mma's A operand, dequantized (qg_sq: the same f16 values) straight into the fragments,
 * and x (qk_qgemm_x16's f16 in the same k order) is the B operand, NT n-tiles of 8 tokens.
 *
 * A warp owns QK_QS_MT(NT) m-tiles of 16 weight rows and walks the block's k range in chunks of 128 (four
 * 32-value blocks): lane (g, t) = (lane / 4, lane % 4) holds block t of the chunk for rows g and g + 8 of
 * each m-tile. A block's 16 f16x2 pairs are 8 mma k-steps: step s takes pair 2 s into k-slots 2t, 2t + 1
 * and pair 2 s + 1 into 2t + 8, 2t + 9, in A (rows) and in B (tokens) alike, so every product pairs a
 * weight with its own x. Scales and zero points are applied per element before the mma, so any group
 * size works.
 *
 * Copies (cp.async, QK_QS_NS - 1 chunks ahead): each lane its own raw blocks (no barrier needed for those;
 * the first chunks before the dependency wait), and the block the chunk's x tile, shared by its warps
 * (one barrier a chunk). Split k over gridDim.y = S as qgemm_core does (parts, qk_qgemm_reduce). */
#define QK_QS_WARPS 8
#define QK_QS_MT(NT) ((NT) <= 2 ? 1 : 2)               /* m-tiles of 16 rows a warp */
#define QK_QS_BN(NT) (16 * QK_QS_MT(NT) * QK_QS_WARPS) /* rows a block: 128 up to 16 tokens, else 256 */
#define QK_QS_NS 4                                     /* chunks in the copy ring */
#define QK_QS_MINB(NT) ((NT) <= 2 ? 2 : 1)             /* blocks an SM (registers: <= 128 up to 16 tokens) */
#define QK_QS_XLD 320 /* bytes a token's chunk of x takes in shared memory: 256 + 64, so that ... */
/* ... a quarter warp's 16-byte reads (tokens g, g + 1; units t of each) hit 32 different banks. Within a
 * token, the 16-byte unit v (block v / 4, quarter v % 4) sits at (v % 4) * 4 + v / 4.
 * Dynamic shared memory (runtime/cuda.c QRT_QS_SMEM): the x ring, QK_QS_NS x 8 NT tokens x QK_QS_XLD
 * bytes, then per warp QK_QS_NS stages of 2 QK_QS_MT(NT) pieces (rows) x 32 lanes x qk_qg::CB bytes (8 bits:
 * two units of 16 a piece, each over the 32 lanes). */
/* This lane's copies of block b of its P rows (piece p at st + p * pstride; 8 bits: second half at + sub). */
template <int DT, int P>
__device__ __forceinline__ void qs_issue_w(u8 *st, int pstride, int sub, const u8 *const (&wrow)[P],
                                           const bool (&non)[P], int b, int nb) {
#pragma unroll
    for (int p = 0; p < P; p++) qg_issue<DT>(st + p * pstride, wrow[p], non[p] && b < nb, b, nb, sub);
}
/* The block's copies of chunk c's x tile to dst: 16-byte unit u = 16 token + v of the tile, thread tid takes
 * u = tid + 256 j; tokens past T and blocks past K zero-filled, not read. */
template <int NT>
__device__ __forceinline__ void qs_issue_x(u8 *dst, const u16 *__restrict__ xp, int tid, int T, int Kp, int nb, int c) {
#pragma unroll
    for (int j = 0; j < (8 * NT * 16 + 255) / 256; j++) {
        const int u = tid + 256 * j, tk = u >> 4, v = u & 15;
        if (u < 8 * NT * 16)
            qk_cpa<16>(dst + tk * QK_QS_XLD + ((v & 3) * 4 + (v >> 2)) * 16,
                       xp + (size_t)(tk < T ? tk : 0) * Kp + 128 * c + 8 * v, tk < T && 4 * c + (v >> 2) < nb);
    }
}
template <int DT, int NT>
__device__ __forceinline__ void qgemms_core(const u8 *__restrict__ w, const float *__restrict__ bias,
                                            const u16 *__restrict__ xp, float *__restrict__ y, int T, int K, int N,
                                            int g, int sym) {
    const int MT = QK_QS_MT(NT), CB = qk_qg<DT>::CB, U = CB < 16 ? CB : 16, UP = CB / U, P = 2 * MT, NS = QK_QS_NS;
    const int XS = 8 * NT * QK_QS_XLD; /* bytes of a chunk's x tile */
    extern __shared__ __align__(16) u8 qs_sm[];
    const qk_qlayout l = qk_qlayout_make(qk_fmt<DT>::bits, K, N, g);
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gi = lane >> 2, ti = lane & 3;
    const int Kp = (K + QK_QG_BK - 1) / QK_QG_BK * QK_QG_BK, nb = (K + 31) >> 5, nc = (nb + 3) >> 2;
    const int S = gridDim.y, z = blockIdx.y;
    const int c0 = (int)((long long)nc * z / S), c1 = (int)((long long)nc * (z + 1) / S);
    const int rb = blockIdx.x * QK_QS_BN(NT) + 16 * MT * warp + gi; /* piece p: row rb + 8 p */
    const int gb = g >= K ? 0 : g / 32, gsh = gb && !(gb & (gb - 1)) ? __ffs(gb) - 1 : -1;
    const u8 *wrow[P], *zrow[P];
    const u16 *srow[P];
    bool non[P];
#pragma unroll
    for (int p = 0; p < P; p++) {
        non[p] = rb + 8 * p < N;
        const int r = non[p] ? rb + 8 * p : N - 1;
        wrow[p] = w + (size_t)r * l.row_bytes, zrow[p] = w + l.zeros_off + (size_t)r * l.G;
        srow[p] = (const u16 *)(w + l.scales_off) + (size_t)r * l.G;
    }
    const int PS = UP * 32 * U; /* bytes between a stage's pieces */
    u8 *xr = qs_sm, *wr = qs_sm + NS * XS + (size_t)warp * NS * P * PS + lane * U;
    u32 sz[P];
#pragma unroll
    for (int p = 0; p < P; p++) sz[p] = c0 < c1 ? qg_sz<DT>(srow[p], zrow[p], 4 * c0 + ti, nb, gb, gsh, sym) : 0;
#pragma unroll
    for (int i = 0; i < NS - 1; i++)
        if (c0 + i < c1) qs_issue_w<DT, P>(wr + i * P * PS, PS, 32 * U, wrow, non, 4 * (c0 + i) + ti, nb);
    QK_DEP();
#pragma unroll
    for (int i = 0; i < NS - 1; i++) {
        if (c0 + i < c1) qs_issue_x<NT>(xr + i * XS, xp, tid, T, Kp, nb, c0 + i);
        qk_cpa_commit();
    }
    float acc[MT][NT][4];
#pragma unroll
    for (int m = 0; m < MT; m++)
#pragma unroll
        for (int n = 0; n < NT; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[m][n][e] = 0.0f;
    for (int c = c0; c < c1; c++) {
        const int st = (c - c0) % NS;
        qk_cpa_wait<NS - 2>(); /* this thread's copies of chunk c have landed */
        __syncthreads();       /* every thread's: the x tile is whole; every warp is past chunk c - 1 */
        {
            const int cn = c + NS - 1, sn = (cn - c0) % NS; /* into chunk c - 1's stage */
            if (cn < c1) {
                qs_issue_w<DT, P>(wr + sn * P * PS, PS, 32 * U, wrow, non, 4 * cn + ti, nb);
                qs_issue_x<NT>(xr + sn * XS, xp, tid, T, Kp, nb, cn);
            }
            qk_cpa_commit();
        }
        u32 wv[P][8], szc[P];
#pragma unroll
        for (int p = 0; p < P; p++) qg_words<DT>(wv[p], wr + (st * P + p) * PS, 32 * U), szc[p] = sz[p];
        if (c + 1 < c1) /* the next chunk's scales now: used after this chunk's products */
#pragma unroll
            for (int p = 0; p < P; p++) sz[p] = qg_sz<DT>(srow[p], zrow[p], 4 * (c + 1) + ti, nb, gb, gsh, sym);
        /* quarter q of the chunk: x pairs 4q .. 4q + 3 of every n-tile (one 16-byte read each), k-steps 2q, 2q + 1;
         * all NT x MT products of a step are independent */
#pragma unroll
        for (int q = 0; q < 4; q++) {
            uint4 bq[NT];
#pragma unroll
            for (int n = 0; n < NT; n++)
                bq[n] = *(const uint4 *)(xr + st * XS + (8 * n + gi) * QK_QS_XLD + (4 * q + ti) * 16);
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const int j = 4 * q + 2 * h; /* pairs j (k-slots 2t, 2t + 1) and j + 1 (2t + 8, 2t + 9) */
                u32 a[P][2];
#pragma unroll
                for (int p = 0; p < P; p++)
                    a[p][0] = qg_sq(qg_pair<DT>(wv[p], j), szc[p]), a[p][1] = qg_sq(qg_pair<DT>(wv[p], j + 1), szc[p]);
#pragma unroll
                for (int n = 0; n < NT; n++)
#pragma unroll
                    for (int m = 0; m < MT; m++)
                        qk_mma(acc[m][n], a[2 * m][0], a[2 * m + 1][0], a[2 * m][1], a[2 * m + 1][1],
                               h ? bq[n].z : bq[n].x, h ? bq[n].w : bq[n].y);
            }
        }
    }
    /* C fragment (m, n): rows rb + 16 m (+ 8), tokens 8 n + 2 (lane % 4) (+ 1) */
    float *out = S > 1 ? y + (size_t)z * T * N : y;
    const bool addb = S == 1 && bias;
#pragma unroll
    for (int m = 0; m < MT; m++)
#pragma unroll
        for (int n = 0; n < NT; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int r = rb + 16 * m + 8 * (e >> 1), t = 8 * n + 2 * ti + (e & 1);
                if (r < N && t < T) out[(size_t)t * N + r] = addb ? __fadd_rn(acc[m][n][e], bias[r]) : acc[m][n][e];
            }
}
#if QK_NEED_Q2 || QK_NEED_Q3 || QK_NEED_Q4 || QK_NEED_Q8
/* y [T, N] = the sum of part [S, T, N] over S in order (+ bias). */
extern "C" __global__ void qk_qgemm_reduce(float *y, const float *part, const float *bias, int T, int N, int S) {
    QK_DEP();
    const size_t total = (size_t)T * N;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        float v = part[i];
        for (int z = 1; z < S; z++) v = __fadd_rn(v, part[z * total + i]);
        y[i] = bias ? __fadd_rn(v, bias[i % N]) : v;
    }
}
#endif

/* ---- the other ops ---- */

/* A row of the table as f32. 16-byte loads, QK_EMB_U of them per thread requested before any is stored (the
 * row is cold: an element loop waits for memory once per element, ~15 us for 4096 f16 values). */
#define QK_EMB_U 4
template <int DT>
__device__ __forceinline__ void embed_core(float *__restrict__ out, const void *__restrict__ w, const int *st, int dim,
                                           int vocab) {
    const int t = blockIdx.x;
    int id = st[QK_ST_TOK + t];
    if (id < 0 || id >= vocab) id = 0; /* ids are validated by the caller */
    constexpr int E = DT == QK_F32 ? 4 : 8; /* elements per 16 bytes */
    const size_t base = (size_t)id * dim;
    float *o = out + (size_t)t * dim;
    const char *row = (const char *)w + base * (DT == QK_F32 ? 4 : 2);
    if (dim % E || ((unsigned long long)row & 15) || ((unsigned long long)o & 15)) {
        for (int i = threadIdx.x; i < dim; i += blockDim.x) o[i] = qk_ld<DT>(w, base + i);
        return;
    }
    const int nv = dim / E;
    for (int i0 = threadIdx.x; i0 < nv; i0 += QK_EMB_U * blockDim.x) {
        uint4 v[QK_EMB_U];
#pragma unroll
        for (int u = 0; u < QK_EMB_U; u++) {
            const int i = i0 + u * blockDim.x;
            if (i < nv) v[u] = __ldg((const uint4 *)row + i);
        }
#pragma unroll
        for (int u = 0; u < QK_EMB_U; u++) {
            const int i = i0 + u * blockDim.x;
            if (i >= nv) break;
            const u32 q[4] = {v[u].x, v[u].y, v[u].z, v[u].w};
            if (DT == QK_F32) {
                ((float4 *)o)[i] = make_float4(__uint_as_float(q[0]), __uint_as_float(q[1]), __uint_as_float(q[2]),
                                               __uint_as_float(q[3]));
            } else {
                float f[8];
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    f[2 * e] = DT == QK_F16 ? qk_h2f((u16)(q[e] & 0xffff)) : qk_bf2f((u16)(q[e] & 0xffff));
                    f[2 * e + 1] = DT == QK_F16 ? qk_h2f((u16)(q[e] >> 16)) : qk_bf2f((u16)(q[e] >> 16));
                }
                ((float4 *)o)[2 * i] = make_float4(f[0], f[1], f[2], f[3]);
                ((float4 *)o)[2 * i + 1] = make_float4(f[4], f[5], f[6], f[7]);
            }
        }
    }
}

/* RMSNorm of one token per block: y = x * r * w, r = 1 / sqrt(mean(x^2) + eps),
 * as runtime/kernels.c computes it. ADD: x = a + b first, also written to h
 * (the residual add before the norm, fused). Up to 4 float4 of x per thread
 * stay in registers (one read of x; runtime/cuda.c picks blockDim so that
 * dim <= 16 * blockDim), else a second pass reads x again. */
template <int DT, int ADD>
__device__ __forceinline__ void rmsnorm_core(float *out, float *h, const float *a, const float *b, const void *w,
                                             int dim, float eps) {
    __shared__ float red[32];
    const int t = blockIdx.x, nt = blockDim.x;
    const float *x = a + (size_t)t * dim, *xb = ADD ? b + (size_t)t * dim : NULL;
    float *y = out + (size_t)t * dim, *hy = ADD ? h + (size_t)t * dim : NULL;
    float ss = 0.0f;
    if ((dim & 3) == 0 && dim <= 16 * nt) {
        float4 v[4], wv[4];
#pragma unroll
        for (int r = 0; r < 4; r++) {
            const int i = (threadIdx.x + r * nt) * 4;
            if (i < dim) { /* w requested with x, not after the reduction (tensors are 64-byte aligned) */
                if (!w) wv[r] = make_float4(1.0f, 1.0f, 1.0f, 1.0f);
                else if (DT == QK_F32) wv[r] = __ldg((const float4 *)w + i / 4);
                else {
                    const uint2 h = qk_ld8((const u16 *)w + i);
                    wv[r].x = DT == QK_F16 ? qk_h2f((u16)h.x) : qk_bf2f((u16)h.x);
                    wv[r].y = DT == QK_F16 ? qk_h2f((u16)(h.x >> 16)) : qk_bf2f((u16)(h.x >> 16));
                    wv[r].z = DT == QK_F16 ? qk_h2f((u16)h.y) : qk_bf2f((u16)h.y);
                    wv[r].w = DT == QK_F16 ? qk_h2f((u16)(h.y >> 16)) : qk_bf2f((u16)(h.y >> 16));
                }
                v[r] = *(const float4 *)(x + i);
                if (ADD) {
                    const float4 q = *(const float4 *)(xb + i);
                    v[r].x += q.x, v[r].y += q.y, v[r].z += q.z, v[r].w += q.w;
                }
                ss += v[r].x * v[r].x;
                ss += v[r].y * v[r].y;
                ss += v[r].z * v[r].z;
                ss += v[r].w * v[r].w;
            }
        }
        ss = qk_block_sum(ss, red);
        const float rs = 1.0f / sqrtf(ss / (float)dim + eps);
#pragma unroll
        for (int r = 0; r < 4; r++) {
            const int i = (threadIdx.x + r * nt) * 4;
            if (i < dim) {
                if (ADD) *(float4 *)(hy + i) = v[r];
                float4 o;
                o.x = v[r].x * rs * wv[r].x; /* wv is 1 without a weight: x * r * 1 is exact */
                o.y = v[r].y * rs * wv[r].y;
                o.z = v[r].z * rs * wv[r].z;
                o.w = v[r].w * rs * wv[r].w;
                *(float4 *)(y + i) = o;
            }
        }
        return;
    }
    for (int i = threadIdx.x; i < dim; i += nt) {
        const float v = ADD ? x[i] + xb[i] : x[i];
        if (ADD) hy[i] = v;
        ss += v * v;
    }
    ss = qk_block_sum(ss, red); /* its barrier also orders hy's writes before the reads below */
    const float rs = 1.0f / sqrtf(ss / (float)dim + eps);
    const float *src = ADD ? hy : x;
    for (int i = threadIdx.x; i < dim; i += nt) y[i] = w ? src[i] * rs * qk_ld<DT>(w, i) : src[i] * rs;
}

#define QK_FLOAT_DTS(X) X(f32, QK_F32) X(f16, QK_F16) X(bf16, QK_BF16)
#define QK_DEF_EMBED_NORM(name, DT)                                                                     \
    extern "C" __global__ void qk_embed_##name(float *out, const void *w, const int *st, int dim,       \
                                               int vocab) {                                             \
        QK_DEP();                                                                                        \
        embed_core<DT>(out, w, st, dim, vocab);                                                          \
    }                                                                                                   \
    extern "C" __global__ void qk_rmsnorm_##name(float *out, const float *a, const void *w, int dim,    \
                                                 float eps) {                                           \
        QK_DEP();                                                                                        \
        rmsnorm_core<DT, 0>(out, NULL, a, NULL, w, dim, eps);                                            \
    }                                                                                                   \
    extern "C" __global__ void qk_add_rmsnorm_##name(float *out, float *h, const float *a, const float *b, \
                                                     const void *w, int dim, float eps) {               \
        QK_DEP();                                                                                        \
        rmsnorm_core<DT, 1>(out, h, a, b, w, dim, eps);                                                  \
    }
QK_FLOAT_DTS(QK_DEF_EMBED_NORM)

/* Rotate-half RoPE in place on x[T, heads * hd]; grid (T, heads). inv:
 * hd / 2 inverse frequencies computed by the runtime exactly as the CPU
 * kernel does (1 / powf(theta, 2i / hd)). */
extern "C" __global__ void qk_rope(float *x, const int *st, const float *inv, int heads, int hd) {
    QK_DEP();
    const int t = blockIdx.x, h = blockIdx.y, half = hd / 2;
    const float pos = (float)(st[QK_ST_POS] + t);
    float *p = x + ((size_t)t * heads + h) * hd;
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
        float si, co;
        sincosf(pos * inv[i], &si, &co);
        const float x0 = p[i], x1 = p[i + half];
        p[i] = x0 * co - x1 * si;
        p[i + half] = x1 * co + x0 * si;
    }
}

extern "C" __global__ void qk_silu_mul(float *out, const float *a, const float *b, int n) {
    QK_DEP();
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        out[i] = a[i] / (1.0f + expf(-a[i])) * b[i];
}

extern "C" __global__ void qk_add(float *out, const float *a, const float *b, int n) {
    QK_DEP();
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) out[i] = a[i] + b[i];
}

extern "C" __global__ void qk_add_bias(float *y, const float *bias, int T, int N) {
    QK_DEP();
    const size_t n = (size_t)T * N;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] += bias[i % N];
}

extern "C" __global__ void qk_to_f16(u16 *out, const float *in, int n) {
    QK_DEP();
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) out[i] = qk_f2h(in[i]);
}
extern "C" __global__ void qk_to_bf16(u16 *out, const float *in, int n) {
    QK_DEP();
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) out[i] = qk_f2bf(in[i]);
}

/* ---- attention ----
 * KV cache of one layer: [n_ctx, kv_heads * hd], f32 or f16 (KVT 0 / 1).
 * kv_append writes this step's k, v at positions pos .. pos + T - 1. */
/* Four cache elements as the cache holds them, in registers: float4 (f32 cache) or uint2 (f16 pairs), turned
 * into floats only where they are used, so that a load's result is not waited for when it is requested
 * (the next round's rows stay in flight while this one is computed) and f16 rows take half the registers */
template <int KVT>
struct qk_kvr {
    typedef float4 T;
    static __device__ __forceinline__ T ld(const void *base, size_t i) { return *(const float4 *)((const float *)base + i); }
    static __device__ __forceinline__ float4 f(const T &v) { return v; }
    static __device__ __forceinline__ T zero(void) { return make_float4(0.0f, 0.0f, 0.0f, 0.0f); }
};
template <>
struct qk_kvr<1> {
    typedef uint2 T;
    static __device__ __forceinline__ T ld(const void *base, size_t i) { return *(const uint2 *)((const u16 *)base + i); }
    static __device__ __forceinline__ float4 f(const T &u) {
        return make_float4(qk_h2f((u16)(u.x & 0xffff)), qk_h2f((u16)(u.x >> 16)), qk_h2f((u16)(u.y & 0xffff)),
                           qk_h2f((u16)(u.y >> 16)));
    }
    static __device__ __forceinline__ T zero(void) { return make_uint2(0u, 0u); }
};

template <int KVT>
__device__ __forceinline__ float4 qk_ld4kv(const void *base, size_t i) { /* elements i .. i+3, i % 4 == 0 */
    return qk_kvr<KVT>::f(qk_kvr<KVT>::ld(base, i));
}

template <int KVT>
__device__ __forceinline__ void kv_append_core(const float *k, const float *v, void *kc, void *vc,
                                               const int *st, int kvd, int T) {
    const size_t n = (size_t)T * kvd, off = (size_t)st[QK_ST_POS] * kvd;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        if (KVT == 0) {
            ((float *)kc)[off + i] = k[i];
            ((float *)vc)[off + i] = v[i];
        } else {
            ((u16 *)kc)[off + i] = qk_f2h(k[i]);
            ((u16 *)vc)[off + i] = qk_f2h(v[i]);
        }
    }
}

/* Cache elements j and j + half of a row: k0, k1 and v0, v1 (as f32 or f16) */
/* v as the cache gives it back after qk_kv_put2 */
template <int KVT>
__device__ __forceinline__ float qk_kv_round(float v) {
    return KVT == 0 ? v : qk_h2f(qk_f2h(v));
}
template <int KVT>
__device__ __forceinline__ void qk_kv_put2(void *kc, void *vc, size_t j, int half, float k0, float k1, float v0,
                                           float v1) {
    if (KVT == 0) {
        ((float *)kc)[j] = k0, ((float *)kc)[j + half] = k1;
        ((float *)vc)[j] = v0, ((float *)vc)[j + half] = v1;
    } else {
        ((u16 *)kc)[j] = qk_f2h(k0), ((u16 *)kc)[j + half] = qk_f2h(k1);
        ((u16 *)vc)[j] = qk_f2h(v0), ((u16 *)vc)[j + half] = qk_f2h(v1);
    }
}

/* RoPE of q and k in place (as qk_rope) and the KV append of k and v, one
 * launch before the attention (runtime/cuda.c merges ROPE q, ROPE k,
 * ATTENTION): grid (T, heads + kvh), block y < heads a q head, else a k head. */
template <int KVT>
__device__ __forceinline__ void rope_append_core(float *q, float *k, const float *v, void *kc, void *vc,
                                                 const int *st, const float *invq, const float *invk, int heads,
                                                 int kvh, int hd) {
    const int t = blockIdx.x, isk = (int)blockIdx.y >= heads, h = isk ? blockIdx.y - heads : blockIdx.y;
    const int half = hd / 2, p0 = st[QK_ST_POS] + t;
    const float pos = (float)p0;
    float *p = isk ? k + ((size_t)t * kvh + h) * hd : q + ((size_t)t * heads + h) * hd;
    const float *inv = isk ? invk : invq;
    const size_t off = (size_t)p0 * kvh * hd + (size_t)h * hd, vo = ((size_t)t * kvh + h) * hd;
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
        float si, co;
        sincosf(pos * inv[i], &si, &co);
        const float x0 = p[i], x1 = p[i + half];
        const float r0 = x0 * co - x1 * si, r1 = x1 * co + x0 * si;
        p[i] = r0;
        p[i + half] = r1;
        if (isk) qk_kv_put2<KVT>(kc, vc, off + i, half, r0, r1, v[vo + i], v[vo + i + half]);
    }
}

/* Causal attention of query token t (grid z), head h (grid x) over the
 * positions of split s (grid y): [s * ch, min((s + 1) * ch, pos + t + 1)),
 * ch = ceil((pos + t + 1) / ns). With nsplit > 1 blocks per head (one
 * token; the graph fixes nsplit) the first ns = min(nsplit, max(minsplit,
 * ceil((pos + 1) / QK_ATT_SPOS))) of them share the current length and the
 * others return at once, so short positions pay for few splits and long
 * ones get up to nsplit; with nsplit 1, ns = 1.
 * The block's lanes form groups of lg lanes (a power of two covering hd / 4
 * float4s, at most 32; NC float4s per lane); group g takes positions g,
 * g + G, g + 2G, ... (G groups) and keeps its own online softmax (max m,
 * sum l, output in the lanes' registers) without block-wide barriers,
 * QK_ATT_U positions a round. A round's K and V rows are all requested
 * before any is used, and (NC 1) the next round's while this one is
 * computed. The first round's rows of earlier steps (positions before the
 * step's first) are requested before the dependency wait: no kernel still
 * running writes them. The rounds cover the positions before pos + t; that
 * one (written this step) is kept in shared memory as the cache holds it
 * and added to group 0's softmax after the rounds, so no split reads back
 * through L2 what was just written. The groups are merged in group order
 * at the end. With one split the block writes the output; else (m, l, unnormalized o)
 * go to part[heads, nsplit, hd + 4] (one token), and the head's last split
 * to finish (counted in cnt[heads], which it resets) merges them in split
 * order, all of them read at once: the result does not depend on which
 * block is last. hd % 4 == 0, hd <= 512, nsplit <= QK_ATT_MAXS.
 * qk_attn_rope_<kv> (one token) also does what qk_rope_append_<kv> would
 * have done before it: each block rotates its head's q into shared memory;
 * the split that reads position pos rotates its kv head's k and writes k
 * and v into the cache there and into its shared memory (the q heads of one
 * kv head write the same bytes), so the result is bit for bit the unfused
 * one's. q and k stay
 * unrotated in their buffers (only the attention reads them). */
#define QK_ATT_THREADS 128
#define QK_ATT_U 4 /* positions per group and round */
#define QK_ATT_SPOS 128 /* one token: positions per active split (at least minsplit splits) */
#define QK_ATT_MAXS 1024 /* splits per head at most (runtime/cuda.c caps nsplit) */

/* Thread block clusters (sm_90+): the splits of a head launched as one cluster (runtime/cuda.c) merge
 * through distributed shared memory. On older targets no launch has a cluster: qk_cl_n() is 1. */
__device__ __forceinline__ unsigned qk_cl_n(void) {
    unsigned r = 1;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("mov.u32 %0, %%cluster_nctarank;" : "=r"(r));
#endif
    return r;
}
/* Cluster barrier in two halves: every thread of the cluster arrives (its writes before, released); a
 * thread that waits sees them all. A block may exit after arriving when no other block reads its shared
 * memory. */
__device__ __forceinline__ void qk_cl_arrive(void) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("barrier.cluster.arrive.release.aligned;" ::: "memory");
#endif
}
__device__ __forceinline__ void qk_cl_wait(void) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("barrier.cluster.wait.acquire.aligned;" ::: "memory");
#endif
}
/* *p = v in the shared memory of the cluster's block `rank` (p: this block's copy of the variable) */
__device__ __forceinline__ unsigned qk_cl_addr(const void *p, unsigned rank) {
    unsigned r = 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    unsigned long long a;
    asm volatile("cvta.to.shared.u64 %0, %1;" : "=l"(a) : "l"(p));
    asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(r) : "r"((unsigned)a), "r"(rank));
#endif
    return (void)p, (void)rank, r;
}
__device__ __forceinline__ void qk_cl_st(float *p, unsigned rank, float v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("st.shared::cluster.f32 [%0], %1;" ::"r"(qk_cl_addr(p, rank)), "f"(v) : "memory");
#endif
    (void)p, (void)rank, (void)v;
}
__device__ __forceinline__ void qk_cl_st4(float4 *p, unsigned rank, float4 v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("st.shared::cluster.v4.f32 [%0], {%1, %2, %3, %4};" ::"r"(qk_cl_addr(p, rank)), "f"(v.x), "f"(v.y),
                 "f"(v.z), "f"(v.w)
                 : "memory");
#endif
    (void)p, (void)rank, (void)v;
}

/* K and V rows of positions p0 + u G (u < QK_ATT_U) in [lo, hi) into the lane's registers (others untouched) */
template <int KVT, int NC>
__device__ __forceinline__ void qk_att_load(typename qk_kvr<KVT>::T (&kk)[QK_ATT_U][NC],
                                            typename qk_kvr<KVT>::T (&vv)[QK_ATT_U][NC], const void *kc,
                                            const void *vc, int p0, int G, int lo, int hi, int gl, int lg, int nq,
                                            int kvd, size_t hoff) {
#pragma unroll
    for (int u = 0; u < QK_ATT_U; u++) {
        const int p = p0 + u * G;
#pragma unroll
        for (int c = 0; c < NC; c++) {
            const int i = gl + c * lg;
            if (p >= lo && p < hi && i < nq) {
                const size_t base = (size_t)p * kvd + hoff + 4 * i;
                kk[u][c] = qk_kvr<KVT>::ld(kc, base);
                vv[u][c] = qk_kvr<KVT>::ld(vc, base);
            }
        }
    }
}
/* The head's output from its ns splits' partials (m, l, unnormalized o; ld(i, k): word k of split i's).
 * Up to QK_ATT_MERGE1 splits, every thread reads every (m, l) and weighs them itself (no barrier); more:
 * every (m, l) read at once, two block reductions. Then every output column's ns values at once, summed in
 * split order. */
#define QK_ATT_MERGE1 8
template <class LD>
__device__ __forceinline__ void qk_att_merge(const LD &ld, int ns, int hd, float *out, float *wsp, float *gm,
                                             float *gsum) {
    const int tid = threadIdx.x;
    if (ns <= QK_ATT_MERGE1) {
        float wi[QK_ATT_MERGE1], M = QK_NEG_INF, L = 0.0f;
#pragma unroll
        for (int i = 0; i < QK_ATT_MERGE1; i++)
            if (i < ns) M = fmaxf(M, ld(i, 0));
#pragma unroll
        for (int i = 0; i < QK_ATT_MERGE1; i++)
            if (i < ns) wi[i] = expf(ld(i, 0) - M), L += ld(i, 1) * wi[i];
        for (int d = tid; d < hd; d += QK_ATT_THREADS) {
            float o = 0.0f;
#pragma unroll
            for (int i = 0; i < QK_ATT_MERGE1; i++)
                if (i < ns) o += wi[i] * ld(i, 4 + d);
            out[d] = o / L;
        }
        return;
    }
    float mloc = QK_NEG_INF;
    for (int i = tid; i < ns; i += QK_ATT_THREADS) {
        const float mi = ld(i, 0);
        wsp[i] = mi;
        mloc = fmaxf(mloc, mi);
    }
    const float M = qk_block_max(mloc, gm);
    float lloc = 0.0f;
    for (int i = tid; i < ns; i += QK_ATT_THREADS) {
        const float w = expf(wsp[i] - M);
        wsp[i] = w;
        lloc += ld(i, 1) * w;
    }
    const float L = qk_block_sum(lloc, gsum); /* (its barrier also publishes wsp) */
    for (int d = tid; d < hd; d += QK_ATT_THREADS) {
        float o = 0.0f;
#pragma unroll 8
        for (int i = 0; i < ns; i++) o += wsp[i] * ld(i, 4 + d);
        out[d] = o / L;
    }
}

template <int KVT, int NC>
__device__ __forceinline__ void qk_att_zero(typename qk_kvr<KVT>::T (&kk)[QK_ATT_U][NC],
                                            typename qk_kvr<KVT>::T (&vv)[QK_ATT_U][NC]) {
#pragma unroll
    for (int u = 0; u < QK_ATT_U; u++)
#pragma unroll
        for (int c = 0; c < NC; c++) kk[u][c] = vv[u][c] = qk_kvr<KVT>::zero();
}

template <int KVT, int ROPE, int NC>
__device__ __forceinline__ void attn_core(const float *q, void *kc, void *vc, float *out, float *part,
                                          unsigned *cnt, const int *st, int heads, int kvh, int hd, int minsplit,
                                          int nsplit, const float *kn, const float *vn, const float *invq,
                                          const float *invk) {
    __shared__ int is_last;
    __shared__ float gm[QK_ATT_THREADS], gsum[QK_ATT_THREADS], wsp[QK_ATT_MAXS];
    /* cluster: in block 0, every split's m, l, -, -, o (hd + 4 floats each, written by that split) */
    __shared__ float4 cin4[8 * (1 + 32 * NC)];
    float *const cin = (float *)cin4;
    __shared__ float4 gacc[4 * QK_ATT_THREADS];
    __shared__ float4 qrot[ROPE ? 128 : 1]; /* ROPE: this head's rotated q (hd <= 512) */
    __shared__ float4 klast[128], vlast[128]; /* the split with position last: its K and V rows, as the cache holds them */
    constexpr int PIPE = NC == 1;           /* the next round's rows in flight while this one is computed */
    const int h = blockIdx.x, s = blockIdx.y, t = blockIdx.z, tid = threadIdx.x;
    const int kh = h / (heads / kvh), kvd = kvh * hd, nq = hd / 4;
    /* the step block is written before the step's first kernel: readable before the wait */
    const int pre = st[QK_ST_POS], last = pre + t;
    /* one token: the ns active splits share the current length evenly */
    const int ns = nsplit == 1 ? 1 : min(nsplit, max(minsplit, (last + QK_ATT_SPOS) / QK_ATT_SPOS));
    const bool cl = nsplit > 1 && qk_cl_n() == (unsigned)nsplit; /* launched as clusters of the head's splits */
    if (s >= ns) { /* not needed at this length (reads and writes nothing; arrives at the cluster barrier) */
        QK_DEP();
        if (cl) qk_cl_arrive();
        return;
    }
    const int ch = (last + ns) / ns;
    const int j0 = s * ch, j1 = min(j0 + ch, last + 1);
    /* the rounds cover [j0, jl); position last (written this step) is added after them from shared memory */
    const bool has_last = s == last / ch;
    const int jl = min(j1, last);
    const float scale = 1.0f / sqrtf((float)hd);
    int lg = 1;
    while (lg < nq && lg < 32) lg <<= 1;
    const int G = QK_ATT_THREADS / lg, grp = tid / lg, gl = tid % lg;
    const size_t hoff = (size_t)kh * hd;
    /* the first round's rows of earlier steps (below pre: no running kernel writes them) before the wait */
    typedef typename qk_kvr<KVT>::T KR;
    KR kk[QK_ATT_U][NC], vv[QK_ATT_U][NC];
    qk_att_zero<KVT, NC>(kk, vv);
    qk_att_load<KVT, NC>(kk, vv, kc, vc, j0 + grp, G, j0, min(jl, pre), gl, lg, nq, kvd, hoff);
    /* ROPE: the angles of this position (constant tables; hd / 2 <= 256, two per thread at most) */
    const bool app = ROPE && has_last; /* this split reads position last: it appends k and v there first */
    float qsn[2], qcs[2], ksn[2], kcs[2];
    if (ROPE)
#pragma unroll
        for (int r = 0; r < 2; r++) {
            const int i = tid + r * QK_ATT_THREADS;
            if (i >= hd / 2) continue;
            sincosf((float)last * invq[i], &qsn[r], &qcs[r]);
            if (app) sincosf((float)last * invk[i], &ksn[r], &kcs[r]);
        }
    QK_DEP();
    const float4 *qh = (const float4 *)(q + ((size_t)t * heads + h) * hd);
    if (ROPE) { /* one token: this step's RoPE of q and k and the KV append, as rope_append_core */
        const int half = hd / 2;
        const float *qs = q + (size_t)h * hd, *ks = kn + (size_t)kh * hd;
        const size_t off = (size_t)last * kvd + (size_t)kh * hd;
        float *qr = (float *)qrot, *kl = (float *)klast, *vl = (float *)vlast;
#pragma unroll
        for (int r = 0; r < 2; r++) {
            const int i = tid + r * QK_ATT_THREADS;
            if (i >= half) continue;
            float si = qsn[r], co = qcs[r];
            const float x0 = qs[i], x1 = qs[i + half];
            qr[i] = x0 * co - x1 * si, qr[i + half] = x1 * co + x0 * si;
            if (!app) continue;
            /* every q head of this kv head appends the same bytes */
            si = ksn[r], co = kcs[r];
            const float y0 = ks[i], y1 = ks[i + half], r0 = y0 * co - y1 * si, r1 = y1 * co + y0 * si;
            const float v0 = vn[(size_t)kh * hd + i], v1 = vn[(size_t)kh * hd + i + half];
            qk_kv_put2<KVT>(kc, vc, off + i, half, r0, r1, v0, v1);
            kl[i] = qk_kv_round<KVT>(r0), kl[i + half] = qk_kv_round<KVT>(r1);
            vl[i] = qk_kv_round<KVT>(v0), vl[i + half] = qk_kv_round<KVT>(v1);
        }
        __syncthreads();
        qh = qrot;
    } else if (has_last) { /* position last, appended by the kernel before */
        for (int i = tid; i < nq; i += QK_ATT_THREADS) {
            const size_t base = (size_t)last * kvd + hoff + 4 * i;
            klast[i] = qk_ld4kv<KVT>(kc, base), vlast[i] = qk_ld4kv<KVT>(vc, base);
        }
        __syncthreads();
    }
    /* the first round's rows of this step before position last (more than one token) */
    qk_att_load<KVT, NC>(kk, vv, kc, vc, j0 + grp, G, pre, jl, gl, lg, nq, kvd, hoff);
    float4 qv[NC], acc[NC];
#pragma unroll
    for (int c = 0; c < NC; c++) {
        const int i = gl + c * lg;
        qv[c] = i < nq ? qh[i] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        acc[c] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
    float m = QK_NEG_INF, l = 0.0f;
    for (int pb = j0; pb < jl; pb += G * QK_ATT_U) { /* the same trip count in every lane: shuffles below */
        const int p0 = pb + grp, pn = pb + G * QK_ATT_U;
        KR kx[QK_ATT_U][PIPE ? NC : 1], vx[QK_ATT_U][PIPE ? NC : 1];
        if (PIPE) { /* the next round's rows */
            qk_att_zero<KVT, PIPE ? NC : 1>(kx, vx);
            if (pn < jl) qk_att_load<KVT, PIPE ? NC : 1>(kx, vx, kc, vc, pn + grp, G, j0, jl, gl, lg, nq, kvd, hoff);
        }
        float sc[QK_ATT_U];
#pragma unroll
        for (int u = 0; u < QK_ATT_U; u++) {
            float d = 0.0f;
#pragma unroll
            for (int c = 0; c < NC; c++) {
                const float4 k4 = qk_kvr<KVT>::f(kk[u][c]);
                d += qv[c].x * k4.x + qv[c].y * k4.y + qv[c].z * k4.z + qv[c].w * k4.w;
            }
            sc[u] = d;
        }
#pragma unroll
        for (int o = 16; o; o >>= 1)
            if (o < lg) {
#pragma unroll
                for (int u = 0; u < QK_ATT_U; u++) sc[u] += __shfl_xor_sync(QK_FULL, sc[u], o);
            }
        float mt = QK_NEG_INF;
#pragma unroll
        for (int u = 0; u < QK_ATT_U; u++) {
            sc[u] = p0 + u * G < jl ? sc[u] * scale : QK_NEG_INF;
            mt = fmaxf(mt, sc[u]);
        }
        if (mt != QK_NEG_INF) { /* else no position of this group here (the last round) */
            const float mn = fmaxf(m, mt), corr = expf(m - mn);
            l *= corr;
#pragma unroll
            for (int c = 0; c < NC; c++) acc[c].x *= corr, acc[c].y *= corr, acc[c].z *= corr, acc[c].w *= corr;
#pragma unroll
            for (int u = 0; u < QK_ATT_U; u++) {
                const float e = expf(sc[u] - mn); /* 0 past jl */
                l += e;
#pragma unroll
                for (int c = 0; c < NC; c++) {
                    const float4 v4 = qk_kvr<KVT>::f(vv[u][c]);
                    acc[c].x = fmaf(e, v4.x, acc[c].x), acc[c].y = fmaf(e, v4.y, acc[c].y);
                    acc[c].z = fmaf(e, v4.z, acc[c].z), acc[c].w = fmaf(e, v4.w, acc[c].w);
                }
            }
            m = mn;
        }
        if (PIPE) {
#pragma unroll
            for (int u = 0; u < QK_ATT_U; u++)
#pragma unroll
                for (int c = 0; c < NC; c++) kk[u][c] = kx[u][PIPE ? c : 0], vv[u][c] = vx[u][PIPE ? c : 0];
        } else if (pn < jl) {
            qk_att_zero<KVT, NC>(kk, vv);
            qk_att_load<KVT, NC>(kk, vv, kc, vc, pn + grp, G, j0, jl, gl, lg, nq, kvd, hoff);
        }
    }
    if (has_last) { /* position last into group 0's softmax (every group computes its score) */
        float d = 0.0f;
#pragma unroll
        for (int c = 0; c < NC; c++) {
            const int i = gl + c * lg;
            if (i < nq) {
                const float4 k4 = klast[i];
                d += qv[c].x * k4.x + qv[c].y * k4.y + qv[c].z * k4.z + qv[c].w * k4.w;
            }
        }
#pragma unroll
        for (int o = 16; o; o >>= 1)
            if (o < lg) d += __shfl_xor_sync(QK_FULL, d, o);
        if (grp == 0) {
            const float sl = d * scale, mn = fmaxf(m, sl), corr = expf(m - mn), e = expf(sl - mn);
            l *= corr;
            l += e;
#pragma unroll
            for (int c = 0; c < NC; c++) {
                const int i = gl + c * lg;
                const float4 v4 = i < nq ? vlast[i] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
                acc[c].x = fmaf(e, v4.x, acc[c].x * corr), acc[c].y = fmaf(e, v4.y, acc[c].y * corr);
                acc[c].z = fmaf(e, v4.z, acc[c].z * corr), acc[c].w = fmaf(e, v4.w, acc[c].w * corr);
            }
            m = mn;
        }
    }
    if (gl == 0) gm[grp] = m, gsum[grp] = l;
#pragma unroll
    for (int c = 0; c < NC; c++)
        if (gl + c * lg < nq) gacc[grp * nq + gl + c * lg] = acc[c];
    __syncthreads();
    for (int i = tid; i < nq; i += QK_ATT_THREADS) { /* merge the groups in order */
        float M = QK_NEG_INF;
        for (int g = 0; g < G; g++) M = fmaxf(M, gm[g]);
        float L = 0.0f;
        float4 o = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (M != QK_NEG_INF) /* else an empty split: m = -inf, l = 0, o = 0 */
            for (int g = 0; g < G; g++) {
                const float f = expf(gm[g] - M);
                const float4 a = gacc[g * nq + i];
                L += gsum[g] * f;
                o.x += a.x * f, o.y += a.y * f, o.z += a.z * f, o.w += a.w * f;
            }
        if (nsplit == 1) {
            const float inv = 1.0f / L;
            o.x *= inv, o.y *= inv, o.z *= inv, o.w *= inv;
            ((float4 *)(out + ((size_t)t * heads + h) * hd))[i] = o;
        } else if (cl) { /* into block 0's shared memory, slot s */
            float *P = cin + s * (hd + 4);
            if (i == 0) qk_cl_st(P, 0, M), qk_cl_st(P + 1, 0, L);
            qk_cl_st4((float4 *)(P + 4) + i, 0, o);
        } else {
            float *P = part + ((size_t)h * nsplit + s) * (hd + 4);
            if (i == 0) P[0] = M, P[1] = L;
            ((float4 *)(P + 4))[i] = o;
        }
    }
    if (nsplit == 1) return;
    if (cl) { /* the head's splits are one cluster: each wrote its partials into block 0, which merges them; the
               * others exit as soon as they have arrived (nothing reads their shared memory), freeing the SM */
        qk_cl_arrive();
        if (s != 0) return;
        qk_cl_wait();
        qk_att_merge([&](int i, int off) { return cin[i * (hd + 4) + off]; }, ns, hd, out + (size_t)h * hd, wsp, gm,
                     gsum);
        return;
    }
    __threadfence(); /* this split's partials visible device-wide before it is counted */
    __syncthreads();
    if (tid == 0) is_last = atomicAdd(cnt + h, 1u) == (unsigned)ns - 1;
    __syncthreads();
    if (!is_last) return;
    __threadfence();
    const int stride = hd + 4;
    const float *P = part + (size_t)h * nsplit * stride;
    qk_att_merge([&](int i, int off) { return __ldcg(P + i * stride + off); }, ns, hd, out + (size_t)h * hd, wsp, gm,
                 gsum);
    if (tid == 0) cnt[h] = 0; /* ready for the next step (graph replay) */
}

/* Causal attention of a tile of QK_AT_QT query tokens (grid y) of head h
 * (grid x), for prefill (T > 1): every K and V row is read once per tile
 * instead of once per token. K and V come through shared memory QK_AT_KT
 * positions at a time; thread (r, cl) (r = tid / 8) computes scores of
 * query r with positions cl, cl + 8, ..., keeps query r's online softmax
 * (replicated over its 8 lanes) and output dims 4 cl + 32 j. Dynamic shared
 * memory (floats): Q QT x (hd + 4) | K KT x (hd + 4) | V KT x hd | P QT x
 * (KT + 1) (runtime/cuda.c computes the same). hd % 4 == 0, hd <= 256. */
#define QK_AT_QT 16 /* query tokens per block (8 QK_AT_QT threads); runtime/cuda.c ATT_QT */
#define QK_AT_KT 32
#define QK_AT_J 8 /* output float4s per thread: hd <= 32 QK_AT_J */
template <int KVT>
__device__ __forceinline__ void attn_tile_core(const float *q, const void *kc, const void *vc, float *out,
                                               const int *st, int heads, int kvh, int hd, int T) {
    const int QT = QK_AT_QT, KT = QK_AT_KT, hp = hd + 4, nq4 = hd / 4;
    float *sq = (float *)qk_smem4, *sk = sq + QT * hp, *sv = sk + KT * hp, *sp = sv + KT * hd;
    const int h = blockIdx.x, t0 = blockIdx.y * QT, tid = threadIdx.x, nth = blockDim.x;
    const int kh = h / (heads / kvh), kvd = kvh * hd, nt = min(QT, T - t0);
    const int r = tid >> 3, cl = tid & 7;
    const int pos0 = st[QK_ST_POS], qpos = pos0 + t0 + r, kend = pos0 + t0 + nt; /* keys [0, kend) */
    const float scale = 1.0f / sqrtf((float)hd);
    for (int i = tid; i < QT * nq4; i += nth) {
        const int rr = i / nq4, c = i - rr * nq4;
        float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (rr < nt) v = ((const float4 *)(q + ((size_t)(t0 + rr) * heads + h) * hd))[c];
        v.x *= scale, v.y *= scale, v.z *= scale, v.w *= scale;
        *(float4 *)(sq + rr * hp + 4 * c) = v;
    }
    float m = QK_NEG_INF, l = 0.0f;
    float4 acc[QK_AT_J];
#pragma unroll
    for (int j = 0; j < QK_AT_J; j++) acc[j] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    const size_t hoff = (size_t)kh * hd;
    for (int k0 = 0; k0 < kend; k0 += KT) {
        __syncthreads(); /* Q stored (first tile); every thread done with the last K, V, P */
        for (int i = tid; i < KT * nq4; i += nth) {
            const int j = i / nq4, c = i - j * nq4, p = k0 + j;
            float4 kk = make_float4(0.0f, 0.0f, 0.0f, 0.0f), vv = kk;
            if (p < kend) {
                const size_t base = (size_t)p * kvd + hoff + 4 * c;
                kk = qk_ld4kv<KVT>(kc, base), vv = qk_ld4kv<KVT>(vc, base);
            }
            *(float4 *)(sk + j * hp + 4 * c) = kk;
            *(float4 *)(sv + j * hd + 4 * c) = vv;
        }
        __syncthreads();
        float sc[KT / 8];
#pragma unroll
        for (int u = 0; u < KT / 8; u++) sc[u] = 0.0f;
        for (int c = 0; c < nq4; c++) {
            const float4 qv = *(const float4 *)(sq + r * hp + 4 * c);
#pragma unroll
            for (int u = 0; u < KT / 8; u++) {
                const float4 kv = *(const float4 *)(sk + (cl + 8 * u) * hp + 4 * c);
                sc[u] += qv.x * kv.x + qv.y * kv.y + qv.z * kv.z + qv.w * kv.w;
            }
        }
        float mt = QK_NEG_INF;
#pragma unroll
        for (int u = 0; u < KT / 8; u++) {
            if (r >= nt || k0 + cl + 8 * u > qpos) sc[u] = QK_NEG_INF; /* causal (and rows past T) */
            mt = fmaxf(mt, sc[u]);
        }
        mt = fmaxf(mt, __shfl_xor_sync(QK_FULL, mt, 1));
        mt = fmaxf(mt, __shfl_xor_sync(QK_FULL, mt, 2));
        mt = fmaxf(mt, __shfl_xor_sync(QK_FULL, mt, 4));
        const float mn = fmaxf(m, mt);
        const float corr = mn == QK_NEG_INF ? 1.0f : expf(m - mn);
        float rs = 0.0f;
#pragma unroll
        for (int u = 0; u < KT / 8; u++) {
            const float e = mn == QK_NEG_INF ? 0.0f : expf(sc[u] - mn);
            rs += e;
            sp[r * (KT + 1) + cl + 8 * u] = e;
        }
        rs += __shfl_xor_sync(QK_FULL, rs, 1);
        rs += __shfl_xor_sync(QK_FULL, rs, 2);
        rs += __shfl_xor_sync(QK_FULL, rs, 4);
        l = l * corr + rs, m = mn;
        __syncwarp(); /* query r's P row: written by its 8 lanes, all in this warp */
#pragma unroll
        for (int j = 0; j < QK_AT_J; j++) acc[j].x *= corr, acc[j].y *= corr, acc[j].z *= corr, acc[j].w *= corr;
        const int jn = min(KT, kend - k0);
        for (int p = 0; p < jn; p++) {
            const float e = sp[r * (KT + 1) + p];
#pragma unroll
            for (int j = 0; j < QK_AT_J; j++) {
                const int d = 4 * cl + 32 * j;
                if (d < hd) {
                    const float4 v = *(const float4 *)(sv + p * hd + d);
                    acc[j].x = fmaf(e, v.x, acc[j].x), acc[j].y = fmaf(e, v.y, acc[j].y);
                    acc[j].z = fmaf(e, v.z, acc[j].z), acc[j].w = fmaf(e, v.w, acc[j].w);
                }
            }
        }
    }
    if (r >= nt) return;
    const float inv = 1.0f / l;
    float *o = out + ((size_t)(t0 + r) * heads + h) * hd;
#pragma unroll
    for (int j = 0; j < QK_AT_J; j++) {
        const int d = 4 * cl + 32 * j;
        if (d < hd) *(float4 *)(o + d) = make_float4(acc[j].x * inv, acc[j].y * inv, acc[j].z * inv, acc[j].w * inv);
    }
}

/* Prefill attention on the tensor cores, head_dim HD = 64 or 128 (the
 * others: attn_tile_core). A block of 4 warps takes QK_AT2_Q query tokens
 * of head h (grid x) from t0 (grid y); warp w has rows 16 w .. 16 w + 15.
 * K and V come through shared memory QK_AT2_K positions at a time, each
 * value split as the GEMV splits x (qk_x2: f16 hi + f16 lo, 22 bits), K
 * row-major and V transposed, rows padded by 8 halves (no bank conflicts
 * in the fragment loads: qk_ldsm4, four fragments at a time). S = Q K^T
 * and O += P V are mma.sync m16n8k16 with three products each (hi hi + hi
 * lo + lo hi), so the result is as close to the f32 kernel's as that one
 * is to the CPU's. The score tile's accumulators are laid out as the A
 * operand of P V needs them (rows g and g + 8 of lane g * 4 + t, columns
 * 2 t, 2 t + 1 of each 8-wide n-tile). Online softmax per row over the four
 * lanes of a quad; the row sums stay per lane until the end. Q is scaled
 * by 1 / sqrt(HD) before the split, as attn_tile_core does. Dynamic shared
 * memory, bytes (runtime/cuda.c computes the same): K hi, K lo K x (HD + 8)
 * halves each | V hi, V lo HD x (K + 8). */
#define QK_AT2_Q 64
#define QK_AT2_K 64
template <int KVT, int HD>
__device__ __forceinline__ void attn_tc_core(const float *q, const void *kc, const void *vc, float *out,
                                             const int *st, int heads, int kvh, int T) {
    const int KT = QK_AT2_K, KP = HD + 8, VP = KT + 8, NS = HD / 16, NO = HD / 8;
    u16 *khi = (u16 *)qk_smem4, *klo = khi + KT * KP, *vhi = klo + KT * KP, *vlo = vhi + HD * VP;
    const int h = blockIdx.x, t0 = blockIdx.y * QK_AT2_Q, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t = lane & 3, kh = h / (heads / kvh), kvd = kvh * HD;
    const int lr = lane & 7, lm = lane >> 3; /* the row and matrix this lane addresses in qk_ldsm4 */
    const int nt = min(QK_AT2_Q, T - t0), pos0 = st[QK_ST_POS], kend = pos0 + t0 + nt; /* keys [0, kend) */
    const int r0 = 16 * warp + g, r1 = r0 + 8;                 /* this lane's two rows in the block */
    const int qp0 = pos0 + t0 + r0, qp1 = pos0 + t0 + r1;      /* their positions */
    const bool v0 = r0 < nt, v1 = r1 < nt;
    const int wend = min(kend, pos0 + t0 + 16 * warp + 16);    /* keys any row of this warp sees */
    const float scale = 1.0f / sqrtf((float)HD);
    u32 qh[NS][4], ql[NS][4];
#pragma unroll
    for (int s = 0; s < NS; s++)
#pragma unroll
        for (int i = 0; i < 4; i++) { /* a0 (r0, 2t) a1 (r1, 2t) a2 (r0, 2t + 8) a3 (r1, 2t + 8) */
            const int rr = i & 1 ? r1 : r0;
            const bool ok = i & 1 ? v1 : v0;
            float2 x = make_float2(0.0f, 0.0f);
            if (ok) x = *(const float2 *)(q + ((size_t)(t0 + rr) * heads + h) * HD + 16 * s + 8 * (i >> 1) + 2 * t);
            qk_x2(x.x * scale, x.y * scale, qh[s][i], ql[s][i]);
        }
    float o[NO][4];
#pragma unroll
    for (int n = 0; n < NO; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
    float m0 = QK_NEG_INF, m1 = QK_NEG_INF, l0 = 0.0f, l1 = 0.0f;
    const size_t hoff = (size_t)kh * HD;
    for (int k0 = 0; k0 < kend; k0 += KT) {
        __syncthreads(); /* every warp done with the last tile */
        for (int i = tid; i < KT / 2 * (HD / 4); i += blockDim.x) { /* positions 2 j2, 2 j2 + 1; dims 4 c .. 4 c + 3 */
            const int j2 = i / (HD / 4), c = i - j2 * (HD / 4), p = k0 + 2 * j2;
            float4 kr[2], vr[2];
#pragma unroll
            for (int e = 0; e < 2; e++) { /* K: row 2 j2 + e */
                const size_t i0 = (size_t)(p + e) * kvd + hoff + 4 * c;
                kr[e] = vr[e] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
                if (p + e < kend) kr[e] = qk_ld4kv<KVT>(kc, i0), vr[e] = qk_ld4kv<KVT>(vc, i0);
                uint2 h2, l2;
                qk_x2(kr[e].x, kr[e].y, h2.x, l2.x), qk_x2(kr[e].z, kr[e].w, h2.y, l2.y);
                *(uint2 *)(khi + (2 * j2 + e) * KP + 4 * c) = h2, *(uint2 *)(klo + (2 * j2 + e) * KP + 4 * c) = l2;
            }
            const float a[4] = {vr[0].x, vr[0].y, vr[0].z, vr[0].w}, b[4] = {vr[1].x, vr[1].y, vr[1].z, vr[1].w};
#pragma unroll
            for (int e = 0; e < 4; e++) { /* V^T: dim 4 c + e, positions 2 j2 and 2 j2 + 1 */
                u32 hh, ll;
                qk_x2(a[e], b[e], hh, ll);
                *(u32 *)(vhi + (4 * c + e) * VP + 2 * j2) = hh, *(u32 *)(vlo + (4 * c + e) * VP + 2 * j2) = ll;
            }
        }
        __syncthreads();
        if (k0 >= wend) continue; /* every key of this tile is after every row of this warp */
        float sc[KT / 8][4];
#pragma unroll
        for (int j = 0; j < KT / 8; j++) sc[j][0] = sc[j][1] = sc[j][2] = sc[j][3] = 0.0f;
#pragma unroll
        for (int s = 0; s < NS; s++)
#pragma unroll
            for (int j = 0; j < KT / 8; j += 2) { /* n-tiles j, j + 1: matrices (j, dims 16 s), (j, + 8), (j + 1, ..) */
                u32 b[4], c[4];
                const int ko = (8 * (j + (lm >> 1)) + lr) * KP + 16 * s + 8 * (lm & 1);
                qk_ldsm4(b, khi + ko), qk_ldsm4(c, klo + ko);
#pragma unroll
                for (int u = 0; u < 2; u++) {
                    qk_mma(sc[j + u], ql[s][0], ql[s][1], ql[s][2], ql[s][3], b[2 * u], b[2 * u + 1]);
                    qk_mma(sc[j + u], qh[s][0], qh[s][1], qh[s][2], qh[s][3], c[2 * u], c[2 * u + 1]);
                    qk_mma(sc[j + u], qh[s][0], qh[s][1], qh[s][2], qh[s][3], b[2 * u], b[2 * u + 1]);
                }
            }
        float x0 = QK_NEG_INF, x1 = QK_NEG_INF;
#pragma unroll
        for (int j = 0; j < KT / 8; j++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const int p = k0 + 8 * j + 2 * t + e;
                if (!v0 || p > qp0) sc[j][e] = QK_NEG_INF; /* causal (and rows past T) */
                if (!v1 || p > qp1) sc[j][2 + e] = QK_NEG_INF;
                x0 = fmaxf(x0, sc[j][e]), x1 = fmaxf(x1, sc[j][2 + e]);
            }
        x0 = fmaxf(x0, __shfl_xor_sync(QK_FULL, x0, 1)), x0 = fmaxf(x0, __shfl_xor_sync(QK_FULL, x0, 2));
        x1 = fmaxf(x1, __shfl_xor_sync(QK_FULL, x1, 1)), x1 = fmaxf(x1, __shfl_xor_sync(QK_FULL, x1, 2));
        const float n0 = fmaxf(m0, x0), n1 = fmaxf(m1, x1);
        const float f0 = n0 == QK_NEG_INF ? 1.0f : expf(m0 - n0), f1 = n1 == QK_NEG_INF ? 1.0f : expf(m1 - n1);
        m0 = n0, m1 = n1;
        l0 *= f0, l1 *= f1;
#pragma unroll
        for (int n = 0; n < NO; n++) o[n][0] *= f0, o[n][1] *= f0, o[n][2] *= f1, o[n][3] *= f1;
#pragma unroll
        for (int j = 0; j < KT / 8; j++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                sc[j][e] = n0 == QK_NEG_INF ? 0.0f : expf(sc[j][e] - n0);
                sc[j][2 + e] = n1 == QK_NEG_INF ? 0.0f : expf(sc[j][2 + e] - n1);
                l0 += sc[j][e], l1 += sc[j][2 + e];
            }
#pragma unroll
        for (int kk = 0; kk < KT / 16; kk++) {
            u32 ph[4], pl[4]; /* P rows g, g + 8 at positions 16 kk + 2 t (+ 8): n-tiles 2 kk, 2 kk + 1 */
            qk_x2(sc[2 * kk][0], sc[2 * kk][1], ph[0], pl[0]);
            qk_x2(sc[2 * kk][2], sc[2 * kk][3], ph[1], pl[1]);
            qk_x2(sc[2 * kk + 1][0], sc[2 * kk + 1][1], ph[2], pl[2]);
            qk_x2(sc[2 * kk + 1][2], sc[2 * kk + 1][3], ph[3], pl[3]);
#pragma unroll
            for (int n = 0; n < NO; n += 2) { /* dims 8 n .. 8 n + 15: V^T rows, positions 16 kk (+ 8) */
                u32 b[4], c[4];
                const int vo = (8 * (n + (lm >> 1)) + lr) * VP + 16 * kk + 8 * (lm & 1);
                qk_ldsm4(b, vhi + vo), qk_ldsm4(c, vlo + vo);
#pragma unroll
                for (int u = 0; u < 2; u++) {
                    qk_mma(o[n + u], pl[0], pl[1], pl[2], pl[3], b[2 * u], b[2 * u + 1]);
                    qk_mma(o[n + u], ph[0], ph[1], ph[2], ph[3], c[2 * u], c[2 * u + 1]);
                    qk_mma(o[n + u], ph[0], ph[1], ph[2], ph[3], b[2 * u], b[2 * u + 1]);
                }
            }
        }
    }
    l0 += __shfl_xor_sync(QK_FULL, l0, 1), l0 += __shfl_xor_sync(QK_FULL, l0, 2);
    l1 += __shfl_xor_sync(QK_FULL, l1, 1), l1 += __shfl_xor_sync(QK_FULL, l1, 2);
    const float i0 = 1.0f / l0, i1 = 1.0f / l1;
    float *y0 = out + ((size_t)(t0 + r0) * heads + h) * HD + 2 * t, *y1 = y0 + (size_t)8 * heads * HD; /* rows r0, r1 */
#pragma unroll
    for (int n = 0; n < NO; n++) {
        if (v0) *(float2 *)(y0 + 8 * n) = make_float2(o[n][0] * i0, o[n][1] * i0);
        if (v1) *(float2 *)(y1 + 8 * n) = make_float2(o[n][2] * i1, o[n][3] * i1);
    }
}

#define QK_DEF_ATT1(kname, KVT, NC)                                                                      \
    extern "C" __global__ void __launch_bounds__(QK_ATT_THREADS)                                         \
        kname(const float *q, void *kc, void *vc, float *out, float *part, unsigned *cnt, const int *st,  \
              int heads, int kvh, int hd, int minsplit, int nsplit) {                                    \
        attn_core<KVT, 0, NC>(q, kc, vc, out, part, cnt, st, heads, kvh, hd, minsplit, nsplit, 0, 0, 0, 0); \
    }
#define QK_DEF_ATT1_ROPE(kname, KVT, NC)                                                                 \
    extern "C" __global__ void __launch_bounds__(QK_ATT_THREADS)                                         \
        kname(const float *q, const float *k, const float *v, void *kc, void *vc, float *out, float *part, \
              unsigned *cnt, const int *st, const float *invq, const float *invk, int heads, int kvh,    \
              int hd, int minsplit, int nsplit) {                                                        \
        attn_core<KVT, 1, NC>(q, kc, vc, out, part, cnt, st, heads, kvh, hd, minsplit, nsplit, k, v, invq, \
                              invk);                                                                     \
    }
/* prefill on the tensor cores, head_dim HD (attn_tc_core) */
#define QK_DEF_ATT_TC(kname, KVT, HD)                                                                    \
    extern "C" __global__ void __launch_bounds__(128)                                                    \
        kname(const float *q, const void *kc, const void *vc, float *out, const int *st, int heads, int kvh, \
              int T) {                                                                                   \
        QK_DEP();                                                                                        \
        attn_tc_core<KVT, HD>(q, kc, vc, out, st, heads, kvh, T);                                        \
    }
#define QK_DEF_ATTN(name, KVT)                                                                           \
    extern "C" __global__ void qk_kv_append_##name(const float *k, const float *v, void *kc, void *vc,    \
                                                   const int *st, int kvd, int T) {                       \
        QK_DEP();                                                                                        \
        kv_append_core<KVT>(k, v, kc, vc, st, kvd, T);                                                   \
    }                                                                                                    \
    extern "C" __global__ void qk_rope_append_##name(float *q, float *k, const float *v, void *kc,        \
                                                     void *vc, const int *st, const float *invq,         \
                                                     const float *invk, int heads, int kvh, int hd) {    \
        QK_DEP();                                                                                        \
        rope_append_core<KVT>(q, k, v, kc, vc, st, invq, invk, heads, kvh, hd);                          \
    }                                                                                                    \
    /* one token, and more when hd > 256 (attn_core): hd <= 128 (one float4 per lane, the next round in  \
     * flight), _w_ hd <= 512 */                                                                         \
    QK_DEF_ATT1(qk_attn_##name, KVT, 1)                                                                  \
    QK_DEF_ATT1(qk_attn_w_##name, KVT, 4)                                                                \
    QK_DEF_ATT1_ROPE(qk_attn_rope_##name, KVT, 1)                                                        \
    QK_DEF_ATT1_ROPE(qk_attn_rope_w_##name, KVT, 4)                                                      \
    extern "C" __global__ void __launch_bounds__(8 * QK_AT_QT)                                           \
        qk_attn_tile_##name(const float *q, const void *kc, const void *vc, float *out, const int *st,   \
                            int heads, int kvh, int hd, int T) {                                         \
        QK_DEP();                                                                                        \
        attn_tile_core<KVT>(q, kc, vc, out, st, heads, kvh, hd, T);                                      \
    }                                                                                                    \
    QK_DEF_ATT_TC(qk_attn_tc64_##name, KVT, 64)                                                          \
    QK_DEF_ATT_TC(qk_attn_tc128_##name, KVT, 128)
QK_DEF_ATTN(f32, 0)
QK_DEF_ATTN(f16, 1)

/* ---- sampling candidates (runtime/sampler.c's rule) ----
 * qk_topk: the k largest of x[0..n) by (value desc, index asc), sorted, into
 * val / idx, so that only k pairs cross to the host. One block of
 * QK_TOPK_THREADS. Values map to order-preserving unsigned keys (-0 as +0,
 * as the CPU's float comparisons see it); a radix select, 8 bits a round,
 * finds the k-th largest key T and how many elements equal to T to take;
 * a second select over ~index among those ties takes the lowest indices;
 * the k chosen are then ranked by counting. k <= QK_TOPK_MAX. Greedy
 * (k = 1) is one pass: the maximum of (key << 32 | ~index). */
#define QK_TOPK_THREADS 1024
#define QK_TOPK_MAX 1024
__device__ __forceinline__ unsigned qk_okey(float f) {
    unsigned u = __float_as_uint(f == 0.0f ? 0.0f : f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/* The k-th largest key over the elements taken (ties: tie_key == 0 takes
 * all, keys = okey(x); else only x with okey == tie_key, keys = ~index).
 * Returns it; *rem gets how many elements equal to it belong to the top k. */
__device__ unsigned qk_select(const float *__restrict__ x, int n, int k, unsigned tie_key, int ties,
                              unsigned *hist, int *sh, int *rem) {
    unsigned prefix = 0, mask = 0;
    int left = k;
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (int b = threadIdx.x; b < 256; b += blockDim.x) hist[b] = 0;
        __syncthreads();
        for (int i = threadIdx.x; i < n; i += blockDim.x) {
            unsigned ok = qk_okey(x[i]);
            if (ties && ok != tie_key) continue;
            unsigned key = ties ? ~(unsigned)i : ok;
            if ((key & mask) == prefix) atomicAdd(&hist[(key >> shift) & 255u], 1u);
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            int b = 255;
            unsigned c = 0;
            for (; b > 0 && c + hist[b] < (unsigned)left; b--) c += hist[b];
            sh[0] = (int)(prefix | ((unsigned)b << shift));
            sh[1] = left - (int)c;
        }
        __syncthreads();
        prefix = (unsigned)sh[0];
        left = sh[1];
        mask |= 255u << shift;
        __syncthreads();
    }
    *rem = left;
    return prefix;
}

/* st (greedy only; NULL: none): the chosen id becomes the next step's token, at position next, so the
 * runtime can queue that step before the host has seen the id (runtime/cuda.c, look-ahead). */
extern "C" __global__ void __launch_bounds__(QK_TOPK_THREADS)
    qk_topk(const float *__restrict__ x, int n, int k, float *__restrict__ val, int *__restrict__ idx, int *st,
            int next) {
    __shared__ unsigned hist[256];
    __shared__ int sh[2], cnt;
    __shared__ float cv[QK_TOPK_MAX];
    __shared__ int ci[QK_TOPK_MAX];
    __shared__ unsigned long long best;
    QK_DEP();
    if (k == 1) { /* greedy: one pass, max of (key, ~index) */
        if (threadIdx.x == 0) best = 0;
        __syncthreads();
        unsigned long long m = 0;
        for (int i = threadIdx.x; i < n; i += blockDim.x) {
            unsigned long long v = (unsigned long long)qk_okey(x[i]) << 32 | (unsigned long long)~(unsigned)i;
            m = v > m ? v : m;
        }
        atomicMax(&best, m);
        __syncthreads();
        if (threadIdx.x == 0) {
            const int i = (int)~(unsigned)(best & 0xffffffffull);
            val[0] = x[i];
            idx[0] = i;
            if (st) st[QK_ST_N] = 1, st[QK_ST_POS] = next, st[QK_ST_TOK] = i;
        }
        return;
    }
    int need;
    const unsigned t = qk_select(x, n, k, 0, 0, hist, sh, &need);
    int one;
    const unsigned t2 = qk_select(x, n, need, t, 1, hist, sh, &one); /* lowest indices among the ties */
    if (threadIdx.x == 0) cnt = 0;
    __syncthreads();
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        unsigned ok = qk_okey(x[i]);
        if (ok > t || (ok == t && ~(unsigned)i >= t2)) {
            int s = atomicAdd(&cnt, 1);
            if (s < k) cv[s] = x[i], ci[s] = i;
        }
    }
    __syncthreads();
    for (int a = threadIdx.x; a < k; a += blockDim.x) {
        const unsigned ka = qk_okey(cv[a]);
        const int ia = ci[a];
        int r = 0;
        for (int b = 0; b < k; b++) {
            unsigned kb = qk_okey(cv[b]);
            r += kb > ka || (kb == ka && ci[b] < ia);
        }
        val[r] = cv[a];
        idx[r] = ia;
    }
}

/* ---- instantiations per weight dtype (QK_NEED_<dt> set by qcc) ---- */

/* GEMV entry points: gemv_mma for packed and f16 weights, gemv_core for
 * f32 and bf16 (and for every dtype when QK_GEMV_FAST is 2). */
#define QK_MMA_DT(DT) (QK_GEMV_FAST != 2 && DT != QK_F32 && DT != QK_BF16)
/* A kernel's warps per block (qcc emits 0: the module's QK_GEMV_WARPS; or fewer, codegen/cuda/cuda_gen.c
 * gemv_warps_for), its launch bounds: as many blocks per SM more, so at most as many registers a thread. */
#define QK_GW(W) ((W) ? (W) : QK_GEMV_WARPS)
#define QK_GEMV_BOUNDS_W(DT, W)                                                                          \
    __launch_bounds__(QK_MMA_DT(DT) ? QK_GW(W) * 32 : QK_LGEMV_WARPS * 32,                               \
                      QK_MMA_DT(DT) ? QK_GEMV_MINB * (QK_GEMV_WARPS / QK_GW(W) > 1 ? QK_GEMV_WARPS / QK_GW(W) : 1) \
                                    : 1)
#define QK_GEMV_BOUNDS(DT) QK_GEMV_BOUNDS_W(DT, 0)
template <int DT, int B, bool MMA, int W = QK_GEMV_WARPS>
struct qk_gemv_sel {
    static __device__ __forceinline__ void run(const u8 *w, const float *bias, const float *x, float *y, int rows, int sv,
                                               int K, int N, int g, int sym, float *res = NULL) {
        const int m = ((N + 15) / 16 + gridDim.x - 1) / gridDim.x; /* tiles per block */
        gemv_mma<DT, B, QK_MX_PLAIN, QK_F32, W>(w, bias, x, y, rows, sv, K, N, g, sym, blockIdx.x * m, m, NULL, NULL,
                                                res);
    }
};
template <int DT, int B, int W>
struct qk_gemv_sel<DT, B, false, W> {
    static __device__ __forceinline__ void run(const u8 *w, const float *bias, const float *x, float *y, int rows, int sv,
                                               int K, int N, int g, int sym, float *res = NULL) {
        gemv_core<DT, B>(w, bias, x, y, rows, sv, K, N, g, sym, res);
    }
};
#define QK_GEMV_RUN(DT, B) qk_gemv_sel<DT, B, QK_MMA_DT(DT)>::run
#define QK_GEMV_RUN_W(DT, B, W) qk_gemv_sel<DT, B, QK_MMA_DT(DT), QK_GW(W)>::run

#define QK_DEF_LINEAR(name, DT)                                                                          \
    extern "C" __global__ void QK_GEMV_BOUNDS(DT)                                                        \
        qk_gemv_##name##_b1(const u8 *w, const float *bias, const float *x, float *y, int rows, int sv,  \
                            int K, int N, int g, int sym) {                                              \
        QK_GEMV_RUN(DT, 1)(w, bias, x, y, rows, sv, K, N, g, sym);                                       \
    }                                                                                                    \
    extern "C" __global__ void QK_GEMV_BOUNDS(DT)                                                        \
        qk_gemv_##name##_b4(const u8 *w, const float *bias, const float *x, float *y, int rows, int sv,  \
                            int K, int N, int g, int sym) {                                              \
        QK_GEMV_RUN(DT, 4)(w, bias, x, y, rows, sv, K, N, g, sym);                                       \
    }                                                                                                    \
    extern "C" __global__ void __launch_bounds__(256)                                                    \
        qk_gemm_##name(const u8 *w, const float *bias, const float *x, float *y, int T, int K, int N,    \
                       int g, int sym) {                                                                 \
        QK_DEP();                                                                                        \
        gemm_core<DT>(w, bias, x, y, T, K, N, g, sym);                                                   \
    }
#define QK_DEF_QGEMMS(name, DT, NT, TM) /* TM = 8 NT tokens at most */                                 \
    extern "C" __global__ void __launch_bounds__(256, QK_QS_MINB(NT))                                    \
        qk_qgemm_##name##_t##TM(const u8 *w, const float *bias, const u16 *xp, float *y, int T, int K,   \
                                int N, int g, int sym) {                                                 \
        qgemms_core<DT, NT>(w, bias, xp, y, T, K, N, g, sym);                                            \
    }
#define QK_DEF_DEQUANT(name, DT)                                                                         \
    extern "C" __global__ void qk_dequant_##name(u16 *out, const u8 *w, int n0, int nn, int K, int N,    \
                                                 int g, int sym) {                                       \
        QK_DEP();                                                                                        \
        dequant_core<DT>(out, w, n0, nn, K, N, g, sym);                                                  \
    }                                                                                                    \
    extern "C" __global__ void __launch_bounds__(256, 2)                                                 \
        qk_qgemm_##name(const u8 *w, const float *bias, const u16 *xp, float *y, int T, int K, int N,    \
                        int g, int sym) {                                                                \
        qgemm_core<DT>(w, bias, xp, y, T, K, N, g, sym);                                                 \
    }                                                                                                    \
    QK_DEF_QGEMMS(name, DT, 1, 8)                                                                        \
    QK_DEF_QGEMMS(name, DT, 2, 16)                                                                       \
    QK_DEF_QGEMMS(name, DT, 4, 32)                                                                       \
    QK_DEF_QGEMMS(name, DT, 8, 64)

#if QK_NEED_F32
QK_DEF_LINEAR(f32, QK_F32)
#endif
#if QK_NEED_F16
QK_DEF_LINEAR(f16, QK_F16)
#endif
#if QK_NEED_BF16
QK_DEF_LINEAR(bf16, QK_BF16)
#endif
#if QK_NEED_Q2
QK_DEF_LINEAR(q2, QK_Q2)
QK_DEF_DEQUANT(q2, QK_Q2)
#endif
#if QK_NEED_Q3
QK_DEF_LINEAR(q3, QK_Q3)
QK_DEF_DEQUANT(q3, QK_Q3)
/* Every 32-value block of a 3-bit [N, K] weight to the device layout
 * (qk_q3w3), in place: runtime/cuda.c runs it once per weight before the
 * weight's first use and waits for it. */
extern "C" __global__ void qk_repack_q3(u8 *w, int K, int N) {
    QK_DEP();
    const qk_qlayout l = qk_qlayout_make(3, K, N, K);
    const size_t nb = (size_t)(K + 31) / 32, total = (size_t)N * nb;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const size_t n = i / nb, b = i - n * nb;
        u32 *p = (u32 *)(w + n * l.row_bytes + 12 * b);
        u32 w0 = p[0], w1 = p[1], w2 = p[2];
        qk_q3_repack(w0, w1, w2);
        p[0] = w0, p[1] = w1, p[2] = w2;
    }
}
#endif
#if QK_NEED_Q4
QK_DEF_LINEAR(q4, QK_Q4)
QK_DEF_DEQUANT(q4, QK_Q4)
#endif
#if QK_NEED_Q8
QK_DEF_LINEAR(q8, QK_Q8)
QK_DEF_DEQUANT(q8, QK_Q8)
#endif

/* ---- W8A8 (QRT_DT_I8, SmoothQuant; docs/formats.md) ----
 * Weight: int8 codes [N, Kp] (Kp = K rounded up to 32, zero past K), then
 * f32 scales sw[N]. A token's x is quantized as the CPU does it
 * (qrt_i8_quantize_act): amax = max |x|, inv = 127 / amax, xq = clamp(rint(
 * x * inv), -127, 127), sa = amax / 127; the product is exact in int32
 * (dp4a here, cuBLAS's int8 GEMM for prefill), and y = ((float)acc * sa) *
 * sw[n] (+ bias) is rounded as on the CPU: the same bits, given the same x. */

/* max |x| of one token over the block; every thread gets it. red: 32 floats. */
__device__ __forceinline__ float qk_i8_amax(const float *x, int K, float *red) {
    float m = 0.0f;
    for (int k = threadIdx.x; k < K; k += blockDim.x) m = fmaxf(m, fabsf(x[k]));
    return qk_block_max(m, red);
}
__device__ __forceinline__ signed char qk_i8_q(float v, float inv) {
    const float r = rintf(__fmul_rn(v, inv));
    return (signed char)(r > 127.0f ? 127.0f : r < -127.0f ? -127.0f : r);
}
__device__ __forceinline__ float qk_i8_out(int acc, float sa, float sw, const float *bias, int n) {
    const float v = __fmul_rn(__fmul_rn((float)acc, sa), sw);
    return bias ? __fadd_rn(v, bias[n]) : v;
}

#if QK_NEED_I8
/* Token blockIdx.x of x [T, K] to xq [T, Kp] and sa [T]: before the GEMV
 * (up to 8 tokens) or cuBLAS's int8 GEMM (more). */
extern "C" __global__ void __launch_bounds__(1024) qk_i8_quant(const float *x, signed char *xq, float *sa, int K) {
    __shared__ float red[32];
    QK_DEP();
    const int Kp = (K + 31) & ~31;
    const float *xr = x + (size_t)blockIdx.x * K;
    const float amax = qk_i8_amax(xr, K, red), inv = amax > 0.0f ? __fdiv_rn(127.0f, amax) : 0.0f;
    signed char *q = xq + (size_t)blockIdx.x * Kp;
    for (int k = threadIdx.x; k < Kp; k += blockDim.x) q[k] = k < K ? qk_i8_q(xr[k], inv) : (signed char)0;
    if (threadIdx.x == 0) sa[blockIdx.x] = __fdiv_rn(amax, 127.0f);
}
/* After cuBLAS: y [T, N] from the int32 products acc [T, N]. */
extern "C" __global__ void qk_i8_scale(const int *acc, const float *sa, const u8 *w, const float *bias, float *y,
                                       int T, int K, int N) {
    QK_DEP();
    const int Kp = (K + 31) & ~31;
    const float *sw = (const float *)(w + (size_t)N * Kp);
    const size_t total = (size_t)T * N;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const int t = (int)(i / N), n = (int)(i - (size_t)t * N);
        y[i] = qk_i8_out(acc[i], sa[t], sw[n], bias, n);
    }
}
/* GEMV over rows <= B quantized tokens (xq, sa from qk_i8_quant): the
 * block copies them to shared memory (B * Kp bytes, runtime/cuda.c asks for
 * them), each warp takes R weight rows at a time (grid-stride), 16 bytes
 * per lane and load, U loads per row in flight, 4 dp4a per load and token,
 * warp sums in a fixed order. The first loads of weights (constant) are
 * issued before the dependency wait. */
#define QK_I8_R 2
#define QK_I8_U 8
__device__ __forceinline__ void qk_i8_load(uint4 (&wv)[QK_I8_R][QK_I8_U], const u8 *__restrict__ w, int n0, int k0,
                                           int N, int Kp) {
#pragma unroll
    for (int r = 0; r < QK_I8_R; r++)
#pragma unroll
        for (int u = 0; u < QK_I8_U; u++) {
            const int k = k0 + 512 * u;
            wv[r][u] = n0 + r < N && k < Kp ? qk_ld_stream(w + (size_t)(n0 + r) * Kp + k) : make_uint4(0, 0, 0, 0);
        }
}
template <int B>
__device__ __forceinline__ void gemv_i8(const u8 *__restrict__ w, const float *__restrict__ bias,
                                        const signed char *__restrict__ xq, const float *__restrict__ sa,
                                        float *__restrict__ y, int rows, int K, int N) {
    __shared__ float sas[B];
    signed char *xs = (signed char *)qk_smem4;
    const int Kp = (K + 31) & ~31, lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    const int stride = gridDim.x * nw * QK_I8_R;
    const float *sw = (const float *)(w + (size_t)N * Kp);
    int n0 = (blockIdx.x * nw + warp) * QK_I8_R;
    uint4 wv[QK_I8_R][QK_I8_U];
    qk_i8_load(wv, w, n0, 16 * lane, N, Kp);
    QK_DEP();
    const int nv = B * Kp / 16, live = rows * Kp / 16;
    for (int i = threadIdx.x; i < nv; i += blockDim.x)
        ((uint4 *)xs)[i] = i < live ? ((const uint4 *)xq)[i] : make_uint4(0, 0, 0, 0);
    if (threadIdx.x < B) sas[threadIdx.x] = (int)threadIdx.x < rows ? sa[threadIdx.x] : 0.0f;
    __syncthreads();
    for (; n0 < N; n0 += stride) {
        int acc[QK_I8_R][B];
#pragma unroll
        for (int r = 0; r < QK_I8_R; r++)
#pragma unroll
            for (int b = 0; b < B; b++) acc[r][b] = 0;
        for (int k0 = 16 * lane; k0 < Kp;) {
#pragma unroll
            for (int u = 0; u < QK_I8_U; u++) {
                const int k = k0 + 512 * u;
                if (k >= Kp) break;
#pragma unroll
                for (int b = 0; b < B; b++) {
                    const uint4 xv = *(const uint4 *)(xs + b * Kp + k);
#pragma unroll
                    for (int r = 0; r < QK_I8_R; r++) {
                        acc[r][b] = __dp4a((int)wv[r][u].x, (int)xv.x, acc[r][b]);
                        acc[r][b] = __dp4a((int)wv[r][u].y, (int)xv.y, acc[r][b]);
                        acc[r][b] = __dp4a((int)wv[r][u].z, (int)xv.z, acc[r][b]);
                        acc[r][b] = __dp4a((int)wv[r][u].w, (int)xv.w, acc[r][b]);
                    }
                }
            }
            k0 += 512 * QK_I8_U;
            if (k0 < Kp) qk_i8_load(wv, w, n0, k0, N, Kp);
        }
        if (n0 + stride < N) qk_i8_load(wv, w, n0 + stride, 16 * lane, N, Kp); /* the next rows, before the sums */
#pragma unroll
        for (int r = 0; r < QK_I8_R; r++)
#pragma unroll
            for (int b = 0; b < B; b++) {
                int v = acc[r][b];
#pragma unroll
                for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(QK_FULL, v, o);
                const int n = n0 + r;
                if (lane == 0 && n < N && b < rows) y[(size_t)b * N + n] = qk_i8_out(v, sas[b], sw[n], bias, n);
            }
    }
}
extern "C" __global__ void __launch_bounds__(256) qk_gemv_i8_b1(const u8 *w, const float *bias, const signed char *xq,
                                                                const float *sa, float *y, int rows, int K, int N) {
    gemv_i8<1>(w, bias, xq, sa, y, rows, K, N);
}
extern "C" __global__ void __launch_bounds__(256) qk_gemv_i8_b4(const u8 *w, const float *bias, const signed char *xq,
                                                                const float *sa, float *y, int rows, int K, int N) {
    gemv_i8<4>(w, bias, xq, sa, y, rows, K, N);
}
#endif

/* Two or three linears that read the same x (q / k / v, gate / up), one
 * launch, batch 1: the first ceil(T0 / m) blocks do linear 0's tiles of 16
 * rows (T0 = ceil(N0 / 16)), m per block, the next ones linear 1's, then
 * linear 2's (N2 = 0: two linears). runtime/cuda.c merges consecutive
 * linears into this when qcc emitted the matching qk_gemvm_* kernel. */
template <int DT, int MODE = QK_MX_PLAIN, int NDT = QK_F32, int W = QK_GEMV_WARPS>
__device__ __forceinline__ void gemv_multi(const u8 *w0, const u8 *w1, const u8 *w2, const float *b0, const float *b1,
                                           const float *b2, const float *x, float *y0, float *y1, float *y2, int rows,
                                           int sv, int m, int K, int N0, int N1, int N2, int g, int sym,
                                           const void *nw = NULL, float eps = 0.0f, float *xo = NULL) {
    const int nb0 = ((N0 + 15) / 16 + m - 1) / m, nb1 = ((N1 + 15) / 16 + m - 1) / m;
    int b = blockIdx.x, N = N0;
    const u8 *w = w0;
    const float *bias = b0;
    float *y = y0;
    if (b >= nb0) { /* one body for all three (N becomes a run-time value) */
        b -= nb0, w = w1, bias = b1, y = y1, N = N1;
        if (b >= nb1) b -= nb1, w = w2, bias = b2, y = y2, N = N2;
    }
    /* (xo: written by the launch's block 0, gemv_mma) */
    gemv_mma<DT, 1, MODE, NDT, W>(w, bias, x, y, rows, sv, K, N, g, sym, b * m, m, NULL, xo, NULL, nw, eps);
}
#define QK_GEMV_MULTI(name, DT, K, G, SYM, N0, N1, N2, W)                                                 \
    extern "C" __global__ void QK_GEMV_BOUNDS_W(DT, W)                                                   \
        name(const u8 *w0, const u8 *w1, const u8 *w2, const float *b0, const float *b1, const float *b2, \
             const float *x, float *y0, float *y1, float *y2, int rows, int sv, int m) {                 \
        gemv_multi<DT, QK_MX_PLAIN, QK_F32, QK_GW(W)>(w0, w1, w2, b0, b1, b2, x, y0, y1, y2, rows, sv, m, K, N0, \
                                                     N1, N2, G, SYM);                                    \
    }
/* The same with the RMSNorm that made x (weight of dtype NDT) in the
 * prologue: x is the norm's input, xo its output (runtime/cuda.c). */
#define QK_GEMV_MULTIN(name, DT, K, G, SYM, N0, N1, N2, NDT, W)                                           \
    extern "C" __global__ void QK_GEMV_BOUNDS_W(DT, W)                                                   \
        name(const u8 *w0, const u8 *w1, const u8 *w2, const float *b0, const float *b1, const float *b2, \
             const float *x, float *y0, float *y1, float *y2, int rows, int sv, int m, const void *nw,   \
             float eps, float *xo) {                                                                     \
        gemv_multi<DT, QK_MX_NORM, NDT, QK_GW(W)>(w0, w1, w2, b0, b1, b2, x, y0, y1, y2, rows, sv, m, K, N0, N1, \
                                                 N2, G, SYM, nw, eps, xo);                               \
    }

/* Two linears of one shape on one x whose outputs a SILU_MUL multiplies
 * (gate / up), one launch, batch 1: tiles of 8 rows of each (gemv_mma PAIR),
 * m per block; y0, y1 the linears' outputs, yp = silu(y0) * y1. PAIRN: with
 * the RMSNorm that made x in the prologue, as QK_GEMV_MULTIN. */
template <int DT, int MODE = QK_MX_PLAIN, int NDT = QK_F32, int W = QK_GEMV_WARPS>
__device__ __forceinline__ void gemv_pair(const u8 *w0, const u8 *w1, const float *b0, const float *b1, const float *x,
                                          float *y0, float *y1, float *yp, int rows, int sv, int m, int K, int N, int g,
                                          int sym, const void *nw = NULL, float eps = 0.0f, float *xo = NULL) {
    gemv_mma<DT, 1, MODE, NDT, W, 1>(w0, b0, x, y0, rows, sv, K, N, g, sym, blockIdx.x * m, m, NULL, xo, NULL, nw, eps,
                                     w1, b1, y1, yp);
}
#define QK_GEMV_PAIR(name, DT, K, G, SYM, N, W)                                                          \
    extern "C" __global__ void QK_GEMV_BOUNDS_W(DT, W)                                                   \
        name(const u8 *w0, const u8 *w1, const float *b0, const float *b1, const float *x, float *y0, float *y1, \
             float *yp, int rows, int sv, int m) {                                                       \
        gemv_pair<DT, QK_MX_PLAIN, QK_F32, QK_GW(W)>(w0, w1, b0, b1, x, y0, y1, yp, rows, sv, m, K, N, G, SYM); \
    }
#define QK_GEMV_PAIRN(name, DT, K, G, SYM, N, NDT, W)                                                    \
    extern "C" __global__ void QK_GEMV_BOUNDS_W(DT, W)                                                   \
        name(const u8 *w0, const u8 *w1, const float *b0, const float *b1, const float *x, float *y0, float *y1, \
             float *yp, int rows, int sv, int m, const void *nw, float eps, float *xo) {                 \
        gemv_pair<DT, QK_MX_NORM, NDT, QK_GW(W)>(w0, w1, b0, b1, x, y0, y1, yp, rows, sv, m, K, N, G, SYM, nw, eps, \
                                                xo);                                                     \
    }

/* A batch-1 GEMV whose input is silu(x) * x2 (the SILU_MUL before it, fused
 * by runtime/cuda.c), also written to xo by block 0; res: see gemv_mma. */
#define QK_GEMV_SILU(name, DT, K, N, G, SYM)                                                             \
    extern "C" __global__ void QK_GEMV_BOUNDS(DT)                                                        \
        name(const u8 *w, const float *bias, const float *x, const float *x2, float *xo, float *y, int rows, \
             int sv, float *res) {                                                                       \
        const int m = ((N + 15) / 16 + gridDim.x - 1) / gridDim.x;                                       \
        gemv_mma<DT, 1, QK_MX_SILU>(w, bias, x, y, rows, sv, K, N, G, SYM, blockIdx.x * m, m, x2, xo, res); \
    }

/* Shape-specialized GEMV: qcc appends QK_GEMV_SPEC(...) lines below. */
#define QK_GEMV_SPEC(name, DT, B, K, N, G, SYM, W)                                                       \
    extern "C" __global__ void QK_GEMV_BOUNDS_W(DT, W)                                                   \
        name(const u8 *w, const float *bias, const float *x, float *y, int rows, int sv, float *res) {   \
        QK_GEMV_RUN_W(DT, B, W)(w, bias, x, y, rows, sv, K, N, G, SYM, res);                             \
    }
