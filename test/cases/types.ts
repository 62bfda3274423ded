// Kernel conformance cases: one list per kernel family, run unchanged by the Node tests
// (test/*.test.ts) and in real Chromium WebGPU (test/browser). Cases import only core/ and
// core/ref/, never node:* or the DOM.

import type { Gpu } from '../../core/gpu/device.ts';

export interface Tol {
  atol: number;
  rtol?: number;
}

/** One compared tensor: GPU result vs CPU reference, with the tolerance and why. */
export interface Check {
  name: string;
  actual: ArrayLike<number>;
  expected: ArrayLike<number>;
  tol: Tol;
}

export interface KernelCase {
  name: string;
  run(gpu: Gpu): Promise<Check[]>;
}

export interface CheckResult {
  name: string;
  ok: boolean;
  maxAbs: number;
  maxRef: number;
  message: string;
}

/** |a - b| <= atol + rtol * |b| everywhere; NaN or length mismatch fails. */
export function evaluate(c: Check): CheckResult {
  const rtol = c.tol.rtol ?? 0;
  let maxAbs = 0;
  let maxRef = 0;
  let bad = -1;
  if (c.actual.length !== c.expected.length) {
    return { name: c.name, ok: false, maxAbs: NaN, maxRef: NaN, message: `${c.name}: length ${c.actual.length} vs ${c.expected.length}` };
  }
  for (let i = 0; i < c.actual.length; i++) {
    const d = Math.abs(c.actual[i] - c.expected[i]);
    if (!(d <= maxAbs)) maxAbs = d; // NaN propagates
    maxRef = Math.max(maxRef, Math.abs(c.expected[i]));
    if (bad < 0 && !(d <= c.tol.atol + rtol * Math.abs(c.expected[i]))) bad = i;
  }
  const ok = bad < 0;
  const message = ok
    ? `${c.name}: maxdiff ${maxAbs.toExponential(2)}`
    : `${c.name}: element ${bad} is ${c.actual[bad]}, expected ${c.expected[bad]} (atol ${c.tol.atol}, rtol ${rtol}); maxdiff ${maxAbs.toExponential(3)}`;
  return { name: c.name, ok, maxAbs, maxRef, message };
}

/** Lowest cosine between matching rows of two [rows, dim] matrices, and the row where it occurs. */
export function minRowCosine(a: ArrayLike<number>, b: ArrayLike<number>, dim: number): { cos: number; row: number } {
  let worst = { cos: 1, row: -1 };
  for (let i = 0; i < a.length / dim; i++) {
    let dot = 0, na = 0, nb = 0;
    for (let k = 0; k < dim; k++) {
      const x = a[i * dim + k], y = b[i * dim + k];
      dot += x * y;
      na += x * x;
      nb += y * y;
    }
    const cos = dot / Math.sqrt(na * nb);
    if (!(cos >= worst.cos)) worst = { cos, row: i }; // NaN counts as worst
  }
  return worst;
}
