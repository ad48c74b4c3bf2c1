/*
 * tests/unit/test_codegen.c — qc_codegen_llvm and qc_link_exe_with on a
 * hand-made five-op graph.
 *
 * Checks, each against values the graph fixes:
 *   - two runs give byte-identical objects (at -O0 and -O2);
 *   - the textual IR holds the expected kernel calls, constants and
 *     weight offsets;
 *   - the object's ELF sections and symbols: blobs 64-byte aligned,
 *     read-only, the weights in a large (.lrodata) section, start/end
 *     symbols spanning the file, qm_forward/qm_config/qm_buf_widths defined;
 *   - linked against a stand-in runtime (test_codegen_rt.c), the executable
 *     prints exactly the call sequence and values the graph implies (floats
 *     read back from the embedded weights), maps the weights from the file
 *     in a read-only segment, needs nothing but libc, and links the same
 *     twice;
 *   - bad inputs fail with a message naming the culprit and leave no file.
 */
#define _GNU_SOURCE /* memmem */
#include <elf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qc/codegen.h"

#ifndef QC_TEST_FAKERT
#error "QC_TEST_FAKERT (the stand-in runtime archive) must be defined"
#endif

static int failures;

#define CHECK(c)                                                              \
    do {                                                                      \
        if (!(c)) {                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); \
            failures++;                                                       \
        }                                                                     \
    } while (0)

#ifndef SHF_X86_64_LARGE
#define SHF_X86_64_LARGE 0x10000000 /* x86-64 ELF psABI; glibc's elf.h lacks it */
#endif

#define WEIGHTS_SIZE 512

static char dir[64];
static char weights_path[256], tok_path[256], info_path[256];
static const char tok_data[] = "QTOK-stand-in tokenizer blob";
static const char info_data[] = "{\"source\":\"test\",\"bits\":16}";

static char *slurp(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
        }
    }
    fclose(f);
    buf[n] = '\0';
    if (size) *size = n;
    return buf;
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

static int same_file(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    char *da = slurp(a, &na), *db = slurp(b, &nb);
    int same = da && db && na == nb && memcmp(da, db, na) == 0;
    free(da);
    free(db);
    return same;
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Output of a command (no shell metacharacters in our paths except quoted). */
static char *run(const char *cmd) {
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    size_t cap = 4096, n = 0, r;
    char *buf = malloc(cap + 1);
    while ((r = fread(buf + n, 1, cap - n, p)) > 0) {
        n += r;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
        }
    }
    buf[n] = '\0';
    pclose(p);
    return buf;
}

/* The float stored at byte offset o of the weight blob. */
static float weight_at(size_t o) { return (float)(o / 4) * 0.25f; }

/* ---- a minimal ELF64 reader for the checks --------------------------------------------- */

typedef struct elf {
    char *data;
    size_t size;
    const Elf64_Ehdr *eh;
    const Elf64_Shdr *sh;
    const char *shstr;
} elf;

static int elf_open(elf *e, const char *path) {
    memset(e, 0, sizeof *e);
    e->data = slurp(path, &e->size);
    if (!e->data || e->size < sizeof(Elf64_Ehdr) || memcmp(e->data, ELFMAG, SELFMAG) != 0) return -1;
    e->eh = (const Elf64_Ehdr *)e->data;
    if (e->eh->e_shoff + (size_t)e->eh->e_shnum * sizeof(Elf64_Shdr) > e->size) return -1;
    e->sh = (const Elf64_Shdr *)(e->data + e->eh->e_shoff);
    e->shstr = e->data + e->sh[e->eh->e_shstrndx].sh_offset;
    return 0;
}

static const Elf64_Shdr *elf_section(const elf *e, const char *name) {
    for (int i = 0; i < e->eh->e_shnum; i++)
        if (strcmp(e->shstr + e->sh[i].sh_name, name) == 0) return &e->sh[i];
    return NULL;
}

static const Elf64_Sym *elf_symbol(const elf *e, const char *name) {
    for (int i = 0; i < e->eh->e_shnum; i++) {
        if (e->sh[i].sh_type != SHT_SYMTAB) continue;
        const Elf64_Sym *s = (const Elf64_Sym *)(e->data + e->sh[i].sh_offset);
        const char *str = e->data + e->sh[e->sh[i].sh_link].sh_offset;
        for (size_t k = 0; k < e->sh[i].sh_size / sizeof *s; k++)
            if (strcmp(str + s[k].st_name, name) == 0) return &s[k];
    }
    return NULL;
}

static const char *elf_section_name(const elf *e, const Elf64_Sym *s) {
    if (!s || s->st_shndx == SHN_UNDEF || s->st_shndx >= e->eh->e_shnum) return "";
    return e->shstr + e->sh[s->st_shndx].sh_name;
}

/* ---- the graph --------------------------------------------------------------------------- */

static qc_graph *make_graph(void) {
    qc_graph *g = qc_graph_new();
    g->cfg.arch = QRT_ARCH_LLAMA;
    g->cfg.n_layers = 1;
    g->cfg.dim = 4;
    g->cfg.n_heads = 2;
    g->cfg.n_kv_heads = 1;
    g->cfg.head_dim = 2;
    g->cfg.ffn_dim = 8;
    g->cfg.vocab = 8;
    g->cfg.max_ctx = 256;
    g->cfg.bos = 1;
    g->cfg.eos = 2;
    static const float dummy[32];
    static const struct {
        const char *name;
        int32_t dtype, ndim;
        int64_t shape[2];
        uint64_t off;
    } ts[] = {
        {"model.embed_tokens.weight", QRT_DT_F32, 2, {8, 4}, 0},
        {"model.norm.weight", QRT_DT_F32, 1, {4, 0}, 128},
        {"model.layers.0.self_attn.q_proj.weight", QRT_DT_F16, 2, {4, 4}, 192},
        {"model.layers.0.self_attn.q_proj.bias", QRT_DT_F16, 1, {4, 0}, 256},
        {"lm_head.weight", QRT_DT_F32, 2, {8, 4}, 320},
    };
    for (int i = 0; i < 5; i++) {
        size_t nb = qc_dtype_size(ts[i].dtype, ts[i].shape[0] * (ts[i].ndim == 2 ? ts[i].shape[1] : 1));
        int32_t id = qc_graph_add_tensor(g, ts[i].name, ts[i].dtype, ts[i].ndim, ts[i].shape, dummy, nb);
        g->tensors[id].blob_offset = ts[i].off;
        g->tensors[id].blob_nbytes = nb;
    }
    qc_graph_add_buf(g, 4);
    qc_graph_add_buf(g, 4);
    g->logits_buf = qc_graph_add_buf(g, 8);

    qc_op op = qc_op_make(QRT_K_EMBED);
    op.out = 0, op.w = 0, op.p[0] = 4;
    qc_graph_add_op(g, &op);
    op = qc_op_make(QRT_K_RMSNORM);
    op.out = 1, op.in[0] = 0, op.w = 1, op.p[0] = 4, op.f0 = 1e-5f;
    qc_graph_add_op(g, &op);
    op = qc_op_make(QRT_K_LINEAR);
    op.out = 0, op.in[0] = 1, op.w = 2, op.bias = 3, op.p[0] = 4, op.p[1] = 4;
    qc_graph_add_op(g, &op);
    op = qc_op_make(QRT_K_ADD);
    op.out = 1, op.in[0] = 0, op.in[1] = 1, op.p[0] = 4, op.p[3] = -7;
    qc_graph_add_op(g, &op);
    op = qc_op_make(QRT_K_LM_HEAD);
    op.out = 2, op.in[0] = 1, op.w = 4, op.p[0] = 4, op.p[1] = 8;
    qc_graph_add_op(g, &op);
    return g;
}

static int codegen(const qc_graph *g, const char *obj, const char *ir, int opt, qc_err *err) {
    qc_codegen_opts o = {weights_path, tok_path, info_path, obj, ir, opt, NULL, 0};
    return qc_codegen_llvm(g, &o, err);
}

static void path_in_dir(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", dir, name); }

/* ---- the tests ------------------------------------------------------------------------------ */

static void test_determinism(const qc_graph *g) {
    static const int levels[] = {0, 2};
    for (int i = 0; i < 2; i++) {
        char a[256], b[256];
        qc_err err = {{0}};
        path_in_dir(a, sizeof a, "det_a.o");
        path_in_dir(b, sizeof b, "det_b.o");
        CHECK(codegen(g, a, NULL, levels[i], &err) == 0);
        CHECK(codegen(g, b, NULL, levels[i], &err) == 0);
        if (err.msg[0]) fprintf(stderr, "codegen: %s\n", err.msg);
        CHECK(same_file(a, b));
        unlink(a);
        unlink(b);
    }
}

/* Removes every occurrence of `word` from s, in place. */
static void erase_all(char *s, const char *word) {
    size_t n = strlen(word);
    char *p;
    while ((p = strstr(s, word))) memmove(p, p + n, strlen(p + n) + 1);
}

static void test_ir(const char *ir_path) {
    char *ir = slurp(ir_path, NULL);
    CHECK(ir != NULL);
    if (!ir) return;
    /* words the optimizer may add: the checks hold with or without them */
    erase_all(ir, "tail ");
    erase_all(ir, "local_unnamed_addr ");
    erase_all(ir, "nonnull ");
    static const char *const want[] = {
        "@qm_config = constant [15 x i32] [i32 1, i32 1, i32 1, i32 4, i32 2, i32 1, i32 2, "
        "i32 8, i32 8, i32 256, i32 3, i32 2, i32 1, i32 2, i32 256], align 16",
        "@qm_buf_widths = constant [3 x i32] [i32 4, i32 4, i32 8], align 16",
        "@qm_weights_start = external hidden constant [0 x i8], align 64",
        "define void @qm_forward(ptr %ctx)",
        "%buf0 = call ptr @qrt_buf(ptr %ctx, i32 0)",
        "%buf2 = call ptr @qrt_buf(ptr %ctx, i32 2)",
        "call void @qrt_k_embed(ptr %ctx, ptr %buf0, ptr null, ptr null, ptr null, "
        "ptr @qm_weights_start, ptr null, i32 0, i32 4, i32 0, i32 0, i32 0, float 0.000000e+00)",
        "call void @qrt_k_rmsnorm(ptr %ctx, ptr %buf1, ptr %buf0, ptr null, ptr null, "
        "ptr getelementptr (i8, ptr @qm_weights_start, i64 128), ptr null, i32 0, i32 4, i32 0, "
        "i32 0, i32 0, float 0x3EE4F8B580000000)",
        "call void @qrt_k_linear(ptr %ctx, ptr %buf0, ptr %buf1, ptr null, ptr null, "
        "ptr getelementptr (i8, ptr @qm_weights_start, i64 192), "
        "ptr getelementptr (i8, ptr @qm_weights_start, i64 256), i32 1, i32 4, i32 4, i32 0, "
        "i32 0, float 0.000000e+00)",
        "call void @qrt_k_add(ptr %ctx, ptr %buf1, ptr %buf0, ptr %buf1, ptr null, ptr null, "
        "ptr null, i32 0, i32 4, i32 0, i32 0, i32 -7, float 0.000000e+00)",
        "call void @qrt_k_lm_head(ptr %ctx, ptr %buf2, ptr %buf1, ptr null, ptr null, "
        "ptr getelementptr (i8, ptr @qm_weights_start, i64 320), ptr null, i32 0, i32 4, i32 8, "
        "i32 0, i32 0, float 0.000000e+00)",
        "declare void @qrt_k_linear(ptr, ptr, ptr, ptr, ptr, ptr, ptr, i32, i32, i32, i32, i32, float)",
        "module asm \"\\09.pushsection .lrodata.qm_weights,\\22al\\22,@progbits\"",
        "module asm \"\\09.pushsection .rodata.qm_info,\\22a\\22,@progbits\"",
        "module asm \"\\09.balign 64\"",
        /* the .incbin string: quote and backslash escaped, UTF-8 as octal */
        "we \\\\\\22ights\\\\\\\\ \\\\303\\\\251.bin\\22\"",
        "module asm \"qm_tokenizer_start:\"",
        "module asm \"qm_info_end:\"",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int found = strstr(ir, want[i]) != NULL;
        if (!found) fprintf(stderr, "%s lacks: %s\n", ir_path, want[i]);
        CHECK(found);
    }
    /* Five kernel calls, in graph order. */
    const char *order[] = {"@qrt_k_embed(ptr %ctx", "@qrt_k_rmsnorm(ptr %ctx", "@qrt_k_linear(ptr %ctx",
                           "@qrt_k_add(ptr %ctx", "@qrt_k_lm_head(ptr %ctx"};
    const char *at = ir;
    for (int i = 0; i < 5; i++) {
        const char *p = strstr(at, order[i]);
        CHECK(p != NULL);
        if (p) at = p;
    }
    free(ir);
}

static void check_blob_section(const elf *e, const char *sec, const char *sym, uint64_t size, int large) {
    const Elf64_Shdr *s = elf_section(e, sec);
    CHECK(s != NULL);
    if (!s) return;
    CHECK(s->sh_type == SHT_PROGBITS);
    CHECK(s->sh_addralign == 64);
    CHECK(s->sh_size == size);
    CHECK((s->sh_flags & SHF_ALLOC) != 0);
    CHECK((s->sh_flags & (SHF_WRITE | SHF_EXECINSTR)) == 0);
    CHECK(((s->sh_flags & SHF_X86_64_LARGE) != 0) == large);
    char name[64];
    snprintf(name, sizeof name, "%s_start", sym);
    const Elf64_Sym *st = elf_symbol(e, name);
    snprintf(name, sizeof name, "%s_end", sym);
    const Elf64_Sym *en = elf_symbol(e, name);
    CHECK(st && en);
    if (!st || !en) return;
    CHECK(strcmp(elf_section_name(e, st), sec) == 0);
    CHECK(strcmp(elf_section_name(e, en), sec) == 0);
    CHECK(st->st_value == 0 && en->st_value == size);
    CHECK(ELF64_ST_BIND(st->st_info) == STB_GLOBAL && ELF64_ST_BIND(en->st_info) == STB_GLOBAL);
    CHECK(ELF64_ST_VISIBILITY(st->st_other) == STV_HIDDEN);
}

static void test_object(const char *obj) {
    elf e;
    CHECK(elf_open(&e, obj) == 0);
    if (!e.eh) {
        free(e.data);
        return;
    }
    CHECK(e.eh->e_machine == EM_X86_64 && e.eh->e_type == ET_REL);
    check_blob_section(&e, ".lrodata.qm_weights", "qm_weights", WEIGHTS_SIZE, 1);
    check_blob_section(&e, ".rodata.qm_tokenizer", "qm_tokenizer", sizeof tok_data - 1, 0);
    check_blob_section(&e, ".rodata.qm_info", "qm_info", sizeof info_data - 1, 0);
    /* the embedded bytes are the file's bytes */
    const Elf64_Shdr *ws = elf_section(&e, ".lrodata.qm_weights");
    if (ws) {
        float v;
        memcpy(&v, e.data + ws->sh_offset + 320, sizeof v);
        CHECK(v == weight_at(320));
    }
    const Elf64_Sym *s = elf_symbol(&e, "qm_forward");
    CHECK(s && ELF64_ST_TYPE(s->st_info) == STT_FUNC && ELF64_ST_BIND(s->st_info) == STB_GLOBAL &&
          strcmp(elf_section_name(&e, s), ".text") == 0);
    s = elf_symbol(&e, "qm_config");
    CHECK(s && ELF64_ST_TYPE(s->st_info) == STT_OBJECT && s->st_size == QRT_CFG_COUNT * 4 &&
          s->st_shndx != SHN_UNDEF);
    if (s && s->st_shndx != SHN_UNDEF) CHECK((e.sh[s->st_shndx].sh_flags & SHF_WRITE) == 0);
    s = elf_symbol(&e, "qm_buf_widths");
    CHECK(s && s->st_size == 12 && s->st_shndx != SHN_UNDEF);
    const char *undef[] = {"qrt_buf", "qrt_k_embed", "qrt_k_rmsnorm", "qrt_k_linear", "qrt_k_add", "qrt_k_lm_head"};
    for (int i = 0; i < 6; i++) {
        s = elf_symbol(&e, undef[i]);
        CHECK(s && s->st_shndx == SHN_UNDEF);
    }
    CHECK(elf_symbol(&e, "qrt_k_rope") == NULL); /* only what the graph uses */
    /* no path of this machine inside the object */
    CHECK(memmem(e.data, e.size, dir, strlen(dir)) == NULL);
    free(e.data);
}

static void expected_run_output(char *out, size_t cap) {
    char wdata[40];
    size_t k = 0;
    unsigned char blob[32];
    for (int i = 0; i < 8; i++) {
        float v = weight_at((size_t)i * 4);
        memcpy(blob + i * 4, &v, 4);
    }
    for (int i = 0; i < 32; i++) wdata[k++] = blob[i] >= 0x20 && blob[i] < 0x7f ? (char)blob[i] : '.';
    wdata[k] = '\0';
    snprintf(out, cap,
             "config 1 1 1 4 2 1 2 8 8 256 3 2 1 2 256\n"
             "widths 4 4 8\n"
             "blob weights size=%d align64=1 data=%s\n"
             "blob tokenizer size=%d align64=1 data=%.32s\n"
             "blob info size=%d align64=1 data=%.32s\n"
             "qrt_buf ctx=ok id=0\n"
             "qrt_buf ctx=ok id=1\n"
             "qrt_buf ctx=ok id=2\n"
             "qrt_k_embed ctx=ok out=buf0 a=- b=- c=- w=+0(%g) bias=- dt=0 p=4,0,0,0 f0=0\n"
             "qrt_k_rmsnorm ctx=ok out=buf1 a=buf0 b=- c=- w=+128(%g) bias=- dt=0 p=4,0,0,0 f0=1e-05\n"
             "qrt_k_linear ctx=ok out=buf0 a=buf1 b=- c=- w=+192(%g) bias=+256(%g) dt=1 p=4,4,0,0 f0=0\n"
             "qrt_k_add ctx=ok out=buf1 a=buf0 b=buf1 c=- w=- bias=- dt=0 p=4,0,0,-7 f0=0\n"
             "qrt_k_lm_head ctx=ok out=buf2 a=buf1 b=- c=- w=+320(%g) bias=- dt=0 p=4,8,0,0 f0=0\n"
             "done\n",
             WEIGHTS_SIZE, wdata, (int)sizeof tok_data - 1, tok_data, (int)sizeof info_data - 1,
             info_data, (double)weight_at(0), (double)weight_at(128), (double)weight_at(192),
             (double)weight_at(256), (double)weight_at(320));
}

static void test_link(const char *obj) {
    char exe[256], exe2[256], cmd[600];
    qc_err err = {{0}};
    path_in_dir(exe, sizeof exe, "model.bin");
    path_in_dir(exe2, sizeof exe2, "model2.bin");
    int rc = qc_link_exe_with(obj, QC_TEST_FAKERT, exe, &err);
    if (rc) fprintf(stderr, "link: %s\n", err.msg);
    CHECK(rc == 0);
    if (rc) return;

    /* the call sequence and values */
    snprintf(cmd, sizeof cmd, "'%s'", exe);
    char *got = run(cmd);
    char want[4096];
    expected_run_output(want, sizeof want);
    if (!got || strcmp(got, want) != 0)
        fprintf(stderr, "executable printed:\n%s\nwanted:\n%s\n", got ? got : "(nothing)", want);
    CHECK(got && strcmp(got, want) == 0);
    free(got);

    /* nothing but libc */
    snprintf(cmd, sizeof cmd, "ldd '%s'", exe);
    char *ldd = run(cmd);
    CHECK(ldd && strstr(ldd, "libc.so"));
    for (char *line = ldd ? strtok(ldd, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        int ok = strstr(line, "linux-vdso") || strstr(line, "libc.so") || strstr(line, "libm.so") ||
                 strstr(line, "libpthread.so") || strstr(line, "libdl.so") || strstr(line, "ld-linux");
        if (!ok) fprintf(stderr, "unexpected dependency: %s\n", line);
        CHECK(ok);
    }
    free(ldd);

    /* the weights are mapped from the file, read-only, not copied */
    elf e;
    CHECK(elf_open(&e, exe) == 0);
    if (e.eh) {
        CHECK(e.eh->e_type == ET_DYN); /* PIE */
        const Elf64_Sym *s = elf_symbol(&e, "qm_weights_start");
        CHECK(s && s->st_value % 64 == 0);
        const Elf64_Phdr *ph = (const Elf64_Phdr *)(e.data + e.eh->e_phoff);
        int found = 0;
        for (int i = 0; s && i < e.eh->e_phnum; i++) {
            if (ph[i].p_type != PT_LOAD) continue;
            if (s->st_value < ph[i].p_vaddr || s->st_value + WEIGHTS_SIZE > ph[i].p_vaddr + ph[i].p_filesz)
                continue;
            found = 1;
            CHECK(ph[i].p_flags == PF_R);
            float v;
            memcpy(&v, e.data + ph[i].p_offset + (s->st_value - ph[i].p_vaddr) + 192, sizeof v);
            CHECK(v == weight_at(192));
        }
        CHECK(found);
    }
    free(e.data);

    /* linking is deterministic too */
    CHECK(qc_link_exe_with(obj, QC_TEST_FAKERT, exe2, &err) == 0);
    CHECK(same_file(exe, exe2));
    unlink(exe);
    unlink(exe2);
}

static void test_errors(qc_graph *g, const char *obj) {
    char out[256], badobj[256];
    qc_err err = {{0}};
    path_in_dir(out, sizeof out, "err.o");

    /* missing input file: named in the message, no object left */
    qc_codegen_opts o = {weights_path, "/nonexistent/tok.bin", info_path, out, NULL, 2, NULL, 0};
    CHECK(qc_codegen_llvm(g, &o, &err) == -1);
    CHECK(strstr(err.msg, "/nonexistent/tok.bin") != NULL);
    CHECK(!exists(out));

    /* a tensor beyond the blob */
    g->tensors[4].blob_offset = WEIGHTS_SIZE - 64;
    err.msg[0] = '\0';
    CHECK(codegen(g, out, NULL, 2, &err) == -1);
    CHECK(strstr(err.msg, "lm_head.weight") != NULL);
    CHECK(!exists(out));
    g->tensors[4].blob_offset = 320;

    /* a buffer id out of range */
    g->ops[3].in[1] = 7;
    err.msg[0] = '\0';
    CHECK(codegen(g, out, NULL, 2, &err) == -1);
    CHECK(strstr(err.msg, "buffer id 7") != NULL);
    g->ops[3].in[1] = 1;

    /* bad optimization level */
    CHECK(codegen(g, out, NULL, 7, &err) == -1);

    /* link: missing object, then a file the linker rejects */
    err.msg[0] = '\0';
    CHECK(qc_link_exe_with("/nonexistent/x.o", QC_TEST_FAKERT, out, &err) == -1);
    CHECK(strstr(err.msg, "/nonexistent/x.o") != NULL);
    path_in_dir(badobj, sizeof badobj, "bad.o");
    write_file(badobj, "not an object\n", 14);
    err.msg[0] = '\0';
    CHECK(qc_link_exe_with(badobj, QC_TEST_FAKERT, out, &err) == -1);
    CHECK(strstr(err.msg, "linking failed") != NULL && strchr(err.msg, '\n') == NULL);
    fprintf(stderr, "(expected) %s\n", err.msg);
    CHECK(!exists(out));
    unlink(badobj);

    /* an object without the runtime's symbols: undefined references */
    err.msg[0] = '\0';
    CHECK(qc_link_exe_with(obj, info_path, out, &err) == -1); /* "runtime" that is not an archive */
    CHECK(err.msg[0] != '\0');
    CHECK(!exists(out));
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/qc_test_codegen_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    /* quote, backslash, space and UTF-8 in the name: the .incbin string must escape them */
    path_in_dir(weights_path, sizeof weights_path, "we \"ights\\ \xc3\xa9.bin");
    path_in_dir(tok_path, sizeof tok_path, "tokenizer.bin");
    path_in_dir(info_path, sizeof info_path, "info.json");
    unsigned char w[WEIGHTS_SIZE];
    for (size_t o = 0; o < WEIGHTS_SIZE; o += 4) {
        float v = weight_at(o);
        memcpy(w + o, &v, 4);
    }
    write_file(weights_path, w, sizeof w);
    write_file(tok_path, tok_data, sizeof tok_data - 1);
    write_file(info_path, info_data, sizeof info_data - 1);

    qc_graph *g = make_graph();
    qc_err err = {{0}};
    char obj[256], ir[256];
    path_in_dir(obj, sizeof obj, "model.o");
    path_in_dir(ir, sizeof ir, "model.ll");

    test_determinism(g);
    int rc = codegen(g, obj, ir, 0, &err); /* unoptimized module: same calls */
    CHECK(rc == 0);
    if (rc == 0) test_ir(ir);
    rc = codegen(g, obj, ir, 2, &err);
    if (rc) fprintf(stderr, "codegen: %s\n", err.msg);
    CHECK(rc == 0);
    if (rc == 0) {
        test_ir(ir);
        test_object(obj);
        test_link(obj);
        test_errors(g, obj);
    }

    qc_graph_free(g);
    unlink(obj);
    unlink(ir);
    unlink(weights_path);
    unlink(tok_path);
    unlink(info_path);
    if (rmdir(dir) != 0) {
        fprintf(stderr, "leftover files in %s\n", dir);
        failures++;
    }
    if (failures) fprintf(stderr, "test_codegen: %d check(s) failed\n", failures);
    return failures ? 1 : 0;
}
