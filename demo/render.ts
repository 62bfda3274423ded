// One result of the list as DOM elements. Corpus text (titles, snippets, links) goes in through
// textContent and attributes only, never as markup: the question's terms are <mark> elements
// built around text nodes (demo/cues.ts cuts the text), so a title holding "<script>" shows
// those characters and runs nothing.

import { type Segment, highlight } from './cues.ts';
import type { Hit } from './worker.ts';

function marked(el: HTMLElement, segments: Segment[]): void {
  el.replaceChildren(
    ...segments.map((s) => {
      if (!s.mark) return document.createTextNode(s.text);
      const m = document.createElement('mark');
      m.textContent = s.text;
      return m;
    }),
  );
}

function scoreText(x: number, fused: boolean): string {
  return fused ? x.toFixed(3) : x.toFixed(4);
}

/**
 * `runs` names the runs whose scores the hit carries (SearchReply.runs); with one run there is
 * no per-run breakdown. `terms` are the question's BM25 terms, marked in title and snippet.
 */
export function renderHit(h: Hit, runs: string[], fused: boolean, terms: ReadonlySet<string>): HTMLLIElement {
  const li = document.createElement('li');
  li.className = 'hit';
  li.dataset.pid = h.pid;
  li.dataset.score = String(h.score);

  const head = document.createElement('div');
  head.className = 'hit-head';
  const rank = document.createElement('span');
  rank.className = 'rank';
  rank.textContent = String(h.rank);
  rank.setAttribute('aria-hidden', 'true'); // the <ol> already numbers items for screen readers
  const title = document.createElement('h2');
  title.className = 'title';
  const titleText = h.title || `(untitled paper ${h.pid})`;
  if (h.link) {
    // The title is the link, as on most search pages; rel: the corpus's site learns nothing of this page.
    const a = document.createElement('a');
    a.href = h.link;
    a.rel = 'noopener noreferrer';
    a.target = '_blank';
    marked(a, highlight(titleText, terms));
    title.append(a);
  } else {
    marked(title, highlight(titleText, terms));
  }
  head.append(rank, title);

  const snippet = document.createElement('p');
  snippet.className = 'snippet';
  marked(snippet, highlight(h.snippet, terms));

  const meta = document.createElement('p');
  meta.className = 'meta';
  const score = document.createElement('span');
  score.className = 'score';
  score.textContent = `${fused ? 'fused' : 'score'} ${scoreText(h.score, fused)}`;
  meta.append(score);
  if (fused) {
    h.models.forEach((m, i) => {
      const s = document.createElement('span');
      s.className = 'model-score';
      s.dataset.model = runs[i];
      if (m) {
        s.dataset.score = String(m.score);
        s.dataset.rank = String(m.rank);
        s.textContent = `${runs[i]} ${m.score.toFixed(4)} (#${m.rank})`;
      } else {
        s.textContent = `${runs[i]}: not in its top list`;
      }
      meta.append(s);
    });
  }
  const pid = document.createElement('span');
  pid.className = 'pid';
  pid.textContent = `pid ${h.pid}`;
  meta.append(pid);
  if (h.link) {
    const a = document.createElement('a');
    a.className = 'link';
    a.href = h.link;
    a.rel = 'noopener noreferrer';
    a.target = '_blank';
    a.textContent = h.link.startsWith('https://doi.org/') ? `doi ${decodeURIComponent(h.link.slice('https://doi.org/'.length))}` : new URL(h.link).host;
    meta.append(a);
  }

  li.append(head, snippet, meta);
  return li;
}
