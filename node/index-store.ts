// The on-disk embedding index (format: core/retrieval/index-format.ts): build with resume, open,
// read shards, upload to the GPU, search, and write the browser export.
//
// Build order, so that a crash at any point loses at most the shard being embedded:
//   1. identity: hashes of the model files and the corpus file, the settings;
//   2. an existing manifest with another identity is refused (--force removes the old files);
//      the same identity keeps its listed shards whose file still has the recorded size and
//      sha256 (a damaged one is rebuilt from there on);
//   3. pids.json, then for each missing shard: embed its passages (length-sorted batches inside
//      the shard), write the file atomically, and only then rewrite the manifest listing it.
// A part of a multi-machine build (--shard i/n, `part`) does the same for its range of shards
// only; node/index-merge.ts joins the parts.
// The model is loaded only when a shard is actually missing, so a finished index with --export,
// or a refused one, never pays the model load.

import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, stat, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DataError } from '../core/data/aqa.ts';
import type { CorpusStats } from '../core/data/corpus.ts';
import { PASSAGE_MAX_CHARS, type Passages } from '../core/data/passages.ts';
import { isCpuAdapter } from '../core/gpu/adapter.ts';
import type { Gpu } from '../core/gpu/device.ts';
import { loadConfig } from '../core/model/config.ts';
import type { Precision } from '../core/model/load.ts';
import { type EmbeddingSettings, resolveEmbeddingSettings } from '../core/model/presets.ts';
import { type EmbedOptions, firstNonFiniteRow } from '../core/retrieval/embed.ts';
import {
  DEFAULT_SHARD_SIZE,
  decodeVectors,
  encodeVectors,
  EXPORT_FORMAT,
  EXPORT_VERSION,
  type ExportFile,
  type ExportManifest,
  exportFileName,
  type IndexIdentity,
  type IndexManifest,
  type IndexPart,
  identityDiff,
  INDEX_FORMAT,
  INT8_SCALES_FILE,
  INDEX_VERSION,
  parseIndexManifest,
  parsePids,
  partShards,
  type ShardEntry,
  shardCount,
  shardFileName,
  shardRange,
  snippet,
  type VectorDType,
} from '../core/retrieval/index-format.ts';
import type { QuantKind } from '../core/retrieval/quantize.ts';
import type { QuantizedIndex } from '../core/retrieval/quantize-search.ts';
import { GpuIndex } from '../core/retrieval/search.ts';
import { readPassages, streamCorpus } from './data.ts';
import { cachedSha256, defaultHashCache, streamSha256 } from './file-digest.ts';
import { localModelFiles, writeFileAtomic } from './files.ts';

/** A user-facing index problem: one line naming the directory or file. */
export class IndexError extends Error {
  override name = 'IndexError';
}

export const WEIGHTS_HASH_METHOD =
  'sha256 over each weight file in name order: name, size, sha256 of the whole file';

/** sha256 of a whole file, streamed. */
export async function sha256File(path: string): Promise<string> {
  try {
    return await streamSha256(path);
  } catch (e) {
    throw new IndexError((e as Error).message);
  }
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export interface ModelFingerprint {
  configSha256: string;
  tokenizerSha256: string;
  weightsHash: string;
}

/** The weight files of a model folder: model.safetensors, or the shards its index names. */
async function weightFiles(dir: string): Promise<string[]> {
  const single = join(dir, 'model.safetensors');
  if (await isFile(single)) return ['model.safetensors'];
  const indexPath = join(dir, 'model.safetensors.index.json');
  if (!(await isFile(indexPath))) throw new IndexError(`${dir}: no model.safetensors or model.safetensors.index.json`);
  let map: unknown;
  try {
    map = (JSON.parse(await readFile(indexPath, 'utf8')) as { weight_map?: unknown }).weight_map;
  } catch (e) {
    throw new IndexError(`${indexPath}: not valid JSON (${(e as Error).message})`);
  }
  if (!map || typeof map !== 'object') throw new IndexError(`${indexPath}: no weight_map`);
  return [...new Set(Object.values(map as Record<string, string>))].sort();
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/**
 * Hashes that identify a model folder's numerics (see WEIGHTS_HASH_METHOD). Every weight byte
 * counts, so an in-place edit of one tensor is another model; the per-file digests come from the
 * cache in node/file-digest.ts (`hashCache`: its file, null for none), so an unchanged 1.7 GB
 * checkpoint is read once, not on every run.
 */
export async function modelFingerprint(dir: string, opts: { hashCache?: string | null } = {}): Promise<ModelFingerprint> {
  const need = async (name: string) => {
    const p = join(dir, name);
    if (!(await isFile(p))) throw new IndexError(`${dir}: ${name} is missing`);
    return sha256File(p);
  };
  const configSha256 = await need('config.json');
  const tokenizerSha256 = await need('tokenizer.json');
  const h = createHash('sha256');
  for (const name of await weightFiles(dir)) {
    const path = join(dir, name);
    const size = (await stat(path)).size;
    let digest: string;
    try {
      digest = await cachedSha256(path, opts.hashCache === undefined ? defaultHashCache() : opts.hashCache);
    } catch (e) {
      throw new IndexError((e as Error).message);
    }
    h.update(`${name}\0${size}\0${digest}\0`);
  }
  return { configSha256, tokenizerSha256, weightsHash: h.digest('hex') };
}

/** Everything about a model an index records, without loading its weights. */
export interface ModelDescription {
  name: string;
  dir: string;
  arch: string;
  dim: number;
  settings: EmbeddingSettings;
  /** Token limit actually applied: the requested or default one, capped by a position table. */
  maxLength: number;
  fingerprint: ModelFingerprint;
}

export async function describeModel(dir: string, name: string, maxLength?: number): Promise<ModelDescription> {
  const files = localModelFiles(dir);
  const cfg = await loadConfig(files);
  const settings = await resolveEmbeddingSettings(files, name);
  const limit = cfg.positionEmbedding === 'absolute' ? cfg.maxPositions : Infinity;
  return {
    name,
    dir: resolve(dir),
    arch: cfg.arch,
    dim: cfg.hiddenSize,
    settings,
    maxLength: Math.min(maxLength ?? settings.maxLength, limit),
    fingerprint: await modelFingerprint(dir),
  };
}

/** What the builder needs from a model: EmbeddingModel fits; tests wrap it to count calls. */
export interface PassageEmbedder {
  readonly dim: number;
  /** What the model runs in; when given, it must be the build's precision. */
  readonly precision?: Precision;
  embed(texts: string[], opts?: EmbedOptions): Promise<Float32Array>;
}

export interface BuildProgress {
  /** Rows finished or embedded so far (all shards, this run and earlier ones). */
  done: number;
  total: number;
  /** Rows embedded by this run. */
  embedded: number;
  shard: number;
  shards: number;
}

export interface BuildIndexOptions {
  out: string;
  corpus: string;
  model: ModelDescription;
  /** Called once, only if some shard must be embedded. */
  loadModel: () => Promise<PassageEmbedder>;
  dtype?: VectorDType;
  /** The precision the model runs in (default f32), recorded in the identity. */
  precision?: Precision;
  batchSize?: number;
  shardSize?: number;
  /** Build only part `index` of `of` (whole shard files by position; index-format.ts). */
  part?: { index: number; of: number };
  /** Remove an index with another identity instead of refusing it. */
  force?: boolean;
  /** Stop (as if killed) after this many shards are written by this run: for crash tests. */
  stopAfterShards?: number;
  /** Called after each shard is listed in the manifest. */
  onShard?: (s: ShardEntry, index: number, shards: number) => void | Promise<void>;
  onProgress?: (p: BuildProgress) => void;
  log?: (line: string) => void;
}

export interface BuildResult {
  manifest: IndexManifest;
  /** Shards embedded by this run. */
  built: number;
  /** Shards found finished. */
  kept: number;
  /** Passages embedded by this run. */
  embedded: number;
  seconds: number;
  corpusStats: CorpusStats;
  /** The passages, for an export right after. */
  passages: Passages;
}

/** Our files in an index directory: manifest, pids, shards, and temp files of atomic writes. */
function isIndexFile(name: string): boolean {
  return name === 'manifest.json' || name === 'pids.json' || name === INT8_SCALES_FILE || /^shard-\d{5}\.(f16|f32|int8|bin)$/.test(name) || isTempFile(name);
}

function isTempFile(name: string): boolean {
  return /^\.(manifest\.json|pids\.json|int8-scales\.f32|shard-\d{5}\.(f16|f32|int8|bin))\.\d+\.[0-9a-f]+\.tmp$/.test(name);
}

async function removeFiles(dir: string, which: (name: string) => boolean): Promise<number> {
  let n = 0;
  for (const name of await readdir(dir)) {
    if (!which(name)) continue;
    await unlink(join(dir, name)).catch(() => {});
    n++;
  }
  return n;
}

export async function readManifestFile(path: string): Promise<IndexManifest | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new IndexError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    return parseIndexManifest(text, path);
  } catch (e) {
    throw new IndexError((e as Error).message);
  }
}

/** Keep the prefix of listed shards whose files are intact; report the first bad one. */
async function intactShards(dir: string, shards: ShardEntry[], log: (l: string) => void): Promise<ShardEntry[]> {
  const kept: ShardEntry[] = [];
  for (const s of shards) {
    const path = join(dir, s.file);
    let bytes: Buffer | null = null;
    try {
      bytes = await readFile(path);
    } catch {
      // missing: rebuilt below
    }
    if (!bytes || bytes.length !== s.bytes || sha256(bytes) !== s.sha256) {
      log(`${path}: ${bytes ? 'contents differ from the manifest' : 'missing'}; rebuilding from shard ${kept.length}`);
      break;
    }
    kept.push(s);
  }
  return kept;
}

/** Build or resume the index in `o.out` (see the file comment for the order of writes). */
export async function buildIndex(o: BuildIndexOptions): Promise<BuildResult> {
  const log = o.log ?? (() => {});
  const dtype = o.dtype ?? 'f16';
  const shardSize = o.shardSize ?? DEFAULT_SHARD_SIZE;
  if (!Number.isInteger(shardSize) || shardSize < 1) throw new IndexError(`shard size ${shardSize} must be a positive integer`);
  const batchSize = o.batchSize ?? 32;
  const m = o.model;

  // The corpus: its hash for the identity, its passages for the work.
  const corpusStat = await stat(o.corpus).catch((e: NodeJS.ErrnoException) => {
    throw new IndexError(`${o.corpus}: cannot read (${e.code ?? e.message})`);
  });
  if (!corpusStat.isFile()) throw new IndexError(`${o.corpus}: not a file (expected the corpus JSON {pid: {title, abstract}})`);
  const corpusSha256 = await sha256File(o.corpus);
  const { passages, stats: corpusStats } = await readPassages(o.corpus, { maxChars: PASSAGE_MAX_CHARS });
  const count = passages.pids.length;
  if (!count) throw new DataError(`${o.corpus}: no papers`);

  const identity: IndexIdentity = {
    configSha256: m.fingerprint.configSha256,
    tokenizerSha256: m.fingerprint.tokenizerSha256,
    weightsHash: m.fingerprint.weightsHash,
    pooling: m.settings.pooling,
    normalize: m.settings.normalize,
    passagePrefix: m.settings.passagePrefix,
    maxLength: m.maxLength,
    maxChars: PASSAGE_MAX_CHARS,
    precision: o.precision ?? 'f32',
    dtype,
    dim: m.dim,
    shardSize,
    corpusSha256,
    count,
  };

  await mkdir(o.out, { recursive: true });
  const manifestPath = join(o.out, 'manifest.json');
  let old: IndexManifest | null;
  try {
    old = await readManifestFile(manifestPath);
  } catch (e) {
    if (!o.force) throw new IndexError(`${(e as Error).message}; use --force to replace this index`);
    old = null;
  }
  const total = shardCount(count, shardSize);
  let part: IndexPart | undefined;
  if (o.part) {
    const [firstShard, endShard] = partShards(o.part.index, o.part.of, total);
    part = { index: o.part.index, of: o.part.of, firstShard, endShard };
  }
  // The shards this directory holds: all, or the part's.
  const [shardFrom, shardTo] = part ? [part.firstShard, part.endShard] : [0, total];
  const partName = (p?: IndexPart) => (p ? `${p.index}/${p.of}` : 'whole');
  let shards: ShardEntry[] = [];
  let created = new Date().toISOString();
  let quantized: IndexManifest['quantized'];
  if (old) {
    const diff = identityDiff(old.identity, identity);
    if (partName(old.part) !== partName(part)) diff.push(`part: ${partName(old.part)} vs ${partName(part)}`);
    if (diff.length && !o.force) {
      throw new IndexError(`${o.out}: holds an index built with other settings (${diff.join('; ')}); use --force to rebuild it, or another --out`);
    }
    if (diff.length) {
      log(`${o.out}: replacing an index built with other settings (${diff.join('; ')})`);
    } else {
      shards = await intactShards(o.out, old.shards, log);
      created = old.created;
      quantized = old.quantized; // kept listed; a form made from other shards is stale by its source hash
    }
  }
  if (!shards.length) {
    await removeFiles(o.out, (n) => isIndexFile(n) && n !== 'manifest.json');
    quantized = undefined;
  }
  else await removeFiles(o.out, isTempFile); // leftovers of a write a crash interrupted

  const manifest: IndexManifest = {
    format: INDEX_FORMAT,
    version: INDEX_VERSION,
    identity,
    model: { name: m.name, dir: m.dir, arch: m.arch, queryPrefix: m.settings.queryPrefix, weightsHashMethod: WEIGHTS_HASH_METHOD },
    corpus: { file: resolve(o.corpus), bytes: corpusStat.size },
    ...(part ? { part } : {}),
    shards,
    complete: shards.length === shardTo - shardFrom,
    created,
    updated: new Date().toISOString(),
    ...(quantized ? { quantized } : {}),
  };
  const writeManifest = async () => {
    manifest.updated = new Date().toISOString();
    manifest.complete = manifest.shards.length === shardTo - shardFrom;
    await writeFileAtomic(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  };
  const kept = shards.length;
  // pids.json is rewritten on every run (a few MB at most): the identity holds the corpus hash,
  // so its content cannot change, and a damaged copy is repaired.
  await writeFileAtomic(join(o.out, 'pids.json'), JSON.stringify(passages.pids));
  await writeManifest();
  if (kept) log(`${o.out}: ${kept} of ${shardTo - shardFrom} shards ${part ? `of part ${partName(part)} ` : ''}already built`);
  // Progress counts the rows this directory holds.
  const [rowsFrom] = shardRange(shardFrom, count, shardSize);
  const rowsTo = shardTo > shardFrom ? shardRange(shardTo - 1, count, shardSize)[1] : rowsFrom;

  const t0 = performance.now();
  let embedded = 0;
  let built = 0;
  let model: PassageEmbedder | null = null;
  for (let i = shardFrom + kept; i < shardTo; i++) {
    if (o.stopAfterShards !== undefined && built >= o.stopAfterShards) break;
    model ??= await o.loadModel();
    if (model.dim !== m.dim) throw new IndexError(`${m.name}: the loaded model has dim ${model.dim}, its config says ${m.dim}`);
    if (model.precision && model.precision !== identity.precision) throw new IndexError(`${m.name}: the loaded model runs in ${model.precision}, the index records ${identity.precision}`);
    const [start, end] = shardRange(i, count, shardSize);
    const ts = performance.now();
    const before = embedded;
    const vectors = await model.embed(passages.texts.slice(start, end), {
      batchSize,
      maxLength: m.maxLength,
      onProgress: (p) => o.onProgress?.({ done: start - rowsFrom + p.done, total: rowsTo - rowsFrom, embedded: before + p.done, shard: i, shards: total }),
    });
    const bad = firstNonFiniteRow(vectors, m.dim);
    if (bad >= 0) {
      throw new IndexError(`${m.name}: the embedding of pid ${passages.pids[start + bad]} (${o.corpus}) is not finite (NaN or infinity); shard ${i} was not written: check the model's weights`);
    }
    embedded += end - start;
    const bytes = encodeVectors(vectors, dtype);
    const file = shardFileName(i, dtype);
    await writeFileAtomic(join(o.out, file), bytes);
    const entry: ShardEntry = { file, start, rows: end - start, bytes: bytes.byteLength, sha256: sha256(bytes), seconds: Number(((performance.now() - ts) / 1000).toFixed(3)), batchSize };
    manifest.shards.push(entry);
    await writeManifest(); // listed only now that the file is in place
    built++;
    await o.onShard?.(entry, i, total);
  }
  return { manifest, built, kept, embedded, seconds: (performance.now() - t0) / 1000, corpusStats, passages };
}

// ---- reading an index ----

export interface OpenIndex {
  dir: string;
  manifest: IndexManifest;
  /** Row -> pid. */
  pids: string[];
  /** What uploadIndex puts on the GPU: the full vectors or a compressed form (default: the manifest's first form, else full). */
  use?: IndexUse;
  /** With a compressed form: candidates per result rescored exactly (default: the form's). */
  rescore?: number;
}

export type IndexUse = 'full' | QuantKind;

/** Open a finished index (an unfinished one is an error that says how to finish it). */
export async function openIndex(dir: string, opts: { allowIncomplete?: boolean } = {}): Promise<OpenIndex> {
  const st = await stat(dir).catch(() => null);
  if (!st?.isDirectory()) throw new IndexError(`${dir}: no such index directory (build one with aqa index --out ${dir})`);
  const manifest = await readManifestFile(join(dir, 'manifest.json'));
  if (!manifest) throw new IndexError(`${dir}: not an index (no manifest.json); build one with aqa index --out ${dir}`);
  if (manifest.part) throw new IndexError(`${dir}: part ${manifest.part.index} of ${manifest.part.of} of a multi-machine build, not a whole index; join the parts with aqa index merge <dirs...> --out <dir>`);
  if (!manifest.complete && !opts.allowIncomplete) {
    const total = shardCount(manifest.identity.count, manifest.identity.shardSize);
    throw new IndexError(`${dir}: unfinished index (${manifest.shards.length} of ${total} shards); run the same aqa index command again to finish it`);
  }
  const pidsPath = join(dir, 'pids.json');
  let text: string;
  try {
    text = await readFile(pidsPath, 'utf8');
  } catch (e) {
    throw new IndexError(`${pidsPath}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let pids: string[];
  try {
    pids = parsePids(text, manifest.identity.count, pidsPath);
  } catch (e) {
    throw new IndexError((e as Error).message);
  }
  return { dir, manifest, pids };
}

/** Shard i as f32 rows [rows, dim]; its size is checked against the manifest. */
export async function readShard(index: OpenIndex, i: number): Promise<Float32Array> {
  const s = index.manifest.shards[i];
  const path = join(index.dir, s.file);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new IndexError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); rebuild with the same aqa index command`);
  }
  if (bytes.length !== s.bytes) throw new IndexError(`${path}: ${bytes.length} bytes, the manifest says ${s.bytes}; rebuild with the same aqa index command`);
  return decodeVectors(bytes, index.manifest.identity.dtype);
}

/** Every shard in order, one at a time. */
export async function* shardVectors(index: OpenIndex): AsyncGenerator<Float32Array> {
  for (let i = 0; i < index.manifest.shards.length; i++) yield await readShard(index, i);
}

/** All rows in one array (tests, small indexes). */
export async function readAllVectors(index: OpenIndex): Promise<Float32Array> {
  const { dim } = index.manifest.identity;
  const rows = index.manifest.shards.reduce((n, s) => n + s.rows, 0);
  const out = new Float32Array(rows * dim);
  let at = 0;
  for await (const v of shardVectors(index)) {
    out.set(v, at);
    at += v.length;
  }
  return out;
}

/**
 * The index on the GPU. An f16 index stays f16 when the adapter has shader-f16 (half the memory;
 * the f16 -> f32 -> f16 round trip of upload is exact), else it is widened to f32 (exactly). On a
 * CPU driver it is widened too: there "GPU memory" is host memory, and llvmpipe emulates f16
 * arithmetic, so the f16 scan answered 0.3 questions/s against 6.9 for f32 on the SciFact index.
 * `o.dtype` forces the storage type (tests of the f16 scan on any adapter).
 */
export async function uploadIndex(gpu: Gpu, index: OpenIndex, o: { dtype?: 'f16' | 'f32' } = {}): Promise<GpuIndex | QuantizedIndex> {
  const use = index.use ?? index.manifest.quantized?.[0]?.kind ?? 'full';
  if (use !== 'full') return (await import('./index-quantize.ts')).uploadQuantized(gpu, index, use, index.rescore);
  const { dtype, dim, count } = index.manifest.identity;
  const halfFits = dtype === 'f16' && gpu.features.has('shader-f16') && dim % 4 === 0;
  const gpuDtype = o.dtype ?? (halfFits && !isCpuAdapter(gpu) ? 'f16' : 'f32');
  return GpuIndex.upload(gpu, shardVectors(index), dim, { dtype: gpuDtype, rows: count });
}

// ---- queries ----

// retrieve() itself is host-neutral (core/retrieval/retrieve.ts); the commands take it from here.
export { type QueryEmbedder, type Retrieved, type RetrieveOptions, retrieve } from '../core/retrieval/retrieve.ts';

/** Refuse a query model that is not the one the passages were embedded with. */
export function checkSameModel(index: OpenIndex, model: ModelDescription): void {
  const id = index.manifest.identity;
  const diff: string[] = [];
  const f = model.fingerprint;
  if (f.configSha256 !== id.configSha256) diff.push('config.json');
  if (f.tokenizerSha256 !== id.tokenizerSha256) diff.push('tokenizer.json');
  if (f.weightsHash !== id.weightsHash) diff.push('weights');
  if (model.settings.pooling !== id.pooling) diff.push(`pooling ${model.settings.pooling} vs ${id.pooling}`);
  if (model.settings.normalize !== id.normalize) diff.push(`normalize ${model.settings.normalize} vs ${id.normalize}`);
  if (diff.length) {
    throw new IndexError(`${model.name}: not the model ${index.dir} was built with (${index.manifest.model.name}; differs in ${diff.join(', ')}); pass that model with --model, or build an index with this one`);
  }
}

// ---- browser export ----

export interface ExportResult {
  manifest: ExportManifest;
  /** Index pids the corpus file no longer has (exported with an empty title and snippet). */
  missing: number;
}

/** Write the browser export of a finished index to `dir` (format: core/retrieval/index-format.ts). */
export async function exportIndex(index: OpenIndex, dir: string, corpusPath: string, o: { credit?: string } = {}): Promise<ExportResult> {
  const id = index.manifest.identity;
  await mkdir(dir, { recursive: true });
  const files: ExportFile[] = [];
  for (let i = 0; i < index.manifest.shards.length; i++) {
    const s = index.manifest.shards[i];
    const bytes = await readFile(join(index.dir, s.file));
    if (bytes.length !== s.bytes || sha256(bytes) !== s.sha256) throw new IndexError(`${join(index.dir, s.file)}: contents differ from the manifest; rebuild with the same aqa index command`);
    const file = exportFileName(i, id.dtype);
    await writeFileAtomic(join(dir, file), bytes);
    files.push({ file, start: s.start, rows: s.rows, bytes: s.bytes, sha256: s.sha256 });
  }

  // Titles and snippets in row order, from one more pass over the corpus.
  const row = new Map(index.pids.map((p, i) => [p, i]));
  const shown: ({ title: string; snippet: string } | undefined)[] = new Array(index.pids.length);
  for await (const e of streamCorpus(corpusPath).entries) {
    const r = row.get(e.pid);
    if (r !== undefined && !shown[r]) shown[r] = { title: e.paper.title.trim(), snippet: snippet(e.paper.abstract) };
  }
  let missing = 0;
  const enc = new TextEncoder();
  const chunks = function* (): Generator<Uint8Array> {
    yield enc.encode('[');
    for (let i = 0; i < index.pids.length; i++) {
      const s = shown[i] ?? (missing++, { title: '', snippet: '' });
      yield enc.encode(`${i ? ',\n' : '\n'}${JSON.stringify({ pid: index.pids[i], title: s.title, snippet: s.snippet })}`);
    }
    yield enc.encode('\n]\n');
  };
  await writeFileAtomic(join(dir, 'passages.json'), chunks());

  const manifest: ExportManifest = {
    format: EXPORT_FORMAT,
    version: EXPORT_VERSION,
    dtype: id.dtype,
    dim: id.dim,
    count: id.count,
    model: {
      name: index.manifest.model.name,
      pooling: id.pooling,
      normalize: id.normalize,
      queryPrefix: index.manifest.model.queryPrefix,
      passagePrefix: id.passagePrefix,
      maxLength: id.maxLength,
    },
    files,
    passages: 'passages.json',
    ...(o.credit ? { credit: o.credit } : {}),
    ...(index.manifest.quantized?.length ? { quantized: await (await import('./index-quantize.ts')).exportQuantized(index, dir) } : {}),
  };
  await writeFileAtomic(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return { manifest, missing };
}

