// f16 against f32 on real texts: the first --n SciFact passages (as `aqa index` embeds them) and
// the first --n AQA questions with their bodies (as `aqa search` embeds them), at --max-length
// tokens, embedded with the model in f32 and in f16 on the same adapter. Prints the min and mean
// row cosine and each precision's time. Our f32 matches sentence-transformers to cosine
// >= 0.99999 (test/model.test.ts), so this is f16 against the reference up to that.
//
//   node --import tsx tools/f16-parity.ts --model test/models/all-MiniLM-L6-v2 [--n 100] [--max-length 256]

import { parseArgs } from 'node:util';
import { queryText } from '../core/data/clean.ts';
import { loadEmbeddingModel } from '../core/retrieval/embed.ts';
import { readPassages, readQuestions } from '../node/data.ts';
import { createNodeGpu } from '../node/device.ts';
import { localModelFiles } from '../node/files.ts';

const { values: a } = parseArgs({
  options: {
    model: { type: 'string' },
    corpus: { type: 'string', default: '../shared/data/scifact-aqa/pid_to_title_abs.json' },
    questions: { type: 'string', default: '../shared/data/aqa-questions/qa_valid_flag.txt' },
    n: { type: 'string', default: '100' },
    'max-length': { type: 'string', default: '256' },
    'batch-size': { type: 'string', default: '16' },
  },
});
if (!a.model) throw new Error('--model DIR is required');
const n = Number(a.n);
const opts = { maxLength: Number(a['max-length']), batchSize: Number(a['batch-size']) };

const { passages } = await readPassages(a.corpus!);
const { questions } = await readQuestions(a.questions!, { requirePids: false });
const sets = { passages: passages.texts.slice(0, n), questions: questions.slice(0, n).map((q) => queryText(q)) };

const gpu = await createNodeGpu();
console.log(`adapter: ${gpu.name}`);
if (!gpu.features.has('shader-f16')) throw new Error(`${gpu.name} has no shader-f16`);
const out: Record<string, Record<string, Float32Array>> = {};
for (const precision of ['f32', 'f16'] as const) {
  const model = await loadEmbeddingModel(gpu, localModelFiles(a.model), a.model, undefined, { precision });
  out[precision] = {};
  const t0 = performance.now();
  for (const [k, texts] of Object.entries(sets)) out[precision][k] = await model.embed(texts, { ...opts, query: k === 'questions' });
  console.log(`${precision}: ${sets.passages.length + sets.questions.length} texts in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  model.dispose();
}
for (const k of Object.keys(sets)) {
  const x = out.f32[k];
  const y = out.f16[k];
  const dim = x.length / sets[k as keyof typeof sets].length;
  let min = 1;
  let sum = 0;
  for (let r = 0; r < x.length / dim; r++) {
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
  console.log(`${k}: ${x.length / dim} texts, cosine f16 vs f32 min ${min.toFixed(7)} mean ${(sum / (x.length / dim)).toFixed(7)}`);
}
gpu.destroy();
