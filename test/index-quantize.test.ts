// Compressed index forms on the tiny model (test/fixtures/tiny-bert, dim 32; 40 SciFact papers
// in 3 shards): aqa index --quantize adds int8 / binary files to a finished index without
// re-embedding, search with enough rescoring equals the full-vector search, a stale or missing
// form is a one-line error, and the browser export carries the default form.

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseExportManifest, parseIndexManifest } from '../core/retrieval/index-format.ts';
import { uploadExportQuantized } from '../core/retrieval/quantize-export.ts';
import { QuantizedIndex } from '../core/retrieval/quantize-search.ts';
import { GpuIndex } from '../core/retrieval/search.ts';
import { loadEmbeddingModel } from '../core/retrieval/embed.ts';
import { readQuestions } from '../node/data.ts';
import { localModelFiles } from '../node/files.ts';
import { quantizeIndex, uploadQuantized } from '../node/index-quantize.ts';
import { buildIndex, describeModel, openIndex, retrieve, uploadIndex } from '../node/index-store.ts';
import { assertOneLineError, runAqa, tempDir, testGpu } from './helpers.ts';

const TINY = 'test/fixtures/tiny-bert';
const CORPUS = 'test/fixtures/index/corpus.json';
const QUESTIONS = 'test/fixtures/index/questions.jsonl';

test('index --quantize: forms from the stored shards, rescored search equals the full one', async (t) => {
  const out = tempDir(t, 'quantize');
  const gpu = await testGpu();
  const model = await loadEmbeddingModel(gpu, localModelFiles(TINY), TINY);
  const desc = await describeModel(TINY, TINY);
  let embedded = 0;
  const loadModel = async () => ({ dim: model.dim, embed: (x: string[], o?: Parameters<typeof model.embed>[1]) => ((embedded += x.length), model.embed(x, o)) });
  await buildIndex({ out, corpus: CORPUS, model: desc, loadModel, batchSize: 8, shardSize: 16, dtype: 'f32' });
  embedded = 0;
  const logs: string[] = [];
  const int8 = await quantizeIndex(await openIndex(out), 'int8', undefined, (l) => logs.push(l));
  const bin = await quantizeIndex(await openIndex(out), 'binary', undefined, (l) => logs.push(l));
  assert.ok(int8.built && bin.built);
  assert.deepEqual(int8.form.files.map((f) => f.bytes), [16 * 32, 16 * 32, 8 * 32]); // 8 words of 4 codes a row
  assert.deepEqual(bin.form.files.map((f) => f.bytes), [16 * 4, 16 * 4, 8 * 4]); // 1 word of 32 bits a row
  const m = parseIndexManifest(readFileSync(join(out, 'manifest.json'), 'utf8'));
  assert.deepEqual(m.quantized?.map((q) => [q.kind, q.rescore]), [['binary', 10], ['int8', 4]], 'the latest first, default factors');
  // Again: up to date, nothing rewritten; a rebuild of the (unchanged) shards keeps the forms.
  assert.equal((await quantizeIndex(await openIndex(out), 'binary', undefined, () => {})).built, false);
  await buildIndex({ out, corpus: CORPUS, model: desc, loadModel, batchSize: 8, shardSize: 16, dtype: 'f32' });
  assert.equal(embedded, 0, 'nothing re-embedded');
  assert.equal(parseIndexManifest(readFileSync(join(out, 'manifest.json'), 'utf8')).quantized?.length, 2);

  const { questions } = await readQuestions(QUESTIONS);
  const index = await openIndex(out);
  const full = (await uploadIndex(gpu, { ...index, use: 'full' })) as GpuIndex;
  assert.ok(full instanceof GpuIndex);
  const k = 10;
  const want = await retrieve(model, full, index.pids, questions, { k, batchSize: 8, maxLength: desc.maxLength });
  full.release();
  for (const kind of ['int8', 'binary'] as const) {
    // every row a candidate: exactly the full search (scores: f32 sums on the GPU vs rounded float64)
    const all = await uploadQuantized(gpu, index, kind, 4);
    assert.equal(all.bytes, kind === 'int8' ? 40 * 32 : 40 * 4);
    const got = await retrieve(model, all, index.pids, questions, { k, batchSize: 8, maxLength: desc.maxLength });
    all.release();
    assert.deepEqual(got.pids, want.pids, kind);
    got.scores.flat().forEach((s, i) => assert.ok(Math.abs(s - want.scores.flat()[i]) < 1e-5, `${kind} score ${i}`));
  }
  const def = await uploadIndex(gpu, index);
  assert.ok(def instanceof QuantizedIndex && def.kind === 'binary', 'the default is the latest form');
  def.release();
});

test('aqa index --quantize / search --use: CLI round trip, export, and one-line errors', async (t) => {
  const d = tempDir(t, 'quantize-cli');
  const out = join(d, 'index');
  const base = ['--model', TINY, '--corpus', CORPUS, '--out', out, '--max-length', '32', '--shard-size', '16'];
  const b = runAqa(['index', ...base, '--quantize', 'binary', '--rescore', '40', '--export', join(d, 'export')]);
  assert.equal(b.code, 0, b.stderr);
  assert.match(b.stderr, /binary form: 3 file\(s\), 160 bytes/);
  const e = parseExportManifest(readFileSync(join(d, 'export', 'manifest.json'), 'utf8'));
  assert.deepEqual([e.quantized?.kind, e.quantized?.rescore, e.quantized?.files.map((f) => f.file)], ['binary', 40, ['codes-00000.bin', 'codes-00001.bin', 'codes-00002.bin']]);
  assert.ok(existsSync(join(d, 'export', 'codes-00002.bin')));
  const search = (use: string, file: string) => runAqa(['search', '--index', out, '--questions', QUESTIONS, '--out', join(d, file), '--k', '5', '--use', use]);
  const q = search('binary', 'bin.jsonl');
  assert.equal(q.code, 0, q.stderr);
  assert.match(q.stderr, /index on the GPU: 40 x 32 binary \(160 B\)/);
  assert.equal(search('full', 'full.jsonl').code, 0);
  // Best first by score (numeric pid keys come back from JSON.parse in ascending order).
  const ids = (f: string) => readFileSync(join(d, f), 'utf8').trim().split('\n').map((l) => Object.entries(JSON.parse(l) as Record<string, number>).sort((a, b) => b[1] - a[1]).map(([p]) => p));
  assert.deepEqual(ids('bin.jsonl'), ids('full.jsonl'));
  assertOneLineError(search('int8', 'x.jsonl'), out, 'has no int8 form', 'aqa index --quantize int8');

  // The demo's path: codes fetched whole, rows for rescoring by ranged reads of the vector files.
  const gpu = await testGpu();
  let fetched = 0;
  const g = await uploadExportQuantized(gpu, e, localModelFiles(join(d, 'export')), { onBytes: (n) => (fetched += n) });
  const model = await loadEmbeddingModel(gpu, localModelFiles(TINY), TINY);
  const { questions } = await readQuestions(QUESTIONS);
  const r = await retrieve(model, g, JSON.parse(readFileSync(join(d, 'export', 'passages.json'), 'utf8')).map((p: { pid: string }) => p.pid), questions, { k: 5, batchSize: 8, maxLength: (await describeModel(TINY, TINY)).maxLength });
  g.release();
  assert.equal(fetched, 160, 'only the codes are fetched whole');
  assert.deepEqual(r.pids, ids('full.jsonl'));
});
