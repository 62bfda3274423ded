// Token lists -> one right-padded batch, the layout the encoder takes: ids [rows, seqLen] with
// the pad id after each row's tokens, attention mask 1 on real tokens and 0 on padding. Used by
// inference (length-sorted batches), training (pieces in row order) and the tests.

export interface PaddedBatch {
  rows: number;
  /** The longest row's length (at least 1, so an all-empty batch still has a shape). */
  seqLen: number;
  ids: Uint32Array; // [rows, seqLen]
  mask: Uint32Array; // [rows, seqLen]
  lengths: number[];
  /** Real (unpadded) tokens. */
  tokens: number;
}

export function padBatch(encoded: readonly (readonly number[])[], padId: number): PaddedBatch {
  const lengths = encoded.map((r) => r.length);
  const L = Math.max(1, ...lengths);
  const ids = new Uint32Array(encoded.length * L).fill(padId);
  const mask = new Uint32Array(encoded.length * L);
  let tokens = 0;
  encoded.forEach((r, i) => {
    ids.set(r, i * L);
    mask.fill(1, i * L, i * L + r.length);
    tokens += r.length;
  });
  return { rows: encoded.length, seqLen: L, ids, mask, lengths, tokens };
}
