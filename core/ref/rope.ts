// CPU reference for shaders/rope.wgsl (float64 arithmetic, one rounding to float32 per output).

/**
 * qkv [B, L, 3H] (H = heads * d) with q and k rotated, v copied: for i < d/2 and position p,
 *   x'[i]       = x[i] * cos[p, i] - x[i + d/2] * sin[p, i]
 *   x'[i + d/2] = x[i + d/2] * cos[p, i + d/2] + x[i] * sin[p, i + d/2]
 * cos, sin: [Lmax, d] tables (Lmax >= L).
 */
export function ropeRef(qkv: Float32Array, B: number, L: number, heads: number, d: number, cos: Float32Array, sin: Float32Array): Float32Array {
  const H = heads * d;
  const half = d / 2;
  const out = qkv.slice();
  for (let b = 0; b < B; b++) {
    for (let p = 0; p < L; p++) {
      const tok = (b * L + p) * 3 * H;
      for (let g = 0; g < 2 * heads; g++) { // q heads then k heads: contiguous in [q | k]
        const base = tok + g * d;
        for (let i = 0; i < half; i++) {
          const x1 = qkv[base + i], x2 = qkv[base + i + half];
          const c = p * d + i;
          out[base + i] = x1 * cos[c] - x2 * sin[c];
          out[base + i + half] = x2 * cos[c + half] + x1 * sin[c + half];
        }
      }
    }
  }
  return out;
}
