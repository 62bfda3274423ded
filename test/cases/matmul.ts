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
//
// f16 cases (names end in ' f16'): a, b, bias and out f16, sums f32. The reference is the same
// float64 product of the f16-rounded inputs (roundHalf, what the upload holds), so two errors
// remain: the f32 sum, at most e = (K + 3) 2^-24 max(absSum) (the plain worst-case bound, every
// rounding at its largest), and the one rounding of the result to f16 at the store. That is
// u = 2^-11 of |y| when rounding to nearest (llvmpipe), but WGSL leaves the rounding mode to the
// implementation (either neighbour of an inexact value, as the WebGPU CTS accepts), so up to one
// f16 ulp, < 2^-10 |y|, and a result below the smallest normal 2^-14 may be flushed to zero:
//   |gpu - ref| <= e + 2^-10 (|ref| + e) + 2^-14:  rtol 2^-10, atol e (1 + 2^-10) + 2^-14.
// E.g. K = 129, |y| <= 16: at most 1.6e-2 at the largest outputs, 1e-3 at |y| = 1, where a
// dropped k term or a wrong index moves an output by ~0.25. Measured on llvmpipe: largest
// maxdiff 3.9e-3 (65x129x33, half an ulp at |y| in [8, 16)). Without 'shader-f16' a case checks
// the refusal instead.
//
// f16 operands with an f32 out (names with 'out=f32', and the dense backward's dwt and db):
// the product of two f16 values (11 significant bits each) is exact in f32, so the only error is
// the f32 sum itself, bounded simply by its worst case, (n + 3) 2^-24 max(absSum) for n terms
// (+3: alpha, bias, accumulate; matmulTolF32Out): no f16 rounding, no flush of the result.
// E.g. K = 129, uniform(-1, 1): 3.2e-5 at max(absSum) ~ 40.

import type { Gpu } from '../../core/gpu/device.ts';
import type { Tensor } from '../../core/gpu/tensor.ts';
import {
  CPU_TILE,
  GPU_TILE,
  type MatmulOptions,
  type MatmulTile,
  SUBGROUP_TILE,
  SUBGROUP_TILE_TRANS_B,
  colsum,
  denseBackward,
  denseForward,
  linear,
  matmul,
  stagesTransposed,
  tileSupported,
} from '../../core/kernels/matmul.ts';
import { transpose } from '../../core/kernels/transpose.ts';
import { chunkRows } from '../../core/gpu/launch.ts';
import { roundHalf } from '../../core/gpu/half.ts';
import { colsumRef, denseBackwardRef, denseRef64, matmulRef, transposeRef } from '../../core/ref/matmul.ts';
import { gradChecks, projection } from '../gradcheck.ts';
import { nanTensor, withBindingLimit } from './elementwise.ts';
import { refusalCheck } from './half-io.ts';
import { blockSpecs, tileFitsCase } from './matmul-block.ts';
import { colsumF16Cases, colsumTerms, denseF16Cases, dtypeErrorsCase, forwardF16Case, matmulTolF16, matmulTolF32Out, readBack, upload } from './matmul-f16.ts';
import type { Check, KernelCase, Tol } from './types.ts';
import { randu } from './util.ts';

const U = 2 ** -24;

/** 4 sqrt(n) u max(absSum): the bound above for a sum with at most n roundings on any path. */
function sumTol(n: number, absSum: ArrayLike<number>): Tol {
  let max = 0;
  for (let i = 0; i < absSum.length; i++) max = Math.max(max, absSum[i]);
  return { atol: 4 * Math.sqrt(n) * U * max };
}

export function matmulTol(K: number, absSum: ArrayLike<number>): Tol {
  return sumTol(K + 3, absSum);
}


export interface Spec {
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
  /** Copy transposed operands into the plain layout first (default: the adapter's choice). */
  stage?: boolean;
  /** Fake storage binding limit (bytes) to force chunking; `chunks` = expected product dispatches. */
  maxBinding?: number;
  chunks?: number;
  /** f16 a, b, bias and out (see matmulTolF16). */
  f16?: boolean;
  /** With f16: an f32 out (and bias), unrounded (see matmulTolF32Out). */
  outF32?: boolean;
}

function label(s: Spec): string {
  const flags = [
    s.transA && 'transA',
    s.transB && 'transB',
    s.bias && 'bias',
    s.accumulate && 'accumulate',
    s.alpha !== undefined && `alpha=${s.alpha}`,
    s.maxBinding && `maxBinding=${s.maxBinding}`,
    s.stage !== undefined && (s.stage ? 'staged' : 'unstaged'),
    s.outF32 && 'out=f32',
  ].filter(Boolean);
  const lead = s.lead?.length ? `[${s.lead.join(',')}]x` : '';
  const bdesc = s.lead?.length ? (s.batchedB ? ' batched-b' : ' shared-b') : '';
  const kind = (t: MatmulTile) => (t.block ? 'block' : t.shared ? 'shared' : t.subgroup ? 'subgroup' : t.unrolled ? 'unrolled' : 'reg');
  const t = s.tile ? ` tile=${kind(s.tile)}${s.tile.wgX}x${s.tile.wgY}/${s.tile.tm}x${s.tile.tn}${s.tile.block ? `/bk${s.tile.bk ?? 16}` : ''}` : ' tile=default';
  return `${lead}${s.M}x${s.K}x${s.N}${bdesc}${flags.length ? ' ' + flags.join(' ') : ''}${t}${s.f16 ? ' f16' : ''}`;
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
  const half = !!s.f16;
  const halfOut = half && !s.outF32; // bias and out have out's dtype
  const ta = upload(gpu, a, aShape, half);
  const tb = upload(gpu, b, bShape, half);
  const tbias = bias ? upload(gpu, bias, [N], halfOut) : undefined;
  const out = prev ? upload(gpu, prev, [...lead, M, N], halfOut) : gpu.empty([...lead, M, N], halfOut ? 'f16' : 'f32');
  // Subgroup tiles need 'subgroups' with a fixed size of wgX (8: llvmpipe on AVX2); elsewhere
  // (SwiftShader: 4, or no feature) the case checks CPU_TILE instead.
  const tile = s.tile && !tileSupported(gpu, s.tile) ? CPU_TILE : s.tile;
  const o: MatmulOptions = { transA: s.transA, transB: s.transB, bias: tbias, accumulate: s.accumulate, alpha: s.alpha, tile, stageTransposed: s.stage, maxBinding: s.maxBinding };
  if (half && !gpu.features.has('shader-f16')) {
    const checks = refusalCheck(() => matmul(gpu, out, ta, tb, o));
    for (const t of [ta, tb, tbias, out]) t?.release();
    return checks;
  }
  const before = gpu.stats.dispatches;
  matmul(gpu, out, ta, tb, o);
  const dispatched = gpu.stats.dispatches - before;
  const actual = await readBack(gpu, out);
  for (const t of [ta, tb, tbias, out]) t?.release();
  const r = half ? roundHalf : (x: Float32Array) => x;
  const ro = halfOut ? roundHalf : (x: Float32Array) => x;
  const ref = matmulRef(r(a), r(b), M, K, N, { transA: s.transA, transB: s.transB, bias: bias && ro(bias), accumulate: prev && ro(prev), alpha: s.alpha, batch, batchedB: s.batchedB });
  const tol = halfOut ? matmulTolF16(K, ref.absSum) : half ? matmulTolF32Out(K, ref.absSum) : matmulTol(K, ref.absSum);
  const checks: Check[] = [{ name: 'out', actual, expected: ref.out, tol }];
  // exact: proves the chunked path really split the work (and how many pieces); a staged
  // product adds one transpose per transposed operand to every piece
  const staged = (s.transA || s.transB) && (s.stage ?? (!s.tile && stagesTransposed(gpu)));
  const perPiece = staged ? 1 + Number(!!s.transA) + Number(!!s.transB) : 1;
  if (s.chunks !== undefined) checks.push({ name: 'dispatches', actual: [dispatched], expected: [s.chunks * perPiece], tol: { atol: 0 } });
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

// Transposed operands copied to the plain layout first (the default on CPU drivers) and not
// (the default on GPUs), whatever this adapter's default is: 2-D, a batch sharing b, batched
// b, both operands transposed, and a transA K split over the binding limit.
function stagingSpecs(align: number): Spec[] {
  const rowsK = chunkRows([16 * 4, 20 * 4], 4096, align);
  return [
    ...[true, false].flatMap((stage) => [
      { M: 65, K: 129, N: 33, transA: true, transB: true, stage },
      { M: 19, K: 40, N: 24, transA: true, bias: true, accumulate: true, alpha: 2, stage },
      { M: 68, K: 36, N: 44, transB: true, bias: true, accumulate: true, alpha: 0.5, stage },
      { lead: [3], M: 8, K: 20, N: 12, transA: true, accumulate: true, stage },
      { lead: [4], M: 12, K: 16, N: 12, batchedB: true, transB: true, alpha: 0.125, stage },
    ]),
    { M: 16, K: 300, N: 20, transA: true, bias: true, accumulate: true, maxBinding: 4096, chunks: Math.ceil(300 / rowsK), stage: true },
  ];
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

// f16: what inference runs (plain and transB, bias on and off, batches) on the default tiles,
// every tile variant the launcher may pick on some adapter, and chunking (f16 rows are half
// the bytes, so chunks hold twice the rows). Awkward shapes as above; each pipeline costs
// compile time, so a sample rather than the whole f32 grid.
function f16Specs(align: number): Spec[] {
  const plain: Spec[] = [shapes[0], shapes[1], shapes[2], shapes[3], shapes[4], shapes[5], shapes[6]].flatMap((x) => [x, { ...x, transB: true }]);
  const tiled = [...VARIANT_TILES, SHARED_ODD].flatMap((tile): Spec[] => [
    { M: 37, K: 19, N: 53, tile },
    { M: 68, K: 36, N: 44, transB: true, bias: true, tile },
    { M: 68, K: 36, N: 44, bias: true, alpha: -0.37, tile },
  ]);
  const rowsM = chunkRows([64 * 2, 24 * 2], 4096, align);
  const specs: Spec[] = [
    ...plain,
    { M: 37, K: 19, N: 53, bias: true },
    { M: 65, K: 129, N: 33, transB: true, bias: true, alpha: 0.5 },
    { M: 65, K: 129, N: 33, transB: true, stage: false },
    { lead: [3], M: 7, K: 20, N: 12, bias: true },
    { lead: [2, 3], M: 5, K: 9, N: 11, transB: true },
    { lead: [4], M: 12, K: 16, N: 12, batchedB: true, transB: true, alpha: 0.125 },
    ...tiled,
    { M: 70, K: 24, N: 64, bias: true, maxBinding: 4096, chunks: Math.ceil(70 / rowsM) },
  ];
  return specs.map((x) => ({ ...x, f16: true }));
}

// f16 operands with an f32 out (mixed-precision training's dWt += X^T dY): transA and
// accumulate on the default tiles and every tile variant (unstaged: the TRANS_A kernels), staged
// and not, batches sharing b, plain and transB products with bias, K split over the binding
// limit and M split into row chunks (f16 rows of a, f32 rows of out); and transA with an f16
// out, which needs nothing new from the kernel. Names end in ' f16' like every f16 case.
function f32OutSpecs(align: number): Spec[] {
  const tiled = [...VARIANT_TILES, SHARED_ODD].flatMap((tile): Spec[] => [
    { M: 37, K: 19, N: 53, transA: true, accumulate: true, tile },
    { M: 68, K: 36, N: 44, transA: true, bias: true, alpha: 0.5, tile },
  ]);
  const rowsK = chunkRows([16 * 2, 20 * 2], 2048, align);
  const rowsM = chunkRows([64 * 4, 24 * 2], 8192, align);
  const specs: Spec[] = [
    { M: 1, K: 1, N: 1, transA: true, accumulate: true },
    { M: 37, K: 19, N: 53, transA: true, accumulate: true },
    { M: 65, K: 129, N: 33, transA: true },
    { M: 68, K: 36, N: 44, transA: true, bias: true, accumulate: true, alpha: 0.5 },
    { M: 37, K: 19, N: 53, bias: true },
    { M: 68, K: 36, N: 44, transB: true, accumulate: true },
    { lead: [3], M: 8, K: 20, N: 12, transA: true, accumulate: true },
    ...[true, false].map((stage): Spec => ({ M: 19, K: 40, N: 24, transA: true, bias: true, accumulate: true, alpha: 2, stage })),
    ...tiled,
    { M: 16, K: 300, N: 20, transA: true, accumulate: true, maxBinding: 2048, chunks: Math.ceil(300 / rowsK) },
    { M: 70, K: 24, N: 64, accumulate: true, maxBinding: 8192, chunks: Math.ceil(70 / rowsM) },
  ];
  return [
    ...specs.map((x) => ({ ...x, f16: true, outF32: true })),
    { M: 37, K: 19, N: 53, transA: true, f16: true },
    { M: 68, K: 36, N: 44, transA: true, transB: true, bias: true, f16: true, stage: false },
  ];
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

// ---------------------------------------------------------------- dense (y = x @ wt + b) and its backward
//
// denseBackward is three products and a column sum, so the tolerances are the bound above with
// the length of each sum: dx sums nOut terms, dwt sums R rows (R = rows of x; R + chunks when
// the rows are split over the binding limit, each chunk adding one rounding), db sums R rows
// with at most colsumTerms(R) roundings on any path of its block-sum tree (68 at R = 130, 131
// at R = 4500). accumulate adds |prev| to the error scale (core/ref/matmul.ts). E.g. db over
// 4500 rows of U(-1, 1): atol 4 sqrt(131) u 2250 = 6e-3, where a dropped or doubled row moves a
// sum by ~0.5. Every sum has a fixed order, so a second run must give the same bits (atol 0).
// Outputs start as NaN, so an element the kernel skips fails.

interface DenseSpec {
  lead: number[]; // leading dims of x / dy, folded into R rows
  nIn: number;
  nOut: number;
  accumulate?: boolean;
  /** Which gradients to ask for (default all three). */
  want?: { dx?: boolean; dwt?: boolean; db?: boolean };
  /** Lowered storage binding limit (bytes): x, dy and dx are split into row chunks. */
  limit?: number;
}

function denseLabel(s: DenseSpec): string {
  const w = s.want ? ` only ${Object.keys(s.want).filter((k) => s.want![k as 'dx']).join('+')}` : '';
  return `dense backward x[${[...s.lead, s.nIn].join(',')}] wt[${s.nIn},${s.nOut}]${s.accumulate ? ' accumulate' : ''}${w}${s.limit ? ` maxBinding=${s.limit}` : ''}`;
}

/**
 * Dispatches denseBackward records for R rows under a binding limit (see denseSpecs); `staged`:
 * each dx and dwt piece also transposes its transposed operand (stagesTransposed).
 */
function denseDispatches(s: DenseSpec, R: number, limit: number, align: number, staged: boolean): number {
  const rm = chunkRows([s.nIn * 4, s.nOut * 4], limit, align); // dx row chunks = dwt K chunks
  const rc = chunkRows([s.nOut * 4], limit, align); // colsum row chunks, one block each (rc <= 64)
  if (rc > 64 || Math.ceil(R / rc) > 64) throw new Error(`${denseLabel(s)}: pick a limit that gives <= 64-row chunks and <= 64 of them`);
  return (staged ? 4 : 2) * Math.ceil(R / rm) + Math.ceil(R / rc) + 1;
}

async function runDense(gpu: Gpu, s: DenseSpec, seed: number): Promise<Check[]> {
  const R = s.lead.reduce((x, y) => x * y, 1);
  const { nIn, nOut } = s;
  const want = s.want ?? { dx: true, dwt: true, db: true };
  const x = randu(R * nIn, seed), wt = randu(nIn * nOut, seed + 1), dy = randu(R * nOut, seed + 2);
  const prev = s.accumulate ? { dwt: randu(nIn * nOut, seed + 3), db: randu(nOut, seed + 4) } : {};
  const tx = gpu.upload(x, [...s.lead, nIn]), twt = gpu.upload(wt, [nIn, nOut]), tdy = gpu.upload(dy, [...s.lead, nOut]);
  const run = async () => {
    const dx = want.dx ? nanTensor(gpu, [...s.lead, nIn]) : null;
    const dwt = want.dwt ? (prev.dwt ? gpu.upload(prev.dwt, [nIn, nOut]) : nanTensor(gpu, [nIn, nOut])) : null;
    const db = want.db ? (prev.db ? gpu.upload(prev.db, [nOut]) : nanTensor(gpu, [nOut])) : null;
    const { dispatches } = await withBindingLimit(gpu, s.limit ?? gpu.limits.maxBinding, () =>
      denseBackward(gpu, { dx, dwt, db, accumulate: s.accumulate }, tdy, tx, twt),
    );
    const read = async (t: Tensor | null) => (t ? await gpu.readF32(t) : null);
    const r = { dx: await read(dx), dwt: await read(dwt), db: await read(db), dispatches };
    for (const t of [dx, dwt, db]) t?.release();
    return r;
  };
  const first = await run();
  const second = await run();
  for (const t of [tx, twt, tdy]) t.release();
  const ref = denseBackwardRef(dy, x, wt, R, nIn, nOut, prev);
  const kChunks = s.limit ? Math.ceil(R / chunkRows([nIn * 4, nOut * 4], s.limit, gpu.limits.offsetAlign)) : 1;
  const checks: Check[] = [];
  const acc = s.accumulate ? ' (accumulated)' : '';
  if (first.dx) {
    checks.push({ name: 'dx = dy wt^T', actual: first.dx, expected: ref.dx.out, tol: matmulTol(nOut, ref.dx.absSum) });
    checks.push({ name: 'dx run to run', actual: second.dx!, expected: first.dx, tol: { atol: 0 } }); // exact: fixed order
  }
  if (first.dwt) {
    checks.push({ name: `dwt = x^T dy${acc}`, actual: first.dwt, expected: ref.dwt.out, tol: matmulTol(R + kChunks, ref.dwt.absSum) });
    checks.push({ name: 'dwt run to run', actual: second.dwt!, expected: first.dwt, tol: { atol: 0 } }); // exact: fixed order
  }
  if (first.db) {
    checks.push({ name: `db = colsum(dy)${acc}`, actual: first.db, expected: ref.db.out, tol: sumTol(colsumTerms(R), ref.db.absSum) });
    checks.push({ name: 'db run to run', actual: second.db!, expected: first.db, tol: { atol: 0 } }); // exact: fixed order
  }
  if (s.limit) {
    // exact: the rows really were split (dx, dwt and db each in several dispatches)
    checks.push({ name: 'dispatches', actual: [first.dispatches], expected: [denseDispatches(s, R, s.limit, gpu.limits.offsetAlign, stagesTransposed(gpu))], tol: { atol: 0 } });
  }
  return checks;
}

const denseSpecs: DenseSpec[] = [
  { lead: [1], nIn: 1, nOut: 1 }, // one row, one feature
  { lead: [1], nIn: 37, nOut: 19 }, // one row, nothing a multiple of 4
  { lead: [3, 5], nIn: 24, nOut: 40 }, // 3-D x, vec4 paths
  { lead: [130], nIn: 33, nOut: 17 }, // R > 64: two-pass colsum (3 blocks), odd K for dwt
  { lead: [2, 70], nIn: 20, nOut: 12, accumulate: true },
  { lead: [1], nIn: 9, nOut: 5, accumulate: true }, // one row: colsum's single pass, accumulating
  { lead: [4, 33], nIn: 384, nOut: 96 }, // the encoder's width
  { lead: [9], nIn: 13, nOut: 7, want: { dx: true } },
  { lead: [9], nIn: 13, nOut: 7, want: { dwt: true, db: true }, accumulate: true },
  { lead: [0], nIn: 6, nOut: 5 }, // no rows: dwt and db are empty sums (0)
  { lead: [0], nIn: 6, nOut: 5, accumulate: true }, // ... and stay as they were when accumulating
  // 4096-byte limit: x rows 96 B, dy rows 160 B; dx and dwt go in chunks of 24 rows (256-byte
  // aligned starts for both), colsum in 24-row chunks of dy: 9 + 9 + 9 + 1 dispatches.
  { lead: [200], nIn: 24, nOut: 40, limit: 4096 },
  { lead: [2, 100], nIn: 24, nOut: 40, accumulate: true, limit: 4096 },
];

/** colsum alone on many rows: 4500 rows -> 71 block sums -> 2 -> 1 (three dispatches). */
const colsumCase: KernelCase = {
  name: 'colsum x[4500,5] (block sums of block sums)',
  async run(gpu) {
    const x = randu(4500 * 5, 31);
    const tx = gpu.upload(x, [4500, 5]);
    const out = nanTensor(gpu, [5]);
    const before = gpu.stats.dispatches;
    colsum(gpu, out, tx);
    const dispatches = gpu.stats.dispatches - before;
    const actual = await gpu.readF32(out);
    for (const t of [tx, out]) t.release();
    const ref = colsumRef(x, 4500, 5);
    return [
      { name: 'out', actual, expected: ref.out, tol: sumTol(colsumTerms(4500), ref.absSum) },
      { name: 'dispatches', actual: [dispatches], expected: [3], tol: { atol: 0 } }, // exact: the recursion ran
    ];
  },
};

/** denseForward (3-D and 1-D x) against the reference, then gradients against central differences. */
const denseGradCase: KernelCase = {
  name: 'dense forward x[2,3,5] wt[5,7] + b, gradcheck of dx, dwt, db',
  async run(gpu) {
    const R = 6, nIn = 5, nOut = 7;
    const x = randu(R * nIn, 41), wt = randu(nIn * nOut, 42), b = randu(nOut, 43);
    const dy = projection(R * nOut, 44);
    const tx = gpu.upload(x, [2, 3, nIn]), twt = gpu.upload(wt, [nIn, nOut]), tb = gpu.upload(b, [nOut]), tdy = gpu.upload(dy, [2, 3, nOut]);
    const y = nanTensor(gpu, [2, 3, nOut]), y1 = nanTensor(gpu, [nOut]);
    const dx = nanTensor(gpu, [2, 3, nIn]), dwt = nanTensor(gpu, [nIn, nOut]), db = nanTensor(gpu, [nOut]);
    denseForward(gpu, y, tx, twt, tb);
    denseForward(gpu, y1, tx.reshape([R * nIn]).rows(0, nIn), twt, null); // 1-D x: row 0, no bias
    denseBackward(gpu, { dx, dwt, db }, tdy, tx, twt);
    const [gy, gy1, gdx, gdwt, gdb] = [await gpu.readF32(y), await gpu.readF32(y1), await gpu.readF32(dx), await gpu.readF32(dwt), await gpu.readF32(db)];
    for (const t of [tx, twt, tb, tdy, y, y1, dx, dwt, db]) t.release();
    const ref = matmulRef(x, wt, R, nIn, nOut, { bias: b });
    const ref1 = matmulRef(x.subarray(0, nIn), wt, 1, nIn, nOut);
    return [
      { name: 'y', actual: gy, expected: ref.out, tol: matmulTol(nIn, ref.absSum) },
      { name: 'y (1-D x)', actual: gy1, expected: ref1.out, tol: matmulTol(nIn, ref1.absSum) },
      // the rtol 1e-5 of test/gradcheck.ts: sums of <= 7 terms here, f32 error ~1e-7 of scale
      ...gradChecks({
        f: ([xs, ws, bs]) => denseRef64(xs, ws, bs, R, nIn, nOut),
        inputs: [
          { name: 'x', value: x, grad: gdx },
          { name: 'wt', value: wt, grad: gdwt },
          { name: 'b', value: b, grad: gdb },
        ],
        R: dy,
      }),
    ];
  },
};

export const denseCases: KernelCase[] = [...denseSpecs.map((s, i): KernelCase => ({ name: denseLabel(s), run: (gpu) => runDense(gpu, s, 7000 + 11 * i) })), colsumCase, denseGradCase];

// ---------------------------------------------------------------- transpose
// A pure copy: every element must come back bit for bit (atol 0). Shapes: length-1 dims,
// sizes that are not multiples of the 4 x 4 block (scalar path), multiples (vec4 path), batches.

// f16: the same copy of f16 values (the reference transposes the rounded values), on a sample
// reaching both paths; the output starts as f16 NaN (0x7e00) so a skipped element fails.

function transposeCases(): KernelCase[] {
  const shapes: number[][] = [[1, 1], [1, 37], [37, 1], [17, 33], [4, 4], [16, 32], [3, 8, 12], [2, 3, 20, 41], [5, 1, 7]];
  const half = [[1, 37], [17, 33], [16, 32], [2, 3, 20, 41]];
  return [...shapes.map((shape) => ({ shape, f16: false })), ...half.map((shape) => ({ shape, f16: true }))].map(({ shape, f16 }, i) => ({
    name: `transpose [${shape.join(',')}]${f16 ? ' f16' : ''}`,
    async run(gpu) {
      const r = shape.length;
      const [R, C] = [shape[r - 2], shape[r - 1]];
      const batch = shape.slice(0, r - 2).reduce((x, y) => x * y, 1);
      const a = f16 ? roundHalf(randu(batch * R * C, 8000 + i)) : randu(batch * R * C, 8000 + i);
      const ta = upload(gpu, a, shape, f16);
      const outShape = [...shape.slice(0, r - 2), C, R];
      const out = f16 ? gpu.upload(new Uint16Array(a.length).fill(0x7e00), outShape) : nanTensor(gpu, outShape);
      if (f16 && !gpu.features.has('shader-f16')) {
        const checks = refusalCheck(() => transpose(gpu, out, ta));
        ta.release();
        out.release();
        return checks;
      }
      transpose(gpu, out, ta);
      const actual = await readBack(gpu, out);
      ta.release();
      out.release();
      return [{ name: 'out', actual, expected: transposeRef(a, batch, R, C), tol: { atol: 0 } }];
    },
  }));
}

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
  ...stagingSpecs(256).map(
    (_, j): KernelCase => ({
      name: label(stagingSpecs(256)[j]),
      run: (gpu) => runSpec(gpu, stagingSpecs(gpu.limits.offsetAlign)[j], 6000 + 7 * j),
    }),
  ),
  ...transposeCases(),
  linearCase,
  ...denseCases,
  // f16 (see matmulTolF16); the chunk case depends on the alignment, as above
  ...f16Specs(256).map(
    (_, j): KernelCase => ({
      name: label(f16Specs(256)[j]),
      run: (gpu) => runSpec(gpu, f16Specs(gpu.limits.offsetAlign)[j], 9000 + 7 * j),
    }),
  ),
  forwardF16Case,
  ...f32OutSpecs(256).map(
    (_, j): KernelCase => ({
      name: label(f32OutSpecs(256)[j]),
      run: (gpu) => runSpec(gpu, f32OutSpecs(gpu.limits.offsetAlign)[j], 9500 + 7 * j),
    }),
  ),
  // 2D block tiles (test/cases/matmul-block.ts); the chunk specs depend on the alignment, as above
  ...blockSpecs(256).map(
    (_, j): KernelCase => ({ name: label(blockSpecs(256)[j]), run: (gpu) => runSpec(gpu, blockSpecs(gpu.limits.offsetAlign)[j], 9800 + 7 * j) }),
  ),
  tileFitsCase,
  ...colsumF16Cases,
  ...denseF16Cases,
  dtypeErrorsCase,
];
