// Fine-tuning end to end on the tiny BERT fixture: checkpoints in Hugging Face layout, exact
// resume, GradCache equivalence, NaN stop, bad training files. Whole-model gradient
// correctness is test/encoder-grad.test.ts; the loss and AdamW kernels have their own tests.

import assert from 'node:assert/strict';
import { readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { padBatch } from '../core/data/batch.ts';
import { paramList, toHfTensors } from '../core/model/params.ts';
import { loadEmbeddingModel } from '../core/retrieval/embed.ts';
import { parseSafetensorsHeader, readTensor } from '../core/model/safetensors.ts';
import { contrastiveStep } from '../core/train/step.ts';
import { epochOrder, sampleGroup } from '../core/train/trainer.ts';
import { fileSource, localModelFiles } from '../node/files.ts';
import { DEFAULT_SETTINGS, trainCommand } from '../node/train-run.ts';
import { addTrainOptions, settingsFromFlags } from '../node/train-settings.ts';
import { SETTINGS_OPTIONS, validateSettings } from '../core/train/options.ts';
import { Command } from 'commander';
import { tempDir, testGpu, runAqa } from './helpers.ts';
import { groupsFile, phrase } from './train-groups.ts';

const TINY = 'test/fixtures/tiny-bert';

// Removed after the test that made it (or, made after an await, after the file's tests).
function tmp(): string {
  return tempDir({ after }, 'train');
}



// With hidden dropout, so the exact-resume test also covers its masks.
const settings = { ...DEFAULT_SETTINGS, learningRate: 1e-3, queriesPerStep: 2, trainGroupSize: 3, numTrainEpochs: 2, queryMaxLen: 12, passageMaxLen: 16, warmupRatio: 0.2, hiddenDropout: 0.1 };

function weightsOf(path: string): Buffer {
  return readFileSync(path);
}

test('checkpoint tensors round-trip: toHfTensors of a loaded model equals its safetensors file exactly', async () => {
  const gpu = await testGpu();
  const model = await loadEmbeddingModel(gpu, localModelFiles(TINY), 'tiny');
  const ours = await toHfTensors(gpu, model.config, model.encoder.weights);
  const file = await parseSafetensorsHeader(await fileSource(`${TINY}/model.safetensors`));
  let n = 0;
  for (const [name, t] of ours) {
    const ref = await readTensor(file, name);
    assert.deepEqual(t.shape, ref.shape, name);
    assert.ok(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).equals(Buffer.from(ref.data.buffer, ref.data.byteOffset, ref.data.byteLength)), `${name} differs`);
    n++;
  }
  // every encoder parameter of the checkpoint (the pooler is not part of an embedding model)
  const expected = [...file.tensors.keys()].filter((k) => !k.startsWith('pooler.'));
  assert.equal(n, expected.length);
  model.dispose();
});

test('data order and group sampling are pure functions of (seed, epoch, index)', () => {
  assert.deepEqual(epochOrder(10, 42, 0), epochOrder(10, 42, 0));
  assert.notDeepEqual(epochOrder(10, 42, 0), epochOrder(10, 42, 1));
  assert.deepEqual([...epochOrder(10, 42, 3)].sort((a, b) => a - b), [...Array(10).keys()]);
  const g = { query: 'q', pos: ['p1', 'p2'], neg: ['a', 'b', 'c', 'd', 'e'] };
  const s = sampleGroup(g, 4, 1, 0, 5);
  assert.deepEqual(s, sampleGroup(g, 4, 1, 0, 5));
  assert.ok(g.pos.includes(s[0]));
  assert.equal(new Set(s.slice(1)).size, 3, 'negatives drawn without replacement');
  // fewer negatives than needed: the list is repeated, every negative still comes from it
  const short = sampleGroup({ query: 'q', pos: ['p'], neg: ['a', 'b'] }, 6, 1, 0, 0);
  assert.equal(short.length, 6);
  assert.ok(short.slice(1).every((x) => x === 'a' || x === 'b'));
});

test('GradCache gives the same gradients as one big backward (mini-batches of 2 and 1)', async () => {
  const gpu = await testGpu();
  const model = await loadEmbeddingModel(gpu, localModelFiles(TINY), 'tiny');
  const enc = model.encoder;
  const tok = (t: string, n: number) => model.tokenizer.encode(t, n);
  const queries = [0, 1, 2].map((i) => tok(`what about ${phrase(i, 3 + i)}?`, 12));
  const passages = [0, 1, 2].flatMap((i) => [tok(phrase(i, 9), 16), tok(phrase(i + 7, 5 + i), 16), tok(phrase(i + 3, 12), 16)]);
  const run = async (miniBatch: number) => {
    const grads = enc.zeroGrads();
    const r = contrastiveStep(gpu, enc, queries, passages, grads, { groupSize: 3, temperature: 0.05, pooling: 'cls', miniBatch, scale: 1, padId: 0 });
    const loss = (await gpu.readF32(r.loss))[0];
    const out = await Promise.all(paramList(grads).map(async (p) => ({ key: p.key, data: await gpu.readF32(p.tensor) })));
    for (const p of paramList(grads)) p.tensor.release();
    return { loss, grads: out };
  };
  const whole = await run(Infinity);
  assert.ok(Number.isFinite(whole.loss) && whole.loss > 0);
  for (const mb of [2, 1]) {
    const gc = await run(mb);
    assert.equal(gc.loss, whole.loss, `loss with mini-batch ${mb}`);
    // Same forward bits (deterministic kernels); only the order in which the pieces' parameter
    // gradients are summed differs: a few f32 roundings of values of the gradient's scale.
    for (const [i, g] of gc.grads.entries()) {
      const ref = whole.grads[i].data;
      let scale = 0;
      let diff = 0;
      for (let j = 0; j < ref.length; j++) {
        scale = Math.max(scale, Math.abs(ref[j]));
        diff = Math.max(diff, Math.abs(ref[j] - g.data[j]));
      }
      assert.ok(diff <= 1e-5 * Math.max(scale, 1e-3), `${g.key} (mini-batch ${mb}): max diff ${diff}, scale ${scale}`);
    }
  }
  model.dispose();
});

test('gradient checkpointing: the same loss and gradients bit for bit (with and without dropout), far fewer saved activations', async () => {
  const gpu = await testGpu();
  const model = await loadEmbeddingModel(gpu, localModelFiles(TINY), 'tiny');
  const enc = model.encoder;
  const tok = (t: string, n: number) => model.tokenizer.encode(t, n);
  const queries = [0, 1].map((i) => tok(`what about ${phrase(i, 3 + i)}?`, 12));
  const passages = [0, 1].flatMap((i) => [tok(phrase(i, 9), 16), tok(phrase(i + 7, 5 + i), 16)]);
  const run = async (miniBatch: number, recompute: boolean, dropout?: { p: number; seed: number }) => {
    const grads = enc.zeroGrads();
    const r = contrastiveStep(gpu, enc, queries, passages, grads, { groupSize: 2, temperature: 0.05, pooling: 'cls', miniBatch, scale: 1, padId: 0, recompute, dropout });
    const loss = (await gpu.readF32(r.loss))[0];
    const out = await Promise.all(paramList(grads).map(async (p) => ({ key: p.key, data: await gpu.readF32(p.tensor) })));
    for (const p of paramList(grads)) p.tensor.release();
    return { loss, grads: out };
  };
  const losses = new Map<string, number>();
  for (const dropout of [undefined, { p: 0.2, seed: 77 }]) {
    for (const mb of [Infinity, 2]) {
      const plain = await run(mb, false, dropout);
      const ckpt = await run(mb, true, dropout);
      // The recomputed layer runs the same kernels on the same input, with dropout masks
      // regenerated from the same seeds, so every activation, hence every gradient, has the same
      // bits (atol 0).
      const at = `mini-batch ${mb}, dropout ${dropout?.p ?? 0}`;
      assert.equal(ckpt.loss, plain.loss, `loss, ${at}`);
      for (const [i, g] of ckpt.grads.entries()) assert.deepEqual(g.data, plain.grads[i].data, `${g.key}, ${at}`);
      losses.set(at, plain.loss);
    }
  }
  assert.notEqual(losses.get('mini-batch Infinity, dropout 0.2'), losses.get('mini-batch Infinity, dropout 0'), 'dropout changes the loss');
  // What forwardTrain keeps for the backward: all of a layer's activations, or its input only.
  const { ids, mask, seqLen: L } = padBatch(passages.slice(0, 2), 0);
  const input = { ids: gpu.upload(ids, [2, L], 'u32'), mask: gpu.upload(mask, [2, L], 'u32'), typeIds: null, batch: 2, seqLen: L };
  const kept = (recompute: boolean) => {
    const { saved } = enc.forwardTrain(input, { ids, typeIds: null }, { recompute });
    const tensors = [...saved.layers.flatMap((l) => Object.values(l)), ...(saved.inputs ?? [])];
    const bytes = tensors.reduce((n, t) => n + t.byteLength, 0);
    for (const t of tensors) t.release();
    saved.last.release();
    for (const t of [saved.emb.emb, saved.emb.mean, saved.emb.rstd]) t.release();
    return bytes;
  };
  const all = kept(false);
  const inputsOnly = kept(true);
  const c = enc.config;
  assert.equal(inputsOnly, c.numLayers * 2 * L * c.hiddenSize * 4, 'one [B, L, H] input per layer');
  assert.ok(all > 5 * inputsOnly, `saved ${all} bytes without checkpointing, ${inputsOnly} with`);
  for (const t of [input.ids, input.mask]) t.release();
  model.dispose();
});

test('training writes HF checkpoints, lowers the loss, and a killed run resumes to identical weights', async () => {
  const dir = tmp();
  const data = groupsFile(dir, 8); // 4 micro-batches per epoch, 2 epochs = 8 steps
  const base = { model_name_or_path: TINY, train_data: data, save_steps: 1, save_total_limit: 2, settings, gpu: {}, quiet: true, resume: false };

  const full = await trainCommand({ ...base, output_dir: join(dir, 'full') });
  assert.equal(full.position.step, 8);
  const log = readFileSync(join(dir, 'full', 'train_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(log.length, 8);
  for (const l of log) for (const k of ['step', 'loss', 'lr', 'grad_norm', 'tokens_per_s', 'gpu_peak_mib']) assert.ok(Number.isFinite(l[k]), `log ${k}`);
  // warmup: ceil(8 * 0.2) = 2 steps, so the first update runs at lr 0 and the third at the peak
  assert.equal(log[0].lr, 0);
  assert.equal(log[2].lr, 1e-3);
  const firstEpoch = log.slice(0, 4).reduce((a, l) => a + l.loss, 0);
  const secondEpoch = log.slice(4).reduce((a, l) => a + l.loss, 0);
  assert.ok(secondEpoch < firstEpoch, `loss should fall on the same data: epoch 1 ${firstEpoch}, epoch 2 ${secondEpoch}`);
  // final model folder: HF + sentence-transformers layout, loadable by us
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'modules.json', '1_Pooling/config.json', 'sentence_bert_config.json']) {
    assert.ok(existsSync(join(dir, 'full', f)), `final model lacks ${f}`);
  }
  assert.deepEqual(readdirSync(join(dir, 'full')).filter((n) => n.startsWith('checkpoint-')).sort(), ['checkpoint-7', 'checkpoint-8'], 'save_total_limit 2');
  assert.ok(!weightsOf(join(dir, 'full', 'model.safetensors')).equals(weightsOf(`${TINY}/model.safetensors`)), 'weights changed');

  // killed after step 3 (a checkpoint is written there), then resumed
  const part = await trainCommand({ ...base, output_dir: join(dir, 'resumed'), max_steps: 3 });
  assert.equal(part.position.step, 3);
  assert.ok(!existsSync(join(dir, 'resumed', 'model.safetensors')), 'no final model before the end');
  const resumed = await trainCommand({ ...base, output_dir: join(dir, 'resumed'), resume: true });
  assert.equal(resumed.position.step, 8);
  assert.ok(weightsOf(join(dir, 'resumed', 'model.safetensors')).equals(weightsOf(join(dir, 'full', 'model.safetensors'))), 'resumed run must end with identical weights');
  assert.ok(weightsOf(join(dir, 'resumed', 'checkpoint-8', 'optimizer.safetensors')).equals(weightsOf(join(dir, 'full', 'checkpoint-8', 'optimizer.safetensors'))), 'and identical optimizer state');
  const model = await loadEmbeddingModel(await testGpu(), localModelFiles(join(dir, 'full')), 'tiny-tuned');
  assert.equal(model.settings.pooling, 'cls');
  assert.equal(model.settings.normalize, true);
  model.dispose();
});

test('hidden dropout: a forward without activations draws the masks the training forward does (GradCache relies on it)', async () => {
  const gpu = await testGpu();
  const model = await loadEmbeddingModel(gpu, localModelFiles(TINY), 'tiny');
  const enc = model.encoder;
  const rows = [0, 1, 2].map((i) => model.tokenizer.encode(phrase(i, 6 + 3 * i), 16));
  const { ids, mask, seqLen: L } = padBatch(rows, 0);
  const input = { ids: gpu.upload(ids, [3, L], 'u32'), mask: gpu.upload(mask, [3, L], 'u32'), typeIds: null, batch: 3, seqLen: L };
  const dropout = { p: 0.3, seed: 4242 };
  const inference = enc.forward(input, { dropout }).last;
  const { last, saved } = enc.forwardTrain(input, { ids, typeIds: null }, { dropout });
  const plain = enc.forward(input).last;
  const [a, b, c] = [await gpu.readF32(inference), await gpu.readF32(last), await gpu.readF32(plain)];
  assert.deepEqual(a, b, 'forward and forwardTrain with the same dropout spec');
  let changed = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== c[i]) changed++;
  assert.ok(changed > a.length / 2, `dropout changed only ${changed} of ${a.length} outputs`);
  // p = 0 is exactly no dropout.
  assert.deepEqual(await gpu.readF32(enc.forward(input, { dropout: { p: 0, seed: 1 } }).last), c);
  enc.backward(saved, gpu.zeros(last.shape), enc.zeroGrads());
  model.dispose();
});

test('aqa train: bad lines are reported with file:line and skipped; no usable line refuses to start', () => {
  const dir = tmp();
  const path = join(dir, 'bad.jsonl');
  const good = JSON.stringify({ query: 'a question', pos: ['a paper'], neg: ['another paper', 'a third paper'] });
  writeFileSync(path, ['{not json', JSON.stringify({ query: 'q', pos: [], neg: ['x'] }), JSON.stringify({ pos: ['p'] }), good, good].join('\n'));
  const common = ['train', '--model_name_or_path', TINY, '--per_device_train_batch_size', '2', '--train_group_size', '2', '--query_max_len', '8', '--passage_max_len', '8', '--save_steps', '0'];
  const r = runAqa([...common, '--train_data', path, '--output_dir', join(dir, 'out')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /bad\.jsonl:1: not valid JSON/);
  assert.match(r.stderr, /bad\.jsonl:2: pos: empty/);
  assert.match(r.stderr, /bad\.jsonl:3: query: missing/);
  assert.match(r.stderr, /3 training lines skipped/);
  assert.ok(existsSync(join(dir, 'out', 'model.safetensors')));

  const none = join(dir, 'none.jsonl');
  writeFileSync(none, '{not json\n\n');
  const r2 = runAqa([...common, '--train_data', none, '--output_dir', join(dir, 'out2')]);
  assert.equal(r2.code, 1);
  const errors = r2.stderr.split('\n').filter((l) => l.startsWith('aqa: '));
  assert.equal(errors.length, 1, r2.stderr);
  assert.match(errors[0], /none\.jsonl: no usable training groups/);
  assert.ok(!/\n\s+at /.test(r2.stderr), 'no stack trace');
});

test('aqa train: a non-finite loss stops with a clear error and writes no weights', () => {
  const dir = tmp();
  const data = groupsFile(dir, 4);
  // 1 / temperature overflows float32: the logits are infinite and the loss is NaN.
  const r = runAqa(['train', '--model_name_or_path', TINY, '--train_data', data, '--output_dir', join(dir, 'out'), '--temperature', '1e-39', '--per_device_train_batch_size', '2', '--train_group_size', '3', '--save_steps', '1']);
  assert.equal(r.code, 1, r.stderr);
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('aqa: '));
  assert.equal(errors.length, 1, r.stderr);
  assert.match(errors[0], /loss became (NaN|Infinity|-Infinity).*step 1.*weights were not updated.*no checkpoint was written yet/);
  assert.ok(!existsSync(join(dir, 'out', 'model.safetensors')));
});

test('--resume: a damaged checkpoint is refused in one line naming the file; the log keeps each step once', async () => {
  const dir = tmp();
  const data = groupsFile(dir, 8);
  const base = { model_name_or_path: TINY, train_data: data, save_steps: 1, save_total_limit: 3, settings, gpu: {}, quiet: true, resume: false };
  const out = join(dir, 'out');
  await trainCommand({ ...base, output_dir: out, max_steps: 3 });
  const ck = join(out, 'checkpoint-3');

  // a crash while the state was being written by hand (or a full disk): truncated JSON
  const statePath = join(ck, 'trainer_state.json');
  const state = readFileSync(statePath, 'utf8');
  writeFileSync(statePath, state.slice(0, state.length >> 1));
  await assert.rejects(trainCommand({ ...base, output_dir: out, resume: true }), (e: Error) => {
    assert.ok(!e.message.includes('\n'), e.message);
    assert.ok(e.message.startsWith(`${statePath}: `), e.message);
    assert.match(e.message, /not valid JSON/);
    return true;
  });
  writeFileSync(statePath, state);

  // the moments file removed: the message names it and says what to do, not a raw ENOENT
  const optPath = join(ck, 'optimizer.safetensors');
  const opt = readFileSync(optPath);
  rmSync(optPath);
  await assert.rejects(trainCommand({ ...base, output_dir: out, resume: true }), (e: Error) => {
    assert.ok(!e.message.includes('\n'), e.message);
    assert.ok(e.message.startsWith(`${optPath}: `), e.message);
    assert.doesNotMatch(e.message, /ENOENT/);
    assert.match(e.message, /without --resume|remove/);
    return true;
  });
  writeFileSync(optPath, opt);

  // a crash after step 3 was logged but before its checkpoint was renamed into place: the resumed
  // run starts again from step 2, and the log must not list step 3 twice
  rmSync(ck, { recursive: true });
  const r = await trainCommand({ ...base, output_dir: out, resume: true });
  assert.equal(r.position.step, 8);
  const steps = readFileSync(join(out, 'train_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).step);
  assert.deepEqual(steps, [1, 2, 3, 4, 5, 6, 7, 8]);
});

test('one option table: aqa train flags, their defaults and validateSettings agree with DEFAULT_SETTINGS', () => {
  const parse = (args: string[]) => settingsFromFlags(addTrainOptions(new Command().exitOverride()).parse(args, { from: 'user' }).opts());
  const d = parse([]);
  // the model decides these two when they are not given
  assert.equal(d.settings.queryInstruction, null);
  assert.equal(d.settings.hiddenDropout, null);
  assert.deepEqual({ ...d.settings, queryInstruction: '', hiddenDropout: 0 }, DEFAULT_SETTINGS);
  assert.deepEqual(d.save, { saveSteps: 500, saveTotalLimit: 2 });
  // every option is a flag, named as in FlagEmbedding, and sets its field
  const given = parse(['--per_device_train_batch_size', '3', '--adam_beta2', '0.98', '--gradient_checkpointing', '--query_instruction_for_retrieval', '', '--save_steps', '0']);
  assert.equal(given.settings.queriesPerStep, 3);
  assert.equal(given.settings.adamBeta2, 0.98);
  assert.equal(given.settings.gradientCheckpointing, true);
  assert.equal(given.settings.queryInstruction, '');
  assert.equal(given.save.saveSteps, 0);
  assert.throws(() => parse(['--learning_rate', '0']), /^Error: --learning_rate: must be a number > 0, got '0'$/);
  assert.throws(() => parse(['--warmup_ratio', 'x']), /--warmup_ratio: must be a number in \[0, 1\], got 'x'/);
  // validateSettings applies the same rules, named as in the table
  for (const o of SETTINGS_OPTIONS) if (o.rule === 'posInt') assert.throws(() => validateSettings({ ...DEFAULT_SETTINGS, [o.key]: 0 }), new RegExp(`^Error: ${o.name}: must be an integer >= 1, got 0$`));
  assert.throws(() => validateSettings({ ...DEFAULT_SETTINGS, hiddenDropout: 1 }), /hidden_dropout_prob: must be a number in \[0, 1\), got 1/);
});
