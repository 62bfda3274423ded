// Embedding benchmark: tokens/s and ms per batch of our WebGPU encoder, side by side in one
// run with transformers.js (device 'webgpu' = onnxruntime's WebGPU EP on the same Vulkan
// adapter through its own Dawn, and device 'cpu' = onnxruntime's CPU EP), same model, same
// texts, same pooling. Each row includes tokenization, as a user's call would.
//
// transformers.js needs ONNX weights: `python3 tools/export_onnx.py <model dir>` writes
// <model dir>/onnx/model.onnx. Without it the peers are reported as skipped.

import { existsSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { Gpu } from '../../core/gpu/device.ts';
import type { Precision } from '../../core/model/load.ts';
import { type EmbeddingModel, loadEmbeddingModel } from '../../core/retrieval/embed.ts';
import { localModelFiles } from '../files.ts';
import type { Row } from './table.ts';

export interface EmbedBenchOptions {
  modelDir: string;
  /** [batch, tokens per text incl. specials]. Default [[32, 128], [32, 256]]. */
  shapes?: [number, number][];
  /** Timed runs per shape after one warm-up (median reported). Default 3; peers on 'webgpu' get 1. */
  runs?: number;
  peers?: ('webgpu' | 'cpu')[];
  /** Our storage types to time, each with its own model load. Default f32 and f16 where the adapter has shader-f16. */
  precisions?: Precision[];
  log?: (msg: string) => void;
}

export interface EmbedBenchRow extends Row {
  impl: string;
  precision: Precision;
  device: string;
  batch: number;
  seq: number;
  runs: number;
  msPerBatch: number;
  tokensPerSec: number;
  /** Our tokens/s divided by this row's (1 for ours). */
  oursSpeedup: number | null;
  /** Max |ours - this| over the batch's embeddings (agreement check). */
  maxdiff: number | null;
  note: string;
}

export const embedColumns = [
  { key: 'impl' },
  { key: 'precision' },
  { key: 'device' },
  { key: 'batch' },
  { key: 'seq' },
  { key: 'runs' },
  { key: 'msPerBatch', label: 'ms/batch', digits: 1 },
  { key: 'tokensPerSec', label: 'tokens/s', digits: 0 },
  { key: 'oursSpeedup', label: 'ours is x faster', digits: 2 },
  { key: 'maxdiff', digits: 7 },
  { key: 'note' },
];

/** Texts that tokenize to exactly `seq` tokens ([CLS] + seq-2 words + [SEP]), varied per row. */
function benchTexts(model: EmbeddingModel, batch: number, seq: number): string[] {
  const words = ['graph', 'neural', 'protein', 'energy', 'quantum', 'network', 'model', 'data', 'signal', 'theory'];
  const texts: string[] = [];
  for (let b = 0; b < batch; b++) {
    const parts: string[] = [];
    for (let i = 0; i < seq - 2; i++) parts.push(words[(i * 7 + b * 3) % words.length]);
    const t = parts.join(' ');
    const n = model.tokenize([t], { maxLength: Infinity })[0].length;
    if (n !== seq) throw new Error(`bench text tokenizes to ${n} tokens, expected ${seq}`);
    texts.push(t);
  }
  return texts;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function timeRuns(runs: number, fn: () => Promise<Float32Array>): Promise<{ ms: number; out: Float32Array }> {
  let out = await fn(); // warm-up: pipeline compiles, buffer pools, ORT session init
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    out = await fn();
    times.push(performance.now() - t0);
  }
  return { ms: median(times), out };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export async function benchEmbed(gpu: Gpu, o: EmbedBenchOptions): Promise<EmbedBenchRow[]> {
  const log = o.log ?? (() => {});
  const shapes = o.shapes ?? [
    [32, 128],
    [32, 256],
  ];
  const runs = o.runs ?? 3;
  const precisions = o.precisions ?? (gpu.features.has('shader-f16') ? ['f32', 'f16'] : ['f32']);
  if (precisions.includes('f16') && !gpu.features.has('shader-f16')) throw new Error(`--precision f16: ${gpu.name} has no shader-f16`);
  // One model per precision; the texts and peers use the first (the f32 model unless only f16 is asked).
  const models: [Precision, EmbeddingModel][] = [];
  for (const precision of precisions) models.push([precision, await loadEmbeddingModel(gpu, localModelFiles(o.modelDir), basename(o.modelDir), undefined, { precision })]);
  const [firstPrecision, model] = models[0];
  const pooling = model.settings.pooling;
  const rows: EmbedBenchRow[] = [];
  const onnxPath = resolve(o.modelDir, 'onnx', 'model.onnx');
  const peers = o.peers ?? ['webgpu', 'cpu'];
  const device = gpu.name.split(' / ').slice(-1)[0].slice(0, 40);

  for (const [batch, seq] of shapes) {
    const texts = benchTexts(model, batch, seq);
    const tokens = batch * seq;
    // The first precision is the reference of the others' rows (maxdiff, speed ratio in the note).
    let first: { ms: number; out: Float32Array } | null = null;
    for (const [precision, m] of models) {
      log(`ours ${precision}: batch ${batch} x ${seq}`);
      const r = await timeRuns(runs, () => m.embed(texts, { batchSize: batch, maxLength: seq }));
      const tps = tokens / (r.ms / 1000);
      const note = first ? `${(first.ms / r.ms).toFixed(2)}x the ${firstPrecision} tokens/s` : '';
      rows.push({ impl: 'aqa (ours)', precision, device, batch, seq, runs, msPerBatch: r.ms, tokensPerSec: tps, oursSpeedup: first ? null : 1, maxdiff: first ? maxAbsDiff(first.out, r.out) : null, note });
      first ??= r;
    }
    const ours = first!;
    const oursTps = tokens / (ours.ms / 1000);

    for (const peerDevice of peers) {
      const base = { impl: 'transformers.js', precision: 'f32' as Precision, device: peerDevice, batch, seq };
      if (!existsSync(onnxPath)) {
        rows.push({ ...base, runs: 0, msPerBatch: NaN, tokensPerSec: NaN, oursSpeedup: null, maxdiff: null, note: `skipped: no ${onnxPath} (python3 tools/export_onnx.py ${o.modelDir})` });
        continue;
      }
      try {
        log(`transformers.js ${peerDevice}: batch ${batch} x ${seq}`);
        const extractor = await transformersPipeline(o.modelDir, peerDevice);
        const peerRuns = peerDevice === 'webgpu' ? 1 : runs;
        const peer = await timeRuns(peerRuns, async () => {
          const t = await extractor(texts, { pooling, normalize: model.settings.normalize });
          return t.data as Float32Array;
        });
        const tps = tokens / (peer.ms / 1000);
        rows.push({ ...base, runs: peerRuns, msPerBatch: peer.ms, tokensPerSec: tps, oursSpeedup: oursTps / tps, maxdiff: maxAbsDiff(ours.out, peer.out), note: '' });
      } catch (e) {
        rows.push({ ...base, runs: 0, msPerBatch: NaN, tokensPerSec: NaN, oursSpeedup: null, maxdiff: null, note: `failed: ${(e as Error).message.split('\n')[0].slice(0, 120)}` });
      }
    }
  }
  for (const [, m] of models) m.dispose();
  return rows;
}

type Extractor = (texts: string[], o: { pooling: string; normalize: boolean }) => Promise<{ data: unknown }>;
const pipelines = new Map<string, Promise<Extractor>>();

function transformersPipeline(modelDir: string, device: 'webgpu' | 'cpu'): Promise<Extractor> {
  const key = `${modelDir}|${device}`;
  let p = pipelines.get(key);
  if (!p) {
    p = (async () => {
      const tjs = await import('@huggingface/transformers');
      tjs.env.allowRemoteModels = false;
      tjs.env.localModelPath = dirname(resolve(modelDir)) + '/';
      const pipe = await tjs.pipeline('feature-extraction', basename(modelDir), { device, dtype: 'fp32' });
      return pipe as unknown as Extractor;
    })();
    pipelines.set(key, p);
  }
  return p;
}
