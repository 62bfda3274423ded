// Conformance cases for core/kernels/loss.ts (contrastive InfoNCE loss) against
// core/ref/loss.ts (float64).
//
// Tolerances (u = 2^-24), from the matmul bound (test/cases/matmul.ts: an f32 dot product of
// K terms is within 4 sqrt(K + 3) u sum|a b|, lambda = 4) and the softmax's own roundings:
// - logits s = q p^T / T: Delta = (4 sqrt(H + 3) + 2) u S, S = max_ij sum_h |q_ih p_jh| / T
//   (the 2 u: f32(1 / T) and the alpha product). With unit rows S <= 1 / T.
// - p_ij = exp(s_ij - m) / sum: a logit error Delta moves p_ij by at most 2 Delta p_ij. WGSL's
//   exp is good to 3 + 2|x| ulp; weighted by p_ij these errors total at most (3 + 2 ln P) u,
//   because sum_j p_j (m - s_j) = entropy(p) - log(sum) <= ln P. The sum of exp over P / WG
//   strided terms and a log2(WG) tree adds 4 sqrt(P / WG + log2 WG) u, the division 2.5 ulp,
//   the - 1 at the target u: sum_j |d dS_ij| <= 2 Delta + e with
//   e = (10 + 4 ln P + 4 sqrt(P / WG + log2 WG)) u.
// - loss_i = (m - s_t) + log(sum): Delta from m, Delta from s_t, 2 Delta + e from log(sum);
//   a few roundings and the mean's tree over Q add (8 + 4 sqrt(Q / WG + log2 WG)) u per unit
//   of loss: atol = 4 Delta + e + (8 + 4 sqrt(Q / WG + log2 WG)) u (1 + max_i loss_i).
// - dq = alpha dS p: sum_j |d dS_ij| |p_jh| <= (2 Delta + e) max|p|, plus the product's
//   4 sqrt(P + 3) u sum_j |dS_ij p_jh| <= 8 sqrt(P + 3) u max|p| (sum_j |dS_ij| <= 2), plus
//   alpha's rounding: atol = |alpha| max|p| (2 Delta + e + 8 sqrt(P + 3) u + 2 u).
// - dp = alpha dS^T q: per element |d dS_ij| <= p_ij (2 Delta + e) + u [j = target], and a
//   column is the target of at most one row; with Cp = max_j sum_i p_ij and
//   Cd = max_j sum_i |dS_ij| (from the reference),
//   atol = |alpha| max|q| (Cp (2 Delta + e) + Cd (4 sqrt(Q + 3) + 2) u + u).
// The bound is dominated by Delta, itself the worst case of random rounding (an actual dot
// product of unit rows errs by ~u, not 4 sqrt(H) u): measured errors are 10-1000x below.
// A wrong formula misses by far more: a dropped 1 / T or 1 / Q, a wrong target column (a
// chunk's row offset) or the missing max shift (exp(100) overflows f32) change results by
// O(1) relative, where these tolerances are 1e-4 of the results' scale or less.
// Gradient checks: central differences of the float64 reference (test/gradcheck.ts, rtol 1e-5);
// the loss is a scalar, so the projection R = [r] is passed to the kernel as scale = r.

import type { Gpu } from '../../core/gpu/device.ts';
import { rowReduceWg } from '../../core/gpu/launch.ts';
import { type ContrastiveLossOptions, contrastiveLoss } from '../../core/kernels/loss.ts';
import { contrastiveLossRef } from '../../core/ref/loss.ts';
import { gradChecks, projection } from '../gradcheck.ts';
import { nanTensor, withBindingLimit } from './elementwise.ts';
import type { Check, KernelCase, Tol } from './types.ts';
import { randu } from './util.ts';

const U = 2 ** -24;

/** Rows of U(-1, 1) scaled to unit length, rounded to f32 (the embeddings arrive normalised). */
export function unitRows(rows: number, H: number, seed: number): Float32Array {
  const x = randu(rows * H, seed);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let h = 0; h < H; h++) ss += x[r * H + h] ** 2;
    const n = Math.sqrt(ss);
    for (let h = 0; h < H; h++) x[r * H + h] /= n;
  }
  return x;
}

/**
 * Passages for Q queries in groups of G: each positive is normalise(q_i + noise * n_i), so its
 * cosine with q_i is about 1 / sqrt(1 + noise^2); negatives are random unit rows.
 */
export function passagesFor(q: Float32Array, Q: number, H: number, G: number, noise: number, seed: number): Float32Array {
  const p = unitRows(Q * G, H, seed);
  const n = unitRows(Q, H, seed + 1);
  for (let i = 0; i < Q; i++) {
    const row = i * G * H;
    let ss = 0;
    for (let h = 0; h < H; h++) {
      p[row + h] = q[i * H + h] + noise * n[i * H + h];
      ss += p[row + h] ** 2;
    }
    const norm = Math.sqrt(ss);
    for (let h = 0; h < H; h++) p[row + h] /= norm;
  }
  return p;
}

const maxAbs = (a: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
};

/** The tolerances of the header for one problem, from its inputs and the float64 reference. */
export function lossTolerances(
  q: ArrayLike<number>,
  p: ArrayLike<number>,
  Q: number,
  H: number,
  G: number,
  o: { temperature: number; scale?: number; wg: number },
): { loss: Tol; dq: Tol; dp: Tol } {
  const P = Q * G;
  const T = o.temperature;
  const ref = contrastiveLossRef(q, p, Q, H, G, T, o.scale ?? 1);
  let S = 0;
  for (let i = 0; i < Q; i++) {
    for (let j = 0; j < P; j++) {
      let abs = 0;
      for (let h = 0; h < H; h++) abs += Math.abs(q[i * H + h] * p[j * H + h]);
      S = Math.max(S, abs / T);
    }
  }
  let Cp = 0;
  let Cd = 0;
  for (let j = 0; j < P; j++) {
    let cp = 0;
    let cd = 0;
    for (let i = 0; i < Q; i++) {
      const d = ref.dlogits[i * P + j];
      cp += d + (j === i * G ? 1 : 0);
      cd += Math.abs(d);
    }
    Cp = Math.max(Cp, cp);
    Cd = Math.max(Cd, cd);
  }
  const delta = (4 * Math.sqrt(H + 3) + 2) * U * S;
  const e = (10 + 4 * Math.log(P) + 4 * Math.sqrt(P / o.wg + Math.log2(o.wg))) * U;
  const alpha = Math.abs((o.scale ?? 1) / (Q * T));
  return {
    loss: { atol: 4 * delta + e + (8 + 4 * Math.sqrt(Q / o.wg + Math.log2(o.wg))) * U * (1 + maxAbs(ref.rowLoss)) },
    dq: { atol: alpha * maxAbs(p) * (2 * delta + e + 8 * Math.sqrt(P + 3) * U + 2 * U) },
    dp: { atol: alpha * maxAbs(q) * (Cp * (2 * delta + e) + Cd * (4 * Math.sqrt(Q + 3) + 2) * U + U) },
  };
}

export interface LossRun {
  loss: Float32Array;
  dq: Float32Array;
  dp: Float32Array;
  /** row_xent dispatches (chunks of the logits) */
  rowDispatches: number;
}

/** Upload q and p, run contrastiveLoss (optionally under a lowered binding limit), read back. */
export async function runLoss(gpu: Gpu, q: Float32Array, p: Float32Array, Q: number, H: number, o: ContrastiveLossOptions, maxBinding?: number): Promise<LossRun> {
  const P = Q * o.groupSize;
  const tq = gpu.upload(q, [Q, H]), tp = gpu.upload(p, [P, H]);
  const loss = nanTensor(gpu, [1]), dq = nanTensor(gpu, [Q, H]), dp = nanTensor(gpu, [P, H]);
  let rowDispatches = 0;
  const dispatch = gpu.dispatch;
  gpu.dispatch = (spec) => {
    if (spec.kernel === 'loss' && spec.entry === 'row_xent') rowDispatches++;
    dispatch.call(gpu, spec);
  };
  try {
    await withBindingLimit(gpu, maxBinding ?? gpu.limits.maxBinding, () => contrastiveLoss(gpu, { loss, dq, dp }, tq, tp, o));
  } finally {
    gpu.dispatch = dispatch;
  }
  const out = { loss: await gpu.readF32(loss), dq: await gpu.readF32(dq), dp: await gpu.readF32(dp), rowDispatches };
  for (const t of [tq, tp, loss, dq, dp]) t.release();
  return out;
}

interface Spec {
  Q: number;
  G: number;
  H: number;
  T: number;
  scale?: number;
  wg?: number;
  /** positive = normalise(q + noise * n); undefined: positives as random as negatives */
  noise?: number;
  /** positive = q exactly (logit 1 / T at the target) */
  exact?: boolean;
  /** lowered binding limit and the row_xent dispatches it must cause */
  limit?: { bytes: number; rowDispatches: number };
}

async function runSpec(gpu: Gpu, s: Spec, seed: number): Promise<Check[]> {
  const { Q, G, H } = s;
  const q = unitRows(Q, H, seed);
  const p = s.exact ? passagesFor(q, Q, H, G, 0, seed + 1) : s.noise !== undefined ? passagesFor(q, Q, H, G, s.noise, seed + 1) : unitRows(Q * G, H, seed + 1);
  const wg = s.wg ?? rowReduceWg(gpu);
  const o = { groupSize: G, temperature: s.T, scale: s.scale, wg };
  const r = await runLoss(gpu, q, p, Q, H, o, s.limit?.bytes);
  const ref = contrastiveLossRef(q, p, Q, H, G, s.T, s.scale ?? 1);
  const tol = lossTolerances(q, p, Q, H, G, { temperature: s.T, scale: s.scale, wg });
  const checks: Check[] = [
    { name: `loss (ref ${ref.loss.toPrecision(6)})`, actual: r.loss, expected: [ref.loss], tol: tol.loss },
    { name: 'dq', actual: r.dq, expected: ref.dq, tol: tol.dq },
    { name: 'dp', actual: r.dp, expected: ref.dp, tol: tol.dp },
  ];
  // exact: the chunked path really split the logits
  if (s.limit) checks.push({ name: 'row_xent dispatches', actual: [r.rowDispatches], expected: [s.limit.rowDispatches], tol: { atol: 0 } });
  return checks;
}

function label(s: Spec): string {
  const extra = [
    s.scale !== undefined && `scale=${s.scale}`,
    s.wg !== undefined && `wg=${s.wg}`,
    s.exact && 'positives = queries',
    s.noise !== undefined && `positive noise ${s.noise}`,
    s.limit && `chunked under a ${s.limit.bytes}-byte binding limit`,
  ].filter(Boolean);
  return `Q=${s.Q} G=${s.G} (P=${s.Q * s.G}) H=${s.H} T=${s.T}${extra.length ? ' ' + extra.join(' ') : ''}`;
}

const specs: Spec[] = [
  // one candidate: softmax = 1, loss exactly 0 and zero gradients
  { Q: 1, G: 1, H: 1, T: 0.02 },
  { Q: 1, G: 5, H: 7, T: 0.05 },
  // in-batch negatives only (each query's positive is another query's negative)
  { Q: 3, G: 1, H: 5, T: 1, noise: 1 },
  { Q: 7, G: 3, H: 37, T: 0.02, noise: 2 },
  { Q: 5, G: 9, H: 129, T: 0.05, scale: -0.37, wg: 64, noise: 3 },
  // the recipe: 16 queries x 10 passages, H 1024, T 0.02, a quarter of the batch per accumulation step
  { Q: 16, G: 10, H: 1024, T: 0.02, scale: 0.25, noise: 10 },
  // logits up to 1 / T = 100: exp overflows f32 past 88 without the max shift; loss ~ e^-80
  { Q: 4, G: 3, H: 32, T: 0.01, exact: true },
  // rows of 3000 columns: many per thread at any WG
  { Q: 2, G: 1500, H: 64, T: 0.02, noise: 4 },
  { Q: 3, G: 700, H: 16, T: 0.05, wg: 256, noise: 1 },
  // logits [40, 80] are 12,800 bytes: rows of 320 B in aligned chunks of 24 under 8 KiB, so 24 + 16
  { Q: 40, G: 2, H: 16, T: 0.05, noise: 1, limit: { bytes: 8192, rowDispatches: 2 } },
];

const refCases: KernelCase[] = specs.map((s, k) => ({ name: label(s), run: (gpu) => runSpec(gpu, s, 1100 + 10 * k) }));

const otherCases: KernelCase[] = [
  {
    name: 'deterministic: two runs are bit-identical (Q=16 G=10 H=1024)',
    async run(gpu) {
      const Q = 16, G = 10, H = 1024;
      const q = unitRows(Q, H, 1300);
      const p = passagesFor(q, Q, H, G, 10, 1301);
      const o = { groupSize: G, temperature: 0.02 };
      const a = await runLoss(gpu, q, p, Q, H, o);
      const b = await runLoss(gpu, q, p, Q, H, o);
      // exact: same inputs, same fixed-order reductions
      return [
        { name: 'loss', actual: b.loss, expected: a.loss, tol: { atol: 0 } },
        { name: 'dq', actual: b.dq, expected: a.dq, tol: { atol: 0 } },
        { name: 'dp', actual: b.dp, expected: a.dp, tol: { atol: 0 } },
      ];
    },
  },
  {
    name: 'scale multiplies the gradients only (scale 1 vs 0.125)',
    async run(gpu) {
      const Q = 6, G = 4, H = 24;
      const q = unitRows(Q, H, 1310);
      const p = passagesFor(q, Q, H, G, 1, 1311);
      const a = await runLoss(gpu, q, p, Q, H, { groupSize: G, temperature: 0.05 });
      const b = await runLoss(gpu, q, p, Q, H, { groupSize: G, temperature: 0.05, scale: 0.125 });
      const div8 = (x: Float32Array) => x.map((v) => v / 8);
      // exact: a power-of-two scale in alpha changes no rounding
      return [
        { name: 'loss unscaled', actual: b.loss, expected: a.loss, tol: { atol: 0 } },
        { name: 'dq / 8', actual: b.dq, expected: div8(a.dq), tol: { atol: 0 } },
        { name: 'dp / 8', actual: b.dp, expected: div8(a.dp), tol: { atol: 0 } },
      ];
    },
  },
];

// ---------------------------------------------------------------- gradient checks

const gradCases: KernelCase[] = [
  { Q: 1, G: 3, H: 4, T: 1 },
  { Q: 2, G: 3, H: 5, T: 0.1 },
  { Q: 3, G: 2, H: 6, T: 0.25 },
].map(
  ({ Q, G, H, T }): KernelCase => ({
    name: `gradcheck Q=${Q} G=${G} H=${H} T=${T}`,
    async run(gpu) {
      const q = unitRows(Q, H, 1400 + Q);
      const p = passagesFor(q, Q, H, G, 1, 1410 + Q);
      const R = projection(1, 1420 + Q);
      const r = await runLoss(gpu, q, p, Q, H, { groupSize: G, temperature: T, scale: R[0] });
      return gradChecks({
        f: ([qv, pv]) => [contrastiveLossRef(qv, pv, Q, H, G, T).loss],
        inputs: [
          { name: 'q', value: q, grad: r.dq },
          { name: 'p', value: p, grad: r.dp },
        ],
        R,
      });
    },
  }),
);

export const lossCases: KernelCase[] = [...refCases, ...otherCases, ...gradCases];
