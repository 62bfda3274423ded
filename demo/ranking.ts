// How the demo ranks: dense (the embedding indexes), lexical (BM25 over the corpus) or hybrid
// (both, fused). Pure functions over core/, no DOM and no fetch, so Node tests run them too.
//
// The lexical side is the pipeline's BM25 run (node/pipeline/stages.ts, search stage): each
// paper's passage text from core/data/passages.ts (title + ". " + abstract, cut to 2,000 code
// points), core/retrieval/bm25.ts with its defaults (k1 0.9, b 0.4, the pipeline config's
// defaults too), the question cleaned by core/data/clean.ts queryText(), top RESULTS_K (200,
// the pipeline's retrieve_k). Hybrid fuses every dense run and the BM25 run in one call of
// core/retrieval/fusion.ts with equal weights, as `aqa fuse --method zscore --results ...` does
// with the result files of `aqa search` and of that BM25 run.

import type { Paper } from '../core/data/aqa.ts';
import { queryText } from '../core/data/clean.ts';
import { buildPassages } from '../core/data/passages.ts';
import { Bm25Index } from '../core/retrieval/bm25.ts';
import { type FusionMethod, fuse } from '../core/retrieval/fusion.ts';
import { RESULTS_K, type ScoreMap } from '../core/retrieval/results.ts';

export type Ranking = 'dense' | 'lexical' | 'hybrid';
export const RANKINGS: readonly Ranking[] = ['dense', 'lexical', 'hybrid'];

/** The name the BM25 run is shown under, as the pipeline's run is called. */
export const LEXICAL_RUN = 'bm25';

/** BM25 over the papers' passage texts, in corpus order, with the pipeline's settings. */
export function lexicalIndex(papers: Iterable<[string, Paper]>): Bm25Index {
  const { pids, texts } = buildPassages(papers);
  return Bm25Index.build(pids, texts);
}

/** The BM25 run for one question: pid -> score for its top `k` papers (fewer when fewer match). */
export function lexicalRun(index: Bm25Index, question: string, k = RESULTS_K): ScoreMap {
  return new Map(index.search(queryText({ question }), k));
}

/**
 * The final scores from the runs the ranking uses (dense runs first, then BM25). One run is
 * taken as it is; several are fused. `denseWeights` (the config's, one per dense run) apply to
 * the dense-only fusion; hybrid weighs every run equally, as `aqa fuse` does by default.
 */
export function combineRuns(runs: ScoreMap[], ranking: Ranking, method: FusionMethod, denseWeights?: number[]): ScoreMap {
  if (!runs.length) return new Map();
  if (runs.length === 1) return runs[0];
  return fuse(runs, { method, weights: ranking === 'dense' ? denseWeights : undefined });
}
