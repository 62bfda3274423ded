// Conformance cases for shaders/attention.wgsl: lengths that are not block multiples, one-token
// sequences, padded rows (including one with a single real key), head dims 10..128, flat and
// peaked softmax, garbage in padded keys, non-default block shapes, and a row with no real key.

import { type AttentionTiles, LSE_NO_KEYS, attentionForward } from '../../core/kernels/attention.ts';
import { fixedSubgroupSize } from '../../core/kernels/matmul.ts';
import { attentionRef } from '../../core/ref/attention.ts';
import type { Check, KernelCase, Tol } from './types.ts';
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

function attentionCase(s: Shape, seed: number): KernelCase {
  const desc = s.mask ? `mask=[${s.mask.join('')}]` : s.lengths ? `lengths=[${s.lengths.join(',')}]` : 'full';
  const tiles = s.tiles ? ` ${s.tiles.subgroup ? 'subgroup' : `bq=${s.tiles.bq}`} rq=${s.tiles.rq} bk=${s.tiles.bk}` : '';
  const chunked = s.maxBinding ? ` maxBinding=${s.maxBinding}` : '';
  return {
    name: `forward B=${s.B} L=${s.L} heads=${s.heads} d=${s.d} ${desc} ${s.qk <= 1 ? 'flat' : 'peaked'}${tiles}${chunked}`,
    async run(gpu) {
      const { B, L, heads, d } = s;
      let tiles = s.tiles;
      if (tiles?.subgroup) {
        const sg = fixedSubgroupSize(gpu);
        tiles = sg ? { ...tiles, bq: sg } : { ...tiles, bq: 8, subgroup: false };
      }
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

export const attentionCases: KernelCase[] = [
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
