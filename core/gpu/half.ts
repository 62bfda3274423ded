// Half-precision arrays on the host: f16 tensors are uploaded as Uint16Array bits and read
// back as such. The host rounds to nearest even (f32ToF16Bits). A shader's f32 -> f16
// conversion may round an inexact value either way (WGSL leaves the direction to the
// implementation), so GPU results are only bounded by one f16 ulp of the f32 value.

import { f16BitsToF32, f32ToF16Bits } from '../model/safetensors.ts';

/** f32 values -> f16 bits, rounded to nearest even (overflow -> inf). */
export function toHalf(a: Float32Array): Uint16Array {
  const out = new Uint16Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = f32ToF16Bits(a[i]);
  return out;
}

/** f16 bits -> f32 values (exact). */
export function fromHalf(h: Uint16Array): Float32Array {
  const out = new Float32Array(h.length);
  for (let i = 0; i < h.length; i++) out[i] = f16BitsToF32(h[i]);
  return out;
}

/** Each value rounded to the nearest f16, kept as f32 (the exact input an f16 kernel sees). */
export function roundHalf(a: Float32Array): Float32Array {
  return fromHalf(toHalf(a));
}
