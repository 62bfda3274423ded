// The top results of each question as a table with the papers' titles, for `aqa search` on a
// terminal or with --show. Titles come from the corpus the index was built from, streamed: only
// the shown pids' titles are kept.

import type { AqaQuestion } from '../core/data/aqa.ts';
import { queryText } from '../core/data/clean.ts';
import { formatTable } from './bench/table.ts';
import { streamCorpus } from './data.ts';

/** Titles of `pids` from a corpus file; pids it lacks are absent from the map. */
export async function readTitles(corpus: string, pids: ReadonlySet<string>): Promise<Map<string, string>> {
  const titles = new Map<string, string>();
  for await (const e of streamCorpus(corpus).entries) if (pids.has(e.pid)) titles.set(e.pid, e.paper.title ?? '');
  return titles;
}

function clip(s: string, width: number): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length <= width ? one : `${one.slice(0, Math.max(1, width - 3))}...`;
}

/**
 * For each question a heading (its number and text) and a table of its first `rows` results:
 * rank, score, pid, title (clipped to `width` characters in all).
 */
export function formatResultTables(
  questions: readonly AqaQuestion[],
  ranked: { pids: string[][]; scores: number[][] },
  titles: ReadonlyMap<string, string>,
  rows: number,
  width = 100,
): string {
  const out: string[] = [];
  questions.forEach((q, i) => {
    out.push(`question ${i + 1}: ${clip(queryText(q), width - 14) || '(empty)'}`);
    const body = ranked.pids[i].slice(0, rows).map((pid, r) => ({ rank: r + 1, score: ranked.scores[i][r], pid, title: titles.get(pid) ?? '' }));
    const pidWidth = Math.max(3, ...body.map((b) => b.pid.length));
    const titleWidth = Math.max(20, width - pidWidth - 18);
    for (const b of body) b.title = clip(b.title, titleWidth);
    out.push(formatTable(body, ['rank', { key: 'score', digits: 4 }, 'pid', 'title']), '');
  });
  return out.join('\n');
}
