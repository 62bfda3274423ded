import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dropout } from '../core/kernels/dropout.ts';
import { dropoutMaskRef } from '../core/ref/dropout.ts';
import { dropScale, dropThreshold, triple32 } from '../core/util/random.ts';
import { dropoutCases } from './cases/dropout.ts';
import { registerCases, registerF16RefusalTest, testGpu } from './helpers.ts';

registerCases('dropout', dropoutCases);
registerF16RefusalTest('dropout', dropoutCases);

test('triple32 reference: values from an independent numpy uint32 implementation (tools/make_goldens.py)', () => {
  const known: [number, number][] = [
    [0, 0],
    [1, 69681622],
    [2, 4057983209],
    [12345, 4177849191],
    [4294967295, 310335631],
    [1000000, 4235440991],
  ];
  for (const [x, v] of known) assert.equal(triple32(x), v, `triple32(${x})`);
});

test('dropout masks: the drop rate is p; neighbouring seeds and neighbouring elements are independent', () => {
  // Site seeds are consecutive integers (encoder.ts dropSite), so their masks must not be related.
  // Each statistic is binomial; 5 standard deviations over these 18 would be a real defect
  // (pcg2d(i, seed) failed the seed test at 10).
  const n = 1 << 20;
  const z = (count: number, prob: number) => (count / n - prob) / Math.sqrt((prob * (1 - prob)) / n);
  for (const p of [0.1, 0.5, 0.9]) {
    for (const seed of [0, 1000, 0xfffffffe]) {
      const a = dropoutMaskRef(n + 1, { p, seed });
      const b = dropoutMaskRef(n, { p, seed: seed + 1 });
      let kept = 0, agree = 0, serial = 0;
      for (let i = 0; i < n; i++) {
        kept += a[i];
        agree += a[i] === b[i] ? 1 : 0;
        serial += a[i] === a[i + 1] ? 1 : 0;
      }
      const pa = p * p + (1 - p) * (1 - p); // two independent bits agree
      const at = `p=${p} seed=${seed}`;
      assert.ok(Math.abs(z(kept, 1 - p)) < 5, `${at}: kept ${kept / n}, expected ${1 - p}`);
      assert.ok(Math.abs(z(agree, pa)) < 5, `${at}: seeds s and s+1 agree on ${agree / n}, independent would be ${pa}`);
      assert.ok(Math.abs(z(serial, pa)) < 5, `${at}: neighbouring elements agree on ${serial / n}, independent would be ${pa}`);
    }
  }
  assert.equal(dropThreshold(0), 0);
  assert.equal(dropScale(0.1), Math.fround(1 / 0.9));
  assert.throws(() => dropThreshold(1), /dropout probability must be in \[0, 1\), got 1/);
  assert.throws(() => dropThreshold(-0.1), /got -0.1/);
});

test('dropout: bad arguments are refused with a clear error', async () => {
  const gpu = await testGpu();
  const x = gpu.zeros([4]);
  assert.throws(() => dropout(gpu, x, x, { p: 0.1, seed: 1 }), /dropout: out and x share a buffer/);
  assert.throws(() => dropout(gpu, gpu.zeros([4]), x, { p: 0.1, seed: -1 }), /seed -1 is not a u32/);
  assert.throws(() => dropout(gpu, gpu.zeros([4]), x, { p: 1, seed: 1 }), /in \[0, 1\)/);
  assert.throws(() => dropout(gpu, gpu.zeros([5]), x, { p: 0.1, seed: 1 }), /dropout: x/);
  assert.throws(() => dropout(gpu, gpu.zeros([4], 'f16'), x, { p: 0.1, seed: 1 }), /^Error: dropout: out: expected f32 elements, got f16/);
  assert.throws(() => dropout(gpu, gpu.zeros([4]), gpu.zeros([4], 'f16'), { p: 0.1, seed: 1 }), /^Error: dropout: out: expected f16 elements, got f32/);
  assert.throws(() => dropout(gpu, gpu.zeros([4]), gpu.zeros([4], 'u32'), { p: 0.1, seed: 1 }), /^Error: dropout: x must hold f32 or f16 elements/);
});
