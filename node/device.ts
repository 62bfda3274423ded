// Dawn (npm `webgpu`) device bootstrap for Node: pick the best adapter, or the one named by
// --adapter / AQA_ADAPTER, and wrap it in a Gpu.

import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isCpuAdapter } from '../core/gpu/adapter.ts';
import { pacePump, pumpPaceFor } from './dawn-pump.ts';
import { loadTuning } from './tuning-cache.ts';
import { Gpu, GpuError, type AdapterSummary, requestDevice, summarizeAdapter } from '../core/gpu/device.ts';

export interface NodeGpuOptions {
  /** Substring of the adapter name (Dawn's `adapter=` toggle), e.g. "llvmpipe" or "NVIDIA". */
  adapter?: string;
  /** Dawn backend: vulkan, opengles, opengl, d3d12, metal, ... */
  backend?: string;
  powerPreference?: GPUPowerPreference;
  /**
   * Dawn's experimental features (--experimental): allow_unsafe_apis, and the device gets
   * 'chromium-experimental-subgroup-matrix' where the adapter offers it.
   */
  experimental?: boolean;
}

/** Features only requested under --experimental (Dawn lists them only with allow_unsafe_apis). */
const EXPERIMENTAL_FEATURES = ['chromium-experimental-subgroup-matrix'];

export const NO_ADAPTER_HELP =
  'No WebGPU adapter found. Install a GPU driver with Vulkan support, or a software one: ' +
  'on Debian 12 `apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1` (mesa >= 25; bookworm\'s own mesa 22 is rejected by Dawn). ' +
  'Run `aqa info --diagnose` to see why and the fixes for this machine; `aqa info` lists adapters, --adapter or AQA_ADAPTER chooses one.';

let webgpuModule: Promise<typeof import('webgpu')> | null = null;

async function dawn(flags: string[]): Promise<GPU> {
  // Dawn logs to XDG_RUNTIME_DIR; without a private one it prints warnings on every start.
  if (!process.env.XDG_RUNTIME_DIR) {
    const dir = join(tmpdir(), `aqa-xdg-${process.getuid?.() ?? 0}`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    process.env.XDG_RUNTIME_DIR = dir;
  }
  webgpuModule ??= import('webgpu');
  const { create, globals } = await webgpuModule;
  // Kernel code uses the WebGPU globals (GPUBufferUsage, GPUMapMode, ...).
  for (const [k, v] of Object.entries(globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  return create(flags) as GPU;
}

// Keep the GPU object alive as long as devices made from it are used (Dawn requirement).
const keepAlive: GPU[] = [];

function backendOf(o: NodeGpuOptions): string | undefined {
  return o.backend ?? process.env.AQA_BACKEND;
}

/**
 * Dawn's OpenGL (ES) backends offer only the compatibility feature level (no core adapter
 * exists there), so asking them for the default 'core' returns nothing.
 */
function isGlBackend(backend: string | undefined): boolean {
  return backend === 'opengles' || backend === 'opengl';
}

function adapterRequest(o: NodeGpuOptions, ask: GPURequestAdapterOptions): GPURequestAdapterOptions {
  if (!isGlBackend(backendOf(o))) return ask;
  return { ...ask, featureLevel: 'compatibility' };
}

function flagsFor(o: NodeGpuOptions): string[] {
  const flags: string[] = [];
  // An explicit '' means "no filter", even when AQA_ADAPTER is set.
  const adapter = o.adapter !== undefined ? o.adapter : process.env.AQA_ADAPTER;
  const backend = backendOf(o);
  if (adapter) flags.push(`adapter=${adapter}`);
  if (backend) flags.push(`backend=${backend}`);
  // Without a display, Mesa's EGL must be told to run surfaceless or it finds no GL driver.
  if (isGlBackend(backend) && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) process.env.EGL_PLATFORM ??= 'surfaceless';
  // Dawn hides 'shader-f16' on NVIDIA's Vulkan driver unless asked (a toggle off by default);
  // the f16 kernels need it. Elsewhere the toggle changes nothing.
  const toggles = ['vulkan_enable_f16_on_nvidia'];
  if (o.experimental) toggles.push('allow_unsafe_apis');
  flags.push(`enable-dawn-features=${toggles.join(',')}`);
  return flags;
}

/** The adapter for `o` and the GPU object it came from; null when Dawn offers none. */
async function findAdapter(o: NodeGpuOptions): Promise<{ gpu: GPU; adapter: GPUAdapter | null }> {
  let gpu: GPU;
  try {
    gpu = await dawn(flagsFor(o));
  } catch (e) {
    throw new GpuError(`could not start Dawn: ${(e as Error).message}`);
  }
  try {
    const ask = adapterRequest(o, { powerPreference: o.powerPreference ?? 'high-performance' });
    return { gpu, adapter: await gpu.requestAdapter(ask) };
  } catch (e) {
    const name = o.adapter ?? process.env.AQA_ADAPTER;
    throw new GpuError(name ? `no adapter matches '${name}': ${(e as Error).message}` : `${NO_ADAPTER_HELP} (${(e as Error).message})`);
  }
}

export async function createNodeGpu(o: NodeGpuOptions = {}): Promise<Gpu> {
  let found: { gpu: GPU; adapter: GPUAdapter | null } | null = null;
  let failure: unknown = null;
  let backend = backendOf(o);
  try {
    found = await findAdapter(o);
  } catch (e) {
    failure = e;
  }
  if (!found?.adapter && !backendOf(o)) {
    // No core-level adapter (e.g. no Vulkan driver): OpenGL ES at the compatibility feature
    // level, which Mesa's EGL offers, runs every kernel too.
    const gl = await findAdapter({ ...o, backend: 'opengles' }).catch(() => null);
    if (gl?.adapter) {
      process.stderr.write('warning: no core WebGPU adapter found; using OpenGL ES at the compatibility feature level\n');
      found = gl;
      backend = 'opengles';
    }
  }
  if (!found?.adapter) throw failure ?? new GpuError(NO_ADAPTER_HELP);
  const { gpu, adapter } = found;
  keepAlive.push(gpu);
  const device = await requestDevice(adapter, o.experimental ? EXPERIMENTAL_FEATURES : []);
  const result = new Gpu(device, summarizeAdapter(adapter));
  // Keep Dawn's completion pump from spinning a core the driver's workers need (dawn-pump.ts).
  const pace = pumpPaceFor(isCpuAdapter(result));
  if (pace) pacePump(pace);
  // The winners of `aqa tune` for this adapter and driver, if any (node/tuning-cache.ts).
  loadTuning(result, backend);
  return result;
}

/**
 * Every adapter Dawn offers for the two power preferences and the fallback, deduplicated; as in
 * createNodeGpu, OpenGL ES's compatibility-level adapters when no backend was named and there
 * is no core-level one.
 */
export async function listAdapters(o: NodeGpuOptions = {}): Promise<AdapterSummary[]> {
  const found = await adaptersOf(o);
  if (found.length || backendOf(o)) return found;
  return adaptersOf({ ...o, backend: 'opengles' });
}

async function adaptersOf(o: NodeGpuOptions): Promise<AdapterSummary[]> {
  const gpu = await dawn(flagsFor(o));
  const seen = new Map<string, AdapterSummary>();
  const asks: GPURequestAdapterOptions[] = [
    { powerPreference: 'high-performance' },
    { powerPreference: 'low-power' },
    { forceFallbackAdapter: true },
  ];
  for (const ask of asks) {
    try {
      const a = await gpu.requestAdapter(adapterRequest(o, ask));
      if (!a) continue;
      const s = summarizeAdapter(a);
      seen.set(`${s.vendor}|${s.architecture}|${s.device}|${s.description}`, s);
    } catch {
      // an option this build does not support: skip it
    }
  }
  return [...seen.values()];
}
