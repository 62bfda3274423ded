// Browser device bootstrap: navigator.gpu -> adapter -> device -> Gpu. The device request
// (real adapter limits, optional features) and the adapter summary are the core's, so the
// browser and Dawn (node/device.ts) build identical Gpu objects.

import { Gpu, GpuError, requestDevice, summarizeAdapter } from '../core/gpu/device.ts';

export interface BrowserGpuOptions {
  /** Hint for laptops with two GPUs; browsers may ignore it. Default 'high-performance'. */
  powerPreference?: GPUPowerPreference;
}

export const NO_WEBGPU_HELP =
  'This browser has no WebGPU: use Chrome/Edge 113+ or Firefox 141+ / Safari 26+, or enable it in flags ' +
  '(chrome://flags/#enable-unsafe-webgpu; on Linux Chrome also needs --enable-features=Vulkan). ' +
  'WebGPU is only offered to secure pages: https:// or http://localhost.';

export const NO_ADAPTER_HELP =
  'WebGPU is present but returned no adapter: the GPU may be blocklisted or hardware acceleration turned off. ' +
  'Check chrome://gpu (or about:support in Firefox), enable hardware acceleration, update the GPU driver, ' +
  'or start Chrome with --enable-unsafe-webgpu.';

export async function createBrowserGpu(opts: BrowserGpuOptions = {}): Promise<Gpu> {
  const nav = typeof navigator === 'undefined' ? undefined : navigator;
  if (!nav?.gpu) {
    // navigator.gpu is hidden on insecure pages, which look exactly like "no WebGPU".
    const insecure = typeof isSecureContext !== 'undefined' && !isSecureContext;
    throw new GpuError(insecure ? `${NO_WEBGPU_HELP} This page is not a secure context (${location.origin}).` : NO_WEBGPU_HELP);
  }
  let adapter: GPUAdapter | null;
  try {
    adapter = await nav.gpu.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
  } catch (e) {
    throw new GpuError(`${NO_ADAPTER_HELP} (${(e as Error).message})`);
  }
  if (!adapter) throw new GpuError(NO_ADAPTER_HELP);
  // adapter.info arrived in Chrome 127; older builds only had the async requestAdapterInfo().
  const legacy = adapter as GPUAdapter & { requestAdapterInfo?: () => Promise<GPUAdapterInfo> };
  const info = adapter.info ?? (await legacy.requestAdapterInfo?.());
  const device = await requestDevice(adapter);
  return new Gpu(device, summarizeAdapter(adapter, info));
}
