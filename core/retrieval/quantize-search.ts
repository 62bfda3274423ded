// Search over a quantized index (core/retrieval/quantize.ts): the GPU scores every passage from
// its codes and keeps the best c = k x rescore candidates (core/kernels/quantized.ts), then the
// host rescores just those rows with exact dot products of the full vectors, which stay on disk
// (or in the browser's files) and are read row by row through `readRows`. Only the codes are
// held on the GPU: int8 is 1/4 and binary 1/32 of the f32 index's memory.

import type { Gpu } from '../gpu/device.ts';
import { Tensor } from '../gpu/tensor.ts';
import { prepareQueries, quantizedPlan, quantizedTopkForward } from '../kernels/quantized.ts';
import type { TopkOptions, TopkPlan } from '../kernels/topk.ts';
import { DEFAULT_RESCORE, type QuantKind, quantWords } from './quantize.ts';
import { bytesPerValue, decodeVectors, type VectorDType } from './index-format.ts';
import { type SearchResult, topkInBatches } from './search.ts';

/** Full f32 rows [ids.length, dim] of the given row ids, in that order. */
export type RowReader = (ids: Uint32Array) => Promise<Float32Array>;

export interface QuantizedIndexOptions {
  /** int8: the per-dimension scales (dim values). */
  scales?: Float32Array;
  /** Rows per GPU buffer. Default: as many as fit one storage binding. */
  chunkRows?: number;
  /** Candidates per result for rescoring (c = k x rescore, at most the index's rows). Default DEFAULT_RESCORE[kind]. */
  rescore?: number;
  /** Reads full rows for rescoring; without it the quantized scores are the result. */
  readRows?: RowReader;
  /** Called by release() (closes the files readRows reads). */
  onRelease?: () => void;
}

export class QuantizedIndex {
  private constructor(
    readonly gpu: Gpu,
    readonly dim: number,
    readonly kind: QuantKind,
    readonly chunks: Tensor[],
    private buffers: GPUBuffer[],
    private o: QuantizedIndexOptions,
  ) {}

  /** What is held, for logs: 'int8' or 'binary'. */
  get dtype(): string {
    return this.kind;
  }

  get rows(): number {
    return this.chunks.reduce((n, c) => n + c.shape[0], 0);
  }

  get bytes(): number {
    return this.buffers.reduce((n, b) => n + b.size, 0);
  }

  /** Candidates kept per query for k results. */
  candidates(k: number): number {
    if (!this.o.readRows) return Math.min(k, this.rows);
    const f = this.o.rescore ?? DEFAULT_RESCORE[this.kind];
    return Math.min(Math.max(k, Math.ceil(k * f)), this.rows);
  }

  /** Copy code rows (pieces of whole [rows, W] rows, in order) into GPU buffers. */
  static async upload(gpu: Gpu, kind: QuantKind, pieces: Iterable<Uint32Array> | AsyncIterable<Uint32Array>, dim: number, rows: number, o: QuantizedIndexOptions = {}): Promise<QuantizedIndex> {
    if (kind === 'int8' && o.scales?.length !== dim) throw new Error(`QuantizedIndex.upload: int8 needs ${dim} scales`);
    const W = quantWords(kind, dim);
    const maxRows = Math.floor(Math.min(gpu.limits.maxBinding, gpu.limits.maxBufferSize) / (W * 4));
    const chunkRows = o.chunkRows ?? maxRows;
    if (!Number.isInteger(chunkRows) || chunkRows < 1 || chunkRows > maxRows) throw new Error(`QuantizedIndex.upload: chunkRows ${chunkRows} must be in [1, ${maxRows}]`);
    if (!Number.isInteger(rows) || rows < 1) throw new Error('QuantizedIndex.upload: no vectors');
    const buffers: GPUBuffer[] = [];
    const chunks: Tensor[] = [];
    let at = 0; // rows written
    try {
      for await (const piece of pieces) {
        if (piece.length % W) throw new Error(`QuantizedIndex.upload: a piece of ${piece.length} words is not whole rows of ${W}`);
        for (let r = 0; r < piece.length / W; ) {
          const c = Math.floor(at / chunkRows);
          if (c === buffers.length) {
            if (c) await gpu.sync();
            const n = Math.min(chunkRows, rows - at);
            if (n < 1) throw new Error(`QuantizedIndex.upload: more than the ${rows} rows announced`);
            buffers.push(gpu.device.createBuffer({ size: n * W * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC }));
            chunks.push(new Tensor(gpu, buffers[c], [n, W], 'u32', 0, false));
          }
          const inChunk = at - c * chunkRows;
          const n = Math.min(piece.length / W - r, chunks[c].shape[0] - inChunk);
          gpu.write(new Tensor(gpu, buffers[c], [n, W], 'u32', inChunk * W * 4, false), piece.subarray(r * W, (r + n) * W));
          at += n;
          r += n;
        }
      }
      if (at !== rows) throw new Error(`QuantizedIndex.upload: got ${at} rows, ${rows} announced`);
      await gpu.sync();
    } catch (e) {
      for (const b of buffers) b.destroy();
      throw e;
    }
    return new QuantizedIndex(gpu, dim, kind, chunks, buffers, o);
  }

  plan(Q: number, k: number, o: TopkOptions = {}): TopkPlan {
    return quantizedPlan(this.gpu, Q, this.chunks.map((c) => c.shape[0]), quantWords(this.kind, this.dim) * (this.kind === 'int8' ? 4 : 32), this.candidates(k), { unsorted: !!this.o.readRows, ...o });
  }

  /**
   * The c best rows by quantized score for each query of queries [Q, dim], best first; with
   * o.unsorted in no particular order and without scores (ids only; c may pass TOPK_MAX_K).
   */
  async candidateSearch(queries: Float32Array, c: number, o: TopkOptions = {}): Promise<SearchResult> {
    if (!this.buffers.length) throw new Error('QuantizedIndex.search: the index was released');
    if (queries.length % this.dim) throw new Error(`QuantizedIndex.search: ${queries.length} query values are not whole rows of ${this.dim}`);
    const Q = queries.length / this.dim;
    const prepared = prepareQueries(queries, this.dim, this.kind, this.o.scales);
    const Hp = prepared.length / Math.max(Q, 1);
    const kk = Math.min(c, this.rows);
    return topkInBatches(this.gpu, prepared, Hp, kk, (q, outScores, outIds) => quantizedTopkForward(this.gpu, outScores, outIds, q, this.chunks, this.kind, c, o));
  }

  /** The k best rows for each query: quantized candidates, rescored exactly when readRows is set. */
  async search(queries: Float32Array, k: number, o: TopkOptions = {}): Promise<SearchResult> {
    if (!this.o.readRows) return this.candidateSearch(queries, this.candidates(k), o);
    // Rescoring sorts the candidates itself: the GPU skips its sort (and the sort's limit on c).
    const cand = await this.candidateSearch(queries, this.candidates(k), { ...o, unsorted: true });
    return rescore(queries, this.dim, cand, Math.min(k, this.rows), this.o.readRows);
  }

  release(): void {
    for (const b of this.buffers) b.destroy();
    if (this.buffers.length) this.o.onRelease?.();
    this.buffers = [];
  }
}

/** Queries rescored per batch of row reads: bounds the rows held (32 x 1024 rows of 4 KiB: 128 MiB). */
const RESCORE_BATCH = 32;

/**
 * Exact rescoring: each query's candidates get the dot product with their full row (float64
 * sums rounded to f32), and the best k are kept, larger score first, equal scores by smaller id.
 * Rows shared by queries of one batch are read once.
 */
export async function rescore(queries: Float32Array, dim: number, cand: SearchResult, k: number, readRows: RowReader): Promise<SearchResult> {
  const Q = queries.length / dim;
  const kk = Math.min(k, cand.k);
  const scores = new Float32Array(Q * kk);
  const ids = new Uint32Array(Q * kk);
  for (let q0 = 0; q0 < Q; q0 += RESCORE_BATCH) {
    const q1 = Math.min(Q, q0 + RESCORE_BATCH);
    const unique = Uint32Array.from(new Set(cand.ids.subarray(q0 * cand.k, q1 * cand.k))).sort();
    const rows = await readRows(unique);
    const at = new Map<number, number>();
    unique.forEach((id, i) => at.set(id, i));
    for (let q = q0; q < q1; q++) {
      const ranked: { id: number; s: number }[] = [];
      for (let j = 0; j < cand.k; j++) {
        const id = cand.ids[q * cand.k + j];
        const base = at.get(id)! * dim;
        let s = 0;
        for (let h = 0; h < dim; h++) s += queries[q * dim + h] * rows[base + h];
        ranked.push({ id, s: Math.fround(s) });
      }
      ranked.sort((a, b) => b.s - a.s || a.id - b.id);
      for (let j = 0; j < kk; j++) {
        scores[q * kk + j] = ranked[j].s;
        ids[q * kk + j] = ranked[j].id;
      }
    }
  }
  return { scores, ids, k: kk };
}

/** A vector file to read rows from: `rows` rows of the index's dtype, byte ranges on demand. */
export interface RowFile {
  rows: number;
  read(start: number, end: number): Promise<Uint8Array>;
}

/** Rows closer than this are read in one range (reading a few unwanted rows beats another call). */
const ROW_GAP = 4;

/**
 * A RowReader over the index's vector files in row order (shards on disk, or an export's files
 * in the browser): ids are grouped into runs of nearby rows, one read per run.
 */
export function fileRowReader(files: readonly RowFile[], dim: number, dtype: VectorDType): RowReader {
  const rowBytes = dim * bytesPerValue(dtype);
  const starts: number[] = [];
  let total = 0;
  for (const f of files) {
    starts.push(total);
    total += f.rows;
  }
  return async (ids) => {
    const out = new Float32Array(ids.length * dim);
    const order = Array.from(ids.keys()).sort((a, b) => ids[a] - ids[b]);
    let f = 0;
    for (let i = 0; i < order.length; ) {
      const first = ids[order[i]];
      if (first >= total) throw new Error(`row ${first} is past the index's ${total} rows`);
      while (first >= starts[f] + files[f].rows) f++;
      const end = starts[f] + files[f].rows;
      let j = i + 1;
      while (j < order.length && ids[order[j]] < end && ids[order[j]] - ids[order[j - 1]] <= ROW_GAP) j++;
      const last = ids[order[j - 1]];
      const rows = decodeVectors(await files[f].read((first - starts[f]) * rowBytes, (last + 1 - starts[f]) * rowBytes), dtype);
      for (let t = i; t < j; t++) out.set(rows.subarray((ids[order[t]] - first) * dim, (ids[order[t]] - first + 1) * dim), order[t] * dim);
      i = j;
    }
    return out;
  };
}
