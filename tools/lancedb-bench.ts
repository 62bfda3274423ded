// LanceDB against exact search on one aqa index: export time and disk size, exact LanceDB search
// (the ground truth), each ANN index's build time, disk size, recall@k against exact and
// queries/s at a few search settings, and our GPU top-k for reference. Prints a table and
// writes the numbers as JSON.
//
//   node --import tsx tools/lancedb-bench.ts --index DIR (--queries Q.npy | --questions FILE) \
//     --db DIR [--k 200] [--ann ivf-pq,hnsw] [--exact-queries N] [--truth lancedb|gpu] \
//     [--lance-exact-queries N] [--reuse-table] [--json OUT]
//
// --questions embeds the questions with the index's model on the ONNX engine (the model folder
// needs onnx/model.onnx); --queries takes vectors as they are (tools/synthetic-vectors.ts writes
// them). Recall uses the first --exact-queries queries (all by default). The ground truth is
// LanceDB's exact search, or with --truth gpu our GPU top-k (test/lancedb.test.ts checks that
// the two agree; on a software driver the GPU path is far faster at 466k x 1024), and then
// LanceDB's flat scan is timed on the first --lance-exact-queries only. --reuse-table keeps a
// table an earlier run exported to --db (no export row then).
// Run it alone on the machine (it is CPU-bound, and LanceDB uses every core).

import { execFileSync } from 'node:child_process';
import { readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { queryText } from '../core/data/clean.ts';
import { type AnnKind, annParams, describeAnn, type AnnSearch, MIN_ANN_ROWS } from '../node/lancedb/ann.ts';
import { searchLance } from '../node/lancedb/search.ts';
import { exportToLance, lanceModules, openLance } from '../node/lancedb/table.ts';
import { openIndex } from '../node/index-store.ts';
import { readNpy } from '../node/npy.ts';

const { values: a } = parseArgs({
  options: {
    index: { type: 'string' },
    queries: { type: 'string' },
    questions: { type: 'string' },
    db: { type: 'string' },
    k: { type: 'string', default: '200' },
    ann: { type: 'string', default: 'ivf-pq,hnsw' },
    'exact-queries': { type: 'string' },
    truth: { type: 'string', default: 'lancedb' },
    'lance-exact-queries': { type: 'string' },
    'reuse-table': { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});
if (!a.index || !a.db || !(a.queries || a.questions)) throw new Error('--index, --db and --queries or --questions are required');
const k = Number(a.k);
const index = await openIndex(a.index);
const { dim, count } = index.manifest.identity;

async function queryVectors(): Promise<Float32Array> {
  if (a.queries) return (await readNpy(a.queries)).data;
  const q = await import('../node/index-queries.ts');
  const desc = await q.queryModelFor(index, undefined, undefined);
  const questions = await q.readQuestionFile(a.questions!, false);
  const model = await (await import('../node/onnx/engine.ts')).loadOnnxModel(desc.dir, desc.name);
  try {
    return await model.embed(questions.map((x) => queryText(x)), { query: true, batchSize: 32, maxLength: desc.maxLength });
  } finally {
    model.dispose();
  }
}
const allQ = await queryVectors();
const nq = Math.min(allQ.length / dim, a['exact-queries'] ? Number(a['exact-queries']) : Infinity);
const Q = allQ.subarray(0, nq * dim);

const du = (p: string) => Number(execFileSync('du', ['-sb', p], { encoding: 'utf8' }).split('\t')[0]);
const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;
const row = (cells: (string | number)[]) => console.log(cells.map((c, i) => String(c).padEnd(i ? 14 : 52)).join(''));
const rows: Record<string, unknown>[] = [];

await lanceModules();
const tableDir = join(a.db, 'passages.lance');
console.log(`${a.index}: ${count} x ${dim} (${index.manifest.identity.dtype} shards), ${nq} queries, k ${k}; cores: ${(await import('node:os')).cpus().length}`);
row(['method', 'build s', 'disk', 'queries/s', `recall@${k}`]);
if (!a['reuse-table']) {
  rmSync(a.db, { recursive: true, force: true });
  const ex = await exportToLance(index, a.db, {});
  const dataBytes = du(tableDir);
  row(['LanceDB table (export)', ex.writeSeconds.toFixed(1), mb(dataBytes), '', '']);
  rows.push({ method: 'lancedb-export', buildSeconds: ex.writeSeconds, diskBytes: dataBytes });
}

/** Our GPU top-k of the first n queries: queries/s, and the pids. */
async function gpuTopk(n: number): Promise<string[][]> {
  const [{ createNodeGpu }, { uploadIndex }] = await Promise.all([import('../node/device.ts'), import('../node/index-store.ts')]);
  const gpu = await createNodeGpu({});
  try {
    let t = performance.now();
    const g = await uploadIndex(gpu, index);
    const upload = (performance.now() - t) / 1000;
    await g.search(Q.subarray(0, dim), k); // warm-up: pipelines compile
    t = performance.now();
    const r = await g.search(Q.subarray(0, n * dim), k);
    const qps = n / ((performance.now() - t) / 1000);
    const bytes = g.bytes;
    g.release();
    const got = Array.from({ length: n }, (_, i) => Array.from(r.ids.subarray(i * r.k, (i + 1) * r.k), (id) => index.pids[id]));
    gpuRow = { method: 'gpu-topk', adapter: gpu.name, uploadSeconds: upload, gpuBytes: bytes, queries: n, queriesPerSecond: qps };
    gpuCells = [`GPU top-k (${gpu.name.split(' / ')[2] ?? gpu.name})`, upload.toFixed(1), mb(bytes), qps.toFixed(1)];
    return got;
  } finally {
    gpu.destroy();
  }
}
let gpuRow: Record<string, unknown> = {};
let gpuCells: string[] = [];

const useGpuTruth = a.truth === 'gpu';
const gpuPids = await gpuTopk(nq);
const truth = useGpuTruth ? gpuPids : null;
const nl = useGpuTruth ? Math.min(nq, Number(a['lance-exact-queries'] ?? nq)) : nq;
const src0 = await openLance(a.db);
let t = performance.now();
const exact = await searchLance(src0, Q.subarray(0, nl * dim), k);
const exactQps = nl / ((performance.now() - t) / 1000);
src0.close();
const truthPids = truth ?? exact.pids;
const recallOf = (got: string[][]) => {
  let s = 0;
  for (let i = 0; i < got.length; i++) {
    const want = new Set(truthPids[i]);
    s += got[i].filter((p) => want.has(p)).length / truthPids[i].length;
  }
  return s / got.length;
};
const gpuRecall = recallOf(useGpuTruth ? gpuPids : gpuPids.slice(0, nl));
row([...gpuCells, useGpuTruth ? '1 (truth)' : gpuRecall.toFixed(4)]);
rows.push({ ...gpuRow, recall: gpuRecall });
const exactRecall = recallOf(exact.pids);
row([`LanceDB exact (flat scan${nl < nq ? `, ${nl} queries` : ''})`, '', '', exactQps.toFixed(2), useGpuTruth ? exactRecall.toFixed(4) : '1 (truth)']);
rows.push({ method: 'lancedb-exact', queries: nl, queriesPerSecond: exactQps, recall: exactRecall });


const newestIndexDir = () => {
  const dir = join(tableDir, '_indices');
  const ds = readdirSync(dir).map((n) => join(dir, n));
  return ds.sort((x, y) => statSync(y).mtimeMs - statSync(x).mtimeMs)[0];
};

if (count >= MIN_ANN_ROWS) {
  const settings: Record<AnnKind, AnnSearch[]> = {
    'ivf-pq': [{ nprobes: 20 }, { nprobes: 20, refineFactor: 5 }, { nprobes: 50, refineFactor: 5 }],
    hnsw: [{ ef: 300 }, { ef: 600 }, { ef: 600, refineFactor: 2 }],
  };
  for (const kind of a.ann!.split(',').filter(Boolean) as AnnKind[]) {
    const p = annParams(kind, count, dim);
    const { lance } = await lanceModules();
    const src = await openLance(a.db);
    t = performance.now();
    await src.table.createIndex('vector', { config: (await import('../node/lancedb/ann.ts')).annIndex(lance, p), replace: true });
    const build = (performance.now() - t) / 1000;
    const bytes = du(newestIndexDir());
    src.close();
    row([describeAnn(p), build.toFixed(1), mb(bytes), '', '']);
    const s = await openLance(a.db);
    for (const st of settings[kind]) {
      t = performance.now();
      const r = await searchLance(s, Q, k, { ann: true, ...st });
      const qps = nq / ((performance.now() - t) / 1000);
      const rc = recallOf(r.pids);
      row([`  ${JSON.stringify(st)}`, '', '', qps.toFixed(1), rc.toFixed(4)]);
      rows.push({ method: `lancedb-${kind}`, params: p, search: st, buildSeconds: build, indexBytes: bytes, queriesPerSecond: qps, recall: rc });
    }
    s.close();
  }
} else {
  console.log(`(${count} rows: below ${MIN_ANN_ROWS}, no ANN index)`);
}

if (a.json) writeFileSync(a.json, `${JSON.stringify({ index: a.index, rows: count, dim, queries: nq, k, results: rows }, null, 2)}\n`);
