// A model as the commands use it: resolved from a folder or the Hub with download progress on
// stderr, loaded onto the GPU with its settings' warnings printed. Loaded by the command actions
// only (it pulls in the model code).

import type { Gpu } from '../core/gpu/device.ts';
import { fmtBytes } from '../core/gpu/device.ts';
import type { Precision } from '../core/model/load.ts';
import { loadEmbeddingModel } from '../core/retrieval/embed.ts';
import { localModelFiles } from './files.ts';
import { resolveModel } from './hub.ts';

export const warn = (m: string): void => console.error(`warning: ${m}`);
export const info = (m: string): void => console.error(m);

/** The local folder of a model folder or Hub id, downloading (with progress) when needed. */
export function resolveModelDir(model: string): Promise<string> {
  return resolveModel(model, {
    onProgress: (file, loaded, total) => process.stderr.write(`\rdownloading ${file}: ${fmtBytes(loaded)}${total ? ` / ${fmtBytes(total)}` : ''}   `),
  });
}

/**
 * Load the model in `dir` (named `name` in messages) and print its settings' warnings, and the
 * notice when f16 is asked for on an adapter without shader-f16 (it then runs f32).
 */
export async function loadModel(gpu: Gpu, dir: string, name: string, precision: Precision = 'f32') {
  const model = await loadEmbeddingModel(gpu, localModelFiles(dir), name, undefined, { precision, warn });
  for (const w of model.settings.warnings) warn(w);
  return model;
}
