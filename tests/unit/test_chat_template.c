/*
 * tests/unit/test_chat_template.c — chat templates: recognised at compile
 * time (frontend/chat_template.c), carried in the tokenizer blob's chat
 * section (version 2), read back and applied by libqrt.
 *
 *   families   the real templates of SmolLM2, Qwen2 / 2.5, Llama 2,
 *              Mistral, Zephyr and Llama 3 give the right family, end-of-turn
 *              id, parts and default system message; unknown templates and
 *              templates whose marker tokens are missing give none (and a
 *              version 1 blob, byte-identical to before)
 *   config     chat_template as a list of named templates; chat_template.jinja
 *   spans      qrt_tok_encode_spans parses special tokens only in template
 *              parts, and merges across span boundaries
 *   bad blobs  every truncation and a set of corrupted chat sections are refused
 *
 * The tokenizer is a byte-level vocabulary of the 256 byte tokens plus the
 * special tokens, so every byte of text is one id (id = byte) and the
 * specials are 256 onwards.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qc/frontend.h"
#include "qrt/tokenizer.h"

static int fails;

static void fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    fails++;
}

static const char *const specials[] = {"<s>", "</s>", "<|im_start|>", "<|im_end|>", "<|start_header_id|>",
                                       "<|end_header_id|>", "<|eot_id|>", "<|begin_of_text|>", "<|user|>",
                                       "<|assistant|>", "<|system|>", "<|endoftext|>"};
enum { NSPEC = sizeof specials / sizeof specials[0] };

static int32_t spec_id(const char *s) {
    for (int i = 0; i < NSPEC; i++)
        if (!strcmp(specials[i], s)) return 256 + i;
    return -1;
}

/* GPT-2's byte -> code point map (as runtime/tokenizer.c). */
static unsigned byte_cp(unsigned b) {
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) return b;
    return 256u + (b <= 0x20 ? b : b <= 0xA0 ? 33u + (b - 0x7Fu) : 67u);
}

/* tokenizer.json with the byte vocabulary and the specials, `omit` left out. */
static void write_tokenizer(const char *path, const char *omit) {
    FILE *f = fopen(path, "wb");
    fputs("{\"model\":{\"type\":\"BPE\",\"vocab\":{", f);
    for (unsigned b = 0; b < 256; b++) fprintf(f, "%s\"\\u%04x\":%u", b ? "," : "", byte_cp(b), b);
    for (int i = 0; i < NSPEC; i++)
        if (!omit || strcmp(omit, specials[i])) fprintf(f, ",\"%s\":%d", specials[i], 256 + i);
    fputs("},\"merges\":[]},\"added_tokens\":[", f);
    int first = 1;
    for (int i = 0; i < NSPEC; i++)
        if (!omit || strcmp(omit, specials[i])) {
            fprintf(f, "%s{\"id\":%d,\"content\":\"%s\",\"special\":true}", first ? "" : ",", 256 + i, specials[i]);
            first = 0;
        }
    fputs("],\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false},\"decoder\":{\"type\":\"ByteLevel\"}}", f);
    fclose(f);
}

/* JSON string literal of s. */
static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
        else if (*s == '\n') fputs("\\n", f);
        else fputc(*s, f);
    }
    fputc('"', f);
}

typedef struct loaded {
    uint8_t *blob;
    size_t size;
    qrt_tok *tok;
} loaded;

/* Loads a tokenizer with chat template `tmpl` (JSON-encoded into
 * tokenizer_config.json; raw_cfg: the config's chat_template value as given;
 * jinja: written to chat_template.jinja instead). */
static int load(loaded *L, const char *tmpl, const char *raw_cfg, const char *jinja, const char *omit,
                const char *bos, const char *eos) {
    char dir[] = "/tmp/qc_chat_XXXXXX", p[3][96];
    memset(L, 0, sizeof *L);
    if (!mkdtemp(dir)) return -1;
    snprintf(p[0], sizeof p[0], "%s/tokenizer.json", dir);
    snprintf(p[1], sizeof p[1], "%s/tokenizer_config.json", dir);
    snprintf(p[2], sizeof p[2], "%s/chat_template.jinja", dir);
    write_tokenizer(p[0], omit);
    FILE *f = fopen(p[1], "wb");
    fprintf(f, "{\"bos_token\":\"%s\",\"eos_token\":\"%s\"", bos, eos);
    if (tmpl) {
        fputs(",\"chat_template\":", f);
        json_str(f, tmpl);
    }
    if (raw_cfg) fprintf(f, ",\"chat_template\":%s", raw_cfg);
    fputs("}", f);
    fclose(f);
    if (jinja) {
        f = fopen(p[2], "wb");
        fputs(jinja, f);
        fclose(f);
    }
    qc_err err = {{0}};
    int rc = qc_tokenizer_load(&L->blob, &L->size, p[0], &err);
    char e[128];
    if (rc) fail("load: %s", err.msg);
    else if (qrt_tok_open(&L->tok, L->blob, L->size, e, sizeof e)) fail("open: %s", e), rc = -1;
    for (int i = 0; i < 3; i++) unlink(p[i]);
    rmdir(dir);
    return rc;
}

static void unload(loaded *L) {
    qrt_tok_free(L->tok);
    free(L->blob);
}

static int part_is(const qrt_chat_tmpl *c, int k, const char *want) {
    return c->len[k] == strlen(want) && memcmp(c->part[k], want, c->len[k]) == 0;
}

static const char *const part_names[] = {"prefix", "sys_pre", "sys_suf", "user_pre",
                                         "user_suf", "asst_pre", "asst_suf", "default_sys"};

typedef struct want {
    const char *name, *tmpl, *bos, *eos;
    uint32_t family;
    const char *eot; /* token text */
    uint32_t flags;
    const char *parts[QRT_CHAT_N_PARTS];
} want;

static void check(const want *w, const loaded *L) {
    const qrt_chat_tmpl *c = qrt_tok_chat(L->tok);
    if (!w->family) {
        if (c) fail("%s: recognised as %s, expected none", w->name, qrt_chat_family_name(c->family));
        if (L->blob[4] != 1) fail("%s: no template must give a version 1 blob", w->name);
        if (qrt_tok_eot(L->tok) != -1) fail("%s: eot without a template", w->name);
        return;
    }
    if (!c) {
        fail("%s: not recognised", w->name);
        return;
    }
    if (c->family != w->family) fail("%s: family %s", w->name, qrt_chat_family_name(c->family));
    if (c->eot != spec_id(w->eot) || qrt_tok_eot(L->tok) != c->eot) fail("%s: eot %d", w->name, c->eot);
    if (c->flags != w->flags) fail("%s: flags %u", w->name, c->flags);
    for (int k = 0; k < QRT_CHAT_N_PARTS; k++)
        if (!part_is(c, k, w->parts[k] ? w->parts[k] : ""))
            fail("%s: %s is '%.*s', expected '%s'", w->name, part_names[k], (int)c->len[k], c->part[k],
                 w->parts[k] ? w->parts[k] : "");
}

/* Real templates (abridged where they only repeat themselves). */
static const char SMOL[] =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' "
    "+ message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt "
    "%}{{ '<|im_start|>assistant\n' }}{% endif %}";
static const char QWEN2[] = /* the Jinja source has the two characters \n inside its strings */
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\n"
    "You are a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>"
    "assistant\\n' }}{% endif %}";
static const char QWEN25[] =
    "{%- if tools %}{{- '<|im_start|>system\\n' }}{%- if messages[0]['role'] == 'system' %}{{- "
    "messages[0]['content'] }}{%- else %}{{- 'You are Qwen, created by Alibaba Cloud. You are a helpful "
    "assistant.' }}{%- endif %}{%- else %}{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + "
    "messages[0]['content'] + '<|im_end|>\\n' }}{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by "
    "Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}{%- endif %}{%- endif %}...";
static const char CHATML_NODEF[] =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + "
    "'\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
static const char LLAMA2[] =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
    "messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif "
    "%}{% for message in loop_messages %}{% if loop.index0 == 0 and system_message != false %}{% set content = "
    "'<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = "
    "message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() "
    "+ ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif "
    "%}{% endfor %}";
static const char MISTRAL[] =
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ "
    "raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if "
    "message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == "
    "'assistant' %}{{ message['content'] + eos_token}}{% endif %}{% endfor %}";
static const char ZEPHYR[] =
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + "
    "eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% "
    "elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif "
    "%}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}";
static const char LLAMA3[] =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 "
    "%}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

static void test_families(void) {
    static const want cases[] = {
        {"smollm2", SMOL, "<|im_start|>", "<|im_end|>", QRT_CHAT_CHATML, "<|im_end|>", 0,
         {"", "<|im_start|>system\n", "<|im_end|>\n", "<|im_start|>user\n", "<|im_end|>\n",
          "<|im_start|>assistant\n", "<|im_end|>\n", "You are a helpful AI assistant named SmolLM, trained by Hugging Face"}},
        {"qwen2", QWEN2, "<|endoftext|>", "<|im_end|>", QRT_CHAT_CHATML, "<|im_end|>", 0,
         {"", "<|im_start|>system\n", "<|im_end|>\n", "<|im_start|>user\n", "<|im_end|>\n",
          "<|im_start|>assistant\n", "<|im_end|>\n", "You are a helpful assistant."}},
        {"qwen2.5", QWEN25, "<|endoftext|>", "<|im_end|>", QRT_CHAT_CHATML, "<|im_end|>", 0,
         {"", "<|im_start|>system\n", "<|im_end|>\n", "<|im_start|>user\n", "<|im_end|>\n",
          "<|im_start|>assistant\n", "<|im_end|>\n", "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."}},
        {"chatml", CHATML_NODEF, "<|endoftext|>", "<|im_end|>", QRT_CHAT_CHATML, "<|im_end|>", 0,
         {"", "<|im_start|>system\n", "<|im_end|>\n", "<|im_start|>user\n", "<|im_end|>\n",
          "<|im_start|>assistant\n", "<|im_end|>\n", ""}},
        {"llama2", LLAMA2, "<s>", "</s>", QRT_CHAT_LLAMA2, "</s>", QRT_CHAT_SYS_IN_USER,
         {"", "<<SYS>>\n", "\n<</SYS>>\n\n", "<s>[INST] ", " [/INST]", "", " </s>", ""}},
        {"mistral", MISTRAL, "<s>", "</s>", QRT_CHAT_MISTRAL, "</s>", QRT_CHAT_SYS_IN_USER,
         {"<s>", "", "\n\n", "[INST] ", " [/INST]", "", "</s>", ""}},
        {"zephyr", ZEPHYR, "<s>", "</s>", QRT_CHAT_ZEPHYR, "</s>", 0,
         {"", "<|system|>\n", "</s>\n", "<|user|>\n", "</s>\n", "<|assistant|>\n", "</s>\n", ""}},
        {"llama3", LLAMA3, "<|begin_of_text|>", "<|eot_id|>", QRT_CHAT_LLAMA3, "<|eot_id|>", 0,
         {"<|begin_of_text|>", "<|start_header_id|>system<|end_header_id|>\n\n", "<|eot_id|>",
          "<|start_header_id|>user<|end_header_id|>\n\n", "<|eot_id|>",
          "<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>", ""}},
        {"unknown", "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}", "<s>", "</s>", 0,
         NULL, 0, {NULL}},
        {"empty", "", "<s>", "</s>", 0, NULL, 0, {NULL}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        loaded L;
        if (load(&L, cases[i].tmpl, NULL, NULL, NULL, cases[i].bos, cases[i].eos)) continue;
        check(&cases[i], &L);
        unload(&L);
    }
    /* ChatML markers whose tokens the vocabulary lacks: not a usable template */
    loaded L;
    want none = {"chatml without <|im_end|>", NULL, NULL, NULL, 0, NULL, 0, {NULL}};
    if (!load(&L, SMOL, NULL, NULL, "<|im_end|>", "<s>", "</s>")) {
        check(&none, &L);
        unload(&L);
    }
    /* No template at all: version 1, and the blob is what it always was */
    want none2 = {"no template", NULL, NULL, NULL, 0, NULL, 0, {NULL}};
    if (!load(&L, NULL, NULL, NULL, NULL, "<s>", "</s>")) {
        check(&none2, &L);
        unload(&L);
    }
    /* A list of named templates: "default" wins */
    char raw[2048];
    snprintf(raw, sizeof raw,
             "[{\"name\":\"tool_use\",\"template\":\"{{ '[INST]' }}{{ '[/INST]' }}\"},"
             "{\"name\":\"default\",\"template\":\"{{'<|im_start|>' + m + '<|im_end|>'}}\"}]");
    if (!load(&L, NULL, raw, NULL, NULL, "<s>", "<|im_end|>")) {
        const qrt_chat_tmpl *c = qrt_tok_chat(L.tok);
        if (!c || c->family != QRT_CHAT_CHATML) fail("named templates: the default one should be used");
        unload(&L);
    }
    /* chat_template.jinja beside tokenizer.json (newer transformers) */
    if (!load(&L, NULL, NULL, LLAMA3, NULL, "<|begin_of_text|>", "<|eot_id|>")) {
        const qrt_chat_tmpl *c = qrt_tok_chat(L.tok);
        if (!c || c->family != QRT_CHAT_LLAMA3) fail("chat_template.jinja not read");
        unload(&L);
    }
}

static void show(const char *what, const int32_t *ids, size_t n) {
    fprintf(stderr, "  %s:", what);
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "\n");
}

static void test_spans(void) {
    loaded L;
    if (load(&L, SMOL, NULL, NULL, NULL, "<|im_start|>", "<|im_end|>")) return;
    /* template part / user text (with a special token's text) / template part */
    const char *user = "a<|im_end|>";
    qrt_tok_span sp[3] = {{"<|im_start|>user\n", 17, 1}, {user, strlen(user), 0}, {"<|im_end|>\n", 11, 1}};
    int32_t *ids;
    size_t n;
    int32_t wantids[32], k = 0;
    wantids[k++] = spec_id("<|im_start|>");
    for (const char *p = "user\na<|im_end|>"; *p; p++) wantids[k++] = (unsigned char)*p;
    wantids[k++] = spec_id("<|im_end|>");
    wantids[k++] = '\n';
    if (qrt_tok_encode_spans(L.tok, sp, 3, &ids, &n)) {
        fail("encode_spans failed");
    } else {
        if (n != (size_t)k || memcmp(ids, wantids, n * sizeof *ids)) {
            fail("encode_spans: specials parsed in user text, or missed in template parts");
            show("got ", ids, n);
            show("want", wantids, (size_t)k);
        }
        free(ids);
    }
    /* a special token split across spans is not a token */
    qrt_tok_span split[2] = {{"<|im_", 5, 1}, {"end|>", 5, 1}};
    if (!qrt_tok_encode_spans(L.tok, split, 2, &ids, &n)) {
        if (n != 10) fail("a special token across two spans must stay text (%zu ids)", n);
        free(ids);
    }
    /* zero spans, empty spans */
    if (qrt_tok_encode_spans(L.tok, NULL, 0, &ids, &n) || n != 0) fail("no spans");
    else free(ids);
    qrt_tok_span empty[2] = {{"", 0, 1}, {NULL, 0, 0}};
    if (qrt_tok_encode_spans(L.tok, empty, 2, &ids, &n) || n != 0) fail("empty spans");
    else free(ids);
    unload(&L);
}

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static void wr32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24); }

static void expect_refused(const uint8_t *b, size_t n, const char *what) {
    qrt_tok *t = NULL;
    char e[128];
    if (qrt_tok_open(&t, b, n, e, sizeof e) == 0) {
        fail("corrupt chat section accepted: %s", what);
        qrt_tok_free(t);
    }
}

static void test_bad(void) {
    loaded L;
    if (load(&L, SMOL, NULL, NULL, NULL, "<|im_start|>", "<|im_end|>")) return;
    if (L.blob[4] != 2) fail("a chat template must give a version 2 blob");
    uint32_t chat = rd32(L.blob + 48);
    size_t sec = L.size - chat;
    uint8_t *b = malloc(L.size);
    for (size_t cut = 0; cut < L.size; cut += cut < 64 || cut + 300 > L.size ? 1 : 97)
        expect_refused(L.blob, cut, "truncated");
    struct {
        size_t off;
        uint32_t val;
        const char *what;
    } edits[] = {
        {sec, 0x54484351u ^ 1, "magic"},      {sec + 4, 0, "family 0"},        {sec + 4, 99, "family 99"},
        {sec + 8, 100000, "eot beyond the vocabulary"}, {sec + 8, (uint32_t)-2, "eot -2"},
        {sec + 12, 2, "unknown flag"},        {sec + 16, 7, "too few parts"},  {sec + 16, 9, "a part too many"},
        {sec + 20, 1000, "part length past the end"}, {sec + 20, 0xFFFFFFFFu, "part length overflow"},
        {48, chat - 1, "chat size"},          {48, 0, "version 2 without a chat section"},
        {52, 1, "reserved bytes"},            {4, 3, "version 3"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        memcpy(b, L.blob, L.size);
        wr32(b + edits[i].off, edits[i].val);
        expect_refused(b, L.size, edits[i].what);
    }
    /* a part that ends one byte short of the section */
    memcpy(b, L.blob, L.size);
    wr32(b + sec + 20, rd32(b + sec + 20) + 1);
    expect_refused(b, L.size, "parts do not tile the section");
    free(b);
    unload(&L);
}

int main(void) {
    test_families();
    test_spans();
    test_bad();
    if (fails) {
        fprintf(stderr, "%d failure(s)\n", fails);
        return 1;
    }
    printf("ok\n");
    return 0;
}
