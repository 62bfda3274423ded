// CPU references for shaders/pooling.wgsl, accumulated in float64, each backward below its
// forward. Inputs may be f32 or f64 arrays (the gradient checker evaluates forwards in f64).

/** out[b, :] = x[b, 0, :]. */
export function clsPoolRef(x: Float32Array, B: number, L: number, H: number): Float32Array {
  const out = new Float32Array(B * H);
  for (let b = 0; b < B; b++) out.set(x.subarray(b * L * H, b * L * H + H), b * H);
  return out;
}

/** dx[b, 0, :] = dout[b, :], 0 elsewhere. */
export function clsPoolBackwardRef(dout: ArrayLike<number>, B: number, L: number, H: number): Float64Array {
  const dx = new Float64Array(B * L * H);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) dx[b * L * H + h] = dout[b * H + h];
  return dx;
}

/** sentence-transformers' masked mean: sum(mask * x) / clamp(sum(mask), min = 1e-9). */
export function meanPoolRef(x: ArrayLike<number>, mask: ArrayLike<number>, B: number, L: number, H: number): Float64Array {
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

/** dx[b, l, :] = mask[b, l] * dout[b, :] / max(sum_l mask[b, l], 1e-9). */
export function meanPoolBackwardRef(dout: ArrayLike<number>, mask: ArrayLike<number>, B: number, L: number, H: number): Float64Array {
  const dx = new Float64Array(B * L * H);
  for (let b = 0; b < B; b++) {
    let count = 0;
    for (let l = 0; l < L; l++) count += mask[b * L + l];
    const denom = Math.max(count, 1e-9);
    for (let l = 0; l < L; l++) {
      const w = mask[b * L + l];
      for (let h = 0; h < H; h++) dx[(b * L + l) * H + h] = (w * dout[b * H + h]) / denom;
    }
  }
  return dx;
}

/** torch F.normalize(x, dim=-1): x / max(||x||, 1e-12); norm is the unclamped ||x||. */
export function l2NormalizeRef(x: ArrayLike<number>, B: number, H: number): { out: Float64Array; norm: Float64Array } {
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

/**
 * Gradient of sum(dout * normalize(x)) in float64, norms recomputed: (dout - out (out . dout)) / n
 * where n = ||x|| >= 1e-12, else dout / 1e-12.
 */
export function l2NormalizeBackwardRef(dout: ArrayLike<number>, x: ArrayLike<number>, B: number, H: number): Float64Array {
  const dx = new Float64Array(B * H);
  for (let b = 0; b < B; b++) {
    let ss = 0;
    let dot = 0;
    for (let h = 0; h < H; h++) {
      ss += x[b * H + h] ** 2;
      dot += x[b * H + h] * dout[b * H + h];
    }
    const n = Math.sqrt(ss);
    for (let h = 0; h < H; h++) {
      const i = b * H + h;
      dx[i] = n >= 1e-12 ? (dout[i] - (x[i] * dot) / (n * n)) / n : dout[i] / 1e-12;
    }
  }
  return dx;
}
