import assert from 'node:assert/strict';
import { test } from 'node:test';
import { layerNormBackward, layerNormForward } from '../core/kernels/layernorm.ts';
import { layernormCases } from './cases/layernorm.ts';
import { registerCases, registerF16RefusalTest, testGpu } from './helpers.ts';

registerCases('layernorm', layernormCases);
registerF16RefusalTest('layernorm', layernormCases);

test('layernorm: f16 dtype mismatches name the tensor, forward and backward', async () => {
  const gpu = await testGpu();
  const x = gpu.empty([2, 8], 'f16'), out = gpu.empty([2, 8], 'f16'), w = gpu.empty([8], 'f16'), w32 = gpu.empty([8]);
  const m = gpu.empty([2]), m16 = gpu.empty([2], 'f16'), out32 = gpu.empty([2, 8]);
  assert.throws(() => layerNormForward(gpu, out, m, m, x, w32, w, 1e-12), /layernorm: weight: expected f16 elements, got f32/);
  assert.throws(() => layerNormForward(gpu, out32, m, m, x, w, w, 1e-12), /layernorm: out: expected f16 elements, got f32/);
  assert.throws(() => layerNormForward(gpu, out, m16, m, x, w, w, 1e-12), /layernorm: mean: expected f32 elements, got f16/);
  // backward: dx, dout and weight in x's dtype; mean, rstd, dweight and dbias always f32
  const dx = gpu.empty([2, 8], 'f16'), dw = gpu.empty([8]), db = gpu.empty([8]);
  assert.throws(() => layerNormBackward(gpu, out32, dw, db, out, x, m, m, w), /^Error: layernorm backward: dx: expected f16 elements, got f32 Tensor<f32>\[2, 8\]$/);
  assert.throws(() => layerNormBackward(gpu, dx, dw, db, out32, x, m, m, w), /^Error: layernorm backward: dout: expected f16 elements, got f32/);
  assert.throws(() => layerNormBackward(gpu, dx, dw, db, out, x, m, m, w32), /^Error: layernorm backward: weight: expected f16 elements, got f32/);
  assert.throws(() => layerNormBackward(gpu, dx, dw, db, out, x, m, m16, w), /^Error: layernorm backward: rstd: expected f32 elements, got f16/);
  assert.throws(() => layerNormBackward(gpu, dx, w, db, out, x, m, m, w), /^Error: layernorm backward: dweight: expected f32 elements, got f16/);
  assert.throws(() => layerNormBackward(gpu, dx, dw, w, out, x, m, m, w), /^Error: layernorm backward: dbias: expected f32 elements, got f16/);
  assert.throws(() => layerNormBackward(gpu, out32, dw, db, out32, out32, m, m, w), /^Error: layernorm backward: weight: expected f32 elements, got f16/);
  for (const t of [x, out, w, w32, m, m16, out32, dx, dw, db]) t.release();
});

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

test('layernorm backward: shape errors name the tensor and both shapes', async () => {
  const gpu = await testGpu();
  const x = gpu.empty([2, 3, 8]), dout = gpu.empty([2, 3, 8]), dx = gpu.empty([2, 3, 8]), dx7 = gpu.empty([2, 3, 7]);
  const w = gpu.empty([8]), dw = gpu.empty([8]), db = gpu.empty([8]), db7 = gpu.empty([7]), m6 = gpu.empty([6]), m5 = gpu.empty([5]);
  assert.throws(() => layerNormBackward(gpu, dx7, dw, db, dout, x, m6, m6, w), /layernorm backward: dx: expected shape \[2, 3, 8\], got \[2, 3, 7\]/);
  assert.throws(() => layerNormBackward(gpu, dx, dw, db7, dout, x, m6, m6, w), /layernorm backward: dbias: expected shape \[8\], got \[7\]/);
  assert.throws(() => layerNormBackward(gpu, dx, dw, db, dout, x, m6, m5, w), /layernorm backward: rstd: expected shape \[6\], got \[5\]/);
  assert.throws(() => layerNormBackward(gpu, dout, dw, db, dout, x, m6, m6, w), /dx and dout share a buffer/);
  assert.throws(() => layerNormBackward(gpu, dx, dw, db, dout, x, m6, m6, w, { blockRows: 0 }), /blockRows must be a positive integer/);
  for (const t of [x, dout, dx, dx7, w, dw, db, db7, m6, m5]) t.release();
});
