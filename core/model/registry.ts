// Which Hugging Face `model_type`s we can run, and the encoder family each maps to. The config
// parser looks types up here; everything after it reads the family (EncoderConfig.arch), whose
// weights and MLP are described in architectures.ts. Adding a BERT-like architecture is one
// entry below plus, for a new family, one table there (transformers.js keeps the same kind of
// table in models/registry.js).

export type EncoderFamily = 'bert' | 'gte';

export interface ModelTypeEntry {
  family: EncoderFamily;
  /** The Hugging Face class whose weight names and numerics we follow. */
  hfClass: string;
}

export const MODEL_TYPES: ReadonlyMap<string, ModelTypeEntry> = new Map([
  ['bert', { family: 'bert', hfClass: 'BertModel' }],
  // GTE v1.5 ships its code under the name "new" (Alibaba-NLP/new-impl).
  ['new', { family: 'gte', hfClass: 'NewModel' }],
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
