// The data side of a page run: split the questions into training and held-out ones
// (core/train/holdout.ts), embed the corpus with the base model, score the held-out questions
// before training, and after it with the tuned model over a re-embedded corpus. The index of the
// model that answers last serves the search box. Used by demo/train/worker.ts; host-neutral.

import type { TrainGroup } from '../../core/data/pairs.ts';
import { formatGroupLine } from '../../core/data/pairs.ts';
import type { EmbeddingModel } from '../../core/retrieval/embed.ts';
import { holdOut } from '../../core/train/holdout.ts';
import { CorpusIndex, type EvalSet, groupsEvalSet, type Lengths, type PageMetrics, pageMetrics } from './evaluate.ts';

export interface SplitInfo {
  /** Training groups (JSONL) or training questions (AQA) after the split. */
  train: number;
  /** Held-out questions. */
  heldOut: number;
  /** Passages in the corpus searched and evaluated on. */
  corpus: number;
}

/** What the page searched with: which model answers, and the hits. */
export interface SearchAnswer {
  model: 'base' | 'tuned';
  modelName: string;
  hits: { pid: string; score: number; text: string }[];
}

/** Groups to train on, and the held-out questions with their corpus. */
export interface PreparedData {
  groups: TrainGroup[];
  evalSet: EvalSet;
  split: SplitInfo;
  /** The training data as JSONL text (what the run's storage key and data hash are made of). */
  text: string;
}

/** FlagEmbedding groups: split by query, evaluate on the union of their passages. */
export function prepareGroups(groups: readonly TrainGroup[], fraction: number, seed: number): PreparedData {
  const s = holdOut(groups.map((g) => g.query), { fraction, seed });
  const evalSet = groupsEvalSet(groups, s.heldOut);
  const train = s.train.map((i) => groups[i]);
  return { groups: train, evalSet, split: { train: train.length, heldOut: evalSet.questions.length, corpus: evalSet.pids.length }, text: train.map(formatGroupLine).join('\n') };
}

export class BeforeAfter {
  before: PageMetrics | null = null;
  after: PageMetrics | null = null;
  private tuned: CorpusIndex | null = null;

  constructor(
    readonly base: EmbeddingModel,
    readonly baseIndex: CorpusIndex,
    readonly evalSet: EvalSet,
    readonly lengths: Lengths,
  ) {}

  /** Embed the corpus with the base model (the search box's index before training). */
  static async open(base: EmbeddingModel, evalSet: EvalSet, lengths: Lengths, onProgress?: (done: number, total: number) => void): Promise<BeforeAfter> {
    return new BeforeAfter(base, await CorpusIndex.build(base, evalSet.pids, evalSet.texts, lengths, onProgress), evalSet, lengths);
  }

  async evaluateBefore(): Promise<PageMetrics> {
    this.before = pageMetrics((await this.baseIndex.evaluate(this.evalSet.questions)).report, `${this.base.name} (base)`);
    return this.before;
  }

  /** Re-embed the corpus with the tuned model, score the held-out questions, and search with it from now on. */
  async evaluateAfter(tuned: EmbeddingModel, onProgress?: (done: number, total: number) => void): Promise<PageMetrics> {
    this.tuned?.release();
    this.tuned = null;
    const index = await CorpusIndex.build(tuned, this.evalSet.pids, this.evalSet.texts, this.lengths, onProgress);
    this.tuned = index;
    this.after = pageMetrics((await index.evaluate(this.evalSet.questions)).report, `${tuned.name} (tuned)`);
    return this.after;
  }

  async search(query: string, k: number): Promise<SearchAnswer> {
    const index = this.tuned ?? this.baseIndex;
    const r = await index.rank([query], k);
    const row = new Map(index.pids.map((p, i) => [p, i]));
    return {
      model: this.tuned ? 'tuned' : 'base',
      modelName: index.model.name,
      hits: r.pids[0].map((pid, i) => ({ pid, score: r.scores[0][i], text: index.texts[row.get(pid)!] })),
    };
  }

  /** Frees the indexes and the base model (the tuned model belongs to the training run). */
  dispose(): void {
    this.tuned?.release();
    this.baseIndex.release();
    this.base.dispose();
  }
}
