// How to turn an encoder's hidden states into the model's embedding: pooling, normalization,
// query prefix and max length. sentence-transformers stores these next to the weights; we read
// its files when they are there and fall back to a table of the models we know.
//
// Per setting, the first source that has it wins:
//   pooling     1_Pooling/config.json (path from modules.json)  > preset > 'cls' (warned)
//   normalize   a Normalize module in modules.json, or the similarity function: sentence-transformers
//               ranks by cosine unless config_sentence_transformers.json says 'dot', and our index
//               ranks by dot product, so cosine means "normalize"        > preset > true (warned)
//   prefixes    config_sentence_transformers.json `prompts`             > preset > ''
//   maxLength   sentence_bert_config.json max_seq_length > preset
//               > min(config.json max_position_embeddings, tokenizer_config.json model_max_length)
// maxLength is capped at max_position_embeddings for models with a position table (BERT), which
// cannot embed past it.

import { isObject } from '../util/fields.ts';
import { type ModelFiles, readJson } from './source.ts';

export type Pooling = 'cls' | 'mean';

export interface EmbeddingSettings {
  pooling: Pooling;
  normalize: boolean;
  /** Prepended to queries only (e.g. arctic/bge retrieval instruction). */
  queryPrefix: string;
  /** Prepended to passages ('' for every model in the preset table). */
  passagePrefix: string;
  /** Max tokens per input, special tokens included. */
  maxLength: number;
  /** Where the settings came from, for logs: 'sentence-transformers files', 'preset <id>', ... */
  source: string;
  /** Anything a user should see: unknown model, ignored pooling options, ... */
  warnings: string[];
}

export interface EmbeddingPreset {
  id: string;
  pooling: Pooling;
  normalize: boolean;
  queryPrefix: string;
  maxLength: number;
}

const RETRIEVAL_INSTRUCTION = 'Represent this sentence for searching relevant passages: ';

/** Known models; lengths are what their sentence_bert_config.json says. */
export const PRESETS: readonly EmbeddingPreset[] = [
  { id: 'Alibaba-NLP/gte-large-en-v1.5', pooling: 'cls', normalize: true, queryPrefix: '', maxLength: 8192 },
  { id: 'Alibaba-NLP/gte-base-en-v1.5', pooling: 'cls', normalize: true, queryPrefix: '', maxLength: 8192 },
  { id: 'Snowflake/snowflake-arctic-embed-l', pooling: 'cls', normalize: true, queryPrefix: RETRIEVAL_INSTRUCTION, maxLength: 512 },
  { id: 'BAAI/bge-small-en-v1.5', pooling: 'cls', normalize: true, queryPrefix: RETRIEVAL_INSTRUCTION, maxLength: 512 },
  { id: 'sentence-transformers/all-MiniLM-L6-v2', pooling: 'mean', normalize: true, queryPrefix: '', maxLength: 256 },
];

/**
 * The preset for a model name: a Hub id ('BAAI/bge-small-en-v1.5'), a directory ending in the
 * model's name ('models/bge-small-en-v1.5'), or a hub-cache path holding 'owner--name'
 * (ours: '<cache>/BAAI--bge-small-en-v1.5/main'; HF's: 'models--BAAI--bge-small-en-v1.5').
 * Case-insensitive; null when unknown.
 */
export function findPreset(modelName: string): EmbeddingPreset | null {
  const name = modelName.toLowerCase().replace(/\\/g, '/').replace(/\/+$/, '');
  const segments = name.split('/');
  for (const p of PRESETS) {
    const id = p.id.toLowerCase();
    const base = id.split('/')[1];
    if (name === id || name.endsWith(`/${id}`) || segments.includes(base) || segments.some((s) => s.endsWith(id.replace('/', '--')))) return p;
  }
  return null;
}

const POOLING_MODES = ['cls_token', 'mean_tokens', 'max_tokens', 'mean_sqrt_len_tokens', 'weightedmean_tokens', 'lasttoken'] as const;

/** sentence-transformers Pooling config -> our pooling; other modes are errors (wrong embeddings otherwise). */
function parsePooling(file: string, cfg: unknown, warnings: string[]): Pooling {
  if (!isObject(cfg)) throw new Error(`${file}: expected a JSON object`);
  const on = POOLING_MODES.filter((m) => cfg[`pooling_mode_${m}`] === true);
  if (on.length === 0) throw new Error(`${file}: no pooling_mode_* is true`);
  if (on.length > 1) throw new Error(`${file}: several pooling modes are on (${on.join(', ')}); only one of cls_token, mean_tokens is supported`);
  if (on[0] === 'cls_token') return 'cls';
  if (on[0] === 'mean_tokens') {
    if (cfg.include_prompt === false) warnings.push(`${file}: include_prompt false is ignored (the prompt tokens are averaged too)`);
    return 'mean';
  }
  throw new Error(`${file}: pooling_mode_${on[0]} is not supported (only cls_token and mean_tokens)`);
}

/** Resolve pooling, normalization, prefixes and max length for a model folder. */
export async function resolveEmbeddingSettings(files: ModelFiles, modelName: string): Promise<EmbeddingSettings> {
  const warnings: string[] = [];
  const from: string[] = [];
  const preset = findPreset(modelName);
  const at = (p: string) => `${files.name}/${p}`;

  // modules.json lists the pipeline; the Pooling module's folder is usually 1_Pooling.
  const modules = await readJson(files, 'modules.json');
  let poolingPath = '1_Pooling';
  let hasNormalize = false;
  if (modules !== null) {
    if (!Array.isArray(modules)) throw new Error(`${at('modules.json')}: expected a JSON array of modules`);
    for (const m of modules) {
      const type = isObject(m) ? m.type : undefined;
      if (type === 'sentence_transformers.models.Normalize') hasNormalize = true;
      if (type === 'sentence_transformers.models.Pooling' && isObject(m) && typeof m.path === 'string' && m.path) poolingPath = m.path.replace(/\/+$/, '');
    }
    from.push('modules.json');
  }
  const poolingFile = `${poolingPath}/config.json`;
  const poolingCfg = await readJson(files, poolingFile);

  const stConfig = await readJson(files, 'config_sentence_transformers.json');
  const st = isObject(stConfig) ? stConfig : {};
  if (stConfig !== null) from.push('config_sentence_transformers.json');

  let pooling: Pooling;
  if (poolingCfg !== null) {
    pooling = parsePooling(at(poolingFile), poolingCfg, warnings);
    from.push(poolingFile);
  } else if (preset) {
    pooling = preset.pooling;
  } else {
    pooling = 'cls';
  }

  let normalize: boolean;
  const sim = st.similarity_fn_name;
  if (modules !== null || typeof sim === 'string') {
    normalize = hasNormalize || sim === undefined || sim === null || sim === 'cosine';
    if (!hasNormalize && typeof sim === 'string' && !['cosine', 'dot'].includes(sim)) {
      warnings.push(`${at('config_sentence_transformers.json')}: similarity_fn_name '${sim}' is not supported; ranking by dot product of unnormalized embeddings`);
    }
  } else {
    normalize = preset ? preset.normalize : true;
  }

  let queryPrefix = preset?.queryPrefix ?? '';
  let passagePrefix = '';
  if (isObject(st.prompts)) {
    const prompts = st.prompts;
    const str = (k: string) => (typeof prompts[k] === 'string' ? (prompts[k] as string) : undefined);
    queryPrefix = str('query') ?? queryPrefix;
    passagePrefix = str('document') ?? str('passage') ?? str('corpus') ?? '';
  }

  // maxLength: sentence-transformers' own order (sentence_bert_config first, then the min of the
  // model's and tokenizer's limits); a preset stands in for a missing sentence_bert_config.json.
  const config = await readJson(files, 'config.json');
  const maxPos = isObject(config) && typeof config.max_position_embeddings === 'number' ? config.max_position_embeddings : undefined;
  let maxLength: number | undefined;
  const sbert = await readJson(files, 'sentence_bert_config.json');
  if (isObject(sbert) && typeof sbert.max_seq_length === 'number' && sbert.max_seq_length > 0) {
    maxLength = sbert.max_seq_length;
    from.push('sentence_bert_config.json');
  } else if (preset) {
    maxLength = preset.maxLength;
  } else {
    const tok = await readJson(files, 'tokenizer_config.json');
    // Unset model_max_length is saved as int(1e30); Math.min drops it.
    const tokMax = isObject(tok) && typeof tok.model_max_length === 'number' ? tok.model_max_length : Infinity;
    const m = Math.min(maxPos ?? Infinity, tokMax);
    maxLength = Number.isFinite(m) ? m : undefined;
  }
  if (maxLength === undefined) {
    maxLength = 512;
    warnings.push(`${files.name}: no max length in sentence_bert_config.json, config.json or tokenizer_config.json; using 512`);
  }
  const hasPositionTable = isObject(config) && (config.model_type === 'bert' || config.position_embedding_type === 'absolute');
  if (hasPositionTable && maxPos !== undefined && maxLength > maxPos) {
    warnings.push(`${files.name}: max length ${maxLength} capped at max_position_embeddings ${maxPos}`);
    maxLength = maxPos;
  }

  if (!preset && poolingCfg === null) {
    const what = modules === null ? 'no sentence-transformers files' : `no ${poolingFile}`;
    warnings.push(`${modelName}: ${what} and not a known model (${PRESETS.map((p) => p.id).join(', ')}); using CLS pooling${normalize ? ' + L2 normalization' : ''}, ${queryPrefix ? `query prefix ${JSON.stringify(queryPrefix)}` : 'no query prefix'}`);
  }
  const parts: string[] = [];
  if (from.length) parts.push(`sentence-transformers files (${[...new Set(from)].join(', ')})`);
  if (preset) parts.push(`preset ${preset.id}`);
  if (!parts.length) parts.push('defaults');
  return { pooling, normalize, queryPrefix, passagePrefix, maxLength, source: parts.join(' + '), warnings };
}
