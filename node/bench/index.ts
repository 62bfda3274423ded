// `aqa bench <what>`: run one benchmark on the selected adapter, print a table, optionally
// write JSON. Benchmarks measure; they never assert (correctness lives in the tests).

import type { NodeGpuOptions } from '../device.ts';
import { createNodeGpu } from '../device.ts';
import { benchEmbed, embedColumns } from './embed.ts';
import { benchMatmul, matmulColumns, parsePrecisions } from './matmul.ts';
import { benchSearch, searchColumns } from './search.ts';
import { benchTrain, trainColumns } from './train.ts';
import { type Row, printTable, writeJson } from './table.ts';
import { describePump } from '../dawn-pump.ts';
import type { KernelTime } from '../../core/gpu/profiler.ts';

const profileColumns = [
  { key: 'phase' },
  { key: 'kernel' },
  { key: 'passes' },
  { key: 'ms', label: 'GPU ms', digits: 1 },
  { key: 'share', label: '% of phase', digits: 1 },
];

/** One row per kernel entry (the top 15, then the rest summed), plus the phase total. */
function profileRows(phase: string, times: KernelTime[]): Row[] {
  const total = times.reduce((a, t) => a + t.ms, 0);
  const top = times.slice(0, 15);
  const rest = times.slice(15);
  const rows: Row[] = top.map((t) => ({ phase, kernel: t.label, passes: t.count, ms: t.ms, share: (100 * t.ms) / total }));
  if (rest.length) {
    const ms = rest.reduce((a, t) => a + t.ms, 0);
    rows.push({ phase, kernel: `(${rest.length} others)`, passes: rest.reduce((a, t) => a + t.count, 0), ms, share: (100 * ms) / total });
  }
  rows.push({ phase, kernel: 'total', passes: times.reduce((a, t) => a + t.count, 0), ms: total, share: 100 });
  return rows;
}

export interface BenchOptions {
  json?: string;
  model: string;
  quick: boolean;
  peers?: string;
  shapes?: string;
  sizes?: string;
  /** `bench matmul`: storage types to compare, e.g. 'f32,f16'. */
  precision?: string;
  /** `bench train`: also print GPU time per kernel (timestamp queries). */
  profile?: boolean;
  /** `bench train`: QxG,QUERY_LEN/PASSAGE_LEN, e.g. 16x10,64/512. */
  shape?: string;
  /** `bench train`: GradCache texts per piece to run, comma-separated; 0 = off. */
  gradCache?: string;
  /** `bench train`: also run each GradCache setting with gradient checkpointing. */
  checkpointing?: boolean;
  /** Measured runs (median reported); default 3, 1 with --quick. */
  runs?: string;
  gpu: NodeGpuOptions;
}

/** '32x128,32x256' -> [[32, 128], [32, 256]]; a clear error names the bad item. */
export function parseShapes(list: string): [number, number][] {
  return list.split(',').filter(Boolean).map((item) => {
    const m = /^(\d+)x(\d+)$/.exec(item.trim());
    if (!m || Number(m[1]) < 1 || Number(m[2]) < 3) throw new Error(`--shapes: '${item}' is not BATCHxTOKENS (e.g. 32x128, tokens >= 3)`);
    return [Number(m[1]), Number(m[2])];
  });
}

/** '16x10,64/512' -> queries 16, group 10, query length 64, passage length 512. */
export function parseTrainShape(text: string): { queries: number; group: number; queryLen: number; passageLen: number } {
  const m = /^(\d+)x(\d+),(\d+)\/(\d+)$/.exec(text.trim());
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1 || Number(m[3]) < 3 || Number(m[4]) < 3) {
    throw new Error(`--shape: '${text}' is not QUERIESxGROUP,QUERY_LEN/PASSAGE_LEN (e.g. 16x10,64/512; lengths >= 3)`);
  }
  return { queries: Number(m[1]), group: Number(m[2]), queryLen: Number(m[3]), passageLen: Number(m[4]) };
}

/** '0,4' or 'off,4' -> [0, 4]: GradCache texts per piece, 0 = off. */
export function parseGradCache(list: string): number[] {
  return list.split(',').filter(Boolean).map((item) => {
    const t = item.trim();
    const n = t === 'off' ? 0 : Number(t);
    if (!Number.isInteger(n) || n < 0 || t === '') throw new Error(`--grad-cache: '${item}' is not a number of texts per piece (or 0 / off)`);
    return n;
  });
}

/** '256,1024' -> [256, 1024]. */
export function parseSizes(list: string): number[] {
  return list.split(',').filter(Boolean).map((item) => {
    const n = Number(item.trim());
    if (!Number.isInteger(n) || n < 1) throw new Error(`--sizes: '${item}' is not a positive integer`);
    return n;
  });
}

export async function runBench(what: string, o: BenchOptions): Promise<void> {
  // Options are checked before the (slow) device start, so a typo fails at once.
  const shapes = o.shapes ? parseShapes(o.shapes) : undefined;
  const sizes = o.sizes ? parseSizes(o.sizes) : undefined;
  const precisions = o.precision ? parsePrecisions(o.precision) : undefined;
  const shape = o.shape ? parseTrainShape(o.shape) : {};
  const miniBatches = o.gradCache ? parseGradCache(o.gradCache) : undefined;
  const runs = o.runs !== undefined ? Number(o.runs) : o.quick ? 1 : 3;
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs: '${o.runs}' is not a positive integer`);
  const gpu = await createNodeGpu(o.gpu);
  console.error(`adapter: ${gpu.name}\ndawn pump: ${describePump()}`);
  const log = (m: string) => console.error(`  ${m}`);
  let rows;
  let columns;
  if (what === 'matmul') {
    rows = await benchMatmul(gpu, o.quick ? { sizes: sizes ?? [256, 1024], iters: 4, precisions } : { sizes, precisions });
    columns = matmulColumns;
  } else if (what === 'embed') {
    const peers = (o.peers ?? 'webgpu,cpu').split(',').filter(Boolean) as ('webgpu' | 'cpu')[];
    for (const p of peers) if (p !== 'webgpu' && p !== 'cpu') throw new Error(`--peers: unknown peer '${p}' (webgpu, cpu)`);
    rows = await benchEmbed(gpu, { modelDir: o.model, runs: o.quick ? 1 : 3, peers, log, shapes, precisions });
    columns = embedColumns;
  } else if (what === 'search') {
    rows = await benchSearch(gpu, { quick: o.quick, log });
    columns = searchColumns;
  } else if (what === 'train') {
    const profiles: Row[] = [];
    const profile = o.profile ? (phase: string, times: KernelTime[]) => profiles.push(...profileRows(phase, times)) : undefined;
    rows = await benchTrain(gpu, { modelDir: o.model, runs, log, profile, ...shape, miniBatches, checkpointing: o.checkpointing, precisions });
    columns = trainColumns;
    if (profiles.length) {
      printTable(profiles, profileColumns);
      console.log('');
    }
  } else {
    throw new Error(`unknown benchmark '${what}' (matmul, embed, train, search)`);
  }
  printTable(rows, columns);
  if (o.json) {
    writeJson(o.json, { bench: what, adapter: gpu.name, rows });
    console.error(`wrote ${o.json}`);
  }
  gpu.destroy();
}
