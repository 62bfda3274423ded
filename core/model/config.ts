// config.json -> EncoderConfig: one normalized shape for BERT (`model_type: "bert"`) and GTE v1.5
// (`model_type: "new"`), so the encoder never reads Hugging Face field names itself.
//
// Size fields are required: a config.json without hidden_size is the wrong file, and guessing
// would load garbage. Fields that Hugging Face defaults in the config class (layer_norm_eps,
// type_vocab_size, rope_theta, pad_token_id, ...) get the same defaults here, so we build the
// same model transformers would. Settings that change the numerics in ways we do not
// implement (another activation, RMSNorm, logn attention scaling, ...) are errors, not warnings.

import { lookupModelType, unsupportedArchitecture, type EncoderFamily } from './registry.ts';
import { describeValue, Fields, type Rule } from '../util/fields.ts';
import { type ModelFiles, oneLine, readJson } from './source.ts';

export interface EncoderConfig {
  arch: EncoderFamily;
  hiddenSize: number; // H
  numLayers: number;
  numHeads: number;
  headDim: number; // H / numHeads
  intermediateSize: number; // I (GTE: the GLU width; up_gate_proj is [2I, H])
  vocabSize: number;
  /** BERT: rows of the position table. GTE/RoPE: the trained context (no table). */
  maxPositions: number;
  /** Rows of token_type_embeddings; 0 = no table (GTE base). */
  typeVocabSize: number;
  layerNormEps: number;
  /** Exact erf GELU; tanh variants are rejected by parseConfig. */
  hiddenAct: 'gelu';
  positionEmbedding: 'absolute' | 'rope';
  /** RoPE base (rope only). */
  ropeTheta?: number;
  /** NTK scaling factor s (rope only; 1 = plain RoPE): inv_freq_j = (theta*s)^(-2j/d) * s^(-2/d). */
  ropeNtkFactor?: number;
  /** Row of word_embeddings that gets no gradient (nn.Embedding padding_idx); null = none. */
  padTokenId: number | null;
  /**
   * hidden_dropout_prob: dropout on the embedding output and on each attention / MLP output
   * before its residual add, in training only. (attention_probs_dropout_prob is not applied:
   * GTE v1.5 sets it to 0, and the fused attention keeps no probability matrix to drop from.)
   */
  hiddenDropout: number;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    readonly file: string,
    readonly field: string | null,
    detail: string,
  ) {
    super(oneLine(`${file}: ${field !== null ? `${field} ` : ''}${detail}`));
  }
}

/** config.json's fields, worded "num_hidden_layers is '12', expected an integer >= 1". */
function fields(file: string, json: Record<string, unknown>): Fields {
  return new Fields(file, json, '', { wording: 'is', error: (f, field, what) => new ConfigError(f, field, what) });
}

const integerFrom = (min: number): Rule => ({ test: (x) => Number.isSafeInteger(x) && x >= min, says: `an integer >= ${min}` });
const POSITIVE: Rule = { test: (x) => x > 0, says: 'a positive number' };
const PROBABILITY: Rule = { test: (x) => x >= 0 && x < 1, says: 'a probability in [0, 1)' };

/** Normalize a parsed config.json. Throws ConfigError (one line, names file and field). */
export function parseConfig(json: unknown, file = 'config.json'): EncoderConfig {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new ConfigError(file, null, `is ${describeValue(json)}, expected a JSON object`);
  }
  const f = fields(file, json as Record<string, unknown>);
  const modelType = (json as Record<string, unknown>).model_type;
  if (modelType === undefined) throw new ConfigError(file, 'model_type', 'is missing (is this a Hugging Face config.json?)');
  if (typeof modelType !== 'string') throw new ConfigError(file, 'model_type', `is ${describeValue(modelType)}, expected a string`);
  const entry = lookupModelType(modelType);
  if (!entry) throw new ConfigError(file, null, unsupportedArchitecture(modelType));
  const gte = entry.family === 'gte';

  const hiddenSize = f.number('hidden_size', integerFrom(1));
  const numLayers = f.number('num_hidden_layers', integerFrom(1));
  const numHeads = f.number('num_attention_heads', integerFrom(1));
  const intermediateSize = f.number('intermediate_size', integerFrom(1));
  const vocabSize = f.number('vocab_size', integerFrom(1));
  const maxPositions = f.number('max_position_embeddings', integerFrom(1));
  // Class defaults: BertConfig type_vocab_size=2, NewConfig type_vocab_size=1.
  const typeVocabSize = f.number('type_vocab_size', integerFrom(0), gte ? 1 : 2);
  const layerNormEps = f.number('layer_norm_eps', POSITIVE, 1e-12);
  const hiddenDropout = f.number('hidden_dropout_prob', PROBABILITY, 0.1, { nullIsAbsent: true }); // BertConfig's and NewConfig's default
  if (hiddenSize % numHeads !== 0) {
    throw new ConfigError(file, 'hidden_size', `${hiddenSize} is not a multiple of num_attention_heads ${numHeads}`);
  }
  const headDim = hiddenSize / numHeads;

  const act = f.string('hidden_act', 'gelu');
  if (act !== 'gelu') {
    throw new ConfigError(file, 'hidden_act', `'${act}' is not supported (only 'gelu', the exact erf GELU that BERT and GTE use)`);
  }

  // BertConfig pads with id 0; NewConfig leaves pad_token_id unset (None) unless the file has it.
  let padTokenId: number | null = gte ? null : 0;
  const pad = (json as Record<string, unknown>).pad_token_id;
  if (pad === null) padTokenId = null;
  else if (pad !== undefined) padTokenId = f.number('pad_token_id', integerFrom(0));
  if (padTokenId !== null && padTokenId >= vocabSize) {
    throw new ConfigError(file, 'pad_token_id', `${padTokenId} is outside the vocabulary (vocab_size ${vocabSize})`);
  }

  if (f.bool('is_decoder', false, { nullIsAbsent: true })) throw new ConfigError(file, 'is_decoder', 'is true: causal (decoder) BERT is not supported');

  const cfg: EncoderConfig = {
    arch: entry.family,
    hiddenSize,
    numLayers,
    numHeads,
    headDim,
    intermediateSize,
    vocabSize,
    maxPositions,
    typeVocabSize,
    layerNormEps,
    hiddenAct: 'gelu',
    positionEmbedding: 'absolute',
    padTokenId,
    hiddenDropout,
  };

  const posType = f.string('position_embedding_type', gte ? 'rope' : 'absolute');
  const allowed = gte ? ['rope', 'absolute'] : ['absolute'];
  if (!allowed.includes(posType)) {
    throw new ConfigError(file, 'position_embedding_type', `'${posType}' is not supported for model_type '${modelType}' (supported: ${allowed.join(', ')})`);
  }
  cfg.positionEmbedding = posType as EncoderConfig['positionEmbedding'];

  if (gte) {
    // Variants the reference (Alibaba-NLP/new-impl) supports but that change weights or math.
    const ln = f.string('layer_norm_type', 'layer_norm');
    if (ln !== 'layer_norm') throw new ConfigError(file, 'layer_norm_type', `'${ln}' is not supported (only 'layer_norm')`);
    if (!f.bool('pack_qkv', true, { nullIsAbsent: true })) throw new ConfigError(file, 'pack_qkv', 'is false: separate q/k/v projections are not supported (only the fused qkv_proj)');
    if (f.bool('logn_attention_scale', false, { nullIsAbsent: true })) throw new ConfigError(file, 'logn_attention_scale', 'is true: log-n attention scaling is not supported');
  }

  if (cfg.positionEmbedding === 'rope') {
    if (headDim % 2 !== 0) throw new ConfigError(file, 'num_attention_heads', `gives head_dim ${headDim}; RoPE needs an even head_dim`);
    cfg.ropeTheta = f.number('rope_theta', POSITIVE, 10000);
    cfg.ropeNtkFactor = parseRopeScaling(file, (json as Record<string, unknown>).rope_scaling);
  }
  return cfg;
}

/** rope_scaling: absent/null -> 1; {type: 'ntk', factor} -> factor; anything else is an error. */
function parseRopeScaling(file: string, v: unknown): number {
  if (v === undefined || v === null) return 1;
  if (typeof v !== 'object' || Array.isArray(v)) throw new ConfigError(file, 'rope_scaling', `is ${describeValue(v)}, expected {"type": "ntk", "factor": number} or null`);
  const r = v as Record<string, unknown>;
  const type = r.type ?? r.rope_type;
  if (type !== 'ntk') {
    throw new ConfigError(file, 'rope_scaling.type', `${describeValue(type)} is not supported (only 'ntk', the fixed NTK scaling of GTE v1.5)`);
  }
  if (r.mixed_b !== undefined && r.mixed_b !== null) {
    throw new ConfigError(file, 'rope_scaling.mixed_b', `${describeValue(r.mixed_b)} is not supported (mixed NTK scaling)`);
  }
  if (typeof r.factor !== 'number' || !Number.isFinite(r.factor) || r.factor <= 0) {
    throw new ConfigError(file, 'rope_scaling.factor', `is ${describeValue(r.factor)}, expected a positive number`);
  }
  return r.factor;
}

/** Read and parse config.json of a model folder. */
export async function loadConfig(files: ModelFiles): Promise<EncoderConfig> {
  const path = `${files.name}/config.json`;
  const json = await readJson(files, 'config.json');
  if (json === null) throw new ConfigError(path, null, 'not found (a Hugging Face model folder needs config.json)');
  return parseConfig(json, path);
}
