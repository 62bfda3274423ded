// Matmul benchmark: GFLOP/s of out[N,N] = a[N,N] @ b[N,N] (f32) for a few tile shapes, and of
// onnxruntime-node's CPU MatMul on the same sizes when it can be imported.
//
//   node --import tsx node/bench/matmul.ts [--sizes 256,512,1024] [--iters 20] [--json out/matmul.json]
//
// Timing: warm up (pipeline compile), then record `iters` matmuls and sync once, since every
// sync makes dawn.node busy-poll and steal a core from a CPU driver (DESIGN.md section 5).
// "ms" is wall time per matmul from performance.now(); "gpu ms" brackets the same submissions
// with timestamp queries when the adapter has 'timestamp-query' (excludes the polling loss).

import { pathToFileURL } from 'node:url';
import type { Gpu } from '../../core/gpu/device.ts';
import { CPU_TILE, GPU_TILE, type MatmulTile, defaultMatmulTile, isCpuAdapter, matmul } from '../../core/kernels/matmul.ts';
import { matmulRef } from '../../core/ref/matmul.ts';
import { randu } from '../../test/cases/util.ts';
import { type Row, printTable, writeJson } from './table.ts';

export interface MatmulBenchOptions {
  /** Square sizes N (M = N = K). Default [256, 512, 1024]. */
  sizes?: number[];
  /** Matmuls per measurement. Default: enough for ~4 GFLOP of work, at least 3. */
  iters?: number;
  /** Named tiles to compare on a @ b (null: the launcher's default). Default benchTiles(gpu). */
  tiles?: Record<string, MatmulTile | null>;
  /** Also time a @ b^T (Linear layout, b stored [N, K]) with the default tile. Default true. */
  transB?: boolean;
  /** Also time onnxruntime-node's CPU MatMul when importable. Default true. */
  onnx?: boolean;
}

export interface MatmulBenchRow extends Row {
  impl: string;
  /** 'a@b' or 'a@b^T' */
  op: string;
  tile: string;
  n: number;
  iters: number;
  ms: number;
  gflops: number;
  gpuMs?: number;
  gpuGflops?: number;
  /** Max |gpu - float64 reference| at the smallest size (a fast wrong kernel is no result). */
  maxdiff?: number;
  note?: string;
}

export const matmulColumns = [
  { key: 'impl' },
  { key: 'op' },
  { key: 'tile' },
  { key: 'n' },
  { key: 'iters' },
  { key: 'ms', digits: 2 },
  { key: 'gflops', label: 'GFLOP/s', digits: 2 },
  { key: 'gpuMs', label: 'gpu ms', digits: 2 },
  { key: 'gpuGflops', label: 'gpu GFLOP/s', digits: 2 },
  { key: 'maxdiff', digits: 7 },
  { key: 'note' },
];

export function tileName(t: MatmulTile): string {
  const kind = t.shared ? `shared bk${t.bk ?? 16}` : t.subgroup ? 'subgroup' : t.unrolled ? 'unrolled' : 'register';
  return `${kind} ${t.wgX}x${t.wgY} wg, ${t.tm}x${t.tn}/inv`;
}

/** The default tile (null: chosen per call by the launcher) plus alternatives worth comparing. */
export function benchTiles(gpu: Gpu): Record<string, MatmulTile | null> {
  if (isCpuAdapter(gpu)) return { default: null, unrolled: CPU_TILE, shared: GPU_TILE };
  return { default: null, 'shared 8x8': { wgX: 16, wgY: 16, tm: 8, tn: 8, shared: true, bk: 8 }, unrolled: CPU_TILE };
}

const flopsOf = (n: number) => 2 * n * n * n;
const defaultIters = (n: number) => Math.max(3, Math.round(4e9 / flopsOf(n)));

export async function benchMatmul(gpu: Gpu, opts: MatmulBenchOptions = {}): Promise<MatmulBenchRow[]> {
  const sizes = opts.sizes ?? [256, 512, 1024];
  const tiles: Record<string, MatmulTile | null> = opts.tiles ?? benchTiles(gpu);
  const rows: MatmulBenchRow[] = [];
  const smallest = Math.min(...sizes);
  for (const n of sizes) {
    const iters = opts.iters ?? defaultIters(n);
    const ah = randu(n * n, 1), bh = randu(n * n, 2);
    const a = gpu.upload(ah, [n, n]), b = gpu.upload(bh, [n, n]), out = gpu.empty([n, n]);
    const runs: { name: string; tile: MatmulTile | null; transB: boolean }[] = Object.entries(tiles).map(([name, tile]) => ({ name, tile, transB: false }));
    if (opts.transB ?? true) runs.push({ name: 'default', tile: null, transB: true });
    for (const r of runs) {
      const tile = r.tile ?? defaultMatmulTile(gpu, { transB: r.transB });
      const o = { tile, transB: r.transB };
      matmul(gpu, out, a, b, o); // warm-up: compiles the pipeline
      await gpu.sync();
      let maxdiff: number | undefined;
      if (n === smallest) {
        // a fast wrong kernel is no result: compare with the float64 reference once
        const ref = matmulRef(ah, bh, n, n, n, { transB: r.transB }).out;
        const got = await gpu.readF32(out);
        maxdiff = 0;
        for (let i = 0; i < got.length; i++) maxdiff = Math.max(maxdiff, Math.abs(got[i] - ref[i]));
      }
      const record = () => {
        for (let i = 0; i < iters; i++) matmul(gpu, out, a, b, o);
      };
      const t0 = performance.now();
      record();
      await gpu.sync();
      const wall = (performance.now() - t0) / iters;
      const gpuMs = await timeOnGpu(gpu, record);
      rows.push({
        impl: 'webgpu',
        op: r.transB ? 'a@b^T' : 'a@b',
        tile: `${r.name}: ${tileName(tile)}`,
        n,
        iters,
        ms: wall,
        gflops: flopsOf(n) / wall / 1e6,
        gpuMs: gpuMs === null ? undefined : gpuMs / iters,
        gpuGflops: gpuMs === null ? undefined : flopsOf(n) / (gpuMs / iters) / 1e6,
        maxdiff,
      });
    }
    for (const t of [a, b, out]) t.release();
    if (opts.onnx ?? true) rows.push(await benchOnnx(n, iters));
  }
  return rows;
}

/**
 * GPU time of the work `record` records, in ms: empty compute passes with timestamp writes are
 * submitted right before and after it. Null without 'timestamp-query'.
 */
async function timeOnGpu(gpu: Gpu, record: () => void): Promise<number | null> {
  if (!gpu.features.has('timestamp-query')) return null;
  const dev = gpu.device;
  const qs = dev.createQuerySet({ type: 'timestamp', count: 2 });
  const resolve = dev.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  const read = dev.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  try {
    await gpu.sync();
    const mark = (index: 0 | 1) => {
      const enc = dev.createCommandEncoder();
      const ts: GPUComputePassTimestampWrites = index === 0 ? { querySet: qs, beginningOfPassWriteIndex: 0 } : { querySet: qs, endOfPassWriteIndex: 1 };
      enc.beginComputePass({ timestampWrites: ts }).end();
      if (index === 1) {
        enc.resolveQuerySet(qs, 0, 2, resolve, 0);
        enc.copyBufferToBuffer(resolve, 0, read, 0, 16);
      }
      dev.queue.submit([enc.finish()]);
    };
    mark(0);
    record();
    gpu.flush();
    mark(1);
    await gpu.sync();
    await read.mapAsync(GPUMapMode.READ);
    const [t0, t1] = new BigUint64Array(read.getMappedRange());
    read.unmap();
    const ms = Number(t1 - t0) / 1e6;
    return ms > 0 ? ms : null;
  } finally {
    qs.destroy();
    resolve.destroy();
    read.destroy();
  }
}

// ------------------------------------------------------------------ onnxruntime-node baseline

/** Protobuf writer for the few ONNX fields a one-node model needs. */
class Pb {
  private bytes: number[] = [];
  private varint(v: number): void {
    while (v > 0x7f) {
      this.bytes.push((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    this.bytes.push(v);
  }
  int(field: number, v: number): this {
    this.varint(field << 3);
    this.varint(v);
    return this;
  }
  bytesField(field: number, data: Uint8Array | number[]): this {
    this.varint((field << 3) | 2);
    this.varint(data.length);
    for (const x of data) this.bytes.push(x);
    return this;
  }
  str(field: number, s: string): this {
    return this.bytesField(field, [...new TextEncoder().encode(s)]);
  }
  msg(field: number, m: Pb): this {
    return this.bytesField(field, m.bytes);
  }
  done(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

/** ModelProto with one MatMul node C[m,n] = A[m,k] @ B[k,n], f32, opset 13. */
export function onnxMatmulModel(m: number, k: number, n: number): Uint8Array {
  const valueInfo = (name: string, dims: number[]) => {
    const shape = new Pb();
    for (const d of dims) shape.msg(1, new Pb().int(1, d)); // TensorShapeProto.dim { dim_value }
    const tensorType = new Pb().int(1, 1).msg(2, shape); // elem_type FLOAT, shape
    return new Pb().str(1, name).msg(2, new Pb().msg(1, tensorType)); // ValueInfoProto { name, type { tensor_type } }
  };
  const node = new Pb().str(1, 'A').str(1, 'B').str(2, 'C').str(3, 'matmul').str(4, 'MatMul');
  const graph = new Pb().msg(1, node).str(2, 'matmul').msg(11, valueInfo('A', [m, k])).msg(11, valueInfo('B', [k, n])).msg(12, valueInfo('C', [m, n]));
  return new Pb()
    .int(1, 8) // ir_version
    .str(2, 'aqa-bench') // producer_name
    .msg(7, graph)
    .msg(8, new Pb().str(1, '').int(2, 13)) // opset_import { domain "", version 13 }
    .done();
}

async function benchOnnx(n: number, iters: number): Promise<MatmulBenchRow> {
  const row: MatmulBenchRow = { impl: 'onnxruntime-node', op: 'a@b', tile: 'CPU MatMul', n, iters, ms: NaN, gflops: NaN };
  let ort: typeof import('onnxruntime-node');
  try {
    ort = await import('onnxruntime-node');
  } catch (e) {
    return { ...row, note: `not importable: ${(e as Error).message.split('\n')[0]}` };
  }
  const session = await ort.InferenceSession.create(onnxMatmulModel(n, n, n));
  const feeds = { A: new ort.Tensor('float32', randu(n * n, 1), [n, n]), B: new ort.Tensor('float32', randu(n * n, 2), [n, n]) };
  await session.run(feeds);
  const t0 = performance.now();
  for (let i = 0; i < iters; i++) await session.run(feeds);
  const ms = (performance.now() - t0) / iters;
  await session.release();
  return { ...row, ms, gflops: flopsOf(n) / ms / 1e6 };
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
  console.log(`adapter: ${gpu.name}`);
  const rows = await benchMatmul(gpu, { sizes, iters, onnx: !argv.includes('--no-onnx') });
  printTable(rows, matmulColumns);
  const json = arg('json');
  if (json) writeJson(json, { bench: 'matmul', adapter: gpu.name, rows });
  gpu.destroy();
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main(process.argv.slice(2));
}
