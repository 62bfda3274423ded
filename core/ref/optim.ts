// CPU references for core/kernels/optim.ts, in float64.

import type { AdamwOptions } from '../kernels/optim.ts';

/**
 * One torch.optim.AdamW step on one parameter (see shaders/optim.wgsl for the formula),
 * returning the new p, m, v; the inputs are not modified.
 */
export function adamwRef(
  p: ArrayLike<number>,
  g: ArrayLike<number>,
  m: ArrayLike<number>,
  v: ArrayLike<number>,
  decay: boolean,
  o: AdamwOptions,
): { p: Float64Array; m: Float64Array; v: Float64Array } {
  const n = p.length;
  const out = { p: new Float64Array(n), m: new Float64Array(n), v: new Float64Array(n) };
  const keep = decay ? 1 - o.lr * o.weightDecay : 1;
  const stepSize = o.lr / (1 - o.beta1 ** o.step);
  const bc2Sqrt = Math.sqrt(1 - o.beta2 ** o.step);
  const scale = o.gradScale ?? 1;
  for (let i = 0; i < n; i++) {
    const gi = g[i] * scale;
    const mi = o.beta1 * m[i] + (1 - o.beta1) * gi;
    const vi = o.beta2 * v[i] + (1 - o.beta2) * gi * gi;
    out.m[i] = mi;
    out.v[i] = vi;
    out.p[i] = p[i] * keep - (stepSize * mi) / (Math.sqrt(vi) / bc2Sqrt + o.eps);
  }
  return out;
}

/** Sum of squares of every element of every gradient. */
export function gradNormSquaredRef(grads: readonly ArrayLike<number>[]): number {
  let s = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) s += g[i] * g[i];
  return s;
}
