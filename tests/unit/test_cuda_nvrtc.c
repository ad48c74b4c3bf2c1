/*
 * tests/unit/test_cuda_nvrtc.c — the device code compiles (no GPU needed).
 *
 * Builds a module with the generic kernels of every weight dtype and
 * specialized GEMVs for awkward shapes (K not a multiple of 32 or 128,
 * per-channel, symmetric, every bit width), compiles it with NVRTC for
 * every default target, and checks: each cubin is an ELF file, the PTX
 * defines exactly the kernels the module lists, a second compile gives the
 * same bytes, the disk cache returns them, and the runtime parses the
 * section and picks the right image per compute capability.
 * Exits 77 (ctest: skipped) when NVRTC cannot be loaded or the build has
 * CUDA off (-DQC_ENABLE_CUDA=OFF, e.g. the sanitizer build).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qc/cuda.h"
#include "qrt_cuda.h"

static int fails;

static int has_name(const qc_cuda_module *m, const char *name) {
    const char *k = m->names;
    for (int32_t j = 0; j < m->n_names; j++, k += strlen(k) + 1)
        if (!strcmp(k, name)) return 1;
    return 0;
}
#define CHECK(c)                                                          \
    do {                                                                  \
        if (!(c)) {                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); \
            fails++;                                                      \
        }                                                                 \
    } while (0)

int main(void) {
    char why[512];
#ifndef QC_WITH_CUDA
    printf("skipped: built with -DQC_ENABLE_CUDA=OFF\n");
    return 77;
#endif
    if (!qc_nvrtc_available(why, sizeof why)) {
        printf("skipped: %s\n", why);
        return 77;
    }
    static const qc_cuda_linear lin[] = {
        {QRT_DT_Q4, 4096, 11008, 128, 0}, {QRT_DT_Q3, 172, 64, 32, 0}, {QRT_DT_Q2, 64, 48, 64, 1},
        {QRT_DT_Q8, 14336, 4096, 128, 1}, {QRT_DT_Q4, 172, 64, 172, 0}, {QRT_DT_F16, 172, 64, 0, 0},
        {QRT_DT_BF16, 256, 100, 0, 0},    {QRT_DT_F32, 64, 512, 0, 0},  {QRT_DT_Q4, 4096, 11008, 128, 0},
    };
    qc_cuda_opts o = {0};
    qc_err err;
    CHECK(qc_cuda_parse_targets(&o, QC_CUDA_DEFAULT_ARCHS, &err) == 0);
    CHECK(o.n_targets == 5);
    CHECK(qc_cuda_parse_targets(&o, "sm_90,sm_90", &err) == -1);
    CHECK(qc_cuda_parse_targets(&o, "sm_9x", &err) == -1);
    CHECK(qc_cuda_parse_targets(&o, "sm_75", &err) == -1); /* the kernels need sm_80 */
    CHECK(qc_cuda_parse_targets(&o, QC_CUDA_DEFAULT_ARCHS, &err) == 0);
    o.opt_level = 2;
    o.threads = 0;
    qc_cuda_module m;
    if (qc_cuda_module_init(&m, lin, (int32_t)(sizeof lin / sizeof lin[0]), 0x7f, &o, &err)) {
        fprintf(stderr, "module: %s\n", err.msg);
        return 1;
    }
    /* 34 base (qk_topk, qk_add_rmsnorm_*, qk_rope_append_*, qk_attn_[rope_][w_]*, qk_attn_tile_*,
     * qk_attn_tc{64,128}_* included) + 7 dtypes x 3 + 4 dequant + 4 x qk_qgemm_<dt>{,_t8,_t16,_t32,_t64} +
     * qk_qgemm_{x16,reduce} + qk_repack_q3 + 8 distinct linears x 2 (batch 1 and 4) */
    CHECK(m.n_names == 34 + 21 + 4 + 20 + 2 + 1 + 16);
    CHECK(has_name(&m, "qk_qgemm_q3_t8") && has_name(&m, "qk_qgemm_q8_t64") && !has_name(&m, "qk_qgemm_f16_t8"));
    CHECK(strstr(m.source, "QK_GEMV_SPEC(qk_gemv_q4_k4096_n11008_g128_a_b4, QK_Q4, 4, 4096, 11008, 128, 0, 0)") != NULL);
    /* batch 1 of a packed weight with K <= 8192 and at most 1536 row tiles: 8 warps a block (qc_cuda_gemv_warps);
     * K 14336, more tiles, f16 and batch 4: the module's 16 */
    CHECK(strstr(m.source, "QK_GEMV_SPEC(qk_gemv_q4_k4096_n11008_g128_a_b1_w8, QK_Q4, 1, 4096, 11008, 128, 0, 8)"));
    CHECK(strstr(m.source, "QK_GEMV_SPEC(qk_gemv_q8_k14336_n4096_g128_s_b1, QK_Q8, 1, 14336, 4096, 128, 1, 0)"));
    CHECK(strstr(m.source, "QK_GEMV_SPEC(qk_gemv_f16_k172_n64_g0_a_b1, QK_F16, 1, 172, 64, 0, 0, 0)"));
    const qc_cuda_linear wide = {QRT_DT_Q4, 4096, 16400, 128, 0};
    CHECK(qc_cuda_gemv_warps(&m, &lin[0], 688) == 8 && qc_cuda_gemv_warps(&m, &lin[0], 1536) == 8 &&
          qc_cuda_gemv_warps(&m, &wide, 1537) == 0);
    /* merged linears: q / k / v and gate / up shapes; a repeat and f32 (no tensor-core GEMV) add nothing */
    static const int32_t qkv[3] = {4096, 1024, 1024}, gu[2] = {11008, 11008};
    const qc_cuda_linear q4 = {QRT_DT_Q4, 4096, 0, 128, 0}, f32 = {QRT_DT_F32, 4096, 0, 0, 0};
    CHECK(qc_cuda_module_add_multi(&m, &q4, 3, qkv, &err) == 0);
    CHECK(qc_cuda_module_add_multi(&m, &q4, 2, gu, &err) == 0);
    CHECK(qc_cuda_module_add_multi(&m, &q4, 3, qkv, &err) == 0);
    CHECK(qc_cuda_module_add_multi(&m, &f32, 2, gu, &err) == 0);
    CHECK(qc_cuda_module_add_multi(&m, &q4, 1, gu, &err) == -1);
    char mname[128];
    CHECK(m.n_names == 34 + 21 + 4 + 20 + 2 + 1 + 16 + 2);
    qc_cuda_gemvm_name(mname, sizeof mname, &q4, 3, qkv);
    CHECK(!strcmp(mname, "qk_gemvm_q4_k4096_n4096_n1024_n1024_g128_a"));
    CHECK(strstr(m.source, "QK_GEMV_MULTI(qk_gemvm_q4_k4096_n11008_n11008_n0_g128_a_w8, QK_Q4, 4096, 128, 0, 11008, "
                           "11008, 0, 8)") != NULL);
    CHECK(strstr(m.source, "QK_GEMV_MULTI(qk_gemvm_q4_k4096_n4096_n1024_n1024_g128_a_w8, QK_Q4, 4096, 128, 0, 4096, "
                           "1024, 1024, 8)") != NULL);
    /* SILU_MUL + GEMV */
    const qc_cuda_linear down = {QRT_DT_Q4, 11008, 4096, 128, 0}, down32 = {QRT_DT_F32, 11008, 4096, 0, 0};
    CHECK(qc_cuda_module_add_silu(&m, &down, &err) == 0);
    CHECK(qc_cuda_module_add_silu(&m, &down, &err) == 0);
    CHECK(qc_cuda_module_add_silu(&m, &down32, &err) == 0);
    CHECK(m.n_names == 34 + 21 + 4 + 20 + 2 + 1 + 16 + 3);
    qc_cuda_gemvs_name(mname, sizeof mname, &down);
    CHECK(!strcmp(mname, "qk_gemvs_q4_k11008_n4096_g128_a"));
    /* one linear with the RMSNorm before it (the LM head): only with a norm */
    const qc_cuda_linear head = {QRT_DT_F16, 172, 0, 0, 0};
    static const int32_t nvocab[1] = {1000};
    CHECK(qc_cuda_module_add_multin(&m, &head, 1, nvocab, QRT_DT_F32, &err) == 0);
    CHECK(qc_cuda_module_add_multi(&m, &head, 1, nvocab, &err) == -1);
    CHECK(m.n_names == 34 + 21 + 4 + 20 + 2 + 1 + 16 + 4);
    CHECK(strstr(m.source, "QK_GEMV_MULTIN(qk_gemvmn_f16_k172_n1000_n0_n0_g0_a_f32, QK_F16, 172, 0, 0, 1000, 0, 0, "
                           "QK_F32, 0)") != NULL);
    /* gate / up + SILU_MUL as one kernel, plain and with the norm (1376 tiles of 8 + 8 rows: 8 warps); a repeat
     * adds nothing */
    const qc_cuda_linear gup = {QRT_DT_Q4, 4096, 11008, 128, 0};
    CHECK(qc_cuda_module_add_pair(&m, &gup, -1, &err) == 0);
    CHECK(qc_cuda_module_add_pair(&m, &gup, QRT_DT_F32, &err) == 0);
    CHECK(qc_cuda_module_add_pair(&m, &gup, QRT_DT_F32, &err) == 0);
    CHECK(m.n_names == 34 + 21 + 4 + 20 + 2 + 1 + 16 + 6);
    qc_cuda_gemvp_name(mname, sizeof mname, &gup, QRT_DT_F32);
    CHECK(!strcmp(mname, "qk_gemvpn_q4_k4096_n11008_g128_a_f32"));
    CHECK(strstr(m.source, "QK_GEMV_PAIR(qk_gemvp_q4_k4096_n11008_g128_a_w8, QK_Q4, 4096, 128, 0, 11008, 8)") != NULL);
    CHECK(strstr(m.source, "QK_GEMV_PAIRN(qk_gemvpn_q4_k4096_n11008_g128_a_f32_w8, QK_Q4, 4096, 128, 0, 11008, "
                           "QK_F32, 8)") != NULL);
    qc_cuda_build b;
    if (qc_cuda_compile(&m, &o, NULL, &b, &err)) {
        fprintf(stderr, "compile: %s\n", err.msg);
        return 1;
    }
    CHECK(b.n_images == 5);
    for (int32_t i = 0; i < b.n_images; i++) {
        const qc_cuda_image *im = &b.images[i];
        CHECK(im->size > 1000);
        if (!im->target.ptx) {
            CHECK(!memcmp(im->data, "\177ELF", 4));
            continue;
        }
        const char *ptx = (const char *)im->data;
        CHECK(ptx[im->size - 1] == '\0');
        int entries = 0;
        for (const char *p = ptx; (p = strstr(p, ".entry ")); p += 7) entries++;
        CHECK(entries == m.n_names);
        const char *k = m.names;
        for (int32_t j = 0; j < m.n_names; j++, k += strlen(k) + 1) {
            char pat[160];
            snprintf(pat, sizeof pat, ".entry %s(", k);
            if (!strstr(ptx, pat)) {
                fprintf(stderr, "PTX lacks kernel %s\n", k);
                fails++;
            }
        }
    }
    /* Same input, same bytes; then through the cache. */
    char dir[] = "/tmp/qc_nvrtc_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    qc_cuda_opts o1 = o;
    o1.n_targets = 1;
    o1.targets[0] = o.targets[3]; /* sm_90 */
    o1.cache_dir = dir;
    qc_cuda_build b1, b2;
    CHECK(qc_cuda_compile(&m, &o1, NULL, &b1, &err) == 0 && b1.cache_hits == 0);
    CHECK(qc_cuda_compile(&m, &o1, NULL, &b2, &err) == 0 && b2.cache_hits == 1);
    CHECK(b1.images[0].size == b.images[3].size && !memcmp(b1.images[0].data, b.images[3].data, b1.images[0].size));
    CHECK(b2.images[0].size == b1.images[0].size && !memcmp(b2.images[0].data, b1.images[0].data, b1.images[0].size));
    qc_cuda_build_free(&b1);
    qc_cuda_build_free(&b2);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);

    /* The section as the runtime reads it. */
    uint8_t *blob;
    size_t size;
    CHECK(qc_cuda_blob(&m, &b, &blob, &size, &err) == 0);
    qrt_cuda_blob rb;
    CHECK(qrt_cuda_blob_parse(&rb, blob, size) == 0);
    CHECK(rb.n_images == 5 && rb.n_kernels == m.n_names && rb.gemv_warps == m.gemv_warps);
    CHECK(rb.names_size == m.names_size && !memcmp(rb.names, m.names, m.names_size));
    static const int32_t cc[][3] = {/* device, arch, ptx */ {80, 80, 0}, {86, 86, 0}, {87, 86, 0}, {89, 89, 0},
                                    {90, 90, 0}, {100, 90, 1}, {120, 90, 1}};
    for (size_t i = 0; i < sizeof cc / sizeof cc[0]; i++) {
        const qrt_cuda_image *im = qrt_cuda_blob_pick(&rb, cc[i][0]);
        CHECK(im && im->arch == cc[i][1] && im->ptx == cc[i][2]);
    }
    CHECK(qrt_cuda_blob_pick(&rb, 75) == NULL);
    for (size_t cut = 0; cut < 64 + 24 * 5; cut += 7) CHECK(qrt_cuda_blob_parse(&rb, blob, cut) == -1);
    blob[12] = 99; /* image count */
    CHECK(qrt_cuda_blob_parse(&rb, blob, size) == -1);
    free(blob);
    int32_t nk = m.n_names;
    qc_cuda_build_free(&b);
    qc_cuda_module_free(&m);
    if (fails) return 1;
    printf("ok: %d kernels for %d targets (NVRTC %s)\n", (int)nk, 5, qc_nvrtc_version());
    return 0;
}
