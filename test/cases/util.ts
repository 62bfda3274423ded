// Deterministic data for kernel cases (browser-safe: no node:*).

// Mulberry32, the same generator the data code seeds its sampling with.
import { rng } from '../../core/data/pairs.ts';

export { rng };

/** Uniform(-scale, scale) floats. */
export function randu(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (r() * 2 - 1) * scale;
  return out;
}
