// Float32Array <-> IEEE half (binary16) bits, for f16 uploads and readbacks. Rounding is to
// nearest even (f32ToF16Bits); values beyond +-65504 become +-infinity, NaN stays NaN.

import { f16BitsToF32, f32ToF16Bits } from '../model/safetensors.ts';

/** Each value rounded to the nearest f16, as bits. */
export function toHalf(x: Float32Array): Uint16Array {
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = f32ToF16Bits(x[i]);
  return out;
}

/** f16 bits -> their exact f32 values. */
export function fromHalf(h: Uint16Array): Float32Array {
  const out = new Float32Array(h.length);
  for (let i = 0; i < h.length; i++) out[i] = f16BitsToF32(h[i]);
  return out;
}

/** Each value rounded to the nearest f16 and back: what an f16 tensor holds. */
export function roundHalf(x: Float32Array): Float32Array {
  return fromHalf(toHalf(x));
}
