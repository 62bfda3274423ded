// Training pairs and groups for contrastive fine-tuning.
//
// The original wrote one record per (question, gold pid): the 809 SciFact training claims give
// 919 records; the real AQA validation questions cite 1.67 papers each (4,870 for 2,919, of which
// 77 repeat a pid inside the same question and are dropped here).
// Its negatives were random papers, not mined ones. Both layouts are here:
//   pairs:  `{query, pid}` one per (question, gold pid), gold pids missing from the corpus dropped;
//   groups: `{query, pos: [text], neg: [text]}`, FlagEmbedding's JSONL training layout, either
//           one per pair (pos = that paper, as the original) or one per question (pos = all gold).
// Negatives are drawn with a seeded generator so a run is reproducible, never a gold paper of
// the same question, and without repeats inside one group.

import { type AqaQuestion, DataError, describe } from './aqa.ts';
import { parseJsonObject } from '../util/fields.ts';
import { type CleanOptions, queryText } from './clean.ts';
import { rng } from '../util/random.ts';

export { rng };

export interface TrainPair {
  query: string;
  pid: string;
  /** Index of the question in its file (records order), for tracing back. */
  question: number;
}

export interface PairStats {
  pairs: number;
  /** Questions without pids (or with an empty list). */
  noPids: number;
  /** Gold pids dropped because the corpus lacks them. */
  missingPids: number;
  /** Questions left with no pair at all. */
  questionsDropped: number;
  /** Repeated gold pids inside one question, dropped. */
  duplicatePids: number;
}

/**
 * One pair per (question, distinct gold pid present in the corpus). Queries are cleaned with
 * `clean` (queryText: question + " " + body). `has` (optional) filters pids against the corpus.
 */
export function trainingPairs(questions: readonly AqaQuestion[], opts: { clean?: CleanOptions; has?: (pid: string) => boolean } = {}): { pairs: TrainPair[]; stats: PairStats } {
  const pairs: TrainPair[] = [];
  const stats: PairStats = { pairs: 0, noPids: 0, missingPids: 0, questionsDropped: 0, duplicatePids: 0 };
  questions.forEach((q, i) => {
    if (!q.pids?.length) {
      stats.noPids++;
      return;
    }
    const query = queryText(q, opts.clean);
    const seen = new Set<string>();
    let kept = 0;
    for (const pid of q.pids) {
      if (seen.has(pid)) {
        stats.duplicatePids++;
        continue;
      }
      seen.add(pid);
      if (opts.has && !opts.has(pid)) {
        stats.missingPids++;
        continue;
      }
      pairs.push({ query, pid, question: i });
      kept++;
    }
    if (!kept) stats.questionsDropped++;
  });
  stats.pairs = pairs.length;
  return { pairs, stats };
}

/**
 * `n` distinct pids drawn uniformly from `pool`, none in `exclude`. Rejection sampling: fast when
 * n + |exclude| is small next to the pool (9 of 466k); when the pool is nearly exhausted it
 * shuffles what is left instead. Returns fewer than n only if fewer are available.
 */
export function randomNegatives(pool: readonly string[], exclude: ReadonlySet<string>, n: number, random: () => number): string[] {
  const out: string[] = [];
  if (n <= 0 || pool.length === 0) return out;
  const taken = new Set<number>();
  if ((n + exclude.size) * 4 <= pool.length) {
    // At most a quarter of the pool is taken or excluded, so a draw is accepted with probability
    // >= 3/4 and the expected number of tries per negative is <= 4/3.
    while (out.length < n) {
      const j = Math.floor(random() * pool.length);
      if (taken.has(j) || exclude.has(pool[j])) continue;
      taken.add(j);
      out.push(pool[j]);
    }
    return out;
  }
  const rest: string[] = [];
  const dedupe = new Set<string>();
  for (const p of pool) if (!exclude.has(p) && !dedupe.has(p)) (dedupe.add(p), rest.push(p));
  for (let i = 0; i < Math.min(n, rest.length); i++) {
    const j = i + Math.floor(random() * (rest.length - i)); // Fisher-Yates, first n positions only
    [rest[i], rest[j]] = [rest[j], rest[i]];
    out.push(rest[i]);
  }
  return out;
}

/** FlagEmbedding's training record: texts, not ids. */
export interface TrainGroup {
  query: string;
  pos: string[];
  neg: string[];
}

/** The same with paper ids, before texts are looked up (what mining and bookkeeping work with). */
export interface PidGroup {
  query: string;
  pos: string[];
  neg: string[];
}

export interface GroupOptions {
  /** Random negatives per group (default 9: train_group_size 10 = 1 positive + 9 negatives). */
  negatives?: number;
  /** Seed of the negative sampler (default 42). */
  seed?: number;
  /** 'pair' (default, the original's layout): one group per (question, pid); 'question': one per question. */
  per?: 'pair' | 'question';
}

/**
 * Groups with random negatives from `pool` (the corpus pids). Gold pids of the question are
 * never negatives, whichever layout.
 */
export function randomGroups(pairs: readonly TrainPair[], pool: readonly string[], opts: GroupOptions = {}): PidGroup[] {
  const random = rng(opts.seed ?? 42);
  const k = opts.negatives ?? 9;
  const gold = new Map<number, Set<string>>();
  for (const p of pairs) {
    let s = gold.get(p.question);
    if (!s) gold.set(p.question, (s = new Set()));
    s.add(p.pid);
  }
  const out: PidGroup[] = [];
  if ((opts.per ?? 'pair') === 'pair') {
    for (const p of pairs) out.push({ query: p.query, pos: [p.pid], neg: randomNegatives(pool, gold.get(p.question)!, k, random) });
  } else {
    const done = new Set<number>();
    for (const p of pairs) {
      if (done.has(p.question)) continue;
      done.add(p.question);
      const g = gold.get(p.question)!;
      out.push({ query: p.query, pos: [...g], neg: randomNegatives(pool, g, k, random) });
    }
  }
  return out;
}

/** Replace pids by passage texts; throws if a pid has no passage (groups come from the same corpus). */
export function groupTexts(g: PidGroup, passage: (pid: string) => string | undefined): TrainGroup {
  const look = (pid: string) => {
    const t = passage(pid);
    if (t === undefined) throw new DataError(`training group "${g.query.slice(0, 40)}": pid ${pid} has no passage`);
    return t;
  };
  return { query: g.query, pos: g.pos.map(look), neg: g.neg.map(look) };
}


/** One JSONL line (no newline). */
export function formatGroupLine(g: TrainGroup | PidGroup): string {
  return JSON.stringify({ query: g.query, pos: g.pos, neg: g.neg });
}

/** Parse and validate one group line; errors read `where: field: what`. */
export function parseGroupLine(line: string, where: string): TrainGroup {
  const r = parseJsonObject(line, where, (m) => new DataError(m));
  if (typeof r.query !== 'string') throw new DataError(`${where}: query: ${r.query === undefined ? 'missing' : `${describe(r.query)}, not a string`}`);
  for (const f of ['pos', 'neg'] as const) {
    const v = r[f];
    if (v === undefined && f === 'neg') continue; // FlagEmbedding allows groups without negatives
    if (!Array.isArray(v)) throw new DataError(`${where}: ${f}: ${describe(v)}, not an array of strings`);
    const bad = v.findIndex((x) => typeof x !== 'string');
    if (bad >= 0) throw new DataError(`${where}: ${f}: element ${bad} is ${describe(v[bad])}, not a string`);
  }
  if (!(r.pos as string[]).length) throw new DataError(`${where}: pos: empty (a group needs a positive)`);
  return { query: r.query, pos: r.pos as string[], neg: (r.neg as string[] | undefined) ?? [] };
}

export function formatPairLine(p: TrainPair): string {
  return JSON.stringify({ query: p.query, pid: p.pid, question: p.question });
}

export function parsePairLine(line: string, where: string): TrainPair {
  const r = parseJsonObject(line, where, (m) => new DataError(m));
  if (typeof r.query !== 'string') throw new DataError(`${where}: query: ${r.query === undefined ? 'missing' : `${describe(r.query)}, not a string`}`);
  if (typeof r.pid !== 'string') throw new DataError(`${where}: pid: ${r.pid === undefined ? 'missing' : `${describe(r.pid)}, not a string`}`);
  const question = r.question === undefined ? -1 : r.question;
  if (typeof question !== 'number' || !Number.isInteger(question)) throw new DataError(`${where}: question: ${describe(question)}, not an integer`);
  return { query: r.query, pid: r.pid, question };
}
