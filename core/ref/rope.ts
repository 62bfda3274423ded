// CPU references for shaders/rope.wgsl in float64: the forward, then the backward. A Float32Array
// in gives one rounding to float32 per output; a Float64Array in (the gradient checker) stays
// float64.

/**
 * qkv [B, L, 3H] (H = heads * d) with q and k rotated, v copied: for i < d/2 and position p,
 *   x'[i]       = x[i] * cos[p, i] - x[i + d/2] * sin[p, i]
 *   x'[i + d/2] = x[i + d/2] * cos[p, i + d/2] + x[i] * sin[p, i + d/2]
 * cos, sin: [Lmax, d] tables (Lmax >= L).
 */
export function ropeRef<T extends Float32Array | Float64Array>(qkv: T, B: number, L: number, heads: number, d: number, cos: ArrayLike<number>, sin: ArrayLike<number>): T {
  return rotatePairs(qkv, B, L, heads, d, (x1, x2, c1, s1, c2, s2) => [x1 * c1 - x2 * s1, x2 * c2 + x1 * s2], cos, sin);
}

/**
 * Gradient with respect to qkv of sum(dqkv * ropeRef(qkv)): the transposed pair map
 *   g'[i]       = g[i] * cos[p, i] + g[i + d/2] * sin[p, i + d/2]
 *   g'[i + d/2] = g[i + d/2] * cos[p, i + d/2] - g[i] * sin[p, i]
 * on dq and dk; dv copied.
 */
export function ropeBackwardRef<T extends Float32Array | Float64Array>(dqkv: T, B: number, L: number, heads: number, d: number, cos: ArrayLike<number>, sin: ArrayLike<number>): T {
  return rotatePairs(dqkv, B, L, heads, d, (g1, g2, c1, s1, c2, s2) => [g1 * c1 + g2 * s2, g2 * c2 - g1 * s1], cos, sin);
}

type PairMap = (x1: number, x2: number, c1: number, s1: number, c2: number, s2: number) => [number, number];

function rotatePairs<T extends Float32Array | Float64Array>(x: T, B: number, L: number, heads: number, d: number, map: PairMap, cos: ArrayLike<number>, sin: ArrayLike<number>): T {
  const H = heads * d;
  const half = d / 2;
  const out = x.slice() as T;
  for (let b = 0; b < B; b++) {
    for (let p = 0; p < L; p++) {
      const tok = (b * L + p) * 3 * H;
      for (let g = 0; g < 2 * heads; g++) { // q heads then k heads: contiguous in [q | k]
        const base = tok + g * d;
        for (let i = 0; i < half; i++) {
          const c = p * d + i;
          const [y1, y2] = map(x[base + i], x[base + i + half], cos[c], sin[c], cos[c + half], sin[c + half]);
          out[base + i] = y1;
          out[base + i + half] = y2;
        }
      }
    }
  }
  return out;
}
