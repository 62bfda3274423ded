// Embedding index files: the on-disk index `aqa index` builds and the browser export it writes
// with --export. Host-neutral (no node:* imports): the Node store (node/index-store.ts) and the
// browser demo parse the same manifests with the functions below.
//
// ON-DISK INDEX (a directory; every file is written atomically: temp file, fsync, rename)
//   manifest.json     IndexManifest (below). Written after pids.json, then again after each
//                     shard: a shard is listed only once its file has been renamed into place.
//   pids.json         JSON array of the N paper ids in corpus-file order; row r of the index
//                     (shards concatenated in order) is the passage of pids[r].
//   shard-00000.f16   rows [0, S) as raw little-endian IEEE half floats, [rows, dim] row-major,
//   shard-00001.f16   no header; `.f32` files hold float32 instead. S = shardSize (50,000 by
//   ...               default, 38 MB of f16 at dim 384, 100 MB at dim 1024); the last shard
//                     holds the remainder. Shard i is embedded on its own (length-sorted
//                     batches inside it), so rebuilding one shard gives the same bytes.
//   The identity block says which model and settings produced the vectors:
//     configSha256      sha256 of config.json's bytes
//     tokenizerSha256   sha256 of tokenizer.json's bytes
//     weightsHash       sha256 over, per weight file in name order (model.safetensors, or the
//                       shards listed by model.safetensors.index.json): the file name, its size
//                       and the sha256 of the whole file, so any changed weight byte changes it.
//                       The CLI caches each file's digest by (path, size, mtime, inode), so an
//                       unchanged checkpoint is read once (node/file-digest.ts).
//     pooling, normalize, passagePrefix, maxLength (tokens, after the model's position cap),
//     maxChars (passage cut), precision (what the encoder ran in: f32, or f16 weights and
//     activations; absent in indexes written before it existed, which were f32), dtype, dim,
//     shardSize, corpus sha256 and count.
//   part (only in a part of a multi-machine build, aqa index --shard i/n): {index, of,
//                     firstShard, endShard}: this directory holds shards [firstShard, endShard)
//                     = [floor(index*S/of), floor((index+1)*S/of)) of the S shards of the whole
//                     index, with their whole-index names and rows; shards then lists a prefix
//                     of that range and complete means the range is done. pids.json is the
//                     whole corpus's. aqa index merge joins the parts into an index without part.
//   Compressed forms (optional, aqa index --quantize; core/retrieval/quantize.ts has the codes):
//   shard-00000.int8  int8 codes of shard 0's rows, [rows, ceil(dim / 4)] little-endian u32
//   shard-00000.bin   sign bits of shard 0's rows, [rows, ceil(dim / 32)] little-endian u32
//   int8-scales.f32   the dim per-dimension int8 scales, little-endian f32
//   listed in manifest.quantized: [{kind, rescore, source, files: [{file, rows, bytes, sha256}],
//   scales?: {file, sha256}}], the first one is what aqa search uses by default. source is the
//   sha256 over the shard sha256s the form was made from (a form whose source differs is stale
//   and is rebuilt from the stored vectors, never re-embedded). The f16/f32 shards stay: the
//   search rescores its candidates with them.
//   A build into a directory whose manifest has another identity is refused (or, with --force,
//   the old files are removed and it starts over); the same identity resumes after the last
//   listed shard.
//
// BROWSER EXPORT (a directory; fetch manifest.json, then the vector files and passages.json)
//   manifest.json     ExportManifest: { format: 'aqa-browser-index', version: 1, dtype, dim,
//                     count, model: {name, pooling, normalize, queryPrefix, passagePrefix,
//                     maxLength}, files: [{file, start, rows, bytes, sha256}], passages:
//                     'passages.json', credit? }; credit (optional) says where the passages
//                     come from and under which licences, for the page to show (aqa index
//                     --credit); absent, the page credits no source.
//   vectors-00000.f16 the index shards, byte for byte: raw little-endian f16 (or f32) rows
//   ...               [rows, dim]; file i holds rows [start, start + rows).
//   passages.json     JSON array of {pid, title, snippet} in row order: the title and the first
//                     SNIPPET_CHARS code points of the abstract (cut at a space, "..." added), for
//                     display next to a search hit.
//   decodeVectors(bytes, dtype) below turns a fetched file into a Float32Array.
//   quantized (optional): {kind, rescore, files: [{file, start, rows, bytes, sha256}], scales?:
//                     {file, sha256}}: the index's default compressed form, files named as in
//                     the index (codes-00000.int8 / .bin, int8-scales.f32); the demo searches
//                     it and rescores with rows read from the vector files.

import type { Precision } from '../model/load.ts';
import { f16BitsToF32, f32ToF16Bits } from '../model/safetensors.ts';
import { QUANT_KINDS, type QuantKind } from './quantize.ts';
import { fieldMessage, Fields, type FieldsOptions, isObject, parseJsonObject, type Rule } from '../util/fields.ts';

export const INDEX_FORMAT = 'aqa-index';
export const INDEX_VERSION = 1;
export const EXPORT_FORMAT = 'aqa-browser-index';
export const EXPORT_VERSION = 1;
export const DEFAULT_SHARD_SIZE = 50_000;
/** Abstract characters kept per paper in passages.json: ~2 lines of a results list. */
const SNIPPET_CHARS = 300;

export type VectorDType = 'f16' | 'f32';

/** What must be equal for two builds to produce the same vectors. */
export interface IndexIdentity {
  configSha256: string;
  tokenizerSha256: string;
  weightsHash: string;
  pooling: 'cls' | 'mean';
  normalize: boolean;
  passagePrefix: string;
  /** Tokens per passage, special tokens included. */
  maxLength: number;
  /** Passage cut in code points (core/data/passages.ts). */
  maxChars: number;
  /** The encoder's precision: an f16 run gives (slightly) other vectors than an f32 one. */
  precision: Precision;
  dtype: VectorDType;
  dim: number;
  shardSize: number;
  corpusSha256: string;
  count: number;
}

export interface ShardEntry {
  file: string;
  /** First row. */
  start: number;
  rows: number;
  bytes: number;
  sha256: string;
  /** Seconds spent embedding this shard, and the batch size used (informational). */
  seconds: number;
  batchSize: number;
}

/** Which part of a multi-machine build a directory holds (see the file comment). */
export interface IndexPart {
  index: number;
  of: number;
  firstShard: number;
  endShard: number;
}

export interface QuantizedFile {
  file: string;
  /** First row (export files; shard files start where their shard does). */
  start?: number;
  rows: number;
  bytes: number;
  sha256: string;
}

/** A compressed form of the vectors (see the header). */
export interface QuantizedForm {
  kind: QuantKind;
  /** Candidates per result rescored exactly, by default. */
  rescore: number;
  /** sha256 over the shard sha256s it was made from (index only). */
  source?: string;
  files: QuantizedFile[];
  scales?: { file: string; sha256: string };
}

export interface IndexManifest {
  format: typeof INDEX_FORMAT;
  version: number;
  identity: IndexIdentity;
  model: {
    /** As given on the command line (directory or Hub id). */
    name: string;
    /** Resolved local directory at build time. */
    dir: string;
    arch: string;
    queryPrefix: string;
    weightsHashMethod: string;
  };
  corpus: { file: string; bytes: number };
  /** Present only in a part of a multi-machine build. */
  part?: IndexPart;
  /** Finished shards in row order (a prefix of all shards, or of the part's). */
  shards: ShardEntry[];
  /** All shards are listed. */
  complete: boolean;
  created: string;
  updated: string;
  /** Compressed forms, the default first (absent: none). */
  quantized?: QuantizedForm[];
}

export interface ExportFile {
  file: string;
  start: number;
  rows: number;
  bytes: number;
  sha256: string;
}

export interface ExportManifest {
  format: typeof EXPORT_FORMAT;
  version: number;
  dtype: VectorDType;
  dim: number;
  count: number;
  model: { name: string; pooling: 'cls' | 'mean'; normalize: boolean; queryPrefix: string; passagePrefix: string; maxLength: number };
  files: ExportFile[];
  passages: string;
  /** Source and licences of the passages, shown by the demo (optional). */
  credit?: string;
  /** A compressed form to search, with rescoring from the vector files (optional). */
  quantized?: QuantizedForm;
}

export interface ExportPassage {
  pid: string;
  title: string;
  snippet: string;
}

export class IndexFormatError extends Error {
  override name = 'IndexFormatError';
}

export function bytesPerValue(dtype: VectorDType): number {
  return dtype === 'f16' ? 2 : 4;
}

/** `shard-00012.f16`. */
export function shardFileName(i: number, dtype: VectorDType): string {
  return `shard-${String(i).padStart(5, '0')}.${dtype}`;
}

/** `shard-00012.int8` / `shard-00012.bin` (index), `codes-00012.int8` (export). */
export function quantFileName(i: number, kind: QuantKind, prefix: 'shard' | 'codes' = 'shard'): string {
  return `${prefix}-${String(i).padStart(5, '0')}.${kind === 'int8' ? 'int8' : 'bin'}`;
}
export const INT8_SCALES_FILE = 'int8-scales.f32';

/** `vectors-00012.f16`. */
export function exportFileName(i: number, dtype: VectorDType): string {
  return `vectors-${String(i).padStart(5, '0')}.${dtype}`;
}

/** Number of shards for `count` rows. */
export function shardCount(count: number, shardSize: number): number {
  return Math.ceil(count / shardSize);
}

/** Shards [first, end) of part i of n: whole shard files by position, so parts meet exactly. */
export function partShards(i: number, n: number, shards: number): [number, number] {
  return [Math.floor((i * shards) / n), Math.floor(((i + 1) * shards) / n)];
}

/** Row range [start, end) of shard i. */
export function shardRange(i: number, count: number, shardSize: number): [number, number] {
  return [i * shardSize, Math.min((i + 1) * shardSize, count)];
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Rows [n, dim] as the file bytes: little-endian f32, or f16 rounded to nearest even. */
export function encodeVectors(data: Float32Array, dtype: VectorDType): Uint8Array {
  if (dtype === 'f32') {
    if (LITTLE_ENDIAN) return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
    const out = new Uint8Array(data.length * 4);
    const dv = new DataView(out.buffer);
    for (let i = 0; i < data.length; i++) dv.setFloat32(i * 4, data[i], true);
    return out;
  }
  const out = new Uint8Array(data.length * 2);
  const dv = new DataView(out.buffer);
  const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
  for (let i = 0; i < data.length; i++) {
    // Inline round-to-nearest-even for f32 exponents that stay normal in f16 (2^-14 <= |x| < 2^16,
    // every component of a unit vector but the tiniest): 5M such values took 0.54 s here against
    // 0.95 s through f32ToF16Bits, which handles the rest (subnormals, overflow, NaN); both give
    // the same bits (test/index.test.ts).
    const b = bits[i];
    const e = (b >>> 23) & 0xff;
    let h: number;
    if (e >= 113 && e <= 142) {
      const mant = b & 0x7fffff;
      h = ((b >>> 16) & 0x8000) | ((e - 112) << 10) | (mant >>> 13);
      const rem = mant & 0x1fff;
      if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // a carry into the exponent is still right
    } else {
      h = f32ToF16Bits(data[i]);
    }
    dv.setUint16(i * 2, h, true);
  }
  return out;
}

/** File bytes -> f32 values (the inverse of encodeVectors; f16 widens exactly). */
export function decodeVectors(bytes: Uint8Array, dtype: VectorDType): Float32Array {
  const bpe = bytesPerValue(dtype);
  if (bytes.byteLength % bpe) throw new IndexFormatError(`${bytes.byteLength} bytes are not whole ${dtype} values`);
  const n = bytes.byteLength / bpe;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  if (dtype === 'f32') {
    if (LITTLE_ENDIAN && bytes.byteOffset % 4 === 0) out.set(new Float32Array(bytes.buffer, bytes.byteOffset, n));
    else for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
  } else {
    const t = halfTable();
    for (let i = 0; i < n; i++) out[i] = t[dv.getUint16(i * 2, true)];
  }
  return out;
}

let half: Float32Array | null = null;
/** Every f16 bit pattern as f32 (256 KiB): a lookup per value instead of a pow (5M values: 0.63 s vs 4.7 s). */
function halfTable(): Float32Array {
  if (half) return half;
  half = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) half[h] = f16BitsToF32(h);
  return half;
}

/** Fields of `a` and `b` that differ, as `name: a vs b` (short values; hashes cut to 12 hex digits). */
export function identityDiff(a: IndexIdentity, b: IndexIdentity): string[] {
  const show = (v: unknown) => {
    const s = JSON.stringify(v);
    return typeof v === 'string' && /^[0-9a-f]{64}$/.test(v) ? v.slice(0, 12) : s;
  };
  const out: string[] = [];
  for (const k of Object.keys(a) as (keyof IndexIdentity)[]) {
    if (a[k] !== b[k]) out.push(`${k}: ${show(a[k])} vs ${show(b[k])}`);
  }
  return out;
}

/** The passage snippet: the first `max` code points of the abstract, cut back to a space. */
export function snippet(abstract: string, max = SNIPPET_CHARS): string {
  const cps = Array.from(abstract.trim());
  if (cps.length <= max) return cps.join('');
  let cut = cps.slice(0, max).join('');
  const sp = cut.lastIndexOf(' ');
  if (sp > max / 2) cut = cut.slice(0, sp);
  return `${cut.replace(/[\s.,;:]+$/, '')}...`;
}

// ---- manifest parsing: every problem names the file and the field ----

const INDEX_FIELDS: FieldsOptions = { error: (file, field, what) => new IndexFormatError(fieldMessage(file, field, what)) };
const ANY_NUMBER: Rule = { test: () => true, says: 'a number' };


const DTYPES = ['f16', 'f32'] as const;
const PRECISIONS = ['f32', 'f16'] as const;
const POOLINGS = ['cls', 'mean'] as const;
const SHA256 = /^[0-9a-f]{64}$/;

function sha(f: Fields, name: string): string {
  const s = f.string(name);
  if (!SHA256.test(s)) f.failAt(name, 'not a sha256 hex digest');
  return s;
}

/** Check the shard list: consecutive row ranges from shard `first` (0 but in a part), the expected names and sizes. */
function checkShards(file: string, shards: ShardEntry[], id: IndexIdentity, first: number): void {
  const rowBytes = id.dim * bytesPerValue(id.dtype);
  shards.forEach((s, j) => {
    const i = first + j;
    const [start, end] = shardRange(i, id.count, id.shardSize);
    const where = `${file}: shards[${j}]`;
    if (s.file !== shardFileName(i, id.dtype)) throw new IndexFormatError(`${where}.file: expected ${shardFileName(i, id.dtype)}, got ${JSON.stringify(s.file)}`);
    if (s.start !== start || s.rows !== end - start) throw new IndexFormatError(`${where}: rows [${s.start}, ${s.start + s.rows}) but shard ${i} must hold [${start}, ${end})`);
    if (s.bytes !== s.rows * rowBytes) throw new IndexFormatError(`${where}.bytes: ${s.bytes}, expected ${s.rows} x ${rowBytes}`);
  });
}

export function parseIndexManifest(text: string, file = 'manifest.json'): IndexManifest {
  const f = new Fields(file, parseJsonObject(text, file, (m) => new IndexFormatError(m)), '', INDEX_FIELDS);
  const format = f.string('format');
  if (format !== INDEX_FORMAT) f.failAt('format', `expected "${INDEX_FORMAT}", got ${JSON.stringify(format)} (not an index built by aqa index)`);
  const version = f.number('version', 'posInt');
  if (version > INDEX_VERSION) f.failAt('version', `${version} is newer than this program reads (${INDEX_VERSION}); upgrade, or rebuild the index`);
  const i = f.object('identity');
  const identity: IndexIdentity = {
    configSha256: sha(i, 'configSha256'),
    tokenizerSha256: sha(i, 'tokenizerSha256'),
    weightsHash: sha(i, 'weightsHash'),
    pooling: i.oneOf('pooling', POOLINGS),
    normalize: i.bool('normalize'),
    passagePrefix: i.string('passagePrefix'),
    maxLength: i.number('maxLength', 'posInt'),
    maxChars: i.number('maxChars', 'posInt'),
    precision: i.oneOf('precision', PRECISIONS, 'f32'),
    dtype: i.oneOf('dtype', DTYPES),
    dim: i.number('dim', 'posInt'),
    shardSize: i.number('shardSize', 'posInt'),
    corpusSha256: sha(i, 'corpusSha256'),
    count: i.number('count', 'nonNegInt'),
  };
  const m = f.object('model');
  const c = f.object('corpus');
  const shards: ShardEntry[] = f.objects('shards').map((s) => ({
    file: s.string('file'),
    start: s.number('start', 'nonNegInt'),
    rows: s.number('rows', 'posInt'),
    bytes: s.number('bytes', 'posInt'),
    sha256: sha(s, 'sha256'),
    seconds: s.number('seconds', ANY_NUMBER),
    batchSize: s.number('batchSize', 'posInt'),
  }));
  const total = shardCount(identity.count, identity.shardSize);
  let part: IndexPart | undefined;
  if (f.has('part')) {
    const p = f.object('part');
    part = { index: p.number('index', 'nonNegInt'), of: p.number('of', 'posInt'), firstShard: p.number('firstShard', 'nonNegInt'), endShard: p.number('endShard', 'nonNegInt') };
    if (part.index >= part.of) p.failAt('index', `${part.index} but parts are numbered 0 to ${part.of - 1}`);
    const [a, b] = partShards(part.index, part.of, total);
    if (part.firstShard !== a || part.endShard !== b) f.failAt('part', `shards [${part.firstShard}, ${part.endShard}) but part ${part.index} of ${part.of} of ${total} shards is [${a}, ${b})`);
  }
  const [first, end] = part ? [part.firstShard, part.endShard] : [0, total];
  if (shards.length > end - first) f.failAt('shards', `${shards.length} listed, but ${part ? `part ${part.index} of ${part.of} holds` : `${identity.count} rows make`} ${end - first}`);
  checkShards(file, shards, identity, first);
  const complete = f.bool('complete');
  if (complete !== (shards.length === end - first)) f.failAt('complete', `${complete} but ${shards.length} of ${end - first} shards are listed`);
  return {
    format: INDEX_FORMAT,
    version,
    identity,
    model: { name: m.string('name'), dir: m.string('dir'), arch: m.string('arch'), queryPrefix: m.string('queryPrefix'), weightsHashMethod: m.string('weightsHashMethod') },
    corpus: { file: c.string('file'), bytes: c.number('bytes', 'nonNegInt') },
    ...(part ? { part } : {}),
    shards,
    complete,
    created: f.string('created'),
    updated: f.string('updated'),
    ...(f.has('quantized') ? { quantized: f.objects('quantized').map(parseQuantized) } : {}),
  };
}

/** Words per row of a form, for checking file sizes. */
function quantRowBytes(kind: QuantKind, dim: number): number {
  return 4 * (kind === 'int8' ? Math.ceil(dim / 4) : Math.ceil(dim / 32));
}

function parseQuantized(q: Fields): QuantizedForm {
  const kind = q.oneOf('kind', QUANT_KINDS);
  const files = q.objects('files').map((x) => ({
    file: x.string('file'),
    ...(x.has('start') ? { start: x.number('start', 'nonNegInt') } : {}),
    rows: x.number('rows', 'posInt'),
    bytes: x.number('bytes', 'posInt'),
    sha256: sha(x, 'sha256'),
  }));
  files.forEach((x, i) => {
    if (!/^[A-Za-z0-9._-]+$/.test(x.file) || x.file.startsWith('.')) q.failAt('files', `[${i}].file ${JSON.stringify(x.file)} is not a plain file name`);
  });
  let scales: QuantizedForm['scales'];
  if (q.has('scales')) {
    const s = q.object('scales');
    scales = { file: s.string('file'), sha256: sha(s, 'sha256') };
  }
  if (kind === 'int8' && !scales) q.failAt('scales', 'missing (an int8 form needs its scales file)');
  return { kind, rescore: q.number('rescore', 'posInt'), ...(q.has('source') ? { source: sha(q, 'source') } : {}), files, ...(scales ? { scales } : {}) };
}

/** Row coverage and file sizes of a form against the index's rows and dim. */
export function checkQuantized(where: string, q: QuantizedForm, rows: readonly number[], dim: number): void {
  if (q.files.length !== rows.length) throw new IndexFormatError(`${where}: ${q.kind}: ${q.files.length} files for ${rows.length} vector files`);
  q.files.forEach((x, i) => {
    if (x.rows !== rows[i] || x.bytes !== x.rows * quantRowBytes(q.kind, dim)) throw new IndexFormatError(`${where}: ${q.kind}: files[${i}]: ${x.rows} rows in ${x.bytes} bytes, expected ${rows[i]} x ${quantRowBytes(q.kind, dim)}`);
  });
}

export function parseExportManifest(text: string, file = 'manifest.json'): ExportManifest {
  const f = new Fields(file, parseJsonObject(text, file, (m) => new IndexFormatError(m)), '', INDEX_FIELDS);
  const format = f.string('format');
  if (format !== EXPORT_FORMAT) f.failAt('format', `expected "${EXPORT_FORMAT}", got ${JSON.stringify(format)}`);
  const version = f.number('version', 'posInt');
  if (version > EXPORT_VERSION) f.failAt('version', `${version} is newer than this program reads (${EXPORT_VERSION})`);
  const dtype = f.oneOf('dtype', DTYPES);
  const dim = f.number('dim', 'posInt');
  const count = f.number('count', 'nonNegInt');
  const m = f.object('model');
  const files: ExportFile[] = f.objects('files').map((s) => ({ file: s.string('file'), start: s.number('start', 'nonNegInt'), rows: s.number('rows', 'posInt'), bytes: s.number('bytes', 'posInt'), sha256: sha(s, 'sha256') }));
  let next = 0;
  files.forEach((x, i) => {
    if (x.start !== next) throw new IndexFormatError(`${file}: files[${i}].start: ${x.start}, expected ${next} (files must cover the rows in order)`);
    if (x.bytes !== x.rows * dim * bytesPerValue(dtype)) throw new IndexFormatError(`${file}: files[${i}].bytes: ${x.bytes}, expected ${x.rows} x ${dim} x ${bytesPerValue(dtype)}`);
    if (!/^[A-Za-z0-9._-]+$/.test(x.file) || x.file.startsWith('.')) throw new IndexFormatError(`${file}: files[${i}].file: ${JSON.stringify(x.file)} is not a plain file name`);
    next += x.rows;
  });
  if (next !== count) f.failAt('files', `cover ${next} rows, count is ${count}`);
  return {
    format: EXPORT_FORMAT,
    version,
    dtype,
    dim,
    count,
    model: {
      name: m.string('name'),
      pooling: m.oneOf('pooling', POOLINGS),
      normalize: m.bool('normalize'),
      queryPrefix: m.string('queryPrefix'),
      passagePrefix: m.string('passagePrefix'),
      maxLength: m.number('maxLength', 'posInt'),
    },
    files,
    passages: f.string('passages'),
    ...(f.has('credit') ? { credit: f.string('credit') } : {}),
    ...(f.has('quantized') ? { quantized: quantizedOf(f, files, dim, file) } : {}),
  };
}

function quantizedOf(f: Fields, files: ExportFile[], dim: number, file: string): QuantizedForm {
  const q = parseQuantized(f.object('quantized'));
  checkQuantized(`${file}: quantized`, q, files.map((x) => x.rows), dim);
  return q;
}

/** passages.json of an export: an array of {pid, title, snippet}, `count` long. */
export function parseExportPassages(text: string, count: number, file = 'passages.json'): ExportPassage[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new IndexFormatError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(v)) throw new IndexFormatError(`${file}: expected a JSON array`);
  if (v.length !== count) throw new IndexFormatError(`${file}: ${v.length} passages, the manifest says ${count}`);
  return v.map((e, i) => {
    if (!isObject(e)) throw new IndexFormatError(`${file}: [${i}]: not an object`);
    const f = Fields.of(file, e, `[${i}]`, INDEX_FIELDS);
    return { pid: f.string('pid'), title: f.string('title'), snippet: f.string('snippet') };
  });
}

/** pids.json of an index: an array of `count` distinct strings. */
export function parsePids(text: string, count: number, file = 'pids.json'): string[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new IndexFormatError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(v) || v.some((p) => typeof p !== 'string')) throw new IndexFormatError(`${file}: expected a JSON array of pid strings`);
  if (v.length !== count) throw new IndexFormatError(`${file}: ${v.length} pids, the manifest says ${count}`);
  return v as string[];
}
