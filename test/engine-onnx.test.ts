// `--engine onnx`: the exported onnx/model.onnx on onnxruntime-node's CPU provider gives what the
// WebGPU engine gives, a model folder without the export is a one-line error, and the WebGPU
// engine on a CPU driver names the faster choice once.

import assert from 'node:assert/strict';
import { cpSync, writeFileSync } from 'node:fs';
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
