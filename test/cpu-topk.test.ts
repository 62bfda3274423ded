// core/retrieval/cpu-topk.ts, the demo's search where the browser has no WebGPU: against the
// brute-force reference (core/ref/topk.ts: every score, then a full sort), with the scores
// rounded to f32 first as cpuTopK ranks them. Ties by smaller id, k larger than the index,
// k = 1, several queries, and the SearchIndex contract retrieve() relies on.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { scoresRef, topkScoresRef } from '../core/ref/topk.ts';
import { CpuIndex, cpuTopK } from '../core/retrieval/cpu-topk.ts';
import { retrieve } from '../core/retrieval/retrieve.ts';
import { randu } from '../core/util/random.ts';

function reference(q: Float32Array, p: Float32Array, H: number, k: number) {
  const Q = q.length / H;
  const N = p.length / H;
  const all = scoresRef(q, p, Q, N, H).scores.map(Math.fround);
  return topkScoresRef(all, Q, N, k);
}

function check(q: Float32Array, p: Float32Array, H: number, k: number): void {
  const got = cpuTopK(q, p, H, k);
  const want = reference(q, p, H, k);
  assert.equal(got.k, want.k);
  assert.deepEqual([...got.ids], [...want.ids], `ids, k ${k}`);
  assert.deepEqual([...got.scores], [...want.scores], `scores, k ${k}`);
}

test('cpuTopK equals the brute-force reference: random rows, several queries, k = 1, 7, 200', () => {
  const H = 24;
  const p = randu(500 * H, 1);
  const q = randu(3 * H, 2);
  for (const k of [1, 7, 200]) check(q, p, H, k);
});

test('cpuTopK: equal scores rank by smaller row id, also across the k-th place', () => {
  const H = 8;
  const base = randu(5 * H, 3);
  const p = new Float32Array(400 * H);
  for (let j = 0; j < 400; j++) p.set(base.subarray(((j * 3) % 5) * H, (((j * 3) % 5) + 1) * H), j * H); // 80 copies of each row
  const q = randu(2 * H, 4);
  for (const k of [1, 50, 81, 160]) check(q, p, H, k);
  // A row of zeros and its copies tie at 0 exactly, -0 included.
  const z = Float32Array.of(0, 0, -0, 0, 0, 0);
  const r = cpuTopK(Float32Array.of(1, -1), z, 2, 2);
  assert.deepEqual([...r.ids], [0, 1]);
});

test('cpuTopK: k larger than the index gives every row, best first', () => {
  const H = 4;
  const p = randu(6 * H, 5);
  const q = randu(H, 6);
  const r = cpuTopK(q, p, H, 200);
  assert.equal(r.k, 6);
  assert.deepEqual([...r.ids].sort(), [0, 1, 2, 3, 4, 5]);
  check(q, p, H, 200);
});

test('cpuTopK: argument errors name the problem', () => {
  assert.throws(() => cpuTopK(new Float32Array(3), new Float32Array(4), 2, 1), /not whole rows of 2/);
  assert.throws(() => cpuTopK(new Float32Array(2), new Float32Array(4), 2, 0), /k = 0/);
  assert.throws(() => cpuTopK(new Float32Array(2), new Float32Array(0), 2, 1), /the index is empty/);
});

test('CpuIndex: built from pieces, searched through retrieve() as a GpuIndex would be', async () => {
  const H = 8;
  const p = randu(50 * H, 7);
  const pieces = [p.subarray(0, 20 * H), p.subarray(20 * H)];
  const index = await CpuIndex.fromPieces(pieces, H, 50);
  assert.equal(index.count, 50);
  const q = randu(H, 8);
  const pids = Array.from({ length: 50 }, (_, i) => `p${i}`);
  const model = { dim: H, embed: async () => q };
  const r = await retrieve(model, index, pids, [{ question: 'anything' }], { k: 5 });
  const want = reference(q, p, H, 5);
  assert.deepEqual(r.pids[0], [...want.ids].map((i) => `p${i}`));
  await assert.rejects(CpuIndex.fromPieces([p], H, 49), /more than the 49 rows/);
});
