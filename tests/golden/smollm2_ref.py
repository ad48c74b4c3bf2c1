#!/usr/bin/env python3
"""Reference numbers for SmolLM2-135M-Instruct (the demo model), computed
with PyTorch + transformers from the same GGUF file qcc reads, and stored in
tests/golden/smollm2/ for tests/golden/smollm2.sh (which only runs when
tools/fetch_sample.sh has put the file in its cache; nothing is downloaded
by tests).

The GGUF is read with the `gguf` package — not with qcc's reader — and
dequantized (Q4_1 / Q6_K / F32 -> f32); llama.cpp's permutation of the Q/K
rows is undone as transformers' own GGUF loader does; the tensors go into a
LlamaForCausalLM built from the GGUF metadata, fp32. The tokenizer and chat
template are transformers' conversion of the GGUF's (AutoTokenizer with
gguf_file), so qcc's tokenizer and template handling are checked too.

Written to tests/golden/smollm2/:
  ref.json     chat_ids: apply_chat_template of a system + user message
               (the ids qcc's --chat must feed); argmax of every position's
               logits; cols: the column stride of logits.f32; ppl: the
               wikitext-2 protocol below, its token count and byte cut
  logits.f32   fp32 logits of chat_ids at every position, columns 0, S, 2S ...
               (S = cols; the full [27, 49152] would be 5 MB)
Perplexity: the first `bytes` bytes of ../shared/data/text/
wikitext2_test_gptq_joined.txt, tokenized without BOS (SmolLM2 adds none),
cut into non-overlapping windows of 512 tokens (64 of them), each scoring
its 511 next-token predictions; ppl = exp(mean NLL) — the protocol of
`model.bin --perplexity FILE -c 512`.

Run: python3 tests/golden/smollm2_ref.py [GGUF] [DATA_DIR]
"""
import json, math, os, sys

import numpy as np
import torch
from gguf import GGUFReader
from gguf.quants import dequantize
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

here = os.path.dirname(os.path.abspath(__file__))
cache = os.environ.get('QCC_CACHE') or os.path.join(os.environ.get('XDG_CACHE_HOME') or
                                                   os.path.expanduser('~/.cache'), 'qcc')
path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(cache, 'SmolLM2-135M-Instruct.Q4_1.gguf')
data = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, '..', '..', '..', 'shared', 'data')
out = os.path.join(here, 'smollm2')
SYSTEM, QUESTION = 'You are a helpful assistant.', 'What is the capital of France?'
CTX, WINDOWS, STRIDE = 512, 64, 64
torch.set_num_threads(os.cpu_count() or 1)

r = GGUFReader(path)
meta = {k: r.fields[k].contents() for k in r.fields if k.startswith('llama.')}
H, KV = meta['llama.attention.head_count'], meta['llama.attention.head_count_kv']
cfg = LlamaConfig(vocab_size=meta['llama.vocab_size'], hidden_size=meta['llama.embedding_length'],
                  intermediate_size=meta['llama.feed_forward_length'], num_hidden_layers=meta['llama.block_count'],
                  num_attention_heads=H, num_key_value_heads=KV, rms_norm_eps=meta['llama.attention.layer_norm_rms_epsilon'],
                  rope_theta=meta['llama.rope.freq_base'], max_position_embeddings=meta['llama.context_length'],
                  tie_word_embeddings=True, torch_dtype=torch.float32)
model = LlamaForCausalLM(cfg).float().eval()


def unpermute(w, heads):
    # llama.cpp's converter did w.reshape(heads, 2, hd // 2, ...).swapaxes(1, 2) (rows for interleaved RoPE)
    return w.reshape(heads, w.shape[0] // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


names = {'token_embd': 'model.embed_tokens', 'output_norm': 'model.norm', 'output': 'lm_head'}
layer = {'attn_norm': 'input_layernorm', 'attn_q': 'self_attn.q_proj', 'attn_k': 'self_attn.k_proj',
         'attn_v': 'self_attn.v_proj', 'attn_output': 'self_attn.o_proj', 'ffn_norm': 'post_attention_layernorm',
         'ffn_gate': 'mlp.gate_proj', 'ffn_up': 'mlp.up_proj', 'ffn_down': 'mlp.down_proj'}
state = {}
for t in r.tensors:
    w = dequantize(t.data, t.tensor_type).astype(np.float32).reshape([int(x) for x in reversed(t.shape)])
    base, kind = t.name.rsplit('.', 1)
    if base.startswith('blk.'):
        _, l, part = base.split('.', 2)
        if part == 'attn_q':
            w = unpermute(w, H)
        elif part == 'attn_k':
            w = unpermute(w, KV)
        hf = 'model.layers.%s.%s' % (l, layer[part])
    else:
        hf = names[base]
    state[hf + '.' + kind] = torch.from_numpy(np.ascontiguousarray(w))
if 'lm_head.weight' not in state:
    state['lm_head.weight'] = state['model.embed_tokens.weight']
missing, unexpected = model.load_state_dict(state, strict=False)
assert not unexpected and all('rotary' in m for m in missing), (missing, unexpected)

tok = AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))
chat = tok.apply_chat_template([{'role': 'system', 'content': SYSTEM}, {'role': 'user', 'content': QUESTION}],
                               add_generation_prompt=True, tokenize=True)
chat_ids = list(chat['input_ids'] if isinstance(chat, dict) or hasattr(chat, 'keys') else chat)
with torch.no_grad():
    logits = model(torch.tensor([chat_ids])).logits[0].float().numpy()
os.makedirs(out, exist_ok=True)
logits[:, ::STRIDE].astype('<f4').tofile(os.path.join(out, 'logits.f32'))
# the greedy reply, for the record
with torch.no_grad():
    gen = model.generate(torch.tensor([chat_ids]), max_new_tokens=32, do_sample=False,
                         eos_token_id=tok.convert_tokens_to_ids('<|im_end|>'))[0][len(chat_ids):].tolist()
if gen and gen[-1] == tok.convert_tokens_to_ids('<|im_end|>'):
    gen = gen[:-1]  # the executable reports the reply without the end-of-turn token

# Perplexity: cut the text where the tokens for WINDOWS windows end.
raw = open(os.path.join(data, 'text', 'wikitext2_test_gptq_joined.txt'), 'rb').read()
need = WINDOWS * CTX
text = raw[:400000].decode('utf-8', 'ignore')
enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
assert len(enc['input_ids']) > need + 64
cut_chars = enc['offset_mapping'][need + 16][0]
cut = len(text[:cut_chars].encode('utf-8'))
ids = tok(raw[:cut].decode('utf-8'), add_special_tokens=False)['input_ids']
assert need <= len(ids) < need + CTX, len(ids)
nll, scored = 0.0, 0
with torch.no_grad():
    for w in range(len(ids) // CTX):
        x = torch.tensor([ids[w * CTX:(w + 1) * CTX]])
        lp = torch.log_softmax(model(x).logits[0].double(), dim=-1)
        nll -= lp[torch.arange(CTX - 1), x[0, 1:]].sum().item()
        scored += CTX - 1
ref = {
    'gguf_sha256': 'b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53',
    'system': SYSTEM, 'question': QUESTION, 'chat_ids': chat_ids,
    'argmax': [int(i) for i in logits.argmax(-1)], 'vocab': int(logits.shape[1]), 'cols': STRIDE,
    'greedy_reply_ids': gen, 'greedy_reply': tok.decode(gen, skip_special_tokens=True),
    'ppl': {'bytes': cut, 'ctx': CTX, 'tokens': len(ids), 'windows': len(ids) // CTX, 'scored': scored,
            'perplexity': math.exp(nll / scored)},
    'torch': torch.__version__, 'transformers': __import__('transformers').__version__,
}
with open(os.path.join(out, 'ref.json'), 'w') as f:
    json.dump(ref, f, indent=1)
    f.write('\n')
print(json.dumps({k: ref[k] for k in ('greedy_reply', 'ppl')}, indent=1))
