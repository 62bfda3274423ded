// The on-disk index: a build equals embedding the passages directly, a crash resumes without
// redoing finished shards and gives the same bytes, another model is refused, search equals a
// CPU brute force, the browser export is what its manifest says; bad input is one line.
// Model: test/fixtures/tiny-bert (dim 32, 64 tokens); corpus: 40 SciFact papers.

import assert from 'node:assert/strict';
import { cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { queryText } from '../core/data/clean.ts';
import { isCpuAdapter } from '../core/gpu/adapter.ts';
import { f16BitsToF32, f32ToF16Bits } from '../core/model/safetensors.ts';
import { type EmbeddingModel, loadEmbeddingModel } from '../core/retrieval/embed.ts';
import type { GpuIndex } from '../core/retrieval/search.ts';
import {
  decodeVectors,
  encodeVectors,
  parseExportManifest,
  parseExportPassages,
  parseIndexManifest,
  snippet,
} from '../core/retrieval/index-format.ts';
import { readPassages, readQuestions } from '../node/data.ts';
import { localModelFiles } from '../node/files.ts';
import {
  buildIndex,
  type BuildIndexOptions,
  describeModel,
  exportIndex,
  type ModelDescription,
  openIndex,
  readAllVectors,
  retrieve,
  uploadIndex,
} from '../node/index-store.ts';
import { rng } from '../core/data/pairs.ts';
import { tempDir, testGpu, runAqa, assertOneLineError } from './helpers.ts';

const TINY = 'test/fixtures/tiny-bert';
const CORPUS = 'test/fixtures/index/corpus.json';
const QUESTIONS = 'test/fixtures/index/questions.jsonl';
const N = 40;

function tmp(t: TestContext): string {
  return tempDir(t, 'index');
}

let modelPromise: Promise<{ model: EmbeddingModel; desc: ModelDescription }> | null = null;
function tiny() {
  modelPromise ??= (async () => {
    const gpu = await testGpu();
    return { model: await loadEmbeddingModel(gpu, localModelFiles(TINY), TINY), desc: await describeModel(TINY, TINY) };
  })();
  return modelPromise;
}

/** The tiny model behind a counter of embed calls and texts. */
async function counted() {
  const { model } = await tiny();
  const count = { calls: 0, texts: 0 };
  return {
    count,
    loadModel: async () => ({
      dim: model.dim,
      embed: (texts: string[], o?: Parameters<EmbeddingModel['embed']>[1]) => {
        count.calls++;
        count.texts += texts.length;
        return model.embed(texts, o);
      },
    }),
  };
}

async function build(out: string, o: Partial<BuildIndexOptions> = {}) {
  const { desc } = await tiny();
  const c = await counted();
  const r = await buildIndex({ out, corpus: CORPUS, model: desc, loadModel: c.loadModel, batchSize: 8, shardSize: 16, ...o });
  return { ...r, count: c.count };
}

function shardFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.startsWith('shard-')).sort();
}

test('index-format: f32 round trip is exact, f16 within half an ulp, bytes little-endian', () => {
  const x = new Float32Array([0, -0, 1, -1, 0.1, -0.333, 65504, 1e-6, 3e-8, 0.7071067690849304]);
  assert.deepEqual(decodeVectors(encodeVectors(x, 'f32'), 'f32'), x);
  const h = decodeVectors(encodeVectors(x, 'f16'), 'f16');
  for (let i = 0; i < x.length; i++) assert.equal(h[i], f16BitsToF32(f32ToF16Bits(x[i])), `value ${x[i]}`);
  // 1.0 is 0x3c00 in f16: stored low byte first.
  assert.deepEqual([...encodeVectors(new Float32Array([1]), 'f16')], [0x00, 0x3c]);
  assert.deepEqual([...encodeVectors(new Float32Array([1]), 'f32')], [0, 0, 0x80, 0x3f]);
  assert.throws(() => decodeVectors(new Uint8Array(3), 'f16'), /3 bytes are not whole f16 values/);
  // The inline f16 rounding gives f32ToF16Bits's bits on every binade, ties, overflow, subnormals.
  const rand = rng(5);
  const many = new Float32Array(200_000).map(() => (rand() * 2 - 1) * 2 ** Math.floor(rand() * 48 - 30));
  many.set([65504, 65519.99, 65520, 2 ** -14, 2 ** -14 * (1 - 2 ** -12), 2 ** -24, 2 ** -25, 1 + 2 ** -11, 1 + 3 * 2 ** -11, -(1 + 2 ** -11), Infinity, NaN]);
  const enc = new DataView(encodeVectors(many, 'f16').buffer);
  for (let i = 0; i < many.length; i++) assert.equal(enc.getUint16(2 * i, true), f32ToF16Bits(many[i]), `value ${many[i]}`);
  assert.equal(snippet('short abstract'), 'short abstract');
  const long = snippet('word '.repeat(200));
  assert.ok(long.endsWith('...') && long.length <= 303, long);
});

test('build: each f32 shard equals model.embed of its passages bit for bit; rows follow pids.json (corpus order)', async (t) => {
  const out = tmp(t);
  const r = await build(out, { dtype: 'f32' });
  assert.equal(r.built, 3);
  assert.equal(r.count.texts, N, 'every passage embedded once');
  assert.deepEqual(shardFiles(out), ['shard-00000.f32', 'shard-00001.f32', 'shard-00002.f32']);
  const index = await openIndex(out);
  const { passages } = await readPassages(CORPUS);
  assert.deepEqual(index.pids, passages.pids);
  const { model, desc } = await tiny();
  const all = await readAllVectors(index);
  for (const [start, end] of [[0, 16], [16, 32], [32, 40]]) {
    // Same texts, batch size and max length as the build: the same batches, so the same bits.
    const direct = await model.embed(passages.texts.slice(start, end), { batchSize: 8, maxLength: desc.maxLength });
    assert.deepEqual(all.subarray(start * 32, end * 32), direct, `rows [${start}, ${end})`);
  }
  // Nothing but our files: atomic writes leave no temp files behind.
  assert.deepEqual(readdirSync(out).sort(), ['manifest.json', 'pids.json', 'shard-00000.f32', 'shard-00001.f32', 'shard-00002.f32']);
  assert.equal(index.manifest.identity.count, N);
  assert.equal(index.manifest.complete, true);
});

test('build: f16 shards are the f32 vectors rounded to nearest (|err| <= 2^-11 |x| + 2^-25)', async (t) => {
  const a = tmp(t);
  const b = tmp(t);
  await build(a, { dtype: 'f32' });
  await build(b, { dtype: 'f16' });
  const f32 = await readAllVectors(await openIndex(a));
  const f16 = await readAllVectors(await openIndex(b));
  // f16 keeps 11 significant bits: round-to-nearest errs by at most half an ulp = 2^-11 of the
  // value's binade, and below 2^-14 (subnormals) by at most 2^-25. The vectors are unit length,
  // so every component is <= 1 and the error <= 2^-12 = 2.4e-4, inside the 1e-3 a ranking
  // tolerates; the bound checked here is the per-element one, tighter.
  let worst = 0;
  for (let i = 0; i < f32.length; i++) {
    const err = Math.abs(f16[i] - f32[i]);
    worst = Math.max(worst, err);
    assert.ok(err <= 2 ** -11 * Math.abs(f32[i]) + 2 ** -25, `element ${i}: ${f16[i]} vs ${f32[i]}`);
  }
  if (process.env.AQA_TEST_VERBOSE) console.log(`  f16 vs f32 maxdiff ${worst.toExponential(2)}`);
  assert.ok(worst > 0 && worst < 2 ** -12);
});

test('resume: a build stopped after shard 1 finishes with 24 passages embedded, byte-identical shards', async (t) => {
  const ref = tmp(t);
  await build(ref);
  const out = tmp(t);
  const first = await build(out, { stopAfterShards: 1 });
  assert.equal(first.built, 1);
  assert.equal(first.count.texts, 16);
  const m = parseIndexManifest(readFileSync(join(out, 'manifest.json'), 'utf8'));
  assert.equal(m.shards.length, 1);
  assert.equal(m.complete, false);
  await assert.rejects(openIndex(out), /unfinished index \(1 of 3 shards\); run the same aqa index command again/);
  // What a crash in the middle of shard 2 leaves: a temp file of the atomic write, and (crash
  // between the rename and the manifest update) a shard file the manifest does not list.
  writeFileSync(join(out, '.shard-00001.f16.12345.deadbeef.tmp'), 'partial');
  writeFileSync(join(out, 'shard-00001.f16'), 'not listed, so rebuilt');

  const second = await build(out);
  assert.equal(second.kept, 1);
  assert.equal(second.built, 2);
  assert.equal(second.count.texts, 24, 'only shards 2 and 3 embedded');
  assert.deepEqual(readdirSync(out).sort(), readdirSync(ref).sort(), 'temp file removed');
  for (const f of shardFiles(ref)) assert.deepEqual(readFileSync(join(out, f)), readFileSync(join(ref, f)), f);

  const third = await build(out);
  assert.equal(third.built, 0);
  assert.equal(third.count.calls, 0, 'a finished index loads no model and embeds nothing');

  // A damaged listed shard is noticed (sha256) and rebuilt from there on.
  const bytes = readFileSync(join(out, 'shard-00001.f16'));
  bytes[5] ^= 1;
  writeFileSync(join(out, 'shard-00001.f16'), bytes);
  const logs: string[] = [];
  const fourth = await build(out, { log: (l) => logs.push(l) });
  assert.equal(fourth.kept, 1);
  assert.equal(fourth.count.texts, 24);
  assert.ok(logs.some((l) => /shard-00001\.f16: contents differ from the manifest; rebuilding from shard 1/.test(l)), logs.join('\n'));
  for (const f of shardFiles(ref)) assert.deepEqual(readFileSync(join(out, f)), readFileSync(join(ref, f)), f);
});

test('an index built with another model or settings is refused with the differences named; --force rebuilds', async (t) => {
  const out = tmp(t);
  await build(out);
  // Another checkpoint: the same tiny model with one weight byte changed near the end of the file.
  const other = tmp(t);
  cpSync(TINY, other, { recursive: true });
  const w = readFileSync(join(other, 'model.safetensors'));
  w[w.length - 100] ^= 0x40;
  writeFileSync(join(other, 'model.safetensors'), w);
  const desc = await describeModel(other, 'other');
  await assert.rejects(build(out, { model: desc }), (e: Error) => {
    assert.match(e.message, /holds an index built with other settings \(weightsHash: [0-9a-f]{12} vs [0-9a-f]{12}\); use --force to rebuild it/);
    assert.ok(!e.message.includes('\n'));
    return true;
  });
  // Settings too: max length and dtype.
  const shorter = await describeModel(TINY, TINY, 32);
  await assert.rejects(build(out, { model: shorter, dtype: 'f32' }), /maxLength: 64 vs 32; dtype: "f16" vs "f32"/);
  const forced = await build(out, { model: desc, force: true });
  assert.equal(forced.built, 3);
  assert.equal((await openIndex(out)).manifest.identity.weightsHash, desc.fingerprint.weightsHash);
  // The config hash is part of the identity as well.
  const cfg = JSON.parse(readFileSync(join(other, 'config.json'), 'utf8'));
  writeFileSync(join(other, 'config.json'), JSON.stringify({ ...cfg, layer_norm_eps: 1e-6 }));
  await assert.rejects(build(out, { model: await describeModel(other, 'other') }), /\(configSha256: [0-9a-f]{12} vs [0-9a-f]{12}\)/);
});

/** CPU brute force over the stored vectors: float64 dot products, score desc then row asc. */
function bruteForce(index: Float32Array, queries: Float32Array, dim: number, k: number) {
  const n = index.length / dim;
  const out: { rows: number[]; scores: number[]; all: number[] }[] = [];
  for (let q = 0; q < queries.length / dim; q++) {
    const s: number[] = [];
    for (let r = 0; r < n; r++) {
      let d = 0;
      for (let h = 0; h < dim; h++) d += queries[q * dim + h] * index[r * dim + h];
      s.push(d);
    }
    const rows = s.map((_, i) => i).sort((a, b) => s[b] - s[a] || a - b).slice(0, k);
    out.push({ rows, scores: rows.map((r) => s[r]), all: s });
  }
  return out;
}

for (const dtype of ['f32', 'f16'] as const) {
  test(`search (${dtype} index): the GPU top-k equals a CPU brute-force ranking of the stored vectors`, async (t) => {
    const out = tmp(t);
    await build(out, { dtype });
    const index = await openIndex(out);
    const gpu = await testGpu();
    const { model, desc } = await tiny();
    const { questions } = await readQuestions(QUESTIONS);
    // The f16 scan itself, on any adapter with shader-f16 (uploadIndex widens on CPU drivers).
    const half = dtype === 'f16' && gpu.features.has('shader-f16');
    if (half) {
      const d = (await uploadIndex(gpu, index)) as GpuIndex;
      assert.equal(d.dtype, isCpuAdapter(gpu) ? 'f32' : 'f16', 'by default an f16 index is widened on CPU drivers only');
      d.release();
    }
    const g = await uploadIndex(gpu, index, half ? { dtype: 'f16' } : {});
    try {
      assert.equal(g.dtype, half ? 'f16' : 'f32');
      const k = 25;
      const r = await retrieve(model, g, index.pids, questions, { k, batchSize: 8, maxLength: desc.maxLength });
      const q = await model.embed(questions.map((x) => queryText(x)), { query: true, batchSize: 8, maxLength: desc.maxLength });
      const ref = bruteForce(await readAllVectors(index), q, 32, k);
      let worst = 0;
      // f32 dot products of unit vectors (the f16 ones are widened exactly): the rounding error
      // is at most dim * 2^-24 * sum|q_h p_h| <= 32 * 6e-8 = 1.9e-6. So two papers whose exact
      // scores are closer than that may come in either order; any other difference is a bug.
      const tol = 1.9e-6;
      let swapped = 0;
      questions.forEach((_, i) => {
        const exact = new Map(ref[i].all.map((s, row) => [index.pids[row], s]));
        assert.equal(new Set(r.pids[i]).size, k, `question ${i + 1}: repeated pids`);
        for (let j = 0; j < k; j++) {
          const pid = r.pids[i][j];
          worst = Math.max(worst, Math.abs(r.scores[i][j] - exact.get(pid)!));
          // The paper at rank j has the j-th best exact score, up to the rounding bound.
          assert.ok(Math.abs(exact.get(pid)! - ref[i].scores[j]) <= 2 * tol, `question ${i + 1} rank ${j + 1}: ${pid} scores ${exact.get(pid)}, the rank's exact score is ${ref[i].scores[j]}`);
          if (pid !== index.pids[ref[i].rows[j]]) swapped++;
        }
      });
      if (process.env.AQA_TEST_VERBOSE) console.log(`  score maxdiff ${worst.toExponential(2)}, ${swapped} rank(s) swapped among near-ties`);
      assert.ok(worst <= tol, `score maxdiff ${worst}`);
      assert.ok(swapped <= 4, `${swapped} ranks differ from the exact order`);
    } finally {
      g.release();
    }
  });
}

test('export: vector files are the shards byte for byte, manifest and passages.json parse and line up with pids', async (t) => {
  const out = tmp(t);
  await build(out);
  const ex = tmp(t);
  const index = await openIndex(out);
  const r = await exportIndex(index, ex, CORPUS);
  assert.equal(r.missing, 0);
  const m = parseExportManifest(readFileSync(join(ex, 'manifest.json'), 'utf8'));
  assert.deepEqual(
    m.files.map((f) => [f.file, f.start, f.rows]),
    [['vectors-00000.f16', 0, 16], ['vectors-00001.f16', 16, 16], ['vectors-00002.f16', 32, 8]],
  );
  assert.equal(m.dim, 32);
  assert.equal(m.model.pooling, 'cls');
  m.files.forEach((f, i) => assert.deepEqual(readFileSync(join(ex, f.file)), readFileSync(join(out, `shard-0000${i}.f16`))));
  const ps = parseExportPassages(readFileSync(join(ex, 'passages.json'), 'utf8'), m.count);
  assert.deepEqual(ps.map((p) => p.pid), index.pids);
  const corpus = JSON.parse(readFileSync(CORPUS, 'utf8'));
  for (const p of ps) {
    assert.equal(p.title, corpus[p.pid].title);
    assert.ok(corpus[p.pid].abstract.startsWith(p.snippet.replace(/\.\.\.$/, '')), p.pid);
    assert.ok(p.snippet.length <= 303);
  }
  assert.deepEqual(readdirSync(ex).sort(), ['manifest.json', 'passages.json', 'vectors-00000.f16', 'vectors-00001.f16', 'vectors-00002.f16']);
});

test('bad input: missing or malformed corpus, not an index, broken manifest: one line naming the file', async (t) => {
  const out = tmp(t);
  await assert.rejects(build(out, { corpus: join(out, 'nope.json') }), /nope\.json: cannot read \(ENOENT\)/);
  // A malformed entry: the corpus reader names file and line.
  await assert.rejects(build(out, { corpus: 'test/fixtures/data/corpus-bad-entry.json' }), /corpus-bad-entry\.json:\d+: paper "/);
  await assert.rejects(openIndex(join(out, 'none')), /none: no such index directory \(build one with aqa index --out/);
  await assert.rejects(openIndex(out), /not an index \(no manifest\.json\)/);
  writeFileSync(join(out, 'manifest.json'), '{"format": "aqa-index", "version": 1}');
  await assert.rejects(openIndex(out), /manifest\.json: identity: missing/);
  await assert.rejects(build(out), /manifest\.json: identity: missing; use --force to replace this index/);
  const ok = tmp(t);
  await build(ok);
  const text = readFileSync(join(ok, 'manifest.json'), 'utf8');
  assert.throws(() => parseIndexManifest(text.replace('"rows": 16', '"rows": 15'), 'm.json'), /m\.json: shards\[0\]: rows \[0, 15\) but shard 0 must hold \[0, 16\)/);
  assert.throws(() => parseIndexManifest(text.replace('"complete": true', '"complete": false'), 'm.json'), /complete: false but 3 of 3 shards are listed/);
  writeFileSync(join(ok, 'pids.json'), '["a"]');
  await assert.rejects(openIndex(ok), /pids\.json: 1 pids, the manifest says 40/);
});

// ---- through the real command line ----

test('aqa index killed after shard 1 resumes on rerun; aqa search writes results and prints metrics', (t) => {
  const d = tmp(t);
  const out = join(d, 'idx');
  const base = ['index', '--model', TINY, '--corpus', CORPUS, '--out', out, '--shard-size', '16', '--batch-size', '8'];
  const killed = runAqa(base, { AQA_INDEX_STOP_AFTER_SHARDS: '1' });
  assert.equal(killed.signal, 'SIGKILL', killed.stderr);
  assert.equal(parseIndexManifest(readFileSync(join(out, 'manifest.json'), 'utf8')).shards.length, 1);
  const resumed = runAqa([...base, '--export', join(d, 'web')]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /1 of 3 shards already built/);
  assert.match(resumed.stderr, /indexed 24 passages/);
  assert.match(resumed.stderr, /exported 40 x 32 f16/);

  const results = join(d, 'results.jsonl');
  const s = runAqa(['search', '--index', out, '--questions', QUESTIONS, '--out', results, '--k', '40']);
  assert.equal(s.code, 0, s.stderr);
  assert.match(s.stdout, /^official MAP@20 \d\.\d{4} \| MAP@20 \d\.\d{4} \| R@20 \d\.\d{4} \| R@100 1\.0000 .*\(n=20\)/);
  const lines = readFileSync(results, 'utf8').trim().split('\n');
  assert.equal(lines.length, 20);
  for (const l of lines) {
    const scores = Object.values(JSON.parse(l) as Record<string, number>);
    assert.equal(scores.length, 40);
  }

  assertOneLineError(runAqa(['search', '--index', join(d, 'missing'), '--questions', QUESTIONS, '--out', results]), 'missing: no such index directory');
  assertOneLineError(runAqa(['search', '--index', out, '--questions', 'test/fixtures/data/questions-bad.jsonl', '--out', results]), 'questions-bad.jsonl:');
  assertOneLineError(runAqa([...base, '--max-length', '32']), 'maxLength: 64 vs 32', '--force');
  const groups = join(d, 'groups.jsonl');
  const mined = runAqa(['mine', '--index', out, '--questions', QUESTIONS, '--out', groups, '--range', '1-20', '--negatives', '3']);
  assert.equal(mined.code, 0, mined.stderr);
  assert.match(mined.stderr, /23 groups: 69 hard negatives from positions 1-20/);
  assert.equal(readFileSync(groups, 'utf8').trim().split('\n').length, 23);
  assertOneLineError(runAqa(['mine', '--index', out, '--questions', QUESTIONS, '--out', groups, '--range', '20-1']), '--range: END must be greater than START');
  assertOneLineError(runAqa(['index', '--model', TINY, '--corpus', join(d, 'none.json'), '--out', join(d, 'x')]), 'none.json: cannot read');
});

test('aqa search warns about and counts gold pids missing from the index', (t) => {
  const d = tmp(t);
  const out = join(d, 'idx');
  assert.equal(runAqa(['index', '--model', TINY, '--corpus', CORPUS, '--out', out]).code, 0);
  const qs = join(d, 'q.jsonl');
  writeFileSync(qs, `${readFileSync(QUESTIONS, 'utf8')}{"question": "x", "body": "", "pids": ["nope1", "nope2"]}\n`);
  const s = runAqa(['search', '--index', out, '--questions', qs, '--out', join(d, 'r.jsonl'), '--k', '20']);
  assert.equal(s.code, 0, s.stderr);
  assert.match(s.stderr, /warning: 2 gold pid\(s\) of 1 question\(s\) are not in the index \(1 question\(s\) have none left\)/);
  assert.match(s.stderr, /question 21: pids: nope1, nope2 not in the corpus/);
  assert.match(s.stdout, /\(n=21\)/);
});
