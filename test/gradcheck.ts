// Finite-difference gradient checks in float64 (browser-safe: the kernel cases in test/cases
// use it, and they also run in Chromium).
//
// A backward kernel computes the vector-Jacobian product dL/dinput for L = sum_i R[i] f(x)[i],
// where R is the dout it is given. The check evaluates a float64 forward f at the same f32
// inputs and compares each gradient with central differences
//   dL/dx_j ~ sum_i R[i] (f(x + h e_j)[i] - f(x - h e_j)[i]) / ((x_j + h) - (x_j - h)).
// The difference is taken per output element before projecting (no cancellation between two
// large sums), and the denominator is the step actually taken in float64.
//
// Error budget, for inputs and outputs of size ~1 (scale it by the input's own scale: pass a
// step relative to how fast f varies, e.g. the std of a LayerNorm row, not its mean):
// - truncation h^2 |f'''| / 6 = 2e-13 at h = 1e-6;
// - rounding of f in float64, ~1e-16 |f| per element, divided by 2h: ~1e-10;
// so the numeric gradient is good to ~1e-10 of the gradient's scale. The GPU gradient is f32:
// each value is a few roundings (u = 6e-8) plus, for reductions of n terms, ~4 sqrt(n) u of
// the sum of the terms' magnitudes: ~1e-7..1e-6 of the gradient's scale on the tiny shapes
// used here. Gradient checks therefore compare with atol = rtol * scale, where scale is the
// largest numeric gradient (or a floor given by the case, for gradients that are all zero),
// and rtol 1e-5: ten times the f32 budget, while a wrong formula (a dropped term, tanh GELU's
// derivative, a missing clamp) misses by 1e-4..1.

import type { Check } from './cases/types.ts';
import { randu } from './cases/util.ts';

export const GRAD_RTOL = 1e-5;

export interface GradInput {
  name: string;
  /** The point to differentiate at: the same (f32) values the GPU saw. */
  value: ArrayLike<number>;
  /** The gradient to check (GPU), same length as value; omit to only hold the point. */
  grad?: ArrayLike<number>;
  /** Absolute central-difference step, one for all elements or one per element. Default 1e-6. */
  step?: number | ArrayLike<number>;
  /** Floor of the gradient scale for the tolerance (for gradients that are zero by design). */
  scale?: number;
  /** Overrides the spec's rtol for this input. */
  rtol?: number;
}

export interface GradCheckSpec {
  /** float64 forward over all inputs, in input order. */
  f: (xs: Float64Array[]) => ArrayLike<number>;
  inputs: GradInput[];
  /** The projection, i.e. the dout the GPU backward was given (f32 values). */
  R: ArrayLike<number>;
  rtol?: number;
}

/** A projection R ~ U(-1, 1) in f32, to upload as dout and to use in float64 unchanged. */
export function projection(n: number, seed: number): Float32Array {
  return randu(n, seed);
}

/** Central-difference gradient of sum(R * f(xs)) with respect to xs[k] (see the header). */
export function numericGrad(
  f: (xs: Float64Array[]) => ArrayLike<number>,
  point: readonly ArrayLike<number>[],
  R: ArrayLike<number>,
  k: number,
  step: number | ArrayLike<number> = 1e-6,
): Float64Array {
  const xs = point.map((v) => Float64Array.from(v));
  const x = xs[k];
  const g = new Float64Array(x.length);
  for (let j = 0; j < x.length; j++) {
    const x0 = x[j];
    const h = typeof step === 'number' ? step : step[j];
    const xp = x0 + h;
    const xm = x0 - h;
    x[j] = xp;
    const fp = Float64Array.from(f(xs));
    x[j] = xm;
    const fm = f(xs);
    x[j] = x0;
    if (fp.length !== R.length || fm.length !== R.length) throw new Error(`numericGrad: f has ${fp.length} outputs, R has ${R.length}`);
    let s = 0;
    for (let i = 0; i < fp.length; i++) {
      const d = fp[i] - fm[i];
      if (d !== 0) s += R[i] * d;
    }
    g[j] = s / (xp - xm);
  }
  return g;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** One Check per input with a grad: the GPU gradient against central differences. */
export function gradChecks(spec: GradCheckSpec): Check[] {
  const point = spec.inputs.map((i) => i.value);
  const checks: Check[] = [];
  spec.inputs.forEach((inp, k) => {
    if (!inp.grad) return;
    if (inp.grad.length !== inp.value.length) throw new Error(`gradChecks: d${inp.name} has ${inp.grad.length} values for ${inp.value.length} inputs`);
    const numeric = numericGrad(spec.f, point, spec.R, k, inp.step);
    const rtol = inp.rtol ?? spec.rtol ?? GRAD_RTOL;
    const scale = Math.max(maxAbs(numeric), inp.scale ?? 0);
    const atol = rtol * scale;
    checks.push({
      name: `d${inp.name} vs central differences (atol ${rtol} x scale ${scale.toPrecision(3)})`,
      actual: inp.grad,
      expected: numeric,
      tol: { atol },
    });
  });
  return checks;
}
