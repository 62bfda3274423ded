// CPU reference for shaders/layernorm.wgsl: float64 two-pass mean and biased variance.

export interface LayerNormRef {
  out: Float64Array; // [N, C]
  mean: Float64Array; // [N]
  rstd: Float64Array; // [N], 1 / sqrt(var + eps)
}

export function layerNormRef(x: Float32Array, weight: Float32Array, bias: Float32Array, N: number, C: number, eps: number): LayerNormRef {
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
