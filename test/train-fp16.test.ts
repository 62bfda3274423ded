// Mixed-precision training (--fp16): one step's gradients against the f32 step, loss-scale
// overflow (skipped update, halved scale) and growth in train_log.jsonl, f32 checkpoints, and an
// exact resume with the scaler's state. Without 'shader-f16' the refusal is what is tested.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Gpu } from '../core/gpu/device.ts';
import { roundHalf, toHalf } from '../core/gpu/half.ts';
import { loadEncoder } from '../core/model/load.ts';
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
import { groupsFile } from './train-groups.ts';

const TINY = 'test/fixtures/tiny-bert';



/** A copy of an f32 encoder's weights, each converted on the host (to f16, or rounded to f16 and kept f32). */
async function copyOf(gpu: Gpu, enc: Encoder, dtype: 'f16' | 'rounded'): Promise<Encoder> {
  const w: EncoderWeights = { ...enc.weights, layers: enc.weights.layers.map((l) => ({ ...l })) };
  for (const p of paramList(enc.weights)) {
    const x = await gpu.readF32(p.tensor);
    rebind(w, p.key, dtype === 'f16' ? gpu.upload(toHalf(x), p.tensor.shape, 'f16') : gpu.upload(roundHalf(x), p.tensor.shape));
  }
  return new Encoder(gpu, enc.config, w, { halfCopy: dtype === 'f16' });
}

const FP16_REFUSAL = /^Error: --fp16: this adapter has no 'shader-f16'; train without --fp16$/;

/** On an adapter without shader-f16 the fp16 tests check the refusal instead: true when they did. */
async function refusedWithoutF16(gpu: Gpu): Promise<boolean> {
  if (gpu.features.has('shader-f16')) return false;
  const model = await loadEmbeddingModel(gpu, localModelFiles(TINY), 'tiny');
  assert.throws(() => new Trainer(gpu, model, [{ query: 'q', pos: ['p'], neg: ['n'] }], { ...DEFAULT_SETTINGS, fp16: true }), FP16_REFUSAL);
  model.dispose();
  return true;
}

/** Token id lists of the given lengths, ids drawn from [5, vocab) (seeded). */
function tokens(lengths: number[], vocab: number, seed: number): number[][] {
  let x = seed;
  const next = () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0);
  return lengths.map((n) => Array.from({ length: n }, () => 5 + (next() % (vocab - 5))));
}

// Tolerance of one step's gradients in f16 against the f32 step on the same (f16-rounded)
// weights, so that only the f16 storage of activations and activation gradients differs. Each
// f16 store rounds by up to u = 2^-11 relative; a layer stores ~13 activations in the forward
// and ~10 gradients in the backward, and independent roundings add in quadrature, so the
// gradient's relative error is about u * sqrt(stores * layers) times the network's error gain;
// the softmax at temperature 0.05 multiplies score errors by 1 / T = 20. That puts the
// expected relative L2 error at 1e-3..1e-2. Bounds: 1e-2 for the whole gradient and 1e-1 for
// each tensor with a non-negligible share of it; a wrong kernel (a missed scale, a dropped
// term, an overflow) gives O(1). Measured here: printed by each test.
const GLOBAL_TOL = 1e-2;
const TENSOR_TOL = 1e-1;

for (const [name, dir, pooling, groupSize] of [
  ['tiny-bert', TINY, 'cls', 3],
  ['gte-dev', 'test/fixtures/gte-dev', 'cls', 3],
  ['all-MiniLM-L6-v2', 'test/models/all-MiniLM-L6-v2', 'mean', 2],
] as const) {
  test(`fp16: one step's gradients within tolerance of the f32 step (${name})`, async (t) => {
    const gpu = await testGpu();
    if (await refusedWithoutF16(gpu)) return;
    const enc = await loadEncoder(gpu, localModelFiles(dir));
    const rounded = await copyOf(gpu, enc, 'rounded');
    const half = await copyOf(gpu, enc, 'f16');
    const V = enc.config.vocabSize;
    const queries = tokens([7, 12, 1], V, 1);
    const passages = tokens([24, 9, 17, 24, 3, 11, 20, 24, 5].slice(0, 3 * groupSize), V, 2);
    const S = 1024; // a loss scale, divided out below (exact: a power of two)
    const run = async (e: Encoder, scale: number) => {
      const grads = enc.zeroGrads();
      const r = contrastiveStep(gpu, e, queries, passages, grads, { groupSize, temperature: 0.05, pooling, miniBatch: 4, scale, padId: enc.config.padTokenId ?? 0 });
      const loss = (await gpu.readF32(r.loss))[0];
      r.loss.release();
      const out = await Promise.all(paramList(grads).map(async (p) => ({ key: p.key, data: (await gpu.readF32(p.tensor)).map((v) => v / scale) })));
      for (const p of paramList(grads)) p.tensor.release();
      return { loss, grads: out };
    };
    const relError = (a: Awaited<ReturnType<typeof run>>, b: Awaited<ReturnType<typeof run>>, check: boolean) => {
      const norms = b.grads.map((g) => Math.sqrt(g.data.reduce((s, v) => s + v * v, 0)));
      const total = Math.sqrt(norms.reduce((s, n) => s + n * n, 0));
      let num = 0;
      for (const [i, g] of a.grads.entries()) {
        const r = b.grads[i].data;
        let d = 0;
        for (let j = 0; j < r.length; j++) d += (g.data[j] - r[j]) ** 2;
        assert.ok(Number.isFinite(d), `${g.key}: not finite`);
        num += d;
        // Tensors with a tiny share of the gradient (e.g. unused vocabulary rows) are only in the global bound.
        if (check && norms[i] > 1e-3 * total) assert.ok(Math.sqrt(d) <= TENSOR_TOL * norms[i], `${g.key}: relative error ${Math.sqrt(d) / norms[i]}`);
      }
      return Math.sqrt(num) / total;
    };
    const ref = await run(rounded, 1);
    const orig = await run(enc, 1);
    const got = await run(half, S);
    assert.ok(Math.abs(got.loss - ref.loss) <= 1e-2 * Math.abs(ref.loss), `loss ${got.loss} vs ${ref.loss}`);
    const rel = relError(got, ref, true);
    assert.ok(rel <= GLOBAL_TOL, `whole gradient: relative error ${rel}`);
    t.diagnostic(`${name}: loss f32 ${orig.loss.toFixed(6)} f16 ${got.loss.toFixed(6)}; gradient relative L2 error ${rel.toExponential(2)} vs f32 on the same f16-rounded weights, ${relError(got, orig, false).toExponential(2)} vs the f32 weights`);
    for (const e of [half, rounded, enc]) e.dispose();
  });
}

test('fp16 without shader-f16: the trainer refuses in one line', async () => {
  const gpu = await testGpu();
  const bare = new Gpu(gpu.device, gpu.adapter);
  bare.features.delete('shader-f16');
  assert.ok(await refusedWithoutF16(bare));
  bare.trim();
});

test('fp16 training: overflow skips the update and halves the scale, good steps grow it, checkpoints are f32, and a resume is exact', async (t) => {
  if (await refusedWithoutF16(await testGpu())) return;
  const dir = tempDir({ after }, 'train-fp16');
  const data = groupsFile(dir, 12); // 6 micro-batches per epoch, 2 epochs = 12 steps
  // A first scale far too large (the first steps overflow), and growth after 2 good steps.
  const settings = { ...DEFAULT_SETTINGS, learningRate: 1e-3, queriesPerStep: 2, trainGroupSize: 3, numTrainEpochs: 2, queryMaxLen: 12, passageMaxLen: 16, warmupRatio: 0.2, hiddenDropout: 0.1, fp16: true, fp16InitScale: 2 ** 20, fp16GrowthInterval: 2 };
  const base = { model_name_or_path: TINY, train_data: data, save_steps: 1, save_total_limit: 20, settings, gpu: {}, quiet: true, resume: false };
  const full = await trainCommand({ ...base, output_dir: join(dir, 'full') });
  assert.equal(full.position.step, 12);
  const lines = readFileSync(join(dir, 'full', 'train_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const steps = lines.filter((l) => l.event === undefined);
  const events = lines.filter((l) => l.event === 'loss_scale');
  assert.deepEqual(steps.map((l) => l.step), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  const skipped = steps.filter((l) => l.skipped);
  assert.ok(skipped.length >= 1, 'a scale of 2^20 overflows f16 gradients');
  assert.ok(skipped.length < 12, 'and a smaller one does not');
  // Replay the scaler's policy from the log: every step ran with the scale the events imply.
  let scale = 2 ** 20;
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
  t.diagnostic(`loss scale per step: ${steps.map((l) => `${Math.log2(l.loss_scale)}${l.skipped ? '(skip)' : ''}`).join(' ')} (log2)`);
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

  // Stopped after step 6 (one good step into a growth interval: the resume must restore the count
  // as well as the scale), then resumed: the same weights, moments and log as the uninterrupted run.
  const out = join(dir, 'resumed');
  await trainCommand({ ...base, output_dir: out, max_steps: 6 });
  const resumed = await trainCommand({ ...base, output_dir: out, resume: true });
  assert.equal(resumed.position.step, 12);
  assert.ok(readFileSync(join(out, 'model.safetensors')).equals(readFileSync(join(dir, 'full', 'model.safetensors'))), 'resumed run must end with identical weights');
  assert.ok(readFileSync(join(out, 'checkpoint-12', 'optimizer.safetensors')).equals(readFileSync(join(dir, 'full', 'checkpoint-12', 'optimizer.safetensors'))), 'and identical optimizer state');
  const strip = (ls: Record<string, unknown>[]) => ls.map(({ tokens_per_s: _a, elapsed_s: _b, gpu_peak_mib: _c, ...rest }) => rest);
  const resumedLines = readFileSync(join(out, 'train_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(strip(resumedLines), strip(lines), 'the log, loss-scale events included, as the uninterrupted run wrote it');
});
