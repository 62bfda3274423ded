// CPU reference for core/kernels/loss.ts (contrastive InfoNCE loss), in float64. Inputs may be
// f32 or f64 arrays (the gradient checker evaluates it in f64).

export interface ContrastiveLossRef {
  /** mean_i loss_i */
  loss: number;
  /** [Q] cross-entropy of each query's row */
  rowLoss: Float64Array;
  /** [Q, P] softmax(s_i) - onehot(i * G): d(sum_i loss_i)/ds */
  dlogits: Float64Array;
  /** [Q, H], [P, H]: gradients of scale * loss */
  dq: Float64Array;
  dp: Float64Array;
}

/**
 * s = q p^T / temperature ([Q, P], P = Q * G), loss = mean_i (logsumexp(s_i) - s[i, i * G]),
 * dq = scale / (Q T) dS p, dp = scale / (Q T) dS^T q with dS = softmax(s) - onehot.
 */
export function contrastiveLossRef(
  q: ArrayLike<number>,
  p: ArrayLike<number>,
  Q: number,
  H: number,
  G: number,
  temperature: number,
  scale = 1,
): ContrastiveLossRef {
  const P = Q * G;
  const dlogits = new Float64Array(Q * P);
  const rowLoss = new Float64Array(Q);
  const s = new Float64Array(P);
  let total = 0;
  for (let i = 0; i < Q; i++) {
    let m = -Infinity;
    for (let j = 0; j < P; j++) {
      let d = 0;
      for (let h = 0; h < H; h++) d += q[i * H + h] * p[j * H + h];
      s[j] = d / temperature;
      m = Math.max(m, s[j]);
    }
    let sum = 0;
    for (let j = 0; j < P; j++) sum += Math.exp(s[j] - m);
    const t = i * G;
    rowLoss[i] = m - s[t] + Math.log(sum);
    total += rowLoss[i];
    for (let j = 0; j < P; j++) dlogits[i * P + j] = Math.exp(s[j] - m) / sum - (j === t ? 1 : 0);
  }
  const alpha = scale / (Q * temperature);
  const dq = new Float64Array(Q * H);
  const dp = new Float64Array(P * H);
  for (let i = 0; i < Q; i++) {
    for (let j = 0; j < P; j++) {
      const g = alpha * dlogits[i * P + j];
      for (let h = 0; h < H; h++) {
        dq[i * H + h] += g * p[j * H + h];
        dp[j * H + h] += g * q[i * H + h];
      }
    }
  }
  return { loss: total / Q, rowLoss, dlogits, dq, dp };
}
