// Matmul benchmark: GFLOP/s of out[N,N] = a[N,N] @ b[N,N] for a few tile shapes, in f32 and
// (with 'shader-f16') f16 storage with f32 sums, rows side by side from the same run, and of
// onnxruntime-node's CPU MatMul (f32) on the same sizes when it can be imported.
// With the global --experimental on an adapter offering subgroup matrices, the subgroup-matrix
// kernel (core/kernels/matmul-subgroup-matrix.ts) gets rows too, with the same float64 check.
//
//   node --import tsx node/bench/matmul.ts [--sizes 256,512,1024] [--iters 20] [--reps 3]
//        [--precision f32,f16] [--tiles '{"name": {"wgX": 8, "wgY": 4, "tm": 16, "tn": 8, "shared": false}}']
//        [--json out/matmul.json]
//
// f16 halves the bytes loaded per multiply-add; the kernels convert every load to f32 and sum
// in f32, so the gain is memory traffic, not half-rate arithmetic. A CPU driver has no half
// math, and each f16 load becomes a 16-bit load plus a conversion, so f16 could be slower
// there; on llvmpipe it was not (2 shared cores, load 3.5-4.5, default tiles, --reps 5,
// median worker GFLOP/s f32 / f16, two runs): a@b 18.6 / 19.5 and 22.4 / 25.5 at N = 512,
// 24.8 / 27.1 and 16.9 / 27.7 at N = 1024; a@b^T 14.9 / 17.6 and 20.5 / 21.1 at 512, 19.8 / 20.8
// and 18.9 / 17.9 at 1024. The same or up to ~1.6x faster: the operands take half the cache.
//
// Timing: warm up (pipeline compile), then record `iters` matmuls and sync once, since every
// sync makes dawn.node busy-poll and steal a core from a CPU driver (DESIGN.md section 5).
// Each of `reps` repetitions (interleaved over the tiles, so load drifts hit all of them) gives
// three numbers, reported as median and best:
//   wall    performance.now() around the recording and the sync
//   gpu     timestamp queries bracketing the same submissions ('timestamp-query' adapters)
//   worker  on CPU adapters (Linux): the flops over the CPU seconds the driver's threads spent
//           (every thread but the JS one), times the worker count (LP_NUM_THREADS, default the
//           CPU count): what the workers deliver on cores of their own. It leaves out the core
//           the sync's polling takes and time lost to other jobs, so it moves less with load;
//           compare wall and gpu numbers only from quiet runs (the JSON records the load).

import { readFileSync, readdirSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import type { Gpu } from '../../core/gpu/device.ts';
import { isCpuAdapter } from '../../core/gpu/adapter.ts';
import { BLOCK_TILE_128, BLOCK_TILE_64, CPU_TILE, GPU_TILE, type MatmulTile, defaultMatmulTile, matmul, tileSupported } from '../../core/kernels/matmul.ts';
import { fromHalf, roundHalf, toHalf } from '../../core/gpu/half.ts';
import { matmulRef } from '../../core/ref/matmul.ts';
import { type SubgroupMatrixCandidate, subgroupMatrixCandidate } from '../../core/kernels/matmul-subgroup-matrix.ts';
import type { Tensor } from '../../core/gpu/tensor.ts';
import { randu } from '../../core/util/random.ts';
import { type Row, printTable, writeJson } from './table.ts';
import { type SubmissionTiming, median, timeSubmission } from '../../core/tune/timer.ts';
import { GraphBuilder, valueInfo } from '../../core/model/onnx/builder.ts';
import { DataType, encodeModel } from '../../core/model/onnx/proto.ts';

export interface MatmulBenchOptions {
  /** Square sizes N (M = N = K). Default [256, 512, 1024]. */
  sizes?: number[];
  /** Matmuls per measurement. Default: enough for ~4 GFLOP of work, at least 3. */
  iters?: number;
  /** Measurements per tile and size, interleaved over the tiles; rows give median and best. Default 3. */
  reps?: number;
  /** Named tiles to compare on a @ b (null: the launcher's default). Default benchTiles(gpu). */
  tiles?: Record<string, MatmulTile | null>;
  /** Also time a @ b^T (Linear layout, b stored [N, K]) with the default tile. Default true. */
  transB?: boolean;
  /** Also time onnxruntime-node's CPU MatMul when importable. Default true. */
  onnx?: boolean;
  /**
   * Storage types to time, each with every tile: f32, f16 (f32 sums). Default both where the
   * adapter has 'shader-f16', else f32; an f16 asked for without it gives a row saying so.
   */
  precisions?: Precision[];
}

export type Precision = 'f32' | 'f16';

/** 'f32,f16' -> ['f32', 'f16']; a clear error names the bad item. */
export function parsePrecisions(list: string): Precision[] {
  return list.split(',').filter(Boolean).map((item) => {
    const p = item.trim();
    if (p !== 'f32' && p !== 'f16') throw new Error(`--precision: '${item}' is not f32 or f16 (comma-separated, e.g. f32,f16)`);
    return p;
  });
}

export interface MatmulBenchRow extends Row {
  impl: string;
  /** 'a@b' or 'a@b^T' */
  op: string;
  /** Storage type of a, b and out: 'f32', or 'f16' with f32 sums. */
  precision: Precision;
  tile: string;
  n: number;
  iters: number;
  reps: number;
  /** Medians over the reps; *Best: the best rep. */
  ms: number;
  gflops: number;
  gflopsBest: number;
  gpuMs?: number;
  gpuGflops?: number;
  gpuGflopsBest?: number;
  /** GFLOP per second of driver-thread CPU time, times the worker count (CPU adapters on Linux). */
  workerGflops?: number;
  workerGflopsBest?: number;
  /**
   * Max |gpu - float64 reference| at the smallest size (a fast wrong kernel is no result); for
   * f16 the reference takes the rounded inputs, and the output's own rounding (2^-11 of |y|) remains.
   */
  maxdiff?: number;
  note?: string;
}

export const matmulColumns = [
  { key: 'impl' },
  { key: 'op' },
  { key: 'precision' },
  { key: 'tile' },
  { key: 'n' },
  { key: 'iters' },
  { key: 'reps' },
  { key: 'ms', digits: 2 },
  { key: 'gflops', label: 'GFLOP/s', digits: 2 },
  { key: 'gflopsBest', label: 'best', digits: 2 },
  { key: 'gpuGflops', label: 'gpu GFLOP/s', digits: 2 },
  { key: 'gpuGflopsBest', label: 'best', digits: 2 },
  { key: 'workerGflops', label: 'worker GFLOP/s', digits: 2 },
  { key: 'workerGflopsBest', label: 'best', digits: 2 },
  { key: 'maxdiff', digits: 7 },
  { key: 'note' },
];

export function tileName(t: MatmulTile): string {
  const kind = t.block ? `block bk${t.bk ?? 16}` : t.shared ? `shared bk${t.bk ?? 16}` : t.subgroup ? 'subgroup' : t.unrolled ? 'unrolled' : 'register';
  return `${kind} ${t.wgX}x${t.wgY} wg, ${t.tm}x${t.tn}/inv`;
}

/**
 * The default tile (null: chosen per call by the launcher) plus alternatives worth comparing,
 * the 2D block tiles among them where they fit the adapter's workgroup limits.
 */
export function benchTiles(gpu: Gpu): Record<string, MatmulTile | null> {
  const block = Object.entries({ 'block 64': BLOCK_TILE_64, 'block 128': BLOCK_TILE_128 }).filter(([, t]) => tileSupported(gpu, t));
  if (isCpuAdapter(gpu)) return { default: null, unrolled: CPU_TILE, shared: GPU_TILE, ...Object.fromEntries(block) };
  return { default: null, 'shared 8x8': { wgX: 16, wgY: 16, tm: 8, tn: 8, shared: true, bk: 8 }, unrolled: CPU_TILE, ...Object.fromEntries(block) };
}

const flopsOf = (n: number) => 2 * n * n * n;
const defaultIters = (n: number) => Math.max(3, Math.round(4e9 / flopsOf(n)));

export async function benchMatmul(gpu: Gpu, opts: MatmulBenchOptions = {}): Promise<MatmulBenchRow[]> {
  const sizes = opts.sizes ?? [256, 512, 1024];
  const tiles: Record<string, MatmulTile | null> = opts.tiles ?? benchTiles(gpu);
  const reps = opts.reps ?? 3;
  const workers = isCpuAdapter(gpu) ? driverWorkers() : 0;
  const hasF16 = gpu.features.has('shader-f16');
  const asked = opts.precisions ?? (hasF16 ? ['f32', 'f16'] : ['f32']);
  const precisions = asked.filter((p) => p === 'f32' || hasF16);
  const rows: MatmulBenchRow[] = [];
  if (asked.includes('f16') && !hasF16) {
    rows.push({ impl: 'webgpu', op: 'a@b', precision: 'f16', tile: '-', n: NaN, iters: 0, reps: 0, ms: NaN, gflops: NaN, gflopsBest: NaN, note: `skipped: ${gpu.name} lacks shader-f16` });
  }
  const smallest = Math.min(...sizes);
  for (const n of sizes) {
    const iters = opts.iters ?? defaultIters(n);
    const ah = randu(n * n, 1), bh = randu(n * n, 2);
    // Both precisions' operands, so their runs interleave like the tiles' (load drift hits all).
    const operands = precisions.map((precision) => {
      const f16 = precision === 'f16';
      const up = (x: Float32Array) => (f16 ? gpu.upload(toHalf(x), [n, n]) : gpu.upload(x, [n, n]));
      return { precision, a: up(ah), b: up(bh), out: gpu.empty([n, n], precision) };
    });
    const runs = operands.flatMap((t) => {
      const r: { name: string; tile: MatmulTile | null; transB: boolean; t: typeof t; sgm?: SubgroupMatrixCandidate }[] =
        Object.entries(tiles).map(([name, tile]) => ({ name, tile, transB: false, t }));
      if (opts.transB ?? true) r.push({ name: 'default', tile: null, transB: true, t });
      // With --experimental on an adapter with subgroup matrices: that kernel too, checked like the rest.
      const sgm = subgroupMatrixCandidate(gpu, t.precision);
      if (sgm) r.push({ name: sgm.name, tile: null, transB: false, t, sgm });
      return r;
    });
    const measured = runs.map((r) => {
      const o = { tile: r.tile ?? defaultMatmulTile(gpu, { transB: r.transB }), transB: r.transB };
      const run = (out: Tensor, a: Tensor, b: Tensor) => (r.sgm ? r.sgm.run(gpu, out, a, b) : matmul(gpu, out, a, b, o));
      return { ...r, o, run, maxdiff: undefined as number | undefined, wall: [] as number[], gpu: [] as number[], worker: [] as number[] };
    });
    for (const m of measured) {
      const { a, b, out, precision } = m.t;
      m.run(out, a, b); // warm-up: compiles the pipeline
      await gpu.sync();
      if (n === smallest) {
        // a fast wrong kernel is no result: compare with the float64 reference once
        const f16 = precision === 'f16';
        const ref = f16 ? matmulRef(roundHalf(ah), roundHalf(bh), n, n, n, { transB: m.transB }).out : matmulRef(ah, bh, n, n, n, { transB: m.transB }).out;
        const got = f16 ? fromHalf((await gpu.read(out)) as Uint16Array) : await gpu.readF32(out);
        m.maxdiff = 0;
        for (let i = 0; i < got.length; i++) m.maxdiff = Math.max(m.maxdiff, Math.abs(got[i] - ref[i]));
      }
    }
    for (let rep = 0; rep < reps; rep++) {
      for (const m of measured) {
        const { a, b, out } = m.t;
        const record = () => {
          for (let i = 0; i < iters; i++) m.run(out, a, b);
        };
        const t = await timeWork(gpu, record);
        m.wall.push(t.wallMs / iters);
        if (t.gpuMs !== null) m.gpu.push(t.gpuMs / iters);
        // CPU seconds per matmul per worker: the time each would take on a core of its own
        if (workers && t.cpuS) m.worker.push(t.cpuS / iters / workers);
      }
    }
    for (const m of measured) {
      const gf = (ms: number) => flopsOf(n) / ms / 1e6;
      const gfs = (v: number[]) => (v.length ? { med: gf(median(v)), best: gf(Math.min(...v)) } : undefined);
      const g = gfs(m.gpu), w = gfs(m.worker.map((s) => s * 1e3));
      rows.push({
        impl: 'webgpu',
        op: m.transB ? 'a@b^T' : 'a@b',
        precision: m.t.precision,
        tile: m.sgm ? m.name : `${m.name}: ${tileName(m.o.tile)}`,
        n,
        iters,
        reps,
        ms: median(m.wall),
        gflops: gf(median(m.wall)),
        gflopsBest: gf(Math.min(...m.wall)),
        gpuMs: m.gpu.length ? median(m.gpu) : undefined,
        gpuGflops: g?.med,
        gpuGflopsBest: g?.best,
        workerGflops: w?.med,
        workerGflopsBest: w?.best,
        maxdiff: m.maxdiff,
      });
    }
    for (const t of operands) for (const x of [t.a, t.b, t.out]) x.release();
    if (opts.onnx ?? true) rows.push(await benchOnnx(n, iters, reps));
  }
  return rows;
}

/** Threads a CPU driver runs compute on: llvmpipe's LP_NUM_THREADS, default one per CPU. */
function driverWorkers(): number {
  const env = Number(process.env.LP_NUM_THREADS);
  return env > 0 ? env : availableParallelism();
}

/**
 * CPU seconds spent so far by every thread of this process except the JS thread (Linux
 * /proc schedstat, in ns; null elsewhere). While a CPU adapter runs a dispatch that is its
 * worker threads; Dawn's own threads and V8's helpers add well under 1% in a timed loop.
 */
function driverCpuSeconds(): number | null {
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return null;
  }
  let ns = 0;
  for (const tid of tids) {
    if (Number(tid) === process.pid) continue;
    try {
      ns += Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread exited between the listing and the read
    }
  }
  return ns / 1e9;
}

interface Timing extends SubmissionTiming {
  /** Driver-thread CPU seconds over the same window (see driverCpuSeconds); null if unknown. */
  cpuS: number | null;
}

/** Times the work `record` records three ways over one submission: wall, GPU timestamps, driver CPU time. */
async function timeWork(gpu: Gpu, record: () => void): Promise<Timing> {
  let cpu0: number | null = null, cpu1: number | null = null;
  const t = await timeSubmission(gpu, record, { start: () => (cpu0 = driverCpuSeconds()), stop: () => (cpu1 = driverCpuSeconds()) });
  return { ...t, cpuS: cpu0 !== null && cpu1 !== null ? cpu1 - cpu0 : null };
}

// ------------------------------------------------------------------ onnxruntime-node baseline

/** ModelProto with one MatMul node C[m,n] = A[m,k] @ B[k,n], f32, opset 13 (the export's own builder). */
export function onnxMatmulModel(m: number, k: number, n: number): Uint8Array {
  const g = new GraphBuilder();
  g.op('MatMul', ['A', 'B']);
  g.nameLast('C');
  const io = (name: string, dims: number[]) => valueInfo(name, DataType.FLOAT, dims);
  return encodeModel({
    ir_version: 8,
    producer_name: 'aqa-bench',
    producer_version: '',
    opset_import: [{ domain: '', version: 13 }],
    graph: g.graph('matmul', [io('A', [m, k]), io('B', [k, n])], [io('C', [m, n])]),
  });
}

async function benchOnnx(n: number, iters: number, reps: number): Promise<MatmulBenchRow> {
  const row: MatmulBenchRow = { impl: 'onnxruntime-node', op: 'a@b', precision: 'f32', tile: 'CPU MatMul', n, iters, reps, ms: NaN, gflops: NaN, gflopsBest: NaN };
  let ort: typeof import('onnxruntime-node');
  try {
    ort = await import('onnxruntime-node');
  } catch (e) {
    return { ...row, note: `not importable: ${(e as Error).message.split('\n')[0]}` };
  }
  const session = await ort.InferenceSession.create(onnxMatmulModel(n, n, n));
  const feeds = { A: new ort.Tensor('float32', randu(n * n, 1), [n, n]), B: new ort.Tensor('float32', randu(n * n, 2), [n, n]) };
  await session.run(feeds);
  const times: number[] = [];
  for (let rep = 0; rep < reps; rep++) {
    const t0 = performance.now();
    for (let i = 0; i < iters; i++) await session.run(feeds);
    times.push((performance.now() - t0) / iters);
  }
  await session.release();
  const ms = median(times);
  return { ...row, ms, gflops: flopsOf(n) / ms / 1e6, gflopsBest: flopsOf(n) / Math.min(...times) / 1e6 };
}

// ------------------------------------------------------------------ command line

async function main(argv: string[]): Promise<void> {
  const arg = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const { createNodeGpu } = await import('../device.ts');
  const gpu = await createNodeGpu();
  const sizes = arg('sizes')?.split(',').map(Number);
  const iters = arg('iters') ? Number(arg('iters')) : undefined;
  const reps = arg('reps') ? Number(arg('reps')) : undefined;
  const tilesArg = arg('tiles');
  const tiles = tilesArg ? { default: null, ...(JSON.parse(tilesArg) as Record<string, MatmulTile>) } : undefined;
  const precisions = arg('precision') ? parsePrecisions(arg('precision')!) : undefined;
  // Other jobs on the machine move wall and gpu numbers (not so much the worker ones): say how busy it was.
  const load = () => loadavg()[0].toFixed(2);
  const loadBefore = load();
  console.log(`adapter: ${gpu.name}\nload average (1 min) before: ${loadBefore}`);
  const rows = await benchMatmul(gpu, { sizes, iters, reps, tiles, precisions, onnx: !argv.includes('--no-onnx') });
  const loadAfter = load();
  printTable(rows, matmulColumns);
  console.log(`load average (1 min) after: ${loadAfter}`);
  const json = arg('json');
  if (json) writeJson(json, { bench: 'matmul', adapter: gpu.name, loadavg: { before: Number(loadBefore), after: Number(loadAfter) }, rows });
  gpu.destroy();
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main(process.argv.slice(2));
}
