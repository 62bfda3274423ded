// The demo page: config -> worker (demo/worker.ts) loads the model and indexes with progress ->
// question box -> ranked papers. Every string that comes from the corpus, the config or an
// error goes into the page through textContent, never innerHTML: titles and abstracts are data.
//
// Page state for people and for the end-to-end test (test/demo.test.ts), on <body data-state>:
// loading -> ready -> searching -> ready ..., or error. Each rendered result list carries
// data-seq (which question it answers) and data-ms (worker time); each hit carries data-pid and
// data-score (full precision), and per index data-model / data-score / data-rank.

import * as Comlink from 'comlink';
import { NO_WEBGPU_HELP } from '../browser/device.ts';
import { type DemoConfig, applyParams, configUrl, parseDemoConfig } from './config.ts';
import type { DemoInfo, DemoSearchApi, Hit, LoadStep, SearchReply } from './worker.ts';

/** Served next to the page by demo/vite.config.ts (dev) and copied into the build. */
const DEFAULT_MODEL = 'models/all-MiniLM-L6-v2/';

const $ = <T extends HTMLElement>(id: string) => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html has no #${id}`);
  return el as T;
};
const form = $<HTMLFormElement>('ask');
const input = $<HTMLInputElement>('q');
const button = $<HTMLButtonElement>('go');
const loading = $<HTMLElement>('loading');
const bar = $<HTMLProgressElement>('bar');
const status = $<HTMLElement>('status');
const errorBox = $<HTMLElement>('error');
const summary = $<HTMLElement>('summary');
const results = $<HTMLOListElement>('results');
const about = $<HTMLElement>('about');
const credit = $<HTMLElement>('credit');
const examples = $<HTMLElement>('examples');

let api: Comlink.Remote<DemoSearchApi> | null = null;
let config: DemoConfig | null = null;
let seq = 0;
let shown = 0;
let firstResult = true;

function setState(s: 'loading' | 'ready' | 'searching' | 'error'): void {
  document.body.dataset.state = s;
}

function showError(message: string): void {
  errorBox.textContent = message;
  errorBox.hidden = false;
  loading.hidden = true;
  input.disabled = true;
  button.disabled = true;
  input.placeholder = 'Unavailable';
  setState('error');
}

function errorText(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (e && typeof e === 'object' && 'message' in e) return String((e as { message: unknown }).message);
  return String(e);
}

function mb(n: number): string {
  return `${(n / 1e6).toFixed(n < 1e7 ? 2 : 1)} MB`;
}

function ms(x: number): string {
  return x >= 1000 ? `${(x / 1000).toFixed(1)} s` : `${Math.round(x)} ms`;
}

/** A last path segment for display: `.../all-MiniLM-L6-v2/` -> `all-MiniLM-L6-v2`. */
function shortName(url: string): string {
  const parts = url.split('/').filter(Boolean);
  const i = parts.lastIndexOf('resolve');
  return i >= 2 ? `${parts[i - 2]}/${parts[i - 1]}` : (parts[parts.length - 1] ?? url);
}

function onStep(s: LoadStep): void {
  const [kind, ...rest] = s.what.split(' ');
  const name = rest.join(' ');
  const label =
    kind === 'device' ? 'Opening the GPU' : kind === 'model' ? `Loading model ${shortName(name)}` : kind === 'index' ? `Loading index ${name}` : `Loading titles and abstracts (${name})`;
  if (s.total > 0) {
    bar.max = s.total;
    bar.value = s.loaded;
    status.textContent = `${label}: ${mb(s.loaded)} of ${mb(s.total)}`;
  } else {
    bar.removeAttribute('value'); // indeterminate
    status.textContent = `${label}...`;
  }
}

async function loadConfig(): Promise<DemoConfig> {
  const params = new URLSearchParams(location.search);
  const url = configUrl(params, location.href);
  let base: DemoConfig | null = null;
  if (url) {
    let res: Response;
    try {
      res = await fetch(url, { cache: 'no-store' });
    } catch (e) {
      throw new Error(`${url}: ${errorText(e)}`);
    }
    if (res.status === 404) {
      await res.body?.cancel();
      throw new Error(`No index to search: ${url} was not found. Build one with bash tools/build-demo-index.sh (npm run demo does it), or name one with ?index=...&model=...`);
    }
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
    base = parseDemoConfig(await res.text(), url);
  }
  return applyParams(base, params, location.href, DEFAULT_MODEL);
}

function ready(info: DemoInfo): void {
  loading.hidden = true;
  input.disabled = false;
  button.disabled = false;
  input.placeholder = config?.examples[0] ? `e.g. ${config.examples[0]}` : 'Type a question and press Enter';
  const idx = info.indexes.map((x) => `${x.name} (${x.count.toLocaleString('en')} papers, ${x.dim}-d ${x.dtype}${x.gpuDtype !== x.dtype ? ` as ${x.gpuDtype}` : ''}, passages up to ${x.maxLength} tokens${x.precision !== 'f32' ? `, model in ${x.precision}` : ''})`);
  const fusion = info.indexes.length > 1 ? `; scores fused by ${config?.fusion.method}` : '';
  about.textContent = `GPU: ${info.adapter}. Index: ${idx.join(' + ')}${fusion}. Loaded ${mb(info.bytes)} in ${ms(info.ms)}.${info.notices.map((n) => ` Note: ${n}.`).join('')}`;
  // The papers' source comes from the indexes themselves (aqa index --credit), so another corpus
  // is never credited to the sample's.
  const credits = [...new Set(info.indexes.map((x) => x.credit).filter((c) => c !== null))];
  credit.textContent = credits.length ? `Papers: ${credits.join('; ')}.` : 'Papers: the index does not say where they come from.';
  document.body.dataset.loadMs = String(Math.round(info.ms));
  setState('ready');
  input.focus();
}

function renderExamples(list: string[]): void {
  const ul = examples.querySelector('ul')!;
  ul.replaceChildren(
    ...list.slice(0, 3).map((text) => {
      const li = document.createElement('li');
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = text;
      b.addEventListener('click', () => {
        if (input.disabled) return;
        input.value = text;
        void ask();
      });
      li.append(b);
      return li;
    }),
  );
  examples.hidden = list.length === 0;
}

function scoreText(x: number, fused: boolean): string {
  return fused ? x.toFixed(3) : x.toFixed(4);
}

function renderHit(h: Hit, names: string[], fused: boolean): HTMLLIElement {
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
  title.textContent = h.title || `(untitled paper ${h.pid})`;
  head.append(rank, title);

  const snippet = document.createElement('p');
  snippet.className = 'snippet';
  snippet.textContent = h.snippet;

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
      s.dataset.model = names[i];
      if (m) {
        s.dataset.score = String(m.score);
        s.dataset.rank = String(m.rank);
        s.textContent = `${names[i]} ${m.score.toFixed(4)} (#${m.rank})`;
      } else {
        s.textContent = `${names[i]}: not in its top list`;
      }
      meta.append(s);
    });
  }
  const pid = document.createElement('span');
  pid.className = 'pid';
  pid.textContent = `pid ${h.pid}`;
  meta.append(pid);

  li.append(head, snippet, meta);
  return li;
}

function render(r: SearchReply, n: number, askedAt: number): void {
  const names = config!.indexes.map((s) => s.name);
  results.replaceChildren(...r.hits.map((h) => renderHit(h, names, r.fused !== null)));
  results.dataset.seq = String(n);
  results.dataset.ms = String(r.ms.total);
  results.dataset.pageMs = String(performance.now() - askedAt);
  const how = r.fused ? `${names.length} indexes fused by ${r.fused}` : names[0];
  summary.textContent = r.hits.length
    ? `Top ${r.hits.length} of ${shown} papers (${how}) in ${ms(r.ms.total)}: embedding ${ms(r.ms.embed)}, search ${ms(r.ms.search)}.`
    : 'Nothing to search for: the question is empty after cleaning.';
  if (firstResult && r.hits.length) {
    firstResult = false;
    // performance.now() counts from navigation start: this is the time to the first answer.
    document.body.dataset.firstResultMs = String(Math.round(performance.now()));
  }
}

async function ask(): Promise<void> {
  const text = input.value.trim();
  if (!api || !config || !text) return;
  const n = ++seq;
  const askedAt = performance.now();
  setState('searching');
  summary.textContent = 'Searching...';
  try {
    const r = await api.search(text, config.show);
    if (n !== seq) return; // a newer question was asked meanwhile
    render(r, n, askedAt);
    setState('ready');
  } catch (e) {
    if (n === seq) showError(`The search failed: ${errorText(e)}`);
  }
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  void ask();
});

// "/" jumps to the question box from anywhere else on the page, as on most search sites.
document.addEventListener('keydown', (e) => {
  const t = e.target as HTMLElement | null;
  const typing = t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.isContentEditable);
  if (e.key === '/' && !typing && !e.ctrlKey && !e.metaKey && !e.altKey && !input.disabled) {
    e.preventDefault();
    input.focus();
    input.select();
  }
});

async function start(): Promise<void> {
  // navigator.gpu is checked here as well as in the worker: a page without it gets the
  // explanation at once instead of after the worker has started.
  if (!('gpu' in navigator) || !navigator.gpu) {
    const insecure = !isSecureContext ? ` This page is not a secure context (${location.origin}).` : '';
    showError(`${NO_WEBGPU_HELP}${insecure}`);
    return;
  }
  try {
    config = await loadConfig();
  } catch (e) {
    showError(errorText(e));
    return;
  }
  renderExamples(config.examples);
  const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'search' });
  worker.addEventListener('error', (e) => showError(`The search worker failed to start: ${e.message || 'see the console'}`));
  api = Comlink.wrap<DemoSearchApi>(worker);
  try {
    const info = await api.init(config, Comlink.proxy(onStep));
    shown = info.indexes[0]?.count ?? 0;
    ready(info);
    api.lost().then(showError, () => undefined);
  } catch (e) {
    showError(errorText(e));
  }
}

void start();
