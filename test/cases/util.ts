// Deterministic data for kernel cases (browser-safe: no node:*): Mulberry32, the generator the
// data code seeds its sampling with, and uniform floats from it.

export { randu, rng } from '../../core/util/random.ts';
