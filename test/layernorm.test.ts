import assert from 'node:assert/strict';
import { test } from 'node:test';
import { layerNormForward } from '../core/kernels/layernorm.ts';
import { layernormCases } from './cases/layernorm.ts';
import { registerCases, testGpu } from './helpers.ts';

registerCases('layernorm', layernormCases);

test('layernorm: shape errors name the tensor and both shapes', async () => {
  const gpu = await testGpu();
  const x = gpu.empty([2, 3, 8]), out = gpu.empty([2, 3, 8]), w = gpu.empty([8]), w7 = gpu.empty([7]);
  const m6 = gpu.empty([6]), m5 = gpu.empty([5]), m23 = gpu.empty([2, 3]);
  layerNormForward(gpu, out, m23, m6, x, w, w, 1e-12); // [N] and leading-dim stats both accepted
  assert.throws(() => layerNormForward(gpu, out, m5, m6, x, w, w, 1e-12), /layernorm: mean: expected shape \[6\], got \[5\]/);
  assert.throws(() => layerNormForward(gpu, out, m6, m6, x, w7, w, 1e-12), /layernorm: weight: expected shape \[8\], got \[7\]/);
  assert.throws(() => layerNormForward(gpu, out, m6, m6, x, w, w, 1e-12, { wg: 48 }), /power of two/);
  assert.throws(() => layerNormForward(gpu, x, m6, m6, x, w, w, 1e-12), /in place/);
  await gpu.sync();
  for (const t of [x, out, w, w7, m6, m5, m23]) t.release();
});
