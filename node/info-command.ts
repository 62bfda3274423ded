// `aqa info`: the WebGPU adapters Dawn offers, their features and the limits that matter here,
// and the one the other commands would select (with --experimental, its subgroup-matrix
// configs); with --diagnose, why an adapter is found or not (node/diagnose.ts); and whether
// `aqa tune`'s winners are in use (node/tuning-cache.ts).

import type { Command } from 'commander';
import { gpuOptions } from './cli-options.ts';
import type { NodeGpuOptions } from './device.ts';
import type { Gpu } from '../core/gpu/device.ts';

export async function runInfo(gpu: NodeGpuOptions, o: { diagnose?: boolean } = {}): Promise<void> {
  if (o.diagnose) {
    const { diagnose, formatDiagnosis } = await import('./diagnose.ts');
    console.log(formatDiagnosis(await diagnose()));
    return;
  }
  const [{ NO_ADAPTER_HELP, createNodeGpu, listAdapters }, { fmtBytes }] = await Promise.all([import('./device.ts'), import('../core/gpu/device.ts')]);
  const adapters = await listAdapters(gpu);
  if (!adapters.length) {
    const wanted = gpu.adapter ?? process.env.AQA_ADAPTER;
    const all = wanted ? await listAdapters({ backend: gpu.backend, adapter: '' }) : [];
    if (wanted && all.length) {
      throw new Error(`no adapter matches '${wanted}'; available: ${all.map((a) => a.description || a.device).join('; ')}`);
    }
    throw new Error(NO_ADAPTER_HELP);
  }
  for (const a of adapters) {
    console.log(`${a.vendor || '?'} ${a.architecture} ${a.device} ${a.description}`.replace(/\s+/g, ' ').trim());
    console.log(`  features: ${a.features.join(', ')}`);
    for (const [k, v] of Object.entries(a.limits)) {
      console.log(`  ${k}: ${k.startsWith('max') && v >= 1 << 20 ? `${v} (${fmtBytes(v)})` : v}`);
    }
  }
  const selected = await createNodeGpu(gpu);
  console.log(`selected: ${selected.name}`);
  const { describeTuning } = await import('./tuning-cache.ts');
  console.log(`tuning: ${describeTuning(selected)}`);
  console.log(`subgroup matrix: ${await subgroupMatrixLine(selected, !!gpu.experimental)}`);
  selected.destroy();
}

/** Dawn lists the feature only with allow_unsafe_apis, so without --experimental it is just off. */
async function subgroupMatrixLine(gpu: Gpu, experimental: boolean): Promise<string> {
  if (!experimental) return 'off (--experimental asks Dawn for it)';
  const { formatSubgroupMatrixSupport, subgroupMatrixSupport } = await import('../core/kernels/matmul-subgroup-matrix.ts');
  return formatSubgroupMatrixSupport(subgroupMatrixSupport(gpu));
}

export function registerInfoCommand(program: Command): void {
  program
    .command('info')
    .description('list WebGPU adapters and the limits that matter here')
    .option('--diagnose', 'why an adapter is found or not: Dawn backends, Vulkan ICDs, loader messages, known fixes')
    .action((o: { diagnose?: boolean }) => runInfo(gpuOptions(program), o));
}
