// The demo page: config -> worker (demo/worker.ts) loads the model and indexes with progress ->
// question box -> ranked papers. Every string that comes from the corpus, the config or an
// error goes into the page through textContent, never innerHTML: titles and abstracts are data.
//
// Page state for people and for the end-to-end test (test/demo.test.ts), on <body data-state>:
// loading -> ready -> searching -> ready ..., or error. Each rendered result list carries
// data-seq (which question it answers) and data-ms (worker time); each hit carries data-pid and
// data-score (full precision), and per run data-model / data-score / data-rank. While a question
// runs, the previous list stays, dimmed, with aria-busy="true".

import * as Comlink from 'comlink';
import { type DemoConfig, applyParams, configUrl, parseDemoConfig } from './config.ts';
import { barState, isWeak, queryTerms } from './cues.ts';
import { embedWorkText, reuseProgressText } from './library/status.ts';
import { RANKINGS, type Ranking } from './ranking.ts';
import { renderHit } from './render.ts';
import type { DemoInfo, DemoSearchApi, ExportedFile, LibraryInfo, LibraryProgress, LoadStep, SearchReply } from './worker.ts';

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
const examples = $<HTMLDetailsElement>('examples');
const weak = $<HTMLElement>('weak');
const fallback = $<HTMLElement>('fallback');
const rankingBox = $<HTMLFieldSetElement>('ranking');
const librarySection = $<HTMLElement>('library');
const libraryFile = $<HTMLInputElement>('library-file');
const libraryBar = $<HTMLProgressElement>('library-bar');
const libraryStatus = $<HTMLElement>('library-status');
const libraryExport = $<HTMLButtonElement>('library-export');
const libraryForget = $<HTMLButtonElement>('library-forget');
/** Phones get the example questions folded (demo/style.css uses the same width). */
const phone = matchMedia('(max-width: 480px)');

let api: Comlink.Remote<DemoSearchApi> | null = null;
let config: DemoConfig | null = null;
let seq = 0;
let shown = 0;
let firstResult = true;
let ranking: Ranking = 'dense';
/** The last question answered, asked again when the ranking switch changes. */
let lastQuestion = '';
/** What the demo's own indexes hold, for when a library is forgotten. */
let demoInfo: DemoInfo | null = null;
/** A library of one's own papers is being searched instead of the demo's indexes. */
let libraryOpen = false;

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
    kind === 'device'
      ? 'Opening the GPU'
      : kind === 'wasm'
        ? 'No WebGPU here: starting the WebAssembly engine'
        : kind === 'model'
        ? `Loading model ${shortName(name)}`
        : kind === 'index'
          ? `Loading index ${name}`
          : kind === 'corpus'
            ? 'Loading the corpus for BM25'
            : kind === 'bm25'
              ? `Indexing ${name} papers for BM25`
              : `Loading titles and abstracts (${name})`;
  const b = barState(s);
  if (b) {
    bar.max = b.max;
    bar.value = b.value;
  } else {
    bar.removeAttribute('value'); // indeterminate: the end is not known
  }
  status.textContent = s.total > 0 ? `${label}: ${mb(s.loaded)}${s.partial ? '' : ` of ${mb(s.total)}`}` : `${label}...`;
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
  const fusion = info.indexes.length > 1 || info.corpus ? `; scores fused by ${config?.fusion.method}` : '';
  const bm25 = info.corpus ? `; BM25 over ${info.corpus.count.toLocaleString('en')} papers${info.corpus.links ? ` (${info.corpus.links.toLocaleString('en')} with a link)` : ''}` : '';
  about.textContent = `${info.engine === 'wasm' ? 'Engine' : 'GPU'}: ${info.adapter}. Index: ${idx.join(' + ')}${bm25}${fusion}. Loaded ${mb(info.bytes)} in ${ms(info.ms)}.${info.notices.map((n) => ` Note: ${n}.`).join('')}`;
  // The papers' source comes from the indexes themselves (aqa index --credit), so another corpus
  // is never credited to the sample's.
  const credits = [...new Set(info.indexes.map((x) => x.credit).filter((c) => c !== null))];
  credit.textContent = credits.length ? `Papers: ${credits.join('; ')}.` : 'Papers: the index does not say where they come from.';
  document.body.dataset.loadMs = String(Math.round(info.ms));
  setupRanking(info.corpus !== null);
  librarySection.hidden = false;
  document.body.dataset.engine = info.engine;
  if (info.engine === 'wasm') {
    fallback.textContent = `Running without WebGPU (${info.fallback}): questions are embedded on the CPU with WebAssembly, so each takes longer.`;
    fallback.hidden = false;
    // Embedding a whole library on the CPU would take minutes to hours: say so instead.
    libraryFile.disabled = true;
    libraryStatus.textContent = 'Searching your own papers needs WebGPU to embed them; this browser does not offer it here.';
  }
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
  foldExamples();
  phone.addEventListener('change', foldExamples);
}

/** Open on wide screens; folded to one line on phones, where three long claims fill the screen. */
function foldExamples(): void {
  examples.open = !phone.matches;
}

/** The dense / lexical / hybrid switch: lexical and hybrid need the corpus. Mirrors ?ranking=. */
function setupRanking(hasCorpus: boolean): void {
  ranking = config!.ranking;
  for (const r of rankingBox.querySelectorAll<HTMLInputElement>('input[name=ranking]')) {
    r.addEventListener('change', () => {
      if (!r.checked || !RANKINGS.includes(r.value as Ranking)) return;
      ranking = r.value as Ranking;
      // A library's corpus is not the page's: ?ranking=hybrid without one would not load.
      if (!libraryOpen) {
        const url = new URL(location.href);
        url.searchParams.set('ranking', ranking);
        history.replaceState(null, '', url);
      }
      if (lastQuestion && !input.disabled) void ask(lastQuestion);
    });
  }
  rankingChoices(hasCorpus);
}

/** Which rankings can be chosen now (a library always has its corpus). */
function rankingChoices(hasCorpus: boolean): void {
  if (!hasCorpus) ranking = 'dense';
  for (const r of rankingBox.querySelectorAll<HTMLInputElement>('input[name=ranking]')) {
    r.checked = r.value === ranking;
    r.disabled = r.value !== 'dense' && !hasCorpus;
  }
  rankingBox.hidden = !hasCorpus;
}

function render(r: SearchReply, n: number, askedAt: number): void {
  const terms = queryTerms(r.query);
  results.replaceChildren(...r.hits.map((h) => renderHit(h, r.runs, r.fused !== null, terms)));
  results.removeAttribute('aria-busy');
  results.dataset.seq = String(n);
  results.dataset.ranking = r.ranking;
  results.dataset.ms = String(r.ms.total);
  results.dataset.pageMs = String(performance.now() - askedAt);
  const how = `${r.ranking}: ${r.fused ? `${r.runs.join(' + ')} fused by ${r.fused}` : r.runs[0]}`;
  summary.textContent = r.hits.length
    ? `Top ${r.hits.length} of ${shown} papers (${how}) in ${ms(r.ms.total)}: embedding ${ms(r.ms.embed)}, search ${ms(r.ms.search)}.`
    : r.query
      ? 'No paper shares a word with the question (lexical ranking matches words only).'
      : 'Nothing to search for: the question is empty after cleaning.';
  // The nearest paper is far: say so above the list, which still shows the closest ones.
  const isWeakMatch = r.hits.length > 0 && isWeak(r.best, config!.weakBelow);
  results.dataset.weak = String(isWeakMatch);
  weak.hidden = !isWeakMatch;
  weak.textContent = isWeakMatch
    ? `Weak match: the closest paper scores ${r.best!.toFixed(2)} (${r.runs[0]}), under ${config!.weakBelow}. The index may hold no paper on this question.`
    : '';
  if (firstResult && r.hits.length) {
    firstResult = false;
    // performance.now() counts from navigation start: this is the time to the first answer.
    document.body.dataset.firstResultMs = String(Math.round(performance.now()));
  }
}

async function ask(question?: string): Promise<void> {
  const text = (question ?? input.value).trim();
  if (!api || !config || !text) return;
  const n = ++seq;
  const askedAt = performance.now();
  setState('searching');
  summary.textContent = 'Searching...';
  // The previous answer stays in view, dimmed (demo/style.css), until the new one replaces it.
  if (results.childElementCount) results.setAttribute('aria-busy', 'true');
  try {
    const r = await api.search(text, config.show, ranking);
    if (n !== seq) return; // a newer question was asked meanwhile
    lastQuestion = text;
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

// ---- Search your own papers (demo/library/, the worker's openLibrary) ----

function onLibraryProgress(p: LibraryProgress): void {
  libraryBar.hidden = false;
  if (p.phase === 'embed' && p.done === 0 && p.etaS === null && p.reused) {
    libraryBar.removeAttribute('value');
    libraryStatus.textContent = reuseProgressText(p.reused, p.total);
  } else if (p.phase === 'embed' && p.total > 0) {
    libraryBar.max = p.total;
    libraryBar.value = p.done;
    const eta = p.etaS === null ? '' : p.done < p.total ? `, about ${ms(p.etaS * 1000)} left` : '';
    const reused = p.reused ? ` (${p.reused.toLocaleString('en')} reused)` : '';
    libraryStatus.textContent = `Embedding papers on the GPU: ${p.done.toLocaleString('en')} of ${p.total.toLocaleString('en')}${eta}${reused}`;
  } else {
    libraryBar.removeAttribute('value'); // indeterminate: no count yet
    libraryStatus.textContent = { open: "Looking for this file in this browser's storage...", parse: 'Reading the file...', embed: 'Embedding papers on the GPU...', store: "Keeping the index in this browser's storage..." }[p.phase];
  }
}

function libraryReady(info: LibraryInfo): void {
  libraryOpen = true;
  shown = info.count;
  const n = info.count.toLocaleString('en');
  const how = info.fromStorage
    ? `Loaded ${n} papers from this browser's storage (${info.file}).`
    : `Indexed ${n} papers from ${info.file} in ${ms(info.embedS * 1000)} (${embedWorkText(info)}, passages up to ${info.maxLength} tokens); kept in this browser's storage.`;
  libraryStatus.textContent = `${how} Questions now search these papers.${info.notes.map((x) => ` Note: ${x}.`).join('')}`;
  libraryBar.hidden = true;
  libraryExport.hidden = false;
  libraryForget.hidden = false;
  credit.textContent = `Papers: your file ${info.file}.`;
  document.body.dataset.library = 'ready';
  document.body.dataset.libraryCount = String(info.count);
  document.body.dataset.librarySource = info.fromStorage ? 'storage' : 'built';
  document.body.dataset.libraryReused = String(info.reused);
  rankingChoices(true);
  results.replaceChildren();
  summary.textContent = '';
  weak.hidden = true;
}

async function openLibraryFile(file: File): Promise<void> {
  if (!api || document.body.dataset.state !== 'ready' || libraryFile.disabled) return;
  document.body.dataset.library = 'building';
  input.disabled = true;
  button.disabled = true;
  try {
    const bytes = new Uint8Array(await file.arrayBuffer());
    libraryReady(await api.openLibrary(file.name, Comlink.transfer(bytes, [bytes.buffer]), Comlink.proxy(onLibraryProgress)));
  } catch (e) {
    libraryBar.hidden = true;
    libraryStatus.textContent = errorText(e);
    document.body.dataset.library = 'error';
  } finally {
    input.disabled = false;
    button.disabled = false;
  }
}

/** Each file of the export downloaded as it is named, to be put in one folder and served with ?index=. */
function download(files: ExportedFile[]): void {
  for (const f of files) {
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([f.data as BlobPart]));
    a.download = f.name;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  }
}

libraryFile.addEventListener('change', () => {
  const f = libraryFile.files?.[0];
  libraryFile.value = '';
  if (f) void openLibraryFile(f);
});
librarySection.addEventListener('dragover', (e) => {
  e.preventDefault();
  librarySection.classList.add('drag');
});
librarySection.addEventListener('dragleave', () => librarySection.classList.remove('drag'));
librarySection.addEventListener('drop', (e) => {
  e.preventDefault();
  librarySection.classList.remove('drag');
  const f = e.dataTransfer?.files[0];
  if (f) void openLibraryFile(f);
});
libraryExport.addEventListener('click', () => {
  api?.exportLibrary().then(download, (e: unknown) => (libraryStatus.textContent = errorText(e)));
});
libraryForget.addEventListener('click', async () => {
  if (!api) return;
  try {
    await api.forgetLibrary();
  } catch (e) {
    libraryStatus.textContent = errorText(e);
    return;
  }
  libraryOpen = false;
  shown = demoInfo?.indexes[0]?.count ?? 0;
  libraryStatus.textContent = "Forgot the papers kept in this browser's storage; questions search the demo's index again.";
  libraryExport.hidden = true;
  libraryForget.hidden = true;
  document.body.dataset.library = 'none';
  delete document.body.dataset.libraryCount;
  if (demoInfo) {
    rankingChoices(demoInfo.corpus !== null);
    const credits = [...new Set(demoInfo.indexes.map((x) => x.credit).filter((c) => c !== null))];
    credit.textContent = credits.length ? `Papers: ${credits.join('; ')}.` : 'Papers: the index does not say where they come from.';
  }
  results.replaceChildren();
  summary.textContent = '';
});

async function start(): Promise<void> {
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
  // The worker's API from the console (and the end-to-end test): e.g. aqaDemo.embedQueries([...]).
  (globalThis as { aqaDemo?: unknown }).aqaDemo = api;
  try {
    // A page without navigator.gpu (an older browser, an insecure origin) tells the worker, whose
    // own navigator may still offer it: the page and its worker take the same path.
    const pageGpu = 'gpu' in navigator && !!navigator.gpu;
    const info = await api.init(config, Comlink.proxy(onStep), pageGpu ? null : `no WebGPU in this browser${isSecureContext ? '' : `: ${location.origin} is not a secure context`}`);
    demoInfo = info;
    shown = info.indexes[0]?.count ?? 0;
    status.textContent = "Looking for papers kept in this browser's storage...";
    const stored = await api.restoreLibrary().catch(() => null);
    ready(info);
    if (stored) libraryReady(stored);
    else document.body.dataset.library = 'none';
    api.lost().then(showError, () => undefined);
  } catch (e) {
    showError(errorText(e));
  }
}

void start();
