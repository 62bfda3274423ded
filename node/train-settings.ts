// The embedding settings (pooling, prefixes) of a model folder, for command-line defaults that
// depend on the model (e.g. the training query instruction = the model's own query prefix).

import { type EmbeddingSettings, resolveEmbeddingSettings } from '../core/model/presets.ts';
import { localModelFiles } from './files.ts';

export async function loadEmbeddingSettingsFor(dir: string, name: string): Promise<EmbeddingSettings> {
  return resolveEmbeddingSettings(localModelFiles(dir), name);
}
