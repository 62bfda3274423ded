// CPU reference for shaders/matmul.wgsl, float64 accumulation.

export interface MatmulRefOptions {
  transA?: boolean;
  transB?: boolean;
  bias?: Float32Array; // [N]
  /** Previous contents of out, added to the result (the kernel's accumulate). */
  accumulate?: Float32Array;
  alpha?: number;
  /** Number of [M, K] x [K, N] products stacked in a/out. Default 1. */
  batch?: number;
  /** b holds one [K, N] matrix per batch item (otherwise every item shares b). */
  batchedB?: boolean;
}

export interface MatmulRefResult {
  out: Float32Array; // [batch, M, N]
  /**
   * Per-element error scale: |alpha| * sum_k |op(a)[m,k] * op(b)[k,n]| + |bias[n]| + |prev|,
   * the quantity f32 rounding errors are proportional to (see test/cases/matmul.ts).
   */
  absSum: Float64Array;
}

/** out = alpha * op(a) @ op(b) (+ bias) (+ accumulate), in float64, rounded once to f32. */
export function matmulRef(a: Float32Array, b: Float32Array, M: number, K: number, N: number, o: MatmulRefOptions = {}): MatmulRefResult {
  const batch = o.batch ?? 1;
  const alpha = o.alpha ?? 1;
  const out = new Float32Array(batch * M * N);
  const absSum = new Float64Array(batch * M * N);
  // op(a)[m, k] and op(b)[k, n] as flat indices within one batch item
  const ai = o.transA ? (m: number, k: number) => k * M + m : (m: number, k: number) => m * K + k;
  const bi = o.transB ? (k: number, n: number) => n * K + k : (k: number, n: number) => k * N + n;
  for (let z = 0; z < batch; z++) {
    const aOff = z * M * K;
    const bOff = o.batchedB ? z * K * N : 0;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        let s1 = 0;
        for (let k = 0; k < K; k++) {
          const t = a[aOff + ai(m, k)] * b[bOff + bi(k, n)];
          s += t;
          s1 += Math.abs(t);
        }
        const c = (z * M + m) * N + n;
        let v = alpha * s;
        let e = Math.abs(alpha) * s1;
        if (o.bias) {
          v += o.bias[n];
          e += Math.abs(o.bias[n]);
        }
        if (o.accumulate) {
          v += o.accumulate[c];
          e += Math.abs(o.accumulate[c]);
        }
        out[c] = v;
        absSum[c] = e;
      }
    }
  }
  return { out, absSum };
}

/**
 * out[c] = sum over rows of x[r, c] (+ accumulate[c]), float64 rounded once to f32, with the
 * error scale sum_r |x[r, c]| + |accumulate[c]| (the colsum kernel's bias gradient).
 */
export function colsumRef(x: Float32Array, rows: number, C: number, accumulate?: Float32Array): MatmulRefResult {
  const s = new Float64Array(C);
  const absSum = new Float64Array(C);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < C; c++) {
      s[c] += x[r * C + c];
      absSum[c] += Math.abs(x[r * C + c]);
    }
  }
  if (accumulate) {
    for (let c = 0; c < C; c++) {
      s[c] += accumulate[c];
      absSum[c] += Math.abs(accumulate[c]);
    }
  }
  return { out: Float32Array.from(s), absSum };
}

/** y = x @ wt (+ b) in float64 (not rounded): x [rows, in], wt [in, out], b [out]. For gradient checks. */
export function denseRef64(x: ArrayLike<number>, wt: ArrayLike<number>, b: ArrayLike<number> | null, rows: number, nIn: number, nOut: number): Float64Array {
  const y = new Float64Array(rows * nOut);
  for (let r = 0; r < rows; r++) {
    for (let n = 0; n < nOut; n++) {
      let s = b ? b[n] : 0;
      for (let k = 0; k < nIn; k++) s += x[r * nIn + k] * wt[k * nOut + n];
      y[r * nOut + n] = s;
    }
  }
  return y;
}

export interface DenseBackwardRef {
  dx: MatmulRefResult; // [rows, in]
  dwt: MatmulRefResult; // [in, out]
  db: MatmulRefResult; // [out]
}

/**
 * Backward of y = x @ wt + b in float64: dx = dy wt^T, dwt = x^T dy (+ prev), db = colsum(dy)
 * (+ prev); dy [rows, out], x [rows, in], wt [in, out].
 */
export function denseBackwardRef(
  dy: Float32Array,
  x: Float32Array,
  wt: Float32Array,
  rows: number,
  nIn: number,
  nOut: number,
  prev: { dwt?: Float32Array; db?: Float32Array } = {},
): DenseBackwardRef {
  return {
    dx: matmulRef(dy, wt, rows, nOut, nIn, { transB: true }),
    dwt: matmulRef(x, dy, nIn, rows, nOut, { transA: true, accumulate: prev.dwt }),
    db: colsumRef(dy, rows, nOut, prev.db),
  };
}

/** out [batch, C, R] = a [batch, R, C]: the last two dims swapped. */
export function transposeRef(a: Float32Array, batch: number, R: number, C: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let z = 0; z < batch; z++) {
    const base = z * R * C;
    for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) out[base + c * R + r] = a[base + r * C + c];
  }
  return out;
}
