// CPU references for shaders/topk.wgsl: scores in float64, then a full sort of every row.
// The order is the kernels': larger score first, equal scores by smaller id.

export interface TopkResult {
  /** [rows, k] best first. */
  scores: Float64Array;
  /** [rows, k] column (passage) ids. */
  ids: Uint32Array;
  /** Results per row: min(k, N). */
  k: number;
}

/** Top-k of each row of scores [rows, N] by a full sort (ties: smaller column first). */
export function topkScoresRef(scores: ArrayLike<number>, rows: number, N: number, k: number): TopkResult {
  const kk = Math.min(k, N);
  const outScores = new Float64Array(rows * kk);
  const outIds = new Uint32Array(rows * kk);
  const order = new Uint32Array(N);
  for (let r = 0; r < rows; r++) {
    const base = r * N;
    for (let j = 0; j < N; j++) order[j] = j;
    // -0 and +0 compare equal here (as in the kernel), so they tie by id.
    order.sort((a, b) => scores[base + b] - scores[base + a] || a - b);
    for (let j = 0; j < kk; j++) {
      outIds[r * kk + j] = order[j];
      outScores[r * kk + j] = scores[base + order[j]];
    }
  }
  return { scores: outScores, ids: outIds, k: kk };
}

/**
 * Every score of queries [Q, H] against index [N, H] in float64, and sum_h |q_h p_h| per
 * score (the scale of f32 rounding errors).
 */
export function scoresRef(queries: ArrayLike<number>, index: ArrayLike<number>, Q: number, N: number, H: number): { scores: Float64Array; absSum: Float64Array } {
  const scores = new Float64Array(Q * N);
  const absSum = new Float64Array(Q * N);
  for (let q = 0; q < Q; q++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      let a = 0;
      for (let h = 0; h < H; h++) {
        const x = queries[q * H + h] * index[j * H + h];
        s += x;
        a += Math.abs(x);
      }
      scores[q * N + j] = s;
      absSum[q * N + j] = a;
    }
  }
  return { scores, absSum };
}

/** Top-k passages of index [N, H] by dot product for each query of [Q, H] (float64 scores). */
export function topkRef(queries: ArrayLike<number>, index: ArrayLike<number>, Q: number, N: number, H: number, k: number): TopkResult & { all: Float64Array; absSum: Float64Array } {
  const { scores, absSum } = scoresRef(queries, index, Q, N, H);
  return { ...topkScoresRef(scores, Q, N, k), all: scores, absSum };
}
