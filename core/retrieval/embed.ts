// Feature extraction: texts -> L2-normalised sentence embeddings, like sentence-transformers'
// encode(): tokenize (with the query prefix for queries), sort by length so batches waste
// little padding, run the encoder, pool (CLS or masked mean), normalise, restore input order.
// loadEmbeddingModel puts a model folder's encoder, tokenizer and pooling settings together.
// Precision 'f16' stores weights and activations as f16 (needs shader-f16); pooling and
// normalisation read them and write f32, so the embeddings are f32 either way.

import { type PaddedBatch, padBatch } from '../data/batch.ts';
import type { Gpu } from '../gpu/device.ts';
import { bytesPerElement, type Tensor } from '../gpu/tensor.ts';
import { mlpUpWidth } from '../model/architectures.ts';
import { type EncoderConfig, loadConfig } from '../model/config.ts';
import type { Encoder } from '../model/encoder.ts';
import { headForward } from '../model/pooling.ts';
import { type LoadProgress, loadEncoder, type Precision } from '../model/load.ts';
import { type EmbeddingSettings, resolveEmbeddingSettings } from '../model/presets.ts';
import { type ModelFiles, readJson } from '../model/source.ts';
import { EmbeddingTokenizer } from '../model/tokenizer.ts';

export interface EmbedOptions {
  query?: boolean;
  batchSize?: number;
  maxLength?: number;
  onProgress?: (p: { done: number; total: number; tokens: number }) => void;
}

/** A tokenized, padded batch ready for the GPU, with the input positions of its rows. */
interface Batch extends PaddedBatch {
  index: number[];
}

export class EmbeddingModel {
  constructor(
    readonly gpu: Gpu,
    readonly name: string,
    readonly encoder: Encoder,
    readonly tokenizer: EmbeddingTokenizer,
    readonly settings: EmbeddingSettings,
  ) {}

  get config(): EncoderConfig {
    return this.encoder.config;
  }

  get dim(): number {
    return this.encoder.config.hiddenSize;
  }

  /** What the encoder actually runs in (f32 when f16 was asked for on a device without shader-f16). */
  get precision(): Precision {
    return this.encoder.dtype === 'f16' ? 'f16' : 'f32';
  }

  /** Token ids for each text (prefix applied for queries), truncated to maxLength. */
  tokenize(texts: string[], opts: EmbedOptions = {}): number[][] {
    const maxLength = this.maxLength(opts);
    const prefix = opts.query ? this.settings.queryPrefix : this.settings.passagePrefix;
    return texts.map((t) => this.tokenizer.encode(prefix + t, maxLength));
  }

  private maxLength(opts: EmbedOptions): number {
    const m = opts.maxLength ?? this.settings.maxLength;
    const limit = this.config.positionEmbedding === 'absolute' ? this.config.maxPositions : Infinity;
    return Math.min(m, limit);
  }

  /** Embeddings [texts.length, dim], row i for texts[i]. */
  async embed(texts: string[], opts: EmbedOptions = {}): Promise<Float32Array> {
    const encoded = this.tokenize(texts, opts);
    return this.embedTokens(encoded, opts);
  }

  /** Same as embed() for already tokenized inputs. */
  async embedTokens(encoded: number[][], opts: EmbedOptions = {}): Promise<Float32Array> {
    const D = this.dim;
    const out = new Float32Array(encoded.length * D);
    const batches = makeBatches(encoded, opts.batchSize ?? 32, this.padId);
    const total = encoded.length;
    let done = 0;
    let tokens = 0;
    // Keep one batch in flight: record batch i+1 while batch i is read back, so the GPU never
    // waits on the host between batches.
    let pending: { batch: Batch; result: Promise<Float32Array> } | null = null;
    const drain = async () => {
      if (!pending) return;
      const { batch, result } = pending;
      pending = null;
      const rows = await result;
      batch.index.forEach((dst, r) => out.set(rows.subarray(r * D, (r + 1) * D), dst * D));
      done += batch.rows;
      tokens += batch.tokens;
      opts.onProgress?.({ done, total, tokens });
    };
    for (const b of batches) {
      for (const sub of this.splitForLimits(b)) {
        const pooled = this.forwardPooled(sub);
        const result = this.gpu.readF32(pooled).finally(() => pooled.release());
        await drain();
        pending = { batch: sub, result };
      }
    }
    await drain();
    return out;
  }

  get padId(): number {
    return this.config.padTokenId ?? 0;
  }

  /**
   * Split a batch so that no activation exceeds one storage binding: the largest per-token
   * activation is the MLP input (GTE: [2I], BERT: [I]) or packed qkv [3H].
   */
  private splitForLimits(b: Batch): Batch[] {
    const c = this.config;
    const perToken = Math.max(3 * c.hiddenSize, mlpUpWidth(c)) * bytesPerElement(this.encoder.dtype);
    const maxRows = Math.max(1, Math.floor(this.gpu.limits.maxBinding / (perToken * b.seqLen)));
    if (b.rows <= maxRows) return [b];
    const parts: Batch[] = [];
    for (let s = 0; s < b.rows; s += maxRows) {
      const n = Math.min(maxRows, b.rows - s);
      const L = b.seqLen;
      const mask = b.mask.slice(s * L, (s + n) * L);
      parts.push({
        index: b.index.slice(s, s + n),
        ids: b.ids.slice(s * L, (s + n) * L),
        mask,
        rows: n,
        seqLen: L,
        lengths: b.lengths.slice(s, s + n),
        tokens: mask.reduce((a, v) => a + v, 0),
      });
    }
    return parts;
  }

  /** Encoder + pooling + normalisation for one batch; returns [B, dim] on the GPU. */
  private forwardPooled(b: Batch): Tensor {
    const { gpu } = this;
    const ids = gpu.upload(b.ids, [b.rows, b.seqLen], 'u32');
    const mask = gpu.upload(b.mask, [b.rows, b.seqLen], 'u32');
    const { last } = this.encoder.forward({ ids, mask, typeIds: null, batch: b.rows, seqLen: b.seqLen });
    const { emb } = headForward(gpu, last, mask, this.settings);
    last.release();
    ids.release();
    mask.release();
    return emb;
  }

  dispose(): void {
    this.encoder.dispose();
  }
}

/** Sort by length (longest first) and cut into padded batches of at most batchSize rows. */
function makeBatches(encoded: number[][], batchSize: number, padId: number): Batch[] {
  const order = encoded.map((_, i) => i).sort((a, b) => encoded[b].length - encoded[a].length || a - b);
  const batches: Batch[] = [];
  for (let s = 0; s < order.length; s += batchSize) {
    const index = order.slice(s, s + batchSize);
    batches.push({ ...padBatch(index.map((i) => encoded[i]), padId), index });
  }
  return batches;
}

export interface LoadModelOptions {
  /** Storage type of weights and activations (default f32). */
  precision?: Precision;
  /** Where the one-line fallback notice goes (f16 asked, no shader-f16); default console.warn. */
  warn?: (message: string) => void;
}

/**
 * The precision a device can run: f16 needs the shader-f16 feature; without it, f32 and the
 * one-line notice to show.
 */
export function devicePrecision(gpu: Gpu, want: Precision): { precision: Precision; warning: string | null } {
  if (want === 'f32' || gpu.features.has('shader-f16')) return { precision: want, warning: null };
  return { precision: 'f32', warning: `precision f16 needs shader-f16, which ${gpu.name} does not support; running in f32` };
}

/** Config, weights, tokenizer and pooling settings of a model folder. */
export async function loadEmbeddingModel(
  gpu: Gpu,
  files: ModelFiles,
  modelName: string,
  onProgress?: (p: LoadProgress) => void,
  opts: LoadModelOptions = {},
): Promise<EmbeddingModel> {
  const cfg = await loadConfig(files);
  const tokenizerJson = await readJson(files, 'tokenizer.json');
  if (tokenizerJson === null) throw new Error(`${files.name}: tokenizer.json is missing (only fast-tokenizer files are supported)`);
  const tokenizerConfig = await readJson(files, 'tokenizer_config.json');
  const tokenizer = EmbeddingTokenizer.fromJson(tokenizerJson as object, tokenizerConfig as object | null, `${files.name}/tokenizer.json`);
  const settings = await resolveEmbeddingSettings(files, modelName);
  let precision: Precision = 'f32';
  if (opts.precision === 'f16') {
    const d = devicePrecision(gpu, 'f16');
    if (d.warning) (opts.warn ?? console.warn)(d.warning);
    precision = d.precision;
  }
  const encoder = await loadEncoder(gpu, files, cfg, onProgress, precision);
  return new EmbeddingModel(gpu, modelName, encoder, tokenizer, settings);
}

/**
 * The first row of `vectors` [n, dim] holding a NaN or an infinity, or -1. Callers refuse to write
 * such a row: a diverged or damaged model gives NaN embeddings, and stored they only surface
 * later, as NaN scores in a search.
 */
export function firstNonFiniteRow(vectors: Float32Array, dim: number): number {
  for (let i = 0; i < vectors.length; i++) if (!Number.isFinite(vectors[i])) return Math.floor(i / dim);
  return -1;
}
