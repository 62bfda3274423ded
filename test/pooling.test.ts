import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clsPoolBackward, clsPoolForward, l2NormalizeBackward, l2NormalizeForward, meanPoolBackward, meanPoolForward } from '../core/kernels/pooling.ts';
import { poolingCases } from './cases/pooling.ts';
import { registerCases, testGpu } from './helpers.ts';

registerCases('pooling', poolingCases);

test('pooling: shape errors name the tensor and both shapes', async () => {
  const gpu = await testGpu();
  const x = gpu.empty([2, 5, 8]), out = gpu.empty([2, 8]), out7 = gpu.empty([2, 7]), mask = gpu.empty([2, 5], 'u32');
  const maskF = gpu.empty([2, 5]), norm = gpu.empty([2]), norm3 = gpu.empty([3]);
  assert.throws(() => clsPoolForward(gpu, out7, x), /clsPool: out: expected shape \[2, 8\], got \[2, 7\]/);
  assert.throws(() => meanPoolForward(gpu, out, x, maskF), /meanPool: mask: expected u32 elements, got f32/);
  assert.throws(() => meanPoolForward(gpu, out, x, norm), /meanPool: mask: expected shape \[2, 5\], got \[2\]/);
  assert.throws(() => l2NormalizeForward(gpu, out, norm3, out), /l2Normalize: norm: expected shape \[2\], got \[3\]/);
  assert.throws(() => l2NormalizeForward(gpu, out, norm, out), /in place/);
  assert.throws(() => clsPoolForward(gpu, out, out), /clsPool: x must be \[B, L, H\], got \[2, 8\]/);
  for (const t of [x, out, out7, mask, maskF, norm, norm3]) t.release();
});

test('pooling backward: shape errors name the tensor and both shapes', async () => {
  const gpu = await testGpu();
  const dx = gpu.empty([2, 5, 8]), dout = gpu.empty([2, 8]), dout7 = gpu.empty([2, 7]), mask = gpu.empty([2, 5], 'u32');
  const x = gpu.empty([2, 8]), dx2 = gpu.empty([2, 8]), norm = gpu.empty([2]), norm3 = gpu.empty([3]);
  assert.throws(() => clsPoolBackward(gpu, dx, dout7), /clsPool backward: dout: expected shape \[2, 8\], got \[2, 7\]/);
  assert.throws(() => clsPoolBackward(gpu, dout, dout), /clsPool backward: x must be \[B, L, H\], got \[2, 8\]/);
  assert.throws(() => meanPoolBackward(gpu, dx, dout, norm), /meanPool backward: mask: expected shape \[2, 5\], got \[2\]/);
  assert.throws(() => meanPoolBackward(gpu, dx, dout7, mask), /meanPool backward: dout: expected shape \[2, 8\], got \[2, 7\]/);
  assert.throws(() => l2NormalizeBackward(gpu, dx2, dout, x, norm3), /l2Normalize backward: norm: expected shape \[2\], got \[3\]/);
  assert.throws(() => l2NormalizeBackward(gpu, dx2, dout7, x, norm), /l2Normalize backward: dout: expected shape \[2, 8\], got \[2, 7\]/);
  assert.throws(() => l2NormalizeBackward(gpu, dout, dout, x, norm), /dx shares a buffer/);
  for (const t of [dx, dout, dout7, mask, x, dx2, norm, norm3]) t.release();
});
