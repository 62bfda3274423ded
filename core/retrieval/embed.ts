// Feature extraction: texts -> L2-normalised sentence embeddings, like sentence-transformers'
// encode(): tokenize (with the query prefix for queries), sort by length so batches waste
// little padding, run the encoder, pool (CLS or masked mean), normalise, restore input order.

import type { Gpu } from '../gpu/device.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { clsPoolForward, l2NormalizeForward, meanPoolForward } from '../kernels/pooling.ts';
import { mlpUpWidth } from '../model/architectures.ts';
import type { EncoderConfig } from '../model/config.ts';
import type { Encoder } from '../model/encoder.ts';
import type { EmbeddingSettings } from '../model/presets.ts';
import type { EmbeddingTokenizer } from '../model/tokenizer.ts';

export interface EmbedOptions {
  query?: boolean;
  batchSize?: number;
  maxLength?: number;
  onProgress?: (p: { done: number; total: number; tokens: number }) => void;
}

/** A tokenized, padded batch ready for the GPU. */
interface Batch {
  index: number[]; // input positions of the rows
  ids: Uint32Array; // [B, L]
  mask: Uint32Array; // [B, L]
  batch: number;
  seqLen: number;
  tokens: number; // real tokens
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
      done += batch.batch;
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
    const perToken = Math.max(3 * c.hiddenSize, mlpUpWidth(c)) * 4;
    const maxRows = Math.max(1, Math.floor(this.gpu.limits.maxBinding / (perToken * b.seqLen)));
    if (b.batch <= maxRows) return [b];
    const parts: Batch[] = [];
    for (let s = 0; s < b.batch; s += maxRows) {
      const n = Math.min(maxRows, b.batch - s);
      const L = b.seqLen;
      const mask = b.mask.slice(s * L, (s + n) * L);
      parts.push({
        index: b.index.slice(s, s + n),
        ids: b.ids.slice(s * L, (s + n) * L),
        mask,
        batch: n,
        seqLen: L,
        tokens: mask.reduce((a, v) => a + v, 0),
      });
    }
    return parts;
  }

  /** Encoder + pooling + normalisation for one batch; returns [B, dim] on the GPU. */
  private forwardPooled(b: Batch): Tensor {
    const { gpu } = this;
    const ids = gpu.upload(b.ids, [b.batch, b.seqLen], 'u32');
    const mask = gpu.upload(b.mask, [b.batch, b.seqLen], 'u32');
    const { last } = this.encoder.forward({ ids, mask, typeIds: null, batch: b.batch, seqLen: b.seqLen });
    const pooled = gpu.empty([b.batch, this.dim]);
    if (this.settings.pooling === 'cls') clsPoolForward(gpu, pooled, last);
    else meanPoolForward(gpu, pooled, last, mask);
    last.release();
    ids.release();
    mask.release();
    if (!this.settings.normalize) return pooled;
    const normed = gpu.empty([b.batch, this.dim]);
    const norm = gpu.empty([b.batch]);
    l2NormalizeForward(gpu, normed, norm, pooled);
    pooled.release();
    norm.release();
    return normed;
  }

  dispose(): void {
    this.encoder.dispose();
  }
}

/** Sort by length (longest first) and cut into padded batches of at most batchSize rows. */
export function makeBatches(encoded: number[][], batchSize: number, padId: number): Batch[] {
  const order = encoded.map((_, i) => i).sort((a, b) => encoded[b].length - encoded[a].length || a - b);
  const batches: Batch[] = [];
  for (let s = 0; s < order.length; s += batchSize) {
    const index = order.slice(s, s + batchSize);
    const L = Math.max(1, ...index.map((i) => encoded[i].length));
    const B = index.length;
    const ids = new Uint32Array(B * L).fill(padId);
    const mask = new Uint32Array(B * L);
    let tokens = 0;
    index.forEach((i, r) => {
      ids.set(encoded[i], r * L);
      mask.fill(1, r * L, r * L + encoded[i].length);
      tokens += encoded[i].length;
    });
    batches.push({ index, ids, mask, batch: B, seqLen: L, tokens });
  }
  return batches;
}
