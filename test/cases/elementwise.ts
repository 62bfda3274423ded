import { addForward } from '../../core/kernels/elementwise.ts';
import { addRef } from '../../core/ref/elementwise.ts';
import type { KernelCase } from './types.ts';
import { randu } from './util.ts';

export const elementwiseCases: KernelCase[] = [1, 255, 257, 65537].map((n) => ({
  name: `add n=${n}`,
  async run(gpu) {
    const a = randu(n, n), b = randu(n, n + 1);
    const ta = gpu.upload(a, [n]), tb = gpu.upload(b, [n]), out = gpu.empty([n]);
    addForward(gpu, out, ta, tb);
    const actual = await gpu.readF32(out);
    for (const t of [ta, tb, out]) t.release();
    // exact: the same single f32 add on both sides
    return [{ name: 'out', actual, expected: addRef(a, b), tol: { atol: 0 } }];
  },
}));
