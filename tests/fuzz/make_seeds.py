#!/usr/bin/env python3
"""tests/fuzz/make_seeds.py — writes the seed inputs of the fuzz corpora.

    python3 tests/fuzz/make_seeds.py BUILD/tests/fuzz_mkblob

Seeds are small valid (and a few nearly valid) inputs, named seed_*; they are
committed under tests/fuzz/corpus/<target>/ beside the inputs libFuzzer found
(named by their SHA-1, added with `tests/fuzz/run.sh merge`). Rerunning this
script rewrites the seed_* files only (deterministic; python3, stdlib only).
fuzz_mkblob (built by every build, tests/fuzz/mkblob.c) converts
tokenizer.json files into the blobs qcc embeds, for the tok_blob corpus.

Sources: ../shared/data/stories260K (config, tokenizer, the safetensors
header with its tensors shrunk), tests/unit/tok_*.json (every tokenizer style
qcc supports), tests/bad/files (the hand-made bad checkpoints), and inputs
written here (JSON corner cases, tiny checkpoints, prompts).
"""
import glob
import json
import os
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
DATA = os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "stories260K"))
CORPUS = os.path.join(HERE, "corpus")

SHARD_SEP = b"\n@@shard@@\n"  # fuzz_safetensors.c
CONFIG_SEP = b"\n@@tokenizer_config.json@@\n"  # fuzz_tokenizer_json.c
# fuzz_prompt.c's tokenizer table, by first byte
PROMPT_TOKS = ["stories", "gpt2", "smol", "prefix", "llama3", "qwen2", "metaspace", "metaspace_nosplit"]
TOK_FIXTURES = ["gpt2", "smol", "prefix", "llama3", "qwen2", "metaspace", "metaspace_nosplit"]


def read(path):
    with open(path, "rb") as f:
        return f.read()


def reset(target):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    for p in glob.glob(os.path.join(d, "seed_*")):
        os.remove(p)
    return d


def put(d, name, data):
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed_" + name), "wb") as f:
        f.write(data)


def safetensors(tensors, metadata=None, pad=0):
    """tensors: [(name, dtype, shape, bytes)] -> file bytes (offsets in order)."""
    hdr, data = {}, b""
    if metadata is not None:
        hdr["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        hdr[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * pad
    return struct.pack("<Q", len(h)) + h + data


def elems(n, size, seed):
    return bytes((seed * 31 + i * 7) & 0xFF for i in range(n * size))


def json_seeds():
    d = reset("json")
    put(d, "config", read(os.path.join(DATA, "config.json")))
    put(d, "tokenizer_config", read(os.path.join(DATA, "tokenizer_config.json")))
    put(d, "index", read(os.path.join(ROOT, "tests/bad/files/ok_tiny_sharded/model.safetensors.index.json")))
    st = read(os.path.join(DATA, "model.safetensors"))
    (n,) = struct.unpack("<Q", st[:8])
    put(d, "st_header", st[8 : 8 + n])
    put(d, "tokenizer_prefix", read(os.path.join(ROOT, "tests/unit/tok_prefix.json")))
    cases = {
        "scalars": '[null,true,false,0,-0,1,-1,0.5,-1.5e-3,1E+2,1.7976931348623157e308,4.9e-324,1e-400,9223372036854775807,'
                   '-9223372036854775808,9223372036854775808,-9223372036854775809,123456789012345678901234567890]',
        "strings": r'["", "a", "\"\\\/\b\f\n\r\t", "\u0000", "\u00e9\u4e2d", "\ud83d\ude00", "caf' + "\u00e9" +
                   r'", "\u2581x", "' + "\U0001F600" + r'"]',
        "objects": '{"a":{"b":{"c":[{},[],{"":""}]}},"a\\u0000b":1,"x":[1,[2,[3,[4]]]],"dup_like":{"k":1,"K":2}}',
        "nested": "[" * 127 + "]" * 127,
        "too_deep": "[" * 129 + "]" * 129,
        "ws": ' \t\r\n{ "k" : [ 1 , 2 ] , "v" : "w" } \n',
        "bad_dup": '{"a":1,"a":2}',
        "bad_trailing": '{"a":[1,2,],}',
        "bad_surrogate": r'["\ud800", "\udc00x"]',
        "bad_utf8": b'["\xc3\x28", "\xed\xa0\x80", "\xf4\x90\x80\x80"]',
        "bad_number": "[01, 1., .5, -, 1e, +1]",
        "bad_range": "[2e308]",
        "bad_ctrl": '["a\tb"]',
        "big_object": "{" + ",".join('"k%d":%d' % (i, i) for i in range(40)) + "}",
    }
    for k, v in cases.items():
        put(d, k, v)


def config_seeds():
    d = reset("config")
    put(d, "stories", read(os.path.join(DATA, "config.json")))
    for p in sorted(glob.glob(os.path.join(ROOT, "tests/bad/files/*/config.json"))):
        put(d, "bad_" + os.path.basename(os.path.dirname(p)), read(p))
    base = json.loads(read(os.path.join(DATA, "config.json")))
    variants = {
        "qwen2": {"model_type": "qwen2", "use_sliding_window": True, "sliding_window": 128, "attention_bias": True},
        "mistral": {"model_type": "mistral", "sliding_window": 4096, "head_dim": 16, "rope_theta": 1e6},
        "smollm": {"model_type": "smollm", "tie_word_embeddings": True, "bos_token_id": None, "mlp_bias": False},
        "nulls": {"num_key_value_heads": None, "rms_norm_eps": None, "rope_scaling": None, "hidden_act": "swish"},
    }
    for name, v in variants.items():
        c = dict(base)
        c.update(v)
        put(d, name, json.dumps(c, indent=1))
    # learned-position families (as their Hugging Face configs spell them)
    put(d, "gpt2", json.dumps({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_embd": 64,
                               "n_layer": 2, "n_head": 4, "n_positions": 128, "n_inner": None, "vocab_size": 512,
                               "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
                               "bos_token_id": 0, "eos_token_id": 0, "tie_word_embeddings": True}, indent=1))
    put(d, "opt", json.dumps({"model_type": "opt", "architectures": ["OPTForCausalLM"], "hidden_size": 64,
                              "num_hidden_layers": 2, "num_attention_heads": 4, "ffn_dim": 256, "vocab_size": 512,
                              "max_position_embeddings": 128, "word_embed_proj_dim": 64, "activation_function": "relu",
                              "do_layer_norm_before": True, "enable_bias": True, "bos_token_id": 2,
                              "eos_token_id": 2}, indent=1))


def tiny_model_tensors(seed=0):
    return [
        ("model.embed_tokens.weight", "F32", [4, 2], elems(8, 4, seed + 1)),
        ("model.norm.weight", "F16", [2], elems(2, 2, seed + 2)),
        ("model.layers.0.mlp.gate_proj.weight", "BF16", [2, 1, 2], elems(4, 2, seed + 3)),
        ("scalar", "F32", [], elems(1, 4, seed + 4)),
        ("empty", "F32", [0, 3], b""),
    ]


def safetensors_seeds():
    d = reset("safetensors")
    put(d, "tiny", safetensors(tiny_model_tensors(), {"format": "pt"}))
    put(d, "tiny_padded", safetensors(tiny_model_tensors(5), None, pad=5))
    put(d, "empty", safetensors([]))
    # the real stories260K header, every tensor shrunk to a few elements
    st = read(os.path.join(DATA, "model.safetensors"))
    (n,) = struct.unpack("<Q", st[:8])
    hdr = json.loads(st[8 : 8 + n])
    ts = []
    for i, (name, e) in enumerate(sorted((k, v) for k, v in hdr.items() if k != "__metadata__")):
        shape = [min(s, 2) for s in e["shape"]]
        size = {"F32": 4, "F16": 2, "BF16": 2}[e["dtype"]]
        cnt = 1
        for s in shape:
            cnt *= s
        ts.append((name, e["dtype"], shape, elems(cnt, size, i)))
    put(d, "stories_shrunk", safetensors(ts, hdr.get("__metadata__")))
    for p in sorted(glob.glob(os.path.join(ROOT, "tests/bad/files/st/*.safetensors"))):
        put(d, "bad_" + os.path.basename(p)[: -len(".safetensors")], read(p))
    # sharded: index + 1.safetensors + 2.safetensors
    t = tiny_model_tensors(9)
    a, b = t[:3], t[3:]
    index = {"metadata": {"total_size": 0},
             "weight_map": {**{x[0]: "1.safetensors" for x in a}, **{x[0]: "2.safetensors" for x in b}}}
    put(d, "sharded", json.dumps(index, indent=1).encode() + SHARD_SEP + safetensors(a) + SHARD_SEP +
        safetensors(b))
    index["weight_map"]["scalar"] = "1.safetensors"
    put(d, "sharded_wrong_shard", json.dumps(index).encode() + SHARD_SEP + safetensors(a) + SHARD_SEP +
        safetensors(b))
    index = {"weight_map": {"x": "sub/../1.safetensors", "y": "/etc/passwd"}}
    put(d, "sharded_bad_names", json.dumps(index).encode() + SHARD_SEP + safetensors([]))


TINY_BL = ('{"model":{"type":"BPE","vocab":{"h":0,"i":1,"\\u0120":2,"!":3,"hi":4,"\\u0120hi":5,"<|end|>":6},'
           '"merges":["h i",["\\u0120","hi"]]},"added_tokens":[{"id":6,"content":"<|end|>","special":true}],'
           '"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"use_regex":true},'
           '"decoder":{"type":"ByteLevel"}}')
TINY_SPM = ('{"model":{"type":"BPE","byte_fallback":true,"unk_token":"<unk>","vocab":{"<unk>":0,"<s>":1,"</s>":2,'
            '"<0x41>":3,"\\u2581":4,"a":5,"\\u2581a":6},"merges":["\\u2581 a"]},'
            '"added_tokens":[{"id":0,"content":"<unk>","special":true},{"id":1,"content":"<s>","special":true},'
            '{"id":2,"content":"</s>","special":true}],"normalizer":{"type":"Sequence","normalizers":['
            '{"type":"Prepend","prepend":"\\u2581"},{"type":"Replace","pattern":{"String":" "},"content":"\\u2581"}]},'
            '"pre_tokenizer":null}')


def tokenizer_json_seeds():
    d = reset("tokenizer_json")
    for name in TOK_FIXTURES:
        put(d, name, read(os.path.join(ROOT, "tests/unit/tok_%s.json" % name)))
    tok = read(os.path.join(DATA, "tokenizer.json"))
    put(d, "stories", tok)
    put(d, "stories_with_config", tok + CONFIG_SEP + read(os.path.join(DATA, "tokenizer_config.json")))
    put(d, "tiny_bytelevel", TINY_BL)
    put(d, "tiny_spm", TINY_SPM)
    put(d, "tiny_spm_config", TINY_SPM + CONFIG_SEP.decode() +
        '{"bos_token":{"content":"<s>"},"eos_token":"</s>","add_bos_token":true,"add_eos_token":false}')
    put(d, "tiny_spm_bad_config", TINY_SPM + CONFIG_SEP.decode() + '{"bos_token":"<nope>"}')


def tok_blob_seeds(mkblob):
    d = reset("tok_blob")
    tmp = os.path.join(d, ".tmp")
    os.makedirs(tmp, exist_ok=True)
    srcs = [(n, os.path.join(ROOT, "tests/unit/tok_%s.json" % n)) for n in TOK_FIXTURES]
    srcs.append(("stories", os.path.join(DATA, "tokenizer.json")))
    for name, text in (("tiny_bytelevel", TINY_BL), ("tiny_spm", TINY_SPM)):
        p = os.path.join(tmp, name + ".json")
        with open(p, "w") as f:
            f.write(text)
        srcs.append((name, p))
    for name, src in srcs:
        out = os.path.join(d, "seed_" + name)
        subprocess.run([mkblob, src, out], check=True)
    for p in glob.glob(os.path.join(tmp, "*")):
        os.remove(p)
    os.rmdir(tmp)


def prompt_seeds():
    d = reset("prompt")
    texts = {
        "once": b"Once upon a time, there was a little girl named Lily.",
        "spaces": b"  two leading spaces, a trailing one \n\ttab\r\n",
        "unicode": "caf\u00e9 \u4e2d\u6587 \U0001F600 \u00a0nbsp \u2003em \u0416\u03a9".encode(),
        "specials": b"<s>a</s> <unk> <|endoftext|><|im_start|>user\n<|im_end|> <tool> <|end|>",
        "bad_utf8": b"\xff\xfe\x80 \xc3 \xed\xa0\x80 \xf4\x90\x80\x80 \x00nul\x00",
        "meta": "\u2581x \u2581\u2581 y".encode(),
        "digits": b"12345 3.14159 1,000,000 don't I'll we've they'RE",
        "empty": b"",
    }
    greedy = read(os.path.join(DATA, "greedy_256.txt"))
    for k, name in enumerate(PROMPT_TOKS):
        for tname, t in texts.items():
            put(d, "%s_%s" % (name, tname), bytes([k]) + t)
        put(d, "%s_greedy" % name, bytes([k]) + greedy[:300])


# ---- GGUF ---------------------------------------------------------------------
GG_U8, GG_I8, GG_U16, GG_I16, GG_U32, GG_I32, GG_F32, GG_BOOL, GG_STR, GG_ARR, GG_U64, GG_I64, GG_F64 = range(13)
GG_FMT = {GG_U8: "<B", GG_I8: "<b", GG_U16: "<H", GG_I16: "<h", GG_U32: "<I", GG_I32: "<i", GG_F32: "<f",
          GG_BOOL: "<?", GG_U64: "<Q", GG_I64: "<q", GG_F64: "<d"}
# ggml type: (id, elements per block, bytes per block)
GGML = {"F32": (0, 1, 4), "F16": (1, 1, 2), "Q4_0": (2, 32, 18), "Q4_1": (3, 32, 20), "Q5_0": (6, 32, 22),
        "Q5_1": (7, 32, 24), "Q8_0": (8, 32, 34), "Q2_K": (10, 256, 84), "Q3_K": (11, 256, 110),
        "Q4_K": (12, 256, 144), "Q5_K": (13, 256, 176), "Q6_K": (14, 256, 210), "BF16": (30, 1, 2)}


def gg_str(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack("<Q", len(b)) + b


def gg_val(t, v):
    if t == GG_STR:
        return gg_str(v)
    if t == GG_ARR:
        et, items = v
        return struct.pack("<IQ", et, len(items)) + b"".join(gg_val(et, x) for x in items)
    return struct.pack(GG_FMT[t], v)


def gg_bytes(n, seed):
    """n deterministic bytes whose f16 scales stay small and finite."""
    return bytes(((seed * 131 + i * 29) % 251) & 0x3F for i in range(n))


def gguf(kvs, tensors, version=3, alignment=32, raw_kvs=b"", n_raw=0):
    """kvs: [(key, type, value)]; tensors: [(name, ne (innermost first), ggml type name)]."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs) + n_raw) + raw_kvs
    for k, t, v in kvs:
        out += gg_str(k) + struct.pack("<I", t) + gg_val(t, v)
    data, infos = b"", b""
    for i, (name, ne, ty) in enumerate(tensors):
        tid, block, bsz = GGML[ty]
        rows = 1
        for d in ne[1:]:
            rows *= d
        nbytes = rows * (ne[0] // block) * bsz
        data += b"\0" * (-len(data) % alignment)
        infos += gg_str(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
        infos += struct.pack("<IQ", tid, len(data))
        data += gg_bytes(nbytes, i)
    out += infos
    out += b"\0" * (-len(out) % alignment)
    return out + data


def llama_kvs(dim, ff, heads, kv_heads, layers, ctx=64):
    return [("general.architecture", GG_STR, "llama"), ("general.name", GG_STR, "tiny"),
            ("llama.context_length", GG_U32, ctx), ("llama.embedding_length", GG_U32, dim),
            ("llama.feed_forward_length", GG_U32, ff), ("llama.attention.head_count", GG_U32, heads),
            ("llama.attention.head_count_kv", GG_U32, kv_heads), ("llama.block_count", GG_U32, layers),
            ("llama.rope.dimension_count", GG_U32, dim // heads),
            ("llama.attention.layer_norm_rms_epsilon", GG_F32, 1e-5), ("llama.rope.freq_base", GG_F32, 10000.0)]


def spm_tok_kvs():
    toks = ["<unk>", "<s>", "</s>", "<0x0A>", "<0x41>", "\u2581", "a", "b", "\u2581a", "ab", "\u2581ab", "<tool>"]
    scores = [0.0, 0.0, 0.0, 0.0, 0.0, -1.0, -2.0, -3.0, -0.5, -0.7, -0.2, 0.0]
    types = [2, 3, 3, 6, 6, 1, 1, 1, 1, 1, 1, 4]
    return [("tokenizer.ggml.model", GG_STR, "llama"), ("tokenizer.ggml.tokens", GG_ARR, (GG_STR, toks)),
            ("tokenizer.ggml.scores", GG_ARR, (GG_F32, scores)),
            ("tokenizer.ggml.token_type", GG_ARR, (GG_I32, types)),
            ("tokenizer.ggml.unknown_token_id", GG_U32, 0), ("tokenizer.ggml.bos_token_id", GG_U32, 1),
            ("tokenizer.ggml.eos_token_id", GG_U32, 2), ("tokenizer.ggml.add_bos_token", GG_BOOL, True),
            ("tokenizer.ggml.add_space_prefix", GG_BOOL, True)], len(toks)


def gpt2_tok_kvs(pre):
    # GPT-2 byte-to-unicode map for printable ASCII is the identity; space is U+0120
    toks = ["<|endoftext|>", "h", "i", "\u0120", "!", "1", "2", "hi", "\u0120hi", "<|im_end|>"]
    types = [3, 1, 1, 1, 1, 1, 1, 1, 1, 3]
    return [("tokenizer.ggml.model", GG_STR, "gpt2"), ("tokenizer.ggml.pre", GG_STR, pre),
            ("tokenizer.ggml.tokens", GG_ARR, (GG_STR, toks)),
            ("tokenizer.ggml.token_type", GG_ARR, (GG_I32, types)),
            ("tokenizer.ggml.merges", GG_ARR, (GG_STR, ["h i", "\u0120 hi"])),
            ("tokenizer.ggml.bos_token_id", GG_U32, 0), ("tokenizer.ggml.eos_token_id", GG_U32, 0)], len(toks)


def llama_tensors(dim, ff, kv_dim, vocab, types):
    """types: the ggml types of q, k, v, o, gate, up, down (rows of dim or ff)."""
    q, k, v, o, gate, up, down = types
    return [("token_embd.weight", [dim, vocab], "F16"), ("output_norm.weight", [dim], "F32"),
            ("blk.0.attn_norm.weight", [dim], "F32"), ("blk.0.attn_q.weight", [dim, dim], q),
            ("blk.0.attn_k.weight", [dim, kv_dim], k), ("blk.0.attn_v.weight", [dim, kv_dim], v),
            ("blk.0.attn_output.weight", [dim, dim], o), ("blk.0.ffn_norm.weight", [dim], "F32"),
            ("blk.0.ffn_gate.weight", [dim, ff], gate), ("blk.0.ffn_up.weight", [dim, ff], up),
            ("blk.0.ffn_down.weight", [ff, dim], down)]


def gguf_seeds():
    d = reset("gguf")
    spm, nv = spm_tok_kvs()
    kvs = llama_kvs(32, 32, 2, 1, 1) + spm
    put(d, "tiny_llama", gguf(kvs, llama_tensors(32, 32, 16, nv, ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1",
                                                                   "BF16", "F32"])))
    put(d, "tiny_llama_v2_align64", gguf(kvs + [("general.alignment", GG_U32, 64)],
                                         llama_tensors(32, 32, 16, nv, ["F16"] * 7), version=2, alignment=64))
    put(d, "kquants", gguf([("general.architecture", GG_STR, "llama")],
                           [(ty.lower(), [256, 1], ty) for ty in ("Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K")] +
                           [("q8_0_2d", [64, 2], "Q8_0"), ("empty", [0, 4], "F32")]))
    for pre in ("llama-bpe", "qwen2", "smollm", "gpt-2", "default"):
        gk, gv = gpt2_tok_kvs(pre)
        put(d, "gpt2_tok_" + pre, gguf(llama_kvs(32, 32, 2, 1, 1) + gk, [("token_embd.weight", [32, gv], "F32")]))
    put(d, "scalars", gguf([("u8", GG_U8, 255), ("i8", GG_I8, -1), ("u16", GG_U16, 65535), ("i16", GG_I16, -2),
                            ("u32", GG_U32, 2**32 - 1), ("i32", GG_I32, -3), ("f32", GG_F32, 1.5),
                            ("bool", GG_BOOL, True), ("str", GG_STR, "caf\u00e9"), ("u64", GG_U64, 2**64 - 1),
                            ("i64", GG_I64, -2**63), ("f64", GG_F64, -0.25),
                            ("arr_i16", GG_ARR, (GG_I16, [1, -1, 7])), ("arr_empty", GG_ARR, (GG_STR, [])),
                            ("arr_bool", GG_ARR, (GG_BOOL, [True, False])),
                            ("arr_f64", GG_ARR, (GG_F64, [1e300, -0.0]))], []))
    # the real stories260K metadata (tokenizer of 512 pieces, llama.*) with tiny tensors
    b = read(os.path.join(DATA, "stories260K.gguf"))
    _, _, n_kv = struct.unpack_from("<IQQ", b, 4)
    pos = 24
    sizes = {GG_U8: 1, GG_I8: 1, GG_U16: 2, GG_I16: 2, GG_U32: 4, GG_I32: 4, GG_F32: 4, GG_BOOL: 1, GG_U64: 8,
             GG_I64: 8, GG_F64: 8}

    def skip(t):
        nonlocal pos
        if t == GG_STR:
            (n,) = struct.unpack_from("<Q", b, pos)
            pos += 8 + n
        elif t == GG_ARR:
            et, n = struct.unpack_from("<IQ", b, pos)
            pos += 12
            for _ in range(n):
                skip(et)
        else:
            pos += sizes[t]

    for _ in range(n_kv):
        skip(GG_STR)
        (t,) = struct.unpack_from("<I", b, pos)
        pos += 4
        skip(t)
    put(d, "stories_meta", gguf([], [("token_embd.weight", [64, 4], "F32"), ("output_norm.weight", [64], "F32")],
                                raw_kvs=b[24:pos], n_raw=n_kv))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_seeds.py BUILD/tests/fuzz_mkblob")
    json_seeds()
    config_seeds()
    safetensors_seeds()
    tokenizer_json_seeds()
    tok_blob_seeds(sys.argv[1])
    prompt_seeds()
    gguf_seeds()


if __name__ == "__main__":
    main()
