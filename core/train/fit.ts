// Whether a training setting fits the adapter, decided before the Trainer is built.
//
// WebGPU tells a page nothing about the GPU's memory size, only its limits, so a setting that
// is too large would otherwise fail in the middle of the first step (a buffer over
// maxBufferSize, an out-of-memory error, or a lost device) with a message that names no
// setting. This module answers the question up front and in one line, naming the limit, the
// bytes needed and available, and the largest batch that fits.
//
// The bytes are not guessed from a formula. The training step itself runs against a shadow
// device: a Gpu (the same class, so the same buffer pool, size buckets, limit checks and chunk
// planning) over a GPUDevice that allocates nothing and runs nothing. Every kernel launcher,
// the GradCache pieces, the parameter arena and the AdamW state allocate exactly as on the
// real adapter, and the shadow's stats.bytesPeak is what the real run's will be for a batch
// whose texts all reach query_max_len / passage_max_len (test/train-fit.test.ts checks it
// against a real step). A probe costs only the CPU time of recording one step's dispatches.
//
// Where the real device still runs out of memory (its size is unknown to WebGPU), the step's
// error is turned into the same kind of one-line refusal: what the device held when it failed
// is a measured lower bound of what it can hold, and the largest batch under it is named.

import { Gpu, GpuError, fmtBytes } from '../gpu/device.ts';
import { Encoder, type EncoderWeights, mapWeights } from '../model/encoder.ts';
import { EmbeddingModel } from '../retrieval/embed.ts';
import { setTuning, tuningOf } from '../tune/table.ts';
import { type TrainSettings } from './options.ts';
import { Trainer } from './trainer.ts';

/**
 * The memory budget a page uses when the visitor sets none: on a CPU adapter (SwiftShader,
 * llvmpipe) "GPU memory" is the machine's own RAM, which the browser reports roughly
 * (navigator.deviceMemory, GiB, capped at 8 by Chromium); a step may take half of it, leaving the
 * rest to the tab and the system. A real GPU's memory is not reported at all: no budget, the
 * limits decide, and an out-of-memory step is turned into a refusal (explainStepError).
 */
export function defaultMemoryBudget(cpuAdapter: boolean, deviceMemoryGiB: number | undefined): number | undefined {
  if (!cpuAdapter || !deviceMemoryGiB || !(deviceMemoryGiB > 0)) return undefined;
  return Math.floor((deviceMemoryGiB * 2 ** 30) / 2);
}

/** A setting that does not fit: the message is one line for the user. */
export class FitError extends Error {
  override name = 'FitError';
}

export interface FitOptions {
  /** Bytes the step may hold at its peak (the page's or the user's choice); none: limits only. */
  budget?: number;
  /** Limits to check against instead of the device's (tests, and what-if questions). */
  limits?: { maxBufferSize?: number; maxBinding?: number };
}

/** What one training step of a setting needs, measured on the shadow device. */
export interface StepMemory {
  /** Peak bytes the device holds: model weights, arena (weights, gradients, moments), activations. */
  peakBytes: number;
  /** The largest single buffer the step creates. */
  largestBuffer: number;
  /** A limit the step cannot run under (binding too small to chunk a row, ...); null: none. */
  error: string | null;
}

export interface FitReport extends StepMemory {
  fits: boolean;
  /**
   * What stops it: 'maxBufferSize', 'maxStorageBufferBindingSize', 'maxComputeWorkgroupsPerDimension'
   * or 'memory budget'; null when it fits. Other errors of the recorded step are not this
   * check's to report: the real step raises them with their own message.
   */
  limit: string | null;
  needed: number;
  available: number;
}

/** The setting a refusal suggests changing: the GradCache piece when GradCache is on. */
export function batchKnob(s: TrainSettings): { name: string; key: 'queriesPerStep' | 'gradCacheMiniBatch' } {
  return s.gradCacheMiniBatch > 0 ? { name: 'grad_cache_mini_batch', key: 'gradCacheMiniBatch' } : { name: 'per_device_train_batch_size', key: 'queriesPerStep' };
}

/**
 * Measures training steps of `model` on a shadow of `gpu`. One instance serves many probes
 * (pipelines are parsed once); each probe starts from an empty pool.
 */
export class StepProbe {
  private shadow: Gpu;
  private readonly bufferLimit: number;
  /** The largest buffer the shadow was asked for since the probe began. */
  private largest: { bytes: number };

  constructor(
    readonly gpu: Gpu,
    readonly model: EmbeddingModel,
    limits: FitOptions['limits'] = {},
  ) {
    this.bufferLimit = limits.maxBufferSize ?? gpu.limits.maxBufferSize;
    // The shadow lets any buffer through, so a probe over maxBufferSize reports how large it is;
    // the binding limit is the real one, since kernels plan their chunks by it.
    const probe = shadowDevice(gpu.device, { maxBufferSize: Number.MAX_SAFE_INTEGER, maxStorageBufferBindingSize: limits.maxBinding ?? gpu.limits.maxBinding });
    this.shadow = new Gpu(probe.device, gpu.adapter);
    this.largest = probe.largest;
    setTuning(this.shadow, tuningOf(gpu));
  }

  /** One optimizer update (one micro-batch: accumulation holds no more) at the maximum lengths. */
  async measure(s: TrainSettings): Promise<StepMemory> {
    const g = this.shadow;
    g.trim();
    g.stats.bytesLive = 0;
    g.stats.bytesPeak = 0;
    this.largest.bytes = 0;
    const m = this.model;
    const weights = mirrorWeights(g, m.encoder.weights);
    const model = new EmbeddingModel(g, m.name, new Encoder(g, m.encoder.config, weights), m.tokenizer, m.settings);
    let trainer: Trainer | null = null;
    let error: string | null = null;
    try {
      trainer = new Trainer(g, model, [{ query: '', pos: [''], neg: [''] }], s);
      const c = m.encoder.config;
      // The longest texts a batch can have: max_len tokens, or the model's positions where the
      // tokenizer would give more (such a text fails on its own, whatever the memory).
      const cap = (n: number) => (c.positionEmbedding === 'absolute' ? Math.min(n, c.maxPositions) : n);
      const ids = (n: number, len: number) => Array.from({ length: n }, (_, r) => Array.from({ length: cap(len) }, (_, i) => 1 + (((r * len + i) * 7919) % (c.vocabSize - 1))));
      await trainer.update([{ queries: ids(s.queriesPerStep, s.queryMaxLen), passages: ids(s.queriesPerStep * s.trainGroupSize, s.passageMaxLen) }], 0);
    } catch (e) {
      error = (e as Error).message.split('\n')[0];
    } finally {
      trainer?.dispose();
      model.dispose();
    }
    return { peakBytes: g.stats.bytesPeak, largestBuffer: this.largest.bytes, error };
  }

  /** Whether `s` fits the limits (and the budget, if any), with the numbers of the first that does not. */
  async check(s: TrainSettings, budget?: number): Promise<FitReport> {
    const r = await this.measure(s);
    const out = (limit: string | null, needed: number, available: number): FitReport => ({ ...r, fits: limit === null, limit, needed, available });
    if (r.largestBuffer > this.bufferLimit) return out('maxBufferSize', r.largestBuffer, this.bufferLimit);
    if (r.error && /binding/i.test(r.error)) return out('maxStorageBufferBindingSize', r.largestBuffer, this.shadow.limits.maxBinding);
    if (r.error && /per-dimension limit/i.test(r.error)) return out('maxComputeWorkgroupsPerDimension', 0, this.shadow.limits.maxWorkgroupsPerDim);
    if (budget !== undefined && r.peakBytes > budget) return out('memory budget', r.peakBytes, budget);
    return out(null, r.peakBytes, budget ?? Infinity);
  }

  /**
   * The largest value of the batch knob (batchKnob(s)) below `below` with which the step fits,
   * or 0 when not even 1 does. Binary search: a step's memory grows with its batch.
   */
  async largestBatch(s: TrainSettings, below: number, budget?: number): Promise<number> {
    const { key } = batchKnob(s);
    let lo = 0; // fits (0: none known)
    let hi = below; // does not fit
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if ((await this.check({ ...s, [key]: mid }, budget)).fits) lo = mid;
      else hi = mid;
    }
    return lo;
  }
}

/**
 * Throws a one-line FitError when a step of `s` on `model` does not fit `gpu`'s limits or the
 * budget; returns the report (peak bytes included) when it does.
 */
export async function checkTrainingFits(gpu: Gpu, model: EmbeddingModel, s: TrainSettings, o: FitOptions = {}): Promise<FitReport> {
  const probe = new StepProbe(gpu, model, o.limits);
  const r = await probe.check(s, o.budget);
  if (r.fits) return r;
  const knob = batchKnob(s);
  const best = await probe.largestBatch(s, s[knob.key], o.budget);
  const modelFits = best > 0 || (await probe.check(smallest(s), o.budget)).fits;
  throw new FitError(`${refusal(r, s)}; ${suggestion(knob.name, best, s, modelFits)}`);
}

/**
 * A step's error as a one-line FitError when the device ran out of memory (or refused a buffer,
 * or was lost); any other error is returned as it is. What the device held when it failed is
 * taken as what it can hold, and the largest batch under that is named.
 */
export async function explainStepError(e: unknown, gpu: Gpu, model: EmbeddingModel, s: TrainSettings): Promise<unknown> {
  if (!(e instanceof GpuError) || !/out of memory|maxBufferSize|device lost|storage binding limit/i.test(e.message)) return e;
  const held = gpu.stats.bytesPeak;
  const knob = batchKnob(s);
  let best = 0;
  try {
    best = await new StepProbe(gpu, model).largestBatch(s, s[knob.key], held);
  } catch {
    // the probe records no GPU work, but a lost device may refuse even that: name no batch
  }
  const what = /out of memory|device lost/i.test(e.message) ? `the GPU ran out of memory in a training step (${e.message.split('\n')[0].slice(0, 160)}) after holding ${fmtBytes(held)}` : e.message.split('\n')[0];
  return new FitError(`${what}; ${suggestion(knob.name, best, s)}`);
}

function refusal(r: FitReport, s: TrainSettings): string {
  const at = `per_device_train_batch_size ${s.queriesPerStep} x train_group_size ${s.trainGroupSize} at ${s.passageMaxLen} passage tokens`;
  if (r.limit === 'maxBufferSize') return `training does not fit this adapter: a step (${at}) needs a ${fmtBytes(r.needed)} buffer, over its maxBufferSize of ${fmtBytes(r.available)}`;
  if (r.limit === 'memory budget') return `training does not fit: a step (${at}) needs ${fmtBytes(r.needed)} at its peak, over the memory budget of ${fmtBytes(r.available)}`;
  if (r.limit === 'maxStorageBufferBindingSize') return `training does not fit this adapter's maxStorageBufferBindingSize of ${fmtBytes(r.available)}: ${r.error}`;
  return `training does not fit this adapter's maxComputeWorkgroupsPerDimension of ${r.available}: ${r.error}`;
}

/** The smallest step there is: one query of 8 tokens and its group, one text per GradCache piece. */
function smallest(s: TrainSettings): TrainSettings {
  return { ...s, queriesPerStep: 1, gradCacheMiniBatch: s.gradCacheMiniBatch > 0 ? 1 : 0, queryMaxLen: Math.min(s.queryMaxLen, 8), passageMaxLen: Math.min(s.passageMaxLen, 8) };
}

function suggestion(knob: string, best: number, s: TrainSettings, modelFits = true): string {
  if (best > 0) return `the largest ${knob} that fits is ${best}`;
  if (!modelFits) return 'not even one 8-token text per step fits: the model itself is too large for this adapter';
  return `no ${knob} fits at passage_max_len ${s.passageMaxLen}: lower passage_max_len${s.gradCacheMiniBatch > 0 ? '' : ', or turn on grad_cache_mini_batch'}${s.gradientCheckpointing ? '' : ' or gradient_checkpointing'}`;
}

/** Tensors of the same shapes and dtypes as `w`, on `g` (their contents are never read). */
function mirrorWeights(g: Gpu, w: EncoderWeights): EncoderWeights {
  return mapWeights(w, (t) => g.empty(t.shape, t.dtype));
}

/**
 * A GPUDevice that allocates nothing and runs nothing, with `real`'s features and adapter info
 * and the given limits: enough for Gpu to record a training step. Reads return zeros (a zero
 * loss and gradient norm, which the trainer takes as a finite step). `largest` records the
 * largest buffer asked for.
 */
function shadowDevice(real: GPUDevice, limits: { maxBufferSize: number; maxStorageBufferBindingSize: number }): { device: GPUDevice; largest: { bytes: number } } {
  const largest = { bytes: 0 };
  const none = () => undefined;
  const done = async () => undefined;
  const pass = { setPipeline: none, setBindGroup: none, dispatchWorkgroups: none, end: none };
  const device = {
    features: real.features,
    adapterInfo: (real as { adapterInfo?: GPUAdapterInfo }).adapterInfo,
    limits: new Proxy(real.limits, { get: (t, k) => (k in limits ? limits[k as keyof typeof limits] : Reflect.get(t, k)) }),
    lost: new Promise<never>(none),
    addEventListener: none,
    pushErrorScope: none,
    popErrorScope: async () => null,
    createBuffer: (d: GPUBufferDescriptor) => {
      largest.bytes = Math.max(largest.bytes, d.size);
      return { size: d.size, destroy: none, unmap: none, mapAsync: done, getMappedRange: () => new ArrayBuffer(d.size) };
    },
    createShaderModule: () => ({ getCompilationInfo: async () => ({ messages: [] }) }),
    createComputePipeline: () => ({ getBindGroupLayout: () => ({}) }),
    createBindGroup: () => ({}),
    createCommandEncoder: () => ({ beginComputePass: () => pass, copyBufferToBuffer: none, clearBuffer: none, resolveQuerySet: none, finish: () => ({}) }),
    queue: { submit: none, writeBuffer: none, onSubmittedWorkDone: done },
    destroy: none,
  };
  return { device: device as unknown as GPUDevice, largest };
}
