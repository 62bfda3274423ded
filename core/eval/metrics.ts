// Ranking metrics for AQA runs.
//
// officialAP is the KDD Cup 2024 OAG-AQA scorer's (THUDM/OAG-AQA): over the top 20,
//   AP = (sum over ranks k holding a gold pid of hits@k / k) / (hits in the top 20), 0 if none,
// i.e. divided by the hits FOUND, not by the number of gold papers, so a run that puts one gold
// paper at rank 1 scores 1 even when the question cites five. The leaderboard MAP is the flag-
// weighted mean: flag 0 questions are ignored, questions without a flag count with weight 1.
// The scorer takes every position at face value (a gold pid listed twice counts twice); the
// submission writer (core/retrieval/results.ts) forbids repeats, so that case never arises.
//
// The standard metrics count each gold pid once (a repeat in the ranking is skipped) and use the
// same weights, so every number in a report is over the same questions:
//   standardAP@k: same numerator, divided by min(#gold, k);
//   recall@k:     distinct gold pids in the top k / #gold;
//   nDCG@10:      binary gains, DCG = sum_i rel_i / log2(i + 1), ideal DCG over min(#gold, 10).
// Questions without gold pids score 0 in the official MAP (as in the scorer) and are left out
// of the standard means (they have no defined recall); `EvalReport.noGold` counts them.

export interface Judged {
  pids?: readonly string[];
  flag?: 0 | 1;
}

export const OFFICIAL_K = 20;

function goldSet(gold: Iterable<string>): Set<string> {
  return gold instanceof Set ? (gold as Set<string>) : new Set(gold);
}

/** The official scorer's AP over the first k (20) ranks. */
export function officialAP(ranked: readonly string[], gold: Iterable<string>, k = OFFICIAL_K): number {
  const g = goldSet(gold);
  let hits = 0;
  let sum = 0;
  const n = Math.min(k, ranked.length);
  for (let i = 0; i < n; i++) {
    if (g.has(ranked[i])) {
      hits++;
      sum += hits / (i + 1);
    }
  }
  return hits ? sum / hits : 0;
}

/** The first k distinct pids of a ranking (a repeated pid keeps its first rank). */
function distinctTop(ranked: readonly string[], k: number): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const p of ranked) {
    if (out.length >= k) break;
    if (seen.has(p)) continue;
    seen.add(p);
    out.push(p);
  }
  return out;
}

/** Standard AP@k: divided by min(#gold, k). 0 when there is no gold. */
export function standardAP(ranked: readonly string[], gold: Iterable<string>, k = OFFICIAL_K): number {
  const g = goldSet(gold);
  if (!g.size) return 0;
  const top = distinctTop(ranked, k);
  let hits = 0;
  let sum = 0;
  top.forEach((p, i) => {
    if (g.has(p)) {
      hits++;
      sum += hits / (i + 1);
    }
  });
  return sum / Math.min(g.size, k);
}

/** Distinct gold pids in the top k over #gold. 0 when there is no gold. */
export function recallAt(ranked: readonly string[], gold: Iterable<string>, k: number): number {
  const g = goldSet(gold);
  if (!g.size) return 0;
  let hits = 0;
  for (const p of distinctTop(ranked, k)) if (g.has(p)) hits++;
  return hits / g.size;
}

/** nDCG@k with binary gains and log2(rank + 1) discounts. 0 when there is no gold. */
export function ndcgAt(ranked: readonly string[], gold: Iterable<string>, k = 10): number {
  const g = goldSet(gold);
  if (!g.size) return 0;
  let dcg = 0;
  distinctTop(ranked, k).forEach((p, i) => {
    if (g.has(p)) dcg += 1 / Math.log2(i + 2);
  });
  let ideal = 0;
  for (let i = 0; i < Math.min(g.size, k); i++) ideal += 1 / Math.log2(i + 2);
  return dcg / ideal;
}

/** A question's weight in every mean: its flag, or 1 without one. */
export function weightOf(q: Judged): number {
  return q.flag ?? 1;
}

/**
 * The official MAP@20: flag-weighted mean of officialAP. `ranked[i]` is the ranking for
 * `questions[i]`. 0 if no question has weight.
 */
export function officialMAP(ranked: readonly (readonly string[])[], questions: readonly Judged[], k = OFFICIAL_K): number {
  checkLengths(ranked, questions);
  let num = 0;
  let den = 0;
  questions.forEach((q, i) => {
    const w = weightOf(q);
    if (!w) return;
    num += w * officialAP(ranked[i], q.pids ?? [], k);
    den += w;
  });
  return den ? num / den : 0;
}

export interface EvalReport {
  /** Questions with weight > 0 (flag 1 or no flag). */
  questions: number;
  /** Of those, questions with no gold pid (0 in the official MAP, not in the standard means). */
  noGold: number;
  officialMap20: number;
  map20: number;
  recall20: number;
  recall100: number;
  recall200: number;
  ndcg10: number;
}

function checkLengths(ranked: readonly unknown[], questions: readonly unknown[]): void {
  if (ranked.length !== questions.length) throw new Error(`metrics: ${ranked.length} rankings for ${questions.length} questions`);
}

/** Every metric of the report in one pass. */
export function evaluate(ranked: readonly (readonly string[])[], questions: readonly Judged[]): EvalReport {
  checkLengths(ranked, questions);
  const r: EvalReport = { questions: 0, noGold: 0, officialMap20: 0, map20: 0, recall20: 0, recall100: 0, recall200: 0, ndcg10: 0 };
  let offDen = 0;
  let stdDen = 0;
  questions.forEach((q, i) => {
    const w = weightOf(q);
    if (!w) return;
    r.questions++;
    const gold = new Set(q.pids ?? []);
    r.officialMap20 += w * officialAP(ranked[i], gold);
    offDen += w;
    if (!gold.size) {
      r.noGold++;
      return;
    }
    r.map20 += w * standardAP(ranked[i], gold);
    r.recall20 += w * recallAt(ranked[i], gold, 20);
    r.recall100 += w * recallAt(ranked[i], gold, 100);
    r.recall200 += w * recallAt(ranked[i], gold, 200);
    r.ndcg10 += w * ndcgAt(ranked[i], gold, 10);
    stdDen += w;
  });
  if (offDen) r.officialMap20 /= offDen;
  if (stdDen) for (const f of ['map20', 'recall20', 'recall100', 'recall200', 'ndcg10'] as const) r[f] /= stdDen;
  return r;
}

/** One line: `official MAP@20 0.1234 | MAP@20 ... | R@20 ... | R@100 ... | R@200 ... | nDCG@10 ... (n=300)`. */
export function formatReport(r: EvalReport): string {
  const f = (x: number) => x.toFixed(4);
  return `official MAP@20 ${f(r.officialMap20)} | MAP@20 ${f(r.map20)} | R@20 ${f(r.recall20)} | R@100 ${f(r.recall100)} | R@200 ${f(r.recall200)} | nDCG@10 ${f(r.ndcg10)} (n=${r.questions}${r.noGold ? `, ${r.noGold} without gold` : ''})`;
}
