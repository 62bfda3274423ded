// Chromium entry for whole-model forwards (bundled by test/browser/runner.ts; compared in
// test/browser-model.test.ts). run() creates the browser Gpu, loads each model over HTTP with
// fetchModelFiles (Range reads of model.safetensors, like a real web page), and returns:
//  - gte-dev and tiny-bert: the fixture's golden inputs through the encoder, exactly as
//    test/model.test.ts runs them (every hidden state, CLS and mean pooling, both normalised);
//  - all-MiniLM-L6-v2: EmbeddingModel.embed() of test/fixtures/minilm/texts.jsonl at max length
//    256 (a subset by default, see minilmSelection()).
// Arrays travel as their exact f32 bytes (./encoding.ts). forwardFixture() and embedTexts() are
// host-neutral: the Node side of the test runs the very same functions on Dawn.

import { createBrowserGpu } from '../../browser/device.ts';
import { fetchModelFiles } from '../../browser/fetch.ts';
import type { Gpu } from '../../core/gpu/device.ts';
import { clsPoolForward, l2NormalizeForward, meanPoolForward } from '../../core/kernels/pooling.ts';
import { loadEncoder } from '../../core/model/load.ts';
import { loadEmbeddingModel } from '../../core/retrieval/embed.ts';
import { parseSafetensorsHeader, readInt64Tensor, type SafetensorsFile } from '../../core/model/safetensors.ts';
import type { ModelFiles } from '../../core/model/source.ts';
import { type EncodedArray, encodeArray } from './encoding.ts';

export const MINILM_NAME = 'sentence-transformers/all-MiniLM-L6-v2';
/** The model's own max_seq_length, as test/model.test.ts uses (golden `embeddings`). */
export const MINILM_MAX_LENGTH = 256;

export interface FixtureOutputs {
  hidden: Float32Array[]; // embedding output, then each layer's [B, L, H]
  cls: Float32Array; // [B, H]
  clsN: Float32Array;
  mean: Float32Array;
  meanN: Float32Array;
}

export const FIXTURE_OUTPUTS = ['cls', 'clsN', 'mean', 'meanN'] as const;

async function goldenFile(files: ModelFiles): Promise<SafetensorsFile> {
  const src = await files.file('golden.safetensors');
  if (!src) throw new Error(`${files.name}/golden.safetensors is missing`);
  return parseSafetensorsHeader(src);
}

async function u32(g: SafetensorsFile, name: string): Promise<{ data: Uint32Array; shape: number[] }> {
  const t = await readInt64Tensor(g, name);
  return { data: Uint32Array.from(t.data, (v) => Number(v)), shape: t.shape };
}

/**
 * Load the fixture folder's model and run its golden inputs (input_ids, attention_mask,
 * token_type_ids of golden.safetensors) through the encoder, pooling both ways.
 */
export async function forwardFixture(gpu: Gpu, files: ModelFiles): Promise<FixtureOutputs & { loadMs: number; forwardMs: number }> {
  const t0 = performance.now();
  const enc = await loadEncoder(gpu, files);
  const g = await goldenFile(files);
  const ids = await u32(g, 'input_ids');
  const mask = await u32(g, 'attention_mask');
  const types = await u32(g, 'token_type_ids');
  const t1 = performance.now();
  const [B, L] = ids.shape;
  const tIds = gpu.upload(ids.data, [B, L], 'u32');
  const tMask = gpu.upload(mask.data, [B, L], 'u32');
  const tTypes = gpu.upload(types.data, [B, L], 'u32');
  const { hidden } = enc.forward({ ids: tIds, mask: tMask, typeIds: tTypes, batch: B, seqLen: L }, { hidden: true });
  const last = hidden[hidden.length - 1];
  const H = enc.config.hiddenSize;
  const cls = gpu.empty([B, H]);
  const mean = gpu.empty([B, H]);
  clsPoolForward(gpu, cls, last);
  meanPoolForward(gpu, mean, last, tMask);
  const clsN = gpu.empty([B, H]);
  const meanN = gpu.empty([B, H]);
  const norm = gpu.empty([B]);
  l2NormalizeForward(gpu, clsN, norm, cls);
  l2NormalizeForward(gpu, meanN, norm, mean);
  const out: FixtureOutputs = {
    hidden: await Promise.all(hidden.map((t) => gpu.readF32(t))),
    cls: await gpu.readF32(cls),
    clsN: await gpu.readF32(clsN),
    mean: await gpu.readF32(mean),
    meanN: await gpu.readF32(meanN),
  };
  const forwardMs = performance.now() - t1;
  for (const t of [tIds, tMask, tTypes, cls, mean, clsN, meanN, norm, ...hidden]) t.release();
  enc.dispose();
  return { ...out, loadMs: t1 - t0, forwardMs };
}

export interface TextRow {
  id: number;
  kind: string;
  text: string;
}

/** The rows of test/fixtures/minilm/texts.jsonl, in file order (= golden row order). */
export function parseTextRows(jsonl: string): TextRow[] {
  return jsonl
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as TextRow);
}

/**
 * Which texts to embed, as indices into the file. 'all': every text, in batches of 16 like
 * test/model.test.ts. 'subset' (the default): every kind except the long ones (empty,
 * whitespace, short, sentence, unicode, math, code, long-word, aqa-title: at most 65 tokens
 * each), plus the longest 'long' and the longest 'aqa' text (by characters; 490 and 550
 * tokens), which exercise truncation at 256. Batches of 2 keep the two 256-token rows
 * together instead of padding 14 short texts to 256: SwiftShader runs this model at
 * ~25 ms per token plus ~3.7 s of attention per 256-token row on a loaded 2-core machine, so
 * the full set takes ~5 minutes there and the subset under one.
 */
export function minilmSelection(rows: TextRow[], which: 'subset' | 'all'): { indices: number[]; batchSize: number } {
  if (which === 'all') return { indices: rows.map((_, i) => i), batchSize: 16 };
  const longest = (kind: string) => {
    let best = -1;
    rows.forEach((r, i) => {
      if (r.kind === kind && (best < 0 || r.text.length > rows[best].text.length)) best = i;
    });
    return best;
  };
  const keep = new Set(rows.flatMap((r, i) => (r.kind === 'long' || r.kind === 'aqa' ? [] : [i])));
  for (const kind of ['long', 'aqa']) if (longest(kind) >= 0) keep.add(longest(kind));
  return { indices: [...keep].sort((a, b) => a - b), batchSize: 2 };
}

/** all-MiniLM-L6-v2 embeddings [texts.length, 384] through the public EmbeddingModel API. */
export async function embedTexts(
  gpu: Gpu,
  files: ModelFiles,
  texts: string[],
  batchSize: number,
): Promise<{ embeddings: Float32Array; dim: number; lengths: number[]; tokens: number; loadMs: number; embedMs: number }> {
  const t0 = performance.now();
  const model = await loadEmbeddingModel(gpu, files, MINILM_NAME);
  const t1 = performance.now();
  let tokens = 0;
  const embeddings = await model.embed(texts, { maxLength: MINILM_MAX_LENGTH, batchSize, onProgress: (p) => (tokens = p.tokens) });
  const embedMs = performance.now() - t1;
  // Token counts (specials included, after truncation): compared with the Python tokenizer's.
  const lengths = model.tokenize(texts, { maxLength: MINILM_MAX_LENGTH }).map((ids) => ids.length);
  const dim = model.dim;
  model.dispose();
  return { embeddings, dim, lengths, tokens, loadMs: t1 - t0, embedMs };
}

export interface ModelRunArgs {
  /** URL prefixes of the model folders, as served by the runner. */
  gteDev: string;
  tinyBert: string;
  /** all-MiniLM-L6-v2: the model folder, the folder holding texts.jsonl, which texts. null skips it. */
  minilm: { model: string; texts: string; which: 'subset' | 'all' } | null;
}

export interface EncodedFixture {
  hidden: EncodedArray[];
  cls: EncodedArray;
  clsN: EncodedArray;
  mean: EncodedArray;
  meanN: EncodedArray;
  loadMs: number;
  forwardMs: number;
}

export interface RequestRecord {
  method: string;
  url: string;
  range: string | null;
  status: number;
}

export interface ModelReport {
  adapterName: string;
  features: string[];
  userAgent: string;
  fixtures: Record<'gte-dev' | 'tiny-bert', EncodedFixture>;
  minilm: {
    /** Rows of texts.jsonl embedded, in order. */
    indices: number[];
    batchSize: number;
    embeddings: EncodedArray; // [indices.length, dim]
    dim: number;
    /** Token count of each text after truncation. */
    lengths: number[];
    tokens: number;
    loadMs: number;
    embedMs: number;
  } | null;
  /** Every HTTP request the loaders made. */
  requests: RequestRecord[];
  /** Per file URL: bytes received and the file's size, from fetchModelFiles' onProgress. */
  progress: Record<string, { loaded: number; total: number }>;
  ms: number;
}

export async function run(args: ModelRunArgs): Promise<ModelReport> {
  const t0 = performance.now();
  const requests: RequestRecord[] = [];
  const progress: ModelReport['progress'] = {};
  // Count every request: the test checks that weights travel as 206 ranges, never whole.
  const countingFetch: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    const range = new Headers(init?.headers).get('range');
    requests.push({ method: init?.method ?? 'GET', url: String(input), range, status: res.status });
    return res;
  };
  const files = (base: string) =>
    fetchModelFiles(base, {
      fetch: countingFetch,
      onProgress: (file, loaded, total) => (progress[`${base.replace(/\/+$/, '')}/${file}`] = { loaded, total }),
    });

  const gpu = await createBrowserGpu();
  const fixtures = {} as ModelReport['fixtures'];
  for (const [name, base] of [
    ['gte-dev', args.gteDev],
    ['tiny-bert', args.tinyBert],
  ] as const) {
    const out = await forwardFixture(gpu, files(base));
    console.log(`${name}: load ${out.loadMs.toFixed(0)} ms, forward ${out.forwardMs.toFixed(0)} ms`);
    fixtures[name] = {
      hidden: out.hidden.map((h) => encodeArray(h)),
      cls: encodeArray(out.cls),
      clsN: encodeArray(out.clsN),
      mean: encodeArray(out.mean),
      meanN: encodeArray(out.meanN),
      loadMs: out.loadMs,
      forwardMs: out.forwardMs,
    };
  }

  let minilm: ModelReport['minilm'] = null;
  if (args.minilm) {
    const jsonl = await files(args.minilm.texts).text('texts.jsonl');
    if (jsonl === null) throw new Error(`${args.minilm.texts}/texts.jsonl is missing`);
    const rows = parseTextRows(jsonl);
    const { indices, batchSize } = minilmSelection(rows, args.minilm.which);
    const r = await embedTexts(gpu, files(args.minilm.model), indices.map((i) => rows[i].text), batchSize);
    console.log(`all-MiniLM-L6-v2: load ${r.loadMs.toFixed(0)} ms, embed ${indices.length} texts (${r.tokens} tokens) ${r.embedMs.toFixed(0)} ms`);
    minilm = { indices, batchSize, embeddings: encodeArray(r.embeddings), dim: r.dim, lengths: r.lengths, tokens: r.tokens, loadMs: r.loadMs, embedMs: r.embedMs };
  }

  gpu.destroy();
  return {
    adapterName: gpu.name,
    features: [...gpu.features].sort(),
    userAgent: navigator.userAgent,
    fixtures,
    minilm,
    requests,
    progress,
    ms: performance.now() - t0,
  };
}
