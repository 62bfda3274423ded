// `aqa export`: a model folder with its float weights stored as f16. The copy must load and
// embed like the original up to f16 rounding of the weights, keep every other file byte for
// byte, halve the weights file, and refuse what f16 cannot hold without writing anything.

import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseSafetensorsHeader } from '../core/model/safetensors.ts';
import { loadEmbeddingModel } from '../core/retrieval/embed.ts';
import { runExport } from '../node/export-command.ts';
import { writeSafetensorsFile, fileSource, localModelFiles } from '../node/files.ts';
import { readTensor } from '../core/model/safetensors.ts';
import { minRowCosine } from './cases/types.ts';
import { tempDir, testGpu, runAqa } from './helpers.ts';

const TINY = 'test/fixtures/tiny-bert';
const TEXTS = ['Hello world, this is a tiny BERT model.', 'a', 'protein folding with graph neural networks', 'Café naïve 日本語 x² tokenization'];

test('export --dtype f16: F16 weights, half the bytes, other files unchanged, same embeddings up to f16 rounding', async () => {
  const out = join(tempDir({ after }, 'export'), 'tiny-f16');
  const r = await runExport({ model: TINY, out, dtype: 'f16' });
  const header = await parseSafetensorsHeader(await fileSource(join(out, 'model.safetensors')));
  const original = await parseSafetensorsHeader(await fileSource(join(TINY, 'model.safetensors')));
  assert.deepEqual([...header.tensors.keys()].sort(), [...original.tensors.keys()].sort());
  for (const [name, info] of header.tensors) {
    const was = original.tensors.get(name)!;
    assert.deepEqual(info.shape, was.shape, name);
    assert.equal(info.dtype, was.dtype.startsWith('F') || was.dtype === 'BF16' ? 'F16' : was.dtype, name);
  }
  assert.ok(r.bytesOut < 0.55 * statSync(join(TINY, 'model.safetensors')).size, `${r.bytesOut} bytes`);
  for (const f of readdirSync(TINY)) {
    if (f === 'model.safetensors') continue;
    assert.deepEqual(readFileSync(join(out, f)), readFileSync(join(TINY, f)), f);
  }

  const gpu = await testGpu();
  const a = await loadEmbeddingModel(gpu, localModelFiles(TINY), 'tiny');
  const b = await loadEmbeddingModel(gpu, localModelFiles(out), 'tiny');
  const ea = await a.embed(TEXTS), eb = await b.embed(TEXTS);
  // Weights rounded to f16 (relative error <= 2^-11 each) move these unit vectors by far less
  // than 1e-3 in cosine; an export that scrambled or dropped a tensor would not.
  const { cos } = minRowCosine(eb, ea, a.dim);
  assert.ok(cos >= 0.999, `min cosine ${cos}`);
  a.dispose();
  b.dispose();
});

test('export refuses a weight f16 cannot hold, and a non-empty --out, in one line, writing nothing', async () => {
  const dir = tempDir({ after }, 'export-bad');
  const model = join(dir, 'model');
  cpSync(TINY, model, { recursive: true });
  const f = await parseSafetensorsHeader(await fileSource(join(TINY, 'model.safetensors')));
  const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
  for (const [name] of f.tensors) {
    const t = await readTensor(f, name);
    tensors[name] = { dtype: 'F32', shape: t.shape, data: t.data };
  }
  const big = 'embeddings.LayerNorm.weight';
  const key = Object.keys(tensors).find((k) => k.endsWith(big))!;
  tensors[key].data[3] = 1e6;
  await writeSafetensorsFile(join(model, 'model.safetensors'), tensors, { format: 'pt' });

  let r = runAqa(['export', '--model', model, '--out', join(dir, 'out')]);
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('aqa: '));
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], new RegExp(`${big.replace(/\./g, '\\.')}: element 3 is 1000000, which f16 cannot hold`));
  assert.ok(!existsSync(join(dir, 'out')), 'nothing written');
  assert.deepEqual(readdirSync(dir).sort(), ['model']);

  r = runAqa(['export', '--model', TINY, '--out', model]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /aqa: --out .*model: folder exists and is not empty/);
});
