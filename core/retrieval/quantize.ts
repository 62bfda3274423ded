// Compressed forms of an embedding index: int8 codes with one f32 scale per dimension, and sign
// bits. Both are built from the stored (normalised) vectors and searched on the GPU
// (core/kernels/quantized.ts), then the best candidates are rescored with the full vectors
// (core/retrieval/quantize-search.ts). Host-neutral: the CLI and the browser demo share it.
//
// int8    scale_h = max_r |x_rh| / 127 over every row r of the index (1 where a dimension is all
//         zero), code_rh = round(x_rh / scale_h) in [-127, 127]. Row r is ceil(dim / 4) u32
//         words, dimension h in byte h % 4 of word h / 4 (two's complement), padding bytes 0.
//         A query q scores sum_h (q_h scale_h) code_rh: the queries are scaled on the host, the
//         kernel reads the codes. 4x smaller than f32.
// binary  bit h % 32 of word h / 32 of row r is 1 when x_rh > 0 (sign bits, 32 per u32),
//         padding bits 0. A query q scores sum_h q_h s_rh with s = +1 for a set bit and -1 for a
//         clear one (the query stays f32; see shaders/quantized.wgsl for why not Hamming
//         distance). 32x smaller than f32.
// Files are raw little-endian u32 words, [rows, words] row-major, one per index shard
// (index-format.ts names them); the int8 scales are one file of dim f32 values.

export type QuantKind = 'int8' | 'binary';
export const QUANT_KINDS: readonly QuantKind[] = ['int8', 'binary'];

/** Rows kept for exact rescoring per result wanted, by default: c = k x factor. */
export const DEFAULT_RESCORE: Record<QuantKind, number> = { int8: 4, binary: 10 };

/** u32 words per row. */
export function quantWords(kind: QuantKind, dim: number): number {
  return kind === 'int8' ? Math.ceil(dim / 4) : Math.ceil(dim / 32);
}

/** Largest |x| per dimension of rows [n, dim], folded into `into` (start from zeros). */
export function absMax(rows: Float32Array, dim: number, into: Float32Array): Float32Array {
  for (let i = 0; i < rows.length; i += dim) {
    for (let h = 0; h < dim; h++) {
      const a = Math.abs(rows[i + h]);
      if (a > into[h]) into[h] = a;
    }
  }
  return into;
}

/** Per-dimension int8 scales from the largest |x| per dimension (1 for an all-zero dimension). */
export function int8Scales(absMax: Float32Array): Float32Array {
  return Float32Array.from(absMax, (m) => (m > 0 && Number.isFinite(m) ? m / 127 : 1));
}

/** Rows [n, dim] -> int8 codes, 4 per u32 word: [n, ceil(dim / 4)]. */
export function quantizeInt8(rows: Float32Array, dim: number, scales: Float32Array): Uint32Array {
  const n = rows.length / dim;
  const W = quantWords('int8', dim);
  const out = new Uint32Array(n * W);
  const inv = Float64Array.from(scales, (s) => 1 / s);
  for (let r = 0; r < n; r++) {
    for (let h = 0; h < dim; h++) {
      const c = Math.max(-127, Math.min(127, Math.round(rows[r * dim + h] * inv[h])));
      out[r * W + (h >> 2)] |= (c & 0xff) << (8 * (h & 3));
    }
  }
  return out;
}

/** Rows [n, dim] -> sign bits, 32 per u32 word: [n, ceil(dim / 32)]. */
export function quantizeBinary(rows: Float32Array, dim: number): Uint32Array {
  const n = rows.length / dim;
  const W = quantWords('binary', dim);
  const out = new Uint32Array(n * W);
  for (let r = 0; r < n; r++) {
    for (let h = 0; h < dim; h++) {
      if (rows[r * dim + h] > 0) out[r * W + (h >> 5)] |= 1 << (h & 31);
    }
  }
  return out;
}

/** Code of dimension h of a row of int8 words (for references and tests). */
export function int8Code(words: ArrayLike<number>, rowBase: number, h: number): number {
  const b = (words[rowBase + (h >> 2)] >>> (8 * (h & 3))) & 0xff;
  return b >= 128 ? b - 256 : b;
}

/** Sign (+1 or -1) of dimension h of a row of binary words. */
export function binarySign(words: ArrayLike<number>, rowBase: number, h: number): number {
  return (words[rowBase + (h >> 5)] >>> (h & 31)) & 1 ? 1 : -1;
}

/** Little-endian bytes of u32 words, and back. */
export function wordsToBytes(w: Uint32Array): Uint8Array {
  const out = new Uint8Array(w.length * 4);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < w.length; i++) dv.setUint32(i * 4, w[i], true);
  return out;
}

export function bytesToWords(b: Uint8Array): Uint32Array {
  if (b.byteLength % 4) throw new Error(`${b.byteLength} bytes are not whole u32 words`);
  const out = new Uint32Array(b.byteLength / 4);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = dv.getUint32(i * 4, true);
  return out;
}

export function scalesToBytes(s: Float32Array): Uint8Array {
  const out = new Uint8Array(s.length * 4);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < s.length; i++) dv.setFloat32(i * 4, s[i], true);
  return out;
}

export function bytesToScales(b: Uint8Array, dim: number, file: string): Float32Array {
  if (b.byteLength !== dim * 4) throw new Error(`${file}: ${b.byteLength} bytes, expected ${dim} f32 scales`);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out = Float32Array.from({ length: dim }, (_, i) => dv.getFloat32(i * 4, true));
  if (out.some((s) => !(s > 0) || !Number.isFinite(s))) throw new Error(`${file}: a scale is not a positive finite number`);
  return out;
}
