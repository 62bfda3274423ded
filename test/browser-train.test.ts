// Fine-tuning parity, Chromium vs Node: the training page's code (demo/train/session.ts, run by
// demo/train/worker.ts) in Chromium on SwiftShader WebGPU, and `aqa train`'s (node/train-run.ts)
// on Dawn here, train tiny-bert for K = 3 optimizer steps on the same FlagEmbedding data, seed and
// settings (GradCache and hidden dropout on, so both are covered). Both run core/train/session.ts
// runTraining over the same Trainer and kernels; the adapters differ only in float rounding.
//
// Tolerances, and why:
//  - data order, negatives and dropout masks are pure functions of (seed, epoch, index, step), so
//    both sides see identical batches and masks: tokens per step must match exactly, and so must
//    the learning rate (computed on the CPU).
//  - loss: relative 1e-4. Each step's loss is an f32 InfoNCE over cosines of f32 forwards that
//    agree to ~1e-6 across adapters (test/browser-model.test.ts); at temperature 0.02 the
//    logits scale that by 50, and three steps of weight drift (below) add to it.
//  - weights. AdamW moves each weight by about lr per step whatever its gradient's size
//    (m / (sqrt(v) + eps)), so rounding does not grow through the update, except where the
//    gradient itself is rounding noise: the attention key biases. Their true gradient is zero
//    (q . b_k is the same for every key of a query, and softmax ignores a shared shift), so
//    each adapter's update of them is its own noise scaled up to ~lr: they are held only to what
//    AdamW can move in K steps, 2 * K * lr. Every other weight: |dw| <= 0.05 * lr (measured
//    0.015 * lr on one element, an output-projection weight whose gradient is near zero), at
//    most MAX_LOOSE elements over 1e-3 * lr (measured 1 of ~1e6), and mean |dw| <= 1e-5 * lr
//    (measured 6e-8 * lr). A real divergence (a wrong mask or batch, a missing GradCache term)
//    moves thousands of weights by ~lr and fails all three. The comparison and these bounds are
//    in test/train-weights.ts, shared with the training page test.
//
// Needs Chromium (see test/browser/runner.ts); AQA_SKIP_BROWSER=1 skips it. About 15 s here.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after } from 'node:test';
import { bytesSource } from '../core/model/source.ts';
import { DEFAULT_SETTINGS, type TrainSettings } from '../core/train/options.ts';
import { fileSource } from '../node/files.ts';
import { trainCommand } from '../node/train-run.ts';
import type { TrainParityArg, TrainParityReport } from './browser/train.ts';
import { runInChromium } from './browser/runner.ts';
import { tempDir } from './helpers.ts';
import { groupsFile } from './train-groups.ts';
import { assertWeightsClose, describeWeightDiff, weightDiff } from './train-weights.ts';
import { chromiumTest } from './browser/chromium-test.ts';

const TINY = 'test/fixtures/tiny-bert';
const K = 3;
const LOSS_RTOL = 1e-4;
const settings: TrainSettings = { ...DEFAULT_SETTINGS, learningRate: 1e-3, queriesPerStep: 2, trainGroupSize: 3, numTrainEpochs: 2, queryMaxLen: 12, passageMaxLen: 16, warmupRatio: 0, hiddenDropout: 0.1, gradCacheMiniBatch: 2 };
const OPTIONAL = ['modules.json', '1_Pooling/config.json', 'sentence_bert_config.json', 'config_sentence_transformers.json'];
const NAME = `chromium: ${K} training steps match aqa train`;

chromiumTest(NAME, async () => {
  const dir = tempDir({ after }, 'browser-train');
  const data = groupsFile(dir, 8);
  const arg: TrainParityArg = { model: '/models/tiny-bert', data: readFileSync(data, 'utf8'), settings, steps: K };
  const out = join(dir, 'node');
  // Node runs while Chromium does (their waits overlap on a loaded machine).
  const node = trainCommand({ model_name_or_path: TINY, output_dir: out, train_data: data, resume: false, save_steps: 0, save_total_limit: 1, max_steps: K, settings, gpu: {}, quiet: true });
  node.catch(() => undefined);
  const run = await runInChromium<TrainParityReport>('test/browser/train.ts', 240_000, { serve: { '/models/tiny-bert/': TINY }, arg });
  await node;
  // The loader probes the optional sentence-transformers files, which tiny-bert does not have.
  const errors = run.errors.filter((e) => !/404/.test(e) || !OPTIONAL.some((f) => e.includes(f) || e.startsWith('console.error: Failed to load resource')));
  assert.deepEqual(errors, [], `the page reported errors:\n${errors.join('\n')}`);
  const b = run.value;
  const log = readFileSync(join(out, 'train_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss: number; lr: number; tokens: number });
  assert.equal(b.lines.length, K);
  assert.equal(log.length, K);
  const lossDiffs: string[] = [];
  for (let i = 0; i < K; i++) {
    const [c, n] = [b.lines[i], log[i]];
    assert.equal(c.step, n.step);
    assert.equal(c.tokens, n.tokens, `step ${n.step}: the same batches`);
    assert.equal(c.lr, n.lr, `step ${n.step}: the same learning rate`);
    const rel = Math.abs(c.loss - n.loss) / Math.abs(n.loss);
    lossDiffs.push(`${n.loss.toFixed(6)} vs ${c.loss.toFixed(6)} (rel ${rel.toExponential(1)})`);
    assert.ok(rel <= LOSS_RTOL, `step ${n.step}: loss ${c.loss} in Chromium, ${n.loss} in Node (relative ${rel})`);
  }

  const lr = settings.learningRate;
  const d = await weightDiff(bytesSource('chromium/model.safetensors', Buffer.from(b.weights, 'base64')), await fileSource(join(out, `checkpoint-${K}`, 'model.safetensors')), await fileSource(join(TINY, 'model.safetensors')), lr);
  console.log(`chromium (${b.adapter}) vs node: losses ${lossDiffs.join(', ')}; ${describeWeightDiff(d, lr)}; chromium run ${Math.round(b.ms)} ms, total ${Math.round(run.timings.totalMs)} ms`);
  assertWeightsClose(d, lr, K);
});
