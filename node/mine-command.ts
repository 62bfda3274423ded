// `aqa mine`: training groups {query, pos, neg} with hard negatives sampled from each question's
// retrieval ranks (core/retrieval/mine.ts), or random ones with --random. The work modules load inside
// runMine, so registering the command costs nothing at start-up.

import { type Command, Option } from 'commander';
import { gpuOptions, nonNegativeInt, positiveInt } from './cli-options.ts';
import type { NodeGpuOptions } from './device.ts';
import { type PrecisionChoice, precisionOption } from './precision-option.ts';
import { DEFAULT_NEGATIVES, formatMinedLine, mineHardNegatives, parseRange } from '../core/retrieval/mine.ts';

export interface MineCommandOptions {
  index: string;
  questions: string;
  out: string;
  range: [number, number];
  negatives: number;
  seed: number;
  random: boolean;
  per: 'pair' | 'question';
  corpus?: string;
  model?: string;
  maxLength?: number;
  batchSize: number;
  /** Storage type the query model runs in (default: the index's). */
  precision?: PrecisionChoice;
  gpu: NodeGpuOptions;
}

export async function runMine(o: MineCommandOptions): Promise<void> {
  const [q, store, device, data, files, pairsLib, passagesLib, { info, warn }] = await Promise.all([
    import('./index-queries.ts'),
    import('./index-store.ts'),
    import('./device.ts'),
    import('./data.ts'),
    import('./files.ts'),
    import('../core/data/pairs.ts'),
    import('../core/data/passages.ts'),
    import('./command-model.ts'),
  ]);
  if (!o.random) q.checkK('--range end', o.range[1]);
  await files.prepareOutputFolder(o.out, '--out');
  const index = await store.openIndex(o.index);
  const corpus = o.corpus ?? index.manifest.corpus.file;
  const questions = await q.readQuestionFile(o.questions, true);
  const inIndex = new Set(index.pids);
  q.warnMissingPids(index, questions, o.questions);
  const { pairs, stats: ps } = pairsLib.trainingPairs(questions, { has: (p) => inIndex.has(p) });
  if (ps.questionsDropped) warn(`${ps.questionsDropped} question(s) have no gold pid in the index and give no group`);
  if (!pairs.length) throw new store.IndexError(`${o.questions}: no (question, gold pid) pair has its paper in the index`);

  // Passage texts, from the corpus the index was built from (checked by hash).
  if ((await store.sha256File(corpus)) !== index.manifest.identity.corpusSha256) {
    throw new store.IndexError(`${corpus}: not the corpus ${o.index} was built from (sha256 differs); pass that file with --corpus`);
  }
  const { passages } = await data.readPassages(corpus, { maxChars: passagesLib.PASSAGE_MAX_CHARS });
  const passage = (pid: string) => {
    const i = passages.index.get(pid);
    return i === undefined ? undefined : passages.texts[i];
  };

  let groups;
  if (o.random) {
    groups = pairsLib.randomGroups(pairs, index.pids, { negatives: o.negatives, seed: o.seed, per: o.per });
    info(`${groups.length} groups with ${o.negatives} random negatives (seed ${o.seed})`);
  } else {
    const { desc } = await q.openForQueries(o.index, o.model, o.maxLength);
    const precision = q.queryPrecision(index, o.precision);
    // Retrieve once per question that has a pair.
    const qIdx = [...new Set(pairs.map((p) => p.question))];
    const gpu = await device.createNodeGpu(o.gpu);
    let ranked: string[][];
    try {
      info(`adapter: ${gpu.name}`);
      ranked = (await q.embedAndSearch(gpu, index, desc, qIdx.map((i) => questions[i]), o.range[1], o.batchSize, precision)).pids;
    } finally {
      gpu.destroy();
    }
    const byQuestion = new Map(qIdx.map((x, i) => [x, ranked[i]]));
    const r = mineHardNegatives(pairs, (x) => byQuestion.get(x)!, index.pids, { range: o.range, negatives: o.negatives, seed: o.seed, per: o.per, passage });
    groups = r.groups;
    const s = r.stats;
    info(
      `${s.groups} groups: ${s.hard} hard negatives from positions ${o.range[0]}-${o.range[1]}, ${s.goldInRange} gold papers skipped there` +
        `${s.sameAsQuery ? `, ${s.sameAsQuery} passages equal to the query skipped` : ''}` +
        `${s.toppedUp ? `; ${s.groupsToppedUp} group(s) topped up with ${s.toppedUp} random papers` : ''}`,
    );
  }
  await data.writeLines(
    o.out,
    (function* () {
      for (const g of groups) yield formatMinedLine(g, passage);
    })(),
  );
  info(`wrote ${groups.length} groups to ${o.out}`);
}

export function registerMineCommand(program: Command): void {
  program
    .command('mine')
    .description('training groups {query, pos, neg} with hard negatives sampled from each question\'s retrieval ranks')
    .requiredOption('--index <dir>', 'index directory built by aqa index')
    .requiredOption('--questions <file>', 'training questions JSONL with gold pids')
    .requiredOption('--out <file>', 'groups JSONL (FlagEmbedding layout, plus pos_pids/neg_pids)')
    .option('--range <a-b>', 'sample from 0-based ranking positions [a, b)', parseRange, [10, 210] as [number, number])
    .option('--negatives <n>', 'negatives per group', positiveInt, DEFAULT_NEGATIVES)
    .option('--seed <n>', 'sampling seed', nonNegativeInt, 42)
    .option('--random', 'random corpus negatives instead of mined ones (the original pipeline)', false)
    .addOption(new Option('--per <layout>', 'one group per (question, gold pid) or per question').choices(['pair', 'question']).default('pair'))
    .option('--corpus <file>', 'corpus file (default: the one the index was built from)')
    .option('--model <dir|hub-id>', 'query model (default: the one the index was built with)')
    .option('--max-length <n>', "max tokens per query (default: the model's)", positiveInt)
    .option('--batch-size <n>', 'queries per GPU batch', positiveInt, 32)
    .addOption(precisionOption("the index's"))
    .action(async (opts) => {
      await runMine({ ...opts, gpu: gpuOptions(program) });
    });
}
