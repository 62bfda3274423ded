// Conformance cases for shaders/pooling.wgsl against core/ref/pooling.ts (float64).
//
// Tolerances (u = 2^-24):
// - cls: exact, a copy.
// - mean: atol (4 sqrt(L) + 2) u max|x|. The sum is L in-order f32 fmas (probabilistic bound
//   4 sqrt(L) u sum|x|, Higham & Mary 2019, lambda = 4) divided by the count >= the number of
//   terms, then one division (<= 2.5 ulp in WGSL, ~2 u). Padded positions hold 1e30, so a
//   kernel that lets them into the sum misses by ~1e30 / count.
// - l2Normalize: rtol e / 2 + 3 u on out and e / 2 + u on norm, with e = 4 sqrt(n) u the bound
//   of the sum of squares over n = ceil(H / WG) + log2(WG) roundings (sqrt halves it; the
//   sqrt and the division round once more each).
// Backwards:
// - cls: exact, a copy and zeros.
// - mean: rtol 6u, atol 0: the count is an exact integer, dout / count rounds once (WGSL
//   division: 2.5 ulp <= 5u) and the product with the mask weight once more; masked positions
//   and rows with no real token are exactly 0.
// - l2Normalize, rows with n >= 1e-12: dx = (dout - x s) / n, s = (x . dout) / n^2. With the
//   dot product off by e of sum|x dout| <= e n ||dout||, the saved norm by eta = e / 2 + u, and
//   |x| <= n, the error is at most (||dout|| / n) (3e + 23u) (the roundings: n^2, the division,
//   x s, the subtraction, the final division). Rows under the clamp: dout / 1e-12, one
//   division, rtol 5u (zero rows included).
// - cls and mean with an f16 dx (names ending in ' f16'; dout stays f32 as in mixed-precision
//   training, where it comes from the f32 head): the f32 value above rounded to f16 once,
//   halfOutTol of the f32 tolerance (one f16 ulp, 2^-24 absolute for subnormal results, which
//   the tiny-dout cases produce); masked positions and other tokens of cls stay exactly 0.
// - Gradient checks: central differences of float64 forwards (test/gradcheck.ts, rtol 1e-5),
//   normal and clamped rows in separate cases (their gradients differ by 1e12 in scale), the
//   clamped ones with steps of 1e-6 of their values so the clamp stays active.

import type { Gpu } from '../../core/gpu/device.ts';
import { rowReduceWg } from '../../core/gpu/launch.ts';
import {
  clsPoolBackward,
  clsPoolForward,
  l2NormalizeBackward,
  l2NormalizeForward,
  meanPoolBackward,
  meanPoolForward,
} from '../../core/kernels/pooling.ts';
import {
  clsPoolBackwardRef,
  clsPoolRef,
  l2NormalizeBackwardRef,
  l2NormalizeRef,
  meanPoolBackwardRef,
  meanPoolRef,
} from '../../core/ref/pooling.ts';
import { gradChecks, projection } from '../gradcheck.ts';
import { nanTensor, withBindingLimit } from './elementwise.ts';
import { halfOutTol, hasF16, nanHalf, readHalf, refusalCheck, uploadHalf } from './half-io.ts';
import type { Check, KernelCase } from './types.ts';
import { randu, rng } from './util.ts';

const U = 2 ** -24;
const PAD_VALUE = 1e30;

type Limit = { bytes: number; dispatches: number };

function dispatchCheck(limit: Limit | undefined, dispatches: number): Check[] {
  // exact: the chunked path really split the batch
  return limit ? [{ name: 'dispatches', actual: [dispatches], expected: [limit.dispatches], tol: { atol: 0 } }] : [];
}

/** Real-token counts per row: first row 1 token, second none, third all L, the rest random. */
function lengths(B: number, L: number, seed: number): number[] {
  const r = rng(seed);
  return Array.from({ length: B }, (_, b) => (b === 0 ? 1 : b === 1 ? 0 : b === 2 ? L : 1 + Math.floor(r() * L)));
}

async function runCls(gpu: Gpu, B: number, L: number, H: number, seed: number, limit?: Limit): Promise<Check[]> {
  const x = randu(B * L * H, seed);
  const tx = gpu.upload(x, [B, L, H]), out = nanTensor(gpu, [B, H]);
  const { dispatches } = await withBindingLimit(gpu, limit?.bytes ?? gpu.limits.maxBinding, () => clsPoolForward(gpu, out, tx));
  const actual = await gpu.readF32(out);
  for (const t of [tx, out]) t.release();
  return [{ name: 'out', actual, expected: clsPoolRef(x, B, L, H), tol: { atol: 0 } }, ...dispatchCheck(limit, dispatches)];
}

async function runMean(gpu: Gpu, B: number, L: number, H: number, seed: number, limit?: Limit): Promise<Check[]> {
  const x = randu(B * L * H, seed);
  const mask = new Uint32Array(B * L);
  lengths(B, L, seed + 1).forEach((n, b) => {
    mask.fill(1, b * L, b * L + n);
    x.fill(PAD_VALUE, (b * L + n) * H, (b + 1) * L * H);
  });
  const tx = gpu.upload(x, [B, L, H]), tm = gpu.upload(mask, [B, L]), out = nanTensor(gpu, [B, H]);
  const { dispatches } = await withBindingLimit(gpu, limit?.bytes ?? gpu.limits.maxBinding, () => meanPoolForward(gpu, out, tx, tm));
  const actual = await gpu.readF32(out);
  for (const t of [tx, tm, out]) t.release();
  return [
    { name: 'out', actual, expected: meanPoolRef(x, mask, B, L, H), tol: { atol: (4 * Math.sqrt(L) + 2) * U } },
    ...dispatchCheck(limit, dispatches),
  ];
}

async function runL2(gpu: Gpu, B: number, H: number, seed: number, opts: { wg?: number; limit?: Limit } = {}): Promise<Check[]> {
  const x = randu(B * H, seed, 3);
  if (B > 1) x.fill(0, H, 2 * H); // row 1: zeros, norm 0, out 0 (0 / 1e-12)
  if (B > 2) for (let h = 0; h < H; h++) x[2 * H + h] *= 1e-14; // row 2: norm < 1e-12, clamped
  const wg = opts.wg ?? rowReduceWg(gpu);
  const tx = gpu.upload(x, [B, H]), out = nanTensor(gpu, [B, H]), norm = nanTensor(gpu, [B]);
  const { dispatches } = await withBindingLimit(gpu, opts.limit?.bytes ?? gpu.limits.maxBinding, () => l2NormalizeForward(gpu, out, norm, tx, { wg }));
  const [o, n] = [await gpu.readF32(out), await gpu.readF32(norm)];
  for (const t of [tx, out, norm]) t.release();
  const ref = l2NormalizeRef(x, B, H);
  const e = 4 * Math.sqrt(Math.ceil(H / wg) + Math.log2(wg)) * U;
  return [
    { name: 'out', actual: o, expected: ref.out, tol: { atol: 0, rtol: e / 2 + 3 * U } },
    { name: 'norm', actual: n, expected: ref.norm, tol: { atol: 0, rtol: e / 2 + U } },
    ...dispatchCheck(opts.limit, dispatches),
  ];
}

const forwardCases: KernelCase[] = [
  { name: 'cls [1, 1, 1]', run: (gpu) => runCls(gpu, 1, 1, 1, 900) },
  { name: 'cls [3, 5, 1] (H = 1)', run: (gpu) => runCls(gpu, 3, 5, 1, 901) },
  { name: 'cls [4, 7, 129]', run: (gpu) => runCls(gpu, 4, 7, 129, 902) },
  // x rows of 1 KiB and out rows of 64 B: chunks of 4 rows under 4 KiB, so 4 + 4 + 2
  { name: 'cls [10, 16, 16] chunked under a 4 KiB binding limit', run: (gpu) => runCls(gpu, 10, 16, 16, 903, { bytes: 4096, dispatches: 3 }) },
  // rows: 1 real token, 0 real tokens (out = 0 by the 1e-9 clamp), all real, then random lengths
  { name: 'mean [3, 1, 4] (L = 1)', run: (gpu) => runMean(gpu, 3, 1, 4, 910) },
  { name: 'mean [6, 9, 1] (H = 1)', run: (gpu) => runMean(gpu, 6, 9, 1, 911) },
  { name: 'mean [8, 64, 384] padded rows', run: (gpu) => runMean(gpu, 8, 64, 384, 912) },
  { name: 'mean [5, 13, 1000] padded rows', run: (gpu) => runMean(gpu, 5, 13, 1000, 913) },
  // x rows of 2 KiB, mask rows of 32 B (chunks of a multiple of 8 rows): 8 + 2 under 16 KiB
  { name: 'mean [10, 8, 64] chunked under a 16 KiB binding limit', run: (gpu) => runMean(gpu, 10, 8, 64, 914, { bytes: 16384, dispatches: 2 }) },
  { name: 'l2Normalize [1, 1]', run: (gpu) => runL2(gpu, 1, 1, 920) },
  // rows: random, zeros, tiny (norm 1e-14 scale: clamped to 1e-12)
  { name: 'l2Normalize [3, 1] (H = 1)', run: (gpu) => runL2(gpu, 3, 1, 921) },
  { name: 'l2Normalize [4, 7]', run: (gpu) => runL2(gpu, 4, 7, 922) },
  { name: 'l2Normalize [5, 384] wg=64', run: (gpu) => runL2(gpu, 5, 384, 923, { wg: 64 }) },
  { name: 'l2Normalize [3, 1024]', run: (gpu) => runL2(gpu, 3, 1024, 924) },
  { name: 'l2Normalize [3, 4096] wg=256', run: (gpu) => runL2(gpu, 3, 4096, 925, { wg: 256 }) },
  { name: 'l2Normalize [70000, 2] (rows past 65535 workgroups)', run: (gpu) => runL2(gpu, 70000, 2, 926) },
  // rows of 1 KiB plus 4 B of norm: chunks of a multiple of 64 rows, so 64 + 36 under 64 KiB
  { name: 'l2Normalize [100, 256] chunked under a 64 KiB binding limit', run: (gpu) => runL2(gpu, 100, 256, 927, { limit: { bytes: 65536, dispatches: 2 } }) },
];

// ---------------------------------------------------------------- forward, f16 hidden states
//
// cls and mean over f16 x (half-io.ts: x rounded to f16 on the host, the reference on those
// values); the pooled output stays f32, so nothing is rounded to f16 on the way out:
// - cls: exact (widening f16 to f32 is exact).
// - mean: the f32 tolerance above, (4 sqrt(L) + 2) u max|x|: the same f32 fmas over values
//   that f32 holds exactly. Padded positions hold +inf (1e30 rounds to inf in f16), so a
//   kernel that lets them into the sum gives inf or NaN.
// Awkward rows: H = 17 and 33 give f16 rows of 2 mod 4 bytes and chunk starts aligned at 64
// rows (the f32 output's 68- and 132-byte rows).

async function runHalfPool(gpu: Gpu, kind: 'cls' | 'mean', B: number, L: number, H: number, seed: number, limit?: Limit): Promise<Check[]> {
  const x0 = randu(B * L * H, seed);
  const mask = new Uint32Array(B * L);
  if (kind === 'mean') {
    lengths(B, L, seed + 1).forEach((n, b) => {
      mask.fill(1, b * L, b * L + n);
      x0.fill(PAD_VALUE, (b * L + n) * H, (b + 1) * L * H);
    });
  }
  const { t: tx, v: x } = uploadHalf(gpu, x0, [B, L, H]);
  const tm = gpu.upload(mask, [B, L]), out = nanTensor(gpu, [B, H]);
  const launch = () => (kind === 'cls' ? clsPoolForward(gpu, out, tx) : meanPoolForward(gpu, out, tx, tm));
  if (!hasF16(gpu)) return refusalCheck(launch, [tx, tm, out]);
  const { dispatches } = await withBindingLimit(gpu, limit?.bytes ?? gpu.limits.maxBinding, launch);
  const actual = await gpu.readF32(out);
  for (const t of [tx, tm, out]) t.release();
  const check: Check =
    kind === 'cls'
      ? { name: 'out f32 from f16 x (exact)', actual, expected: clsPoolRef(x, B, L, H), tol: { atol: 0 } }
      : { name: 'out f32 from f16 x', actual, expected: meanPoolRef(x, mask, B, L, H), tol: { atol: (4 * Math.sqrt(L) + 2) * U } };
  return [check, ...dispatchCheck(limit, dispatches)];
}

const halfCases: KernelCase[] = [
  { name: 'cls [1, 1, 1] f16', run: (gpu) => runHalfPool(gpu, 'cls', 1, 1, 1, 1900) },
  { name: 'cls [3, 5, 1] (H = 1) f16', run: (gpu) => runHalfPool(gpu, 'cls', 3, 5, 1, 1901) },
  { name: 'cls [4, 7, 129] f16', run: (gpu) => runHalfPool(gpu, 'cls', 4, 7, 129, 1902) },
  // x rows of 544 B, out rows of 68 B (starts at multiples of 64 rows): 64 + 64 + 22 under 64 KiB
  { name: 'cls [150, 16, 17] chunked under a 64 KiB binding limit f16', run: (gpu) => runHalfPool(gpu, 'cls', 150, 16, 17, 1903, { bytes: 65536, dispatches: 3 }) },
  { name: 'mean [3, 1, 4] (L = 1) f16', run: (gpu) => runHalfPool(gpu, 'mean', 3, 1, 4, 1910) },
  { name: 'mean [6, 9, 1] (H = 1) f16', run: (gpu) => runHalfPool(gpu, 'mean', 6, 9, 1, 1911) },
  { name: 'mean [8, 64, 384] padded rows f16', run: (gpu) => runHalfPool(gpu, 'mean', 8, 64, 384, 1912) },
  { name: 'mean [5, 13, 1000] padded rows f16', run: (gpu) => runHalfPool(gpu, 'mean', 5, 13, 1000, 1913) },
  // x rows of 1 KiB, mask rows of 32 B (multiples of 8 rows): 8 + 2 under 8 KiB
  { name: 'mean [10, 8, 64] chunked under an 8 KiB binding limit f16', run: (gpu) => runHalfPool(gpu, 'mean', 10, 8, 64, 1914, { bytes: 8192, dispatches: 2 }) },
  // x rows of 528 B, out rows of 132 B (multiples of 64 rows): 64 + 64 + 22 under 64 KiB
  { name: 'mean [150, 8, 33] chunked under a 64 KiB binding limit f16', run: (gpu) => runHalfPool(gpu, 'mean', 150, 8, 33, 1915, { bytes: 65536, dispatches: 3 }) },
];

// ---------------------------------------------------------------- backward

function maskFor(B: number, L: number, seed: number): Uint32Array {
  const mask = new Uint32Array(B * L);
  lengths(B, L, seed).forEach((n, b) => mask.fill(1, b * L, b * L + n));
  return mask;
}

interface HalfOpts {
  /** dx in f16 (dout stays f32). */
  half?: boolean;
  /** dout ~ Uniform(-scale, scale), default 1. */
  scale?: number;
}

/** Elements of dx that must be exactly 0 (want[i] = 0) but are not. */
function strayNonzeros(actual: ArrayLike<number>, want: ArrayLike<number>): Check {
  let bad = 0;
  for (let i = 0; i < actual.length; i++) if (want[i] === 0 && actual[i] !== 0) bad++;
  return { name: 'elements that must be exactly 0 and are not', actual: [bad], expected: [0], tol: { atol: 0 } };
}

async function runClsBackward(gpu: Gpu, B: number, L: number, H: number, seed: number, limit?: Limit, o: HalfOpts = {}): Promise<Check[]> {
  const dout = randu(B * H, seed, o.scale ?? 1);
  const tdout = gpu.upload(dout, [B, H]), dx = o.half ? nanHalf(gpu, [B, L, H]) : nanTensor(gpu, [B, L, H]);
  const launch = () => clsPoolBackward(gpu, dx, tdout);
  if (o.half && !hasF16(gpu)) return refusalCheck(launch, [tdout, dx]);
  const { dispatches } = await withBindingLimit(gpu, limit?.bytes ?? gpu.limits.maxBinding, launch);
  const actual = o.half ? await readHalf(gpu, dx) : await gpu.readF32(dx);
  for (const t of [tdout, dx]) t.release();
  const expected = clsPoolBackwardRef(dout, B, L, H);
  // exact: a copy of dout at l = 0 and zeros elsewhere (f16: the copy rounded once)
  if (o.half) return [{ name: 'dx f16', actual, expected, tol: halfOutTol({ atol: 0 }) }, strayNonzeros(actual, expected), ...dispatchCheck(limit, dispatches)];
  return [{ name: 'dx', actual, expected, tol: { atol: 0 } }, ...dispatchCheck(limit, dispatches)];
}

async function runMeanBackward(gpu: Gpu, B: number, L: number, H: number, seed: number, limit?: Limit, o: HalfOpts = {}): Promise<Check[]> {
  const dout = randu(B * H, seed, o.scale ?? 1);
  const mask = maskFor(B, L, seed + 1);
  const tdout = gpu.upload(dout, [B, H]), tm = gpu.upload(mask, [B, L]), dx = o.half ? nanHalf(gpu, [B, L, H]) : nanTensor(gpu, [B, L, H]);
  const launch = () => meanPoolBackward(gpu, dx, tdout, tm);
  if (o.half && !hasF16(gpu)) return refusalCheck(launch, [tdout, tm, dx]);
  const { dispatches } = await withBindingLimit(gpu, limit?.bytes ?? gpu.limits.maxBinding, launch);
  const actual = o.half ? await readHalf(gpu, dx) : await gpu.readF32(dx);
  for (const t of [tdout, tm, dx]) t.release();
  const expected = meanPoolBackwardRef(dout, mask, B, L, H);
  const tol = { atol: 0, rtol: 6 * U };
  if (o.half) return [{ name: 'dx f16', actual, expected, tol: halfOutTol(tol) }, strayNonzeros(actual, expected), ...dispatchCheck(limit, dispatches)];
  return [{ name: 'dx', actual, expected, tol }, ...dispatchCheck(limit, dispatches)];
}

/** Rows: random U(-3, 3), then (B > 1) a zero row and (B > 2) a row scaled by 1e-14 (clamped). */
function l2Input(B: number, H: number, seed: number): Float32Array {
  const x = randu(B * H, seed, 3);
  if (B > 1) x.fill(0, H, 2 * H);
  if (B > 2) for (let h = 0; h < H; h++) x[2 * H + h] *= 1e-14;
  return x;
}

async function runL2Backward(gpu: Gpu, B: number, H: number, seed: number, opts: { wg?: number; limit?: Limit } = {}): Promise<Check[]> {
  const x = l2Input(B, H, seed);
  const dout = randu(B * H, seed + 1);
  const wg = opts.wg ?? rowReduceWg(gpu);
  const tx = gpu.upload(x, [B, H]), tdout = gpu.upload(dout, [B, H]), out = gpu.empty([B, H]), norm = gpu.empty([B]), dx = nanTensor(gpu, [B, H]);
  l2NormalizeForward(gpu, out, norm, tx, { wg });
  const { dispatches } = await withBindingLimit(gpu, opts.limit?.bytes ?? gpu.limits.maxBinding, () => l2NormalizeBackward(gpu, dx, tdout, tx, norm, { wg }));
  const actual = await gpu.readF32(dx);
  for (const t of [tx, tdout, out, norm, dx]) t.release();
  const expected = l2NormalizeBackwardRef(dout, x, B, H);
  const { norm: n64 } = l2NormalizeRef(x, B, H);
  const e = 4 * Math.sqrt(Math.ceil(H / wg) + Math.log2(wg)) * U;
  const rows = (clamped: boolean) => [...Array(B).keys()].filter((b) => n64[b] < 1e-12 === clamped);
  // Unclamped rows are compared in units of their own scale ||dout|| / n, so a row of norm
  // 1e-12 (dx ~ 1e13) and one of norm 3 are held to the same relative bound.
  const rowScale = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    let dd = 0;
    for (let h = 0; h < H; h++) dd += dout[b * H + h] ** 2;
    rowScale[b] = n64[b] >= 1e-12 ? n64[b] / Math.sqrt(dd) : 1;
  }
  const pick = (a: ArrayLike<number>, rs: number[]) => rs.flatMap((b) => Array.from({ length: H }, (_, h) => a[b * H + h] * rowScale[b]));
  const checks: Check[] = [
    { name: 'dx n / ||dout|| (rows with norm >= 1e-12)', actual: pick(actual, rows(false)), expected: pick(expected, rows(false)), tol: { atol: 3 * e + 23 * U } },
  ];
  if (rows(true).length) checks.push({ name: 'dx (clamped rows: dout / 1e-12)', actual: pick(actual, rows(true)), expected: pick(expected, rows(true)), tol: { atol: 0, rtol: 5 * U } });
  return [...checks, ...dispatchCheck(opts.limit, dispatches)];
}

const halfBackwardCases: KernelCase[] = [
  { name: 'cls backward [1, 1, 1] f16', run: (gpu) => runClsBackward(gpu, 1, 1, 1, 1940, undefined, { half: true }) },
  { name: 'cls backward [3, 5, 1] (H = 1) f16', run: (gpu) => runClsBackward(gpu, 3, 5, 1, 1941, undefined, { half: true }) },
  { name: 'cls backward [4, 7, 129] f16', run: (gpu) => runClsBackward(gpu, 4, 7, 129, 1942, undefined, { half: true }) },
  { name: 'cls backward [4, 7, 33] tiny dout (1e-4) f16', run: (gpu) => runClsBackward(gpu, 4, 7, 33, 1943, undefined, { half: true, scale: 1e-4 }) },
  // f16 dx rows of 16 x 16 x 2 = 512 B, f32 dout rows of 64 B: aligned starts need multiples of
  // 4 rows, 8 dx rows fit 4 KiB: chunks of 8 + 2
  { name: 'cls backward [10, 16, 16] chunked under a 4 KiB binding limit f16', run: (gpu) => runClsBackward(gpu, 10, 16, 16, 1944, { bytes: 4096, dispatches: 2 }, { half: true }) },
  { name: 'mean backward [3, 1, 4] (L = 1) f16', run: (gpu) => runMeanBackward(gpu, 3, 1, 4, 1950, undefined, { half: true }) },
  { name: 'mean backward [6, 9, 1] (H = 1) f16', run: (gpu) => runMeanBackward(gpu, 6, 9, 1, 1951, undefined, { half: true }) },
  { name: 'mean backward [5, 13, 1000] padded rows f16', run: (gpu) => runMeanBackward(gpu, 5, 13, 1000, 1952, undefined, { half: true }) },
  { name: 'mean backward [5, 13, 17] tiny dout (1e-4) f16', run: (gpu) => runMeanBackward(gpu, 5, 13, 17, 1953, undefined, { half: true, scale: 1e-4 }) },
  { name: 'mean backward [5, 13, 17] large dout (3e4) f16', run: (gpu) => runMeanBackward(gpu, 5, 13, 17, 1954, undefined, { half: true, scale: 3e4 }) },
  // f16 dx rows of 8 x 33 x 2 = 528 B, dout rows of 132 B, mask rows of 32 B: aligned starts
  // need multiples of 64 rows; 124 dx rows fit 64 KiB: chunks of 64, 64, 22
  { name: 'mean backward [150, 8, 33] chunked under a 64 KiB binding limit f16', run: (gpu) => runMeanBackward(gpu, 150, 8, 33, 1955, { bytes: 65536, dispatches: 3 }, { half: true }) },
];

const backwardCases: KernelCase[] = [
  { name: 'cls backward [1, 1, 1]', run: (gpu) => runClsBackward(gpu, 1, 1, 1, 940) },
  { name: 'cls backward [3, 5, 1] (H = 1)', run: (gpu) => runClsBackward(gpu, 3, 5, 1, 941) },
  { name: 'cls backward [4, 7, 129]', run: (gpu) => runClsBackward(gpu, 4, 7, 129, 942) },
  // dx rows of 1 KiB and dout rows of 64 B: chunks of 4 rows under 4 KiB, so 4 + 4 + 2
  { name: 'cls backward [10, 16, 16] chunked under a 4 KiB binding limit', run: (gpu) => runClsBackward(gpu, 10, 16, 16, 943, { bytes: 4096, dispatches: 3 }) },
  // rows: 1 real token, 0 real tokens (dx = 0), all real, then random lengths
  { name: 'mean backward [3, 1, 4] (L = 1)', run: (gpu) => runMeanBackward(gpu, 3, 1, 4, 950) },
  { name: 'mean backward [6, 9, 1] (H = 1)', run: (gpu) => runMeanBackward(gpu, 6, 9, 1, 951) },
  { name: 'mean backward [5, 13, 1000] padded rows', run: (gpu) => runMeanBackward(gpu, 5, 13, 1000, 952) },
  // dx rows of 2 KiB, mask rows of 32 B (chunks of a multiple of 8 rows): 8 + 2 under 16 KiB
  { name: 'mean backward [10, 8, 64] chunked under a 16 KiB binding limit', run: (gpu) => runMeanBackward(gpu, 10, 8, 64, 953, { bytes: 16384, dispatches: 2 }) },
  { name: 'l2Normalize backward [1, 1]', run: (gpu) => runL2Backward(gpu, 1, 1, 960) },
  // rows: random, zeros (clamped), tiny (clamped, except at H = 4096, where the norm is 1.1e-12)
  { name: 'l2Normalize backward [3, 1] (H = 1)', run: (gpu) => runL2Backward(gpu, 3, 1, 961) },
  { name: 'l2Normalize backward [4, 7]', run: (gpu) => runL2Backward(gpu, 4, 7, 962) },
  { name: 'l2Normalize backward [5, 384] wg=64', run: (gpu) => runL2Backward(gpu, 5, 384, 963, { wg: 64 }) },
  { name: 'l2Normalize backward [3, 1024]', run: (gpu) => runL2Backward(gpu, 3, 1024, 964) },
  { name: 'l2Normalize backward [3, 4096] wg=256', run: (gpu) => runL2Backward(gpu, 3, 4096, 965, { wg: 256 }) },
  { name: 'l2Normalize backward [70000, 2] (rows past 65535 workgroups)', run: (gpu) => runL2Backward(gpu, 70000, 2, 966) },
  // rows of 1 KiB plus 4 B of norm: chunks of a multiple of 64 rows, so 64 + 36 under 64 KiB
  { name: 'l2Normalize backward [100, 256] chunked under a 64 KiB binding limit', run: (gpu) => runL2Backward(gpu, 100, 256, 967, { limit: { bytes: 65536, dispatches: 2 } }) },
];

// ---------------------------------------------------------------- gradient checks

const gradCases: KernelCase[] = [
  ...[
    [1, 1, 1],
    [2, 3, 5],
  ].map(
    ([B, L, H]): KernelCase => ({
      name: `gradcheck cls [${B}, ${L}, ${H}]`,
      async run(gpu) {
        const x = randu(B * L * H, 970 + B);
        const R = projection(B * H, 971 + B);
        const tR = gpu.upload(R, [B, H]), dx = nanTensor(gpu, [B, L, H]);
        clsPoolBackward(gpu, dx, tR);
        const grad = await gpu.readF32(dx);
        for (const t of [tR, dx]) t.release();
        const cls64 = ([v]: Float64Array[]) => {
          const out = new Float64Array(B * H);
          for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) out[b * H + h] = v[b * L * H + h];
          return out;
        };
        return gradChecks({ f: cls64, inputs: [{ name: 'x', value: x, grad }], R });
      },
    }),
  ),
  ...[
    { B: 1, L: 1, H: 1 },
    { B: 4, L: 4, H: 5 }, // lengths 1, 0, 4, random
  ].map(
    ({ B, L, H }): KernelCase => ({
      name: `gradcheck mean [${B}, ${L}, ${H}] padded rows`,
      async run(gpu) {
        const x = randu(B * L * H, 980 + B);
        const mask = maskFor(B, L, 981 + B);
        const R = projection(B * H, 982 + B);
        const tR = gpu.upload(R, [B, H]), tm = gpu.upload(mask, [B, L]), dx = nanTensor(gpu, [B, L, H]);
        meanPoolBackward(gpu, dx, tR, tm);
        const grad = await gpu.readF32(dx);
        for (const t of [tR, tm, dx]) t.release();
        return gradChecks({ f: ([v]) => meanPoolRef(v, mask, B, L, H), inputs: [{ name: 'x', value: x, grad }], R });
      },
    }),
  ),
  ...[
    // H = 1: out = sign(x), gradient 0; the GPU leaves rounding residue of u |dout| / |x|,
    // so the scale floor is 1 / min|x|
    { name: '[1, 1]', B: 1, H: 1, x: [0.8], scale: 1.25 },
    { name: '[3, 1] (H = 1: gradient 0)', B: 3, H: 1, x: [1.5, -0.75, 2.25], scale: 2 },
    { name: '[4, 7]', B: 4, H: 7, x: Array.from(randu(28, 990, 3)) },
    // zero row and a row of norm ~3e-14: out = x / 1e-12, dx = dout / 1e-12
    { name: '[2, 5] clamped rows (zero, norm 3e-14)', B: 2, H: 5, x: [0, 0, 0, 0, 0, ...Array.from(randu(5, 991, 3e-14))], step: 1e-21 },
  ].map(
    (c): KernelCase => ({
      name: `gradcheck l2Normalize ${c.name}`,
      async run(gpu) {
        const x = Float32Array.from(c.x);
        const R = projection(c.B * c.H, 992 + c.B);
        const tx = gpu.upload(x, [c.B, c.H]), tR = gpu.upload(R, [c.B, c.H]), out = gpu.empty([c.B, c.H]), norm = gpu.empty([c.B]);
        const dx = nanTensor(gpu, [c.B, c.H]);
        l2NormalizeForward(gpu, out, norm, tx);
        l2NormalizeBackward(gpu, dx, tR, tx, norm);
        const grad = await gpu.readF32(dx);
        for (const t of [tx, tR, out, norm, dx]) t.release();
        return gradChecks({
          f: ([v]) => l2NormalizeRef(v, c.B, c.H).out,
          inputs: [{ name: 'x', value: x, grad, step: c.step, scale: c.scale }],
          R,
        });
      },
    }),
  ),
];

export const poolingCases: KernelCase[] = [...forwardCases, ...halfCases, ...backwardCases, ...halfBackwardCases, ...gradCases];
