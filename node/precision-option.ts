// `--precision f32|f16` of the commands that run the encoder (embed, index, search, mine).
// Imported on every start to register the commands, so it imports nothing but commander.

import { Option } from 'commander';

export type PrecisionChoice = 'f32' | 'f16';

/** With a `fallback` it has no default value: the action fills it in (search and mine take the index's). */
export function precisionOption(fallback?: string): Option {
  const o = new Option('--precision <p>', `storage type of the model's weights and activations; f16 needs shader-f16, without it the command says so and runs f32 (default: ${fallback ?? 'f32'})`).choices(['f32', 'f16']);
  return fallback ? o : o.default('f32');
}
