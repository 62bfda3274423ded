// Launchers for shaders/layernorm.wgsl. The backward will sit right below the forward.

import type { Gpu } from '../gpu/device.ts';
import { f32 } from '../gpu/device.ts';
import { type Tensor, expectShape } from '../gpu/tensor.ts';
import { expectDtype, forEachRowChunk, rowReduceWg } from './elementwise.ts';

export interface LayerNormOptions {
  /**
   * Threads per row (a power of two, at most maxComputeInvocationsPerWorkgroup). Default
   * rowReduceWg(): 256 on GPUs, 8 on software drivers, where barriers are costly.
   */
  wg?: number;
}

/**
 * LayerNorm over the last dimension with HF/PyTorch semantics (biased variance, eps inside the
 * square root): out = (x - mean) / sqrt(var + eps) * weight + bias.
 * Saves mean [N] and rstd = 1 / sqrt(var + eps) [N] for the backward.
 *
 * out: [N, C], mean: [N], rstd: [N], x: [N, C], weight: [C], bias: [C]. Any leading dims of x
 * are folded into N (out has x's shape; mean and rstd are [N] or x's leading dims).
 */
export function layerNormForward(
  gpu: Gpu,
  out: Tensor /* [N, C] */,
  mean: Tensor /* [N] */,
  rstd: Tensor /* [N] */,
  x: Tensor /* [N, C] */,
  weight: Tensor /* [C] */,
  bias: Tensor /* [C] */,
  eps: number,
  opts: LayerNormOptions = {},
): void {
  if (x.shape.length === 0) throw new Error(`layernorm: x must have at least one dimension, got ${x}`);
  const C = x.shape[x.shape.length - 1];
  const N = C === 0 ? 0 : x.size / C;
  const lead = x.shape.slice(0, -1);
  expectShape('layernorm: out', out, x.shape);
  expectRowShape('layernorm: mean', mean, N, lead);
  expectRowShape('layernorm: rstd', rstd, N, lead);
  expectShape('layernorm: weight', weight, [C]);
  expectShape('layernorm: bias', bias, [C]);
  for (const [w, t] of [['out', out], ['mean', mean], ['rstd', rstd], ['x', x], ['weight', weight], ['bias', bias]] as const) {
    expectDtype(`layernorm: ${w}`, t, 'f32');
  }
  if (out.buffer === x.buffer) throw new Error('layernorm: out and x share a buffer; the kernel cannot run in place');
  if (!(eps >= 0)) throw new Error(`layernorm: eps must be >= 0, got ${eps}`);
  const wg = opts.wg ?? rowReduceWg(gpu);
  if (!Number.isInteger(Math.log2(wg)) || wg > gpu.limits.maxInvocations) {
    throw new Error(`layernorm: workgroup size ${wg} must be a power of two <= ${gpu.limits.maxInvocations}`);
  }
  if (C === 0) return;
  const x2 = x.reshape([N, C]);
  const out2 = out.reshape([N, C]);
  const mean1 = mean.reshape([N]);
  const rstd1 = rstd.reshape([N]);
  forEachRowChunk(gpu, 'layernorm', N, [C * 4, C * 4, 4, 4], (start, count) => {
    gpu.dispatch({
      kernel: 'layernorm',
      entry: 'forward',
      defines: { WG: wg },
      bindings: [out2.rows(start, count), mean1.rows(start, count), rstd1.rows(start, count), x2.rows(start, count), weight, bias],
      uniforms: [count, C, f32(eps)],
      workgroups: gpu.grid(count),
    });
  });
}

/** Per-row statistics: [N] or the leading dims of x. */
function expectRowShape(what: string, t: Tensor, N: number, lead: readonly number[]): void {
  if (t.shape.length === lead.length && t.shape.every((d, i) => d === lead[i])) return;
  expectShape(what, t, [N]);
}
