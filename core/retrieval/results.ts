// Retrieval results and the submission file.
//
// Results: one JSONL line per question, `{pid: score}` for its top-k (200, as the original kept
// for fusion), in rank order. Scores are written with JSON's shortest round-trip form, so a
// read gives back the exact doubles and re-ranking or fusing a file equals doing it in memory.
// Key order in the file is rank order, but readers must not rely on it: JavaScript objects put
// integer-like keys (every SciFact pid) first in numeric order, so a ranking is always rebuilt
// from the scores.
//
// Ranking order everywhere (here, fusion, BM25): score descending, then pid ascending by UTF-16
// code units (`a < b`, not localeCompare, which depends on the locale). So equal scores always
// rank the same way on every machine, whatever order the candidates came in.
//
// Submission: one line per question, in the question file's order, exactly 20 distinct pids
// joined by ','. The official format check rejects other counts, so the writer refuses to
// produce one: a ranking short of 20 distinct pids is padded from a fallback list when one is
// given (e.g. the most cited papers, or another run), else it is an error naming the line.

import { DataError, describe } from '../data/aqa.ts';
import { parseJsonObject } from '../util/fields.ts';

export type ScoreMap = Map<string, number>;

export const RESULTS_K = 200;
export const SUBMISSION_K = 20;

/** Rank order: higher score first, then smaller pid (code-unit order). */
function compareRanked(a: readonly [string, number], b: readonly [string, number]): number {
  if (a[1] !== b[1]) return b[1] - a[1];
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

/**
 * The k best entries in rank order (all when k is omitted). A full sort when k is a large part
 * of the input, else a size-k heap: BM25 over 466k papers touches ~100k of them per query and
 * keeps 200, where the heap does ~100k * log2(200) comparisons against a sort's ~100k * 17.
 */
export function topK(scores: ScoreMap | Iterable<[string, number]>, k = Infinity): [string, number][] {
  const all = Array.isArray(scores) ? (scores as [string, number][]) : [...scores];
  for (const [pid, s] of all) if (Number.isNaN(s)) throw new Error(`score of pid ${pid} is NaN`);
  if (k <= 0) return [];
  if (k * 8 >= all.length) return all.slice().sort(compareRanked).slice(0, k);
  // Min-heap on rank order: the root is the worst entry kept so far.
  const heap: [string, number][] = [];
  const worse = (i: number, j: number) => compareRanked(heap[i], heap[j]) > 0;
  const swap = (i: number, j: number) => ([heap[i], heap[j]] = [heap[j], heap[i]]);
  const down = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let w = i;
      if (l < heap.length && worse(l, w)) w = l;
      if (r < heap.length && worse(r, w)) w = r;
      if (w === i) return;
      swap(i, w);
      i = w;
    }
  };
  for (const e of all) {
    if (heap.length < k) {
      heap.push(e);
      for (let i = heap.length - 1; i > 0; ) {
        const p = (i - 1) >> 1;
        if (!worse(i, p)) break;
        swap(i, p);
        i = p;
      }
    } else if (compareRanked(e, heap[0]) < 0) {
      heap[0] = e;
      down(0);
    }
  }
  return heap.sort(compareRanked);
}

/** Pids of the k best entries. */
export function rankPids(scores: ScoreMap, k = Infinity): string[] {
  return topK(scores, k).map((e) => e[0]);
}

/** One results line (no newline): the top k of `scores` as `{pid: score}` in rank order. */
export function formatResultLine(scores: ScoreMap, k = RESULTS_K): string {
  const parts: string[] = [];
  for (const [pid, s] of topK(scores, k)) {
    if (!Number.isFinite(s)) throw new Error(`score ${s} of pid ${pid} cannot be written as JSON`);
    parts.push(`${JSON.stringify(pid)}:${JSON.stringify(s)}`);
  }
  return `{${parts.join(',')}}`;
}

/** Parse one results line; `where` is `file:line` for messages. */
export function parseResultLine(line: string, where: string): ScoreMap {
  const o = parseJsonObject(line, where, (m) => new DataError(m), 'an object {pid: score}');
  const m: ScoreMap = new Map();
  for (const [pid, s] of Object.entries(o)) {
    if (typeof s !== 'number') throw new DataError(`${where}: ${pid}: score is ${describe(s)}, not a number`);
    m.set(pid, s);
  }
  return m;
}

/** A whole results text (browser, tests); blank lines are not allowed: every line is a question. */
export function parseResults(text: string, file: string): ScoreMap[] {
  const lines = text.split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  return lines.map((l, i) => parseResultLine(l, `${file}:${i + 1}`));
}

export interface SubmissionOptions {
  /** Number of questions the file must have (the question file's record count). */
  questions: number;
  /** Pids to pad a short ranking with, in order; those already listed are skipped. */
  fallback?: readonly string[];
  /** Pids per line (default 20, the official format). */
  k?: number;
}

export interface SubmissionStats {
  /** Lines that needed padding from the fallback. */
  padded: number;
  /** Repeated pids removed from rankings. */
  repeats: number;
}

/**
 * Submission text: for each ranking its first k distinct pids, padded from `fallback` if short.
 * Throws DataError naming the line when a line would have fewer than k distinct pids, when the
 * ranking count differs from `questions`, or when a pid contains ',' or a line break (it would
 * split the line differently when read back).
 */
export function formatSubmission(rankings: readonly (readonly string[])[], opts: SubmissionOptions): { text: string; stats: SubmissionStats } {
  const k = opts.k ?? SUBMISSION_K;
  if (rankings.length !== opts.questions) {
    throw new DataError(`submission: ${rankings.length} rankings for ${opts.questions} questions (one line per question, in the question file's order)`);
  }
  const stats: SubmissionStats = { padded: 0, repeats: 0 };
  const lines = rankings.map((ranked, i) => {
    const seen = new Set<string>();
    const line: string[] = [];
    const take = (p: string) => {
      if (/[,\r\n]/.test(p) || p === '') throw new DataError(`submission line ${i + 1}: pid ${JSON.stringify(p)} cannot be written (empty, or holds ',' or a line break)`);
      seen.add(p);
      line.push(p);
    };
    for (const p of ranked) {
      if (line.length >= k) break;
      if (seen.has(p)) stats.repeats++;
      else take(p);
    }
    if (line.length < k && opts.fallback) {
      stats.padded++;
      for (const p of opts.fallback) {
        if (line.length >= k) break;
        if (!seen.has(p)) take(p);
      }
    }
    if (line.length < k) {
      throw new DataError(
        `submission line ${i + 1}: only ${line.length} distinct pids, the format needs exactly ${k}${opts.fallback ? ' (the fallback list ran out)' : ' (give a fallback list to pad from)'}`,
      );
    }
    return line.join(',');
  });
  return { text: lines.length ? `${lines.join('\n')}\n` : '', stats };
}

/** Read a submission back (format check): every line exactly k distinct pids. */
export function parseSubmission(text: string, file: string, k = SUBMISSION_K): string[][] {
  const lines = text.split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  return lines.map((l, i) => {
    const pids = l.replace(/\r$/, '').split(',');
    if (pids.length !== k) throw new DataError(`${file}:${i + 1}: ${pids.length} pids, expected ${k}`);
    if (new Set(pids).size !== k) throw new DataError(`${file}:${i + 1}: repeated pids`);
    if (pids.some((p) => p.trim() === '')) throw new DataError(`${file}:${i + 1}: empty pid`);
    return pids;
  });
}
