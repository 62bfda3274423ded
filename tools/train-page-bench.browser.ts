// Chromium entry of tools/train-page-bench.ts: the training page's code (demo/train/session.ts
// BrowserTraining, the CLI's trainer loop) on the page's WebGPU adapter. For each model:
//  - speed: a few optimizer steps at the given setting, tokens/s of each (the first one pays
//    for pipeline compilation);
//  - fit: at each passage length, the largest per_device_train_batch_size that core/train/fit.ts
//    lets through under the adapter's limits (and, with a budget, under that many bytes),
//    then, where asked, one real step at the budget's batch on texts that reach every max length,
//    with its measured bytesPeak next to the estimate.

import { createBrowserGpu } from '../browser/device.ts';
import { fetchModelFiles } from '../browser/fetch.ts';
import type { Gpu } from '../core/gpu/device.ts';
import { loadEmbeddingModel } from '../core/retrieval/embed.ts';
import { StepProbe } from '../core/train/fit.ts';
import type { TrainSettings } from '../core/train/options.ts';
import { Trainer } from '../core/train/trainer.ts';
import { BrowserTraining, memoryStore, parseGroupsText } from '../demo/train/session.ts';

export interface BenchModel {
  name: string;
  url: string;
  settings: TrainSettings;
  /** Optimizer steps for the speed numbers (0: none). */
  steps: number;
  /** FlagEmbedding JSONL for the speed run and the confirming steps. */
  data: string;
  /** Passage lengths to find the largest batch at. */
  lengths: number[];
  /** Bytes for the budgeted largest batch; 0: limits only. */
  budget: number;
  /** Passage lengths at which one real step runs at the budgeted batch. */
  confirmLengths: number[];
}

export interface SpeedRow {
  step: number;
  tokens: number;
  seconds: number;
  tokensPerS: number;
  gpuPeakMiB: number;
}

export interface FitRow {
  passageMaxLen: number;
  /** Largest batch under the adapter's limits alone (searched up to `cap`), its peak bytes and largest buffer. */
  byLimits: number;
  byLimitsPeak: number;
  byLimitsBuffer: number;
  cap: number;
  /** Largest batch under the budget (0: none asked), its estimated peak. */
  byBudget: number;
  byBudgetPeak: number;
  /** The confirming step at byBudget: measured bytesPeak and seconds; null when not run. */
  confirmedPeak: number | null;
  confirmedSeconds: number | null;
}

export interface BenchReport {
  adapter: string;
  limits: { maxBufferSize: number; maxStorageBufferBindingSize: number };
  models: { name: string; speed: SpeedRow[]; fit: FitRow[]; fitSeconds: number }[];
}

const CAP = 4096;

async function largestByLimits(probe: StepProbe, s: TrainSettings): Promise<number> {
  // Double until a batch fails (or CAP), then search below it.
  let hi = 1;
  while (hi < CAP && (await probe.check({ ...s, queriesPerStep: hi })).fits) hi *= 2;
  if (hi >= CAP && (await probe.check({ ...s, queriesPerStep: CAP })).fits) return CAP;
  return probe.largestBatch(s, hi);
}

async function confirmStep(gpu: Gpu, m: BenchModel, s: TrainSettings): Promise<{ peak: number; seconds: number }> {
  const model = await loadEmbeddingModel(gpu, fetchModelFiles(m.url), m.name);
  gpu.trim();
  gpu.stats.bytesPeak = gpu.stats.bytesLive;
  const trainer = new Trainer(gpu, model, parseGroupsText(m.data, 'bench.jsonl'), s);
  const t0 = performance.now();
  try {
    await trainer.run({ step: 0, epoch: 0, batch: 0 }, async () => false);
    return { peak: gpu.stats.bytesPeak, seconds: (performance.now() - t0) / 1000 };
  } finally {
    trainer.dispose();
    model.dispose();
    gpu.trim();
  }
}

export async function run(arg: { models: BenchModel[] }): Promise<BenchReport> {
  const gpu = await createBrowserGpu();
  const report: BenchReport = {
    adapter: gpu.name,
    limits: { maxBufferSize: gpu.limits.maxBufferSize, maxStorageBufferBindingSize: gpu.limits.maxBinding },
    models: [],
  };
  for (const m of arg.models) {
    const speed: SpeedRow[] = [];
    if (m.steps > 0) {
      const r = await BrowserTraining.open({ gpu, model: fetchModelFiles(m.url), modelName: m.name, groups: parseGroupsText(m.data, 'bench.jsonl'), settings: m.settings, saveSteps: 0, stopAt: m.steps, store: memoryStore() });
      let last = 0;
      await r.run();
      for (const l of r.lines) {
        const seconds = l.elapsed_s - last;
        last = l.elapsed_s;
        speed.push({ step: l.step, tokens: l.tokens, seconds, tokensPerS: l.tokens_per_s, gpuPeakMiB: l.gpu_peak_mib });
        console.log(`${m.name} step ${l.step}: ${l.tokens} tokens, ${l.tokens_per_s.toFixed(1)} tokens/s`);
      }
      r.dispose();
      gpu.trim();
    }
    const t0 = performance.now();
    const model = await loadEmbeddingModel(gpu, fetchModelFiles(m.url), m.name);
    const probe = new StepProbe(gpu, model);
    const fit: FitRow[] = [];
    for (const L of m.lengths) {
      const s = { ...m.settings, passageMaxLen: L };
      const byLimits = await largestByLimits(probe, s);
      const at = byLimits > 0 ? await probe.measure({ ...s, queriesPerStep: byLimits }) : null;
      const byBudget = m.budget > 0 ? await probe.largestBatch(s, byLimits + 1, m.budget) : 0;
      const budgetPeak = byBudget > 0 ? (await probe.measure({ ...s, queriesPerStep: byBudget })).peakBytes : 0;
      fit.push({ passageMaxLen: L, byLimits, byLimitsPeak: at?.peakBytes ?? 0, byLimitsBuffer: at?.largestBuffer ?? 0, cap: CAP, byBudget, byBudgetPeak: budgetPeak, confirmedPeak: null, confirmedSeconds: null });
      console.log(`${m.name} at ${L} tokens: ${byLimits} by limits, ${byBudget} under the budget`);
    }
    model.dispose();
    gpu.trim();
    const fitSeconds = (performance.now() - t0) / 1000;
    for (const row of fit) {
      {
        if (row.byBudget < 1 || !m.confirmLengths.includes(row.passageMaxLen)) continue;
        const c = await confirmStep(gpu, m, { ...m.settings, passageMaxLen: row.passageMaxLen, queriesPerStep: row.byBudget });
        row.confirmedPeak = c.peak;
        row.confirmedSeconds = c.seconds;
        console.log(`${m.name} at ${row.passageMaxLen} tokens: one step at batch ${row.byBudget} ran, peak ${c.peak} bytes`);
      }
    }
    report.models.push({ name: m.name, speed, fit, fitSeconds });
  }
  return report;
}
