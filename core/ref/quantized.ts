// CPU references for shaders/quantized.wgsl and the rescoring of core/retrieval/quantize-search.ts:
// quantized scores in float64 straight from the codes (int8Code / binarySign, not the kernel's
// packed arithmetic), then topk's full-sort order (larger score first, equal scores by smaller id).

import { type QuantKind, binarySign, int8Code, quantWords } from '../retrieval/quantize.ts';
import { type TopkResult, topkScoresRef } from './topk.ts';

/**
 * Scores [Q, N] of queries [Q, dim] against N code rows, and sum_h |q_h v_h| per score (the
 * scale of f32 rounding errors). int8: v = scale_h code_h; binary: v = +-1.
 */
export function quantScoresRef(queries: ArrayLike<number>, codes: ArrayLike<number>, kind: QuantKind, Q: number, N: number, dim: number, scales?: ArrayLike<number>): { scores: Float64Array; absSum: Float64Array } {
  const W = quantWords(kind, dim);
  const scores = new Float64Array(Q * N);
  const absSum = new Float64Array(Q * N);
  for (let j = 0; j < N; j++) {
    const v = new Float64Array(dim);
    // The kernel multiplies the query by the scale in f32 first (prepareQueries); so does this.
    for (let h = 0; h < dim; h++) v[h] = kind === 'int8' ? int8Code(codes, j * W, h) : binarySign(codes, j * W, h);
    for (let q = 0; q < Q; q++) {
      let s = 0;
      let a = 0;
      for (let h = 0; h < dim; h++) {
        const qh = kind === 'int8' ? Math.fround(queries[q * dim + h] * scales![h]) : queries[q * dim + h];
        s += qh * v[h];
        a += Math.abs(qh * v[h]);
      }
      scores[q * N + j] = s;
      absSum[q * N + j] = a;
    }
  }
  return { scores, absSum };
}

/** Top-c by quantized score (float64), as quantizedTopkForward returns them. */
export function quantTopkRef(queries: ArrayLike<number>, codes: ArrayLike<number>, kind: QuantKind, Q: number, N: number, dim: number, c: number, scales?: ArrayLike<number>): TopkResult & { all: Float64Array; absSum: Float64Array } {
  const { scores, absSum } = quantScoresRef(queries, codes, kind, Q, N, dim, scales);
  return { ...topkScoresRef(scores, Q, N, c), all: scores, absSum };
}

/** The best k of each query's candidate ids by exact float64 dot product with the full rows [N, dim]. */
export function rescoreRef(queries: ArrayLike<number>, full: ArrayLike<number>, dim: number, candIds: ArrayLike<number>, Q: number, c: number, k: number): TopkResult {
  const kk = Math.min(k, c);
  const scores = new Float64Array(Q * kk);
  const ids = new Uint32Array(Q * kk);
  for (let q = 0; q < Q; q++) {
    const ranked = Array.from({ length: c }, (_, j) => {
      const id = candIds[q * c + j];
      let s = 0;
      for (let h = 0; h < dim; h++) s += queries[q * dim + h] * full[id * dim + h];
      return { id, s };
    });
    ranked.sort((a, b) => b.s - a.s || a.id - b.id);
    for (let j = 0; j < kk; j++) {
      scores[q * kk + j] = ranked[j].s;
      ids[q * kk + j] = ranked[j].id;
    }
  }
  return { scores, ids, k: kk };
}
