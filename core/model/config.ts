// config.json -> EncoderConfig: one normalized shape for BERT (`model_type: "bert"`) and GTE v1.5
// (`model_type: "new"`), so the encoder never reads Hugging Face field names itself.
//
// Size fields are required: a config.json without hidden_size is the wrong file, and guessing
// would load garbage. Fields that Hugging Face defaults in the config class (layer_norm_eps,
// type_vocab_size, rope_theta, pad_token_id, ...) get the same defaults here, so we build the
// same model transformers would. Settings that change the numerics in ways we do not
// implement (another activation, RMSNorm, logn attention scaling, ...) are errors, not warnings.

import { lookupModelType, unsupportedArchitecture, type EncoderFamily } from './registry.ts';
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

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `'${v}'`;
  if (typeof v === 'object') return 'an object';
  return String(v);
}

/** Field readers that throw a ConfigError naming the file and the field. */
class Fields {
  constructor(
    readonly file: string,
    readonly obj: Record<string, unknown>,
  ) {}

  has(key: string): boolean {
    return this.obj[key] !== undefined;
  }

  int(key: string, opts: { min: number; fallback?: number }): number {
    const v = this.obj[key];
    if (v === undefined) {
      if (opts.fallback !== undefined) return opts.fallback;
      throw new ConfigError(this.file, key, `is missing (expected an integer >= ${opts.min})`);
    }
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < opts.min) {
      throw new ConfigError(this.file, key, `is ${describe(v)}, expected an integer >= ${opts.min}`);
    }
    return v;
  }

  positive(key: string, fallback?: number): number {
    const v = this.obj[key];
    if (v === undefined && fallback !== undefined) return fallback;
    if (v === undefined) throw new ConfigError(this.file, key, 'is missing (expected a positive number)');
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new ConfigError(this.file, key, `is ${describe(v)}, expected a positive number`);
    return v;
  }

  str(key: string, fallback: string): string {
    const v = this.obj[key];
    if (v === undefined) return fallback;
    if (typeof v !== 'string') throw new ConfigError(this.file, key, `is ${describe(v)}, expected a string`);
    return v;
  }

  probability(key: string, fallback: number): number {
    const v = this.obj[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !(v >= 0 && v < 1)) throw new ConfigError(this.file, key, `is ${describe(v)}, expected a probability in [0, 1)`);
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.obj[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') throw new ConfigError(this.file, key, `is ${describe(v)}, expected true or false`);
    return v;
  }
}

/** Normalize a parsed config.json. Throws ConfigError (one line, names file and field). */
export function parseConfig(json: unknown, file = 'config.json'): EncoderConfig {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new ConfigError(file, null, `is ${describe(json)}, expected a JSON object`);
  }
  const f = new Fields(file, json as Record<string, unknown>);
  const modelType = (json as Record<string, unknown>).model_type;
  if (modelType === undefined) throw new ConfigError(file, 'model_type', 'is missing (is this a Hugging Face config.json?)');
  if (typeof modelType !== 'string') throw new ConfigError(file, 'model_type', `is ${describe(modelType)}, expected a string`);
  const entry = lookupModelType(modelType);
  if (!entry) throw new ConfigError(file, null, unsupportedArchitecture(modelType));
  const gte = entry.family === 'gte';

  const hiddenSize = f.int('hidden_size', { min: 1 });
  const numLayers = f.int('num_hidden_layers', { min: 1 });
  const numHeads = f.int('num_attention_heads', { min: 1 });
  const intermediateSize = f.int('intermediate_size', { min: 1 });
  const vocabSize = f.int('vocab_size', { min: 1 });
  const maxPositions = f.int('max_position_embeddings', { min: 1 });
  // Class defaults: BertConfig type_vocab_size=2, NewConfig type_vocab_size=1.
  const typeVocabSize = f.int('type_vocab_size', { min: 0, fallback: gte ? 1 : 2 });
  const layerNormEps = f.positive('layer_norm_eps', 1e-12);
  const hiddenDropout = f.probability('hidden_dropout_prob', 0.1); // BertConfig's and NewConfig's default
  if (hiddenSize % numHeads !== 0) {
    throw new ConfigError(file, 'hidden_size', `${hiddenSize} is not a multiple of num_attention_heads ${numHeads}`);
  }
  const headDim = hiddenSize / numHeads;

  const act = f.str('hidden_act', 'gelu');
  if (act !== 'gelu') {
    throw new ConfigError(file, 'hidden_act', `'${act}' is not supported (only 'gelu', the exact erf GELU that BERT and GTE use)`);
  }

  // BertConfig pads with id 0; NewConfig leaves pad_token_id unset (None) unless the file has it.
  let padTokenId: number | null = gte ? null : 0;
  const pad = (json as Record<string, unknown>).pad_token_id;
  if (pad === null) padTokenId = null;
  else if (pad !== undefined) padTokenId = f.int('pad_token_id', { min: 0 });
  if (padTokenId !== null && padTokenId >= vocabSize) {
    throw new ConfigError(file, 'pad_token_id', `${padTokenId} is outside the vocabulary (vocab_size ${vocabSize})`);
  }

  if (f.bool('is_decoder', false)) throw new ConfigError(file, 'is_decoder', 'is true: causal (decoder) BERT is not supported');

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

  const posType = f.str('position_embedding_type', gte ? 'rope' : 'absolute');
  const allowed = gte ? ['rope', 'absolute'] : ['absolute'];
  if (!allowed.includes(posType)) {
    throw new ConfigError(file, 'position_embedding_type', `'${posType}' is not supported for model_type '${modelType}' (supported: ${allowed.join(', ')})`);
  }
  cfg.positionEmbedding = posType as EncoderConfig['positionEmbedding'];

  if (gte) {
    // Variants the reference (Alibaba-NLP/new-impl) supports but that change weights or math.
    const ln = f.str('layer_norm_type', 'layer_norm');
    if (ln !== 'layer_norm') throw new ConfigError(file, 'layer_norm_type', `'${ln}' is not supported (only 'layer_norm')`);
    if (!f.bool('pack_qkv', true)) throw new ConfigError(file, 'pack_qkv', 'is false: separate q/k/v projections are not supported (only the fused qkv_proj)');
    if (f.bool('logn_attention_scale', false)) throw new ConfigError(file, 'logn_attention_scale', 'is true: log-n attention scaling is not supported');
  }

  if (cfg.positionEmbedding === 'rope') {
    if (headDim % 2 !== 0) throw new ConfigError(file, 'num_attention_heads', `gives head_dim ${headDim}; RoPE needs an even head_dim`);
    cfg.ropeTheta = f.positive('rope_theta', 10000);
    cfg.ropeNtkFactor = parseRopeScaling(file, (json as Record<string, unknown>).rope_scaling);
  }
  return cfg;
}

/** rope_scaling: absent/null -> 1; {type: 'ntk', factor} -> factor; anything else is an error. */
function parseRopeScaling(file: string, v: unknown): number {
  if (v === undefined || v === null) return 1;
  if (typeof v !== 'object' || Array.isArray(v)) throw new ConfigError(file, 'rope_scaling', `is ${describe(v)}, expected {"type": "ntk", "factor": number} or null`);
  const r = v as Record<string, unknown>;
  const type = r.type ?? r.rope_type;
  if (type !== 'ntk') {
    throw new ConfigError(file, 'rope_scaling.type', `${describe(type)} is not supported (only 'ntk', the fixed NTK scaling of GTE v1.5)`);
  }
  if (r.mixed_b !== undefined && r.mixed_b !== null) {
    throw new ConfigError(file, 'rope_scaling.mixed_b', `${describe(r.mixed_b)} is not supported (mixed NTK scaling)`);
  }
  if (typeof r.factor !== 'number' || !Number.isFinite(r.factor) || r.factor <= 0) {
    throw new ConfigError(file, 'rope_scaling.factor', `is ${describe(r.factor)}, expected a positive number`);
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
