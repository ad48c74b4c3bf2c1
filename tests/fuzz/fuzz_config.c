/*
 * tests/fuzz/fuzz_config.c — libFuzzer target for the config.json reader
 * (frontend/config.c, qc_config_load).
 *
 * The bytes are config.json, handed over as /proc/self/fd/N of a memfd (a
 * scratch file where memfd is missing). An accepted config must describe a
 * network the later stages can build without re-checking: every size
 * positive, heads a multiple of KV heads, an even head dimension, BOS/EOS
 * inside the vocabulary or -1, positive finite eps and theta, a
 * NUL-terminated model_type. A refused one leaves the documented defaults
 * (zeroes, bos = eos = -1) and a one-line message naming the file.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "qc/frontend.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int fd = -2;
    char path[512];
    if (fd == -2)
        fd = memfd_create("qc_fuzz_config", MFD_CLOEXEC);
    if (fd >= 0) {
        FZ_CHECK(ftruncate(fd, 0) == 0, "ftruncate");
        for (size_t off = 0; off < size;) {
            ssize_t w = pwrite(fd, data + off, size - off, (off_t)off);
            FZ_CHECK(w > 0, "pwrite to the memfd");
            off += (size_t)w;
        }
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    } else {
        fz_write("config.json", data, size, path, sizeof path);
    }
    qc_config cfg;
    qc_err err;
    err.msg[0] = 0;
    if (qc_config_load(&cfg, path, &err) != 0) {
        fz_note("refused", err.msg);
        fz_check_msg(err.msg, path);
        FZ_CHECK(cfg.n_layers == 0 && cfg.dim == 0 && cfg.bos == -1 && cfg.eos == -1, "refused config not reset");
        return 0;
    }
    fz_note("accepted", NULL);
    FZ_CHECK(memchr(cfg.model_type, 0, sizeof cfg.model_type) != NULL, "model_type not NUL-terminated");
    FZ_CHECK(cfg.n_layers > 0 && cfg.dim > 0 && cfg.n_heads > 0 && cfg.n_kv_heads > 0 && cfg.head_dim > 0 &&
                 cfg.ffn_dim > 0 && cfg.vocab > 0 && cfg.max_ctx > 0,
             "a size is not positive: layers %d dim %d heads %d kv %d head_dim %d ffn %d vocab %d ctx %d",
             (int)cfg.n_layers, (int)cfg.dim, (int)cfg.n_heads, (int)cfg.n_kv_heads, (int)cfg.head_dim,
             (int)cfg.ffn_dim, (int)cfg.vocab, (int)cfg.max_ctx);
    FZ_CHECK(cfg.n_heads % cfg.n_kv_heads == 0, "heads %d, kv heads %d", (int)cfg.n_heads, (int)cfg.n_kv_heads);
    FZ_CHECK(cfg.head_dim % 2 == 0, "odd head_dim %d", (int)cfg.head_dim);
    FZ_CHECK((int64_t)cfg.n_heads * cfg.head_dim <= INT32_MAX, "heads x head_dim overflows");
    FZ_CHECK(cfg.bos >= -1 && cfg.bos < cfg.vocab && cfg.eos >= -1 && cfg.eos < cfg.vocab, "bos %d eos %d vocab %d",
             (int)cfg.bos, (int)cfg.eos, (int)cfg.vocab);
    FZ_CHECK(cfg.norm_eps > 0 && isfinite(cfg.norm_eps) && cfg.rope_theta > 0 && isfinite(cfg.rope_theta),
             "eps %g theta %g", (double)cfg.norm_eps, (double)cfg.rope_theta);
    FZ_CHECK((cfg.tie_embeddings == 0 || cfg.tie_embeddings == 1) && (cfg.attn_bias == 0 || cfg.attn_bias == 1),
             "flags %d %d", (int)cfg.tie_embeddings, (int)cfg.attn_bias);
    return 0;
}
