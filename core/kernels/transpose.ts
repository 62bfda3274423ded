// Launcher for shaders/transpose.wgsl: out [..., C, R] = a [..., R, C], the last two dims
// swapped. Matmul stages transposed operands through it on CPU drivers (see stagesTransposed in
// kernels/matmul.ts).

import type { Gpu } from '../gpu/device.ts';
import { type Tensor, expectShape } from '../gpu/tensor.ts';
import { expectDtype } from '../gpu/launch.ts';

const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;
const prod = (s: readonly number[]) => s.reduce((x, y) => x * y, 1);

/**
 * out [..., C, R] = a [..., R, C]: the last two dims swapped, leading dims a batch (at most
 * maxComputeWorkgroupsPerDimension items). Both f32 or both f16 (a copy: no rounding). Both
 * must fit one storage binding (matmul only transposes chunks that do).
 */
export function transpose(gpu: Gpu, out: Tensor, a: Tensor): void {
  if (a.dtype !== 'f32' && a.dtype !== 'f16') throw new Error(`transpose: a ${a} must be f32 or f16`);
  expectDtype(`transpose: out (a is ${a.dtype})`, out, a.dtype);
  const r = a.shape.length;
  if (r < 2) throw new Error(`transpose: a ${fmt(a.shape)} must have at least 2 dims`);
  const lead = a.shape.slice(0, r - 2);
  const [R, C] = [a.shape[r - 2], a.shape[r - 1]];
  expectShape(`transpose: out (a ${fmt(a.shape)})`, out, [...lead, C, R]);
  if (out.buffer === a.buffer) throw new Error(`transpose: out ${fmt(out.shape)} shares its GPU buffer with a; transpose into a separate tensor`);
  const batch = prod(lead);
  if (batch > gpu.limits.maxWorkgroupsPerDim) throw new Error(`transpose: ${batch} matrices in a ${fmt(a.shape)}, over the ${gpu.limits.maxWorkgroupsPerDim} per-dispatch limit; split the batch`);
  if (a.size === 0) return;
  // One invocation per 4 x 4 block; blocks folded into [x, y] workgroups, matrices in z.
  const blocks = Math.ceil(R / 4) * Math.ceil(C / 4);
  const [x, y] = gpu.grid(Math.ceil(blocks / TRANSPOSE_WG));
  gpu.dispatch({
    kernel: 'transpose',
    entry: 'forward',
    // F16 only when f16, so f32 keeps its pipeline keys; the shader copies either type as is
    defines: { WG: TRANSPOSE_WG, VEC4: R % 4 === 0 && C % 4 === 0, ...(a.dtype === 'f16' ? { F16: true } : {}) },
    bindings: [out, a],
    uniforms: { rows: R, cols: C },
    workgroups: [x, y, batch],
  });
}
const TRANSPOSE_WG = 64;
