// CPU references for shaders/attention.wgsl in float64: the forward (plain two-pass softmax, no
// blocking, so it checks the kernel's online-softmax bookkeeping as well as its arithmetic)
// and, below it, the backward (analytic gradients with every probability recomputed in float64).
// Inputs may be f32 or f64 arrays (the gradient checker evaluates the forward in f64).

import { LSE_NO_KEYS } from '../kernels/attention.ts';

export interface AttentionRef {
  out: Float32Array; // [B, L, H]
  lse: Float32Array; // [B, heads, L]
}

export interface AttentionRef64 {
  out: Float64Array; // [B, L, H]
  lse: Float64Array; // [B, heads, L]
}

/**
 * qkv [B, L, 3H] packed [q | k | v] per token (H = heads * d, head-major), mask [B, L] (1 real,
 * 0 padding). Scores q.k / sqrt(d); padded keys excluded; rows with no real key give out = 0 and
 * lse = LSE_NO_KEYS, as the kernel defines. Rounded to float32 once per output.
 */
export function attentionRef(qkv: ArrayLike<number>, mask: ArrayLike<number>, B: number, L: number, heads: number, d: number): AttentionRef {
  const r = attentionRef64(qkv, mask, B, L, heads, d);
  return { out: Float32Array.from(r.out), lse: Float32Array.from(r.lse) };
}

/** attentionRef without the final rounding to float32. */
export function attentionRef64(qkv: ArrayLike<number>, mask: ArrayLike<number>, B: number, L: number, heads: number, d: number): AttentionRef64 {
  const H = heads * d;
  const stride = 3 * H;
  const scale = 1 / Math.sqrt(d);
  const out = new Float64Array(B * L * H);
  const lse = new Float64Array(B * heads * L);
  const s = new Float64Array(L);
  const o = new Float64Array(d);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < L; i++) {
        const qAt = (b * L + i) * stride + h * d;
        let max = -Infinity;
        for (let j = 0; j < L; j++) {
          if (!mask[b * L + j]) continue;
          const kAt = (b * L + j) * stride + H + h * d;
          let dot = 0;
          for (let c = 0; c < d; c++) dot += qkv[qAt + c] * qkv[kAt + c];
          s[j] = dot * scale;
          if (s[j] > max) max = s[j];
        }
        const lseAt = (b * heads + h) * L + i;
        const oAt = (b * L + i) * H + h * d;
        if (max === -Infinity) {
          lse[lseAt] = LSE_NO_KEYS; // out row stays 0
          continue;
        }
        let sum = 0;
        o.fill(0);
        for (let j = 0; j < L; j++) {
          if (!mask[b * L + j]) continue;
          const p = Math.exp(s[j] - max);
          sum += p;
          const vAt = (b * L + j) * stride + 2 * H + h * d;
          for (let c = 0; c < d; c++) o[c] += p * qkv[vAt + c];
        }
        for (let c = 0; c < d; c++) out[oAt + c] = o[c] / sum;
        lse[lseAt] = max + Math.log(sum);
      }
    }
  }
  return { out, lse };
}

export interface AttentionBackwardRef {
  /** [B, L, 3H]: [dq | dk | dv] per token. */
  dqkv: Float64Array;
  /**
   * [B, L, 3H]: for each gradient element, the sum of the magnitudes of the terms that form it
   * (the same sums with every factor replaced by its absolute value, dP and delta by the sums
   * of |dout| |v| and |dout| |out|). Rounding errors of a float32 kernel scale with these, not
   * with the gradient itself, which cancels (each row of dS sums to 0): tests size their
   * tolerances from them.
   */
  magnitude: Float64Array;
}

/**
 * Gradient of sum(dout * attention(qkv).out) with respect to qkv, all in float64 from qkv:
 * p = softmax over real keys of q.k / sqrt(d), dP = dout v^T, delta_i = sum_j p_ij dP_ij,
 * dS = p (dP - delta), dq = dS k / sqrt(d), dk = dS^T q / sqrt(d), dv = p^T dout. Padded keys
 * and rows with no real key have zero gradient; padded query rows are ordinary rows.
 */
export function attentionBackwardRef(dout: ArrayLike<number>, qkv: ArrayLike<number>, mask: ArrayLike<number>, B: number, L: number, heads: number, d: number): AttentionBackwardRef {
  const H = heads * d;
  const stride = 3 * H;
  const scale = 1 / Math.sqrt(d);
  const { out } = attentionRef64(qkv, mask, B, L, heads, d);
  const dqkv = new Float64Array(B * L * stride);
  const mag = new Float64Array(B * L * stride);
  const p = new Float64Array(L);
  const ds = new Float64Array(L);
  const dsAbs = new Float64Array(L);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < L; i++) {
        const qAt = (b * L + i) * stride + h * d;
        const oAt = (b * L + i) * H + h * d;
        // p_ij, two-pass like the forward
        let max = -Infinity;
        for (let j = 0; j < L; j++) {
          if (!mask[b * L + j]) continue;
          const kAt = (b * L + j) * stride + H + h * d;
          let dot = 0;
          for (let c = 0; c < d; c++) dot += qkv[qAt + c] * qkv[kAt + c];
          p[j] = dot * scale;
          if (p[j] > max) max = p[j];
        }
        if (max === -Infinity) continue; // no real key: out = 0 is constant, no gradient
        let sum = 0;
        for (let j = 0; j < L; j++) {
          if (!mask[b * L + j]) continue;
          p[j] = Math.exp(p[j] - max);
          sum += p[j];
        }
        let delta = 0;
        let deltaAbs = 0;
        for (let c = 0; c < d; c++) {
          delta += dout[oAt + c] * out[oAt + c];
          deltaAbs += Math.abs(dout[oAt + c] * out[oAt + c]);
        }
        for (let j = 0; j < L; j++) {
          if (!mask[b * L + j]) continue;
          p[j] /= sum;
          const vAt = (b * L + j) * stride + 2 * H + h * d;
          let dp = 0;
          let dpAbs = 0;
          for (let c = 0; c < d; c++) {
            dp += dout[oAt + c] * qkv[vAt + c];
            dpAbs += Math.abs(dout[oAt + c] * qkv[vAt + c]);
          }
          ds[j] = p[j] * (dp - delta);
          dsAbs[j] = p[j] * (dpAbs + deltaAbs);
        }
        for (let j = 0; j < L; j++) {
          if (!mask[b * L + j]) continue;
          const kAt = (b * L + j) * stride + H + h * d;
          for (let c = 0; c < d; c++) {
            const g = dout[oAt + c];
            dqkv[qAt + c] += scale * ds[j] * qkv[kAt + c];
            mag[qAt + c] += scale * dsAbs[j] * Math.abs(qkv[kAt + c]);
            dqkv[kAt + c] += scale * ds[j] * qkv[qAt + c];
            mag[kAt + c] += scale * dsAbs[j] * Math.abs(qkv[qAt + c]);
            dqkv[kAt + H + c] += p[j] * g;
            mag[kAt + H + c] += p[j] * Math.abs(g);
          }
        }
      }
    }
  }
  return { dqkv, magnitude: mag };
}
