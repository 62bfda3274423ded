// Chromium entry for the training parity test (test/browser-train.test.ts): fine-tune the model
// at arg.model on arg.data for arg.steps optimizer steps with the training page's code
// (demo/train/session.ts BrowserTraining, the CLI's trainer loop) and return each step's log
// line and the final weights as the checkpoint's model.safetensors bytes, exactly.

import { createBrowserGpu } from '../../browser/device.ts';
import { fetchModelFiles } from '../../browser/fetch.ts';
import type { StepLogLine } from '../../core/train/session.ts';
import type { TrainSettings } from '../../core/train/options.ts';
import { BrowserTraining, memoryStore, parseGroupsText } from '../../demo/train/session.ts';

export interface TrainParityArg {
  model: string;
  data: string;
  settings: TrainSettings;
  steps: number;
}

export interface TrainParityReport {
  adapter: string;
  lines: StepLogLine[];
  /** model.safetensors of the checkpoint at `steps`, base64. */
  weights: string;
  ms: number;
}

function base64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

export async function run(arg: TrainParityArg): Promise<TrainParityReport> {
  const t0 = performance.now();
  const gpu = await createBrowserGpu();
  const store = memoryStore();
  const r = await BrowserTraining.open({ gpu, model: fetchModelFiles(arg.model), modelName: 'tiny-bert', groups: parseGroupsText(arg.data, 'train.jsonl'), settings: arg.settings, saveSteps: 0, stopAt: arg.steps, store });
  await r.run();
  const ck = await store.latest();
  if (!ck) throw new Error('no checkpoint was saved at the last step');
  r.dispose();
  return { adapter: gpu.name, lines: r.lines, weights: base64(ck['model.safetensors'] as Uint8Array), ms: performance.now() - t0 };
}
