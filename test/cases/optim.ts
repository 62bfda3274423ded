// Conformance cases for core/kernels/optim.ts (AdamW, gradient norm) against core/ref/optim.ts
// (float64).
//
// AdamW tolerance: a per-element bound, derived from the f32 operations of shaders/optim.wgsl
// with WGSL's accuracy (u = 2^-24; an ulp is at most 2u relative; sqrt 4.5 ulp as
// 1 / inverseSqrt, division 2.5 ulp) and every f32-rounded coefficient (u relative each):
//   gs = g * c                         2u |gs|
//   m' = fma(1 - b1, gs - m, m)        bm = u |m'| + u (1 - b1)(2 |gs| + 3 |gs - m|)
//                                      (WGSL lets fma round twice, as e1 * e2 + e3)
//   v' = v b2 + ((1 - b2) gs) gs       bv = 8u |v'| (both terms >= 0: errors stay relative)
//   d  = sqrt(v') / bc2 + eps          20u |d| (4u from v', 9u sqrt, 5u division, u bc2, u add)
//   upd = (s m') / d                   27u |upd| + s bm / d
//   p' = p keep - upd                  bp = 2u |p keep| + u |p'| + 27u |upd| + s bm / d
// Checks compare the errors in units of these bounds (atol 1): a value that should not move
// (zero gradient, no decay) is held as tightly as one that moves a lot. Wrong math misses by
// orders of magnitude more: the bias corrections change the first update ~3x, decay on a
// decay=false parameter moves p by lr wd |p| ~ 1e3 ulp, eps inside the sqrt changes the
// update where sqrt(v_hat) ~ eps by ~40%.
// test/optim.test.ts holds the golden comparison against torch.optim.AdamW itself.
//
// Gradient norm: a sum of terms >= 0, so no cancellation. Each value passes through at most
// n = PER + 2 log2 WG + ceil(partials / WG) + 1 roundings (PER fmas in order, a tree, the
// partials in order, a tree), so by the probabilistic bound used for matmul (Higham & Mary
// 2019, lambda = 4) the relative error is under 4 sqrt(n) u: 5.5e-6 at WG 8 / PER 512 (CPU
// drivers), 1e-6 at WG 256 / PER 16. Measured on llvmpipe: 2e-8 at most. A dropped chunk or a
// doubly counted one misses by its share of the sum, >= 1e-3 here.

import type { Gpu } from '../../core/gpu/device.ts';
import { Tensor } from '../../core/gpu/tensor.ts';
import { rowReduceWg } from '../../core/gpu/launch.ts';
import { type AdamwOptions, type AdamwParam, adamwStep, gradNormSquared } from '../../core/kernels/optim.ts';
import { adamwRef, gradNormSquaredRef } from '../../core/ref/optim.ts';
import { nanTensor, withBindingLimit } from './elementwise.ts';
import type { Check, KernelCase } from './types.ts';
import { randu, rng } from './util.ts';

const U = 2 ** -24;
/** Smallest positive f32 (a floor for bounds that are exactly 0) */
const TINY = 2 ** -149;

export interface AdamwBounds {
  p: Float64Array;
  m: Float64Array;
  v: Float64Array;
}

/**
 * Per-element error bounds of one f32 AdamW step (see the header) from its inputs (p, g, m, v
 * before the step) and the float64 results (p', m', v').
 */
export function adamwStepBounds(
  before: { p: ArrayLike<number>; g: ArrayLike<number>; m: ArrayLike<number> },
  after: { p: ArrayLike<number>; m: ArrayLike<number>; v: ArrayLike<number> },
  decay: boolean,
  o: AdamwOptions,
): AdamwBounds {
  const n = before.p.length;
  const keep = decay ? 1 - o.lr * o.weightDecay : 1;
  const s = o.lr / (1 - o.beta1 ** o.step);
  const bc2 = Math.sqrt(1 - o.beta2 ** o.step);
  const c = o.gradScale ?? 1;
  const b = { p: new Float64Array(n), m: new Float64Array(n), v: new Float64Array(n) };
  for (let i = 0; i < n; i++) {
    const gs = before.g[i] * c;
    const bm = U * Math.abs(after.m[i]) + U * (1 - o.beta1) * (2 * Math.abs(gs) + 3 * Math.abs(gs - before.m[i]));
    const d = Math.sqrt(after.v[i]) / bc2 + o.eps;
    const upd = Math.abs((s * after.m[i]) / d);
    b.m[i] = bm;
    b.v[i] = 8 * U * after.v[i];
    b.p[i] = 2 * U * Math.abs(before.p[i] * keep) + U * Math.abs(after.p[i]) + 27 * U * upd + (s * bm) / d;
  }
  return b;
}

/** |actual - expected| <= bound element by element, reported in units of the bound. */
export function boundCheck(name: string, actual: ArrayLike<number>, expected: ArrayLike<number>, bound: ArrayLike<number>): Check {
  const n = expected.length;
  const a = new Float64Array(actual.length);
  const e = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const b = Math.max(bound[i], TINY);
    a[i] = actual[i] / b;
    e[i] = expected[i] / b;
  }
  return { name: `${name} (in units of the error bound)`, actual: a, expected: e, tol: { atol: 1 } };
}

interface ParamSpec {
  n: number;
  decay: boolean;
  /** gradient magnitude */
  gScale: number;
}

interface HostParam {
  p: Float32Array;
  g: Float32Array;
  m: Float32Array;
  v: Float32Array;
  decay: boolean;
}

/** Random state: p ~ U(-1, 1), g ~ gScale U(-1, 1) with g[3] = 0, m and v zero at step 1. */
function hostParams(specs: ParamSpec[], step: number, seed: number): HostParam[] {
  return specs.map((s, k) => {
    const sd = seed + 10 * k;
    const g = randu(s.n, sd + 1, s.gScale);
    if (s.n > 3) g[3] = 0;
    const first = step === 1;
    const m = first ? new Float32Array(s.n) : randu(s.n, sd + 2, 0.5 * s.gScale);
    const v = first ? new Float32Array(s.n) : randu(s.n, sd + 3, s.gScale * s.gScale).map(Math.abs);
    return { p: randu(s.n, sd), g, m, v, decay: s.decay };
  });
}

const DEFAULTS = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 };

function refChecks(hp: HostParam[], got: { p: Float32Array; m: Float32Array; v: Float32Array }[], o: AdamwOptions): Check[] {
  return hp.flatMap((q, k) => {
    const ref = adamwRef(q.p, q.g, q.m, q.v, q.decay, o);
    const b = adamwStepBounds(q, ref, q.decay, o);
    const tag = `param ${k} [${q.p.length}]${q.decay ? '' : ' no decay'}`;
    return [boundCheck(`${tag} p`, got[k].p, ref.p, b.p), boundCheck(`${tag} m`, got[k].m, ref.m, b.m), boundCheck(`${tag} v`, got[k].v, ref.v, b.v)];
  });
}

async function readParams(gpu: Gpu, params: AdamwParam[]) {
  const out = [];
  for (const q of params) out.push({ p: await gpu.readF32(q.p), m: await gpu.readF32(q.m), v: await gpu.readF32(q.v) });
  return out;
}

/** Count dispatches of one entry while fn runs. */
async function countDispatches(gpu: Gpu, entry: string, fn: () => void | Promise<void>): Promise<number> {
  let n = 0;
  const dispatch = gpu.dispatch;
  gpu.dispatch = (spec) => {
    if (spec.kernel === 'optim' && spec.entry === entry) n++;
    dispatch.call(gpu, spec);
  };
  try {
    await fn();
  } finally {
    gpu.dispatch = dispatch;
  }
  return n;
}

async function runAdamw(gpu: Gpu, specs: ParamSpec[], o: AdamwOptions, seed: number, limit?: { bytes: number; dispatches: number }): Promise<Check[]> {
  const hp = hostParams(specs, o.step, seed);
  const params: AdamwParam[] = hp.map((q) => ({
    p: gpu.upload(q.p, [q.p.length]),
    g: gpu.upload(q.g, [q.g.length]),
    m: gpu.upload(q.m, [q.m.length]),
    v: gpu.upload(q.v, [q.v.length]),
    decay: q.decay,
  }));
  let dispatches = 0;
  await withBindingLimit(gpu, limit?.bytes ?? gpu.limits.maxBinding, async () => {
    dispatches = await countDispatches(gpu, 'adamw_step', () => adamwStep(gpu, params, o));
  });
  const got = await readParams(gpu, params);
  for (const q of params) for (const t of [q.p, q.g, q.m, q.v]) t.release();
  const checks = refChecks(hp, got, o);
  // exact: the chunked path really split the parameter
  if (limit) checks.push({ name: 'adamw_step dispatches', actual: [dispatches], expected: [limit.dispatches], tol: { atol: 0 } });
  return checks;
}

const MIXED: ParamSpec[] = [
  { n: 1, decay: true, gScale: 2 },
  { n: 63, decay: false, gScale: 0.3 },
  { n: 65, decay: true, gScale: 1 },
  { n: 1000, decay: false, gScale: 1e-3 },
  // |g| ~ 1e-7: sqrt(v_hat) ~ 1e-7 is 10 eps, so where eps goes matters
  { n: 257, decay: true, gScale: 1e-7 },
  { n: 4099, decay: true, gScale: 1e-4 },
];

const adamwCases: KernelCase[] = [
  { name: 'adamw [1] step 1', run: (gpu) => runAdamw(gpu, [{ n: 1, decay: true, gScale: 1 }], { ...DEFAULTS, step: 1 }, 1500) },
  { name: 'adamw 6 params, odd sizes, mixed decay, step 1', run: (gpu) => runAdamw(gpu, MIXED, { ...DEFAULTS, step: 1 }, 1510) },
  {
    name: 'adamw 6 params, step 7 from random moments, gradScale 0.37, lr 2e-5, wd 0.01',
    run: (gpu) => runAdamw(gpu, MIXED, { ...DEFAULTS, lr: 2e-5, weightDecay: 0.01, step: 7, gradScale: 0.37 }, 1520),
  },
  { name: 'adamw step 1000 (bias corrections ~1), betas 0.8 / 0.99', run: (gpu) => runAdamw(gpu, MIXED.slice(0, 3), { ...DEFAULTS, beta1: 0.8, beta2: 0.99, step: 1000 }, 1530) },
  // 10,000 elements of 4 bytes in 16 KiB bindings: chunks of 4096, so 4096 + 4096 + 1808
  {
    name: 'adamw [10000] chunked under a 16 KiB binding limit',
    run: (gpu) => runAdamw(gpu, [{ n: 10000, decay: true, gScale: 1 }], { ...DEFAULTS, step: 3 }, 1540, { bytes: 16384, dispatches: 3 }),
  },
  {
    // Past 65535 workgroups of 256: the folded grid (BERT-large's word embeddings are 31M).
    // The state repeats a pattern of prime length, so the reference runs on the pattern only,
    // and the check reports the largest error over all elements in units of its bound.
    name: 'adamw big grid [16776961]',
    async run(gpu) {
      const n = 65535 * 256 + 1;
      const period = 4099;
      const o = { ...DEFAULTS, step: 2 };
      const [q] = hostParams([{ n: period, decay: false, gScale: 1 }], o.step, 1550);
      const tile = (a: Float32Array) => {
        const out = new Float32Array(n);
        for (let i = 0; i < n; i += period) out.set(a.subarray(0, Math.min(period, n - i)), i);
        return gpu.upload(out, [n]);
      };
      const param: AdamwParam = { p: tile(q.p), g: tile(q.g), m: tile(q.m), v: tile(q.v), decay: q.decay };
      adamwStep(gpu, [param], o);
      const ref = adamwRef(q.p, q.g, q.m, q.v, q.decay, o);
      const b = adamwStepBounds(q, ref, q.decay, o);
      const checks: Check[] = [];
      for (const k of ['p', 'm', 'v'] as const) {
        const got = await gpu.readF32(param[k]);
        let worst = 0;
        for (let i = 0; i < n; i++) {
          const j = i % period;
          const r = Math.abs(got[i] - ref[k][j]) / Math.max(b[k][j], TINY);
          if (!(r <= worst)) worst = r; // NaN counts as worst
        }
        checks.push({ name: `${k}: largest error in units of its bound`, actual: [worst], expected: [0], tol: { atol: 1 } });
      }
      for (const t of [param.p, param.g, param.m, param.v]) t.release();
      return checks;
    },
  },
  {
    // p, g, m, v each one buffer holding three parameters back to back ([63 | 65 | 100], the
    // third at byte 512): the first two (both decayed) run as one dispatch, the third alone
    name: 'adamw arena: contiguous parameters with equal decay share a dispatch',
    async run(gpu) {
      const specs: ParamSpec[] = [
        { n: 63, decay: true, gScale: 1 },
        { n: 65, decay: true, gScale: 0.1 },
        { n: 100, decay: false, gScale: 1 },
      ];
      const o = { ...DEFAULTS, step: 4 };
      const hp = hostParams(specs, o.step, 1560);
      const N = 228;
      const whole = (k: 'p' | 'g' | 'm' | 'v') => {
        const a = new Float32Array(N);
        let off = 0;
        for (const q of hp) {
          a.set(q[k], off);
          off += q[k].length;
        }
        return gpu.upload(a, [N]);
      };
      const buf = { p: whole('p'), g: whole('g'), m: whole('m'), v: whole('v') };
      const offs = [0, 63, 128];
      const view = (t: Tensor, k: number) => new Tensor(gpu, t.buffer, [specs[k].n], 'f32', offs[k] * 4, false);
      const params: AdamwParam[] = specs.map((s, k) => ({ p: view(buf.p, k), g: view(buf.g, k), m: view(buf.m, k), v: view(buf.v, k), decay: s.decay }));
      const dispatches = await countDispatches(gpu, 'adamw_step', () => adamwStep(gpu, params, o));
      const all = { p: await gpu.readF32(buf.p), m: await gpu.readF32(buf.m), v: await gpu.readF32(buf.v) };
      for (const t of Object.values(buf)) t.release();
      const got = specs.map((s, k) => ({
        p: all.p.subarray(offs[k], offs[k] + s.n),
        m: all.m.subarray(offs[k], offs[k] + s.n),
        v: all.v.subarray(offs[k], offs[k] + s.n),
      }));
      // exact: two runs, [63 + 65] and [100]
      return [...refChecks(hp, got, o), { name: 'adamw_step dispatches', actual: [dispatches], expected: [2], tol: { atol: 0 } }];
    },
  },
];

// ---------------------------------------------------------------- gradient norm

async function runNorm(gpu: Gpu, sizes: number[], seed: number, o: { wg?: number; chunk?: number; limit?: { bytes: number; partials: number } } = {}): Promise<Check[]> {
  const r = rng(seed);
  const host = sizes.map((n, k) => randu(n, seed + k + 1, 0.1 + 3 * r()));
  const grads = host.map((g) => gpu.upload(g, [g.length]));
  const out = nanTensor(gpu, [1]);
  let partials = 0;
  await withBindingLimit(gpu, o.limit?.bytes ?? gpu.limits.maxBinding, async () => {
    partials = await countDispatches(gpu, 'sumsq_partial', () => gradNormSquared(gpu, out, grads, { wg: o.wg, chunk: o.chunk }));
  });
  const got = await gpu.readF32(out);
  for (const t of [...grads, out]) t.release();
  const wg = o.wg ?? rowReduceWg(gpu);
  const chunk = o.chunk ?? 4096;
  const nPartials = sizes.reduce((s, n) => s + Math.ceil(n / chunk), 0); // without a lowered limit
  const rtol = 4 * Math.sqrt(chunk / wg + 2 * Math.log2(wg) + Math.ceil(nPartials / wg) + 1) * U;
  const checks: Check[] = [{ name: 'sum of squares', actual: got, expected: [gradNormSquaredRef(host)], tol: { atol: 0, rtol } }];
  // exact: the chunked path really split the gradients
  if (o.limit) checks.push({ name: 'sumsq_partial dispatches', actual: [partials], expected: [o.limit.partials], tol: { atol: 0 } });
  return checks;
}

const normCases: KernelCase[] = [
  { name: 'gradNormSquared no gradients (0)', run: (gpu) => runNorm(gpu, [], 1600) },
  { name: 'gradNormSquared [1]', run: (gpu) => runNorm(gpu, [1], 1610) },
  { name: 'gradNormSquared [0] [5]', run: (gpu) => runNorm(gpu, [0, 5], 1620) },
  { name: 'gradNormSquared 7 gradients of odd sizes', run: (gpu) => runNorm(gpu, [1, 63, 4095, 4097, 1000, 12289, 3], 1630) },
  { name: 'gradNormSquared wg=64 chunk=256', run: (gpu) => runNorm(gpu, [1, 257, 100000], 1640, { wg: 64, chunk: 256 }) },
  { name: 'gradNormSquared wg=256 chunk=256', run: (gpu) => runNorm(gpu, [4099, 65], 1650, { wg: 256, chunk: 256 }) },
  { name: 'gradNormSquared [3000000] (733 partials)', run: (gpu) => runNorm(gpu, [3_000_000], 1660) },
  // 10,000 elements in 16 KiB bindings: 3 pieces ([4096, 4096, 1808]), one dispatch each
  { name: 'gradNormSquared [10000] [50] chunked under a 16 KiB binding limit', run: (gpu) => runNorm(gpu, [10000, 50], 1670, { limit: { bytes: 16384, partials: 4 } }) },
  {
    // Five gradients stored in one buffer in another order ([3, 1, 4, 0, 2]), each at a
    // multiple of 4096 elements with zeros between: one partial dispatch over the buffer, and
    // the order table makes the final stage add the partials as for the five tensors alone.
    name: 'gradNormSquared order: gradients stored out of order in one padded buffer sum bit-identically',
    async run(gpu) {
      const sizes = [5000, 63, 4096, 10000, 1];
      const host = sizes.map((n, k) => randu(n, 1690 + k, 0.5 + k));
      const store = [3, 1, 4, 0, 2];
      const offset: number[] = [];
      let end = 0;
      for (const k of store) {
        offset[k] = end;
        end = Math.ceil((end + sizes[k]) / 4096) * 4096;
      }
      const whole = new Float32Array(end);
      for (const k of store) whole.set(host[k], offset[k]);
      const order = Uint32Array.from(sizes.flatMap((n, k) => Array.from({ length: Math.ceil(n / 4096) }, (_, b) => offset[k] / 4096 + b)));
      const one = gpu.upload(whole, [end]);
      const ord = gpu.upload(order, [order.length], 'u32');
      const grads = host.map((g) => gpu.upload(g, [g.length]));
      const a = gpu.empty([1]), b = gpu.empty([1]), c = gpu.empty([1]);
      gradNormSquared(gpu, a, grads);
      const partials = await countDispatches(gpu, 'sumsq_partial', () => gradNormSquared(gpu, b, [one], { order: ord }));
      gradNormSquared(gpu, c, [one]);
      const [ra, rb, rc] = [await gpu.readF32(a), await gpu.readF32(b), await gpu.readF32(c)];
      for (const t of [one, ord, ...grads, a, b, c]) t.release();
      const n = order.length;
      const rtol = 4 * Math.sqrt(4096 / rowReduceWg(gpu) + 2 * Math.log2(rowReduceWg(gpu)) + Math.ceil(n / rowReduceWg(gpu)) + 1) * U;
      return [
        // exact: the same partial sums added in the same order
        { name: 'with order vs one by one', actual: rb, expected: ra, tol: { atol: 0 } },
        { name: 'partial dispatches', actual: [partials], expected: [1], tol: { atol: 0 } },
        // the buffer's own order is the same sum up to rounding
        { name: 'buffer order vs reference', actual: rc, expected: [gradNormSquaredRef(host)], tol: { atol: 0, rtol } },
      ];
    },
  },
  {
    // Where the order shows in the result: partial sums [1, 2^24, 1] are added (by the final
    // stage's fixed order, any WG >= 4) as (1 + 1) + 2^24 = 2^24 + 2, but stored as
    // [2^24, 1, 1] as (2^24 + 1) + 1 = 2^24 (each + 1 is a tie, rounded to even).
    name: 'gradNormSquared order: the final sum follows the order table',
    async run(gpu) {
      const host = [new Float32Array([1]), new Float32Array([4096]), new Float32Array([1])];
      const whole = new Float32Array(3 * 4096);
      whole[0] = 4096;
      whole[4096] = 1;
      whole[2 * 4096] = 1;
      const one = gpu.upload(whole, [whole.length]);
      const ord = gpu.upload(new Uint32Array([1, 0, 2]), [3], 'u32');
      const grads = host.map((g) => gpu.upload(g, [1]));
      const a = gpu.empty([1]), b = gpu.empty([1]), c = gpu.empty([1]);
      gradNormSquared(gpu, a, grads);
      gradNormSquared(gpu, b, [one], { order: ord });
      gradNormSquared(gpu, c, [one]);
      const [ra, rb, rc] = [await gpu.readF32(a), await gpu.readF32(b), await gpu.readF32(c)];
      for (const t of [one, ord, ...grads, a, b, c]) t.release();
      return [
        { name: 'one by one', actual: ra, expected: [2 ** 24 + 2], tol: { atol: 0 } },
        { name: 'stored [2^24, 1, 1], added in order [1, 0, 2]', actual: rb, expected: [2 ** 24 + 2], tol: { atol: 0 } },
        { name: 'stored [2^24, 1, 1], added as stored', actual: rc, expected: [2 ** 24], tol: { atol: 0 } },
      ];
    },
  },
  {
    name: 'gradNormSquared deterministic: two runs are bit-identical',
    async run(gpu) {
      const host = [randu(70001, 1680, 2), randu(333, 1681, 0.01)];
      const grads = host.map((g) => gpu.upload(g, [g.length]));
      const a = gpu.empty([1]), b = gpu.empty([1]);
      gradNormSquared(gpu, a, grads);
      gradNormSquared(gpu, b, grads);
      const ra = await gpu.readF32(a), rb = await gpu.readF32(b);
      for (const t of [...grads, a, b]) t.release();
      // exact: fixed-order reductions
      return [{ name: 'second run', actual: rb, expected: ra, tol: { atol: 0 } }];
    },
  },
];

export const optimCases: KernelCase[] = [...adamwCases, ...normCases];
