#!/usr/bin/env python3
"""tests/bad/make_bad_gguf.py — writes the hand-made GGUF inputs under
tests/bad/files/gguf/ (python3, stdlib only, deterministic; rerun after
editing, the outputs are committed):

    python3 tests/bad/make_bad_gguf.py

  ok_tiny.gguf        a valid tiny llama (hidden 8, 1 layer, 2 heads / 1 KV
                      head, ffn 16, an 8-token SentencePiece vocabulary,
                      tied embeddings, F32)
  <case>.gguf         one file per error of frontend/gguf.c, gguf_meta.c and
                      the GGUF path of model.c; the expected messages are the
                      gguf/ lines of cases.txt (printed by this script too).

tests/unit/test_gguf.c replays these files through qc_gguf_open and
qc_model_load; tests/bad/run_bad.sh through qcc.
"""
import os
import random
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "files", "gguf")

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
T_F32, T_I32 = 0, 26


def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def value(t, v):
    if t == STR:
        return gstr(v)
    fmt = {U8: "B", I8: "b", U16: "H", I16: "h", U32: "I", I32: "i", F32: "f", BOOL: "B", U64: "Q", I64: "q",
           F64: "d"}[t]
    return struct.pack("<" + fmt, v)


def kv(key, t, v, elem=None):
    out = gstr(key) + struct.pack("<I", t)
    if t == ARR:
        out += struct.pack("<IQ", elem, len(v)) + b"".join(value(elem, x) for x in v)
    else:
        out += value(t, v)
    return out


def tiny_tensors(rng):
    d, f, nh, nkv, hd, vocab = 8, 16, 2, 1, 4, 8
    shapes = [("token_embd.weight", [d, vocab]), ("output_norm.weight", [d]),
              ("blk.0.attn_norm.weight", [d]), ("blk.0.attn_q.weight", [d, nh * hd]),
              ("blk.0.attn_k.weight", [d, nkv * hd]), ("blk.0.attn_v.weight", [d, nkv * hd]),
              ("blk.0.attn_output.weight", [nh * hd, d]), ("blk.0.ffn_norm.weight", [d]),
              ("blk.0.ffn_gate.weight", [d, f]), ("blk.0.ffn_up.weight", [d, f]),
              ("blk.0.ffn_down.weight", [f, d])]
    out = []
    for name, ne in shapes:
        n = 1
        for x in ne:
            n *= x
        if name.endswith("norm.weight"):
            vals = [1.0 + rng.uniform(-0.1, 0.1) for _ in range(n)]
        else:
            vals = [rng.uniform(-0.5, 0.5) for _ in range(n)]
        out.append([name, ne, T_F32, struct.pack("<%df" % n, *vals)])
    return out


def tiny_meta():
    toks = ["<unk>", "<s>", "</s>", "\u2581", "a", "b", "\u2581a", "ab"]
    types = [2, 3, 3, 1, 1, 1, 1, 1]
    scores = [0.0, 0.0, 0.0, -1.0, -2.0, -3.0, -4.0, -5.0]
    return [
        ("general.architecture", STR, "llama", None),
        ("general.name", STR, "tiny", None),
        ("llama.block_count", U32, 1, None),
        ("llama.context_length", U32, 64, None),
        ("llama.embedding_length", U32, 8, None),
        ("llama.feed_forward_length", U32, 16, None),
        ("llama.attention.head_count", U32, 2, None),
        ("llama.attention.head_count_kv", U32, 1, None),
        ("llama.attention.layer_norm_rms_epsilon", F32, 1e-5, None),
        ("llama.rope.freq_base", F32, 10000.0, None),
        ("tokenizer.ggml.model", STR, "llama", None),
        ("tokenizer.ggml.tokens", ARR, toks, STR),
        ("tokenizer.ggml.scores", ARR, scores, F32),
        ("tokenizer.ggml.token_type", ARR, types, I32),
        ("tokenizer.ggml.bos_token_id", U32, 1, None),
        ("tokenizer.ggml.eos_token_id", U32, 2, None),
        ("tokenizer.ggml.unknown_token_id", U32, 0, None),
    ]


def build(meta, tensors, version=3, magic=b"GGUF", align=32, n_kv=None, n_t=None, offsets=None):
    body = b"".join(kv(k, t, v, e) for k, t, v, e in meta)
    infos, datas, off = b"", [], 0
    for i, (name, ne, ty, data) in enumerate(tensors):
        o = off if offsets is None or offsets[i] is None else offsets[i]
        infos += gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", x) for x in ne)
        infos += struct.pack("<IQ", ty, o)
        datas.append(data + b"\0" * ((-len(data)) % align))
        off += len(datas[-1])
    head = magic + struct.pack("<IQQ", version, len(tensors) if n_t is None else n_t,
                               len(meta) if n_kv is None else n_kv)
    out = head + body + infos
    out += b"\0" * ((-len(out)) % align)
    return out + b"".join(datas)


def main():
    os.makedirs(OUT, exist_ok=True)
    cases = []

    def emit(name, data, want=None):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        if want:
            cases.append(("gguf/" + name, want))

    def fresh():
        return tiny_meta(), tiny_tensors(random.Random(1))

    meta, ts = fresh()
    ok = build(meta, ts)
    emit("ok_tiny.gguf", ok)

    # file-level
    emit("truncated.gguf", ok[:20], "too short for a GGUF header (24 bytes)")
    emit("truncated_meta.gguf", ok[:700], "truncated: a metadata key needs 25 bytes but only 8 remain (offset 692)")
    emit("bad_magic.gguf", b"GGUX" + ok[4:], "not a GGUF file: magic 'GGUX'")
    emit("bad_version.gguf", ok[:4] + struct.pack("<I", 4) + ok[8:], "unsupported GGUF version 4 (supported: 2, 3)")
    emit("version1.gguf", ok[:4] + struct.pack("<I", 1) + ok[8:], "GGUF version 1 is not supported")
    emit("kv_count_beyond.gguf", build(meta, ts, n_kv=1000000), "metadata key count 1000000 lies beyond the file")
    emit("tensor_count_beyond.gguf", build(meta, ts, n_t=1 << 20), "tensor count 1048576 lies beyond the file")
    emit("key_length_beyond.gguf", ok[:24] + struct.pack("<Q", 1 << 40) + ok[32:],
         "truncated: a metadata key needs 1099511627776 bytes")
    emit("nested_array.gguf", build_nested(meta, ts), "key 'x.nested': nested arrays are not supported")
    emit("dup_key.gguf", build(meta + [("llama.block_count", U32, 1, None)], ts), "key 'llama.block_count': appears twice")
    emit("bad_alignment.gguf", build(meta + [("general.alignment", U32, 24, None)], ts),
         "key 'general.alignment': must be a u32 power of two")
    emit("bad_bool.gguf", build(meta + [("tokenizer.ggml.add_bos_token", BOOL, 2, None)], ts),
         "key 'tokenizer.ggml.add_bos_token': bool value 2 is neither 0 nor 1")
    ts2 = [list(t) for t in ts]
    ts2[3][2] = 77
    emit("unknown_type.gguf", build(meta, ts2), "tensor 'blk.0.attn_q.weight': unknown tensor type 77")
    emit("data_beyond.gguf", build(meta, ts, offsets=[None] * 10 + [1 << 20]),
         "tensor 'blk.0.ffn_down.weight': data offset 1048576 + 512 bytes lies beyond the end of the data section")
    emit("unaligned.gguf", build(meta, ts, offsets=[None] * 10 + [8]),
         "tensor 'blk.0.ffn_down.weight': data offset 8 is not a multiple of the alignment (32)")
    emit("overlap.gguf", build(meta, ts, offsets=[None] * 10 + [0]),
         "tensor 'blk.0.ffn_down.weight': data [1536, 2048) overlaps tensor 'token_embd.weight' [1536, 1792)")
    ts2 = [list(t) for t in ts]
    ts2[5][0] = "blk.0.attn_q.weight"
    emit("dup_tensor.gguf", build(meta, ts2), "tensor 'blk.0.attn_q.weight': appears twice")
    ts2 = [list(t) for t in ts]
    ts2[1][1] = [32, 1, 1, 1, 1]
    emit("too_many_dims.gguf", build(meta, ts2), "tensor 'output_norm.weight': 5 dimensions, expected 1 to 4")

    # model-level
    def with_meta(key, t, v, e=None):
        m = [x for x in tiny_meta() if x[0] != key]
        if t is not None:
            m.append((key, t, v, e))
        return build(m, ts)

    emit("wrong_arch.gguf", with_meta("general.architecture", STR, "gpt2"),
         "key 'general.architecture': unsupported architecture 'gpt2' (supported: llama)")
    emit("missing_key.gguf", with_meta("llama.embedding_length", None, None),
         "key 'llama.embedding_length': missing")
    emit("moe.gguf", build(meta + [("llama.expert_count", U32, 8, None)], ts),
         "key 'llama.expert_count': mixture-of-experts models are not supported")
    emit("rope_scaling.gguf", build(meta + [("llama.rope.scaling.type", STR, "yarn", None)], ts),
         "key 'llama.rope.scaling.type': RoPE scaling 'yarn' is not supported")
    emit("no_tokenizer.gguf", with_meta("tokenizer.ggml.model", None, None),
         "key 'tokenizer.ggml.model': missing (the file carries no tokenizer)")
    emit("bad_tokenizer.gguf", with_meta("tokenizer.ggml.model", STR, "bert"),
         "key 'tokenizer.ggml.model': unsupported tokenizer model 'bert' (supported: llama, gpt2)")
    emit("missing_tensor.gguf", build(meta, [t for t in ts if t[0] != "blk.0.ffn_up.weight"]),
         "tensor 'blk.0.ffn_up.weight' is missing (the llama architecture needs it)")
    ts2 = [list(t) for t in ts]
    ts2[3][1] = [8, 4]
    ts2[3][3] = ts2[3][3][:8 * 4 * 4]
    emit("shape_mismatch.gguf", build(meta, ts2),
         "tensor 'blk.0.attn_q.weight': shape [4,8] disagrees with the GGUF metadata (expected [8,8])")
    ts2 = [list(t) for t in ts]
    ts2[2][2] = T_I32
    emit("unsupported_type.gguf", build(meta, ts2), "tensor 'blk.0.attn_norm.weight': unsupported tensor type I32")
    ts2 = [list(t) for t in ts]
    ts2[7][3] = ts2[7][3][:12] + struct.pack("<f", float("nan")) + ts2[7][3][16:]
    emit("nan_weight.gguf", build(meta, ts2), "tensor 'blk.0.ffn_norm.weight': non-finite value at element 3")

    for path, want in cases:
        print("%s\t%s" % (path, want))


def build_nested(meta, ts):
    """The tiny model plus one key whose array elements are arrays."""
    extra = gstr("x.nested") + struct.pack("<IIQ", ARR, ARR, 1) + struct.pack("<IQ", U8, 0)
    body = b"".join(kv(k, t, v, e) for k, t, v, e in meta) + extra
    head = b"GGUF" + struct.pack("<IQQ", 3, len(ts), len(meta) + 1)
    return head + body + b"\0" * 64


if __name__ == "__main__":
    main()
