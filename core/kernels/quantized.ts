// Launchers for shaders/quantized.wgsl: top-k over an int8 or binary index (formats in
// core/retrieval/quantize.ts) through topk's running selection (topkBlocksForward), with the
// score block computed from the codes instead of by matmul.
//
// quantizedTopkForward(gpu, outScores, outIds, queries, chunks, kind, k)
//   queries [Q, Hp] f32, prepared by prepareQueries (int8: times the scales); chunks [rows_c, W]
//   u32 codes; outputs [Q, min(k, N)] best first, equal scores by smaller id, as topkForward.

import type { Gpu } from '../gpu/device.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { type QuantKind, quantWords } from '../retrieval/quantize.ts';
import { type TopkOptions, type TopkPlan, topkBlocksForward, topkPlan } from './topk.ts';

const TQ = 4;
const TP = 4;
const WG = 64;

/** Query values per code word: 4 int8 dims or 32 sign bits. */
export function valuesPerWord(kind: QuantKind): number {
  return kind === 'int8' ? 4 : 32;
}

/**
 * Queries [Q, dim] -> the kernel's [Q, W x valuesPerWord] layout: int8 multiplies by the scales
 * (so the kernel dots with the raw codes), both pad with zeros to whole words.
 */
export function prepareQueries(queries: Float32Array, dim: number, kind: QuantKind, scales?: Float32Array): Float32Array {
  const Q = queries.length / dim;
  const Hp = quantWords(kind, dim) * valuesPerWord(kind);
  const out = new Float32Array(Q * Hp);
  for (let q = 0; q < Q; q++) {
    for (let h = 0; h < dim; h++) out[q * Hp + h] = queries[q * dim + h] * (kind === 'int8' ? scales![h] : 1);
  }
  return out;
}

/** scores [rows, nb] of queries [rows, Hp] against rows [rowOff, rowOff + nb) of codes. */
export function scoresQuantized(gpu: Gpu, kind: QuantKind, scores: Tensor, queries: Tensor, codes: Tensor, rowOff: number): void {
  const [rows, nb] = scores.shape;
  const W = codes.shape[1];
  if (queries.shape[1] !== W * valuesPerWord(kind)) throw new Error(`quantized scores: queries ${queries} must be [rows, ${W * valuesPerWord(kind)}] for ${W}-word ${kind} rows`);
  gpu.dispatch({
    kernel: 'quantized',
    entry: kind === 'int8' ? 'scores_int8' : 'scores_binary',
    defines: { INT8: kind === 'int8', BINARY: kind === 'binary', WG, TQ, TP },
    bindings: [scores, queries, codes],
    uniforms: { rows, n: nb, words: W, rowOff },
    workgroups: [Math.ceil(nb / (WG * TP)), Math.ceil(rows / TQ)],
  });
}

/** How quantizedTopkForward splits the work (the f32 query rows set the view alignment). */
export function quantizedPlan(gpu: Gpu, Q: number, chunkRows: readonly number[], Hp: number, k: number, o: TopkOptions = {}): TopkPlan {
  // Blocks are addressed by row offset, not buffer views, so any block size works; passing
  // 4-byte values keeps topkPlan's alignment rule harmless.
  return topkPlan(gpu, Q, chunkRows, Hp, k, 4, o);
}

export function quantizedTopkForward(gpu: Gpu, outScores: Tensor, outIds: Tensor, queries: Tensor, chunks: readonly Tensor[], kind: QuantKind, k: number, o: TopkOptions = {}): TopkPlan {
  if (queries.shape.length !== 2 || queries.dtype !== 'f32') throw new Error(`quantized topk: queries ${queries} must be f32 [Q, Hp]`);
  const [Q, Hp] = queries.shape;
  if (!chunks.length) throw new Error('quantized topk: the index has no chunks');
  chunks.forEach((c, i) => {
    if (c.dtype !== 'u32' || c.shape.length !== 2 || c.shape[1] * valuesPerWord(kind) !== Hp) throw new Error(`quantized topk: chunk ${i} ${c} must be u32 [rows, ${Hp / valuesPerWord(kind)}]`);
  });
  const p = quantizedPlan(gpu, Q, chunks.map((c) => c.shape[0]), Hp, k, o);
  topkBlocksForward(gpu, outScores, outIds, Q, chunks.map((c) => c.shape[0]), p, (scores, g0, rows, c, b0) => {
    scoresQuantized(gpu, kind, scores, rows === Q ? queries : queries.rows(g0, rows), chunks[c], b0);
  }, o);
  return p;
}
