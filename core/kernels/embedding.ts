// Launchers for shaders/embedding.wgsl. The backward (a scatter-add into the tables) will sit
// right below the forward.

import type { Gpu } from '../gpu/device.ts';
import { fmtBytes } from '../gpu/device.ts';
import { type Tensor, expectShape } from '../gpu/tensor.ts';
import { expectDtype, forEachRowChunk } from './elementwise.ts';

const WG = 256;

/**
 * Throw a clear error if any id is outside [0, vocab). The shader clamps ids so it never reads
 * out of bounds, but a clamped id silently embeds the wrong token: validate before upload.
 */
export function checkIds(ids: Uint32Array, vocab: number, what: string): void {
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] >= vocab) {
      throw new Error(`${what}: id ${ids[i]} at index ${i} is out of range for a table of ${vocab} rows (valid ids are 0..${vocab - 1})`);
    }
  }
}

/**
 * out[b, l] = word[ids[b, l]] + (position ? position[l] : 0)
 *           + (tokenType ? tokenType[tokenTypes ? tokenTypes[b, l] : 0] : 0)
 * added in Hugging Face's order ((word + token_type) + position). BERT passes all three tables;
 * GTE v1.5 passes word and, when the checkpoint has one, token_type (row 0 unless tokenTypes
 * is given), and no position table. tokenTypes is ignored when there is no token_type table.
 * Out-of-range ids are clamped to the last row (no out-of-bounds read); use checkIds() first.
 *
 * out: [B, L, H], ids: [B, L] u32, tokenTypes: [B, L] u32 | null, word: [V, H],
 * position: [P, H] with P >= L | null, tokenType: [T, H] | null.
 */
export function embeddingForward(
  gpu: Gpu,
  out: Tensor /* [B, L, H] */,
  ids: Tensor /* [B, L] u32 */,
  tokenTypes: Tensor | null /* [B, L] u32 */,
  word: Tensor /* [V, H] */,
  position: Tensor | null /* [P, H] */,
  tokenType: Tensor | null /* [T, H] */,
): void {
  if (ids.shape.length !== 2) throw new Error(`embedding: ids must be [B, L], got [${ids.shape.join(', ')}]`);
  if (word.shape.length !== 2) throw new Error(`embedding: word table must be [V, H], got [${word.shape.join(', ')}]`);
  const [B, L] = ids.shape;
  const [V, H] = word.shape;
  expectShape('embedding: out', out, [B, L, H]);
  expectDtype('embedding: out', out, 'f32');
  expectDtype('embedding: ids', ids, 'u32');
  expectDtype('embedding: word', word, 'f32');
  if (V === 0) throw new Error('embedding: word table has no rows');
  const tables: [string, Tensor][] = [['word', word]];
  if (position) {
    if (position.shape.length !== 2 || position.shape[1] !== H) {
      throw new Error(`embedding: position table: expected shape [P, ${H}], got [${position.shape.join(', ')}]`);
    }
    if (position.shape[0] < L) throw new Error(`embedding: sequence length ${L} exceeds the position table's ${position.shape[0]} rows`);
    expectDtype('embedding: position', position, 'f32');
    tables.push(['position', position]);
  }
  const useTypeIds = tokenType !== null && tokenTypes !== null;
  if (tokenType) {
    if (tokenType.shape.length !== 2 || tokenType.shape[1] !== H || tokenType.shape[0] === 0) {
      throw new Error(`embedding: token_type table: expected shape [T >= 1, ${H}], got [${tokenType.shape.join(', ')}]`);
    }
    expectDtype('embedding: tokenType', tokenType, 'f32');
    tables.push(['token_type', tokenType]);
  }
  if (useTypeIds) {
    expectShape('embedding: tokenTypes', tokenTypes!, [B, L]);
    expectDtype('embedding: tokenTypes', tokenTypes!, 'u32');
  }
  // Tables are bound whole (any row may be read); a chunked table would need one pass per chunk.
  for (const [name, t] of tables) {
    if (t.byteLength > gpu.limits.maxBinding) {
      throw new Error(
        `embedding: ${name} table [${t.shape.join(', ')}] is ${fmtBytes(t.byteLength)}, over this adapter's ${fmtBytes(gpu.limits.maxBinding)} storage binding limit`,
      );
    }
  }
  if (H === 0) return;
  const rowBytes = [L * H * 4, L * 4, ...(useTypeIds ? [L * 4] : [])];
  forEachRowChunk(gpu, 'embedding', B, rowBytes, (start, count) => {
    const n = count * L * H;
    gpu.dispatch({
      kernel: 'embedding',
      entry: 'forward',
      defines: { WG, HAS_POSITION: position !== null, HAS_TOKEN_TYPE: tokenType !== null, HAS_TOKEN_TYPE_IDS: useTypeIds },
      bindings: [out.rows(start, count), ids.rows(start, count), word, position, tokenType, useTypeIds ? tokenTypes!.rows(start, count) : null],
      uniforms: [n, L, H, V, tokenType ? tokenType.shape[0] : 1],
      workgroups: gpu.grid(Math.ceil(n / WG)),
    });
  });
}
