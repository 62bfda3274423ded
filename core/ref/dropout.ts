// CPU reference for shaders/dropout.wgsl: the same triple32 hash in u32 arithmetic (Math.imul
// and >>> 0 wrap like WGSL's u32), the same keep rule and the same f32 product.

export interface DropoutSpec {
  /** Probability of zeroing an element, in [0, 1). */
  p: number;
  /** The site's seed (u32). */
  seed: number;
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

/** keep[i] = 1 when element i of a site with this seed survives. */
export function dropoutMaskRef(n: number, d: DropoutSpec): Uint8Array {
  const t = dropThreshold(d.p);
  const keep = new Uint8Array(n);
  const key = dropKey(d.seed);
  for (let i = 0; i < n; i++) keep[i] = triple32((i ^ key) >>> 0) >= t ? 1 : 0;
  return keep;
}

/** out = keep ? x * scale : 0 (the forward; the backward is the same on dout). */
export function dropoutRef(x: ArrayLike<number>, d: DropoutSpec): Float32Array {
  const keep = dropoutMaskRef(x.length, d);
  const s = dropScale(d.p);
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = keep[i] ? Math.fround(x[i] * s) : 0;
  return out;
}
