// Launchers for shaders/pooling.wgsl: CLS and masked-mean pooling, L2 normalisation.
// Backwards will sit right below each forward.

import type { Gpu } from '../gpu/device.ts';
import { type Tensor, expectShape } from '../gpu/tensor.ts';
import { expectDtype, forEachRowChunk, rowReduceWg } from './elementwise.ts';

const WG = 256;

function dims3(what: string, x: Tensor): [number, number, number] {
  if (x.shape.length !== 3) throw new Error(`${what}: x must be [B, L, H], got [${x.shape.join(', ')}]`);
  const [B, L, H] = x.shape;
  if (L === 0) throw new Error(`${what}: x has no tokens (L = 0)`);
  return [B, L, H];
}

/** CLS pooling: out[b, :] = x[b, 0, :]. out: [B, H], x: [B, L, H]. */
export function clsPoolForward(gpu: Gpu, out: Tensor /* [B, H] */, x: Tensor /* [B, L, H] */): void {
  const [B, L, H] = dims3('clsPool', x);
  expectShape('clsPool: out', out, [B, H]);
  expectDtype('clsPool: out', out, 'f32');
  expectDtype('clsPool: x', x, 'f32');
  if (H === 0) return;
  forEachRowChunk(gpu, 'clsPool', B, [H * 4, L * H * 4], (start, count) => {
    const n = count * H;
    gpu.dispatch({
      kernel: 'pooling',
      entry: 'cls_forward',
      defines: { WG },
      bindings: [out.rows(start, count), x.rows(start, count)],
      uniforms: [n, L, H],
      workgroups: gpu.grid(Math.ceil(n / WG)),
    });
  });
}

/**
 * Masked mean pooling as sentence-transformers computes it:
 * out[b, :] = sum_l mask[b, l] * x[b, l, :] / clamp(sum_l mask[b, l], min = 1e-9),
 * so a row with no real token gives zeros. out: [B, H], x: [B, L, H], mask: [B, L] u32.
 */
export function meanPoolForward(gpu: Gpu, out: Tensor /* [B, H] */, x: Tensor /* [B, L, H] */, mask: Tensor /* [B, L] u32 */): void {
  const [B, L, H] = dims3('meanPool', x);
  expectShape('meanPool: out', out, [B, H]);
  expectShape('meanPool: mask', mask, [B, L]);
  expectDtype('meanPool: out', out, 'f32');
  expectDtype('meanPool: x', x, 'f32');
  expectDtype('meanPool: mask', mask, 'u32');
  if (H === 0) return;
  forEachRowChunk(gpu, 'meanPool', B, [H * 4, L * H * 4, L * 4], (start, count) => {
    const n = count * H;
    gpu.dispatch({
      kernel: 'pooling',
      entry: 'mean_forward',
      defines: { WG },
      bindings: [out.rows(start, count), x.rows(start, count), mask.rows(start, count)],
      uniforms: [n, L, H],
      workgroups: gpu.grid(Math.ceil(n / WG)),
    });
  });
}

export interface L2NormalizeOptions {
  /** Threads per row (power of two); default rowReduceWg(): 256 on GPUs, 8 on software drivers. */
  wg?: number;
}

/**
 * torch.nn.functional.normalize(x, p=2, dim=-1): out = x / max(||x||, 1e-12) per row.
 * Saves norm[b] = ||x[b, :]|| (before the clamp) for the backward.
 * out: [B, H], norm: [B], x: [B, H].
 */
export function l2NormalizeForward(gpu: Gpu, out: Tensor /* [B, H] */, norm: Tensor /* [B] */, x: Tensor /* [B, H] */, opts: L2NormalizeOptions = {}): void {
  if (x.shape.length !== 2) throw new Error(`l2Normalize: x must be [B, H], got [${x.shape.join(', ')}]`);
  const [B, H] = x.shape;
  expectShape('l2Normalize: out', out, [B, H]);
  expectShape('l2Normalize: norm', norm, [B]);
  for (const [w, t] of [['out', out], ['norm', norm], ['x', x]] as const) expectDtype(`l2Normalize: ${w}`, t, 'f32');
  if (out.buffer === x.buffer) throw new Error('l2Normalize: out and x share a buffer; the kernel cannot run in place');
  const wg = opts.wg ?? rowReduceWg(gpu);
  if (!Number.isInteger(Math.log2(wg)) || wg > gpu.limits.maxInvocations) {
    throw new Error(`l2Normalize: workgroup size ${wg} must be a power of two <= ${gpu.limits.maxInvocations}`);
  }
  if (H === 0) return;
  forEachRowChunk(gpu, 'l2Normalize', B, [H * 4, 4, H * 4], (start, count) => {
    gpu.dispatch({
      kernel: 'pooling',
      entry: 'l2_normalize_forward',
      defines: { WG: wg },
      bindings: [out.rows(start, count), norm.rows(start, count), x.rows(start, count)],
      uniforms: [count, 1, H],
      workgroups: gpu.grid(count),
    });
  });
}
