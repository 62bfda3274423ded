// `aqa pipeline`'s config file: read, checked and normalised (paths made absolute, defaults
// filled in). Every problem is one line naming the file and the field:
//   config.json: models[1].train.learning_rate: must be a number > 0

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { TOPK_MAX_K } from '../../core/kernels/topk.ts';
import type { Precision } from '../../core/model/load.ts';
import { FUSION_METHODS, type FusionMethod } from '../../core/retrieval/fusion.ts';
import { SUBMISSION_K } from '../../core/retrieval/results.ts';
import { TRAIN_OPTIONS, type TrainOption, type TrainSettings, validateSettings } from '../../core/train/options.ts';
import { fieldMessage, Fields, type FieldsOptions, isHubId } from '../../core/util/fields.ts';
import type { SettingsWithModelDefaults } from '../train-settings.ts';

/** A pipeline config problem: `file: field.path: what` on one line. */
export class PipelineConfigError extends Error {
  override name = 'PipelineConfigError';
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
  /**
   * What the model's index, searches and mining run in (default f32; f16 needs shader-f16,
   * else f32 with a notice). Fine-tuning runs in f32 whatever this says.
   */
  precision: Precision;
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

const RUN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

const FIELDS: FieldsOptions = { error: (file, field, what) => new PipelineConfigError(fieldMessage(file, field, what)) };

/** Check and normalise a parsed config; relative paths are taken from the config file's folder. */
export function parseConfig(raw: unknown, file: string, opts: { workDir?: string } = {}): PipelineConfig {
  const base = dirname(resolve(file));
  const path = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  const top: Fields = Fields.of(file, raw, '', FIELDS, ['data', 'work_dir', 'models', 'bm25', 'retrieve_k', 'batch_size', 'fusion', 'submission']);

  // data
  const d = top.object('data', ['corpus', 'train', 'valid', 'test']);
  const dataFile = (key: string, required: boolean): string | null => {
    if (!required && (d.get(key) === undefined || d.get(key) === null)) return null;
    const p = path(d.string(key, undefined, { nonEmpty: true }));
    if (!existsSync(p)) d.failAt(key, `${p}: no such file`);
    return p;
  };
  const data = { corpus: dataFile('corpus', true)!, train: dataFile('train', false), valid: dataFile('valid', true)!, test: dataFile('test', false) };

  const workDir = opts.workDir ? resolve(opts.workDir) : path(top.string('work_dir', undefined, { nonEmpty: true }));

  // models
  if (!Array.isArray(top.get('models'))) top.failAt('models', 'must be an array of model entries (may be empty when bm25 is on)');
  const models: ModelConfig[] = top.array('models').map((mv, i) => parseModel(Fields.of(file, mv, `models[${i}]`, FIELDS, ['name', 'model', 'max_length', 'precision', 'train', 'enabled']), path));
  const seen = new Set<string>();
  models.forEach((m, i) => {
    if (seen.has(m.name)) top.fail(`models[${i}].name`, `'${m.name}' is used by an earlier entry`);
    seen.add(m.name);
  });
  models.forEach((m, i) => {
    if (m.train && !data.train && m.enabled) top.fail(`models[${i}].train`, 'fine-tuning needs data.train (training questions with gold pids)');
    const neg = m.train?.negatives;
    if (neg?.kind !== 'mined' || neg.mineWith === 'self') return;
    const miner = models.find((x) => x.name === neg.mineWith);
    const at = `models[${i}].train.negatives.mine_with`;
    if (!miner) top.fail(at, `'${neg.mineWith}' is not a model name of this config (or "self")`);
    if (miner.train) top.fail(at, `'${neg.mineWith}' is fine-tuned here; mine with a zero-shot entry (train: null) or "self"`);
  });

  // bm25
  let bm25: PipelineConfig['bm25'] = { k1: 0.9, b: 0.4 };
  const bv = top.get('bm25');
  if (bv === false || bv === null) bm25 = null;
  else if (bv !== undefined && bv !== true) {
    const b = top.object('bm25', ['k1', 'b']);
    bm25 = { k1: b.number('k1', 'nonNegative', 0.9), b: b.number('b', 'unit', 0.4) };
  }
  const runs = [...models.filter((m) => m.enabled).map((m) => m.name), ...(bm25 ? ['bm25'] : [])];
  if (!runs.length) top.failAt('models', 'no enabled model and bm25 is off: nothing to retrieve with');
  if (models.some((m) => m.name === 'bm25') && bm25) top.failAt('models', "the name 'bm25' is taken by the BM25 run; rename the model");

  const retrieveK = top.number('retrieve_k', 'posInt', 200);
  if (retrieveK < SUBMISSION_K || retrieveK > TOPK_MAX_K) top.failAt('retrieve_k', `must be an integer in [${SUBMISSION_K}, ${TOPK_MAX_K}], got ${retrieveK}`);
  const batchSize = top.number('batch_size', 'posInt', 32);

  // fusion
  let fusion: FusionConfig | null = null;
  if (top.get('fusion') !== undefined && top.get('fusion') !== null) {
    const fu: Fields = top.object('fusion', ['methods', 'tune_on', 'weights_step', 'rrf_k']);
    const methods = fu.has('methods') ? fu.get('methods') : ['sum'];
    if (!Array.isArray(methods) || !methods.length) fu.failAt('methods', `must be a non-empty array of ${FUSION_METHODS.map((m) => JSON.stringify(m)).join(', ')}`);
    methods.forEach((m, i) => {
      if (!FUSION_METHODS.includes(m as FusionMethod)) fu.failAt(`methods[${i}]`, `must be one of ${FUSION_METHODS.map((x) => JSON.stringify(x)).join(', ')}, got ${JSON.stringify(m)}`);
      if (methods.indexOf(m) !== i) fu.failAt(`methods[${i}]`, `${JSON.stringify(m)} is listed twice`);
    });
    fusion = {
      methods: methods as FusionMethod[],
      tuneOn: fu.oneOf('tune_on', ['valid', 'none'] as const, 'valid'),
      weightsStep: fu.number('weights_step', 'step', 0.1),
      rrfK: fu.number('rrf_k', 'nonNegative', 60),
    };
  }

  // submission
  let submission: SubmissionConfig | null = null;
  if (top.get('submission') !== undefined && top.get('submission') !== null) {
    const s = top.object('submission', ['questions', 'out', 'run']);
    const questions = s.oneOf('questions', ['valid', 'test'] as const, data.test ? 'test' : 'valid');
    if (questions === 'test' && !data.test) s.failAt('questions', '"test" needs data.test');
    const out = s.string('out', 'submission.txt', { nonEmpty: true });
    const run = s.string('run', 'best', { nonEmpty: true });
    const known = [...runs, ...(fusion && runs.length > 1 ? fusion.methods.map((m) => `fusion:${m}`) : [])];
    if (run !== 'best' && !known.includes(run)) s.failAt('run', `'${run}' is not a run of this config (runs: best, ${known.join(', ')})`);
    submission = { questions, out: isAbsolute(out) ? out : resolve(workDir, out), run };
  }

  return { file, data, workDir, models, bm25, retrieveK, batchSize, fusion, submission };
}

function parseModel(m: Fields, path: (p: string) => string): ModelConfig {
  const name = m.string('name', undefined, { nonEmpty: true });
  if (!RUN_NAME.test(name)) m.failAt('name', `'${name}' must be letters, digits, '.', '_' or '-' (it names files)`);
  const spec = m.string('model', undefined, { nonEmpty: true });
  // A folder relative to the config file, else the string as given: a folder relative to the
  // working directory, or a Hub id.
  let model = spec;
  if (existsSync(path(spec))) model = path(spec);
  else if (!existsSync(spec) && !isHubId(spec)) m.failAt('model', `'${spec}' is neither a folder (looked for ${path(spec)}) nor a Hub id like owner/name`);
  if (!m.has('max_length')) m.failAt('max_length', 'missing (must be an integer >= 1: tokens per passage and query)');
  const maxLength = m.number('max_length', 'posInt');
  const precision = m.oneOf('precision', ['f32', 'f16'] as const, 'f32');
  const enabled = m.bool('enabled', true);
  let train: TrainConfig | null = null;
  if (m.get('train') !== undefined && m.get('train') !== null) train = parseTrain(m.object('train', [...TRAIN_OPTIONS.map((o) => o.name), 'negatives']), maxLength);
  return { name, model, maxLength, precision, enabled, train };
}

/** One option of the table from a train section: absent = the pipeline's default (null = the model's). */
function readOption(t: Fields, o: TrainOption, maxLength: number): unknown {
  if (!t.has(o.name)) {
    if (o.modelDefault) return null;
    return o.pipelineDefault ? o.pipelineDefault.value({ maxLength }, o.default as number) : o.default;
  }
  if (o.rule === 'boolean') return t.bool(o.name);
  if (o.rule === 'string') return t.string(o.name);
  return t.number(o.name, o.rule);
}

function parseTrain(t: Fields, maxLength: number): TrainConfig {
  const v: Record<string, unknown> = {};
  for (const o of TRAIN_OPTIONS) v[o.key] = readOption(t, o, maxLength);
  const { saveSteps, saveTotalLimit, ...rest } = v;
  const settings = rest as unknown as SettingsWithModelDefaults;
  try {
    validateSettings({ ...settings, queryInstruction: settings.queryInstruction ?? '', hiddenDropout: settings.hiddenDropout ?? 0 } as TrainSettings);
  } catch (e) {
    t.fail(t.path, (e as Error).message); // the per-field rules above should have caught it first
  }
  let negatives: Negatives = { kind: 'random' };
  const nv = t.get('negatives');
  if (nv !== undefined && nv !== 'random') {
    if (typeof nv === 'string') t.failAt('negatives', `must be "random" or an object {mine_with, range, count}, got ${JSON.stringify(nv)}`);
    const n: Fields = t.object('negatives', ['mine_with', 'range', 'count']);
    const mineWith = n.string('mine_with', undefined, { nonEmpty: true });
    const rs = n.string('range', '10-210', { nonEmpty: true });
    const rm = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(rs);
    if (!rm || Number(rm[2]) <= Number(rm[1])) n.failAt('range', `must be "START-END" with END > START (0-based ranking positions, e.g. "10-210"), got ${JSON.stringify(rs)}`);
    const range: [number, number] = [Number(rm[1]), Number(rm[2])];
    if (range[1] > TOPK_MAX_K) n.failAt('range', `END ${range[1]} is more than the ${TOPK_MAX_K} results a search returns`);
    negatives = { kind: 'mined', mineWith, range, count: n.number('count', 'posInt', 15) };
  }
  return { settings, negatives, saveSteps: saveSteps as number, saveTotalLimit: saveTotalLimit as number };
}

/** Read and check a config file. */
export async function loadPipelineConfig(file: string, opts: { workDir?: string } = {}): Promise<PipelineConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new PipelineConfigError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new PipelineConfigError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  return parseConfig(raw, file, opts);
}
