import assert from 'node:assert/strict';
import { test } from 'node:test';
import { f32 } from '../core/gpu/device.ts';
import { uniformLayout, uniformMismatch } from '../core/gpu/uniforms.ts';
import { transpose } from '../core/kernels/transpose.ts';
import { shaderSources } from '../shaders/index.ts';
import { testGpu } from './helpers.ts';

const TWO_ENTRIES = `
struct Params {
  rows: u32, // rows in this dispatch
  C: u32,
  eps: f32,
}
struct BwdParams { rows: u32, /* a, b */ scale: f32, @align(4) off: i32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(0) var<uniform> bwd: BwdParams;
fn helper() -> u32 { return bwd.rows; }
@compute @workgroup_size(1) fn forward(@builtin(global_invocation_id) g: vec3u) { let n = params.rows; }
@compute @workgroup_size(1) fn backward() { if (true) { let n = helper(); } }
`;

test('uniforms: each entry gets the struct it reads, followed through the functions it calls', () => {
  // 'name:type' pieces, in order
  const layout = (struct: string, ...fields: string[]) => ({ struct, fields: fields.map((f) => ({ name: f.split(':')[0], type: f.split(':')[1] })) });
  assert.deepEqual(uniformLayout(TWO_ENTRIES, 'forward', 't.wgsl'), layout('Params', 'rows:u32', 'C:u32', 'eps:f32'));
  assert.deepEqual(uniformLayout(TWO_ENTRIES, 'backward', 't.wgsl'), layout('BwdParams', 'rows:u32', 'scale:f32', 'off:i32'));
  assert.throws(() => uniformLayout(TWO_ENTRIES, 'missing', 't.wgsl'), /t\.wgsl: no function named missing/);
  const vec = 'struct P { n: u32, v: vec2u }\n@group(0) @binding(0) var<uniform> p: P;\nfn main() { let x = p.n; }';
  assert.throws(() => uniformLayout(vec, 'main', 'v.wgsl'), /v\.wgsl: field v of uniform struct P is vec2u; dispatch\(\) packs 4-byte u32, i32 and f32 fields only/);
});

test('uniforms: names, order, count and scalar types must match the struct', () => {
  const layout = uniformLayout(TWO_ENTRIES, 'forward', 't.wgsl')!;
  assert.equal(uniformMismatch(layout, { rows: 3, C: 4, eps: f32(1e-5) }), null);
  assert.equal(uniformMismatch(layout, [3, 4, f32(1e-5)]), null);
  assert.equal(
    uniformMismatch(layout, { C: 4, rows: 3, eps: f32(1e-5) }),
    "uniforms { C: u32, rows: u32, eps: f32 } do not match the shader's struct Params { rows: u32, C: u32, eps: f32 }: field 0 is 'rows' but the launcher passes 'C' there",
  );
  assert.match(uniformMismatch(layout, { rows: 3, C: 4 })!, /field 'eps' is not passed$/);
  assert.match(uniformMismatch(layout, { rows: 3, C: 4, eps: f32(1), extra: 1 })!, /'extra' has no field$/);
  assert.match(uniformMismatch(layout, { rows: 3, C: 4, eps: 1 })!, /field 'eps' is f32 but 'eps' is u32$/);
  assert.match(uniformMismatch(layout, [3, 4])!, /3 fields, 2 values$/);
  assert.match(uniformMismatch(layout, [3, f32(4), f32(1)])!, /field 'C' is u32 but value 1 is f32$/);
});

test('uniforms: a shader whose struct Params is reordered fails at pipeline creation, naming both orders', async () => {
  const gpu = await testGpu();
  const original = shaderSources.transpose;
  const reordered = original.replace(/struct Params \{\s*rows: u32,([^\n]*)\n\s*cols: u32,([^\n]*)\n/, 'struct Params {\n  cols: u32,$2\n  rows: u32,$1\n');
  assert.notEqual(reordered, original, 'the test must find struct Params { rows, cols } in transpose.wgsl');
  const a = gpu.upload(new Float32Array(6), [2, 3]);
  const out = gpu.empty([3, 2]);
  shaderSources.transpose = reordered;
  try {
    assert.throws(
      () => transpose(gpu, out, a),
      (e: Error) =>
        e.name === 'GpuError' &&
        e.message ===
          "pipeline transpose[forward,VEC4=false,WG=64]: uniforms { rows: u32, cols: u32 } do not match the shader's struct Params { cols: u32, rows: u32 }: field 0 is 'cols' but the launcher passes 'rows' there",
    );
  } finally {
    shaderSources.transpose = original;
  }
  // The pipeline that failed the check was not kept: with the real shader back, transpose runs.
  gpu.write(a, new Float32Array([1, 2, 3, 4, 5, 6]));
  transpose(gpu, out, a);
  assert.deepEqual([...(await gpu.readF32(out))], [1, 4, 2, 5, 3, 6]);
  a.release();
  out.release();
});
