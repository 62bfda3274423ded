import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Tensor } from '../core/gpu/tensor.ts';
import { type AdamwOptions, type AdamwParam, adamwStep, clipCoefficient, gradNormSquared } from '../core/kernels/optim.ts';
import { parseSafetensorsHeader, readTensor, type SafetensorsFile } from '../core/model/safetensors.ts';
import { allocateRole, arenaAdamwParams, normOrder, placeWeights, planArena } from '../core/train/arena.ts';
import { fileSource } from '../node/files.ts';
import { withBindingLimit } from './cases/elementwise.ts';
import { adamwStepBounds, boundCheck, optimCases } from './cases/optim.ts';
import { assertCheck, assertClose, randu, registerCases, testGpu } from './helpers.ts';

registerCases('optim', optimCases);

const GOLDEN = 'test/fixtures/optim/adamw.safetensors';
const U = 2 ** -24;

async function f32(g: SafetensorsFile, name: string): Promise<Float32Array> {
  return (await readTensor(g, name)).data;
}

// torch.optim.AdamW, 3 steps, 6 parameters (tools/make_optim_goldens.py): the GPU runs the
// same 3 steps from the same start, and after each step p, m, v are compared with torch's.
// Tolerance: both sides are f32 computations of the same formula, so each step may differ by
// twice the per-step bound of test/cases/optim.ts, computed at torch's values, plus what
// earlier steps left: m carries b1 times its previous error, v its relative error (sums of
// non-negative terms), and p its previous error plus the update's response to both:
//   Em_t = b1 Em_{t-1} + 2 bm_t
//   ev_t = ev_{t-1} + 2 * 8u                 (relative; Ev_t = ev_t v_t)
//   Ep_t = keep Ep_{t-1} + 2 bp_t + s_t b1 Em_{t-1} / d_t + |upd_t| ev_{t-1} / 2
test('optim: adamwStep matches torch.optim.AdamW over 3 steps (golden)', async () => {
  const gpu = await testGpu();
  const g = await parseSafetensorsHeader(await fileSource(GOLDEN));
  const specs = JSON.parse(g.metadata.params) as { name: string; shape: number[]; decay: boolean }[];
  const steps = JSON.parse(g.metadata.steps) as { lr: number; grad_scale: number }[];
  const hyper = { beta1: Number(g.metadata.beta1), beta2: Number(g.metadata.beta2), eps: Number(g.metadata.eps), weightDecay: Number(g.metadata.weight_decay) };
  assert.ok(specs.some((s) => s.decay) && specs.some((s) => !s.decay), 'the golden has decayed and non-decayed parameters');

  const params: AdamwParam[] = [];
  const prev: { p: Float32Array; m: Float32Array; v: Float32Array }[] = [];
  const err: { p: Float64Array; m: Float64Array; ev: number }[] = [];
  for (const s of specs) {
    const p0 = await f32(g, `${s.name}.p0`);
    const n = p0.length;
    params.push({ p: gpu.upload(p0, [n]), g: gpu.zeros([n]), m: gpu.zeros([n]), v: gpu.zeros([n]), decay: s.decay });
    prev.push({ p: p0, m: new Float32Array(n), v: new Float32Array(n) });
    err.push({ p: new Float64Array(n), m: new Float64Array(n), ev: 0 });
  }
  let worst = 0;
  for (let t = 1; t <= steps.length; t++) {
    const o: AdamwOptions = { ...hyper, lr: steps[t - 1].lr, gradScale: steps[t - 1].grad_scale, step: t };
    const grads: Float32Array[] = [];
    for (let k = 0; k < specs.length; k++) {
      grads.push(await f32(g, `${specs[k].name}.g${t}`));
      gpu.write(params[k].g, grads[k]);
    }
    adamwStep(gpu, params, o);
    for (let k = 0; k < specs.length; k++) {
      const name = specs[k].name;
      const want = { p: await f32(g, `${name}.p${t}`), m: await f32(g, `${name}.m${t}`), v: await f32(g, `${name}.v${t}`) };
      const b = adamwStepBounds({ p: prev[k].p, g: grads[k], m: prev[k].m }, want, specs[k].decay, o);
      const e = err[k];
      const keep = specs[k].decay ? 1 - o.lr * o.weightDecay : 1;
      const s = o.lr / (1 - o.beta1 ** t);
      const bc2 = Math.sqrt(1 - o.beta2 ** t);
      const n = want.p.length;
      const Ep = new Float64Array(n), Em = new Float64Array(n), Ev = new Float64Array(n);
      const ev = e.ev + 16 * U;
      for (let i = 0; i < n; i++) {
        const d = Math.sqrt(want.v[i]) / bc2 + o.eps;
        const upd = Math.abs((s * want.m[i]) / d);
        Em[i] = o.beta1 * e.m[i] + 2 * b.m[i];
        Ev[i] = ev * want.v[i];
        Ep[i] = keep * e.p[i] + 2 * b.p[i] + (s * o.beta1 * e.m[i]) / d + (upd * e.ev) / 2;
      }
      const got = { p: await gpu.readF32(params[k].p), m: await gpu.readF32(params[k].m), v: await gpu.readF32(params[k].v) };
      for (const c of [
        boundCheck(`step ${t} ${name}.p`, got.p, want.p, Ep),
        boundCheck(`step ${t} ${name}.m`, got.m, want.m, Em),
        boundCheck(`step ${t} ${name}.v`, got.v, want.v, Ev),
      ]) {
        assertCheck(c);
        for (let i = 0; i < c.actual.length; i++) worst = Math.max(worst, Math.abs(c.actual[i] - c.expected[i]));
      }
      // the parameter really moved: the comparison is not of two copies of p0
      if (t === 1) assert.ok(got.p.some((x, i) => x !== prev[k].p[i]), `${name} did not change in step 1`);
      err[k] = { p: Ep, m: Em, ev };
      prev[k] = want;
    }
  }
  if (process.env.AQA_TEST_VERBOSE) console.log(`  adamw vs torch: largest error ${worst.toFixed(3)} of its bound`);
  for (const q of params) for (const t of [q.p, q.g, q.m, q.v]) t.release();
});

// torch.nn.utils.clip_grad_norm_ on two gradients: the norm from gradNormSquared and the
// clipped gradients g * clipCoefficient(norm, max_norm). torch sums in f32 too (a norm per
// tensor, then the norm of those); both sums of ~1250 positive terms are good to well under
// 1e-6 relative (test/cases/optim.ts); the clipped values add two roundings on each side.
test('optim: gradNormSquared + clipCoefficient match clip_grad_norm_ (golden)', async () => {
  const gpu = await testGpu();
  const g = await parseSafetensorsHeader(await fileSource(GOLDEN));
  const maxNorm = Number(g.metadata.clip_max_norm);
  const host = [await f32(g, 'clip.g0'), await f32(g, 'clip.g1')];
  const grads = host.map((x) => gpu.upload(x, [x.length]));
  const out = gpu.empty([1]);
  gradNormSquared(gpu, out, grads);
  const norm = Math.sqrt((await gpu.readF32(out))[0]);
  for (const t of [...grads, out]) t.release();
  const want = await f32(g, 'clip.total_norm');
  assertClose('total norm vs torch', [norm], want, { atol: 0, rtol: 1e-6 });
  const c = clipCoefficient(norm, maxNorm);
  assert.ok(c < 1, `the golden clips (coefficient ${c})`);
  for (const k of [0, 1]) {
    const clipped = host[k].map((x) => x * Math.fround(c));
    assertClose(`clip.g${k}_clipped vs torch`, clipped, await f32(g, `clip.g${k}_clipped`), { atol: 0, rtol: 1e-6 });
  }
});

test('optim: clipCoefficient is min(1, maxNorm / (norm + 1e-6))', () => {
  assert.equal(clipCoefficient(0, 1), 1);
  assert.equal(clipCoefficient(0.5, 1), 1);
  assert.equal(clipCoefficient(4, 1), 1 / (4 + 1e-6));
  assert.equal(clipCoefficient(1, 1), 1 / (1 + 1e-6)); // at the threshold torch still scales by 0.999999
  assert.ok(Number.isNaN(clipCoefficient(NaN, 1)));
  assert.equal(clipCoefficient(Infinity, 1), 0);
});

test('optim: argument errors name the parameter', async () => {
  const gpu = await testGpu();
  const t = (n: number): Tensor => gpu.empty([n]);
  const p = t(8), g = t(8), m = t(8), v = t(8), v7 = t(7), u = gpu.empty([8], 'u32'), out = t(1), out2 = t(2);
  const o = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step: 1 };
  assert.throws(() => adamwStep(gpu, [{ p, g, m, v: v7, decay: true }], o), /adamwStep: params\[0\]\.v Tensor<f32>\[7\] has 7 elements, p Tensor<f32>\[8\] has 8/);
  assert.throws(() => adamwStep(gpu, [{ p, g, m, v: u, decay: true }], o), /adamwStep: params\[0\]\.v: expected f32 elements/);
  assert.throws(() => adamwStep(gpu, [{ p, g, m: p, v, decay: true }], o), /four different GPU buffers/);
  assert.throws(() => adamwStep(gpu, [{ p, g, m, v, decay: true }], { ...o, step: 0 }), /step must be an integer >= 1/);
  assert.throws(() => adamwStep(gpu, [{ p, g, m, v, decay: true }], { ...o, lr: NaN }), /lr must be finite/);
  assert.throws(() => gradNormSquared(gpu, out2, [g]), /gradNormSquared: out: expected shape \[1\], got \[2\]/);
  assert.throws(() => gradNormSquared(gpu, out, [g, u]), /gradNormSquared: grads\[1\]: expected f32 elements/);
  assert.throws(() => gradNormSquared(gpu, out, [g], { wg: 64, chunk: 100 }), /chunk 100 must be a positive multiple/);
  for (const x of [p, g, m, v, v7, u, out, out2]) x.release();
});

test('optim: gradNormSquared order errors', async () => {
  const gpu = await testGpu();
  const g = gpu.zeros([5000]), out = gpu.empty([1]);
  const f = gpu.zeros([2]), long = gpu.zeros([3], 'u32');
  assert.throws(() => gradNormSquared(gpu, out, [g], { order: f }), /gradNormSquared: order: expected u32 elements/);
  assert.throws(() => gradNormSquared(gpu, out, [g], { order: long }), /order has 3 terms but the gradients make 2 partial sums/);
  for (const t of [g, out, f, long]) t.release();
});

// The trainer's parameter arena (core/train/arena.ts) under a 64 KiB binding limit: the
// gradient norm and a clipped AdamW step over its buffers give exactly the bits of the same
// step on separate tensors, in fewer dispatches. The layout puts decayed tensors first, each
// at a multiple of 16 KiB, and splits buffers at the limit; [20000] (80,000 bytes) is over it
// and gets a buffer of its own, which the kernels chunk as they chunk a lone tensor.
test('parameter arena: norm and AdamW over a few buffers are bit-identical to per-tensor', async () => {
  const gpu = await testGpu();
  const specs = [
    { shape: [300, 40], decay: true },
    { shape: [40], decay: false },
    { shape: [7], decay: false },
    { shape: [40, 90], decay: true },
    { shape: [0], decay: false },
    { shape: [90], decay: false },
    { shape: [20000], decay: true },
    { shape: [5, 40], decay: true },
  ];
  const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
  const host = specs.map((s, k) => ({
    p: randu(size(s.shape), 1700 + 4 * k),
    g: randu(size(s.shape), 1701 + 4 * k, 0.3),
    m: randu(size(s.shape), 1702 + 4 * k, 0.1),
    v: randu(size(s.shape), 1703 + 4 * k, 0.01).map(Math.abs),
  }));
  const o = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, step: 3 };
  const maxNorm = 1;
  const up = (a: Float32Array, shape: number[]) => gpu.upload(a, shape);
  await withBindingLimit(gpu, 65536, async () => {
    // one by one
    const single: AdamwParam[] = specs.map((s, k) => ({ p: up(host[k].p, s.shape), g: up(host[k].g, s.shape), m: up(host[k].m, s.shape), v: up(host[k].v, s.shape), decay: s.decay }));
    const normA = gpu.empty([1]);
    gradNormSquared(gpu, normA, single.map((q) => q.g));
    const nA = Math.sqrt((await gpu.readF32(normA))[0]);
    adamwStep(gpu, single, { ...o, gradScale: clipCoefficient(nA, maxNorm) });

    // the arena
    const layout = planArena(specs.map((s, k) => ({ key: `t${k}`, ...s })), gpu.limits);
    assert.deepEqual(layout.segments.map((s) => s.slots), [[0, 3], [6], [7, 1, 2, 4, 5]], 'decayed first, split at the limit');
    assert.deepEqual(layout.slots.map((s) => s.offset), [0, 16384, 32768, 49152, 49152, 49152, 0, 0]);
    const p = placeWeights(gpu, layout, specs.map((s, k) => up(host[k].p, s.shape)));
    assert.equal(p.moved, true);
    assert.equal(placeWeights(gpu, layout, p.views).moved, false, 'a second arena finds the weights in place');
    const roles = { p, g: allocateRole(gpu, layout), m: allocateRole(gpu, layout), v: allocateRole(gpu, layout) };
    specs.forEach((_, k) => {
      gpu.write(roles.g.views[k], host[k].g);
      gpu.write(roles.m.views[k], host[k].m);
      gpu.write(roles.v.views[k], host[k].v);
    });
    const order = normOrder(gpu, layout);
    const normB = gpu.empty([1]);
    const norm = await withBindingLimit(gpu, 65536, () => gradNormSquared(gpu, normB, roles.g.segments, { order }));
    const nB = Math.sqrt((await gpu.readF32(normB))[0]);
    const params = arenaAdamwParams(layout, roles);
    const adamw = await withBindingLimit(gpu, 65536, () => adamwStep(gpu, params, { ...o, gradScale: clipCoefficient(nB, maxNorm) }));

    assert.ok(clipCoefficient(nA, maxNorm) < 1, 'the step clips, so the norm reaches the weights');
    assert.equal(nB, nA, 'gradient norm');
    for (const [k, s] of specs.entries()) {
      for (const r of ['p', 'm', 'v'] as const) {
        const a = await gpu.readF32(single[k][r]);
        const b = await gpu.readF32(roles[r].views[k]);
        assert.ok(Buffer.from(a.buffer).equals(Buffer.from(b.buffer)), `${r} of [${s.shape}]: arena and per-tensor differ`);
      }
    }
    // 4 partial dispatches ([20000] in 2 chunks) + the final sum; AdamW: 5 runs, [20000] in 2 chunks
    assert.equal(norm.dispatches, 5);
    assert.equal(adamw.dispatches, 5);
    for (const q of single) for (const t of [q.p, q.g, q.m, q.v]) t.release();
    for (const t of [...roles.g.segments, ...roles.m.segments, ...roles.v.segments, order, normA, normB]) t.release();
    for (const t of p.views) t.release(); // the first view of each buffer owns it
  });
});
