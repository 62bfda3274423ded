// Inputs and tolerances shared by the f32 cases of test/cases/elementwise.ts (where the
// tolerances are derived) and the f16 ones of test/cases/elementwise-f16.ts, and two helpers
// the other small-kernel case files use.

import type { Gpu } from '../../core/gpu/device.ts';
import type { Tensor } from '../../core/gpu/tensor.ts';
import type { Tol } from './types.ts';
import { randu } from './util.ts';

export const ERF_TOL: Tol = { atol: 5e-7 };
export const GELU_TOL: Tol = { atol: 1e-6, rtol: 3e-7 };
export const GLU_TOL: Tol = { atol: 2e-6, rtol: 4e-7 };
/** gelu'(x) error, for |dout| <= 1 (see the header). */
export const GELU_GRAD_TOL: Tol = { atol: 3e-7, rtol: 2.4e-7 };

/** A new f32 tensor filled with NaN, so an element the kernel forgets to write fails the check. */
export function nanTensor(gpu: Gpu, shape: readonly number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return gpu.upload(new Float32Array(n).fill(NaN), shape);
}

/**
 * Run fn with the device's storage binding limit lowered to `bytes`, so small inputs take the
 * chunked path (Gpu.dispatch enforces the lowered limit too, proving no binding exceeds it).
 * Returns fn's result and how many dispatches it recorded.
 */
export async function withBindingLimit<T>(gpu: Gpu, bytes: number, fn: () => T | Promise<T>): Promise<{ result: T; dispatches: number }> {
  const saved = gpu.limits.maxBinding;
  const before = gpu.stats.dispatches;
  gpu.limits.maxBinding = bytes;
  try {
    const result = await fn();
    return { result, dispatches: gpu.stats.dispatches - before };
  } finally {
    gpu.limits.maxBinding = saved;
  }
}

/** Uniform(-8, 8) plus fixed tail and special points at the front. */
export function geluInput(n: number, seed: number): Float32Array {
  const x = randu(n, seed, 8);
  const special = [0, -0.5, 0.5, -1.41421356, 1.41421356, -2.7, -5.55, 5.55, -10, 10, -30, 30, -1e4, 1e4];
  for (let i = 0; i < Math.min(n, special.length); i++) x[i] = special[i];
  return x;
}

/** up in (-2, 2), gate in (-6, 6): swapping the halves changes the result visibly. */
export function gluInput(rows: number, cols: number, seed: number): Float32Array {
  const up = randu(rows * cols, seed, 2), gate = randu(rows * cols, seed + 1, 6);
  const ug = new Float32Array(rows * 2 * cols);
  for (let r = 0; r < rows; r++) {
    ug.set(up.subarray(r * cols, (r + 1) * cols), r * 2 * cols);
    ug.set(gate.subarray(r * cols, (r + 1) * cols), r * 2 * cols + cols);
  }
  return ug;
}

/** Points where gelu' is delicate: its zero, the erf region joins (x = sqrt 2, 5.55), the tails. */
export const GELU_GRAD_POINTS = [0, -0.7517916, 0.7517916, -1.41421356, 1.41421356, -2.5, 2.5, -5.55, 5.55, -8, 8, -14, 14, -30, 30, -1e4, 1e4];

/** The up (gate = false) or gate (true) columns of a [rows, 2 * cols] GEGLU operand, as [rows, cols]. */
export function gluHalf(a: ArrayLike<number>, rows: number, cols: number, gate: boolean): Float64Array {
  const h = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) h[r * cols + c] = a[r * 2 * cols + (gate ? cols : 0) + c];
  return h;
}
