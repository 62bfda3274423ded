// BM25 baseline on SciFact in the AQA layout: index the passages (title + ". " + abstract, cut
// to 2,000 characters), search each validation question's cleaned query, and print the report
// metrics; optionally write the top-200 results and a submission.
//
//   node --import tsx tools/bm25-scifact.ts [--data DIR] [--k1 0.9] [--b 0.4] [--out results.jsonl]

import { parseArgs } from 'node:util';
import { checkPids } from '../core/data/aqa.ts';
import { queryText } from '../core/data/clean.ts';
import { evaluate, formatReport } from '../core/eval/metrics.ts';
import { Bm25Index } from '../core/retrieval/bm25.ts';
import { RESULTS_K } from '../core/retrieval/results.ts';
import { readPassages, readQuestions, writeResults } from '../node/data.ts';

const { values: a } = parseArgs({
  options: {
    data: { type: 'string', default: '../shared/data/scifact-aqa' },
    questions: { type: 'string', default: 'qa_valid_flag.txt' },
    k1: { type: 'string', default: '0.9' },
    b: { type: 'string', default: '0.4' },
    out: { type: 'string' },
  },
});

const t0 = performance.now();
const { passages, stats: cs } = await readPassages(`${a.data}/pid_to_title_abs.json`);
const { questions } = await readQuestions(`${a.data}/${a.questions}`, { requirePids: true });
const pc = checkPids(questions, (p) => passages.index.has(p), a.questions);
const t1 = performance.now();
const index = Bm25Index.build(passages.pids, passages.texts, { k1: Number(a.k1), b: Number(a.b) });
const t2 = performance.now();
const results = questions.map((q) => new Map(index.search(queryText(q), RESULTS_K)));
const t3 = performance.now();
const report = evaluate(
  results.map((m) => [...m.keys()]),
  questions,
);
console.log(`corpus: ${cs.entries} papers (${cs.duplicates} duplicate, ${cs.noTitle} without title); questions: ${questions.length}; gold pids missing from the corpus: ${pc.missing}`);
console.log(`BM25 k1=${index.k1} b=${index.b}: avgdl ${index.avgdl.toFixed(1)} tokens; read ${((t1 - t0) / 1000).toFixed(2)} s, index ${((t2 - t1) / 1000).toFixed(2)} s, search ${((t3 - t2) / 1000).toFixed(2)} s`);
console.log(formatReport(report));
if (a.out) {
  await writeResults(a.out, results);
  console.log(`wrote ${a.out}`);
}
