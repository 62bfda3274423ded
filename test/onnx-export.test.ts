// `aqa export --format onnx` (core/model/onnx/, node/onnx/): the exported graph, run by
// onnxruntime-node's CPU provider, against
//  - the Hugging Face references of the tiny-bert and gte-dev fixtures (hidden states 1e-5
//    absolute, normalised embeddings 2e-6, the tolerances of test/model-parity.ts), and our
//    WebGPU forward on the same inputs; tiny-bert also on our embeddings of the 281 texts below;
//  - all-MiniLM-L6-v2: our f32 WebGPU embeddings of 281 texts (the 81 of test/fixtures/minilm
//    and the first 200 AQA validation questions as `aqa search` embeds them), min cosine
//    >= 0.99999, and sentence-transformers' embeddings of the 81 fixture texts (same bound);
//  - transformers.js loading the exported folder (feature-extraction, mean pooling, normalised)
//    and giving the same embeddings, on the texts its tokenizer encodes as ours does; the same
//    for the gte-dev (GTE v1.5, model_type "new") export with CLS pooling;
//  - an `aqa train` output folder (tiny-bert, two steps): the export of the fine-tuned model
//    gives our embeddings of it, and no checkpoint or training file is copied.
//  - onnxruntime-web's WebAssembly backend (what a page without WebGPU runs) on the tiny-bert and
//    gte-dev graphs, against onnxruntime-node and the references.

import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { padBatch } from '../core/data/batch.ts';
import { queryText } from '../core/data/clean.ts';
import { exportOnnx } from '../core/model/onnx/export.ts';
import { parseSafetensorsHeader, readInt64Tensor, readTensor, type SafetensorsFile } from '../core/model/safetensors.ts';
import { loadEmbeddingModel } from '../core/retrieval/embed.ts';
import { readQuestions } from '../node/data.ts';
import { fileSource, localModelFiles } from '../node/files.ts';
import { runOnnxExport } from '../node/onnx/export.ts';
import { forwardFixture } from './browser/model.ts';
import { minRowCosine } from './cases/types.ts';
import { assertClose, assertOneLineError, runAqa, testGpu } from './helpers.ts';

const TINY = 'test/fixtures/tiny-bert';
const GTE = 'test/fixtures/gte-dev';
const MINILM_DIR = 'test/models/all-MiniLM-L6-v2';
const MINILM = 'sentence-transformers/all-MiniLM-L6-v2';
const MIN_COS = 0.99999;

async function golden(path: string): Promise<SafetensorsFile> {
  return parseSafetensorsHeader(await fileSource(path));
}

const i64 = (a: ArrayLike<number | bigint>, dims: number[]) => new ort.Tensor('int64', BigInt64Array.from(Array.from(a, (v) => BigInt(v))), dims);

/** Both outputs for one padded batch; token types are zeros where the graph takes them. */
async function runBatch(s: ort.InferenceSession, ids: ArrayLike<number | bigint>, mask: ArrayLike<number | bigint>, B: number, L: number) {
  const feeds: Record<string, ort.Tensor> = { input_ids: i64(ids, [B, L]), attention_mask: i64(mask, [B, L]) };
  if (s.inputNames.includes('token_type_ids')) feeds.token_type_ids = i64(new Array(B * L).fill(0), [B, L]);
  const out = await s.run(feeds);
  return { last: out.last_hidden_state.data as Float32Array, emb: out.sentence_embedding.data as Float32Array };
}

/** sentence_embedding of token id lists, in batches of 16 padded rows, in input order. */
async function embedIds(s: ort.InferenceSession, encoded: number[][], dim: number, padId = 0): Promise<Float32Array> {
  const out = new Float32Array(encoded.length * dim);
  for (let at = 0; at < encoded.length; at += 16) {
    const b = padBatch(encoded.slice(at, at + 16), padId);
    const { emb } = await runBatch(s, b.ids, b.mask, b.rows, b.seqLen);
    out.set(emb, at * dim);
  }
  return out;
}

/** The 81 texts of test/fixtures/minilm and the first 200 AQA validation questions with their bodies. */
async function parityTexts(): Promise<string[]> {
  const fixtureTexts = readFileSync('test/fixtures/minilm/texts.jsonl', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { text: string }).text);
  const { questions } = await readQuestions('test/fixtures/aqa-questions/qa_valid_flag.txt', { requirePids: false });
  const texts = [...fixtureTexts, ...questions.slice(0, 200).map((q) => queryText(q))];
  assert.equal(texts.length, 281);
  return texts;
}

for (const [name, dir] of [
  ['tiny-bert (BERT)', TINY],
  ['gte-dev (GTE v1.5: RoPE, GEGLU)', GTE],
] as const) {
  test(`ONNX export of ${name} matches the fixture's reference`, async () => {
    const r = await exportOnnx(localModelFiles(dir), dir);
    const s = await ort.InferenceSession.create(r.bytes);
    assert.deepEqual(s.outputNames, ['last_hidden_state', 'sentence_embedding']);
    const g = await golden(`${dir}/golden.safetensors`);
    const ids = await readInt64Tensor(g, 'input_ids');
    const mask = await readInt64Tensor(g, 'attention_mask');
    const [B, L] = ids.shape;
    const out = await runBatch(s, ids.data, mask.data, B, L);
    assertClose('last_hidden_state', out.last, (await readTensor(g, 'last_hidden_state')).data, { atol: 1e-5 });
    assert.ok(r.normalize);
    assertClose(`sentence_embedding (${r.pooling})`, out.emb, (await readTensor(g, `${r.pooling}_normalized`)).data, { atol: 2e-6 });
    // and our WebGPU forward on the same inputs
    const ours = await forwardFixture(await testGpu(), localModelFiles(dir));
    assertClose('last_hidden_state vs ours', out.last, ours.hidden[ours.hidden.length - 1], { atol: 1e-5 });
    const c = minRowCosine(out.emb, r.pooling === 'cls' ? ours.clsN : ours.meanN, out.emb.length / B);
    assert.ok(c.cos >= MIN_COS, `row ${c.row}: cosine ${c.cos} to our WebGPU embedding (< ${MIN_COS})`);
    await s.release();
  });
}

test('ONNX export of tiny-bert matches our WebGPU embeddings of 281 texts', async () => {
  const r = await exportOnnx(localModelFiles(TINY), TINY);
  const s = await ort.InferenceSession.create(r.bytes);
  const texts = await parityTexts();
  const model = await loadEmbeddingModel(await testGpu(), localModelFiles(TINY), TINY);
  const ours = await model.embed(texts, { batchSize: 16 });
  const onnx = await embedIds(s, model.tokenize(texts), model.dim, model.padId);
  model.dispose();
  const c = minRowCosine(onnx, ours, 32);
  assert.ok(c.cos >= MIN_COS, `text ${c.row}: cosine ${c.cos} to our WebGPU embedding (< ${MIN_COS})`);
  await s.release();
});

test('ONNX export of tiny-bert with mean pooling matches the reference mean', async () => {
  // tiny-bert has no pooling files (cls by default): add a sentence-transformers Pooling config.
  const base = localModelFiles(TINY);
  const pooling = JSON.stringify({ word_embedding_dimension: 32, pooling_mode_mean_tokens: true });
  const files = { ...base, text: async (p: string) => (p === '1_Pooling/config.json' ? pooling : base.text(p)) };
  const r = await exportOnnx(files, TINY);
  assert.equal(r.pooling, 'mean');
  const s = await ort.InferenceSession.create(r.bytes);
  const g = await golden(`${TINY}/golden.safetensors`);
  const ids = await readInt64Tensor(g, 'input_ids');
  const mask = await readInt64Tensor(g, 'attention_mask');
  const out = await runBatch(s, ids.data, mask.data, ids.shape[0], ids.shape[1]);
  assertClose('sentence_embedding (mean)', out.emb, (await readTensor(g, 'mean_normalized')).data, { atol: 2e-6 });
  await s.release();
});

/** For the MiniLM export, which the transformers.js test reads too: removed when the file's tests end. */
const TMP = mkdtempSync(join(tmpdir(), 'aqa-onnx-'));
after(() => rmSync(TMP, { recursive: true, force: true, maxRetries: 3 }));

/** The MiniLM export and our embeddings, from the next test, for the transformers.js check. */
let minilm: { dir: string; texts: string[]; ids: number[][]; ours: Float32Array[] } | null = null;

test('aqa export --format onnx: all-MiniLM-L6-v2 matches our WebGPU embeddings and sentence-transformers', async () => {
  assert.ok(existsSync(`${MINILM_DIR}/model.safetensors`), `${MINILM_DIR} is missing: run bash tools/fetch-test-models.sh`);
  const out = join(TMP, 'minilm');
  const cli = runAqa(['export', '--format', 'onnx', '--model', MINILM_DIR, '--out', out]);
  assert.equal(cli.code, 0, cli.stderr);
  assert.ok(existsSync(join(out, 'onnx', 'model.onnx')));
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'modules.json', '1_Pooling']) assert.ok(existsSync(join(out, f)), `${f} is not copied`);
  assert.ok(!readdirSync(out).some((f) => f.endsWith('.safetensors')), 'the safetensors weights are not needed beside the graph');
  const s = await ort.InferenceSession.create(join(out, 'onnx', 'model.onnx'));

  // sentence-transformers' embeddings of the 81 fixture texts, from the ids it fed the model
  const g = await golden('test/fixtures/minilm/golden.safetensors');
  const flat = (await readInt64Tensor(g, 'ids_256')).data;
  const off = (await readInt64Tensor(g, 'ids_256_offsets')).data;
  const goldIds = Array.from({ length: off.length - 1 }, (_, i) => Array.from(flat.subarray(Number(off[i]), Number(off[i + 1])), Number));
  const ref = (await readTensor(g, 'embeddings')).data;
  const fromGold = await embedIds(s, goldIds, 384);
  const st = minRowCosine(fromGold, ref, 384);
  assert.ok(st.cos >= MIN_COS, `text ${st.row}: cosine ${st.cos} to sentence-transformers (< ${MIN_COS})`);
  assertClose('embeddings', fromGold, ref, { atol: 1e-5 });

  // ours (f32, WebGPU) on 281 texts, tokenized by our tokenizer as `aqa embed` / `aqa search` do
  const texts = await parityTexts();
  const model = await loadEmbeddingModel(await testGpu(), localModelFiles(MINILM_DIR), MINILM);
  const ours = await model.embed(texts, { batchSize: 16 });
  const onnx = await embedIds(s, model.tokenize(texts), model.dim, model.padId);
  const c = minRowCosine(onnx, ours, 384);
  if (process.env.AQA_TEST_VERBOSE) console.log(`  min cosine ${c.cos.toFixed(9)} (text ${c.row}); vs sentence-transformers ${st.cos.toFixed(9)}`);
  assert.ok(c.cos >= MIN_COS, `text ${c.row}: cosine ${c.cos} to our WebGPU embedding (< ${MIN_COS})`);
  await s.release();

  // for the transformers.js check below: the texts ours does not truncate (its tokenizer cuts at
  // tokenizer_config's 512, not sentence-transformers' 256), with their ids
  const ids = model.tokenize(texts, { maxLength: 512 });
  const short = texts.map((_, i) => i).filter((i) => ids[i].length <= 256);
  model.dispose();
  minilm = { dir: out, texts: short.map((i) => texts[i]), ids: short.map((i) => ids[i]), ours: short.map((i) => ours.subarray(i * 384, (i + 1) * 384)) };
});

test('transformers.js loads the exported folder and gives our embeddings', async () => {
  assert.ok(minilm, 'the MiniLM export test did not get this far');
  const tjs = await import('@huggingface/transformers');
  tjs.env.allowRemoteModels = false;
  tjs.env.localModelPath = ''; // `minilm.dir` is a path, not a name under a models folder
  const extractor = await tjs.pipeline('feature-extraction', minilm.dir, { device: 'cpu', dtype: 'fp32' });
  // Only texts its tokenizer encodes as ours does: it differs on a few (Greek final sigma,
  // astral-plane letters), which is the tokenizer's business, not the graph's.
  const same = minilm.texts
    .map((_, i) => i)
    .filter((i) => Array.from(extractor.tokenizer(minilm!.texts[i]).input_ids.data as BigInt64Array, Number).join() === minilm!.ids[i].join())
    .slice(0, 100);
  assert.ok(same.length >= 50, `only ${same.length} texts tokenized alike`);
  const n = same.length;
  const res = await extractor(same.map((i) => minilm!.texts[i]), { pooling: 'mean', normalize: true });
  const ours = new Float32Array(n * 384);
  same.forEach((i, r) => ours.set(minilm!.ours[i], r * 384));
  const c = minRowCosine(res.data as Float32Array, ours, 384);
  if (process.env.AQA_TEST_VERBOSE) console.log(`  transformers.js: ${n} texts, min cosine ${c.cos.toFixed(9)} (text ${c.row})`);
  assert.ok(c.cos >= MIN_COS, `transformers.js: text ${c.row} has cosine ${c.cos} to ours (< ${MIN_COS})`);
  await extractor.dispose();
});

/**
 * tiny-bert's tokenizer.json cut to gte-dev's 1,000 ids: BERT's special tokens where BERT has
 * them (ids below 104), then ASCII characters and their ## continuations, then BERT's most
 * frequent words (BERT's own order from id 1996, "the"). gte-dev ships no tokenizer; texts
 * need one for transformers.js's feature-extraction pipeline.
 */
function gteDevTokenizer(): object {
  const t = JSON.parse(readFileSync(`${TINY}/tokenizer.json`, 'utf8')) as { model: { vocab: Record<string, number> } };
  const bert = Object.entries(t.model.vocab)
    .sort((a, b) => a[1] - b[1])
    .map(([w]) => w);
  const vocab = bert.slice(0, 104);
  const seen = new Set(vocab);
  const add = (w: string) => {
    if (vocab.length >= 1000 || seen.has(w)) return;
    vocab.push(w);
    seen.add(w);
  };
  const ascii = Array.from({ length: 94 }, (_, i) => String.fromCharCode(33 + i)).filter((c) => !/[A-Z]/.test(c));
  for (const c of ascii) add(c);
  for (const c of ascii) add(`##${c}`);
  for (const w of bert.slice(1996)) add(w);
  t.model.vocab = Object.fromEntries(vocab.map((w, i) => [w, i]));
  return t;
}

test('transformers.js loads the GTE (model_type "new") export and gives our embeddings', async () => {
  // @huggingface/transformers 4.3 has no class for model_type "new" (Alibaba-NLP's NewModel):
  // AutoModel falls back to its base class with a warning ("Unknown model class") and runs the
  // graph as an encoder-only model, feeding the inputs the graph names (input_ids,
  // attention_mask, and token_type_ids as zeros). The pipeline's CLS pooling and normalisation
  // then give GTE's embedding, so the fallback is all GTE needs: this checks it end to end.
  const src = join(TMP, 'gte-src');
  mkdirSync(join(src, '1_Pooling'), { recursive: true });
  for (const f of ['config.json', 'model.safetensors']) copyFileSync(join(GTE, f), join(src, f));
  copyFileSync(join(TINY, 'tokenizer_config.json'), join(src, 'tokenizer_config.json'));
  writeFileSync(join(src, 'tokenizer.json'), JSON.stringify(gteDevTokenizer()));
  writeFileSync(join(src, '1_Pooling', 'config.json'), JSON.stringify({ word_embedding_dimension: 64, pooling_mode_cls_token: true }));
  const out = join(TMP, 'gte-onnx');
  // In-process (the MiniLM test above covers the command line): a process start costs seconds.
  await runOnnxExport({ model: src, out });
  assert.equal((JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as { model_type: string }).model_type, 'new');

  const model = await loadEmbeddingModel(await testGpu(), localModelFiles(src), src);
  assert.equal(model.settings.pooling, 'cls');
  const texts = (await parityTexts()).slice(0, 24);
  const ids = model.tokenize(texts, { maxLength: 512 });
  assert.ok(ids.every((e) => e.every((id) => id < 1000)), 'the tokenizer gives ids beyond gte-dev\'s vocabulary');
  const ours = await model.embed(texts, { batchSize: 8, maxLength: 512 });
  model.dispose();

  const tjs = await import('@huggingface/transformers');
  tjs.env.allowRemoteModels = false;
  tjs.env.localModelPath = '';
  const extractor = await tjs.pipeline('feature-extraction', out, { device: 'cpu', dtype: 'fp32' });
  assert.ok(['PreTrainedModel', 'NewModel'].includes(extractor.model.constructor.name), extractor.model.constructor.name);
  const same = texts.map((_, i) => i).filter((i) => Array.from(extractor.tokenizer(texts[i]).input_ids.data as BigInt64Array, Number).join() === ids[i].join());
  assert.ok(same.length >= 16, `only ${same.length} of ${texts.length} texts tokenized alike`);
  const res = await extractor(same.map((i) => texts[i]), { pooling: 'cls', normalize: true });
  const want = new Float32Array(same.length * 64);
  same.forEach((i, r) => want.set(ours.subarray(i * 64, (i + 1) * 64), r * 64));
  const c = minRowCosine(res.data as Float32Array, want, 64);
  if (process.env.AQA_TEST_VERBOSE) console.log(`  transformers.js, GTE: ${same.length} texts, min cosine ${c.cos.toFixed(9)} (text ${c.row})`);
  assert.ok(c.cos >= MIN_COS, `transformers.js, GTE: text ${c.row} has cosine ${c.cos} to ours (< ${MIN_COS})`);
  await extractor.dispose();
});

test('aqa export --format onnx refuses --dtype in one line', () => {
  assertOneLineError(runAqa(['export', '--format', 'onnx', '--dtype', 'int8', '--model', TINY, '--out', '/nonexistent/x']), '--dtype', 'safetensors');
  assertOneLineError(runAqa(['export', '--format', 'tflite', '--model', TINY, '--out', '/nonexistent/x']), '--format', 'onnx');
});

test('aqa export --format onnx of an aqa train output folder: same embeddings, no training files', async () => {
  const dir = join(TMP, 'trained');
  mkdirSync(dir);
  const data = join(dir, 'train.jsonl');
  const rows = ['graph neural networks', 'protein folding', 'citation of preprints', 'vitamin D and fractures'].map((q, i) => ({ query: q, pos: [`a paper about ${q}`], neg: [`paper ${i} on something else`] }));
  writeFileSync(data, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const trained = join(dir, 'out');
  let r = runAqa(['train', '--model_name_or_path', TINY, '--train_data', data, '--output_dir', trained, '--per_device_train_batch_size', '2', '--train_group_size', '2', '--learning_rate', '5e-3', '--max_steps', '2', '--save_steps', '1']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(readdirSync(trained).some((f) => f.startsWith('checkpoint-')), 'expected checkpoints beside the final model');
  const out = join(dir, 'onnx');
  r = runAqa(['export', '--format', 'onnx', '--model', trained, '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const copied = readdirSync(out);
  for (const f of copied) assert.ok(!/^checkpoint-|^train_log|^trainer_state|\.safetensors$/.test(f), `${f} should not be copied`);

  const s = await ort.InferenceSession.create(join(out, 'onnx', 'model.onnx'));
  const texts = (await parityTexts()).slice(0, 100);
  const model = await loadEmbeddingModel(await testGpu(), localModelFiles(trained), trained);
  const ours = await model.embed(texts, { batchSize: 16 });
  const ids = model.tokenize(texts);
  model.dispose();
  const onnx = await embedIds(s, ids, 32);
  const c = minRowCosine(onnx, ours, 32);
  assert.ok(c.cos >= MIN_COS, `text ${c.row}: cosine ${c.cos} to our WebGPU embedding of the fine-tuned model (< ${MIN_COS})`);
  // and the fine-tuned model is not the base model
  const base = await exportOnnx(localModelFiles(TINY), TINY);
  const sb = await ort.InferenceSession.create(base.bytes);
  const before = await embedIds(sb, ids, 32);
  const moved = minRowCosine(before, onnx, 32).cos;
  assert.ok(moved < MIN_COS, `training changed nothing (cosine ${moved} to the base model): the test would not see a wrong folder`);
  await Promise.all([s.release(), sb.release()]);
});

test("onnxruntime-web's WebAssembly backend runs the BERT and GTE graphs as onnxruntime-node does", async () => {
  // The page's fallback without WebGPU runs this backend; Node runs the same .wasm.
  const ortw = await import('onnxruntime-web');
  ortw.env.wasm.numThreads = 1;
  for (const dir of [TINY, GTE]) {
    const r = await exportOnnx(localModelFiles(dir), dir);
    const g = await golden(`${dir}/golden.safetensors`);
    const ids = await readInt64Tensor(g, 'input_ids');
    const mask = await readInt64Tensor(g, 'attention_mask');
    const [B, L] = ids.shape;
    const w = await ortw.InferenceSession.create(r.bytes, { executionProviders: ['wasm'] });
    const feeds: Record<string, InstanceType<typeof ortw.Tensor>> = { input_ids: new ortw.Tensor('int64', ids.data, [B, L]), attention_mask: new ortw.Tensor('int64', mask.data, [B, L]) };
    if (w.inputNames.includes('token_type_ids')) feeds.token_type_ids = new ortw.Tensor('int64', new BigInt64Array(B * L), [B, L]);
    const wasm = (await w.run(feeds)).sentence_embedding.data as Float32Array;
    const n = await ort.InferenceSession.create(r.bytes);
    const native = await runBatch(n, ids.data, mask.data, B, L);
    assertClose(`${dir}: sentence_embedding, wasm vs native`, wasm, native.emb, { atol: 1e-6 });
    assertClose(`${dir}: sentence_embedding, wasm vs reference`, wasm, (await readTensor(g, `${r.pooling}_normalized`)).data, { atol: 2e-6 });
    await Promise.all([w.release(), n.release()]);
  }
});
