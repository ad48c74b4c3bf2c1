#!/usr/bin/env python3
"""tests/bad/make_bad.py — writes the hand-made bad (and two good) inputs.

One small file or model directory per error the frontend must report, so
that every check in frontend/safetensors.c and frontend/config.c (and the
model-level checks of frontend/model.c) is exercised by a real file. The
outputs are committed under tests/bad/files/; rerun this script (python3,
stdlib only, deterministic) after changing it:

    python3 tests/bad/make_bad.py

Layout:
  files/st/                 safetensors-level cases: <case>.safetensors (or
                            <case>.index.json) beside one valid config.json and
                            tokenizer.json, so `qcc files/st/<case>.safetensors`
                            gets past config.json and fails on the weights.
  files/<case>/             model-level cases: config.json, model.safetensors,
                            tokenizer.json (a tiny fake llama: hidden 8,
                            1 layer, 2 heads / 1 KV head, ffn 16, vocab 512 to
                            match the stories260K tokenizer).
  files/ok_tiny/            the same tiny model, valid (single file).
  files/ok_tiny_sharded/    the same, as a 2-shard model.safetensors.index.json.
  cases.txt                 "<path under files/>\t<expected error substring>",
                            one line per bad case (also in README.md).
"""
import json
import os
import random
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "files")
TOKENIZER = os.path.join(HERE, "..", "..", "..", "shared", "data", "stories260K", "tokenizer.json")

TINY = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 8,
    "intermediate_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "vocab_size": 512,
    "max_position_embeddings": 64,
    "rms_norm_eps": 1e-05,
    "rope_theta": 10000.0,
    "hidden_act": "silu",
    "tie_word_embeddings": True,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "rope_scaling": None,
    "torch_dtype": "float32",
}

cases = []  # (path under files/, expected substring)


def write(path, data):
    full = os.path.join(OUT, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def raw_st(header, data=b"", hlen=None):
    """A safetensors file from a header given as text (may be invalid)."""
    h = header.encode()
    return struct.pack("<Q", len(h) if hlen is None else hlen) + h + data


def st_bytes(tensors, metadata=None):
    """A valid safetensors file. tensors: [(name, dtype, shape, bytes)]."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, blob in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    h = json.dumps(header, separators=(",", ":"))
    h += " " * (-(8 + len(h)) % 8)  # pad so data starts 8-aligned, as real files do
    return raw_st(h, data)


def f32(vals):
    return struct.pack("<%df" % len(vals), *vals)


def tiny_tensors(cfg):
    rng = random.Random(1234)
    D, F, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    HD = D // H

    def rnd(*shape):
        n = 1
        for s in shape:
            n *= s
        return ("F32", list(shape), f32([round(rng.uniform(-0.5, 0.5), 4) for _ in range(n)]))

    t = {
        "model.embed_tokens.weight": rnd(V, D),
        "model.norm.weight": ("F32", [D], f32([1.0] * D)),
        "model.layers.0.input_layernorm.weight": ("F32", [D], f32([1.0] * D)),
        "model.layers.0.post_attention_layernorm.weight": ("F32", [D], f32([1.0] * D)),
        "model.layers.0.self_attn.q_proj.weight": rnd(H * HD, D),
        "model.layers.0.self_attn.k_proj.weight": rnd(KV * HD, D),
        "model.layers.0.self_attn.v_proj.weight": rnd(KV * HD, D),
        "model.layers.0.self_attn.o_proj.weight": rnd(D, H * HD),
        "model.layers.0.mlp.gate_proj.weight": rnd(F, D),
        "model.layers.0.mlp.up_proj.weight": rnd(F, D),
        "model.layers.0.mlp.down_proj.weight": rnd(D, F),
    }
    return [(n,) + t[n] for n in sorted(t)]


def model_dir(case, config_text=None, weights=None, tokenizer=True, expect=None):
    cfg_text = config_text if config_text is not None else json.dumps(TINY, indent=2) + "\n"
    write(case + "/config.json", cfg_text)
    write(case + "/model.safetensors", weights if weights is not None else st_bytes(tiny_tensors(TINY), {"format": "pt"}))
    if tokenizer:
        shutil.copyfile(TOKENIZER, os.path.join(OUT, case, "tokenizer.json"))
    if expect is not None:
        cases.append((case, expect))


def st_case(name, blob, expect):
    write("st/" + name, blob)
    cases.append(("st/" + name, expect))


def main():
    if not os.path.exists(TOKENIZER):
        sys.exit("make_bad.py: %s not found" % TOKENIZER)
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)

    # ---- safetensors-level -------------------------------------------------
    write("st/config.json", json.dumps(TINY, indent=2) + "\n")
    shutil.copyfile(TOKENIZER, os.path.join(OUT, "st", "tokenizer.json"))
    A = '"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}'
    data = f32([float(i) for i in range(8)])  # 32 bytes: a = [0,16), b = [16,32)

    def two(b_entry, extra=""):
        return raw_st("{" + A + ',"b":' + b_entry + extra + "}", data)

    st_case("truncated.safetensors", b"\x10\x00\x00", "file is 3 bytes, too short for a safetensors header")
    st_case("header_beyond.safetensors", raw_st("{}", data, hlen=1000),
            "header length 1000 lies beyond the file (42 bytes) (offset 0)")
    st_case("header_too_large.safetensors", raw_st("{}", data, hlen=1 << 40),
            "header length 1099511627776 exceeds the limit")
    st_case("empty_header.safetensors", raw_st("", data), "header length 0 is too short")
    bad_json = "{" + A + ",}"
    st_case("bad_json.safetensors", raw_st(bad_json, data),
            "invalid JSON header: expected a string key in object (offset %d)" % (8 + bad_json.index(",}") + 1))
    st_case("not_object.safetensors", raw_st("[1, 2]", data), "header is not a JSON object (offset 8)")
    st_case("bad_metadata.safetensors", two('{"dtype":"F32","shape":[4],"data_offsets":[16,32]}', ',"__metadata__":{"k":1}'),
            "'__metadata__' must be an object of strings")
    st_case("missing_dtype.safetensors", two('{"shape":[4],"data_offsets":[16,32]}'), "tensor 'b': missing 'dtype'")
    st_case("unknown_dtype.safetensors", two('{"dtype":"Q4_K","shape":[4],"data_offsets":[16,32]}'),
            "tensor 'b': unknown dtype 'Q4_K'")
    st_case("unsupported_dtype.safetensors", two('{"dtype":"F64","shape":[2],"data_offsets":[16,32]}'),
            "tensor 'b': unsupported dtype 'F64'")
    st_case("bad_shape.safetensors", two('{"dtype":"F32","shape":[-4],"data_offsets":[16,32]}'),
            "tensor 'b': shape entries must be non-negative integers")
    st_case("too_many_dims.safetensors", two('{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,4],"data_offsets":[16,32]}'),
            "tensor 'b': shape has 9 dimensions, at most 8 supported")
    st_case("size_mismatch.safetensors", two('{"dtype":"F32","shape":[8],"data_offsets":[16,32]}'),
            "tensor 'b': shape [8] of F32 needs 32 bytes but data offsets [16, 32) hold 16")
    st_case("offsets_reversed.safetensors", two('{"dtype":"F32","shape":[4],"data_offsets":[32,16]}'),
            "tensor 'b': data offsets [32, 16) end before they begin")
    st_case("offsets_beyond.safetensors", two('{"dtype":"F32","shape":[8],"data_offsets":[16,48]}'),
            "tensor 'b': data offsets [16, 48) lie beyond the data section (32 bytes)")
    st_case("overlap.safetensors", two('{"dtype":"F32","shape":[4],"data_offsets":[8,24]}'),
            "tensor 'b': data offsets [8, 24) overlap tensor 'a' [0, 16)")
    # sharded: a valid shard holding only 'a', and two broken indexes over it
    write("st/shard_a.safetensors", st_bytes([("a", "F32", [2, 2], f32([1.0, 2.0, 3.0, 4.0]))]))
    st_case("index_missing_tensor.index.json",
            json.dumps({"metadata": {}, "weight_map": {"a": "shard_a.safetensors", "zz": "shard_a.safetensors"}}),
            "tensor 'zz': mapped to shard 'shard_a.safetensors', which does not contain it")
    st_case("index_missing_shard.index.json",
            json.dumps({"weight_map": {"a": "shard_a.safetensors", "b": "no_such_shard.safetensors"}}),
            "no_such_shard.safetensors: cannot open")

    # ---- model-level -------------------------------------------------------
    model_dir("ok_tiny")
    tensors = tiny_tensors(TINY)
    half = len(tensors) // 2
    shards = {"model-00001-of-00002.safetensors": tensors[:half], "model-00002-of-00002.safetensors": tensors[half:]}
    wm = {}
    for fname, ts in shards.items():
        write("ok_tiny_sharded/" + fname, st_bytes(ts))
        for t in ts:
            wm[t[0]] = fname
    write("ok_tiny_sharded/config.json", json.dumps(TINY, indent=2) + "\n")
    write("ok_tiny_sharded/model.safetensors.index.json",
          json.dumps({"metadata": {"total_size": sum(len(t[3]) for t in tensors)}, "weight_map": wm}, indent=2) + "\n")
    shutil.copyfile(TOKENIZER, os.path.join(OUT, "ok_tiny_sharded", "tokenizer.json"))

    c = dict(TINY, model_type="gpt_neox")
    model_dir("config_bad_arch", json.dumps(c, indent=2) + "\n",
              expect="key 'model_type': unsupported architecture 'gpt_neox' (supported: llama, mistral, qwen2, smollm, gpt2, opt)")
    txt = '{"model_type": "llama", "hidden_size": 8,, "num_hidden_layers": 1}\n'
    model_dir("config_bad_json", txt,
              expect="config.json: offset %d: expected a string key in object" % (txt.index(",,") + 1))
    c = dict(TINY)
    del c["hidden_size"]
    model_dir("config_missing_key", json.dumps(c, indent=2) + "\n", expect="key 'hidden_size': missing")
    c = dict(TINY, num_hidden_layers=0)
    model_dir("config_zero_layers", json.dumps(c, indent=2) + "\n", expect="key 'num_hidden_layers': must be a positive integer")
    c = dict(TINY, num_attention_heads=4, num_key_value_heads=3)
    model_dir("config_bad_kv_heads", json.dumps(c, indent=2) + "\n",
              expect="key 'num_key_value_heads': 3 does not divide num_attention_heads (4)")
    c = dict(TINY, hidden_act="gelu")
    model_dir("config_bad_act", json.dumps(c, indent=2) + "\n", expect="key 'hidden_act': unsupported activation 'gelu'")
    c = dict(TINY, rope_scaling={"type": "linear", "factor": 2.0})
    model_dir("config_rope_scaling", json.dumps(c, indent=2) + "\n", expect="key 'rope_scaling': not supported")
    c = dict(TINY, hidden_size=16)
    model_dir("config_shape_mismatch", json.dumps(c, indent=2) + "\n",
              expect="tensor 'model.embed_tokens.weight': shape [512,8] disagrees with config.json")
    model_dir("no_tokenizer", tokenizer=False, expect="tokenizer.json")
    # a NaN in a weight: the error names the tensor and the element's file offset
    ts = tiny_tensors(TINY)
    ts = [(n, d, sh, (b[:8] + struct.pack("<f", float("nan")) + b[12:]) if n.endswith("up_proj.weight") else b)
          for (n, d, sh, b) in ts]
    model_dir("nan_weight", weights=st_bytes(ts),
              expect="tensor 'model.layers.0.mlp.up_proj.weight': non-finite value at element 2")
    ts = [t for t in tiny_tensors(TINY) if not t[0].endswith("down_proj.weight")]
    model_dir("missing_tensor", weights=st_bytes(ts),
              expect="tensor 'model.layers.0.mlp.down_proj.weight' is missing")

    # keep the lines other generators (make_bad_gguf.py) own
    keep = []
    if os.path.exists(os.path.join(HERE, "cases.txt")):
        with open(os.path.join(HERE, "cases.txt")) as f:
            keep = [l for l in f if l.startswith("gguf/")]
    with open(os.path.join(HERE, "cases.txt"), "w") as f:
        f.writelines(keep)
        for path, want in cases:
            f.write("%s\t%s\n" % (path, want))

    rows = "\n".join("| `%s` | `%s` |" % (p, w) for p, w in cases)
    with open(os.path.join(HERE, "README.md"), "w") as f:
        f.write(README % rows)


README = """# tests/bad — one hand-made bad input per frontend error

Generated by `make_bad.py` (python3, stdlib only; rerun it after editing it).
The files under `files/` are committed fixtures; `cases.txt` lists the same
table as `PATH<TAB>SUBSTRING` for scripts.

* `files/st/<case>.safetensors` / `.index.json`: safetensors-level errors.
  `files/st/` also holds a valid `config.json` and `tokenizer.json`, so
  `qcc files/st/<case>.safetensors -o out` gets past the config and fails on
  the weights. Asserted directly by `tests/unit/test_safetensors.c`.
* `files/<case>/` (config.json, model.safetensors, tokenizer.json): model-level
  errors for `qcc files/<case> -o out`. The config cases are asserted by
  `tests/unit/test_config.c`; `config_shape_mismatch` (frontend/model.c) and
  `no_tokenizer` are left to the end-to-end test.
* `files/ok_tiny/` and `files/ok_tiny_sharded/`: the same tiny fake llama
  (hidden 8, 1 layer, 2 heads / 1 KV head, ffn 16, vocab 512, tied
  embeddings, F32), valid, as one file and as a 2-shard index.

Every message starts with the path of the offending file and names the tensor
or key and the byte offset where one applies.

| case (under files/) | expected error substring |
|---|---|
%s
"""

if __name__ == "__main__":
    main()
