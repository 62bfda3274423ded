// One's own papers -> a browser export (core/retrieval/index-format.ts, the format
// `aqa index --export` writes), embedded on the page's GPU. No DOM and no storage here: the
// worker calls it, demo/library/store.ts keeps what it returns.
//
// The vectors are made as `aqa index` makes them (node/index-store.ts): the passage text of
// core/data/passages.ts (title + ". " + abstract, cut to 2,000 code points), the model's passage
// prefix, the index's max length, batches of 32, then stored as f16. So the page's ranking of a
// library equals `aqa search` on the same papers written as an AQA corpus JSON.
//
// A paper whose passage text was embedded before by the same model and settings is not embedded
// again: each vector is keyed by the SHA-256 of its passage text (passageHashes), and `find`
// (demo/library/store.ts findStoredVectors) returns the stored f16 rows of the hashes it knows.
// So an updated export of a library, or the same library in another format, embeds only its new
// or changed papers. A reused row is the stored f16 bits, so it ranks exactly as before.

import { buildPassages } from '../../core/data/passages.ts';
import { type EmbeddingModel, firstNonFiniteRow } from '../../core/retrieval/embed.ts';
import { EXPORT_FORMAT, EXPORT_VERSION, type ExportManifest, type ExportPassage, encodeVectors, exportFileName, snippet } from '../../core/retrieval/index-format.ts';
import { type LibraryPaper, toCorpusJson } from './papers.ts';

/** The batch size `aqa index` uses by default. */
const BATCH_SIZE = 32;

export interface BuiltLibrary {
  manifest: ExportManifest;
  /** The one vector file manifest.files[0] names. */
  vectors: Uint8Array;
  passages: ExportPassage[];
  /** The papers as an AQA corpus JSON (doi / url kept): BM25 and links after a reload, and the CLI's input. */
  corpus: string;
  /** SHA-256 of each row's passage text, in row order: the key its vector is found by later. */
  hashes: string[];
  /** Rows whose vector was found stored rather than embedded now. */
  reused: number;
}

/** The stored f16 rows (dim * 2 bytes each) of the passage hashes that have one. */
export type FindVectors = (hashes: readonly string[]) => Promise<Map<string, Uint8Array>>;

export interface EmbedProgress {
  done: number;
  total: number;
  /** Seconds left, from the tokens embedded so far; null until the first batch is back. */
  etaS: number | null;
  /** Papers whose stored vector is used instead (not counted in done / total). */
  reused?: number;
}

/** Lowercase hex SHA-256 (WebCrypto: workers, pages and Node alike). */
export async function sha256Hex(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return [...d].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** SHA-256 of each passage text: with the model identity, what a stored vector is found by. */
export function passageHashes(texts: readonly string[]): Promise<string[]> {
  return Promise.all(texts.map((t) => sha256Hex(t)));
}

/**
 * Embed `papers` with `model` at `maxLength` tokens; `modelName` is what the manifest records.
 * `find`, when given, must only know vectors of this same model identity (store.ts keys them so).
 */
export async function buildLibrary(model: EmbeddingModel, modelName: string, papers: readonly LibraryPaper[], maxLength: number, onProgress: (p: EmbedProgress) => void, find?: FindVectors): Promise<BuiltLibrary> {
  const { pids, texts } = buildPassages(papers.map((p) => [p.pid, { title: p.title, abstract: p.abstract }]));
  const hashes = await passageHashes(texts);
  const found = find ? await find(hashes) : new Map<string, Uint8Array>();
  const rowBytes = model.dim * 2;
  const todo = hashes.flatMap((h, i) => (found.get(h)?.byteLength === rowBytes ? [] : [i]));
  const reused = pids.length - todo.length;
  const encoded = model.tokenize(todo.map((i) => texts[i]), { maxLength });
  // Work per batch grows with its tokens, so the ETA counts tokens rather than papers.
  const totalTokens = encoded.reduce((n, e) => n + e.length, 0);
  const t0 = performance.now();
  onProgress({ done: 0, total: todo.length, etaS: null, reused });
  const fresh = todo.length
    ? await model.embedTokens(encoded, {
        batchSize: BATCH_SIZE,
        maxLength,
        onProgress: (p) => {
          const s = (performance.now() - t0) / 1000;
          onProgress({ done: p.done, total: p.total, etaS: p.tokens > 0 ? (s * (totalTokens - p.tokens)) / p.tokens : null, reused });
        },
      })
    : new Float32Array(0);
  const bad = firstNonFiniteRow(fresh, model.dim);
  if (bad >= 0) throw new Error(`the embedding of paper "${pids[todo[bad]]}" is not finite (NaN or infinity): check the model's weights`);
  const freshBytes = encodeVectors(fresh, 'f16');
  const bytes = new Uint8Array(pids.length * rowBytes);
  hashes.forEach((h, i) => {
    const row = found.get(h);
    if (row?.byteLength === rowBytes) bytes.set(row, i * rowBytes);
  });
  todo.forEach((i, r) => bytes.set(freshBytes.subarray(r * rowBytes, (r + 1) * rowBytes), i * rowBytes));
  const s = model.settings;
  const byPid = new Map(papers.map((p) => [p.pid, p]));
  const manifest: ExportManifest = {
    format: EXPORT_FORMAT,
    version: EXPORT_VERSION,
    dtype: 'f16',
    dim: model.dim,
    count: pids.length,
    model: { name: modelName, pooling: s.pooling, normalize: s.normalize, queryPrefix: s.queryPrefix, passagePrefix: s.passagePrefix, maxLength },
    files: [{ file: exportFileName(0, 'f16'), start: 0, rows: pids.length, bytes: bytes.byteLength, sha256: await sha256Hex(bytes) }],
    passages: 'passages.json',
  };
  const passages = pids.map((pid) => {
    const p = byPid.get(pid)!;
    return { pid, title: p.title.trim(), snippet: snippet(p.abstract) };
  });
  return { manifest, vectors: bytes, passages, corpus: toCorpusJson(papers), hashes, reused };
}
