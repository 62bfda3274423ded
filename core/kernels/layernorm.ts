// Launchers for shaders/layernorm.wgsl: layerNormForward, then layerNormBackward below it.

import type { Gpu } from '../gpu/device.ts';
import { f32 } from '../gpu/device.ts';
import { type Tensor, bytesPerElement, expectShape } from '../gpu/tensor.ts';
import { expectDtype, forEachRowChunk, rowReduceWg } from '../gpu/launch.ts';

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
 * x, weight, bias and out are all f32 or all f16 (needs 'shader-f16'; the math is f32 either
 * way and out is rounded once); mean and rstd are always f32.
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
  const dt = x.dtype;
  if (dt !== 'f32' && dt !== 'f16') throw new Error(`layernorm: x must hold f32 or f16 elements, got ${x}`);
  for (const [w, t] of [['out', out], ['weight', weight], ['bias', bias]] as const) expectDtype(`layernorm: ${w}`, t, dt);
  // the statistics stay f32 for the backward, whatever the activations' precision
  expectDtype('layernorm: mean', mean, 'f32');
  expectDtype('layernorm: rstd', rstd, 'f32');
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
  const eb = bytesPerElement(dt);
  forEachRowChunk(gpu, 'layernorm', N, [C * eb, C * eb, 4, 4], (start, count) => {
    gpu.dispatch({
      kernel: 'layernorm',
      entry: 'forward',
      defines: dt === 'f16' ? { WG: wg, F16: true } : { WG: wg },
      bindings: [out2.rows(start, count), mean1.rows(start, count), rstd1.rows(start, count), x2.rows(start, count), weight, bias],
      uniforms: { rows: count, C, eps: f32(eps) },
      workgroups: gpu.grid(count),
    });
  });
}

export interface LayerNormBackwardOptions {
  /** Add into dweight and dbias (gradient accumulation) instead of overwriting them. dx is always overwritten. */
  accumulate?: boolean;
  /** Threads per row of the dx pass (power of two); default rowReduceWg() as for the forward. */
  wg?: number;
  /**
   * Rows per block of the dweight/dbias partial sums (default 64): the pass runs C x
   * ceil(N / R) threads, then C threads add the ceil(N / R) block sums in block order. Raised
   * automatically when the blocks of one dispatch would pass 65535.
   */
  blockRows?: number;
}

const PARAM_WG = 256;

/**
 * Backward of layerNormForward, from the saved mean and rstd:
 *   dx      = rstd * (g - mean_c(g) - xhat * mean_c(g * xhat)),  g = dout * weight
 *   dweight = sum over rows of dout * xhat,   dbias = sum over rows of dout
 * with xhat = (x - mean) * rstd re-centred per row (see shaders/layernorm.wgsl: keeps rows
 * like 1000 + noise accurate although the saved f32 mean is off by up to half an ulp of 1000).
 * dweight and dbias are reduced over rows in a fixed order without atomics (bit-identical
 * from run to run); opts.accumulate adds them into the existing values (+=). dx is overwritten
 * and must not share a buffer with any input.
 *
 * dx: [N, C], dweight: [C], dbias: [C], dout: [N, C], x: [N, C], mean: [N], rstd: [N],
 * weight: [C]; leading dims of x are folded into N as in the forward.
 * dout, x, weight and dx are all f32 or all f16 (mixed-precision training: f16 activations and
 * weight copy; needs 'shader-f16', the math is f32 and dx is rounded once); mean, rstd and the
 * parameter gradients dweight and dbias are always f32.
 */
export function layerNormBackward(
  gpu: Gpu,
  dx: Tensor /* [N, C] */,
  dweight: Tensor /* [C] */,
  dbias: Tensor /* [C] */,
  dout: Tensor /* [N, C] */,
  x: Tensor /* [N, C] */,
  mean: Tensor /* [N] */,
  rstd: Tensor /* [N] */,
  weight: Tensor /* [C] */,
  opts: LayerNormBackwardOptions = {},
): void {
  if (x.shape.length === 0) throw new Error(`layernorm backward: x must have at least one dimension, got ${x}`);
  const C = x.shape[x.shape.length - 1];
  const N = C === 0 ? 0 : x.size / C;
  const lead = x.shape.slice(0, -1);
  expectShape('layernorm backward: dx', dx, x.shape);
  expectShape('layernorm backward: dout', dout, x.shape);
  expectRowShape('layernorm backward: mean', mean, N, lead);
  expectRowShape('layernorm backward: rstd', rstd, N, lead);
  expectShape('layernorm backward: weight', weight, [C]);
  expectShape('layernorm backward: dweight', dweight, [C]);
  expectShape('layernorm backward: dbias', dbias, [C]);
  const dt = x.dtype;
  if (dt !== 'f32' && dt !== 'f16') throw new Error(`layernorm backward: x must hold f32 or f16 elements, got ${x}`);
  for (const [w, t] of Object.entries({ dx, dout, weight })) expectDtype(`layernorm backward: ${w}`, t, dt);
  // statistics and parameter gradients stay f32 whatever the activations' precision
  for (const [w, t] of Object.entries({ mean, rstd, dweight, dbias })) expectDtype(`layernorm backward: ${w}`, t, 'f32');
  // A buffer written by a dispatch may not also be read by it (WebGPU usage rules).
  for (const [w, t] of Object.entries({ dout, x, mean, rstd, weight })) {
    if (dx.buffer === t.buffer) throw new Error(`layernorm backward: dx and ${w} share a buffer; dx must be separate from every input`);
  }
  const wg = opts.wg ?? rowReduceWg(gpu);
  if (!Number.isInteger(Math.log2(wg)) || wg > gpu.limits.maxInvocations) {
    throw new Error(`layernorm backward: workgroup size ${wg} must be a power of two <= ${gpu.limits.maxInvocations}`);
  }
  const blockRows0 = opts.blockRows ?? 64;
  if (!Number.isInteger(blockRows0) || blockRows0 < 1) throw new Error(`layernorm backward: blockRows must be a positive integer, got ${blockRows0}`);
  if (Math.ceil((2 * C) / PARAM_WG) > gpu.limits.maxWorkgroupsPerDim) throw new Error(`layernorm backward: C = ${C} is too wide for one dispatch`);
  if (C === 0) return;
  if (N === 0) {
    // no rows: the gradients of weight and bias are empty sums
    if (!opts.accumulate) reduceParams(gpu, dweight, dbias, null, C, 0, false);
    return;
  }
  const x2 = x.reshape([N, C]);
  const dx2 = dx.reshape([N, C]);
  const dout2 = dout.reshape([N, C]);
  const mean1 = mean.reshape([N]);
  const rstd1 = rstd.reshape([N]);
  // One chunking for both passes: every [N, C] and [N] tensor either pass binds.
  const chunks: { start: number; count: number; blockRows: number; blocks: number; offset: number }[] = [];
  let blocks = 0;
  const eb = bytesPerElement(dt);
  forEachRowChunk(gpu, 'layernorm backward', N, [C * eb, C * eb, C * eb, 4, 4, 4], (start, count) => {
    const blockRows = Math.max(blockRows0, Math.ceil(count / gpu.limits.maxWorkgroupsPerDim));
    const nb = Math.ceil(count / blockRows);
    chunks.push({ start, count, blockRows, blocks: nb, offset: blocks });
    blocks += nb;
  });
  const shift = gpu.empty([N]);
  const partial = gpu.empty([blocks, 2 * C]);
  if (partial.byteLength > gpu.limits.maxBinding) {
    throw new Error(`layernorm backward: ${blocks} blocks of partial sums over [${C}] exceed one storage binding; raise blockRows`);
  }
  for (const k of chunks) {
    const rows = (t: Tensor) => t.rows(k.start, k.count);
    gpu.dispatch({
      kernel: 'layernorm',
      entry: 'backward',
      defines: dt === 'f16' ? { WG: wg, F16: true } : { WG: wg }, // f32 keeps its pipeline keys
      bindings: [rows(dx2), rows(shift), rows(dout2), rows(x2), rows(mean1), rows(rstd1), weight],
      uniforms: { rows: k.count, C, block_rows: 0, block_offset: 0, blocks: 0, accumulate: 0 },
      workgroups: gpu.grid(k.count),
    });
    gpu.dispatch({
      kernel: 'layernorm',
      entry: 'backward_params_partial',
      defines: dt === 'f16' ? { WG: PARAM_WG, F16: true } : { WG: PARAM_WG },
      bindings: [partial, rows(dout2), rows(x2), rows(mean1), rows(rstd1), rows(shift)],
      uniforms: { rows: k.count, C, block_rows: k.blockRows, block_offset: k.offset, blocks: 0, accumulate: 0 },
      workgroups: [Math.ceil(C / PARAM_WG), k.blocks],
    });
  }
  reduceParams(gpu, dweight, dbias, partial, C, blocks, !!opts.accumulate);
  shift.release();
  partial.release();
}

/** dweight | dbias (+)= the `blocks` rows of partial summed in order (all zeros when blocks = 0). */
function reduceParams(gpu: Gpu, dweight: Tensor, dbias: Tensor, partial: Tensor | null, C: number, blocks: number, accumulate: boolean): void {
  const scratch = partial ?? gpu.zeros([1, 2 * C]);
  gpu.dispatch({
    kernel: 'layernorm',
    entry: 'backward_params_reduce',
    defines: { WG: PARAM_WG },
    bindings: [dweight, dbias, scratch],
    uniforms: { rows: 0, C, block_rows: 0, block_offset: 0, blocks, accumulate: accumulate ? 1 : 0 },
    workgroups: [Math.ceil((2 * C) / PARAM_WG)],
  });
  if (!partial) scratch.release();
}

/** Per-row statistics: [N] or the leading dims of x. */
function expectRowShape(what: string, t: Tensor, N: number, lead: readonly number[]): void {
  if (t.shape.length === lead.length && t.shape.every((d, i) => d === lead[i])) return;
  expectShape(what, t, [N]);
}
