// `aqa bench <what>`: run one benchmark on the selected adapter, print a table, optionally
// write JSON. Benchmarks measure; they never assert (correctness lives in the tests).

import type { NodeGpuOptions } from '../device.ts';
import { createNodeGpu } from '../device.ts';
import { benchEmbed, embedColumns } from './embed.ts';
import { benchMatmul, matmulColumns } from './matmul.ts';
import { printTable, writeJson } from './table.ts';

export interface BenchOptions {
  json?: string;
  model: string;
  quick: boolean;
  peers?: string;
  gpu: NodeGpuOptions;
}

export async function runBench(what: string, o: BenchOptions): Promise<void> {
  const gpu = await createNodeGpu(o.gpu);
  console.error(`adapter: ${gpu.name}`);
  const log = (m: string) => console.error(`  ${m}`);
  let rows;
  let columns;
  if (what === 'matmul') {
    rows = await benchMatmul(gpu, o.quick ? { sizes: [256, 1024], iters: 4 } : {});
    columns = matmulColumns;
  } else if (what === 'embed') {
    const peers = (o.peers ?? 'webgpu,cpu').split(',').filter(Boolean) as ('webgpu' | 'cpu')[];
    for (const p of peers) if (p !== 'webgpu' && p !== 'cpu') throw new Error(`--peers: unknown peer '${p}' (webgpu, cpu)`);
    rows = await benchEmbed(gpu, { modelDir: o.model, runs: o.quick ? 1 : 3, peers, log });
    columns = embedColumns;
  } else {
    throw new Error(`unknown benchmark '${what}' (matmul, embed)`);
  }
  printTable(rows, columns);
  if (o.json) {
    writeJson(o.json, { bench: what, adapter: gpu.name, rows });
    console.error(`wrote ${o.json}`);
  }
  gpu.destroy();
}
