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
//
// With a corpus (demo.json "corpus", ?corpus=) the worker also builds the pipeline's BM25 over
// it (demo/ranking.ts) and each question is ranked dense, lexical (BM25 alone) or hybrid (every
// dense run and BM25 fused in one go, as `aqa fuse --method zscore` of their result files).
//
// Without WebGPU (no navigator.gpu, or no adapter) the same runs are made on the CPU: queries
// embedded by the model's ONNX graph on onnxruntime-web's WebAssembly backend (wasm-engine.ts,
// loaded only then) and the stored vectors searched by core/retrieval/cpu-topk.ts; ranking,
// fusion and BM25 are the same code. Embedding one's own papers needs WebGPU.

import * as Comlink from 'comlink';
import { NO_ADAPTER_HELP, NO_WEBGPU_HELP, createBrowserGpu } from '../browser/device.ts';
import { fetchModelFiles } from '../browser/fetch.ts';
import { queryText } from '../core/data/clean.ts';
import type { Gpu } from '../core/gpu/device.ts';
import { TOPK_MAX_K } from '../core/kernels/topk.ts';
import type { ModelFiles } from '../core/model/source.ts';
import { type EmbeddingModel, type LoadModelOptions, loadEmbeddingModel } from '../core/retrieval/embed.ts';
import { parseCorpus } from '../core/data/corpus.ts';
import type { Bm25Index } from '../core/retrieval/bm25.ts';
import type { FusionMethod } from '../core/retrieval/fusion.ts';
import { type ExportManifest, type ExportPassage, bytesPerValue, decodeVectors, parseExportManifest, parseExportPassages, snippet } from '../core/retrieval/index-format.ts';
import { CpuIndex } from '../core/retrieval/cpu-topk.ts';
import { RESULTS_K, type ScoreMap, topK } from '../core/retrieval/results.ts';
import { type QueryEmbedder, retrieve } from '../core/retrieval/retrieve.ts';
import { GpuIndex } from '../core/retrieval/search.ts';
import { uploadExportQuantized } from '../core/retrieval/quantize-export.ts';
import type { QuantizedIndex } from '../core/retrieval/quantize-search.ts';
import type { DemoConfig, DemoIndexSpec } from './config.ts';
import { corpusLinks } from './cues.ts';
import { LEXICAL_RUN, type Ranking, combineRuns, lexicalIndex, lexicalRun } from './ranking.ts';
import { buildLibrary, type EmbedProgress, sha256Hex } from './library/build.ts';
import type { WasmEmbeddingModel } from './wasm-engine.ts';
import { type ModelIdentity, type StoredLibrary, currentKey, findStoredVectors, forgetLibraries, libraryKey, loadLibrary, saveLibrary, setCurrentKey } from './library/store.ts';

/** Bytes per ranged read of a vector file: 8 MiB = 10,922 rows of 384 f16, a progress step each. */
const READ_BYTES = 8 * 2 ** 20;

/** Either engine: the WebGPU model, or the ONNX graph on WebAssembly where there is no WebGPU. */
type QueryModel = EmbeddingModel | WasmEmbeddingModel;

/** The error for a library dropped where there is no WebGPU (the page disables the box up front too). */
export const LIBRARY_NEEDS_WEBGPU = 'Embedding your own papers needs WebGPU, which this browser does not offer here; the demo index is searched without it';

export interface LoadStep {
  /** What is loading: 'device', 'wasm', 'model <url>', 'index <name>', 'passages <name>', 'corpus <url>', 'bm25 <count>'. */
  what: string;
  /** Bytes so far and expected for this step (0 / 0 when unknown). */
  loaded: number;
  total: number;
  /** The total counts only the files seen so far (more may follow), so it is not the step's end. */
  partial?: boolean;
}

export interface DemoInfo {
  /** The GPU adapter, or the WebAssembly engine's name. */
  adapter: string;
  /** 'wasm': no WebGPU here (fallback says why), so queries embed on the CPU. */
  engine: 'webgpu' | 'wasm';
  fallback: string | null;
  features: string[];
  indexes: { name: string; model: string; precision: string; count: number; dim: number; dtype: string; gpuDtype: string; maxLength: number; credit: string | null }[];
  /** One-line notices for the page (f16 asked for on an adapter without shader-f16). */
  notices: string[];
  /** The corpus BM25 ranks (lexical and hybrid), or null: dense only. */
  corpus: { url: string; count: number; links: number } | null;
  /** Bytes fetched for models, indexes and the corpus. */
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
  /** The fused score with two or more runs, else the run's score (cosine for normalised models, BM25 alone). */
  score: number;
  /** Per run (SearchReply.runs): its score and rank, or null when the paper is not in its top list. */
  models: (ModelScore | null)[];
  /** The paper's DOI or URL where the corpus has one. */
  link: string | null;
}

export interface SearchReply {
  /** The text that was embedded (after cleaning). */
  query: string;
  hits: Hit[];
  ranking: Ranking;
  /** The runs ranked, in order: the indexes' names (dense, hybrid), then 'bm25' (lexical, hybrid). */
  runs: string[];
  /** Fusion method, or null with one run. */
  fused: FusionMethod | null;
  /** The first index's best score (a cosine for normalised models): how close the nearest paper is. Null under lexical ranking. */
  best: number | null;
  ms: { embed: number; search: number; total: number };
}

interface LoadedIndex {
  spec: DemoIndexSpec;
  manifest: ExportManifest;
  model: QueryModel;
  /** A CpuIndex without WebGPU; a QuantizedIndex when the export carries compressed codes. */
  gpuIndex: GpuIndex | CpuIndex | QuantizedIndex;
  passages: ExportPassage[];
  /** Row -> pid, as retrieve() takes them. */
  pids: string[];
  /** pid -> row of passages. */
  rows: Map<string, number>;
  /** Results taken from this index per question (the pipeline's 200, at most its size). */
  k: number;
}

type OnStep = (s: LoadStep) => void;

/** Building or opening one's own papers: what runs now, and how far it is. */
export interface LibraryProgress extends EmbedProgress {
  phase: 'open' | 'parse' | 'embed' | 'store';
}

export interface LibraryInfo {
  file: string;
  format: string;
  count: number;
  /** Found in this browser's storage (OPFS) rather than embedded now. */
  fromStorage: boolean;
  /** Seconds the embedding took (when it was built, for a stored one). */
  embedS: number;
  /** Papers whose vector was found in an earlier library rather than embedded. */
  reused: number;
  maxLength: number;
  links: number;
  /** One-line notes: duplicates dropped, papers without an abstract, storage refused. */
  notes: string[];
}

/** A file the page may offer for download: the export, as aqa index --export writes it. */
export interface ExportedFile {
  name: string;
  data: Uint8Array | string;
}

class DemoSearch {
  private gpu: Gpu | null = null;
  private indexes: LoadedIndex[] = [];
  private fusion: DemoConfig['fusion'] = { method: 'zscore' };
  private bm25: Bm25Index | null = null;
  /** The corpus's papers, for titles of BM25 hits that no index lists. */
  private papers = new Map<string, { title: string; abstract: string }>();
  private links = new Map<string, string>();
  /** One GPU at a time: a question asked while another runs waits its turn. */
  private queue: Promise<unknown> = Promise.resolve();
  /** The demo's own indexes and corpus while a library replaces them (forget brings them back). */
  private demo: { indexes: LoadedIndex[]; bm25: Bm25Index | null; papers: Map<string, { title: string; abstract: string }>; links: Map<string, string> } | null = null;
  private library: StoredLibrary | null = null;

  /** `noWebGpu`: why the page itself has no WebGPU (then none is opened here either), or null. */
  async init(cfg: DemoConfig, onStep: OnStep, noWebGpu: string | null = null): Promise<DemoInfo> {
    const t0 = performance.now();
    this.fusion = cfg.fusion;
    onStep({ what: 'device', loaded: 0, total: 0 });
    const opened = noWebGpu ? { gpu: null, why: noWebGpu } : await openGpu();
    const gpu = opened.gpu;
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
    const models = new Map<string, Promise<QueryModel>>();
    for (const [i, s] of cfg.indexes.entries()) {
      const count = (n: number) => (bytes += n);
      if (!models.has(s.model)) models.set(s.model, gpu ? this.loadModel(gpu, s.model, manifests[i].model.name, onStep, count, precision) : loadWasmModel(s, manifests[i].model.name, onStep, count));
    }

    for (const [i, spec] of cfg.indexes.entries()) {
      const manifest = manifests[i];
      const model = await models.get(spec.model)!;
      checkModel(spec, manifest, model);
      // A compressed form searches its codes on the GPU and rescores with rows read from the
      // vector files; without WebGPU the CPU scans the full vectors.
      const gpuIndex = manifest.quantized && gpu ? await uploadExportQuantized(gpu, manifest, folders[i], { onBytes: (n) => (bytes += n) }) : await uploadVectors(gpu, spec, manifest, folders[i], onStep, (n) => (bytes += n));
      const what = `passages ${spec.name}`;
      onStep({ what, loaded: 0, total: 0 });
      const text = await folders[i].text(manifest.passages);
      if (text === null) throw new Error(`${spec.index}${manifest.passages}: not found (HTTP 404)`);
      bytes += text.length;
      const passages = parseExportPassages(text, manifest.count, `${spec.index}${manifest.passages}`);
      onStep({ what, loaded: text.length, total: text.length });
      this.indexes.push({ spec, manifest, model, gpuIndex, passages, pids: passages.map((p) => p.pid), rows: new Map(passages.map((p, r) => [p.pid, r])), k: Math.min(RESULTS_K, TOPK_MAX_K, manifest.count) });
    }
    let corpus: DemoInfo['corpus'] = null;
    if (cfg.corpus) {
      corpus = await this.loadCorpus(cfg.corpus, onStep, (n) => (bytes += n));
      const missing = this.indexes[0].pids.filter((p) => !this.papers.has(p)).length;
      if (missing) notices.add(`${missing} of the ${this.indexes[0].pids.length} papers of ${this.indexes[0].spec.name} are not in the corpus ${cfg.corpus}, so BM25 cannot find them`);
    }
    return {
      adapter: gpu?.name ?? (await import('./wasm-engine.ts')).WASM_ENGINE_NAME,
      engine: gpu ? 'webgpu' : 'wasm',
      fallback: opened.why,
      features: gpu ? [...gpu.features].sort() : [],
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
      corpus,
      bytes,
      ms: performance.now() - t0,
    };
  }

  /** The corpus text -> the pipeline's BM25 index, the papers and their links. */
  private async loadCorpus(url: string, onStep: OnStep, count: (n: number) => void): Promise<NonNullable<DemoInfo['corpus']>> {
    onStep({ what: `corpus ${url}`, loaded: 0, total: 0 });
    const res = await fetch(url);
    if (res.status === 404) {
      await res.body?.cancel();
      throw new Error(`${url}: not found (HTTP 404): the corpus for BM25 (demo.json "corpus" or ?corpus=)`);
    }
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
    const text = await res.text();
    count(text.length);
    onStep({ what: `corpus ${url}`, loaded: text.length, total: text.length });
    const { papers } = parseCorpus(text, url);
    onStep({ what: `bm25 ${papers.size}`, loaded: 0, total: 0 });
    this.papers = papers;
    this.bm25 = lexicalIndex(papers);
    this.links = corpusLinks(text);
    return { url, count: papers.size, links: this.links.size };
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
      onStep({ what, loaded, total, partial: true });
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

  /** The top `show` papers for one question, with every run's score for each. */
  search(question: string, show: number, ranking: Ranking = 'dense'): Promise<SearchReply> {
    return this.exclusive(() => this.searchNow(question, show, ranking));
  }

  /** Query embeddings [texts.length, dim] by the first index's model, on whichever engine runs (the console and the tests compare engines with it). */
  embedQueries(texts: string[]): Promise<Float32Array> {
    return this.exclusive(() => this.base().model.embed(texts, { query: true }));
  }

  /** One GPU task at a time, in the order asked. */
  private exclusive<T>(f: () => Promise<T>): Promise<T> {
    const run = this.queue.then(f);
    this.queue = run.catch(() => undefined);
    return run;
  }

  // ---- one's own papers (demo/library/) ----

  /** The demo's first index: its model and max length embed the library. */
  private base(): LoadedIndex {
    const x = (this.demo?.indexes ?? this.indexes)[0];
    if (!x) throw new Error('the search is not loaded yet');
    return x;
  }

  private identity(x: LoadedIndex): ModelIdentity {
    const s = x.model.settings;
    return { model: x.spec.model, maxLength: x.manifest.model.maxLength, precision: x.model.precision, passagePrefix: s.passagePrefix, pooling: s.pooling, normalize: s.normalize };
  }

  /**
   * A picked or dropped file: found in this browser's storage when the same file was embedded
   * by the same model before, else parsed, embedded on the GPU and stored. From then on every
   * question searches it (dense by the library's vectors, lexical by BM25 over its papers).
   */
  openLibrary(name: string, bytes: Uint8Array, onProgress: (p: LibraryProgress) => void): Promise<LibraryInfo> {
    return this.exclusive(async () => {
      if (!this.gpu) throw new Error(LIBRARY_NEEDS_WEBGPU);
      const base = this.base();
      const identity = this.identity(base);
      onProgress({ phase: 'open', done: 0, total: 0, etaS: null });
      const key = await libraryKey(await sha256Hex(bytes), identity);
      const notes: string[] = [];
      let stored = await loadLibrary(key).catch(() => null);
      const fromStorage = stored !== null;
      if (stored) {
        await setCurrentKey(key).catch(() => undefined);
      } else {
        onProgress({ phase: 'parse', done: 0, total: 0, etaS: null });
        // Loaded on first use: the BibTeX parser is most of the worker's code, and most visits never drop a file.
        const { parseLibrary } = await import('./library/parse.ts');
        const lib = parseLibrary(name, new TextDecoder().decode(bytes));
        if (lib.duplicates) notes.push(`${lib.duplicates} entries repeat an id already seen and were left out`);
        if (lib.noAbstract) notes.push(`${lib.noAbstract} papers have no abstract and are searched by title alone`);
        const t0 = performance.now();
        const built = await buildLibrary(base.model as EmbeddingModel, base.manifest.model.name, lib.papers, identity.maxLength, (p) => onProgress({ phase: 'embed', ...p }), (h) => findStoredVectors(identity, h).catch(() => new Map()));
        const meta = { file: name, format: lib.format, count: lib.papers.length, embedS: (performance.now() - t0) / 1000, reused: built.reused, identity, created: new Date().toISOString() };
        stored = { key, meta, ...built };
        onProgress({ phase: 'store', done: 0, total: 0, etaS: null });
        try {
          await saveLibrary(key, built, meta);
        } catch (e) {
          notes.push(`not kept in this browser's storage (${(e as Error).message}), so a reload embeds it again`);
        }
      }
      return this.useLibrary(stored, base, fromStorage, notes);
    });
  }

  /** The library opened last in this browser, when the same model and settings made it; else null. */
  restoreLibrary(): Promise<LibraryInfo | null> {
    return this.exclusive(async () => {
      const base = this.base();
      const key = await currentKey().catch(() => null);
      const stored = key ? await loadLibrary(key).catch(() => null) : null;
      if (!stored || JSON.stringify(stored.meta.identity) !== JSON.stringify(this.identity(base))) return null;
      return this.useLibrary(stored, base, true, []);
    });
  }

  private async useLibrary(stored: StoredLibrary, base: LoadedIndex, fromStorage: boolean, notes: string[]): Promise<LibraryInfo> {
    const m = stored.manifest;
    const gpu = this.gpu;
    const dtype = gpu?.features.has('shader-f16') && m.dim % 4 === 0 ? 'f16' : 'f32';
    const vectors = decodeVectors(stored.vectors, m.dtype);
    const gpuIndex = gpu ? await GpuIndex.upload(gpu, vectors, m.dim, { dtype, rows: m.count }) : await CpuIndex.fromPieces(vectors, m.dim, m.count);
    if (this.library) this.indexes[0].gpuIndex.release();
    this.demo ??= { indexes: this.indexes, bm25: this.bm25, papers: this.papers, links: this.links };
    const spec = { name: 'library', index: `opfs:aqa-library/${stored.key}/`, model: base.spec.model };
    const pids = stored.passages.map((p) => p.pid);
    this.indexes = [{ spec, manifest: m, model: base.model, gpuIndex, passages: stored.passages, pids, rows: new Map(pids.map((p, r) => [p, r])), k: Math.min(RESULTS_K, TOPK_MAX_K, m.count) }];
    this.papers = parseCorpus(stored.corpus, 'corpus.json').papers;
    this.bm25 = lexicalIndex(this.papers);
    this.links = corpusLinks(stored.corpus);
    this.library = stored;
    const meta = stored.meta;
    return { file: meta.file, format: meta.format, count: m.count, fromStorage, embedS: meta.embedS, reused: meta.reused ?? 0, maxLength: m.model.maxLength, links: this.links.size, notes };
  }

  /** The open library as the files of a browser export (manifest.json, vectors, passages.json) plus corpus.json. */
  async exportLibrary(): Promise<ExportedFile[]> {
    const lib = this.library;
    if (!lib) throw new Error('no library is open');
    return [
      { name: 'manifest.json', data: `${JSON.stringify(lib.manifest, null, 2)}\n` },
      { name: lib.manifest.files[0].file, data: lib.vectors },
      { name: lib.manifest.passages, data: `${JSON.stringify(lib.passages)}\n` },
      { name: 'corpus.json', data: lib.corpus },
    ];
  }

  /** Clear every stored library and search the demo's own indexes again. */
  forgetLibrary(): Promise<void> {
    return this.exclusive(async () => {
      await forgetLibraries();
      if (!this.library || !this.demo) return;
      this.indexes[0].gpuIndex.release();
      ({ indexes: this.indexes, bm25: this.bm25, papers: this.papers, links: this.links } = this.demo);
      this.demo = null;
      this.library = null;
    });
  }

  private async searchNow(question: string, show: number, ranking: Ranking): Promise<SearchReply> {
    if (!this.indexes.length) throw new Error('the search is not loaded yet');
    if (ranking !== 'dense' && !this.bm25) throw new Error(`${ranking} ranking needs a corpus for BM25, and none was loaded`);
    const t0 = performance.now();
    const query = queryText({ question });
    if (!query) return { query, hits: [], ranking, runs: [], fused: null, best: null, ms: { embed: 0, search: 0, total: 0 } };
    let embedMs = 0;
    let retrieveMs = 0;
    // Embed once per model, whichever indexes share it: a model's first retrieve() embeds the
    // question, the others reuse its vector.
    const embedders = new Map<QueryModel, QueryEmbedder>();
    const embedOnce = (model: QueryModel): QueryEmbedder => {
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
    const runs: string[] = [];
    for (const x of ranking === 'lexical' ? [] : this.indexes) {
      let embedder = embedders.get(x.model);
      if (!embedder) embedders.set(x.model, (embedder = embedOnce(x.model)));
      const ts = performance.now();
      const r = await retrieve(embedder, x.gpuIndex, x.pids, [{ question }], { k: x.k });
      retrieveMs += performance.now() - ts;
      maps.push(new Map(r.pids[0].map((pid, j) => [pid, r.scores[0][j]])));
      runs.push(x.spec.name);
    }
    if (ranking !== 'dense') {
      const ts = performance.now();
      maps.push(lexicalRun(this.bm25!, question));
      runs.push(LEXICAL_RUN);
      retrieveMs += performance.now() - ts;
    }
    const searchMs = retrieveMs - embedMs;
    // Per index: pid -> (score, rank) in the CLI's rank order.
    const ranked = maps.map((m) => new Map(topK(m).map(([pid, score], i) => [pid, { score, rank: i + 1 }])));
    const fused = maps.length > 1 ? this.fusion.method : null;
    const final = combineRuns(maps, ranking, this.fusion.method, this.fusion.weights);
    const hits = topK(final, show).map(([pid, score], i): Hit => {
      const p = this.passageOf(pid);
      return { rank: i + 1, pid, title: p.title, snippet: p.snippet, score, models: ranked.map((r) => r.get(pid) ?? null), link: this.links.get(pid) ?? null };
    });
    const best = ranking !== 'lexical' && maps[0].size ? Math.max(...maps[0].values()) : null;
    return { query, hits, ranking, runs, fused, best, ms: { embed: embedMs, search: searchMs, total: performance.now() - t0 } };
  }

  /** Title and snippet from the first index that holds the paper (indexes may cover other corpora), else the corpus. */
  private passageOf(pid: string): { title: string; snippet: string } {
    for (const x of this.indexes) {
      const r = x.rows.get(pid);
      if (r !== undefined) return x.passages[r];
    }
    const p = this.papers.get(pid);
    return { title: p?.title.trim() ?? '', snippet: p ? snippet(p.abstract) : '' };
  }

  /** Resolves with a message when the GPU device is lost (driver reset, tab in the background too long). */
  async lost(): Promise<string> {
    if (!this.gpu) throw new Error('no device yet');
    const info = await this.gpu.device.lost;
    return `the GPU device was lost (${info.reason}): ${info.message || 'no detail'}. Reload the page to start again.`;
  }
}

/** The query side must embed like the passages were: same width, pooling, normalisation and prefix. */
function checkModel(spec: DemoIndexSpec, m: ExportManifest, model: QueryModel): void {
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

/** The GPU, or null with the reason where this browser has no WebGPU or no adapter (then the CPU serves). */
async function openGpu(): Promise<{ gpu: Gpu | null; why: string | null }> {
  try {
    return { gpu: await createBrowserGpu(), why: null };
  } catch (e) {
    const m = (e as Error).message;
    if (m.startsWith(NO_WEBGPU_HELP)) return { gpu: null, why: 'no WebGPU in this browser' };
    if (m.startsWith(NO_ADAPTER_HELP)) return { gpu: null, why: 'WebGPU gave no adapter' };
    throw e;
  }
}

/**
 * The WebAssembly engine for one model: its tokenizer and settings from the model folder, the
 * graph from the index spec's "onnx" URL (default: the folder's onnx/model.onnx, where
 * `aqa export --format onnx` puts it).
 */
async function loadWasmModel(spec: DemoIndexSpec, name: string, onStep: OnStep, count: (n: number) => void): Promise<QueryModel> {
  onStep({ what: 'wasm', loaded: 0, total: 0 });
  const { WasmEmbeddingModel } = await import('./wasm-engine.ts');
  const url = spec.onnx ?? `${spec.model}onnx/model.onnx`;
  const slash = url.lastIndexOf('/') + 1;
  const what = `model ${url}`;
  let seen = 0;
  const graph = fetchModelFiles(url.slice(0, slash), {
    onProgress: (_file, loaded, total) => {
      count(loaded - seen);
      seen = loaded;
      onStep({ what, loaded, total });
    },
  });
  onStep({ what, loaded: 0, total: 0 });
  const src = await graph.file(url.slice(slash));
  if (!src) throw new Error(`${url}: not found (HTTP 404): this browser has no WebGPU, and the page embeds questions without it from the model's ONNX export (bash tools/build-demo-index.sh writes it; or aqa export --format onnx)`);
  const bytes = await src.read(0, src.size);
  return WasmEmbeddingModel.load(fetchModelFiles(spec.model), bytes, url, name);
}

/**
 * Vector files -> one GpuIndex (a CpuIndex without a GPU), read in ranged pieces of whole rows (8 MiB) so the host holds
 * one piece at a time. f16 files stay f16 on the GPU when it has shader-f16 (half the memory,
 * the same values); otherwise (Chromium's SwiftShader) they widen to f32 exactly.
 */
async function uploadVectors(gpu: Gpu | null, spec: DemoIndexSpec, m: ExportManifest, folder: ModelFiles, onStep: OnStep, count: (n: number) => void): Promise<GpuIndex | CpuIndex> {
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
  if (!gpu) return CpuIndex.fromPieces(pieces(), m.dim, m.count);
  const dtype = m.dtype === 'f16' && gpu.features.has('shader-f16') && m.dim % 4 === 0 ? 'f16' : 'f32';
  return GpuIndex.upload(gpu, pieces(), m.dim, { dtype, rows: m.count });
}

export type DemoSearchApi = DemoSearch;

Comlink.expose(new DemoSearch());
