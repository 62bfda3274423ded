import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TOPK_MAX_K, topkForward, topkPlan, topkScoresForward } from '../core/kernels/topk.ts';
import { topkRef } from '../core/ref/topk.ts';
import { GpuIndex } from '../core/retrieval/search.ts';
import { cpuSearch } from '../node/bench/search.ts';
import { topkCases, topkChecks } from './cases/topk.ts';
import { evaluate } from './cases/types.ts';
import { randu, registerCases, testGpu } from './helpers.ts';

registerCases('topk', topkCases);

test('topk: the checks reject a result with one clearly worse passage swapped in', () => {
  const Q = 2, N = 500, H = 16, k = 20;
  const q = randu(Q * H, 1), p = randu(N * H, 2);
  const ref = topkRef(q, p, Q, N, H, k);
  const tol = 1e-5;
  const good = { scores: Float32Array.from(ref.scores), ids: Uint32Array.from(ref.ids), k };
  assert.ok(topkChecks(good, ref, Q, N, tol).every((c) => evaluate(c).ok), 'the reference itself passes');
  // replace row 1's 5th best by the passage ranked 300th, keeping the list sorted by score
  const ranked = topkRef(q, p, Q, N, H, 300);
  const bad = { scores: Float32Array.from(good.scores), ids: Uint32Array.from(good.ids), k };
  bad.ids.copyWithin(k + 4, k + 5, 2 * k);
  bad.scores.copyWithin(k + 4, k + 5, 2 * k);
  bad.ids[2 * k - 1] = ranked.ids[300 + 299];
  bad.scores[2 * k - 1] = ranked.scores[300 + 299];
  const failed = topkChecks(bad, ref, Q, N, tol).filter((c) => !evaluate(c).ok).map((c) => c.name);
  assert.ok(failed.some((n) => n.startsWith('set')), `set check failed: ${failed.join(', ')}`);
  assert.ok(failed.includes('scores by rank'), `rank check failed: ${failed.join(', ')}`);
});

test('topk: the order check rejects a tie in the wrong id order', () => {
  const Q = 1, N = 8, H = 1, k = 4;
  const p = Float32Array.of(1, 2, 2, 0, 2, 1, 0, 0);
  const ref = topkRef(Float32Array.of(1), p, Q, N, H, k);
  assert.deepEqual([...ref.ids], [1, 2, 4, 0]);
  const swapped = { scores: Float32Array.from(ref.scores), ids: Uint32Array.of(2, 1, 4, 0), k };
  const failed = topkChecks(swapped, ref, Q, N, 0).filter((c) => !evaluate(c).ok).map((c) => c.name);
  assert.ok(failed.some((n) => n.startsWith('order')), `order check failed: ${failed.join(', ')}`);
});

test('topk: the bench CPU scan (heap) equals the full-sort reference, ties included', () => {
  const Q = 3, N = 2000, H = 8, k = 50;
  const q = randu(Q * H, 3);
  const base = randu(7 * H, 4);
  const p = new Float32Array(N * H);
  for (let j = 0; j < N; j++) p.set(base.subarray((j % 7) * H, (j % 7 + 1) * H), j * H); // heavy ties
  const pieces = [p.subarray(0, 600 * H), p.subarray(600 * H, 601 * H), p.subarray(601 * H)];
  const cpu = cpuSearch(q, Q, pieces, H, k);
  const ref = topkRef(q, p, Q, N, H, k);
  assert.deepEqual([...cpu.ids], [...ref.ids]);
  assert.deepEqual([...cpu.scores], [...ref.scores]);
  assert.equal(cpuSearch(q, Q, [p.subarray(0, 30 * H)], H, k).k, 30); // k > N
});

test('topk: argument errors name the problem', async () => {
  const gpu = await testGpu();
  const idx = await GpuIndex.upload(gpu, randu(100 * 8, 5), 8);
  await assert.rejects(idx.search(randu(8, 6), 0), /k = 0 must be an integer in \[1, 1024\]/);
  await assert.rejects(idx.search(randu(8, 6), TOPK_MAX_K + 1), /k = 1025/);
  await assert.rejects(idx.search(randu(9, 6), 5), /9 query values are not whole rows of 8/);
  idx.release();
  await assert.rejects(idx.search(randu(8, 6), 5), /released/);
  await assert.rejects(GpuIndex.upload(gpu, randu(10, 1), 4), /not whole rows of 4/);
  await assert.rejects(GpuIndex.upload(gpu, [randu(8, 1)], 4, { rows: 3 }), /got 2 rows, 3 announced/);
  await assert.rejects(GpuIndex.upload(gpu, randu(8, 1), 4, { chunkRows: 0 }), /chunkRows 0 must be in/);
  await assert.rejects(GpuIndex.upload(gpu, [], 4), /no vectors/);
  const q = gpu.upload(randu(2 * 8, 1), [2, 8]);
  const c16 = gpu.empty([10, 16]);
  const c8 = gpu.empty([10, 8]);
  const os = gpu.empty([2, 5]), oi = gpu.empty([2, 5], 'u32');
  assert.throws(() => topkForward(gpu, os, oi, q, [c8, c16], 5), /index chunk 1 .*must be \[rows, 8\]/);
  assert.throws(() => topkForward(gpu, os, oi, q, [c8], 6), /outScores: expected shape \[2, 6\], got \[2, 5\]/);
  assert.throws(() => topkForward(gpu, oi, os, q, [c8], 5), /outScores .* must be f32/);
  assert.throws(() => topkScoresForward(gpu, os, oi, c16, 5), /topk scores: outScores: expected shape \[10, 5\], got \[2, 5\]/);
  assert.throws(() => topkPlan(gpu, 4, [100], 8, 5, 4, { block: 3 }), /block 3 must be a positive multiple of 8 passages/);
  for (const t of [q, c16, c8, os, oi]) t.release();
});

test('topk: a plan for 466,387 x 1024 f32 fits the binding limit with 15 chunks of 32,768 rows', async () => {
  const gpu = await testGpu();
  const rows = Array.from({ length: 15 }, (_, i) => (i < 14 ? 32768 : 466387 - 14 * 32768));
  const p = topkPlan(gpu, 64, rows, 1024, 200);
  assert.equal(p.block, 32768);
  assert.equal(p.queryRows, 64);
  assert.ok(p.block * 64 * 4 <= gpu.limits.maxBinding);
  assert.ok(p.scratchBytes < 16 * 2 ** 20, `scratch ${p.scratchBytes}`);
});
