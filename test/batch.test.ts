import assert from 'node:assert/strict';
import { test } from 'node:test';
import { padBatch } from '../core/data/batch.ts';

test('padBatch: right-pads to the longest row with the pad id; mask 1 on real tokens only', () => {
  const b = padBatch([[5, 6, 7], [8], []], 9);
  assert.equal(b.rows, 3);
  assert.equal(b.seqLen, 3);
  assert.deepEqual([...b.ids], [5, 6, 7, 8, 9, 9, 9, 9, 9]);
  assert.deepEqual([...b.mask], [1, 1, 1, 1, 0, 0, 0, 0, 0]);
  assert.deepEqual(b.lengths, [3, 1, 0]);
  assert.equal(b.tokens, 4);
});

test('padBatch: empty rows and an empty batch still have a sequence length of 1', () => {
  const e = padBatch([[], []], 0);
  assert.equal(e.seqLen, 1);
  assert.deepEqual([...e.ids], [0, 0]);
  assert.deepEqual([...e.mask], [0, 0]);
  const none = padBatch([], 0);
  assert.equal(none.rows, 0);
  assert.equal(none.ids.length, 0);
});
