// f16 helpers and cases of the matmul family, listed in matmulCases (test/cases/matmul.ts, where
// the tolerance model is stated): uploads and readback of either dtype, the refusal check for
// adapters without 'shader-f16', linear/dense forward in f16, colsum and dense backward of f16
// activations into f32 gradients, and the dtype errors.

import type { Gpu } from '../../core/gpu/device.ts';
import type { Tensor } from '../../core/gpu/tensor.ts';
import { fromHalf, roundHalf, toHalf } from '../../core/gpu/half.ts';
import { colsum, denseBackward, denseForward, linear, matmul, stagesTransposed } from '../../core/kernels/matmul.ts';
import { transpose } from '../../core/kernels/transpose.ts';
import { matmulRef } from '../../core/ref/matmul.ts';
import { chunkRows } from '../../core/gpu/launch.ts';
import { colsumRef, denseBackwardRef } from '../../core/ref/matmul.ts';
import type { Check, KernelCase, Tol } from './types.ts';
import { randu } from './util.ts';
import { nanHalf, refusalCheck } from './half-io.ts';
import { nanTensor, withBindingLimit } from './elementwise.ts';

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

/**
 * The bound for f16 operands with an f32 out (test/cases/matmul.ts): a product of two f16 values
 * is exact in f32, so only the f32 sum of n terms errs, at most (n + 3) 2^-24 max(absSum) (+3:
 * alpha, bias, accumulate), nothing rounds to f16 and nothing flushes.
 */
export function matmulTolF32Out(n: number, absSum: ArrayLike<number>): Tol {
  let max = 0;
  for (let i = 0; i < absSum.length; i++) max = Math.max(max, absSum[i]);
  return { atol: (n + 3) * U * max };
}

/** Most additions on any path of colsum's block-sum tree over R rows (blockRows 64), + 1 for accumulate. */
export function colsumTerms(R: number): number {
  let n = 1;
  for (; R > 64; R = Math.ceil(R / 64)) n += 64;
  return n + R;
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
 * Dtype combinations outside matmul's rule (operands alike; out f32, or f16 with f16 operands;
 * bias like out; accumulate into f32) and outside denseBackward's and colsum's are one-line
 * errors naming the tensor (checked whether or not the adapter has 'shader-f16': nothing is
 * dispatched).
 */
export const dtypeErrorsCase: KernelCase = {
  name: 'dtype mismatches and combinations outside the rules are one-line errors',
  async run(gpu) {
    const h = (shape: number[]) => gpu.empty(shape, 'f16');
    const f = (shape: number[]) => gpu.empty(shape);
    const made: Tensor[] = [];
    const t = (x: Tensor) => (made.push(x), x);
    const expect: [string, () => void, RegExp][] = [
      ['f32 b', () => matmul(gpu, t(h([4, 7])), t(h([4, 6])), t(f([6, 7]))), /^matmul: b \(a is f16\): expected f16 elements, got f32 Tensor<f32>\[6, 7\]$/],
      ['f16 out with f32 a', () => matmul(gpu, t(h([4, 7])), t(f([4, 6])), t(f([6, 7]))), /^matmul: out \(a is f32\): expected f32 elements, got f16 Tensor<f16>\[4, 7\]$/],
      ['u32 out with f16 a', () => matmul(gpu, t(gpu.empty([4, 7], 'u32')), t(h([4, 6])), t(h([6, 7]))), /^matmul: out \(a is f16\): expected f16 or f32 elements, got u32/],
      ['f32 bias, f16 out', () => linear(gpu, t(h([4, 7])), t(h([4, 6])), t(h([7, 6])), t(f([7]))), /^matmul: bias \(out is f16\): expected f16 elements, got f32/],
      ['f16 bias, f32 out', () => linear(gpu, t(f([4, 7])), t(h([4, 6])), t(h([7, 6])), t(h([7]))), /^matmul: bias \(out is f32\): expected f32 elements, got f16/],
      ['f16 b with f32 a', () => denseForward(gpu, t(f([4, 7])), t(f([4, 6])), t(h([6, 7])), null), /^matmul: b \(a is f32\): expected f32 elements, got f16/],
      ['accumulate into f16', () => matmul(gpu, t(h([4, 7])), t(h([6, 4])), t(h([6, 7])), { transA: true, accumulate: true }), /^matmul: accumulate needs an f32 out \(an f16 running sum would be rounded at every call\), got out Tensor<f16>\[4, 7\]$/],
      ['dense backward f32 dx', () => denseBackward(gpu, { dx: t(f([4, 6])) }, t(h([4, 7])), t(h([4, 6])), t(h([6, 7]))), /^dense backward: dx \(dy is f16\): expected f16 elements, got f32 Tensor<f32>\[4, 6\]$/],
      ['dense backward f32 x', () => denseBackward(gpu, {}, t(h([4, 7])), t(f([4, 6])), t(h([6, 7]))), /^dense backward: x \(dy is f16\): expected f16 elements, got f32/],
      ['dense backward f16 dwt', () => denseBackward(gpu, { dwt: t(h([6, 7])) }, t(h([4, 7])), t(h([4, 6])), t(h([6, 7]))), /^dense backward: dwt \(a parameter gradient\): expected f32 elements, got f16/],
      ['dense backward f16 db', () => denseBackward(gpu, { db: t(h([7])) }, t(f([4, 7])), t(f([4, 6])), t(f([6, 7]))), /^dense backward: db \(a parameter gradient\): expected f32 elements, got f16/],
      ['colsum f16 out', () => colsum(gpu, t(h([7])), t(h([4, 7]))), /^colsum: out \(the sums are f32\): expected f32 elements, got f16/],
      ['colsum u32 x', () => colsum(gpu, t(f([7])), t(gpu.empty([4, 7], 'u32'))), /^colsum: x Tensor<u32>\[4, 7\] must be f32 or f16$/],
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

/**
 * colsum of an f16 x into an f32 out: 4500 rows (block sums of block sums, the first pass F16,
 * the others f32), and a single pass accumulating. Tolerance matmulTolF32Out(colsumTerms(R)).
 */
export const colsumF16Cases: KernelCase[] = [
  { rows: 4500, C: 5, accumulate: false, dispatches: 3 },
  { rows: 37, C: 3, accumulate: true, dispatches: 1 },
].map(({ rows, C, accumulate, dispatches }, i) => ({
  name: `colsum x[${rows},${C}]${accumulate ? ' accumulate' : ''} f16`,
  async run(gpu: Gpu): Promise<Check[]> {
    const x = randu(rows * C, 9900 + i), prev = accumulate ? randu(C, 9910 + i) : undefined;
    const tx = upload(gpu, x, [rows, C], true);
    const out = prev ? gpu.upload(prev, [C]) : nanTensor(gpu, [C]);
    const launch = () => colsum(gpu, out, tx, { accumulate });
    if (!gpu.features.has('shader-f16')) return refusalCheck(launch, [tx, out]);
    const before = gpu.stats.dispatches;
    launch();
    const n = gpu.stats.dispatches - before;
    const actual = await gpu.readF32(out);
    for (const t of [tx, out]) t.release();
    const ref = colsumRef(roundHalf(x), rows, C, prev);
    return [
      { name: 'out', actual, expected: ref.out, tol: matmulTolF32Out(colsumTerms(rows), ref.absSum) },
      { name: 'dispatches', actual: [n], expected: [dispatches], tol: { atol: 0 } }, // exact: the passes ran
    ];
  },
}));

// ---------------------------------------------------------------- dense backward, f16
//
// dy, x, wt f16 (the reference sees them rounded), dx f16, dwt and db f32. dx = dy wt^T is an
// f16 product (matmulTolF16, nOut terms); dwt = x^T dy an f32-out one over R rows, plus one
// rounding per K chunk when the rows are split (matmulTolF32Out(R + chunks)); db the f32
// column sum (matmulTolF32Out(colsumTerms(R))). A second run must give the same bits. dy
// scales: training's gradients are small before loss scaling and large after it, so one spec
// has |dy| in [0.7, 1.3] 1e-4 (still f16 normals, above 2^-14 = 6.1e-5: subnormal inputs may
// be flushed by WGSL implementations) and one |dy| up to 1000 (|dx| stays under 65504).

interface DenseF16Spec {
  lead: number[];
  nIn: number;
  nOut: number;
  accumulate?: boolean;
  /** Lowered storage binding limit (bytes): x, dy and dx are split into row chunks. */
  limit?: number;
  /** dy = U(-1, 1) * scale, or 'tiny': +-(1 + U(-0.3, 0.3)) 1e-4. */
  dy?: number | 'tiny';
}

const denseF16Specs: DenseF16Spec[] = [
  { lead: [1], nIn: 1, nOut: 1 },
  { lead: [1], nIn: 37, nOut: 19, accumulate: true },
  { lead: [3, 5], nIn: 24, nOut: 40 },
  { lead: [130], nIn: 33, nOut: 17, accumulate: true }, // two-pass colsum, odd sizes
  { lead: [4, 33], nIn: 384, nOut: 96 }, // the encoder's width
  { lead: [3, 7], nIn: 13, nOut: 10, dy: 'tiny', accumulate: true },
  { lead: [3, 7], nIn: 13, nOut: 10, dy: 1000 },
  // 4096-byte limit: f16 rows of x 48 B, of dy 80 B: dx and dwt in chunks of 48 rows, colsum too
  { lead: [200], nIn: 24, nOut: 40, accumulate: true, limit: 4096 },
];

function denseInputs(s: DenseF16Spec, R: number, seed: number): { x: Float32Array; wt: Float32Array; dy: Float32Array } {
  const x = randu(R * s.nIn, seed), wt = randu(s.nIn * s.nOut, seed + 1);
  let dy: Float32Array;
  if (s.dy === 'tiny') {
    const u = randu(R * s.nOut, seed + 2, 0.3);
    dy = u.map((v, i) => (i % 2 ? -1 : 1) * (1 + v) * 1e-4);
  } else dy = randu(R * s.nOut, seed + 2, s.dy ?? 1);
  return { x, wt, dy };
}

async function runDenseF16(gpu: Gpu, s: DenseF16Spec, seed: number): Promise<Check[]> {
  const R = s.lead.reduce((a, b) => a * b, 1);
  const { nIn, nOut } = s;
  const raw = denseInputs(s, R, seed);
  const [x, wt, dy] = [roundHalf(raw.x), roundHalf(raw.wt), roundHalf(raw.dy)];
  const prev = s.accumulate ? { dwt: randu(nIn * nOut, seed + 3), db: randu(nOut, seed + 4) } : {};
  const tx = upload(gpu, x, [...s.lead, nIn], true), twt = upload(gpu, wt, [nIn, nOut], true), tdy = upload(gpu, dy, [...s.lead, nOut], true);
  const outputs = () => ({
    dx: nanHalf(gpu, [...s.lead, nIn]),
    dwt: prev.dwt ? gpu.upload(prev.dwt, [nIn, nOut]) : nanTensor(gpu, [nIn, nOut]),
    db: prev.db ? gpu.upload(prev.db, [nOut]) : nanTensor(gpu, [nOut]),
  });
  if (!gpu.features.has('shader-f16')) {
    const g = outputs();
    return refusalCheck(() => denseBackward(gpu, { ...g, accumulate: s.accumulate }, tdy, tx, twt), [tx, twt, tdy, g.dx, g.dwt, g.db]);
  }
  const run = async () => {
    const g = outputs();
    const { dispatches } = await withBindingLimit(gpu, s.limit ?? gpu.limits.maxBinding, () => denseBackward(gpu, { ...g, accumulate: s.accumulate }, tdy, tx, twt));
    const r = { dx: await readBack(gpu, g.dx), dwt: await gpu.readF32(g.dwt), db: await gpu.readF32(g.db), dispatches };
    for (const t of [g.dx, g.dwt, g.db]) t.release();
    return r;
  };
  const first = await run();
  const second = await run();
  for (const t of [tx, twt, tdy]) t.release();
  const ref = denseBackwardRef(dy, x, wt, R, nIn, nOut, prev);
  const rows = s.limit ? chunkRows([nIn * 2, nOut * 2], s.limit, gpu.limits.offsetAlign) : R;
  const kChunks = Math.ceil(R / rows);
  const acc = s.accumulate ? ' (accumulated)' : '';
  const checks: Check[] = [
    { name: 'dx = dy wt^T (f16)', actual: first.dx, expected: ref.dx.out, tol: matmulTolF16(nOut, ref.dx.absSum) },
    { name: `dwt = x^T dy (f32)${acc}`, actual: first.dwt, expected: ref.dwt.out, tol: matmulTolF32Out(R + kChunks, ref.dwt.absSum) },
    { name: `db = colsum(dy) (f32)${acc}`, actual: first.db, expected: ref.db.out, tol: matmulTolF32Out(colsumTerms(R), ref.db.absSum) },
    // exact: every sum has a fixed order
    { name: 'dx run to run', actual: second.dx, expected: first.dx, tol: { atol: 0 } },
    { name: 'dwt run to run', actual: second.dwt, expected: first.dwt, tol: { atol: 0 } },
    { name: 'db run to run', actual: second.db, expected: first.db, tol: { atol: 0 } },
  ];
  if (s.limit) {
    // exact: dx and dwt went in kChunks pieces (each with a transpose where the adapter stages
    // them), the colsum in row chunks of dy (one block each: rc <= 64) plus the sum of the blocks
    const rc = chunkRows([nOut * 2], s.limit, gpu.limits.offsetAlign);
    const staged = stagesTransposed(gpu) ? 2 : 1;
    checks.push({ name: 'dispatches', actual: [first.dispatches], expected: [2 * staged * kChunks + Math.ceil(R / rc) + 1], tol: { atol: 0 } });
  }
  return checks;
}

export const denseF16Cases: KernelCase[] = denseF16Specs.map((s, i) => ({
  name: `dense backward x[${[...s.lead, s.nIn].join(',')}] wt[${s.nIn},${s.nOut}]${s.accumulate ? ' accumulate' : ''}${s.dy !== undefined ? ` dy=${s.dy}` : ''}${s.limit ? ` maxBinding=${s.limit}` : ''} f16`,
  run: (gpu: Gpu) => runDenseF16(gpu, s, 9700 + 11 * i),
}));
