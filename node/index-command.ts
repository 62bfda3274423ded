// `aqa index`, `aqa search`, `aqa mine`: embed a corpus into an on-disk index (resumable), search
// it with questions (top-k results JSONL, metrics when the questions have gold pids), and mine
// hard negatives from it for fine-tuning. Data problems are one line naming the file and line
// (core/data readers); index problems name the index directory (node/index-store.ts).
//
// node/cli.ts imports this file to register the commands on every start, so the modules the
// actions need (model loader, GPU search, tokenizer, progress bars) load only when one runs:
// importing them eagerly added about a second to `aqa --help` on the 2-core test machine.

import { basename } from 'node:path';
import type { SingleBar } from 'cli-progress';
import { type Command, Option } from 'commander';
import type { AqaQuestion } from '../core/data/aqa.ts';
import type { Gpu } from '../core/gpu/device.ts';
import type { VectorDType } from '../core/retrieval/index-format.ts';
import type { ScoreMap } from '../core/retrieval/results.ts';
import type { NodeGpuOptions } from './device.ts';
import type { ModelDescription, OpenIndex } from './index-store.ts';
import { DEFAULT_NEGATIVES, formatMinedLine, mineHardNegatives, parseRange } from '../core/retrieval/mine.ts';

async function loadLibs() {
  const [store, data, device, gpuCore, load, hub, files, metrics, aqa, pairs, passages, format, topk, progress] = await Promise.all([
    import('./index-store.ts'),
    import('./data.ts'),
    import('./device.ts'),
    import('../core/gpu/device.ts'),
    import('../core/retrieval/embed.ts'),
    import('./hub.ts'),
    import('./files.ts'),
    import('../core/eval/metrics.ts'),
    import('../core/data/aqa.ts'),
    import('../core/data/pairs.ts'),
    import('../core/data/passages.ts'),
    import('../core/retrieval/index-format.ts'),
    import('../core/kernels/topk.ts'),
    import('cli-progress'),
  ]);
  return { store, data, device, gpuCore, load, hub, files, metrics, aqa, pairs, passages, format, topk, progress: progress.default };
}

let libsPromise: ReturnType<typeof loadLibs> | null = null;
const libs = () => (libsPromise ??= loadLibs());
type Libs = Awaited<ReturnType<typeof loadLibs>>;

/** Crash simulation for tests: kill the process (no cleanup runs) after this many shards. */
export const STOP_AFTER_ENV = 'AQA_INDEX_STOP_AFTER_SHARDS';

const warn = (m: string) => console.error(`warning: ${m}`);
const info = (m: string) => console.error(m);

/** Items per second for logs: whole numbers from 10 up, else two decimals (a software driver does ~0.5 passages/s). */
function rate(n: number, seconds: number): string {
  const r = seconds > 0 ? n / seconds : 0;
  return r >= 10 ? String(Math.round(r)) : r.toFixed(2);
}

function progressBar(L: Libs, format: string): SingleBar {
  return new L.progress.SingleBar({ format, stream: process.stderr, hideCursor: true, etaBuffer: 50 }, L.progress.Presets.shades_classic);
}

async function resolveDir(model: string): Promise<string> {
  const L = await libs();
  return L.hub.resolveModel(model, {
    onProgress: (file, loaded, total) => process.stderr.write(`\rdownloading ${file}: ${L.gpuCore.fmtBytes(loaded)}${total ? ` / ${L.gpuCore.fmtBytes(total)}` : ''}   `),
  });
}

async function loadModel(gpu: Gpu, m: ModelDescription) {
  const L = await libs();
  const model = await L.load.loadEmbeddingModel(gpu, L.files.localModelFiles(m.dir), m.name);
  for (const w of model.settings.warnings) warn(w);
  return model;
}

// ---- aqa index ----

export interface IndexCommandOptions {
  model: string;
  corpus: string;
  out: string;
  dtype: VectorDType;
  maxLength?: number;
  batchSize: number;
  shardSize: number;
  export?: string;
  /** Source and licences of the corpus, written into the export for the demo page to show. */
  credit?: string;
  force: boolean;
  gpu: NodeGpuOptions;
}

export async function runIndex(o: IndexCommandOptions): Promise<void> {
  const L = await libs();
  const dir = await resolveDir(o.model);
  const m = await L.store.describeModel(dir, o.model, o.maxLength);
  const s = m.settings;
  info(`model: ${basename(dir)} (${m.arch}, dim ${m.dim}); pooling ${s.pooling}, normalize ${s.normalize}, max length ${m.maxLength}, ${o.dtype}, shards of ${o.shardSize}`);
  const stopAfter = process.env[STOP_AFTER_ENV] ? Number(process.env[STOP_AFTER_ENV]) : undefined;

  let gpu: Gpu | null = null;
  let bar: SingleBar | null = null;
  let t0 = 0;
  let built = 0;
  try {
    const r = await L.store.buildIndex({
      out: o.out,
      corpus: o.corpus,
      model: m,
      dtype: o.dtype,
      batchSize: o.batchSize,
      shardSize: o.shardSize,
      force: o.force,
      log: info,
      loadModel: async () => {
        gpu = await L.device.createNodeGpu(o.gpu);
        info(`adapter: ${gpu.name}`);
        return loadModel(gpu, m);
      },
      onProgress: (p) => {
        if (!bar) {
          bar = progressBar(L, 'indexing {bar} {value}/{total} passages | {pps} passages/s | shard {shard}/{shards} | ETA {eta_formatted}');
          bar.start(p.total, p.done - p.embedded, { pps: 0, shard: p.shard + 1, shards: p.shards });
          t0 = performance.now();
        }
        bar.update(p.done, { pps: rate(p.embedded, (performance.now() - t0) / 1000), shard: p.shard + 1, shards: p.shards });
      },
      onShard: (e, i, n) => {
        built++;
        // A line per shard even when stderr is not a terminal (the bar then draws nothing).
        if (!process.stderr.isTTY) info(`shard ${i + 1}/${n}: ${e.rows} passages in ${e.seconds.toFixed(1)} s (${rate(e.rows, e.seconds)} passages/s)`);
        if (stopAfter !== undefined && built >= stopAfter) process.kill(process.pid, 'SIGKILL');
      },
    });
    (bar as SingleBar | null)?.stop();
    const st = r.corpusStats;
    if (st.duplicates) warn(`${o.corpus}: ${st.duplicates} duplicate pid(s); the first entry of each is indexed`);
    if (st.empty) warn(`${o.corpus}: ${st.empty} paper(s) with no title and no abstract (indexed as empty passages)`);
    const id = r.manifest.identity;
    const total = L.format.shardCount(id.count, id.shardSize);
    if (r.built) {
      info(`indexed ${r.embedded} passages in ${r.seconds.toFixed(1)} s (${rate(r.embedded, r.seconds)} passages/s); ${r.kept + r.built}/${total} shards in ${o.out}`);
    } else {
      info(`${o.out}: up to date (${total} shards, ${id.count} passages)`);
    }
    if (o.export) {
      const idx = await L.store.openIndex(o.out);
      const e = await L.store.exportIndex(idx, o.export, o.corpus, { credit: o.credit });
      if (e.missing) warn(`${e.missing} indexed pid(s) not found in ${o.corpus}: exported without title or snippet`);
      info(`exported ${id.count} x ${id.dim} ${id.dtype} to ${o.export}`);
    }
  } finally {
    (bar as SingleBar | null)?.stop();
    (gpu as Gpu | null)?.destroy();
  }
}

// ---- shared by search and mine ----

/** The index, its query model (the one it was built with unless --model names another copy), the GPU. */
async function openForQueries(indexDir: string, modelArg: string | undefined, maxLength: number | undefined) {
  const L = await libs();
  const index = await L.store.openIndex(indexDir);
  const name = modelArg ?? index.manifest.model.dir;
  let dir: string;
  try {
    dir = await resolveDir(name);
  } catch (e) {
    if (modelArg) throw e;
    // The folder recorded at build time is gone: try the name it was given as (a Hub id).
    dir = await resolveDir(index.manifest.model.name).catch(() => {
      throw new L.store.IndexError(`${indexDir}: the model it was built with (${index.manifest.model.dir}) is gone; pass it with --model`);
    });
  }
  const desc = await L.store.describeModel(dir, modelArg ?? index.manifest.model.name, maxLength);
  L.store.checkSameModel(index, desc);
  return { index, desc };
}

async function readQuestionFile(path: string, requirePids: boolean): Promise<AqaQuestion[]> {
  const L = await libs();
  const { questions, stats } = await L.data.readQuestions(path, { requirePids });
  for (const msg of stats.messages) warn(msg);
  if (!questions.length) throw new L.store.IndexError(`${path}: no questions`);
  return questions;
}

function warnMissingPids(L: Libs, index: OpenIndex, questions: readonly AqaQuestion[], file: string): void {
  const inIndex = new Set(index.pids);
  const r = L.aqa.checkPids(questions, (p) => inIndex.has(p), file);
  if (!r.missing) return;
  warn(`${r.missing} gold pid(s) of ${r.questionsAffected} question(s) are not in the index (${r.questionsWithoutKnown} question(s) have none left)`);
  for (const msg of r.messages.slice(0, 3)) warn(msg);
}

async function embedAndSearch(gpu: Gpu, index: OpenIndex, desc: ModelDescription, questions: AqaQuestion[], k: number, batchSize: number) {
  const L = await libs();
  const t0 = performance.now();
  const gindex = await L.store.uploadIndex(gpu, index);
  info(`index on the GPU: ${gindex.rows} x ${gindex.dim} ${gindex.dtype} (${L.gpuCore.fmtBytes(gindex.bytes)}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  try {
    const model = await loadModel(gpu, desc);
    try {
      const bar = progressBar(L, 'queries {bar} {value}/{total} | ETA {eta_formatted}');
      bar.start(questions.length, 0);
      const t1 = performance.now();
      const r = await L.store.retrieve(model, gindex, index.pids, questions, { k, batchSize, maxLength: desc.maxLength, onProgress: (p) => bar.update(p.done) });
      bar.stop();
      info(`${questions.length} queries embedded and searched in ${((performance.now() - t1) / 1000).toFixed(1)} s`);
      return r;
    } finally {
      model.dispose();
    }
  } finally {
    gindex.release();
  }
}

// ---- aqa search ----

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

function checkK(L: Libs, what: string, k: number): void {
  const max = L.topk.TOPK_MAX_K;
  if (k > max) throw new L.store.IndexError(`${what}: ${k} is more than the ${max} results a search can return`);
}

export async function runSearch(o: SearchCommandOptions): Promise<void> {
  const L = await libs();
  checkK(L, '--k', o.k);
  const { index, desc } = await openForQueries(o.index, o.model, o.maxLength);
  const questions = await readQuestionFile(o.questions, false);
  const judged = questions.some((q) => q.pids !== undefined);
  if (judged) warnMissingPids(L, index, questions, o.questions);
  const gpu = await L.device.createNodeGpu(o.gpu);
  try {
    info(`adapter: ${gpu.name}`);
    const r = await embedAndSearch(gpu, index, desc, questions, o.k, o.batchSize);
    const maps: ScoreMap[] = r.pids.map((pids, i) => new Map(pids.map((p, j) => [p, r.scores[i][j]])));
    await L.data.writeResults(o.out, maps, o.k);
    info(`wrote top ${Math.min(o.k, index.pids.length)} for ${questions.length} questions to ${o.out}`);
    if (judged) console.log(L.metrics.formatReport(L.metrics.evaluate(r.pids, questions)));
  } finally {
    gpu.destroy();
  }
}

// ---- aqa mine ----

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
  gpu: NodeGpuOptions;
}

export async function runMine(o: MineCommandOptions): Promise<void> {
  const L = await libs();
  if (!o.random) checkK(L, '--range end', o.range[1]);
  const index = await L.store.openIndex(o.index);
  const corpus = o.corpus ?? index.manifest.corpus.file;
  const questions = await readQuestionFile(o.questions, true);
  const inIndex = new Set(index.pids);
  warnMissingPids(L, index, questions, o.questions);
  const { pairs, stats: ps } = L.pairs.trainingPairs(questions, { has: (p) => inIndex.has(p) });
  if (ps.questionsDropped) warn(`${ps.questionsDropped} question(s) have no gold pid in the index and give no group`);
  if (!pairs.length) throw new L.store.IndexError(`${o.questions}: no (question, gold pid) pair has its paper in the index`);

  // Passage texts, from the corpus the index was built from (checked by hash).
  if ((await L.store.sha256File(corpus)) !== index.manifest.identity.corpusSha256) {
    throw new L.store.IndexError(`${corpus}: not the corpus ${o.index} was built from (sha256 differs); pass that file with --corpus`);
  }
  const { passages } = await L.data.readPassages(corpus, { maxChars: L.passages.PASSAGE_MAX_CHARS });
  const passage = (pid: string) => {
    const i = passages.index.get(pid);
    return i === undefined ? undefined : passages.texts[i];
  };

  let groups;
  if (o.random) {
    groups = L.pairs.randomGroups(pairs, index.pids, { negatives: o.negatives, seed: o.seed, per: o.per });
    info(`${groups.length} groups with ${o.negatives} random negatives (seed ${o.seed})`);
  } else {
    const { desc } = await openForQueries(o.index, o.model, o.maxLength);
    // Retrieve once per question that has a pair.
    const qIdx = [...new Set(pairs.map((p) => p.question))];
    const gpu = await L.device.createNodeGpu(o.gpu);
    let ranked: string[][];
    try {
      info(`adapter: ${gpu.name}`);
      ranked = (await embedAndSearch(gpu, index, desc, qIdx.map((i) => questions[i]), o.range[1], o.batchSize)).pids;
    } finally {
      gpu.destroy();
    }
    const byQuestion = new Map(qIdx.map((q, i) => [q, ranked[i]]));
    const r = mineHardNegatives(pairs, (q) => byQuestion.get(q)!, index.pids, { range: o.range, negatives: o.negatives, seed: o.seed, per: o.per, passage });
    groups = r.groups;
    const s = r.stats;
    info(
      `${s.groups} groups: ${s.hard} hard negatives from positions ${o.range[0]}-${o.range[1]}, ${s.goldInRange} gold papers skipped there` +
        `${s.sameAsQuery ? `, ${s.sameAsQuery} passages equal to the query skipped` : ''}` +
        `${s.toppedUp ? `; ${s.groupsToppedUp} group(s) topped up with ${s.toppedUp} random papers` : ''}`,
    );
  }
  await L.data.writeLines(
    o.out,
    (function* () {
      for (const g of groups) yield formatMinedLine(g, passage);
    })(),
  );
  info(`wrote ${groups.length} groups to ${o.out}`);
}

// ---- command registration ----

/** Commander parser for options that take an integer >= 1. */
export function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`expected a positive integer, got '${v}'`);
  return n;
}

function nonNegativeInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`expected an integer >= 0, got '${v}'`);
  return n;
}

/** Add `index`, `search` and `mine` to the `aqa` program. */
export function registerIndexCommands(program: Command): void {
  const gpuOptions = (): NodeGpuOptions => {
    const g = program.opts<{ adapter?: string; backend?: string }>();
    return { adapter: g.adapter, backend: g.backend };
  };

  program
    .command('index')
    .description('embed a corpus into an on-disk index (shards; an interrupted build resumes where it stopped)')
    .requiredOption('--model <dir|hub-id>', 'local model folder or Hugging Face Hub id')
    .requiredOption('--corpus <file>', 'AQA corpus JSON {pid: {title, abstract}} (pid_to_title_abs*.json)')
    .requiredOption('--out <dir>', 'index directory (manifest.json, pids.json, shard-NNNNN.f16)')
    .addOption(new Option('--dtype <t>', 'stored vector type').choices(['f16', 'f32']).default('f16'))
    .option('--max-length <n>', "max tokens per passage (default: the model's)", positiveInt)
    .option('--batch-size <n>', 'passages per GPU batch', positiveInt, 32)
    .option('--shard-size <n>', 'passages per shard file', positiveInt, 50_000)
    .option('--export <dir>', 'also write the browser format (vectors, manifest.json, passages.json) to this folder')
    .option('--credit <text>', "with --export: where the corpus comes from and its licences, shown on the demo page")
    .option('--force', 'rebuild an index that was built with another model or settings', false)
    .action(async (opts) => {
      await runIndex({ ...opts, gpu: gpuOptions() });
    });

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
      await runSearch({ ...opts, gpu: gpuOptions() });
    });

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
    .action(async (opts) => {
      await runMine({ ...opts, gpu: gpuOptions() });
    });
}

