// Compressed index bench: GPU memory, queries/s, recall@k against the full-vector search, and
// (with judged questions) the official MAP@20, for the full vectors and the int8 / binary forms
// at several rescoring factors. The forms are built into --work (the index's manifest copied,
// its pids and shards linked), so the index directory itself is not written to.
//
//   node --import tsx tools/quantize-bench.ts --index DIR --work DIR
//        (--questions FILE.jsonl | --queries FILE.npy) [--max-queries N] [--k 200]
//        [--engine onnx] [--full-dtype f32|f16] [--runs full,int8:1,int8:4,binary:1,binary:3,binary:10] [--json out.json]
//
// --questions: embedded with the index's model (the query side is not timed); --queries:
// already embedded [Q, dim] f32 vectors. queries/s is one search of every query after a warm-up
// search, wall time: query upload, the GPU scan and top-k, the readback, and for the forms the
// row reads from the shard files and the host rescoring.

import { copyFileSync, existsSync, mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { queryText } from '../core/data/clean.ts';
import { officialMAP } from '../core/eval/metrics.ts';
import type { QuantKind } from '../core/retrieval/quantize.ts';
import { createNodeGpu } from '../node/device.ts';
import { printTable, type Row, writeJson } from '../node/bench/table.ts';
import { quantizeIndex } from '../node/index-quantize.ts';
import { openForQueries, readQuestionFile } from '../node/index-queries.ts';
import { type OpenIndex, openIndex, shardVectors, uploadIndex } from '../node/index-store.ts';
import { GpuIndex } from '../core/retrieval/search.ts';
import { readNpy } from '../node/npy.ts';
import { loadModel } from '../node/command-model.ts';

const { values: a } = parseArgs({
  options: {
    index: { type: 'string' },
    work: { type: 'string' },
    questions: { type: 'string' },
    queries: { type: 'string' },
    'max-queries': { type: 'string' },
    k: { type: 'string', default: '200' },
    engine: { type: 'string', default: 'onnx' },
    json: { type: 'string' },
    'full-dtype': { type: 'string', default: 'f32' },
    runs: { type: 'string', default: 'full,int8:1,int8:4,binary:1,binary:3,binary:10' },
  },
});
if (!a.index || !a.work || !(a.questions || a.queries)) {
  console.error('usage: tools/quantize-bench.ts --index DIR --work DIR (--questions FILE | --queries FILE.npy) [--max-queries N] [--k 200] [--json FILE]');
  process.exit(2);
}
const k = Number(a.k);
const log = (m: string) => console.error(m);

/** --work: the manifest copied, everything else linked; the forms are written here. */
function workCopy(src: string, dst: string): void {
  mkdirSync(dst, { recursive: true });
  for (const f of readdirSync(src)) {
    if (!/^(pids\.json|shard-\d{5}\.(f16|f32))$/.test(f) || existsSync(join(dst, f))) continue;
    symlinkSync(resolve(src, f), join(dst, f));
  }
  if (!existsSync(join(dst, 'manifest.json'))) copyFileSync(join(src, 'manifest.json'), join(dst, 'manifest.json'));
}

workCopy(a.index, a.work);
const gpu = await createNodeGpu();
log(`adapter: ${gpu.name}`);
let index: OpenIndex = await openIndex(a.work);
const { dim, count } = index.manifest.identity;
let queries: Float32Array;
let judged: Awaited<ReturnType<typeof readQuestionFile>> | null = null;
if (a.queries) {
  const npy = await readNpy(a.queries);
  const Q = Math.min(npy.shape[0], Number(a['max-queries'] ?? npy.shape[0]));
  queries = npy.data.subarray(0, Q * dim);
} else {
  judged = (await readQuestionFile(a.questions!, true)).slice(0, Number(a['max-queries'] ?? Infinity));
  const { desc } = await openForQueries(a.work, undefined, undefined);
  const model = a.engine === 'onnx' ? await (await import('../node/onnx/engine.ts')).loadOnnxModel(desc.dir, desc.name) : await loadModel(gpu, desc.dir, desc.name, 'f32');
  queries = await model.embed(judged.map((q) => queryText(q)), { query: true, batchSize: 32, maxLength: desc.maxLength });
  model.dispose();
}
const Q = queries.length / dim;
log(`${a.index}: ${count} x ${dim} ${index.manifest.identity.dtype}; ${Q} queries, k ${k}`);

for (const kind of ['int8', 'binary'] as const) {
  const t0 = performance.now();
  const r = await quantizeIndex(index, kind, undefined, log);
  log(`${kind}: ${r.built ? 'built' : 'up to date'} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  index = await openIndex(a.work);
}

interface Run {
  use: 'full' | QuantKind;
  rescore?: number;
}
// use:rescore pairs; the first run is the truth recall is measured against (full, normally).
const runs: Run[] = a.runs!.split(',').map((r) => {
  const [use, f] = r.split(':');
  if (!['full', 'int8', 'binary'].includes(use) || (f !== undefined && !(Number(f) >= 1))) throw new Error(`--runs: ${JSON.stringify(r)} is not full, int8:<factor> or binary:<factor>`);
  return { use: use as Run['use'], ...(f !== undefined ? { rescore: Number(f) } : {}) };
});
const f32Bytes = count * dim * 4;
let truth: Uint32Array | null = null;
const rows: Row[] = [];
const results: Record<string, unknown>[] = [];
for (const run of runs) {
  const t0 = performance.now();
  // The full vectors as --full-dtype (default f32: llvmpipe's f32 matmul path is far faster than
  // its f16 scores kernel; uploadIndex would keep an f16 index in f16 where shader-f16 exists).
  const fullDtype = a['full-dtype'] === 'f16' ? 'f16' : 'f32';
  const g = run.use === 'full' ? await GpuIndex.upload(gpu, shardVectors(index), dim, { dtype: fullDtype, rows: count }) : await uploadIndex(gpu, { ...index, use: run.use, rescore: run.rescore });
  const uploadS = (performance.now() - t0) / 1000;
  try {
    await g.search(queries.subarray(0, dim), k); // warm-up: pipelines
    const t1 = performance.now();
    const r = await g.search(queries, k);
    const s = (performance.now() - t1) / 1000;
    truth ??= r.ids;
    let hit = 0;
    for (let q = 0; q < Q; q++) {
      const want = new Set(truth.subarray(q * r.k, (q + 1) * r.k));
      for (let j = 0; j < r.k; j++) if (want.has(r.ids[q * r.k + j])) hit++;
    }
    const recall = hit / (Q * r.k);
    const map = judged ? officialMAP(Array.from({ length: Q }, (_, q) => Array.from(r.ids.subarray(q * r.k, (q + 1) * r.k), (id) => index.pids[id])), judged) : null;
    const candidates = 'candidates' in g ? g.candidates(k) : null;
    const name = run.use === 'full' ? `full (${g.dtype} on the GPU)` : `${run.use}, rescore x${run.rescore} (${candidates} candidates)`;
    const rec = { method: name, use: run.use, rescore: run.rescore ?? null, candidates, gpuBytes: g.bytes, lessThanF32: f32Bytes / g.bytes, uploadSeconds: uploadS, searchSeconds: s, queriesPerSecond: Q / s, recall, officialMap20: map };
    results.push(rec);
    rows.push({ method: name, 'GPU MB': (g.bytes / 1e6).toFixed(2), 'vs f32': `${(f32Bytes / g.bytes).toFixed(1)}x less`, 'queries/s': (Q / s).toFixed(1), [`recall@${k}`]: recall.toFixed(4), ...(judged ? { 'official MAP@20': map!.toFixed(4) } : {}) });
    log(`${name}: ${(Q / s).toFixed(1)} queries/s, recall ${recall.toFixed(4)}${map !== null ? `, MAP@20 ${map.toFixed(4)}` : ''}`);
  } finally {
    g.release();
  }
}
console.log(`${a.index}: ${count} x ${dim} (${index.manifest.identity.dtype} shards), ${Q} queries, k ${k}; adapter ${gpu.name}`);
printTable(rows);
if (a.json) writeJson(a.json, { adapter: gpu.name, index: a.index, rows: count, dim, queries: Q, k, results });
gpu.destroy();
