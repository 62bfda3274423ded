// LanceDB export and search (node/lancedb/): the round trip of a small index, exact LanceDB
// search against our GPU top-k on the same vectors, the ANN indexes on a small synthetic set,
// and the one-line refusals. One tiny-bert index of the 40-paper fixture corpus is built and
// exported once for the whole file.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { GpuIndex } from '../core/retrieval/search.ts';
import { annParams } from '../node/lancedb/ann.ts';
import { searchLance } from '../node/lancedb/search.ts';
import { exportToLance, lanceModules, openLance } from '../node/lancedb/table.ts';
import { IndexError, openIndex, readAllVectors } from '../node/index-store.ts';
import { assertOneLineError, runAqa, tempDir, testGpu } from './helpers.ts';

const TINY = 'test/fixtures/tiny-bert';
const CORPUS = 'test/fixtures/index/corpus.json';
const QUESTIONS = 'test/fixtures/index/questions.jsonl';
/**
 * Score tolerance of exact LanceDB search against the GPU top-k: both read the same f32 values
 * (the f16 -> f32 widening is exact) and sum 32 products in f32 in another order, and LanceDB
 * returns 1 - q.v in f32, so the two differ by a few f32 ulps of 1 (6e-8 each).
 */
const SCORE_TOL = 1e-6;

const dir = tempDir({ after: (fn: () => void) => process.on('exit', fn) }, 'lancedb');
let built: { index: string; db: string; stderr: string } | null = null;
function exported() {
  if (built) return built;
  const index = join(dir, 'idx');
  const db = join(dir, 'db');
  const r = runAqa(['index', '--model', TINY, '--corpus', CORPUS, '--out', index, '--export-lancedb', db, '--lancedb-ann', 'ivf-pq']);
  assert.equal(r.code, 0, r.stderr);
  built = { index, db, stderr: r.stderr };
  return built;
}

/** Same pids in the same order, except that pids with equal scores may swap; scores within tol. */
function assertSameRanking(what: string, a: { pids: string[]; scores: number[] }, b: { pids: string[]; scores: number[] }): void {
  assert.equal(a.pids.length, b.pids.length, what);
  for (let i = 0; i < a.pids.length; i++) {
    assert.ok(Math.abs(a.scores[i] - b.scores[i]) <= SCORE_TOL, `${what}: rank ${i}: score ${a.scores[i]} vs ${b.scores[i]}`);
    if (a.pids[i] !== b.pids[i]) {
      const tie = (p: string, s: { pids: string[]; scores: number[] }) => Math.abs(s.scores[s.pids.indexOf(p)] - a.scores[i]) <= SCORE_TOL;
      assert.ok(tie(b.pids[i], a) && tie(a.pids[i], b), `${what}: rank ${i}: ${a.pids[i]} vs ${b.pids[i]} with different scores`);
    }
  }
}

test('export: the table holds pid, title and vector in index order, and the index identity', async () => {
  const e = exported();
  assert.match(e.stderr, /exported 40 x 32 to LanceDB/);
  assert.match(e.stderr, /40 rows, fewer than 1024: no ANN index built/);
  const index = await openIndex(e.index);
  const src = await openLance(e.db);
  try {
    assert.deepEqual(src.manifest.identity, index.manifest.identity);
    assert.equal(src.annMetric, null);
    const rows = await src.table.query().select(['pid', 'title', 'vector']).toArray();
    const corpus = JSON.parse(readFileSync(CORPUS, 'utf8')) as Record<string, { title: string }>;
    const vectors = await readAllVectors(index);
    assert.deepEqual(
      rows.map((r) => r.pid),
      index.pids,
    );
    for (let i = 0; i < rows.length; i++) {
      assert.equal(rows[i].title, corpus[index.pids[i]].title.trim());
      assert.deepEqual(Float32Array.from(rows[i].vector as Iterable<number>), vectors.subarray(i * 32, (i + 1) * 32));
    }
  } finally {
    src.close();
  }
});

test('exact LanceDB search ranks like the GPU top-k on the same vectors', async () => {
  const e = exported();
  const index = await openIndex(e.index);
  const vectors = await readAllVectors(index);
  // Queries: every indexed vector (its own row wins) and 8 seeded random directions.
  const nq = 48;
  const q = new Float32Array(nq * 32);
  q.set(vectors);
  let s = 7;
  for (let i = vectors.length; i < q.length; i++) q[i] = ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  const k = 40;
  const gpu = await testGpu();
  const g = await GpuIndex.upload(gpu, vectors, 32);
  const src = await openLance(e.db);
  try {
    const ours = await g.search(q, k);
    const lance = await searchLance(src, q, k);
    for (let i = 0; i < nq; i++) {
      const o = { pids: Array.from(ours.ids.subarray(i * k, (i + 1) * k), (id) => index.pids[id]), scores: Array.from(ours.scores.subarray(i * k, (i + 1) * k)) };
      assertSameRanking(`query ${i}`, { pids: lance.pids[i], scores: lance.scores[i] }, o);
    }
  } finally {
    g.release();
    src.close();
  }
});

test('search --lancedb writes the results and metrics of search --index', (t) => {
  const e = exported();
  const d = tempDir(t, 'lancedb-search');
  const viaLance = runAqa(['search', '--lancedb', e.db, '--questions', QUESTIONS, '--out', join(d, 'l.jsonl'), '--k', '10']);
  assert.equal(viaLance.code, 0, viaLance.stderr);
  const viaIndex = runAqa(['search', '--index', e.index, '--questions', QUESTIONS, '--out', join(d, 'g.jsonl'), '--k', '10']);
  assert.equal(viaIndex.code, 0, viaIndex.stderr);
  const read = (f: string) =>
    readFileSync(join(d, f), 'utf8')
      .trim()
      .split('\n')
      .map((l) => Object.entries(JSON.parse(l) as Record<string, number>));
  const l = read('l.jsonl');
  const g = read('g.jsonl');
  assert.equal(l.length, 20);
  l.forEach((row, i) => assertSameRanking(`question ${i + 1}`, { pids: row.map((x) => x[0]), scores: row.map((x) => x[1]) }, { pids: g[i].map((x) => x[0]), scores: g[i].map((x) => x[1]) }));
  assert.match(viaLance.stdout, /official MAP@20 .*\(n=20\)/);
  assert.equal(viaLance.stdout, viaIndex.stdout);
});

test('search --lancedb refuses another model, a missing table, --ann without an ANN index, and a foreign table', async (t) => {
  const e = exported();
  const d = tempDir(t, 'lancedb-errors');
  const other = join(d, 'other-model');
  cpSync(TINY, other, { recursive: true });
  const cfg = JSON.parse(readFileSync(join(other, 'config.json'), 'utf8'));
  writeFileSync(join(other, 'config.json'), JSON.stringify({ ...cfg, note: 'another model' }));
  const out = join(d, 'r.jsonl');
  assertOneLineError(runAqa(['search', '--lancedb', e.db, '--model', other, '--questions', QUESTIONS, '--out', out]), 'not the model', 'config.json');
  assertOneLineError(runAqa(['search', '--lancedb', join(d, 'nowhere'), '--questions', QUESTIONS, '--out', out]), join(d, 'nowhere'), 'no table "passages"');

  const oneLine = async (p: Promise<unknown>, ...parts: string[]) => {
    const err = await p.then(
      () => assert.fail('expected an error'),
      (x: Error) => x,
    );
    assert.ok(err instanceof IndexError, String(err));
    assert.ok(!err.message.includes('\n'), err.message);
    for (const s of parts) assert.ok(err.message.includes(s), `'${err.message}' should mention '${s}'`);
  };
  await oneLine(openLance(e.db, 'nope'), 'no table "nope"', 'tables: passages');
  const src = await openLance(e.db);
  await oneLine(searchLance(src, new Float32Array(32), 5, { ann: true }), 'no ANN index');
  src.close();
  const { lance } = await lanceModules();
  const db = await lance.connect(e.db);
  (await db.createTable('plain', [{ pid: 'a', vector: [1, 0] }], { mode: 'overwrite' })).close();
  db.close();
  await oneLine(openLance(e.db, 'plain'), 'table plain', 'not a table written by aqa index --export-lancedb');
});

test('ANN indexes (IVF-PQ, HNSW) on a 1,500-row mixture find most of the exact top 10', async (t) => {
  const d = tempDir(t, 'lancedb-ann');
  const syn = join(d, 'syn');
  const g = spawnSync(process.execPath, ['--import', 'tsx', 'tools/synthetic-vectors.ts', '--out', syn, '--rows', '1500', '--dim', '32', '--clusters', '15', '--topics', '3', '--queries', '20'], { encoding: 'utf8' });
  assert.equal(g.status, 0, g.stderr);
  const index = await openIndex(syn);
  const { readNpy } = await import('../node/npy.ts');
  const q = (await readNpy(join(syn, 'queries.npy'))).data;
  for (const kind of ['ivf-pq', 'hnsw'] as const) {
    const db = join(d, `db-${kind}`);
    const r = await exportToLance(index, db, { ann: annParams(kind, 1500, 32) });
    assert.ok(r.ann, kind);
    const src = await openLance(db);
    try {
      assert.equal(src.annMetric, kind === 'hnsw' ? 'cosine' : 'dot');
      const exact = await searchLance(src, q, 10);
      // Every IVF partition probed (sqrt(1500) = 39) and 10 x k candidates re-ranked: what is
      // left to approximation is the PQ/SQ candidate choice.
      const ann = await searchLance(src, q, 10, { ann: true, nprobes: 39, ef: 100, refineFactor: 10 });
      let hit = 0;
      for (let i = 0; i < 20; i++) hit += ann.pids[i].filter((p) => exact.pids[i].includes(p)).length;
      // Measured: IVF-PQ 0.905 (4 sub-vectors of 8 bits at dim 32 are coarse), HNSW 1.0; a
      // wrong metric (HNSW-SQ with "dot") gave about 0.05.
      assert.ok(hit / 200 >= (kind === 'hnsw' ? 0.9 : 0.8), `${kind}: recall@10 ${hit / 200}`);
    } finally {
      src.close();
    }
  }
});
