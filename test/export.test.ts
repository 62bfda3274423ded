// `aqa export`: a model folder with its float weights stored as f16. The copy must load and
// embed like the original up to f16 rounding of the weights, keep every other file byte for
// byte, halve the weights file, and refuse what f16 cannot hold without writing anything.
// `--dtype int8`: the Linear weights as per-output-channel int8 with their scales, which the
// loader dequantizes; a damaged scale, training and re-exporting are refused in one line.

import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { l2NormalizeForward, meanPoolForward } from '../core/kernels/pooling.ts';
import { loadEncoder } from '../core/model/load.ts';
import { parseSafetensorsHeader, readInt64Tensor, readTensorBytes, type TensorToWrite } from '../core/model/safetensors.ts';
import { loadEmbeddingModel } from '../core/retrieval/embed.ts';
import { runExport } from '../node/export-command.ts';
import { writeSafetensorsFile, fileSource, localModelFiles } from '../node/files.ts';
import { readTensor } from '../core/model/safetensors.ts';
import { minRowCosine } from './cases/types.ts';
import { assertOneLineError, tempDir, testGpu, runAqa } from './helpers.ts';

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

// ----- --dtype int8 -----
//
// The check of the stored values is computed here from the f32 file, not with the exporter's
// code: per row o of a Linear weight W, scale[o] = max|W[o, :]| / 127 (as f32) and every
// |W - q * scale[o]| <= scale[o] / 2, q in [-127, 127].

const GTE = 'test/fixtures/gte-dev';
/** The Linear (matmul) weights of each family's table, spelled out independently of architectures.ts. */
const LINEAR = /\.(attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense|attention\.qkv_proj|attention\.o_proj|mlp\.up_gate_proj|mlp\.down_proj)\.weight$/;
/**
 * Cosine of the int8 model's pooled embeddings to the f32 model's, on each fixture's golden
 * inputs. Each weight moves by at most scale/2 = max|row|/254, i.e. about 0.2-0.4% of a row's
 * typical weight for these random-init fixtures, a relative error of order 1e-3 in each matmul
 * output; through 2 layers and the LayerNorms that stays far below 1e-2 in cosine. Measured
 * (llvmpipe): 0.9999991 tiny-bert, 0.9999979 gte-dev. A dropped or transposed scale gives ~0.
 */
const INT8_MIN_COS = 0.999;

async function int8Export(dir: string, src: string, name: string) {
  const out = join(dir, name);
  await runExport({ model: src, out, dtype: 'int8' });
  return out;
}

/** Mean-pooled, normalised embeddings of a fixture's golden inputs through `dir`'s weights. */
async function goldenEmbeddings(dir: string, fixture: string): Promise<{ emb: Float32Array; H: number }> {
  const gpu = await testGpu();
  const enc = await loadEncoder(gpu, localModelFiles(dir));
  const g = await parseSafetensorsHeader(await fileSource(join(fixture, 'golden.safetensors')));
  const u32 = async (n: string) => Uint32Array.from((await readInt64Tensor(g, n)).data, (v) => Number(v));
  const ids = await readInt64Tensor(g, 'input_ids');
  const [B, L] = ids.shape;
  const up = async (n: string) => gpu.upload(await u32(n), [B, L], 'u32');
  const [tIds, tMask, tTypes] = [await up('input_ids'), await up('attention_mask'), await up('token_type_ids')];
  const { last } = enc.forward({ ids: tIds, mask: tMask, typeIds: tTypes, batch: B, seqLen: L });
  const H = enc.config.hiddenSize;
  const pooled = gpu.empty([B, H]);
  meanPoolForward(gpu, pooled, last, tMask);
  const normed = gpu.empty([B, H]);
  const norm = gpu.empty([B]);
  l2NormalizeForward(gpu, normed, norm, pooled);
  const emb = await gpu.readF32(normed);
  for (const t of [tIds, tMask, tTypes, last, pooled, normed, norm]) t.release();
  enc.dispose();
  return { emb, H };
}

for (const fixture of [TINY, GTE]) {
  test(`export --dtype int8 of ${fixture}: Linear weights I8 within scale/2 with F32 scales, the rest F16, config says so; embeddings within cosine ${INT8_MIN_COS}`, async () => {
    const out = await int8Export(tempDir({ after }, 'export-int8'), fixture, 'int8');
    const orig = await parseSafetensorsHeader(await fileSource(join(fixture, 'model.safetensors')));
    const got = await parseSafetensorsHeader(await fileSource(join(out, 'model.safetensors')));
    const linear = [...orig.tensors.keys()].filter((n) => LINEAR.test(n)).sort();
    assert.ok(linear.length >= 8, `${linear.length} Linear weights found`);
    assert.deepEqual([...got.tensors.keys()].sort(), [...orig.tensors.keys(), ...linear.map((n) => `${n}_scale`)].sort());
    for (const [name, info] of orig.tensors) {
      const stored = got.tensors.get(name)!;
      assert.deepEqual(stored.shape, info.shape, name);
      if (!linear.includes(name)) {
        assert.equal(stored.dtype, info.dtype.startsWith('F') || info.dtype === 'BF16' ? 'F16' : info.dtype, name);
        continue;
      }
      assert.equal(stored.dtype, 'I8', name);
      const [rows, cols] = info.shape;
      const scaleInfo = got.tensors.get(`${name}_scale`)!;
      assert.equal(scaleInfo.dtype, 'F32');
      assert.deepEqual(scaleInfo.shape, [rows]);
      const w = (await readTensor(orig, name)).data;
      const { bytes } = await readTensorBytes(got, name);
      const q = new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const scale = (await readTensor(got, `${name}_scale`)).data;
      for (let o = 0; o < rows; o++) {
        let max = 0;
        for (let i = 0; i < cols; i++) max = Math.max(max, Math.abs(w[o * cols + i]));
        const want = max > 0 ? Math.fround(max / 127) : 1;
        assert.equal(scale[o], want, `${name} scale[${o}]`);
        for (let i = 0; i < cols; i++) {
          const k = o * cols + i;
          assert.ok(q[k] >= -127 && q[k] <= 127, `${name}[${o}, ${i}] = ${q[k]}`);
          const err = Math.abs(w[k] - q[k] * scale[o]);
          assert.ok(err <= (scale[o] / 2) * (1 + 1e-9), `${name}[${o}, ${i}]: |${w[k]} - ${q[k]} * ${scale[o]}| = ${err} > scale/2`);
        }
      }
    }
    const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    const was = JSON.parse(readFileSync(join(fixture, 'config.json'), 'utf8'));
    const { quantization_config: qc, ...rest } = cfg;
    assert.deepEqual(rest, was, 'config.json otherwise unchanged');
    assert.equal(qc.bits, 8);
    assert.equal(qc.symmetric, true);
    assert.equal(qc.granularity, 'per-output-channel');
    assert.deepEqual([...qc.tensors].sort(), linear);
    for (const f of readdirSync(fixture)) {
      if (f !== 'model.safetensors' && f !== 'config.json') assert.deepEqual(readFileSync(join(out, f)), readFileSync(join(fixture, f)), f);
    }
    assert.ok(statSync(join(out, 'model.safetensors')).size < 0.5 * statSync(join(fixture, 'model.safetensors')).size);

    const a = await goldenEmbeddings(fixture, fixture);
    const b = await goldenEmbeddings(out, fixture);
    const { cos, row } = minRowCosine(b.emb, a.emb, a.H);
    if (process.env.AQA_TEST_VERBOSE) console.log(`  ${fixture} int8 vs f32: min cosine ${cos.toFixed(7)}`);
    assert.ok(cos >= INT8_MIN_COS, `row ${row}: cosine ${cos} < ${INT8_MIN_COS}`);
  });
}

test('int8 folder: tiny-bert embeds through the CLI; a missing or wrong-length scale is one line naming file and tensor; training and re-export refuse it', async () => {
  const dir = tempDir({ after }, 'export-int8-bad');
  const good = await int8Export(dir, TINY, 'int8');
  const input = join(dir, 'texts.txt');
  writeFileSync(input, `${TEXTS.join('\n')}\n`);
  let r = runAqa(['embed', '--model', good, '--input', input, '--out', join(dir, 'e.npy')]);
  assert.equal(r.code, 0, r.stderr);

  const f = await parseSafetensorsHeader(await fileSource(join(good, 'model.safetensors')));
  const raw: Record<string, TensorToWrite> = {};
  for (const [name, info] of f.tensors) raw[name] = { dtype: info.dtype, shape: info.shape, data: (await readTensorBytes(f, name)).bytes };
  const target = 'encoder.layer.1.intermediate.dense.weight';
  const broken = async (name: string, edit: (t: Record<string, TensorToWrite>) => void) => {
    const model = join(dir, name);
    cpSync(good, model, { recursive: true });
    const t = { ...raw };
    edit(t);
    await writeSafetensorsFile(join(model, 'model.safetensors'), t, { format: 'pt' });
    return model;
  };
  const noScale = await broken('no-scale', (t) => delete t[`${target}_scale`]);
  r = runAqa(['embed', '--model', noScale, '--input', input, '--out', join(dir, 'x.npy')]);
  assertOneLineError(r, 'no-scale/model.safetensors', `'${target}'`, `'${target}_scale' is missing`);
  const short = await broken('short-scale', (t) => (t[`${target}_scale`] = { dtype: 'F32', shape: [3], data: new Float32Array([1, 2, 3]) }));
  await assert.rejects(loadEmbeddingModel(await testGpu(), localModelFiles(short), 'short'), (e: Error) => {
    assert.ok(!e.message.includes('\n'), e.message);
    assert.match(e.message, new RegExp(`short-scale/model\\.safetensors: tensor '${target}_scale': shape \\[3\\] does not match '${target}', which has \\d+ output rows`));
    return true;
  });

  const data = join(dir, 'train.jsonl');
  writeFileSync(data, `${JSON.stringify({ query: 'a question', pos: ['a paper'], neg: ['another paper'] })}\n`);
  r = runAqa(['train', '--model_name_or_path', good, '--train_data', data, '--output_dir', join(dir, 'trained'), '--train_group_size', '2']);
  assertOneLineError(r, 'int8/model.safetensors', 'is int8', 'training needs the original float weights');
  assert.ok(!existsSync(join(dir, 'trained', 'model.safetensors')));
  r = runAqa(['export', '--model', good, '--out', join(dir, 'again'), '--dtype', 'f16']);
  assertOneLineError(r, 'is int8 already');
});

test('export --dtype int8 refuses a non-finite Linear weight in one line, writing nothing', async () => {
  const dir = tempDir({ after }, 'export-int8-nan');
  const model = join(dir, 'model');
  cpSync(TINY, model, { recursive: true });
  const f = await parseSafetensorsHeader(await fileSource(join(TINY, 'model.safetensors')));
  const tensors: Record<string, TensorToWrite> = {};
  for (const [name] of f.tensors) {
    const t = await readTensor(f, name);
    tensors[name] = { dtype: 'F32', shape: t.shape, data: t.data };
  }
  const key = Object.keys(tensors).find((k) => k.endsWith('encoder.layer.0.attention.self.key.weight'))!;
  (tensors[key].data as Float32Array)[5] = NaN;
  await writeSafetensorsFile(join(model, 'model.safetensors'), tensors, { format: 'pt' });
  const r = runAqa(['export', '--model', model, '--out', join(dir, 'out'), '--dtype', 'int8']);
  assertOneLineError(r, 'attention.self.key.weight: element 5 is NaN');
  assert.deepEqual(readdirSync(dir).sort(), ['model']);
});
