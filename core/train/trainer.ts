// The fine-tuning loop, host-neutral: FlagEmbedding's recipe (DESIGN.md section 4) on our
// kernels. Each optimizer update:
//   for each of gradient_accumulation_steps micro-batches (queries_per_step queries each):
//     sample 1 positive + train_group_size - 1 negatives per query (seeded), tokenize,
//     contrastiveStep (GradCache inside) adds d(loss / micro-batches)/d params into grads
//   global gradient norm -> clipping coefficient (max_grad_norm), NaN/inf check
//   fused AdamW with the linear warmup/decay learning rate
// Weights, gradients and AdamW moments live in a parameter arena (arena.ts), so zeroing, the
// norm and AdamW are a few dispatches per update, not one per tensor.
//
// Mixed precision (settings.fp16): the forward and backward run on an f16 copy of the weights
// (arena.ts allocateHalfRole, refreshed from the f32 master weights by one cast per segment
// after each update) with f16 activations; the parameter gradients, AdamW and its moments stay
// f32. The loss is scaled (loss-scale.ts): the gradient norm and AdamW divide the scale out, a
// step whose gradients overflow is skipped and halves the scale. The scaler's state is part of a
// checkpoint, so a resumed run continues exactly as well.
//
// Everything random is a pure function of (seed, epoch, example index): the data order of an
// epoch is a seeded shuffle and each example's positive/negative draw has its own generator.
// A resumed run therefore needs only (step, epoch, micro-batch) besides weights and moments to
// continue exactly where an uninterrupted run would be, bit for bit (every kernel is
// deterministic).

import type { Gpu } from '../gpu/device.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { castForward } from '../kernels/elementwise.ts';
import { adamwStep, clipCoefficient, gradNormSquared, type AdamwParam } from '../kernels/optim.ts';
import { allocateHalfRole, allocateRole, arenaAdamwParams, type ArenaRole, normOrder, placeWeights, planArena, rebind } from './arena.ts';
import { Encoder, type EncoderWeights } from '../model/encoder.ts';
import { type LossScaleEvent, LossScaler } from './loss-scale.ts';
import { paramList } from '../model/params.ts';
import type { EmbeddingModel } from '../retrieval/embed.ts';
import { rng } from '../data/pairs.ts';
import type { TrainGroup } from '../data/pairs.ts';
import { learningRate } from './schedule.ts';
import { type TrainSettings, validateSettings } from './options.ts';
import { contrastiveStep } from './step.ts';

// The settings, their defaults and their rules are one table: core/train/options.ts.
export { DEFAULT_SETTINGS, type TrainSettings, validateSettings } from './options.ts';

/** Where a run is: optimizer updates done, and the next micro-batch to run. */
export interface TrainPosition {
  step: number;
  epoch: number;
  /** Micro-batches of this epoch already consumed. */
  batch: number;
}

export interface StepInfo extends TrainPosition {
  totalSteps: number;
  loss: number;
  lr: number;
  gradNorm: number;
  tokens: number;
  ms: number;
  /** --fp16: the loss scale this step ran with; null in f32. */
  lossScale: number | null;
  /** --fp16: the gradients overflowed and the update was skipped. */
  skipped: boolean;
  /** --fp16: the scale changed after this step. */
  scaleEvent: LossScaleEvent | null;
}

/** What one update did. */
export interface UpdateResult {
  loss: number;
  /** The (unscaled) global gradient norm; NaN when the step was skipped. */
  gradNorm: number;
  tokens: number;
  lr: number;
  lossScale: number | null;
  skipped: boolean;
  scaleEvent: LossScaleEvent | null;
}

export class NonFiniteLossError extends Error {
  override name = 'NonFiniteLossError';
}

/** Integer hash of a few numbers (seeds for per-epoch and per-example generators). */
export function mixSeed(...xs: number[]): number {
  let h = 0x811c9dc5;
  for (const x of xs) {
    h = Math.imul(h ^ (x >>> 0), 0x01000193);
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d);
    h ^= h >>> 12;
  }
  return h >>> 0;
}

/** The example order of one epoch: a seeded Fisher-Yates shuffle. */
export function epochOrder(n: number, seed: number, epoch: number): number[] {
  const random = rng(mixSeed(seed, epoch, 1));
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/**
 * FlagEmbedding's group for one example: a random positive, then group_size - 1 negatives
 * sampled without replacement (the negative list repeated when it is too short).
 */
export function sampleGroup(g: TrainGroup, groupSize: number, seed: number, epoch: number, index: number): string[] {
  const random = rng(mixSeed(seed, epoch, index, 2));
  const out = [g.pos[Math.floor(random() * g.pos.length)]];
  const need = groupSize - 1;
  if (need === 0) return out;
  if (g.neg.length === 0) throw new Error(`training group "${g.query.slice(0, 60)}" has no negatives but train_group_size is ${groupSize}`);
  const pool = g.neg.length >= need ? [...g.neg] : Array.from({ length: Math.ceil(need / g.neg.length) * g.neg.length }, (_, i) => g.neg[i % g.neg.length]);
  for (let i = 0; i < need; i++) {
    const j = i + Math.floor(random() * (pool.length - i));
    [pool[i], pool[j]] = [pool[j], pool[i]];
    out.push(pool[i]);
  }
  return out;
}

export class Trainer {
  /** Shaped like the model's weights; every tensor a view of the gradient arena. */
  readonly grads: EncoderWeights;
  readonly keys: string[];
  readonly batchesPerEpoch: number;
  readonly updatesPerEpoch: number;
  readonly totalSteps: number;
  private normSq: Tensor;
  private g: ArenaRole;
  private m: ArenaRole;
  private v: ArenaRole;
  /** The gradient norm's final order over the arena (see arena.ts). */
  private normOrder: Tensor;
  /** AdamW operands: a run per decay group and arena segment. */
  private adamw: AdamwParam[];
  /** The master weights (the model's own tensors, placed in the arena). */
  private p: ArenaRole;
  /** --fp16: the f16 working copy, an encoder over it, and the loss scaler. */
  private half: { w: ArenaRole; encoder: Encoder; scaler: LossScaler } | null = null;

  constructor(
    readonly gpu: Gpu,
    readonly model: EmbeddingModel,
    readonly data: readonly TrainGroup[],
    readonly s: TrainSettings,
  ) {
    if (data.length === 0) throw new Error('no usable training examples');
    validateSettings(s);
    const enc = model.encoder;
    const ps = paramList(enc.weights);
    this.keys = ps.map((p) => p.key);
    const layout = planArena(ps.map((p) => ({ key: p.key, shape: p.tensor.shape, decay: p.decay })), gpu.limits);
    // The model keeps its weights in the arena from here on (the views own the buffers, so
    // model.dispose() frees them); a later Trainer on the same model finds them in place.
    const p = placeWeights(gpu, layout, ps.map((q) => q.tensor));
    if (p.moved) layout.slots.forEach((s, i) => rebind(enc.weights, s.key, p.views[i]));
    this.g = allocateRole(gpu, layout);
    this.m = allocateRole(gpu, layout);
    this.v = allocateRole(gpu, layout);
    this.grads = { ...enc.weights, layers: enc.weights.layers.map((l) => ({ ...l })) };
    layout.slots.forEach((s, i) => rebind(this.grads, s.key, this.g.views[i]));
    this.normOrder = normOrder(gpu, layout);
    this.adamw = arenaAdamwParams(layout, { p, g: this.g, m: this.m, v: this.v });
    this.p = p;
    if (s.fp16) {
      if (!gpu.features.has('shader-f16')) throw new Error("--fp16: this adapter has no 'shader-f16'; train without --fp16");
      const w = allocateHalfRole(gpu, layout);
      const weights: EncoderWeights = { ...enc.weights, layers: enc.weights.layers.map((l) => ({ ...l })) };
      layout.slots.forEach((slot, i) => rebind(weights, slot.key, w.views[i]));
      this.half = { w, encoder: new Encoder(gpu, enc.config, weights, { halfCopy: true }), scaler: new LossScaler(s.fp16InitScale, s.fp16GrowthInterval) };
      this.refreshHalf();
    }
    this.batchesPerEpoch = Math.ceil(data.length / s.queriesPerStep);
    this.updatesPerEpoch = Math.ceil(this.batchesPerEpoch / s.gradientAccumulationSteps);
    this.totalSteps = this.updatesPerEpoch * s.numTrainEpochs;
    this.normSq = gpu.empty([1]);
  }

  /** Token ids of one micro-batch: Q queries, then Q * G passages (query by query). */
  private microBatch(epoch: number, batch: number, order: number[]): { queries: number[][]; passages: number[][] } {
    const { s, model } = this;
    const idx = order.slice(batch * s.queriesPerStep, (batch + 1) * s.queriesPerStep);
    const queries: number[][] = [];
    const passages: number[][] = [];
    for (const i of idx) {
      const g = this.data[i];
      queries.push(model.tokenizer.encode(s.queryInstruction + g.query, s.queryMaxLen));
      for (const t of sampleGroup(g, s.trainGroupSize, s.seed, epoch, i)) passages.push(model.tokenizer.encode(model.settings.passagePrefix + t, s.passageMaxLen));
    }
    return { queries, passages };
  }

  /**
   * Run from `start` to the end. onStep is awaited after every optimizer update (checkpoint
   * there); returning false stops the run (e.g. a test's simulated crash).
   */
  async run(start: TrainPosition, onStep: (info: StepInfo) => Promise<boolean | void>): Promise<TrainPosition> {
    const { s } = this;
    const pos = { ...start };
    while (pos.epoch < s.numTrainEpochs) {
      const order = epochOrder(this.data.length, s.seed, pos.epoch);
      while (pos.batch < this.batchesPerEpoch) {
        const t0 = performance.now();
        const micro = Math.min(s.gradientAccumulationSteps, this.batchesPerEpoch - pos.batch);
        const batches = Array.from({ length: micro }, (_, m) => this.microBatch(pos.epoch, pos.batch + m, order));
        const r = await this.update(batches, pos.step);
        pos.step++;
        pos.batch += micro;
        if (pos.batch >= this.batchesPerEpoch) {
          pos.epoch++;
          pos.batch = 0;
        }
        const info: StepInfo = { ...pos, totalSteps: this.totalSteps, ...r, ms: performance.now() - t0 };
        if ((await onStep(info)) === false) return pos;
        if (pos.batch === 0) break;
      }
    }
    return pos;
  }

  /**
   * One optimizer update from already tokenized micro-batches (gradient accumulation over
   * them): zero the gradients, contrastiveStep each, global norm, NaN/inf check, clipped AdamW
   * at the schedule's learning rate for update number step + 1. Waits for the GPU. With fp16,
   * a step whose scaled gradients overflow changes no weight and halves the loss scale.
   */
  async update(batches: { queries: number[][]; passages: number[][] }[], step: number): Promise<UpdateResult> {
    const { gpu, s, half } = this;
    const enc = half ? half.encoder : this.model.encoder;
    const lossScale = half ? half.scaler.scale : 1;
    for (const g of this.g.segments) gpu.clear(g);
    let loss = 0;
    let tokens = 0;
    for (const [m, b] of batches.entries()) {
      const r = contrastiveStep(gpu, enc, b.queries, b.passages, this.grads, {
        groupSize: s.trainGroupSize,
        temperature: s.temperature,
        pooling: this.model.settings.pooling,
        miniBatch: s.gradCacheMiniBatch > 0 ? s.gradCacheMiniBatch : Infinity,
        // Scaled by the loss scale (1 in f32, a power of two with fp16: exact either way).
        scale: lossScale / batches.length,
        padId: this.model.padId,
        recompute: s.gradientCheckpointing,
        // Masks are a pure function of (seed, update, micro-batch): a resumed run draws the same.
        dropout: { p: s.hiddenDropout, seed: mixSeed(s.seed, step, m, 3) },
      });
      loss += (await gpu.readF32(r.loss))[0] / batches.length;
      r.loss.release();
      tokens += r.tokens;
    }
    // Bit-identical to the norm of the tensors one by one (see arena.ts).
    gradNormSquared(gpu, this.normSq, this.g.segments, { order: this.normOrder });
    const scaledNorm = Math.sqrt((await gpu.readF32(this.normSq))[0]);
    const lr = learningRate(step, { lr: s.learningRate, totalSteps: this.totalSteps, warmupRatio: s.warmupRatio, kind: 'linear' });
    if (half && !(Number.isFinite(loss) && Number.isFinite(scaledNorm))) {
      const scaleEvent = half.scaler.overflow(step + 1);
      return { loss, gradNorm: NaN, tokens, lr, lossScale, skipped: true, scaleEvent };
    }
    const gradNorm = scaledNorm / lossScale;
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
      throw new NonFiniteLossError(`loss became ${loss} (gradient norm ${gradNorm}) at step ${step + 1}; weights were not updated (try a lower learning rate)`);
    }
    adamwStep(gpu, this.adamw, {
      lr,
      beta1: s.adamBeta1,
      beta2: s.adamBeta2,
      eps: s.adamEpsilon,
      weightDecay: s.weightDecay,
      step: step + 1,
      // Unscaling folds into the clipping coefficient (exact: the scale is a power of two).
      gradScale: (s.maxGradNorm > 0 ? clipCoefficient(gradNorm, s.maxGradNorm) : 1) / lossScale,
    });
    const scaleEvent = half ? half.scaler.good() : null;
    if (half) this.refreshHalf();
    await gpu.sync();
    return { loss, gradNorm, tokens, lr, lossScale: half ? lossScale : null, skipped: false, scaleEvent };
  }

  /** The encoder the steps run: the model's, or with fp16 the one over the f16 working copy. */
  get encoder(): Encoder {
    return this.half?.encoder ?? this.model.encoder;
  }

  /** --fp16: the f16 working weights from the f32 master weights, one cast per arena segment. */
  private refreshHalf(): void {
    if (!this.half) return;
    this.half.w.segments.forEach((t, i) => castForward(this.gpu, t, this.p.segments[i]));
  }

  /** --fp16: the loss scaler's state (for checkpoints); null in f32. */
  get lossScaleState(): { scale: number; goodSteps: number } | null {
    return this.half ? { ...this.half.scaler.state } : null;
  }

  /** Restore the loss scaler from a checkpoint (fp16 runs only). */
  loadLossScaleState(state: unknown, where: string): void {
    if (!this.half) return;
    if (state === undefined) throw new Error(`${where}: lossScale is missing (a --fp16 checkpoint has it)`);
    this.half.scaler.restore(state, where);
  }

  /** AdamW moments by parameter key (for checkpoints). */
  async optimizerState(): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    for (const [i, key] of this.keys.entries()) {
      out.set(`${key}.exp_avg`, await this.gpu.readF32(this.m.views[i]));
      out.set(`${key}.exp_avg_sq`, await this.gpu.readF32(this.v.views[i]));
    }
    return out;
  }

  /** Restore optimizer moments saved by optimizerState(); every key must be present. */
  loadOptimizerState(state: Map<string, Float32Array>, where: string): void {
    for (const [i, key] of this.keys.entries()) {
      for (const [suffix, t] of [['exp_avg', this.m.views[i]], ['exp_avg_sq', this.v.views[i]]] as const) {
        const name = `${key}.${suffix}`;
        const data = state.get(name);
        if (!data) throw new Error(`${where}: optimizer state '${name}' is missing`);
        if (data.length !== t.size) throw new Error(`${where}: optimizer state '${name}' has ${data.length} values, expected ${t.size}`);
        this.gpu.write(t, data);
      }
    }
  }

  dispose(): void {
    for (const t of [...this.g.segments, ...this.m.segments, ...this.v.segments, ...(this.half?.w.segments ?? []), this.normOrder]) t.release();
    this.normSq.release();
  }
}
