// CPU references for shaders/pooling.wgsl, accumulated in float64.

/** out[b, :] = x[b, 0, :]. */
export function clsPoolRef(x: Float32Array, B: number, L: number, H: number): Float32Array {
  const out = new Float32Array(B * H);
  for (let b = 0; b < B; b++) out.set(x.subarray(b * L * H, b * L * H + H), b * H);
  return out;
}

/** sentence-transformers' masked mean: sum(mask * x) / clamp(sum(mask), min = 1e-9). */
export function meanPoolRef(x: Float32Array, mask: Uint32Array, B: number, L: number, H: number): Float64Array {
  const out = new Float64Array(B * H);
  for (let b = 0; b < B; b++) {
    let count = 0;
    for (let l = 0; l < L; l++) count += mask[b * L + l];
    const denom = Math.max(count, 1e-9);
    for (let h = 0; h < H; h++) {
      let s = 0;
      for (let l = 0; l < L; l++) {
        const w = mask[b * L + l];
        if (w) s += w * x[(b * L + l) * H + h];
      }
      out[b * H + h] = s / denom;
    }
  }
  return out;
}

/** torch F.normalize(x, dim=-1): x / max(||x||, 1e-12); norm is the unclamped ||x||. */
export function l2NormalizeRef(x: Float32Array, B: number, H: number): { out: Float64Array; norm: Float64Array } {
  const out = new Float64Array(B * H);
  const norm = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    let ss = 0;
    for (let h = 0; h < H; h++) ss += x[b * H + h] ** 2;
    norm[b] = Math.sqrt(ss);
    const d = Math.max(norm[b], 1e-12);
    for (let h = 0; h < H; h++) out[b * H + h] = x[b * H + h] / d;
  }
  return { out, norm };
}
