import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clsPoolForward, l2NormalizeForward, meanPoolForward } from '../core/kernels/pooling.ts';
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
