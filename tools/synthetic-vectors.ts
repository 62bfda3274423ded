// A synthetic embedding index with cluster structure, for measuring search paths at the AQA
// corpus's scale without embedding 466,387 papers: a Gaussian mixture on the unit sphere,
// written as a normal `aqa index` directory (manifest.json, pids.json, shard files) so every
// search path reads it, plus query vectors drawn from the same mixture (not from the set).
//
//   node --import tsx tools/synthetic-vectors.ts --out /work/artifacts/synthetic-466k \
//     [--rows 466387] [--dim 1024] [--clusters 2000] [--topics 40] [--queries 1000] \
//     [--dtype f16|f32] [--seed 20261207]
//
// The mixture, chosen to look like text embeddings rather than uniform noise:
//   - a shared direction g (embeddings of one model are anisotropic: two random papers have a
//     positive cosine), `--topics` topic directions t, and `--clusters` cluster centres
//     c = normalize(0.35 g + 0.55 t_topic + 0.76 r) with r random: centres of one topic have a
//     cosine near 0.42, of two topics near 0.12;
//   - cluster sizes from a log-normal weight (sigma 1): the largest clusters hold tens of times
//     the rows of the smallest, like popular and niche subjects;
//   - each cluster its own spread s in [0.5, 1.3]: a row is normalize(c + s z / sqrt(dim)) with
//     z standard normal, so its cosine to its centre is about 1 / sqrt(1 + s^2) (0.89 to 0.61);
//   - rows in a seeded random order (a corpus is not sorted by subject).
// Queries pick a cluster with probability proportional to its size and draw a fresh row from it
// with a separate random stream. Everything follows from --seed: the same arguments write the
// same bytes.
//
// Output (besides the index files): queries.npy [queries, dim] f32, and synthetic.json with the
// arguments, the cluster sizes and spreads, and each query's cluster. READY is written last.

import { createHash } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { encodeVectors, INDEX_FORMAT, INDEX_VERSION, type IndexManifest, type ShardEntry, shardCount, shardFileName, shardRange, type VectorDType } from '../core/retrieval/index-format.ts';
import { writeFileAtomic } from '../node/files.ts';
import { npyBytes } from '../node/npy.ts';

const { values: a } = parseArgs({
  options: {
    out: { type: 'string' },
    rows: { type: 'string', default: '466387' },
    dim: { type: 'string', default: '1024' },
    clusters: { type: 'string', default: '2000' },
    topics: { type: 'string', default: '40' },
    queries: { type: 'string', default: '1000' },
    dtype: { type: 'string', default: 'f16' },
    'shard-size': { type: 'string', default: '50000' },
    seed: { type: 'string', default: '20261207' },
  },
});
if (!a.out) throw new Error('--out <dir> is required');
const int = (name: string, v: string | undefined) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: expected a positive integer, got ${v}`);
  return n;
};
const rows = int('rows', a.rows);
const dim = int('dim', a.dim);
const K = int('clusters', a.clusters);
const T = int('topics', a.topics);
const nq = int('queries', a.queries);
const shardSize = int('shard-size', a['shard-size']);
const seed = int('seed', a.seed);
const dtype = a.dtype as VectorDType;
if (dtype !== 'f16' && dtype !== 'f32') throw new Error(`--dtype: f16 or f32, got ${a.dtype}`);
const out = resolve(a.out);

/** sfc32: a small fast generator with a 2^128 state; uniform in [0, 1). */
function sfc32(s: number, stream: number): () => number {
  let x = s >>> 0;
  let y = (stream * 0x9e3779b9) >>> 0;
  let z = 0x6a09e667;
  let c = 1;
  const next = () => {
    const t = (((x + y) | 0) + c) | 0;
    c = (c + 1) | 0;
    x = y ^ (y >>> 9);
    y = (z + (z << 3)) | 0;
    z = (z << 21) | (z >>> 11);
    z = (z + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 20; i++) next();
  return next;
}

/** Standard normals by Box-Muller, two per pair of uniforms. */
function normals(u: () => number): (into: Float32Array, from: number, n: number, scale: number) => void {
  return (into, from, n, scale) => {
    let i = 0;
    while (i < n) {
      const r = Math.sqrt(-2 * Math.log(1 - u())) * scale;
      const th = 2 * Math.PI * u();
      into[from + i++] = r * Math.cos(th);
      if (i < n) into[from + i++] = r * Math.sin(th);
    }
  };
}

function normalize(v: Float32Array, from = 0, n = v.length): void {
  let s = 0;
  for (let i = 0; i < n; i++) s += v[from + i] * v[from + i];
  const k = 1 / Math.sqrt(s);
  for (let i = 0; i < n; i++) v[from + i] *= k;
}

const u = sfc32(seed, 1);
const gauss = normals(u);
const unit = (): Float32Array => {
  const v = new Float32Array(dim);
  gauss(v, 0, dim, 1);
  normalize(v);
  return v;
};

// Centres.
const g = unit();
const topics = Array.from({ length: T }, unit);
const centres = new Float32Array(K * dim);
const topicOf = new Int32Array(K);
for (let k = 0; k < K; k++) {
  const r = unit();
  topicOf[k] = Math.floor(u() * T);
  const t = topics[topicOf[k]];
  for (let d = 0; d < dim; d++) centres[k * dim + d] = 0.35 * g[d] + 0.55 * t[d] + 0.76 * r[d];
  normalize(centres, k * dim, dim);
}
const spread = Float32Array.from({ length: K }, () => 0.5 + 0.8 * u());

// Sizes: log-normal weights, at least one row each, rounded by largest remainder to `rows`.
const z1 = new Float32Array(K);
gauss(z1, 0, K, 1);
const w = Array.from(z1, (z) => Math.exp(z));
const wsum = w.reduce((s, x) => s + x, 0);
const exact = w.map((x) => 1 + (x / wsum) * (rows - K));
const sizes = exact.map(Math.floor);
let left = rows - sizes.reduce((s, x) => s + x, 0);
const byRem = exact.map((x, k) => [x - Math.floor(x), k]).sort((p, q) => q[0] - p[0] || p[1] - q[1]);
for (let i = 0; left > 0; i++, left--) sizes[byRem[i][1]]++;

// Row -> cluster, shuffled (Fisher-Yates).
const label = new Int32Array(rows);
for (let k = 0, at = 0; k < K; k++) for (let j = 0; j < sizes[k]; j++) label[at++] = k;
for (let i = rows - 1; i > 0; i--) {
  const j = Math.floor(u() * (i + 1));
  const t = label[i];
  label[i] = label[j];
  label[j] = t;
}

/** Rows of the given clusters into `v`, from one generator. */
function drawRows(v: Float32Array, clusters: ArrayLike<number>, draw: ReturnType<typeof normals>): void {
  const s = 1 / Math.sqrt(dim);
  for (let i = 0; i < clusters.length; i++) {
    const k = clusters[i];
    draw(v, i * dim, dim, spread[k] * s);
    for (let d = 0; d < dim; d++) v[i * dim + d] += centres[k * dim + d];
    normalize(v, i * dim, dim);
  }
}

const hex = (s: string) => createHash('sha256').update(s).digest('hex');
const t0 = performance.now();
await rm(join(out, 'READY'), { force: true });
await mkdir(out, { recursive: true });
const pids = Array.from({ length: rows }, (_, i) => `syn-${String(i).padStart(6, '0')}`);
await writeFileAtomic(join(out, 'pids.json'), JSON.stringify(pids));

const tag = `synthetic gaussian mixture rows=${rows} dim=${dim} clusters=${K} topics=${T} seed=${seed}`;
const total = shardCount(rows, shardSize);
const shards: ShardEntry[] = [];
const rowDraw = normals(sfc32(seed, 2));
for (let i = 0; i < total; i++) {
  const ts = performance.now();
  const [start, end] = shardRange(i, rows, shardSize);
  const v = new Float32Array((end - start) * dim);
  drawRows(v, label.subarray(start, end), rowDraw);
  const bytes = encodeVectors(v, dtype);
  const file = shardFileName(i, dtype);
  await writeFileAtomic(join(out, file), bytes);
  shards.push({ file, start, rows: end - start, bytes: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex'), seconds: Number(((performance.now() - ts) / 1000).toFixed(3)), batchSize: 1 });
  console.error(`shard ${i + 1}/${total}: ${end - start} rows`);
}

const now = new Date().toISOString();
const manifest: IndexManifest = {
  format: INDEX_FORMAT,
  version: INDEX_VERSION,
  // No model made these vectors: the identity's hashes are of the generator's arguments, so two
  // sets from other arguments never pass for each other.
  identity: {
    configSha256: hex(`config: ${tag}`),
    tokenizerSha256: hex(`tokenizer: ${tag}`),
    weightsHash: hex(`weights: ${tag}`),
    pooling: 'mean',
    normalize: true,
    passagePrefix: '',
    maxLength: 1,
    maxChars: 1,
    precision: 'f32',
    dtype,
    dim,
    shardSize,
    corpusSha256: hex(`corpus: ${tag}`),
    count: rows,
  },
  model: { name: 'synthetic-gaussian-mixture', dir: out, arch: 'synthetic', queryPrefix: '', weightsHashMethod: `none: ${tag}` },
  corpus: { file: `synthetic: ${tag}`, bytes: 0 },
  shards,
  complete: true,
  created: now,
  updated: now,
};
await writeFileAtomic(join(out, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);

// Queries: cluster by size (inverse CDF), fresh noise from their own stream.
const qu = sfc32(seed, 3);
const cdf: number[] = [];
sizes.reduce((s, x, k) => (cdf[k] = s + x), 0);
const qCluster = Int32Array.from({ length: nq }, () => {
  const r = qu() * rows;
  let lo = 0;
  let hi = K - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cdf[mid] > r) hi = mid;
    else lo = mid + 1;
  }
  return lo;
});
const q = new Float32Array(nq * dim);
drawRows(q, qCluster, normals(qu));
await writeFileAtomic(join(out, 'queries.npy'), npyBytes(q, [nq, dim], 'f32'));
await writeFileAtomic(
  join(out, 'synthetic.json'),
  `${JSON.stringify({ generator: 'tools/synthetic-vectors.ts', rows, dim, clusters: K, topics: T, queries: nq, dtype, shardSize, seed, clusterSizes: sizes, clusterSpread: Array.from(spread, (x) => Number(x.toFixed(4))), clusterTopic: Array.from(topicOf), queryCluster: Array.from(qCluster) })}\n`,
);
await writeFile(join(out, 'READY'), `${now}\n`);
console.error(`wrote ${rows} x ${dim} ${dtype} (${total} shards) and ${nq} queries to ${out} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
