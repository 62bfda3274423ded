// Small weights against f32 on real texts: the 200 texts of tools/f16-parity.ts (the first --n
// SciFact passages and the first --n AQA questions with their bodies, at --max-length tokens).
//
// 1. Exports --model with `aqa export --dtype f16` and `--dtype int8` into a temporary folder and
//    prints the three model.safetensors sizes (and the ONNX files' with --onnx-model).
// 2. Embeds the texts with the original (f32) and with the int8 folder (loaded by our loader,
//    dequantized on the host, run in f32) on the same adapter; prints min and mean row cosine.
// 3. With --onnx-model DIR (a copy of the model folder holding onnx/model.onnx and
//    onnx/model_quantized.onnx, see tools/q8_onnx.py), embeds the same texts with
//    transformers.js dtype 'fp32' (a check of the ONNX graph) and 'q8' on each of --devices
//    (cpu, webgpu), with the model's pooling, and prints their cosines against our f32. The
//    ONNX model gets our tokenizer's ids (--peer-tokenizer ours, the default), so the cosine
//    measures weights and runtime only; --peer-tokenizer transformers.js uses its tokenizer,
//    which at truncation drops the final [SEP] (256 tokens without it), unlike
//    sentence-transformers and ours.
//
//   node --import tsx tools/int8-parity.ts --model test/models/all-MiniLM-L6-v2 \
//     [--onnx-model DIR] [--devices cpu,webgpu] [--n 100] [--max-length 256] \
//     [--ref-cache FILE] [--peers-only] [--dtypes fp32,q8] [--peer-tokenizer ours|transformers.js]
//
// Our f32 run takes minutes on a software driver: --ref-cache keeps its embeddings (raw f32,
// passages then questions) in FILE and reuses them when FILE exists; --peers-only then skips our
// int8 run and measures only transformers.js.

import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { queryText } from '../core/data/clean.ts';
import { type EmbeddingModel, loadEmbeddingModel } from '../core/retrieval/embed.ts';
import { readPassages, readQuestions } from '../node/data.ts';
import { createNodeGpu } from '../node/device.ts';
import { runExport } from '../node/export-command.ts';
import { localModelFiles } from '../node/files.ts';

const { values: a } = parseArgs({
  options: {
    model: { type: 'string' },
    'onnx-model': { type: 'string' },
    devices: { type: 'string', default: 'cpu' },
    corpus: { type: 'string', default: '../shared/data/scifact-aqa/pid_to_title_abs.json' },
    questions: { type: 'string', default: '../shared/data/aqa-questions/qa_valid_flag.txt' },
    n: { type: 'string', default: '100' },
    'max-length': { type: 'string', default: '256' },
    'batch-size': { type: 'string', default: '16' },
    'ref-cache': { type: 'string' },
    'peers-only': { type: 'boolean', default: false },
    'peer-tokenizer': { type: 'string', default: 'ours' },
    dtypes: { type: 'string', default: 'fp32,q8' },
  },
});
if (!a.model) throw new Error('--model DIR is required');
const n = Number(a.n);
const maxLength = Number(a['max-length']);
const batchSize = Number(a['batch-size']);
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(2)} MiB (${bytes.toLocaleString('en-US')} bytes)`;

const { passages } = await readPassages(a.corpus!);
const { questions } = await readQuestions(a.questions!, { requirePids: false });
const sets = { passages: passages.texts.slice(0, n), questions: questions.slice(0, n).map((q) => queryText(q)) };

// 1. sizes
const tmp = mkdtempSync(join(tmpdir(), 'aqa-int8-parity-'));
const f16Dir = join(tmp, 'f16');
const int8Dir = join(tmp, 'int8');
let t = performance.now();
await runExport({ model: a.model, out: f16Dir, dtype: 'f16' });
const f16Seconds = (performance.now() - t) / 1000;
t = performance.now();
await runExport({ model: a.model, out: int8Dir, dtype: 'int8' });
const int8Seconds = (performance.now() - t) / 1000;
const size = (dir: string, file = 'model.safetensors') => statSync(join(dir, file)).size;
console.log(`model.safetensors f32 (original): ${mib(size(a.model))}`);
console.log(`model.safetensors f16:            ${mib(size(f16Dir))} (export ${f16Seconds.toFixed(1)} s)`);
console.log(`model.safetensors int8:           ${mib(size(int8Dir))} (export ${int8Seconds.toFixed(1)} s)`);
if (a['onnx-model']) {
  for (const f of ['model.onnx', 'model_quantized.onnx']) console.log(`onnx/${f}: ${mib(size(a['onnx-model'], join('onnx', f)))}`);
}

type Embedded = Record<string, Float32Array>;

function report(label: string, ref: Embedded, got: Embedded, dim: number): void {
  let allMin = 1, allSum = 0, allN = 0;
  const parts: string[] = [];
  for (const k of Object.keys(sets)) {
    const x = ref[k], y = got[k];
    let min = 1, sum = 0;
    const rows = x.length / dim;
    for (let r = 0; r < rows; r++) {
      let dot = 0, nx = 0, ny = 0;
      for (let i = r * dim; i < (r + 1) * dim; i++) {
        dot += x[i] * y[i];
        nx += x[i] * x[i];
        ny += y[i] * y[i];
      }
      const c = dot / Math.sqrt(nx * ny);
      min = Math.min(min, c);
      sum += c;
    }
    parts.push(`${k} ${rows}: min ${min.toFixed(7)} mean ${(sum / rows).toFixed(7)}`);
    allMin = Math.min(allMin, min);
    allSum += sum;
    allN += rows;
  }
  console.log(`${label} vs our f32, ${allN} texts: min ${allMin.toFixed(7)} mean ${(allSum / allN).toFixed(7)} (${parts.join('; ')})`);
}

// 2. ours: f32 original and int8 export
const gpu = await createNodeGpu();
console.log(`adapter: ${gpu.name}`);
async function embedOurs(dir: string): Promise<{ out: Embedded; model: EmbeddingModel }> {
  const model = await loadEmbeddingModel(gpu, localModelFiles(dir), a.model!);
  const out: Embedded = {};
  const t0 = performance.now();
  for (const [k, texts] of Object.entries(sets)) out[k] = await model.embed(texts, { maxLength, batchSize, query: k === 'questions' });
  console.log(`ours ${dir}: ${sets.passages.length + sets.questions.length} texts in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return { out, model };
}
const cache = a['ref-cache'];
const refModel = await loadEmbeddingModel(gpu, localModelFiles(a.model), a.model);
const dim = refModel.dim;
const { pooling, normalize } = refModel.settings;
const prefixes = { passages: refModel.settings.passagePrefix, questions: refModel.settings.queryPrefix };
const ourIds: Record<string, number[][]> = {};
for (const [k, texts] of Object.entries(sets)) ourIds[k] = refModel.tokenize(texts, { maxLength, query: k === 'questions' });
refModel.dispose();
let ref: Embedded;
if (cache && existsSync(cache)) {
  const all = new Float32Array(new Uint8Array(readFileSync(cache)).buffer);
  const split = sets.passages.length * dim;
  if (all.length !== (sets.passages.length + sets.questions.length) * dim) throw new Error(`${cache}: ${all.length} values, not ${sets.passages.length + sets.questions.length} x ${dim}; remove it`);
  ref = { passages: all.slice(0, split), questions: all.slice(split) };
  console.log(`our f32 embeddings read from ${cache}`);
} else {
  const r = await embedOurs(a.model);
  r.model.dispose();
  ref = r.out;
  if (cache) {
    const all = new Float32Array(ref.passages.length + ref.questions.length);
    all.set(ref.passages);
    all.set(ref.questions, ref.passages.length);
    writeFileSync(cache, new Uint8Array(all.buffer));
  }
}
if (!a['peers-only']) {
  const int8 = await embedOurs(int8Dir);
  int8.model.dispose();
  report('aqa int8 export (dequantized, f32 compute)', ref, int8.out, dim);
}
gpu.destroy();
rmSync(tmp, { recursive: true, force: true });

// 3. transformers.js on the ONNX exports
type Tjs = typeof import('@huggingface/transformers');
type Tokenizer = Awaited<ReturnType<Tjs['AutoTokenizer']['from_pretrained']>>;
type Model = Awaited<ReturnType<Tjs['AutoModel']['from_pretrained']>>;

/** The sets through a transformers.js model, pooled and normalised as the model folder says. */
async function embedPeer(tjs: Tjs, tokenizer: Tokenizer, model: Model): Promise<Embedded> {
  const out: Embedded = {};
  // Our ids as the tokenizer's output would hold them: right-padded with 0, mask, zero type ids.
  const fromOurIds = (ids: number[][]) => {
    const S = Math.max(...ids.map((r) => r.length));
    const t = (fill: (r: number[], s: number) => number) =>
      new tjs.Tensor('int64', BigInt64Array.from({ length: ids.length * S }, (_, i) => BigInt(fill(ids[Math.floor(i / S)], i % S))), [ids.length, S]);
    return { input_ids: t((r, s) => r[s] ?? 0), attention_mask: t((r, s) => (s < r.length ? 1 : 0)), token_type_ids: t(() => 0) };
  };
  for (const [k, all] of Object.entries(sets)) {
    const texts = all.map((s) => (prefixes[k as keyof typeof prefixes] ?? '') + s);
    const rows = new Float32Array(texts.length * dim);
    for (let b = 0; b < texts.length; b += batchSize) {
      const inputs =
        a['peer-tokenizer'] === 'ours'
          ? fromOurIds(ourIds[k].slice(b, b + batchSize))
          : tokenizer(texts.slice(b, b + batchSize), { padding: true, truncation: true, max_length: maxLength });
      const { last_hidden_state: h } = await model(inputs);
      const [B, S, D] = h.dims as number[];
      const hd = h.data as Float32Array;
      const mask = inputs.attention_mask.data as BigInt64Array;
      for (let r = 0; r < B; r++) {
        const v = rows.subarray((b + r) * D, (b + r + 1) * D);
        if (pooling === 'cls') v.set(hd.subarray(r * S * D, r * S * D + D));
        else {
          let count = 0;
          for (let s = 0; s < S; s++) {
            if (!mask[r * S + s]) continue;
            count++;
            for (let d = 0; d < D; d++) v[d] += hd[(r * S + s) * D + d];
          }
          for (let d = 0; d < D; d++) v[d] /= count;
        }
        if (normalize) {
          const norm = Math.hypot(...v);
          for (let d = 0; d < D; d++) v[d] /= norm;
        }
      }
    }
    out[k] = rows;
  }
  return out;
}

if (a['onnx-model']) {
  const tjs: Tjs = await import('@huggingface/transformers');
  tjs.env.allowRemoteModels = false;
  tjs.env.localModelPath = dirname(resolve(a['onnx-model'])) + '/';
  const name = basename(a['onnx-model']);
  if (a['peer-tokenizer'] !== 'ours' && a['peer-tokenizer'] !== 'transformers.js') throw new Error(`--peer-tokenizer: ours or transformers.js, got ${a['peer-tokenizer']}`);
  const tokenizer = await tjs.AutoTokenizer.from_pretrained(name);
  for (const device of a.devices!.split(',') as ('cpu' | 'webgpu')[]) {
    for (const dtype of a.dtypes!.split(',') as ('fp32' | 'q8')[]) {
      const what = `transformers.js ${dtype} (${device}, ${a['peer-tokenizer']} tokenizer)`;
      let model: Model;
      try {
        model = await tjs.AutoModel.from_pretrained(name, { dtype, device });
      } catch (e) {
        console.log(`${what}: does not load (${(e as Error).message.split('\n')[0]})`);
        continue;
      }
      try {
        const t0 = performance.now();
        const out = await embedPeer(tjs, tokenizer, model);
        console.log(`${what}: ${sets.passages.length + sets.questions.length} texts in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
        report(what, ref, out, dim);
      } catch (e) {
        console.log(`${what}: fails while embedding (${(e as Error).message.split('\n')[0]})`);
      }
      await model.dispose();
    }
  }
}
