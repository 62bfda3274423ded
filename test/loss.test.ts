import assert from 'node:assert/strict';
import { test } from 'node:test';
import { contrastiveLoss } from '../core/kernels/loss.ts';
import { parseSafetensorsHeader, readTensor, type SafetensorsFile } from '../core/model/safetensors.ts';
import { contrastiveLossRef } from '../core/ref/loss.ts';
import { rowReduceWg } from '../core/gpu/launch.ts';
import { fileSource } from '../node/files.ts';
import { lossCases, lossTolerances, runLoss } from './cases/loss.ts';
import { assertClose, registerCases, testGpu } from './helpers.ts';

registerCases('loss', lossCases);

const GOLDEN = 'test/fixtures/optim/loss.safetensors';

async function f32(g: SafetensorsFile, name: string): Promise<Float32Array> {
  return (await readTensor(g, name)).data;
}

// PyTorch's F.cross_entropy and autograd on the same f32 inputs, in float64
// (tools/make_optim_goldens.py): the GPU is held to the tolerances of test/cases/loss.ts.
test('loss: matches torch cross_entropy (loss, dq, dp) on the golden inputs', async () => {
  const gpu = await testGpu();
  const g = await parseSafetensorsHeader(await fileSource(GOLDEN));
  const meta = g.metadata;
  const Q = Number(meta.Q), G = Number(meta.groupSize), H = Number(meta.H), T = Number(meta.temperature);
  const q = await f32(g, 'q'), p = await f32(g, 'p');
  const r = await runLoss(gpu, q, p, Q, H, { groupSize: G, temperature: T });
  const tol = lossTolerances(q, p, Q, H, G, { temperature: T, wg: rowReduceWg(gpu) });
  const want = { loss: await f32(g, 'loss'), dq: await f32(g, 'dq'), dp: await f32(g, 'dp') };
  assertClose('loss vs torch', r.loss, want.loss, tol.loss);
  assertClose('dq vs torch', r.dq, want.dq, tol.dq);
  assertClose('dp vs torch', r.dp, want.dp, tol.dp);
  // The float64 reference agrees with torch to torch's float64 rounding, stored as f32
  // (one f32 rounding: 6e-8 relative).
  const ref = contrastiveLossRef(q, p, Q, H, G, T);
  const rel = (x: ArrayLike<number>) => ({ atol: 1e-7 * Math.max(...Array.from(x, Math.abs)) });
  assertClose('ref loss vs torch', [ref.loss], want.loss, rel(want.loss));
  assertClose('ref dq vs torch', ref.dq, want.dq, rel(want.dq));
  assertClose('ref dp vs torch', ref.dp, want.dp, rel(want.dp));
});

test('loss: shape and option errors name the tensor', async () => {
  const gpu = await testGpu();
  const q = gpu.empty([3, 8]), p = gpu.empty([6, 8]), p7 = gpu.empty([7, 8]), loss = gpu.empty([1]), dq = gpu.empty([3, 8]), dp = gpu.empty([6, 8]);
  const dq2 = gpu.empty([3, 9]), loss2 = gpu.empty([2]);
  const o = { groupSize: 2, temperature: 0.02 };
  assert.throws(() => contrastiveLoss(gpu, { loss, dq, dp }, q, p7, o), /contrastiveLoss: p \(Q \* groupSize = 3 \* 2 passages\): expected shape \[6, 8\], got \[7, 8\]/);
  assert.throws(() => contrastiveLoss(gpu, { loss, dq: dq2, dp }, q, p, o), /contrastiveLoss: dq: expected shape \[3, 8\], got \[3, 9\]/);
  assert.throws(() => contrastiveLoss(gpu, { loss: loss2, dq, dp }, q, p, o), /contrastiveLoss: loss: expected shape \[1\], got \[2\]/);
  assert.throws(() => contrastiveLoss(gpu, { loss, dq, dp }, q, p, { groupSize: 0, temperature: 0.02 }), /groupSize must be a positive integer/);
  assert.throws(() => contrastiveLoss(gpu, { loss, dq, dp }, q, p, { groupSize: 2, temperature: 0 }), /temperature must be a positive number/);
  assert.throws(() => contrastiveLoss(gpu, { loss, dq: q, dp }, q, p, o), /dq shares a GPU buffer with q or p/);
  assert.throws(() => contrastiveLoss(gpu, { loss, dq, dp }, q.reshape([24]), p, o), /q must be \[Q, H\], got \[24\]/);
  for (const t of [q, p, p7, loss, dq, dp, dq2, loss2]) t.release();
});
