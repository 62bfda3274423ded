import assert from 'node:assert/strict';
import { test } from 'node:test';
import { accumulateForward, addForward, castForward, geluBackward, gluBackward, gluForward, geluForward } from '../core/kernels/elementwise.ts';
import { flatView } from '../core/gpu/launch.ts';
import { Tensor } from '../core/gpu/tensor.ts';
import { geluGradScalarRef, geluTanhScalarRef } from '../core/ref/elementwise.ts';
import { GELU_GRAD_TOL, GELU_TOL, elementwiseCases, geluGrid } from './cases/elementwise.ts';
import { evaluate } from './cases/types.ts';
import { registerCases, registerF16RefusalTest, testGpu } from './helpers.ts';

registerCases('elementwise', elementwiseCases);
registerF16RefusalTest('elementwise', elementwiseCases);

test('elementwise: f16 dtype mismatches name the tensor', async () => {
  const gpu = await testGpu();
  const h = gpu.empty([2, 8], 'f16'), f = gpu.empty([2, 8]), h4 = gpu.empty([2, 4], 'f16'), f4 = gpu.empty([2, 4]), u4 = gpu.empty([2, 4], 'u32');
  assert.throws(() => addForward(gpu, h, h, f), /add: b: expected f16 elements, got f32/);
  assert.throws(() => addForward(gpu, f, h, h), /add: a: expected f32 elements, got f16/);
  assert.throws(() => geluForward(gpu, h, f), /gelu: x: expected f16 elements, got f32/);
  assert.throws(() => gluForward(gpu, f4, h), /glu: upGate: expected f32 elements, got f16/);
  assert.throws(() => gluForward(gpu, u4, h), /glu: out must hold f32 or f16 elements/);
  assert.throws(() => geluBackward(gpu, h, f, h), /^Error: gelu backward: dout: expected f16 elements, got f32/);
  assert.throws(() => geluBackward(gpu, f, f, h), /^Error: gelu backward: x: expected f32 elements, got f16/);
  assert.throws(() => gluBackward(gpu, h, f4, h), /^Error: glu backward: dout: expected f16 elements, got f32/);
  assert.throws(() => gluBackward(gpu, h, h4, f), /^Error: glu backward: upGate: expected f16 elements, got f32/);
  assert.throws(() => accumulateForward(gpu, h, f), /^Error: accumulate: src: expected f16 elements, got f32/);
  assert.throws(() => accumulateForward(gpu, f, h), /^Error: accumulate: src: expected f32 elements, got f16/);
  assert.throws(() => accumulateForward(gpu, u4, u4), /^Error: accumulate: dst must hold f32 or f16 elements/);
  for (const t of [h, f, h4, f4, u4]) t.release();
});

test('elementwise: the GELU tolerance rejects the tanh approximation', () => {
  const { x, exact } = geluGrid();
  const r = evaluate({ name: 'tanh gelu', actual: Float64Array.from(x, geluTanhScalarRef), expected: exact, tol: GELU_TOL });
  assert.equal(r.ok, false);
  assert.ok(r.maxAbs > 4e-4, `tanh GELU maxdiff ${r.maxAbs}`);
});

test('elementwise: the GELU derivative tolerance rejects the tanh approximation', () => {
  const { x } = geluGrid();
  const exact = Float64Array.from(x, geluGradScalarRef);
  // derivative of the tanh GELU by central differences in float64 (error ~1e-10)
  const tanh = Float64Array.from(x, (v) => (geluTanhScalarRef(v + 1e-6) - geluTanhScalarRef(v - 1e-6)) / 2e-6);
  const r = evaluate({ name: 'tanh gelu derivative', actual: tanh, expected: exact, tol: GELU_GRAD_TOL });
  assert.equal(r.ok, false);
  assert.ok(r.maxAbs > 8e-4, `tanh GELU derivative maxdiff ${r.maxAbs}`);
});

test('elementwise: shape errors name the tensor and both shapes', async () => {
  const gpu = await testGpu();
  const a = gpu.empty([4, 10]), b = gpu.empty([4, 12]), c = gpu.empty([4, 5]), u = gpu.empty([4, 10], 'u32');
  assert.throws(() => gluForward(gpu, c, b), /glu: upGate .*expected shape \[4, 10\], got \[4, 12\]/);
  assert.throws(() => geluForward(gpu, a, b), /gelu: x: expected shape \[4, 10\], got \[4, 12\]/);
  assert.throws(() => geluForward(gpu, a, u), /gelu: x: expected f32 elements, got u32/);
  const d = gpu.empty([4, 10]);
  assert.throws(() => geluBackward(gpu, a, b, a), /gelu backward: dout: expected shape \[4, 10\], got \[4, 12\]/);
  assert.throws(() => geluBackward(gpu, a, a, d), /gelu backward: dx shares a buffer/);
  assert.throws(() => gluBackward(gpu, a, c, b), /glu backward: upGate .*expected shape \[4, 10\], got \[4, 12\]/);
  assert.throws(() => gluBackward(gpu, b, c, a), /glu backward: dUpGate .*expected shape \[4, 10\], got \[4, 12\]/);
  assert.throws(() => accumulateForward(gpu, a, b), /accumulate: src: expected shape \[4, 10\], got \[4, 12\]/);
  assert.throws(() => accumulateForward(gpu, a, a), /accumulate: dst and src share a buffer/);
  for (const t of [a, b, c, u, d]) t.release();
});

test('cast: refuses what it cannot convert in one line', async () => {
  const gpu = await testGpu();
  const f = gpu.empty([2, 8]), h = gpu.empty([16], 'f16'), h15 = gpu.empty([15], 'f16'), u = gpu.empty([16], 'u32'), f2 = gpu.empty([16]);
  assert.throws(() => castForward(gpu, f2, f), /^Error: cast: converts f32 to f16 or f16 to f32, got x Tensor<f32>\[2, 8\] and out Tensor<f32>\[16\]$/);
  assert.throws(() => castForward(gpu, h, u), /^Error: cast: converts f32 to f16 or f16 to f32/);
  assert.throws(() => castForward(gpu, h15, f), /^Error: cast: x Tensor<f32>\[2, 8\] and out Tensor<f16>\[15\] hold different numbers of elements \(16 vs 15\)$/);
  // an f16 view at an odd element starts mid-word
  assert.throws(() => castForward(gpu, flatView(h, 1, 15), flatView(f, 0, 15)), /^Error: cast: the f16 tensor Tensor<f16>\[15\] starts at byte 2, not a multiple of 4$/);
  assert.throws(() => castForward(gpu, flatView(f, 1, 15), flatView(h, 1, 15)), /starts at byte 2, not a multiple of 4/);
  const both = gpu.empty([32]);
  const alias16 = new Tensor(gpu, both.buffer, [16], 'f16', 0, false);
  assert.throws(() => castForward(gpu, alias16, flatView(both, 16, 16)), /^Error: cast: out and x share a buffer; use separate buffers$/);
  for (const t of [f, h, h15, u, f2, both]) t.release();
});
