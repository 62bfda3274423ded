// `--engine onnx`: the exported onnx/model.onnx on onnxruntime-node's CPU provider gives what the
// WebGPU engine gives, a model folder without the export is a one-line error, and the WebGPU
// engine on a CPU driver names the faster choice once.

import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { readNpy } from '../node/npy.ts';
import { assertOneLineError, runAqa, tempDir } from './helpers.ts';

const TINY = 'test/fixtures/tiny-bert';
const NOTE = /^note: the adapter is a CPU driver \((.+)\); --engine onnx \(after aqa export --format onnx\) embeds faster here$/gm;

test('aqa embed --engine onnx matches the WebGPU engine; the CPU-driver note; the missing-export error', async (t) => {
  const d = tempDir(t, 'engine-onnx');
  const exported = join(d, 'onnx-model');
  const ex = runAqa(['export', '--format', 'onnx', '--model', TINY, '--out', exported]);
  assert.equal(ex.code, 0, ex.stderr);
  // One folder with both the safetensors weights (WebGPU) and onnx/model.onnx.
  const model = join(d, 'model');
  cpSync(TINY, model, { recursive: true });
  cpSync(join(exported, 'onnx'), join(model, 'onnx'), { recursive: true });

  const input = join(d, 'in.txt');
  // Different lengths in batches of 2 (sorted by length, then put back in input order), an
  // empty text and one truncated to the model's 64 positions.
  writeFileSync(input, ['hello world', 'the quick brown fox jumps over the lazy dog', '', 'embeddings on a CPU', 'transformer '.repeat(200), 'a'].join('\n') + '\n');
  const common = ['--model', model, '--input', input, '--batch-size', '2'];
  const gpu = runAqa(['embed', ...common, '--out', join(d, 'webgpu.npy')]);
  assert.equal(gpu.code, 0, gpu.stderr);
  const cpu = runAqa(['embed', ...common, '--engine', 'onnx', '--out', join(d, 'onnx.npy')]);
  assert.equal(cpu.code, 0, cpu.stderr);

  const a = await readNpy(join(d, 'webgpu.npy'));
  const b = await readNpy(join(d, 'onnx.npy'));
  assert.deepEqual(a.shape, [6, 32]);
  assert.deepEqual(b.shape, a.shape);
  // Both run the same f32 arithmetic in a different order (WGSL matmul tiles vs onnxruntime's
  // kernels); on unit vectors of a 2-layer model that leaves differences of about 1e-7, so 1e-5
  // catches any real difference (tokenizer, prefix, truncation, pooling, row order).
  let max = 0;
  for (let i = 0; i < a.data.length; i++) max = Math.max(max, Math.abs(a.data[i] - b.data[i]));
  assert.ok(max < 1e-5, `max abs difference ${max}`);

  // The note: once, for the WebGPU engine only, and only on a CPU driver.
  const adapter = /^adapter: (.+)$/m.exec(gpu.stderr)?.[1] ?? '';
  const notes = [...gpu.stderr.matchAll(NOTE)];
  if (/llvmpipe|lavapipe|swiftshader/i.test(adapter)) {
    assert.equal(notes.length, 1, gpu.stderr);
    assert.equal(notes[0][1], adapter);
  } else {
    assert.equal(notes.length, 0, gpu.stderr);
  }
  assert.doesNotMatch(cpu.stderr, /^note: /m);

  // A folder without the export: one line naming it and the command that makes it.
  const bare = resolve(TINY);
  assertOneLineError(runAqa(['embed', '--model', bare, '--input', input, '--out', join(d, 'x.npy'), '--engine', 'onnx']), `${bare} has no onnx/model.onnx: run aqa export --format onnx --model ${bare} --out <dir2>`);
});

test('an index built with --engine onnx is searched with either engine; index names the faster engine on a CPU driver', (t) => {
  const d = tempDir(t, 'engine-onnx-index');
  const model = join(d, 'model');
  cpSync(TINY, model, { recursive: true });
  const ex = runAqa(['export', '--format', 'onnx', '--model', TINY, '--out', join(d, 'exported')]);
  assert.equal(ex.code, 0, ex.stderr);
  cpSync(join(d, 'exported', 'onnx'), join(model, 'onnx'), { recursive: true });
  const corpus = 'test/fixtures/index/corpus.json';
  const questions = 'test/fixtures/index/questions.jsonl';

  const built = runAqa(['index', '--engine', 'onnx', '--model', model, '--corpus', corpus, '--out', join(d, 'idx'), '--shard-size', '16']);
  assert.equal(built.code, 0, built.stderr);
  assert.doesNotMatch(built.stderr, /^note: /m);
  // The WebGPU engine takes the index as its own: nothing to rebuild.
  const again = runAqa(['index', '--model', model, '--corpus', corpus, '--out', join(d, 'idx'), '--shard-size', '16']);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /up to date/);

  const top = (engine: string) => {
    const r = runAqa(['search', '--engine', engine, '--index', join(d, 'idx'), '--questions', questions, '--out', join(d, `${engine}.jsonl`), '--k', '5']);
    assert.equal(r.code, 0, r.stderr);
    return readFileSync(join(d, `${engine}.jsonl`), 'utf8').split('\n').filter(Boolean).map((l) => Object.keys(JSON.parse(l)));
  };
  // Scores differ in the last float bits at most; the rankings are the same.
  assert.deepEqual(top('onnx'), top('webgpu'));

  const fresh = runAqa(['index', '--model', model, '--corpus', corpus, '--out', join(d, 'idx2'), '--shard-size', '16']);
  assert.equal(fresh.code, 0, fresh.stderr);
  const adapter = /^adapter: (.+)$/m.exec(fresh.stderr)?.[1] ?? '';
  assert.equal([...fresh.stderr.matchAll(NOTE)].length, /llvmpipe|lavapipe|swiftshader/i.test(adapter) ? 1 : 0, fresh.stderr);
});
