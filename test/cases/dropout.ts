// Conformance cases for shaders/dropout.wgsl against core/ref/dropout.ts.
//
// Tolerance: exact. The mask is integer arithmetic (the same triple32 hash on both sides) and a kept
// element is one f32 product x * scale on both sides; a dropped one is exactly 0.

import { dropout } from '../../core/kernels/dropout.ts';
import { dropoutRef, type DropoutSpec } from '../../core/ref/dropout.ts';
import { nanTensor, withBindingLimit } from './elementwise.ts';
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
];
