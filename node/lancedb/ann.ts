// LanceDB's approximate (ANN) vector indexes for an exported table: which kind, its build
// parameters from the table's size, and the search knobs. IVF-PQ ranks by dot product like the
// exact search. HNSW ranks by cosine: LanceDB 0.31's HNSW-SQ with the "dot" metric returns
// unscaled quantized products and its recall@20 on a 3,000-row mixture was 0.04 (cosine: 0.96),
// so it is built for models that normalize, where cosine and dot product rank alike.

import type { Index } from '@lancedb/lancedb';

export type AnnKind = 'ivf-pq' | 'hnsw';
export const ANN_KINDS: readonly AnnKind[] = ['ivf-pq', 'hnsw'];

/**
 * Below this many rows no ANN index is built: a flat scan of a thousand rows is as fast as
 * probing partitions, and product quantization trains 256 codes per sub-vector, which needs
 * more rows than that to mean anything.
 */
export const MIN_ANN_ROWS = 1024;

export interface AnnParams {
  kind: AnnKind;
  metric: 'dot' | 'cosine';
  /** IVF partitions (k-means cells); HNSW builds one graph per partition. */
  partitions: number;
  /** IVF-PQ: sub-vectors of 8 bits each (bytes per vector). */
  subVectors?: number;
  /** HNSW: neighbours per node and the candidate list while building. */
  m?: number;
  efConstruction?: number;
}

/**
 * IVF-PQ: sqrt(rows) partitions (LanceDB's own default) and dim/8 sub-vectors (8 values per
 * code: twice LanceDB's default of dim/16, so recall at k = 200 does not hinge on refining).
 * HNSW (with 8-bit scalar quantization): one graph per 250,000 rows, which keeps the build's
 * memory bounded, m 20 and efConstruction 150 (LanceDB's defaults).
 */
export function annParams(kind: AnnKind, rows: number, dim: number): AnnParams {
  if (kind === 'ivf-pq') {
    const subVectors = dim % 8 === 0 ? dim / 8 : dim % 4 === 0 ? dim / 4 : 1;
    return { kind, metric: 'dot', partitions: Math.max(1, Math.round(Math.sqrt(rows))), subVectors };
  }
  return { kind, metric: 'cosine', partitions: Math.max(1, Math.ceil(rows / 250_000)), m: 20, efConstruction: 150 };
}

export function describeAnn(p: AnnParams): string {
  return p.kind === 'ivf-pq'
    ? `IVF-PQ, ${p.partitions} partitions, ${p.subVectors} sub-vectors of 8 bits`
    : `HNSW-SQ, ${p.partitions} partition(s), m ${p.m}, efConstruction ${p.efConstruction}`;
}

export function annIndex(lance: typeof import('@lancedb/lancedb'), p: AnnParams): Index {
  if (p.kind === 'ivf-pq') return lance.Index.ivfPq({ distanceType: p.metric, numPartitions: p.partitions, numSubVectors: p.subVectors });
  return lance.Index.hnswSq({ distanceType: p.metric, numPartitions: p.partitions, m: p.m, efConstruction: p.efConstruction });
}

/** Search knobs of an ANN query (LanceDB defaults where absent). */
export interface AnnSearch {
  /** IVF partitions probed per query. */
  nprobes?: number;
  /** HNSW candidate list size (at least k). */
  ef?: number;
  /** Re-rank refineFactor x k candidates with the full vectors. */
  refineFactor?: number;
}
