// What the results list shows besides the ranking: the question's terms marked in a title or
// snippet, a link to the paper, and the load progress. Pure functions (no DOM), so Node tests
// check them; demo/render.ts turns their output into elements through textContent only.

import { STOPWORDS, tokenize } from '../core/retrieval/bm25.ts';
import type { LoadStep } from './worker.ts';

export interface Segment {
  text: string;
  /** True when the piece is a word the question's BM25 tokens contain. */
  mark: boolean;
}

/** The question's BM25 terms: what the lexical ranking matches, so what the page marks. */
export function queryTerms(query: string): Set<string> {
  return new Set(tokenize(query, STOPWORDS));
}

const WORD = /[\p{L}\p{N}]+/gu;

/**
 * `text` cut into pieces, the words whose lowercase form is a query term marked. Words are
 * BM25's (core/retrieval/bm25.ts tokenize: runs of letters and digits), matched exactly, not
 * stemmed: "fracture" does not mark "fractures". Adjacent pieces never share a mark value.
 */
export function highlight(text: string, terms: ReadonlySet<string>): Segment[] {
  const out: Segment[] = [];
  const push = (t: string, mark: boolean) => {
    if (!t) return;
    const last = out[out.length - 1];
    if (last && last.mark === mark) last.text += t;
    else out.push({ text: t, mark });
  };
  let at = 0;
  if (terms.size) {
    for (const m of text.matchAll(WORD)) {
      if (!terms.has(m[0].toLowerCase())) continue;
      push(text.slice(at, m.index), false);
      push(m[0], true);
      at = m.index + m[0].length;
    }
  }
  push(text.slice(at), false);
  return out;
}

/**
 * The best dense score (all-MiniLM-L6-v2 cosine, 128 tokens) under which the page marks an
 * answer as a weak match. Chosen from the sample's questions: see demo/README.md, "Weak match".
 */
export const WEAK_BELOW = 0.4;

/** True when the nearest paper is too far for the answer to be trusted (no dense score: never). */
export function isWeak(best: number | null, below: number | null): boolean {
  return best !== null && below !== null && best < below;
}

const DOI = /^10\.\d{4,9}\/\S+$/;
const DOI_PREFIX = /^(?:https?:\/\/(?:dx\.)?doi\.org\/|doi:\s*)/i;

/**
 * A link for one corpus entry, or null. The AQA corpus format itself holds only title and
 * abstract; a corpus may add `doi` (bare, `doi:` or a doi.org URL) or `url`, in either case
 * (CSL-JSON writes DOI and URL). A DOI wins over a URL: it outlives publishers' pages. Only
 * http(s) URLs are linked, so a corpus cannot put a javascript: link on the page.
 */
export function paperLink(entry: unknown): string | null {
  if (!entry || typeof entry !== 'object' || Array.isArray(entry)) return null;
  const e = entry as Record<string, unknown>;
  for (const key of ['doi', 'DOI']) {
    const v = e[key];
    if (typeof v !== 'string') continue;
    const doi = v.trim().replace(DOI_PREFIX, '');
    if (DOI.test(doi)) return `https://doi.org/${doi.split('/').map(encodeURIComponent).join('/')}`;
  }
  for (const key of ['url', 'URL']) {
    const v = e[key];
    if (typeof v !== 'string') continue;
    try {
      const u = new URL(v.trim());
      if (u.protocol === 'http:' || u.protocol === 'https:') return u.href;
    } catch {
      // not a URL: no link
    }
  }
  return null;
}

/** pid -> link for the papers of an AQA corpus text that carry a DOI or URL. */
export function corpusLinks(text: string): Map<string, string> {
  const links = new Map<string, string>();
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return links; // the corpus parser reports what is wrong with the file
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) return links;
  for (const [pid, entry] of Object.entries(v)) {
    const link = paperLink(entry);
    if (link) links.set(pid, link);
  }
  return links;
}

/**
 * The progress bar for a load step: a fraction, or null for the indeterminate state. A step's
 * total may cover only what it has seen so far (`partial`: a model's files report their sizes
 * one by one), so a full bar there would claim an end that is not known: it shows the
 * indeterminate state instead, until a larger total arrives.
 */
export function barState(s: LoadStep): { value: number; max: number } | null {
  if (!(s.total > 0)) return null;
  if (s.partial && s.loaded >= s.total) return null;
  return { value: Math.min(s.loaded, s.total), max: s.total };
}
