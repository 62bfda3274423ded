// The WGSL preprocessor: #if branches, {{NAME}} values and the #float storage-type line, with
// line numbers kept (compiler messages point into the .wgsl file).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { preprocess } from '../core/gpu/wgsl.ts';

const SRC = ['#if SUBGROUP', 'enable subgroups;', '#endif', '#float act', 'const N = {{N}}u;', '#if !F16', 'fn f32_only() {}', '#else', 'fn f16_only() {}', '#endif', 'var<private> x: act;'].join('\n');

test('wgsl: #float declares f32 by default and f16 (with enable f16) under F16, on one line', () => {
  const f32 = preprocess(SRC, { N: 7 }).split('\n');
  const f16 = preprocess(SRC, { N: 7, F16: true, SUBGROUP: true }).split('\n');
  assert.equal(f32.length, SRC.split('\n').length, 'line count kept');
  assert.equal(f16.length, SRC.split('\n').length, 'line count kept');
  assert.equal(f32[3], 'alias act = f32;');
  assert.equal(f16[3], 'enable f16; alias act = f16;');
  assert.equal(f16[1], 'enable subgroups;');
  assert.equal(f32[1], '');
  assert.equal(f32[4], 'const N = 7u;');
  assert.equal(f32[6], 'fn f32_only() {}');
  assert.equal(f32[8], '');
  assert.equal(f16[6], '');
  assert.equal(f16[8], 'fn f16_only() {}');
  assert.ok(!f32.join('\n').includes('f16'), 'no f16 in the f32 text');
});

test('wgsl: a #float inside an inactive branch is dropped; bad input names the line', () => {
  assert.equal(preprocess('#if X\n#float act\n#endif', {}).split('\n')[1], '');
  assert.throws(() => preprocess('const N = {{N}}u;', {}, 't.wgsl'), /^Error: t\.wgsl:1: define 'N' is not set$/);
  assert.throws(() => preprocess('#if A B\n#endif', {}, 't.wgsl'), /t\.wgsl:1: bad #if expression/);
  assert.throws(() => preprocess('#if A\n', {}, 't.wgsl'), /t\.wgsl: unterminated #if/);
});
