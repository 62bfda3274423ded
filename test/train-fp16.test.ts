// Mixed-precision training (--fp16): one step's gradients against the f32 step, loss-scale
// overflow (skipped update, halved scale) and growth in train_log.jsonl, f32 checkpoints, and an
// exact resume with the scaler's state. Without 'shader-f16' the refusal is what is tested.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Gpu } from '../core/gpu/device.ts';
import { toHalf } from '../core/gpu/half.ts';
import { Encoder, type EncoderWeights } from '../core/model/encoder.ts';
import { paramList } from '../core/model/params.ts';
import { parseSafetensorsHeader } from '../core/model/safetensors.ts';
import { loadEmbeddingModel } from '../core/retrieval/embed.ts';
import { rebind } from '../core/train/arena.ts';
import { contrastiveStep } from '../core/train/step.ts';
import { Trainer } from '../core/train/trainer.ts';
import { fileSource, localModelFiles } from '../node/files.ts';
import { DEFAULT_SETTINGS, trainCommand } from '../node/train-run.ts';
import { tempDir, testGpu } from './helpers.ts';

const TINY = 'test/fixtures/tiny-bert';
const WORDS = ['protein', 'folding', 'graph', 'neural', 'network', 'quantum', 'energy', 'cell', 'gene', 'signal', 'theory', 'data'];

function phrase(i: number, n: number): string {
  return Array.from({ length: n }, (_, j) => WORDS[(i * 5 + j * 3) % WORDS.length]).join(' ');
}

function groupsFile(dir: string, n: number): string {
  const path = join(dir, 'train.jsonl');
  const lines = Array.from({ length: n }, (_, i) => JSON.stringify({ query: `what about ${phrase(i, 3)}?`, pos: [phrase(i, 9)], neg: [1, 2, 3, 4].map((k) => phrase(i + 7 * k, 8)) }));
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

/** An f16 working copy of an f32 encoder's weights (what the trainer keeps with --fp16), built on the host. */
async function halfCopy(gpu: Gpu, enc: Encoder): Promise<Encoder> {
  const w: EncoderWeights = { ...enc.weights, layers: enc.weights.layers.map((l) => ({ ...l })) };
  for (const p of paramList(enc.weights)) rebind(w, p.key, gpu.upload(toHalf(await gpu.readF32(p.tensor)), p.tensor.shape, 'f16'));
  return new Encoder(gpu, enc.config, w, { halfCopy: true });
}

const hasF16 = async () => (await testGpu()).features.has('shader-f16');

// Tolerance of one step's gradients, f16 against f32. Every f16 store rounds by up to
// u = 2^-11 relative; a layer stores ~13 activations in the forward and ~10 gradients in the
// backward, and the errors of independent roundings add in quadrature, so after the whole
// network the gradients' relative error is a few u * sqrt(stores) ~ 1e-3..1e-2 (the softmax at
// temperature 0.05 amplifies score errors by 1 / T = 20, which is what dominates on the tiny
// models). Bounds: relative L2 error of the whole gradient <= 3e-2 and of each tensor with a
// non-negligible gradient <= 1e-1; a wrong kernel (a missed scale, a dropped term) gives O(1).
const GLOBAL_TOL = 3e-2;
const TENSOR_TOL = 1e-1;

for (const [name, dir, pooling, groupSize] of [
  ['tiny-bert', TINY, 'cls', 3],
  ['gte-dev', 'test/fixtures/gte-dev', 'cls', 3],
  ['all-MiniLM-L6-v2', 'test/models/all-MiniLM-L6-v2', 'mean', 2],
] as const) {
  test(`fp16: one step's gradients within tolerance of the f32 step (${name})`, async (t) => {
    const gpu = await testGpu();
    if (!gpu.features.has('shader-f16')) return t.skip('no shader-f16 (the refusal is tested below)');
    const model = await loadEmbeddingModel(gpu, localModelFiles(dir), name);
    const enc = model.encoder;
    const half = await halfCopy(gpu, enc);
    const tok = (s: string, n: number) => model.tokenizer.encode(s, n);
    const queries = [0, 1, 2].map((i) => tok(`what about ${phrase(i, 3 + i)}?`, 12));
    const passages = [0, 1, 2].flatMap((i) => [tok(phrase(i, 9), 24), tok(phrase(i + 7, 5 + i), 24), tok(phrase(i + 3, 12), 24)].slice(0, groupSize));
    const S = 1024; // a loss scale, divided out below (exact: a power of two)
    const run = async (e: Encoder, scale: number) => {
      const grads = enc.zeroGrads();
      const r = contrastiveStep(gpu, e, queries, passages, grads, { groupSize, temperature: 0.05, pooling, miniBatch: 4, scale, padId: model.padId });
      const loss = (await gpu.readF32(r.loss))[0];
      r.loss.release();
      const out = await Promise.all(paramList(grads).map(async (p) => ({ key: p.key, data: (await gpu.readF32(p.tensor)).map((v) => v / scale) })));
      for (const p of paramList(grads)) p.tensor.release();
      return { loss, grads: out };
    };
    const ref = await run(enc, 1);
    const got = await run(half, S);
    assert.ok(Math.abs(got.loss - ref.loss) <= 1e-2 * Math.abs(ref.loss), `loss ${got.loss} vs ${ref.loss}`);
    let num = 0;
    let den = 0;
    const norms = ref.grads.map((g) => Math.sqrt(g.data.reduce((a, v) => a + v * v, 0)));
    const total = Math.sqrt(norms.reduce((a, n) => a + n * n, 0));
    for (const [i, g] of got.grads.entries()) {
      const r = ref.grads[i].data;
      let d = 0;
      for (let j = 0; j < r.length; j++) d += (g.data[j] - r[j]) ** 2;
      assert.ok(Number.isFinite(d), `${g.key}: not finite`);
      num += d;
      den += norms[i] ** 2;
      // Tensors whose gradient is tiny against the whole (e.g. unused vocabulary rows) are only in the global bound.
      if (norms[i] > 1e-3 * total) assert.ok(Math.sqrt(d) <= TENSOR_TOL * norms[i], `${g.key}: relative error ${Math.sqrt(d) / norms[i]}`);
    }
    const rel = Math.sqrt(num / den);
    assert.ok(rel <= GLOBAL_TOL, `whole gradient: relative error ${rel}`);
    t.diagnostic(`${name}: loss f32 ${ref.loss.toFixed(6)} f16 ${got.loss.toFixed(6)}, gradient relative L2 error ${rel.toExponential(2)}`);
    half.dispose();
    model.dispose();
  });
}

test('fp16 without shader-f16: the trainer refuses in one line', async () => {
  const gpu = await testGpu();
  const bare = new Gpu(gpu.device, gpu.adapter);
  bare.features.delete('shader-f16');
  const model = await loadEmbeddingModel(bare, localModelFiles(TINY), 'tiny');
  assert.throws(() => new Trainer(bare, model, [{ query: 'q', pos: ['p'], neg: ['n'] }], { ...DEFAULT_SETTINGS, fp16: true }), /^Error: --fp16: this adapter has no 'shader-f16'; train without --fp16$/);
  model.dispose();
  bare.trim();
});

test('fp16 training: overflow skips the update and halves the scale, good steps grow it, checkpoints are f32, and a resume is exact', async (t) => {
  if (!(await hasF16())) return t.skip('no shader-f16');
  const dir = tempDir({ after }, 'train-fp16');
  const data = groupsFile(dir, 12); // 6 micro-batches per epoch, 2 epochs = 12 steps
  // A first scale far too large (the first steps overflow), and growth after 2 good steps.
  const settings = { ...DEFAULT_SETTINGS, learningRate: 1e-3, queriesPerStep: 2, trainGroupSize: 3, numTrainEpochs: 2, queryMaxLen: 12, passageMaxLen: 16, warmupRatio: 0.2, hiddenDropout: 0.1, fp16: true, fp16InitScale: 2 ** 30, fp16GrowthInterval: 2 };
  const base = { model_name_or_path: TINY, train_data: data, save_steps: 1, save_total_limit: 20, settings, gpu: {}, quiet: true, resume: false };
  const full = await trainCommand({ ...base, output_dir: join(dir, 'full') });
  assert.equal(full.position.step, 12);
  const lines = readFileSync(join(dir, 'full', 'train_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const steps = lines.filter((l) => l.event === undefined);
  const events = lines.filter((l) => l.event === 'loss_scale');
  assert.deepEqual(steps.map((l) => l.step), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  const skipped = steps.filter((l) => l.skipped);
  assert.ok(skipped.length >= 1, 'a scale of 2^30 overflows f16 gradients');
  assert.ok(skipped.length < 12, 'and a smaller one does not');
  // Replay the scaler's policy from the log: every step ran with the scale the events imply.
  let scale = 2 ** 30;
  let good = 0;
  for (const l of steps) {
    assert.equal(l.loss_scale, scale, `step ${l.step} scale`);
    const ev = events.filter((e) => e.step === l.step);
    if (l.skipped) {
      assert.equal(l.grad_norm, null);
      assert.deepEqual(ev, [{ step: l.step, event: 'loss_scale', reason: 'overflow', from: scale, to: scale / 2 }]);
      scale /= 2;
      good = 0;
    } else if (++good === 2) {
      assert.ok(Number.isFinite(l.grad_norm) && l.grad_norm > 0);
      assert.deepEqual(ev, [{ step: l.step, event: 'loss_scale', reason: 'growth', from: scale, to: scale * 2 }]);
      scale *= 2;
      good = 0;
    } else {
      assert.deepEqual(ev, []);
    }
  }
  // A skipped step changes no weight: its checkpoint equals the one before (steps >= 2).
  const weights = (step: number) => readFileSync(join(dir, 'full', `checkpoint-${step}`, 'model.safetensors'));
  const skippedLater = skipped.filter((l) => l.step >= 2);
  for (const l of skippedLater) assert.ok(weights(l.step).equals(weights(l.step - 1)), `step ${l.step} was skipped but the weights changed`);
  const applied = steps.filter((l) => !l.skipped && l.step >= 2);
  assert.ok(applied.length > 0 && applied.every((l) => !weights(l.step).equals(weights(l.step - 1))), 'an applied step changes the weights');
  // The checkpoint holds f32 weights in the usual layout and the scaler's state.
  const header = await parseSafetensorsHeader(await fileSource(join(dir, 'full', 'model.safetensors')));
  assert.ok([...header.tensors.values()].every((i) => i.dtype === 'F32'), 'final weights are F32');
  const state = JSON.parse(readFileSync(join(dir, 'full', 'checkpoint-12', 'trainer_state.json'), 'utf8'));
  assert.equal(state.lossScale.scale, scale);
  assert.equal(state.lossScale.goodSteps, good);

  // Stopped after step 5, then resumed: the same weights, moments and log as the uninterrupted run.
  const out = join(dir, 'resumed');
  await trainCommand({ ...base, output_dir: out, max_steps: 5 });
  const resumed = await trainCommand({ ...base, output_dir: out, resume: true });
  assert.equal(resumed.position.step, 12);
  assert.ok(readFileSync(join(out, 'model.safetensors')).equals(readFileSync(join(dir, 'full', 'model.safetensors'))), 'resumed run must end with identical weights');
  assert.ok(readFileSync(join(out, 'checkpoint-12', 'optimizer.safetensors')).equals(readFileSync(join(dir, 'full', 'checkpoint-12', 'optimizer.safetensors'))), 'and identical optimizer state');
  const strip = (ls: Record<string, unknown>[]) => ls.map(({ tokens_per_s: _a, elapsed_s: _b, gpu_peak_mib: _c, ...rest }) => rest);
  const resumedLines = readFileSync(join(out, 'train_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(strip(resumedLines), strip(lines), 'the log, loss-scale events included, as the uninterrupted run wrote it');
});
