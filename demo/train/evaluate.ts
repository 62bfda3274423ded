// Before/after evaluation on the training page: embed a corpus with a model, search the held-out
// questions with exact top-k on the GPU (core/retrieval/search.ts, as `aqa search` does), and
// score them with the core metrics (core/eval/metrics.ts: official MAP@20, recall@20, nDCG@10).
// The same CorpusIndex answers the page's search box and ranks the training questions for
// mining. Host-neutral (core/ only), so a Chromium test runs exactly this code.
//
// For FlagEmbedding JSONL data there is no corpus file: the corpus is the union of every group's
// pos and neg passages (each distinct text once, in first-appearance order), and a held-out
// question's gold is its groups' pos passages.

import type { TrainGroup } from '../../core/data/pairs.ts';
import { type EvalReport, evaluate } from '../../core/eval/metrics.ts';
import type { EmbeddingModel } from '../../core/retrieval/embed.ts';
import { GpuIndex } from '../../core/retrieval/search.ts';

/** Results per question: enough for MAP@20 and recall@20. */
export const EVAL_K = 20;

export interface EvalQuestion {
  /** The query text as embedded (AQA: queryText(question); JSONL: the group's query). */
  text: string;
  pids: string[];
}

export interface EvalSet {
  /** The corpus, in order: pid and passage text. */
  pids: string[];
  texts: string[];
  questions: EvalQuestion[];
}

/** The metrics the page shows. */
export interface PageMetrics {
  officialMap20: number;
  recall20: number;
  ndcg10: number;
  /** Held-out questions scored. */
  questions: number;
  /** Which model gave them. */
  model: string;
}

export interface Lengths {
  /** Token limits: queries (query_max_len) and passages (passage_max_len), as training uses them. */
  queryMaxLen: number;
  passageMaxLen: number;
  batchSize?: number;
}

/** Corpus and held-out questions of FlagEmbedding groups (see the file comment). */
export function groupsEvalSet(groups: readonly TrainGroup[], heldOut: readonly number[]): EvalSet {
  const pidOf = new Map<string, string>();
  const pids: string[] = [];
  const texts: string[] = [];
  const add = (t: string) => {
    let p = pidOf.get(t);
    if (p === undefined) {
      p = `p${texts.length}`;
      pidOf.set(t, p);
      pids.push(p);
      texts.push(t);
    }
    return p;
  };
  for (const g of groups) for (const t of [...g.pos, ...g.neg]) add(t);
  const byQuery = new Map<string, Set<string>>();
  for (const i of heldOut) {
    const g = groups[i];
    let s = byQuery.get(g.query);
    if (!s) byQuery.set(g.query, (s = new Set()));
    for (const t of g.pos) s.add(pidOf.get(t)!);
  }
  return { pids, texts, questions: [...byQuery].map(([text, gold]) => ({ text, pids: [...gold] })) };
}

/** A corpus embedded with one model and held on the GPU for exact top-k search. */
export class CorpusIndex {
  private constructor(
    readonly model: EmbeddingModel,
    readonly pids: readonly string[],
    readonly texts: readonly string[],
    private readonly index: GpuIndex,
    private readonly lengths: Lengths,
  ) {}

  /** Embed every passage (passage prefix, passage_max_len) and upload the f32 vectors. */
  static async build(model: EmbeddingModel, pids: readonly string[], texts: readonly string[], lengths: Lengths, onProgress?: (done: number, total: number) => void): Promise<CorpusIndex> {
    if (!texts.length) throw new Error('the corpus is empty');
    const vectors = await model.embed(texts.slice(), { maxLength: lengths.passageMaxLen, batchSize: lengths.batchSize ?? 32, onProgress: (p) => onProgress?.(p.done, p.total) });
    const index = await GpuIndex.upload(model.gpu, vectors, model.dim);
    return new CorpusIndex(model, pids, texts, index, lengths);
  }

  /** Top k pids, scores and corpus rows of each query text (query prefix, query_max_len), best first. */
  async rank(queries: readonly string[], k: number): Promise<{ pids: string[][]; scores: number[][]; rows: number[][] }> {
    const out = { pids: [] as string[][], scores: [] as number[][], rows: [] as number[][] };
    if (!queries.length) return out;
    const q = await this.model.embed(queries.slice(), { query: true, maxLength: this.lengths.queryMaxLen, batchSize: this.lengths.batchSize ?? 32 });
    const r = await this.index.search(q, k);
    for (let i = 0; i < queries.length; i++) {
      const rows = Array.from(r.ids.subarray(i * r.k, (i + 1) * r.k));
      out.rows.push(rows);
      out.pids.push(rows.map((id) => this.pids[id]));
      out.scores.push(Array.from(r.scores.subarray(i * r.k, (i + 1) * r.k)));
    }
    return out;
  }

  /** The held-out questions' rankings scored with the core metrics. */
  async evaluate(questions: readonly EvalQuestion[]): Promise<{ report: EvalReport; ranked: string[][] }> {
    const { pids } = await this.rank(questions.map((q) => q.text), EVAL_K);
    return { report: evaluate(pids, questions), ranked: pids };
  }

  release(): void {
    this.index.release();
  }
}

export function pageMetrics(r: EvalReport, model: string): PageMetrics {
  return { officialMap20: r.officialMap20, recall20: r.recall20, ndcg10: r.ndcg10, questions: r.questions, model };
}
