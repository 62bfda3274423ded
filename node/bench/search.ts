// Search benchmark: queries/s of exact top-k over a synthetic random index, GPU (GpuIndex:
// matmul scores + radix select, core/kernels/topk.ts) against a plain CPU scan in the same run
// (JS loop of Float32Array dot products, float64 sums, and a bounded heap per query).
//
//   node --import tsx node/bench/search.ts [--quick] [--n 466387] [--dims 1024,384]
//        [--queries 64] [--k 200] [--f16] [--no-cpu] [--json out/search.json]
//
// The index is generated piece by piece (PIECE_ROWS rows from a seeded generator) and streamed
// into the GPU; the CPU scan regenerates the same pieces instead of keeping a host copy, and
// only its scanning is timed. At n = 466,387 x 1024 that is 1.78 GiB of f32 held once, on the
// GPU side. "ms" is wall time of one search of all the queries: for the GPU, query upload,
// every dispatch and the readback of the [Q, k] results, after a warm-up search on a small
// index (pipeline compiles).

import { pathToFileURL } from 'node:url';
import type { Gpu } from '../../core/gpu/device.ts';
import { scoresTile, topkWg } from '../../core/kernels/topk.ts';
import { tileName } from './matmul.ts';
import { TopHeap, dotRows } from '../../core/retrieval/cpu-topk.ts';
import { GpuIndex } from '../../core/retrieval/search.ts';
import { randu } from '../../core/util/random.ts';
import { type Row, printTable, writeJson } from './table.ts';

export interface SearchBenchOptions {
  /** Index rows. Default 466,387 (50,000 with quick). */
  n?: number;
  /** Vector sizes, one index each. Default [1024, 384]. */
  dims?: number[];
  /** Queries per search. Default 64. */
  queries?: number;
  /** Results per query. Default 200. */
  k?: number;
  /** n = 50,000 unless n is given. */
  quick?: boolean;
  /** GPU index storage types to time. Default ['f32']; 'f16' needs 'shader-f16'. */
  dtypes?: ('f32' | 'f16')[];
  /** Also time the CPU scan. Default true. */
  cpu?: boolean;
  log?: (msg: string) => void;
}

export interface SearchBenchRow extends Row {
  impl: string;
  n: number;
  dim: number;
  queries: number;
  k: number;
  ms: number;
  /** Queries per second. */
  qps: number;
  /** qps / the CPU scan's qps on the same index. */
  speedup?: number;
  /** Bytes of the index (GPU buffers; for the CPU, what a host copy takes). */
  indexMiB: number;
  /** GPU temporaries of one search: score scratch, candidates, queries and results. */
  scratchMiB?: number;
  /** Fraction of the CPU scan's top-k ids the GPU also returned (near-ties may swap). */
  agree?: number;
  note?: string;
}

export const searchColumns = [
  { key: 'impl' },
  { key: 'n' },
  { key: 'dim' },
  { key: 'queries' },
  { key: 'k' },
  { key: 'ms', digits: 0 },
  { key: 'qps', label: 'queries/s', digits: 2 },
  { key: 'speedup', label: 'vs cpu', digits: 2 },
  { key: 'indexMiB', label: 'index MiB', digits: 1 },
  { key: 'scratchMiB', label: 'scratch MiB', digits: 1 },
  { key: 'agree', digits: 4 },
  { key: 'note' },
];

/** Rows generated (and uploaded) at a time: 16 MiB of f32 at dim 1024. */
const PIECE_ROWS = 4096;
const MiB = 2 ** 20;

/** The synthetic index, piece by piece: uniform(-1, 1), seeded by piece number. */
function* pieces(n: number, dim: number, seed: number): Generator<Float32Array> {
  for (let r0 = 0, i = 0; r0 < n; r0 += PIECE_ROWS, i++) yield randu(Math.min(PIECE_ROWS, n - r0) * dim, seed + 7919 * i);
}

/**
 * Exact top-k by a plain scan: float64 dot products of f32 rows, one bounded heap per query
 * (worst kept result on top), the kernels' order (larger score, then smaller id). `rows` yields
 * the index in order. Returns [Q, min(k, N)] best first and the milliseconds spent scanning
 * (excluding the time spent producing rows).
 */
export function cpuSearch(queries: Float32Array, Q: number, rows: Iterable<Float32Array>, dim: number, k: number): { scores: Float64Array; ids: Uint32Array; k: number; ms: number } {
  const heaps = Array.from({ length: Q }, () => new TopHeap(k));
  const dots = new Float64Array(Q);
  let ms = 0;
  let id = 0;
  for (const piece of rows) {
    const t0 = performance.now();
    const n = piece.length / dim;
    for (let r = 0; r < n; r++, id++) {
      const p0 = r * dim;
      for (let q = 0; q < Q; q++) dots[q] = dotRows(queries, q * dim, piece, p0, dim);
      for (let q = 0; q < Q; q++) heaps[q].push(dots[q], id);
    }
    ms += performance.now() - t0;
  }
  const kk = Math.min(k, id);
  const scores = new Float64Array(Q * kk);
  const ids = new Uint32Array(Q * kk);
  heaps.forEach((hp, q) => hp.drainBestFirst(scores.subarray(q * kk, (q + 1) * kk), ids.subarray(q * kk, (q + 1) * kk)));
  return { scores, ids, k: kk, ms };
}


export async function benchSearch(gpu: Gpu, opts: SearchBenchOptions = {}): Promise<SearchBenchRow[]> {
  const n = opts.n ?? (opts.quick ? 50_000 : 466_387);
  const dims = opts.dims ?? [1024, 384];
  const Q = opts.queries ?? 64;
  const k = opts.k ?? 200;
  const dtypes = opts.dtypes ?? ['f32'];
  const log = opts.log ?? (() => {});
  const rows: SearchBenchRow[] = [];
  for (const dim of dims) {
    const seed = 1000 + dim;
    const queries = randu(Q * dim, seed - 1);
    const base = { n, dim, queries: Q, k, indexMiB: (n * dim * 4) / MiB };
    let cpu: ReturnType<typeof cpuSearch> | null = null;
    if (opts.cpu ?? true) {
      log(`dim ${dim}: CPU scan of ${n} rows`);
      cpu = cpuSearch(queries, Q, pieces(n, dim, seed), dim, k);
      rows.push({ impl: 'cpu scan (JS, heap)', ...base, ms: cpu.ms, qps: (Q * 1000) / cpu.ms, speedup: 1, note: 'float64 sums; host copy not kept (regenerated)' });
    }
    for (const dtype of dtypes) {
      if (dtype === 'f16' && !gpu.features.has('shader-f16')) {
        rows.push({ impl: 'webgpu f16', ...base, ms: NaN, qps: NaN, note: `no shader-f16 on ${gpu.name}` });
        continue;
      }
      // Warm-up on a small index: compiles every pipeline the big search uses.
      const small = await GpuIndex.upload(gpu, randu(20_000 * dim, 5), dim, { dtype });
      await small.search(queries, k, { block: 8192 });
      small.release();

      log(`dim ${dim}: uploading ${n} rows (${dtype})`);
      const index = await GpuIndex.upload(gpu, pieces(n, dim, seed), dim, { dtype, rows: n });
      const plan = index.plan(Q, k);
      log(`dim ${dim}: GPU search (${index.chunks.length} chunks, block ${plan.block}, segment ${plan.segment}, lists of ${plan.listWidth})`);
      const t0 = performance.now();
      const res = await index.search(queries, k);
      const ms = performance.now() - t0;
      let agree: number | undefined;
      if (cpu) {
        let hit = 0;
        for (let q = 0; q < Q; q++) {
          const want = new Set(cpu.ids.subarray(q * cpu.k, (q + 1) * cpu.k));
          for (const id of res.ids.subarray(q * res.k, (q + 1) * res.k)) if (want.has(id)) hit++;
        }
        agree = hit / (Q * cpu.k);
      }
      const qps = (Q * 1000) / ms;
      rows.push({
        impl: `webgpu ${dtype}`,
        ...base,
        ms,
        qps,
        speedup: cpu ? qps / ((Q * 1000) / cpu.ms) : undefined,
        indexMiB: index.bytes / MiB,
        scratchMiB: (plan.scratchBytes + Q * dim * 4 + 2 * Q * plan.k * 4) / MiB,
        agree,
        note: `${index.chunks.length} chunks, block ${plan.block}, select wg ${topkWg(gpu)}${dtype === 'f32' ? `, tile ${tileName(scoresTile(gpu, plan.queryRows))}` : ''}`,
      });
      index.release();
    }
  }
  return rows;
}

// ------------------------------------------------------------------ command line

async function main(argv: string[]): Promise<void> {
  const arg = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const { createNodeGpu } = await import('../device.ts');
  const gpu = await createNodeGpu();
  console.error(`adapter: ${gpu.name}`);
  const rows = await benchSearch(gpu, {
    quick: argv.includes('--quick'),
    n: arg('n') ? Number(arg('n')) : undefined,
    dims: arg('dims')?.split(',').map(Number),
    queries: arg('queries') ? Number(arg('queries')) : undefined,
    k: arg('k') ? Number(arg('k')) : undefined,
    dtypes: argv.includes('--f16') ? ['f32', 'f16'] : undefined,
    cpu: !argv.includes('--no-cpu'),
    log: (m) => console.error(`  ${m}`),
  });
  printTable(rows, searchColumns);
  const json = arg('json');
  if (json) writeJson(json, { bench: 'search', adapter: gpu.name, rows });
  gpu.destroy();
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main(process.argv.slice(2));
}
