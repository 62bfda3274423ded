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
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { padBatch } from '../../core/data/batch.ts';
import type { EmbedOptions } from '../../core/retrieval/embed.ts';
import { isCpuAdapter } from '../../core/gpu/adapter.ts';
import type { Gpu } from '../../core/gpu/device.ts';
import { type EncoderConfig, loadConfig } from '../../core/model/config.ts';
import type { Precision } from '../../core/model/load.ts';
import { type EmbeddingSettings, resolveEmbeddingSettings } from '../../core/model/presets.ts';
import { readJson } from '../../core/model/source.ts';
import { EmbeddingTokenizer } from '../../core/model/tokenizer.ts';
import { warn } from '../command-model.ts';
import { localModelFiles } from '../files.ts';

/** What `adapter` records in outputs that name the hardware (sidecars, logs). */
export const ONNX_ADAPTER_NAME = 'onnxruntime-node (CPU)';

export class OnnxEmbeddingModel {
  readonly precision: Precision = 'f32';

  constructor(
    readonly name: string,
    readonly config: EncoderConfig,
    readonly tokenizer: EmbeddingTokenizer,
    readonly settings: EmbeddingSettings,
    private readonly session: InferenceSession,
    private readonly ort: typeof import('onnxruntime-node'),
  ) {}

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

  tokenize(texts: string[], opts: EmbedOptions = {}): number[][] {
    const maxLength = this.maxLength(opts);
    const prefix = opts.query ? this.settings.queryPrefix : this.settings.passagePrefix;
    return texts.map((t) => this.tokenizer.encode(prefix + t, maxLength));
  }

  /** Embeddings [texts.length, dim], row i for texts[i]. */
  async embed(texts: string[], opts: EmbedOptions = {}): Promise<Float32Array> {
    const encoded = this.tokenize(texts, opts);
    const D = this.dim;
    const out = new Float32Array(encoded.length * D);
    // Longest first, as the WebGPU engine batches, so a batch wastes little padding.
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
    const i64 = (a: ArrayLike<number>) => new this.ort.Tensor('int64', BigInt64Array.from(Array.from(a, BigInt)), [B, L]);
    const feeds: Record<string, Tensor> = { input_ids: i64(ids), attention_mask: i64(mask) };
    if (this.session.inputNames.includes('token_type_ids')) feeds.token_type_ids = i64(new Array<number>(B * L).fill(0));
    const result = await this.session.run(feeds, ['sentence_embedding']);
    return result.sentence_embedding.data as Float32Array;
  }

  dispose(): void {
    void this.session.release();
  }
}

/** The one-line error for a model folder that was not exported to ONNX. */
export function missingOnnxMessage(dir: string): string {
  return `${dir} has no onnx/model.onnx: run aqa export --format onnx --model ${dir} --out <dir2>`;
}

/** Load `dir`'s onnx/model.onnx with its tokenizer and pooling settings (warnings printed). */
export async function loadOnnxModel(dir: string, name: string): Promise<OnnxEmbeddingModel> {
  const path = join(dir, 'onnx', 'model.onnx');
  try {
    await access(path);
  } catch {
    throw new Error(missingOnnxMessage(dir));
  }
  const files = localModelFiles(dir);
  const config = await loadConfig(files);
  const tokenizerJson = await readJson(files, 'tokenizer.json');
  if (tokenizerJson === null) throw new Error(`${files.name}: tokenizer.json is missing (only fast-tokenizer files are supported)`);
  const tokenizer = EmbeddingTokenizer.fromJson(tokenizerJson as object, (await readJson(files, 'tokenizer_config.json')) as object | null, `${files.name}/tokenizer.json`);
  const settings = await resolveEmbeddingSettings(files, name);
  for (const w of settings.warnings) warn(w);
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(path, { executionProviders: ['cpu'] });
  return new OnnxEmbeddingModel(name, config, tokenizer, settings, session, ort);
}

/** The stderr note for embed and index when WebGPU runs on a CPU driver. */
export function cpuAdapterNote(adapterName: string): string {
  return `note: the adapter is a CPU driver (${adapterName}); --engine onnx (after aqa export --format onnx) embeds faster here`;
}

/** Print cpuAdapterNote once when `gpu` is a CPU driver (embed and index call it with --engine webgpu). */
export function noteCpuAdapter(gpu: Gpu): void {
  if (isCpuAdapter(gpu)) console.error(cpuAdapterNote(gpu.name));
}
