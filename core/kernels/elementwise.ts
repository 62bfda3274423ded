// Launchers for shaders/elementwise.wgsl.

import type { Gpu } from '../gpu/device.ts';
import { type Tensor, expectShape } from '../gpu/tensor.ts';

const WG = 256;

/** out = a + b, any shape (all three the same). */
export function addForward(gpu: Gpu, out: Tensor, a: Tensor, b: Tensor): void {
  expectShape('add: a', a, out.shape);
  expectShape('add: b', b, out.shape);
  gpu.dispatch({
    kernel: 'elementwise',
    entry: 'add',
    defines: { WG },
    bindings: [out, a, b],
    uniforms: [out.size],
    workgroups: gpu.grid(Math.ceil(out.size / WG)),
  });
}
