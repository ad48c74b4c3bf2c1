#!/usr/bin/env python3
"""Builds the GPT-2 and OPT golden fixtures (no trained weights of these
architectures exist here, and tests never download): small random-init
models made with transformers + PyTorch, a small byte-level BPE tokenizer made
with `tokenizers`, and PyTorch's fp32 logits for every position of two token
sequences.

  tests/golden/gpt2_tiny/        GPT2LMHeadModel, 2 layers, hidden 64, 4 heads,
                                 64 positions, gelu_new, weights F32
  tests/golden/opt_tiny/         OPTForCausalLM, the same size, ReLU, pre-LN
                                 (do_layer_norm_before), weights F16
  tests/golden/opt_postln_tiny/  OPT with do_layer_norm_before = false, BF16

Each holds model.safetensors, config.json, tokenizer.json,
tokenizer_config.json and
  text.txt, text.ids    a sentence and its ids as the executable must
                        tokenize it for -p (OPT: BOS </s> first, as HF does)
  text.f32              logits [n, vocab] f32 of those ids
  full.ids, full.f32    64 seeded random ids (the whole position table) and
                        their logits
Every parameter is drawn from N(0, 0.1^2) (LayerNorm weights 1 + N(0, 0.1^2))
so that biases and norms matter. The references are PyTorch fp32 on the
weights as stored (F16 / BF16 values widened exactly).

Run: python3 tests/golden/make_gpt_opt.py   (needs torch, transformers,
tokenizers; deterministic: seeds are fixed)
"""
import json, os

import numpy as np
import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import GPT2Config, GPT2LMHeadModel, OPTConfig, OPTForCausalLM

here = os.path.dirname(os.path.abspath(__file__))
VOCAB, POS, D, L, H, F = 320, 64, 64, 2, 4, 256
CORPUS = """The quick brown fox jumps over the lazy dog. A compiler turns a checkpoint into one executable.
Once upon a time there was a little model that wanted to run everywhere, on every machine, with nothing
but the C library beside it. It learned to read safetensors and GGUF files, to quantize its weights to
four bits and fewer, and to answer questions in a chat. The numbers 0123456789 and 3.14159 appear too,
as do punctuation marks: commas, semicolons; colons! question marks? and "quotes" or 'apostrophes'.
""" * 4
TEXT = "The little compiler read 42 checkpoints, quantized them, and answered: \"Hello!\""


def tokenizer(specials):
    tok = ByteLevelBPETokenizer()
    tok.train_from_iterator([CORPUS], vocab_size=VOCAB, min_frequency=2, special_tokens=specials,
                            show_progress=False)
    assert tok.get_vocab_size() == VOCAB, tok.get_vocab_size()
    return tok


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g) * 0.1
            p.copy_(1.0 + r if ('ln' in name or 'layer_norm' in name) and name.endswith('weight') else r)


def save(out, model, tok, tok_cfg, dtype, bos):
    os.makedirs(out, exist_ok=True)
    model = model.to(dtype)
    model.save_pretrained(out, safe_serialization=True)
    for f in ('generation_config.json',):
        if os.path.exists(os.path.join(out, f)):
            os.remove(os.path.join(out, f))
    tok.save(os.path.join(out, 'tokenizer.json'))
    with open(os.path.join(out, 'tokenizer_config.json'), 'w') as f:
        json.dump(tok_cfg, f, indent=2)
        f.write('\n')
    model = model.float().eval()  # the stored values, widened exactly
    ids = tok.encode(TEXT).ids
    if bos is not None:
        ids = [bos] + ids
    full = np.random.default_rng(1).integers(0, VOCAB, POS).tolist()
    with open(os.path.join(out, 'text.txt'), 'w') as f:
        f.write(TEXT)
    for name, xs in (('text', ids), ('full', full)):
        with torch.no_grad():
            logits = model(torch.tensor([xs])).logits[0].float().numpy()
        with open(os.path.join(out, name + '.ids'), 'w') as f:
            f.write(','.join(map(str, xs)) + '\n')
        logits.astype('<f4').tofile(os.path.join(out, name + '.f32'))
    print(out, len(ids), 'text ids,', sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out)), 'bytes')


# GPT-2: <|endoftext|> is BOS and EOS, never added by the tokenizer.
tok = tokenizer(['<|endoftext|>'])
eot = tok.token_to_id('<|endoftext|>')
cfg = GPT2Config(vocab_size=VOCAB, n_positions=POS, n_embd=D, n_layer=L, n_head=H, n_inner=None,
                 activation_function='gelu_new', bos_token_id=eot, eos_token_id=eot)
m = GPT2LMHeadModel(cfg)
randomize(m, 0)
save(os.path.join(here, 'gpt2_tiny'), m, tok,
     {'bos_token': '<|endoftext|>', 'eos_token': '<|endoftext|>', 'add_bos_token': False,
      'model_max_length': POS, 'tokenizer_class': 'GPT2Tokenizer'}, torch.float32, None)

# OPT: <s> <pad> </s> <unk> are ids 0-3 as in facebook/opt-*; the tokenizer
# prepends </s> (id 2) as BOS.
tok = tokenizer(['<s>', '<pad>', '</s>', '<unk>'])
assert tok.token_to_id('</s>') == 2
opt_tok_cfg = {'bos_token': '</s>', 'eos_token': '</s>', 'unk_token': '</s>', 'pad_token': '<pad>',
               'add_bos_token': True, 'model_max_length': POS, 'tokenizer_class': 'GPT2Tokenizer'}
for name, pre, dtype, seed in (('opt_tiny', True, torch.float16, 1), ('opt_postln_tiny', False, torch.bfloat16, 2)):
    cfg = OPTConfig(vocab_size=VOCAB, hidden_size=D, num_hidden_layers=L, ffn_dim=F, num_attention_heads=H,
                    max_position_embeddings=POS, word_embed_proj_dim=D, do_layer_norm_before=pre,
                    activation_function='relu', bos_token_id=2, eos_token_id=2, pad_token_id=1)
    m = OPTForCausalLM(cfg)
    randomize(m, seed)
    save(os.path.join(here, name), m, tok, opt_tok_cfg, dtype, 2)
