// Helpers of the f16 conformance cases (layernorm, elementwise, embedding, pooling): f16
// uploads that also return the values the float64 reference must see, readback, and the
// refusal check a case returns on a device without 'shader-f16'.
//
// Rounding model shared by the f16 cases: inputs are rounded to f16 on the host (round to
// nearest even) and the reference runs in float64 on exactly those values, so the GPU's
// error is its f32 arithmetic (the f32 case's tolerance) plus the f16 rounding of the output.
// WGSL leaves the direction of an f32 -> f16 conversion to the implementation (either
// neighbour of an inexact value is conforming), so that rounding is bounded by one f16 ulp,
// not half: HALF_U = 2^-10 of |y| for normal f16 values, HALF_SUB = 2^-24 (the subnormal
// spacing) absolute below 2^-14. llvmpipe rounds to nearest even, within half of that.

import type { Gpu } from '../../core/gpu/device.ts';
import { fromHalf, toHalf } from '../../core/gpu/half.ts';
import type { Tensor } from '../../core/gpu/tensor.ts';
import type { Check, Tol } from './types.ts';

/** One f16 ulp relative to |y| (the output rounding bound, see the header). */
export const HALF_U = 2 ** -10;
/** The spacing of f16 subnormals: the absolute rounding bound below 2^-14. */
export const HALF_SUB = 2 ** -24;

/** An f32 tolerance widened by the f16 rounding of the output (see the header). */
export function halfOutTol(t: Tol): Tol {
  return { atol: t.atol * (1 + HALF_U) + HALF_SUB, rtol: (t.rtol ?? 0) * (1 + HALF_U) + HALF_U };
}

/** Uploads `a` rounded to f16; returns the tensor and the rounded values for the reference. */
export function uploadHalf(gpu: Gpu, a: Float32Array, shape: readonly number[]): { t: Tensor; v: Float32Array } {
  const bits = toHalf(a);
  return { t: gpu.upload(bits, shape, 'f16'), v: fromHalf(bits) };
}

/** A new f16 tensor filled with NaN, so an element the kernel forgets to write fails the check. */
export function nanHalf(gpu: Gpu, shape: readonly number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return gpu.upload(new Uint16Array(n).fill(0x7e00), shape, 'f16');
}

/** An f16 tensor's values as f32. */
export async function readHalf(gpu: Gpu, t: Tensor): Promise<Float32Array> {
  return fromHalf((await gpu.read(t)) as Uint16Array);
}

/** True when the device runs f16 kernels; without it an f16 case checks the refusal instead. */
export function hasF16(gpu: Gpu): boolean {
  return gpu.features.has('shader-f16');
}

/**
 * The check of the refusal path: `launch` (an f16 launcher call) must throw the device's
 * one-line 'needs shader-f16' error. Releases `tensors` either way.
 */
export function refusalCheck(launch: () => void, tensors: Tensor[] = []): Check[] {
  let message = '';
  try {
    launch();
  } catch (e) {
    message = (e as Error).message;
  } finally {
    for (const t of tensors) t.release();
  }
  const ok = /needs shader-f16/.test(message) && !message.includes('\n');
  return [{ name: `refused without shader-f16: ${message || 'no error'}`, actual: [ok ? 1 : 0], expected: [1], tol: { atol: 0 } }];
}
