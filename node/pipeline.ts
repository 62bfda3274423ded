// `aqa pipeline`: the whole AQA job from one JSON config, as a chain of stages that each skip
// themselves when their outputs are up to date.
//
// Stages and what each unit's stamp hashes (a unit is one stage for one model, or the stage):
//
//   prepare          corpus, train, valid, test file hashes         -> prepare/summary.json
//   mine   <model>   miner model fingerprint + max_length, corpus, train, range/count/seed
//                                                                   -> mine/<model>.jsonl
//   train  <model>   base fingerprint, train settings, corpus + train (random negatives)
//                    or the mine stamp (mined)                      -> models/<model>/
//   index  <model>   model fingerprint or the train stamp, max_length, corpus, batch size
//                                                                   -> index/<model>/
//   search <run>     index stamp (BM25: corpus, k1, b), valid + test files, retrieve_k
//                                                                   -> search/<run>.<split>.jsonl
//   fuse             every search stamp, fusion section, valid file -> fuse/<method>.<split>.jsonl
//   evaluate         search + fuse stamps, valid + test files       -> metrics.json
//   submission       evaluate stamp, submission section, its question file, train file
//                                                                   -> the submission file
//
// A stamp (stamps/<stage>.<unit>.json) holds the sha256 of its inputs as listed, the outputs'
// sizes and when it finished; an upstream stamp enters a downstream hash as (hash, finish time),
// so anything that reruns reruns everything that reads it, and nothing else does. A unit is up to
// date when its stamp's hash equals the current one and its outputs still have the recorded
// sizes. Input files are hashed by content (cached by size + mtime), so `touch` alone reruns
// nothing; editing the valid questions reruns prepare, search, fuse, evaluate and submission, not
// mining, training or indexing. The stamp is removed before a unit runs and written after its
// outputs are in place (each written atomically), so a crash leaves the unit to be redone: index
// builds resume shard by shard, training from its last checkpoint (same inputs only; other
// inputs start it afresh).
//
// Every config problem is one line naming the file and the field:
//   config.json: models[1].train.learning_rate: must be a number > 0

import { existsSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, stat, unlink } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { type AqaQuestion, checkPids, DataError } from '../core/data/aqa.ts';
import { queryText } from '../core/data/clean.ts';
import { trainingPairs } from '../core/data/pairs.ts';
import { type EvalReport, evaluate } from '../core/eval/metrics.ts';
import type { Gpu } from '../core/gpu/device.ts';
import { TOPK_MAX_K } from '../core/kernels/topk.ts';
import { loadEmbeddingModel } from '../core/retrieval/embed.ts';
import { Bm25Index } from '../core/retrieval/bm25.ts';
import { FUSION_METHODS, type FusionMethod, fuseRuns, splitIndices, tuneWeights } from '../core/retrieval/fusion.ts';
import { parseSubmission, rankPids, type ScoreMap, SUBMISSION_K } from '../core/retrieval/results.ts';
import { TRAIN_OPTIONS, type TrainOption, type TrainSettings, validateSettings } from '../core/train/options.ts';
import { followsRule, NUMBER_RULES, type NumberRule } from '../core/util/rules.ts';
import { readPassages, readQuestions, readResults, writeResults, writeSubmission } from './data.ts';
import { createNodeGpu, type NodeGpuOptions } from './device.ts';
import { localModelFiles, writeFileAtomic } from './files.ts';
import { isHubId, resolveModel } from './hub.ts';
import { runMine } from './mine-command.ts';
import { buildIndex, checkSameModel, describeModel, type ModelDescription, modelFingerprint, openIndex, retrieve, sha256, sha256File, uploadIndex } from './index-store.ts';
import { type Stage, STAGES } from './pipeline-command.ts';
import { trainCommand } from './train-command.ts';
import { type SettingsWithModelDefaults, withModelDefaults } from './train-settings.ts';

export { STAGES, type Stage };

/** A config problem: `file: field.path: what` on one line. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Test hook: stop the first training after this many optimizer steps with SIGKILL (a crash). */
export const KILL_AFTER_STEPS_ENV = 'AQA_PIPELINE_KILL_AFTER_STEPS';

/** Bumped when a stage's outputs change meaning: every stamp of an older version is stale. */
const STAMP_VERSION = 1;

// ---------------------------------------------------------------- config

export type Split = 'valid' | 'test';

export type Negatives = { kind: 'random' } | { kind: 'mined'; mineWith: string; range: [number, number]; count: number };

export interface TrainConfig {
  /**
   * queryInstruction and hiddenDropout are filled in per model when the config leaves them out
   * (the model's query prefix and its config.json hidden_dropout_prob).
   */
  settings: SettingsWithModelDefaults;
  negatives: Negatives;
  saveSteps: number;
  saveTotalLimit: number;
}

export interface ModelConfig {
  name: string;
  /** A folder (absolute) or a Hub id. */
  model: string;
  maxLength: number;
  enabled: boolean;
  train: TrainConfig | null;
}

export interface FusionConfig {
  methods: FusionMethod[];
  tuneOn: 'valid' | 'none';
  weightsStep: number;
  rrfK: number;
}

export interface SubmissionConfig {
  questions: Split;
  /** Absolute path. */
  out: string;
  /** A run name, or 'best' (highest official MAP@20 on valid; held-out for tuned fusions). */
  run: string;
}

export interface PipelineConfig {
  file: string;
  data: { corpus: string; train: string | null; valid: string; test: string | null };
  workDir: string;
  models: ModelConfig[];
  bm25: { k1: number; b: number } | null;
  retrieveK: number;
  batchSize: number;
  fusion: FusionConfig | null;
  submission: SubmissionConfig | null;
}

type Json = Record<string, unknown>;

/** Field-by-field reader that names the field in every error. */
class Fields {
  constructor(readonly file: string) {}

  fail(path: string, msg: string): never {
    throw new ConfigError(`${this.file}: ${path}: ${msg}`);
  }

  object(v: unknown, path: string, known: readonly string[]): Json {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) this.fail(path, `must be an object, got ${JSON.stringify(v) ?? 'nothing'}`);
    for (const k of Object.keys(v as Json)) {
      if (!known.includes(k)) this.fail(join2(path, k), `unknown field (known: ${known.join(', ')})`);
    }
    return v as Json;
  }

  string(o: Json, key: string, path: string, dflt?: string): string {
    const v = o[key];
    if (v === undefined && dflt !== undefined) return dflt;
    if (v === undefined) this.fail(join2(path, key), 'missing (must be a string)');
    if (typeof v !== 'string' || v === '') this.fail(join2(path, key), 'must be a non-empty string');
    return v;
  }

  number(o: Json, key: string, path: string, dflt: number, rule: NumberRule): number {
    const v = o[key];
    if (v === undefined) return dflt;
    if (!followsRule(v, rule)) this.fail(join2(path, key), `must be ${NUMBER_RULES[rule].says}`);
    return v as number;
  }

  bool(o: Json, key: string, path: string, dflt: boolean): boolean {
    const v = o[key];
    if (v === undefined) return dflt;
    if (typeof v !== 'boolean') this.fail(join2(path, key), 'must be true or false');
    return v;
  }

  oneOf<T extends string>(o: Json, key: string, path: string, choices: readonly T[], dflt?: T): T {
    const v = o[key];
    if (v === undefined && dflt !== undefined) return dflt;
    if (typeof v !== 'string' || !choices.includes(v as T)) this.fail(join2(path, key), `must be one of ${choices.map((c) => JSON.stringify(c)).join(', ')}`);
    return v as T;
  }
}

function join2(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

const RUN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Check and normalise a parsed config; relative paths are taken from the config file's folder. */
export function parseConfig(raw: unknown, file: string, opts: { workDir?: string } = {}): PipelineConfig {
  const f: Fields = new Fields(file);
  const base = dirname(resolve(file));
  const path = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  const top = f.object(raw, '', ['data', 'work_dir', 'models', 'bm25', 'retrieve_k', 'batch_size', 'fusion', 'submission']);

  // data
  const d = f.object(top.data, 'data', ['corpus', 'train', 'valid', 'test']);
  const dataFile = (key: string, required: boolean): string | null => {
    if (!required && (d[key] === undefined || d[key] === null)) return null;
    const p = path(f.string(d, key, 'data'));
    if (!existsSync(p)) f.fail(`data.${key}`, `${p}: no such file`);
    return p;
  };
  const data = { corpus: dataFile('corpus', true)!, train: dataFile('train', false), valid: dataFile('valid', true)!, test: dataFile('test', false) };

  const workDir = opts.workDir ? resolve(opts.workDir) : path(f.string(top, 'work_dir', ''));

  // models
  if (!Array.isArray(top.models)) f.fail('models', 'must be an array of model entries (may be empty when bm25 is on)');
  const models: ModelConfig[] = top.models.map((mv, i) => parseModel(f, mv, `models[${i}]`, path));
  const seen = new Set<string>();
  models.forEach((m, i) => {
    if (seen.has(m.name)) f.fail(`models[${i}].name`, `'${m.name}' is used by an earlier entry`);
    seen.add(m.name);
  });
  models.forEach((m, i) => {
    if (m.train && !data.train && m.enabled) f.fail(`models[${i}].train`, 'fine-tuning needs data.train (training questions with gold pids)');
    const neg = m.train?.negatives;
    if (neg?.kind !== 'mined' || neg.mineWith === 'self') return;
    const miner = models.find((x) => x.name === neg.mineWith);
    const at = `models[${i}].train.negatives.mine_with`;
    if (!miner) f.fail(at, `'${neg.mineWith}' is not a model name of this config (or "self")`);
    if (miner.train) f.fail(at, `'${neg.mineWith}' is fine-tuned here; mine with a zero-shot entry (train: null) or "self"`);
  });

  // bm25
  let bm25: PipelineConfig['bm25'] = { k1: 0.9, b: 0.4 };
  if (top.bm25 === false || top.bm25 === null) bm25 = null;
  else if (top.bm25 !== undefined && top.bm25 !== true) {
    const b = f.object(top.bm25, 'bm25', ['k1', 'b']);
    bm25 = { k1: f.number(b, 'k1', 'bm25', 0.9, 'nonNegative'), b: f.number(b, 'b', 'bm25', 0.4, 'unit') };
  }
  const runs = [...models.filter((m) => m.enabled).map((m) => m.name), ...(bm25 ? ['bm25'] : [])];
  if (!runs.length) f.fail('models', 'no enabled model and bm25 is off: nothing to retrieve with');
  if (models.some((m) => m.name === 'bm25') && bm25) f.fail('models', "the name 'bm25' is taken by the BM25 run; rename the model");

  const retrieveK = f.number(top, 'retrieve_k', '', 200, 'posInt');
  if (retrieveK < SUBMISSION_K || retrieveK > TOPK_MAX_K) f.fail('retrieve_k', `must be an integer in [${SUBMISSION_K}, ${TOPK_MAX_K}], got ${retrieveK}`);
  const batchSize = f.number(top, 'batch_size', '', 32, 'posInt');

  // fusion
  let fusion: FusionConfig | null = null;
  if (top.fusion !== undefined && top.fusion !== null) {
    const fu = f.object(top.fusion, 'fusion', ['methods', 'tune_on', 'weights_step', 'rrf_k']);
    const methods = fu.methods === undefined ? ['sum'] : fu.methods;
    if (!Array.isArray(methods) || !methods.length) f.fail('fusion.methods', `must be a non-empty array of ${FUSION_METHODS.map((m) => JSON.stringify(m)).join(', ')}`);
    methods.forEach((m, i) => {
      if (!FUSION_METHODS.includes(m as FusionMethod)) f.fail(`fusion.methods[${i}]`, `must be one of ${FUSION_METHODS.map((x) => JSON.stringify(x)).join(', ')}, got ${JSON.stringify(m)}`);
      if (methods.indexOf(m) !== i) f.fail(`fusion.methods[${i}]`, `${JSON.stringify(m)} is listed twice`);
    });
    fusion = {
      methods: methods as FusionMethod[],
      tuneOn: f.oneOf(fu, 'tune_on', 'fusion', ['valid', 'none'] as const, 'valid'),
      weightsStep: f.number(fu, 'weights_step', 'fusion', 0.1, 'step'),
      rrfK: f.number(fu, 'rrf_k', 'fusion', 60, 'nonNegative'),
    };
  }

  // submission
  let submission: SubmissionConfig | null = null;
  if (top.submission !== undefined && top.submission !== null) {
    const s = f.object(top.submission, 'submission', ['questions', 'out', 'run']);
    const questions = f.oneOf(s, 'questions', 'submission', ['valid', 'test'] as const, data.test ? 'test' : 'valid');
    if (questions === 'test' && !data.test) f.fail('submission.questions', '"test" needs data.test');
    const out = f.string(s, 'out', 'submission', 'submission.txt');
    const run = f.string(s, 'run', 'submission', 'best');
    const known = [...runs, ...(fusion && runs.length > 1 ? fusion.methods.map((m) => `fusion:${m}`) : [])];
    if (run !== 'best' && !known.includes(run)) f.fail('submission.run', `'${run}' is not a run of this config (runs: best, ${known.join(', ')})`);
    submission = { questions, out: isAbsolute(out) ? out : resolve(workDir, out), run };
  }

  return { file, data, workDir, models, bm25, retrieveK, batchSize, fusion, submission };
}

function parseModel(f: Fields, mv: unknown, at: string, path: (p: string) => string): ModelConfig {
  const m = f.object(mv, at, ['name', 'model', 'max_length', 'train', 'enabled']);
  const name = f.string(m, 'name', at);
  if (!RUN_NAME.test(name)) f.fail(`${at}.name`, `'${name}' must be letters, digits, '.', '_' or '-' (it names files)`);
  const spec = f.string(m, 'model', at);
  // A folder relative to the config file, else the string as given: a folder relative to the
  // working directory, or a Hub id.
  let model = spec;
  if (existsSync(path(spec))) model = path(spec);
  else if (!existsSync(spec) && !isHubId(spec)) f.fail(`${at}.model`, `'${spec}' is neither a folder (looked for ${path(spec)}) nor a Hub id like owner/name`);
  const maxLength = f.number(m, 'max_length', at, NaN, 'posInt');
  if (Number.isNaN(maxLength)) f.fail(`${at}.max_length`, 'missing (must be an integer >= 1: tokens per passage and query)');
  const enabled = f.bool(m, 'enabled', at, true);
  let train: TrainConfig | null = null;
  if (m.train !== undefined && m.train !== null) train = parseTrain(f, m.train, `${at}.train`, maxLength);
  return { name, model, maxLength, enabled, train };
}

/** One option of the table from a train section: absent = the pipeline's default (null = the model's). */
function readOption(f: Fields, t: Json, o: TrainOption, at: string, maxLength: number): unknown {
  if (t[o.name] === undefined) {
    if (o.modelDefault) return null;
    return o.pipelineDefault ? o.pipelineDefault.value({ maxLength }, o.default as number) : o.default;
  }
  if (o.rule === 'boolean') return f.bool(t, o.name, at, o.default as boolean);
  if (o.rule === 'string') {
    if (typeof t[o.name] !== 'string') f.fail(`${at}.${o.name}`, 'must be a string');
    return t[o.name];
  }
  return f.number(t, o.name, at, NaN, o.rule);
}

function parseTrain(f: Fields, tv: unknown, at: string, maxLength: number): TrainConfig {
  const t = f.object(tv, at, [...TRAIN_OPTIONS.map((o) => o.name), 'negatives']);
  const v: Record<string, unknown> = {};
  for (const o of TRAIN_OPTIONS) v[o.key] = readOption(f, t, o, at, maxLength);
  const { saveSteps, saveTotalLimit, ...rest } = v;
  const settings = rest as unknown as SettingsWithModelDefaults;
  try {
    validateSettings({ ...settings, queryInstruction: settings.queryInstruction ?? '', hiddenDropout: settings.hiddenDropout ?? 0 } as TrainSettings);
  } catch (e) {
    f.fail(at, (e as Error).message); // the per-field rules above should have caught it first
  }
  let negatives: Negatives = { kind: 'random' };
  const nv = t.negatives;
  if (nv !== undefined && nv !== 'random') {
    const nat = `${at}.negatives`;
    if (typeof nv === 'string') f.fail(nat, `must be "random" or an object {mine_with, range, count}, got ${JSON.stringify(nv)}`);
    const n = f.object(nv, nat, ['mine_with', 'range', 'count']);
    const mineWith = f.string(n, 'mine_with', nat);
    const rs = f.string(n, 'range', nat, '10-210');
    const rm = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(rs);
    if (!rm || Number(rm[2]) <= Number(rm[1])) f.fail(`${nat}.range`, `must be "START-END" with END > START (0-based ranking positions, e.g. "10-210"), got ${JSON.stringify(rs)}`);
    const range: [number, number] = [Number(rm[1]), Number(rm[2])];
    if (range[1] > TOPK_MAX_K) f.fail(`${nat}.range`, `END ${range[1]} is more than the ${TOPK_MAX_K} results a search returns`);
    negatives = { kind: 'mined', mineWith, range, count: f.number(n, 'count', nat, 15, 'posInt') };
  }
  return { settings, negatives, saveSteps: saveSteps as number, saveTotalLimit: saveTotalLimit as number };
}

/** Read and check a config file. */
export async function loadPipelineConfig(file: string, opts: { workDir?: string } = {}): Promise<PipelineConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  return parseConfig(raw, file, opts);
}

// ---------------------------------------------------------------- stamps

interface Stamp {
  version: number;
  unit: string;
  hash: string;
  finished: string;
  seconds: number;
  /** Paths relative to the work dir, with their sizes when written. */
  outputs: { path: string; size: number }[];
  note: string;
  /** What was hashed, so a rerun can say which input changed. */
  inputs: Record<string, unknown>;
}

/** Top-level input fields that differ between two stamps' inputs, for the log. */
function changedInputs(before: Record<string, unknown> | undefined, now: Record<string, unknown>): string[] {
  if (!before) return [];
  const keys = new Set([...Object.keys(before), ...Object.keys(now)]);
  return [...keys].filter((k) => JSON.stringify(before[k]) !== JSON.stringify(now[k]));
}

/** File content hashes, cached by (size, mtime) so a 400 MB corpus is read once, not per run. */
class FileHashes {
  private cache: Record<string, { size: number; mtimeMs: number; sha256: string }> = {};
  private dirty = false;

  constructor(private readonly file: string) {}

  async load(): Promise<void> {
    try {
      this.cache = JSON.parse(await readFile(this.file, 'utf8'));
    } catch {
      this.cache = {};
    }
  }

  async hash(path: string): Promise<string> {
    const st = await stat(path).catch(() => {
      throw new DataError(`${path}: cannot read (no such file)`);
    });
    const c = this.cache[path];
    if (c && c.size === st.size && c.mtimeMs === st.mtimeMs) return c.sha256;
    const h = await sha256File(path);
    this.cache[path] = { size: st.size, mtimeMs: st.mtimeMs, sha256: h };
    this.dirty = true;
    return h;
  }

  async save(): Promise<void> {
    if (!this.dirty) return;
    await writeFileAtomic(this.file, JSON.stringify(this.cache, null, 1));
    this.dirty = false;
  }
}

/** What a unit's run reports: its output files (relative to the work dir) and a one-line summary. */
interface UnitOutput {
  outputs: string[];
  note: string;
}

// ---------------------------------------------------------------- results

export interface RunMetrics {
  name: string;
  kind: 'model' | 'bm25' | 'fusion';
  /** Fusion only: the runs fused and their weights. */
  fused?: { runs: string[]; weights: number[]; tuned: boolean };
  valid: EvalReport;
  /** Fusion tuned on valid only: each valid question ranked with weights tuned on the other half. */
  validHeldOut?: EvalReport;
  /** When the test questions have gold pids. */
  test?: EvalReport;
}

export interface MetricsFile {
  questions: { valid: number; test: number | null };
  runs: RunMetrics[];
}

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

export interface PipelineResult {
  config: PipelineConfig;
  /** Units that ran, as `stage` or `stage:name`. */
  ran: string[];
  /** Units found up to date. */
  skipped: string[];
  metrics: MetricsFile;
  table: string;
  submission: string | null;
}

interface FusionInfo {
  runs: string[];
  methods: Partial<Record<FusionMethod, { weights: number[]; tuned: boolean; tunedScore?: number; equalScore?: number; folds?: number[][] }>>;
}

// ---------------------------------------------------------------- the run

export async function runPipeline(o: PipelineOptions): Promise<PipelineResult> {
  const cfg = await loadPipelineConfig(o.config, { workDir: o.workDir });
  await mkdir(join(cfg.workDir, 'stamps'), { recursive: true });
  const releaseLock = await takeLock(cfg.workDir);
  const p = new Pipeline(cfg, o);
  try {
    await p.hashes.load();
    const t0 = performance.now();
    await p.prepare();
    await p.mine();
    await p.train();
    await p.index();
    await p.search();
    await p.fuse();
    const metrics = await p.evaluate();
    const submission = await p.submission();
    const table = formatTable(metrics);
    (o.print ?? ((t: string) => console.log(t)))(table);
    p.log(`pipeline: ${p.ran.length} step(s) ran, ${p.skipped.length} up to date, ${((performance.now() - t0) / 1000).toFixed(1)} s; metrics in ${p.show(join(cfg.workDir, 'metrics.json'))}`);
    return { config: cfg, ran: p.ran, skipped: p.skipped, metrics, table, submission };
  } finally {
    p.close();
    await p.hashes.save().catch(() => {});
    await releaseLock();
  }
}

/** One pipeline per work dir at a time: a lock file with the owner's pid (a dead owner's is taken over). */
async function takeLock(workDir: string): Promise<() => Promise<void>> {
  const path = join(workDir, '.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(path, 'wx');
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      return () => unlink(path).catch(() => {});
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (pid && pid !== process.pid && isAlive(pid)) throw new Error(`${workDir}: another aqa pipeline (pid ${pid}) is running there; wait for it or remove ${path}`);
      await unlink(path).catch(() => {});
    }
  }
  throw new Error(`${path}: cannot take the lock`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

class Pipeline {
  readonly hashes: FileHashes;
  readonly ran: string[] = [];
  readonly skipped: string[] = [];
  readonly log: (line: string) => void;
  private readonly stamps = new Map<string, Stamp>();
  private gpuPromise: Promise<Gpu> | null = null;
  private readonly resolved = new Map<string, Promise<string>>();
  private readonly questionCache = new Map<string, Promise<AqaQuestion[]>>();
  private metrics: MetricsFile | null = null;

  constructor(
    readonly cfg: PipelineConfig,
    readonly o: PipelineOptions,
  ) {
    this.hashes = new FileHashes(join(cfg.workDir, 'stamps', 'file-hashes.json'));
    this.log = o.log ?? ((l: string) => console.error(l));
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
    return path ? this.hashes.hash(path) : Promise.resolve(null);
  }

  /** (hash, finish time) of an upstream stamp: a rerun upstream changes it even with equal inputs. */
  private upstream(unit: string): string {
    const s = this.stamps.get(unit);
    if (!s) throw new Error(`internal: stamp ${unit} is missing`);
    return `${s.hash}@${s.finished}`;
  }

  private stampPath(unit: string): string {
    return this.work('stamps', `${unit.replace(':', '.')}.json`);
  }

  private async readStamp(unit: string): Promise<Stamp | null> {
    try {
      const s = JSON.parse(await readFile(this.stampPath(unit), 'utf8')) as Stamp;
      return s.version === STAMP_VERSION && s.unit === unit ? s : null;
    } catch {
      return null;
    }
  }

  private async intact(s: Stamp): Promise<boolean> {
    for (const out of s.outputs) {
      const st = await stat(this.work(out.path)).catch(() => null);
      if (!st || st.size !== out.size) return false;
    }
    return true;
  }

  /**
   * Run one unit unless its stamp says its outputs are up to date for `inputs`. The stamp is
   * removed first and written last, so an interrupted unit is never taken for a finished one.
   */
  private async unit(stage: Stage, name: string | null, inputs: Record<string, unknown>, run: (fresh: boolean) => Promise<UnitOutput>): Promise<void> {
    const unit = name ? `${stage}:${name}` : stage;
    const label = name ? `[${stage}] ${name}:` : `[${stage}]`;
    // Round-tripped through JSON so the stamp compares like what it stores (undefined fields drop).
    inputs = JSON.parse(JSON.stringify(inputs)) as Record<string, unknown>;
    const hash = sha256(new TextEncoder().encode(JSON.stringify({ version: STAMP_VERSION, unit, inputs })));
    const old = await this.readStamp(unit);
    const forced = this.forced(stage);
    if (old && old.hash === hash && !forced && (await this.intact(old))) {
      this.stamps.set(unit, old);
      this.skipped.push(unit);
      this.log(`${label} up to date (${old.note})`);
      return;
    }
    const why = forced ? 'forced' : !old ? '' : old.hash !== hash ? `changed: ${changedInputs(old.inputs, inputs).join(', ') || 'version'}` : 'outputs missing or changed';
    if (why) this.log(`${label} rerun (${why})`);
    await unlink(this.stampPath(unit)).catch(() => {});
    const t0 = performance.now();
    const r = await run(this.forced(stage));
    const seconds = (performance.now() - t0) / 1000;
    const outputs: Stamp['outputs'] = [];
    for (const path of r.outputs) outputs.push({ path, size: (await stat(this.work(path))).size });
    const stamp: Stamp = { version: STAMP_VERSION, unit, hash, finished: new Date().toISOString(), seconds: Number(seconds.toFixed(3)), outputs, note: r.note, inputs };
    await writeFileAtomic(this.stampPath(unit), `${JSON.stringify(stamp, null, 2)}\n`);
    await this.hashes.save();
    this.stamps.set(unit, stamp);
    this.ran.push(unit);
    this.log(`${label} ${r.note} (${seconds.toFixed(1)} s)`);
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
        settings,
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
    let model: Awaited<ReturnType<typeof loadEmbeddingModel>> | null = null;
    try {
      const r = await buildIndex({
        out,
        corpus: this.cfg.data.corpus,
        model: desc,
        dtype: 'f16',
        batchSize: this.cfg.batchSize,
        force: true,
        log: (l) => this.log(`  ${l}`),
        loadModel: async () => {
          model = await loadEmbeddingModel(await this.gpu(), localModelFiles(dir), m.model);
          return model;
        },
        onShard: (e, i, n) => this.log(`  ${m.name}: shard ${i + 1}/${n}: ${e.rows} passages in ${e.seconds.toFixed(1)} s (${perSecond(e.rows, e.seconds)})`),
      });
      return { desc, embedded: r.embedded, seconds: r.seconds };
    } finally {
      (model as Awaited<ReturnType<typeof loadEmbeddingModel>> | null)?.dispose();
    }
  }

  private async modelIdentity(m: ModelConfig): Promise<unknown> {
    return m.train ? { trained: this.upstream(`train:${m.name}`) } : { base: await modelFingerprint(await this.baseDir(m)) };
  }

  async index(): Promise<void> {
    if (!this.enabled.length) this.log('[index] nothing to do (BM25 only)');
    for (const m of this.enabled) {
      const inputs = { model: await this.modelIdentity(m), maxLength: m.maxLength, corpus: await this.fileHash(this.cfg.data.corpus), batchSize: this.cfg.batchSize };
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
      const inputs = { index: this.upstream(`index:${m.name}`), questions: questionHashes, k, batchSize: this.cfg.batchSize };
      await this.unit('search', m.name, inputs, async () => {
        const dir = await this.finalDir(m);
        const desc = await describeModel(dir, m.model, m.maxLength);
        const index = await openIndex(this.work('index', m.name));
        checkSameModel(index, desc);
        const gpu = await this.gpu();
        const gindex = await uploadIndex(gpu, index);
        const notes: string[] = [];
        try {
          const model = await loadEmbeddingModel(gpu, localModelFiles(dir), m.model);
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

// ---------------------------------------------------------------- the table

/** Official MAP@20 used to rank runs: the held-out one for tuned fusions. */
function officialOf(r: RunMetrics): number {
  return (r.validHeldOut ?? r.valid).officialMap20;
}

/** The run with the highest official MAP@20 on valid (held-out for tuned fusions); earlier wins ties. */
export function bestRun(m: MetricsFile): RunMetrics {
  return m.runs.reduce((a, b) => (officialOf(b) > officialOf(a) + 1e-12 ? b : a));
}

/** Every run's metrics as a text table: valid first, then test when it was scored. */
export function formatTable(m: MetricsFile): string {
  const f = (x: number) => x.toFixed(4);
  const head = ['run', 'split', 'official MAP@20', 'MAP@20', 'R@20', 'R@100', 'R@200', 'nDCG@10', 'note'];
  const rows: string[][] = [];
  const row = (name: string, split: string, r: EvalReport, note: string) =>
    rows.push([name, split, f(r.officialMap20), f(r.map20), f(r.recall20), f(r.recall100), f(r.recall200), f(r.ndcg10), note]);
  for (const r of m.runs) {
    const w = r.fused ? `weights ${r.fused.runs.map((n, i) => `${n} ${r.fused!.weights[i].toFixed(2)}`).join(', ')}${r.fused.tuned ? ' (tuned on valid)' : ''}` : '';
    row(r.name, 'valid', r.valid, w);
    if (r.validHeldOut) row('', 'valid', r.validHeldOut, 'held out: each half fused with weights tuned on the other');
    if (r.test) row('', 'test', r.test, '');
  }
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i >= 2 && i < 8 ? c.padStart(width[i]) : c.padEnd(width[i])))
      .join('  ')
      .trimEnd();
  const best = bestRun(m);
  return [line(head), ...rows.map(line), `(${m.questions.valid} valid questions${m.questions.test !== null ? `, ${m.questions.test} test` : ''}; best: ${best.name} ${officialOf(best).toFixed(4)})`].join('\n');
}

