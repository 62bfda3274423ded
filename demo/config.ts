// What the demo searches: the exported indexes (each with the model that embeds its queries),
// how their scores are fused, and how many results to show. Pure functions, no DOM and no
// fetch, so Node tests can check them too.
//
// Sources, later ones winning:
//   1. a config JSON (default `indexes/demo.json` next to the page; written by
//      tools/build-demo-index.sh), whose relative URLs are resolved against its own URL:
//        { "indexes": [{ "name": "minilm-128", "index": "minilm-128/export/",
//                        "model": "../models/all-MiniLM-L6-v2/",
//                        "onnx": "model-onnx/onnx/model.onnx" }],
//          "fusion": { "method": "zscore", "weights": [1, 1] }, "examples": ["..."],
//          "corpus": "corpus.json" }
//      "onnx" (optional) is the model's ONNX export, for browsers without WebGPU.
//      "corpus" (optional) is the AQA corpus JSON the indexes were built from: with it the page
//      also ranks by BM25 (lexical) and by dense + BM25 fused (hybrid, the default).
//   2. page parameters: ?config=URL, ?index=a/,b/ (export folders, relative to the page),
//      ?model=m (one model for every index) or ?model=m1,m2 (one per index), ?fusion=zscore,
//      ?show=10 (results listed), ?precision=f16 (the models' weights and activations in f16:
//      half the weight memory; f32 with a notice where the adapter lacks shader-f16),
//      ?corpus=URL (the corpus for BM25), ?ranking=dense|lexical|hybrid (default hybrid when
//      there is a corpus, else dense).
// A model is a URL of a folder (model.safetensors, tokenizer.json, ...) or a Hugging Face Hub
// id (`owner/name`), fetched from huggingface.co's resolve/main/ URLs (Range requests and CORS).

import type { Precision } from '../core/model/load.ts';
import { FUSION_METHODS, type FusionMethod } from '../core/retrieval/fusion.ts';
import { isHubId, isObject, parseJsonObject } from '../core/util/fields.ts';
import { WEAK_BELOW } from './cues.ts';
import { RANKINGS, type Ranking } from './ranking.ts';

export { isHubId };

export interface DemoIndexSpec {
  /** Shown next to its scores. */
  name: string;
  /** Absolute URL of the export folder (manifest.json inside). */
  index: string;
  /** Absolute URL of the model folder. */
  model: string;
  /**
   * Absolute URL of the model's ONNX graph (aqa export --format onnx), which embeds the questions
   * where the browser has no WebGPU; absent: the model folder's onnx/model.onnx.
   */
  onnx?: string;
}

export interface DemoConfig {
  indexes: DemoIndexSpec[];
  /** z-score sum is the pipeline's default (core/retrieval/fusion.ts); used with two or more indexes. */
  fusion: { method: FusionMethod; weights?: number[] };
  /** Results listed per question. */
  show: number;
  /** Example questions offered as buttons. */
  examples: string[];
  /** What the query models run in (the config's "precision", or ?precision=; default f32). */
  precision: Precision;
  /** Absolute URL of the AQA corpus JSON for BM25, or null (dense ranking only). */
  corpus: string | null;
  /** How the papers are ranked at first (the page's switch changes it). */
  ranking: Ranking;
  /** A best dense score under this marks the answer a weak match (config "weakBelow"; null: never). */
  weakBelow: number | null;
}

const DEFAULT_CONFIG_URL = 'indexes/demo.json';
const DEFAULT_SHOW = 10;
/** Most results listed: each model's retrieval depth (core/retrieval/results.ts RESULTS_K) bounds it anyway. */
const MAX_SHOW = 200;
const HUB = 'https://huggingface.co';

export class DemoConfigError extends Error {
  override name = 'DemoConfigError';
}

/**
 * The folder URL a model argument names, ending in '/': a Hub id becomes its `resolve/main/`
 * URL; anything else is a URL, resolved against `base`. `./models/x` or `/models/x` stay local
 * even though `models/x` alone would look like a Hub id: write local folders with ./ or /.
 */
export function modelUrl(model: string, base: string): string {
  const m = model.trim();
  if (!m) throw new DemoConfigError('empty model');
  if (isHubId(m)) return `${HUB}/${m}/resolve/main/`;
  return folderUrl(m, base);
}

function folderUrl(u: string, base: string): string {
  let url: URL;
  try {
    url = new URL(u, base);
  } catch {
    throw new DemoConfigError(`'${u}' is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new DemoConfigError(`'${u}': only http(s) URLs can be fetched`);
  url.search = '';
  url.hash = '';
  return url.href.endsWith('/') ? url.href : `${url.href}/`;
}

/** A readable name for an export folder URL: its last path segment that is not `export`. */
export function indexName(url: string): string {
  const parts = new URL(url).pathname.split('/').filter((p) => p && p !== 'export');
  return decodeURIComponent(parts[parts.length - 1] ?? url);
}

function parseMethod(v: unknown, where: string): FusionMethod {
  if (typeof v !== 'string' || !FUSION_METHODS.includes(v as FusionMethod)) {
    throw new DemoConfigError(`${where}: fusion method must be one of ${FUSION_METHODS.join(', ')}, got ${JSON.stringify(v)}`);
  }
  return v as FusionMethod;
}

function parseRanking(v: string, corpus: string | null): Ranking {
  if (!RANKINGS.includes(v as Ranking)) throw new DemoConfigError(`?ranking=: must be one of ${RANKINGS.join(', ')}, got ${JSON.stringify(v)}`);
  if (v !== 'dense' && !corpus) throw new DemoConfigError(`?ranking=${v} needs the corpus for BM25: "corpus" in the config, or ?corpus=`);
  return v as Ranking;
}

/** A file URL (not a folder) resolved against `base`; http(s) only. */
function resolveFile(u: string, base: string, where: string): string {
  let url: URL;
  try {
    url = new URL(u, base);
  } catch {
    throw new DemoConfigError(`${where}: '${u}' is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new DemoConfigError(`${where}: '${u}': only http(s) URLs can be fetched`);
  return url.href;
}

function parsePrecision(v: unknown, where: string): Precision {
  if (v !== 'f32' && v !== 'f16') throw new DemoConfigError(`${where}: precision must be "f32" or "f16", got ${JSON.stringify(v)}`);
  return v;
}

function parseShow(v: unknown, where: string): number {
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_SHOW) throw new DemoConfigError(`${where}: show must be an integer in [1, ${MAX_SHOW}], got ${JSON.stringify(v)}`);
  return n;
}

/** The config file's text, its URLs resolved against `fileUrl`. */
export function parseDemoConfig(text: string, fileUrl: string): DemoConfig {
  const v = parseJsonObject(text, fileUrl, (m) => new DemoConfigError(m));
  if (!Array.isArray(v.indexes) || !v.indexes.length) throw new DemoConfigError(`${fileUrl}: indexes: expected a non-empty array`);
  const indexes = v.indexes.map((e, i): DemoIndexSpec => {
    const where = `${fileUrl}: indexes[${i}]`;
    if (!isObject(e)) throw new DemoConfigError(`${where}: not an object`);
    if (typeof e.index !== 'string' || !e.index) throw new DemoConfigError(`${where}.index: expected the export folder's URL`);
    if (typeof e.model !== 'string' || !e.model) throw new DemoConfigError(`${where}.model: expected a model folder URL or Hub id`);
    const index = folderUrl(e.index, fileUrl);
    const spec: DemoIndexSpec = { name: typeof e.name === 'string' && e.name ? e.name : indexName(index), index, model: modelUrl(e.model, fileUrl) };
    if (e.onnx !== undefined) {
      if (typeof e.onnx !== 'string' || !e.onnx) throw new DemoConfigError(`${where}.onnx: expected the URL of the model's ONNX graph (model.onnx)`);
      spec.onnx = resolveFile(e.onnx, fileUrl, `${where}.onnx`);
    }
    return spec;
  });
  const f = v.fusion === undefined ? {} : v.fusion;
  if (!isObject(f)) throw new DemoConfigError(`${fileUrl}: fusion: expected an object`);
  const fusion: DemoConfig['fusion'] = { method: f.method === undefined ? 'zscore' : parseMethod(f.method, `${fileUrl}: fusion.method`) };
  if (f.weights !== undefined) {
    if (!Array.isArray(f.weights) || f.weights.length !== indexes.length || f.weights.some((w) => typeof w !== 'number' || !Number.isFinite(w) || w < 0)) {
      throw new DemoConfigError(`${fileUrl}: fusion.weights: expected ${indexes.length} numbers >= 0, one per index`);
    }
    fusion.weights = f.weights as number[];
  }
  const examples = Array.isArray(v.examples) ? v.examples.filter((x): x is string => typeof x === 'string' && x.trim() !== '') : [];
  const precision = v.precision === undefined ? 'f32' : parsePrecision(v.precision, fileUrl);
  if (v.corpus !== undefined && (typeof v.corpus !== 'string' || !v.corpus)) throw new DemoConfigError(`${fileUrl}: corpus: expected the URL of the AQA corpus JSON`);
  const corpus = typeof v.corpus === 'string' ? resolveFile(v.corpus, fileUrl, `${fileUrl}: corpus`) : null;
  if (v.weakBelow !== undefined && v.weakBelow !== null && (typeof v.weakBelow !== 'number' || !Number.isFinite(v.weakBelow))) {
    throw new DemoConfigError(`${fileUrl}: weakBelow: expected a number (the best dense score under which a match is weak) or null, got ${JSON.stringify(v.weakBelow)}`);
  }
  const weakBelow = v.weakBelow === undefined ? WEAK_BELOW : (v.weakBelow as number | null);
  return { indexes, fusion, show: v.show === undefined ? DEFAULT_SHOW : parseShow(v.show, fileUrl), examples, precision, corpus, ranking: corpus ? 'hybrid' : 'dense', weakBelow };
}

/** Where the config comes from: ?config=, else the default next to the page; null when ?index= replaces it. */
export function configUrl(params: URLSearchParams, pageUrl: string): string | null {
  if (params.get('index')) return null;
  return new URL(params.get('config') || DEFAULT_CONFIG_URL, pageUrl).href;
}

const list = (s: string | null) => (s ?? '').split(',').map((x) => x.trim()).filter(Boolean);

/**
 * Apply the page parameters to `base` (the parsed config file, or null when ?index= names the
 * indexes). ?index= needs ?model= unless `defaultModel` is given.
 */
export function applyParams(base: DemoConfig | null, params: URLSearchParams, pageUrl: string, defaultModel?: string): DemoConfig {
  const cfg: DemoConfig = base ? { ...base, indexes: [...base.indexes], fusion: { ...base.fusion } } : { indexes: [], fusion: { method: 'zscore' }, show: DEFAULT_SHOW, examples: [], precision: 'f32', corpus: null, ranking: 'dense', weakBelow: WEAK_BELOW };
  const idx = list(params.get('index'));
  const models = list(params.get('model'));
  if (idx.length) {
    if (models.length > 1 && models.length !== idx.length) throw new DemoConfigError(`?model= names ${models.length} models for ${idx.length} indexes: give one, or one per index`);
    const fallback = models[0] ?? defaultModel;
    if (!fallback) throw new DemoConfigError('?index= needs ?model= (a model folder URL or Hub id)');
    cfg.indexes = idx.map((u, i) => {
      const index = folderUrl(u, pageUrl);
      return { name: indexName(index), index, model: modelUrl(models.length > 1 ? models[i] : fallback, pageUrl) };
    });
    if (cfg.fusion.weights && cfg.fusion.weights.length !== cfg.indexes.length) delete cfg.fusion.weights;
  } else if (models.length) {
    if (models.length > 1 && models.length !== cfg.indexes.length) throw new DemoConfigError(`?model= names ${models.length} models for ${cfg.indexes.length} indexes: give one, or one per index`);
    // Another model: the config's ONNX graph was exported from the old one, so it goes too.
    cfg.indexes = cfg.indexes.map((s, i) => ({ name: s.name, index: s.index, model: modelUrl(models.length > 1 ? models[i] : models[0], pageUrl) }));
  }
  if (!cfg.indexes.length) throw new DemoConfigError('no index to search: build one with bash tools/build-demo-index.sh, or pass ?index=');
  const method = params.get('fusion');
  if (method) cfg.fusion.method = parseMethod(method, '?fusion=');
  const show = params.get('show');
  if (show) cfg.show = parseShow(show, '?show=');
  const precision = params.get('precision');
  if (precision) cfg.precision = parsePrecision(precision, '?precision=');
  const corpus = params.get('corpus');
  if (corpus) cfg.corpus = resolveFile(corpus, pageUrl, '?corpus=');
  const ranking = params.get('ranking');
  cfg.ranking = ranking ? parseRanking(ranking, cfg.corpus) : cfg.corpus ? 'hybrid' : 'dense';
  return cfg;
}
