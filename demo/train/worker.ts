// The training page's worker (comlink, like the search worker): WebGPU device, the model fetched
// from the page's server, and one BrowserTraining run (demo/train/session.ts: the CLI's trainer
// loop) checkpointed into OPFS every save_steps steps. The page asks it to start, pause, resume
// and cancel; progress comes back through a callback after every optimizer step.

import * as Comlink from 'comlink';
import { createBrowserGpu } from '../../browser/device.ts';
import type { Gpu } from '../../core/gpu/device.ts';
import type { StepLogLine } from '../../core/train/session.ts';
import { type ModelSource, openModelSource } from './model-source.ts';
import { modelFolderDirs, modelFolderFiles } from '../../core/train/model-folder.ts';
import type { ExportedModel } from './export.ts';
import { opfsAvailable, opfsStore } from './opfs-store.ts';
import { BrowserTraining, memoryStore, type PageSettings, parseGroupsText, sha256Text, withModelDefaults } from './session.ts';

export interface StartRequest {
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
    r.dispose();
    run = null;
    await discard?.();
  }
  return out;
}

const api = {
  /** Open a run (resuming from OPFS when the same model, data and settings were trained here before) and train. */
  async start(req: StartRequest, progress: (p: Progress) => void): Promise<RunReport> {
    if (running) throw new Error('a training run is in progress: pause or cancel it first');
    // A paused, finished or failed run in this tab: its checkpoints stay in OPFS, its GPU memory goes.
    run?.dispose();
    run = null;
    gpu ??= await createBrowserGpu();
    adapter = gpu.name;
    onProgress = progress;
    stepMs = [];
    const groups = parseGroupsText(req.data, req.dataName);
    const { files: model, identity } = await openModelSource(req.source ?? { kind: 'url', url: req.modelUrl });
    const settings = await withModelDefaults(req.settings, model, req.modelName);
    // The model by its content, not its URL: a folder picked again after a reload resumes.
    const key = (await sha256Text(JSON.stringify([identity, req.modelName, req.data, settings]))).slice(0, 24);
    const opfs = opfsAvailable() ? opfsStore(key) : null;
    const store = opfs ?? memoryStore();
    discard = opfs ? () => opfs.discard() : null;
    run = await BrowserTraining.open({ gpu, model, modelName: req.modelName, groups, settings, saveSteps: req.saveSteps, store, onStep: report, keepGoing: () => stop === null });
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
  /** Drop a paused or finished run and its OPFS checkpoints. */
  async discard(): Promise<void> {
    run?.dispose();
    run = null;
    await discard?.();
    discard = null;
  },
};

export type TrainApi = typeof api;

Comlink.expose(api);
