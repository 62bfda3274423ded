// Dense retrieval of questions against an embedding index, the same in every host: `aqa search`,
// mining and the pipeline (node/), and the browser demo's worker. The query text of a question
// is queryText() (cleaned question + " " + body), embedded with the model's query prefix, and
// scored by dot product on the GPU; each question gets its top k pids, best first.

import { type CleanOptions, queryText } from '../data/clean.ts';
import type { EmbedOptions } from './embed.ts';
import type { GpuIndex } from './search.ts';

/** What retrieval searches: a GpuIndex, a QuantizedIndex, or a CpuIndex (core/retrieval/cpu-topk.ts) where there is no GPU. */
export type SearchIndex = Pick<GpuIndex, 'dim' | 'search'>;

/** What retrieval needs from a model: EmbeddingModel fits. */
export interface QueryEmbedder {
  readonly dim: number;
  embed(texts: string[], opts?: EmbedOptions): Promise<Float32Array>;
}

export interface Retrieved {
  /** Per question, the top k pids best first and their scores. */
  pids: string[][];
  scores: number[][];
}

export interface RetrieveOptions {
  k: number;
  batchSize?: number;
  /** Token limit of a query; default the model's own. */
  maxLength?: number;
  clean?: CleanOptions;
  onProgress?: EmbedOptions['onProgress'];
}

/** Query text of each question (cleaned question + " " + body), embedded with the query prefix, searched. */
export async function retrieve(model: QueryEmbedder, index: SearchIndex, pids: readonly string[], questions: readonly { question: string; body?: string | null }[], o: RetrieveOptions): Promise<Retrieved> {
  if (model.dim !== index.dim) throw new Error(`the model's dim ${model.dim} differs from the index's ${index.dim}`);
  const texts = questions.map((q) => queryText(q, o.clean));
  const q = await model.embed(texts, { query: true, batchSize: o.batchSize, maxLength: o.maxLength, onProgress: o.onProgress });
  return searchVectors(index, pids, q, o.k);
}

/** The top k pids and scores of already embedded queries [Q, dim]. */
async function searchVectors(index: SearchIndex, pids: readonly string[], queries: Float32Array, k: number): Promise<Retrieved> {
  const r = await index.search(queries, k);
  const out: Retrieved = { pids: [], scores: [] };
  for (let i = 0; i < queries.length / index.dim; i++) {
    const ids = r.ids.subarray(i * r.k, (i + 1) * r.k);
    out.pids.push(Array.from(ids, (id) => pids[id]));
    out.scores.push(Array.from(r.scores.subarray(i * r.k, (i + 1) * r.k)));
  }
  return out;
}
