// Exact top-k by dot product on the CPU: what the demo's worker searches with where the browser
// has no WebGPU (and the search bench's CPU baseline). Same results contract as GpuIndex.search
// (core/retrieval/search.ts): per query min(k, rows) results, larger score first, equal scores
// by smaller row id. Dot products are summed in float64 over the f32 rows, then rounded to f32
// like the GPU's scores. Host-free: plain typed arrays, no DOM and no node:*.

import type { SearchResult } from './search.ts';

/** a[a0, a0 + dim) . b[b0, b0 + dim) in float64, with four partial sums: independent adds pipeline better than one chain. */
export function dotRows(a: Float32Array, a0: number, b: Float32Array, b0: number, dim: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let h = 0;
  for (; h + 3 < dim; h += 4) {
    s0 += a[a0 + h] * b[b0 + h];
    s1 += a[a0 + h + 1] * b[b0 + h + 1];
    s2 += a[a0 + h + 2] * b[b0 + h + 2];
    s3 += a[a0 + h + 3] * b[b0 + h + 3];
  }
  for (; h < dim; h++) s0 += a[a0 + h] * b[b0 + h];
  return s0 + s1 + (s2 + s3);
}

/** Scores of queries [Q, dim] against rows [N, dim]: the top `k` per query, best first. */
export function cpuTopK(queries: Float32Array, rows: Float32Array, dim: number, k: number): SearchResult {
  if (!Number.isInteger(dim) || dim < 1) throw new Error(`cpuTopK: dim ${dim} must be a positive integer`);
  if (queries.length % dim || rows.length % dim) throw new Error(`cpuTopK: ${queries.length} query values or ${rows.length} index values are not whole rows of ${dim}`);
  if (!Number.isInteger(k) || k < 1) throw new Error(`cpuTopK: k = ${k} must be a positive integer`);
  const Q = queries.length / dim;
  const N = rows.length / dim;
  if (N === 0) throw new Error('cpuTopK: the index is empty');
  const kk = Math.min(k, N);
  const scores = new Float32Array(Q * kk);
  const ids = new Uint32Array(Q * kk);
  const heap = new TopHeap(kk);
  const best = new Float64Array(kk);
  for (let q = 0; q < Q; q++) {
    const q0 = q * dim;
    for (let j = 0; j < N; j++) {
      // Ranked by the f32 score the caller sees, so the order never disagrees with the scores.
      heap.push(Math.fround(dotRows(queries, q0, rows, j * dim, dim)), j);
    }
    heap.drainBestFirst(best, ids.subarray(q * kk, (q + 1) * kk));
    scores.set(best, q * kk);
  }
  return { scores, ids, k: kk };
}

/** Rows kept on the host, searched by cpuTopK: the part of GpuIndex that retrieve() uses. */
export class CpuIndex {
  readonly dtype = 'f32' as const;
  private constructor(
    readonly dim: number,
    private rows: Float32Array,
  ) {}

  /** Whole rows of `dim` values (pieces in order, as GpuIndex.upload takes them). */
  static async fromPieces(pieces: Float32Array | Iterable<Float32Array> | AsyncIterable<Float32Array>, dim: number, rows: number): Promise<CpuIndex> {
    if (pieces instanceof Float32Array) return new CpuIndex(dim, pieces);
    const all = new Float32Array(rows * dim);
    let at = 0;
    for await (const p of pieces) {
      if (at + p.length > all.length) throw new Error(`CpuIndex: more than the ${rows} rows announced`);
      all.set(p, at);
      at += p.length;
    }
    if (at !== all.length) throw new Error(`CpuIndex: ${at / dim} rows read, ${rows} announced`);
    return new CpuIndex(dim, all);
  }

  get count(): number {
    return this.rows.length / this.dim;
  }

  async search(queries: Float32Array, k: number): Promise<SearchResult> {
    return cpuTopK(queries, this.rows, this.dim, k);
  }

  release(): void {
    this.rows = new Float32Array(0);
  }
}

/** Min-heap of at most `cap` (score, id) pairs with the worst kept pair at the root. */
export class TopHeap {
  private s: Float64Array;
  private i: Uint32Array;
  private n = 0;
  constructor(private cap: number) {
    this.s = new Float64Array(cap);
    this.i = new Uint32Array(cap);
  }
  /** a ranks below b: lower score, or equal score and larger id. */
  private worse(sa: number, ia: number, sb: number, ib: number): boolean {
    return sa < sb || (sa === sb && ia > ib);
  }
  push(score: number, id: number): void {
    if (this.n < this.cap) {
      let c = this.n++;
      while (c > 0) {
        const p = (c - 1) >> 1;
        if (!this.worse(score, id, this.s[p], this.i[p])) break;
        this.s[c] = this.s[p];
        this.i[c] = this.i[p];
        c = p;
      }
      this.s[c] = score;
      this.i[c] = id;
      return;
    }
    if (!this.worse(this.s[0], this.i[0], score, id)) return; // not better than the worst kept
    this.siftDown(score, id);
  }
  /** Replace the root by (score, id) and restore the heap. */
  private siftDown(score: number, id: number): void {
    let c = 0;
    for (;;) {
      let m = 2 * c + 1;
      if (m >= this.n) break;
      if (m + 1 < this.n && this.worse(this.s[m + 1], this.i[m + 1], this.s[m], this.i[m])) m++;
      if (!this.worse(this.s[m], this.i[m], score, id)) break;
      this.s[c] = this.s[m];
      this.i[c] = this.i[m];
      c = m;
    }
    this.s[c] = score;
    this.i[c] = id;
  }
  /** Empty the heap into best-first arrays (length = current size). */
  drainBestFirst(scores: Float64Array | Float32Array, ids: Uint32Array): void {
    for (let j = this.n - 1; j >= 0; j--) {
      scores[j] = this.s[0];
      ids[j] = this.i[0];
      const ls = this.s[this.n - 1], li = this.i[this.n - 1];
      this.n--;
      if (this.n > 0) this.siftDown(ls, li);
    }
  }
}
