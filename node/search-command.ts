// `aqa search`: the top-k papers of each question from an index (results JSONL, one {pid: score}
// line per question), with metrics when the questions have gold pids. The work modules load
// inside runSearch, so registering the command costs nothing at start-up.

import { type Command, Option } from 'commander';
import type { AqaQuestion } from '../core/data/aqa.ts';
import type { ScoreMap } from '../core/retrieval/results.ts';
import type { Retrieved } from '../core/retrieval/retrieve.ts';
import { gpuOptions, positiveInt } from './cli-options.ts';
import type { NodeGpuOptions } from './device.ts';
import { addLanceSearchOptions, type LanceSearchCommandOptions } from './lancedb/options.ts';
import { engineOption } from './onnx/engine-option.ts';
import { type PrecisionChoice, precisionOption } from './precision-option.ts';

export interface SearchCommandOptions extends Partial<LanceSearchCommandOptions> {
  /** Index directory; or --lancedb names a LanceDB table instead. */
  index?: string;
  questions: string;
  out: string;
  k: number;
  model?: string;
  maxLength?: number;
  batchSize: number;
  /** Storage type the query model runs in (default: the index's). */
  precision?: PrecisionChoice;
  /** Results shown per question with their titles (default: 3 for the first 10 questions on a terminal, none otherwise). */
  show?: number;
  /** Query embedding: webgpu (default) or onnx (onnx/model.onnx on the CPU); the top-k search stays on the GPU. */
  engine?: 'webgpu' | 'onnx';
  /** Full vectors or a compressed form (default: the index's first form, else full), and its rescoring factor. */
  use?: 'full' | 'int8' | 'binary';
  rescore?: number;
  gpu: NodeGpuOptions;
}

/** On a terminal without --show: this many rows for this many questions. */
const TERMINAL_ROWS = 3;
const TERMINAL_QUESTIONS = 10;

export async function runSearch(o: SearchCommandOptions): Promise<void> {
  const [q, device, files, { info }] = await Promise.all([import('./index-queries.ts'), import('./device.ts'), import('./files.ts'), import('./command-model.ts')]);
  q.checkK('--k', o.k);
  if (!o.index === !o.lancedb) throw new Error('give one of --index <dir> and --lancedb <uri>');
  await files.prepareOutputFolder(o.out, '--out');
  if (o.lancedb) {
    const questions = await q.readQuestionFile(o.questions, false);
    const { lanceQuerySearch } = await import('./lancedb/commands.ts');
    const l = await lanceQuerySearch({ ...o, lancedbTable: o.lancedbTable ?? 'passages', ann: !!o.ann }, questions, o.questions, info);
    await writeOutput(o, questions, l.r, l.corpus, l.rows);
    return;
  }
  const { index, desc } = await q.openForQueries(o.index!, o.model, o.maxLength);
  Object.assign(index, { use: o.use, rescore: o.rescore });
  const precision = q.queryPrecision(index, o.precision);
  const questions = await q.readQuestionFile(o.questions, false);
  if (questions.some((x) => x.pids !== undefined)) q.warnMissingPids(index, questions, o.questions);
  const gpu = await device.createNodeGpu(o.gpu);
  try {
    info(`adapter: ${gpu.name}`);
    const r = await q.embedAndSearch(gpu, index, desc, questions, o.k, o.batchSize, precision, o.engine);
    await writeOutput(o, questions, r, index.manifest.corpus.file, index.pids.length);
  } finally {
    gpu.destroy();
  }
}

/** Results JSONL, the result tables on a terminal (or with --show), and metrics when judged. */
async function writeOutput(o: SearchCommandOptions, questions: AqaQuestion[], r: Retrieved, corpus: string, count: number): Promise<void> {
  const [data, metrics, { info, warn }] = await Promise.all([import('./data.ts'), import('../core/eval/metrics.ts'), import('./command-model.ts')]);
  const judged = questions.some((x) => x.pids !== undefined);
  const maps: ScoreMap[] = r.pids.map((pids, i) => new Map(pids.map((p, j) => [p, r.scores[i][j]])));
  await data.writeResults(o.out, maps, o.k);
  info(`wrote top ${Math.min(o.k, count)} for ${questions.length} questions to ${o.out}`);
  const rows = o.show ?? (process.stdout.isTTY ? TERMINAL_ROWS : 0);
  if (rows > 0) {
    const shown = o.show !== undefined ? questions.length : Math.min(questions.length, TERMINAL_QUESTIONS);
    const { formatResultTables, readTitles } = await import('./result-table.ts');
    const wanted = new Set(r.pids.slice(0, shown).flatMap((p) => p.slice(0, rows)));
    const titles = await readTitles(corpus, wanted).catch((e: Error) => {
      warn(`titles not shown: ${e.message.split('\n')[0]}`);
      return new Map<string, string>();
    });
    console.log(formatResultTables(questions.slice(0, shown), r, titles, rows, Math.max(60, process.stdout.columns ?? 100)));
    if (shown < questions.length) console.log(`(the first ${shown} of ${questions.length} questions; --show <n> prints n results of every question)`);
  }
  if (judged) console.log(metrics.formatReport(metrics.evaluate(r.pids, questions)));
}

export function registerSearchCommand(program: Command): void {
  const cmd = program
    .command('search')
    .description('top-k papers per question from an index; prints metrics when the questions have gold pids')
    .option('--index <dir>', 'index directory built by aqa index')
    .requiredOption('--questions <file>', 'AQA questions JSONL, or .txt with one question per line')
    .requiredOption('--out <file>', 'results JSONL: one {pid: score} line per question, best first')
    .option('--k <n>', 'papers per question (at most 1024)', positiveInt, 200)
    .option('--model <dir|hub-id>', 'query model (default: the one the index was built with)')
    .option('--max-length <n>', "max tokens per query (default: the model's)", positiveInt)
    .option('--batch-size <n>', 'queries per GPU batch', positiveInt, 32)
    .addOption(precisionOption("the index's"))
    .addOption(engineOption())
    .addOption(new Option('--use <form>', "vectors to search: full, or a compressed form with rescoring (default: the index's --quantize form, else full)").choices(['full', 'int8', 'binary']))
    .option('--rescore <n>', 'with a compressed form: candidates per result rescored with the full vectors (default: the index\'s)', positiveInt)
    .option('--show <n>', `print the top n papers of every question with their titles (on a terminal: ${TERMINAL_ROWS} for the first ${TERMINAL_QUESTIONS} questions)`, positiveInt);
  addLanceSearchOptions(cmd)
    .action(async (opts) => {
      await runSearch({ ...opts, gpu: gpuOptions(program) });
    });
}
