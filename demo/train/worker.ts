// The training page's worker (comlink, like the search worker): WebGPU device, the model fetched
// from the page's server, and one BrowserTraining run (demo/train/session.ts: the CLI's trainer
// loop) checkpointed into OPFS every save_steps steps. The page asks it to start, pause, resume
// and cancel; progress comes back through a callback after every optimizer step.

import * as Comlink from 'comlink';
import { createBrowserGpu } from '../../browser/device.ts';
import { isCpuAdapter } from '../../core/gpu/adapter.ts';
import { defaultMemoryBudget } from '../../core/train/fit.ts';
import type { Gpu } from '../../core/gpu/device.ts';
import type { StepLogLine } from '../../core/train/session.ts';
import { type ModelSource, openModelSource } from './model-source.ts';
import { modelFolderDirs, modelFolderFiles } from '../../core/train/model-folder.ts';
import type { ExportedModel } from './export.ts';
import { opfsAvailable, opfsStore } from './opfs-store.ts';
import { BrowserTraining, memoryStore, type PageSettings, sha256Text, withModelDefaults } from './session.ts';
import { BeforeAfter, type DataRequest, type EvalEvent, prepareRun, type SearchAnswer } from './before-after.ts';
import type { PageMetrics } from './evaluate.ts';

export type { EvalEvent };

export interface StartRequest extends DataRequest {
  /** URL of the model folder ('/models/tiny-bert'). */
  modelUrl: string;
  modelName: string;
  /** FlagEmbedding JSONL, as text, and its file name for messages. */
  data: string;
  dataName: string;
  settings: PageSettings;
  saveSteps: number;
  /** Where the model comes from (a Hub id, a picked folder); absent: the folder at modelUrl. */
  source?: ModelSource;
  /** Peak bytes a step may hold, in MiB; absent: defaultMemoryBudget (half the RAM on a CPU adapter, none on a GPU). */
  memoryBudgetMiB?: number;
}

export interface Progress {
  step: number;
  totalSteps: number;
  loss: number;
  tokensPerS: number;
  /** Seconds left at this run's mean step time. */
  etaS: number;
  /** Every loss so far (a resumed run's earlier steps included), for the curve. */
  losses: { step: number; loss: number }[];
}

export interface RunReport {
  status: 'done' | 'paused' | 'cancelled';
  step: number;
  totalSteps: number;
  /** The step the run resumed from (0 for a fresh run). */
  resumedFrom: number;
  adapter: string;
  storage: 'opfs' | 'memory';
}

let gpu: Gpu | null = null;
let run: BrowserTraining | null = null;
let discard: (() => Promise<void>) | null = null;
let stop: 'pause' | 'cancel' | null = null;
let resumedFrom = 0;
let adapter = '';
let onProgress: ((p: Progress) => void) | null = null;
let stepMs: number[] = [];
let running = false;
let beforeAfter: BeforeAfter | null = null;
let onEval: ((e: EvalEvent) => void) | null = null;

function report(line: StepLogLine): void {
  if (!run) return;
  stepMs.push(line.tokens / Math.max(line.tokens_per_s, 1));
  const mean = stepMs.reduce((a, b) => a + b, 0) / stepMs.length;
  onProgress?.({ step: line.step, totalSteps: run.totalSteps, loss: line.loss, tokensPerS: line.tokens_per_s, etaS: mean * (run.totalSteps - line.step), losses: [...run.losses] });
}

async function go(): Promise<RunReport> {
  const r = run!;
  stop = null;
  running = true;
  try {
    await r.run();
  } finally {
    running = false;
  }
  const status = stop === 'cancel' ? 'cancelled' : r.done ? 'done' : 'paused';
  const out: RunReport = { status, step: r.position.step, totalSteps: r.totalSteps, resumedFrom, adapter, storage: discard ? 'opfs' : 'memory' };
  if (status === 'cancelled') {
    dropBeforeAfter();
    r.dispose();
    run = null;
    await discard?.();
  }
  if (status === 'done' && beforeAfter && !beforeAfter.switched) {
    onEval?.({ kind: 'status', text: 'Re-embedding the corpus with the tuned model...' });
    const after = await beforeAfter.evaluateAfter(r.model);
    onEval?.({ kind: 'corpus', model: 'tuned', passages: beforeAfter.evalSet.pids.length });
    if (after) onEval?.({ kind: 'metrics', which: 'after', metrics: after });
    else onEval?.({ kind: 'status', text: 'Nothing was held out; the tuned model answers the search box.' });
  }
  return out;
}

function dropBeforeAfter(): void {
  beforeAfter?.dispose();
  beforeAfter = null;
}

const api = {
  /** Open a run (resuming from OPFS when the same model, data and settings were trained here before) and train. */
  async start(req: StartRequest, progress: (p: Progress) => void, evalEvents?: (e: EvalEvent) => void): Promise<RunReport> {
    if (running) throw new Error('a training run is in progress: pause or cancel it first');
    // A paused, finished or failed run in this tab: its checkpoints stay in OPFS, its GPU memory goes.
    dropBeforeAfter();
    run?.dispose();
    run = null;
    onEval = evalEvents ?? null;
    gpu ??= await createBrowserGpu();
    adapter = gpu.name;
    onProgress = progress;
    stepMs = [];
    const { files: model, identity } = await openModelSource(req.source ?? { kind: 'url', url: req.modelUrl });
    const settings = await withModelDefaults(req.settings, model, req.modelName);
    const prepared = await prepareRun(gpu, model, req.modelName, req, settings, (e) => onEval?.(e), (ba) => (beforeAfter = ba)).catch((e) => {
      dropBeforeAfter();
      throw e;
    });
    const { groups, text } = prepared;
    // The model by its content, not its URL: a folder picked again after a reload resumes.
    const key = (await sha256Text(JSON.stringify([identity, req.modelName, text, settings]))).slice(0, 24);
    const opfs = opfsAvailable() ? opfsStore(key) : null;
    const store = opfs ?? memoryStore();
    discard = opfs ? () => opfs.discard() : null;
    const memoryBudget = req.memoryBudgetMiB ? req.memoryBudgetMiB * 2 ** 20 : defaultMemoryBudget(isCpuAdapter(gpu), (navigator as { deviceMemory?: number }).deviceMemory);
    run = await BrowserTraining.open({ gpu, model, modelName: req.modelName, groups, settings, saveSteps: req.saveSteps, store, onStep: report, keepGoing: () => stop === null, memoryBudget });
    resumedFrom = run.position.step;
    return go();
  },
  /** Open a model source without training: its one-line summary, or the reason the page cannot use it. */
  async checkModel(source: ModelSource): Promise<string> {
    return (await openModelSource(source)).summary;
  },
  /** Continue a paused run. */
  async resume(): Promise<RunReport> {
    if (!run) throw new Error('no paused run to resume');
    return go();
  },
  /** Stop after the current step; the run stays open (resume) and its last checkpoint in OPFS. */
  pause(): void {
    stop = 'pause';
  },
  /** Stop after the current step and forget the run and its checkpoints; a paused run is dropped at once. */
  async cancel(): Promise<void> {
    stop = 'cancel';
    // A running run stops (and is dropped) in go(); a paused one has no step in flight.
    if (!running) await api.discard();
  },
  /** The paused or finished run's model as `aqa train`'s output folder, for the page to zip or save. */
  async exportModel(): Promise<ExportedModel> {
    if (!run) throw new Error('no run to export: train (or resume) first');
    if (running) throw new Error('pause the run before exporting: its weights change every step');
    const files = await modelFolderFiles(run.trainer, run.o.model);
    const m: ExportedModel = { modelName: run.o.modelName, step: run.position.step, totalSteps: run.totalSteps, dirs: modelFolderDirs(run.trainer), files };
    // The weights are a fresh buffer: hand it over instead of copying it (the copied files may share the model loader's cache).
    return Comlink.transfer(m, [(files['model.safetensors'] as Uint8Array).buffer]);
  },
  /** The corpus searched with the model that answers now: the base model, or the tuned one once training has finished. */
  async search(query: string, k = 10): Promise<SearchAnswer> {
    if (!beforeAfter) throw new Error('no corpus yet: start a run first');
    return beforeAfter.search(query, k);
  },
  /** The metrics so far (tests and the console). */
  metrics(): { before: PageMetrics | null; after: PageMetrics | null } {
    return { before: beforeAfter?.before ?? null, after: beforeAfter?.after ?? null };
  },
  /** Drop a paused or finished run and its OPFS checkpoints. */
  async discard(): Promise<void> {
    dropBeforeAfter();
    run?.dispose();
    run = null;
    await discard?.();
    discard = null;
  },
};

export type TrainApi = typeof api;

Comlink.expose(api);
