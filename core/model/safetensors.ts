// safetensors reader and writer.
//
// Layout: u64 little-endian header length N, N bytes of UTF-8 JSON
// `{name: {dtype, shape, data_offsets: [b, e]}, "__metadata__"?: {string: string}}`, then the
// data; tensor bytes live at file offsets [8 + N + b, 8 + N + e). Only the header is read up
// front; tensors are read one range at a time, so a 1.7 GB checkpoint never sits in memory whole.
//
// Every error is a SafetensorsError with one line naming the file and, where there is one, the
// tensor, because the usual causes (truncated download, wrong checkpoint, renamed weights) are
// fixed by the user, who needs to know which file to look at.

import { type ByteSource, oneLine } from './source.ts';

export type SafetensorsDType =
  | 'BOOL' | 'U8' | 'I8' | 'F8_E5M2' | 'F8_E4M3' | 'I16' | 'U16' | 'F16' | 'BF16'
  | 'I32' | 'U32' | 'F32' | 'F64' | 'I64' | 'U64';

/** Bytes per element of every dtype the format defines. */
export const DTYPE_BYTES: Readonly<Record<SafetensorsDType, number>> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4,
  F64: 8, I64: 8, U64: 8,
};

/** The reference implementation refuses headers over 100 MB; a real one is ~50 KB for 400 tensors. */
export const MAX_HEADER_BYTES = 100_000_000;

export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
  constructor(
    readonly file: string,
    readonly tensor: string | null,
    detail: string,
  ) {
    super(oneLine(`${file}: ${tensor !== null ? `tensor '${tensor}': ` : ''}${detail}`));
  }
}

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** Absolute byte range in the file: [start, end). */
  start: number;
  end: number;
}

export interface SafetensorsFile {
  source: ByteSource;
  /** source.name, for messages. */
  name: string;
  /** N, the JSON header's byte length. */
  headerLength: number;
  /** 8 + N: file offset of data_offsets 0. */
  dataStart: number;
  /** In header order. */
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
}

// Typed-array views below reinterpret file bytes, which are little-endian. Every WebGPU host is
// little-endian (GPU buffers are too), so check once instead of byte-swapping everywhere.
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
function requireLittleEndian(file: string): void {
  if (!LITTLE_ENDIAN) throw new SafetensorsError(file, null, 'big-endian hosts are not supported');
}

function isDType(s: string): s is SafetensorsDType {
  return Object.prototype.hasOwnProperty.call(DTYPE_BYTES, s);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Read and validate the header. Tensor data is not read. */
export async function parseSafetensorsHeader(src: ByteSource): Promise<SafetensorsFile> {
  requireLittleEndian(src.name);
  const file = src.name;
  const fail = (detail: string, tensor: string | null = null) => new SafetensorsError(file, tensor, detail);
  if (src.size < 8) throw fail(`${src.size} bytes is too small for a safetensors file (8-byte header length missing; truncated download?)`);
  const lenBytes = await src.read(0, 8);
  const n64 = new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(src.size - 8)) {
    throw fail(`header length ${n64} runs past the end of the file (${src.size} bytes; truncated download, or not a safetensors file)`);
  }
  const headerLength = Number(n64);
  if (headerLength > MAX_HEADER_BYTES) throw fail(`header length ${headerLength} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (headerLength < 2) throw fail(`header length ${headerLength} is too small to hold a JSON object`);
  const dataStart = 8 + headerLength;
  const dataSize = src.size - dataStart;

  let json: unknown;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(await src.read(8, dataStart));
    json = JSON.parse(text);
  } catch (e) {
    throw fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw fail(`header is not a JSON object (got ${describe(json)})`);
  }

  const tensors = new Map<string, TensorInfo>();
  const metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw fail(`__metadata__ is ${describe(entry)}, expected an object of strings`);
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== 'string') throw fail(`__metadata__.${k} is ${describe(v)}, expected a string`);
        metadata[k] = v;
      }
      continue;
    }
    tensors.set(name, parseEntry(file, name, entry, dataStart, dataSize));
  }
  return { source: src, name: file, headerLength, dataStart, tensors, metadata };
}

function parseEntry(file: string, name: string, entry: unknown, dataStart: number, dataSize: number): TensorInfo {
  const fail = (detail: string) => new SafetensorsError(file, name, detail);
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw fail(`header entry is ${describe(entry)}, expected {dtype, shape, data_offsets}`);
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  if (typeof dtype !== 'string') throw fail(`dtype is ${describe(dtype)}, expected a string`);
  if (!isDType(dtype)) throw fail(`unknown dtype '${dtype}' (known: ${Object.keys(DTYPE_BYTES).join(', ')})`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw fail(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    throw fail(`data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`);
  }
  const [b, e] = offsets as [number, number];
  if (b > e) throw fail(`data_offsets [${b}, ${e}] end before they begin`);
  if (e > dataSize) throw fail(`data_offsets [${b}, ${e}] run past the end of the data (${dataSize} bytes; truncated file?)`);
  const want = numel(shape) * DTYPE_BYTES[dtype];
  if (e - b !== want) {
    throw fail(`data_offsets [${b}, ${e}] hold ${e - b} bytes but shape ${fmtShape(shape)} of ${dtype} needs ${want}`);
  }
  return { name, dtype, shape: shape.slice(), start: dataStart + b, end: dataStart + e };
}

// ----- lookup -----

/** Edit distance, for "did you mean" lists on missing tensors. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/** Up to `k` names from `names` closest to `name`, closest first. */
export function closestNames(name: string, names: Iterable<string>, k = 3): string[] {
  return [...names]
    .map((n) => ({ n, d: editDistance(name, n) }))
    .sort((x, y) => x.d - y.d || (x.n < y.n ? -1 : 1))
    .slice(0, k)
    .map((x) => x.n);
}

/** The header entry of `name`; throws naming the closest names when it is missing. */
export function tensorInfo(file: SafetensorsFile, name: string): TensorInfo {
  const t = file.tensors.get(name);
  if (t) return t;
  const close = closestNames(name, file.tensors.keys());
  const hint = close.length ? `closest: ${close.map((c) => `'${c}'`).join(', ')}` : 'the file has no tensors';
  throw new SafetensorsError(file.name, name, `missing (${file.tensors.size} tensors in file; ${hint})`);
}

/** The header entry of `name`, after checking it has exactly `shape`. */
export function expectTensorShape(file: SafetensorsFile, name: string, shape: readonly number[]): TensorInfo {
  const t = tensorInfo(file, name);
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new SafetensorsError(file.name, name, `expected shape ${fmtShape(shape)}, got ${fmtShape(t.shape)} (checkpoint does not match config.json?)`);
  }
  return t;
}

// ----- reading -----

export interface ReadTensorOptions {
  /** Checked with expectTensorShape before any data is read. */
  shape?: readonly number[];
}

/** Raw little-endian bytes of one tensor. */
export async function readTensorBytes(file: SafetensorsFile, name: string, opts: ReadTensorOptions = {}): Promise<{ info: TensorInfo; bytes: Uint8Array }> {
  const info = opts.shape ? expectTensorShape(file, name, opts.shape) : tensorInfo(file, name);
  let bytes: Uint8Array;
  try {
    bytes = await file.source.read(info.start, info.end);
  } catch (e) {
    throw new SafetensorsError(file.name, name, `read failed: ${(e as Error).message}`);
  }
  if (bytes.byteLength !== info.end - info.start) {
    throw new SafetensorsError(file.name, name, `read returned ${bytes.byteLength} bytes, expected ${info.end - info.start} (file changed while reading?)`);
  }
  return { info, bytes };
}

/** A typed view over `bytes` if aligned, else over an aligned copy. */
function view<T>(bytes: Uint8Array, align: number, make: (buf: ArrayBufferLike, off: number, len: number) => T): T {
  const b = bytes.byteOffset % align === 0 ? bytes : bytes.slice();
  return make(b.buffer, b.byteOffset, b.byteLength / align);
}

let f16Table: Float32Array | null = null;
/** All 65536 half-precision values as f32 (256 KB), built on first use. */
function halfTable(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) t[h] = f16BitsToF32(h);
  return (f16Table = t);
}

/** IEEE binary16 bits -> number (exact). */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24; // zero / subnormal
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);
/** number -> IEEE binary16 bits, rounding to nearest even (overflow -> inf, NaN stays NaN). */
export function f32ToF16Bits(x: number): number {
  f32Scratch[0] = x;
  const b = u32Scratch[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half: value = m * 2^-24 with m = mant24 >> (14 - e).
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa bumps the exponent, which is the right rounding (up to inf).
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

/** Bytes of a float tensor -> f32. F32 is reinterpreted; F16, BF16 and F64 are converted. */
function toF32(file: SafetensorsFile, info: TensorInfo, bytes: Uint8Array): Float32Array {
  const n = numel(info.shape);
  switch (info.dtype) {
    case 'F32':
      return view(bytes, 4, (buf, off, len) => new Float32Array(buf, off, len));
    case 'F16': {
      const h = view(bytes, 2, (buf, off, len) => new Uint16Array(buf, off, len));
      const table = halfTable();
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = table[h[i]];
      return out;
    }
    case 'BF16': {
      // bf16 is the top half of an f32: shift the bits up, reinterpret.
      const h = view(bytes, 2, (buf, off, len) => new Uint16Array(buf, off, len));
      const bits = new Uint32Array(n);
      for (let i = 0; i < n; i++) bits[i] = h[i] << 16;
      return new Float32Array(bits.buffer);
    }
    case 'F64':
      return Float32Array.from(view(bytes, 8, (buf, off, len) => new Float64Array(buf, off, len)));
    default:
      throw new SafetensorsError(file.name, info.name, `dtype ${info.dtype} is not a float type (use readInt32Tensor / readInt64Tensor)`);
  }
}

/** One tensor as f32 (stored as F32, F16, BF16 or F64); the caller owns the array. */
export async function readTensor(file: SafetensorsFile, name: string, opts: ReadTensorOptions = {}): Promise<{ shape: number[]; data: Float32Array }> {
  const { info, bytes } = await readTensorBytes(file, name, opts);
  return { shape: info.shape.slice(), data: toF32(file, info, bytes) };
}

/**
 * One tensor as IEEE half bits, for f16 uploads: F16 is returned as stored (no rounding);
 * F32 / BF16 / F64 are rounded to nearest even (|x| > 65504 becomes inf).
 */
export async function readTensorF16Bits(file: SafetensorsFile, name: string, opts: ReadTensorOptions = {}): Promise<{ shape: number[]; data: Uint16Array }> {
  const { info, bytes } = await readTensorBytes(file, name, opts);
  if (info.dtype === 'F16') return { shape: info.shape.slice(), data: view(bytes, 2, (buf, off, len) => new Uint16Array(buf, off, len)) };
  const f = toF32(file, info, bytes);
  const out = new Uint16Array(f.length);
  for (let i = 0; i < f.length; i++) out[i] = f32ToF16Bits(f[i]);
  return { shape: info.shape.slice(), data: out };
}

/** An I64 or I32 tensor as BigInt64Array (fixtures store ids and masks as I64). */
export async function readInt64Tensor(file: SafetensorsFile, name: string, opts: ReadTensorOptions = {}): Promise<{ shape: number[]; data: BigInt64Array }> {
  const { info, bytes } = await readTensorBytes(file, name, opts);
  if (info.dtype === 'I64') return { shape: info.shape.slice(), data: view(bytes, 8, (buf, off, len) => new BigInt64Array(buf, off, len)) };
  if (info.dtype === 'I32') {
    const v = view(bytes, 4, (buf, off, len) => new Int32Array(buf, off, len));
    return { shape: info.shape.slice(), data: BigInt64Array.from(v, (x) => BigInt(x)) };
  }
  throw new SafetensorsError(file.name, name, `dtype ${info.dtype} is not I64 or I32`);
}

/** An I32 or I64 tensor as Int32Array; I64 values outside the i32 range are an error. */
export async function readInt32Tensor(file: SafetensorsFile, name: string, opts: ReadTensorOptions = {}): Promise<{ shape: number[]; data: Int32Array }> {
  const { info, bytes } = await readTensorBytes(file, name, opts);
  if (info.dtype === 'I32') return { shape: info.shape.slice(), data: view(bytes, 4, (buf, off, len) => new Int32Array(buf, off, len)) };
  if (info.dtype === 'I64') {
    const v = view(bytes, 8, (buf, off, len) => new BigInt64Array(buf, off, len));
    const out = new Int32Array(v.length);
    for (let i = 0; i < v.length; i++) {
      if (v[i] < -2147483648n || v[i] > 2147483647n) throw new SafetensorsError(file.name, name, `element ${i} = ${v[i]} does not fit in i32`);
      out[i] = Number(v[i]);
    }
    return { shape: info.shape.slice(), data: out };
  }
  throw new SafetensorsError(file.name, name, `dtype ${info.dtype} is not I32 or I64`);
}

// ----- writing -----

export interface TensorToWrite {
  dtype: SafetensorsDType;
  shape: readonly number[];
  /** Little-endian element bytes, e.g. a Float32Array for F32, Uint16Array of bits for F16. */
  data: ArrayBufferView;
}

export interface SafetensorsLayout {
  /** 8-byte length + JSON header padded with spaces to a multiple of 8. */
  header: Uint8Array;
  /** Tensor bytes in file order, directly after the header. */
  parts: { name: string; bytes: Uint8Array }[];
  byteLength: number;
}

/**
 * Plan a safetensors file without copying tensor data, so a checkpoint writer can stream
 * header then parts to disk (a gte-large f32 checkpoint is 1.7 GB). Tensors are ordered by
 * element size, largest first (stable otherwise): with the header padded to 8 bytes, every
 * tensor then starts at a multiple of its element size, so readers can view it without copying.
 */
export function safetensorsLayout(tensors: Record<string, TensorToWrite>, metadata?: Record<string, string>, file = 'model.safetensors'): SafetensorsLayout {
  requireLittleEndian(file);
  const entries = Object.entries(tensors);
  for (const [name, t] of entries) {
    if (name === '__metadata__') throw new SafetensorsError(file, name, 'reserved name');
    if (!isDType(t.dtype)) throw new SafetensorsError(file, name, `unknown dtype '${t.dtype}'`);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new SafetensorsError(file, name, `shape ${JSON.stringify(t.shape)} is not a list of non-negative integers`);
    const want = numel(t.shape) * DTYPE_BYTES[t.dtype];
    if (t.data.byteLength !== want) {
      throw new SafetensorsError(file, name, `data has ${t.data.byteLength} bytes but shape ${fmtShape(t.shape)} of ${t.dtype} needs ${want}`);
    }
  }
  const order = entries.map((e, i) => ({ e, i })).sort((a, b) => DTYPE_BYTES[b.e[1].dtype] - DTYPE_BYTES[a.e[1].dtype] || a.i - b.i);

  const header: Record<string, unknown> = {};
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new SafetensorsError(file, null, `__metadata__.${k} must be a string`);
    }
    header.__metadata__ = metadata;
  }
  const parts: SafetensorsLayout['parts'] = [];
  let offset = 0;
  for (const { e: [name, t] } of order) {
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes.byteLength] };
    parts.push({ name, bytes });
    offset += bytes.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const head = new Uint8Array(8 + padded).fill(0x20, 8); // spaces are valid trailing JSON whitespace
  new DataView(head.buffer).setBigUint64(0, BigInt(padded), true);
  head.set(json, 8);
  return { header: head, parts, byteLength: head.byteLength + offset };
}

/** The whole file in one buffer (tests, small checkpoints); see safetensorsLayout to stream. */
export function serializeSafetensors(tensors: Record<string, TensorToWrite>, metadata?: Record<string, string>): Uint8Array {
  const layout = safetensorsLayout(tensors, metadata);
  const out = new Uint8Array(layout.byteLength);
  out.set(layout.header, 0);
  let at = layout.header.byteLength;
  for (const p of layout.parts) {
    out.set(p.bytes, at);
    at += p.bytes.byteLength;
  }
  return out;
}
