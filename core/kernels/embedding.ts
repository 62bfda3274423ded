// Launchers for shaders/embedding.wgsl: embeddingForward (gather), then embeddingBackward (a
// deterministic scatter-add into the tables' gradients) right below it.

import type { Gpu } from '../gpu/device.ts';
import { fmtBytes } from '../gpu/device.ts';
import { type Tensor, bytesPerElement, expectShape } from '../gpu/tensor.ts';
import { expectDtype, forEachRowChunk } from '../gpu/launch.ts';

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
 * position: [P, H] with P >= L | null, tokenType: [T, H] | null. The tables and out are all
 * f32 or all f16 (word's dtype decides; f16 sums in f32 and rounds out once).
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
  const dt = word.dtype;
  if (dt !== 'f32' && dt !== 'f16') throw new Error(`embedding: word table must hold f32 or f16 elements, got ${word}`);
  expectDtype('embedding: out', out, dt);
  expectDtype('embedding: ids', ids, 'u32');
  if (V === 0) throw new Error('embedding: word table has no rows');
  const tables: [string, Tensor][] = [['word', word]];
  if (position) {
    if (position.shape.length !== 2 || position.shape[1] !== H) {
      throw new Error(`embedding: position table: expected shape [P, ${H}], got [${position.shape.join(', ')}]`);
    }
    if (position.shape[0] < L) throw new Error(`embedding: sequence length ${L} exceeds the position table's ${position.shape[0]} rows`);
    expectDtype('embedding: position', position, dt);
    tables.push(['position', position]);
  }
  const useTypeIds = tokenType !== null && tokenTypes !== null;
  if (tokenType) {
    if (tokenType.shape.length !== 2 || tokenType.shape[1] !== H || tokenType.shape[0] === 0) {
      throw new Error(`embedding: token_type table: expected shape [T >= 1, ${H}], got [${tokenType.shape.join(', ')}]`);
    }
    expectDtype('embedding: tokenType', tokenType, dt);
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
  const rowBytes = [L * H * bytesPerElement(dt), L * 4, ...(useTypeIds ? [L * 4] : [])];
  forEachRowChunk(gpu, 'embedding', B, rowBytes, (start, count) => {
    const n = count * L * H;
    gpu.dispatch({
      kernel: 'embedding',
      entry: 'forward',
      defines: { WG, HAS_POSITION: position !== null, HAS_TOKEN_TYPE: tokenType !== null, HAS_TOKEN_TYPE_IDS: useTypeIds, ...(dt === 'f16' ? { F16: true } : {}) },
      bindings: [out.rows(start, count), ids.rows(start, count), word, position, tokenType, useTypeIds ? tokenTypes!.rows(start, count) : null],
      uniforms: { n, L, H, vocab: V, types: tokenType ? tokenType.shape[0] : 1 },
      workgroups: gpu.grid(Math.ceil(n / WG)),
    });
  });
}

export interface EmbeddingBackwardOptions {
  /**
   * Word-table row that gets no gradient (torch nn.Embedding padding_idx; HF BERT passes
   * pad_token_id): its dword row stays 0, or unchanged when accumulating. Positions and token
   * types of padded tokens still get their gradient, as in PyTorch. Default null (none).
   */
  padTokenId?: number | null;
  /** Add into dword, dposition and dtokenType instead of overwriting them. */
  accumulate?: boolean;
  /** Tokens summed by one thread before a second pass adds the pieces (default 64). */
  segment?: number;
}

/**
 * Backward of embeddingForward, as a deterministic scatter-add (no float atomics; the same bits
 * on every run):
 *   dword[v]      = sum of dout[b, l] over tokens with ids[b, l] = v (v != padTokenId)
 *   dposition[l]  = sum over b of dout[b, l]            (rows l >= L get 0)
 *   dtokenType[t] = sum of dout[b, l] over tokens of type t (all type 0 when tokenTypes is null,
 *                   as in the forward)
 * Each sum runs over the tokens in increasing b * L + l order (cut into segments of
 * opts.segment tokens whose sums are then added in order). Pass null for a table the model
 * does not have or does not train. Rows no token uses are 0, or unchanged with
 * opts.accumulate.
 *
 * ids and tokenTypes are HOST arrays ([B * L], the ones the batch was tokenized into and
 * uploaded from): the kernel needs the tokens grouped by row, and building that grouping on
 * the host avoids a GPU sort and a readback. Ids are validated (an out-of-range id throws;
 * the forward would have clamped it).
 *
 * dword: [V, H], dposition: [P, H] | null, dtokenType: [T, H] | null, dout: [B, L, H]. The
 * gradients are f32 (parameter gradients, summed in f32); dout is f32 or f16 (widened exactly).
 */
export function embeddingBackward(
  gpu: Gpu,
  dword: Tensor /* [V, H] */,
  dposition: Tensor | null /* [P, H] */,
  dtokenType: Tensor | null /* [T, H] */,
  dout: Tensor /* [B, L, H] */,
  ids: Uint32Array /* [B * L], host */,
  tokenTypes: Uint32Array | null /* [B * L], host */,
  opts: EmbeddingBackwardOptions = {},
): void {
  if (dout.shape.length !== 3) throw new Error(`embedding backward: dout must be [B, L, H], got [${dout.shape.join(', ')}]`);
  if (dword.shape.length !== 2) throw new Error(`embedding backward: dword must be [V, H], got [${dword.shape.join(', ')}]`);
  const [B, L, H] = dout.shape;
  const V = dword.shape[0];
  expectShape('embedding backward: dword', dword, [V, H]);
  const dt = dout.dtype;
  if (dt !== 'f32' && dt !== 'f16') throw new Error(`embedding backward: dout must hold f32 or f16 elements, got ${dout}`);
  if (ids.length !== B * L) throw new Error(`embedding backward: ids has ${ids.length} entries, dout [${dout.shape.join(', ')}] needs B * L = ${B * L}`);
  checkIds(ids, V, 'embedding backward: ids');
  const pad = opts.padTokenId ?? null;
  if (pad !== null && !(Number.isInteger(pad) && pad >= 0 && pad < V)) throw new Error(`embedding backward: padTokenId ${pad} is not a row of the ${V}-row word table`);
  const segment = opts.segment ?? 64;
  if (!Number.isInteger(segment) || segment < 1) throw new Error(`embedding backward: segment must be a positive integer, got ${segment}`);
  if (dposition) {
    if (dposition.shape.length !== 2 || dposition.shape[1] !== H) {
      throw new Error(`embedding backward: dposition: expected shape [P, ${H}], got [${dposition.shape.join(', ')}]`);
    }
    if (dposition.shape[0] < L) throw new Error(`embedding backward: sequence length ${L} exceeds dposition's ${dposition.shape[0]} rows`);
  }
  const T = dtokenType ? dtokenType.shape[0] : 0;
  if (dtokenType && (dtokenType.shape.length !== 2 || dtokenType.shape[1] !== H || T === 0)) {
    throw new Error(`embedding backward: dtokenType: expected shape [T >= 1, ${H}], got [${dtokenType.shape.join(', ')}]`);
  }
  if (dtokenType && tokenTypes) {
    if (tokenTypes.length !== B * L) throw new Error(`embedding backward: tokenTypes has ${tokenTypes.length} entries, expected B * L = ${B * L}`);
    checkIds(tokenTypes, T, 'embedding backward: tokenTypes');
  }
  const tables: [string, Tensor, (tok: number, l: number) => number, number][] = [
    ['dword', dword, (tok) => (ids[tok] === pad ? -1 : ids[tok]), V],
  ];
  if (dposition) tables.push(['dposition', dposition, (_tok, l) => l, dposition.shape[0]]);
  if (dtokenType) tables.push(['dtokenType', dtokenType, (tok) => (tokenTypes ? tokenTypes[tok] : 0), T]);
  for (const [name, t] of tables) {
    expectDtype(`embedding backward: ${name}`, t, 'f32');
    if (t.buffer === dout.buffer) throw new Error(`embedding backward: ${name} and dout share a buffer`);
    // Rows are scattered anywhere in the table, so it is bound whole, as in the forward.
    if (t.byteLength > gpu.limits.maxBinding) {
      throw new Error(
        `embedding backward: ${name} [${t.shape.join(', ')}] is ${fmtBytes(t.byteLength)}, over this adapter's ${fmtBytes(gpu.limits.maxBinding)} storage binding limit`,
      );
    }
  }
  if (H === 0) return;
  // Without shader-f16 the f16 pipeline is refused (one line) before the tables are cleared.
  if (dt === 'f16') gpu.pipeline('embedding', 'backward_segments', { WG, DIRECT: false, F16: true });
  if (!opts.accumulate) {
    for (const [, t] of tables) {
      gpu.dispatch({
        kernel: 'embedding',
        entry: 'backward_clear',
        defines: { WG },
        bindings: [t],
        uniforms: { n: t.size, H, off_seg: 0, off_slot_seg: 0, off_slot_row: 0 },
        workgroups: gpu.grid(Math.ceil(t.size / WG)),
      });
    }
  }
  // Chunks of whole sequences under the binding limit; each chunk adds into the tables.
  forEachRowChunk(gpu, 'embedding backward', B, [L * H * bytesPerElement(dt)], (b0, nb) => {
    const doutChunk = dout.rows(b0, nb);
    for (const [, table, key, rows] of tables) {
      const g = groupTokens(nb * L, (t) => key(b0 * L + t, t % L), rows, segment);
      if (!g) continue;
      const index = gpu.upload(g.index, [g.index.length], 'u32');
      const offsets = { off_seg: g.offSeg, off_slot_seg: g.offSlotSeg, off_slot_row: g.offSlotRow };
      const direct = g.nseg === g.nslot;
      const part = direct ? null : gpu.empty([g.nseg, H]);
      gpu.dispatch({
        kernel: 'embedding',
        entry: 'backward_segments',
        defines: dt === 'f16' ? { WG, DIRECT: direct, F16: true } : { WG, DIRECT: direct },
        bindings: [part ?? table, doutChunk, index],
        uniforms: { n: g.nseg * H, H, ...offsets },
        workgroups: gpu.grid(Math.ceil((g.nseg * H) / WG)),
      });
      if (part) {
        gpu.dispatch({
          kernel: 'embedding',
          entry: 'backward_rows',
          defines: { WG },
          bindings: [table, part, index],
          uniforms: { n: g.nslot * H, H, ...offsets },
          workgroups: gpu.grid(Math.ceil((g.nslot * H) / WG)),
        });
        part.release();
      }
      index.release();
    }
  });
}

/** Tokens grouped by table row, packed as shaders/embedding.wgsl's backward reads them. */
export interface TokenGroups {
  /** [tokens | seg (nseg + 1) | slotSeg (nslot + 1) | slotRow (nslot)] */
  index: Uint32Array;
  nseg: number;
  nslot: number;
  offSeg: number;
  offSlotSeg: number;
  offSlotRow: number;
}

/**
 * Group tokens 0..n-1 by key(t) in [0, rows) (a negative key drops the token): rows ascending,
 * tokens ascending within a row, each row's tokens cut into segments of at most `segment`.
 * Returns null when no token is kept. A counting sort: O(n + rows).
 */
export function groupTokens(n: number, key: (t: number) => number, rows: number, segment: number): TokenGroups | null {
  const keys = new Int32Array(n);
  const start = new Uint32Array(rows + 1);
  let kept = 0;
  for (let t = 0; t < n; t++) {
    const k = key(t);
    keys[t] = k;
    if (k >= 0) {
      start[k + 1]++;
      kept++;
    }
  }
  if (kept === 0) return null;
  let nslot = 0;
  let nseg = 0;
  for (let r = 0; r < rows; r++) {
    const c = start[r + 1];
    if (c) {
      nslot++;
      nseg += Math.ceil(c / segment);
    }
    start[r + 1] += start[r];
  }
  const offSeg = kept;
  const offSlotSeg = offSeg + nseg + 1;
  const offSlotRow = offSlotSeg + nslot + 1;
  const index = new Uint32Array(offSlotRow + nslot);
  const fill = start.slice(0, rows);
  for (let t = 0; t < n; t++) if (keys[t] >= 0) index[fill[keys[t]]++] = t;
  let seg = 0;
  let slot = 0;
  for (let r = 0; r < rows; r++) {
    const a = start[r], b = start[r + 1];
    if (a === b) continue;
    index[offSlotSeg + slot] = seg;
    index[offSlotRow + slot] = r;
    for (let p = a; p < b; p += segment) index[offSeg + seg++] = p;
    slot++;
  }
  index[offSeg + nseg] = kept;
  index[offSlotSeg + nslot] = nseg;
  return { index, nseg, nslot, offSeg, offSlotSeg, offSlotRow };
}
