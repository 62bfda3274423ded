import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkIds, embeddingForward } from '../core/kernels/embedding.ts';
import { embeddingCases } from './cases/embedding.ts';
import { registerCases, testGpu } from './helpers.ts';

registerCases('embedding', embeddingCases);

test('embedding: checkIds names the bad id, its index and the table size', () => {
  checkIds(Uint32Array.from([0, 5, 9]), 10, 'input ids');
  assert.throws(() => checkIds(Uint32Array.from([0, 10, 3]), 10, 'input ids'), /input ids: id 10 at index 1 is out of range for a table of 10 rows \(valid ids are 0\.\.9\)/);
  assert.throws(() => checkIds(Uint32Array.from([2]), 2, 'token type ids'), /token type ids: id 2 at index 0/);
});

test('embedding: shape errors name the tensor and both shapes', async () => {
  const gpu = await testGpu();
  const ids = gpu.empty([2, 6], 'u32'), word = gpu.empty([10, 4]), pos = gpu.empty([5, 4]), out = gpu.empty([2, 6, 4]);
  const out3 = gpu.empty([2, 6, 3]), idsF = gpu.empty([2, 6]);
  assert.throws(() => embeddingForward(gpu, out, ids, null, word, pos, null), /sequence length 6 exceeds the position table's 5 rows/);
  assert.throws(() => embeddingForward(gpu, out3, ids, null, word, null, null), /embedding: out: expected shape \[2, 6, 4\], got \[2, 6, 3\]/);
  assert.throws(() => embeddingForward(gpu, out, idsF, null, word, null, null), /embedding: ids: expected u32 elements, got f32/);
  for (const t of [ids, word, pos, out, out3, idsF]) t.release();
});
