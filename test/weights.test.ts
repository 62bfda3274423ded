// Parameter lists and checkpoint name matching: the GTE fixture end to end, BERT and GTE name
// variants on synthetic header-only name sets, sharded checkpoints, and the failure messages.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { loadConfig, parseConfig, type EncoderConfig } from '../core/model/config.ts';
import { parseSafetensorsHeader, readTensor, SafetensorsError, serializeSafetensors, type TensorToWrite } from '../core/model/safetensors.ts';
import { memoryModelFiles } from '../core/model/source.ts';
import { bindWeights, openWeights, paramSpecs, readParam, resolveWeightName, weightNameCandidates } from '../core/model/weights.ts';
import { localModelFiles } from '../node/files.ts';

const FIXTURE = new URL('./fixtures/gte-dev/', import.meta.url).pathname;

const tinyBert = (over: Record<string, unknown> = {}): EncoderConfig =>
  parseConfig({
    model_type: 'bert',
    hidden_size: 8,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    intermediate_size: 12,
    vocab_size: 20,
    max_position_embeddings: 16,
    type_vocab_size: 2,
    ...over,
  });

/** A zero-filled F32 checkpoint with exactly `names` -> shapes. */
function checkpoint(tensors: Record<string, number[]>, dtype: 'F32' | 'F16' = 'F32'): Uint8Array {
  const out: Record<string, TensorToWrite> = {};
  for (const [name, shape] of Object.entries(tensors)) {
    const n = shape.reduce((a, b) => a * b, 1);
    out[name] = { dtype, shape, data: dtype === 'F32' ? Float32Array.from({ length: n }, (_, i) => i) : new Uint16Array(n) };
  }
  return serializeSafetensors(out);
}

function expectSafetensorsError(e: unknown, ...parts: string[]): true {
  assert.ok(e instanceof SafetensorsError, `expected SafetensorsError, got ${(e as Error).message}`);
  assert.ok(!e.message.includes('\n'), 'one line');
  for (const p of parts) assert.ok(e.message.includes(p), `message lacks '${p}': ${e.message}`);
  if (process.env.AQA_TEST_VERBOSE) console.log(`  ${e.message}`);
  return true;
}

/** The fixture's layer count, from its golden file: hidden_states.0 (embeddings) .. .L. */
async function goldenLayers(): Promise<number> {
  const g = await parseSafetensorsHeader((await localModelFiles(FIXTURE).file('golden.safetensors'))!);
  const layers = [...g.tensors.keys()].filter((k) => /^hidden_states\.\d+$/.test(k)).length - 1;
  assert.ok(layers >= 1, `${g.name}: no hidden_states.<layer> tensors`);
  return layers;
}

describe('weights', () => {
  test('GTE fixture: every tensor resolves with the right shapes and values', async () => {
    const files = localModelFiles(FIXTURE);
    const cfg = await loadConfig(files);
    const layers = await goldenLayers();
    assert.equal(cfg.numLayers, layers);
    const specs = paramSpecs(cfg);
    assert.equal(specs.length, 4 + 11 * layers); // 4 embedding tensors + 11 per layer
    const ws = await openWeights(files);
    const bound = bindWeights(cfg, ws);
    assert.equal(bound.params.size, 4 + 11 * layers);
    assert.deepEqual(bound.unused, []);
    assert.deepEqual(bound.missingOptional, []);
    // Same names and shapes as the fixture README's table, in the header's order.
    const header = [...ws.tensors.values()].map((t) => [t.info.name, t.info.shape]);
    assert.deepEqual(specs.map((s) => [s.name, s.shape]).sort(), header.sort());
    for (const b of bound.params.values()) assert.equal(b.stored, b.spec.name);
    assert.deepEqual(bound.params.get(`encoder.layer.${layers - 1}.mlp.up_gate_proj.weight`)?.spec.shape, [256, 64]);
    assert.equal(bound.params.get('embeddings.token_type_embeddings.weight')?.spec.optional, true);
    const p = bound.params.get('encoder.layer.0.attention.qkv_proj.bias')!;
    assert.deepEqual(await readParam(p), (await readTensor(ws.files[0], p.stored)).data);
  });

  test('BERT spec list: 5 embedding tensors + 16 per layer, HF BertModel names, pooler ignored', () => {
    const specs = paramSpecs(tinyBert());
    assert.equal(specs.length, 5 + 16 * 2);
    const byName = new Map(specs.map((s) => [s.name, s.shape]));
    assert.deepEqual(byName.get('embeddings.position_embeddings.weight'), [16, 8]);
    assert.deepEqual(byName.get('embeddings.token_type_embeddings.weight'), [2, 8]);
    assert.deepEqual(byName.get('encoder.layer.1.attention.self.query.weight'), [8, 8]);
    assert.deepEqual(byName.get('encoder.layer.1.attention.output.LayerNorm.bias'), [8]);
    assert.deepEqual(byName.get('encoder.layer.1.intermediate.dense.weight'), [12, 8]);
    assert.deepEqual(byName.get('encoder.layer.1.output.dense.weight'), [8, 12]);
    assert.ok(!specs.some((s) => s.name.startsWith('pooler.') || s.optional));
  });

  test('GTE without a token-type table (gte-base: type_vocab_size 0) has no such spec', () => {
    const cfg = parseConfig({ model_type: 'new', hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 6, vocab_size: 10, max_position_embeddings: 32, type_vocab_size: 0 });
    const names = paramSpecs(cfg).map((s) => s.name);
    assert.deepEqual(names.slice(0, 3), ['embeddings.word_embeddings.weight', 'embeddings.LayerNorm.weight', 'embeddings.LayerNorm.bias']);
    assert.equal(names.length, 3 + 11);
  });

  test('name variants on header-only name sets: bert./model./new. prefixes, gamma/beta', () => {
    const canonical = paramSpecs(tinyBert()).map((s) => s.name);
    // A BertForMaskedLM export with TF-era LayerNorm names.
    const tfStyle = new Set(canonical.map((n) => 'bert.' + n.replace(/LayerNorm\.weight$/, 'LayerNorm.gamma').replace(/LayerNorm\.bias$/, 'LayerNorm.beta')));
    for (const n of canonical) assert.ok(resolveWeightName(n, tfStyle), `${n} unresolved`);
    assert.equal(resolveWeightName('embeddings.LayerNorm.weight', tfStyle), 'bert.embeddings.LayerNorm.gamma');
    assert.equal(resolveWeightName('encoder.layer.0.output.LayerNorm.bias', tfStyle), 'bert.encoder.layer.0.output.LayerNorm.beta');
    assert.equal(resolveWeightName('encoder.layer.0.output.dense.weight', tfStyle), 'bert.encoder.layer.0.output.dense.weight');
    // gamma/beta only for norm parameters: a dense layer's weight is never renamed.
    assert.ok(!weightNameCandidates('encoder.layer.0.output.dense.weight').some((c) => c.endsWith('gamma')));
    assert.ok(weightNameCandidates('encoder.layer.0.attn_ln.weight').includes('new.encoder.layer.0.attn_ln.gamma'));

    assert.equal(resolveWeightName('encoder.layer.0.attention.qkv_proj.weight', new Set(['new.encoder.layer.0.attention.qkv_proj.weight'])), 'new.encoder.layer.0.attention.qkv_proj.weight');
    assert.equal(resolveWeightName('embeddings.word_embeddings.weight', new Set(['model.embeddings.word_embeddings.weight'])), 'model.embeddings.word_embeddings.weight');
    // The bare name wins over a prefixed duplicate.
    assert.equal(resolveWeightName('embeddings.word_embeddings.weight', new Set(['bert.embeddings.word_embeddings.weight', 'embeddings.word_embeddings.weight'])), 'embeddings.word_embeddings.weight');
    assert.equal(resolveWeightName('embeddings.word_embeddings.weight', new Set(['roberta.embeddings.word_embeddings.weight'])), null);
  });

  test('BERT checkpoint with bert. prefix, gamma/beta, pooler and MLM head binds; extras are listed as unused', async () => {
    const cfg = tinyBert();
    const tensors: Record<string, number[]> = {};
    for (const s of paramSpecs(cfg)) tensors['bert.' + s.name.replace(/LayerNorm\.weight$/, 'LayerNorm.gamma').replace(/LayerNorm\.bias$/, 'LayerNorm.beta')] = s.shape;
    tensors['bert.pooler.dense.weight'] = [8, 8];
    tensors['bert.pooler.dense.bias'] = [8];
    tensors['cls.predictions.bias'] = [20];
    const ws = await openWeights(memoryModelFiles('mlm', { 'model.safetensors': checkpoint(tensors, 'F16') }));
    const bound = bindWeights(cfg, ws);
    assert.equal(bound.params.size, 37);
    assert.deepEqual(bound.unused.sort(), ['bert.pooler.dense.bias', 'bert.pooler.dense.weight', 'cls.predictions.bias']);
    assert.equal(bound.params.get('embeddings.LayerNorm.weight')?.stored, 'bert.embeddings.LayerNorm.gamma');
    assert.equal(bound.params.get('embeddings.LayerNorm.weight')?.info.dtype, 'F16');
  });

  test('GTE checkpoint without token_type_embeddings: optional, reported, not an error', async () => {
    const files = localModelFiles(FIXTURE);
    const cfg = await loadConfig(files);
    const tensors: Record<string, number[]> = {};
    for (const s of paramSpecs(cfg)) if (!s.name.includes('token_type')) tensors[s.name] = s.shape;
    const bound = bindWeights(cfg, await openWeights(memoryModelFiles('gte-no-tt', { 'model.safetensors': checkpoint(tensors) })));
    assert.deepEqual(bound.missingOptional, ['embeddings.token_type_embeddings.weight']);
    assert.equal(bound.params.size, 25);
  });

  test('missing required tensor: names it, the closest stored names and how many more are missing', async () => {
    const cfg = tinyBert();
    const tensors: Record<string, number[]> = {};
    for (const s of paramSpecs(cfg)) if (!s.name.includes('layer.1.attention.self')) tensors[s.name] = s.shape;
    const ws = await openWeights(memoryModelFiles('m', { 'model.safetensors': checkpoint(tensors) }));
    assert.throws(
      () => bindWeights(cfg, ws),
      (e) => expectSafetensorsError(e, 'm/model.safetensors', "tensor 'encoder.layer.1.attention.self.query.weight': missing", "closest: 'encoder.layer.0.attention.self.query.weight'", '5 more required tensors missing'),
    );
  });

  test('shape mismatch against config.json names the stored tensor', async () => {
    const cfg = tinyBert();
    const tensors: Record<string, number[]> = {};
    for (const s of paramSpecs(cfg)) tensors[s.name] = s.shape;
    tensors['encoder.layer.0.intermediate.dense.weight'] = [8, 12]; // transposed
    const ws = await openWeights(memoryModelFiles('m', { 'model.safetensors': checkpoint(tensors) }));
    assert.throws(() => bindWeights(cfg, ws), (e) => expectSafetensorsError(e, "tensor 'encoder.layer.0.intermediate.dense.weight': expected shape [12, 8], got [8, 12]"));
    // A config with another vocabulary: the embedding table is the first to disagree.
    assert.throws(() => bindWeights(tinyBert({ vocab_size: 21 }), ws), (e) => expectSafetensorsError(e, "'embeddings.word_embeddings.weight': expected shape [21, 8], got [20, 8]"));
  });

  test('a non-finite element (F16 infinity) is refused when read, naming tensor and file', async () => {
    const cfg = tinyBert();
    const tensors: Record<string, TensorToWrite> = {};
    for (const s of paramSpecs(cfg)) tensors[s.name] = { dtype: 'F16', shape: s.shape, data: new Uint16Array(s.shape.reduce((a, b) => a * b, 1)) };
    (tensors['embeddings.LayerNorm.bias'].data as Uint16Array)[3] = 0xfc00; // -inf
    const bound = bindWeights(cfg, await openWeights(memoryModelFiles('m', { 'model.safetensors': serializeSafetensors(tensors) })));
    assert.deepEqual(await readParam(bound.params.get('embeddings.LayerNorm.weight')!), new Float32Array(8));
    await assert.rejects(readParam(bound.params.get('embeddings.LayerNorm.bias')!), (e) => expectSafetensorsError(e, "m/model.safetensors: tensor 'embeddings.LayerNorm.bias': element 3 is -Infinity"));
  });

  test('sharded checkpoint via model.safetensors.index.json', async () => {
    const bytes = new Uint8Array(await readFile(`${FIXTURE}model.safetensors`));
    const f = await parseSafetensorsHeader({ name: 'fixture', size: bytes.byteLength, read: async (s, e) => bytes.slice(s, e) });
    const shard = (names: string[]) => {
      const t: Record<string, TensorToWrite> = {};
      return Promise.all(names.map(async (n) => (t[n] = { dtype: 'F32', shape: f.tensors.get(n)!.shape, data: (await readTensor(f, n)).data }))).then(() => serializeSafetensors(t));
    };
    const names = [...f.tensors.keys()];
    const layers = await goldenLayers();
    const last = `encoder.layer.${layers - 1}.`;
    const a = names.filter((n) => !n.startsWith(last));
    const b = names.filter((n) => n.startsWith(last));
    const weightMap = Object.fromEntries([...a.map((n) => [n, 'model-00001-of-00002.safetensors']), ...b.map((n) => [n, 'model-00002-of-00002.safetensors'])]);
    const files = memoryModelFiles('sharded', {
      'config.json': await readFile(`${FIXTURE}config.json`, 'utf8'),
      'model.safetensors.index.json': JSON.stringify({ metadata: { total_size: 589312 }, weight_map: weightMap }),
      'model-00001-of-00002.safetensors': await shard(a),
      'model-00002-of-00002.safetensors': await shard(b),
    });
    const ws = await openWeights(files);
    assert.equal(ws.files.length, 2);
    const bound = bindWeights(await loadConfig(files), ws);
    assert.equal(bound.params.size, 4 + 11 * layers);
    const p = bound.params.get(`${last}mlp_ln.bias`)!;
    assert.equal(p.file.name, 'sharded/model-00002-of-00002.safetensors');
    assert.deepEqual(await readParam(p), (await readTensor(f, `${last}mlp_ln.bias`)).data);

    const broken = memoryModelFiles('bad', { 'model.safetensors.index.json': JSON.stringify({ weight_map: { w: '../outside.safetensors' } }) });
    await assert.rejects(openWeights(broken), (e) => expectSafetensorsError(e, "tensor 'w'", 'not a file name inside the model folder'));
    await assert.rejects(openWeights(memoryModelFiles('none', {})), (e) => expectSafetensorsError(e, 'none: has neither model.safetensors nor model.safetensors.index.json'));
  });
});
