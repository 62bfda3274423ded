// Seeded randomness shared by training, data sampling, benches and tests: the Mulberry32
// generator, uniform test data, and the triple32 hash that decides dropout masks on the GPU
// (shaders/dropout.wgsl) and on the CPU (core/ref/dropout.ts) alike. u32 arithmetic is
// written with Math.imul and >>> 0, which wrap like WGSL's u32.

/** Mulberry32: a small, fast, seedable generator of uniform floats in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n uniform floats in (-scale, scale) from rng(seed): inputs for benches and kernel tests. */
export function randu(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (r() * 2 - 1) * scale;
  return out;
}

/** Chris Wellons' triple32 integer hash (hash-prospector), in wrapping u32 arithmetic. */
export function triple32(x: number): number {
  x = (x ^ (x >>> 17)) >>> 0;
  x = Math.imul(x, 0xed5ad4bb) >>> 0;
  x = (x ^ (x >>> 11)) >>> 0;
  x = Math.imul(x, 0xac4c1b51) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x31848bab) >>> 0;
  return (x ^ (x >>> 14)) >>> 0;
}

/** One dropout site: element i is zeroed when triple32(i ^ dropKey(seed)) < dropThreshold(p). */
export interface DropoutSpec {
  /** Probability of zeroing an element, in [0, 1). */
  p: number;
  /** The site's seed (u32). */
  seed: number;
}

/** The per-site key the kernel xors every element index with. */
export function dropKey(seed: number): number {
  return triple32(seed >>> 0);
}

/** Elements whose hash is below this are dropped: floor(p * 2^32), so P(drop) = p to 2^-32. */
export function dropThreshold(p: number): number {
  if (!(p >= 0 && p < 1)) throw new Error(`dropout probability must be in [0, 1), got ${p}`);
  return Math.min(Math.floor(p * 2 ** 32), 2 ** 32 - 1);
}

/** 1 / (1 - p) rounded to f32, the factor kept elements are multiplied by. */
export function dropScale(p: number): number {
  return Math.fround(1 / (1 - p));
}
