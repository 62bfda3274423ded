import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkIds, embeddingBackward, embeddingForward, groupTokens } from '../core/kernels/embedding.ts';
import { embeddingCases } from './cases/embedding.ts';
import { registerCases, registerF16RefusalTest, testGpu } from './helpers.ts';

registerCases('embedding', embeddingCases);
registerF16RefusalTest('embedding', embeddingCases);

test('embedding: f16 dtype mismatches name the table', async () => {
  const gpu = await testGpu();
  const ids = gpu.empty([2, 3], 'u32'), word = gpu.empty([10, 4], 'f16'), pos = gpu.empty([5, 4]), tt = gpu.empty([2, 4]);
  const out = gpu.empty([2, 3, 4], 'f16'), out32 = gpu.empty([2, 3, 4]), wordU = gpu.empty([10, 4], 'u32');
  assert.throws(() => embeddingForward(gpu, out32, ids, null, word, null, null), /embedding: out: expected f16 elements, got f32/);
  assert.throws(() => embeddingForward(gpu, out, ids, null, word, pos, null), /embedding: position: expected f16 elements, got f32/);
  assert.throws(() => embeddingForward(gpu, out, ids, null, word, null, tt), /embedding: tokenType: expected f16 elements, got f32/);
  assert.throws(() => embeddingForward(gpu, out, ids, null, wordU, null, null), /embedding: word table must hold f32 or f16 elements/);
  // the backward takes an f16 dout, but its gradients are f32 parameter gradients
  const dword32 = gpu.empty([10, 4]), dpos16 = gpu.empty([5, 4], 'f16'), outU = gpu.empty([2, 3, 4], 'u32');
  const ids6 = Uint32Array.from([1, 2, 3, 4, 5, 6]);
  assert.throws(() => embeddingBackward(gpu, word, null, null, out, ids6, null), /^Error: embedding backward: dword: expected f32 elements, got f16/);
  assert.throws(() => embeddingBackward(gpu, dword32, dpos16, null, out, ids6, null), /^Error: embedding backward: dposition: expected f32 elements, got f16/);
  assert.throws(() => embeddingBackward(gpu, dword32, null, null, outU, ids6, null), /^Error: embedding backward: dout must hold f32 or f16 elements/);
  for (const t of [dword32, dpos16, outU]) t.release();
  for (const t of [ids, word, pos, tt, out, out32, wordU]) t.release();
});

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

test('embedding: groupTokens groups by row in token order and cuts segments', () => {
  const keys = [2, 0, 2, -1, 2, 0]; // token 3 dropped (a pad token of the word table)
  const g = groupTokens(keys.length, (t) => keys[t], 3, 2)!;
  // tokens of row 0 then row 2 | segment starts (row 2 cut into 2 + 1) | first segment per row | rows
  assert.deepEqual([...g.index], [1, 5, 0, 2, 4, /**/ 0, 2, 4, 5, /**/ 0, 1, 3, /**/ 0, 2]);
  assert.deepEqual([g.nseg, g.nslot, g.offSeg, g.offSlotSeg, g.offSlotRow], [3, 2, 5, 9, 12]);
  assert.equal(groupTokens(2, () => -1, 3, 2), null);
});

test('embedding backward: errors name the tensor, the ids and the shapes', async () => {
  const gpu = await testGpu();
  const dout = gpu.empty([2, 3, 4]), dword = gpu.empty([10, 4]), dword5 = gpu.empty([10, 5]), dpos = gpu.empty([2, 4]), dtt = gpu.empty([2, 4]);
  const ids = Uint32Array.from([1, 2, 3, 4, 5, 6]);
  assert.throws(() => embeddingBackward(gpu, dword5, null, null, dout, ids, null), /embedding backward: dword: expected shape \[10, 4\], got \[10, 5\]/);
  assert.throws(() => embeddingBackward(gpu, dword, null, null, dout, ids.subarray(1), null), /ids has 5 entries, dout \[2, 3, 4\] needs B \* L = 6/);
  assert.throws(() => embeddingBackward(gpu, dword, null, null, dout, Uint32Array.from([1, 2, 3, 4, 5, 10]), null), /ids: id 10 at index 5 is out of range/);
  assert.throws(() => embeddingBackward(gpu, dword, dpos, null, dout, ids, null), /sequence length 3 exceeds dposition's 2 rows/);
  assert.throws(() => embeddingBackward(gpu, dword, null, dtt, dout, ids, Uint32Array.from([0, 1, 2, 0, 0, 0])), /tokenTypes: id 2 at index 2/);
  assert.throws(() => embeddingBackward(gpu, dword, null, null, dout, ids, null, { padTokenId: 10 }), /padTokenId 10 is not a row/);
  assert.throws(() => embeddingBackward(gpu, dout.reshape([6, 4]), null, null, dout, Uint32Array.from([0, 1, 2, 3, 4, 5]), null), /dword and dout share a buffer/);
  for (const t of [dout, dword, dword5, dpos, dtt]) t.release();
});
