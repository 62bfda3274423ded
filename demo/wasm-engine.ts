/// <reference types="vite/client" />
// The demo's embedding engine where the browser has no WebGPU: the model's ONNX graph (written
// by `aqa export --format onnx`, tools/build-demo-index.sh puts it next to the indexes) run by
// onnxruntime-web's WebAssembly backend, in the search worker. Behind the same embed() as the
// WebGPU EmbeddingModel (core/retrieval/embed.ts): same tokenizer, prefixes, max length and
// padding (core/data/batch.ts); pooling and normalisation are inside the graph (its
// sentence_embedding output), so the query vectors match the WebGPU path's within f32 rounding
// (test/demo.test.ts checks min cosine >= 0.99999 in Chromium) and search the same indexes.
//
// onnxruntime-web's .wasm is a URL Vite serves from node_modules (dev) and emits into the build,
// never a CDN: the page works offline and nothing leaves the machine. This module is loaded by
// the worker only when WebGPU is missing, so WebGPU visitors never download onnxruntime.

import * as ort from 'onnxruntime-web/wasm';
import wasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.wasm?url';
import { OnnxEmbedder, loadEmbedderFiles } from '../core/model/onnx/embedder.ts';
import type { ModelFiles } from '../core/model/source.ts';

/** What the page names as the engine, where it would name the GPU adapter. */
export const WASM_ENGINE_NAME = 'onnxruntime-web (WebAssembly, CPU)';

let configured = false;

function configure(): void {
  if (configured) return;
  configured = true;
  ort.env.wasm.wasmPaths = { wasm: new URL(wasmUrl, self.location.href).href };
  // Threads need SharedArrayBuffer, i.e. a cross-origin isolated page (COOP/COEP headers); the
  // demo is served by any static host, so without them one thread, and no warning about it.
  ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
}

/** The shared ONNX embedder (core/model/onnx/embedder.ts) on onnxruntime-web's WebAssembly backend. */
export class WasmEmbeddingModel extends OnnxEmbedder {
  /**
   * The tokenizer and settings from the model folder `files`, the graph from `onnx` (the bytes
   * of model.onnx). `name` is the model's name as the index was built with (presets).
   */
  static async load(files: ModelFiles, onnx: Uint8Array, onnxUrl: string, name: string): Promise<WasmEmbeddingModel> {
    configure();
    const { config, tokenizer, settings } = await loadEmbedderFiles(files, name);
    const session = await ort.InferenceSession.create(onnx, { executionProviders: ['wasm'] });
    if (!session.outputNames.includes('sentence_embedding')) {
      throw new Error(`${onnxUrl}: the graph has no sentence_embedding output (outputs: ${session.outputNames.join(', ')}): export the model with aqa export --format onnx`);
    }
    return new WasmEmbeddingModel(name, config, tokenizer, settings, session, ort.Tensor);
  }
}
