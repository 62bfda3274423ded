// Regenerates the bundled pipeline sample from the SciFact collection in the AQA layout:
// a seeded choice of training and validation claims, every gold paper they cite, and seeded
// random other papers up to the corpus size. Same seed and source files -> same bytes.
//
//   node --import tsx demo/data/pipeline/make-sample.ts [--src DIR] [--out DIR]
//
// Defaults: 120 training claims, 60 validation claims, 360 papers, seed 2020.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { rng } from '../../../core/data/pairs.ts';

const { values: a } = parseArgs({
  options: {
    src: { type: 'string', default: '../shared/data/scifact-aqa' },
    out: { type: 'string', default: 'demo/data/pipeline' },
    train: { type: 'string', default: '120' },
    valid: { type: 'string', default: '60' },
    papers: { type: 'string', default: '360' },
    seed: { type: 'string', default: '2020' },
  },
});

const random = rng(Number(a.seed));

/** `n` items of `xs` chosen without replacement, returned in their original order. */
function choose<T>(xs: readonly T[], n: number): T[] {
  const idx = xs.map((_, i) => i);
  for (let i = 0; i < Math.min(n, idx.length); i++) {
    const j = i + Math.floor(random() * (idx.length - i));
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  return idx
    .slice(0, n)
    .sort((x, y) => x - y)
    .map((i) => xs[i]);
}

function questionLines(file: string): string[] {
  return readFileSync(join(a.src, file), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '');
}

const corpus = JSON.parse(readFileSync(join(a.src, 'pid_to_title_abs.json'), 'utf8')) as Record<string, { title: string | null; abstract: string | null }>;
const train = choose(questionLines('qa_train.txt'), Number(a.train));
const valid = choose(questionLines('qa_valid_flag.txt'), Number(a.valid));

const keep = new Set<string>();
for (const l of [...train, ...valid]) for (const p of (JSON.parse(l) as { pids: string[] }).pids) if (p in corpus) keep.add(p);
const gold = keep.size;
const others = Object.keys(corpus).filter((p) => !keep.has(p));
for (const p of choose(others, Math.max(0, Number(a.papers) - keep.size))) keep.add(p);

// One entry per line, in the source file's order: a readable diff if the sample is regenerated.
const entries = Object.keys(corpus)
  .filter((p) => keep.has(p))
  .map((p) => `${JSON.stringify(p)}: ${JSON.stringify(corpus[p])}`);
writeFileSync(join(a.out, 'corpus.json'), `{\n${entries.join(',\n')}\n}\n`);
writeFileSync(join(a.out, 'qa_train.txt'), `${train.join('\n')}\n`);
writeFileSync(join(a.out, 'qa_valid_flag.txt'), `${valid.join('\n')}\n`);
console.log(`${train.length} training and ${valid.length} validation claims; ${entries.length} papers (${gold} gold, ${entries.length - gold} random)`);
