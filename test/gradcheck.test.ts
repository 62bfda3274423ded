// The gradient checker itself (test/gradcheck.ts), on the CPU: its numeric gradients agree with
// known derivatives far inside GRAD_RTOL, and its tolerance rejects the mistakes a backward
// is likely to make. The GPU gradient checks run as kernel cases (test/cases/*.ts).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { geluBackwardRef, geluRef, geluTanhScalarRef } from '../core/ref/elementwise.ts';
import { layerNormBackwardRef, layerNormRef } from '../core/ref/layernorm.ts';
import { l2NormalizeRef } from '../core/ref/pooling.ts';
import { evaluate } from './cases/types.ts';
import { randu } from './cases/util.ts';
import { type GradCheckSpec, gradChecks, numericGrad, projection } from './gradcheck.ts';

function allPass(spec: GradCheckSpec): boolean {
  return gradChecks(spec).every((c) => evaluate(c).ok);
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test('gradcheck: central differences match known derivatives to ~1e-10', () => {
  // f(x, y) = [sin(x0) y0, exp(x1) y0, x0 x1 y1]
  const f = ([x, y]: Float64Array[]) => [Math.sin(x[0]) * y[0], Math.exp(x[1]) * y[0], x[0] * x[1] * y[1]];
  const x = [0.3, -1.2], y = [0.7, 2.5], R = [0.5, -0.25, 1];
  const gx = numericGrad(f, [x, y], R, 0);
  const gy = numericGrad(f, [x, y], R, 1);
  const ex = [R[0] * Math.cos(x[0]) * y[0] + R[2] * x[1] * y[1], R[1] * Math.exp(x[1]) * y[0] + R[2] * x[0] * y[1]];
  const ey = [R[0] * Math.sin(x[0]) + R[1] * Math.exp(x[1]), R[2] * x[0] * x[1]];
  assert.ok(maxDiff(gx, ex) < 1e-9, `dx off by ${maxDiff(gx, ex)}`);
  assert.ok(maxDiff(gy, ey) < 1e-9, `dy off by ${maxDiff(gy, ey)}`);
});

test('gradcheck: the step actually taken is the denominator (inputs near 1000, per-element steps)', () => {
  // f = [x0 - 1000, x1^2]. x0 - 1000 is exact near 1000 (Sterbenz), so with the step actually
  // taken the quotient is exactly 1; dividing by the nominal 2h would be off by ~1e-7, since
  // 1000.1 +- 1e-6 rounds to a multiple of 1.1e-13. x1 = 3e-14 needs a step of its own size.
  const f = ([x]: Float64Array[]) => [x[0] - 1000, x[1] * x[1]];
  const g = numericGrad(f, [[1000.1, 3e-14]], [1, 1], 0, [1e-6, 1e-20]);
  assert.equal(g[0], 1);
  assert.ok(Math.abs(g[1] - 6e-14) < 6e-14 * 1e-6, `${g[1]}`);
});

test('gradcheck: layernorm, the analytic gradient passes and a dropped term or 1e-4 error fails', () => {
  const N = 3, C = 7, eps = 1e-5;
  const x = randu(N * C, 1), w = randu(C, 2, 0.5).map((v) => 1 + v), b = randu(C, 3, 0.5);
  const R = projection(N * C, 4);
  const ref = layerNormBackwardRef(R, x, w, N, C, eps);
  const spec = (dx: ArrayLike<number>): GradCheckSpec => ({
    f: ([xx, ww, bb]) => layerNormRef(xx, ww, bb, N, C, eps).out,
    inputs: [{ name: 'x', value: x, grad: dx }, { name: 'weight', value: w, grad: ref.dweight }, { name: 'bias', value: b, grad: ref.dbias }],
    R,
  });
  assert.ok(allPass(spec(ref.dx)));
  assert.ok(!allPass(spec(ref.dx.map((v) => v * (1 + 1e-4)))), 'a 1e-4 relative error must fail');
  // the classic mistake: forget the xhat * mean(g * xhat) term (the variance's dependence on x)
  const { rstd } = layerNormRef(x, w, b, N, C, eps);
  const wrong = new Float64Array(N * C);
  for (let r = 0; r < N; r++) {
    let sg = 0;
    for (let c = 0; c < C; c++) sg += R[r * C + c] * w[c];
    for (let c = 0; c < C; c++) wrong[r * C + c] = rstd[r] * (R[r * C + c] * w[c] - sg / C);
  }
  assert.ok(!allPass(spec(wrong)), 'a gradient without the variance term must fail');
});

test('gradcheck: gelu, the exact derivative passes and the tanh approximation fails', () => {
  const x = Float32Array.from([-3, -2, -0.75, 0, 0.5, 1, 2, 2.02, 3]);
  const R = projection(x.length, 5);
  const spec = (g: ArrayLike<number>): GradCheckSpec => ({ f: ([v]) => geluRef(v), inputs: [{ name: 'x', value: x, grad: g }], R });
  assert.ok(allPass(spec(geluBackwardRef(R, x))));
  const tanh = Array.from(x, (v, i) => (R[i] * (geluTanhScalarRef(v + 1e-6) - geluTanhScalarRef(v - 1e-6))) / 2e-6);
  assert.ok(!allPass(spec(tanh)), 'the tanh GELU derivative must fail');
});

test('gradcheck: l2 normalize, ignoring the clamp fails', () => {
  const H = 4;
  const x = Float32Array.from(randu(H, 6, 1e-14)); // norm ~1e-14 < 1e-12: clamp active
  const R = projection(H, 7);
  const spec = (g: ArrayLike<number>): GradCheckSpec => ({
    f: ([v]) => l2NormalizeRef(v, 1, H).out,
    inputs: [{ name: 'x', value: x, grad: g, step: 1e-21 }],
    R,
  });
  assert.ok(allPass(spec(Array.from(R, (r) => r / 1e-12))));
  // the unclamped formula (dout - out (out . dout)) / n at n = ||x||
  const n = Math.hypot(...x);
  let dot = 0;
  for (let h = 0; h < H; h++) dot += x[h] * R[h];
  assert.ok(!allPass(spec(Array.from(R, (r, h) => (r - (x[h] * dot) / (n * n)) / n))), 'the unclamped gradient must fail');
});
