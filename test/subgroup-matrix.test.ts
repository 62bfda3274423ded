// The subgroup-matrix matmul (core/kernels/matmul-subgroup-matrix.ts, shaders/matmul-subgroup-matrix.wgsl).
//
// 1. On a device asked for the feature as `--experimental` asks: where the adapter offers
//    'chromium-experimental-subgroup-matrix', every usable config runs against the float64
//    reference on awkward shapes; where it does not (llvmpipe, SwiftShader), support is reported
//    absent with the reason, there is no candidate, the kernel refuses in one line and
//    `aqa info --experimental` prints the absent line. One test, both branches asserting, so it
//    can neither be empty here nor pass on a GPU without running the kernel.
// 2. The shader's EMULATED variant (the same tiles, offsets, strides and epilogue, plain code
//    in place of the subgroup-matrix calls) on the test GPU, for the config shapes real
//    adapters list (8x8x8 f32 as on Apple; 16x16x16 f16 as on NVIDIA and AMD; 8x16x16 f16 as on
//    Intel), transposed operands, bias, alpha, accumulate and f16 operands.
// 3. The shader text: every variant passes the preprocessor and the uniform-struct parse, the
//    emulated one compiles without a message (the uniformity diagnostic's name included), and
//    Dawn refuses the real one here only for the extension.
//
// Tolerance (atol = (2K + 3) 2^-23 max(absSum), absSum = alpha sum_k |a b| + |bias| + |prev|):
// each output sums K products, each product and each addition rounded once in f32 at most, plus
// alpha, bias and accumulate: the worst case is (2K + 3) u max(absSum), with u = 2^-24 for
// round-to-nearest; u = 2^-23 allows a matrix unit that truncates instead. With f16
// components the reference takes the f16-rounded operands (what the kernel stages), whose
// products are exact in f32. An f16 out adds one f16 rounding (either neighbour, as WGSL
// allows) and a flush below 2^-14: rtol 2^-10, atol + 2^-14 (test/cases/matmul.ts has the
// same reasoning). A wrong index or a lost k step moves an output by ~|a b| ~ 0.25.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Gpu } from '../core/gpu/device.ts';
import { fromHalf, roundHalf, toHalf } from '../core/gpu/half.ts';
import { uniformLayout } from '../core/gpu/uniforms.ts';
import { preprocess } from '../core/gpu/wgsl.ts';
import {
  SUBGROUP_MATRIX_FEATURE,
  type SubgroupMatrixConfig,
  type SubgroupMatrixOptions,
  formatSubgroupMatrixSupport,
  matmulSubgroupMatrix,
  subgroupMatrixCandidate,
  subgroupMatrixPlan,
  subgroupMatrixSupport,
  runnableConfig,
} from '../core/kernels/matmul-subgroup-matrix.ts';
import { matmulRef } from '../core/ref/matmul.ts';
import { createNodeGpu } from '../node/device.ts';
import { shaderSources } from '../shaders/index.ts';
import { assertClose, randu, runAqa, testGpu } from './helpers.ts';

/** [M, N, K]: a single element, odd sizes, exact multiples, and several workgroups with edges. */
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [17, 33, 9],
  [64, 64, 64],
  [130, 70, 45],
];

interface Variant extends Omit<SubgroupMatrixOptions, 'bias' | 'config'> {
  dtype?: 'f32' | 'f16';
  outDtype?: 'f32' | 'f16';
  bias?: boolean;
}

/** One product on the GPU against matmulRef (fails with the first element out of tolerance). */
async function check(gpu: Gpu, [M, N, K]: [number, number, number], config: SubgroupMatrixConfig, v: Variant, seed: number): Promise<void> {
  const dtype = v.dtype ?? 'f32';
  const outDtype = v.outDtype ?? dtype;
  const roundIn = dtype === 'f16' || config.componentType === 'f16';
  const a = randu(M * K, seed);
  const b = randu(K * N, seed + 1);
  const bias = v.bias ? randu(N, seed + 2) : undefined;
  const prev = v.accumulate ? randu(M * N, seed + 3) : undefined;
  const up = (x: Float32Array, shape: number[], dt: 'f32' | 'f16') => (dt === 'f16' ? gpu.upload(toHalf(x), shape, 'f16') : gpu.upload(x, shape));
  const ta = up(a, v.transA ? [K, M] : [M, K], dtype);
  const tb = up(b, v.transB ? [N, K] : [K, N], dtype);
  const tBias = bias ? up(bias, [N], outDtype) : undefined;
  const out = prev ? gpu.upload(prev, [M, N]) : gpu.empty([M, N], outDtype);
  const { dtype: _d, outDtype: _o, bias: _b, ...opts } = v;
  matmulSubgroupMatrix(gpu, out, ta, tb, { ...opts, bias: tBias, config });
  const raw = await gpu.read(out);
  const actual = raw instanceof Uint16Array ? fromHalf(raw) : (raw as Float32Array);
  const ref = matmulRef(roundIn ? roundHalf(a) : a, roundIn ? roundHalf(b) : b, M, K, N, {
    transA: v.transA,
    transB: v.transB,
    bias: bias && outDtype === 'f16' ? roundHalf(bias) : bias,
    accumulate: prev,
    alpha: v.alpha,
  });
  let max = 0;
  for (const s of ref.absSum) max = Math.max(max, s);
  const atol = (2 * K + 3) * 2 ** -23 * max;
  const tol = outDtype === 'f16' ? { atol: atol * (1 + 2 ** -10) + 2 ** -14, rtol: 2 ** -10 } : { atol };
  const name = `${config.componentType} ${config.M}x${config.N}x${config.K} M=${M} N=${N} K=${K} ${JSON.stringify(v)}`;
  assertClose(name, actual, ref.out, tol);
  for (const t of [ta, tb, tBias, out]) t?.release();
}

test('subgroup matrix: the kernel against float64 where the adapter offers it; absent, with the reason and the info line, where not', async () => {
  const gpu = await createNodeGpu({ experimental: true });
  try {
    const s = subgroupMatrixSupport(gpu);
    const line = runAqa(['--experimental', 'info']);
    assert.equal(line.code, 0, line.stderr);
    if (gpu.adapter.features.includes(SUBGROUP_MATRIX_FEATURE)) {
      assert.ok(s.ok, `the adapter offers ${SUBGROUP_MATRIX_FEATURE} but support says: ${s.ok ? '' : s.reason}`);
      assert.ok(line.stdout.includes(`subgroup matrix: ${formatSubgroupMatrixSupport(s)}`), line.stdout);
      const usable = s.configs.filter((c) => runnableConfig(gpu, c));
      assert.ok(usable.length > 0);
      for (const config of usable) {
        for (const shape of SHAPES) await check(gpu, shape, config, {}, 11);
        await check(gpu, [130, 70, 45], config, { transA: true, bias: true, alpha: 0.5 }, 12);
        await check(gpu, [130, 70, 45], config, { transB: true, accumulate: true }, 13);
        if (gpu.features.has('shader-f16')) await check(gpu, [17, 33, 9], config, { dtype: 'f16', bias: true }, 14);
      }
      assert.ok(subgroupMatrixCandidate(gpu, 'f32'), 'a candidate when supported');
    } else {
      assert.deepEqual(s, { ok: false, reason: `adapter offers no ${SUBGROUP_MATRIX_FEATURE}` });
      assert.equal(subgroupMatrixCandidate(gpu), null);
      assert.ok(line.stdout.includes(`subgroup matrix: absent (adapter offers no ${SUBGROUP_MATRIX_FEATURE})\n`), line.stdout);
      const t = gpu.empty([4, 4]);
      const u = gpu.empty([4, 4]);
      assert.throws(() => matmulSubgroupMatrix(gpu, gpu.empty([4, 4]), t, u), /^GpuError: subgroup matrix matmul: adapter offers no chromium-experimental-subgroup-matrix$/);
    }
  } finally {
    gpu.destroy();
  }
});

test('subgroup matrix: without --experimental the feature is not requested and there is no candidate', async () => {
  const gpu = await testGpu();
  assert.ok(!gpu.features.has(SUBGROUP_MATRIX_FEATURE));
  const s = subgroupMatrixSupport(gpu);
  assert.equal(s.ok, false);
  assert.equal(subgroupMatrixCandidate(gpu), null);
  assert.equal(subgroupMatrixCandidate(gpu, 'f16'), null);
  const info = runAqa(['info']);
  assert.equal(info.code, 0, info.stderr);
  assert.ok(info.stdout.endsWith('\nsubgroup matrix: off (--experimental asks Dawn for it)\n'), info.stdout);
});

/** Config shapes real adapters list (Apple; NVIDIA and AMD; Intel). */
const EMULATED: SubgroupMatrixConfig[] = [
  { componentType: 'f32', resultComponentType: 'f32', M: 8, N: 8, K: 8 },
  { componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 16 },
  { componentType: 'f16', resultComponentType: 'f32', M: 8, N: 16, K: 16 },
];

test('subgroup matrix: the emulated variant against float64 on awkward shapes', async () => {
  const gpu = await testGpu();
  assert.ok(gpu.features.has('subgroups'), 'the test GPU has subgroups (llvmpipe and SwiftShader do)');
  for (const config of EMULATED) {
    if (config.componentType === 'f16' && !gpu.features.has('shader-f16')) continue;
    for (const shape of SHAPES) await check(gpu, shape, config, { emulate: true }, 21);
  }
});

test('subgroup matrix: the emulated variant with transposes, bias, alpha, accumulate and f16 operands', async () => {
  const gpu = await testGpu();
  const f16 = gpu.features.has('shader-f16');
  for (const config of [EMULATED[0], EMULATED[2]]) {
    if (config.componentType === 'f16' && !f16) continue;
    const e = { emulate: true };
    await check(gpu, [130, 70, 45], config, { ...e, transA: true }, 31);
    await check(gpu, [17, 33, 9], config, { ...e, transB: true, bias: true, alpha: -0.75 }, 32);
    await check(gpu, [130, 70, 45], config, { ...e, transA: true, transB: true, accumulate: true }, 33);
    if (f16) {
      await check(gpu, [130, 70, 45], config, { ...e, dtype: 'f16', bias: true }, 34);
      await check(gpu, [17, 33, 9], config, { ...e, dtype: 'f16', outDtype: 'f32', accumulate: true }, 35);
    }
  }
  // Leading dims of a fold into M.
  const a = gpu.upload(randu(2 * 3 * 5, 41), [2, 3, 5]);
  const b = gpu.upload(randu(5 * 4, 42), [5, 4]);
  const out = gpu.empty([2, 3, 4]);
  matmulSubgroupMatrix(gpu, out, a, b, { config: EMULATED[0], emulate: true });
  const ref = matmulRef(await gpu.readF32(a), await gpu.readF32(b), 6, 5, 4);
  assertClose('leading dims', await gpu.readF32(out), ref.out, { atol: 13 * 2 ** -23 * 5 });
  assert.throws(() => matmulSubgroupMatrix(gpu, out, a, gpu.empty([2, 5, 4]), { config: EMULATED[0], emulate: true }), /b \[2, 5, 4\] must be 2-D/);
  assert.throws(() => matmulSubgroupMatrix(gpu, out, a, gpu.empty([6, 4]), { config: EMULATED[0], emulate: true }), /inner dims differ: op\(a\) \[6, 5\]/);
});

/** Every define set the launcher can pass, on a 32-wide subgroup. */
function variants(): Record<string, number | boolean>[] {
  const all: Record<string, number | boolean>[] = [];
  for (const config of EMULATED) {
    const sets: Record<string, boolean>[] = [{}, { TRANS_A: true, TRANS_B: true, BIAS: true, ACCUMULATE: true }, { F16: true, BIAS: true }, { F16: true, OUT_F32: true, ACCUMULATE: true }];
    for (const flags of sets) {
      for (const EMULATED of [false, true]) {
        const slots: Record<string, number> = EMULATED ? { BLOCK_SLOTS: 8 } : {}; // as the launcher: only the emulated variant has it
        all.push({ SM: config.M, SN: config.N, SK: config.K, SG_M: 2, SG_N: 2, PM: 1, PN: 2, BK: 32, WG: 128, CT_F16: config.componentType === 'f16', EMULATED, ...slots, ...flags });
      }
    }
  }
  return all;
}

test('subgroup matrix: the shader preprocesses and its uniforms parse in every variant; Dawn here refuses only the extension', async () => {
  const src = shaderSources['matmul-subgroup-matrix'];
  for (const d of variants()) {
    const code = preprocess(src, d, 'matmul-subgroup-matrix.wgsl');
    const layout = uniformLayout(code, 'forward', 'matmul-subgroup-matrix.wgsl');
    assert.deepEqual(layout?.fields.map((f) => f.name), ['M', 'N', 'K', 'alpha']);
    const text = code.replace(/\/\/.*$/gm, ''); // without comments
    assert.equal(text.includes('enable chromium_experimental_subgroup_matrix;'), !d.EMULATED);
    assert.equal(/subgroupMatrix(Load|Store|MultiplyAccumulate)\b/.test(text), !d.EMULATED);
    assert.equal(/\{\{|#if|#float/.test(text), false, 'every placeholder and directive resolved');
  }
  const gpu = await testGpu();
  const compile = async (code: string) => {
    gpu.device.pushErrorScope('validation');
    const module = gpu.device.createShaderModule({ code });
    await gpu.device.popErrorScope();
    return (await module.getCompilationInfo()).messages.map((m) => `${m.type}: ${m.message}`);
  };
  const plan = subgroupMatrixPlan(gpu, EMULATED[0]);
  const d = { SM: 8, SN: 8, SK: 8, SG_M: plan.sgM, SG_N: plan.sgN, PM: plan.pm, PN: plan.pn, BK: plan.bk, WG: plan.wg, BLOCK_SLOTS: 8, TRANS_B: true, BIAS: true };
  assert.deepEqual(await compile(preprocess(src, { ...d, EMULATED: true })), []);
  if (!gpu.features.has(SUBGROUP_MATRIX_FEATURE)) {
    assert.deepEqual(await compile(preprocess(src, d)), ["error: extension 'chromium_experimental_subgroup_matrix' is not allowed in the current environment"]);
  }
});

/** A stand-in Gpu with the adapter facts the selection reads (no device behind it). */
function fakeGpu(configs: SubgroupMatrixConfig[], o: { f16?: boolean; sgMax?: number; invocations?: number; storage?: number } = {}): Gpu {
  const features = new Set(['subgroups', SUBGROUP_MATRIX_FEATURE, ...(o.f16 === false ? [] : ['shader-f16'])]);
  return {
    features,
    adapter: { features: [...features] },
    device: { adapterInfo: { subgroupMatrixConfigs: configs, subgroupMinSize: 16, subgroupMaxSize: o.sgMax ?? 32 } },
    limits: { maxInvocations: o.invocations ?? 256, maxWorkgroupStorage: o.storage ?? 16384 },
  } as unknown as Gpu;
}

const cfg = (componentType: string, resultComponentType: string, M: number, N: number, K: number): SubgroupMatrixConfig => ({ componentType, resultComponentType, M, N, K });

test('subgroup matrix: the config and tile chosen from what adapters list', () => {
  // NVIDIA-like: f16 only (f16 or f32 results) and 8-bit integers.
  const nv = fakeGpu([cfg('f16', 'f16', 16, 16, 16), cfg('f16', 'f32', 16, 16, 16), cfg('u8', 'u32', 16, 16, 32), cfg('i8', 'i32', 16, 16, 32)]);
  assert.equal(subgroupMatrixCandidate(nv, 'f32')?.name, 'subgroup-matrix f16->f32 16x16x16');
  assert.equal(subgroupMatrixCandidate(nv, 'f16')?.name, 'subgroup-matrix f16->f32 16x16x16');
  assert.equal(formatSubgroupMatrixSupport(subgroupMatrixSupport(nv)), 'f16->f16 16x16x16, f16->f32 16x16x16, u8->u32 16x16x32, i8->i32 16x16x32');
  // Apple-like: f32 operands keep f32 components.
  const apple = fakeGpu([cfg('f16', 'f16', 8, 8, 8), cfg('f16', 'f32', 8, 8, 8), cfg('f32', 'f32', 8, 8, 8)]);
  assert.equal(subgroupMatrixCandidate(apple, 'f32')?.config.componentType, 'f32');
  assert.equal(subgroupMatrixCandidate(apple, 'f16')?.config.componentType, 'f16');
  // Nothing usable, with the reason.
  assert.deepEqual(subgroupMatrixSupport(fakeGpu([cfg('i8', 'i32', 16, 16, 32)])), { ok: false, reason: 'no config with f32 or f16 components and an f32 result (adapter has i8->i32 16x16x32)' });
  assert.match((subgroupMatrixSupport(fakeGpu([cfg('f16', 'f32', 16, 16, 16)], { f16: false })) as { reason: string }).reason, /^its f16 configs need shader-f16/);
  assert.equal(subgroupMatrixCandidate(fakeGpu([], {})), null);
  assert.deepEqual(subgroupMatrixSupport(fakeGpu([])), { ok: false, reason: 'the adapter lists no subgroup matrix configs' });

  // Tiles: 2x2 subgroups of the largest size, 32x32 outputs, 32 deep.
  const p = subgroupMatrixPlan(nv, cfg('f16', 'f32', 16, 16, 16));
  assert.deepEqual([p.sgM, p.sgN, p.pm, p.pn, p.bk, p.wg, p.bm, p.bn], [2, 2, 1, 1, 32, 128, 32, 32]);
  const q = subgroupMatrixPlan(nv, cfg('f16', 'f32', 8, 16, 16));
  assert.deepEqual([q.pm, q.pn, q.bm, q.bn, q.bk], [2, 1, 32, 32, 32]);
  // 64-wide subgroups under a 128-invocation limit: two subgroups; 8 KiB of workgroup memory: k depth halves.
  const r = subgroupMatrixPlan(fakeGpu([], { sgMax: 64, invocations: 128, storage: 8192 }), cfg('f32', 'f32', 8, 8, 8));
  assert.deepEqual([r.sgM, r.sgN, r.wg, r.bm, r.bn, r.bk], [2, 1, 128, 32, 32, 16]);
  assert.ok((r.bm * r.bk + r.bk * r.bn) * 4 + r.bm * r.bn * 4 <= 8192);
  assert.throws(() => subgroupMatrixPlan(fakeGpu([], { sgMax: 128, invocations: 64 }), cfg('f32', 'f32', 8, 8, 8)), /one subgroup of 128 invocations is over this device's 64/);
});
