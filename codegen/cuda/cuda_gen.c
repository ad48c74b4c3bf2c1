/*
 * codegen/cuda/cuda_gen.c — the model's device code as CUDA C text.
 *
 * The source is kernels.cu (embedded into qcc at build time as
 * qc_cuda_kernels_cu, see embed.cmake) between a prologue of #defines and
 * an epilogue of specializations:
 *
 *   #define QK_GEMV_WARPS 16 ...        launch shape (also in the blob header)
 *   #define QK_NEED_Q4 1 ...            generic kernels for the dtypes in use
 *   <kernels.cu>
 *   QK_GEMV_SPEC(qk_gemv_q4_k4096_n4096_g128_a_b1, QK_Q4, 1, 4096, 4096, 128, 0)
 *   ...                                 one per distinct linear (batch 1: decode)
 *
 * so every constant of a layer (K, N, bits, group size, symmetry) is an
 * immediate in its GEMV. The kernel names the module defines are listed
 * beside it (for the blob and --info); test_cuda_nvrtc checks the list
 * against the compiled PTX.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc/cuda.h"

extern const unsigned char qc_cuda_kernels_cu[];
extern const size_t qc_cuda_kernels_cu_len;

/* Defaults of kernels.cu (the tensor-core GEMV, gemv_mma), repeated so the
 * blob header can carry them: warps per block, 16-byte weight loads per
 * lane in flight, floats of shared memory for the staged x. */
#define GEMV_WARPS 16
#define GEMV_LOADS 8
#define GEMV_XS 40960

/* Weight dtypes the GPU kernels take: qrt_dtype 0 .. NDT-1. */
#define NDT 8
static const char *const dt_names[NDT] = {"f32", "f16", "bf16", "q2", "q3", "q4", "q8", "i8"};
static const char *const dt_macros[NDT] = {"QK_F32", "QK_F16", "QK_BF16", "QK_Q2", "QK_Q3",
                                           "QK_Q4",  "QK_Q8",  "QK_I8"};

/* Kernels every module defines (kernels.cu outside the #if QK_NEED_*). */
static const char *const base_kernels[] = {
    "qk_embed_f32",     "qk_rmsnorm_f32",   "qk_add_rmsnorm_f32", "qk_embed_f16",     "qk_rmsnorm_f16",
    "qk_add_rmsnorm_f16", "qk_embed_bf16",  "qk_rmsnorm_bf16",  "qk_add_rmsnorm_bf16", "qk_rope",
    "qk_silu_mul",      "qk_add",           "qk_add_bias",      "qk_to_f16",        "qk_to_bf16",
    "qk_kv_append_f32", "qk_attn_f32",      "qk_rope_append_f32", "qk_kv_append_f16", "qk_attn_f16",
    "qk_rope_append_f16", "qk_attn_tile_f32", "qk_attn_tile_f16", "qk_attn_rope_f32", "qk_attn_rope_f16",
    "qk_attn_w_f32",    "qk_attn_w_f16",    "qk_attn_rope_w_f32", "qk_attn_rope_w_f16",
    "qk_attn_tc64_f32", "qk_attn_tc64_f16", "qk_attn_tc128_f32", "qk_attn_tc128_f16",
    "qk_topk",
};

typedef struct strbuf {
    char *p;
    size_t n, cap;
} strbuf;

static void sb_put(strbuf *s, const char *str, size_t len) {
    if (s->n + len + 1 > s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 4096;
        while (nc < s->n + len + 1) nc *= 2;
        char *q = realloc(s->p, nc);
        QC_ASSERT(q != NULL);
        s->p = q;
        s->cap = nc;
    }
    memcpy(s->p + s->n, str, len);
    s->n += len;
    s->p[s->n] = '\0';
}

static void sb_printf(strbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(strbuf *s, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    QC_ASSERT(n >= 0 && (size_t)n < sizeof tmp);
    sb_put(s, tmp, (size_t)n);
}

/* A name into the NUL-separated list. */
static void add_name(qc_cuda_module *m, strbuf *names, const char *name) {
    sb_put(names, name, strlen(name) + 1);
    m->n_names++;
}

static int is_packed(int32_t dt);

/* Warps per block of a batch-1 tensor-core GEMV of `tiles` row tiles of 16, merged or not: 8 (2 blocks an
 * SM, 128 registers a thread each) where that measured faster, else 0 (the module's, 16). With 8 warps a
 * block takes half an SM, so the next kernel's block can start beside it where the previous kernel's
 * blocks end (and the attention's small blocks leave room for one), and the tiles are spread over twice
 * as many blocks. H100, Llama-2-7B / TinyLlama-1.1B 4-bit (bench/NOTES-gemv.md, session 8): q/k/v (768 /
 * 160 tiles), o (256 / 128) and TinyLlama's gate/up (704) faster; Llama-2-7B's gate/up (1376) the same
 * then, and since the gate / up pair kernel (session 9) faster: 699.7 -> 681.2 us a step, and the down GEMV
 * after it 358.3 -> 340.9 (it starts where one 8-warp block has left an SM); the SiLU + down GEMV slower
 * (not here). x must fit in one piece for the fused prologues: K <= 8192
 * (32 columns a thread, kernels.cu gemv_mma `fused`). The kernel's name ends in _w8 (runtime/cuda.c). */
int32_t qc_cuda_gemv_warps(const qc_cuda_module *m, const qc_cuda_linear *l, int32_t tiles) {
    if (m->gemv_warps != GEMV_WARPS || m->gemv_fast == 2 || !is_packed(l->dtype)) return 0;
    return l->K <= 32 * 8 * 32 && tiles <= 1536 ? 8 : 0;
}

void qc_cuda_gemv_name(char *out, size_t cap, const qc_cuda_linear *l, int32_t batch) {
    snprintf(out, cap, "qk_gemv_%s_k%d_n%d_g%d_%c_b%d", dt_names[l->dtype], (int)l->K, (int)l->N,
             (int)l->group, l->sym ? 's' : 'a', (int)batch);
}

static int is_packed(int32_t dt) { return dt >= QRT_DT_Q2 && dt <= QRT_DT_Q8; }

/* A dtype and group the GEMV kernels take: packed weights grouped by a multiple of 32 up to K, or by K. */
static int group_ok(const qc_cuda_linear *l) {
    return l->dtype >= 0 && l->dtype < NDT && l->K > 0 &&
           (!is_packed(l->dtype) || (l->group > 0 && l->group <= l->K && (l->group == l->K || l->group % 32 == 0)));
}

/* Whether l runs on the module's tensor-core GEMV, the only one with merged, SiLU and pair forms. */
static int mma_gemv(const qc_cuda_module *m, const qc_cuda_linear *l) {
    return m->gemv_fast != 2 && (is_packed(l->dtype) || l->dtype == QRT_DT_F16);
}

void qc_cuda_gemvm_name(char *out, size_t cap, const qc_cuda_linear *l, int32_t n, const int32_t *N) {
    snprintf(out, cap, "qk_gemvm_%s_k%d_n%d_n%d_n%d_g%d_%c", dt_names[l->dtype], (int)l->K, (int)N[0], (int)N[1],
             n > 2 ? (int)N[2] : 0, (int)l->group, l->sym ? 's' : 'a');
}

void qc_cuda_gemvmn_name(char *out, size_t cap, const qc_cuda_linear *l, int32_t n, const int32_t *N, int32_t norm_dt) {
    snprintf(out, cap, "qk_gemvmn_%s_k%d_n%d_n%d_n%d_g%d_%c_%s", dt_names[l->dtype], (int)l->K, (int)N[0],
             n > 1 ? (int)N[1] : 0, n > 2 ? (int)N[2] : 0, (int)l->group, l->sym ? 's' : 'a', dt_names[norm_dt]);
}

/* Appends one kernel definition line and its name to m unless the name is there already. */
static void module_append(qc_cuda_module *m, const char *name, const char *line) {
    const char *k = m->names;
    for (int32_t i = 0; i < m->n_names; i++, k += strlen(k) + 1)
        if (!strcmp(k, name)) return;
    strbuf s = {m->source, m->source_len, m->source_len + 1}, names = {m->names, m->names_size, m->names_size};
    sb_put(&s, line, strlen(line));
    add_name(m, &names, name);
    m->source = s.p, m->source_len = s.n;
    m->names = names.p, m->names_size = names.n;
}

void qc_cuda_gemvs_name(char *out, size_t cap, const qc_cuda_linear *l) {
    snprintf(out, cap, "qk_gemvs_%s_k%d_n%d_g%d_%c", dt_names[l->dtype], (int)l->K, (int)l->N, (int)l->group,
             l->sym ? 's' : 'a');
}

int qc_cuda_module_add_silu(qc_cuda_module *m, const qc_cuda_linear *l, qc_err *err) {
    if (!group_ok(l) || l->N <= 0)
        return qc_err_set(err, "cuda: SILU_MUL + linear: unsupported shape (dtype %d, K %d, N %d, group %d)",
                          (int)l->dtype, (int)l->K, (int)l->N, (int)l->group);
    if (!mma_gemv(m, l)) return 0;
    char name[128], line[256];
    qc_cuda_gemvs_name(name, sizeof name, l);
    snprintf(line, sizeof line, "QK_GEMV_SILU(%s, %s, %d, %d, %d, %d)\n", name, dt_macros[l->dtype], (int)l->K,
             (int)l->N, (int)l->group, l->sym ? 1 : 0);
    module_append(m, name, line);
    return 0;
}

/* QK_GEMV_MULTI, or QK_GEMV_MULTIN with the RMSNorm of weight dtype norm_dt (>= 0) in its prologue. */
static int add_multi(qc_cuda_module *m, const qc_cuda_linear *l, int32_t n, const int32_t *N, int32_t norm_dt,
                     qc_err *err) {
    if (n < (norm_dt >= 0 ? 1 : 2) || n > 3 || !group_ok(l) || N[0] <= 0 || (n > 1 && N[1] <= 0) ||
        (n > 2 && N[2] <= 0) || norm_dt > QRT_DT_BF16)
        return qc_err_set(err, "cuda: merged linears: unsupported shape (%d linears, dtype %d, K %d, group %d)", (int)n,
                          (int)l->dtype, (int)l->K, (int)l->group);
    if (!mma_gemv(m, l)) return 0;
    char name[160], line[320];
    int32_t tiles = 0;
    for (int32_t i = 0; i < n; i++) tiles += (N[i] + 15) / 16;
    const int32_t w = qc_cuda_gemv_warps(m, l, tiles);
    if (norm_dt >= 0) qc_cuda_gemvmn_name(name, sizeof name, l, n, N, norm_dt);
    else qc_cuda_gemvm_name(name, sizeof name, l, n, N);
    if (w) snprintf(name + strlen(name), sizeof name - strlen(name), "_w%d", (int)w);
    if (norm_dt >= 0)
        snprintf(line, sizeof line, "QK_GEMV_MULTIN(%s, %s, %d, %d, %d, %d, %d, %d, %s, %d)\n", name,
                 dt_macros[l->dtype], (int)l->K, (int)l->group, l->sym ? 1 : 0, (int)N[0], n > 1 ? (int)N[1] : 0,
                 n > 2 ? (int)N[2] : 0, dt_macros[norm_dt], (int)w);
    else
        snprintf(line, sizeof line, "QK_GEMV_MULTI(%s, %s, %d, %d, %d, %d, %d, %d, %d)\n", name, dt_macros[l->dtype],
                 (int)l->K, (int)l->group, l->sym ? 1 : 0, (int)N[0], (int)N[1], n > 2 ? (int)N[2] : 0, (int)w);
    module_append(m, name, line);
    return 0;
}

void qc_cuda_gemvp_name(char *out, size_t cap, const qc_cuda_linear *l, int32_t norm_dt) {
    int n = snprintf(out, cap, "qk_gemvp%s_%s_k%d_n%d_g%d_%c", norm_dt >= 0 ? "n" : "", dt_names[l->dtype], (int)l->K,
                     (int)l->N, (int)l->group, l->sym ? 's' : 'a');
    if (norm_dt >= 0 && n > 0 && (size_t)n < cap) snprintf(out + n, cap - (size_t)n, "_%s", dt_names[norm_dt]);
}

int qc_cuda_module_add_pair(qc_cuda_module *m, const qc_cuda_linear *l, int32_t norm_dt, qc_err *err) {
    if (!group_ok(l) || l->N <= 0 || norm_dt > QRT_DT_BF16)
        return qc_err_set(err, "cuda: gate / up + SILU_MUL: unsupported shape (dtype %d, K %d, N %d, group %d)",
                          (int)l->dtype, (int)l->K, (int)l->N, (int)l->group);
    if (!mma_gemv(m, l)) return 0;
    char name[160], line[320];
    const int32_t w = qc_cuda_gemv_warps(m, l, (l->N + 7) / 8); /* tiles of 8 rows of each linear */
    qc_cuda_gemvp_name(name, sizeof name, l, norm_dt);
    if (w) snprintf(name + strlen(name), sizeof name - strlen(name), "_w%d", (int)w);
    if (norm_dt >= 0)
        snprintf(line, sizeof line, "QK_GEMV_PAIRN(%s, %s, %d, %d, %d, %d, %s, %d)\n", name, dt_macros[l->dtype],
                 (int)l->K, (int)l->group, l->sym ? 1 : 0, (int)l->N, dt_macros[norm_dt], (int)w);
    else
        snprintf(line, sizeof line, "QK_GEMV_PAIR(%s, %s, %d, %d, %d, %d, %d)\n", name, dt_macros[l->dtype], (int)l->K,
                 (int)l->group, l->sym ? 1 : 0, (int)l->N, (int)w);
    module_append(m, name, line);
    return 0;
}

int qc_cuda_module_add_multi(qc_cuda_module *m, const qc_cuda_linear *l, int32_t n, const int32_t *N, qc_err *err) {
    return add_multi(m, l, n, N, -1, err);
}

int qc_cuda_module_add_multin(qc_cuda_module *m, const qc_cuda_linear *l, int32_t n, const int32_t *N, int32_t norm_dt,
                              qc_err *err) {
    if (norm_dt < 0)
        return qc_err_set(err, "cuda: merged linears after an RMSNorm: norm weight dtype %d", (int)norm_dt);
    return add_multi(m, l, n, N, norm_dt, err);
}

int qc_cuda_module_init(qc_cuda_module *m, const qc_cuda_linear *lin, int32_t n_lin, uint32_t dtypes,
                        const qc_cuda_opts *o, qc_err *err) {
    memset(m, 0, sizeof *m);
    m->gemv_warps = o->gemv_warps > 0 ? o->gemv_warps : GEMV_WARPS;
    m->gemv_loads = o->gemv_loads > 0 ? o->gemv_loads : GEMV_LOADS;
    m->gemv_xs = o->gemv_xs > 0 ? o->gemv_xs : GEMV_XS;
    m->gemv_fast = o->gemv_fast;
    if (m->gemv_warps > 32 || m->gemv_loads > 64 || m->gemv_xs % 4096 || m->gemv_xs > 45056 || m->gemv_fast < 0 ||
        m->gemv_fast > 2)
        return qc_err_set(err,
                          "cuda: GEMV shape out of range (warps %d <= 32, loads %d <= 64, "
                          "xs %d a multiple of 4096 <= 45056, fast %d in 0..2)",
                          (int)m->gemv_warps, (int)m->gemv_loads, (int)m->gemv_xs, (int)m->gemv_fast);
    for (int32_t i = 0; i < n_lin; i++) {
        const qc_cuda_linear *l = &lin[i];
        if (!group_ok(l) || l->N <= 0)
            return qc_err_set(err, "cuda: linear %d: unsupported shape (dtype %d, K %d, N %d, group %d)", (int)i,
                              (int)l->dtype, (int)l->K, (int)l->N, (int)l->group);
        dtypes |= 1u << l->dtype;
    }

    strbuf s = {0}, names = {0};
    sb_printf(&s, "/* qcc %s: device code (codegen/cuda/kernels.cu + specializations) */\n", QC_VERSION);
    sb_printf(&s, "#define QK_GEMV_WARPS %d\n#define QK_GEMV_LOADS %d\n#define QK_GEMV_XS %d\n#define QK_GEMV_FAST %d\n",
              (int)m->gemv_warps, (int)m->gemv_loads, (int)m->gemv_xs, (int)m->gemv_fast);
    if (o->gemv_nopipe) sb_printf(&s, "#define QK_GEMV_PIPE 0\n");
    if (o->trace) sb_printf(&s, "#define QK_TRACE 1\n");
    if (o->gemv_minb > 1) sb_printf(&s, "#define QK_GEMV_MINB %d\n", (int)o->gemv_minb);
    for (int d = 0; d < NDT; d++)
        if (dtypes & (1u << d)) sb_printf(&s, "#define QK_NEED_%s 1\n", dt_macros[d] + 3);
    sb_put(&s, (const char *)qc_cuda_kernels_cu, qc_cuda_kernels_cu_len);
    sb_put(&s, "\n", 1);

    for (size_t i = 0; i < sizeof base_kernels / sizeof base_kernels[0]; i++) add_name(m, &names, base_kernels[i]);
    int packed_seen = 0;
    for (int d = 0; d < NDT; d++) {
        if (!(dtypes & (1u << d))) continue;
        char name[64];
        if (d == QRT_DT_I8) { /* W8A8: generic GEMVs (K, N as arguments), cuBLAS int8 GEMM between these two */
            static const char *const i8k[] = {"qk_gemv_i8_b1", "qk_gemv_i8_b4", "qk_i8_quant", "qk_i8_scale"};
            for (int k = 0; k < 4; k++) add_name(m, &names, i8k[k]);
            continue;
        }
        static const char *const kinds[] = {"qk_gemv_%s_b1",   "qk_gemv_%s_b4",   "qk_gemm_%s",
                                            "qk_dequant_%s",   "qk_qgemm_%s",     "qk_qgemm_%s_t8",
                                            "qk_qgemm_%s_t16", "qk_qgemm_%s_t32", "qk_qgemm_%s_t64"};
        for (int k = 0; k < (is_packed(d) ? 9 : 3); k++) {
            snprintf(name, sizeof name, kinds[k], dt_names[d]);
            add_name(m, &names, name);
        }
        if (is_packed(d) && !packed_seen++) { /* the fused GEMM's x and split k */
            add_name(m, &names, "qk_qgemm_x16");
            add_name(m, &names, "qk_qgemm_reduce");
        }
        if (d == QRT_DT_Q3) add_name(m, &names, "qk_repack_q3"); /* the device layout (kernels.cu qk_q3w3) */
    }
    if (o->opt_level > 0) {
        for (int32_t i = 0; i < n_lin; i++) {
            const qc_cuda_linear *l = &lin[i];
            int dup = 0;
            for (int32_t j = 0; j < i && !dup; j++)
                dup = !memcmp(&lin[j], l, sizeof *l);
            if (dup || l->dtype == QRT_DT_I8) continue;
            /* batch 1 (decode) and 4 (2..8 rows, 4 at a time): the generic kernels keep their buffers in
             * local memory (K, N, group unknown), which costs 2-3x at 4 rows */
            for (int32_t b = 1; b <= 4; b += 3) {
                char name[128];
                qc_cuda_gemv_name(name, sizeof name, l, b);
                const int32_t w = b == 1 ? qc_cuda_gemv_warps(m, l, (l->N + 15) / 16) : 0;
                if (w) snprintf(name + strlen(name), sizeof name - strlen(name), "_w%d", (int)w);
                sb_printf(&s, "QK_GEMV_SPEC(%s, %s, %d, %d, %d, %d, %d, %d)\n", name, dt_macros[l->dtype], (int)b,
                          (int)l->K, (int)l->N, (int)l->group, l->sym ? 1 : 0, (int)w);
                add_name(m, &names, name);
            }
        }
    }
    m->source = s.p;
    m->source_len = s.n;
    m->names = names.p;
    m->names_size = names.n;
    return 0;
}

/* The GEMV shape of a LINEAR / LM_HEAD op (group normalized: K per channel, 0 for float weights). */
static qc_cuda_linear linear_of(const qc_graph *g, const qc_op *op) {
    qc_cuda_linear l = {g->tensors[op->w].out_dtype, op->p[0], op->p[1], 0, 0};
    if (is_packed(l.dtype)) {
        l.group = op->p[2] <= 0 || op->p[2] >= op->p[0] ? op->p[0] : op->p[2];
        l.sym = op->p[3] ? 1 : 0;
    }
    return l;
}

/* The weight dtype of the RMSNORM right before op i that makes its K-wide input out of place (so that a
 * prologue can do it), or -1. */
static int32_t norm_before(const qc_graph *g, int32_t i, int32_t K) {
    const qc_op *a = &g->ops[i], *nrm = i > 0 ? &g->ops[i - 1] : NULL;
    if (!nrm || nrm->kind != QRT_K_RMSNORM || nrm->out != a->in[0] || nrm->in[0] == nrm->out || nrm->p[0] != K)
        return -1;
    return nrm->w >= 0 ? g->tensors[nrm->w].out_dtype : QRT_DT_F32;
}

int qc_cuda_module_from_graph(qc_cuda_module *m, const qc_graph *g, const qc_cuda_opts *o, qc_err *err) {
    const qc_config *c = &g->cfg;
    if (c->head_dim <= 0 || c->head_dim % 4 || c->head_dim > 512)
        return qc_err_set(err, "cuda: head_dim %d is not supported on the GPU (a multiple of 4 up to 512); "
                               "use --target cpu", (int)c->head_dim);
    qc_cuda_linear *lin = calloc((size_t)g->n_ops + 1, sizeof *lin);
    QC_ASSERT(lin != NULL);
    int32_t n = 0;
    for (int32_t i = 0; i < g->n_ops; i++) {
        const qc_op *op = &g->ops[i];
        if (op->kind < 0 || op->kind > QRT_K_LM_HEAD) { /* ops appended after these have no GPU kernel yet */
            free(lin);
            return qc_err_set(err, "cuda: op %d (%s) has no GPU kernel", (int)i, qc_op_name(op->kind));
        }
        if (op->w < 0) continue;
        int32_t dt = g->tensors[op->w].out_dtype;
        if (op->kind == QRT_K_LINEAR || op->kind == QRT_K_LM_HEAD) {
            lin[n++] = linear_of(g, op);
            if (dt < 0 || dt >= NDT) {
                free(lin);
                return qc_err_set(err, "cuda: op %d (%s): weight '%s' is %s, which the GPU kernels do not take",
                                  (int)i, qc_op_name(op->kind), g->tensors[op->w].name, qc_dtype_name(dt));
            }
        } else if (dt > QRT_DT_BF16) {
            free(lin);
            return qc_err_set(err, "cuda: op %d (%s): weight '%s' is %s; the GPU kernels take f32, f16 or bf16 here",
                              (int)i, qc_op_name(op->kind), g->tensors[op->w].name, qc_dtype_name(dt));
        }
    }
    int rc = qc_cuda_module_init(m, lin, n, 0, o, err);
    free(lin);
    /* runs of 2-3 LINEARs reading the same buffer with one format (q / k / v, gate / up): one kernel each */
    int32_t paired = -1; /* the SILU_MUL whose product a pair kernel writes */
    for (int32_t i = 0; rc == 0 && o->opt_level > 0 && i < g->n_ops; i++) {
        const qc_op *a = &g->ops[i];
        if (a->kind != QRT_K_LINEAR || a->w < 0) continue;
        qc_cuda_linear l = linear_of(g, a);
        /* a LINEAR reading the SILU_MUL right before it: that product done in its prologue (not when the
         * pair kernel before it writes the product: then it reads it as a plain input) */
        if (i > 0 && g->ops[i - 1].kind == QRT_K_SILU_MUL && g->ops[i - 1].out == a->in[0]) {
            if (paired != i - 1) rc = qc_cuda_module_add_silu(m, &l, err);
            continue;
        }
        int32_t N[3] = {a->p[1], 0, 0}, k = 1;
        while (k < 3 && i + k < g->n_ops) {
            const qc_op *b = &g->ops[i + k];
            if (b->kind != QRT_K_LINEAR || b->w < 0 || b->in[0] != a->in[0] || b->out == a->in[0]) break;
            qc_cuda_linear lb = linear_of(g, b);
            if (lb.dtype != l.dtype || lb.K != l.K || lb.group != l.group || lb.sym != l.sym) break;
            N[k++] = lb.N;
        }
        const int32_t ndt = norm_before(g, i, l.K);
        /* two of one shape whose outputs the SILU_MUL right after them multiplies (gate, up): one kernel that
         * also writes the product (runtime/cuda.c pair_now), with the RMSNorm that made their input in its
         * prologue as well; the merged kernels below would go unused */
        const qc_op *sm = i + 2 < g->n_ops ? &g->ops[i + 2] : NULL;
        if (k == 2 && N[0] == N[1] && sm && sm->kind == QRT_K_SILU_MUL && sm->in[0] == a->out &&
            sm->in[1] == g->ops[i + 1].out && sm->out != a->out && sm->out != g->ops[i + 1].out &&
            sm->out != a->in[0] && sm->p[0] == N[0] && mma_gemv(m, &l)) {
            l.N = N[0];
            rc = qc_cuda_module_add_pair(m, &l, -1, err);
            if (rc == 0 && o->fuse_norm && ndt >= 0) rc = qc_cuda_module_add_pair(m, &l, ndt, err);
            paired = i + 2;
            i += 1;
            continue;
        }
        if (k > 1) rc = qc_cuda_module_add_multi(m, &l, k, N, err);
        /* ... and right after the RMSNorm that made their input: that norm in the prologue as well */
        if (k > 1 && rc == 0 && o->fuse_norm && ndt >= 0) rc = qc_cuda_module_add_multin(m, &l, k, N, ndt, err);
        i += k - 1;
    }
    /* the LM head right after the final RMSNorm: that norm in its prologue (one "merged" linear) */
    for (int32_t i = 1; rc == 0 && o->opt_level > 0 && o->fuse_norm && i < g->n_ops; i++) {
        const qc_op *a = &g->ops[i];
        const int32_t ndt = a->kind == QRT_K_LM_HEAD && a->w >= 0 ? norm_before(g, i, a->p[0]) : -1;
        if (ndt < 0) continue;
        qc_cuda_linear l = linear_of(g, a);
        int32_t N[3] = {l.N, 0, 0};
        rc = qc_cuda_module_add_multin(m, &l, 1, N, ndt, err);
    }
    return rc;
}

void qc_cuda_module_free(qc_cuda_module *m) {
    if (!m) return;
    free(m->source);
    free(m->names);
    memset(m, 0, sizeof *m);
}

int qc_cuda_parse_targets(qc_cuda_opts *o, const char *list, qc_err *err) {
    o->n_targets = 0;
    const char *p = list;
    while (*p) {
        size_t len = strcspn(p, ",");
        char tok[32];
        if (len == 0 || len >= sizeof tok)
            return qc_err_set(err, "--cuda-arch '%s': empty or overlong entry", list);
        memcpy(tok, p, len);
        tok[len] = '\0';
        qc_cuda_target t = {0};
        const char *num = NULL;
        if (!strncmp(tok, "sm_", 3)) num = tok + 3;
        else if (!strncmp(tok, "compute_", 8)) num = tok + 8, t.ptx = 1;
        char *end = NULL;
        long a = num ? strtol(num, &end, 10) : 0;
        if (!num || end == num || *end || a < 80 || a > 999) /* kernels.cu: mma m16n8k16, bf16, cvt.f16x2 */
            return qc_err_set(err, "--cuda-arch: '%s' is not sm_XY or compute_XY (XY >= 80)", tok);
        t.arch = (int32_t)a;
        for (int32_t i = 0; i < o->n_targets; i++)
            if (o->targets[i].ptx == t.ptx && o->targets[i].arch == t.arch)
                return qc_err_set(err, "--cuda-arch: '%s' given twice", tok);
        if (o->n_targets == QC_CUDA_MAX_TARGETS)
            return qc_err_set(err, "--cuda-arch: more than %d targets", QC_CUDA_MAX_TARGETS);
        o->targets[o->n_targets++] = t;
        p += len;
        if (*p == ',') p++;
    }
    if (!o->n_targets) return qc_err_set(err, "--cuda-arch: no target given");
    return 0;
}
