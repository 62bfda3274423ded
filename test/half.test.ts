import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fromHalf, roundHalf, toHalf } from '../core/gpu/half.ts';

const bits = (xs: number[]) => [...toHalf(Float32Array.from(xs))];

test('half: exact values keep their bits both ways', () => {
  const xs = [0, -0, 1, -2, 0.5, 65504, -65504, 2 ** -14, 2 ** -24, 1 + 2 ** -10];
  assert.deepEqual(bits(xs), [0x0000, 0x8000, 0x3c00, 0xc000, 0x3800, 0x7bff, 0xfbff, 0x0400, 0x0001, 0x3c01]);
  const back = fromHalf(toHalf(Float32Array.from(xs)));
  assert.deepEqual([...back], xs.map((x) => Math.fround(x)));
  assert.ok(Object.is(back[1], -0), '-0 keeps its sign');
});

test('half: ties round to even, others to nearest', () => {
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: to the even one (1); 1 + 3 * 2^-11 to 1 + 2^-9
  assert.deepEqual(bits([1 + 2 ** -11, 1 + 3 * 2 ** -11]), [0x3c00, 0x3c02]);
  // just past the halfway point rounds up
  assert.deepEqual(bits([1 + 2 ** -11 + 2 ** -20]), [0x3c01]);
  // subnormal ties: 0.5 * 2^-24 -> 0 (even), 1.5 * 2^-24 -> 2 * 2^-24, 2.5 * 2^-24 -> 2 * 2^-24
  assert.deepEqual(bits([2 ** -25, 1.5 * 2 ** -24, 2.5 * 2 ** -24, -3 * 2 ** -24]), [0x0000, 0x0002, 0x0002, 0x8003]);
  // below half the smallest subnormal: signed zero
  assert.deepEqual(bits([2 ** -26, -(2 ** -26)]), [0x0000, 0x8000]);
  // the largest subnormal rounds up into the smallest normal
  assert.deepEqual(bits([2 ** -14 - 2 ** -25]), [0x0400]);
});

test('half: overflow to inf at the rounding boundary, inf and NaN kept', () => {
  // 65504 + 16 is halfway to 65536 (2^16, not representable): ties to even = inf
  assert.deepEqual(bits([65519, 65520, -65520, 1e6, Infinity, -Infinity]), [0x7bff, 0x7c00, 0xfc00, 0x7c00, 0x7c00, 0xfc00]);
  const nan = toHalf(Float32Array.of(NaN))[0];
  assert.equal(nan & 0x7c00, 0x7c00);
  assert.notEqual(nan & 0x03ff, 0, 'NaN keeps a mantissa bit');
  const r = roundHalf(Float32Array.of(NaN, Infinity, 70000, 0.1));
  assert.ok(Number.isNaN(r[0]));
  assert.equal(r[1], Infinity);
  assert.equal(r[2], Infinity);
  assert.equal(r[3], 0.0999755859375); // 0x2e66
});
