// Launchers for shaders/optim.wgsl: the fused AdamW step over a list of parameters, the
// global gradient norm (sum of squares) and the clipping coefficient of
// torch.nn.utils.clip_grad_norm_.
//
// A training step, for reference:
//   gradNormSquared(gpu, normSq, grads)                  on the GPU, one [1] readback
//   c = clipCoefficient(Math.sqrt(normSq), maxNorm)       host
//   adamwStep(gpu, params, { lr: learningRate(step, ...), step: step + 1, gradScale: c, ... })

import type { Gpu } from '../gpu/device.ts';
import { f32 } from '../gpu/device.ts';
import { Tensor, expectShape } from '../gpu/tensor.ts';
import { expectDtype, flatView, forEachRowChunk, rowReduceWg } from '../gpu/launch.ts';

const WG = 256;

/** One parameter with its gradient and AdamW moments, all f32 of the same size. */
export interface AdamwParam {
  p: Tensor;
  g: Tensor;
  /** exp_avg, first moment (zeros before the first step) */
  m: Tensor;
  /** exp_avg_sq, second moment (zeros before the first step) */
  v: Tensor;
  /** Apply weight decay. false for biases and LayerNorm weights (HF Trainer / FlagEmbedding). */
  decay: boolean;
}

export interface AdamwOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based count of this update (torch's state['step'] after its increment). */
  step: number;
  /** Multiplies every gradient first (clipping coefficient, 1 / accumulation steps). Default 1. */
  gradScale?: number;
}

/**
 * One torch.optim.AdamW step (decoupled weight decay p *= 1 - lr * wd, bias corrections
 * 1 - beta^step, eps added after sqrt(v_hat)) on every parameter, in place on p, m and v; g is
 * read only, multiplied by gradScale first. p, g, m and v of one parameter must be four
 * different GPU buffers (p, m, v are written). Runs of parameters that lie back to back in
 * all four buffers with the same decay flag (an arena) are updated by one dispatch; tensors
 * over the storage-binding limit are split into aligned chunks.
 */
export function adamwStep(gpu: Gpu, params: AdamwParam[], o: AdamwOptions): void {
  const what = 'adamwStep';
  if (!Number.isInteger(o.step) || o.step < 1) throw new Error(`${what}: step must be an integer >= 1 (the count including this update), got ${o.step}`);
  for (const [k, v] of Object.entries({ lr: o.lr, beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay, gradScale: o.gradScale ?? 1 })) {
    if (!Number.isFinite(v)) throw new Error(`${what}: ${k} must be finite, got ${v}`);
  }
  if (!(o.beta1 >= 0 && o.beta1 < 1) || !(o.beta2 >= 0 && o.beta2 < 1)) throw new Error(`${what}: betas must be in [0, 1), got ${o.beta1}, ${o.beta2}`);
  params.forEach((q, i) => {
    const n = q.p.size;
    for (const [k, t] of [['p', q.p], ['g', q.g], ['m', q.m], ['v', q.v]] as const) {
      expectDtype(`${what}: params[${i}].${k}`, t, 'f32');
      if (t.size !== n) throw new Error(`${what}: params[${i}].${k} ${t} has ${t.size} elements, p ${q.p} has ${n}`);
    }
    const bufs = [q.p.buffer, q.g.buffer, q.m.buffer, q.v.buffer];
    if (new Set(bufs).size !== 4) throw new Error(`${what}: params[${i}] (${q.p}): p, g, m and v must be four different GPU buffers (p, m and v are written)`);
  });

  // Host float64, rounded to f32 once in the uniforms (torch's Python-float scalars).
  const bc1 = 1 - o.beta1 ** o.step;
  const bc2 = 1 - o.beta2 ** o.step;
  const common = {
    beta1: o.beta1,
    oneMinusBeta1: 1 - o.beta1,
    beta2: o.beta2,
    oneMinusBeta2: 1 - o.beta2,
    stepSize: o.lr / bc1,
    bc2Sqrt: Math.sqrt(bc2),
    eps: o.eps,
    gradScale: o.gradScale ?? 1,
  };
  for (const run of contiguousRuns(params)) {
    const decay = run.decay ? 1 - o.lr * o.weightDecay : 1;
    forEachRowChunk(gpu, what, run.n, [4, 4, 4, 4], (start, count) => {
      gpu.dispatch({
        kernel: 'optim',
        entry: 'adamw_step',
        defines: { WG },
        bindings: [flatView(run.p, start, count), flatView(run.m, start, count), flatView(run.v, start, count), flatView(run.g, start, count)],
        uniforms: [
          count,
          f32(decay),
          f32(common.beta1),
          f32(common.oneMinusBeta1),
          f32(common.beta2),
          f32(common.oneMinusBeta2),
          f32(common.stepSize),
          f32(common.bc2Sqrt),
          f32(common.eps),
          f32(common.gradScale),
        ],
        workgroups: gpu.grid(Math.ceil(count / WG)),
      });
    });
  }
}

interface Run {
  p: Tensor;
  g: Tensor;
  m: Tensor;
  v: Tensor;
  decay: boolean;
  n: number;
}

/**
 * Merge consecutive parameters whose p, g, m and v each continue the previous one's buffer
 * exactly (same buffer, offset = previous offset + previous byte length) and share the decay
 * flag: one flat [n] view per run. Empty parameters are dropped.
 */
export function contiguousRuns(params: readonly AdamwParam[]): Run[] {
  const runs: Run[] = [];
  const next = (a: Tensor, b: Tensor) => a.buffer === b.buffer && b.offset === a.offset + a.byteLength;
  let cur: Run | null = null;
  for (const q of params) {
    if (q.p.size === 0) continue;
    if (cur && cur.decay === q.decay && next(cur.p, q.p) && next(cur.g, q.g) && next(cur.m, q.m) && next(cur.v, q.v)) {
      const n: number = cur.n + q.p.size;
      const grow = (t: Tensor): Tensor => new Tensor(t.gpu, t.buffer, [n], 'f32', t.offset, false);
      cur = { p: grow(cur.p), g: grow(cur.g), m: grow(cur.m), v: grow(cur.v), decay: cur.decay, n };
      runs[runs.length - 1] = cur;
    } else {
      const flat = (t: Tensor) => t.reshape([t.size]);
      cur = { p: flat(q.p), g: flat(q.g), m: flat(q.m), v: flat(q.v), decay: q.decay, n: q.p.size };
      runs.push(cur);
    }
  }
  return runs;
}

/**
 * Elements per first-stage workgroup of gradNormSquared by default. Tensors placed back to back
 * at multiples of it (zeros in between) give, as one operand, the same partial sums as each
 * tensor alone; with `order` the final sum then visits them as the tensors one by one would.
 */
export const NORM_CHUNK = 4096;

export interface GradNormOptions {
  /** Threads per workgroup (power of two); default rowReduceWg(): 256 on GPUs, 8 on CPU drivers. */
  wg?: number;
  /** Elements per workgroup in the first stage (a multiple of wg); default NORM_CHUNK. */
  chunk?: number;
  /**
   * u32 [terms]: the final sum adds partial order[i] as its i-th term instead of partial i
   * (partials are numbered through the grads in list order, normPartials(n) per gradient).
   * A caller whose buffers hold tensors in another order reproduces the per-tensor sum bit for
   * bit; partials left out (zero padding between tensors) are not added.
   */
  order?: Tensor;
}

/** First-stage partial sums gradNormSquared makes of one n-element gradient. */
export function normPartials(gpu: Gpu, n: number, chunk = NORM_CHUNK): number {
  let total = 0;
  forEachRowChunk(gpu, 'gradNormSquared', n, [4], (_, count) => {
    total += Math.ceil(count / chunk);
  });
  return total;
}

/**
 * out[0] = sum over every gradient of sum(g^2): the squared global L2 norm that
 * torch.nn.utils.clip_grad_norm_ measures (its norm of per-tensor norms is the same number).
 * Two fixed-order stages, so the result is bit-identical run to run. out: [1].
 */
export function gradNormSquared(gpu: Gpu, out: Tensor /* [1] */, grads: Tensor[], opts: GradNormOptions = {}): void {
  const what = 'gradNormSquared';
  expectShape(`${what}: out`, out, [1]);
  expectDtype(`${what}: out`, out, 'f32');
  grads.forEach((g, i) => {
    expectDtype(`${what}: grads[${i}]`, g, 'f32');
    if (g.buffer === out.buffer) throw new Error(`${what}: grads[${i}] shares a GPU buffer with out`);
  });
  const wg = opts.wg ?? rowReduceWg(gpu);
  if (!Number.isInteger(Math.log2(wg)) || wg > gpu.limits.maxInvocations) {
    throw new Error(`${what}: workgroup size ${wg} must be a power of two <= ${gpu.limits.maxInvocations}`);
  }
  const chunk = opts.chunk ?? NORM_CHUNK;
  if (!Number.isInteger(chunk / wg) || chunk < wg) throw new Error(`${what}: chunk ${chunk} must be a positive multiple of the workgroup size ${wg}`);
  const defines = { WG: wg };
  const per = chunk / wg;

  // Plan every first-stage dispatch, so the partials buffer is sized once.
  const pieces: { g: Tensor; base: number; n: number }[] = [];
  let total = 0;
  for (const g of grads) {
    forEachRowChunk(gpu, what, g.size, [4], (start, count) => {
      pieces.push({ g: flatView(g, start, count), base: total, n: count });
      total += Math.ceil(count / chunk);
    });
  }
  if (total * 4 > gpu.limits.maxBinding) throw new Error(`${what}: ${total} partial sums do not fit one storage binding; use a larger chunk`);
  const order = opts.order;
  if (order) {
    expectDtype(`${what}: order`, order, 'u32');
    if (order.size > total) throw new Error(`${what}: order has ${order.size} terms but the gradients make ${total} partial sums`);
  }
  const partials = gpu.empty([Math.max(total, 1)]);
  for (const pc of pieces) {
    gpu.dispatch({
      kernel: 'optim',
      entry: 'sumsq_partial',
      defines,
      bindings: [partials, pc.g],
      uniforms: [pc.n, pc.base, per],
      workgroups: gpu.grid(Math.ceil(pc.n / chunk)),
    });
  }
  gpu.dispatch({
    kernel: 'optim',
    entry: 'sumsq_final',
    defines: order ? { ...defines, ORDER: 1 } : defines,
    bindings: order ? [out, partials, order] : [out, partials],
    uniforms: [order ? order.size : total, 0, 0],
    workgroups: [1],
  });
  partials.release();
}

/**
 * The factor torch.nn.utils.clip_grad_norm_ multiplies every gradient by:
 * min(1, maxNorm / (norm + 1e-6)). NaN in, NaN out (torch then scales the gradients by NaN
 * too, unless error_if_nonfinite). Pass it to adamwStep as gradScale.
 */
export function clipCoefficient(norm: number, maxNorm: number): number {
  return Math.min(1, maxNorm / (norm + 1e-6));
}
