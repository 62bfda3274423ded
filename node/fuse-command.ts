// `aqa fuse`: combine the result files of several runs (models, or BM25 and a model) into one,
// with any fusion method of core/retrieval/fusion.ts, and print each input's and the fusion's
// metrics when the questions have gold pids. The pipeline does the same inside its fuse stage;
// this is for runs made by hand (`aqa search`, a BM25 script, another tool's output).

import { type Command, Option } from 'commander';
import type { AqaQuestion } from '../core/data/aqa.ts';
import { FUSION_METHODS, type FusionMethod, fuseRuns } from '../core/retrieval/fusion.ts';
import { RESULTS_K, type ScoreMap, rankPids } from '../core/retrieval/results.ts';
import { positiveInt } from './cli-options.ts';

export interface FuseOptions {
  results: string[];
  method: FusionMethod;
  weights?: number[];
  rrfK: number;
  out: string;
  k: number;
  questions?: string;
}

/** Fuse the runs, write the fused results, return the lines printed (metrics per run). */
export async function runFuse(o: FuseOptions): Promise<string[]> {
  if (o.results.length < 2) throw new Error(`--results: fusion needs at least two result files, got ${o.results.length}`);
  if (o.weights && o.weights.length !== o.results.length) throw new Error(`--weights: ${o.weights.length} weights for ${o.results.length} result files`);
  const [{ readResults, readQuestions, writeResults }, { prepareOutputFolder }] = await Promise.all([import('./data.ts'), import('./files.ts')]);
  await prepareOutputFolder(o.out, '--out');
  const runs: ScoreMap[][] = [];
  for (const file of o.results) runs.push(await readResults(file));
  runs.forEach((r, i) => {
    if (r.length !== runs[0].length) throw new Error(`${o.results[i]}: ${r.length} questions, but ${o.results[0]} has ${runs[0].length}; fuse runs over the same question file`);
  });
  // The question file is read and checked before the fused file is written: a mismatch must
  // leave nothing behind.
  let questions: AqaQuestion[] | undefined;
  if (o.questions) {
    ({ questions } = await readQuestions(o.questions, { requirePids: true }));
    if (questions.length !== runs[0].length) throw new Error(`${o.questions}: ${questions.length} questions, but the result files have ${runs[0].length} lines`);
  }
  const fused = fuseRuns(runs, { method: o.method, weights: o.weights, rrfK: o.rrfK });
  await writeResults(o.out, fused, o.k);
  const lines: string[] = [];
  if (questions) {
    const { evaluate, formatReport } = await import('../core/eval/metrics.ts');
    const width = Math.max(...o.results.map((f) => f.length), 'fused'.length);
    o.results.forEach((f, i) => lines.push(`${f.padEnd(width)}  ${formatReport(evaluate(runs[i].map((m) => rankPids(m)), questions))}`));
    lines.push(`${'fused'.padEnd(width)}  ${formatReport(evaluate(fused.map((m) => rankPids(m)), questions))}`);
  }
  return lines;
}

function numberList(v: string): number[] {
  return v.split(',').map((x) => {
    const n = Number(x);
    if (x.trim() === '' || !Number.isFinite(n) || n < 0) throw new Error(`--weights: '${x}' is not a number >= 0`);
    return n;
  });
}

export function registerFuseCommand(program: Command): void {
  program
    .command('fuse')
    .description('fuse the result files of several runs (one {pid: score} JSONL line per question) into one; prints metrics with --questions')
    .requiredOption('--results <files...>', 'result files of the runs, same questions in the same order')
    .requiredOption('--out <file>', 'fused results JSONL')
    .addOption(new Option('--method <m>', 'fusion method (core/retrieval/fusion.ts)').choices([...FUSION_METHODS]).default('zscore'))
    .option('--weights <list>', 'one weight per run, comma-separated (default: equal)', numberList)
    .option('--rrf-k <n>', 'k of reciprocal rank fusion', positiveInt, 60)
    .option('--k <n>', 'papers kept per question', positiveInt, RESULTS_K)
    .option('--questions <file>', 'AQA questions with gold pids: print official MAP@20 and more for every run and the fusion')
    .action(async (opts) => {
      const lines = await runFuse(opts as FuseOptions);
      for (const l of lines) console.log(l);
      console.error(`wrote ${opts.out}`);
    });
}
