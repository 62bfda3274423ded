// `aqa search`: the top-k papers of each question from an index (results JSONL, one {pid: score}
// line per question), with metrics when the questions have gold pids. The work modules load
// inside runSearch, so registering the command costs nothing at start-up.

import type { Command } from 'commander';
import type { ScoreMap } from '../core/retrieval/results.ts';
import { gpuOptions, positiveInt } from './cli-options.ts';
import type { NodeGpuOptions } from './device.ts';

export interface SearchCommandOptions {
  index: string;
  questions: string;
  out: string;
  k: number;
  model?: string;
  maxLength?: number;
  batchSize: number;
  gpu: NodeGpuOptions;
}

export async function runSearch(o: SearchCommandOptions): Promise<void> {
  const [q, device, data, metrics, { info }] = await Promise.all([
    import('./index-queries.ts'),
    import('./device.ts'),
    import('./data.ts'),
    import('../core/eval/metrics.ts'),
    import('./command-model.ts'),
  ]);
  q.checkK('--k', o.k);
  const { index, desc } = await q.openForQueries(o.index, o.model, o.maxLength);
  const questions = await q.readQuestionFile(o.questions, false);
  const judged = questions.some((x) => x.pids !== undefined);
  if (judged) q.warnMissingPids(index, questions, o.questions);
  const gpu = await device.createNodeGpu(o.gpu);
  try {
    info(`adapter: ${gpu.name}`);
    const r = await q.embedAndSearch(gpu, index, desc, questions, o.k, o.batchSize);
    const maps: ScoreMap[] = r.pids.map((pids, i) => new Map(pids.map((p, j) => [p, r.scores[i][j]])));
    await data.writeResults(o.out, maps, o.k);
    info(`wrote top ${Math.min(o.k, index.pids.length)} for ${questions.length} questions to ${o.out}`);
    if (judged) console.log(metrics.formatReport(metrics.evaluate(r.pids, questions)));
  } finally {
    gpu.destroy();
  }
}

export function registerSearchCommand(program: Command): void {
  program
    .command('search')
    .description('top-k papers per question from an index; prints metrics when the questions have gold pids')
    .requiredOption('--index <dir>', 'index directory built by aqa index')
    .requiredOption('--questions <file>', 'AQA questions JSONL')
    .requiredOption('--out <file>', 'results JSONL: one {pid: score} line per question, best first')
    .option('--k <n>', 'papers per question (at most 1024)', positiveInt, 200)
    .option('--model <dir|hub-id>', 'query model (default: the one the index was built with)')
    .option('--max-length <n>', "max tokens per query (default: the model's)", positiveInt)
    .option('--batch-size <n>', 'queries per GPU batch', positiveInt, 32)
    .action(async (opts) => {
      await runSearch({ ...opts, gpu: gpuOptions(program) });
    });
}
