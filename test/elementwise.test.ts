import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gluForward, geluForward } from '../core/kernels/elementwise.ts';
import { geluTanhScalarRef } from '../core/ref/elementwise.ts';
import { GELU_TOL, elementwiseCases, geluGrid } from './cases/elementwise.ts';
import { evaluate } from './cases/types.ts';
import { registerCases, testGpu } from './helpers.ts';

registerCases('elementwise', elementwiseCases);

test('elementwise: the GELU tolerance rejects the tanh approximation', () => {
  const { x, exact } = geluGrid();
  const r = evaluate({ name: 'tanh gelu', actual: Float64Array.from(x, geluTanhScalarRef), expected: exact, tol: GELU_TOL });
  assert.equal(r.ok, false);
  assert.ok(r.maxAbs > 4e-4, `tanh GELU maxdiff ${r.maxAbs}`);
});

test('elementwise: shape errors name the tensor and both shapes', async () => {
  const gpu = await testGpu();
  const a = gpu.empty([4, 10]), b = gpu.empty([4, 12]), c = gpu.empty([4, 5]), u = gpu.empty([4, 10], 'u32');
  assert.throws(() => gluForward(gpu, c, b), /glu: upGate .*expected shape \[4, 10\], got \[4, 12\]/);
  assert.throws(() => geluForward(gpu, a, b), /gelu: x: expected shape \[4, 10\], got \[4, 12\]/);
  assert.throws(() => geluForward(gpu, a, u), /gelu: x: expected f32 elements, got u32/);
  for (const t of [a, b, c, u]) t.release();
});
