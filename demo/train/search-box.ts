// The training page's search box: searches the run's corpus with the base model once it is
// embedded, and with the tuned model (over the corpus re-embedded by it) once training has
// finished. The worker decides which model answers; the box says which one did.

import type { SearchAnswer } from './before-after.ts';
import type { EvalEvent } from './worker.ts';

const K = 10;

export function initSearchBox(search: (query: string, k: number) => Promise<SearchAnswer>): (e: EvalEvent) => void {
  const form = document.getElementById('search-form') as HTMLFormElement;
  const input = document.getElementById('search-q') as HTMLInputElement;
  const button = document.getElementById('search-go') as HTMLButtonElement;
  const who = document.getElementById('search-model') as HTMLElement;
  const list = document.getElementById('search-results') as HTMLOListElement;
  let last = '';

  const ask = async (query: string) => {
    last = query;
    who.textContent = 'Searching...';
    try {
      const a = await search(query, K);
      if (query !== last) return; // a newer search is on its way
      list.replaceChildren(
        ...a.hits.map((h) => {
          const li = document.createElement('li');
          li.dataset.pid = h.pid;
          li.dataset.score = String(h.score);
          const score = document.createElement('span');
          score.className = 'score';
          score.textContent = h.score.toFixed(4);
          li.append(score, ` ${h.text.length > 240 ? `${h.text.slice(0, 240)}...` : h.text}`);
          return li;
        }),
      );
      list.dataset.model = a.model;
      who.dataset.model = a.model;
      who.textContent = `Answered by ${a.modelName}, the ${a.model === 'tuned' ? 'fine-tuned' : 'base'} model.`;
    } catch (e) {
      who.textContent = `Search failed: ${(e as Error).message}`;
    }
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (input.value.trim()) void ask(input.value.trim());
  });

  // The events of a run: the corpus is searchable once the base model has embedded it; when the
  // tuned model has re-embedded it, the last query is asked again so the answer switches.
  return (e) => {
    if (e.kind === 'split') {
      last = '';
      input.disabled = button.disabled = true;
      list.replaceChildren();
      delete list.dataset.model;
      who.textContent = 'Available once the corpus is embedded.';
    } else if (e.kind === 'corpus') {
      input.disabled = button.disabled = false;
      if (last) void ask(last);
      else who.textContent = e.model === 'base' ? 'The base model answers until training has finished.' : 'The fine-tuned model answers now.';
    }
  };
}
