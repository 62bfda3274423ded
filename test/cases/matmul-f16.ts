// f16 helpers and cases of the matmul family, listed in matmulCases (test/cases/matmul.ts, where
// the tolerance model is stated): uploads and readback of either dtype, the refusal check for
// adapters without 'shader-f16', linear/dense forward in f16 and the dtype errors.

import type { Gpu } from '../../core/gpu/device.ts';
import type { Tensor } from '../../core/gpu/tensor.ts';
import { fromHalf, roundHalf, toHalf } from '../../core/gpu/half.ts';
import { colsum, denseBackward, denseForward, linear, matmul } from '../../core/kernels/matmul.ts';
import { transpose } from '../../core/kernels/transpose.ts';
import { matmulRef } from '../../core/ref/matmul.ts';
import type { Check, KernelCase, Tol } from './types.ts';
import { randu } from './util.ts';
import { refusalCheck } from './half-io.ts';

const U = 2 ** -24;

/**
 * The f16 bound of test/cases/matmul.ts: an f32 sum of K terms (worst case), then one rounding
 * to f16 in whichever direction the implementation rounds (< 1 ulp), or a flush below 2^-14.
 */
export function matmulTolF16(K: number, absSum: ArrayLike<number>): Tol {
  let max = 0;
  for (let i = 0; i < absSum.length; i++) max = Math.max(max, absSum[i]);
  const e = (K + 3) * U * max;
  return { atol: e * (1 + 2 ** -10) + 2 ** -14, rtol: 2 ** -10 };
}

/** Uploads x as f16 bits (rounded to nearest even) or as f32. */
export const upload = (gpu: Gpu, x: Float32Array, shape: readonly number[], f16: boolean) => (f16 ? gpu.upload(toHalf(x), shape) : gpu.upload(x, shape));
/** An f16 tensor's values as f32, or an f32 tensor's. */
export const readBack = async (gpu: Gpu, t: Tensor) => (t.dtype === 'f16' ? fromHalf((await gpu.read(t)) as Uint16Array) : await gpu.readF32(t));


/** linear (transB) and denseForward with f16 operands, 3-D and 1-D x, with and without bias. */
export const forwardF16Case: KernelCase = {
  name: 'linear x[2,5,24] w[12,24] + bias, dense x[3,5] wt[5,7] and 1-D x f16',
  async run(gpu) {
    const x = randu(2 * 5 * 24, 17), w = randu(12 * 24, 18), bias = randu(12, 19);
    const xd = randu(3 * 5, 20), wt = randu(5 * 7, 21);
    const tx = upload(gpu, x, [2, 5, 24], true), tw = upload(gpu, w, [12, 24], true), tb = upload(gpu, bias, [12], true);
    const txd = upload(gpu, xd, [3, 5], true), twt = upload(gpu, wt, [5, 7], true);
    const out = gpu.empty([2, 5, 12], 'f16'), yd = gpu.empty([3, 7], 'f16'), y1 = gpu.empty([7], 'f16');
    const all = [tx, tw, tb, txd, twt, out, yd, y1];
    const launch = () => {
      linear(gpu, out, tx, tw, tb);
      denseForward(gpu, yd, txd, twt, null);
      denseForward(gpu, y1, txd.reshape([15]).rows(0, 5), twt, null); // row 0 as a 1-D x
    };
    if (!gpu.features.has('shader-f16')) {
      const checks = refusalCheck(launch);
      for (const t of all) t.release();
      return checks;
    }
    launch();
    const [gl, gd, g1] = [await readBack(gpu, out), await readBack(gpu, yd), await readBack(gpu, y1)];
    for (const t of all) t.release();
    const rl = matmulRef(roundHalf(x), roundHalf(w), 10, 24, 12, { transB: true, bias: roundHalf(bias) });
    const rd = matmulRef(roundHalf(xd), roundHalf(wt), 3, 5, 7);
    const r1 = matmulRef(roundHalf(xd).subarray(0, 5), roundHalf(wt), 1, 5, 7);
    return [
      { name: 'linear', actual: gl, expected: rl.out, tol: matmulTolF16(24, rl.absSum) },
      { name: 'dense', actual: gd, expected: rd.out, tol: matmulTolF16(5, rd.absSum) },
      { name: 'dense (1-D x)', actual: g1, expected: r1.out, tol: matmulTolF16(5, r1.absSum) },
    ];
  },
};

/**
 * Mixed dtypes are an error naming both operands, and the backward's f16 refusals are one
 * line each (checked whether or not the adapter has 'shader-f16': nothing is dispatched).
 */
export const dtypeErrorsCase: KernelCase = {
  name: 'dtype mismatch and f32-only backward refuse f16',
  async run(gpu) {
    const h = (shape: number[]) => gpu.empty(shape, 'f16');
    const f = (shape: number[]) => gpu.empty(shape);
    const made: Tensor[] = [];
    const t = (x: Tensor) => (made.push(x), x);
    const expect: [string, () => void, RegExp][] = [
      ['f32 b', () => matmul(gpu, t(h([4, 7])), t(h([4, 6])), t(f([6, 7]))), /^matmul: b \(a is f16\): expected f16 elements, got f32 Tensor<f32>\[6, 7\]$/],
      ['f32 out', () => matmul(gpu, t(f([4, 7])), t(h([4, 6])), t(h([6, 7]))), /^matmul: out \(a is f16\): expected f16 elements, got f32/],
      ['f32 bias', () => linear(gpu, t(h([4, 7])), t(h([4, 6])), t(h([7, 6])), t(f([7]))), /^matmul: bias \(a is f16\): expected f16 elements, got f32/],
      ['f16 b with f32 a', () => denseForward(gpu, t(f([4, 7])), t(f([4, 6])), t(h([6, 7])), null), /^matmul: b \(a is f32\): expected f32 elements, got f16/],
      ['transA', () => matmul(gpu, t(h([4, 7])), t(h([6, 4])), t(h([6, 7])), { transA: true }), /^matmul: transA is f32-only/],
      ['accumulate', () => matmul(gpu, t(h([4, 7])), t(h([4, 6])), t(h([6, 7])), { accumulate: true }), /^matmul: accumulate is f32-only/],
      ['dense backward', () => denseBackward(gpu, { dx: t(h([4, 6])) }, t(h([4, 7])), t(h([4, 6])), t(h([6, 7]))), /^dense backward: dx Tensor<f16>\[4, 6\] must be f32 \(the backward is f32-only\)$/],
      ['colsum', () => colsum(gpu, t(f([7])), t(h([4, 7]))), /^colsum: x Tensor<f16>\[4, 7\] must be f32/],
      ['transpose', () => transpose(gpu, t(f([6, 4])), t(h([4, 6]))), /^transpose: out \(a is f16\): expected f16 elements, got f32/],
    ];
    const checks: Check[] = [];
    for (const [name, fn, re] of expect) {
      let msg = '(no error)';
      try {
        fn();
      } catch (e) {
        msg = (e as Error).message;
      }
      if (!re.test(msg)) throw new Error(`${name}: expected ${re}, got: ${msg}`);
      checks.push({ name, actual: [1], expected: [1], tol: { atol: 0 } });
    }
    for (const x of made) x.release();
    return checks;
  },
};
