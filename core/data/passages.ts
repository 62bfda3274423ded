// Passage text for a paper: `title + ". " + abstract`, cut to 2,000 characters.
//
// The original embedded the Python repr of `{'title': ..., 'abstract': ...}` (quotes, braces and
// key names spent tokens and the model never saw that layout in pre-training); this is the plain
// form. A null or blank title gives the abstract alone, a title already ending in . ? ! : or ;
// is not given a second mark, and a blank abstract gives the title alone. The cut (2,000 by
// default, as the original's inference script) counts code points like Python's slicing, so a
// surrogate pair is never split.

import type { Paper } from './aqa.ts';

export interface PassageOptions {
  /** Keep at most this many code points (default 2000; Infinity keeps all). */
  maxChars?: number;
}

export const PASSAGE_MAX_CHARS = 2000;

/** The first `max` code points of `s` (Python's `s[:max]`). */
export function cutCodePoints(s: string, max: number): string {
  if (s.length <= max) return s; // code points <= UTF-16 units
  let units = 0;
  let cps = 0;
  while (cps < max && units < s.length) {
    const c = s.charCodeAt(units);
    units += c >= 0xd800 && c <= 0xdbff && units + 1 < s.length ? 2 : 1;
    cps++;
  }
  return s.slice(0, units);
}

export function passageText(paper: { title?: string | null; abstract?: string | null }, opts: PassageOptions = {}): string {
  const title = (paper.title ?? '').trim();
  const abstract = (paper.abstract ?? '').trim();
  let text: string;
  if (!title) text = abstract;
  else if (!abstract) text = title;
  else text = /[.?!:;]$/.test(title) ? `${title} ${abstract}` : `${title}. ${abstract}`;
  return cutCodePoints(text, opts.maxChars ?? PASSAGE_MAX_CHARS);
}

export interface Passages {
  /** Corpus order. */
  pids: string[];
  texts: string[];
  /** pid -> row in pids/texts. */
  index: Map<string, number>;
}

/** Passages for a whole corpus, in its order. */
export function buildPassages(papers: Iterable<[string, Paper]>, opts: PassageOptions = {}): Passages {
  const pids: string[] = [];
  const texts: string[] = [];
  const index = new Map<string, number>();
  for (const [pid, paper] of papers) {
    if (index.has(pid)) continue;
    index.set(pid, pids.length);
    pids.push(pid);
    texts.push(passageText(paper, opts));
  }
  return { pids, texts, index };
}
