// Conformance cases for shaders/matmul.wgsl against core/ref/matmul.ts.
//
// Tolerance. Each output is a K-term f32 dot product (fma, k in order within an invocation)
// followed by up to three more roundings (alpha, bias, accumulate). Higham's probabilistic
// bound (Higham & Mary 2019) puts the error under lambda * sqrt(K) * u * sum_k |a_k b_k| with
// u = 2^-24 and probability >= 1 - 2 exp(-lambda^2 / 2); lambda = 4 gives 0.9993 per element
// and the errors observed are another ~10x smaller. So:
//   atol = 4 * sqrt(K + 3) * 2^-24 * max(|alpha| sum |a b| + |bias| + |prev|)
// e.g. K = 129 with uniform(-1, 1) inputs: max sum |a b| ~ 40, atol 1.1e-4. A wrong index or a
// dropped k term moves the output by ~|a b| ~ 0.25, thousands of times more. Measured on
// llvmpipe: largest maxdiff 6.7e-6 (65x129x33 transB), at most 0.12 of atol in every case.

import type { Gpu } from '../../core/gpu/device.ts';
import type { Tensor } from '../../core/gpu/tensor.ts';
import {
  CPU_TILE,
  GPU_TILE,
  type MatmulOptions,
  type MatmulTile,
  SUBGROUP_TILE,
  SUBGROUP_TILE_TRANS_B,
  chunkRows,
  linear,
  matmul,
  tileSupported,
} from '../../core/kernels/matmul.ts';
import { matmulRef } from '../../core/ref/matmul.ts';
import type { Check, KernelCase, Tol } from './types.ts';
import { randu } from './util.ts';

const U = 2 ** -24;

export function matmulTol(K: number, absSum: ArrayLike<number>): Tol {
  let max = 0;
  for (let i = 0; i < absSum.length; i++) max = Math.max(max, absSum[i]);
  return { atol: 4 * Math.sqrt(K + 3) * U * max };
}

interface Spec {
  /** Leading dims of a/out (batch), [] for a plain 2-D product. */
  lead?: number[];
  M: number;
  K: number;
  N: number;
  transA?: boolean;
  transB?: boolean;
  /** b has a's leading dims (batched) instead of being one shared 2-D matrix. */
  batchedB?: boolean;
  bias?: boolean;
  accumulate?: boolean;
  alpha?: number;
  tile?: MatmulTile;
  /** Fake storage binding limit (bytes) to force chunking; `chunks` = expected dispatch count. */
  maxBinding?: number;
  chunks?: number;
}

function label(s: Spec): string {
  const flags = [
    s.transA && 'transA',
    s.transB && 'transB',
    s.bias && 'bias',
    s.accumulate && 'accumulate',
    s.alpha !== undefined && `alpha=${s.alpha}`,
    s.maxBinding && `maxBinding=${s.maxBinding}`,
  ].filter(Boolean);
  const lead = s.lead?.length ? `[${s.lead.join(',')}]x` : '';
  const bdesc = s.lead?.length ? (s.batchedB ? ' batched-b' : ' shared-b') : '';
  const kind = (t: MatmulTile) => (t.shared ? 'shared' : t.subgroup ? 'subgroup' : t.unrolled ? 'unrolled' : 'reg');
  const t = s.tile ? ` tile=${kind(s.tile)}${s.tile.wgX}x${s.tile.wgY}/${s.tile.tm}x${s.tile.tn}` : ' tile=default';
  return `${lead}${s.M}x${s.K}x${s.N}${bdesc}${flags.length ? ' ' + flags.join(' ') : ''}${t}`;
}

async function runSpec(gpu: Gpu, s: Spec, seed: number): Promise<Check[]> {
  const lead = s.lead ?? [];
  const batch = lead.reduce((x, y) => x * y, 1);
  const { M, K, N } = s;
  const aShape = [...lead, ...(s.transA ? [K, M] : [M, K])];
  const bLead = s.batchedB ? lead : [];
  const bShape = [...bLead, ...(s.transB ? [N, K] : [K, N])];
  const a = randu(batch * M * K, seed);
  const b = randu((s.batchedB ? batch : 1) * K * N, seed + 1);
  const bias = s.bias ? randu(N, seed + 2) : undefined;
  const prev = s.accumulate ? randu(batch * M * N, seed + 3) : undefined;
  const ta = gpu.upload(a, aShape);
  const tb = gpu.upload(b, bShape);
  const tbias = bias ? gpu.upload(bias, [N]) : undefined;
  const out = prev ? gpu.upload(prev, [...lead, M, N]) : gpu.empty([...lead, M, N]);
  // Subgroup tiles need 'subgroups' with a fixed size of wgX (8: llvmpipe on AVX2); elsewhere
  // (SwiftShader: 4, or no feature) the case checks CPU_TILE instead.
  const tile = s.tile && !tileSupported(gpu, s.tile) ? CPU_TILE : s.tile;
  const o: MatmulOptions = { transA: s.transA, transB: s.transB, bias: tbias, accumulate: s.accumulate, alpha: s.alpha, tile, maxBinding: s.maxBinding };
  const before = gpu.stats.dispatches;
  matmul(gpu, out, ta, tb, o);
  const dispatched = gpu.stats.dispatches - before;
  const actual = await gpu.readF32(out);
  for (const t of [ta, tb, tbias, out]) t?.release();
  const ref = matmulRef(a, b, M, K, N, { transA: s.transA, transB: s.transB, bias, accumulate: prev, alpha: s.alpha, batch, batchedB: s.batchedB });
  const checks: Check[] = [{ name: 'out', actual, expected: ref.out, tol: matmulTol(K, ref.absSum) }];
  // exact: proves the chunked path really split the work (and how many pieces)
  if (s.chunks !== undefined) checks.push({ name: 'dispatches', actual: [dispatched], expected: [s.chunks], tol: { atol: 0 } });
  return checks;
}

/** The looped register variant without subgroups (not a default anywhere, but selectable). */
const LOOPED_TILE: MatmulTile = { wgX: 8, wgY: 4, tm: 8, tn: 16, shared: false };
/** A small register tile (4x8 outputs, 4x2 invocations) so edges of a second shape get tested. */
const SMALL_TILE: MatmulTile = { wgX: 4, wgY: 2, tm: 4, tn: 8, shared: false };
/** Subgroup tile with one row of a per lane and a 16-row block. */
const SMALL_SUBGROUP: MatmulTile = { wgX: 8, wgY: 2, tm: 8, tn: 4, shared: false, subgroup: true };
/** Shared-memory tiles with bk not dividing K and a non-square block. */
const SHARED_ODD: MatmulTile = { wgX: 8, wgY: 4, tm: 2, tn: 3, shared: true, bk: 8 };

// Shapes: length-1 dims, non-multiples of every tile dim (scalar loads), multiples of 4 with
// ragged tile edges (vec4 loads), a K % 4 tail after vec4 steps (transA), and tile multiples.
const shapes: Spec[] = [
  { M: 1, K: 1, N: 1 },
  { M: 1, K: 64, N: 37 },
  { M: 5, K: 1, N: 9 },
  { M: 33, K: 17, N: 1 },
  { M: 37, K: 19, N: 53 },
  { M: 65, K: 129, N: 33 },
  { M: 68, K: 36, N: 44 },
  { M: 128, K: 64, N: 128 },
];

const flagSets: Partial<Spec>[] = [
  {},
  { transA: true },
  { transB: true },
  { transA: true, transB: true },
];

// Every pipeline costs 2-10 s of llvmpipe compile time on a cold shader cache, so the full grid
// runs with the adapter's default tiles (no `tile`: what the model runs), and every other tile
// on a sample that still reaches each of its code paths (scalar and vec4 loads, K % 4 tails,
// each layout, the epilogue, batching, chunking).

/** Default tiles: all shapes and layouts. */
function defaultGrid(): Spec[] {
  return shapes.flatMap((s) => flagSets.map((f) => ({ ...s, ...f })));
}

/** The tiles the launcher picks on some adapter: unrolled 8x8, both subgroup tiles, shared. */
const VARIANT_TILES = [CPU_TILE, SUBGROUP_TILE, SUBGROUP_TILE_TRANS_B, GPU_TILE];

function variantGrid(): Spec[] {
  const out: Spec[] = [];
  for (const tile of VARIANT_TILES) {
    for (const s of [shapes[0], shapes[4], shapes[6]]) for (const f of flagSets) out.push({ ...s, ...f, tile });
    out.push(
      { M: 68, K: 36, N: 44, transB: true, bias: true, accumulate: true, alpha: 0.5, tile },
      { M: 19, K: 40, N: 24, transA: true, bias: true, accumulate: true, alpha: 2, tile },
      { lead: [4], M: 12, K: 16, N: 12, batchedB: true, transB: true, alpha: 0.125, tile },
    );
  }
  for (const tile of [LOOPED_TILE, SMALL_TILE, SMALL_SUBGROUP, SHARED_ODD]) {
    for (const s of [shapes[4], shapes[6]]) for (const f of [flagSets[0], flagSets[3]]) out.push({ ...s, ...f, tile });
  }
  return out;
}

// Bias / accumulate / alpha, alone and together, on both layouts.
const epilogue: Spec[] = [
  { M: 37, K: 19, N: 53, bias: true },
  { M: 68, K: 36, N: 44, accumulate: true },
  { M: 37, K: 20, N: 12, alpha: -0.37 },
  { M: 68, K: 36, N: 44, transB: true, bias: true, accumulate: true, alpha: 0.5 },
  { M: 19, K: 40, N: 24, transA: true, bias: true, accumulate: true, alpha: 2 },
];

// Batches: 3-D a with 2-D b (folded into M), 4-D leading dims, transA with a shared b (a real
// batch with b stride 0), and true batched products (per-head attention).
const batched: Spec[] = [
  { lead: [3], M: 7, K: 20, N: 12, bias: true },
  { lead: [2, 3], M: 5, K: 9, N: 11, transB: true },
  { lead: [3], M: 8, K: 20, N: 12, transA: true, accumulate: true },
  { lead: [4], M: 9, K: 13, N: 11, batchedB: true },
  { lead: [4], M: 12, K: 16, N: 12, batchedB: true, transB: true, alpha: 0.125 },
  { lead: [2, 3], M: 17, K: 8, N: 17, batchedB: true, transA: true },
];

function chunked(align: number): Spec[] {
  // Row chunks of M: out rows 256 B, a rows 96 B; the limit holds 32 rows -> chunks 32/32/6,
  // none a multiple of the 64-row tile. Rows per chunk also depend on the adapter's offset
  // alignment, hence chunkRows() for the expected count (the case requires >= 2 chunks).
  const rowsM = chunkRows([64 * 4, 24 * 4], 8192, align);
  // K chunks (transA a [K, M] too big): a rows 64 B, b rows 80 B -> chunks of K accumulate.
  const rowsK = chunkRows([16 * 4, 20 * 4], 4096, align);
  // Batch chunks: items of a/b/out are 256/448/448 bytes.
  const itemsB = chunkRows([8 * 8 * 4, 8 * 14 * 4, 8 * 14 * 4], 2048, align);
  const specs: Spec[] = [
    { M: 70, K: 24, N: 64, maxBinding: 8192, chunks: Math.ceil(70 / rowsM) },
    { M: 70, K: 24, N: 64, bias: true, accumulate: true, alpha: 0.75, maxBinding: 8192, chunks: Math.ceil(70 / rowsM) },
    { lead: [2], M: 35, K: 24, N: 64, transB: true, bias: true, maxBinding: 8192, chunks: Math.ceil(70 / rowsM) },
    { M: 16, K: 300, N: 20, transA: true, bias: true, accumulate: true, maxBinding: 4096, chunks: Math.ceil(300 / rowsK) },
    { lead: [20], M: 8, K: 8, N: 14, batchedB: true, maxBinding: 2048, chunks: Math.ceil(20 / itemsB) },
  ];
  for (const s of specs) if (!(s.chunks! >= 2)) throw new Error(`matmul case ${label(s)} would not chunk at ${align}-byte alignment`);
  return specs;
}

function specCase(s: Spec, i: number): KernelCase {
  return { name: label(s), run: (gpu) => runSpec(gpu, s, 1000 + 7 * i) };
}

const linearCase: KernelCase = {
  name: 'linear x[2,5,24] w[12,24] + bias',
  async run(gpu) {
    const x = randu(2 * 5 * 24, 7), w = randu(12 * 24, 8), bias = randu(12, 9);
    const tx = gpu.upload(x, [2, 5, 24]), tw = gpu.upload(w, [12, 24]), tb = gpu.upload(bias, [12]);
    const out: Tensor = gpu.empty([2, 5, 12]);
    linear(gpu, out, tx, tw, tb);
    const actual = await gpu.readF32(out);
    for (const t of [tx, tw, tb, out]) t.release();
    const ref = matmulRef(x, w, 10, 24, 12, { transB: true, bias });
    return [{ name: 'out', actual, expected: ref.out, tol: matmulTol(24, ref.absSum) }];
  },
};

/** Default-tile cases run unchanged in Chromium; the chunk cases need the adapter's alignment. */
export const matmulCases: KernelCase[] = [
  ...[...defaultGrid(), ...epilogue, ...batched, ...variantGrid()].map(specCase),
  // The chunk specs depend on gpu.limits.offsetAlign: build them when run.
  ...chunked(256).map(
    (_, j): KernelCase => ({
      name: label(chunked(256)[j]),
      run: (gpu) => runSpec(gpu, chunked(gpu.limits.offsetAlign)[j], 5000 + 7 * j),
    }),
  ),
  linearCase,
];
