#!/usr/bin/env python3
"""PyTorch eager baseline for bench/e2e.sh: a hand-written Llama (RMSNorm,
rotate-half RoPE, grouped-query attention through SDPA with a static KV
cache, SwiGLU) with random f16 weights of a config.json's shape, batch 1 on
the GPU. What it times is what `EXE --bench` times: prefill of N random
tokens, then M greedy decode steps (argmax read back to the host each step),
median of 5 repetitions. Weights are scaled like qcc's dummy weights
(uniform, variance 1/K) so activations stay in range; no transformers.

    bench/torch_eager.py CONFIG [--prompt-len 128] [--gen 128] [--reps 5]

Prints one JSON line: {"model", "prefill_tok_s", "decode_tok_s", "weight_bytes_per_token", "device"}.
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn.functional as F


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    c = json.load(open(a.config))
    D, FF, L = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
    H = c["num_attention_heads"]
    KV = c.get("num_key_value_heads") or H
    HD = D // H
    V = c["vocab_size"]
    eps = c.get("rms_norm_eps", 1e-6)
    theta = c.get("rope_theta", 10000.0)
    dev, dt = "cuda", torch.float16
    torch.manual_seed(0)

    def lin(n, k):
        return (torch.rand(n, k, device=dev, dtype=dt) * 2 - 1) * math.sqrt(3.0 / k)

    emb = lin(V, D)
    layers = [dict(wqkv=lin((H + 2 * KV) * HD, D), wo=lin(D, H * HD), wgu=lin(2 * FF, D), wd=lin(D, FF),
                   n1=torch.ones(D, device=dev, dtype=dt), n2=torch.ones(D, device=dev, dtype=dt)) for _ in range(L)]
    norm = torch.ones(D, device=dev, dtype=dt)
    head = lin(V, D)
    wbytes = sum(t.numel() * 2 for l in layers for t in l.values()) + norm.numel() * 2 + head.numel() * 2

    T = a.prompt_len + a.gen
    kc = torch.zeros(L, 1, KV, T, HD, device=dev, dtype=dt)
    vc = torch.zeros_like(kc)
    inv = 1.0 / theta ** (torch.arange(0, HD, 2, device=dev, dtype=torch.float32) / HD)
    ang = torch.outer(torch.arange(T, device=dev, dtype=torch.float32), inv)
    cos, sin = torch.cat([ang.cos()] * 2, -1).to(dt), torch.cat([ang.sin()] * 2, -1).to(dt)

    def rms(x, w):
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)).to(dt) * w

    def rope(x, pos, n):  # x [1, heads, n, HD]
        cs, sn = cos[pos:pos + n], sin[pos:pos + n]
        x1, x2 = x[..., :HD // 2], x[..., HD // 2:]
        return x * cs + torch.cat([-x2, x1], -1) * sn

    @torch.inference_mode()
    def forward(ids, pos):  # ids [n] -> logits of the last token
        n = ids.shape[0]
        x = emb[ids].unsqueeze(0)  # [1, n, D]
        for i, l in enumerate(layers):
            h = rms(x, l["n1"])
            qkv = F.linear(h, l["wqkv"])
            q, k, v = qkv.split([H * HD, KV * HD, KV * HD], -1)
            q = rope(q.view(1, n, H, HD).transpose(1, 2), pos, n)
            k = rope(k.view(1, n, KV, HD).transpose(1, 2), pos, n)
            kc[i, :, :, pos:pos + n] = k
            vc[i, :, :, pos:pos + n] = v.view(1, n, KV, HD).transpose(1, 2)
            kk, vv = kc[i, :, :, :pos + n], vc[i, :, :, :pos + n]
            if KV != H:
                kk, vv = kk.repeat_interleave(H // KV, 1), vv.repeat_interleave(H // KV, 1)
            if n > 1:  # causal within the prompt (pos = 0 here)
                o = F.scaled_dot_product_attention(q, kk, vv, is_causal=True)
            else:
                o = F.scaled_dot_product_attention(q, kk, vv)
            x = x + F.linear(o.transpose(1, 2).reshape(1, n, H * HD), l["wo"])
            h = rms(x, l["n2"])
            g, u = F.linear(h, l["wgu"]).split([FF, FF], -1)
            x = x + F.linear(F.silu(g) * u, l["wd"])
        return F.linear(rms(x[:, -1], norm), head).float()

    g = torch.Generator().manual_seed(12345)
    ids = torch.randint(0, V, (a.prompt_len,), generator=g).to(dev)
    pp, tg = [], []
    for r in range(a.reps + 1):  # the first is a warm-up
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        lg = forward(ids, 0)
        nxt = int(lg.argmax())
        t1 = time.perf_counter()
        for i in range(a.gen):
            lg = forward(torch.tensor([nxt], device=dev), a.prompt_len + i)
            nxt = int(lg.argmax())  # the host needs the token: a sync per step
        t2 = time.perf_counter()
        if r:
            pp.append(a.prompt_len / (t1 - t0))
            tg.append(a.gen / (t2 - t1))
    print(json.dumps({"model": a.config, "prefill_tok_s": statistics.median(pp), "decode_tok_s": statistics.median(tg),
                      "weight_bytes_per_token": wbytes, "device": torch.cuda.get_device_name(0),
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
