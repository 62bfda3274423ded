// The ONNX engine: a model folder's onnx/model.onnx (written by `aqa export --format onnx`) run on
// onnxruntime-node's CPU provider, behind the same embed() the WebGPU EmbeddingModel offers. On a
// machine whose only adapter is a CPU driver (llvmpipe), onnxruntime's CPU kernels embed several
// times faster than the WebGPU shaders emulated on the CPU.
//
// Same tokenizer, prefixes, max length and batching as core/retrieval/embed.ts; pooling and
// normalisation are inside the graph (its sentence_embedding output). The results match the
// WebGPU engine in f32 within 1e-5 (test/engine-onnx.test.ts), so both engines are one model
// identity: an index built with either is searched with either.
//
// onnxruntime-node (a native addon) is imported here only, and this module only with --engine onnx.

import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { isCpuAdapter } from '../../core/gpu/adapter.ts';
import type { Gpu } from '../../core/gpu/device.ts';
import { OnnxEmbedder, loadEmbedderFiles } from '../../core/model/onnx/embedder.ts';
import { warn } from '../command-model.ts';
import { localModelFiles } from '../files.ts';

/** What `adapter` records in outputs that name the hardware (sidecars, logs). */
export const ONNX_ADAPTER_NAME = 'onnxruntime-node (CPU)';

/** The one-line error for a model folder that was not exported to ONNX. */
export function missingOnnxMessage(dir: string): string {
  return `${dir} has no onnx/model.onnx: run aqa export --format onnx --model ${dir} --out <dir2>`;
}

/** Load `dir`'s onnx/model.onnx with its tokenizer and pooling settings (warnings printed). */
export async function loadOnnxModel(dir: string, name: string): Promise<OnnxEmbedder> {
  const path = join(dir, 'onnx', 'model.onnx');
  try {
    await access(path);
  } catch {
    throw new Error(missingOnnxMessage(dir));
  }
  const { config, tokenizer, settings } = await loadEmbedderFiles(localModelFiles(dir), name);
  for (const w of settings.warnings) warn(w);
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(path, { executionProviders: ['cpu'] });
  return new OnnxEmbedder(name, config, tokenizer, settings, session, ort.Tensor);
}

/** The stderr note for embed and index when WebGPU runs on a CPU driver. */
export function cpuAdapterNote(adapterName: string): string {
  return `note: the adapter is a CPU driver (${adapterName}); --engine onnx (after aqa export --format onnx) embeds faster here`;
}

/** Print cpuAdapterNote once when `gpu` is a CPU driver (embed and index call it with --engine webgpu). */
export function noteCpuAdapter(gpu: Gpu): void {
  if (isCpuAdapter(gpu)) console.error(cpuAdapterNote(gpu.name));
}
