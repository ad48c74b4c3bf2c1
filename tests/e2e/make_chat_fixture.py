#!/usr/bin/env python3
"""Builds tests/e2e/chatml_tiny/: a ChatML chat model for tests that need no
network — stories260K's weights (../shared/data, linked at test time, never
copied) with a tokenizer that makes two of its 512 ids ChatML's specials:

  id 1   "<s>" (BOS; every TinyStories story starts after it) -> "<|im_start|>"
  id 426 "."   (the end of a sentence)                         -> "<|im_end|>"

No merge involves ".", so the vocabulary stays a valid BPE (a "." in text
now goes through byte fallback, <0x2E>). The model ends a reply at its first
full stop, which is exactly what a test of "stop at the end-of-turn token"
needs. The chat template is SmolLM2-135M-Instruct's (ChatML with a default
system message); bos/eos are <|im_start|>/<|im_end|> as in SmolLM2.

expect.txt holds the token ids Hugging Face's apply_chat_template gives
(transformers + tokenizers, no torch needed), one `name: ids` per line:
  turn1          [default system] + user "Hi" + generation prompt
  turn1_system   the same with the system message "You are a storyteller."
  close          the assistant turn's closing "<|im_end|>\\n"
  turn2          the next user turn "What did I just say?" + generation prompt
Run: python3 tests/e2e/make_chat_fixture.py [DATA_DIR]
"""
import json, os, sys

here = os.path.dirname(os.path.abspath(__file__))
data = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, '..', '..', '..', 'shared', 'data')
src = os.path.join(data, 'stories260K')
out = os.path.join(here, 'chatml_tiny')
os.makedirs(out, exist_ok=True)

TEMPLATE = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
            "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
            "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
            "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")

t = json.load(open(os.path.join(src, 'tokenizer.json'), encoding='utf-8'))
v = t['model']['vocab']
rename = {1: ('<s>', '<|im_start|>'), 426: ('.', '<|im_end|>')}
assert not any('.' in m if isinstance(m, str) else '.' in m for m in t['model']['merges'])
for i, (old, new) in rename.items():
    assert v.pop(old) == i
    v[new] = i
added = {a['id']: a for a in t['added_tokens']}
for i, (old, new) in rename.items():
    if i in added:
        added[i]['content'] = new
    else:
        t['added_tokens'].append({'id': i, 'content': new, 'single_word': False, 'lstrip': False,
                                  'rstrip': False, 'normalized': False, 'special': True})
t['added_tokens'].sort(key=lambda a: a['id'])
t['post_processor'] = None  # ChatML models add no BOS of their own
with open(os.path.join(out, 'tokenizer.json'), 'w', encoding='utf-8') as f:
    json.dump(t, f, ensure_ascii=False, indent=1)
cfg = {'add_bos_token': False, 'add_eos_token': False, 'bos_token': '<|im_start|>', 'eos_token': '<|im_end|>',
       'unk_token': '<unk>', 'pad_token': None, 'model_max_length': 512, 'tokenizer_class': 'LlamaTokenizer',
       'legacy': True, 'clean_up_tokenization_spaces': False, 'chat_template': TEMPLATE}
with open(os.path.join(out, 'tokenizer_config.json'), 'w', encoding='utf-8') as f:
    json.dump(cfg, f, indent=2)
    f.write('\n')

from transformers import PreTrainedTokenizerFast  # noqa: E402
tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(out, 'tokenizer.json'), bos_token='<|im_start|>',
                              eos_token='<|im_end|>', unk_token='<unk>')
tok.chat_template = TEMPLATE


def ids(messages, gen=True):
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)
    return text, tok(text, add_special_tokens=False)['input_ids']


lines = []
t1, i1 = ids([{'role': 'user', 'content': 'Hi'}])
lines.append(('turn1', i1))
lines.append(('turn1_system', ids([{'role': 'system', 'content': 'You are a storyteller.'},
                                   {'role': 'user', 'content': 'Hi'}])[1]))
# The delta the second turn appends: render a two-turn conversation and cut
# it right after the first reply (whose text does not matter here).
full, _ = ids([{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'REPLY'},
               {'role': 'user', 'content': 'What did I just say?'}])
after = full[full.index('REPLY') + len('REPLY'):]
close = '<|im_end|>\n'
assert after.startswith(close)
lines.append(('close', tok(close, add_special_tokens=False)['input_ids']))
lines.append(('turn2', tok(after[len(close):], add_special_tokens=False)['input_ids']))
with open(os.path.join(out, 'expect.txt'), 'w') as f:
    for name, xs in lines:
        f.write('%s: %s\n' % (name, ' '.join(map(str, xs))))
print(open(os.path.join(out, 'expect.txt')).read(), end='')
