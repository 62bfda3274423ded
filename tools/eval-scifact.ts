// Dense retrieval on SciFact in the AQA layout, for before/after fine-tuning comparisons on a
// CPU-only machine: embed the passages (title + ". " + abstract) and the cleaned validation
// queries with a model folder, rank by exact cosine, print the report metrics, and BM25's on
// the same passages for reference.
//
//   node --import tsx tools/eval-scifact.ts --model DIR [--max-length 128] [--subset 1000] [--seed 1] [--precision f16]
//
// --subset N keeps every gold paper of the questions plus random other papers up to N (seeded):
// the full 5,183-paper corpus takes about an hour to embed per model on a 2-core software
// driver. Say which corpus a number was measured on.

import { parseArgs } from 'node:util';
import { queryText } from '../core/data/clean.ts';
import { rng } from '../core/data/pairs.ts';
import { evaluate, formatReport } from '../core/eval/metrics.ts';
import { loadEmbeddingModel } from '../core/retrieval/embed.ts';
import { Bm25Index } from '../core/retrieval/bm25.ts';
import { readPassages, readQuestions } from '../node/data.ts';
import { createNodeGpu } from '../node/device.ts';
import { localModelFiles } from '../node/files.ts';

const { values: a } = parseArgs({
  options: {
    model: { type: 'string' },
    data: { type: 'string', default: '../shared/data/scifact-aqa' },
    questions: { type: 'string', default: 'qa_valid_flag.txt' },
    'max-length': { type: 'string', default: '128' },
    subset: { type: 'string', default: '0' },
    seed: { type: 'string', default: '1' },
    precision: { type: 'string', default: 'f32' },
  },
});
if (!a.model) throw new Error('--model DIR is required');
if (a.precision !== 'f32' && a.precision !== 'f16') throw new Error(`--precision must be f32 or f16, got ${a.precision}`);

const { passages } = await readPassages(`${a.data}/pid_to_title_abs.json`);
const { questions } = await readQuestions(`${a.data}/${a.questions}`, { requirePids: true });
let keep = passages.pids.map((_, i) => i);
const subset = Number(a.subset);
if (subset > 0) {
  const gold = new Set(questions.flatMap((q) => q.pids ?? []).filter((p) => passages.index.has(p)));
  const others = passages.pids.filter((p) => !gold.has(p));
  const random = rng(Number(a.seed));
  for (let i = others.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [others[i], others[j]] = [others[j], others[i]];
  }
  const pids = [...gold, ...others.slice(0, Math.max(0, subset - gold.size))];
  keep = pids.map((p) => passages.index.get(p)!).sort((x, y) => x - y);
}
const pids = keep.map((i) => passages.pids[i]);
const texts = keep.map((i) => passages.texts[i]);
const queries = questions.map((q) => queryText(q));
console.log(`corpus: ${pids.length} of ${passages.pids.length} papers${subset > 0 ? ` (all gold papers + random others, seed ${a.seed})` : ''}; ${questions.length} questions`);

const bm25 = Bm25Index.build(pids, texts);
const bmRanked = queries.map((q) => bm25.search(q, 200).map(([id]) => id));
console.log(`BM25:  ${formatReport(evaluate(bmRanked, questions))}`);

const gpu = await createNodeGpu({});
const model = await loadEmbeddingModel(gpu, localModelFiles(a.model), a.model, undefined, { precision: a.precision });
console.log(`model runs in ${model.precision}`);
const maxLength = Number(a['max-length']);
const t0 = performance.now();
let last = 0;
const P = await model.embed(texts, {
  maxLength,
  batchSize: 32,
  onProgress: (p) => {
    if (performance.now() - last > 30_000) {
      last = performance.now();
      console.error(`  passages ${p.done}/${p.total} (${Math.round(p.tokens / ((performance.now() - t0) / 1000))} tokens/s)`);
    }
  },
});
const Qv = await model.embed(queries, { query: true, maxLength, batchSize: 32 });
const seconds = (performance.now() - t0) / 1000;
const D = model.dim;
const ranked = queries.map((_, qi) => {
  const scores = pids.map((pid, pi) => {
    let s = 0;
    for (let d = 0; d < D; d++) s += Qv[qi * D + d] * P[pi * D + d];
    return [pid, s] as const;
  });
  scores.sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1));
  return scores.slice(0, 200).map(([pid]) => pid);
});
console.log(`dense: ${formatReport(evaluate(ranked, questions))}`);
console.log(`model ${a.model}, max length ${maxLength}, embedding ${seconds.toFixed(0)} s`);
model.dispose();
gpu.destroy();
