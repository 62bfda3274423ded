// Whole-model forward against independent references, as checks that take the Gpu to run on
// (test/model.test.ts runs them on the default device, test/compat-model.test.ts on OpenGL ES):
//  - gte-dev: the official GTE v1.5 reference implementation (test/fixtures/gte-dev/README.md)
//  - tiny-bert: Hugging Face transformers BertModel (test/fixtures/tiny-bert/README.md)
//  - all-MiniLM-L6-v2: sentence-transformers encode() on 80 varied texts (test/fixtures/minilm)
//
// Tolerances (from the fixtures' float32-vs-float64 tables, ~10x the reference's own rounding
// noise of <= 8e-7 on O(1..4) values): hidden states and poolings 1e-5 absolute, normalised
// embeddings 2e-6 (tiny fixtures) / 1e-5 per component and cosine >= 0.99999 (MiniLM, where
// 6 layers and 256-token reductions in another order add a few 1e-7).

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import type { Gpu } from '../core/gpu/device.ts';
import { parseSafetensorsHeader, readTensor, type SafetensorsFile } from '../core/model/safetensors.ts';
import { loadEmbeddingModel } from '../core/retrieval/embed.ts';
import { fileSource, localModelFiles } from '../node/files.ts';
import { forwardFixture } from './browser/model.ts';
import { minRowCosine } from './cases/types.ts';
import { assertClose, type GpuCheck } from './helpers.ts';

export const MINILM_DIR = 'test/models/all-MiniLM-L6-v2';

async function golden(path: string): Promise<SafetensorsFile> {
  return parseSafetensorsHeader(await fileSource(path));
}

async function f32(g: SafetensorsFile, name: string): Promise<Float32Array> {
  return (await readTensor(g, name)).data;
}

/** hidden_states.0 .. .N in a golden file: the embedding output, then one per layer. */
function hiddenStateCount(g: SafetensorsFile): number {
  const n = [...g.tensors.keys()].filter((k) => /^hidden_states\.\d+$/.test(k)).length;
  assert.ok(n >= 2, `${g.name}: expected hidden_states.0 and at least one layer's, found ${n}`);
  for (let i = 0; i < n; i++) assert.ok(g.tensors.has(`hidden_states.${i}`), `${g.name}: hidden_states.${i} is missing`);
  return n;
}

export const gteForward: GpuCheck = {
  name: 'GTE v1.5 forward matches the official reference (gte-dev fixture)',
  async run(gpu: Gpu) {
    const out = await forwardFixture(gpu, localModelFiles('test/fixtures/gte-dev'));
    const g = await golden('test/fixtures/gte-dev/golden.safetensors');
    const n = hiddenStateCount(g);
    assert.equal(out.hidden.length, n);
    for (let i = 0; i < n; i++) assertClose(`hidden_states.${i}`, out.hidden[i], await f32(g, `hidden_states.${i}`), { atol: 1e-5 });
    assertClose('last_hidden_state', out.hidden[n - 1], await f32(g, 'last_hidden_state'), { atol: 1e-5 });
    assertClose('cls', out.cls, await f32(g, 'cls'), { atol: 1e-5 });
    assertClose('cls_normalized', out.clsN, await f32(g, 'cls_normalized'), { atol: 2e-6 });
  },
};

export const bertForward: GpuCheck = {
  name: 'BERT forward matches Hugging Face transformers (tiny-bert fixture)',
  async run(gpu: Gpu) {
    const out = await forwardFixture(gpu, localModelFiles('test/fixtures/tiny-bert'));
    const g = await golden('test/fixtures/tiny-bert/golden.safetensors');
    const n = hiddenStateCount(g);
    assert.equal(out.hidden.length, n);
    for (let i = 0; i < n; i++) assertClose(`hidden_states.${i}`, out.hidden[i], await f32(g, `hidden_states.${i}`), { atol: 1e-5 });
    assertClose('cls', out.cls, await f32(g, 'cls'), { atol: 1e-5 });
    assertClose('mean', out.mean, await f32(g, 'mean'), { atol: 1e-5 });
    assertClose('cls_normalized', out.clsN, await f32(g, 'cls_normalized'), { atol: 2e-6 });
    assertClose('mean_normalized', out.meanN, await f32(g, 'mean_normalized'), { atol: 2e-6 });
  },
};

type MinilmPass = readonly [maxLength: number, golden: 'embeddings' | 'embeddings_128'];
const MINILM_PASSES: readonly MinilmPass[] = [
  [256, 'embeddings'],
  [128, 'embeddings_128'],
];

/** all-MiniLM-L6-v2 on every text of test/fixtures/minilm at the given max lengths (the default: 256 and 128). */
export function minilmForward(passes: readonly MinilmPass[] = MINILM_PASSES): GpuCheck {
  return {
    name: `all-MiniLM-L6-v2 embeddings match sentence-transformers on 81 texts (max length ${passes.map(([l]) => l).join(' and ')})`,
    async run(gpu: Gpu) {
      assert.ok(existsSync(`${MINILM_DIR}/model.safetensors`), `${MINILM_DIR} is missing: run bash tools/fetch-test-models.sh`);
      const model = await loadEmbeddingModel(gpu, localModelFiles(MINILM_DIR), 'sentence-transformers/all-MiniLM-L6-v2');
      assert.equal(model.settings.pooling, 'mean');
      assert.equal(model.settings.maxLength, 256);
      const texts = readFileSync('test/fixtures/minilm/texts.jsonl', 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { text: string }).text);
      const g = await golden('test/fixtures/minilm/golden.safetensors');
      const D = model.dim;
      for (const [maxLength, name] of passes) {
        const ours = await model.embed(texts, { maxLength, batchSize: 16 });
        const ref = await f32(g, name);
        const { cos: worstCos, row: worstAt } = minRowCosine(ours, ref, D);
        if (process.env.AQA_TEST_VERBOSE) console.log(`  ${name}: min cosine ${worstCos.toFixed(9)} (text ${worstAt})`);
        assert.ok(worstCos >= 0.99999, `${name}: text ${worstAt} has cosine ${worstCos} to the reference (< 0.99999)`);
        assertClose(name, ours, ref, { atol: 1e-5 });
      }
      model.dispose();
    },
  };
}

/** Every forward-parity check, in the order test/model.test.ts runs them. */
export const forwardParity: GpuCheck[] = [gteForward, bertForward, minilmForward()];
