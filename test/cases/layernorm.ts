// Conformance cases for shaders/layernorm.wgsl against core/ref/layernorm.ts (float64):
// the forward, then the backward (against the float64 analytic gradients, and against central
// differences of the float64 forward through test/gradcheck.ts).
//
// Forward tolerances. Error model (u = 2^-24): each row sum is a strided per-thread sum of ceil(C / WG)
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
import { rowReduceWg } from '../../core/gpu/launch.ts';
import { layerNormBackward, layerNormForward } from '../../core/kernels/layernorm.ts';
import { layerNormBackwardRef, layerNormRef } from '../../core/ref/layernorm.ts';
import { gradChecks, projection } from '../gradcheck.ts';
import { nanTensor, withBindingLimit } from './elementwise.ts';
import { halfOutTol, hasF16, nanHalf, readHalf, refusalCheck, uploadHalf } from './half-io.ts';
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

/** A spec's x (offset, constant rows as asked), weight near 1 and bias, from seeds seed..seed + 2. */
function specInputs(s: Spec, N: number, seed: number): { x: Float32Array; w: Float32Array; b: Float32Array } {
  const { C } = s;
  const x = randu(N * C, seed, s.scale ?? 1);
  if (s.offset) for (let i = 0; i < x.length; i++) x[i] += s.offset;
  if (s.constant) for (let r = 0; r < N; r++) x.fill(x[r * C], r * C, (r + 1) * C);
  return { x, w: randu(C, seed + 1, 0.5).map((v) => 1 + v), b: randu(C, seed + 2, 0.5) };
}

/** Exact: with x - k = 0 in every row (C = 1 or constant rows), out = 0 * rstd * weight + bias. */
function outIsBias(out: ArrayLike<number>, bias: Float32Array, N: number, C: number): Check {
  const expected = new Float32Array(N * C);
  for (let i = 0; i < N; i++) expected.set(bias, i * C);
  return { name: 'out = bias', actual: out, expected, tol: { atol: 0 } };
}

async function runSpec(gpu: Gpu, s: Spec, seed: number): Promise<Check[]> {
  const N = s.lead.reduce((a, b) => a * b, 1);
  const { C } = s;
  const eps = s.eps ?? 1e-12;
  const { x, w, b } = specInputs(s, N, seed);
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
  if (C === 1 || s.constant) checks.push(outIsBias(o, b, N, C));
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

const forwardCases: KernelCase[] = specs.map((s, i) => ({
  name: label(s),
  run: (gpu: Gpu) => runSpec(gpu, s, 500 + 10 * i),
}));

// ---------------------------------------------------------------- forward, f16
//
// x, weight, bias and out in f16, mean and rstd in f32. The reference is layerNormRef on the
// f16-rounded x, weight and bias (half-io.ts), so the kernel's error is the f32 model above
// (its inputs are f16 values held exactly in f32) plus the rounding of out to f16:
// out: halfOutTol(f32 out tolerance) = atol (1 + 2^-10) + 2^-24, rtol 2^-10; mean and rstd
// keep the f32 tolerances (they are never rounded to f16). C = 1 and constant rows still give
// out = bias exactly (bias is an f16 value). The offset case uses 30 + U(+-0.5): at 1000 the
// f16 spacing is 0.5, so 1000 + U(+-0.01) would round to constant rows.

async function runHalf(gpu: Gpu, s: Spec, seed: number): Promise<Check[]> {
  const N = s.lead.reduce((a, b) => a * b, 1);
  const { C } = s;
  const eps = s.eps ?? 1e-12;
  const raw = specInputs(s, N, seed);
  const shape = [...s.lead, C];
  const { t: tx, v: x } = uploadHalf(gpu, raw.x, shape);
  const { t: tw, v: w } = uploadHalf(gpu, raw.w, [C]);
  const { t: tb, v: b } = uploadHalf(gpu, raw.b, [C]);
  const out = nanHalf(gpu, shape), mean = nanTensor(gpu, [N]), rstd = nanTensor(gpu, s.lead);
  const wg = s.wg ?? rowReduceWg(gpu);
  const launch = () => layerNormForward(gpu, out, mean, rstd, tx, tw, tb, eps, { wg });
  if (!hasF16(gpu)) return refusalCheck(launch, [tx, tw, tb, out, mean, rstd]);
  const { dispatches } = await withBindingLimit(gpu, s.limit?.bytes ?? gpu.limits.maxBinding, launch);
  const [o, m, r] = [await readHalf(gpu, out), await gpu.readF32(mean), await gpu.readF32(rstd)];
  for (const t of [tx, tw, tb, out, mean, rstd]) t.release();
  const ref = layerNormRef(x, w, b, N, C, eps);
  const e = sumErr(C, wg);
  const outTol = halfOutTol({ atol: 1.5 * (3 * e + 6 * U) + U * maxAbs(ref.out) });
  const checks: Check[] = [
    { name: `out f16 (atol ${outTol.atol.toExponential(1)}, rtol 2^-10)`, actual: o, expected: ref.out, tol: outTol },
    { name: 'mean', actual: m, expected: ref.mean, tol: { atol: 2 * e * (s.scale ?? 1), rtol: 4 * U } },
    { name: 'rstd', actual: r, expected: ref.rstd, tol: { atol: 0, rtol: e + 4 * U } },
  ];
  if (C === 1 || s.constant) checks.push(outIsBias(o, b, N, C));
  if (s.limit) checks.push({ name: 'dispatches', actual: [dispatches], expected: [s.limit.dispatches], tol: { atol: 0 } });
  return checks;
}

const halfSpecs: Spec[] = [
  { lead: [1], C: 1 },
  { lead: [3], C: 7, eps: 1e-5 },
  { lead: [5], C: 129, wg: 64 },
  { lead: [2, 3], C: 384 },
  { lead: [4], C: 1024, wg: 8 },
  { lead: [2], C: 4096 },
  { lead: [4], C: 1024, offset: 30, scale: 0.5 },
  { lead: [3], C: 100, eps: 1e-5, constant: true },
  // folded grid: 70000 rows of 3 f16 (6-byte rows)
  { lead: [70000], C: 3 },
  // f16 rows of 766 B: aligned chunk starts need multiples of 128 rows (and of 64 for the f32
  // statistics); 171 rows fit 128 KiB, so 128 + 128 + 44 = 3 chunks
  { lead: [300], C: 383, limit: { bytes: 131072, dispatches: 3 } },
];

const halfCases: KernelCase[] = halfSpecs.map((s, i) => ({
  name: `${label(s)} f16`,
  run: (gpu: Gpu) => runHalf(gpu, s, 700 + 10 * i),
}));

// ---------------------------------------------------------------- backward
//
// Tolerances against the float64 analytic gradients (core/ref layerNormBackwardRef, with the
// statistics recomputed in float64), from the same error model: e = sumErr(C, wg) for the
// row sums, G = max|dout * weight|, X = max|xhat|, D = max|dout|, rs = max rstd.
// - dx = rstd (g - A - xhat B), A = mean_c(g), B = mean_c(g xhat). The GPU's rstd carries the
//   forward's e + 4u; the centring correction m_d and the sums are off by e of their terms,
//   so xhat by (2e + 6u) X and B by (2e + 7u) G X; four roundings in the combination and one
//   product with rstd. Collected: atol = rs G (e (3 + 5 X^2) + u (18 + 21 X^2)), e.g.
//   1.8e-5 rs G at C = 384 with WG = 256, 5.4e-5 rs G at C = 1024 with WG = 8 (X^2 ~ 3).
// - dweight[c] = sum over N rows of dout xhat: an fma chain over a block of R' = min(R, N)
//   rows, then nb block sums, e_p = 4 sqrt(R' + nb) u of sum|dout xhat| <= N D X, plus the
//   xhat error: atol = N D X (e_p + 2e + 6u). dbias: atol = N D e_p.
// - accumulate adds the old value once more: plus rtol u.
// - Determinism: a second run must give the same bits (atol 0): all reductions have a fixed
//   order (no atomics).
// The offset rows x = 1000 + U(+-0.01) are the case the centring exists for: recomputing xhat
// from the saved f32 mean (off by up to 3.1e-5 = 0.5% of the std) shifts xhat by ~5e-3: dx
// misses by ~1e-4 rs G and dweight by ~5e-3 N D, hundreds of times these tolerances.

interface BwdSpec extends Spec {
  blockRows?: number;
  accumulate?: boolean;
}

/**
 * The float64 gradients of a backward spec's inputs (accumulate's initial values added) and the
 * tolerances above for them.
 */
function backwardRef(s: BwdSpec, x: Float32Array, w: Float32Array, dout: Float32Array, init: Float32Array[] | null, wg: number) {
  const N = s.lead.reduce((a, b) => a * b, 1);
  const { C } = s;
  const eps = s.eps ?? 1e-12;
  const ref = layerNormBackwardRef(dout, x, w, N, C, eps);
  const { mean: m64, rstd: r64 } = layerNormRef(x, w, new Float32Array(C), N, C, eps);
  let X = 0;
  for (let r = 0; r < N; r++) for (let c = 0; c < C; c++) X = Math.max(X, Math.abs((x[r * C + c] - m64[r]) * r64[r]));
  let G = 0;
  for (let i = 0; i < N * C; i++) G = Math.max(G, Math.abs(dout[i] * w[i % C]));
  const D = maxAbs(dout), rs = maxAbs(r64), X2 = X * X;
  const e = sumErr(C, wg);
  const Rp = Math.min(s.blockRows ?? 64, N);
  const ep = 4 * Math.sqrt(Rp + Math.ceil(N / Rp)) * U;
  const accRtol = init ? U : 0;
  return {
    dx: ref.dx,
    dweight: init ? ref.dweight.map((v, c) => v + init[0][c]) : ref.dweight,
    dbias: init ? ref.dbias.map((v, c) => v + init[1][c]) : ref.dbias,
    dxTol: { atol: rs * G * (e * (3 + 5 * X2) + U * (18 + 21 * X2)) } as Tol,
    dwTol: { atol: N * D * X * (ep + 2 * e + 6 * U), rtol: accRtol } as Tol,
    dbTol: { atol: N * D * ep, rtol: accRtol } as Tol,
  };
}

async function runBackward(gpu: Gpu, s: BwdSpec, seed: number): Promise<Check[]> {
  const N = s.lead.reduce((a, b) => a * b, 1);
  const { C } = s;
  const eps = s.eps ?? 1e-12;
  const x = randu(N * C, seed, s.scale ?? 1);
  if (s.offset) for (let i = 0; i < x.length; i++) x[i] += s.offset;
  const w = randu(C, seed + 1, 0.5).map((v) => 1 + v);
  const b = randu(C, seed + 2, 0.5);
  const dout = randu(N * C, seed + 3);
  const init = s.accumulate ? [randu(C, seed + 4), randu(C, seed + 5)] : null;
  const shape = [...s.lead, C];
  const tx = gpu.upload(x, shape), tw = gpu.upload(w, [C]), tb = gpu.upload(b, [C]), tdout = gpu.upload(dout, shape);
  const out = gpu.empty(shape), mean = gpu.empty([N]), rstd = gpu.empty([N]);
  const wg = s.wg ?? rowReduceWg(gpu);
  layerNormForward(gpu, out, mean, rstd, tx, tw, tb, eps, { wg });
  const run = async () => {
    const dx = nanTensor(gpu, shape);
    const dw = init ? gpu.upload(init[0], [C]) : nanTensor(gpu, [C]);
    const db = init ? gpu.upload(init[1], [C]) : nanTensor(gpu, [C]);
    const { dispatches } = await withBindingLimit(gpu, s.limit?.bytes ?? gpu.limits.maxBinding, () =>
      layerNormBackward(gpu, dx, dw, db, tdout, tx, mean, rstd, tw, { wg, blockRows: s.blockRows, accumulate: s.accumulate }),
    );
    const r = { dx: await gpu.readF32(dx), dw: await gpu.readF32(dw), db: await gpu.readF32(db), dispatches };
    for (const t of [dx, dw, db]) t.release();
    return r;
  };
  const first = await run();
  const second = await run();
  for (const t of [tx, tw, tb, tdout, out, mean, rstd]) t.release();

  const ref = backwardRef(s, x, w, dout, init, wg);
  const checks: Check[] = [
    { name: 'dx', actual: first.dx, expected: ref.dx, tol: ref.dxTol },
    { name: init ? 'dweight (accumulated)' : 'dweight', actual: first.dw, expected: ref.dweight, tol: ref.dwTol },
    { name: init ? 'dbias (accumulated)' : 'dbias', actual: first.db, expected: ref.dbias, tol: ref.dbTol },
    // exact: fixed-order reductions give the same bits on every run
    { name: 'dx run to run', actual: second.dx, expected: first.dx, tol: { atol: 0 } },
    { name: 'dweight run to run', actual: second.dw, expected: first.dw, tol: { atol: 0 } },
    { name: 'dbias run to run', actual: second.db, expected: first.db, tol: { atol: 0 } },
  ];
  if (s.limit) checks.push({ name: 'dispatches', actual: [first.dispatches], expected: [s.limit.dispatches], tol: { atol: 0 } });
  return checks;
}

const bwdSpecs: BwdSpec[] = [
  { lead: [1], C: 1 },
  { lead: [3], C: 1, eps: 1e-5 },
  { lead: [1], C: 7 },
  { lead: [5], C: 129, wg: 64, blockRows: 2 },
  { lead: [2, 3], C: 384, accumulate: true },
  { lead: [4], C: 1024, wg: 8 },
  { lead: [2], C: 4096, wg: 256 },
  { lead: [4], C: 1024, offset: 1000, scale: 0.01 },
  { lead: [64], C: 384, offset: 1000, scale: 0.01, blockRows: 16 },
  { lead: [2], C: 384, offset: -3e4, scale: 1 },
  // 70000 rows: the dx pass needs the folded grid; with R = 1 the 70000 blocks pass 65535 per
  // dispatch, so the launcher raises R to 2
  { lead: [70000], C: 3, blockRows: 1 },
  // the forward's chunking: 64 x 4 + 44 rows under 128 KiB, 2 dispatches per chunk plus the reduce
  { lead: [300], C: 384, limit: { bytes: 131072, dispatches: 11 } },
];

const backwardCases: KernelCase[] = bwdSpecs.map((s, i) => ({
  name: `backward ${label(s)}${s.blockRows ? ` R=${s.blockRows}` : ''}${s.accumulate ? ' accumulate' : ''}`,
  run: (gpu: Gpu) => runBackward(gpu, s, 600 + 10 * i),
}));

// ---------------------------------------------------------------- backward, f16
//
// dout, x, weight and dx in f16; mean and rstd (from the f16 forward), dweight and dbias f32.
// The reference is the float64 backward of the f16-rounded inputs (half-io.ts), whose values
// are exact in f32, so the kernel's error is the f32 model above plus, for dx only, its
// rounding to f16: halfOutTol(dx tolerance). dweight and dbias are never rounded to f16 and
// keep their tolerances. Shapes: length-1 rows (dx = 0 exactly), H not a multiple of 4, the
// f16 offset rows of the forward (30 + U(+-0.5)), the folded grid, row chunks of f16 rows, and
// the dout of training: tiny, +-(1 + U(+-0.3)) 1e-4 (f16 normals), and up to 1000.

interface HalfBwdSpec extends BwdSpec {
  /** dout = U(-1, 1) * scale, or 'tiny': +-(1 + U(-0.3, 0.3)) 1e-4. */
  dout?: number | 'tiny';
}

async function runBackwardHalf(gpu: Gpu, s: HalfBwdSpec, seed: number): Promise<Check[]> {
  const N = s.lead.reduce((a, b) => a * b, 1);
  const { C } = s;
  const eps = s.eps ?? 1e-12;
  const shape = [...s.lead, C];
  const raw = specInputs(s, N, seed);
  let d: Float32Array;
  if (s.dout === 'tiny') d = randu(N * C, seed + 3, 0.3).map((v, i) => (i % 2 ? -1 : 1) * (1 + v) * 1e-4);
  else d = randu(N * C, seed + 3, s.dout ?? 1);
  const { t: tx, v: x } = uploadHalf(gpu, raw.x, shape);
  const { t: tw, v: w } = uploadHalf(gpu, raw.w, [C]);
  const { t: tb } = uploadHalf(gpu, raw.b, [C]);
  const { t: tdout, v: dout } = uploadHalf(gpu, d, shape);
  const init = s.accumulate ? [randu(C, seed + 4), randu(C, seed + 5)] : null;
  const out = gpu.empty(shape, 'f16'), mean = gpu.empty([N]), rstd = gpu.empty([N]);
  const wg = s.wg ?? rowReduceWg(gpu);
  const grads = () => ({
    dx: nanHalf(gpu, shape),
    dw: init ? gpu.upload(init[0], [C]) : nanTensor(gpu, [C]),
    db: init ? gpu.upload(init[1], [C]) : nanTensor(gpu, [C]),
  });
  const inputs = [tx, tw, tb, tdout, out, mean, rstd];
  if (!hasF16(gpu)) {
    const g = grads();
    return refusalCheck(() => layerNormBackward(gpu, g.dx, g.dw, g.db, tdout, tx, mean, rstd, tw, { wg }), [...inputs, g.dx, g.dw, g.db]);
  }
  layerNormForward(gpu, out, mean, rstd, tx, tw, tb, eps, { wg });
  const run = async () => {
    const g = grads();
    const { dispatches } = await withBindingLimit(gpu, s.limit?.bytes ?? gpu.limits.maxBinding, () =>
      layerNormBackward(gpu, g.dx, g.dw, g.db, tdout, tx, mean, rstd, tw, { wg, blockRows: s.blockRows, accumulate: s.accumulate }),
    );
    const r = { dx: await readHalf(gpu, g.dx), dw: await gpu.readF32(g.dw), db: await gpu.readF32(g.db), dispatches };
    for (const t of [g.dx, g.dw, g.db]) t.release();
    return r;
  };
  const first = await run();
  const second = await run();
  for (const t of inputs) t.release();
  const ref = backwardRef(s, x, w, dout, init, wg);
  const dxTol = halfOutTol(ref.dxTol);
  const checks: Check[] = [
    { name: `dx f16 (atol ${dxTol.atol.toExponential(1)}, rtol 2^-10)`, actual: first.dx, expected: ref.dx, tol: dxTol },
    { name: init ? 'dweight (accumulated)' : 'dweight', actual: first.dw, expected: ref.dweight, tol: ref.dwTol },
    { name: init ? 'dbias (accumulated)' : 'dbias', actual: first.db, expected: ref.dbias, tol: ref.dbTol },
    // exact: fixed-order reductions give the same bits on every run
    { name: 'dx run to run', actual: second.dx, expected: first.dx, tol: { atol: 0 } },
    { name: 'dweight run to run', actual: second.dw, expected: first.dw, tol: { atol: 0 } },
    { name: 'dbias run to run', actual: second.db, expected: first.db, tol: { atol: 0 } },
  ];
  if (C === 1) checks.push({ name: 'dx = 0 (rows of one element)', actual: first.dx, expected: new Float32Array(N), tol: { atol: 0 } });
  if (s.limit) checks.push({ name: 'dispatches', actual: [first.dispatches], expected: [s.limit.dispatches], tol: { atol: 0 } });
  return checks;
}

const halfBwdSpecs: HalfBwdSpec[] = [
  { lead: [1], C: 1 },
  { lead: [3], C: 1, eps: 1e-5, accumulate: true },
  { lead: [1], C: 7 },
  { lead: [5], C: 129, wg: 64, blockRows: 2 },
  { lead: [2, 3], C: 384, accumulate: true },
  { lead: [4], C: 1024, wg: 8 },
  { lead: [4], C: 1024, offset: 30, scale: 0.5 },
  { lead: [6], C: 96, dout: 'tiny', accumulate: true },
  { lead: [6], C: 96, dout: 1000 },
  // 70000 rows: the folded grid; R = 1 is raised to 2 as in the f32 case
  { lead: [70000], C: 3, blockRows: 1 },
  // f16 rows of 766 B: 128 + 128 + 44 rows under 128 KiB (as the forward), 2 dispatches each + the reduce
  { lead: [300], C: 383, limit: { bytes: 131072, dispatches: 7 } },
];

const halfBackwardCases: KernelCase[] = halfBwdSpecs.map((s, i) => ({
  name: `backward ${label(s)}${s.blockRows ? ` R=${s.blockRows}` : ''}${s.accumulate ? ' accumulate' : ''}${s.dout !== undefined ? ` dout=${s.dout}` : ''} f16`,
  run: (gpu: Gpu) => runBackwardHalf(gpu, s, 900 + 10 * i),
}));

// ---------------------------------------------------------------- gradient checks
//
// Central differences of the float64 forward (test/gradcheck.ts, rtol 1e-5 of the largest
// gradient). Steps: 1e-6 absolute, also for the offset rows (std 0.006): there xhat moves by
// h rstd = 1.7e-4, so truncation stays ~1e-8 relative, while the float64 rounding of
// x - mean near 1000 (1e-13) over the step is ~1e-7 relative, both far under 1e-5.
// C = 1 has dx = dweight = 0 exactly (x - mean = 0 in every row); the scale floor 1 makes
// their tolerance 1e-5 instead of 0.

interface GradSpec {
  lead: number[];
  C: number;
  eps?: number;
  offset?: number;
  scale?: number;
  blockRows?: number;
}

async function runGradcheck(gpu: Gpu, s: GradSpec, seed: number): Promise<Check[]> {
  const N = s.lead.reduce((a, b) => a * b, 1);
  const { C } = s;
  const eps = s.eps ?? 1e-12;
  const x = randu(N * C, seed, s.scale ?? 1);
  if (s.offset) for (let i = 0; i < x.length; i++) x[i] = Math.fround(x[i] + s.offset);
  const w = randu(C, seed + 1, 0.5).map((v) => 1 + v);
  const b = randu(C, seed + 2, 0.5);
  const R = projection(N * C, seed + 3);
  const shape = [...s.lead, C];
  const tx = gpu.upload(x, shape), tw = gpu.upload(w, [C]), tb = gpu.upload(b, [C]), tR = gpu.upload(R, shape);
  const out = gpu.empty(shape), mean = gpu.empty([N]), rstd = gpu.empty([N]);
  const dx = nanTensor(gpu, shape), dw = nanTensor(gpu, [C]), db = nanTensor(gpu, [C]);
  layerNormForward(gpu, out, mean, rstd, tx, tw, tb, eps);
  layerNormBackward(gpu, dx, dw, db, tR, tx, mean, rstd, tw, { blockRows: s.blockRows });
  const [gx, gw, gb] = [await gpu.readF32(dx), await gpu.readF32(dw), await gpu.readF32(db)];
  for (const t of [tx, tw, tb, tR, out, mean, rstd, dx, dw, db]) t.release();
  return gradChecks({
    f: ([xx, ww, bb]) => layerNormRef(xx, ww, bb, N, C, eps).out,
    inputs: [
      { name: 'x', value: x, grad: gx, scale: 1 },
      { name: 'weight', value: w, grad: gw, scale: 1 },
      { name: 'bias', value: b, grad: gb },
    ],
    R,
  });
}

const gradSpecs: GradSpec[] = [
  { lead: [1], C: 1 },
  { lead: [3], C: 1, eps: 1e-5 },
  { lead: [1], C: 7 },
  { lead: [3], C: 7, eps: 1e-5 },
  { lead: [2, 3], C: 5, blockRows: 4 },
  { lead: [9], C: 13, blockRows: 2 },
  { lead: [3], C: 8, offset: 1000, scale: 0.01 },
];

const gradCases: KernelCase[] = gradSpecs.map((s, i) => ({
  name: `gradcheck ${label(s)}${s.blockRows ? ` R=${s.blockRows}` : ''}`,
  run: (gpu: Gpu) => runGradcheck(gpu, s, 800 + 10 * i),
}));

export const layernormCases: KernelCase[] = [...forwardCases, ...halfCases, ...backwardCases, ...halfBackwardCases, ...gradCases];
