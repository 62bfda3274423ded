// Whole-model forward against independent references (GTE v1.5's official code, Hugging Face
// BertModel, sentence-transformers) on the default test device; the checks and their
// tolerances are in test/model-parity.ts, which test/compat-model.test.ts also runs on
// OpenGL ES. Also: a non-finite weight is refused at load.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseSafetensorsHeader, SafetensorsError } from '../core/model/safetensors.ts';
import { memoryModelFiles } from '../core/model/source.ts';
import { loadEmbeddingModel } from '../core/retrieval/embed.ts';
import { registerGpuChecks, testGpu } from './helpers.ts';
import { forwardParity } from './model-parity.ts';

registerGpuChecks(forwardParity, testGpu);

test('a NaN in one LayerNorm weight is refused at load, naming the tensor and the file', async () => {
  const gpu = await testGpu();
  const dir = 'test/fixtures/tiny-bert';
  const files: Record<string, Uint8Array> = {};
  for (const f of readdirSync(dir)) if (f !== 'golden.safetensors') files[f] = new Uint8Array(readFileSync(`${dir}/${f}`));
  const name = 'encoder.layer.1.output.LayerNorm.weight';
  const info = (await parseSafetensorsHeader((await memoryModelFiles('x', files).file('model.safetensors'))!)).tensors.get(name)!;
  new DataView(files['model.safetensors'].buffer).setFloat32(info.start + 4 * 5, NaN, true);
  await assert.rejects(loadEmbeddingModel(gpu, memoryModelFiles('tiny-nan', files), 'tiny-nan'), (e: Error) => {
    assert.ok(e instanceof SafetensorsError, `expected SafetensorsError, got ${e.message}`);
    assert.ok(!e.message.includes('\n'), 'one line');
    assert.ok(e.message.includes(`tiny-nan/model.safetensors: tensor '${name}'`), e.message);
    assert.match(e.message, /element 5 is NaN/);
    return true;
  });
});
