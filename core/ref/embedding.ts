// CPU reference for shaders/embedding.wgsl. The sum is done in f32 in Hugging Face's order,
// (word + token_type) + position, so the GPU must match it exactly; ids are clamped like the
// shader's.

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
