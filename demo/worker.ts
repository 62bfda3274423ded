// The demo's search engine, in a dedicated worker (comlink): WebGPU device, models, exported
// indexes on the GPU, and per question: embed (query prefix) -> GPU top-k per index -> fuse.
// Everything heavy stays off the page's thread, so typing and scrolling never stall while a
// model loads or a query runs. Chromium exposes navigator.gpu in dedicated workers.
//
// The retrieval is the CLI's (`aqa search`): core/retrieval/retrieve.ts retrieve() of the
// question (cleaned; the box has no separate body), embedded with the model's own max length and
// query prefix; each index returns its top RESULTS_K (200) by dot product; ranks
// follow core/retrieval/results.ts (score desc, then pid). With two or more indexes the lists
// are fused by core/retrieval/fusion.ts (z-score sum by default, the pipeline's choice).

import * as Comlink from 'comlink';
import { createBrowserGpu } from '../browser/device.ts';
import { fetchModelFiles } from '../browser/fetch.ts';
import { queryText } from '../core/data/clean.ts';
import type { Gpu } from '../core/gpu/device.ts';
import { TOPK_MAX_K } from '../core/kernels/topk.ts';
import type { ModelFiles } from '../core/model/source.ts';
import { type EmbeddingModel, type LoadModelOptions, loadEmbeddingModel } from '../core/retrieval/embed.ts';
import { type FusionMethod, fuse } from '../core/retrieval/fusion.ts';
import { type ExportManifest, type ExportPassage, bytesPerValue, decodeVectors, parseExportManifest, parseExportPassages } from '../core/retrieval/index-format.ts';
import { RESULTS_K, type ScoreMap, topK } from '../core/retrieval/results.ts';
import { type QueryEmbedder, retrieve } from '../core/retrieval/retrieve.ts';
import { GpuIndex } from '../core/retrieval/search.ts';
import type { DemoConfig, DemoIndexSpec } from './config.ts';

/** Bytes per ranged read of a vector file: 8 MiB = 10,922 rows of 384 f16, a progress step each. */
const READ_BYTES = 8 * 2 ** 20;

export interface LoadStep {
  /** What is loading: 'device', 'model <url>', 'index <name>', 'passages <name>', 'gpu <name>'. */
  what: string;
  /** Bytes so far and expected for this step (0 / 0 when unknown). */
  loaded: number;
  total: number;
}

export interface DemoInfo {
  adapter: string;
  features: string[];
  indexes: { name: string; model: string; precision: string; count: number; dim: number; dtype: string; gpuDtype: string; maxLength: number; credit: string | null }[];
  /** One-line notices for the page (f16 asked for on an adapter without shader-f16). */
  notices: string[];
  /** Bytes fetched for models and indexes. */
  bytes: number;
  ms: number;
}

export interface ModelScore {
  score: number;
  /** 1-based rank in that index's list. */
  rank: number;
}

export interface Hit {
  rank: number;
  pid: string;
  title: string;
  snippet: string;
  /** The fused score with two or more indexes, else the index's score (cosine for normalised models). */
  score: number;
  /** Per index (config order): its score and rank, or null when the paper is not in its top list. */
  models: (ModelScore | null)[];
}

export interface SearchReply {
  /** The text that was embedded (after cleaning). */
  query: string;
  hits: Hit[];
  /** Fusion method, or null with one index. */
  fused: FusionMethod | null;
  ms: { embed: number; search: number; total: number };
}

interface LoadedIndex {
  spec: DemoIndexSpec;
  manifest: ExportManifest;
  model: EmbeddingModel;
  gpuIndex: GpuIndex;
  passages: ExportPassage[];
  /** Row -> pid, as retrieve() takes them. */
  pids: string[];
  /** pid -> row of passages. */
  rows: Map<string, number>;
  /** Results taken from this index per question (the pipeline's 200, at most its size). */
  k: number;
}

type OnStep = (s: LoadStep) => void;

class DemoSearch {
  private gpu: Gpu | null = null;
  private indexes: LoadedIndex[] = [];
  private fusion: DemoConfig['fusion'] = { method: 'zscore' };
  /** One GPU at a time: a question asked while another runs waits its turn. */
  private queue: Promise<unknown> = Promise.resolve();

  async init(cfg: DemoConfig, onStep: OnStep): Promise<DemoInfo> {
    const t0 = performance.now();
    this.fusion = cfg.fusion;
    onStep({ what: 'device', loaded: 0, total: 0 });
    const gpu = await createBrowserGpu();
    this.gpu = gpu;
    let bytes = 0;
    const notices = new Set<string>();
    const precision = { precision: cfg.precision, warn: (m: string) => notices.add(m) };

    // Manifests first: a wrong URL fails in milliseconds, before megabytes of weights.
    const folders = cfg.indexes.map((s) => fetchModelFiles(s.index));
    const manifests: ExportManifest[] = [];
    for (const [i, s] of cfg.indexes.entries()) {
      const url = `${s.index}manifest.json`;
      const text = await folders[i].text('manifest.json');
      if (text === null) throw new Error(`${url}: not found (HTTP 404): build the index with bash tools/build-demo-index.sh`);
      manifests.push(parseExportManifest(text, url));
    }

    // One copy of each model, whichever indexes share it.
    const models = new Map<string, Promise<EmbeddingModel>>();
    for (const [i, s] of cfg.indexes.entries()) {
      if (!models.has(s.model)) models.set(s.model, this.loadModel(gpu, s.model, manifests[i].model.name, onStep, (n) => (bytes += n), precision));
    }

    for (const [i, spec] of cfg.indexes.entries()) {
      const manifest = manifests[i];
      const model = await models.get(spec.model)!;
      checkModel(spec, manifest, model);
      const gpuIndex = await uploadVectors(gpu, spec, manifest, folders[i], onStep, (n) => (bytes += n));
      const what = `passages ${spec.name}`;
      onStep({ what, loaded: 0, total: 0 });
      const text = await folders[i].text(manifest.passages);
      if (text === null) throw new Error(`${spec.index}${manifest.passages}: not found (HTTP 404)`);
      bytes += text.length;
      const passages = parseExportPassages(text, manifest.count, `${spec.index}${manifest.passages}`);
      onStep({ what, loaded: text.length, total: text.length });
      this.indexes.push({ spec, manifest, model, gpuIndex, passages, pids: passages.map((p) => p.pid), rows: new Map(passages.map((p, r) => [p.pid, r])), k: Math.min(RESULTS_K, TOPK_MAX_K, manifest.count) });
    }
    return {
      adapter: gpu.name,
      features: [...gpu.features].sort(),
      indexes: this.indexes.map((x) => ({
        name: x.spec.name,
        model: x.spec.model,
        precision: x.model.precision,
        count: x.manifest.count,
        dim: x.manifest.dim,
        dtype: x.manifest.dtype,
        gpuDtype: x.gpuIndex.dtype,
        maxLength: x.manifest.model.maxLength,
        credit: x.manifest.credit ?? null,
      })),
      notices: [...notices],
      bytes,
      ms: performance.now() - t0,
    };
  }

  private async loadModel(gpu: Gpu, url: string, name: string, onStep: OnStep, count: (n: number) => void, opts: LoadModelOptions): Promise<EmbeddingModel> {
    const what = `model ${url}`;
    const seen = new Map<string, { loaded: number; total: number }>();
    const report = () => {
      let loaded = 0;
      let total = 0;
      for (const p of seen.values()) {
        loaded += p.loaded;
        total += p.total;
      }
      onStep({ what, loaded, total });
    };
    const files: ModelFiles = fetchModelFiles(url, {
      onProgress: (file, loaded, total) => {
        count(loaded - (seen.get(file)?.loaded ?? 0));
        seen.set(file, { loaded, total });
        report();
      },
    });
    onStep({ what, loaded: 0, total: 0 });
    // The name the index was built with (the CLI's --model), so presets resolve as they did there.
    return loadEmbeddingModel(gpu, files, name, undefined, opts);
  }

  /** The top `show` papers for one question, with every index's score for each. */
  search(question: string, show: number): Promise<SearchReply> {
    const run = this.queue.then(() => this.searchNow(question, show));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async searchNow(question: string, show: number): Promise<SearchReply> {
    if (!this.indexes.length) throw new Error('the search is not loaded yet');
    const t0 = performance.now();
    const query = queryText({ question });
    if (!query) return { query, hits: [], fused: null, ms: { embed: 0, search: 0, total: 0 } };
    let embedMs = 0;
    let retrieveMs = 0;
    // Embed once per model, whichever indexes share it: a model's first retrieve() embeds the
    // question, the others reuse its vector.
    const embedders = new Map<EmbeddingModel, QueryEmbedder>();
    const embedOnce = (model: EmbeddingModel): QueryEmbedder => {
      let vector: Promise<Float32Array> | null = null;
      return {
        dim: model.dim,
        embed: (texts, o) =>
          (vector ??= (async () => {
            const te = performance.now();
            const v = await model.embed(texts, o);
            embedMs += performance.now() - te;
            return v;
          })()),
      };
    };
    const maps: ScoreMap[] = [];
    for (const x of this.indexes) {
      let embedder = embedders.get(x.model);
      if (!embedder) embedders.set(x.model, (embedder = embedOnce(x.model)));
      const ts = performance.now();
      const r = await retrieve(embedder, x.gpuIndex, x.pids, [{ question }], { k: x.k });
      retrieveMs += performance.now() - ts;
      maps.push(new Map(r.pids[0].map((pid, j) => [pid, r.scores[0][j]])));
    }
    const searchMs = retrieveMs - embedMs;
    // Per index: pid -> (score, rank) in the CLI's rank order.
    const ranked = maps.map((m) => new Map(topK(m).map(([pid, score], i) => [pid, { score, rank: i + 1 }])));
    const fused = this.indexes.length > 1 ? this.fusion.method : null;
    const final = fused ? fuse(maps, { method: fused, weights: this.fusion.weights }) : maps[0];
    const hits = topK(final, show).map(([pid, score], i): Hit => {
      const p = this.passageOf(pid);
      return { rank: i + 1, pid, title: p?.title ?? '', snippet: p?.snippet ?? '', score, models: ranked.map((r) => r.get(pid) ?? null) };
    });
    return { query, hits, fused, ms: { embed: embedMs, search: searchMs, total: performance.now() - t0 } };
  }

  /** Title and snippet from the first index that holds the paper (indexes may cover other corpora). */
  private passageOf(pid: string): ExportPassage | undefined {
    for (const x of this.indexes) {
      const r = x.rows.get(pid);
      if (r !== undefined) return x.passages[r];
    }
    return undefined;
  }

  /** Resolves with a message when the GPU device is lost (driver reset, tab in the background too long). */
  async lost(): Promise<string> {
    if (!this.gpu) throw new Error('no device yet');
    const info = await this.gpu.device.lost;
    return `the GPU device was lost (${info.reason}): ${info.message || 'no detail'}. Reload the page to start again.`;
  }
}

/** The query side must embed like the passages were: same width, pooling, normalisation and prefix. */
function checkModel(spec: DemoIndexSpec, m: ExportManifest, model: EmbeddingModel): void {
  const s = model.settings;
  const diff: string[] = [];
  if (model.dim !== m.dim) diff.push(`dim ${model.dim} vs ${m.dim}`);
  if (s.pooling !== m.model.pooling) diff.push(`pooling ${s.pooling} vs ${m.model.pooling}`);
  if (s.normalize !== m.model.normalize) diff.push(`normalize ${s.normalize} vs ${m.model.normalize}`);
  if (s.queryPrefix !== m.model.queryPrefix) diff.push(`query prefix ${JSON.stringify(s.queryPrefix)} vs ${JSON.stringify(m.model.queryPrefix)}`);
  if (diff.length) {
    throw new Error(`${spec.model} is not the model ${spec.index} was built with (${m.model.name}): ${diff.join(', ')} (this model vs the index)`);
  }
}

/**
 * Vector files -> one GpuIndex, read in ranged pieces of whole rows (8 MiB) so the host holds
 * one piece at a time. f16 files stay f16 on the GPU when it has shader-f16 (half the memory,
 * the same values); otherwise (Chromium's SwiftShader) they widen to f32 exactly.
 */
async function uploadVectors(gpu: Gpu, spec: DemoIndexSpec, m: ExportManifest, folder: ModelFiles, onStep: OnStep, count: (n: number) => void): Promise<GpuIndex> {
  const rowBytes = m.dim * bytesPerValue(m.dtype);
  const total = m.files.reduce((n, f) => n + f.bytes, 0);
  const what = `index ${spec.name}`;
  let loaded = 0;
  onStep({ what, loaded, total });
  const rowsPerRead = Math.max(1, Math.floor(READ_BYTES / rowBytes));
  async function* pieces(): AsyncGenerator<Float32Array> {
    for (const f of m.files) {
      const src = await folder.file(f.file);
      if (!src) throw new Error(`${spec.index}${f.file}: not found (HTTP 404)`);
      if (src.size !== f.bytes) throw new Error(`${src.name}: ${src.size} bytes, the manifest says ${f.bytes} (rebuild the export)`);
      for (let r = 0; r < f.rows; r += rowsPerRead) {
        const n = Math.min(rowsPerRead, f.rows - r);
        const bytes = await src.read(r * rowBytes, (r + n) * rowBytes);
        loaded += bytes.byteLength;
        count(bytes.byteLength);
        onStep({ what, loaded, total });
        yield decodeVectors(bytes, m.dtype);
      }
    }
  }
  const dtype = m.dtype === 'f16' && gpu.features.has('shader-f16') && m.dim % 4 === 0 ? 'f16' : 'f32';
  return GpuIndex.upload(gpu, pieces(), m.dim, { dtype, rows: m.count });
}

export type DemoSearchApi = DemoSearch;

Comlink.expose(new DemoSearch());
