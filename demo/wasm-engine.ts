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
import { padBatch } from '../core/data/batch.ts';
import { type EncoderConfig, loadConfig } from '../core/model/config.ts';
import type { Precision } from '../core/model/load.ts';
import { type EmbeddingSettings, resolveEmbeddingSettings } from '../core/model/presets.ts';
import { type ModelFiles, readJson } from '../core/model/source.ts';
import { EmbeddingTokenizer } from '../core/model/tokenizer.ts';
import type { EmbedOptions } from '../core/retrieval/embed.ts';

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

export class WasmEmbeddingModel {
  readonly precision: Precision = 'f32';

  private constructor(
    readonly name: string,
    readonly config: EncoderConfig,
    readonly tokenizer: EmbeddingTokenizer,
    readonly settings: EmbeddingSettings,
    private readonly session: ort.InferenceSession,
  ) {}

  /**
   * The tokenizer and settings from the model folder `files`, the graph from `onnx` (the bytes
   * of model.onnx). `name` is the model's name as the index was built with (presets).
   */
  static async load(files: ModelFiles, onnx: Uint8Array, onnxUrl: string, name: string): Promise<WasmEmbeddingModel> {
    configure();
    const config = await loadConfig(files);
    const tokenizerJson = await readJson(files, 'tokenizer.json');
    if (tokenizerJson === null) throw new Error(`${files.name}: tokenizer.json is missing (only fast-tokenizer files are supported)`);
    const tokenizer = EmbeddingTokenizer.fromJson(tokenizerJson as object, (await readJson(files, 'tokenizer_config.json')) as object | null, `${files.name}/tokenizer.json`);
    const settings = await resolveEmbeddingSettings(files, name);
    const session = await ort.InferenceSession.create(onnx, { executionProviders: ['wasm'] });
    if (!session.outputNames.includes('sentence_embedding')) {
      throw new Error(`${onnxUrl}: the graph has no sentence_embedding output (outputs: ${session.outputNames.join(', ')}): export the model with aqa export --format onnx`);
    }
    return new WasmEmbeddingModel(name, config, tokenizer, settings, session);
  }

  get dim(): number {
    return this.config.hiddenSize;
  }

  get padId(): number {
    return this.config.padTokenId ?? 0;
  }

  /** Same limit as the WebGPU model: absolute position embeddings cap the length. */
  private maxLength(opts: EmbedOptions): number {
    const m = opts.maxLength ?? this.settings.maxLength;
    return Math.min(m, this.config.positionEmbedding === 'absolute' ? this.config.maxPositions : Infinity);
  }

  /** Embeddings [texts.length, dim], row i for texts[i]; batches longest first, as the WebGPU engine pads them. */
  async embed(texts: string[], opts: EmbedOptions = {}): Promise<Float32Array> {
    const maxLength = this.maxLength(opts);
    const prefix = opts.query ? this.settings.queryPrefix : this.settings.passagePrefix;
    const encoded = texts.map((t) => this.tokenizer.encode(prefix + t, maxLength));
    const D = this.dim;
    const out = new Float32Array(encoded.length * D);
    const order = encoded.map((_, i) => i).sort((a, b) => encoded[b].length - encoded[a].length || a - b);
    const batchSize = opts.batchSize ?? 32;
    let done = 0;
    let tokens = 0;
    for (let s = 0; s < order.length; s += batchSize) {
      const index = order.slice(s, s + batchSize);
      const b = padBatch(index.map((i) => encoded[i]), this.padId);
      const rows = await this.run(b.ids, b.mask, b.rows, b.seqLen);
      index.forEach((dst, r) => out.set(rows.subarray(r * D, (r + 1) * D), dst * D));
      done += b.rows;
      tokens += b.tokens;
      opts.onProgress?.({ done, total: encoded.length, tokens });
    }
    return out;
  }

  private async run(ids: ArrayLike<number>, mask: ArrayLike<number>, B: number, L: number): Promise<Float32Array> {
    const i64 = (a: ArrayLike<number>) => new ort.Tensor('int64', BigInt64Array.from(Array.from(a, BigInt)), [B, L]);
    const feeds: Record<string, ort.Tensor> = { input_ids: i64(ids), attention_mask: i64(mask) };
    if (this.session.inputNames.includes('token_type_ids')) feeds.token_type_ids = i64(new Array<number>(B * L).fill(0));
    const result = await this.session.run(feeds, ['sentence_embedding']);
    return result.sentence_embedding.data as Float32Array;
  }
}
