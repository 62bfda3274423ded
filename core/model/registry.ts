// Which Hugging Face `model_type`s we can run, and the encoder family each maps to. The config
// parser and the encoder builder both look types up here, so adding an architecture starts
// with one entry below (transformers.js keeps the same kind of table in models/registry.js).

export type EncoderFamily = 'bert' | 'gte';

export interface ModelTypeEntry {
  /** config.json `model_type`. */
  modelType: string;
  family: EncoderFamily;
  /** The Hugging Face class whose weight names and numerics we follow. */
  hfClass: string;
  /** Prefix used when the checkpoint was saved from a model with a head (BertForMaskedLM etc). */
  basePrefix: string;
}

export const MODEL_TYPES: ReadonlyMap<string, ModelTypeEntry> = new Map([
  ['bert', { modelType: 'bert', family: 'bert', hfClass: 'BertModel', basePrefix: 'bert.' }],
  // GTE v1.5 ships its code under the name "new" (Alibaba-NLP/new-impl).
  ['new', { modelType: 'new', family: 'gte', hfClass: 'NewModel', basePrefix: 'new.' }],
]);

export function supportedModelTypes(): string[] {
  return [...MODEL_TYPES.keys()];
}

/** The entry for a model_type, or null when we cannot run it. */
export function lookupModelType(modelType: string): ModelTypeEntry | null {
  return MODEL_TYPES.get(modelType) ?? null;
}

export function unsupportedArchitecture(modelType: string): string {
  return `unsupported architecture '${modelType}' (supported: ${supportedModelTypes().join(', ')})`;
}
