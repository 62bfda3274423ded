#!/usr/bin/env python3
"""Training quality against the reference trainer on SciFact in the AQA layout.

Three steps, each a subcommand, all on PyTorch CPU with sentence-transformers:

  mine   groups.jsonl from the BASE model: one FlagEmbedding group {query, pos: [text], neg: [texts]}
         per (training question, gold pid). Both trainers (`aqa train` and `train` below) read
         this one file, so they see the same queries, positives and negative pools.
  train  sentence-transformers' MultipleNegativesRankingLoss (MNRL) on those groups, with the
         hyperparameters of `aqa train` (below); one seed per call.
  rank   embed the corpus and the validation questions with any model folder (ours load in
         sentence-transformers as they are), rank by cosine and write the top 200 pids per
         question as JSON. tools/quality-eval.ts scores that JSON with core/eval/metrics.ts.

  PY=.venv-st/bin/python; D=../shared/data/scifact-aqa; M=test/models/all-MiniLM-L6-v2
  $PY tools/quality_scifact.py mine  --model $M --data $D --out q/groups.jsonl
  $PY tools/quality_scifact.py train --model $M --groups q/groups.jsonl --seed 42 --out q/mnrl-42
  $PY tools/quality_scifact.py rank  --model q/mnrl-42 --data $D --out q/rank-mnrl-42.json
  node --import tsx tools/quality-eval.ts --questions $D/qa_valid_flag.txt q/rank-*.json

Choices, and why:
- Texts are built as the runtime builds them, so that both trainers and the evaluation see the
  same strings as `aqa index` / `aqa search` would: a passage is core/data/passages.ts's
  passageText (title + ". " + abstract, no second mark after a title ending in . ? ! : ;, cut to
  2,000 code points); a query is `question + " " + body` with whitespace collapsed. SciFact claims
  have empty bodies and no HTML, so this is core/data/clean.ts's queryText on this data (`mine`
  and `rank` refuse a question holding a tag or an entity rather than clean it differently).
- Mining: passages embedded at 256 tokens and queries at 64 (the evaluation's lengths, so the
  base model's corpus embedding is computed once and shared with its evaluation), top 210 by
  cosine, ranks 10-209 minus the question's gold pids as the pool (the top 10 are the likeliest
  false negatives: unlabelled papers that do support the claim), 7 negatives drawn from it with a
  seeded random.Random. The query string is stored as is; neither trainer adds a prefix
  (all-MiniLM-L6-v2 has none).
- MNRL hyperparameters = `aqa train`'s flags in docs/training-quality.md: 1 epoch, lr 2e-5,
  10% linear warmup then linear decay, AdamW weight decay 0.01 (not on biases and LayerNorm
  weights: the Hugging Face Trainer's rule, which ours follows), max_grad_norm 1, scale 20
  (= temperature 0.05), 8 queries per batch, each row (anchor, positive, 3 negatives): the
  negatives are drawn from the group's 7 per seed, as FlagEmbedding and `aqa train` draw
  train_group_size - 1 of them. MNRL scores each anchor against every positive and negative of
  the batch, as our InfoNCE does. Mean pooling and normalisation come from the model folder.
- Lengths: queries are cut at 64 tokens and passages at 128, as `aqa train` cuts them: the
  trainer's collator is given a per-column length (the anchor column is the query), since one
  max_seq_length would cut both sides alike (1 of the 809 training claims has 79 tokens).
- Dropout: hidden dropout 0.1 (the model's config) on both sides; attention-probability dropout
  is set to 0 here because our encoder does not apply it (core/model/config.ts), so the two
  trainers regularise alike.
- Threads: torch.set_num_threads(--threads, default 2): the machine is a shared 2-core one.
"""

import argparse
import hashlib
import json
import os
import random
import re
import sys
import time

import numpy as np

TOP = 210
SKIP = 10
NEGATIVES = 7
RESULTS_K = 200


def set_threads(n):
    import torch

    torch.set_num_threads(n)
    torch.set_num_interop_threads(1)


# ---- texts, as core/data/passages.ts and core/data/clean.ts build them ----

def passage_text(paper):
    title = (paper.get('title') or '').strip()
    abstract = (paper.get('abstract') or '').strip()
    if not title:
        text = abstract
    elif not abstract:
        text = title
    else:
        text = f'{title} {abstract}' if re.search(r'[.?!:;]$', title) else f'{title}. {abstract}'
    return text[:2000]  # Python slices code points, as cutCodePoints does


MARKUP = re.compile(r'<[^\n]*?>|&(#[0-9]{1,8}|#[xX][0-9a-fA-F]{1,8}|[A-Za-z][A-Za-z0-9]{1,31});|http\S+|www[^\n]\S+')


def query_text(q, where):
    raw = f"{q['question']} {q.get('body') or ''}"
    if MARKUP.search(raw):
        sys.exit(f'{where}: question: holds HTML, an entity or a URL; this script only collapses whitespace')
    return ' '.join(raw.split())


def read_corpus(data, keep=None):
    """Corpus order; `keep`: a file of pids (one a line) to restrict it to, as `mine --subset` wrote."""
    with open(os.path.join(data, 'pid_to_title_abs.json'), encoding='utf-8') as f:
        corpus = json.load(f)
    pids = list(corpus)
    if keep:
        wanted = set(open(keep, encoding='utf-8').read().split())
        pids = [p for p in pids if p in wanted]
    return pids, [passage_text(corpus[p]) for p in pids]


def subset_pids(all_pids, gold, n, seed):
    """Every gold pid plus seeded random others up to n, in corpus order."""
    have = set(all_pids)
    keep = {p for p in gold if p in have}
    others = [p for p in all_pids if p not in keep]
    random.Random(seed).shuffle(others)
    keep.update(others[:max(0, n - len(keep))])
    return [p for p in all_pids if p in keep]


def read_questions(path):
    out = []
    with open(path, encoding='utf-8') as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            q = json.loads(line)
            if not isinstance(q.get('pids'), list):
                sys.exit(f'{path}:{n}: pids: missing (this file must list the gold paper ids)')
            out.append((query_text(q, f'{path}:{n}'), q['pids']))
    return out


# ---- embedding ----

def load_model(path, **kw):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(path, device='cpu', **kw)


def encode(model, texts, max_len, label):
    model.max_seq_length = max_len
    t0 = time.time()
    e = model.encode(texts, batch_size=32, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
    print(f'{label}: {len(texts)} texts at {max_len} tokens in {time.time() - t0:.0f} s', flush=True)
    return e.astype(np.float32)


def corpus_embeddings(model, model_path, pids, texts, max_len, cache):
    """The corpus embedding, cached by model folder: `mine` and the base model's `rank` share it."""
    meta = {'model': os.path.abspath(model_path), 'max_len': max_len, 'pids': hashlib.sha1('\n'.join(pids).encode()).hexdigest()}
    if cache and os.path.exists(cache) and json.load(open(cache + '.json')) == meta:
        print(f'corpus embedding from {cache}', flush=True)
        return np.load(cache)
    e = encode(model, texts, max_len, 'corpus')
    if cache:
        np.save(cache, e)
        json.dump(meta, open(cache + '.json', 'w'))
    return e


def top_k(P, Q, k):
    s = Q @ P.T  # normalised: cosine
    idx = np.argpartition(-s, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(s, idx, 1).argsort(1)[:, ::-1]
    return np.take_along_axis(idx, order, 1)


# ---- subcommands ----

def cmd_mine(a):
    set_threads(a.threads)
    qs = read_questions(os.path.join(a.data, a.questions))
    if a.train_questions:
        qs = random.Random(a.seed).sample(qs, a.train_questions)
    pids, texts = read_corpus(a.data)
    if a.subset:
        valid = read_questions(os.path.join(a.data, a.valid_questions))
        gold = {p for _, g in qs + valid for p in g}
        keep = subset_pids(pids, gold, a.subset, a.subset_seed)
        with open(a.corpus_pids, 'w') as f:
            f.write('\n'.join(keep) + '\n')
        pids, texts = read_corpus(a.data, a.corpus_pids)
        print(f'corpus subset: {len(pids)} papers ({len(gold)} gold of the training and validation questions) -> {a.corpus_pids}')
    row = {p: i for i, p in enumerate(pids)}
    model = load_model(a.model)
    P = corpus_embeddings(model, a.model, pids, texts, a.passage_max_len, a.cache)
    Q = encode(model, [q for q, _ in qs], a.query_max_len, 'queries')
    top = top_k(P, Q, TOP)
    rnd = random.Random(a.seed)
    groups, missing = 0, 0
    with open(a.out, 'w', encoding='utf-8') as f:
        for (query, gold), ranked in zip(qs, top):
            pool = [i for i in ranked[SKIP:TOP] if pids[i] not in gold]
            for g in gold:
                if g not in row:
                    missing += 1
                    continue
                neg = rnd.sample(pool, NEGATIVES)
                f.write(json.dumps({'query': query, 'pos': [texts[row[g]]], 'neg': [texts[i] for i in neg]}, ensure_ascii=False) + '\n')
                groups += 1
    print(f'{groups} groups from {len(qs)} questions ({missing} gold pids not in the corpus) -> {a.out}')


def read_groups(path, limit):
    groups = [json.loads(line) for line in open(path, encoding='utf-8') if line.strip()]
    return groups[:limit] if limit else groups


def column_lengths_collator(model, query_len, passage_len):
    """The trainer's collator, tokenizing the anchor column at query_len and the others at
    passage_len tokens, as `aqa train` cuts queries and passages (one max_seq_length would not)."""
    try:
        from sentence_transformers.sentence_transformer.data_collator import SentenceTransformerDataCollator
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.data_collator import SentenceTransformerDataCollator

    class ColumnLengths(SentenceTransformerDataCollator):
        def _get_task_for_column(self, column_name, column_position, router_mapping):
            self.column = column_name  # the collator asks for the task, then the length, per column
            return super()._get_task_for_column(column_name, column_position, router_mapping)

        def _get_max_length_for_task(self, task):
            return query_len if self.column == 'anchor' else passage_len

    return ColumnLengths(preprocess_fn=model.preprocess)


def cmd_train(a):
    import torch
    import transformers
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    try:
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.losses import MultipleNegativesRankingLoss

    set_threads(a.threads)
    groups = read_groups(a.groups, a.limit)
    model = load_model(a.model, config_kwargs={'attention_probs_dropout_prob': 0.0})
    model.max_seq_length = a.passage_max_len
    rnd = random.Random(a.seed)
    cols = {'anchor': [], 'positive': [], **{f'negative_{i + 1}': [] for i in range(a.train_group_size - 1)}}
    for g in groups:
        cols['anchor'].append(g['query'])
        cols['positive'].append(rnd.choice(g['pos']))
        for i, t in enumerate(rnd.sample(g['neg'], a.train_group_size - 1)):
            cols[f'negative_{i + 1}'].append(t)
    args = SentenceTransformerTrainingArguments(
        output_dir=a.out + '.trainer',
        num_train_epochs=1,
        per_device_train_batch_size=a.batch,
        learning_rate=a.lr,
        # Transformers 5 takes the ratio as a float warmup_steps < 1 (warmup_ratio is deprecated);
        # both become ceil(0.1 * steps) steps, as in core/train/schedule.ts.
        **({'warmup_steps': 0.1} if int(transformers.__version__.split('.')[0]) >= 5 else {'warmup_ratio': 0.1}),
        lr_scheduler_type='linear',
        weight_decay=0.01,
        max_grad_norm=1.0,
        seed=a.seed,
        data_seed=a.seed,
        use_cpu=True,
        save_strategy='no',
        logging_steps=1,
        report_to='none',
        dataloader_num_workers=0,
    )
    loss = MultipleNegativesRankingLoss(model, scale=1 / a.temperature)
    collator = column_lengths_collator(model, a.query_max_len, a.passage_max_len)
    first = collator([{c: v[i] for c, v in cols.items()} for i in range(min(a.batch, len(groups)))])
    assert first['anchor_input_ids'].shape[1] <= a.query_max_len and first['positive_input_ids'].shape[1] <= a.passage_max_len
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=Dataset.from_dict(cols), loss=loss, data_collator=collator)
    t0 = time.time()
    trainer.train()
    minutes = (time.time() - t0) / 60
    model.max_seq_length = 256  # the folder's original setting; `rank` sets its own lengths
    model.save(a.out)
    steps = trainer.state.global_step
    cfg = model[0].auto_model.config
    json.dump({'seed': a.seed, 'groups': len(groups), 'steps': steps, 'train_minutes': round(minutes, 2), 'torch_threads': torch.get_num_threads(),
               'hidden_dropout_prob': cfg.hidden_dropout_prob, 'attention_probs_dropout_prob': cfg.attention_probs_dropout_prob,
               'log': trainer.state.log_history}, open(os.path.join(a.out, 'quality_train.json'), 'w'), indent=1)
    print(f'MNRL seed {a.seed}: {len(groups)} groups, {steps} steps in {minutes:.1f} min -> {a.out}')


def cmd_rank(a):
    set_threads(a.threads)
    pids, texts = read_corpus(a.data, a.corpus_pids)
    qs = read_questions(os.path.join(a.data, a.questions))
    model = load_model(a.model)
    P = corpus_embeddings(model, a.model, pids, texts, a.passage_max_len, a.cache)
    Q = encode(model, [q for q, _ in qs], a.query_max_len, 'queries')
    top = top_k(P, Q, RESULTS_K)
    out = {'model': a.label or a.model, 'questions': a.questions, 'corpus': len(pids), 'query_max_len': a.query_max_len,
           'passage_max_len': a.passage_max_len, 'rankings': [[pids[i] for i in r] for r in top]}
    json.dump(out, open(a.out, 'w'))
    print(f'{len(qs)} rankings over {len(pids)} papers -> {a.out}')


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = p.add_subparsers(dest='cmd', required=True)

    def common(s):
        s.add_argument('--model', required=True)
        s.add_argument('--threads', type=int, default=2)
        s.add_argument('--query_max_len', type=int, default=64)

    m = sub.add_parser('mine')
    common(m)
    m.add_argument('--data', required=True)
    m.add_argument('--questions', default='qa_train.txt')
    m.add_argument('--passage_max_len', type=int, default=256)
    m.add_argument('--seed', type=int, default=42)
    m.add_argument('--cache', help='.npy file for the corpus embedding (shared with `rank` of the same model)')
    m.add_argument('--train_questions', type=int, default=0, help='mine for a seeded random N of the questions (0 = all)')
    m.add_argument('--subset', type=int, default=0, help='corpus of every gold paper (training and validation) + random others up to N (0 = all)')
    m.add_argument('--subset_seed', type=int, default=1)
    m.add_argument('--valid_questions', default='qa_valid_flag.txt')
    m.add_argument('--corpus_pids', help='with --subset: where to write its pids, for `rank --corpus_pids`')
    m.add_argument('--out', required=True)

    t = sub.add_parser('train')
    common(t)
    t.add_argument('--groups', required=True)
    t.add_argument('--limit', type=int, default=0, help='first N groups only (0 = all)')
    t.add_argument('--passage_max_len', type=int, default=128)
    t.add_argument('--seed', type=int, default=42)
    t.add_argument('--lr', type=float, default=2e-5)
    t.add_argument('--temperature', type=float, default=0.05)
    t.add_argument('--batch', type=int, default=8)
    t.add_argument('--train_group_size', type=int, default=4)
    t.add_argument('--out', required=True)

    r = sub.add_parser('rank')
    common(r)
    r.add_argument('--data', required=True)
    r.add_argument('--questions', default='qa_valid_flag.txt')
    r.add_argument('--passage_max_len', type=int, default=256)
    r.add_argument('--cache')
    r.add_argument('--corpus_pids', help='rank within these pids only (the file `mine --subset` wrote)')
    r.add_argument('--label')
    r.add_argument('--out', required=True)

    a = p.parse_args()
    {'mine': cmd_mine, 'train': cmd_train, 'rank': cmd_rank}[a.cmd](a)


if __name__ == '__main__':
    main()
