// Launchers for shaders/topk.wgsl: exact top-k of dot-product scores over an index held in
// several GPU buffers, and top-k of the rows of a score matrix.
//
// topkForward(gpu, outScores, outIds, queries, index, k)   queries [Q, H] against index chunks
//                                                        [rows_c, H] (f32, or f16 with 'shader-f16')
// topkScoresForward(gpu, outScores, outIds, scores, k)     rows of scores [R, N]
//
// Both write, per row, the min(k, N) best (score, id) pairs, best first: larger score first,
// equal scores by smaller id (id = passage row across all chunks, or column of scores).
//
// topkForward, per group of queries (Q split so every temporary fits one storage binding):
//   for each block of <= `block` passages of each chunk, in id order:
//     1. scores [rows, nb] = q @ P_block^T (matmul, transB; the f16 index has its own kernel)
//        into one reused scratch buffer;
//     2. select_forward: every `segment`-wide piece of each row keeps its best min(k, live)
//        keys, live = above the row's threshold, into a candidate list after the running top-k;
//     3. select_forward over running + candidates keeps the best k as the new running top-k
//        (ping-pong between two lists) and stores its k-th best score as the threshold.
//   then sort_forward orders the running top-k into rows [g0, g0 + rows) of the outputs.
// The merge runs on the GPU, not on the host: it is the same select kernel on a list of
// k (1 + block / segment) keys a query, most of them empty slots once the threshold has
// settled; it keeps the whole search in one submission and only the Q x k results are read
// back (a host merge of every block's candidates would read 15 x 9 x k per query at
// N = 466,387, and a host round trip per block to carry the threshold).

import type { Gpu } from '../gpu/device.ts';
import { type Tensor, expectShape } from '../gpu/tensor.ts';
import { isCpuAdapter } from '../gpu/adapter.ts';
import { alignStep } from '../gpu/launch.ts';
import { type MatmulTile, defaultMatmulTile, matmul, tileSupported } from './matmul.ts';

/** Largest k: sort_forward holds a row of k keys and ids in 8 KiB of workgroup memory. */
export const TOPK_MAX_K = 1024;

export interface TopkOptions {
  /** Passages per score block (a multiple of the alignment step). Default: as many as fit scratchBytes, at most one chunk. */
  block?: number;
  /** Columns each select workgroup reduces to k candidates; raised to 2k if smaller, rounded up to a multiple of 4. Default max(4096, 8k). */
  segment?: number;
  /** Bytes of the [rows, block] score scratch. Default 32 MiB, at most the storage binding limit. */
  scratchBytes?: number;
  /** Queries per group (one pass over the index each). Default 256. */
  queryRows?: number;
  /** Invocations per select/sort workgroup. Default topkWg(gpu). */
  wg?: number;
  /** Matmul tile of the f32 scores. Default scoresTile(gpu, queryRows). */
  tile?: MatmulTile;
  /**
   * Leave each row's k results in no particular order, with outScores holding their u32 keys
   * (ordered(score), see shaders/topk.wgsl) instead of f32 scores: skips the sort, and with it
   * the k <= TOPK_MAX_K limit. For candidate sets that are rescored anyway. Default false.
   */
  unsorted?: boolean;
}

/** What one topkForward call allocates and how it splits the work. */
export interface TopkPlan {
  /** Results per query: min(k, N). */
  k: number;
  /** Queries per group. */
  queryRows: number;
  /** Passages per score block. */
  block: number;
  /** Columns per select workgroup (a multiple of 4, >= 2k). */
  segment: number;
  /** Row length of the two candidate lists: running top-k + k per segment of a block, rounded to 4. */
  listWidth: number;
  /** Bytes of temporaries: score scratch, two candidate lists (keys and ids), thresholds. */
  scratchBytes: number;
}

/**
 * Select/sort workgroup width. CPU drivers run a workgroup as 8-wide SIMD batches that switch
 * at every barrier, so narrow is cheaper there: topkScoresForward on [64, 50000] scores, k 200,
 * took 100-130 ms of llvmpipe driver CPU at 64 invocations, 130-190 at 256 (32: 80-110, 128:
 * 110-120). Real GPUs want the 256 for the loads.
 */
export function topkWg(gpu: Gpu): number {
  return isCpuAdapter(gpu) ? 64 : 256;
}

/**
 * The q @ P^T tile for a group of `rows` queries: matmul's default, unless that is llvmpipe's
 * 128-row SUBGROUP_TILE_TRANS_B and 64-row tiles waste less (rows % 128 in 1..64). At 64
 * queries x 32,768 passages x 1024 on llvmpipe the 128-row tile computed twice the rows
 * needed: 890-1395 ms of driver CPU a block against 495-705 for QUERY_TILE.
 */
export function scoresTile(gpu: Gpu, rows: number): MatmulTile {
  const d = defaultMatmulTile(gpu, { transB: true });
  const span = (t: MatmulTile) => t.wgY * t.tm;
  const padded = (t: MatmulTile) => Math.ceil(rows / span(t)) * span(t);
  return d.subgroup && tileSupported(gpu, QUERY_TILE) && padded(QUERY_TILE) < padded(d) ? QUERY_TILE : d;
}
/** 64 rows of queries per workgroup (4 x 16), 4 passages per lane, a shared across the subgroup. */
export const QUERY_TILE: MatmulTile = { wgX: 8, wgY: 4, tm: 16, tn: 4, shared: false, subgroup: true };

const F32 = 4;
const DEFAULT_SCRATCH = 32 * 2 ** 20;
// Tile of scores_forward (f16 index): TQ queries x TP passages per invocation, SCORES_WG per workgroup.
const TQ = 4;
const TP = 4;
const SCORES_WG = 64;

const roundUp4 = (n: number) => Math.ceil(n / 4) * 4;

function checkK(what: string, k: number): void {
  if (!Number.isInteger(k) || k < 1 || k > TOPK_MAX_K) throw new Error(`${what}: k = ${k} must be an integer in [1, ${TOPK_MAX_K}]`);
}

/**
 * Segment width: at least 2k, so that every select level over candidate lists at least halves
 * them, and a multiple of 4 (vec4 loads).
 */
function segmentWidth(k: number, o: TopkOptions): number {
  return roundUp4(Math.max(o.segment ?? Math.max(4096, 8 * k), 2 * k));
}

/**
 * How topkForward splits Q queries over an index whose chunks hold `chunkRows` rows of H
 * values (`bytesPerValue` 4 for f32, 2 for f16). Throws when k or the shapes are out of range.
 */
export function topkPlan(gpu: Gpu, Q: number, chunkRows: readonly number[], H: number, k: number, bytesPerValue = 4, o: TopkOptions = {}): TopkPlan {
  // Unsorted, k is bounded by the binding limit of the candidate lists (checked below) only.
  if (!o.unsorted || !Number.isInteger(k) || k <= TOPK_MAX_K) checkK('topk', k);
  const N = chunkRows.reduce((a, b) => a + b, 0);
  if (N === 0) throw new Error('topk: the index is empty');
  const { maxBinding, offsetAlign, maxWorkgroupsPerDim } = gpu.limits;
  const kk = Math.min(k, N);
  const segment = segmentWidth(kk, o);
  const scratchLimit = Math.min(o.scratchBytes ?? DEFAULT_SCRATCH, maxBinding);
  const maxChunk = Math.max(...chunkRows);
  // Group starts are query views, block starts passage views: both must be aligned.
  const qStep = alignStep(H * F32, offsetAlign);
  const bStep = alignStep(H * bytesPerValue, offsetAlign);
  const alignDown = (n: number, step: number) => n - (n % step);

  let rows = Math.min(Q, o.queryRows ?? 256, maxWorkgroupsPerDim);
  if (rows < Q) rows = Math.max(alignDown(rows, qStep), Math.min(qStep, Q));
  let block: number;
  if (o.block !== undefined) {
    block = Math.min(o.block, maxChunk);
    if (!Number.isInteger(block) || block < 1 || (block < maxChunk && block % bStep)) {
      throw new Error(`topk: block ${o.block} must be a positive multiple of ${bStep} passages (${H} x ${bytesPerValue}-byte rows, ${offsetAlign}-byte view alignment)`);
    }
  } else {
    block = Math.min(maxChunk, Math.floor(scratchLimit / (F32 * Math.max(rows, 1))));
    if (block < maxChunk) block = alignDown(block, bStep);
    if (block < 1) throw new Error(`topk: scratchBytes ${scratchLimit} cannot hold a [${rows}, ${bStep}] score block`);
  }
  const segments = Math.ceil(block / segment);
  if (segments > maxWorkgroupsPerDim) throw new Error(`topk: segment ${segment} is too narrow for blocks of ${block} passages (${maxWorkgroupsPerDim} workgroups at most)`);
  const listWidth = roundUp4(kk + segments * kk);
  // The candidate lists and the score block must each fit one binding.
  const fits = (r: number) => r * listWidth * F32 <= maxBinding && r * block * F32 <= maxBinding;
  while (rows > 1 && !fits(rows)) rows = Q > qStep ? Math.max(alignDown(Math.floor(rows / 2), qStep), qStep) : Math.floor(rows / 2);
  if (!fits(rows)) {
    throw new Error(`topk: candidate lists of ${listWidth} (k ${kk}, ${segments} segments a block) or a block of ${block} scores do not fit the ${maxBinding}-byte binding limit; use a larger segment or a smaller block`);
  }
  const scratchBytes = (rows * block + 4 * rows * listWidth + rows) * F32;
  return { k: kk, queryRows: rows, block, segment, listWidth, scratchBytes };
}

interface SelectArgs {
  /** [rows, inStride]: f32 scores, or u32 keys (candidate lists). */
  input: Tensor;
  /** [rows, inStride] u32, or null: id = idBase + column. */
  ids: Tensor | null;
  rows: number;
  n: number;
  inStride: number;
  seg: number;
  k: number;
  outKeys: Tensor;
  outIds: Tensor;
  outStride: number;
  outCol: number;
  idBase: number;
  /** Output row of input row 0. Default 0. */
  outRow?: number;
  /** [rows] u32: keys with hi <= thrIn[row] are ignored. */
  thrIn?: Tensor;
  /** [rows] u32: receives each row's k-th best hi (0 if fewer than k keys). */
  thrOut?: Tensor;
  wg: number;
}

function select(gpu: Gpu, a: SelectArgs): void {
  gpu.dispatch({
    kernel: 'topk',
    entry: 'select_forward',
    defines: {
      SELECT: true,
      KEYS: a.input.dtype === 'u32',
      VEC4: a.inStride % 4 === 0 && (a.seg % 4 === 0 || a.seg >= a.n),
      IDS: a.ids !== null,
      THR_IN: !!a.thrIn,
      THR_OUT: !!a.thrOut,
      WG: a.wg,
    },
    bindings: [a.input, a.ids, a.outKeys, a.outIds, a.thrIn ?? null, a.thrOut ?? null],
    uniforms: { rows: a.rows, n: a.n, inStride: a.inStride, seg: a.seg, k: a.k, outStride: a.outStride, outCol: a.outCol, outRow: a.outRow ?? 0, idBase: a.idBase },
    workgroups: [Math.ceil(a.n / a.seg), a.rows],
  });
}

/** Candidate list: [rows, width] keys and ids, the first n columns in use. */
interface List {
  keys: Tensor;
  ids: Tensor;
  width: number;
  n: number;
}

function newList(gpu: Gpu, rows: number, width: number): List {
  return { keys: gpu.empty([rows, width], 'u32'), ids: gpu.empty([rows, width], 'u32'), width, n: 0 };
}

function releaseList(l: List): void {
  l.keys.release();
  l.ids.release();
}

/** Sort the first k columns of each row of `list` into rows [outRow, outRow + rows) of the outputs. */
function sort(gpu: Gpu, list: List, rows: number, k: number, wg: number, outScores: Tensor, outIds: Tensor, outRow: number): void {
  let sortN = 1;
  while (sortN < k) sortN *= 2;
  gpu.dispatch({
    kernel: 'topk',
    entry: 'sort_forward',
    defines: { SORT: true, SORT_N: sortN, WG: Math.min(wg, Math.max(sortN / 2, 1)) },
    bindings: [list.keys, list.ids, outScores, outIds],
    uniforms: { rows, n: k, inStride: list.width, seg: 0, k, outStride: k, outCol: 0, outRow, idBase: 0 },
    workgroups: [rows],
  });
}

function checkOutputs(what: string, outScores: Tensor, outIds: Tensor, Q: number, kk: number, maxBinding: number): void {
  expectShape(`${what}: outScores`, outScores, [Q, kk]);
  expectShape(`${what}: outIds`, outIds, [Q, kk]);
  if (outScores.dtype !== 'f32') throw new Error(`${what}: outScores ${outScores} must be f32`);
  if (outIds.dtype !== 'u32') throw new Error(`${what}: outIds ${outIds} must be u32`);
  if (outScores.buffer === outIds.buffer) throw new Error(`${what}: outScores and outIds share a GPU buffer`);
  if (Q * kk * F32 > maxBinding) throw new Error(`${what}: outputs [${Q}, ${kk}] are over the ${maxBinding}-byte binding limit; search fewer queries per call`);
}

/**
 * Top-k passages by dot product for each query. queries: [Q, H] f32. index: chunks [rows_c, H],
 * all f32 or all f16 (H % 4 == 0, needs 'shader-f16'); passage ids count rows across the chunks
 * in order. outScores [Q, min(k, N)] f32, outIds [Q, min(k, N)] u32: best first, equal scores
 * by smaller id. Records the work; read the outputs to wait for it. Returns the plan it used.
 */
export function topkForward(gpu: Gpu, outScores: Tensor, outIds: Tensor, queries: Tensor, index: readonly Tensor[], k: number, o: TopkOptions = {}): TopkPlan {
  if (queries.shape.length !== 2) throw new Error(`topk: queries ${queries} must be [Q, H]`);
  if (queries.dtype !== 'f32') throw new Error(`topk: queries ${queries} must be f32`);
  const [Q, H] = queries.shape;
  if (index.length === 0) throw new Error('topk: the index has no chunks');
  const dtype = index[0].dtype;
  if (dtype !== 'f32' && dtype !== 'f16') throw new Error(`topk: index chunk ${index[0]} must be f32 or f16`);
  index.forEach((c, i) => {
    if (c.shape.length !== 2 || c.shape[1] !== H) throw new Error(`topk: index chunk ${i} ${c} must be [rows, ${H}] to match queries ${queries}`);
    if (c.dtype !== dtype) throw new Error(`topk: index chunk ${i} ${c} is ${c.dtype}, chunk 0 is ${dtype}; use one dtype`);
    if (c.byteLength > gpu.limits.maxBinding) throw new Error(`topk: index chunk ${i} ${c} is ${c.byteLength} bytes, over the ${gpu.limits.maxBinding}-byte binding limit; use smaller chunks`);
  });
  if (dtype === 'f16') {
    if (!gpu.features.has('shader-f16')) throw new Error(`topk: an f16 index needs 'shader-f16', which ${gpu.name} lacks; upload it as f32`);
    if (H % 4) throw new Error(`topk: an f16 index needs H % 4 == 0 (H = ${H}); upload it as f32`);
  }
  const chunkRows = index.map((c) => c.shape[0]);
  const p = topkPlan(gpu, Q, chunkRows, H, k, dtype === 'f16' ? 2 : 4, o);
  checkOutputs('topk', outScores, outIds, Q, p.k, gpu.limits.maxBinding);
  topkBlocksForward(gpu, outScores, outIds, Q, chunkRows, p, (scores, g0, rows, c, b0, nb) => {
    const q = rows === Q ? queries : queries.rows(g0, rows);
    const chunk = index[c];
    const passages = nb === chunk.shape[0] ? chunk : chunk.rows(b0, nb);
    if (dtype === 'f32') matmul(gpu, scores, q, passages, { transB: true, tile: o.tile ?? scoresTile(gpu, rows) });
    else scoresF16(gpu, scores, q, passages);
  }, o);
  return p;
}

/**
 * Writes scores [rows, nb] of queries [g0, g0 + rows) against rows [b0, b0 + nb) of index
 * chunk c: the one step that depends on how the index is stored.
 */
export type BlockScorer = (scores: Tensor, g0: number, rows: number, chunk: number, b0: number, nb: number) => void;

/**
 * The running top-k of topkForward (see the header) over any score source: for Q queries and
 * chunks of `chunkRows` rows, split as plan `p` says, `score` fills each block's scores.
 * Quantized indexes (core/kernels/quantized.ts) use it with their own scoring kernels.
 */
export function topkBlocksForward(gpu: Gpu, outScores: Tensor, outIds: Tensor, Q: number, chunkRows: readonly number[], p: TopkPlan, score: BlockScorer, o: TopkOptions = {}): void {
  checkOutputs('topk', outScores, outIds, Q, p.k, gpu.limits.maxBinding);
  if (Q === 0) return;
  const wg = o.wg ?? topkWg(gpu);
  const scratch = gpu.empty([p.queryRows * p.block]);
  for (let g0 = 0; g0 < Q; g0 += p.queryRows) {
    const rows = Math.min(p.queryRows, Q - g0);
    const lists = [newList(gpu, rows, p.listWidth), newList(gpu, rows, p.listWidth)];
    const thr = gpu.zeros([rows], 'u32');
    let step = 0;
    let idBase = 0;
    for (let c = 0; c < chunkRows.length; c++) {
      const n = chunkRows[c];
      for (let b0 = 0; b0 < n; b0 += p.block, step++) {
        const nb = Math.min(p.block, n - b0);
        const scores = scratch.rows(0, rows * nb).reshape([rows, nb]);
        score(scores, g0, rows, c, b0, nb);
        // cur holds the running top-k in columns [0, k) (none before the first block).
        const cur = lists[step % 2];
        const next = lists[(step + 1) % 2];
        const col = step === 0 ? 0 : p.k;
        select(gpu, { input: scores, ids: null, rows, n: nb, inStride: nb, seg: p.segment, k: p.k, outKeys: cur.keys, outIds: cur.ids, outStride: cur.width, outCol: col, idBase: idBase + b0, thrIn: thr, wg });
        const m = col + Math.ceil(nb / p.segment) * p.k;
        select(gpu, { input: cur.keys, ids: cur.ids, rows, n: m, inStride: cur.width, seg: m, k: p.k, outKeys: next.keys, outIds: next.ids, outStride: next.width, outCol: 0, idBase: 0, thrOut: thr, wg });
      }
      idBase += n;
    }
    const fin = lists[step % 2];
    if (o.unsorted) select(gpu, { input: fin.keys, ids: fin.ids, rows, n: p.k, inStride: fin.width, seg: p.k, k: p.k, outKeys: outScores, outIds, outStride: p.k, outCol: 0, outRow: g0, idBase: 0, wg });
    else sort(gpu, fin, rows, p.k, wg, outScores, outIds, g0);
    lists.forEach(releaseList);
    thr.release();
  }
  scratch.release();
}

/** scores [rows, n] = queries [rows, H] (f32) @ passages [n, H]^T (f16). */
function scoresF16(gpu: Gpu, scores: Tensor, queries: Tensor, passages: Tensor): void {
  const [rows, H] = queries.shape;
  const n = passages.shape[0];
  gpu.dispatch({
    kernel: 'topk',
    entry: 'scores_forward',
    defines: { SCORES: true, WG: SCORES_WG, TQ, TP },
    bindings: [scores, queries, passages],
    uniforms: { rows, n, inStride: H / 4, seg: 0, k: 0, outStride: 0, outCol: 0, outRow: 0, idBase: 0 },
    workgroups: [Math.ceil(n / (SCORES_WG * TP)), Math.ceil(rows / TQ)],
  });
}

/**
 * Top-k columns of each row of scores [R, N] (f32, one storage binding). outScores
 * [R, min(k, N)] f32 and outIds [R, min(k, N)] u32 (column indices): best first, equal scores
 * by smaller column. Only `segment` and `wg` of the options apply.
 */
export function topkScoresForward(gpu: Gpu, outScores: Tensor, outIds: Tensor, scores: Tensor, k: number, o: TopkOptions = {}): void {
  checkK('topk scores', k);
  if (scores.shape.length !== 2) throw new Error(`topk scores: scores ${scores} must be [R, N]`);
  if (scores.dtype !== 'f32') throw new Error(`topk scores: scores ${scores} must be f32`);
  const [R, N] = scores.shape;
  if (N === 0) throw new Error(`topk scores: scores ${scores} has no columns`);
  if (scores.byteLength > gpu.limits.maxBinding) throw new Error(`topk scores: scores ${scores} is over the ${gpu.limits.maxBinding}-byte binding limit; split its rows`);
  if (R > gpu.limits.maxWorkgroupsPerDim) throw new Error(`topk scores: ${R} rows, over ${gpu.limits.maxWorkgroupsPerDim}; split its rows`);
  const kk = Math.min(k, N);
  checkOutputs('topk scores', outScores, outIds, R, kk, gpu.limits.maxBinding);
  if (R === 0) return;
  const wg = o.wg ?? topkWg(gpu);
  const seg = segmentWidth(kk, o);
  if (Math.ceil(N / seg) > gpu.limits.maxWorkgroupsPerDim) throw new Error(`topk scores: segment ${seg} is too narrow for ${N} columns`);
  // Select segments of the row, then of the candidates, until one segment's k remain.
  let list: List | null = null;
  let n = N;
  do {
    const m = Math.ceil(n / seg) * kk;
    const next = newList(gpu, R, roundUp4(m));
    const input = list ? { input: list.keys, ids: list.ids, inStride: list.width } : { input: scores, ids: null, inStride: N };
    select(gpu, { ...input, rows: R, n, seg, k: kk, outKeys: next.keys, outIds: next.ids, outStride: next.width, outCol: 0, idBase: 0, wg });
    if (list) releaseList(list);
    list = next;
    n = m;
  } while (n > kk);
  sort(gpu, list, R, kk, wg, outScores, outIds, 0);
  releaseList(list);
}
