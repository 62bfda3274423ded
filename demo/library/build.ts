// One's own papers -> a browser export (core/retrieval/index-format.ts, the format
// `aqa index --export` writes), embedded on the page's GPU. No DOM and no storage here: the
// worker calls it, demo/library/store.ts keeps what it returns.
//
// The vectors are made as `aqa index` makes them (node/index-store.ts): the passage text of
// core/data/passages.ts (title + ". " + abstract, cut to 2,000 code points), the model's passage
// prefix, the index's max length, batches of 32, then stored as f16. So the page's ranking of a
// library equals `aqa search` on the same papers written as an AQA corpus JSON.

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
}

export interface EmbedProgress {
  done: number;
  total: number;
  /** Seconds left, from the tokens embedded so far; null until the first batch is back. */
  etaS: number | null;
}

/** Lowercase hex SHA-256 (WebCrypto: workers, pages and Node alike). */
export async function sha256Hex(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return [...d].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** Embed `papers` with `model` at `maxLength` tokens; `modelName` is what the manifest records. */
export async function buildLibrary(model: EmbeddingModel, modelName: string, papers: readonly LibraryPaper[], maxLength: number, onProgress: (p: EmbedProgress) => void): Promise<BuiltLibrary> {
  const { pids, texts } = buildPassages(papers.map((p) => [p.pid, { title: p.title, abstract: p.abstract }]));
  const encoded = model.tokenize(texts, { maxLength });
  // Work per batch grows with its tokens, so the ETA counts tokens rather than papers.
  const totalTokens = encoded.reduce((n, e) => n + e.length, 0);
  const t0 = performance.now();
  onProgress({ done: 0, total: pids.length, etaS: null });
  const vectors = await model.embedTokens(encoded, {
    batchSize: BATCH_SIZE,
    maxLength,
    onProgress: (p) => {
      const s = (performance.now() - t0) / 1000;
      onProgress({ done: p.done, total: p.total, etaS: p.tokens > 0 ? (s * (totalTokens - p.tokens)) / p.tokens : null });
    },
  });
  const bad = firstNonFiniteRow(vectors, model.dim);
  if (bad >= 0) throw new Error(`the embedding of paper "${pids[bad]}" is not finite (NaN or infinity): check the model's weights`);
  const bytes = encodeVectors(vectors, 'f16');
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
  return { manifest, vectors: bytes, passages, corpus: toCorpusJson(papers) };
}
