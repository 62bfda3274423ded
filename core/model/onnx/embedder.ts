// An exported encoder graph (onnx/model.onnx, `aqa export --format onnx`) behind the same embed()
// as the WebGPU EmbeddingModel, for whichever onnxruntime runs it: onnxruntime-node's CPU provider
// in the CLI (node/onnx/engine.ts), onnxruntime-web's WebAssembly backend in the demo without
// WebGPU (demo/wasm-engine.ts). Both packages share onnxruntime-common's API; it is described
// structurally here so that core/ imports neither.
//
// Same tokenizer, prefixes, max length and batching as core/retrieval/embed.ts (longest first,
// padded by core/data/batch.ts); pooling and normalisation are inside the graph (its
// sentence_embedding output).

import { padBatch } from '../../data/batch.ts';
import type { EmbedOptions } from '../../retrieval/embed.ts';
import { type EncoderConfig, loadConfig } from '../config.ts';
import type { Precision } from '../load.ts';
import { type EmbeddingSettings, resolveEmbeddingSettings } from '../presets.ts';
import { type ModelFiles, readJson } from '../source.ts';
import { EmbeddingTokenizer } from '../tokenizer.ts';

/** onnxruntime's Tensor constructor, as far as an int64 input needs it. */
export type OrtTensorClass = new (type: 'int64', data: BigInt64Array, dims: readonly number[]) => unknown;

/** onnxruntime's InferenceSession, as far as embedding needs it. */
export interface OrtSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, unknown>, fetches: string[]): Promise<Record<string, { data: unknown }>>;
  release(): Promise<void>;
}

/** The model folder's config, tokenizer and embedding settings (what the graph does not hold). */
export async function loadEmbedderFiles(files: ModelFiles, name: string): Promise<{ config: EncoderConfig; tokenizer: EmbeddingTokenizer; settings: EmbeddingSettings }> {
  const config = await loadConfig(files);
  const tokenizerJson = await readJson(files, 'tokenizer.json');
  if (tokenizerJson === null) throw new Error(`${files.name}: tokenizer.json is missing (only fast-tokenizer files are supported)`);
  const tokenizer = EmbeddingTokenizer.fromJson(tokenizerJson as object, (await readJson(files, 'tokenizer_config.json')) as object | null, `${files.name}/tokenizer.json`);
  const settings = await resolveEmbeddingSettings(files, name);
  return { config, tokenizer, settings };
}

export class OnnxEmbedder {
  readonly precision: Precision = 'f32';

  constructor(
    readonly name: string,
    readonly config: EncoderConfig,
    readonly tokenizer: EmbeddingTokenizer,
    readonly settings: EmbeddingSettings,
    private readonly session: OrtSession,
    private readonly Tensor: OrtTensorClass,
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
    const i64 = (a: ArrayLike<number>) => new this.Tensor('int64', BigInt64Array.from(Array.from(a, BigInt)), [B, L]);
    const feeds: Record<string, unknown> = { input_ids: i64(ids), attention_mask: i64(mask) };
    if (this.session.inputNames.includes('token_type_ids')) feeds.token_type_ids = i64(new Array<number>(B * L).fill(0));
    const result = await this.session.run(feeds, ['sentence_embedding']);
    return result.sentence_embedding.data as Float32Array;
  }

  dispose(): void {
    void this.session.release();
  }
}
