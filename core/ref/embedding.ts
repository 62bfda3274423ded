// CPU references for shaders/embedding.wgsl. The forward sums in f32 in Hugging Face's order,
// (word + token_type) + position, so the GPU must match it exactly; ids are clamped like the
// shader's. The backward (below) accumulates in float64.

export function embeddingRef(
  ids: Uint32Array, // [B, L]
  tokenTypes: Uint32Array | null, // [B, L]
  word: Float32Array, // [V, H]
  position: Float32Array | null, // [P, H]
  tokenType: Float32Array | null, // [T, H]
  B: number,
  L: number,
  H: number,
): Float32Array {
  const V = word.length / H;
  const out = new Float32Array(B * L * H);
  for (let b = 0; b < B; b++) {
    for (let l = 0; l < L; l++) {
      const tok = b * L + l;
      const id = Math.min(ids[tok], V - 1);
      const tt = tokenType ? Math.min(tokenTypes ? tokenTypes[tok] : 0, tokenType.length / H - 1) : 0;
      for (let h = 0; h < H; h++) {
        let v = word[id * H + h];
        if (tokenType) v = Math.fround(v + tokenType[tt * H + h]);
        if (position) v = Math.fround(v + position[l * H + h]);
        out[tok * H + h] = v;
      }
    }
  }
  return out;
}

export interface EmbeddingBackwardRef {
  dword: Float64Array; // [V, H]
  dposition: Float64Array | null; // [P, H]
  dtokenType: Float64Array | null; // [T, H]
}

/**
 * Scatter-add of dout [B, L, H] into the tables' gradients in float64: dword[ids] (never the
 * padTokenId row), dposition[l] over the batch, dtokenType[tokenTypes or 0]. P or T = 0
 * means the table is absent.
 */
export function embeddingBackwardRef(
  dout: ArrayLike<number>, // [B, L, H]
  ids: ArrayLike<number>, // [B, L]
  tokenTypes: ArrayLike<number> | null, // [B, L]
  B: number,
  L: number,
  H: number,
  V: number,
  P: number,
  T: number,
  padTokenId: number | null = null,
): EmbeddingBackwardRef {
  const dword = new Float64Array(V * H);
  const dposition = P ? new Float64Array(P * H) : null;
  const dtokenType = T ? new Float64Array(T * H) : null;
  for (let tok = 0; tok < B * L; tok++) {
    const l = tok % L;
    const tt = tokenTypes ? tokenTypes[tok] : 0;
    for (let h = 0; h < H; h++) {
      const g = dout[tok * H + h];
      if (ids[tok] !== padTokenId) dword[ids[tok] * H + h] += g;
      if (dposition) dposition[l * H + h] += g;
      if (dtokenType) dtokenType[tt * H + h] += g;
    }
  }
  return { dword, dposition, dtokenType };
}
