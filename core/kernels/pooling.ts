// Launchers for shaders/pooling.wgsl: CLS and masked-mean pooling, L2 normalisation, each
// forward with its backward right below it.

import type { Gpu } from '../gpu/device.ts';
import { type Tensor, bytesPerElement, expectShape } from '../gpu/tensor.ts';
import { expectDtype, forEachRowChunk, rowReduceWg } from '../gpu/launch.ts';

const WG = 256;

/**
 * The hidden states' dtype, f32 or f16: x of the forwards, dx of the backwards (the pooled
 * output and its gradient are f32 either way).
 */
function hiddenDtype(what: string, x: Tensor, name = 'x'): 'f32' | 'f16' {
  if (x.dtype !== 'f32' && x.dtype !== 'f16') throw new Error(`${what}: ${name} must hold f32 or f16 elements, got ${x}`);
  return x.dtype;
}

/** Defines of a pooling kernel over hidden states: F16 only when they are f16, so the f32 pipeline keys stay as they were. */
function hiddenDefines(dt: 'f32' | 'f16'): { WG: number; F16?: boolean } {
  return dt === 'f16' ? { WG, F16: true } : { WG };
}

function dims3(what: string, x: Tensor): [number, number, number] {
  if (x.shape.length !== 3) throw new Error(`${what}: x must be [B, L, H], got [${x.shape.join(', ')}]`);
  const [B, L, H] = x.shape;
  if (L === 0) throw new Error(`${what}: x has no tokens (L = 0)`);
  return [B, L, H];
}

/** CLS pooling: out[b, :] = x[b, 0, :]. out: [B, H] f32, x: [B, L, H] f32 or f16 (widened exactly). */
export function clsPoolForward(gpu: Gpu, out: Tensor /* [B, H] */, x: Tensor /* [B, L, H] */): void {
  const [B, L, H] = dims3('clsPool', x);
  expectShape('clsPool: out', out, [B, H]);
  expectDtype('clsPool: out', out, 'f32');
  const dt = hiddenDtype('clsPool', x);
  if (H === 0) return;
  forEachRowChunk(gpu, 'clsPool', B, [H * 4, L * H * bytesPerElement(dt)], (start, count) => {
    const n = count * H;
    gpu.dispatch({
      kernel: 'pooling',
      entry: 'cls_forward',
      defines: hiddenDefines(dt),
      bindings: [out.rows(start, count), x.rows(start, count)],
      uniforms: { n, L, H },
      workgroups: gpu.grid(Math.ceil(n / WG)),
    });
  });
}

/**
 * Backward of clsPoolForward: dx[b, 0, :] = dout[b, :], zeros elsewhere. dx: [B, L, H] in the
 * hidden states' dtype, f32 or f16 (dout rounded to f16 once); dout: [B, H] f32 (the pooled
 * vector's gradient is f32 either way).
 */
export function clsPoolBackward(gpu: Gpu, dx: Tensor /* [B, L, H] */, dout: Tensor /* [B, H] */): void {
  const [B, L, H] = dims3('clsPool backward', dx);
  expectShape('clsPool backward: dout', dout, [B, H]);
  const dt = hiddenDtype('clsPool backward', dx, 'dx');
  expectDtype('clsPool backward: dout', dout, 'f32');
  if (dx.buffer === dout.buffer) throw new Error('clsPool backward: dx and dout share a buffer');
  if (H === 0) return;
  forEachRowChunk(gpu, 'clsPool backward', B, [L * H * bytesPerElement(dt), H * 4], (start, count) => {
    const n = count * L * H;
    gpu.dispatch({
      kernel: 'pooling',
      entry: 'cls_backward',
      defines: hiddenDefines(dt),
      bindings: [dx.rows(start, count), dout.rows(start, count)],
      uniforms: { n, L, H },
      workgroups: gpu.grid(Math.ceil(n / WG)),
    });
  });
}

/**
 * Masked mean pooling as sentence-transformers computes it:
 * out[b, :] = sum_l mask[b, l] * x[b, l, :] / clamp(sum_l mask[b, l], min = 1e-9),
 * so a row with no real token gives zeros. out: [B, H] f32, x: [B, L, H] f32 or f16 (summed in
 * f32 either way), mask: [B, L] u32.
 */
export function meanPoolForward(gpu: Gpu, out: Tensor /* [B, H] */, x: Tensor /* [B, L, H] */, mask: Tensor /* [B, L] u32 */): void {
  const [B, L, H] = dims3('meanPool', x);
  expectShape('meanPool: out', out, [B, H]);
  expectShape('meanPool: mask', mask, [B, L]);
  expectDtype('meanPool: out', out, 'f32');
  const dt = hiddenDtype('meanPool', x);
  expectDtype('meanPool: mask', mask, 'u32');
  if (H === 0) return;
  forEachRowChunk(gpu, 'meanPool', B, [H * 4, L * H * bytesPerElement(dt), L * 4], (start, count) => {
    const n = count * H;
    gpu.dispatch({
      kernel: 'pooling',
      entry: 'mean_forward',
      defines: hiddenDefines(dt),
      bindings: [out.rows(start, count), x.rows(start, count), mask.rows(start, count)],
      uniforms: { n, L, H },
      workgroups: gpu.grid(Math.ceil(n / WG)),
    });
  });
}

/**
 * Backward of meanPoolForward: dx[b, l, :] = mask[b, l] * dout[b, :] / max(sum_l mask[b, l], 1e-9),
 * exactly 0 at masked positions (and in rows with no real token). dx: [B, L, H] in the hidden
 * states' dtype, f32 or f16 (computed in f32, rounded to f16 once); dout: [B, H] f32; mask:
 * [B, L] u32.
 */
export function meanPoolBackward(gpu: Gpu, dx: Tensor /* [B, L, H] */, dout: Tensor /* [B, H] */, mask: Tensor /* [B, L] u32 */): void {
  const [B, L, H] = dims3('meanPool backward', dx);
  expectShape('meanPool backward: dout', dout, [B, H]);
  expectShape('meanPool backward: mask', mask, [B, L]);
  const dt = hiddenDtype('meanPool backward', dx, 'dx');
  expectDtype('meanPool backward: dout', dout, 'f32');
  expectDtype('meanPool backward: mask', mask, 'u32');
  if (dx.buffer === dout.buffer || dx.buffer === mask.buffer) throw new Error('meanPool backward: dx shares a buffer with dout or mask');
  if (H === 0) return;
  forEachRowChunk(gpu, 'meanPool backward', B, [L * H * bytesPerElement(dt), H * 4, L * 4], (start, count) => {
    const n = count * H;
    gpu.dispatch({
      kernel: 'pooling',
      entry: 'mean_backward',
      defines: hiddenDefines(dt),
      bindings: [dx.rows(start, count), dout.rows(start, count), mask.rows(start, count)],
      uniforms: { n, L, H },
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
      uniforms: { n: count, L: 1, H },
      workgroups: gpu.grid(count),
    });
  });
}

/**
 * Backward of l2NormalizeForward from the saved norm n = ||x[b, :]||:
 * dx = (dout - out (out . dout)) / n where n >= 1e-12; where the clamp is active (n < 1e-12,
 * zero rows included) out = x / 1e-12 and dx = dout / 1e-12, as torch's F.normalize.
 * dx: [B, H], dout: [B, H], x: [B, H], norm: [B].
 */
export function l2NormalizeBackward(
  gpu: Gpu,
  dx: Tensor /* [B, H] */,
  dout: Tensor /* [B, H] */,
  x: Tensor /* [B, H] */,
  norm: Tensor /* [B] */,
  opts: L2NormalizeOptions = {},
): void {
  if (x.shape.length !== 2) throw new Error(`l2Normalize backward: x must be [B, H], got [${x.shape.join(', ')}]`);
  const [B, H] = x.shape;
  expectShape('l2Normalize backward: dx', dx, [B, H]);
  expectShape('l2Normalize backward: dout', dout, [B, H]);
  expectShape('l2Normalize backward: norm', norm, [B]);
  for (const [w, t] of [['dx', dx], ['dout', dout], ['x', x], ['norm', norm]] as const) expectDtype(`l2Normalize backward: ${w}`, t, 'f32');
  if ([dout, x, norm].some((t) => t.buffer === dx.buffer)) throw new Error('l2Normalize backward: dx shares a buffer with an input');
  const wg = opts.wg ?? rowReduceWg(gpu);
  if (!Number.isInteger(Math.log2(wg)) || wg > gpu.limits.maxInvocations) {
    throw new Error(`l2Normalize backward: workgroup size ${wg} must be a power of two <= ${gpu.limits.maxInvocations}`);
  }
  if (H === 0) return;
  forEachRowChunk(gpu, 'l2Normalize backward', B, [H * 4, H * 4, H * 4, 4], (start, count) => {
    gpu.dispatch({
      kernel: 'pooling',
      entry: 'l2_normalize_backward',
      defines: { WG: wg },
      bindings: [dx.rows(start, count), dout.rows(start, count), x.rows(start, count), norm.rows(start, count)],
      uniforms: { n: count, L: 1, H },
      workgroups: gpu.grid(count),
    });
  });
}
