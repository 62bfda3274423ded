// f16 cases of the elementwise training kernels (gelu and glu backward, accumulate), listed in
// elementwiseCases. Inputs are rounded to f16 on the host (half-io.ts) and the float64
// reference runs on exactly those values; the GPU computes in f32 as in the f32 cases and
// rounds each output to f16 once. Tolerances, from that rounding model:
// - gelu backward: the f32 case's bound, GELU_GRAD_TOL with atol scaled by D = max|dout|,
//   widened by the output rounding: halfOutTol (rtol + 2^-10, atol + 2^-24 for subnormals).
// - glu backward: the f32 bounds scaled by D (d up: GELU_TOL, d gate: twice GELU_GRAD_TOL as
//   |up| <= 2, each + 2^-24 relative for the product's rounding), widened by halfOutTol.
// - accumulate: the single f32 add of the reference (exact: addRef), rounded to f16 once:
//   halfOutTol({ atol: 0 }).
// Training gradients are small, or large under loss scaling: the gelu and glu cases run with
// dout ~1e-4 (dx partly f16 subnormal, covered by the 2^-24 atol) and large dout (gelu 3e4,
// glu 5e3 as |gelu(gate)| <= 6: outputs up to ~3.4e4, inside f16's 65504). One gelu element
// overflows: 65504 * gelu'(3) = 66294 >= 2^16, which WGSL must round to +inf (only values
// between 65504 and 2^16 may go either way); checked apart since inf - inf is NaN.
// Awkward shapes: odd lengths (f16 bindings of 2 mod 4 bytes), odd glu widths, chunked
// dispatches whose starts must be 128-row aligned at 2-byte elements.

import type { Gpu } from '../../core/gpu/device.ts';
import { accumulateForward, geluBackward, gluBackward } from '../../core/kernels/elementwise.ts';
import { addRef, geluBackwardRef, gluBackwardRef } from '../../core/ref/elementwise.ts';
import { GELU_GRAD_POINTS, GELU_GRAD_TOL, GELU_TOL, geluInput, gluInput, withBindingLimit, gluHalf } from './elementwise-inputs.ts';
import { halfOutTol, hasF16, nanHalf, readHalf, refusalCheck, uploadHalf } from './half-io.ts';
import type { Check, KernelCase } from './types.ts';
import { randu } from './util.ts';

const U = 2 ** -24;

const maxAbs = (a: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
};

interface Limit {
  bytes: number;
  dispatches: number;
}

function dispatchCheck(limit: Limit | undefined, dispatches: number): Check[] {
  return limit ? [{ name: 'dispatches', actual: [dispatches], expected: [limit.dispatches], tol: { atol: 0 } }] : [];
}

async function runGeluBackwardHalf(gpu: Gpu, shape: number[], seed: number, doutScale: number, limit?: Limit): Promise<Check[]> {
  const n = shape.reduce((a, b) => a * b, 1);
  const x0 = geluInput(n, seed);
  for (let i = 0; i < Math.min(n, GELU_GRAD_POINTS.length); i++) x0[i] = GELU_GRAD_POINTS[i];
  const dout0 = randu(n, seed + 1, doutScale);
  const overflow = doutScale >= 1e4 && n > 1;
  if (overflow) {
    x0[n - 1] = 3; // gelu'(3) = 1.0120
    dout0[n - 1] = 65504;
  }
  const { t: tx, v: x } = uploadHalf(gpu, x0, shape);
  const { t: tdout, v: dout } = uploadHalf(gpu, dout0, shape);
  const dx = nanHalf(gpu, shape);
  const launch = () => geluBackward(gpu, dx, tdout, tx);
  if (!hasF16(gpu)) return refusalCheck(launch, [tx, tdout, dx]);
  const { dispatches } = await withBindingLimit(gpu, limit?.bytes ?? gpu.limits.maxBinding, launch);
  const actual = await readHalf(gpu, dx);
  for (const t of [tx, tdout, dx]) t.release();
  const expected = geluBackwardRef(dout, x);
  const m = overflow ? n - 1 : n;
  const tol = halfOutTol({ atol: (GELU_GRAD_TOL.atol * maxAbs(dout.subarray(0, m))), rtol: GELU_GRAD_TOL.rtol });
  const checks: Check[] = [{ name: 'dx f16', actual: actual.subarray(0, m), expected: expected.subarray(0, m), tol }];
  if (overflow) checks.push({ name: `dx = ${expected[n - 1].toFixed(0)} >= 2^16 is +inf in f16`, actual: [actual[n - 1] === Infinity ? 1 : 0], expected: [1], tol: { atol: 0 } });
  return [...checks, ...dispatchCheck(limit, dispatches)];
}

async function runGluBackwardHalf(gpu: Gpu, lead: number[], cols: number, seed: number, doutScale: number, limit?: Limit): Promise<Check[]> {
  const rows = lead.reduce((a, b) => a * b, 1);
  const ug0 = gluInput(rows, cols, seed);
  ug0[cols] = -0.7517916; // gate at gelu''s zero
  const { t: tug, v: ug } = uploadHalf(gpu, ug0, [...lead, 2 * cols]);
  const { t: tdout, v: dout } = uploadHalf(gpu, randu(rows * cols, seed + 7, doutScale), [...lead, cols]);
  const dug = nanHalf(gpu, [...lead, 2 * cols]);
  const launch = () => gluBackward(gpu, dug, tdout, tug);
  if (!hasF16(gpu)) return refusalCheck(launch, [tug, tdout, dug]);
  const { dispatches } = await withBindingLimit(gpu, limit?.bytes ?? gpu.limits.maxBinding, launch);
  const actual = await readHalf(gpu, dug);
  for (const t of [tug, tdout, dug]) t.release();
  const expected = gluBackwardRef(dout, ug, cols);
  const half = (a: ArrayLike<number>, gate: boolean) => gluHalf(a, rows, cols, gate);
  const D = maxAbs(dout);
  return [
    { name: 'd up f16', actual: half(actual, false), expected: half(expected, false), tol: halfOutTol({ atol: GELU_TOL.atol * D, rtol: (GELU_TOL.rtol ?? 0) + U }) },
    { name: 'd gate f16', actual: half(actual, true), expected: half(expected, true), tol: halfOutTol({ atol: 2 * GELU_GRAD_TOL.atol * D, rtol: (GELU_GRAD_TOL.rtol ?? 0) + U }) },
    ...dispatchCheck(limit, dispatches),
  ];
}

async function runAccumulateHalf(gpu: Gpu, shape: number[], seed: number, limit?: Limit): Promise<Check[]> {
  const n = shape.reduce((a, b) => a * b, 1);
  const { t: tdst, v: dst } = uploadHalf(gpu, randu(n, seed), shape);
  const { t: tsrc, v: src } = uploadHalf(gpu, randu(n, seed + 1, 0.01), shape);
  const launch = () => accumulateForward(gpu, tdst, tsrc);
  if (!hasF16(gpu)) return refusalCheck(launch, [tdst, tsrc]);
  const { dispatches } = await withBindingLimit(gpu, limit?.bytes ?? gpu.limits.maxBinding, launch);
  const actual = await readHalf(gpu, tdst);
  for (const t of [tdst, tsrc]) t.release();
  return [{ name: 'dst f16', actual, expected: addRef(dst, src), tol: halfOutTol({ atol: 0 }) }, ...dispatchCheck(limit, dispatches)];
}

export const halfBackwardCases: KernelCase[] = [
  ...[[1], [7], [3, 5, 7], [65537]].map((shape, i) => ({
    name: `gelu backward [${shape}] f16`,
    run: (gpu: Gpu) => runGeluBackwardHalf(gpu, shape, 960 + i, 1),
  })),
  { name: 'gelu backward [1027] tiny dout (1e-4) f16', run: (gpu) => runGeluBackwardHalf(gpu, [1027], 965, 1e-4) },
  { name: 'gelu backward [1027] large dout (3e4) f16', run: (gpu) => runGeluBackwardHalf(gpu, [1027], 966, 3e4) },
  // 1050 f16 elements under a 2 KiB limit: chunks of 1024 (a multiple of 128) -> 2 dispatches
  { name: 'gelu backward [3, 5, 70] chunked under a 2 KiB binding limit f16', run: (gpu) => runGeluBackwardHalf(gpu, [3, 5, 70], 967, 1, { bytes: 2048, dispatches: 2 }) },
  ...[
    { lead: [1], cols: 1 },
    { lead: [3], cols: 7 },
    { lead: [2, 3], cols: 129 },
    { lead: [3], cols: 4096 },
  ].map(({ lead, cols }, i) => ({
    name: `glu backward [${lead}, ${cols}] -> [${lead}, ${2 * cols}] f16`,
    run: (gpu: Gpu) => runGluBackwardHalf(gpu, lead, cols, 970 + i, 1),
  })),
  { name: 'glu backward [5, 33] tiny dout (1e-4) f16', run: (gpu) => runGluBackwardHalf(gpu, [5], 33, 975, 1e-4) },
  { name: 'glu backward [5, 33] large dout (5e3) f16', run: (gpu) => runGluBackwardHalf(gpu, [5], 33, 976, 5e3) },
  // dout rows of 602 B, upGate and dUpGate rows of 1204 B: aligned starts need multiples of
  // 128 rows; 217 wide rows fit 256 KiB, so chunks of 128, 128, 44
  { name: 'glu backward [300, 301] chunked under a 256 KiB binding limit f16', run: (gpu) => runGluBackwardHalf(gpu, [300], 301, 977, 1, { bytes: 262144, dispatches: 3 }) },
  ...[[1], [3, 5, 7], [1027]].map((shape, i) => ({ name: `accumulate [${shape}] f16`, run: (gpu: Gpu) => runAccumulateHalf(gpu, shape, 980 + i) })),
  { name: 'accumulate [3, 5, 70] chunked under a 2 KiB binding limit f16', run: (gpu) => runAccumulateHalf(gpu, [3, 5, 70], 984, { bytes: 2048, dispatches: 2 }) },
];
