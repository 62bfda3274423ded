// Cases of castForward (shaders/elementwise.wgsl to_half / from_half), listed in elementwiseCases.
// The kernel needs no shader-f16 (it works on the bits), so these run on every adapter.
//
// Tolerance: exact, on the bits. f32 -> f16 must equal f32ToF16Bits (toHalf, core/gpu/half.ts:
// round to nearest even, |x| >= 65520 to inf, NaN kept quiet with its top payload bits, f32
// subnormals to 0) and f16 -> f32 must equal fromHalf, compared as f32 bits (a NaN only as a
// NaN: the host's Float32Array holds one canonical NaN). Inputs: random values over the f16
// range, exact rounding ties (even and odd neighbours), the overflow boundary (65504, the
// largest value that rounds down, 65520), inf, NaNs with payloads, f16 subnormals, f32
// subnormals and -0; every f16 bit pattern for f16 -> f32. Lengths 1, 3 and 1027 (odd: the
// last word of the f16 side is half-used), views at element offsets that the 256-byte binding
// alignment does not allow, with the elements around them left untouched, and chunking.

import type { Gpu } from '../../core/gpu/device.ts';
import { fromHalf, toHalf } from '../../core/gpu/half.ts';
import { flatView } from '../../core/gpu/launch.ts';
import type { Tensor } from '../../core/gpu/tensor.ts';
import { castForward } from '../../core/kernels/elementwise.ts';
import { withBindingLimit } from './elementwise-inputs.ts';
import type { Check, KernelCase } from './types.ts';
import { randu } from './util.ts';

const EXACT = { atol: 0 };

/** Float32Array from raw bits. */
const fromBits = (bits: number[]) => new Float32Array(Uint32Array.from(bits).buffer);

/** Values where f32 -> f16 is delicate; the random fill goes around them. */
function specials(): Float32Array {
  const ulp = (e: number) => 2 ** (e - 10); // f16 spacing in [2^e, 2^(e+1))
  const v = [
    0, -0, 1, -1, 65504, -65504, 65519.996, 65520, -65520, 1e5, -3.4e38, Infinity, -Infinity, NaN,
    1 + ulp(0) / 2, // tie, even neighbour below: 1
    1 + (3 * ulp(0)) / 2, // tie, odd neighbour below: up to 1 + 2 ulp
    1 + ulp(0) / 2 + 2 ** -23, // just above a tie: up
    2 ** -14, // smallest normal f16
    2 ** -14 - 2 ** -25, // rounds up to the smallest normal
    2 ** -24, // smallest subnormal
    2 ** -25, // tie between 0 and 2^-24: 0 (even)
    3 * 2 ** -25, // tie between 2^-24 and 2^-23: 2^-23
    2 ** -25 * 1.5, // above the tie: 2^-24
    1e-6, -1e-7, 5.96e-8, 2.9e-8, 1e-40, -1e-40, // subnormal f16 values, then f32 subnormals (to +-0)
  ];
  const nans = fromBits([0x7f800001, 0xffc00001, 0x7fa5a5a5, 0x7fffffff]); // signalling, negative, payloads
  return Float32Array.from([...v, ...nans]);
}

/** n values: the specials first, then Uniform(-2^e, 2^e) for e cycling over the f16 exponents. */
function castInput(n: number, seed: number): Float32Array {
  const x = new Float32Array(n);
  const r = randu(n, seed, 1);
  for (let i = 0; i < n; i++) x[i] = r[i] * 2 ** ((i % 42) - 26);
  const s = specials();
  x.set(s.subarray(0, Math.min(n, s.length)));
  return x;
}

/** f32 bits as numbers, with every NaN shown as the same value so NaN payloads compare equal. */
function f32Bits(a: Float32Array): Uint32Array {
  const bits = new Uint32Array(Float32Array.from(a).buffer);
  for (let i = 0; i < a.length; i++) if (Number.isNaN(a[i])) bits[i] = 0x7fc00000;
  return bits;
}

async function readBits16(gpu: Gpu, t: Tensor): Promise<Uint16Array> {
  return (await gpu.read(t)) as Uint16Array;
}

async function runToHalf(gpu: Gpu, n: number, seed: number, limit?: { bytes: number; dispatches: number }): Promise<Check[]> {
  const x = castInput(n, seed);
  const tx = gpu.upload(x, [n]);
  const out = gpu.upload(new Uint16Array(n).fill(0x7e00), [n], 'f16');
  const { dispatches } = await withBindingLimit(gpu, limit?.bytes ?? gpu.limits.maxBinding, () => castForward(gpu, out, tx));
  const actual = await readBits16(gpu, out);
  // and back: f16 -> f32 of the result is x rounded to f16
  const back = gpu.upload(new Float32Array(n).fill(-1), [n]);
  castForward(gpu, back, out);
  const round = await gpu.readF32(back);
  for (const t of [tx, out, back]) t.release();
  const checks: Check[] = [
    { name: 'f16 bits', actual, expected: toHalf(x), tol: EXACT },
    { name: 'f16 -> f32 round trip bits', actual: f32Bits(round), expected: f32Bits(fromHalf(toHalf(x))), tol: EXACT },
  ];
  if (limit) checks.push({ name: 'dispatches', actual: [dispatches], expected: [limit.dispatches], tol: EXACT });
  return checks;
}

async function runFromHalf(gpu: Gpu, bits: Uint16Array, shape: number[]): Promise<Check[]> {
  const th = gpu.upload(bits, shape, 'f16');
  const out = gpu.upload(new Float32Array(bits.length).fill(-1), shape);
  castForward(gpu, out, th);
  const actual = await gpu.readF32(out);
  for (const t of [th, out]) t.release();
  return [{ name: 'f32 bits', actual: f32Bits(actual), expected: f32Bits(fromHalf(bits)), tol: EXACT }];
}

/**
 * Views inside bigger buffers, as the trainer's arena segments: f32 elements [a, a + n) of
 * one buffer into f16 elements [b, b + n) of another (b even), and back, every offset below
 * the binding alignment; the elements around both ranges keep their values.
 */
async function runViews(gpu: Gpu, n: number, a: number, b: number, limit?: number): Promise<Check[]> {
  const size = Math.max(a, b) + n + 5;
  const x = castInput(size, 77 + n);
  const f32Buf = gpu.upload(x, [size]);
  const fill16 = toHalf(randu(size, 78, 100));
  const f16Buf = gpu.upload(fill16, [size], 'f16');
  const run = () => castForward(gpu, flatView(f16Buf, b, n).reshape([1, n]), flatView(f32Buf, a, n));
  await withBindingLimit(gpu, limit ?? gpu.limits.maxBinding, run);
  const got16 = await readBits16(gpu, f16Buf);
  const expected16 = Uint16Array.from(fill16);
  expected16.set(toHalf(x.subarray(a, a + n)), b);
  // and back into the f32 buffer at another offset: c = a + 1 (f32 views need no word pairs)
  const c = a + 1;
  const back = () => castForward(gpu, flatView(f32Buf, c, n), flatView(f16Buf, b, n));
  await withBindingLimit(gpu, limit ?? gpu.limits.maxBinding, back);
  const got32 = await gpu.readF32(f32Buf);
  const expected32 = Float32Array.from(x);
  expected32.set(fromHalf(expected16.subarray(b, b + n)), c);
  for (const t of [f32Buf, f16Buf]) t.release();
  return [
    { name: `f16 buffer after f32[${a}..] -> f16[${b}..]`, actual: got16, expected: expected16, tol: EXACT },
    { name: `f32 buffer after f16[${b}..] -> f32[${c}..]`, actual: f32Bits(got32), expected: f32Bits(expected32), tol: EXACT },
  ];
}

/** Every f16 bit pattern: zeros, subnormals, normals, inf and the NaNs of both signs. */
const allHalfBits = () => Uint16Array.from({ length: 65536 }, (_, i) => i);

export const castCases: KernelCase[] = [
  ...[1, 3, 1027, 65537].map((n) => ({ name: `cast f32 -> f16 [${n}]`, run: (gpu: Gpu) => runToHalf(gpu, n, 30 + n) })),
  ...[1, 3, 1027].map((n) => ({ name: `cast f16 -> f32 [${n}]`, run: (gpu: Gpu) => runFromHalf(gpu, toHalf(castInput(n, 50 + n)), [n]) })),
  { name: 'cast f16 -> f32 every f16 value [256, 256]', run: (gpu) => runFromHalf(gpu, allHalfBits(), [256, 256]) },
  // (2048 - 256) / 8 words: chunks of 448 elements -> 448 + 448 + 131
  { name: 'cast f32 -> f16 [1027] chunked under a 2 KiB binding limit', run: (gpu) => runToHalf(gpu, 1027, 40, { bytes: 2048, dispatches: 3 }) },
  { name: 'cast views: f32[3..1030] -> f16[6..1033] and back to f32[4..]', run: (gpu) => runViews(gpu, 1027, 3, 6) },
  { name: 'cast views of 1 element at f32[70], f16[130]', run: (gpu) => runViews(gpu, 1, 70, 130) },
  { name: 'cast views f32[101..] <-> f16[2..], chunked under a 2 KiB binding limit', run: (gpu) => runViews(gpu, 1001, 101, 2, 2048) },
];
