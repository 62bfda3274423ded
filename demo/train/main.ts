// The training page: model and data choice, the main options from the one options table
// (core/train/options.ts, with `aqa train`'s defaults; the ones the CLI takes from the model are
// left empty and filled by the worker the same way), and a run in demo/train/worker.ts with
// progress, a live loss curve, pause, resume and cancel.

import * as Comlink from 'comlink';
import { type TrainOption, TRAIN_OPTIONS, followsOptionRule, ruleSays } from '../../core/train/options.ts';
import { drawLossCurve } from './curve.ts';
import { modelPicker } from './model-picker.ts';
import { exportControls } from './export.ts';
import { onEvalEvent, resetEvalPanel } from './eval-panel.ts';
import { aqaChoice, clearAqaChoice, initAqaChoice } from './data-choice.ts';
import { initSearchBox } from './search-box.ts';
import type { PageSettings } from './session.ts';
import type { EvalEvent, Progress, RunReport, StartRequest, TrainApi } from './worker.ts';

declare const __AQA_DEMO_MODEL__: string;

/** Shown outside "All options": what one usually changes. */
const MAIN = new Set(['learning_rate', 'num_train_epochs', 'per_device_train_batch_size', 'train_group_size', 'temperature', 'query_max_len', 'passage_max_len', 'seed', 'grad_cache_mini_batch', 'save_steps']);

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const form = $<HTMLFormElement>('setup');
const modelSelect = $<HTMLSelectElement>('model');
const dataInput = $<HTMLInputElement>('data');
const dataStatus = $('data-status');
const status = $('status');
const bar = $<HTMLProgressElement>('bar');
const curve = document.getElementById('curve') as unknown as SVGSVGElement;
const buttons = { start: $<HTMLButtonElement>('start'), pause: $<HTMLButtonElement>('pause'), resume: $<HTMLButtonElement>('resume'), cancel: $<HTMLButtonElement>('cancel') };

let data: { text: string; name: string } | null = null;

const models: { label: string; url: string; name: string }[] = [{ label: 'tiny-bert (bundled test model, seconds per epoch)', url: './models/tiny-bert', name: 'tiny-bert' }];
if (typeof __AQA_DEMO_MODEL__ === 'string' && __AQA_DEMO_MODEL__ !== 'tiny-bert') models.push({ label: `${__AQA_DEMO_MODEL__} (the search demo's model)`, url: `./models/${__AQA_DEMO_MODEL__}`, name: __AQA_DEMO_MODEL__ });
for (const m of models) modelSelect.append(new Option(m.label, m.url));

function optionInput(o: TrainOption): HTMLLabelElement {
  const label = document.createElement('label');
  label.title = o.help;
  const input = document.createElement('input');
  input.name = o.name;
  if (o.rule === 'boolean') {
    input.type = 'checkbox';
    input.checked = o.default as boolean;
  } else {
    input.type = o.rule === 'string' ? 'text' : 'number';
    if (input.type === 'number') input.step = 'any';
    if (o.modelDefault) input.placeholder = o.modelDefault;
    else input.value = String(o.default);
  }
  label.append(o.name, input);
  return label;
}

for (const o of TRAIN_OPTIONS) $(MAIN.has(o.name) ? 'options' : 'more-options').append(optionInput(o));

/** The form's options as settings; a bad value is one line naming the option. */
function readOptions(): { settings: PageSettings; saveSteps: number } {
  const out: Record<string, unknown> = {};
  for (const o of TRAIN_OPTIONS) {
    const input = form.elements.namedItem(o.name) as HTMLInputElement;
    let v: unknown;
    if (o.rule === 'boolean') v = input.checked;
    else if (input.value.trim() === '') v = o.modelDefault ? null : o.default;
    else v = o.rule === 'string' ? input.value : Number(input.value);
    if (v !== null && !followsOptionRule(v, o.rule)) throw new Error(`${o.name}: must be ${ruleSays(o.rule)}, got '${input.value}'`);
    out[o.key] = v;
  }
  const { saveSteps, saveTotalLimit: _limit, ...settings } = out;
  return { settings: settings as unknown as PageSettings, saveSteps: saveSteps as number };
}

initAqaChoice(() => {
  data = null;
  dataInput.value = '';
  status.textContent = 'Ready to train.';
});

async function takeFile(f: File): Promise<void> {
  clearAqaChoice();
  data = { text: await f.text(), name: f.name };
  const lines = data.text.split('\n').filter((l) => l.trim() !== '').length;
  dataStatus.textContent = `${f.name}: ${lines} groups`;
  status.textContent = 'Ready to train.';
}

dataInput.addEventListener('change', () => {
  const f = dataInput.files?.[0];
  if (f) void takeFile(f);
});
document.addEventListener('dragover', (e) => e.preventDefault());
document.addEventListener('drop', (e) => {
  e.preventDefault();
  const f = e.dataTransfer?.files[0];
  if (f) void takeFile(f);
});

function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '-';
  return s < 90 ? `${Math.round(s)} s` : s < 5400 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`;
}

function onProgress(p: Progress): void {
  $('step').textContent = `${p.step} / ${p.totalSteps}`;
  $('loss').textContent = p.loss.toFixed(4);
  $('tps').textContent = String(p.tokensPerS);
  $('eta').textContent = fmtTime(p.etaS);
  bar.max = p.totalSteps;
  bar.value = p.step;
  drawLossCurve(curve, p.losses, p.totalSteps);
  status.textContent = 'Training...';
  lastProgress = p;
}

let lastProgress: Progress | null = null;

/** 'done': finished, its checkpoint still in storage (Cancel discards it, Train starts a new run). */
function setState(state: 'idle' | 'running' | 'paused' | 'done'): void {
  document.body.dataset.state = state;
  buttons.start.disabled = state !== 'idle' && state !== 'done';
  buttons.pause.disabled = state !== 'running';
  buttons.resume.disabled = state !== 'paused';
  buttons.cancel.disabled = state === 'idle';
  exportState(state);
}

function finished(r: RunReport): void {
  const from = r.resumedFrom ? ` (resumed from step ${r.resumedFrom})` : '';
  if (r.status === 'done') status.textContent = `Done: ${r.totalSteps} steps on ${r.adapter}${from}.`;
  else if (r.status === 'paused') status.textContent = `Paused at step ${r.step} of ${r.totalSteps}; the last checkpoint is in ${r.storage === 'opfs' ? "this browser's storage" : 'memory only'}.`;
  else status.textContent = 'Cancelled; its checkpoints were removed.';
  setState(r.status === 'cancelled' ? 'idle' : r.status);
  (globalThis as { aqaTrainReport?: RunReport }).aqaTrainReport = r;
}

function failed(e: unknown): void {
  status.textContent = `Training failed: ${(e as Error).message ?? String(e)}`;
  setState('idle');
}

const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'train' });
const api = Comlink.wrap<TrainApi>(worker);
// The worker's API from the console (and end-to-end tests).
(globalThis as { aqaTrain?: unknown }).aqaTrain = api;
const picker = modelPicker({ select: modelSelect, hubBox: $('model-hub'), hubInput: $<HTMLInputElement>('hub-id'), folderBox: $('model-folder'), folderButton: $<HTMLButtonElement>('pick-folder'), folderInput: $<HTMLInputElement>('folder-input'), status: $('model-status') }, models, (s) => api.checkModel(s));
const exportState = exportControls(() => api.exportModel());
const onSearchEvent = initSearchBox((q, k) => api.search(q, k));

form.addEventListener('submit', (e) => {
  e.preventDefault();
  const aqa = aqaChoice();
  if (!data && !aqa) {
    status.textContent = 'Pick training data first.';
    return;
  }
  let opts;
  let m;
  try {
    opts = readOptions();
    m = picker.choice();
  } catch (err) {
    status.textContent = (err as Error).message;
    return;
  }
  const holdout = Number($<HTMLInputElement>('holdout').value);
  if (!(holdout >= 0 && holdout < 1)) {
    status.textContent = `held out: must be at least 0 and below 1, got '${$<HTMLInputElement>('holdout').value}'`;
    return;
  }
  const budgetText = $<HTMLInputElement>('memory-budget').value.trim();
  const memoryBudgetMiB = budgetText === '' ? undefined : Number(budgetText);
  if (memoryBudgetMiB !== undefined && !(Number.isInteger(memoryBudgetMiB) && memoryBudgetMiB > 0)) {
    status.textContent = `memory budget: must be a whole number of MiB above 0, or empty, got '${budgetText}'`;
    return;
  }
  const req: StartRequest = { modelUrl: m.url, modelName: m.name, data: data?.text ?? '', dataName: data?.name ?? '', aqa: aqa ?? undefined, settings: opts.settings, saveSteps: opts.saveSteps, holdout, source: m.source, memoryBudgetMiB };
  resetEvalPanel();
  status.textContent = 'Loading the model...';
  // A finished run is kept until cancelled; training again starts a new one.
  const fresh = document.body.dataset.state === 'done' ? api.discard() : Promise.resolve();
  setState('running');
  fresh.then(() => api.start(req, Comlink.proxy(onProgress), Comlink.proxy((ev: EvalEvent) => (onEvalEvent(ev), onSearchEvent(ev))))).then(finished, failed);
});
buttons.pause.addEventListener('click', () => void api.pause());
buttons.resume.addEventListener('click', () => {
  setState('running');
  api.resume().then(finished, failed);
});
buttons.cancel.addEventListener('click', () => {
  void api.cancel().then(() => {
    if (document.body.dataset.state !== 'running') finished({ status: 'cancelled', step: lastProgress?.step ?? 0, totalSteps: lastProgress?.totalSteps ?? 0, resumedFrom: 0, adapter: '', storage: 'memory' });
  });
});
setState('idle');
