// Training in the page, measured in headless Chromium: tokens/s of the page's trainer
// (demo/train/session.ts BrowserTraining) for tiny-bert and all-MiniLM-L6-v2, and the largest
// per_device_train_batch_size that core/train/fit.ts lets through at 128 and 256 passage tokens
// on Chromium's adapter (by its limits, and under a memory budget, confirmed by one real step).
// A bench, never a test: numbers depend on the machine and its load.
//
//   node --import tsx tools/train-page-bench.ts [--json out.json] [--steps 3,2] [--budget-mib 1024]
//        [--confirm 128,256] [--node] [--timeout-s 590]
//
// --confirm: the passage lengths at which one real step runs at the budget's batch ('' for none;
// on SwiftShader all-MiniLM-L6-v2 trains at a few tokens/s, so each takes minutes).
//
// --node also runs the speed settings with `aqa train` (Dawn here) for the side-by-side ratio.
// Data: synthetic FlagEmbedding groups whose texts reach every max length (worst-case tokens).

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_SETTINGS, type TrainSettings } from '../core/train/options.ts';
import { trainCommand } from '../node/train-run.ts';
import { runInChromium } from '../test/browser/runner.ts';
import type { BenchModel, BenchReport } from './train-page-bench.browser.ts';

const TINY = 'test/fixtures/tiny-bert';
const MINILM = 'test/models/all-MiniLM-L6-v2';
const WORDS = ['protein', 'folding', 'graph', 'neural', 'network', 'quantum', 'energy', 'cell', 'gene', 'signal', 'theory', 'data'];

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function text(i: number, words: number): string {
  return Array.from({ length: words }, (_, j) => `${WORDS[(i * 5 + j * 3) % WORDS.length]}${j % 13}`).join(' ');
}

/** n groups of long texts (every query and passage is cut at its max length), 7 negatives each. */
function data(n: number): string {
  return Array.from({ length: n }, (_, i) => JSON.stringify({ query: `what about ${text(i, 60)}?`, pos: [text(i + 1, 400)], neg: [1, 2, 3, 4, 5, 6, 7].map((k) => text(i + 7 * k, 400)) })).join('\n');
}

const [tinySteps, miniSteps] = (arg('--steps') ?? '3,2').split(',').map(Number);
const budget = Number(arg('--budget-mib') ?? 1024) * 2 ** 20;
const confirmLengths = (arg('--confirm') ?? '128,256').split(',').filter(Boolean).map(Number);
const jsonOut = arg('--json');
const groups = data(16);
// The speed settings: small, so SwiftShader finishes in minutes; dropout as the models' configs.
const speed = (s: Partial<TrainSettings>): TrainSettings => ({ ...DEFAULT_SETTINGS, hiddenDropout: 0.1, queryMaxLen: 32, ...s });
const models: (BenchModel & { dir: string })[] = [
  { name: 'tiny-bert', dir: TINY, url: '/models/tiny-bert/', settings: speed({ queriesPerStep: 4, trainGroupSize: 4, passageMaxLen: 64 }), steps: tinySteps, data: groups, lengths: [], budget: 0, confirmLengths: [] },
  { name: 'all-MiniLM-L6-v2', dir: MINILM, url: '/models/minilm/', settings: speed({ queriesPerStep: 2, trainGroupSize: 4, passageMaxLen: 128 }), steps: miniSteps, data: groups, lengths: [], budget: 0, confirmLengths: [] },
];
// The largest batch: the table's defaults (train_group_size 8, query_max_len 32, no GradCache).
const fitModel: BenchModel & { dir: string } = { ...models[1], settings: { ...DEFAULT_SETTINGS, hiddenDropout: 0.1 }, steps: 0, lengths: [128, 256], budget, confirmLengths };

const t0 = performance.now();
const run = await runInChromium<BenchReport>('tools/train-page-bench.browser.ts', Number(arg('--timeout-s') ?? 590) * 1000, {
  serve: { '/models/tiny-bert/': TINY, '/models/minilm/': MINILM },
  arg: { models: [...models, fitModel].map(({ dir: _dir, ...m }) => m) },
  onConsole: (_t, line) => console.error(`  [chromium] ${line}`),
});
const r = run.value;
const chromiumS = (performance.now() - t0) / 1000;

const nodeSpeed = new Map<string, number[]>();
if (process.argv.includes('--node')) {
  for (const m of models) {
    const dir = mkdtempSync(join(tmpdir(), 'aqa-train-bench-'));
    try {
      writeFileSync(join(dir, 'train.jsonl'), `${m.data}\n`);
      await trainCommand({ model_name_or_path: m.dir, output_dir: join(dir, 'out'), train_data: join(dir, 'train.jsonl'), resume: false, save_steps: 0, save_total_limit: 1, max_steps: m.steps, settings: m.settings, gpu: {}, quiet: true });
      const lines = readFileSync(join(dir, 'out', 'train_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { tokens_per_s: number });
      nodeSpeed.set(m.name, lines.map((l) => l.tokens_per_s));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

const mib = (b: number) => (b / 2 ** 20).toFixed(1);
console.log(`Chromium ${run.browserVersion}, adapter: ${r.adapter}`);
console.log(`limits: maxBufferSize ${mib(r.limits.maxBufferSize)} MiB, maxStorageBufferBindingSize ${mib(r.limits.maxStorageBufferBindingSize)} MiB`);
console.log('\nspeed (tokens/s per step; step 1 includes pipeline compilation)');
console.log('model              setting                          tokens/step  chromium tokens/s            node (aqa train) tokens/s');
for (const m of models) {
  const rep = r.models.find((x) => x.name === m.name)!;
  const s = m.settings;
  const setting = `batch ${s.queriesPerStep} x group ${s.trainGroupSize}, ${s.queryMaxLen}/${s.passageMaxLen} tok`;
  const node = nodeSpeed.get(m.name);
  console.log(`${m.name.padEnd(18)} ${setting.padEnd(32)} ${String(rep.speed[0]?.tokens ?? '').padEnd(12)} ${rep.speed.map((x) => x.tokensPerS.toFixed(1)).join(', ').padEnd(28)} ${node ? node.map((x) => x.toFixed(1)).join(', ') : '-'}`);
}
const fit = r.models.find((x) => x.fit.length)!;
console.log(`\nlargest per_device_train_batch_size, ${fitModel.name}, train_group_size ${fitModel.settings.trainGroupSize}, query_max_len ${fitModel.settings.queryMaxLen}, no GradCache (search capped at ${fit.fit[0]?.cap})`);
console.log(`passage tokens  by limits  (peak MiB, largest buffer MiB)  under ${mib(budget)} MiB  (estimated peak MiB)  one step at it: measured peak MiB, s`);
for (const f of fit.fit) {
  console.log(`${String(f.passageMaxLen).padEnd(15)} ${String(f.byLimits).padEnd(10)} (${mib(f.byLimitsPeak)}, ${mib(f.byLimitsBuffer)})`.padEnd(62) + ` ${String(f.byBudget).padEnd(14)} (${mib(f.byBudgetPeak)})`.padEnd(30) + ` ${f.confirmedPeak === null ? '-' : `${mib(f.confirmedPeak)}, ${f.confirmedSeconds!.toFixed(1)}`}`);
}
console.log(`\nfit search ${fit.fitSeconds.toFixed(1)} s; Chromium run ${chromiumS.toFixed(0)} s in all`);
const errors = run.errors.filter((e) => !/404/.test(e) && !e.startsWith('console.error: Failed to load resource'));
if (errors.length) console.log(`page errors:\n${errors.join('\n')}`);
if (jsonOut) writeFileSync(jsonOut, `${JSON.stringify({ browser: run.browserVersion, ...r, node: Object.fromEntries(nodeSpeed), chromiumSeconds: chromiumS }, null, 2)}\n`);
