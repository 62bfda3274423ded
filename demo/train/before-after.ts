// The data side of a page run: split the questions into training and held-out ones
// (core/train/holdout.ts), embed the corpus with the base model, score the held-out questions
// before training, and after it with the tuned model over a re-embedded corpus. The index of the
// model that answers last serves the search box. Used by demo/train/worker.ts; host-neutral.

import type { TrainGroup } from '../../core/data/pairs.ts';
import { formatGroupLine } from '../../core/data/pairs.ts';
import type { Gpu } from '../../core/gpu/device.ts';
import type { ModelFiles } from '../../core/model/source.ts';
import type { MineStats } from '../../core/retrieval/mine.ts';
import { type EmbeddingModel, loadEmbeddingModel } from '../../core/retrieval/embed.ts';
import { holdOut } from '../../core/train/holdout.ts';
import { type AqaSource, aqaEvalSet, mineGroups, parseAqaData, splitAqa } from './aqa-data.ts';
import { CorpusIndex, type EvalSet, groupsEvalSet, type Lengths, type PageMetrics, pageMetrics } from './evaluate.ts';
import { parseGroupsText } from './session.ts';

export interface SplitInfo {
  /** Training groups (JSONL) or training questions (AQA) after the split. */
  train: number;
  /** Held-out questions. */
  heldOut: number;
  /** Passages in the corpus searched and evaluated on. */
  corpus: number;
}

/** The data side's messages to the page: the split, a line of status, the metrics, the mining summary. */
export type EvalEvent =
  | { kind: 'split'; split: SplitInfo }
  /** The corpus is embedded with this model and searchable. */
  | { kind: 'corpus'; model: 'base' | 'tuned'; passages: number }
  | { kind: 'status'; text: string }
  | { kind: 'metrics'; which: 'before' | 'after'; metrics: PageMetrics }
  | { kind: 'mined'; stats: MineStats };

/** The training data as the page hands it over: FlagEmbedding JSONL text, or an AQA corpus and questions. */
export interface DataRequest {
  data: string;
  dataName: string;
  aqa?: AqaSource;
  /** Share of the questions held out (core/train/holdout.ts). */
  holdout: number;
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

  /**
   * Re-embed the corpus with the tuned model, search with it from now on, and score the held-out
   * questions (null when none are held out).
   */
  async evaluateAfter(tuned: EmbeddingModel, onProgress?: (done: number, total: number) => void): Promise<PageMetrics | null> {
    this.tuned?.release();
    this.tuned = null;
    const index = await CorpusIndex.build(tuned, this.evalSet.pids, this.evalSet.texts, this.lengths, onProgress);
    this.tuned = index;
    if (!this.evalSet.questions.length) return null;
    this.after = pageMetrics((await index.evaluate(this.evalSet.questions)).report, `${tuned.name} (tuned)`);
    return this.after;
  }

  /** Whether the tuned model's corpus is in place (the search box's model). */
  get switched(): boolean {
    return this.tuned !== null;
  }

  async search(query: string, k: number): Promise<SearchAnswer> {
    const index = this.tuned ?? this.baseIndex;
    const r = await index.rank([query], k);
    return {
      model: this.tuned ? 'tuned' : 'base',
      modelName: index.model.name,
      hits: r.pids[0].map((pid, i) => ({ pid, score: r.scores[0][i], text: index.texts[r.rows[0][i]] })),
    };
  }

  /** The base model's index (the corpus as mining searches it). */
  get corpus(): CorpusIndex {
    return this.baseIndex;
  }

  /** Frees the indexes and the base model (the tuned model belongs to the training run). */
  dispose(): void {
    this.tuned?.release();
    this.baseIndex.release();
    this.base.dispose();
  }
}

/** Training groups with mined negatives, or the JSONL groups minus the held-out ones, and the evaluation ready to run. */
export interface PreparedRun {
  beforeAfter: BeforeAfter | null;
  groups: TrainGroup[];
  /** The training groups as JSONL (part of the run's storage key). */
  text: string;
}

/**
 * Split the data, embed the corpus with the base model, score the held-out questions (before)
 * and, for AQA data, mine the training groups with that model. `emit` gets each stage; `opened`
 * gets the BeforeAfter as soon as the corpus is embedded (and then owns it, on failure too).
 */
export async function prepareRun(gpu: Gpu, files: ModelFiles, modelName: string, req: DataRequest, s: Lengths & { seed: number }, emit: (e: EvalEvent) => void, opened?: (ba: BeforeAfter) => void): Promise<PreparedRun> {
  const lengths: Lengths = { queryMaxLen: s.queryMaxLen, passageMaxLen: s.passageMaxLen };
  let evalSet: EvalSet;
  let aqa: { data: ReturnType<typeof parseAqaData>; train: ReturnType<typeof splitAqa>['train'] } | null = null;
  let prepared: PreparedData | null = null;
  if (req.aqa) {
    const data = parseAqaData(req.aqa);
    for (const w of data.warnings) emit({ kind: 'status', text: w });
    const split = splitAqa(data.questions, req.holdout, s.seed);
    evalSet = aqaEvalSet(data.passages, split.heldOut);
    aqa = { data, train: split.train };
    emit({ kind: 'split', split: { train: split.train.length, heldOut: split.heldOut.length, corpus: data.passages.pids.length } });
  } else {
    prepared = prepareGroups(parseGroupsText(req.data, req.dataName), req.holdout, s.seed);
    evalSet = prepared.evalSet;
    emit({ kind: 'split', split: prepared.split });
  }
  const base = await loadEmbeddingModel(gpu, files, modelName);
  let ba: BeforeAfter;
  try {
    ba = await BeforeAfter.open(base, evalSet, lengths, (done, total) => emit({ kind: 'status', text: `Embedding the corpus with the base model: ${done} of ${total} passages` }));
  } catch (e) {
    base.dispose();
    throw e;
  }
  // From here the search box can use the corpus (mining and training run meanwhile).
  opened?.(ba);
  emit({ kind: 'corpus', model: 'base', passages: evalSet.pids.length });
  try {
    if (evalSet.questions.length) emit({ kind: 'metrics', which: 'before', metrics: await ba.evaluateBefore() });
    if (!aqa) return { beforeAfter: ba, groups: prepared!.groups, text: prepared!.text };
    emit({ kind: 'status', text: `Mining hard negatives for ${aqa.train.length} training question(s) with the base model...` });
    const mined = await mineGroups(ba.corpus, aqa.data.passages, aqa.train);
    emit({ kind: 'mined', stats: mined.stats });
    return { beforeAfter: ba, groups: mined.groups, text: mined.groups.map(formatGroupLine).join('\n') };
  } catch (e) {
    if (!opened) ba.dispose(); // else the caller holds it and frees it
    throw e;
  }
}
