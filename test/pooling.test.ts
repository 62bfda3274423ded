import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clsPoolBackward, clsPoolForward, l2NormalizeBackward, l2NormalizeForward, meanPoolBackward, meanPoolForward } from '../core/kernels/pooling.ts';
import { poolingCases } from './cases/pooling.ts';
import { headForward } from '../core/model/pooling.ts';
import { uploadHalf } from './cases/half-io.ts';
import { randu, registerCases, registerF16RefusalTest, testGpu } from './helpers.ts';

registerCases('pooling', poolingCases);
registerF16RefusalTest('pooling', poolingCases);

test('pooling: f16 hidden states need an f32 output; the backwards an f32 dout', async () => {
  const gpu = await testGpu();
  const x = gpu.empty([2, 5, 8], 'f16'), out16 = gpu.empty([2, 8], 'f16'), mask = gpu.empty([2, 5], 'u32'), xu = gpu.empty([2, 5, 8], 'u32');
  const out = gpu.empty([2, 8]);
  assert.throws(() => clsPoolForward(gpu, out16, x), /clsPool: out: expected f32 elements, got f16/);
  assert.throws(() => meanPoolForward(gpu, out16, x, mask), /meanPool: out: expected f32 elements, got f16/);
  assert.throws(() => meanPoolForward(gpu, out, xu, mask), /meanPool: x must hold f32 or f16 elements/);
  assert.throws(() => clsPoolBackward(gpu, x, out16), /^Error: clsPool backward: dout: expected f32 elements, got f16/);
  assert.throws(() => meanPoolBackward(gpu, x, out16, mask), /^Error: meanPool backward: dout: expected f32 elements, got f16/);
  assert.throws(() => clsPoolBackward(gpu, xu, out), /^Error: clsPool backward: dx must hold f32 or f16 elements/);
  assert.throws(() => meanPoolBackward(gpu, xu, out, mask), /^Error: meanPool backward: dx must hold f32 or f16 elements/);
  for (const t of [x, out16, mask, xu, out]) t.release();
});

// The head on f16 hidden states gives f32 embeddings with the same bits as on the same values
// held in f32: pooling widens exactly and computes in f32, and l2 normalisation is f32 anyway.
test('pooling: headForward takes f16 hidden states and returns the f32 embeddings of their values', async () => {
  const gpu = await testGpu();
  const [B, L, H] = [3, 7, 33];
  const half = uploadHalf(gpu, randu(B * L * H, 41), [B, L, H]);
  const full = gpu.upload(half.v, [B, L, H]);
  const mask = gpu.upload(Uint32Array.from({ length: B * L }, (_, i) => (i % L < 2 + 2 * Math.floor(i / L) ? 1 : 0)), [B, L]);
  if (!gpu.features.has('shader-f16')) {
    // Without the feature the head refuses f16 hidden states in one line.
    assert.throws(() => headForward(gpu, half.t, mask, { pooling: 'mean', normalize: true }), /^GpuError: .*needs shader-f16[^\n]*$/);
    for (const x of [half.t, full, mask]) x.release();
    return;
  }
  for (const pooling of ['cls', 'mean'] as const) {
    for (const normalize of [false, true]) {
      const a = headForward(gpu, half.t, mask, { pooling, normalize }).emb;
      const b = headForward(gpu, full, mask, { pooling, normalize }).emb;
      assert.equal(a.dtype, 'f32');
      assert.deepEqual(await gpu.readF32(a), await gpu.readF32(b), `${pooling} normalize=${normalize}`);
      a.release();
      b.release();
    }
  }
  for (const x of [half.t, full, mask]) x.release();
});

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
