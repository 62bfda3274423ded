// The "Before / after" panel of the training page: the split, a status line, and the held-out
// metrics of the base and the tuned model (official MAP@20, recall@20, nDCG@10). Each cell keeps
// the unrounded value in data-value, so a page test reads exactly what the worker computed.

import type { PageMetrics } from './evaluate.ts';
import type { EvalEvent } from './worker.ts';

const METRICS = ['officialMap20', 'recall20', 'ndcg10'] as const;

function cell(which: 'before' | 'after', metric: string): HTMLElement {
  return document.querySelector(`#metrics tr[data-run="${which}"] [data-metric="${metric}"]`) as HTMLElement;
}

function show(which: 'before' | 'after', m: PageMetrics | null): void {
  const row = document.querySelector(`#metrics tr[data-run="${which}"]`) as HTMLElement;
  (row.querySelector('[data-field="model"]') as HTMLElement).textContent = m ? m.model : '-';
  for (const f of METRICS) {
    const c = cell(which, f);
    c.textContent = m ? m[f].toFixed(4) : '-';
    if (m) c.dataset.value = String(m[f]);
    else delete c.dataset.value;
  }
}

/** Empty the table for a new run. */
export function resetEvalPanel(): void {
  show('before', null);
  show('after', null);
  (document.getElementById('eval-status') as HTMLElement).textContent = 'Scoring the held-out questions with the base model...';
}

export function onEvalEvent(e: EvalEvent): void {
  const status = document.getElementById('eval-status') as HTMLElement;
  const table = document.getElementById('metrics') as HTMLElement;
  if (e.kind === 'split') {
    const s = e.split;
    table.dataset.train = String(s.train);
    table.dataset.heldOut = String(s.heldOut);
    table.dataset.corpus = String(s.corpus);
    status.textContent = s.heldOut ? `${s.heldOut} held-out question(s) over ${s.corpus} passages; training on the other ${s.train}.` : 'Nothing is held out (hold-out 0): no before/after evaluation.';
  } else if (e.kind === 'corpus') {
    table.dataset.corpusModel = e.model;
  } else if (e.kind === 'status') {
    status.textContent = e.text;
  } else if (e.kind === 'mined') {
    const m = e.stats;
    table.dataset.mined = String(m.groups);
    status.textContent = `Mined ${m.groups} training group(s): ${m.hard} hard negatives${m.toppedUp ? `, ${m.toppedUp} random ones where the ranking held too few` : ''}; training...`;
  } else {
    show(e.which, e.metrics);
    status.textContent = e.which === 'before' ? `Base model scored on ${e.metrics.questions} held-out question(s).` : `Tuned model scored on the same ${e.metrics.questions} question(s).`;
    table.dataset.state = e.which;
  }
}
