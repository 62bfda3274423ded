// CPU reference for shaders/attention.wgsl: plain two-pass softmax in float64, no blocking, so
// it checks the kernel's online-softmax bookkeeping as well as its arithmetic.

import { LSE_NO_KEYS } from '../kernels/attention.ts';

export interface AttentionRef {
  out: Float32Array; // [B, L, H]
  lse: Float32Array; // [B, heads, L]
}

/**
 * qkv [B, L, 3H] packed [q | k | v] per token (H = heads * d, head-major), mask [B, L] (1 real,
 * 0 padding). Scores q.k / sqrt(d); padded keys excluded; rows with no real key give out = 0 and
 * lse = LSE_NO_KEYS, as the kernel defines.
 */
export function attentionRef(qkv: Float32Array, mask: ArrayLike<number>, B: number, L: number, heads: number, d: number): AttentionRef {
  const H = heads * d;
  const stride = 3 * H;
  const scale = 1 / Math.sqrt(d);
  const out = new Float32Array(B * L * H);
  const lse = new Float32Array(B * heads * L);
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
