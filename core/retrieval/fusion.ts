// Score fusion across retrieval runs (several models, or rounds of one).
//
// Input: per question, one `{pid: score}` map per run (each run's top-200). Each run's scores are
// first mapped per question by the method, then the fused score of a pid is the weighted sum
// over runs, sum_r w_r * v_r(pid), over the union of the runs' pids:
//
//   sum     v = raw score, missing = 0. The original: equal-weight sum of two models' cosines
//           (0.1724 and 0.1608 alone, 0.1847 fused on the B board).
//   zscore  v = (s - mean) / std over that question's list (population std; all-equal -> 0),
//           missing = the list's lowest z: an unlisted paper is ranked no better than the run's
//           last one. (With missing = 0 an unlisted paper would count as "average", i.e. above
//           half the run's own top 200.) The 2nd place recipe: z-score then weighted sum, 0.207.
//   minmax  v = (s - min) / (max - min) (all-equal -> 1), missing = 0 (= the list's lowest).
//   rrf     v = 1 / (k + rank), k = 60 (Cormack et al. 2009), rank 1-based; missing = 0.
//   rank    v = -rank, missing = -(list length + 1); the sum is divided by sum_r w_r, so the fused
//           score is minus the weighted mean rank (the 1st place's rank averaging, 0.223).
//
// Only the order inside one question matters to the metric, so each method is invariant to a
// run's per-question scale except `sum`, which is why `sum` needs runs on one scale (cosines).
// Ties in the fused ranking break by pid string order (see results.ts), so a fusion is a pure
// function of its inputs. Weights are tuned by grid search over the simplex on official MAP@20.

import { rng } from '../data/pairs.ts';
import { type Judged, officialMAP } from '../eval/metrics.ts';
import { type ScoreMap, rankPids, topK } from './results.ts';

export type FusionMethod = 'sum' | 'zscore' | 'minmax' | 'rrf' | 'rank';
export const FUSION_METHODS: readonly FusionMethod[] = ['sum', 'zscore', 'minmax', 'rrf', 'rank'];

export interface FusionOptions {
  /** Default 'sum' (the original). */
  method?: FusionMethod;
  /** One weight per run (default 1 each). */
  weights?: readonly number[];
  /** RRF's k (default 60). */
  rrfK?: number;
}

/** A run's scores for one question after the method's per-question mapping. */
export interface Normalized {
  values: ScoreMap;
  /** The value of a pid the run did not list. */
  missing: number;
}

/** The per-question mapping of one run's scores (see the file comment for each method). */
export function normalizeScores(scores: ScoreMap, method: FusionMethod, rrfK = 60): Normalized {
  const values: ScoreMap = new Map();
  const n = scores.size;
  switch (method) {
    case 'sum':
      return { values: new Map(scores), missing: 0 };
    case 'zscore': {
      if (!n) return { values, missing: 0 };
      let mean = 0;
      for (const s of scores.values()) mean += s;
      mean /= n;
      let v = 0;
      for (const s of scores.values()) v += (s - mean) ** 2;
      const std = Math.sqrt(v / n);
      let min = Infinity;
      for (const [pid, s] of scores) {
        const z = std > 0 ? (s - mean) / std : 0;
        values.set(pid, z);
        if (z < min) min = z;
      }
      return { values, missing: min };
    }
    case 'minmax': {
      let lo = Infinity;
      let hi = -Infinity;
      for (const s of scores.values()) {
        if (s < lo) lo = s;
        if (s > hi) hi = s;
      }
      for (const [pid, s] of scores) values.set(pid, hi > lo ? (s - lo) / (hi - lo) : 1);
      return { values, missing: 0 };
    }
    case 'rrf':
    case 'rank': {
      topK(scores).forEach(([pid], i) => values.set(pid, method === 'rrf' ? 1 / (rrfK + i + 1) : -(i + 1)));
      return { values, missing: method === 'rrf' ? 0 : -(n + 1) };
    }
  }
}

/** Weighted combination of already normalised runs for one question. */
export function combine(runs: readonly Normalized[], weights: readonly number[], method: FusionMethod): ScoreMap {
  const out: ScoreMap = new Map();
  for (const r of runs) for (const pid of r.values.keys()) out.set(pid, 0);
  let wsum = 0;
  for (const w of weights) wsum += w;
  for (const pid of out.keys()) {
    let s = 0;
    runs.forEach((r, i) => {
      s += weights[i] * (r.values.get(pid) ?? r.missing);
    });
    out.set(pid, method === 'rank' && wsum > 0 ? s / wsum : s);
  }
  return out;
}

function checkWeights(n: number, weights: readonly number[] | undefined): number[] {
  const w = weights ? [...weights] : new Array<number>(n).fill(1);
  if (w.length !== n) throw new Error(`fusion: ${w.length} weights for ${n} runs`);
  if (w.some((x) => !Number.isFinite(x) || x < 0)) throw new Error(`fusion: weights must be finite and >= 0, got [${w.join(', ')}]`);
  return w;
}

/** Fuse one question's score maps (one per run). */
export function fuse(maps: readonly ScoreMap[], opts: FusionOptions = {}): ScoreMap {
  const method = opts.method ?? 'sum';
  const w = checkWeights(maps.length, opts.weights);
  return combine(
    maps.map((m) => normalizeScores(m, method, opts.rrfK)),
    w,
    method,
  );
}

/** Fuse whole runs: `runs[r][q]` is run r's map for question q; all runs cover the same questions. */
export function fuseRuns(runs: readonly (readonly ScoreMap[])[], opts: FusionOptions = {}): ScoreMap[] {
  if (!runs.length) throw new Error('fusion: no runs');
  const nq = runs[0].length;
  runs.forEach((r, i) => {
    if (r.length !== nq) throw new Error(`fusion: run ${i} has ${r.length} questions, run 0 has ${nq}`);
  });
  const out: ScoreMap[] = [];
  for (let q = 0; q < nq; q++) out.push(fuse(runs.map((r) => r[q]), opts));
  return out;
}

/**
 * Weight vectors on the simplex with entries multiples of `step` (which must divide 1), in
 * lexicographic order from the first run's largest weight down: for 2 runs and step 0.5,
 * [1, 0], [0.5, 0.5], [0, 1]. Size C(1/step + R - 1, R - 1): 11 for 2 runs at 0.1, 66 for 3.
 */
export function weightGrid(runs: number, step = 0.1): number[][] {
  const m = Math.round(1 / step);
  if (runs < 1 || Math.abs(m * step - 1) > 1e-9) throw new Error(`weightGrid: step ${step} must divide 1, and runs (${runs}) be >= 1`);
  const out: number[][] = [];
  const cur: number[] = [];
  const rec = (left: number, r: number) => {
    if (r === runs - 1) {
      out.push([...cur, left / m]);
      return;
    }
    for (let a = left; a >= 0; a--) {
      cur.push(a / m);
      rec(left - a, r + 1);
      cur.pop();
    }
  };
  rec(m, 0);
  return out;
}

export interface TuneOptions {
  method?: FusionMethod;
  /** Grid step (default 0.1). */
  step?: number;
  rrfK?: number;
  /** Evaluate only these question indices (the tuning split); default all. */
  indices?: readonly number[];
}

export interface TuneResult {
  weights: number[];
  /** Official MAP@20 of the chosen weights on the tuning questions. */
  score: number;
  /** Official MAP@20 with equal weights, for comparison. */
  equalScore: number;
  /** Every grid point and its score, in grid order. */
  tried: { weights: number[]; score: number }[];
}

/**
 * Grid search for fusion weights maximising official MAP@20 on `questions` (restricted to
 * `indices`). Ties (scores within 1e-12, i.e. summation noise) go to the weights closest to
 * uniform (least fitted), then to the earlier grid point, so the result is deterministic.
 */
export function tuneWeights(runs: readonly (readonly ScoreMap[])[], questions: readonly Judged[], opts: TuneOptions = {}): TuneResult {
  const method = opts.method ?? 'sum';
  const idx = opts.indices ?? questions.map((_, i) => i);
  runs.forEach((r, i) => {
    if (r.length !== questions.length) throw new Error(`tuneWeights: run ${i} has ${r.length} questions, expected ${questions.length}`);
  });
  // Normalisation does not depend on the weights: do it once.
  const norm = idx.map((q) => runs.map((r) => normalizeScores(r[q], method, opts.rrfK)));
  const judged = idx.map((q) => questions[q]);
  const score = (w: readonly number[]) =>
    officialMAP(
      norm.map((n) => rankPids(combine(n, w, method), 20)),
      judged,
    );
  const R = runs.length;
  const uniform = new Array<number>(R).fill(1 / R);
  const dist = (w: readonly number[]) => w.reduce((a, x, i) => a + (x - uniform[i]) ** 2, 0);
  const tried: TuneResult['tried'] = [];
  let best: { weights: number[]; score: number } | null = null;
  for (const w of weightGrid(R, opts.step ?? 0.1)) {
    const s = score(w);
    tried.push({ weights: w, score: s });
    if (!best || s > best.score + 1e-12 || (Math.abs(s - best.score) <= 1e-12 && dist(w) < dist(best.weights) - 1e-12)) best = { weights: w, score: s };
  }
  return { weights: best!.weights, score: best!.score, equalScore: score(uniform), tried };
}

/** A seeded split of question indices: `fraction` of them (rounded) to tune, the rest to test. */
export function splitIndices(n: number, fraction = 0.5, seed = 1): { tune: number[]; test: number[] } {
  const order = Array.from({ length: n }, (_, i) => i);
  const random = rng(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const cut = Math.round(n * fraction);
  return { tune: order.slice(0, cut).sort((a, b) => a - b), test: order.slice(cut).sort((a, b) => a - b) };
}
