// Training benchmark: one optimizer update (forward + backward + AdamW) at fixed shapes, the
// ratio of its time to a plain forward of the same texts, and peak GPU memory, with and
// without GradCache. Token ids are synthetic ([CLS] + random ids + [SEP] of exact lengths):
// speed does not depend on what the tokens say.
//
// "forward" is the inference forward + pooling + normalise of the step's Q queries and
// Q * G passages in the same pieces a step uses. "step" is Trainer.update (gradients zeroed,
// forward keeping activations, InfoNCE loss, backward, global norm, clipped AdamW, a sync).
// Peak memory counts every GPU buffer this process holds (weights, gradients, AdamW moments,
// activations, pooled scratch), from the buffer pool's own accounting.
//
// Precision: f32 rows train in f32; f16 rows train with --fp16 (f16 weight copy, activations and
// activation gradients, f32 master weights, gradients and AdamW moments), and their "forward"
// is the f16 forward of the same working copy. Both run in one process on the same adapter.

import { basename } from 'node:path';
import type { Gpu } from '../../core/gpu/device.ts';
import type { Encoder } from '../../core/model/encoder.ts';
import type { Precision } from '../../core/model/load.ts';
import type { KernelTime } from '../../core/gpu/profiler.ts';
import { headForward } from '../../core/model/pooling.ts';
import { type EmbeddingModel, loadEmbeddingModel } from '../../core/retrieval/embed.ts';
import { pieces } from '../../core/train/step.ts';
import { DEFAULT_SETTINGS, Trainer } from '../../core/train/trainer.ts';
import { localModelFiles } from '../files.ts';
import type { Row } from './table.ts';

export interface TrainBenchOptions {
  modelDir: string;
  /** Queries per step, passages per query, query and passage lengths. */
  queries?: number;
  group?: number;
  queryLen?: number;
  passageLen?: number;
  /** GradCache settings to run, texts per piece; 0 = off (one piece per side). Default [0, 4]. */
  miniBatches?: number[];
  /** Also run each GradCache setting with gradient checkpointing (layer recomputation). */
  checkpointing?: boolean;
  /** Rows per precision (default f32, and f16 where the adapter has shader-f16). */
  precisions?: Precision[];
  runs?: number;
  log?: (m: string) => void;
  /**
   * Also time every kernel (GPU timestamps) over one more forward and one more step with
   * GradCache off, and hand the totals to this callback per phase.
   */
  profile?: (phase: 'forward' | 'step', times: KernelTime[]) => void;
}

export interface TrainBenchRow extends Row {
  precision: Precision;
  gradCache: string;
  shape: string;
  tokens: number;
  forwardMs: number;
  stepMs: number;
  ratio: number;
  tokensPerSec: number;
  peakMiB: number;
}

export const trainColumns = [
  { key: 'precision' },
  { key: 'gradCache', label: 'GradCache' },
  { key: 'shape', label: 'Q x G, lengths' },
  { key: 'tokens' },
  { key: 'forwardMs', label: 'forward ms', digits: 0 },
  { key: 'stepMs', label: 'train step ms', digits: 0 },
  { key: 'ratio', label: 'step / forward', digits: 2 },
  { key: 'tokensPerSec', label: 'train tokens/s', digits: 0 },
  { key: 'peakMiB', label: 'peak GPU MiB', digits: 1 },
];

function synthetic(n: number, len: number, vocab: number, seed: number): number[][] {
  let x = seed >>> 0;
  const next = () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0);
  return Array.from({ length: n }, () => [101, ...Array.from({ length: len - 2 }, () => 1000 + (next() % (vocab - 1000))), 102]);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Inference forward of the same texts, in the same pieces, pooled and normalised (what GradCache's first pass does). */
async function forwardOnly(gpu: Gpu, model: EmbeddingModel, enc: Encoder, sides: number[][][], miniBatch: number): Promise<void> {
  for (const rows of sides) {
    for (const p of pieces(rows, miniBatch, model.padId)) {
      const ids = gpu.upload(p.ids, [p.rows, p.seqLen], 'u32');
      const mask = gpu.upload(p.mask, [p.rows, p.seqLen], 'u32');
      const { last } = enc.forward({ ids, mask, typeIds: null, batch: p.rows, seqLen: p.seqLen });
      const { emb } = headForward(gpu, last, mask, { pooling: model.settings.pooling, normalize: true });
      for (const t of [ids, mask, last, emb]) t.release();
    }
  }
  await gpu.sync();
}

export async function benchTrain(gpu: Gpu, o: TrainBenchOptions): Promise<TrainBenchRow[]> {
  const log = o.log ?? (() => {});
  const Q = o.queries ?? 4;
  const G = o.group ?? 4;
  const qLen = o.queryLen ?? 32;
  const pLen = o.passageLen ?? 128;
  const runs = o.runs ?? 3;
  const model = await loadEmbeddingModel(gpu, localModelFiles(o.modelDir), basename(o.modelDir));
  const vocab = model.config.vocabSize;
  const queries = synthetic(Q, qLen, vocab, 1);
  const passages = synthetic(Q * G, pLen, vocab, 2);
  const tokens = Q * qLen + Q * G * pLen;
  const rows: TrainBenchRow[] = [];
  // Warm-up (pipeline compiles, buffer pool) on a small step with the same lengths, so that a
  // large shape is not run twice. Pipelines depend on lengths, not on the number of texts.
  const warm = { queries: queries.slice(0, 2), passages: passages.slice(0, Math.min(2, G) * Math.min(2, Q)) };
  const precisions = o.precisions ?? (gpu.features.has('shader-f16') ? ['f32', 'f16'] : ['f32']);
  if (precisions.includes('f16') && !gpu.features.has('shader-f16')) throw new Error(`--precision f16: ${gpu.name} has no shader-f16`);
  const configs = precisions.flatMap((precision) => (o.miniBatches ?? [0, 4]).flatMap((mb) => (o.checkpointing ? [false, true] : [false]).map((ckpt) => ({ precision, mb, ckpt }))));
  for (const { precision, mb, ckpt } of configs) {
    const label = `${mb ? `${mb} texts/piece` : 'off'}${ckpt ? ' + checkpointing' : ''}`;
    log(`train step (${precision}), GradCache ${label}`);
    const base = { ...DEFAULT_SETTINGS, gradCacheMiniBatch: mb, gradientCheckpointing: ckpt, learningRate: 1e-9, fp16: precision === 'f16' };
    const trainer = new Trainer(gpu, model, [{ query: '', pos: [''], neg: [''] }], { ...base, trainGroupSize: G });
    const fwd: number[] = [];
    const step: number[] = [];
    const miniBatch = mb || Infinity;
    const warmTrainer = new Trainer(gpu, model, [{ query: '', pos: [''], neg: [''] }], { ...base, trainGroupSize: warm.passages.length / warm.queries.length });
    await forwardOnly(gpu, model, warmTrainer.encoder, [warm.queries, warm.passages], miniBatch);
    await warmTrainer.update([warm], 0);
    warmTrainer.dispose();
    gpu.trim(); // the peak below is the measured shape's own
    gpu.stats.bytesPeak = gpu.stats.bytesLive;
    for (let r = 1; r <= runs; r++) {
      let t0 = performance.now();
      await forwardOnly(gpu, model, trainer.encoder, [queries, passages], miniBatch);
      fwd.push(performance.now() - t0);
      t0 = performance.now();
      await trainer.update([{ queries, passages }], r);
      step.push(performance.now() - t0);
    }
    const peak = gpu.stats.bytesPeak;
    if (o.profile && mb === 0 && !ckpt && precision === precisions[0]) {
      // Separate runs: timestamp writes and their readback add a little to each pass.
      const prof = gpu.profile();
      prof.reset();
      await forwardOnly(gpu, model, trainer.encoder, [queries, passages], miniBatch);
      o.profile('forward', prof.report());
      prof.reset();
      await trainer.update([{ queries, passages }], runs + 1);
      await gpu.sync();
      const times = prof.report();
      // The optimizer's share, whatever the table's top rows show (the parameter arena's gain).
      const optim = times.filter((t) => t.label.startsWith('optim.'));
      const sum = (ts: KernelTime[], k: 'count' | 'ms') => ts.reduce((a, t) => a + t[k], 0);
      log(`step: ${sum(times, 'count')} passes, ${sum(times, 'ms').toFixed(1)} GPU ms; optimizer (AdamW, gradient norm): ${sum(optim, 'count')} passes, ${sum(optim, 'ms').toFixed(1)} GPU ms`);
      o.profile('step', times);
      gpu.profiler = null;
    }
    trainer.dispose();
    const f = median(fwd);
    const s = median(step);
    rows.push({ precision, gradCache: label, shape: `${Q} x ${G}, ${qLen}/${pLen}`, tokens, forwardMs: f, stepMs: s, ratio: s / f, tokensPerSec: tokens / (s / 1000), peakMiB: peak / 2 ** 20 });
  }
  model.dispose();
  return rows;
}
