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
#include <stdint.h>
#include <string.h>

#include "qc/frontend.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[512];
    fz_memfile("config.json", data, size, path, sizeof path);
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
    fz_check_config(&cfg);
    return 0;
}
