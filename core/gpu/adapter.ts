// What launchers need to know about the adapter beyond its limits: whether it is a CPU
// (software) driver, where tiles and workgroup widths are tuned differently, and whether its
// subgroup size is fixed, which the subgroupShuffle variants rely on.

import type { Gpu } from './device.ts';

/** CPU (software) drivers: Mesa llvmpipe/lavapipe, SwiftShader, Microsoft WARP. */
export function isCpuAdapter(gpu: Gpu): boolean {
  const a = gpu.adapter;
  const text = [a.vendor, a.architecture, a.device, a.description].join(' ');
  return /llvmpipe|lavapipe|swiftshader|software|warp|basic render|\bcpu\b/i.test(text);
}

/** The device's subgroup size when it is fixed (min == max) and subgroups are enabled, else 0. */
export function fixedSubgroupSize(gpu: Gpu): number {
  if (!gpu.features.has('subgroups')) return 0;
  const info = gpu.device.adapterInfo as GPUAdapterInfo | undefined;
  const lo = info?.subgroupMinSize ?? 0;
  const hi = info?.subgroupMaxSize ?? 0;
  return lo > 0 && lo === hi ? lo : 0;
}
