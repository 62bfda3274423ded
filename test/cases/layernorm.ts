// Conformance cases for shaders/layernorm.wgsl against core/ref/layernorm.ts (float64).
//
// Tolerances. Error model (u = 2^-24): each row sum is a strided per-thread sum of ceil(C / WG)
// terms then a tree of log2(WG) levels, n roundings in all, with the probabilistic bound
// e = 4 sqrt(n) u (Higham & Mary 2019; lambda = 4 holds with probability > 0.999 per sum).
// With x - mean ~ std s and uniform data (|xhat| <= 1.73, mean |x - k| <= 2 s):
// - m = mean(x - k) is off by <= 2 e s, i.e. 2 e in xhat units; var by e relative, so rstd by
//   e / 2 plus 2 ulp of inverseSqrt, i.e. <= e in xhat; the subtractions and the product add
//   ~6 u. With |weight| <= 1.5 and one more rounding: out atol = 1.5 (3 e + 6 u) + u |out|.
//   E.g. C = 1024: WG 256 gives n = 12, atol 3.9e-6; WG 8 (software drivers) n = 131, 1.3e-5.
// - mean: atol 2 e s, rtol 4 u (k + m rounds to 0.5 ulp, which dominates at |mean| = 1000).
// - rstd: rtol e + 4 u.
// - C = 1 and constant rows: out = bias exactly (x - k = 0), checked with atol 0.
// The offset case x = 1000 + U(+-0.01) (s = 0.006) is the one a weaker kernel fails: an
// unshifted two-pass kernel's mean is off by a few ulp of 1000 (~1e-4 = 0.02 s), a one-pass
// E[x^2] - E[x]^2 loses the variance entirely (1e6 * 6e-8 = 0.06 against 3.3e-5).

import type { Gpu } from '../../core/gpu/device.ts';
import { rowReduceWg } from '../../core/kernels/elementwise.ts';
import { layerNormForward } from '../../core/kernels/layernorm.ts';
import { layerNormRef } from '../../core/ref/layernorm.ts';
import { nanTensor, withBindingLimit } from './elementwise.ts';
import type { Check, KernelCase, Tol } from './types.ts';
import { randu } from './util.ts';

const U = 2 ** -24;

/** Probabilistic error bound of one row sum (see the header). */
function sumErr(C: number, wg: number): number {
  return 4 * Math.sqrt(Math.ceil(C / wg) + Math.log2(wg)) * U;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

interface Spec {
  lead: number[]; // leading dims of x, folded into N
  C: number;
  eps?: number; // default 1e-12 (BERT, GTE)
  wg?: number;
  offset?: number; // x = offset + U(-scale, scale)
  scale?: number;
  constant?: boolean; // every row constant: var = 0, out = bias
  limit?: { bytes: number; dispatches: number }; // lowered binding limit and expected chunk count
}

async function runSpec(gpu: Gpu, s: Spec, seed: number): Promise<Check[]> {
  const N = s.lead.reduce((a, b) => a * b, 1);
  const { C } = s;
  const eps = s.eps ?? 1e-12;
  const x = randu(N * C, seed, s.scale ?? 1);
  if (s.offset) for (let i = 0; i < x.length; i++) x[i] += s.offset;
  if (s.constant) for (let r = 0; r < N; r++) x.fill(x[r * C], r * C, (r + 1) * C);
  const w = randu(C, seed + 1, 0.5).map((v) => 1 + v);
  const b = randu(C, seed + 2, 0.5);
  const tx = gpu.upload(x, [...s.lead, C]), tw = gpu.upload(w, [C]), tb = gpu.upload(b, [C]);
  const out = nanTensor(gpu, [...s.lead, C]), mean = nanTensor(gpu, [N]), rstd = nanTensor(gpu, s.lead);
  const wg = s.wg ?? rowReduceWg(gpu);
  const { dispatches } = await withBindingLimit(gpu, s.limit?.bytes ?? gpu.limits.maxBinding, () =>
    layerNormForward(gpu, out, mean, rstd, tx, tw, tb, eps, { wg }),
  );
  const [o, m, r] = [await gpu.readF32(out), await gpu.readF32(mean), await gpu.readF32(rstd)];
  for (const t of [tx, tw, tb, out, mean, rstd]) t.release();
  const ref = layerNormRef(x, w, b, N, C, eps);
  const e = sumErr(C, wg);
  const outTol: Tol = { atol: 1.5 * (3 * e + 6 * U) + U * maxAbs(ref.out) };
  const meanTol: Tol = { atol: 2 * e * (s.scale ?? 1), rtol: 4 * U };
  const rstdTol: Tol = { atol: 0, rtol: e + 4 * U };
  const checks: Check[] = [
    { name: `out (atol ${outTol.atol.toExponential(1)})`, actual: o, expected: ref.out, tol: outTol },
    { name: 'mean', actual: m, expected: ref.mean, tol: meanTol },
    { name: 'rstd', actual: r, expected: ref.rstd, tol: rstdTol },
  ];
  if (C === 1 || s.constant) {
    // exact: x - k = 0 in every row, so out = 0 * rstd * weight + bias
    const bias = new Float32Array(N * C);
    for (let i = 0; i < N; i++) bias.set(b, i * C);
    checks.push({ name: 'out = bias', actual: o, expected: bias, tol: { atol: 0 } });
  }
  // exact: the chunked path really split the rows
  if (s.limit) checks.push({ name: 'dispatches', actual: [dispatches], expected: [s.limit.dispatches], tol: { atol: 0 } });
  return checks;
}

function label(s: Spec): string {
  const parts = [`[${s.lead.join(',')}, ${s.C}]`];
  if (s.eps !== undefined) parts.push(`eps=${s.eps}`);
  if (s.wg) parts.push(`wg=${s.wg}`);
  if (s.offset) parts.push(`x=${s.offset}+U(+-${s.scale})`);
  if (s.constant) parts.push('constant rows');
  if (s.limit) parts.push(`binding limit ${s.limit.bytes}`);
  return parts.join(' ');
}

const specs: Spec[] = [
  { lead: [1], C: 1 },
  { lead: [3], C: 1, eps: 1e-5 },
  { lead: [1], C: 7 },
  { lead: [5], C: 129, wg: 64 },
  { lead: [2, 3], C: 384 },
  { lead: [4], C: 1024, wg: 8 },
  { lead: [3], C: 1000, wg: 32 },
  { lead: [2], C: 4096 },
  { lead: [2], C: 4096, wg: 256 },
  { lead: [2], C: 4096, wg: 1 },
  { lead: [4], C: 1024, offset: 1000, scale: 0.01 },
  { lead: [2], C: 384, offset: -3e4, scale: 1 },
  { lead: [3], C: 100, eps: 1e-5, constant: true },
  // 70000 rows: more workgroups than one grid dimension allows (65535)
  { lead: [70000], C: 3 },
  // rows of 1536 B plus 4 B of mean and rstd: chunks must be multiples of 64 rows (256 B of
  // mean) and hold at most 85 rows under 128 KiB, so 64 x 4 + 44 = 5 chunks
  { lead: [300], C: 384, limit: { bytes: 131072, dispatches: 5 } },
];

export const layernormCases: KernelCase[] = specs.map((s, i) => ({
  name: label(s),
  run: (gpu: Gpu) => runSpec(gpu, s, 500 + 10 * i),
}));
