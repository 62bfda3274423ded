#!/usr/bin/env python3
"""PyTorch baseline for `aqa bench embed` / `aqa bench matmul` / `aqa bench train` on the same GPU.

Run beside our benchmarks, with the same model folder and the same shapes, so the two tables
can be read side by side (DESIGN.md section 7):

  python3 tools/bench_torch.py make-model --shape minilm --tokenizer test/models/all-MiniLM-L6-v2 --out /tmp/m
  python3 tools/bench_torch.py embed --model /tmp/m --shapes 32x128,32x256 [--dtype fp32|bf16|fp16] [--json out.json]
  python3 tools/bench_torch.py matmul --sizes 1024,2048,4096 [--dtype fp32,fp16] [--json out.json]
  python3 tools/bench_torch.py train --model /tmp/m --shape 16x10,64/512 [--dtype fp32|fp16] [--json out.json]

make-model writes a BertModel with random weights (seeded) in Hugging Face layout plus the
given tokenizer files: a real checkpoint's speed does not depend on its weights, and the
shapes are the ones that matter (`minilm` = all-MiniLM-L6-v2, `bert-large` =
snowflake-arctic-embed-l, `bge-small` = bge-small-en-v1.5).

embed times what a user's call does, like ours: tokenize the batch, run the encoder, CLS
pooling, L2 normalise, copy the embeddings to the host. Texts are the same synthetic ones as
node/bench/embed.ts (benchTexts), which tokenize to exactly the requested length. fp32 runs
with TF32 disabled, to compare like with like against our f32 kernels; fp16 matmuls sum in
fp32 (no reduced-precision reduction), as our f16 kernels do.

train times one optimizer update as node/bench/train.ts does with GradCache off (`aqa bench
train --shape QxG,QLEN/PLEN --grad-cache 0`): Q queries and Q * G passages of synthetic token
ids of exactly those lengths, the model's pooling (CLS or mean) and L2 normalise, FlagEmbedding's
InfoNCE loss over all passages of the step (temperature 0.02, target of query i is passage
i * G), backward, global gradient-norm clipping at 1.0, AdamW (weight decay 0.01, not on
biases and LayerNorm weights), dropout off, the loss read back to the host. fp16 is mixed
precision like our --fp16: autocast to fp16 with fp32 master weights and a loss scaler.
"""

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

import torch

SHAPES = {
    'minilm': dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536),
    'bge-small': dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=12, intermediate_size=1536),
    'bert-large': dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
}
TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.txt']
WORDS = ['graph', 'neural', 'protein', 'energy', 'quantum', 'network', 'model', 'data', 'signal', 'theory']


def make_model(a):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, max_position_embeddings=512, type_vocab_size=2, hidden_act='gelu', **SHAPES[a.shape])
    model = BertModel(cfg, add_pooling_layer=False)
    out = Path(a.out)
    model.save_pretrained(out, safe_serialization=True)
    for f in TOKENIZER_FILES:
        if (Path(a.tokenizer) / f).exists():
            shutil.copy(Path(a.tokenizer) / f, out / f)
    # CLS pooling + normalise, like the models this project fine-tunes.
    (out / '1_Pooling').mkdir(exist_ok=True)
    (out / '1_Pooling' / 'config.json').write_text(json.dumps({'word_embedding_dimension': cfg.hidden_size, 'pooling_mode_cls_token': True, 'pooling_mode_mean_tokens': False}))
    (out / 'modules.json').write_text(json.dumps([
        {'idx': 0, 'name': '0', 'path': '', 'type': 'sentence_transformers.models.Transformer'},
        {'idx': 1, 'name': '1', 'path': '1_Pooling', 'type': 'sentence_transformers.models.Pooling'},
        {'idx': 2, 'name': '2', 'path': '2_Normalize', 'type': 'sentence_transformers.models.Normalize'},
    ]))
    print(f'wrote {out} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters)')


def bench_texts(batch, seq):
    return [' '.join(WORDS[(i * 7 + b * 3) % len(WORDS)] for i in range(seq - 2)) for b in range(batch)]


def parse_shapes(s):
    return [tuple(int(x) for x in item.split('x')) for item in s.split(',') if item]


DEVICE = 'cuda'


def sync():
    if DEVICE == 'cuda':
        torch.cuda.synchronize()


def timed(fn, runs):
    fn()  # warm-up
    sync()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def embed(a):
    from transformers import AutoTokenizer, BertModel

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dtype = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}[a.dtype]
    tok = AutoTokenizer.from_pretrained(a.model)
    model = BertModel.from_pretrained(a.model, add_pooling_layer=False, attn_implementation=a.attn).to(DEVICE, dtype).eval()
    rows = []
    for batch, seq in parse_shapes(a.shapes):
        texts = bench_texts(batch, seq)
        n = len(tok(texts[0])['input_ids'])
        assert n == seq, f'bench text tokenizes to {n} tokens, expected {seq}'

        @torch.inference_mode()
        def run():
            enc = tok(texts, padding=True, truncation=True, max_length=seq, return_tensors='pt').to(DEVICE)
            cls = model(**enc).last_hidden_state[:, 0]
            return torch.nn.functional.normalize(cls.float(), dim=-1).cpu()

        s = timed(run, a.runs)
        rows.append({'impl': f'pytorch {torch.__version__} {a.dtype} {a.attn}', 'device': torch.cuda.get_device_name() if DEVICE == 'cuda' else 'cpu', 'batch': batch, 'seq': seq,
                     'runs': a.runs, 'msPerBatch': s * 1e3, 'tokensPerSec': batch * seq / s})
    report(rows, a.json, 'embed')


def matmul(a):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False
    rows = []
    for name in [x for x in a.dtype.split(',') if x]:
        dtype = {'fp32': torch.float32, 'fp16': torch.float16}[name]
        label = 'f32 (no TF32)' if name == 'fp32' else 'f16 (fp32 sums)'
        for n in [int(x) for x in a.sizes.split(',') if x]:
            x = torch.rand(n, n, device=DEVICE, dtype=dtype)
            y = torch.rand(n, n, device=DEVICE, dtype=dtype)
            iters = max(3, round(4e9 / (2 * n ** 3)))
            s = timed(lambda: [x @ y for _ in range(iters)], 3) / iters
            rows.append({'impl': f'pytorch {torch.__version__} cuBLAS {label}', 'op': 'a@b', 'precision': name.replace('fp', 'f'), 'n': n, 'iters': iters,
                         'ms': s * 1e3, 'gflops': 2 * n ** 3 / s / 1e9})
    report(rows, a.json, 'matmul')


def parse_train_shape(s):
    """'16x10,64/512' -> (queries 16, group 10, query length 64, passage length 512), as `aqa bench train --shape`."""
    group, lengths = s.split(',')
    q, g = (int(x) for x in group.split('x'))
    qlen, plen = (int(x) for x in lengths.split('/'))
    return q, g, qlen, plen


def synthetic_ids(n, length, vocab, gen):
    """[CLS] + random ids + [SEP] of exactly `length` tokens, no padding (as node/bench/train.ts)."""
    body = torch.randint(1000, vocab, (n, length - 2), generator=gen)
    return torch.cat([torch.full((n, 1), 101), body, torch.full((n, 1), 102)], dim=1)


def train(a):
    from transformers import BertModel

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    q, g, qlen, plen = parse_train_shape(a.shape)
    model = BertModel.from_pretrained(a.model, add_pooling_layer=False, attn_implementation=a.attn,
                                      hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0).to(DEVICE).train()
    pooling_cfg = Path(a.model) / '1_Pooling' / 'config.json'
    mean_pooling = pooling_cfg.exists() and json.loads(pooling_cfg.read_text()).get('pooling_mode_mean_tokens', False)
    decay = [p for n, p in model.named_parameters() if not (n.endswith('bias') or 'LayerNorm' in n)]
    no_decay = [p for n, p in model.named_parameters() if n.endswith('bias') or 'LayerNorm' in n]
    # A tiny learning rate, as ours: the weights (and so the speed) stay as they are.
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.01}, {'params': no_decay, 'weight_decay': 0.0}],
                            lr=1e-9, betas=(0.9, 0.999), eps=1e-8)
    fp16 = a.dtype == 'fp16'
    # torch.amp.GradScaler from PyTorch 2.3; torch.cuda.amp.GradScaler before.
    scaler = (torch.amp.GradScaler(DEVICE, init_scale=65536.0, enabled=fp16) if hasattr(torch.amp, 'GradScaler')
              else torch.cuda.amp.GradScaler(init_scale=65536.0, enabled=fp16))
    gen = torch.Generator().manual_seed(0)
    vocab = model.config.vocab_size
    qi = synthetic_ids(q, qlen, vocab, gen).to(DEVICE)
    pi = synthetic_ids(q * g, plen, vocab, gen).to(DEVICE)
    qm, pm = torch.ones_like(qi), torch.ones_like(pi)
    target = torch.arange(q, device=DEVICE) * g

    def embed(ids, mask):
        h = model(input_ids=ids, attention_mask=mask).last_hidden_state
        pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True) if mean_pooling else h[:, 0]
        return torch.nn.functional.normalize(pooled.float(), dim=-1)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(DEVICE, dtype=torch.float16, enabled=fp16):
            scores = embed(qi, qm) @ embed(pi, pm).T / 0.02
        loss = torch.nn.functional.cross_entropy(scores.float(), target)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(opt)
        scaler.update()
        return loss.item()

    s = timed(step, a.runs)
    tokens = q * qlen + q * g * plen
    rows = [{'impl': f'pytorch {torch.__version__} {a.dtype} {a.attn} AdamW', 'device': torch.cuda.get_device_name() if DEVICE == 'cuda' else 'cpu',
             'precision': a.dtype.replace('fp', 'f'), 'shape': f'{q} x {g}, {qlen}/{plen}', 'tokens': tokens, 'runs': a.runs,
             'stepMs': s * 1e3, 'tokensPerSec': tokens / s}]
    report(rows, a.json, 'train')


def report(rows, path, what):
    keys = list(rows[0].keys())
    print(' | '.join(keys))
    for r in rows:
        print(' | '.join(f'{v:.2f}' if isinstance(v, float) else str(v) for v in r.values()))
    if path:
        Path(path).write_text(json.dumps({'bench': what, 'rows': rows}, indent=2))


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = p.add_subparsers(dest='cmd', required=True)
    m = sub.add_parser('make-model')
    m.add_argument('--shape', choices=sorted(SHAPES), required=True)
    m.add_argument('--tokenizer', required=True, help='folder with tokenizer.json etc. (a BERT uncased vocabulary)')
    m.add_argument('--out', required=True)
    e = sub.add_parser('embed')
    e.add_argument('--model', required=True)
    e.add_argument('--shapes', default='32x128,32x256')
    e.add_argument('--dtype', default='fp32', choices=['fp32', 'bf16', 'fp16'])
    e.add_argument('--attn', default='sdpa', choices=['sdpa', 'eager'])
    e.add_argument('--runs', type=int, default=5)
    e.add_argument('--json')
    mm = sub.add_parser('matmul')
    mm.add_argument('--sizes', default='1024,2048,4096')
    mm.add_argument('--dtype', default='fp32', help='comma-separated: fp32, fp16')
    mm.add_argument('--json')
    t = sub.add_parser('train')
    t.add_argument('--model', required=True)
    t.add_argument('--shape', default='4x4,32/128', help='QUERIESxGROUP,QUERY_LEN/PASSAGE_LEN, as `aqa bench train --shape`')
    t.add_argument('--dtype', default='fp32', choices=['fp32', 'fp16'])
    t.add_argument('--attn', default='sdpa', choices=['sdpa', 'eager'])
    t.add_argument('--runs', type=int, default=3)
    t.add_argument('--json')
    p.add_argument('--device', default='cuda', help='torch device (cpu only to try the script)')
    a = p.parse_args()
    global DEVICE
    DEVICE = a.device
    {'make-model': make_model, 'embed': embed, 'matmul': matmul, 'train': train}[a.cmd](a)


if __name__ == '__main__':
    main()
