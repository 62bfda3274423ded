// Browser host API: everything a web page needs besides core/. Today that is the WebGPU
// device; fetch-based model loading and the comlink worker API will live next to it.

export { type BrowserGpuOptions, NO_ADAPTER_HELP, NO_WEBGPU_HELP, createBrowserGpu } from './device.ts';
export { type AdapterSummary, Gpu, GpuError } from '../core/gpu/device.ts';
