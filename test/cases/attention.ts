// Conformance cases for shaders/attention.wgsl: lengths that are not block multiples, one-token
// sequences, padded rows (including one with a single real key), head dims 10..128, flat and
// peaked softmax, garbage in padded keys, non-default block shapes, and a row with no real key.
// The backward runs on the same kinds of shapes (against the float64 analytic gradients), then
// gradient checks of the whole forward by central differences (test/gradcheck.ts). The f16
// forward and backward (names ending in ' f16') run on shapes of the same kinds, or, on an
// adapter without 'shader-f16', check that the launch is refused.

import type { Gpu } from '../../core/gpu/device.ts';
import { type AttentionBackwardTiles, type AttentionTiles, LSE_NO_KEYS, attentionBackward, attentionForward } from '../../core/kernels/attention.ts';
import { fixedSubgroupSize } from '../../core/gpu/adapter.ts';
import { fromHalf, roundHalf, toHalf } from '../../core/gpu/half.ts';
import { attentionBackwardRef, attentionRef, attentionRef64 } from '../../core/ref/attention.ts';
import { gradChecks, projection } from '../gradcheck.ts';
import { nanTensor } from './elementwise.ts';
import type { Check, KernelCase, Tol } from './types.ts';
import { halfOutTol, hasF16, nanHalf, readHalf, refusalCheck, uploadHalf } from './half-io.ts';
import { randu, rng } from './util.ts';

interface Shape {
  B: number;
  L: number;
  heads: number;
  d: number;
  /** Real tokens per row (a prefix); default all L. */
  lengths?: number[];
  /** Explicit mask instead of prefix lengths (holes in the middle). */
  mask?: number[];
  /** q and k drawn from U(-qk, qk): 1 gives scores of std ~0.33 (flat softmax), 6 gives std ~12
   *  (one or two keys carry almost all the weight). v is always U(-1, 1). */
  qk: number;
  /** Block shapes instead of the adapter's defaults. Subgroup tiles take the adapter's fixed
   *  subgroup size as bq; without one (SwiftShader, Chromium) the case runs the same rq/bk with
   *  plain loads and bq = 8. */
  tiles?: AttentionTiles;
  /** Lowered storage binding limit, to exercise batch chunking. */
  maxBinding?: number;
}

// Tolerances (f32 kernel vs float64 reference). Every output is a convex combination of v values
// in [-1, 1], so its error is about (score error) + (exp2/divide rounding):
// - flat (qk = 1): scores are O(1) and their f32 error a few ulp (~1e-7). Measured on llvmpipe:
//   out <= 1.5e-7, lse <= 9.5e-7 (lse ~ log(L) ~ 5). atol 2e-6 for out (13x) and 2e-6 + 1e-6 *
//   |lse| for lse (7x) leave room for other drivers' exp2/log2 (WGSL allows 3 + 2|x| ulp) and
//   FMA contraction.
// - peaked (qk = 6): scores reach ~60 (~90 in base 2 after the log2(e) fold into q), so a few
//   roundings of that size give score errors of ~60 * 1e-7 = 6e-6, which move the dominant
//   probabilities by the same relative amount. Measured: out <= 3.1e-6, lse <= 7.6e-6 (|lse| up
//   to ~60, where one f32 ulp is 3.8e-6). atol 2e-5 for out (6x), 1e-5 + 1e-6 * |lse| for lse.
// A wrong mask, a missed block, a wrong scale or head offset moves outputs by 1e-2 .. 1; a leak
// of the padded keys' garbage (below) by ~1e3.
function tolFor(qk: number): { out: Tol; lse: Tol } {
  return qk <= 1 ? { out: { atol: 2e-6 }, lse: { atol: 2e-6, rtol: 1e-6 } } : { out: { atol: 2e-5 }, lse: { atol: 1e-5, rtol: 1e-6 } };
}

function makeInputs(s: Shape, seed: number): { qkv: Float32Array; mask: Uint32Array } {
  const { B, L, heads, d } = s;
  const H = heads * d;
  const mask = new Uint32Array(B * L);
  if (s.mask) mask.set(s.mask);
  else for (let b = 0; b < B; b++) for (let i = 0; i < L; i++) mask[b * L + i] = i < (s.lengths?.[b] ?? L) ? 1 : 0;
  const qkv = randu(B * L * 3 * H, seed);
  const r = rng(seed + 7);
  for (let t = 0; t < B * L; t++) {
    for (let c = 0; c < 2 * H; c++) qkv[t * 3 * H + c] *= s.qk;
    // Padded keys and values hold large garbage: any leak into a real row shows up as an O(1e3)
    // error. (Padded q rows stay ordinary: HF computes those rows too and we compare them.)
    if (!mask[t]) for (let c = H; c < 3 * H; c++) qkv[t * 3 * H + c] = (r() * 2 - 1) * 1e3;
  }
  return { qkv, mask };
}

/** Subgroup tiles take the adapter's fixed subgroup size as bq; without one, plain loads, bq 8. */
function resolveTiles<T extends { bq: number; subgroup?: boolean }>(gpu: Gpu, t: T | undefined): T | undefined {
  if (!t?.subgroup) return t;
  const sg = fixedSubgroupSize(gpu);
  return sg ? { ...t, bq: sg } : { ...t, bq: 8, subgroup: false };
}

/** `forward B=.. L=.. heads=.. d=.. <mask> flat|peaked [tiles] [maxBinding]`. */
function forwardName(s: Shape): string {
  const desc = s.mask ? `mask=[${s.mask.join('')}]` : s.lengths ? `lengths=[${s.lengths.join(',')}]` : 'full';
  const tiles = s.tiles ? ` ${s.tiles.subgroup ? 'subgroup' : `bq=${s.tiles.bq}`} rq=${s.tiles.rq} bk=${s.tiles.bk}` : '';
  const chunked = s.maxBinding ? ` maxBinding=${s.maxBinding}` : '';
  return `forward B=${s.B} L=${s.L} heads=${s.heads} d=${s.d} ${desc} ${s.qk <= 1 ? 'flat' : 'peaked'}${tiles}${chunked}`;
}

function attentionCase(s: Shape, seed: number): KernelCase {
  return {
    name: forwardName(s),
    async run(gpu) {
      const { B, L, heads, d } = s;
      const tiles = resolveTiles(gpu, s.tiles);
      const H = heads * d;
      const { qkv, mask } = makeInputs(s, seed);
      const tq = gpu.upload(qkv, [B, L, 3 * H]);
      const tm = gpu.upload(mask, [B, L]);
      const out = gpu.empty([B, L, H]);
      const lse = gpu.empty([B, heads, L]);
      attentionForward(gpu, out, lse, tq, tm, heads, { tiles, maxBinding: s.maxBinding });
      const actual = await gpu.readF32(out);
      const actualLse = await gpu.readF32(lse);
      for (const t of [tq, tm, out, lse]) t.release();
      const ref = attentionRef(qkv, mask, B, L, heads, d);
      const tol = tolFor(s.qk);
      const checks: Check[] = [
        { name: 'out', actual, expected: ref.out, tol: tol.out },
        { name: 'lse', actual: actualLse, expected: ref.lse, tol: tol.lse },
      ];
      return checks;
    },
  };
}

const forwardCases: KernelCase[] = [
  attentionCase({ B: 1, L: 1, heads: 1, d: 16, qk: 1 }, 1),
  attentionCase({ B: 2, L: 5, heads: 2, d: 24, lengths: [5, 3], qk: 1 }, 2),
  attentionCase({ B: 3, L: 13, heads: 4, d: 16, lengths: [13, 9, 1], qk: 1 }, 3),
  attentionCase({ B: 3, L: 13, heads: 4, d: 16, lengths: [13, 9, 1], qk: 6 }, 4),
  attentionCase({ B: 3, L: 5, heads: 2, d: 10, lengths: [5, 4, 2], qk: 1 }, 5), // d % 4 != 0
  attentionCase({ B: 1, L: 33, heads: 3, d: 32, qk: 6 }, 6),
  attentionCase({ B: 2, L: 33, heads: 1, d: 64, lengths: [33, 17], qk: 1 }, 7),
  attentionCase({ B: 1, L: 130, heads: 4, d: 32, qk: 1 }, 8),
  attentionCase({ B: 2, L: 130, heads: 2, d: 64, lengths: [130, 77], qk: 6 }, 9),
  attentionCase({ B: 3, L: 130, heads: 3, d: 24, lengths: [130, 64, 1], qk: 1 }, 10),
  attentionCase({ B: 1, L: 40, heads: 1, d: 128, qk: 6 }, 11),
  attentionCase({ B: 1, L: 9, heads: 2, d: 16, mask: [1, 0, 1, 1, 0, 0, 1, 0, 1], qk: 1 }, 12),
  // Block shapes other than the adapter's defaults, so every variant is checked on every
  // adapter: one row per invocation with per-key updates (bk = 1), one block holding every key,
  // odd rq/bk that divide nothing, and the subgroup variant (skipped without subgroups).
  attentionCase({ B: 2, L: 33, heads: 2, d: 32, lengths: [33, 20], qk: 6, tiles: { bq: 8, rq: 1, bk: 1 } }, 13),
  attentionCase({ B: 2, L: 130, heads: 2, d: 16, lengths: [130, 3], qk: 6, tiles: { bq: 64, rq: 1, bk: 32 } }, 14),
  attentionCase({ B: 2, L: 130, heads: 1, d: 24, lengths: [100, 130], qk: 1, tiles: { bq: 16, rq: 3, bk: 7 } }, 15),
  attentionCase({ B: 3, L: 13, heads: 2, d: 10, lengths: [13, 9, 1], qk: 6, tiles: { bq: 4, rq: 5, bk: 3 } }, 16),
  attentionCase({ B: 2, L: 130, heads: 2, d: 64, lengths: [130, 77], qk: 6, tiles: { bq: 0, rq: 4, bk: 8, subgroup: true } }, 17),
  attentionCase({ B: 3, L: 33, heads: 3, d: 24, lengths: [33, 9, 1], qk: 1, tiles: { bq: 0, rq: 3, bk: 5, subgroup: true } }, 18),
  attentionCase({ B: 2, L: 13, heads: 2, d: 10, lengths: [13, 5], qk: 1, tiles: { bq: 0, rq: 2, bk: 4, subgroup: true } }, 19),
  attentionCase({ B: 1, L: 40, heads: 1, d: 128, qk: 6, tiles: { bq: 0, rq: 2, bk: 8, subgroup: true } }, 20),
  // Batch split into chunks of whole rows (qkv rows of 2880 bytes: 4-row chunks keep every view
  // 256-byte aligned, so B = 9 runs as 4 + 4 + 1); mask and lse are offset by b0 in the kernel.
  attentionCase({ B: 9, L: 5, heads: 2, d: 24, lengths: [5, 4, 3, 2, 1, 5, 4, 3, 2], qk: 1, maxBinding: 4 * 2880 }, 21),
  {
    // Defined behaviour for a row with no real key (cannot happen with a [CLS] token):
    // out = 0 exactly and lse = LSE_NO_KEYS; row 0 is ordinary.
    name: 'forward B=2 L=7 heads=2 d=16 lengths=[7,0]: empty row gives out 0, lse LSE_NO_KEYS',
    async run(gpu) {
      const s: Shape = { B: 2, L: 7, heads: 2, d: 16, lengths: [7, 0], qk: 1 };
      const { qkv, mask } = makeInputs(s, 22);
      const tq = gpu.upload(qkv, [2, 7, 96]);
      const tm = gpu.upload(mask, [2, 7]);
      const out = gpu.empty([2, 7, 32]);
      const lse = gpu.empty([2, 2, 7]);
      attentionForward(gpu, out, lse, tq, tm, 2);
      const actual = await gpu.readF32(out);
      const actualLse = await gpu.readF32(lse);
      for (const t of [tq, tm, out, lse]) t.release();
      const ref = attentionRef(qkv, mask, 2, 7, 2, 16);
      return [
        { name: 'out (row 0)', actual: actual.subarray(0, 7 * 32), expected: ref.out.subarray(0, 7 * 32), tol: tolFor(1).out },
        { name: 'lse (row 0)', actual: actualLse.subarray(0, 14), expected: ref.lse.subarray(0, 14), tol: tolFor(1).lse },
        // exact: the kernel writes these constants, nothing is computed
        { name: 'out (empty row) == 0', actual: actual.subarray(7 * 32), expected: new Float32Array(7 * 32), tol: { atol: 0 } },
        { name: 'lse (empty row) == LSE_NO_KEYS', actual: actualLse.subarray(14), expected: new Float32Array(14).fill(LSE_NO_KEYS), tol: { atol: 0 } },
      ];
    },
  },
];

// ---------------------------------------------------------------- backward
//
// Against attentionBackwardRef (float64 from qkv: the GPU's f32 out and lse are not reused, so
// their errors count against the kernel). The gradients cancel (every row of dS sums to 0), so
// the error scales with the magnitudes of the terms, not with the result: the reference also
// returns, per element, the sum of |terms| (M below; e.g. dv_j = sum_i p_ij dout_i has
// M = sum_i p_ij |dout_i|), and each part (dq, dk, dv) is checked with atol = eps * max M.
// eps = relative error of one term (e_p) + rounding of the sums over n = max(L, d) terms:
// - p = exp2(q.k * scale log2(e) - lse log2(e)) carries the rounding of the f32 score and lse
//   (an ulp or two of their size, base 2) plus the forward's own lse error. flat (qk = 1):
//   scores O(1), lse ~ log(L) <= 5 (ulp 4.8e-7), forward lse error <= 9.5e-7 measured: p is off
//   by ~1.5e-6 relative, e_p = 2e-6. peaked (qk = 6): base-2 scores and lse up to ~90 (ulp
//   7.6e-6) and a forward lse error <= 7.6e-6: ~1.8e-5, e_p = 2e-5.
// - dP, delta (d terms, delta from the forward's f32 out) and the dq/dk/dv sums over L terms:
//   4 sqrt(n) u of the sum of |terms| (u = 2^-24), 2.7e-6 at n = 130.
// Measured on llvmpipe, maxdiff / max M over all cases: flat <= 1.9e-7 (eps >= 2.8e-6, 15x),
// peaked <= 2.8e-6 (eps >= 2.1e-5, 7x). A dropped term (delta, the scale, a padded query row)
// or a wrong mask moves gradients by 1e-2 .. 1 of max M (the gradients are >= 1.5% of it
// here); a padded key leaking its 1e3 garbage by far more.
function bwdEps(qk: number, n: number): number {
  return (qk <= 1 ? 2e-6 : 2e-5) + 4 * Math.sqrt(n) * 2 ** -24;
}

interface BwdShape extends Shape {
  /** Backward block shapes; subgroup tiles resolved as resolveTiles() says. */
  bwdTiles?: AttentionBackwardTiles;
  /** Expected backward dispatch count (chunked cases: two per chunk). */
  dispatches?: number;
}

/** Part k (0 = q, 1 = k, 2 = v) of every token of a [tokens, 3H] array, as [tokens, H]. */
function part(a: ArrayLike<number>, tokens: number, H: number, k: number): Float64Array {
  const r = new Float64Array(tokens * H);
  for (let t = 0; t < tokens; t++) for (let c = 0; c < H; c++) r[t * H + c] = a[t * 3 * H + k * H + c];
  return r;
}

/** [tokens, 3H] from three [tokens, H] parts. */
function pack(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, tokens: number, H: number): Float64Array {
  const r = new Float64Array(tokens * 3 * H);
  for (let t = 0; t < tokens; t++) {
    for (let c = 0; c < H; c++) {
      r[t * 3 * H + c] = q[t * H + c];
      r[t * 3 * H + H + c] = k[t * H + c];
      r[t * 3 * H + 2 * H + c] = v[t * H + c];
    }
  }
  return r;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

function shapeName(s: Shape): string {
  const desc = s.mask ? `mask=[${s.mask.join('')}]` : s.lengths ? `lengths=[${s.lengths.join(',')}]` : 'full';
  return `B=${s.B} L=${s.L} heads=${s.heads} d=${s.d} ${desc} ${s.qk <= 1 ? 'flat' : 'peaked'}`;
}

/** GPU forward (default tiles) then backward; dqkv starts as NaN so every element must be written. */
async function gpuBackward(gpu: Gpu, s: BwdShape, qkv: Float32Array, mask: Uint32Array, dout: Float32Array): Promise<{ dqkv: Float32Array; dispatches: number }> {
  const { B, L, heads, d } = s;
  const H = heads * d;
  const tq = gpu.upload(qkv, [B, L, 3 * H]);
  const tm = gpu.upload(mask, [B, L]);
  const tdo = gpu.upload(dout, [B, L, H]);
  const out = gpu.empty([B, L, H]);
  const lse = gpu.empty([B, heads, L]);
  attentionForward(gpu, out, lse, tq, tm, heads);
  const dq = nanTensor(gpu, [B, L, 3 * H]);
  const before = gpu.stats.dispatches;
  attentionBackward(gpu, dq, tdo, out, lse, tq, tm, heads, { tiles: resolveTiles(gpu, s.bwdTiles), maxBinding: s.maxBinding });
  const dispatches = gpu.stats.dispatches - before;
  const dqkv = await gpu.readF32(dq);
  for (const t of [tq, tm, tdo, out, lse, dq]) t.release();
  return { dqkv, dispatches };
}

function backwardCase(s: BwdShape, seed: number): KernelCase {
  const t = s.bwdTiles;
  const tiles = t ? ` ${t.subgroup ? 'subgroup' : `bq=${t.bq}`} rq=${t.rq} rk=${t.rk}` : '';
  const chunked = s.maxBinding ? ` maxBinding=${s.maxBinding}` : '';
  return {
    name: `backward ${shapeName(s)}${tiles}${chunked}`,
    async run(gpu) {
      const { B, L, heads, d } = s;
      const H = heads * d;
      const N = B * L;
      const { qkv, mask } = makeInputs(s, seed);
      const dout = randu(N * H, seed + 11);
      const first = await gpuBackward(gpu, s, qkv, mask, dout);
      const second = await gpuBackward(gpu, s, qkv, mask, dout);
      const ref = attentionBackwardRef(dout, qkv, mask, B, L, heads, d);
      const eps = bwdEps(s.qk, Math.max(L, d));
      const checks: Check[] = [];
      ['dq', 'dk', 'dv'].forEach((name, k) => {
        const M = maxAbs(part(ref.magnitude, N, H, k));
        const actual = part(first.dqkv, N, H, k);
        const expected = part(ref.dqkv, N, H, k);
        checks.push({ name: `${name} (atol ${eps.toExponential(1)} x max M ${M.toPrecision(3)})`, actual, expected, tol: { atol: eps * M } });
      });
      // exact: padded keys' dk and dv are written as 0, never computed
      const padded: number[] = [];
      for (let tok = 0; tok < N; tok++) if (!mask[tok]) for (let c = H; c < 3 * H; c++) padded.push(first.dqkv[tok * 3 * H + c]);
      if (padded.length) checks.push({ name: 'dk, dv of padded keys == 0', actual: padded, expected: new Float32Array(padded.length), tol: { atol: 0 } });
      // exact: no atomics, every output has one writer and a fixed summation order
      checks.push({ name: 'dqkv run to run', actual: second.dqkv, expected: first.dqkv, tol: { atol: 0 } });
      if (s.dispatches) checks.push({ name: 'dispatches', actual: [first.dispatches], expected: [s.dispatches], tol: { atol: 0 } });
      return checks;
    },
  };
}

const backwardCases: KernelCase[] = [
  backwardCase({ B: 1, L: 1, heads: 1, d: 16, qk: 1 }, 31),
  backwardCase({ B: 2, L: 5, heads: 2, d: 8, lengths: [5, 3], qk: 1 }, 32),
  backwardCase({ B: 3, L: 13, heads: 3, d: 16, lengths: [13, 9, 1], qk: 1 }, 33),
  backwardCase({ B: 3, L: 13, heads: 3, d: 16, lengths: [13, 9, 1], qk: 6 }, 34),
  backwardCase({ B: 3, L: 5, heads: 2, d: 10, lengths: [5, 4, 2], qk: 1 }, 35), // d % 4 != 0
  backwardCase({ B: 1, L: 33, heads: 3, d: 32, qk: 6 }, 36),
  backwardCase({ B: 2, L: 33, heads: 1, d: 64, lengths: [33, 17], qk: 1 }, 37),
  backwardCase({ B: 2, L: 130, heads: 2, d: 64, lengths: [130, 77], qk: 6 }, 38),
  backwardCase({ B: 3, L: 130, heads: 3, d: 24, lengths: [130, 64, 1], qk: 1 }, 39),
  backwardCase({ B: 1, L: 40, heads: 1, d: 128, qk: 6 }, 40),
  backwardCase({ B: 1, L: 9, heads: 2, d: 16, mask: [1, 0, 1, 1, 0, 0, 1, 0, 1], qk: 1 }, 41),
  // Rows with no real key (lse = LSE_NO_KEYS): zero gradient, no NaN, and no effect on row 0.
  backwardCase({ B: 2, L: 7, heads: 2, d: 16, lengths: [7, 0], qk: 1 }, 42),
  backwardCase({ B: 3, L: 6, heads: 1, d: 8, mask: [0, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0], qk: 6 }, 43),
  // Block shapes other than the adapter's defaults, on every adapter: one row per invocation,
  // the GPU default (64 lanes), odd rq/rk that divide nothing, rows of 8 and 2, and the subgroup
  // variant (plain loads without subgroups).
  backwardCase({ B: 2, L: 33, heads: 2, d: 32, lengths: [33, 20], qk: 6, bwdTiles: { bq: 8, rq: 1, rk: 1 } }, 44),
  backwardCase({ B: 2, L: 130, heads: 2, d: 16, lengths: [130, 3], qk: 6, bwdTiles: { bq: 64, rq: 1, rk: 1 } }, 45),
  backwardCase({ B: 2, L: 130, heads: 1, d: 24, lengths: [100, 130], qk: 1, bwdTiles: { bq: 16, rq: 3, rk: 5 } }, 46),
  backwardCase({ B: 3, L: 13, heads: 2, d: 10, lengths: [13, 9, 1], qk: 6, bwdTiles: { bq: 4, rq: 5, rk: 3 } }, 47),
  backwardCase({ B: 2, L: 13, heads: 3, d: 8, lengths: [13, 6], qk: 1, bwdTiles: { bq: 8, rq: 8, rk: 4 } }, 48),
  // Two query rows per invocation, two vec4s per head row: Mesa's OpenGL ES compiler gave the
  // first row the second row's dout (see backward_dq's staging); the smallest such shape.
  backwardCase({ B: 1, L: 2, heads: 1, d: 8, qk: 1, bwdTiles: { bq: 1, rq: 2, rk: 1 } }, 55),
  backwardCase({ B: 2, L: 130, heads: 2, d: 64, lengths: [130, 77], qk: 1, bwdTiles: { bq: 8, rq: 2, rk: 2 } }, 49),
  backwardCase({ B: 2, L: 130, heads: 2, d: 64, lengths: [130, 77], qk: 6, bwdTiles: { bq: 0, rq: 2, rk: 2, subgroup: true } }, 50),
  backwardCase({ B: 3, L: 33, heads: 3, d: 24, lengths: [33, 9, 1], qk: 1, bwdTiles: { bq: 0, rq: 3, rk: 3, subgroup: true } }, 51),
  backwardCase({ B: 2, L: 13, heads: 2, d: 10, lengths: [13, 5], qk: 1, bwdTiles: { bq: 0, rq: 2, rk: 4, subgroup: true } }, 52),
  backwardCase({ B: 1, L: 40, heads: 1, d: 128, qk: 6, bwdTiles: { bq: 0, rq: 1, rk: 1, subgroup: true } }, 53),
  // Batch chunks as in the forward case: 4 + 4 + 1 rows, two dispatches each.
  backwardCase({ B: 9, L: 5, heads: 2, d: 24, lengths: [5, 4, 3, 2, 1, 5, 4, 3, 2], qk: 1, maxBinding: 4 * 2880, dispatches: 6 }, 54),
];

// ---------------------------------------------------------------- gradient checks
//
// The GPU forward + backward against central differences of the float64 forward
// (test/gradcheck.ts: rtol 1e-5 of each input's largest gradient, steps 1e-6). q, k and v are
// separate inputs so each gets its own scale. Padded keys hold 1e3 garbage: their numeric
// gradient is exactly 0 (they never enter the forward), as is the whole gradient of a row with
// no real key. L = 1 has dq = dk = 0 exactly (softmax over one key is 1 whatever the score);
// the GPU's is rounding (~1e-7), so that case floors the scale at 1 (atol 1e-5).

interface GradShape extends Shape {
  floor?: number;
}

function gradCase(s: GradShape, seed: number): KernelCase {
  return {
    name: `gradcheck ${shapeName(s)}`,
    async run(gpu) {
      const { B, L, heads, d } = s;
      const H = heads * d;
      const N = B * L;
      const { qkv, mask } = makeInputs(s, seed);
      const R = projection(N * H, seed + 13);
      const { dqkv } = await gpuBackward(gpu, s, qkv, mask, R);
      const inputs = ['q', 'k', 'v'].map((name, k) => ({ name, value: part(qkv, N, H, k), grad: part(dqkv, N, H, k), scale: s.floor }));
      return gradChecks({
        f: ([q, k, v]) => attentionRef64(pack(q, k, v, N, H), mask, B, L, heads, d).out,
        inputs,
        R,
      });
    },
  };
}

const gradCases: KernelCase[] = [
  gradCase({ B: 1, L: 1, heads: 1, d: 8, qk: 1, floor: 1 }, 61),
  gradCase({ B: 2, L: 5, heads: 2, d: 8, lengths: [5, 3], qk: 1 }, 62),
  gradCase({ B: 2, L: 6, heads: 1, d: 16, mask: [1, 0, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0], qk: 3 }, 63),
  gradCase({ B: 1, L: 13, heads: 3, d: 8, qk: 3 }, 64),
  gradCase({ B: 2, L: 4, heads: 2, d: 10, lengths: [4, 1], qk: 1 }, 65),
];

// ---------------------------------------------------------------- f16 forward
//
// qkv and out in f16, lse and all arithmetic in f32. The reference is attentionRef64 on the
// f16-rounded inputs (roundHalf: exactly what the kernel reads), so the kernel's error is
// (a) the f32 arithmetic on those inputs: the same computation as the f32 variant on inputs
// that happen to be f16 values, so tolFor(qk) covers it exactly as above, for out and lse;
// (b) the one rounding of each output to f16. Round-to-nearest would be u = 2^-11 of |out|,
// but WGSL lets an f32 -> f16 conversion return either neighbour of an inexact value, so the
// bound is one f16 ulp, 2u = 2^-10 of |out| (f16 subnormals, |out| < 6.1e-5, have an absolute
// spacing of 2^-24 = 6e-8, inside the atol of (a)). No intermediate value is stored in f16.
// Hence out: atol from (a), rtol 2^-10; lse: (a) only. The inputs' own rounding (up to 2^-11 of
// q, k and v) is not an error of the kernel: against a reference on the unrounded f32 inputs
// the peaked cases would differ by ~1e-2. A wrong mask, scale or head offset, or a leak of the
// padded keys' 1e3 garbage moves outputs by 1e-2 .. 1e3, far outside this.
const F16_OUT_RTOL = 2 ** -10;

function f16Case(s: Shape, seed: number): KernelCase {
  return {
    name: `${forwardName(s)} f16`,
    async run(gpu) {
      const { B, L, heads, d } = s;
      const tiles = resolveTiles(gpu, s.tiles);
      const H = heads * d;
      const { qkv, mask } = makeInputs(s, seed);
      const tq = gpu.upload(toHalf(qkv), [B, L, 3 * H], 'f16');
      const tm = gpu.upload(mask, [B, L]);
      const out = gpu.empty([B, L, H], 'f16');
      const lse = gpu.empty([B, heads, L]);
      const launch = () => attentionForward(gpu, out, lse, tq, tm, heads, { tiles, maxBinding: s.maxBinding });
      if (!gpu.features.has('shader-f16')) {
        const checks = refusalCheck(launch);
        for (const t of [tq, tm, out, lse]) t.release();
        return checks;
      }
      launch();
      const actual = fromHalf((await gpu.read(out)) as Uint16Array);
      const actualLse = await gpu.readF32(lse);
      for (const t of [tq, tm, out, lse]) t.release();
      const ref = attentionRef64(roundHalf(qkv), mask, B, L, heads, d);
      const tol = tolFor(s.qk);
      return [
        { name: 'out', actual, expected: ref.out, tol: { ...tol.out, rtol: F16_OUT_RTOL } },
        { name: 'lse', actual: actualLse, expected: ref.lse, tol: tol.lse },
      ];
    },
  };
}

// Every tile variant the launcher may pick (the CPU defaults, the real-GPU default 64/1/16, one row
// per invocation, other 64-wide blocks, odd rq/bk, the subgroup variant), head dims not multiples
// of 4 (10, and 5 with an odd number of f16 elements in every tensor, so bindings end on half a
// word), length-1 rows, holes in the mask, a row with no real key (out 0, lse LSE_NO_KEYS), and
// batch chunks (f16 qkv rows of 1440 bytes: 8-row chunks keep views 256-byte aligned, so B = 9
// runs as 8 + 1).
const f16Cases: KernelCase[] = [
  f16Case({ B: 1, L: 1, heads: 1, d: 16, qk: 1 }, 71),
  f16Case({ B: 3, L: 13, heads: 4, d: 16, lengths: [13, 9, 1], qk: 6 }, 72),
  f16Case({ B: 3, L: 5, heads: 2, d: 10, lengths: [5, 4, 2], qk: 1 }, 73),
  f16Case({ B: 3, L: 7, heads: 3, d: 5, lengths: [7, 1, 4], qk: 1 }, 74),
  f16Case({ B: 2, L: 130, heads: 2, d: 64, lengths: [130, 77], qk: 6 }, 75),
  f16Case({ B: 1, L: 40, heads: 1, d: 128, qk: 6 }, 76),
  f16Case({ B: 1, L: 9, heads: 2, d: 16, mask: [1, 0, 1, 1, 0, 0, 1, 0, 1], qk: 1 }, 77),
  f16Case({ B: 2, L: 7, heads: 2, d: 16, lengths: [7, 0], qk: 1 }, 78),
  f16Case({ B: 2, L: 33, heads: 2, d: 32, lengths: [33, 20], qk: 6, tiles: { bq: 8, rq: 1, bk: 1 } }, 79),
  f16Case({ B: 2, L: 130, heads: 2, d: 16, lengths: [130, 3], qk: 6, tiles: { bq: 64, rq: 1, bk: 32 } }, 80),
  f16Case({ B: 2, L: 77, heads: 3, d: 32, lengths: [77, 1], qk: 1, tiles: { bq: 64, rq: 1, bk: 16 } }, 85), // real GPUs' default
  f16Case({ B: 3, L: 13, heads: 2, d: 10, lengths: [13, 9, 1], qk: 6, tiles: { bq: 4, rq: 5, bk: 3 } }, 81),
  f16Case({ B: 2, L: 130, heads: 2, d: 64, lengths: [130, 77], qk: 6, tiles: { bq: 0, rq: 4, bk: 8, subgroup: true } }, 82),
  f16Case({ B: 2, L: 13, heads: 2, d: 10, lengths: [13, 5], qk: 1, tiles: { bq: 0, rq: 2, bk: 4, subgroup: true } }, 83),
  f16Case({ B: 9, L: 5, heads: 2, d: 24, lengths: [5, 4, 3, 2, 1, 5, 4, 3, 2], qk: 1, maxBinding: 8 * 1440 }, 84),
];

// ---------------------------------------------------------------- f16 backward
//
// qkv, dout, out (from the f16 forward) and dqkv in f16; lse, delta and all arithmetic in f32.
// The reference is attentionBackwardRef on the f16-rounded qkv and dout (what the kernels read),
// checked per part against its term magnitudes M as the f32 backward is. Rounding model:
// (a) the f32 arithmetic on those inputs, including the f16 forward's f32 lse: the f32
//     backward's computation on inputs that happen to be f16 values, eps = bwdEps(qk, n);
// (b) one intermediate f16 store, out (the reference recomputes it in float64): each element
//     off by up to one f16 ulp, 2^-10 of |out_c| (either neighbour, see half-io.ts), so delta
//     by 2^-10 sum_c |dout_c out_c| and ds_ij = p_ij (dP_ij - delta_i) by 2^-10 of its own
//     term magnitude; dq and dk (sums of scale ds k and scale ds q) move by at most 2^-10 M.
//     dv = p^T dout does not use delta: no such term;
// (c) the one rounding of each gradient to f16: halfOutTol, rtol 2^-10 of |result| and the
//     subnormal spacing 2^-24 absolute (gradients below 6.1e-5 are f16 subnormals).
// So dq, dk: halfOutTol(atol (eps + 2^-10) M); dv: halfOutTol(atol eps M). The tiny-dout case
// (|dout| <= 1e-4, much of it subnormal in f16, as unscaled loss gradients are) gets results
// partly in the subnormal range, where (c)'s absolute term dominates; the large one (1e3, as
// after loss scaling) checks nothing overflows on the way. A dropped term, a wrong scale or
// mask moves gradients by 1e-2 .. 1 of M, a leak of the padded keys' 1e3 garbage by far more.
const F16_OUT_ROUND = 2 ** -10;

interface F16BwdShape extends BwdShape {
  /** dout drawn from U(-doutScale, doutScale); default 1. */
  doutScale?: number;
}

function f16BackwardCase(s: F16BwdShape, seed: number): KernelCase {
  const t = s.bwdTiles;
  const tiles = t ? ` ${t.subgroup ? 'subgroup' : `bq=${t.bq}`} rq=${t.rq} rk=${t.rk}` : '';
  const extra = `${s.maxBinding ? ` maxBinding=${s.maxBinding}` : ''}${s.doutScale ? ` dout=${s.doutScale}` : ''}`;
  return {
    name: `backward ${shapeName(s)}${tiles}${extra} f16`,
    async run(gpu) {
      const { B, L, heads, d } = s;
      const H = heads * d;
      const N = B * L;
      const { qkv, mask } = makeInputs(s, seed);
      const dout = randu(N * H, seed + 11).map((x) => x * (s.doutScale ?? 1));
      const tq = uploadHalf(gpu, qkv, [B, L, 3 * H]);
      const tdo = uploadHalf(gpu, dout, [B, L, H]);
      const tm = gpu.upload(mask, [B, L]);
      const out = gpu.empty([B, L, H], 'f16');
      const lse = gpu.empty([B, heads, L]);
      const dq = nanHalf(gpu, [B, L, 3 * H]);
      const all = [tq.t, tdo.t, tm, out, lse, dq];
      const backward = () => attentionBackward(gpu, dq, tdo.t, out, lse, tq.t, tm, heads, { tiles: resolveTiles(gpu, s.bwdTiles), maxBinding: s.maxBinding });
      if (!hasF16(gpu)) return refusalCheck(backward, all);
      attentionForward(gpu, out, lse, tq.t, tm, heads);
      const before = gpu.stats.dispatches;
      backward();
      const dispatches = gpu.stats.dispatches - before;
      const dqkv = await readHalf(gpu, dq);
      for (const x of all) x.release();
      const ref = attentionBackwardRef(tdo.v, tq.v, mask, B, L, heads, d);
      const eps = bwdEps(s.qk, Math.max(L, d));
      const checks: Check[] = [];
      ['dq', 'dk', 'dv'].forEach((name, k) => {
        const M = maxAbs(part(ref.magnitude, N, H, k));
        const e = eps + (k < 2 ? F16_OUT_ROUND : 0);
        const tol = halfOutTol({ atol: e * M });
        checks.push({ name: `${name} (atol ${e.toExponential(1)} x max M ${M.toPrecision(3)}, rtol 2^-10)`, actual: part(dqkv, N, H, k), expected: part(ref.dqkv, N, H, k), tol });
      });
      // exact: padded keys' dk and dv are written as 0, never computed
      const padded: number[] = [];
      for (let tok = 0; tok < N; tok++) if (!mask[tok]) for (let c = H; c < 3 * H; c++) padded.push(dqkv[tok * 3 * H + c]);
      if (padded.length) checks.push({ name: 'dk, dv of padded keys == 0', actual: padded, expected: new Float32Array(padded.length), tol: { atol: 0 } });
      if (s.dispatches) checks.push({ name: 'dispatches', actual: [dispatches], expected: [s.dispatches], tol: { atol: 0 } });
      return checks;
    },
  };
}

// The kinds of shapes of the f32 backward and the f16 forward: length-1 sequences and rows,
// several heads, head dims 5..128 (5: an odd number of f16 elements in every tensor), holes in
// the mask, a row with no real key, every tile variant the launcher may pick (CPU defaults, the
// real-GPU 64/1/1, one row per invocation, odd rq/rk, the subgroup variant), batch chunks
// (8 + 1 rows: f16 qkv rows of 1440 bytes, as in the f16 forward), tiny and large dout.
const f16BackwardCases: KernelCase[] = [
  f16BackwardCase({ B: 1, L: 1, heads: 1, d: 16, qk: 1 }, 91),
  f16BackwardCase({ B: 3, L: 13, heads: 3, d: 16, lengths: [13, 9, 1], qk: 6 }, 92),
  f16BackwardCase({ B: 3, L: 5, heads: 2, d: 10, lengths: [5, 4, 2], qk: 1 }, 93),
  f16BackwardCase({ B: 3, L: 7, heads: 3, d: 5, lengths: [7, 1, 4], qk: 1 }, 94),
  f16BackwardCase({ B: 2, L: 130, heads: 2, d: 64, lengths: [130, 77], qk: 6 }, 95),
  f16BackwardCase({ B: 1, L: 40, heads: 1, d: 128, qk: 6 }, 96),
  f16BackwardCase({ B: 1, L: 9, heads: 2, d: 16, mask: [1, 0, 1, 1, 0, 0, 1, 0, 1], qk: 1 }, 97),
  f16BackwardCase({ B: 2, L: 7, heads: 2, d: 16, lengths: [7, 0], qk: 1 }, 98),
  f16BackwardCase({ B: 2, L: 33, heads: 2, d: 32, lengths: [33, 20], qk: 6, bwdTiles: { bq: 8, rq: 1, rk: 1 } }, 99),
  f16BackwardCase({ B: 2, L: 77, heads: 3, d: 32, lengths: [77, 1], qk: 1, bwdTiles: { bq: 64, rq: 1, rk: 1 } }, 100), // real GPUs' default
  f16BackwardCase({ B: 3, L: 13, heads: 2, d: 10, lengths: [13, 9, 1], qk: 6, bwdTiles: { bq: 4, rq: 5, rk: 3 } }, 101),
  f16BackwardCase({ B: 2, L: 13, heads: 2, d: 10, lengths: [13, 5], qk: 1, bwdTiles: { bq: 0, rq: 2, rk: 4, subgroup: true } }, 102),
  f16BackwardCase({ B: 3, L: 33, heads: 3, d: 24, lengths: [33, 9, 1], qk: 1, bwdTiles: { bq: 0, rq: 3, rk: 3, subgroup: true } }, 103),
  f16BackwardCase({ B: 9, L: 5, heads: 2, d: 24, lengths: [5, 4, 3, 2, 1, 5, 4, 3, 2], qk: 1, maxBinding: 8 * 1440, dispatches: 4 }, 104),
  f16BackwardCase({ B: 2, L: 33, heads: 2, d: 32, lengths: [33, 17], qk: 1, doutScale: 1e-4 }, 105),
  f16BackwardCase({ B: 2, L: 33, heads: 2, d: 32, lengths: [33, 17], qk: 6, doutScale: 1e3 }, 106),
];

export const attentionCases: KernelCase[] = [...forwardCases, ...backwardCases, ...gradCases, ...f16Cases, ...f16BackwardCases];
