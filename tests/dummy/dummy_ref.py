#!/usr/bin/env python3
"""Independent reimplementation of qcc --dummy-weights (docs/dummy-weights.md):
from config.json and the build flags alone, the weight blob a dummy-weight
executable generates at start, byte for byte (layout of passes/plan.c, packed
format of docs/formats.md, generator of include/qrt/dummy.h), with numpy.

    dummy_ref.py check CONFIG BLOB --bits B [--group G] [--sym] [--seed S]
        compares BLOB (what QRT_DUMMY_DUMP wrote) with the reference; prints
        "sha256 <hex> bytes <n>" and exits 1 on the first difference
    dummy_ref.py safetensors CONFIG OUT --seed S
        writes the --bits 16 weights as a checkpoint (F16 matrices, F32
        vectors) that qcc compiles into the same blob
    dummy_ref.py logits FILE VOCAB
        checks f32 logits (--dump-logits) are finite and sane
"""
import hashlib
import json
import math
import struct
import sys

import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
M1, M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
MASK = (1 << 64) - 1


def mix(z):
    """splitmix64's finalizer on a uint64 array (wrapping arithmetic)."""
    z = z ^ (z >> np.uint64(30))
    z = z * M1
    z = z ^ (z >> np.uint64(27))
    z = z * M2
    return z ^ (z >> np.uint64(31))


def key(seed, t):
    return int(mix(np.array([(seed + (t + 1) * int(GOLDEN)) & MASK], dtype=np.uint64))[0])


def rnd(k, idx):
    """rnd(key, i) for an array of indices i (uint64)."""
    return mix(np.uint64(k) + idx * GOLDEN)


def tensors(cfg, bits):
    """(name, shape, role) in the order the frontend adds them (build_llama)."""
    D, F, L = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    H = cfg["num_attention_heads"]
    KV = cfg.get("num_key_value_heads") or H
    HD = cfg.get("head_dim") or D // H
    V = cfg["vocab_size"]
    bias = cfg.get("attention_bias", cfg["model_type"] == "qwen2")
    out = [("model.embed_tokens.weight", (V, D), "embed")]
    for l in range(L):
        p = "model.layers.%d." % l
        out += [(p + "input_layernorm.weight", (D,), "ones"),
                (p + "self_attn.q_proj.weight", (H * HD, D), "linear"),
                (p + "self_attn.k_proj.weight", (KV * HD, D), "linear"),
                (p + "self_attn.v_proj.weight", (KV * HD, D), "linear"),
                (p + "self_attn.o_proj.weight", (D, H * HD), "linear"),
                (p + "post_attention_layernorm.weight", (D,), "ones"),
                (p + "mlp.gate_proj.weight", (F, D), "linear"),
                (p + "mlp.up_proj.weight", (F, D), "linear"),
                (p + "mlp.down_proj.weight", (D, F), "linear")]
        if bias:
            out += [(p + "self_attn.q_proj.bias", (H * HD,), "zeros"),
                    (p + "self_attn.k_proj.bias", (KV * HD,), "zeros"),
                    (p + "self_attn.v_proj.bias", (KV * HD,), "zeros")]
    out.append(("model.norm.weight", (D,), "ones"))
    if not cfg.get("tie_word_embeddings", False):
        out.append(("lm_head.weight", (V, D), "head"))
    return out


def uniform(k, n, K, f16):
    a = np.float32(math.sqrt(3.0 / K)) * np.float32(2.0 ** -23)
    r = rnd(k, np.arange(n, dtype=np.uint64))
    v = ((r >> np.uint64(40)).astype(np.int64) - 8388608).astype(np.float32) * a
    return v.astype(np.float16) if f16 else v


def codes(k, N, K, b):
    """Packed code words [N, b*K/32] (docs/formats.md), every code 0 made 2^(b-1)."""
    dw = b * K // 32
    w = (rnd(k, np.arange(N * dw, dtype=np.uint64)) >> np.uint64(32)).astype(np.uint32).reshape(N, dw)
    # unpack every code per the documented layout, fix zeros, repack
    blocks = w.reshape(N, K // 32, b)
    j = np.arange(32, dtype=np.uint32)
    if b == 3:
        lo = (blocks[:, :, j // 16] >> (2 * (j % 16))) & 3
        hi = (blocks[:, :, 2:3] >> j) & 1
        q = lo | hi << 2
    else:
        per = 32 // b
        q = (blocks[:, :, j // per] >> (b * (j % per))) & ((1 << b) - 1)
    q = np.where(q == 0, 1 << (b - 1), q).astype(np.uint32)
    out = np.zeros_like(blocks)
    if b == 3:
        for i in range(32):
            out[:, :, i // 16] |= (q[:, :, i] & 3) << (2 * (i % 16))
            out[:, :, 2] |= (q[:, :, i] >> 2) << i
    else:
        per = 32 // b
        for i in range(32):
            out[:, :, i // per] |= q[:, :, i] << (b * (i % per))
    return out.reshape(N, dw), q


def blob(cfg, bits, group, sym, seed):
    """The whole blob (uint8) and the per-tensor values (for safetensors)."""
    parts, off, vals = [], 0, {}
    for t, (name, shape, role) in enumerate(tensors(cfg, bits)):
        off = (off + 63) // 64 * 64
        k = key(seed, t)
        if role == "linear" and bits < 16:
            N, K = shape
            assert K % 32 == 0
            g = K if group <= 0 or group >= K else group
            G = (K + g - 1) // g
            rw = (bits * ((K + 31) // 32) + 3) // 4 * 4
            words, q = codes(k, N, K, bits)
            packed = np.zeros((N, rw), np.uint32)
            packed[:, :words.shape[1]] = words
            var = ((1 << (bits - 1)) - 1) * ((1 << bits) - 1) / 6.0
            s = np.float16(np.float32(1.0 / math.sqrt(K * var)))
            if s < np.float16(2.0 ** -14):
                s = np.float16(2.0 ** -14)
            sc = np.full(N * G, s, np.float16).tobytes()
            data = packed.tobytes() + sc + bytes((-len(sc)) % 16)
            if not sym:
                zs = bytes([1 << (bits - 1)]) * (N * G)
                data += zs + bytes((-len(zs)) % 16)
            # the codes stand for w = s (q - z): symmetric about z
            assert q.min() >= 1 and abs(float(q.mean()) - (1 << (bits - 1))) < 0.05 * (1 << bits)
        elif len(shape) == 2:
            v = uniform(k, shape[0] * shape[1], shape[1], bits != 32).reshape(shape)
            vals[name] = v
            data = v.tobytes()
        else:
            v = np.ones(shape, np.float32) if role == "ones" else np.zeros(shape, np.float32)
            vals[name] = v
            data = v.tobytes()
        parts.append((off, data))
        off += len(data)
    out = np.zeros(off, np.uint8)
    for o, d in parts:
        out[o:o + len(d)] = np.frombuffer(d, np.uint8)
    return out, vals


def main():
    cmd = sys.argv[1]
    if cmd == "logits":
        x = np.fromfile(sys.argv[2], np.float32).reshape(-1, int(sys.argv[3]))
        assert np.isfinite(x).all(), "non-finite logits"
        m = float(np.abs(x).max())
        assert 1e-3 < m < 100, "logits out of a sane range: max |x| = %g" % m
        print("logits: %d rows, max |x| %.3f, rms %.3f" % (x.shape[0], m, float(np.sqrt((x * x).mean()))))
        return
    args = sys.argv[2:]
    opt = {"--bits": 16, "--group": 128, "--seed": 0}
    sym, pos = False, []
    i = 0
    while i < len(args):
        if args[i] == "--sym":
            sym = True
        elif args[i] in opt:
            opt[args[i]] = int(args[i + 1])
            i += 1
        else:
            pos.append(args[i])
        i += 1
    cfg = json.load(open(pos[0]))
    ref, vals = blob(cfg, opt["--bits"], opt["--group"], sym, opt["--seed"])
    if cmd == "check":
        got = np.fromfile(pos[1], np.uint8)
        if got.size != ref.size:
            sys.exit("FAIL: blob is %d bytes, the reference %d" % (got.size, ref.size))
        bad = np.nonzero(got != ref)[0]
        if bad.size:
            sys.exit("FAIL: %d bytes differ, first at offset %d (got %d, want %d)" %
                     (bad.size, bad[0], got[bad[0]], ref[bad[0]]))
        print("sha256 %s bytes %d" % (hashlib.sha256(ref.tobytes()).hexdigest(), ref.size))
    elif cmd == "safetensors":
        hdr, data, o = {}, b"", 0
        for name, v in vals.items():
            b = v.tobytes()
            hdr[name] = {"dtype": "F16" if v.dtype == np.float16 else "F32", "shape": list(v.shape),
                         "data_offsets": [o, o + len(b)]}
            data += b
            o += len(b)
        h = json.dumps(hdr).encode()
        h += b" " * ((-len(h)) % 8)
        with open(pos[1], "wb") as f:
            f.write(struct.pack("<Q", len(h)) + h + data)
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
