// Exact transport of result arrays from the page to Node: the bytes of the typed array as
// base64 plus its dtype, or of an even sample of a big array. Browser-safe (btoa/atob, no
// node:*), used on both sides.

export interface EncodedArray {
  dtype: 'f32' | 'i32' | 'u32' | 'f64';
  /** Length of the original array. */
  length: number;
  /** 1: every element. s > 1: the elements at sampleIndices(length, s). */
  stride: number;
  base64: string;
}

export type DecodedArray = Float32Array | Int32Array | Uint32Array | Float64Array;

/**
 * Indices 0, s, 2s, ... plus the last one. An even stride is bumped to odd so that on
 * power-of-two row lengths (8192 columns, say) the sample walks through every column instead
 * of revisiting the same few.
 */
export function sampleIndices(length: number, stride: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < length; i += stride) out.push(i);
  if (length > 0 && out[out.length - 1] !== length - 1) out.push(length - 1);
  return out;
}

export function strideFor(length: number, maxElements: number): number {
  if (length <= maxElements) return 1;
  const s = Math.ceil(length / Math.max(1, maxElements - 1));
  return s % 2 === 0 ? s + 1 : s;
}

/** Encode a (or, when longer than maxElements, a strided sample of it) as exact bytes. */
export function encodeArray(a: ArrayLike<number>, maxElements = Infinity): EncodedArray {
  const stride = strideFor(a.length, maxElements);
  let src: ArrayLike<number> = a;
  if (stride > 1) {
    const idx = sampleIndices(a.length, stride);
    const ctor = a instanceof Float32Array ? Float32Array : a instanceof Int32Array ? Int32Array : a instanceof Uint32Array ? Uint32Array : Float64Array;
    const s = new ctor(idx.length);
    idx.forEach((j, i) => (s[i] = a[j]));
    src = s;
  }
  // Other array kinds (plain arrays, u16 halves) widen losslessly to f64.
  const typed = src instanceof Float32Array || src instanceof Int32Array || src instanceof Uint32Array ? src : Float64Array.from(src);
  const dtype = typed instanceof Float32Array ? 'f32' : typed instanceof Int32Array ? 'i32' : typed instanceof Uint32Array ? 'u32' : 'f64';
  const bytes = new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
  let bin = '';
  // 32 KiB per fromCharCode call keeps the spread far below engines' argument limits.
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return { dtype, length: a.length, stride, base64: btoa(bin) };
}

/** The transported elements (the sample itself when stride > 1). */
export function decodeArray(e: EncodedArray): DecodedArray {
  const bin = atob(e.base64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const ctor = { f32: Float32Array, i32: Int32Array, u32: Uint32Array, f64: Float64Array }[e.dtype];
  return new ctor(bytes.buffer, 0, bytes.length / ctor.BYTES_PER_ELEMENT);
}

/** The same elements of a local array that e carries, for an element-wise comparison. */
export function pickLike(e: EncodedArray, a: ArrayLike<number>): ArrayLike<number> {
  if (e.stride === 1) return a;
  return sampleIndices(a.length, e.stride).map((i) => a[i]);
}

/**
 * Whether a reference computed here matches the sample of one computed on the other side, up
 * to float64 noise: V8 builds differ in the last bits of Math.exp (1 ulp, ~2e-16 relative),
 * while a reference that depends on the adapter (dispatch counts follow
 * maxStorageBufferBindingSize: 128 MiB on llvmpipe, 1 GiB on SwiftShader) differs by O(1).
 */
export function sameReference(sample: EncodedArray, local: ArrayLike<number>): boolean {
  if (sample.length !== local.length) return false;
  const theirs = decodeArray(sample);
  const ours = pickLike(sample, local);
  for (let i = 0; i < theirs.length; i++) {
    const a = theirs[i], b = ours[i];
    if (Number.isNaN(a) && Number.isNaN(b)) continue;
    if (!(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)))) return false;
  }
  return true;
}
