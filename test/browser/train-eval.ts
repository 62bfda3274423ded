// Chromium entry for test/browser-train-eval.test.ts: the training page's data side
// (demo/train/before-after.ts prepareRun, exactly what demo/train/worker.ts runs before training)
// on AQA data with the model at arg.model: the split, the base model's held-out metrics, the
// mined training groups; plus the held-out rankings with their scores (to explain any difference
// from Node) and the search box's answers before and after the switch of models.

import { createBrowserGpu } from '../../browser/device.ts';
import { fetchModelFiles } from '../../browser/fetch.ts';
import type { TrainGroup } from '../../core/data/pairs.ts';
import { loadEmbeddingModel } from '../../core/retrieval/embed.ts';
import type { MineStats } from '../../core/retrieval/mine.ts';
import { type EvalEvent, prepareRun } from '../../demo/train/before-after.ts';
import type { AqaSource } from '../../demo/train/aqa-data.ts';
import type { PageMetrics } from '../../demo/train/evaluate.ts';

export interface TrainEvalArg {
  model: string;
  aqa: AqaSource;
  holdout: number;
  seed: number;
  queryMaxLen: number;
  passageMaxLen: number;
  /** Query texts of the training questions, to return their rankings. */
  trainTexts: string[];
}

export interface TrainEvalReport {
  adapter: string;
  events: EvalEvent[];
  openedAfter: number;
  before: PageMetrics;
  mined: MineStats;
  groups: TrainGroup[];
  /** Held-out query texts in order, their top-20 pids and scores. */
  heldOut: string[];
  ranked: string[][];
  scores: number[][];
  /** The training questions' full rankings (what mining sampled from) and scores. */
  trainRanked: string[][];
  trainScores: number[][];
  search: { before: { model: string; pids: string[] }; after: { model: string; pids: string[] }; afterMetrics: PageMetrics };
  ms: number;
}

export async function run(arg: TrainEvalArg): Promise<TrainEvalReport> {
  const t0 = performance.now();
  const gpu = await createBrowserGpu();
  const files = fetchModelFiles(arg.model);
  const events: EvalEvent[] = [];
  // When the corpus index reaches the worker, counted in events so far: the search box needs it before mining ends.
  let openedAfter = -1;
  const p = await prepareRun(gpu, files, 'tiny-bert', { data: '', dataName: '', aqa: arg.aqa, holdout: arg.holdout }, { queryMaxLen: arg.queryMaxLen, passageMaxLen: arg.passageMaxLen, seed: arg.seed }, (e) => events.push(e), () => (openedAfter = events.length));
  const ba = p.beforeAfter!;
  const before = events.find((e) => e.kind === 'metrics')!;
  const mined = events.find((e) => e.kind === 'mined')!;
  const heldOut = ba.evalSet.questions.map((q) => q.text);
  const r = await ba.corpus.rank(heldOut, 20);
  const train = await ba.corpus.rank(arg.trainTexts, 210);
  const query = heldOut[0];
  const s0 = await ba.search(query, 10);
  // The switch, without training: a second copy of the base model stands in for the tuned one,
  // so its metrics must equal the base model's and the search must say "tuned".
  const second = await loadEmbeddingModel(gpu, files, 'tiny-bert');
  const afterMetrics = (await ba.evaluateAfter(second))!;
  const s1 = await ba.search(query, 10);
  ba.dispose();
  second.dispose();
  return {
    adapter: gpu.name,
    events,
    openedAfter,
    before: (before as { metrics: PageMetrics }).metrics,
    mined: (mined as { stats: MineStats }).stats,
    groups: p.groups,
    heldOut,
    ranked: r.pids,
    scores: r.scores,
    trainRanked: train.pids,
    trainScores: train.scores,
    search: { before: { model: s0.model, pids: s0.hits.map((h) => h.pid) }, after: { model: s1.model, pids: s1.hits.map((h) => h.pid) }, afterMetrics },
    ms: performance.now() - t0,
  };
}
