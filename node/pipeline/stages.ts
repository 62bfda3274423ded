// `aqa pipeline`'s stages: prepare, mine, train, index, search, fuse, evaluate, submission, as
// methods of one Pipeline that shares the GPU, resolved models and read question files between
// them. What each unit hashes is listed in index.ts.

import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { type AqaQuestion, checkPids, DataError } from '../../core/data/aqa.ts';
import { queryText } from '../../core/data/clean.ts';
import { trainingPairs } from '../../core/data/pairs.ts';
import { evaluate } from '../../core/eval/metrics.ts';
import type { Gpu } from '../../core/gpu/device.ts';
import type { Precision } from '../../core/model/load.ts';
import { devicePrecision, loadEmbeddingModel } from '../../core/retrieval/embed.ts';
import { Bm25Index } from '../../core/retrieval/bm25.ts';
import { type FusionMethod, fuseRuns, splitIndices, tuneWeights } from '../../core/retrieval/fusion.ts';
import { parseSubmission, rankPids, type ScoreMap, SUBMISSION_K } from '../../core/retrieval/results.ts';
import { readPassages, readQuestions, readResults, writeResults, writeSubmission } from '../data.ts';
import { createNodeGpu, type NodeGpuOptions } from '../device.ts';
import { localModelFiles, writeFileAtomic } from '../files.ts';
import { resolveModel } from '../hub.ts';
import { runMine } from '../mine-command.ts';
import { buildIndex, checkSameModel, describeModel, type ModelDescription, modelFingerprint, openIndex, retrieve, sha256, uploadIndex } from '../index-store.ts';
import { trainCommand } from '../train-run.ts';
import { withModelDefaults } from '../train-settings.ts';
import type { TrainSettings } from '../../core/train/options.ts';
import type { ModelConfig, Negatives, PipelineConfig, Split } from './config.ts';
import { type Stage, STAGES } from './stage-names.ts';
import { type UnitOutput, Units } from './stamps.ts';
import { bestRun, type MetricsFile, officialOf, type RunMetrics } from './table.ts';

/** Test hook: stop the first training after this many optimizer steps with SIGKILL (a crash). */
export const KILL_AFTER_STEPS_ENV = 'AQA_PIPELINE_KILL_AFTER_STEPS';

export interface PipelineOptions {
  config: string;
  /** Rerun this stage and every later one. */
  force?: Stage;
  /** Instead of the config's work_dir. */
  workDir?: string;
  gpu?: NodeGpuOptions;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
  /** The final table (default: stdout). */
  print?: (text: string) => void;
}

interface FusionInfo {
  runs: string[];
  methods: Partial<Record<FusionMethod, { weights: number[]; tuned: boolean; tunedScore?: number; equalScore?: number; folds?: number[][] }>>;
}

/** The stages, run in order by runPipeline (index.ts); each unit skips itself when up to date. */
export class Pipeline {
  readonly units: Units;
  readonly log: (line: string) => void;
  private gpuPromise: Promise<Gpu> | null = null;
  private readonly resolved = new Map<string, Promise<string>>();
  private readonly questionCache = new Map<string, Promise<AqaQuestion[]>>();
  private metrics: MetricsFile | null = null;

  constructor(
    readonly cfg: PipelineConfig,
    readonly o: PipelineOptions,
  ) {
    this.log = o.log ?? ((l: string) => console.error(l));
    this.units = new Units(cfg.workDir, this.log);
  }

  // ---- helpers

  /** A path for messages: relative to the working directory when inside it. */
  show(p: string): string {
    const r = relative(process.cwd(), p);
    return r && !r.startsWith('..') && !isAbsolute(r) ? r : p;
  }

  private work(...parts: string[]): string {
    return join(this.cfg.workDir, ...parts);
  }

  private get enabled(): ModelConfig[] {
    return this.cfg.models.filter((m) => m.enabled);
  }

  /** Splits with question files: valid always, test when configured. */
  private get splits(): Split[] {
    return this.cfg.data.test ? ['valid', 'test'] : ['valid'];
  }

  /** Retrieval runs in table order: models, then BM25. */
  private get runs(): string[] {
    return [...this.enabled.map((m) => m.name), ...(this.cfg.bm25 ? ['bm25'] : [])];
  }

  private forced(stage: Stage): boolean {
    return this.o.force !== undefined && STAGES.indexOf(stage) >= STAGES.indexOf(this.o.force);
  }

  private gpu(): Promise<Gpu> {
    this.gpuPromise ??= createNodeGpu(this.o.gpu ?? {}).then((g) => {
      this.log(`adapter: ${g.name}`);
      return g;
    });
    return this.gpuPromise;
  }

  close(): void {
    this.gpuPromise?.then((g) => g.destroy()).catch(() => {});
  }

  private baseDir(m: ModelConfig): Promise<string> {
    let p = this.resolved.get(m.model);
    if (!p) {
      p = resolveModel(m.model);
      this.resolved.set(m.model, p);
    }
    return p;
  }

  /** The folder a model's index and queries use: the fine-tuned one, or the base. */
  private async finalDir(m: ModelConfig): Promise<string> {
    return m.train ? this.work('models', m.name) : this.baseDir(m);
  }

  private questions(split: 'train' | Split): Promise<AqaQuestion[]> {
    const path = split === 'train' ? this.cfg.data.train : split === 'valid' ? this.cfg.data.valid : this.cfg.data.test;
    if (!path) throw new Error(`no ${split} questions in the config`);
    let p = this.questionCache.get(path);
    if (!p) {
      p = readQuestions(path, { requirePids: split !== 'test' }).then((r) => r.questions);
      this.questionCache.set(path, p);
    }
    return p;
  }

  private fileHash(path: string | null): Promise<string | null> {
    return this.units.fileHash(path);
  }

  /** (hash, finish time) of an upstream stamp: a rerun upstream changes it even with equal inputs. */
  private upstream(unit: string): string {
    return this.units.upstream(unit);
  }

  /** Run one unit unless its stamp says it is up to date (stamps.ts). */
  private unit(stage: Stage, name: string | null, inputs: Record<string, unknown>, run: (fresh: boolean) => Promise<UnitOutput>): Promise<void> {
    return this.units.run(stage, name, inputs, this.forced(stage), run);
  }

  // ---- prepare: read and check every data file

  async prepare(): Promise<void> {
    const { data } = this.cfg;
    const inputs = { corpus: await this.fileHash(data.corpus), train: await this.fileHash(data.train), valid: await this.fileHash(data.valid), test: await this.fileHash(data.test), submission: !!this.cfg.submission };
    await this.unit('prepare', null, inputs, async () => {
      await mkdir(this.work('prepare'), { recursive: true });
      const { passages, stats: cs } = await readPassages(data.corpus);
      for (const m of cs.messages) this.log(`warning: ${m}`);
      if (!cs.entries) throw new DataError(`${data.corpus}: no papers`);
      if (this.cfg.submission && cs.entries < SUBMISSION_K) throw new DataError(`${data.corpus}: ${cs.entries} papers; a submission line needs ${SUBMISSION_K} distinct pids`);
      const has = (pid: string) => passages.index.has(pid);
      const summary: Record<string, unknown> = {
        corpus: { file: data.corpus, papers: cs.entries, duplicates: cs.duplicates, noTitle: cs.noTitle, noAbstract: cs.noAbstract, empty: cs.empty, invalidUtf8: cs.invalidUtf8 },
      };
      const notes = [`corpus ${cs.entries} papers`];
      const texts = new Map<string, Set<string>>();
      for (const split of ['train', ...this.splits] as const) {
        const path = split === 'train' ? data.train : split === 'valid' ? data.valid : data.test;
        if (!path) continue;
        const { questions, stats } = await readQuestions(path, { requirePids: split !== 'test' });
        for (const m of stats.messages) this.log(`warning: ${m}`);
        if (!questions.length) throw new DataError(`${path}: no questions`);
        const pc = checkPids(questions, has, path);
        if (pc.missing) this.log(`warning: ${path}: ${pc.missing} gold pid(s) of ${pc.questionsAffected} question(s) are not in the corpus`);
        // Cleaning (core/data/clean.ts): what retrieval will embed; an empty query retrieves noise.
        const cleaned = questions.map((q) => queryText(q));
        const empty = cleaned.filter((t) => !t).length;
        if (empty) this.log(`warning: ${path}: ${empty} question(s) are empty after cleaning`);
        texts.set(split, new Set(cleaned));
        const scored = questions.filter((q) => q.flag !== 0).length;
        const judged = questions.filter((q) => q.pids !== undefined).length;
        const s: Record<string, unknown> = { file: path, questions: questions.length, scored, judged, html: questions.filter((q) => /<[a-z/!]/i.test(q.body)).length, emptyAfterCleaning: empty, goldMissing: pc.missing };
        if (split === 'train') {
          const pairs = trainingPairs(questions, { has }).stats;
          s.pairs = pairs.pairs;
          notes.push(`train ${questions.length} questions (${pairs.pairs} pairs)`);
        } else {
          if (split === 'valid' && !scored) throw new DataError(`${path}: every question has flag 0; nothing would be scored`);
          notes.push(`${split} ${questions.length}${judged ? ` (${scored} scored)` : ''}`);
        }
        summary[split] = s;
      }
      const train = texts.get('train');
      if (train) {
        const leak = [...(texts.get('valid') ?? [])].filter((t) => train.has(t)).length;
        if (leak) this.log(`warning: ${leak} validation question(s) also appear in the training questions (their scores will be optimistic)`);
        summary.validInTrain = leak;
      }
      await writeFileAtomic(this.work('prepare', 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
      return { outputs: ['prepare/summary.json'], note: notes.join('; ') };
    });
  }

  // ---- mine: hard negatives for models that ask for them

  /** The model a `mine_with` names, and the index it searches (shared with the index stage when it is one of the runs). */
  private miner(m: ModelConfig): { model: ModelConfig; indexDir: string } {
    const neg = m.train!.negatives as Extract<Negatives, { kind: 'mined' }>;
    if (neg.mineWith === 'self') return { model: { ...m, train: null }, indexDir: this.work('mine', `${m.name}.base-index`) };
    const other = this.cfg.models.find((x) => x.name === neg.mineWith)!;
    return { model: other, indexDir: other.enabled ? this.work('index', other.name) : this.work('mine', `${other.name}.index`) };
  }

  async mine(): Promise<void> {
    const todo = this.enabled.filter((m) => m.train?.negatives.kind === 'mined');
    if (!todo.length) this.log('[mine] nothing to do (no model mines hard negatives)');
    for (const m of todo) {
      const neg = m.train!.negatives as Extract<Negatives, { kind: 'mined' }>;
      const miner = this.miner(m);
      const minerDir = await this.baseDir(miner.model);
      const inputs = {
        miner: await modelFingerprint(minerDir),
        maxLength: miner.model.maxLength,
        ...precisionInput(miner.model),
        corpus: await this.fileHash(this.cfg.data.corpus),
        train: await this.fileHash(this.cfg.data.train),
        range: neg.range,
        count: neg.count,
        seed: m.train!.settings.seed,
        batchSize: this.cfg.batchSize,
      };
      await this.unit('mine', m.name, inputs, async () => {
        await mkdir(this.work('mine'), { recursive: true });
        await this.buildIndexFor(miner.model, minerDir, miner.indexDir, false);
        const out = this.work('mine', `${m.name}.jsonl`);
        await runMine({
          index: miner.indexDir,
          questions: this.cfg.data.train!,
          out,
          range: neg.range,
          negatives: neg.count,
          seed: m.train!.settings.seed,
          random: false,
          per: 'pair',
          corpus: this.cfg.data.corpus,
          model: minerDir,
          maxLength: miner.model.maxLength,
          // no precision: the queries take the miner index's, which buildIndexFor recorded
          batchSize: this.cfg.batchSize,
          gpu: this.o.gpu ?? {},
        });
        const lines = (await readFile(out, 'utf8')).split('\n').filter((l) => l).length;
        return { outputs: [relative(this.cfg.workDir, out)], note: `${lines} groups, ${neg.count} negatives each from ranks ${neg.range[0]}-${neg.range[1]} of ${miner.model.name === m.name ? 'the base model' : miner.model.name}` };
      });
    }
  }

  // ---- train: fine-tune each model that has train settings

  async train(): Promise<void> {
    const todo = this.enabled.filter((m) => m.train);
    if (!todo.length) this.log('[train] nothing to do (no model is fine-tuned)');
    for (const m of todo) {
      const t = m.train!;
      const base = await this.baseDir(m);
      const settings = await withModelDefaults(t.settings, base, m.model);
      const inputs = {
        base: await modelFingerprint(base),
        settings: stampedSettings(settings),
        saveSteps: t.saveSteps,
        data: t.negatives.kind === 'random' ? { corpus: await this.fileHash(this.cfg.data.corpus), train: await this.fileHash(this.cfg.data.train) } : { mined: this.upstream(`mine:${m.name}`) },
      };
      const inputHash = sha256(new TextEncoder().encode(JSON.stringify(inputs)));
      await this.unit('train', m.name, inputs, async (forced) => {
        const out = this.work('models', m.name);
        const marker = join(out, '.pipeline-train.json');
        // Resume only a run of these very inputs; anything else starts afresh.
        const started = await readFile(marker, 'utf8')
          .then((s) => (JSON.parse(s) as { inputs: string }).inputs)
          .catch(() => null);
        const resume = !forced && started === inputHash && (await hasCheckpoint(out));
        if (!resume) {
          await rm(out, { recursive: true, force: true });
          await mkdir(out, { recursive: true });
          await writeFileAtomic(marker, JSON.stringify({ inputs: inputHash }));
        } else {
          this.log(`[train] ${m.name}: resuming from the last checkpoint in ${this.show(out)}`);
        }
        const kill = Number(process.env[KILL_AFTER_STEPS_ENV] ?? 0);
        const r = await trainCommand({
          model_name_or_path: m.model,
          output_dir: out,
          train_data: t.negatives.kind === 'mined' ? this.work('mine', `${m.name}.jsonl`) : undefined,
          questions: t.negatives.kind === 'random' ? this.cfg.data.train! : undefined,
          corpus: t.negatives.kind === 'random' ? this.cfg.data.corpus : undefined,
          resume,
          save_steps: t.saveSteps,
          save_total_limit: t.saveTotalLimit,
          max_steps: kill > 0 ? kill : undefined,
          settings,
          gpu: this.o.gpu ?? {},
        });
        if (r.position.step < r.totalSteps) {
          if (kill > 0) process.kill(process.pid, 'SIGKILL'); // test hook: a crash right after a checkpoint
          throw new Error(`${m.name}: training stopped at step ${r.position.step} of ${r.totalSteps}`);
        }
        return { outputs: [`models/${m.name}/model.safetensors`, `models/${m.name}/config.json`], note: `${r.totalSteps} steps${resume ? ' (resumed)' : ''}${Number.isFinite(r.lastLoss) ? `, last loss ${r.lastLoss.toFixed(4)}` : ''}` };
      });
    }
  }

  // ---- index: the corpus with each final model

  /** Embed the corpus into `out` (resumable; an index of other settings is replaced). */
  private async buildIndexFor(m: ModelConfig, dir: string, out: string, fresh: boolean): Promise<{ desc: ModelDescription; embedded: number; seconds: number }> {
    const desc = await describeModel(dir, m.model, m.maxLength);
    if (fresh) await rm(out, { recursive: true, force: true });
    const precision = await this.precisionOf(m);
    let model: Awaited<ReturnType<typeof loadEmbeddingModel>> | null = null;
    try {
      const r = await buildIndex({
        out,
        corpus: this.cfg.data.corpus,
        model: desc,
        dtype: 'f16',
        precision,
        batchSize: this.cfg.batchSize,
        force: true,
        log: (l) => this.log(`  ${l}`),
        loadModel: async () => {
          model = await loadEmbeddingModel(await this.gpu(), localModelFiles(dir), m.model, undefined, { precision, warn: this.warn });
          return model;
        },
        onShard: (e, i, n) => this.log(`  ${m.name}: shard ${i + 1}/${n}: ${e.rows} passages in ${e.seconds.toFixed(1)} s (${perSecond(e.rows, e.seconds)})`),
      });
      return { desc, embedded: r.embedded, seconds: r.seconds };
    } finally {
      (model as Awaited<ReturnType<typeof loadEmbeddingModel>> | null)?.dispose();
    }
  }

  private readonly warn = (msg: string): void => this.log(`warning: ${msg}`);

  /**
   * The precision a model's index is built in: its config's, or f32 with a notice when f16 is
   * asked for on an adapter without shader-f16 (the index records what actually ran).
   */
  private async precisionOf(m: ModelConfig): Promise<Precision> {
    if (m.precision === 'f32') return 'f32';
    const d = devicePrecision(await this.gpu(), m.precision);
    if (d.warning) this.warn(`${m.name}: ${d.warning}`);
    return d.precision;
  }

  private async modelIdentity(m: ModelConfig): Promise<unknown> {
    return m.train ? { trained: this.upstream(`train:${m.name}`) } : { base: await modelFingerprint(await this.baseDir(m)) };
  }

  async index(): Promise<void> {
    if (!this.enabled.length) this.log('[index] nothing to do (BM25 only)');
    for (const m of this.enabled) {
      const inputs = { model: await this.modelIdentity(m), maxLength: m.maxLength, ...precisionInput(m), corpus: await this.fileHash(this.cfg.data.corpus), batchSize: this.cfg.batchSize };
      await this.unit('index', m.name, inputs, async (forced) => {
        const out = this.work('index', m.name);
        const r = await this.buildIndexFor(m, await this.finalDir(m), out, forced);
        const note = r.embedded ? `${r.embedded} passages, ${perSecond(r.embedded, r.seconds)}, max length ${r.desc.maxLength}` : `already built (${this.show(out)})`;
        return { outputs: [`index/${m.name}/manifest.json`], note };
      });
    }
  }

  // ---- search: top retrieve_k per question, per run and split

  private resultsFile(run: string, split: Split | 'valid-heldout'): string {
    return run.startsWith('fusion:') ? this.work('fuse', `${run.slice(7)}.${split}.jsonl`) : this.work('search', `${run}.${split}.jsonl`);
  }

  async search(): Promise<void> {
    await mkdir(this.work('search'), { recursive: true });
    const questionHashes = { valid: await this.fileHash(this.cfg.data.valid), test: await this.fileHash(this.cfg.data.test) };
    const k = this.cfg.retrieveK;
    for (const m of this.enabled) {
      const inputs = { index: this.upstream(`index:${m.name}`), ...precisionInput(m), questions: questionHashes, k, batchSize: this.cfg.batchSize };
      await this.unit('search', m.name, inputs, async () => {
        const dir = await this.finalDir(m);
        const desc = await describeModel(dir, m.model, m.maxLength);
        const index = await openIndex(this.work('index', m.name));
        checkSameModel(index, desc);
        const gpu = await this.gpu();
        const gindex = await uploadIndex(gpu, index);
        const notes: string[] = [];
        try {
          // Queries in the precision the passages were embedded in.
          const model = await loadEmbeddingModel(gpu, localModelFiles(dir), m.model, undefined, { precision: index.manifest.identity.precision, warn: this.warn });
          try {
            for (const split of this.splits) {
              const qs = await this.questions(split);
              const t0 = performance.now();
              const r = await retrieve(model, gindex, index.pids, qs, { k, batchSize: this.cfg.batchSize, maxLength: desc.maxLength });
              await writeResults(
                this.resultsFile(m.name, split),
                r.pids.map((pids, i) => new Map(pids.map((p, j) => [p, r.scores[i][j]]))),
                k,
              );
              notes.push(`${split} ${qs.length} questions in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
            }
          } finally {
            model.dispose();
          }
        } finally {
          gindex.release();
        }
        return { outputs: this.splits.map((s) => relative(this.cfg.workDir, this.resultsFile(m.name, s))), note: `top ${k}: ${notes.join(', ')}` };
      });
    }
    if (this.cfg.bm25) {
      const bm = this.cfg.bm25;
      const inputs = { corpus: await this.fileHash(this.cfg.data.corpus), ...bm, questions: questionHashes, k };
      await this.unit('search', 'bm25', inputs, async () => {
        const { passages } = await readPassages(this.cfg.data.corpus);
        const index = Bm25Index.build(passages.pids, passages.texts, bm);
        for (const split of this.splits) {
          const qs = await this.questions(split);
          await writeResults(
            this.resultsFile('bm25', split),
            qs.map((q) => new Map(index.search(queryText(q), k))),
            k,
          );
        }
        return { outputs: this.splits.map((s) => relative(this.cfg.workDir, this.resultsFile('bm25', s))), note: `top ${k} by BM25 (k1 ${bm.k1}, b ${bm.b}) over ${passages.pids.length} papers` };
      });
    }
  }

  // ---- fuse: each method over every run, weights tuned on valid when asked

  private fusionRuns(): string[] {
    return this.cfg.fusion && this.runs.length > 1 ? this.cfg.fusion.methods.map((m) => `fusion:${m}`) : [];
  }

  async fuse(): Promise<void> {
    const fu = this.cfg.fusion;
    if (!fu) return this.log('[fuse] nothing to do (no fusion section)');
    if (this.runs.length < 2) return this.log(`[fuse] nothing to do (fusion needs two runs, the config has ${this.runs.length})`);
    const inputs = { runs: this.runs.map((r) => [r, this.upstream(`search:${r}`)]), fusion: fu, valid: await this.fileHash(this.cfg.data.valid), k: this.cfg.retrieveK };
    await this.unit('fuse', null, inputs, async () => {
      await mkdir(this.work('fuse'), { recursive: true });
      const valid = await this.questions('valid');
      const maps: Partial<Record<Split, ScoreMap[][]>> = {};
      for (const split of this.splits) maps[split] = await Promise.all(this.runs.map((r) => readResults(this.resultsFile(r, split))));
      const info: FusionInfo = { runs: this.runs, methods: {} };
      const outputs: string[] = [];
      const notes: string[] = [];
      const equal = this.runs.map(() => 1 / this.runs.length);
      const write = async (method: FusionMethod, split: Split | 'valid-heldout', fused: ScoreMap[]) => {
        const path = this.resultsFile(`fusion:${method}`, split);
        await writeResults(path, fused, this.cfg.retrieveK);
        outputs.push(relative(this.cfg.workDir, path));
      };
      for (const method of fu.methods) {
        const opts = { method, step: fu.weightsStep, rrfK: fu.rrfK };
        let weights = equal;
        if (fu.tuneOn === 'valid') {
          const t = tuneWeights(maps.valid!, valid, opts);
          weights = t.weights;
          // Held-out estimate: each half of valid is fused with the weights tuned on the other
          // half, so the reported number is not the one the weights were picked to maximise.
          const { tune, test } = splitIndices(valid.length, 0.5, 1);
          const wA = tuneWeights(maps.valid!, valid, { ...opts, indices: tune }).weights;
          const wB = tuneWeights(maps.valid!, valid, { ...opts, indices: test }).weights;
          const inA = new Set(tune);
          const heldOut = valid.map((_, q) => fuseRuns(maps.valid!.map((r) => [r[q]]), { method, weights: inA.has(q) ? wB : wA, rrfK: fu.rrfK })[0]);
          await write(method, 'valid-heldout', heldOut);
          info.methods[method] = { weights, tuned: true, tunedScore: t.score, equalScore: t.equalScore, folds: [wA, wB] };
        } else {
          info.methods[method] = { weights, tuned: false };
        }
        for (const split of this.splits) await write(method, split, fuseRuns(maps[split]!, { method, weights, rrfK: fu.rrfK }));
        notes.push(`${method} ${weights.map((w) => w.toFixed(2)).join('/')}`);
      }
      await writeFileAtomic(this.work('fuse', 'weights.json'), `${JSON.stringify(info, null, 2)}\n`);
      outputs.push('fuse/weights.json');
      return { outputs, note: `${this.runs.join(' + ')}: ${notes.join(', ')}${fu.tuneOn === 'valid' ? ' (weights tuned on valid)' : ''}` };
    });
  }

  // ---- evaluate: every run and fusion on valid (and test when it has gold pids)

  async evaluate(): Promise<MetricsFile> {
    const fusions = this.fusionRuns();
    const inputs = {
      runs: [...this.runs.map((r) => [r, this.upstream(`search:${r}`)]), ...(fusions.length ? [['fuse', this.upstream('fuse')]] : [])],
      valid: await this.fileHash(this.cfg.data.valid),
      test: await this.fileHash(this.cfg.data.test),
    };
    await this.unit('evaluate', null, inputs, async () => {
      const valid = await this.questions('valid');
      const test = this.cfg.data.test ? await this.questions('test') : null;
      const testJudged = !!test && test.every((q) => q.pids !== undefined);
      const info = fusions.length ? (JSON.parse(await readFile(this.work('fuse', 'weights.json'), 'utf8')) as FusionInfo) : null;
      const score = async (run: string, split: Split | 'valid-heldout', qs: AqaQuestion[]) => evaluate((await readResults(this.resultsFile(run, split))).map((m) => rankPids(m)), qs);
      const runs: RunMetrics[] = [];
      for (const run of [...this.runs, ...fusions]) {
        const kind = run === 'bm25' ? 'bm25' : run.startsWith('fusion:') ? 'fusion' : 'model';
        const r: RunMetrics = { name: run, kind, valid: await score(run, 'valid', valid) };
        if (kind === 'fusion') {
          const fm = info!.methods[run.slice(7) as FusionMethod]!;
          r.fused = { runs: info!.runs, weights: fm.weights, tuned: fm.tuned };
          if (fm.tuned) r.validHeldOut = await score(run, 'valid-heldout', valid);
        }
        if (testJudged) r.test = await score(run, 'test', test!);
        runs.push(r);
      }
      const metrics: MetricsFile = { questions: { valid: valid.length, test: test ? test.length : null }, runs };
      await writeFileAtomic(this.work('metrics.json'), `${JSON.stringify(metrics, null, 2)}\n`);
      const best = bestRun(metrics);
      return { outputs: ['metrics.json'], note: `${runs.length} run(s) on ${valid.length} valid questions${testJudged ? ` and ${test!.length} test questions` : ''}; best ${best.name} ${officialOf(best).toFixed(4)}` };
    });
    this.metrics = JSON.parse(await readFile(this.work('metrics.json'), 'utf8')) as MetricsFile;
    return this.metrics;
  }

  // ---- submission: exactly 20 pids per question line

  async submission(): Promise<string | null> {
    const s = this.cfg.submission;
    if (!s) {
      this.log('[submission] nothing to do (no submission section)');
      return null;
    }
    const qPath = s.questions === 'valid' ? this.cfg.data.valid : this.cfg.data.test!;
    const inputs = { evaluate: this.upstream('evaluate'), submission: s, questions: await this.fileHash(qPath), train: await this.fileHash(this.cfg.data.train) };
    await this.unit('submission', null, inputs, async () => {
      const run = s.run === 'best' ? bestRun(this.metrics!).name : s.run;
      if (run.startsWith('fusion:') && !this.fusionRuns().includes(run)) throw new Error(`submission.run: ${run} was not computed (fusion needs two runs)`);
      const qs = await this.questions(s.questions);
      const rankings = (await readResults(this.resultsFile(run, s.questions))).map((m) => rankPids(m, SUBMISSION_K));
      // A ranking short of 20 (BM25 matches few papers for some queries) is padded with the
      // papers most often gold in the training questions, then the rest of the corpus in order.
      const fallback = await this.fallbackPids();
      await mkdir(dirname(s.out), { recursive: true });
      const st = await writeSubmission(s.out, rankings, { questions: qs.length, fallback });
      parseSubmission(await readFile(s.out, 'utf8'), s.out); // the official format check, read back
      const out = relative(this.cfg.workDir, s.out);
      const inside = !out.startsWith('..') && !isAbsolute(out);
      return { outputs: inside ? [out] : [], note: `${this.show(s.out)}: ${qs.length} lines of ${SUBMISSION_K} pids from ${run}${st.padded ? ` (${st.padded} padded)` : ''}` };
    });
    return s.out;
  }

  private async fallbackPids(): Promise<string[]> {
    const counts = new Map<string, number>();
    if (this.cfg.data.train) for (const q of await this.questions('train')) for (const p of new Set(q.pids ?? [])) counts.set(p, (counts.get(p) ?? 0) + 1);
    const { passages } = await readPassages(this.cfg.data.corpus, { maxChars: 0 });
    const popular = [...counts].filter(([p]) => passages.index.has(p)).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return [...popular.map(([p]) => p), ...passages.pids];
  }
}

/** A unit input for a model's precision: none for f32, so stamps written before the key existed stay valid. */
function precisionInput(m: ModelConfig): { precision?: Precision } {
  return m.precision === 'f32' ? {} : { precision: m.precision };
}

/** "0.65/s" or "320/s": two decimals below 10, since a software driver embeds under 1 passage/s. */
function perSecond(n: number, seconds: number): string {
  const r = n / seconds;
  return `${r < 10 ? r.toFixed(2) : Math.round(r)}/s`;
}

async function hasCheckpoint(dir: string): Promise<boolean> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const n of names) if (/^checkpoint-\d+$/.test(n) && existsSync(join(dir, n, 'trainer_state.json'))) return true;
  return false;
}

/**
 * The settings as a train stamp hashes them. An f32 run leaves out the mixed-precision options,
 * so work dirs trained before they existed keep their stamps (and are not trained again).
 */
function stampedSettings(s: TrainSettings): Partial<TrainSettings> {
  if (s.fp16) return s;
  const { fp16: _a, fp16InitScale: _b, fp16GrowthInterval: _c, ...rest } = s;
  return rest;
}
