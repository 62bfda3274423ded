// Top-k search of query vectors in an exported LanceDB table: exact (a flat scan of every row,
// bypassing any ANN index) or through the table's ANN index. Scores are dot products like the
// GPU top-k's: LanceDB's "dot" distance is 1 - q.v, so score = 1 - distance; an HNSW index
// ranks by cosine distance 1 - cos (ann.ts), the same for unit vectors. ANN scores are the
// index's approximations unless refineFactor re-ranks with the full vectors.

import type { Retrieved } from '../../core/retrieval/retrieve.ts';
import { IndexError } from '../index-store.ts';
import type { AnnSearch } from './ann.ts';
import type { LanceSource } from './table.ts';

export interface LanceSearchOptions extends AnnSearch {
  /** Use the table's ANN index (it must have one); default exact. */
  ann?: boolean;
  /**
   * Queries per LanceDB call (one multi-vector query; default 1). A flat scan of 16 queries at
   * once on a 466,387 x 1024 table held over 20 GB (each query buffers the column), and two at
   * once were no faster than one after the other.
   */
  batch?: number;
  onProgress?: (done: number) => void;
}

/** Refuse --ann on a table without an ANN index. */
export function checkAnn(src: LanceSource): void {
  if (!src.annMetric) throw new IndexError(`${src.where}: no ANN index on the vector column; build one with aqa index --export-lancedb ${src.uri} --lancedb-ann ivf-pq|hnsw, or search without --ann`);
}

/** The top k of each query row of `queries` [Q, dim], best first (ties in row order). */
export async function searchLance(src: LanceSource, queries: Float32Array, k: number, o: LanceSearchOptions = {}): Promise<Retrieved> {
  const { dim } = src.manifest.identity;
  if (queries.length % dim) throw new IndexError(`${src.where}: ${queries.length} query values are not whole rows of ${dim}`);
  if (o.ann) checkAnn(src);
  const nq = queries.length / dim;
  const batch = Math.max(1, o.batch ?? 1);
  const out: Retrieved = { pids: [], scores: [] };
  for (let q0 = 0; q0 < nq; q0 += batch) {
    const n = Math.min(batch, nq - q0);
    let query = src.table.query().nearestTo(queries.subarray(q0 * dim, (q0 + 1) * dim));
    for (let i = 1; i < n; i++) query = query.addQueryVector(queries.subarray((q0 + i) * dim, (q0 + i + 1) * dim));
    query = query.distanceType(o.ann ? src.annMetric! : 'dot').limit(k).select(['pid', '_distance']).withRowId();
    if (!o.ann) query = query.bypassVectorIndex();
    else {
      if (o.nprobes !== undefined) query = query.nprobes(o.nprobes);
      if (o.ef !== undefined) query = query.ef(o.ef);
      if (o.refineFactor !== undefined) query = query.refineFactor(o.refineFactor);
    }
    const hits: { pid: string; d: number; row: bigint }[][] = Array.from({ length: n }, () => []);
    let rows: Record<string, unknown>[];
    try {
      rows = await query.toArray();
    } catch (e) {
      throw new IndexError(`${src.where}: search failed (${String((e as Error).message).split('\n')[0]})`);
    }
    for (const r of rows) {
      // A single query vector gives no query_index column.
      const qi = n === 1 ? 0 : Number(r.query_index);
      hits[qi].push({ pid: r.pid as string, d: r._distance as number, row: BigInt(r._rowid as number | bigint) });
    }
    for (const h of hits) {
      h.sort((a, b) => a.d - b.d || (a.row < b.row ? -1 : a.row > b.row ? 1 : 0));
      out.pids.push(h.map((x) => x.pid));
      out.scores.push(h.map((x) => 1 - x.d));
    }
    o.onProgress?.(q0 + n);
  }
  return out;
}
