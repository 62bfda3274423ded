// Hard-negative mining for contrastive fine-tuning, as FlagEmbedding's hn_mine does it:
// retrieve the top `range_end` papers for each training question with the current model, keep
// 0-based positions [range_start, range_end) of that list (10-210: ranks 11 to 210, so the very
// top, which often holds unlabelled positives, is skipped), drop the question's gold papers and
// any passage whose text equals the query, and sample `negatives` of what is left without
// replacement (in sampled order, like Python's random.sample). When fewer are left, the group is
// topped up with random corpus papers (not gold, not already chosen), as hn_mine does.
// Differences from hn_mine, each deliberate: negatives exclude every gold paper of the question
// (hn_mine only the group's `pos` texts, which in the one-group-per-pair layout lets a
// question's other gold paper become a negative); top-ups never repeat a negative; sampling is
// seeded (Mulberry32, core/data/pairs.ts), so a seed gives the same file on every machine.
// `--random` gives the original pipeline's random negatives instead (core/data/pairs.ts).
// Host-neutral: `aqa mine` (node/index-command.ts) reads the files, retrieves and writes the lines.

import { type PidGroup, randomNegatives, rng, type TrainGroup, type TrainPair } from '../data/pairs.ts';

export interface MineOptions {
  /** 0-based positions [start, end) of the ranking to sample from (default [10, 210]). */
  range?: [number, number];
  /** Negatives per group (default 15). */
  negatives?: number;
  seed?: number;
  /** 'pair' (default): one group per (question, gold pid); 'question': one per question, pos = all gold. */
  per?: 'pair' | 'question';
  /** Passage text of a pid, to drop passages identical to the query (hn_mine's `corpus[inx] != query`). */
  passage?: (pid: string) => string | undefined;
}

export interface MineStats {
  groups: number;
  /** Hard negatives taken from the rankings. */
  hard: number;
  /** Random papers added to groups whose range held too few candidates. */
  toppedUp: number;
  /** Groups that needed a top-up. */
  groupsToppedUp: number;
  /** Candidates in the range dropped as gold papers of the question. */
  goldInRange: number;
  /** Candidates dropped because their text equals the query. */
  sameAsQuery: number;
}

const DEFAULT_RANGE: [number, number] = [10, 210];
export const DEFAULT_NEGATIVES = 15;

/** "10-210" -> [10, 210]; throws a one-line message on anything else. */
export function parseRange(s: string): [number, number] {
  const m = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(s);
  if (!m) throw new Error(`--range: expected START-END like 10-210, got '${s}'`);
  const a = Number(m[1]);
  const b = Number(m[2]);
  if (b <= a) throw new Error(`--range: END must be greater than START, got '${s}'`);
  return [a, b];
}

/** `n` distinct items of `items` in random order (partial Fisher-Yates on a copy). */
export function sample<T>(items: readonly T[], n: number, random: () => number): T[] {
  const a = items.slice();
  const m = Math.min(n, a.length);
  for (let i = 0; i < m; i++) {
    const j = i + Math.floor(random() * (a.length - i));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a.slice(0, m);
}

/**
 * Groups with mined negatives. `ranked(question)` is the retrieval ranking (pids, best first,
 * at least range end long where the corpus allows) of the question with that index in the
 * pairs' `question` field; `pool` is every corpus pid (for top-ups).
 */
export function mineHardNegatives(pairs: readonly TrainPair[], ranked: (question: number) => readonly string[], pool: readonly string[], o: MineOptions = {}): { groups: PidGroup[]; stats: MineStats } {
  const [start, end] = o.range ?? DEFAULT_RANGE;
  const n = o.negatives ?? DEFAULT_NEGATIVES;
  const random = rng(o.seed ?? 42);
  const stats: MineStats = { groups: 0, hard: 0, toppedUp: 0, groupsToppedUp: 0, goldInRange: 0, sameAsQuery: 0 };

  const gold = new Map<number, Set<string>>();
  for (const p of pairs) {
    let s = gold.get(p.question);
    if (!s) gold.set(p.question, (s = new Set()));
    s.add(p.pid);
  }
  const group = (query: string, question: number, pos: string[]): PidGroup => {
    const g = gold.get(question)!;
    const candidates: string[] = [];
    for (const pid of ranked(question).slice(start, end)) {
      if (g.has(pid)) stats.goldInRange++;
      else if (o.passage && o.passage(pid) === query) stats.sameAsQuery++;
      else candidates.push(pid);
    }
    const neg = candidates.length > n ? sample(candidates, n, random) : candidates;
    stats.hard += neg.length;
    if (neg.length < n) {
      const extra = randomNegatives(pool, new Set([...g, ...neg]), n - neg.length, random);
      stats.toppedUp += extra.length;
      stats.groupsToppedUp++;
      neg.push(...extra);
    }
    stats.groups++;
    return { query, pos, neg };
  };

  const groups: PidGroup[] = [];
  if ((o.per ?? 'pair') === 'pair') {
    for (const p of pairs) groups.push(group(p.query, p.question, [p.pid]));
  } else {
    const done = new Set<number>();
    for (const p of pairs) {
      if (done.has(p.question)) continue;
      done.add(p.question);
      groups.push(group(p.query, p.question, [...gold.get(p.question)!]));
    }
  }
  return { groups, stats };
}

/** One output line: FlagEmbedding's `{query, pos, neg}` texts plus the pids they came from. */
export function formatMinedLine(g: PidGroup, passage: (pid: string) => string | undefined): string {
  const look = (pid: string) => {
    const t = passage(pid);
    if (t === undefined) throw new Error(`pid ${pid} has no passage`);
    return t;
  };
  const line: TrainGroup & { pos_pids: string[]; neg_pids: string[] } = { query: g.query, pos: g.pos.map(look), neg: g.neg.map(look), pos_pids: g.pos, neg_pids: g.neg };
  return JSON.stringify(line);
}
