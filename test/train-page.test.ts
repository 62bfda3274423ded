// The training page end to end (demo/train.html), as a visitor uses it, in Chromium (WebGPU on
// SwiftShader here), against `aqa train` in Node on the same data and settings:
//
//   bad input   a JSONL whose second line has no positive: the status names file:line: field,
//               and no training starts (the page stays idle, no step shown). A memory budget
//               too small for the batch: the fit check's one-line refusal, before any step.
//   train       tiny-bert, 10 FlagEmbedding groups (test/train-groups.ts), of which the page
//               holds out 2 (its default hold-out 0.2 with the run's seed: core/train/holdout.ts)
//               and trains on 8, lengths 12/16, 2 queries x 3 passages per step, GradCache and
//               hidden dropout on, 2 epochs = 8 steps, a checkpoint every 2 steps (so the resumed
//               run crosses the epoch boundary). Screenshot train-page-mid.png once step
//               RELOAD_AT is shown.
//   reload      the page is reloaded mid-run; Train again with the same inputs resumes from the
//               newest OPFS checkpoint (the status says from which step, > 0) and finishes.
//               The "Before / after" table then holds the held-out metrics of the base and the
//               tuned model, and the search box answers with the tuned model. Screenshot
//               train-page-done.png.
//   export      Download zip -> <model>-step-<n>.zip, unzipped here; Save to folder (the picker
//               answered with an OPFS folder) writes the same files. The same run in Node
//               (trainCommand, as test/browser-train.test.ts runs it, on the 8 training groups
//               of the same split, computed here with holdOut) writes its output folder;
//               the export has the same files, except what `aqa train` keeps next to the model:
//               train_log.jsonl (the run's log, with timings) and checkpoint-<step>/ (resume
//               state). Every other non-weight file (config, tokenizer, sentence-transformers
//               files) is byte-identical: both come from core/train/model-folder.ts.
//   weights     within the Chromium-vs-Node bounds of test/browser-train.test.ts
//               (test/train-weights.ts), over K = 8 steps instead of 3. The bounds are not
//               scaled: AdamW's step is ~lr whatever the gradient, so adapter rounding does not
//               compound through the update; the key-bias bound (2 * K * lr) already grows with K.
//               Measured: max |dw| 0.015 * lr, mean 9e-8 * lr, 1 element over 1e-3 * lr, key
//               biases 0.09 * lr (the same sizes as after 3 steps).
//   embeddings  the exported folder loads with `aqa embed` (runEmbed) and gives the embeddings of
//               the Node-trained folder within EMB_ATOL per component (see there).
//
// Served by Vite's dev server (createServer), not a build: a build bundles both pages (the
// search page with onnxruntime-web too) and copies the search demo's model (~90 MB) into its
// output, ~8 s here before the page can load; the dev server starts in ~0.3 s, transforms only
// the modules train.html asks for (~2 s), and serves tiny-bert from test/fixtures through the
// config's mount. Neither needs the demo index. The dev server's dependency cache goes to a
// temp dir, so node_modules is not written. Needs Chromium (test/browser/runner.ts);
// AQA_SKIP_BROWSER=1 skips it. About 35 s here. Writes out/test-artifacts/train-page-{mid,done}.png;
// AQA_TRAIN_EXPORT=<file> also keeps the exported zip (for tools/check_st_load.py).

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { dirname, join, relative } from 'node:path';
import { after, test } from 'node:test';
import { unzipSync } from 'fflate';
import type { Page } from 'playwright-core';
import { bytesSource } from '../core/model/source.ts';
import { holdOut } from '../core/train/holdout.ts';
import { DEFAULT_SETTINGS } from '../core/train/options.ts';
import { exportName, zipModelFolder } from '../demo/train/export.ts';
import { withModelDefaults } from '../demo/train/session.ts';
import { runEmbed } from '../node/embed-command.ts';
import { fileSource, localModelFiles } from '../node/files.ts';
import { readNpy } from '../node/npy.ts';
import { trainCommand } from '../node/train-run.ts';
import { launchChromium } from './browser/runner.ts';
import { tempDir } from './helpers.ts';
import { groupsFile, phrase } from './train-groups.ts';
import { assertWeightsClose, describeWeightDiff, weightDiff } from './train-weights.ts';
import { chromiumTest } from './browser/chromium-test.ts';

const TINY = 'test/fixtures/tiny-bert';
const ARTIFACTS = 'out/test-artifacts';
const GROUPS = 10;
/** Groups the page holds out for its before/after table (hold-out 0.2 of 10). */
const HELD_OUT = 2;
/** Steps: 8 training groups / 2 queries per step x 2 epochs. */
const K = 8;
const SAVE_STEPS = 2;
/** Reload once this step is shown: the checkpoint of the step before it is in OPFS by then (saved before this step's progress). */
const RELOAD_AT = 3;
/** The form, as typed into the page (option names of core/train/options.ts). */
const FORM: Record<string, string> = {
  learning_rate: '0.001',
  num_train_epochs: '2',
  per_device_train_batch_size: '2',
  train_group_size: '3',
  query_max_len: '12',
  passage_max_len: '16',
  warmup_ratio: '0',
  hidden_dropout_prob: '0.1',
  grad_cache_mini_batch: '2',
  save_steps: String(SAVE_STEPS),
};
const LR = 1e-3;
/**
 * Embeddings of the exported vs the Node-trained folder, both run by `aqa embed` on the same
 * adapter here, so they differ only through the weights (max |dw| <= 0.05 * lr = 5e-5, mean
 * ~1e-10). Rows are unit length (tiny-bert: 32 components); measured max |de| 3.2e-7. 1e-4 lets
 * the largest weight difference the weight bound allows pass through the two layers at gain ~2,
 * while a wrong or missing tensor moves components by ~0.1.
 */
const EMB_ATOL = 1e-4;
const NAME = 'training page: train, reload and resume from OPFS, export, compare with aqa train';

/** Every file and folder under dir, relative, folders with a trailing '/'. */
function listTree(dir: string, skip: (rel: string) => boolean): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      const rel = relative(dir, p);
      if (skip(rel)) continue;
      if (statSync(p).isDirectory()) {
        out.push(`${rel}/`);
        walk(p);
      } else out.push(rel);
    }
  };
  walk(dir);
  return out.sort();
}

async function fillForm(page: Page, data: { name: string; text: string }): Promise<void> {
  await page.locator('details').first().evaluate((d) => ((d as HTMLDetailsElement).open = true));
  for (const [name, value] of Object.entries(FORM)) await page.fill(`input[name="${name}"]`, value);
  await page.setInputFiles('#data', { name: data.name, mimeType: 'application/jsonl', buffer: Buffer.from(data.text) });
  await page.waitForFunction(() => document.getElementById('status')?.textContent === 'Ready to train.');
}

async function embedFolder(dir: string, input: string, out: string): Promise<Float32Array> {
  await runEmbed({ model: dir, input, out, field: 'text', query: false, batchSize: 8, dtype: 'f32', gpu: {} });
  return (await readNpy(out)).data;
}

test('export: file names from model ids, one folder per zip, empty folders kept', () => {
  assert.equal(exportName({ modelName: 'BAAI/bge-small-en-v1.5', step: 3 }), 'BAAI-bge-small-en-v1.5-step-3');
  assert.equal(exportName({ modelName: '../x y', step: 0 }), 'x-y-step-0');
  const zip = zipModelFolder({ modelName: 'tiny-bert', step: 2, totalSteps: 4, dirs: ['1_Pooling', '2_Normalize'], files: { 'config.json': '{}', '1_Pooling/config.json': '{"a":1}', 'model.safetensors': new Uint8Array([1, 2, 3]) } });
  const got = unzipSync(zip);
  assert.deepEqual(Object.keys(got).sort(), ['tiny-bert-step-2/1_Pooling/', 'tiny-bert-step-2/1_Pooling/config.json', 'tiny-bert-step-2/2_Normalize/', 'tiny-bert-step-2/config.json', 'tiny-bert-step-2/model.safetensors']);
  assert.deepEqual([...got['tiny-bert-step-2/model.safetensors']], [1, 2, 3]);
  assert.equal(new TextDecoder().decode(got['tiny-bert-step-2/1_Pooling/config.json']), '{"a":1}');
});

chromiumTest(NAME, async () => {
  const dir = tempDir({ after }, 'train-page');
  const dataPath = groupsFile(dir, GROUPS);
  const data = { name: 'train.jsonl', text: readFileSync(dataPath, 'utf8') };
  const t0 = performance.now();
  const ms = () => Math.round(performance.now() - t0);
  const marks: string[] = [];
  const mark = (what: string) => marks.push(`${what} ${ms()}`);

  // The Node run's settings: the form's, with the model's defaults filled as the page fills them.
  const overrides = { learningRate: LR, numTrainEpochs: 2, queriesPerStep: 2, trainGroupSize: 3, queryMaxLen: 12, passageMaxLen: 16, warmupRatio: 0, gradCacheMiniBatch: 2 };
  const settings = await withModelDefaults({ ...DEFAULT_SETTINGS, ...overrides, queryInstruction: null, hiddenDropout: 0.1 }, localModelFiles(TINY), 'tiny-bert');
  const nodeOut = join(dir, 'node');
  // The page trains on what its hold-out leaves: the same split here (it is a pure function of the queries, fraction and seed).
  const lines = data.text.split('\n').filter((l) => l.trim() !== '');
  const split = holdOut(lines.map((l) => (JSON.parse(l) as { query: string }).query), { fraction: 0.2, seed: settings.seed });
  assert.equal(split.heldOut.length, HELD_OUT);
  const trainPath = join(dir, 'train-split.jsonl');
  writeFileSync(trainPath, split.train.map((i) => lines[i]).join('\n') + '\n');
  let node: ReturnType<typeof trainCommand> | null = null;

  // Nothing of this test goes into the repository's out/demo: a dev server must not write build output when it closes.
  const buildOut = join(dir, 'demo-build');
  process.env.AQA_DEMO_OUT = buildOut;
  // Vite's import and Chromium's start are each seconds here: side by side.
  const [server, context] = await Promise.all([
    import('vite').then(({ createServer }) => createServer({ configFile: 'demo/vite.config.ts', cacheDir: join(dir, 'vite-cache'), logLevel: 'warn', server: { port: 0, hmr: false, watch: null }, optimizeDeps: { entries: ['train.html'] } })),
    launchChromium(join(dir, 'profile'), { viewport: { width: 1000, height: 1300 } }),
  ]);
  let closed = false;
  after(() => (closed ? undefined : server.close()));
  after(() => context.close());
  await server.listen();
  const url = `http://127.0.0.1:${(server.httpServer!.address() as AddressInfo).port}/train.html`;
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(120_000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  // The model loader probes optional sentence-transformers files that tiny-bert lacks: 404s are expected.
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(`console.error: ${m.text()}`);
  });
  const statusText = () => page.locator('#status').textContent();
  mark('server and browser up');
  await page.goto(url);
  mark('page loaded');

  // Bad input: one line without a positive.
  const badLines = data.text.split('\n');
  badLines[1] = JSON.stringify({ query: 'no positive here', neg: [phrase(1, 8)] });
  await fillForm(page, { name: 'bad.jsonl', text: badLines.join('\n') });
  await page.click('#start');
  await page.waitForFunction(() => document.getElementById('status')?.textContent?.startsWith('Training failed'));
  const badStatus = await statusText();
  assert.match(badStatus!, /bad\.jsonl:2: pos: /, 'the status names file:line: field');
  assert.equal(await page.evaluate(() => document.body.dataset.state), 'idle');
  assert.equal(await page.locator('#step').textContent(), '-', 'no step was trained');
  mark('bad input refused');

  // A step over the memory budget is refused before training, in one line naming the batch that fits.
  await fillForm(page, data);
  // 22 MiB: tiny-bert's step at these settings peaks at 22.03 MiB with GradCache pieces of 2
  // texts and 21.95 MiB with pieces of 1 (core/train/fit.ts's probe, in Node here; Chromium's
  // agrees within 0.01%), so the refusal must name grad_cache_mini_batch 1.
  await page.fill('#memory-budget', '22');
  await page.click('#start');
  await page.waitForFunction(() => document.getElementById('status')?.textContent?.startsWith('Training failed'));
  assert.match((await statusText())!, /^Training failed: training does not fit: a step \(per_device_train_batch_size 2 x train_group_size 3 at 16 passage tokens\) needs [\d.]+ MiB at its peak, over the memory budget of 22[.0]* MiB; the largest grad_cache_mini_batch that fits is 1$/);
  assert.equal(await page.locator('#step').textContent(), '-', 'no step was trained');
  await page.fill('#memory-budget', '');
  mark('over the budget refused');

  // Train, reload mid-run, train again: resumes from OPFS.
  await fillForm(page, data);
  await page.click('#start');
  await page.waitForFunction(() => document.getElementById('step')?.textContent !== '-');
  mark('step 1');
  // `aqa train` on the same data and settings runs in this process while Chromium trains: started
  // only now, as its GPU work would otherwise hold up the dev server while the page loads.
  node = trainCommand({ model_name_or_path: TINY, output_dir: nodeOut, train_data: trainPath, resume: false, save_steps: 0, save_total_limit: 1, settings, gpu: {}, quiet: true });
  node.catch(() => undefined);
  await page.waitForFunction((n) => parseInt(document.getElementById('step')?.textContent ?? '', 10) >= n, RELOAD_AT);
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, 'train-page-mid.png'), fullPage: true });
  const stepBefore = await page.locator('#step').textContent();
  mark(`step ${stepBefore}`);
  await page.reload();
  mark('reloaded');
  await fillForm(page, data);
  await page.click('#start');
  await page.waitForFunction(() => document.getElementById('step')?.textContent !== '-');
  mark('first step after the reload');
  await page.waitForFunction(() => document.body.dataset.state === 'done' || document.getElementById('status')?.textContent?.startsWith('Training failed'));
  const done = (await statusText())!;
  const resumed = /resumed from step (\d+)/.exec(done);
  assert.ok(done.startsWith('Done:') && resumed, `the run finished after resuming: ${done}`);
  const from = Number(resumed[1]);
  const report = await page.evaluate(() => (globalThis as { aqaTrainReport?: { storage: string; step: number; totalSteps: number } }).aqaTrainReport);
  assert.equal(report?.storage, 'opfs', 'the checkpoint came from OPFS');
  // SwiftShader takes ~1 s a step here; an adapter fast enough to finish all K steps before the reload would need more steps.
  assert.ok(from < K, `the reload came after the run had finished (resumed from step ${from} of ${K}): not a mid-run reload`);
  assert.ok(from > 0 && from % SAVE_STEPS === 0 && from <= parseInt(stepBefore!, 10), `resumed from a saved step (${from}; ${stepBefore} shown before the reload)`);
  assert.equal(report.step, K);
  assert.equal(report.totalSteps, K);
  // Before / after: both rows hold metrics of the held-out questions (unrounded in data-value).
  // (No nested named functions inside evaluate: see the loop further down.)
  const table = await page.evaluate(() => {
    const t = document.getElementById('metrics')!;
    const rows: Record<string, number[]> = { before: [], after: [] };
    for (const c of Array.from(t.querySelectorAll('tr[data-run] [data-metric]'))) rows[(c.closest('tr') as HTMLElement).dataset.run!].push(Number((c as HTMLElement).dataset.value));
    return { heldOut: t.dataset.heldOut, train: t.dataset.train, before: rows.before, after: rows.after };
  });
  assert.equal(table.heldOut, String(HELD_OUT));
  assert.equal(table.train, String(GROUPS - HELD_OUT));
  for (const v of [...table.before, ...table.after]) assert.ok(v >= 0 && v <= 1, `metrics: ${JSON.stringify(table)}`);
  assert.equal(table.before.length, 3);
  assert.equal(table.after.length, 3);
  // The search box answers with the tuned model now.
  await page.fill('#search-q', phrase(1, 6));
  await page.click('#search-go');
  await page.waitForFunction(() => document.getElementById('search-model')?.textContent?.startsWith('Answered by'));
  assert.match((await page.locator('#search-model').textContent())!, /the fine-tuned model/);
  assert.ok((await page.locator('#search-results li').count()) > 0, 'the search box listed results');
  await page.screenshot({ path: join(ARTIFACTS, 'train-page-done.png'), fullPage: true });
  mark('done');

  // Export.
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export')]);
  assert.equal(download.suggestedFilename(), `tiny-bert-step-${K}.zip`);
  const zip = readFileSync((await download.path())!);
  if (process.env.AQA_TRAIN_EXPORT) {
    mkdirSync(dirname(process.env.AQA_TRAIN_EXPORT), { recursive: true });
    writeFileSync(process.env.AQA_TRAIN_EXPORT, zip);
  }
  const exported = join(dir, 'export');
  const entries = unzipSync(zip);
  const top = `tiny-bert-step-${K}/`;
  for (const [name, bytes] of Object.entries(entries)) {
    assert.ok(name.startsWith(top), `${name}: outside ${top}`);
    const p = join(exported, name);
    if (name.endsWith('/')) mkdirSync(p, { recursive: true });
    else {
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, bytes);
    }
  }
  assert.match(await page.locator('#export-status').textContent() ?? '', new RegExp(`Exported step ${K} of ${K}`));
  // "Save to folder": the picker is answered with a folder of the origin's private file system
  // (the test cannot click a native dialog); the page must write there what the zip holds.
  await page.evaluate(() => {
    (globalThis as { showDirectoryPicker?: unknown }).showDirectoryPicker = async () => (await navigator.storage.getDirectory()).getDirectoryHandle('picked', { create: true });
  });
  await page.click('#export-folder');
  await page.waitForFunction(() => document.getElementById('export-status')?.textContent?.includes('picked/'));
  // (A loop, not a nested function: tsx names functions with a helper the page does not have.)
  const picked = await page.evaluate(async (name) => {
    const out: Record<string, string> = {};
    const root = await (await navigator.storage.getDirectory()).getDirectoryHandle('picked');
    const todo: [FileSystemDirectoryHandle, string][] = [[await root.getDirectoryHandle(name), `${name}/`]];
    for (let next = todo.pop(); next; next = todo.pop()) {
      const [d, prefix] = next;
      for await (const [n, h] of (d as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }).entries()) {
        if (h.kind === 'directory') {
          out[`${prefix}${n}/`] = '';
          todo.push([h as FileSystemDirectoryHandle, `${prefix}${n}/`]);
        } else {
          const bytes = await (await (h as FileSystemFileHandle).getFile()).arrayBuffer();
          out[`${prefix}${n}`] = Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)), (b) => b.toString(16).padStart(2, '0')).join('');
        }
      }
    }
    return out;
  }, top.slice(0, -1));
  const zipped = Object.fromEntries(Object.entries(entries).map(([n, b]) => [n, n.endsWith('/') ? '' : createHash('sha256').update(b).digest('hex')]));
  assert.deepEqual(picked, zipped, 'the picked folder holds what the zip holds');
  assert.deepEqual(errors, [], `the page reported errors:\n${errors.join('\n')}`);

  await context.close();
  await server.close();
  closed = true;
  assert.ok(!existsSync(buildOut), 'closing the dev server wrote build output');

  // Against `aqa train`'s output folder.
  mark('exported');
  const summary = await node!;
  mark('node done');
  assert.equal(summary.position.step, K);
  const folder = join(exported, top);
  const ours = listTree(folder, () => false);
  const theirs = listTree(nodeOut, (rel) => rel === 'train_log.jsonl' || /^checkpoint-\d+$/.test(rel));
  assert.deepEqual(ours, theirs, 'the export has the files of aqa train\'s model folder');
  for (const f of ours) {
    if (f.endsWith('/') || f === 'model.safetensors') continue;
    assert.ok(readFileSync(join(folder, f)).equals(readFileSync(join(nodeOut, f))), `${f}: differs from aqa train's`);
  }
  // model.safetensors: the same header (tensor names incl. the carried-over pooler, dtypes, shapes, offsets); only values differ.
  const header = (f: string) => {
    const b = readFileSync(f);
    return b.subarray(0, 8 + Number(b.readBigUInt64LE(0))).toString();
  };
  assert.equal(header(join(folder, 'model.safetensors')), header(join(nodeOut, 'model.safetensors')), 'model.safetensors: the same tensors as aqa train writes');
  const d = await weightDiff(bytesSource('export/model.safetensors', readFileSync(join(folder, 'model.safetensors'))), await fileSource(join(nodeOut, 'model.safetensors')), await fileSource(join(TINY, 'model.safetensors')), LR);

  // `aqa embed` on both folders.
  const texts = join(dir, 'texts.txt');
  writeFileSync(texts, `${Array.from({ length: 6 }, (_, i) => phrase(i * 3, 6)).join('\n')}\n`);
  const a = await embedFolder(folder, texts, join(dir, 'export.npy'));
  const b = await embedFolder(nodeOut, texts, join(dir, 'node.npy'));
  assert.equal(a.length, b.length);
  let embMax = 0;
  for (let i = 0; i < a.length; i++) embMax = Math.max(embMax, Math.abs(a[i] - b[i]));
  console.log(
    `train page: reloaded at step ${stepBefore}, resumed from step ${from}; export vs aqa train: ${describeWeightDiff(d, LR)}; ` +
      `aqa embed max |de| ${embMax.toExponential(2)}; ms since start: ${marks.join(', ')}, total ${ms()}`,
  );
  assertWeightsClose(d, LR, K);
  assert.ok(embMax <= EMB_ATOL, `embeddings of the export differ from aqa train's by ${embMax} > ${EMB_ATOL}`);
});
