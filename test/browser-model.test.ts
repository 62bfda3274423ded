// Whole-model forwards in real Chromium WebGPU (SwiftShader here), loaded over HTTP with
// fetchModelFiles like a web page would: the gte-dev and tiny-bert fixtures and
// all-MiniLM-L6-v2 must (a) match their independent references with test/model.test.ts's
// tolerances, and (b) give the same answers as Dawn in Node, which runs the very same code
// (forwardFixture / embedTexts of test/browser/model.ts) on the same inputs in this process.
//
// Tolerances (test/model.test.ts, from the fixtures' float32-vs-float64 tables): hidden states
// and poolings 1e-5 absolute; normalised embeddings 2e-6 on the tiny fixtures; MiniLM 1e-5 per
// component and cosine >= 0.99999. Chromium vs Node uses the same numbers: both sides are f32
// implementations of one reference, each within a few 1e-7 of it, so their difference is
// bounded by the same rounding noise (SwiftShader has no shader-f16 or subgroups, llvmpipe
// has both, but every kernel's default path is f32 and neither feature changes the math).
//
// Needs Chromium (/usr/bin/chromium or AQA_CHROMIUM): missing, the test fails with the install
// command; AQA_SKIP_BROWSER=1 skips it. Needs test/models/all-MiniLM-L6-v2 (bash
// tools/fetch-test-models.sh). AQA_BROWSER_TIMEOUT_MS bounds the Chromium run (default 240 s,
// several times what it takes on a loaded 2-core machine; 900 s with AQA_BROWSER_MINILM=all).
// Timings and maxdiffs are printed on every run.

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { before, describe, test } from 'node:test';
import { parseSafetensorsHeader, readInt64Tensor, readTensor, type SafetensorsFile } from '../core/model/safetensors.ts';
import { fileSource, localModelFiles } from '../node/files.ts';
import { decodeArray } from './browser/encoding.ts';
import { type EncodedFixture, type FixtureOutputs, type ModelReport, embedTexts, forwardFixture, minilmSelection, parseTextRows } from './browser/model.ts';
import { CHROMIUM_HELP, type ChromiumRun, chromiumExecutable, runInChromium } from './browser/runner.ts';
import { evaluate, minRowCosine } from './cases/types.ts';
import { testGpu } from './helpers.ts';

const MINILM_DIR = 'test/models/all-MiniLM-L6-v2';
const MINILM_MISSING = `${MINILM_DIR} is missing: run bash tools/fetch-test-models.sh`;
const FIXTURES = { 'gte-dev': 'test/fixtures/gte-dev', 'tiny-bert': 'test/fixtures/tiny-bert' } as const;
type FixtureName = keyof typeof FIXTURES;

// Per output: the golden tensor it is checked against and the tolerance (see the header).
const OUTPUTS: { key: 'cls' | 'clsN' | 'mean' | 'meanN'; golden: string; atol: number }[] = [
  { key: 'cls', golden: 'cls', atol: 1e-5 },
  { key: 'mean', golden: 'mean', atol: 1e-5 },
  { key: 'clsN', golden: 'cls_normalized', atol: 2e-6 },
  { key: 'meanN', golden: 'mean_normalized', atol: 2e-6 },
];
const HIDDEN_ATOL = 1e-5;
const MINILM_ATOL = 1e-5;
const MINILM_MIN_COS = 0.99999;
// The goldens each fixture must hold (the GTE reference pools CLS only), so a renamed tensor
// fails here instead of silently dropping out of the comparison.
const GOLDENS: Record<FixtureName, string[]> = {
  'gte-dev': ['hidden_states.0', 'hidden_states.1', 'hidden_states.2', 'cls', 'cls_normalized'],
  'tiny-bert': ['hidden_states.0', 'hidden_states.1', 'hidden_states.2', 'cls', 'mean', 'cls_normalized', 'mean_normalized'],
};

const verbose = !!process.env.AQA_TEST_VERBOSE;
// AQA_BROWSER_MINILM=all embeds all 81 texts (batches of 16, ~5 min in Chromium on a loaded
// 2-core machine) instead of the default subset (see minilmSelection in ./browser/model.ts).
const MINILM_WHICH = process.env.AQA_BROWSER_MINILM === 'all' ? 'all' : 'subset';
const exe = chromiumExecutable();
const NAME = 'chromium: full model forward';

if (process.env.AQA_SKIP_BROWSER === '1') {
  const reason = 'AQA_SKIP_BROWSER=1: Chromium WebGPU model tests not run';
  console.log(reason);
  test(NAME, { skip: reason }, () => {});
} else if (!existsSync(exe)) {
  test(NAME, () => assert.fail(`no Chromium at ${exe}. ${CHROMIUM_HELP}`));
} else {
  describe('chromium model', () => {
    const haveMinilm = existsSync(`${MINILM_DIR}/model.safetensors`);
    let run: ChromiumRun<ModelReport>;
    let node: Promise<NodeResults>;

    before(async () => {
      // The Node side runs while Chromium does: on a loaded 2-core machine the two overlap
      // their waits (readbacks, pipeline compiles) and the file finishes sooner.
      node = nodeSide(haveMinilm);
      node.catch(() => undefined); // reported by the tests that await it
      const timeoutMs = Number(process.env.AQA_BROWSER_TIMEOUT_MS) || (MINILM_WHICH === 'all' ? 900_000 : 240_000);
      run = await runInChromium<ModelReport>('test/browser/model.ts', timeoutMs, {
        serve: {
          '/models/gte-dev/': FIXTURES['gte-dev'],
          '/models/tiny-bert/': FIXTURES['tiny-bert'],
          '/fixtures/minilm/': 'test/fixtures/minilm',
          ...(haveMinilm ? { '/models/all-MiniLM-L6-v2/': MINILM_DIR } : {}),
        },
        arg: {
          gteDev: '/models/gte-dev',
          tinyBert: '/models/tiny-bert',
          minilm: haveMinilm ? { model: '/models/all-MiniLM-L6-v2', texts: '/fixtures/minilm', which: MINILM_WHICH } : null,
        },
        onConsole: verbose ? (type, text) => console.log(`  [chromium ${type}] ${text}`) : undefined,
      });
    });

    test('adapter, timings, requests and page errors', async () => {
      const r = run.value;
      const t = run.timings;
      console.log(`chromium ${run.browserVersion}, adapter: ${r.adapterName}; features: ${r.features.join(', ') || 'none'}`);
      const fx = Object.entries(r.fixtures).map(([n, f]) => `${n} load ${ms(f.loadMs)} + forward ${ms(f.forwardMs)}`);
      const m = r.minilm;
      const mini = m ? `; MiniLM load ${ms(m.loadMs)} + embed ${m.indices.length} texts (${m.tokens} tokens, batches of ${m.batchSize}) ${ms(m.embedMs)}` : '';
      console.log(`chromium: bundle ${ms(t.buildMs)}, launch ${ms(t.launchMs)}, run ${ms(t.runMs)}: ${fx.join('; ')}${mini}`);
      assert.ok(r.adapterName && r.adapterName !== 'unknown adapter', 'Chromium reported no adapter name');
      assert.deepEqual(run.errors, [], `the page reported errors:\n${run.errors.join('\n')}`);

      // Weights travel as byte ranges (206), never as one whole-file GET; and no more bytes
      // arrive than the file holds (the pooler, which the encoder does not use, stays unread).
      const weightGets = r.requests.filter((q) => q.method === 'GET' && q.url.endsWith('.safetensors'));
      assert.ok(weightGets.length > 0, 'no safetensors GETs recorded');
      for (const q of weightGets) assert.ok(q.status === 206 && q.range?.startsWith('bytes='), `${q.url}: ${q.method} ${q.range ?? 'without Range'} -> ${q.status}`);
      for (const [url, p] of Object.entries(r.progress)) assert.ok(p.loaded <= p.total, `${url}: received ${p.loaded} of ${p.total} bytes`);
      const heads = r.requests.filter((q) => q.method === 'HEAD').length;
      const bytes = Object.values(r.progress).reduce((s, p) => s + p.loaded, 0);
      console.log(`chromium: ${r.requests.length} requests (${heads} HEAD, ${weightGets.length} ranged weight reads), ${(bytes / 2 ** 20).toFixed(1)} MiB received`);

      const n = await node;
      const nfx = Object.entries(n.fixtures).map(([k, f]) => `${k} load ${ms(f.loadMs)} + forward ${ms(f.forwardMs)}`);
      const nm = n.minilm ? `; MiniLM load ${ms(n.minilm.loadMs)} + embed ${n.minilm.lengths.length} texts (${n.minilm.tokens} tokens) ${ms(n.minilm.embedMs)}` : '';
      console.log(`node (${n.adapterName}), alongside: ${nfx.join('; ')}${nm}; total ${ms(n.ms)}`);
    });

    for (const name of Object.keys(FIXTURES) as FixtureName[]) {
      const dir = FIXTURES[name];

      test(`chromium: ${name} matches its reference`, async () => {
        const c = run.value.fixtures[name];
        const g = await golden(`${dir}/golden.safetensors`);
        for (const want of GOLDENS[name]) assert.ok(g.tensors.has(want), `${dir}/golden.safetensors has no '${want}'`);
        const hidden = c.hidden.map(decodeArray);
        assert.equal(hidden.length, 3, `${name}: ${hidden.length} hidden states in Chromium`);
        const lines: string[] = [];
        for (let i = 0; i < hidden.length; i++) lines.push(check(`${name} hidden_states.${i} chromium vs ref`, hidden[i], await f32(g, `hidden_states.${i}`), HIDDEN_ATOL));
        for (const o of OUTPUTS) {
          if (!GOLDENS[name].includes(o.golden)) continue;
          lines.push(check(`${name} ${o.golden} chromium vs ref`, decodeArray(c[o.key]), await f32(g, o.golden), o.atol));
        }
        console.log(lines.join('\n'));
      });

      test(`chromium = node: ${name}`, async () => {
        const c: EncodedFixture = run.value.fixtures[name];
        const n = (await node).fixtures[name];
        assert.equal(c.hidden.length, n.hidden.length, `${name}: ${c.hidden.length} hidden states in Chromium, ${n.hidden.length} in Node`);
        const lines = c.hidden.map((h, i) => check(`${name} hidden_states.${i} chromium vs node`, decodeArray(h), n.hidden[i], HIDDEN_ATOL));
        for (const o of OUTPUTS) lines.push(check(`${name} ${o.golden} chromium vs node`, decodeArray(c[o.key]), n[o.key], o.atol));
        console.log(lines.join('\n'));
      });
    }

    test(`chromium: all-MiniLM-L6-v2 matches sentence-transformers (${MINILM_WHICH} of the texts, max length 256)`, async () => {
      assert.ok(haveMinilm, MINILM_MISSING);
      const m = run.value.minilm;
      assert.ok(m, 'Chromium returned no MiniLM embeddings');
      const sel = minilmSelection(textRows(), MINILM_WHICH);
      assert.deepEqual(m.indices, sel.indices, 'Chromium embedded other texts than Node selects');
      assert.equal(m.batchSize, sel.batchSize);
      const g = await golden('test/fixtures/minilm/golden.safetensors');
      // Tokenization in Chromium (its own V8 and ICU) against the Python tokenizer's ids.
      const off = (await readInt64Tensor(g, 'ids_256_offsets')).data;
      const want = m.indices.map((i) => Number(off[i + 1] - off[i]));
      assert.deepEqual(m.lengths, want, 'token counts per text differ from the reference tokenizer');
      assert.ok(want.filter((n) => n === 256).length >= 2, 'the selection must include texts truncated at 256 tokens');
      const ref = await f32(g, 'embeddings');
      const D = m.dim;
      const refRows = new Float32Array(m.indices.length * D);
      m.indices.forEach((i, r) => refRows.set(ref.subarray(i * D, (i + 1) * D), r * D));
      console.log(checkEmbeddings(`all-MiniLM-L6-v2 chromium vs sentence-transformers (${m.indices.length} texts)`, decodeArray(m.embeddings), refRows, D));
    });

    test('chromium = node: all-MiniLM-L6-v2', async () => {
      assert.ok(haveMinilm, MINILM_MISSING);
      const m = run.value.minilm;
      assert.ok(m, 'Chromium returned no MiniLM embeddings');
      const n = (await node).minilm;
      assert.ok(n, 'the Node MiniLM run did not happen');
      assert.deepEqual(n.lengths, m.lengths, 'Chromium and Node tokenized the texts differently');
      assert.equal(n.tokens, m.tokens);
      console.log(checkEmbeddings('all-MiniLM-L6-v2 chromium vs node', decodeArray(m.embeddings), n.embeddings, m.dim));
    });
  });
}

interface NodeResults {
  adapterName: string;
  fixtures: Record<FixtureName, FixtureOutputs & { loadMs: number; forwardMs: number }>;
  minilm: Awaited<ReturnType<typeof embedTexts>> | null;
  ms: number;
}

/** The same forwards on Dawn (llvmpipe here), through the same functions as the page. */
async function nodeSide(haveMinilm: boolean): Promise<NodeResults> {
  const t0 = performance.now();
  const gpu = await testGpu();
  const fixtures = {} as NodeResults['fixtures'];
  for (const name of Object.keys(FIXTURES) as FixtureName[]) fixtures[name] = await forwardFixture(gpu, localModelFiles(FIXTURES[name]));
  let minilm: NodeResults['minilm'] = null;
  if (haveMinilm) {
    const rows = textRows();
    const { indices, batchSize } = minilmSelection(rows, MINILM_WHICH);
    minilm = await embedTexts(gpu, localModelFiles(MINILM_DIR), indices.map((i) => rows[i].text), batchSize);
  }
  return { adapterName: gpu.name, fixtures, minilm, ms: performance.now() - t0 };
}

function textRows() {
  return parseTextRows(readFileSync('test/fixtures/minilm/texts.jsonl', 'utf8'));
}

async function golden(path: string): Promise<SafetensorsFile> {
  return parseSafetensorsHeader(await fileSource(path));
}

async function f32(g: SafetensorsFile, name: string): Promise<Float32Array> {
  return (await readTensor(g, name)).data;
}

/** Fails on the first element off by more than atol; returns the maxdiff line. */
function check(name: string, actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number): string {
  const r = evaluate({ name, actual, expected, tol: { atol } });
  if (!r.ok) assert.fail(r.message);
  return `  ${r.message} (atol ${atol})`;
}

/** Cosine of every row >= MINILM_MIN_COS and every component within MINILM_ATOL. */
function checkEmbeddings(name: string, ours: ArrayLike<number>, ref: ArrayLike<number>, D: number): string {
  assert.equal(ours.length, ref.length, `${name}: ${ours.length} vs ${ref.length} values`);
  const { cos: worstCos, row: worstAt } = minRowCosine(ours, ref, D);
  assert.ok(worstCos >= MINILM_MIN_COS, `${name}: text ${worstAt} has cosine ${worstCos} (< ${MINILM_MIN_COS})`);
  return `${check(name, ours, ref, MINILM_ATOL)}, min cosine 1 - ${(1 - worstCos).toExponential(2)} (row ${worstAt})`;
}

function ms(x: number): string {
  return x >= 1000 ? `${(x / 1000).toFixed(1)} s` : `${x.toFixed(0)} ms`;
}
