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

import type { Gpu } from '../../core/gpu/device.ts';
import { rowReduceWg } from '../../core/kernels/elementwise.ts';
import { clsPoolForward, l2NormalizeForward, meanPoolForward } from '../../core/kernels/pooling.ts';
import { clsPoolRef, l2NormalizeRef, meanPoolRef } from '../../core/ref/pooling.ts';
import { nanTensor, withBindingLimit } from './elementwise.ts';
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

export const poolingCases: KernelCase[] = [
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
