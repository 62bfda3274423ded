import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isCpuAdapter } from '../core/gpu/adapter.ts';
import { chunkRows } from '../core/gpu/launch.ts';
import { CPU_TILE, colsum, defaultMatmulTile, denseBackward, denseForward, linear, matmul } from '../core/kernels/matmul.ts';
import { transpose } from '../core/kernels/transpose.ts';
import { matmulCases } from './cases/matmul.ts';
import { registerCases, registerF16RefusalTest, testGpu } from './helpers.ts';
import { parsePrecisions } from '../node/bench/matmul.ts';

registerCases('matmul', matmulCases);
registerF16RefusalTest('matmul', matmulCases, 40);

test('matmul: shape errors name the operand and both shapes', async () => {
  const gpu = await testGpu();
  const t = (shape: number[]) => gpu.empty(shape);
  const a = t([4, 6]), b = t([5, 7]), out = t([4, 7]);
  assert.throws(() => matmul(gpu, out, a, b), /inner dims differ: op\(a\) \[4, 6\] from a \[4, 6\], op\(b\) \[5, 7\] from b \[5, 7\]/);
  assert.throws(() => matmul(gpu, t([4, 8]), a, t([6, 7])), /matmul: out .*expected shape \[4, 7\], got \[4, 8\]/);
  assert.throws(() => matmul(gpu, t([4, 7]), a, t([6, 7]), { bias: t([6]) }), /bias .*expected shape \[7\], got \[6\]/);
  assert.throws(() => matmul(gpu, t([2, 4, 7]), t([2, 4, 6]), t([3, 6, 7])), /batched b \[3, 6, 7\] must have the leading dims of a \[2, 4, 6\]/);
  assert.throws(() => matmul(gpu, out, t([6]), b), /a \[6\] must have at least 2 dims/);
  assert.throws(() => linear(gpu, t([4, 7]), a, t([7, 5])), /inner dims differ.*transB/);
  assert.throws(() => matmul(gpu, out, a, t([6, 7]), { tile: { ...CPU_TILE, unrolled: false, tm: 3 } }), /multiples of 4/);
  assert.throws(() => matmul(gpu, out, a, t([6, 7]), { tile: { ...CPU_TILE, tm: 16 } }), /unrolled is the 8x8 register variant/);
  const big = t([8, 8]);
  assert.throws(() => matmul(gpu, big, big.reshape([8, 8]), t([8, 8])), /shares its GPU buffer with a/);
  assert.throws(() => transpose(gpu, t([4, 6]), a), /transpose: out .*expected shape \[6, 4\], got \[4, 6\]/);
  assert.throws(() => transpose(gpu, t([6]), t([6])), /a \[6\] must have at least 2 dims/);
  assert.throws(() => transpose(gpu, big, big), /shares its GPU buffer with a/);
});

test('bench matmul: --precision takes f32 and f16, anything else is a one-line error', () => {
  assert.deepEqual(parsePrecisions('f32,f16'), ['f32', 'f16']);
  assert.deepEqual(parsePrecisions(' f16 '), ['f16']);
  assert.throws(() => parsePrecisions('f32,bf16'), /^Error: --precision: 'bf16' is not f32 or f16 \(comma-separated, e\.g\. f32,f16\)$/);
});

test('matmul: b over the binding limit is an error, not a truncation', async () => {
  const gpu = await testGpu();
  const a = gpu.empty([8, 64]), b = gpu.empty([64, 64]), out = gpu.empty([8, 64]);
  assert.throws(() => matmul(gpu, out, a, b, { maxBinding: 8192 }), /b \[64, 64\] is 16384 bytes, over the 8192-byte storage binding limit/);
});

test('matmul: chunkRows keeps chunks under the limit and aligned for every operand', () => {
  assert.equal(chunkRows([256, 96], 8192, 256), 32);
  // 4 KiB rows (N = 1024 f32) and 16 KiB rows (K = 4096): 128 MiB / 16 KiB = 8192 rows
  assert.equal(chunkRows([4096, 16384], 128 * 2 ** 20, 256), 8192);
  const r = chunkRows([132, 68], 100_000, 256); // odd row sizes: step lcm(64, 64) = 64
  assert.equal(r % 64, 0);
  assert.ok(r * 132 <= 100_000);
  assert.throws(() => chunkRows([132], 4096, 256), /cannot be chunked/);
});

test('matmul: default tile follows the adapter', async () => {
  const gpu = await testGpu();
  const tile = defaultMatmulTile(gpu);
  assert.equal(tile.shared, !isCpuAdapter(gpu));
  if (/llvmpipe|swiftshader/i.test(gpu.name)) assert.equal(tile.shared, false);
});

test('dense: shape errors name the operand and the expected shape', async () => {
  const gpu = await testGpu();
  const t = (shape: number[]) => gpu.empty(shape);
  const x = t([2, 3, 6]), wt = t([6, 4]), dy = t([2, 3, 4]);
  assert.throws(() => denseForward(gpu, t([2, 3, 4]), x, t([4, 6, 1]), null), /dense: wt \[4, 6, 1\] must be 2-D \[in, out\]/);
  assert.throws(() => denseForward(gpu, t([2, 3, 5]), x, wt, null), /matmul: out .*expected shape \[2, 3, 4\], got \[2, 3, 5\]/);
  assert.throws(() => denseBackward(gpu, {}, dy, t([2, 3, 5]), wt), /x \[2, 3, 5\] must be \[\.\.\., 6\] for wt \[6, 4\]/);
  assert.throws(() => denseBackward(gpu, {}, t([3, 2, 4]), x, wt), /dy .*expected shape \[2, 3, 4\], got \[3, 2, 4\]/);
  assert.throws(() => denseBackward(gpu, { dx: t([6, 6]) }, dy, x, wt), /dx \(the shape of x\): expected shape \[2, 3, 6\]/);
  assert.throws(() => denseBackward(gpu, { dwt: t([4, 6]) }, dy, x, wt), /dwt \(the shape of wt\): expected shape \[6, 4\], got \[4, 6\]/);
  assert.throws(() => denseBackward(gpu, { db: t([6]) }, dy, x, wt), /db: expected shape \[4\], got \[6\]/);
  assert.throws(() => colsum(gpu, t([4]), dy, { blockRows: 1 }), /blockRows must be an integer >= 2/);
  assert.throws(() => colsum(gpu, dy.reshape([24]).rows(0, 4), dy), /shares its GPU buffer with x/);
});

test('kernel profiler: one timed pass per dispatch, under its kernel label', async () => {
  const gpu = await testGpu();
  if (!gpu.features.has('timestamp-query')) {
    // Without the feature profiling must refuse clearly instead of recording nothing.
    assert.throws(() => gpu.profile(), /needs the timestamp-query feature/);
    return;
  }
  const prof = gpu.profile();
  prof.reset();
  const a = gpu.upload(new Float32Array(64 * 64).fill(1), [64, 64]);
  const out = gpu.empty([64, 64]);
  matmul(gpu, out, a, a, { stageTransposed: true, transB: true });
  matmul(gpu, out, a, a);
  await gpu.sync();
  const times = prof.report();
  gpu.profiler = null;
  const byKernel = (k: string) => times.filter((x) => x.label.startsWith(`${k}.`)).reduce((n, x) => n + x.count, 0);
  assert.equal(byKernel('transpose'), 1);
  assert.equal(byKernel('matmul'), 2);
  assert.ok(times.every((x) => x.ms >= 0 && Number.isFinite(x.ms)));
  assert.ok(times.some((x) => x.ms > 0), 'some pass took measurable GPU time');
  for (const x of [a, out]) x.release();
});
