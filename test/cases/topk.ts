// Conformance cases for shaders/topk.wgsl (through GpuIndex.search and topkScoresForward)
// against core/ref/topk.ts (float64 scores, full sort).
//
// Exact cases. Integer-valued vectors (|q|, |p| <= 3, H <= 64) have integer dot products below
// 2^24, which f32 (and f16 storage) represents exactly whatever the summation order, so the
// GPU must return exactly the reference's ids and scores, tie order included: many equal
// vectors or equal scores put ties inside a segment, across segments, blocks and chunks, and
// at the k-th place. topkScoresForward cases copy input scores, so they are exact too.
//
// Random cases. GPU scores are f32 sums (matmul), the reference's are float64, so two
// passages whose true scores differ by less than the rounding error may legitimately swap
// places. Per score the error is under tol = 4 sqrt(H + 3) u max sum_h |q_h p_h| (u = 2^-24;
// the probabilistic bound the matmul cases use, see test/cases/matmul.ts). Checks:
// - scores by rank: the GPU's i-th score vs the reference's i-th, atol tol (the i-th largest
//   of a set moves by at most the largest perturbation of its members);
// - own scores: each returned score vs the float64 score of the id returned with it, atol tol
//   (a wrong id or a score paired with the wrong id is off by ~the score spread, ~1e3 tol);
// - set: the number of reference top-k passages scoring above s_k + 2 tol that the GPU missed,
//   plus GPU passages scoring below s_k - 2 tol (s_k = the reference's k-th score), must be 0:
//   a passage that clearly beats the k-th place cannot be displaced by rounding. Swaps are
//   allowed only within 2 tol of the k-th score;
// - order: duplicate or out-of-range ids, scores rising along a row, and equal scores with
//   falling ids, counted; must be 0.
// Measured on llvmpipe: largest score maxdiff 2.8e-6 (H = 64, tol 4.5e-5), at most 0.07 of
// tol.
// NaN scores are not supported (the kernels rank a NaN above +inf); no case makes one, and a
// NaN in any output fails its check.

import type { Gpu } from '../../core/gpu/device.ts';
import { type TopkOptions, topkScoresForward } from '../../core/kernels/topk.ts';
import { topkRef, topkScoresRef } from '../../core/ref/topk.ts';
import { GpuIndex, type GpuIndexOptions } from '../../core/retrieval/search.ts';
import { f16BitsToF32, f32ToF16Bits } from '../../core/model/safetensors.ts';
import { withBindingLimit } from './elementwise.ts';
import type { Check, KernelCase } from './types.ts';
import { randu, rng } from './util.ts';

const U = 2 ** -24;

/** Integers in [-r, r]. */
function ints(n: number, seed: number, r = 3): Float32Array {
  const g = rng(seed);
  return Float32Array.from({ length: n }, () => Math.floor(g() * (2 * r + 1)) - r);
}

/** N rows, each a copy of one of `distinct` integer vectors: heavy ties. */
function copies(N: number, H: number, distinct: number, seed: number): Float32Array {
  const base = ints(distinct * H, seed);
  const g = rng(seed + 1);
  const out = new Float32Array(N * H);
  for (let j = 0; j < N; j++) out.set(base.subarray(Math.floor(g() * distinct) * H).subarray(0, H), j * H);
  return out;
}

/** Rows [N - j, j % 7 - 3, 0, ...]: with q[0] > 0 the best passages come first, with q[0] < 0 last. */
function ramp(N: number, H: number): Float32Array {
  const out = new Float32Array(N * H);
  for (let j = 0; j < N; j++) {
    out[j * H] = N - j;
    if (H > 1) out[j * H + 1] = (j % 7) - 3;
  }
  return out;
}

/** Values rounded to f16 and back (what an f16 index holds). */
function viaF16(x: Float32Array): Float32Array {
  return Float32Array.from(x, (v) => f16BitsToF32(f32ToF16Bits(v)));
}

/** Structural errors of one [rows, k] result: duplicate/out-of-range ids, rising scores, tie order. */
export function orderErrors(scores: ArrayLike<number>, ids: ArrayLike<number>, rows: number, k: number, N: number): number {
  let bad = 0;
  for (let r = 0; r < rows; r++) {
    const seen = new Set<number>();
    for (let j = 0; j < k; j++) {
      const i = r * k + j;
      if (ids[i] >= N || seen.has(ids[i])) bad++;
      seen.add(ids[i]);
      if (j > 0 && !(scores[i] <= scores[i - 1])) bad++;
      if (j > 0 && scores[i] === scores[i - 1] && !(ids[i] > ids[i - 1])) bad++;
    }
  }
  return bad;
}

export interface SearchOutcome {
  scores: ArrayLike<number>;
  ids: ArrayLike<number>;
  k: number;
}

/**
 * Checks of a GPU top-k against the float64 reference with rounding tolerance `tol` (0 for
 * exact data): see the header. `all` holds the reference's score of every (row, passage).
 */
export function topkChecks(got: SearchOutcome, ref: { scores: Float64Array; ids: Uint32Array; k: number; all: Float64Array }, rows: number, N: number, tol: number): Check[] {
  const kk = ref.k;
  const checks: Check[] = [{ name: 'results per row', actual: [got.k], expected: [kk], tol: { atol: 0 } }];
  if (got.k !== kk) return checks;
  const own = Float64Array.from(got.ids, (id, i) => ref.all[Math.floor(i / kk) * N + id]);
  let clear = 0;
  for (let r = 0; r < rows; r++) {
    const sk = ref.scores[r * kk + kk - 1];
    const mine = new Set(Array.from(got.ids).slice(r * kk, (r + 1) * kk));
    for (let j = 0; j < kk; j++) {
      const id = ref.ids[r * kk + j];
      if (ref.all[r * N + id] > sk + 2 * tol && !mine.has(id)) clear++;
      if (own[r * kk + j] < sk - 2 * tol) clear++;
    }
  }
  checks.push(
    { name: 'order (duplicate ids, rising scores, tie order)', actual: [orderErrors(got.scores, got.ids, rows, kk, N)], expected: [0], tol: { atol: 0 } },
    { name: 'scores by rank', actual: got.scores, expected: ref.scores, tol: { atol: tol } },
    { name: 'own scores', actual: got.scores, expected: own, tol: { atol: tol } },
    { name: `set (clear misses beyond 2 x ${tol.toExponential(1)} of the k-th score)`, actual: [clear], expected: [0], tol: { atol: 0 } },
  );
  if (tol === 0) checks.push({ name: 'ids', actual: got.ids, expected: ref.ids, tol: { atol: 0 } });
  return checks;
}

/** Rounding tolerance of f32 scores: 4 sqrt(H + 3) u max sum |q p| (see the header). */
export function scoreTol(H: number, absSum: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < absSum.length; i++) max = Math.max(max, absSum[i]);
  return 4 * Math.sqrt(H + 3) * U * max;
}

interface SearchSpec {
  Q: number;
  N: number;
  H: number;
  k: number;
  /**
   * 'random' uniform(-1, 1); 'ints' integers in [-3, 3] (exact); 'copies' of `distinct` integer
   * vectors; 'ramp' rows [N - j, j % 7 - 3, 0, ...] (exact): scores rise or fall with the id.
   */
  data: 'random' | 'ints' | 'copies' | 'ramp';
  distinct?: number;
  index?: GpuIndexOptions;
  topk?: TopkOptions;
  /** Run under a lowered storage binding limit (bytes). */
  maxBinding?: number;
  /** Expected index chunks (exact). */
  chunks?: number;
  /** Search twice: the results must be bit-identical. */
  repeat?: boolean;
}

async function runSearch(gpu: Gpu, s: SearchSpec, seed: number): Promise<Check[]> {
  const { Q, N, H, k } = s;
  const exact = s.data !== 'random';
  const queries = exact ? ints(Q * H, seed) : randu(Q * H, seed);
  let index = s.data === 'copies' ? copies(N, H, s.distinct ?? 5, seed + 1) : s.data === 'ramp' ? ramp(N, H) : exact ? ints(N * H, seed + 1) : randu(N * H, seed + 1);
  if (s.index?.dtype === 'f16') {
    if (!gpu.features.has('shader-f16')) {
      // Adapters without f16 (Chromium's SwiftShader) must refuse with a clear message.
      let msg = '';
      await GpuIndex.upload(gpu, index, H, s.index).catch((e: Error) => (msg = e.message));
      return [{ name: "f16 refused without 'shader-f16'", actual: [/shader-f16/.test(msg) ? 1 : 0], expected: [1], tol: { atol: 0 } }];
    }
    index = viaF16(index);
  }
  const { result } = await withBindingLimit(gpu, s.maxBinding ?? gpu.limits.maxBinding, async () => {
    const idx = await GpuIndex.upload(gpu, index, H, s.index);
    try {
      const first = await idx.search(queries, k, s.topk);
      const again = s.repeat ? await idx.search(queries, k, s.topk) : null;
      return { first, again, chunks: idx.chunks.length };
    } finally {
      idx.release();
    }
  });
  const ref = topkRef(queries, index, Q, N, H, k);
  const checks = topkChecks(result.first, ref, Q, N, exact ? 0 : scoreTol(H, ref.absSum));
  if (s.chunks !== undefined) checks.push({ name: 'index chunks', actual: [result.chunks], expected: [s.chunks], tol: { atol: 0 } });
  if (result.again) {
    // bit-identical: the set is exact and the sort's order is total
    checks.push({ name: 'repeat: ids', actual: result.again.ids, expected: result.first.ids, tol: { atol: 0 } });
    checks.push({ name: 'repeat: scores', actual: result.again.scores, expected: result.first.scores, tol: { atol: 0 } });
  }
  return checks;
}

function label(s: SearchSpec): string {
  const o = { ...s.index, ...s.topk };
  const opts = Object.entries(o).map(([k, v]) => `${k}=${v}`);
  if (s.maxBinding) opts.push(`maxBinding=${s.maxBinding}`);
  const data = s.data === 'copies' ? `${s.distinct ?? 5} distinct vectors` : s.data;
  return `search Q=${s.Q} N=${s.N} H=${s.H} k=${s.k} ${data}${opts.length ? ' ' + opts.join(' ') : ''}`;
}

const searchSpecs: SearchSpec[] = [
  // the default path: one chunk, one block, one segment
  { Q: 3, N: 1000, H: 32, k: 10, data: 'random' },
  { Q: 1, N: 1, H: 8, k: 1, data: 'random' },
  { Q: 4, N: 1, H: 7, k: 5, data: 'ints' }, // N = 1, k > N
  { Q: 2, N: 37, H: 5, k: 50, data: 'ints' }, // k > N: all 37, sorted
  { Q: 1, N: 4099, H: 16, k: 1, data: 'random', topk: { segment: 512, block: 1024 } },
  // N a multiple of nothing; several segments and blocks; a short last block of 3 passages
  { Q: 5, N: 3075, H: 64, k: 50, data: 'random', topk: { segment: 256, block: 512 } },
  // several chunks (700 rows each, a short last one), blocks that do not divide a chunk
  { Q: 6, N: 3001, H: 64, k: 100, data: 'random', index: { chunkRows: 700 }, topk: { segment: 400, block: 320 }, chunks: 5 },
  // odd H (scalar loads in matmul, 64-row block alignment) and scores not a multiple of 4 per row
  { Q: 3, N: 2051, H: 37, k: 33, data: 'random', index: { chunkRows: 1000 }, topk: { segment: 132, block: 640 }, chunks: 3 },
  // blocks smaller than k: the running list fills over 4 blocks before a threshold exists;
  // scores falling (and rising) with the id, so the first blocks hold the best (worst) ones
  { Q: 3, N: 1500, H: 8, k: 400, data: 'random', index: { chunkRows: 128 }, chunks: 12 },
  { Q: 6, N: 1500, H: 2, k: 400, data: 'ramp', index: { chunkRows: 128 }, chunks: 12 },
  { Q: 6, N: 20000, H: 4, k: 100, data: 'ramp', index: { chunkRows: 5000 }, topk: { block: 1008, segment: 500 } },
  // k = 1000 (the 1024-slot sort) over several blocks
  { Q: 2, N: 5000, H: 16, k: 1000, data: 'random', topk: { block: 2048 } },
  // query groups: Q split into groups of 2 (a last group of 1)
  { Q: 5, N: 900, H: 64, k: 20, data: 'random', topk: { queryRows: 2, block: 256, segment: 128 } },
  // heavy ties: 5 distinct vectors over 3000 passages, ties across segments, blocks, chunks
  { Q: 4, N: 3000, H: 16, k: 200, data: 'copies', distinct: 5, index: { chunkRows: 1100 }, topk: { segment: 400, block: 256 }, repeat: true },
  // every passage equal: ids 0..k-1
  { Q: 2, N: 2500, H: 8, k: 300, data: 'copies', distinct: 1, index: { chunkRows: 999 }, topk: { segment: 600, block: 512 } },
  // integer scores with many duplicates at the k-th place (H = 3: scores in [-27, 27])
  { Q: 8, N: 4000, H: 3, k: 257, data: 'ints', index: { chunkRows: 1500 }, topk: { segment: 520, block: 768 }, repeat: true },
  // the default chunking under a 64 KiB binding limit: 256 rows of 256 B per chunk, 12 chunks
  { Q: 7, N: 3000, H: 64, k: 40, data: 'random', maxBinding: 65536, chunks: 12 },
  // f16 storage: exact on integers, and on random values rounded to f16
  { Q: 3, N: 2000, H: 16, k: 64, data: 'ints', index: { dtype: 'f16', chunkRows: 600 }, topk: { segment: 256, block: 512 } },
  { Q: 5, N: 1500, H: 64, k: 30, data: 'random', index: { dtype: 'f16' }, topk: { segment: 128, block: 384 } },
];

/** Scores where the order matters: ascending ids (every block beats the last), descending, zeros of both signs. */
function orderedScores(kind: 'ascending' | 'descending' | 'signed zeros' | 'random ints', R: number, N: number, seed: number): Float32Array {
  const out = new Float32Array(R * N);
  const g = rng(seed);
  for (let r = 0; r < R; r++) {
    for (let j = 0; j < N; j++) {
      const i = r * N + j;
      if (kind === 'ascending') out[i] = j - N / 2 + r;
      else if (kind === 'descending') out[i] = N - j;
      else if (kind === 'signed zeros') out[i] = g() < 0.5 ? (g() < 0.5 ? -0 : 0) : -1 - Math.floor(g() * 3);
      else out[i] = Math.floor(g() * 20) - 10;
    }
  }
  return out;
}

async function runScores(gpu: Gpu, R: number, N: number, k: number, scores: Float32Array, o: TopkOptions = {}): Promise<Check[]> {
  const t = gpu.upload(scores, [R, N]);
  const kk = Math.min(k, N);
  const os = gpu.empty([R, kk]);
  const oi = gpu.empty([R, kk], 'u32');
  topkScoresForward(gpu, os, oi, t, k, o);
  const got = { scores: await gpu.readF32(os), ids: (await gpu.read(oi)) as Uint32Array, k: kk };
  for (const x of [t, os, oi]) x.release();
  const ref = topkScoresRef(scores, R, N, k);
  return topkChecks(got, { ...ref, all: Float64Array.from(scores) }, R, N, 0);
}

const scoresCases: KernelCase[] = [
  { name: 'scores [3, 10000] ascending k=100 segment=512', run: (gpu) => runScores(gpu, 3, 10000, 100, orderedScores('ascending', 3, 10000, 1), { segment: 512 }) },
  { name: 'scores [2, 7777] descending k=64', run: (gpu) => runScores(gpu, 2, 7777, 64, orderedScores('descending', 2, 7777, 2)) },
  // -0 and +0 tie (by id), negatives below
  { name: 'scores [4, 1001] signed zeros k=300 segment=600', run: (gpu) => runScores(gpu, 4, 1001, 300, orderedScores('signed zeros', 4, 1001, 3), { segment: 600 }) },
  // 20 distinct values over 30001 columns: every segment's k-th place is a long tie; segments
  // of 2000 take 5 select levels (30001 -> 16000 -> 8000 -> 4000 -> 2000 -> 1000 columns)
  { name: 'scores [5, 30001] 20 values k=1000 segment=2000', run: (gpu) => runScores(gpu, 5, 30001, 1000, orderedScores('random ints', 5, 30001, 4), { segment: 2000 }) },
  { name: 'scores [1, 1] k=1', run: (gpu) => runScores(gpu, 1, 1, 1, Float32Array.of(-3.5)) },
  { name: 'scores [2, 3] k=7 (k > N)', run: (gpu) => runScores(gpu, 2, 3, 7, Float32Array.of(1, 3, 2, -1, -1, -1)) },
  { name: 'scores [3, 2049] random floats k=1024', run: (gpu) => runScores(gpu, 3, 2049, 1024, randu(3 * 2049, 5)) },
];

export const topkCases: KernelCase[] = [
  ...searchSpecs.map((s, i): KernelCase => ({ name: label(s), run: (gpu) => runSearch(gpu, s, 1300 + 10 * i) })),
  ...scoresCases,
];
