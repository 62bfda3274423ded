// Browser host API: everything a web page needs besides core/: the WebGPU device and
// fetch-based model loading; the comlink worker API will live next to them.

export { type BrowserGpuOptions, NO_ADAPTER_HELP, NO_WEBGPU_HELP, createBrowserGpu } from './device.ts';
export { type AdapterSummary, Gpu, GpuError } from '../core/gpu/device.ts';
export { FetchError, type FetchModelFilesOptions, fetchModelFiles } from './fetch.ts';
