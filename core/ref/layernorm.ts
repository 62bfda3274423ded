// CPU references for shaders/layernorm.wgsl in float64: the forward (two-pass mean and biased
// variance) and, below it, the backward. Inputs may be f32 or f64 arrays (the gradient
// checker evaluates the forward in f64).

export interface LayerNormRef {
  out: Float64Array; // [N, C]
  mean: Float64Array; // [N]
  rstd: Float64Array; // [N], 1 / sqrt(var + eps)
}

export function layerNormRef(x: ArrayLike<number>, weight: ArrayLike<number>, bias: ArrayLike<number>, N: number, C: number, eps: number): LayerNormRef {
  const out = new Float64Array(N * C);
  const mean = new Float64Array(N);
  const rstd = new Float64Array(N);
  for (let r = 0; r < N; r++) {
    const base = r * C;
    let s = 0;
    for (let c = 0; c < C; c++) s += x[base + c];
    const m = s / C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (x[base + c] - m) ** 2;
    const rs = 1 / Math.sqrt(v / C + eps);
    for (let c = 0; c < C; c++) out[base + c] = (x[base + c] - m) * rs * weight[c] + bias[c];
    mean[r] = m;
    rstd[r] = rs;
  }
  return { out, mean, rstd };
}

export interface LayerNormBackwardRef {
  dx: Float64Array; // [N, C]
  dweight: Float64Array; // [C]
  dbias: Float64Array; // [C]
}

/**
 * Gradients of sum(dout * layerNorm(x)) with the statistics recomputed in float64:
 * dx = rstd (g - mean_c(g) - xhat mean_c(g xhat)) with g = dout * weight,
 * dweight = sum_rows dout * xhat, dbias = sum_rows dout.
 */
export function layerNormBackwardRef(
  dout: ArrayLike<number>,
  x: ArrayLike<number>,
  weight: ArrayLike<number>,
  N: number,
  C: number,
  eps: number,
): LayerNormBackwardRef {
  const { mean, rstd } = layerNormRef(x, weight, new Float64Array(C), N, C, eps);
  const dx = new Float64Array(N * C);
  const dweight = new Float64Array(C);
  const dbias = new Float64Array(C);
  const xhat = new Float64Array(C);
  for (let r = 0; r < N; r++) {
    const base = r * C;
    let sg = 0;
    let sgx = 0;
    for (let c = 0; c < C; c++) {
      xhat[c] = (x[base + c] - mean[r]) * rstd[r];
      const g = dout[base + c] * weight[c];
      sg += g;
      sgx += g * xhat[c];
      dweight[c] += dout[base + c] * xhat[c];
      dbias[c] += dout[base + c];
    }
    for (let c = 0; c < C; c++) {
      const g = dout[base + c] * weight[c];
      dx[base + c] = rstd[r] * (g - sg / C - (xhat[c] * sgx) / C);
    }
  }
  return { dx, dweight, dbias };
}
