// `aqa pipeline`'s config file: read, checked and normalised (paths made absolute, defaults
// filled in). Every problem is one line naming the file and the field:
//   config.json: models[1].train.learning_rate: must be a number > 0

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { TOPK_MAX_K } from '../../core/kernels/topk.ts';
import { FUSION_METHODS, type FusionMethod } from '../../core/retrieval/fusion.ts';
import { SUBMISSION_K } from '../../core/retrieval/results.ts';
import { TRAIN_OPTIONS, type TrainOption, type TrainSettings, validateSettings } from '../../core/train/options.ts';
import { followsRule, NUMBER_RULES, type NumberRule } from '../../core/util/rules.ts';
import { isHubId } from '../hub.ts';
import type { SettingsWithModelDefaults } from '../train-settings.ts';

/** A config problem: `file: field.path: what` on one line. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

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
