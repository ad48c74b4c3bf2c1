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
 *   qk_embed_<dt> qk_rmsnorm_<dt> qk_rope qk_kv_append_<kv> qk_attn_<kv>
 *   qk_attn_combine qk_silu_mul qk_add qk_add_bias qk_to_f16 qk_to_bf16
 *   qk_gemv_<dt>_b1, _b4       GEMV for 1 / up to 4 rows, shape in the arguments
 *   qk_gemv_<dt>_k<K>_n<N>_g<G>_<s|a>_b1   batch 1 with the shape baked in
 *   qk_gemm_<dt>               tiled GEMM for rows > 8 (no cuBLAS)
 *   qk_dequant_<dt>            packed weight rows -> f16 (cuBLAS prefill)
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

/* Launch shape of the GEMV; the runtime reads the values a module was
 * compiled with from the blob header (qrt_cuda_blob in runtime/cuda.c). */
#ifndef QK_GEMV_WARPS
#define QK_GEMV_WARPS 8 /* warps per block */
#endif
#ifndef QK_GEMV_LOADS
#define QK_GEMV_LOADS 8 /* 16-byte loads per lane and item: rows per warp = LOADS / loads per piece */
#endif
#ifndef QK_GEMV_XS
#define QK_GEMV_XS 16384 /* floats of x staged in shared memory per block (all batch rows) */
#endif
#ifndef QK_GEMV_PIPE
#define QK_GEMV_PIPE 1 /* load the next item while computing this one (two register buffers) */
#endif
#ifndef QK_GEMV_MINB
#define QK_GEMV_MINB 1 /* __launch_bounds__ minimum blocks per SM (caps registers) */
#endif
#ifndef QK_GEMV_FAST
#define QK_GEMV_FAST 0 /* 1: codes as 0.5 + q/256 floats (one op less per weight, ~1e-6 rel. error) */
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
    static const int R = QK_GEMV_LOADS / U > 0 ? QK_GEMV_LOADS / U : 1; /* rows per warp */
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

/* Weight (n, k) as f32: scale * (code - zero), exactly as the CPU reference
 * (qrt_qdequant_row_ref); for float formats the stored value. */
template <int DT>
__device__ __forceinline__ float qk_wval(const u8 *w, int n, int k, int K, int N, int g, int sym) {
    typedef qk_fmt<DT> F;
    if (!F::bits) return qk_ld<DT>(w, (size_t)n * K + k);
    const qk_qlayout l = qk_qlayout_make(F::bits, K, N, g);
    const u32 *bw = (const u32 *)(w + (size_t)n * l.row_bytes + (size_t)4 * F::bits * (k >> 5));
    const int j = k & 31;
    u32 q;
    if (F::bits == 3)
        q = ((__ldg(bw + (j >> 4)) >> (2 * (j & 15))) & 3) | ((__ldg(bw + 2) >> j) & 1) << 2;
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
                const u32 v = word(r, h);
                /* 3 bits: bit 2 of value j is bit j of word 2; spread the half's
                 * 16 bits so that byte m, bit s + 2 holds value 4m + s's. */
                const u32 hb = BITS == 3 ? qk_spread4(word(r, 2) >> (16 * h)) << 2 : 0u;
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
    const int fast = QK_GEMV_FAST && F::bits <= 4;
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
            qk_block_dot<F::bits, R, B, QK_GEMV_FAST && F::bits <= 4>(ba, xsum, word, xu + 32 * j, xstride, zf);
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
                                           int n0, int N, int rows) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int r = 0; r < R; r++) {
        const int n = n0 + r;
#pragma unroll
        for (int b = 0; b < B; b++) {
            const float v = qk_warp_sum(acc[r][b]);
            if (lane == 0 && n < N && b < rows) y[(size_t)b * N + n] = v + (bias ? bias[n] : 0.0f);
            acc[r][b] = 0.0f;
        }
    }
}

template <int DT, int B>
__device__ __forceinline__ void gemv_core(const u8 *__restrict__ w, const float *__restrict__ bias,
                                          const float *__restrict__ x, float *__restrict__ y,
                                          int rows, int sv, int K, int N, int g, int sym) {
    typedef qk_fmt<DT> F;
    const int R = F::R, CH = F::CH, W = QK_GEMV_WARPS;
    extern __shared__ float4 qk_smem4[];
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
        if (!QK_GEMV_PIPE) { /* one buffer: loads of an item, then its compute */
            for (; rg < NG; rg += TW) {
                for (c = 0; c < NC; c++) {
                    if (c || rg != blockIdx.x * W + warp) gemv_load<DT>(nx, w, l, vec_rows, rg * R, c * CH, K, N, g, sym);
                    gemv_compute<DT, B>(acc, nx, xs, xstride, c * CH, c * CH, w, vec_rows, rg * R, K, N, g, sym);
                }
                gemv_store<R, B>(acc, y, bias, rg * R, N, rows);
            }
            return;
        }
        while (rg < NG) {
            const qk_buf<DT> cur = nx;
            int rg2 = rg, c2 = c + 1;
            if (c2 == NC) c2 = 0, rg2 += TW;
            if (rg2 < NG) gemv_load<DT>(nx, w, l, vec_rows, rg2 * R, c2 * CH, K, N, g, sym);
            gemv_compute<DT, B>(acc, cur, xs, xstride, c * CH, c * CH, w, vec_rows, rg * R, K, N, g, sym);
            if (c == NC - 1) gemv_store<R, B>(acc, y, bias, rg * R, N, rows);
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
    if (rg < NG) gemv_store<R, B>(acc, y, bias, rg * R, N, rows);
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

/* Rows [n0, n0 + nn) of a packed weight to f16 [nn, K] (cuBLAS prefill). */
template <int DT>
__device__ __forceinline__ void dequant_core(u16 *out, const u8 *w, int n0, int nn, int K, int N, int g,
                                             int sym) {
    const size_t total = (size_t)nn * K;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const int r = (int)(i / K), k = (int)(i - (size_t)r * K);
        out[i] = qk_f2h(qk_wval<DT>(w, n0 + r, k, K, N, g, sym));
    }
}

/* ---- the other ops ---- */

template <int DT>
__device__ __forceinline__ void embed_core(float *out, const void *w, const int *st, int dim, int vocab) {
    const int t = blockIdx.x;
    int id = st[QK_ST_TOK + t];
    if (id < 0 || id >= vocab) id = 0; /* ids are validated by the caller */
    for (int i = threadIdx.x; i < dim; i += blockDim.x) out[(size_t)t * dim + i] = qk_ld<DT>(w, (size_t)id * dim + i);
}

template <int DT>
__device__ __forceinline__ void rmsnorm_core(float *out, const float *a, const void *w, int dim, float eps) {
    __shared__ float red[32];
    const int t = blockIdx.x;
    const float *x = a + (size_t)t * dim;
    float *y = out + (size_t)t * dim;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) ss += x[i] * x[i];
    ss = qk_block_sum(ss, red);
    const float r = 1.0f / sqrtf(ss / (float)dim + eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x) y[i] = w ? x[i] * r * qk_ld<DT>(w, i) : x[i] * r;
}

#define QK_FLOAT_DTS(X) X(f32, QK_F32) X(f16, QK_F16) X(bf16, QK_BF16)
#define QK_DEF_EMBED_NORM(name, DT)                                                                     \
    extern "C" __global__ void qk_embed_##name(float *out, const void *w, const int *st, int dim,       \
                                               int vocab) {                                             \
        embed_core<DT>(out, w, st, dim, vocab);                                                          \
    }                                                                                                   \
    extern "C" __global__ void qk_rmsnorm_##name(float *out, const float *a, const void *w, int dim,    \
                                                 float eps) {                                           \
        rmsnorm_core<DT>(out, a, w, dim, eps);                                                           \
    }
QK_FLOAT_DTS(QK_DEF_EMBED_NORM)

/* Rotate-half RoPE in place on x[T, heads * hd]; grid (T, heads). inv:
 * hd / 2 inverse frequencies computed by the runtime exactly as the CPU
 * kernel does (1 / powf(theta, 2i / hd)). */
extern "C" __global__ void qk_rope(float *x, const int *st, const float *inv, int heads, int hd) {
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
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        out[i] = a[i] / (1.0f + expf(-a[i])) * b[i];
}

extern "C" __global__ void qk_add(float *out, const float *a, const float *b, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) out[i] = a[i] + b[i];
}

extern "C" __global__ void qk_add_bias(float *y, const float *bias, int T, int N) {
    const size_t n = (size_t)T * N;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] += bias[i % N];
}

extern "C" __global__ void qk_to_f16(u16 *out, const float *in, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) out[i] = qk_f2h(in[i]);
}
extern "C" __global__ void qk_to_bf16(u16 *out, const float *in, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) out[i] = qk_f2bf(in[i]);
}

/* ---- attention ----
 * KV cache of one layer: [n_ctx, kv_heads * hd], f32 or f16 (KVT 0 / 1).
 * kv_append writes this step's k, v at positions pos .. pos + T - 1. */
template <int KVT>
__device__ __forceinline__ float4 qk_ld4kv(const void *base, size_t i) { /* elements i .. i+3, i % 4 == 0 */
    if (KVT == 0) return *(const float4 *)((const float *)base + i);
    const uint2 u = *(const uint2 *)((const u16 *)base + i);
    return make_float4(qk_h2f((u16)(u.x & 0xffff)), qk_h2f((u16)(u.x >> 16)), qk_h2f((u16)(u.y & 0xffff)),
                       qk_h2f((u16)(u.y >> 16)));
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

/* Causal attention of query token t (grid z), head h (grid x) over the
 * positions of split s (grid y): [s * chunk, min((s + 1) * chunk, pos + t + 1)).
 * Online softmax over tiles of QK_ATT_TILE positions. With one split the
 * block writes the output; else (m, l, unnormalized o) go to part[T, heads,
 * nsplit, hd + 4] for qk_attn_combine. hd % 4 == 0, hd <= 4 * QK_ATT_THREADS. */
#define QK_ATT_THREADS 128
#define QK_ATT_TILE 64
template <int KVT>
__device__ __forceinline__ void attn_core(const float *q, const void *kc, const void *vc, float *out, float *part,
                                          const int *st, int heads, int kvh, int hd, int chunk, int nsplit) {
    __shared__ float4 qs[QK_ATT_THREADS];
    __shared__ float4 red4[QK_ATT_THREADS];
    __shared__ float ps[QK_ATT_TILE];
    __shared__ float red[32];
    const int h = blockIdx.x, s = blockIdx.y, t = blockIdx.z, tid = threadIdx.x;
    const int kh = h / (heads / kvh), kvd = kvh * hd, nq = hd / 4;
    const int last = st[QK_ST_POS] + t;
    const int j0 = s * chunk, j1 = min(j0 + chunk, last + 1);
    const float scale = 1.0f / sqrtf((float)hd);
    const float4 *qh = (const float4 *)(q + ((size_t)t * heads + h) * hd);
    for (int i = tid; i < nq; i += QK_ATT_THREADS) qs[i] = qh[i];
    __syncthreads();
    int lg = 1; /* lanes per position for the scores: a power of two covering nq, at most 32 */
    while (lg < nq && lg < 32) lg <<= 1;
    const int ngroups = QK_ATT_THREADS / lg, grp = tid / lg, gl = tid % lg;
    const int npg = QK_ATT_THREADS / nq, pg = tid / nq, dq = tid % nq; /* output: dim quad, position group */
    float m = QK_NEG_INF, l = 0.0f;
    float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    const size_t hoff = (size_t)kh * hd;
    for (int jt = j0; jt < j1; jt += QK_ATT_TILE) {
        const int n = min(QK_ATT_TILE, j1 - jt);
        for (int p0 = 0; p0 < n; p0 += ngroups) { /* uniform trip count: shuffles below */
            const int p = p0 + grp;
            float d = 0.0f;
            if (p < n) {
                const size_t base = (size_t)(jt + p) * kvd + hoff;
                for (int i = gl; i < nq; i += lg) {
                    const float4 kk = qk_ld4kv<KVT>(kc, base + 4 * i), qq = qs[i];
                    d += qq.x * kk.x + qq.y * kk.y + qq.z * kk.z + qq.w * kk.w;
                }
            }
            for (int o = lg >> 1; o; o >>= 1) d += __shfl_xor_sync(QK_FULL, d, o);
            if (p < n && gl == 0) ps[p] = d * scale;
        }
        __syncthreads();
        float tm = QK_NEG_INF;
        for (int i = tid; i < n; i += QK_ATT_THREADS) tm = fmaxf(tm, ps[i]);
        tm = qk_block_max(tm, red);
        const float mn = fmaxf(m, tm), corr = expf(m - mn);
        float ls = 0.0f;
        for (int i = tid; i < n; i += QK_ATT_THREADS) {
            const float e = expf(ps[i] - mn);
            ps[i] = e;
            ls += e;
        }
        ls = qk_block_sum(ls, red); /* its barriers publish ps */
        l = l * corr + ls;
        m = mn;
        acc.x *= corr, acc.y *= corr, acc.z *= corr, acc.w *= corr;
        if (pg < npg)
            for (int p = pg; p < n; p += npg) {
                const float4 vv = qk_ld4kv<KVT>(vc, (size_t)(jt + p) * kvd + hoff + 4 * dq);
                const float e = ps[p];
                acc.x = fmaf(e, vv.x, acc.x), acc.y = fmaf(e, vv.y, acc.y);
                acc.z = fmaf(e, vv.z, acc.z), acc.w = fmaf(e, vv.w, acc.w);
            }
        __syncthreads(); /* ps is rewritten by the next tile */
    }
    red4[tid] = acc;
    __syncthreads();
    if (tid < nq) {
        float4 o = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        for (int i = 0; i < npg; i++) {
            const float4 a = red4[i * nq + tid];
            o.x += a.x, o.y += a.y, o.z += a.z, o.w += a.w;
        }
        if (nsplit == 1) {
            const float inv = 1.0f / l;
            o.x *= inv, o.y *= inv, o.z *= inv, o.w *= inv;
            ((float4 *)(out + ((size_t)t * heads + h) * hd))[tid] = o;
        } else {
            float *P = part + (((size_t)t * heads + h) * nsplit + s) * (hd + 4);
            if (tid == 0) P[0] = m, P[1] = l;
            ((float4 *)(P + 4))[tid] = o;
        }
    }
}

#define QK_DEF_ATTN(name, KVT)                                                                           \
    extern "C" __global__ void qk_kv_append_##name(const float *k, const float *v, void *kc, void *vc,    \
                                                   const int *st, int kvd, int T) {                       \
        kv_append_core<KVT>(k, v, kc, vc, st, kvd, T);                                                   \
    }                                                                                                    \
    extern "C" __global__ void __launch_bounds__(QK_ATT_THREADS)                                         \
        qk_attn_##name(const float *q, const void *kc, const void *vc, float *out, float *part,           \
                       const int *st, int heads, int kvh, int hd, int chunk, int nsplit) {               \
        attn_core<KVT>(q, kc, vc, out, part, st, heads, kvh, hd, chunk, nsplit);                         \
    }
QK_DEF_ATTN(f32, 0)
QK_DEF_ATTN(f16, 1)

/* Merges the splits of qk_attn_*: grid (heads, T), hd threads or fewer. */
extern "C" __global__ void qk_attn_combine(const float *part, float *out, int heads, int hd, int nsplit) {
    const int h = blockIdx.x, t = blockIdx.y, stride = hd + 4;
    const float *P = part + ((size_t)t * heads + h) * nsplit * stride;
    float M = QK_NEG_INF;
    for (int s = 0; s < nsplit; s++) M = fmaxf(M, P[s * stride]);
    float L = 0.0f;
    for (int s = 0; s < nsplit; s++) L += P[s * stride + 1] * expf(P[s * stride] - M);
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float o = 0.0f;
        for (int s = 0; s < nsplit; s++) o += expf(P[s * stride] - M) * P[s * stride + 4 + d];
        out[((size_t)t * heads + h) * hd + d] = o / L;
    }
}

/* ---- instantiations per weight dtype (QK_NEED_<dt> set by qcc) ---- */

#define QK_DEF_LINEAR(name, DT)                                                                          \
    extern "C" __global__ void __launch_bounds__(QK_GEMV_WARPS * 32, QK_GEMV_MINB)                                     \
        qk_gemv_##name##_b1(const u8 *w, const float *bias, const float *x, float *y, int rows, int sv,  \
                            int K, int N, int g, int sym) {                                              \
        gemv_core<DT, 1>(w, bias, x, y, rows, sv, K, N, g, sym);                                         \
    }                                                                                                    \
    extern "C" __global__ void __launch_bounds__(QK_GEMV_WARPS * 32, QK_GEMV_MINB)                                     \
        qk_gemv_##name##_b4(const u8 *w, const float *bias, const float *x, float *y, int rows, int sv,  \
                            int K, int N, int g, int sym) {                                              \
        gemv_core<DT, 4>(w, bias, x, y, rows, sv, K, N, g, sym);                                         \
    }                                                                                                    \
    extern "C" __global__ void __launch_bounds__(256)                                                    \
        qk_gemm_##name(const u8 *w, const float *bias, const float *x, float *y, int T, int K, int N,    \
                       int g, int sym) {                                                                 \
        gemm_core<DT>(w, bias, x, y, T, K, N, g, sym);                                                   \
    }
#define QK_DEF_DEQUANT(name, DT)                                                                         \
    extern "C" __global__ void qk_dequant_##name(u16 *out, const u8 *w, int n0, int nn, int K, int N,    \
                                                 int g, int sym) {                                       \
        dequant_core<DT>(out, w, n0, nn, K, N, g, sym);                                                  \
    }

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
#endif
#if QK_NEED_Q4
QK_DEF_LINEAR(q4, QK_Q4)
QK_DEF_DEQUANT(q4, QK_Q4)
#endif
#if QK_NEED_Q8
QK_DEF_LINEAR(q8, QK_Q8)
QK_DEF_DEQUANT(q8, QK_Q8)
#endif

/* Shape-specialized GEMV: qcc appends QK_GEMV_SPEC(...) lines below. */
#define QK_GEMV_SPEC(name, DT, B, K, N, G, SYM)                                                          \
    extern "C" __global__ void __launch_bounds__(QK_GEMV_WARPS * 32, QK_GEMV_MINB)                                     \
        name(const u8 *w, const float *bias, const float *x, float *y, int rows, int sv) {               \
        gemv_core<DT, B>(w, bias, x, y, rows, sv, K, N, G, SYM);                                         \
    }
