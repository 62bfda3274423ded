// CPU reference for shaders/dropout.wgsl: the same triple32 hash and keep rule (core/util/random.ts)
// and the same f32 product.

import { type DropoutSpec, dropKey, dropScale, dropThreshold, triple32 } from '../util/random.ts';

export type { DropoutSpec } from '../util/random.ts';

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
