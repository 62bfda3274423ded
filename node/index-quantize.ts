// Compressed forms of an on-disk index (aqa index --quantize; formats in
// core/retrieval/quantize.ts and index-format.ts): made from the stored shards, never by
// re-embedding, listed in the manifest, uploaded for search with rescoring from the shards.

import { closeSync, openSync, readSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Gpu } from '../core/gpu/device.ts';
import { checkQuantized, INT8_SCALES_FILE, type QuantizedForm, quantFileName } from '../core/retrieval/index-format.ts';
import { absMax, bytesToScales, bytesToWords, DEFAULT_RESCORE, int8Scales, type QuantKind, quantizeBinary, quantizeInt8, scalesToBytes, wordsToBytes } from '../core/retrieval/quantize.ts';
import { fileRowReader, QuantizedIndex } from '../core/retrieval/quantize-search.ts';
import { writeFileAtomic } from './files.ts';
import { IndexError, type OpenIndex, readShard, sha256 } from './index-store.ts';

/** sha256 over the shard digests: what a form was made from. */
function sourceOf(index: OpenIndex): string {
  return sha256(new TextEncoder().encode(index.manifest.shards.map((s) => s.sha256).join('\n')));
}

async function intact(dir: string, f: { file: string; bytes?: number; sha256: string }): Promise<boolean> {
  const bytes = await readFile(join(dir, f.file)).catch(() => null);
  return !!bytes && (f.bytes === undefined || bytes.length === f.bytes) && sha256(bytes) === f.sha256;
}

export interface QuantizeResult {
  form: QuantizedForm;
  /** False when an up-to-date form was already there. */
  built: boolean;
}

/**
 * Add (or refresh) the `kind` form of a finished index and make it the default: reuses a form
 * made from the same shards whose files are intact, else quantizes shard by shard (int8 reads the
 * shards twice: the scales need every row first).
 */
export async function quantizeIndex(index: OpenIndex, kind: QuantKind, rescore: number | undefined, log: (line: string) => void): Promise<QuantizeResult> {
  const m = index.manifest;
  const { dim } = m.identity;
  const source = sourceOf(index);
  const old = m.quantized?.find((q) => q.kind === kind);
  let form: QuantizedForm | null = null;
  if (old && old.source === source) {
    const files = [...old.files, ...(old.scales ? [old.scales] : [])];
    if ((await Promise.all(files.map((f) => intact(index.dir, f)))).every(Boolean)) form = { ...old, rescore: rescore ?? old.rescore };
    else log(`${index.dir}: ${kind} files differ from the manifest; rebuilding them`);
  }
  const built = !form;
  if (!form) {
    let scales: Float32Array | undefined;
    if (kind === 'int8') {
      const max = new Float32Array(dim);
      for (let i = 0; i < m.shards.length; i++) absMax(await readShard(index, i), dim, max);
      scales = int8Scales(max);
    }
    const files: QuantizedForm['files'] = [];
    for (let i = 0; i < m.shards.length; i++) {
      const rows = await readShard(index, i);
      const bytes = wordsToBytes(kind === 'int8' ? quantizeInt8(rows, dim, scales!) : quantizeBinary(rows, dim));
      const file = quantFileName(i, kind);
      await writeFileAtomic(join(index.dir, file), bytes);
      files.push({ file, rows: m.shards[i].rows, bytes: bytes.byteLength, sha256: sha256(bytes) });
    }
    let scalesEntry: QuantizedForm['scales'];
    if (scales) {
      const bytes = scalesToBytes(scales);
      await writeFileAtomic(join(index.dir, INT8_SCALES_FILE), bytes);
      scalesEntry = { file: INT8_SCALES_FILE, sha256: sha256(bytes) };
    }
    form = { kind, rescore: rescore ?? DEFAULT_RESCORE[kind], source, files, ...(scalesEntry ? { scales: scalesEntry } : {}) };
  }
  m.quantized = [form, ...(m.quantized ?? []).filter((q) => q.kind !== kind)];
  m.updated = new Date().toISOString();
  await writeFileAtomic(join(index.dir, 'manifest.json'), `${JSON.stringify(m, null, 2)}\n`);
  return { form, built };
}

/** The listed `kind` form of an index, checked to be made from its current shards. */
function formOf(index: OpenIndex, kind: QuantKind): QuantizedForm {
  const form = index.manifest.quantized?.find((q) => q.kind === kind);
  const fix = `add it with aqa index --quantize ${kind} (same --model, --corpus and --out; nothing is re-embedded)`;
  if (!form) throw new IndexError(`${index.dir}: has no ${kind} form; ${fix}`);
  if (form.source !== sourceOf(index)) throw new IndexError(`${index.dir}: the ${kind} form was made from other shards (stale); ${fix}`);
  try {
    checkQuantized(`${join(index.dir, 'manifest.json')}: quantized`, form, index.manifest.shards.map((s) => s.rows), index.manifest.identity.dim);
  } catch (e) {
    throw new IndexError((e as Error).message);
  }
  return form;
}

async function readChecked(dir: string, f: { file: string; bytes?: number }): Promise<Uint8Array> {
  const path = join(dir, f.file);
  const bytes = await readFile(path).catch((e: NodeJS.ErrnoException) => {
    throw new IndexError(`${path}: cannot read (${e.code ?? e.message}); rebuild it with aqa index --quantize`);
  });
  if (f.bytes !== undefined && bytes.length !== f.bytes) throw new IndexError(`${path}: ${bytes.length} bytes, the manifest says ${f.bytes}; rebuild it with aqa index --quantize`);
  return bytes;
}

/** The `kind` codes on the GPU, rescoring from the shard files (kept open until release()). */
export async function uploadQuantized(gpu: Gpu, index: OpenIndex, kind: QuantKind, rescore?: number): Promise<QuantizedIndex> {
  const form = formOf(index, kind);
  const { dim, dtype, count } = index.manifest.identity;
  const scales = form.scales ? bytesToScales(await readChecked(index.dir, form.scales), dim, join(index.dir, form.scales.file)) : undefined;
  async function* pieces(): AsyncGenerator<Uint32Array> {
    for (const f of form.files) yield bytesToWords(await readChecked(index.dir, f));
  }
  const fds = index.manifest.shards.map((s) => openSync(join(index.dir, s.file), 'r'));
  const files = index.manifest.shards.map((s, i) => ({
    rows: s.rows,
    read: async (start: number, end: number) => {
      const out = new Uint8Array(end - start);
      if (readSync(fds[i], out, 0, out.length, start) !== out.length) throw new IndexError(`${join(index.dir, s.file)}: shorter than the manifest says; rebuild with the same aqa index command`);
      return out;
    },
  }));
  const close = () => fds.forEach((fd) => closeSync(fd));
  try {
    return await QuantizedIndex.upload(gpu, kind, pieces(), dim, count, { scales, rescore: rescore ?? form.rescore, readRows: fileRowReader(files, dim, dtype), onRelease: close });
  } catch (e) {
    close();
    throw e;
  }
}

/** Copy the index's default form into a browser export (codes-NNNNN files next to the vectors). */
export async function exportQuantized(index: OpenIndex, dir: string): Promise<QuantizedForm> {
  const form = formOf(index, index.manifest.quantized![0].kind);
  const files: QuantizedForm['files'] = [];
  for (let i = 0; i < form.files.length; i++) {
    const f = form.files[i];
    const file = quantFileName(i, form.kind, 'codes');
    await writeFileAtomic(join(dir, file), await readChecked(index.dir, f));
    files.push({ file, start: index.manifest.shards[i].start, rows: f.rows, bytes: f.bytes, sha256: f.sha256 });
  }
  if (form.scales) await writeFileAtomic(join(dir, form.scales.file), await readChecked(index.dir, form.scales));
  return { kind: form.kind, rescore: form.rescore, files, ...(form.scales ? { scales: form.scales } : {}) };
}
