// The training options, once: each option's FlagEmbedding / Hugging Face Trainer name (the
// `aqa train` flag and the field of a pipeline config's `train` section), the TrainSettings
// field it sets, the rule its value follows, its default and its help text. `aqa train`,
// the pipeline and validateSettings all read this table, so the three agree by construction.
//
// One set of defaults: FlagEmbedding's (and the HF Trainer's where FlagEmbedding has none).
// Where an entry point needs another default the entry says so, with the reason
// (pipelineDefault); options whose default comes from the model say so in modelDefault.

import { followsRule, NUMBER_RULES, type NumberRule } from '../util/rules.ts';

/** Options named like FlagEmbedding's / the Hugging Face Trainer's. */
export interface TrainSettings {
  learningRate: number;
  numTrainEpochs: number;
  /** Queries per micro-batch (per_device_train_batch_size). */
  queriesPerStep: number;
  trainGroupSize: number;
  temperature: number;
  queryMaxLen: number;
  passageMaxLen: number;
  /** Prepended to every query (query_instruction_for_retrieval). */
  queryInstruction: string;
  warmupRatio: number;
  weightDecay: number;
  seed: number;
  /** Texts per forward/backward piece (GradCache); 0 = no GradCache. */
  gradCacheMiniBatch: number;
  /** Keep only each layer's input and recompute its activations in the backward (gradient_checkpointing). */
  gradientCheckpointing: boolean;
  /**
   * Hidden dropout probability (hidden_dropout_prob) while training. The commands default it to
   * the model's config.json value, as FlagEmbedding (a model in train mode) does; 0 = off.
   */
  hiddenDropout: number;
  gradientAccumulationSteps: number;
  maxGradNorm: number;
  adamBeta1: number;
  adamBeta2: number;
  adamEpsilon: number;
  /**
   * Mixed precision (the HF Trainer's fp16): f16 forward and backward on an f16 copy of the
   * weights, f32 master weights, gradients and AdamW state, dynamic loss scaling.
   */
  fp16: boolean;
  /** The loss scale a --fp16 run starts with (PyTorch GradScaler's init_scale). */
  fp16InitScale: number;
  /** Steps without overflow after which the loss scale doubles (GradScaler's growth_interval). */
  fp16GrowthInterval: number;
}

/** How often checkpoints are written and how many are kept (not part of the trained result). */
export interface SaveSettings {
  saveSteps: number;
  saveTotalLimit: number;
}

export type OptionRule = NumberRule | 'boolean' | 'string';

export interface TrainOption {
  /** `--<name>` for `aqa train`, `<name>` in a pipeline config's train section. */
  name: string;
  key: keyof TrainSettings | keyof SaveSettings;
  rule: OptionRule;
  default: number | boolean | string;
  help: string;
  /**
   * The commands take this from the model unless it is given; `default` is then what a
   * checkpoint written before the option existed was trained with.
   */
  modelDefault?: string;
  /** The pipeline's own default, computed from the model entry, and why it differs. */
  pipelineDefault?: { value: (model: { maxLength: number }, tableDefault: number) => number; why: string };
}

const MAX_LENGTH_WHY = "the model entry's max_length cuts the passages and queries that are indexed and searched, so training sees what retrieval sees";

// In TrainSettings' order: a pipeline stamp hashes the settings as JSON, so a new order would
// retrain every model of an existing work dir.
export const TRAIN_OPTIONS: readonly TrainOption[] = [
  { name: 'learning_rate', key: 'learningRate', rule: 'positive', default: 1e-5, help: 'peak learning rate' },
  { name: 'num_train_epochs', key: 'numTrainEpochs', rule: 'posInt', default: 1, help: 'epochs' },
  { name: 'per_device_train_batch_size', key: 'queriesPerStep', rule: 'posInt', default: 8, help: 'queries per micro-batch' },
  { name: 'train_group_size', key: 'trainGroupSize', rule: 'posInt', default: 8, help: 'passages per query: 1 positive + n-1 negatives' },
  { name: 'temperature', key: 'temperature', rule: 'positive', default: 0.02, help: 'InfoNCE temperature' },
  {
    name: 'query_max_len',
    key: 'queryMaxLen',
    rule: 'posInt',
    default: 32,
    help: 'max query tokens',
    pipelineDefault: { value: (m, d) => Math.min(d, m.maxLength), why: MAX_LENGTH_WHY },
  },
  {
    name: 'passage_max_len',
    key: 'passageMaxLen',
    rule: 'posInt',
    default: 128,
    help: 'max passage tokens',
    pipelineDefault: { value: (m) => m.maxLength, why: MAX_LENGTH_WHY },
  },
  { name: 'query_instruction_for_retrieval', key: 'queryInstruction', rule: 'string', default: '', help: 'prefix added to queries', modelDefault: "the model's query prefix" },
  { name: 'warmup_ratio', key: 'warmupRatio', rule: 'unit', default: 0.1, help: 'fraction of steps of linear warmup' },
  { name: 'weight_decay', key: 'weightDecay', rule: 'nonNegative', default: 0.01, help: 'AdamW decoupled weight decay (not on biases and LayerNorm weights)' },
  { name: 'seed', key: 'seed', rule: 'nonNegInt', default: 42, help: 'seed of data order and negative sampling' },
  { name: 'grad_cache_mini_batch', key: 'gradCacheMiniBatch', rule: 'nonNegInt', default: 0, help: 'GradCache: texts per forward/backward piece (0 = off; bounds activation memory)' },
  { name: 'gradient_checkpointing', key: 'gradientCheckpointing', rule: 'boolean', default: false, help: 'keep only each layer input and recompute the layer in the backward (less memory, one more forward)' },
  {
    name: 'hidden_dropout_prob',
    key: 'hiddenDropout',
    rule: 'probability',
    // 0 here, not the model's value: a checkpoint saved before this setting existed trained without it.
    default: 0,
    help: 'dropout on embedding, attention and MLP outputs while training (0 = off)',
    modelDefault: "the model's config.json value",
  },
  { name: 'gradient_accumulation_steps', key: 'gradientAccumulationSteps', rule: 'posInt', default: 1, help: 'micro-batches per optimizer step' },
  { name: 'max_grad_norm', key: 'maxGradNorm', rule: 'nonNegative', default: 1.0, help: 'global gradient-norm clipping (0 = off)' },
  { name: 'adam_beta1', key: 'adamBeta1', rule: 'probability', default: 0.9, help: 'AdamW beta1' },
  { name: 'adam_beta2', key: 'adamBeta2', rule: 'probability', default: 0.999, help: 'AdamW beta2' },
  { name: 'adam_epsilon', key: 'adamEpsilon', rule: 'positive', default: 1e-8, help: 'AdamW epsilon' },
  { name: 'fp16', key: 'fp16', rule: 'boolean', default: false, help: "mixed precision: f16 forward and backward, f32 master weights and AdamW state, dynamic loss scaling (needs 'shader-f16')" },
  { name: 'fp16_init_scale', key: 'fp16InitScale', rule: 'positive', default: 65536, help: 'with --fp16: the initial loss scale (halved on each overflow)' },
  { name: 'fp16_growth_interval', key: 'fp16GrowthInterval', rule: 'posInt', default: 2000, help: 'with --fp16: steps without overflow before the loss scale doubles' },
  {
    name: 'save_steps',
    key: 'saveSteps',
    rule: 'nonNegInt',
    default: 500,
    help: 'checkpoint every n optimizer steps (0 = only at the end)',
    pipelineDefault: { value: () => 100, why: 'a pipeline resumes a crashed training by itself, so it checkpoints more often' },
  },
  {
    name: 'save_total_limit',
    key: 'saveTotalLimit',
    rule: 'posInt',
    default: 2,
    help: 'checkpoints kept',
    pipelineDefault: { value: () => 1, why: 'later stages read only the final model; one checkpoint is all a resume needs' },
  },

];

/** What a rule wants, as "must be <this>". */
export function ruleSays(rule: OptionRule): string {
  return rule === 'boolean' ? 'true or false' : rule === 'string' ? 'a string' : NUMBER_RULES[rule].says;
}

/** Whether `v` follows the rule. */
export function followsOptionRule(v: unknown, rule: OptionRule): boolean {
  return rule === 'boolean' ? typeof v === 'boolean' : rule === 'string' ? typeof v === 'string' : followsRule(v, rule);
}

function isSettingsKey(o: TrainOption): o is TrainOption & { key: keyof TrainSettings } {
  return o.key !== 'saveSteps' && o.key !== 'saveTotalLimit';
}

/** The options that set TrainSettings fields (not the checkpoint cadence). */
export const SETTINGS_OPTIONS = TRAIN_OPTIONS.filter(isSettingsKey);

/** The table's defaults as TrainSettings. */
export const DEFAULT_SETTINGS: TrainSettings = Object.freeze(Object.fromEntries(SETTINGS_OPTIONS.map((o) => [o.key, o.default]))) as unknown as TrainSettings;

export function optionFor(key: keyof TrainSettings | keyof SaveSettings): TrainOption {
  const o = TRAIN_OPTIONS.find((x) => x.key === key);
  if (!o) throw new Error(`internal: no training option sets ${key}`);
  return o;
}

/** Throws `<name>: must be <rule>, got <value>` for the first setting that breaks its rule. */
export function validateSettings(s: TrainSettings): void {
  for (const o of SETTINGS_OPTIONS) {
    const v = s[o.key];
    if (!followsOptionRule(v, o.rule)) throw new Error(`${o.name}: must be ${ruleSays(o.rule)}, got ${JSON.stringify(v) ?? 'nothing'}`);
  }
}
