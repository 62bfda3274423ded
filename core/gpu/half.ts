// IEEE binary16 arrays on the host: f16 tensors are uploaded as Uint16Array bits and read back
// the same way. Rounding is to nearest, ties to even (f32ToF16Bits).

import { f16BitsToF32, f32ToF16Bits } from '../model/safetensors.ts';

/** f32 values -> f16 bits, each rounded to the nearest f16. */
export function toHalf(x: Float32Array): Uint16Array {
  const h = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) h[i] = f32ToF16Bits(x[i]);
  return h;
}

/** f16 bits -> f32 values (exact: every f16 is an f32). */
export function fromHalf(h: Uint16Array): Float32Array {
  const x = new Float32Array(h.length);
  for (let i = 0; i < h.length; i++) x[i] = f16BitsToF32(h[i]);
  return x;
}

/** The f16 value nearest each element, as f32: what an upload through toHalf() stores. */
export function roundHalf(x: Float32Array): Float32Array {
  return fromHalf(toHalf(x));
}
