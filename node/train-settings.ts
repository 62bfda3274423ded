// The embedding settings (pooling, prefixes) of a model folder, for command-line defaults that
// depend on the model (e.g. the training query instruction = the model's own query prefix).

import { loadConfig } from '../core/model/config.ts';
import { type EmbeddingSettings, resolveEmbeddingSettings } from '../core/model/presets.ts';
import { localModelFiles } from './files.ts';

export async function loadEmbeddingSettingsFor(dir: string, name: string): Promise<EmbeddingSettings> {
  return resolveEmbeddingSettings(localModelFiles(dir), name);
}

/** The model's hidden_dropout_prob (config.json; BERT's default 0.1 when absent): the training default. */
export async function modelHiddenDropout(dir: string): Promise<number> {
  return (await loadConfig(localModelFiles(dir))).hiddenDropout;
}
