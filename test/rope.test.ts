import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { ropeBackward, ropeForward, ropeTables } from '../core/kernels/rope.ts';
import { ropeCases } from './cases/rope.ts';
import { assertClose, registerCases, registerF16RefusalTest, testGpu } from './helpers.ts';

registerCases('rope', ropeCases);
registerF16RefusalTest('rope', ropeCases);

// The GTE dev golden file holds the reference model's own float32 RoPE tables (head dim 16,
// 13 positions, theta 160000, NTK factor 2). Read from the project's copy when present, else
// from the shared fixture it was copied from.
const here = dirname(fileURLToPath(import.meta.url));
const golden = [join(here, 'fixtures/gte-dev/golden.safetensors'), join(here, '../../shared/fixtures/gte/dev/golden.safetensors')].find((p) => existsSync(p));

/** F32 tensors by name from a safetensors file: u64 LE header length N, JSON header, data at 8 + N. */
function readF32Tensors(path: string, names: string[]): Record<string, Float32Array> {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; data_offsets: [number, number] }>;
  const out: Record<string, Float32Array> = {};
  for (const name of names) {
    const e = header[name];
    if (!e || e.dtype !== 'F32') throw new Error(`${path}: no F32 tensor '${name}'`);
    const [b, end] = e.data_offsets;
    // copy: the tensor's file offset need not be 4-byte aligned inside the Buffer's pool
    out[name] = new Float32Array(buf.buffer.slice(buf.byteOffset + 8 + n + b, buf.byteOffset + 8 + n + end));
  }
  return out;
}

/** Largest distance in float32 ulps between finite values. */
function maxUlps(a: Float32Array, b: Float32Array): number {
  const ia = new Int32Array(a.buffer, a.byteOffset, a.length);
  const ib = new Int32Array(b.buffer, b.byteOffset, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    // sign-magnitude bit patterns onto a monotonic integer line (-0 and +0 both map to 0)
    const x = ia[i] < 0 ? -(ia[i] + 0x80000000) : ia[i];
    const y = ib[i] < 0 ? -(ib[i] + 0x80000000) : ib[i];
    m = Math.max(m, Math.abs(x - y));
  }
  return m;
}

test('rope: ropeTables(16, 13, 160000, 2) matches the GTE reference tables', { skip: golden ? false : 'GTE dev golden fixture not found' }, () => {
  const g = readF32Tensors(golden!, ['rope.inv_freq', 'rope.cos', 'rope.sin']);
  const t = ropeTables(16, 13, 160000, 2);
  // inv_freq: every step is one float32 rounding of the reference's formula, so bit-exact.
  assertClose('inv_freq', t.invFreq, g['rope.inv_freq'], { atol: 0 });
  // cos/sin: the same float32 angles; torch's vectorised float32 cos/sin are accurate to 1 ulp but
  // not correctly rounded, ours are (double then one rounding), so allow 1 ulp (6e-8 near 1).
  // Measured: 20 of 208 cos and 2 of 208 sin entries differ, each by exactly 1 ulp.
  for (const k of ['cos', 'sin'] as const) {
    const ulps = maxUlps(t[k], g[`rope.${k}`]);
    if (process.env.AQA_TEST_VERBOSE) {
      const off = t[k].filter((v, i) => v !== g[`rope.${k}`][i]).length;
      console.log(`  rope.${k}: max ${ulps} ulp, ${off} of ${t[k].length} entries differ`);
    }
    if (ulps > 1) throw new Error(`rope.${k}: ${ulps} ulps from the reference table (allowed 1)`);
  }
  // Without NTK scaling the frequencies would differ by s^(2/d) = 9% and fail above.
  const plain = ropeTables(16, 13, 160000, 1);
  if (plain.invFreq[1] === g['rope.inv_freq'][1]) throw new Error('NTK scaling has no effect');
});

test('rope: f16 dtype rules: f16 qkv or dqkv with f32 tables', async () => {
  const gpu = await testGpu();
  const qkv = gpu.empty([2, 5, 24], 'f16');
  const cos = gpu.empty([5, 4]);
  assert.throws(() => ropeForward(gpu, qkv, gpu.empty([5, 4], 'f16'), cos, 2), /^Error: rope: cos must be f32, got f16$/);
  assert.throws(() => ropeForward(gpu, gpu.empty([2, 5, 24], 'u32'), cos, cos, 2), /^Error: rope: qkv must be f32 or f16, got u32$/);
  assert.throws(() => ropeBackward(gpu, qkv, cos, gpu.empty([5, 4], 'f16'), 2), /^Error: rope backward: sin must be f32, got f16$/);
  assert.throws(() => ropeBackward(gpu, gpu.empty([2, 5, 24], 'u32'), cos, cos, 2), /^Error: rope backward: dqkv must be f32 or f16, got u32$/);
});

