/*
 * tests/unit/test_config.c — config.json loading (frontend/config.c).
 *
 * The stories260K config must load to its exact values; written configs
 * check the defaults and the per-architecture rules (qwen2 biases, sliding
 * windows); the committed bad configs of tests/bad/files/config_* and more
 * written here must fail with a message naming the file and the key.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qc/frontend.h"

static int failures;
static char tmpdir[256], cfgpath[512];

#define CHECK(c)                                                                  \
    do {                                                                          \
        if (!(c)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
            failures++;                                                           \
        }                                                                         \
    } while (0)

/* Writes text to the temp config.json; returns its path. */
static const char *put(const char *text) {
    FILE *f = fopen(cfgpath, "wb");
    if (!f || fwrite(text, 1, strlen(text), f) != strlen(text)) {
        fprintf(stderr, "cannot write %s\n", cfgpath);
        exit(1);
    }
    fclose(f);
    return cfgpath;
}

static int load_ok(qc_config *c, const char *path, int line) {
    qc_err e = {{0}};
    if (qc_config_load(c, path, &e)) {
        fprintf(stderr, "test_config.c:%d: unexpected error: %s\n", line, e.msg);
        failures++;
        return -1;
    }
    return 0;
}
#define LOAD(c, text) load_ok((c), put(text), __LINE__)

static void expect_fail(const char *path, const char *want, int line) {
    qc_config c;
    qc_err e = {{0}};
    if (qc_config_load(&c, path, &e) == 0) {
        fprintf(stderr, "test_config.c:%d: loaded but should fail (%s)\n", line, want);
        failures++;
        return;
    }
    if (strncmp(e.msg, path, strlen(path)) != 0 || !strstr(e.msg, want) || strchr(e.msg, '\n')) {
        fprintf(stderr, "test_config.c:%d: got \"%s\"\n   want \"%s: ...%s...\"\n", line, e.msg, path, want);
        failures++;
    }
}
#define BAD(text, want) expect_fail(put(text), (want), __LINE__)

/* A valid llama config with the members in `extra` (JSON text) added. */
static const char *with(const char *extra) {
    static char buf[2048];
    snprintf(buf, sizeof buf,
             "{\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 172, "
             "\"num_hidden_layers\": 5, \"num_attention_heads\": 8, \"vocab_size\": 512%s%s}",
             *extra ? ", " : "", extra);
    return buf;
}

static void test_stories(void) {
    qc_config c;
    if (load_ok(&c, QC_DATA "/stories260K/config.json", __LINE__))
        return;
    CHECK(strcmp(c.model_type, "llama") == 0 && c.arch == QRT_ARCH_LLAMA);
    CHECK(c.dim == 64 && c.ffn_dim == 172 && c.n_layers == 5);
    CHECK(c.n_heads == 8 && c.n_kv_heads == 4 && c.head_dim == 8);
    CHECK(c.vocab == 512 && c.max_ctx == 512);
    CHECK(c.norm_eps == (float)9.999999747378752e-06 && c.rope_theta == 10000.0f);
    CHECK(c.tie_embeddings == 1 && c.attn_bias == 0);
    CHECK(c.bos == 1 && c.eos == 2);
}

static void test_written(void) {
    qc_config c;
    /* defaults */
    if (LOAD(&c, with("")) == 0) {
        CHECK(c.n_kv_heads == 8 && c.head_dim == 8 && c.max_ctx == 2048);
        CHECK(c.norm_eps == 1e-6f && c.rope_theta == 10000.0f);
        CHECK(c.tie_embeddings == 0 && c.attn_bias == 0 && c.bos == -1 && c.eos == -1);
    }
    /* nulls count as absent; eos as a list; explicit head_dim need not be hidden/heads */
    if (LOAD(&c, with("\"num_key_value_heads\": null, \"bos_token_id\": null, \"eos_token_id\": [2, 7], "
                      "\"head_dim\": 16, \"rope_theta\": 500000, \"rms_norm_eps\": 1e-5, "
                      "\"tie_word_embeddings\": true, \"hidden_act\": \"silu\", \"rope_scaling\": null, "
                      "\"mlp_bias\": false, \"torch_dtype\": \"bfloat16\"")) == 0) {
        CHECK(c.n_kv_heads == 8 && c.head_dim == 16 && c.eos == 2 && c.bos == -1);
        CHECK(c.rope_theta == 500000.0f && c.norm_eps == 1e-5f && c.tie_embeddings == 1);
    }
    if (LOAD(&c, with("\"eos_token_id\": []")) == 0)
        CHECK(c.eos == -1);
    /* qwen2: q/k/v biases unless attention_bias says otherwise */
    const char *q = "{\"model_type\": \"qwen2\", \"hidden_size\": 64, \"intermediate_size\": 128, "
                    "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"num_key_value_heads\": 2, "
                    "\"vocab_size\": 1000, \"max_position_embeddings\": 32768, \"sliding_window\": 4096, "
                    "\"use_sliding_window\": false%s}";
    char buf[1024];
    snprintf(buf, sizeof buf, q, "");
    if (LOAD(&c, buf) == 0) {
        CHECK(strcmp(c.model_type, "qwen2") == 0 && c.attn_bias == 1 && c.n_kv_heads == 2 && c.head_dim == 16);
        CHECK(c.max_ctx == 32768); /* window not in use */
    }
    snprintf(buf, sizeof buf, q, ", \"attention_bias\": false");
    if (LOAD(&c, buf) == 0)
        CHECK(c.attn_bias == 0);
    /* mistral: a sliding window caps the usable context */
    if (LOAD(&c, "{\"model_type\": \"mistral\", \"hidden_size\": 64, \"intermediate_size\": 128, "
                 "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"num_key_value_heads\": 1, "
                 "\"vocab_size\": 1000, \"max_position_embeddings\": 32768, \"sliding_window\": 4096}") == 0)
        CHECK(strcmp(c.model_type, "mistral") == 0 && c.max_ctx == 4096 && c.attn_bias == 0 && c.n_kv_heads == 1);
    if (LOAD(&c, "{\"model_type\": \"mistral\", \"hidden_size\": 64, \"intermediate_size\": 128, "
                 "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 1000, "
                 "\"sliding_window\": null}") == 0)
        CHECK(c.max_ctx == 2048);
    if (LOAD(&c, "{\"model_type\": \"smollm\", \"hidden_size\": 64, \"intermediate_size\": 128, "
                 "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 1000}") == 0)
        CHECK(strcmp(c.model_type, "smollm") == 0 && c.arch == QRT_ARCH_LLAMA);
}

static void test_bad(void) {
    char miss[512];
    snprintf(miss, sizeof miss, "%s/none.json", tmpdir);
    expect_fail(miss, "cannot open", __LINE__);

    BAD("{\"model_type\": \"llama\",}", "offset 23: expected a string key in object");
    BAD("[1]", "offset 0: config is not a JSON object");
    BAD("{}", "key 'model_type': missing (offset 0)");
    BAD("{\"model_type\": 3}", "key 'model_type': must be a string (offset 15)");
    BAD("{\"model_type\": \"gpt_neox\"}",
        "key 'model_type': unsupported architecture 'gpt_neox' (supported: llama, mistral, qwen2, smollm, gpt2, opt) (offset 15)");
    BAD("{\"model_type\": \"gemma\\nx\"}", "unsupported architecture 'gemma?x'");
    BAD("{\"model_type\": \"llama\", \"hidden_size\": 64}", "key 'intermediate_size': missing (offset 0)");
    BAD(with("\"num_key_value_heads\": 3"), "key 'num_key_value_heads': 3 does not divide num_attention_heads (8)");
    BAD(with("\"num_key_value_heads\": 16"), "key 'num_key_value_heads': 16 does not divide");
    BAD(with("\"num_key_value_heads\": 0"), "key 'num_key_value_heads': must be a positive integer");
    BAD(with("\"max_position_embeddings\": -5"), "key 'max_position_embeddings': must be a positive integer");
    BAD(with("\"max_position_embeddings\": 4096.5"), "key 'max_position_embeddings': must be a positive integer");
    BAD(with("\"max_position_embeddings\": 3000000000"), "must be a positive integer");
    BAD(with("\"head_dim\": \"8\""), "key 'head_dim': must be a positive integer");
    BAD(with("\"head_dim\": 7"), "key 'head_dim': head dimension 7 must be even");
    BAD(with("\"rms_norm_eps\": 0"), "key 'rms_norm_eps': must be a positive number");
    BAD(with("\"rms_norm_eps\": \"1e-5\""), "key 'rms_norm_eps': must be a positive number");
    BAD(with("\"rope_theta\": -1"), "key 'rope_theta': must be a positive number");
    BAD(with("\"rope_theta\": 1e300"), "key 'rope_theta': must be a positive number");
    BAD(with("\"tie_word_embeddings\": 1"), "key 'tie_word_embeddings': must be true or false");
    BAD(with("\"attention_bias\": \"no\""), "key 'attention_bias': must be true or false");
    BAD(with("\"eos_token_id\": 512"), "key 'eos_token_id': token id 512 is not below vocab_size (512)");
    BAD(with("\"bos_token_id\": -1"), "key 'bos_token_id': must be a non-negative integer");
    BAD(with("\"eos_token_id\": [\"x\"]"), "key 'eos_token_id': must be a non-negative integer");
    BAD(with("\"hidden_act\": \"gelu_pytorch_tanh\""), "key 'hidden_act': unsupported activation 'gelu_pytorch_tanh' (only silu)");
    BAD(with("\"hidden_act\": 1"), "key 'hidden_act': must be a string");
    BAD(with("\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0}"), "key 'rope_scaling': not supported");
    BAD(with("\"quantization_config\": {\"quant_method\": \"gptq\"}"), "key 'quantization_config': pre-quantized");
    BAD(with("\"mlp_bias\": true"), "key 'mlp_bias': MLP biases are not supported");
    BAD("{\"model_type\": \"llama\", \"hidden_size\": 60, \"intermediate_size\": 172, "
        "\"num_hidden_layers\": 5, \"num_attention_heads\": 8, \"vocab_size\": 512}",
        "key 'hidden_size': 60 is not divisible by num_attention_heads (8) (offset 39)");
    BAD("{\"model_type\": \"mistral\", \"hidden_size\": 64, \"intermediate_size\": 128, "
        "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 1000, \"sliding_window\": 0}",
        "key 'sliding_window': must be a positive integer");
    BAD("{\"model_type\": \"llama\", \"model_type\": \"llama\"}", "duplicate key 'model_type'");

    /* the committed fixtures of tests/bad/ */
    static const struct {
        const char *dir, *want;
    } fx[] = {
        {"config_bad_arch", "key 'model_type': unsupported architecture 'gpt_neox' (supported: llama, mistral, qwen2, smollm, gpt2, opt)"},
        {"config_bad_json", "config.json: offset 41: expected a string key in object"},
        {"config_missing_key", "key 'hidden_size': missing"},
        {"config_zero_layers", "key 'num_hidden_layers': must be a positive integer"},
        {"config_bad_kv_heads", "key 'num_key_value_heads': 3 does not divide num_attention_heads (4)"},
        {"config_bad_act", "key 'hidden_act': unsupported activation 'gelu'"},
        {"config_rope_scaling", "key 'rope_scaling': not supported"},
    };
    char path[1024];
    for (size_t i = 0; i < sizeof fx / sizeof fx[0]; i++) {
        snprintf(path, sizeof path, "%s/bad/files/%s/config.json", QC_TESTS_DIR, fx[i].dir);
        expect_fail(path, fx[i].want, __LINE__);
    }
    /* and the ones that are fine at the config level */
    const char *good[] = {"ok_tiny", "ok_tiny_sharded", "st", "config_shape_mismatch", "no_tokenizer"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        qc_config c;
        snprintf(path, sizeof path, "%s/bad/files/%s/config.json", QC_TESTS_DIR, good[i]);
        if (load_ok(&c, path, __LINE__) == 0)
            CHECK(c.vocab == 512 && c.n_layers == 1 && c.n_kv_heads == 1 && c.head_dim == (i == 3 ? 8 : 4));
    }
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "%s", "/tmp/qc_test_cfg_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(cfgpath, sizeof cfgpath, "%s/config.json", tmpdir);
    test_stories();
    test_written();
    test_bad();
    unlink(cfgpath);
    rmdir(tmpdir);
    if (failures) {
        fprintf(stderr, "test_config: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_config: ok\n");
    return 0;
}
