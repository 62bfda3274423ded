// Float32Array <-> IEEE binary16 bits for f16 tensors: uploads (gpu.upload takes the Uint16Array
// with dtype 'f16'), readback (gpu.read of an f16 tensor gives the bits) and CPU references,
// which run on inputs rounded the way the upload rounds them (roundHalf). Rounding is to nearest
// even, |x| > 65504 (after rounding) becomes inf, NaN stays NaN: f32ToF16Bits' rules.

import { f16BitsToF32, f32ToF16Bits } from '../model/safetensors.ts';

/** Each value as f16 bits, rounded to nearest even. */
export function toHalf(x: Float32Array): Uint16Array {
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = f32ToF16Bits(x[i]);
  return out;
}

/** f16 bits back to f32 (exact: every f16 value is an f32 value). */
export function fromHalf(h: Uint16Array): Float32Array {
  const out = new Float32Array(h.length);
  for (let i = 0; i < h.length; i++) out[i] = f16BitsToF32(h[i]);
  return out;
}

/** Each value rounded to the nearest f16, kept as f32: what an f16 upload of x holds. */
export function roundHalf(x: Float32Array): Float32Array {
  return fromHalf(toHalf(x));
}
