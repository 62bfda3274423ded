// The sentence-embedding head: the encoder's last hidden states [B, L, H] -> one vector per text,
// by the model's pooling (the CLS row, or the mean over the attention mask), then L2-normalised
// when the model says so (sentence-transformers' Pooling + Normalize modules). Inference,
// training, the benches and the gradient fixtures all run this one head, so they cannot drift
// apart; the backward is here beside the forward for the same reason.

import type { Gpu } from '../gpu/device.ts';
import type { DType, Tensor } from '../gpu/tensor.ts';
import { clsPoolBackward, clsPoolForward, l2NormalizeBackward, l2NormalizeForward, meanPoolBackward, meanPoolForward } from '../kernels/pooling.ts';
import type { Pooling } from './presets.ts';

export interface HeadOptions {
  pooling: Pooling;
  normalize: boolean;
}

/** What headBackward needs from the forward. The mask stays the caller's (it is not released here). */
export interface HeadSaved extends HeadOptions {
  pooled: Tensor; // [B, H] before normalisation
  norm: Tensor | null; // [B] row norms, null without normalisation
  mask: Tensor; // [B, L] u32
  seqLen: number;
  /** The hidden states' dtype, which d last takes. */
  dtype: DType;
}

export interface HeadResult {
  /** The embeddings [B, H]; the caller releases them. */
  emb: Tensor;
  /** With `keep`: the state for headBackward, which releases it. */
  saved: HeadSaved | null;
}

/**
 * Pool and (optionally) normalise `last` [B, L, H] under `mask` [B, L]; `keep` saves what the
 * backward needs. `last` may be f32 or f16 (f16 inference): the pooled rows and the embeddings
 * are f32 either way.
 */
export function headForward(gpu: Gpu, last: Tensor, mask: Tensor, o: HeadOptions, keep = false): HeadResult {
  const [B, L, H] = last.shape;
  const pooled = gpu.empty([B, H]);
  if (o.pooling === 'cls') clsPoolForward(gpu, pooled, last);
  else meanPoolForward(gpu, pooled, last, mask);
  if (!o.normalize) return { emb: keep ? copyOf(gpu, pooled) : pooled, saved: keep ? { ...o, pooled, norm: null, mask, seqLen: L, dtype: last.dtype } : null };
  const emb = gpu.empty([B, H]);
  const norm = gpu.empty([B]);
  l2NormalizeForward(gpu, emb, norm, pooled);
  if (keep) return { emb, saved: { ...o, pooled, norm, mask, seqLen: L, dtype: last.dtype } };
  pooled.release();
  norm.release();
  return { emb, saved: null };
}

/** d loss / d last [B, L, H] from d loss / d emb [B, H]; releases the saved pooled and norm. */
export function headBackward(gpu: Gpu, s: HeadSaved, dEmb: Tensor): Tensor {
  const [B, H] = s.pooled.shape;
  let dPooled = dEmb;
  if (s.norm) {
    dPooled = gpu.empty([B, H]);
    l2NormalizeBackward(gpu, dPooled, dEmb, s.pooled, s.norm);
  }
  const dLast = gpu.empty([B, s.seqLen, H], s.dtype); // the hidden states' dtype (f16 in mixed precision)
  if (s.pooling === 'cls') clsPoolBackward(gpu, dLast, dPooled);
  else meanPoolBackward(gpu, dLast, dPooled, s.mask);
  if (dPooled !== dEmb) dPooled.release();
  s.pooled.release();
  s.norm?.release();
  return dLast;
}

/** A fresh copy, so that the embeddings and the saved pooled rows are released independently. */
function copyOf(gpu: Gpu, t: Tensor): Tensor {
  const c = gpu.empty(t.shape);
  gpu.copy(c, t);
  return c;
}
