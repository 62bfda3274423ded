// Conformance cases for shaders/dropout.wgsl against core/ref/dropout.ts.
//
// Tolerance: exact. The mask is integer arithmetic (the same triple32 hash on both sides) and a kept
// element is one f32 product x * scale on both sides; a dropped one is exactly 0.
//
// f16 (names ending in ' f16'): x rounded to f16 on the host, the reference is the f32 product
// on those values, and the GPU rounds it to f16 once: halfOutTol({ atol: 0 }) (one f16 ulp,
// 2^-24 below the normal range). The mask is checked exactly: it must be the f32 site's (the
// same seed drops the same elements whatever the dtype), so a dropped element is exactly 0 and
// a kept one is not (inputs with no zeros).

import { dropout, droppedCopy } from '../../core/kernels/dropout.ts';
import { dropoutMaskRef, dropoutRef, type DropoutSpec } from '../../core/ref/dropout.ts';
import { nanTensor, withBindingLimit } from './elementwise.ts';
import { halfOutTol, hasF16, nanHalf, readHalf, refusalCheck, uploadHalf } from './half-io.ts';
import type { Check, KernelCase } from './types.ts';
import { randu } from './util.ts';

const EXACT = { atol: 0 };

function shapeCase(shape: number[], d: DropoutSpec, seed: number): KernelCase {
  return {
    name: `dropout [${shape}] p=${d.p} seed=${d.seed}`,
    async run(gpu) {
      const n = shape.reduce((a, b) => a * b, 1);
      const xv = randu(n, seed, 3);
      const x = gpu.upload(xv, shape);
      const out = nanTensor(gpu, shape);
      dropout(gpu, out, x, d);
      const actual = await gpu.readF32(out);
      x.release();
      out.release();
      return [{ name: 'out', actual, expected: dropoutRef(xv, d), tol: EXACT }];
    },
  };
}

export const dropoutCases: KernelCase[] = [
  shapeCase([1], { p: 0.5, seed: 7 }, 1),
  shapeCase([255], { p: 0.1, seed: 0 }, 2),
  shapeCase([3, 5, 7], { p: 0.9, seed: 0xffffffff }, 3),
  shapeCase([2, 37, 129], { p: 0.1, seed: 123456789 }, 4),
  shapeCase([4, 33], { p: 0, seed: 5 }, 5), // p = 0: the identity (scale 1, nothing dropped)
  {
    name: 'dropout chunked under a 4 KiB binding limit: the mask follows the global index',
    async run(gpu) {
      const n = 10_007;
      const d = { p: 0.3, seed: 99 };
      const xv = randu(n, 6, 2);
      const x = gpu.upload(xv, [n]);
      const out = nanTensor(gpu, [n]);
      const { result: actual, dispatches } = await withBindingLimit(gpu, 4096, () => {
        dropout(gpu, out, x, d);
        return gpu.readF32(out);
      });
      x.release();
      out.release();
      const checks: Check[] = [{ name: 'out', actual, expected: dropoutRef(xv, d), tol: EXACT }];
      checks.push({ name: 'dispatches > 1 (the chunked path ran)', actual: [dispatches > 1 ? 1 : 0], expected: [1], tol: EXACT });
      return checks;
    },
  },
  ...[
    { shape: [1], d: { p: 0.5, seed: 7 } },
    { shape: [3, 5, 7], d: { p: 0.9, seed: 0xffffffff } },
    { shape: [2, 37, 129], d: { p: 0.1, seed: 123456789 } },
    { shape: [4, 33], d: { p: 0, seed: 5 } },
  ].map(({ shape, d }, i) => halfCase(shape, d, 10 + i)),
  // 10007 f16 elements under a 2 KiB limit: chunks of 1024 (a multiple of 128 elements, for
  // 256-byte aligned starts) -> 10 dispatches, the mask following the global index
  halfCase([10_007], { p: 0.3, seed: 99 }, 20, { bytes: 2048, dispatches: 10 }),
];

/** Kept elements have |x| >= 0.01, so none is 0 and a zero in the output means dropped. */
function nonzero(n: number, seed: number): Float32Array {
  const x = randu(n, seed, 3);
  for (let i = 0; i < n; i++) if (Math.abs(x[i]) < 0.01) x[i] = 0.01;
  return x;
}

function halfCase(shape: number[], d: DropoutSpec, seed: number, limit?: { bytes: number; dispatches: number }): KernelCase {
  return {
    name: `dropout [${shape}] p=${d.p} seed=${d.seed}${limit ? ` chunked under a ${limit.bytes}-byte binding limit` : ''} f16`,
    async run(gpu) {
      const n = shape.reduce((a, b) => a * b, 1);
      const { t: x, v: xv } = uploadHalf(gpu, nonzero(n, seed), shape);
      const out = nanHalf(gpu, shape);
      const launch = () => dropout(gpu, out, x, d);
      if (!hasF16(gpu)) return refusalCheck(launch, [x, out]);
      const { dispatches } = await withBindingLimit(gpu, limit?.bytes ?? gpu.limits.maxBinding, launch);
      const actual = await readHalf(gpu, out);
      const copy = droppedCopy(gpu, x, d); // allocated in x's dtype
      const copyDtype = copy.dtype;
      const copied = await readHalf(gpu, copy);
      for (const t of [x, out, copy]) t.release();
      const keep = dropoutMaskRef(n, d);
      const expected = dropoutRef(xv, d);
      const checks: Check[] = [
        { name: 'out f16', actual, expected, tol: halfOutTol({ atol: 0 }) },
        { name: 'mask (the f32 mask of this seed)', actual: actual.map((v) => (v === 0 ? 0 : 1)), expected: keep, tol: EXACT },
        { name: 'droppedCopy is f16 with the same bits', actual: copyDtype === 'f16' ? copied : [NaN], expected: copyDtype === 'f16' ? actual : [0], tol: EXACT },
      ];
      if (limit) checks.push({ name: 'dispatches', actual: [dispatches], expected: [limit.dispatches], tol: EXACT });
      return checks;
    },
  };
}
