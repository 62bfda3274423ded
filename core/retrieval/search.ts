// Exact top-k search over an embedding index held on the GPU.
//
// The index is split into chunk buffers of at most one storage binding each (llvmpipe: 128 MiB,
// so 466,387 x 1024 f32 = 1.78 GiB is 15 chunks of 32,768 rows), filled from host data piece by
// piece so a caller never needs the whole matrix in one array. search() uploads the queries,
// runs topkForward (core/kernels/topk.ts) and reads back only the [Q, k] results.

import type { Gpu } from '../gpu/device.ts';
import { Tensor } from '../gpu/tensor.ts';
import { type TopkOptions, type TopkPlan, topkForward, topkPlan } from '../kernels/topk.ts';
import { f32ToF16Bits } from '../model/safetensors.ts';

export interface GpuIndexOptions {
  /** Storage type of the passages. 'f16' halves memory; needs 'shader-f16' and dim % 4 == 0. Default 'f32'. */
  dtype?: 'f32' | 'f16';
  /** Rows per GPU buffer. Default: as many as fit one storage binding. */
  chunkRows?: number;
  /** Total rows, when vectors come as pieces: sizes the last buffer exactly instead of a full chunk. */
  rows?: number;
}

export interface SearchResult {
  /** [Q, k] best first. */
  scores: Float32Array;
  /** [Q, k] row numbers into the index: equal scores by smaller id. */
  ids: Uint32Array;
  /** Results per query: min(requested k, index rows). */
  k: number;
}

/** Host rows (a Float32Array of whole rows, or pieces of whole rows in order). */
export type IndexVectors = Float32Array | Iterable<Float32Array> | AsyncIterable<Float32Array>;

export class GpuIndex {
  private constructor(
    readonly gpu: Gpu,
    /** Values per vector (H). */
    readonly dim: number,
    readonly dtype: 'f32' | 'f16',
    /** [rows_c, dim] per GPU buffer, in id order. */
    readonly chunks: Tensor[],
    private buffers: GPUBuffer[],
  ) {}

  /** Vectors in the index (N). */
  get rows(): number {
    return this.chunks.reduce((n, c) => n + c.shape[0], 0);
  }

  /** GPU bytes held by the index. */
  get bytes(): number {
    return this.buffers.reduce((n, b) => n + b.size, 0);
  }

  /**
   * Copy vectors into GPU buffers of `chunkRows` rows each. Pieces are written as they come
   * (converted to f16 first if asked) and each full buffer is synced, so at most one piece
   * plus one buffer's worth of staging is held on the host at a time.
   */
  static async upload(gpu: Gpu, vectors: IndexVectors, dim: number, o: GpuIndexOptions = {}): Promise<GpuIndex> {
    const dtype = o.dtype ?? 'f32';
    if (!Number.isInteger(dim) || dim < 1) throw new Error(`GpuIndex.upload: dim ${dim} must be a positive integer`);
    if (dtype === 'f16') {
      if (!gpu.features.has('shader-f16')) throw new Error(`GpuIndex.upload: dtype f16 needs 'shader-f16', which ${gpu.name} lacks; use f32`);
      if (dim % 4) throw new Error(`GpuIndex.upload: dtype f16 needs dim % 4 == 0 (dim = ${dim}); use f32`);
    }
    const bpe = dtype === 'f16' ? 2 : 4;
    const rowBytes = dim * bpe;
    const maxRows = Math.floor(Math.min(gpu.limits.maxBinding, gpu.limits.maxBufferSize) / rowBytes);
    const chunkRows = o.chunkRows ?? maxRows;
    if (!Number.isInteger(chunkRows) || chunkRows < 1 || chunkRows > maxRows) {
      throw new Error(`GpuIndex.upload: chunkRows ${chunkRows} must be in [1, ${maxRows}] (${rowBytes}-byte rows under the ${gpu.limits.maxBinding}-byte binding limit)`);
    }
    const total = vectors instanceof Float32Array ? vectors.length / dim : o.rows;
    if (total !== undefined && !Number.isInteger(total)) throw new Error(`GpuIndex.upload: ${(vectors as Float32Array).length} values are not whole rows of ${dim}`);

    const buffers: GPUBuffer[] = [];
    const filled: number[] = [];
    let cap = 0; // rows of the last buffer
    let rowsSoFar = 0;
    const pieces = vectors instanceof Float32Array ? [vectors] : vectors;
    try {
      for await (const piece of pieces) {
        if (piece.length % dim) throw new Error(`GpuIndex.upload: a piece of ${piece.length} values is not whole rows of ${dim}`);
        const pieceRows = piece.length / dim;
        for (let r = 0; r < pieceRows; ) {
          if (!buffers.length || filled[filled.length - 1] === cap) {
            if (buffers.length) await gpu.sync(); // the full buffer's staging copy can go
            cap = total !== undefined ? Math.min(chunkRows, total - rowsSoFar) : chunkRows;
            if (cap < 1) throw new Error(`GpuIndex.upload: more than the ${total} rows announced`);
            buffers.push(gpu.device.createBuffer({ size: Math.ceil((cap * rowBytes) / 4) * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC }));
            filled.push(0);
          }
          const at = filled[filled.length - 1];
          const n = Math.min(pieceRows - r, cap - at);
          const src = piece.subarray(r * dim, (r + n) * dim);
          const view = new Tensor(gpu, buffers[buffers.length - 1], [n, dim], dtype, at * rowBytes, false);
          gpu.write(view, dtype === 'f16' ? toF16(src) : src);
          filled[filled.length - 1] += n;
          rowsSoFar += n;
          r += n;
        }
      }
      if (total !== undefined && rowsSoFar !== total) throw new Error(`GpuIndex.upload: got ${rowsSoFar} rows, ${total} announced`);
      if (rowsSoFar === 0) throw new Error('GpuIndex.upload: no vectors');
      await gpu.sync();
    } catch (e) {
      for (const b of buffers) b.destroy();
      throw e;
    }
    const chunks = buffers.map((b, i) => new Tensor(gpu, b, [filled[i], dim], dtype, 0, false));
    return new GpuIndex(gpu, dim, dtype, chunks, buffers);
  }

  /** How search() splits Q queries for this index (memory and block sizes). */
  plan(Q: number, k: number, o: TopkOptions = {}): TopkPlan {
    return topkPlan(this.gpu, Q, this.chunks.map((c) => c.shape[0]), this.dim, k, this.dtype === 'f16' ? 2 : 4, o);
  }

  /** The k best rows for each query of queries [Q, dim] by dot product, best first. */
  async search(queries: Float32Array, k: number, o: TopkOptions = {}): Promise<SearchResult> {
    if (!this.buffers.length) throw new Error('GpuIndex.search: the index was released');
    if (queries.length % this.dim) throw new Error(`GpuIndex.search: ${queries.length} query values are not whole rows of ${this.dim}`);
    const kk = this.plan(1, k, o).k; // also checks k
    return topkInBatches(this.gpu, queries, this.dim, kk, (q, outScores, outIds) => topkForward(this.gpu, outScores, outIds, q, this.chunks, k, o));
  }

  /** Destroy the index buffers (not pooled: they are big and live long). */
  release(): void {
    for (const b of this.buffers) b.destroy();
    this.buffers = [];
  }
}

/** f32 values -> f16 bits, round to nearest even. */
function toF16(x: Float32Array): Uint16Array {
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = f32ToF16Bits(x[i]);
  return out;
}

/**
 * Runs a top-k kernel over queries [Q, width] in as many calls as the binding limit needs (queries
 * and results must each fit one binding) and gathers the [Q, kk] scores and ids. `record` records
 * one call: q [n, width] in, outScores and outIds [n, kk] out.
 */
export async function topkInBatches(gpu: Gpu, queries: Float32Array, width: number, kk: number, record: (q: Tensor, outScores: Tensor, outIds: Tensor) => void): Promise<SearchResult> {
  const Q = width ? queries.length / width : 0;
  const scores = new Float32Array(Q * kk);
  const ids = new Uint32Array(Q * kk);
  const per = Math.max(1, Math.floor(gpu.limits.maxBinding / (4 * Math.max(kk, width))));
  for (let q0 = 0; q0 < Q; q0 += per) {
    const n = Math.min(per, Q - q0);
    const q = gpu.upload(queries.subarray(q0 * width, (q0 + n) * width), [n, width]);
    const outScores = gpu.empty([n, kk]);
    const outIds = gpu.empty([n, kk], 'u32');
    try {
      record(q, outScores, outIds);
      const [sc, id] = await Promise.all([gpu.readF32(outScores), gpu.read(outIds)]);
      scores.set(sc, q0 * kk);
      ids.set(id as Uint32Array, q0 * kk);
    } finally {
      for (const t of [q, outScores, outIds]) t.release();
    }
  }
  return { scores, ids, k: kk };
}
