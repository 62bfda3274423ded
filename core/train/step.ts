// One contrastive training step's gradients, with GradCache (Gao et al. 2021, "Scaling Deep
// Contrastive Learning Batch Size under Memory Limited Setup").
//
// The loss couples every query with every passage of the step (in-batch negatives), so a plain
// backward needs all Q + Q * G encoder activations at once. GradCache splits it:
//   1. embed all queries and passages without keeping activations (mini-batches of `miniBatch`);
//   2. loss and d loss / d embedding for the whole step (small: [Q + P, H]);
//   3. per mini-batch: forward again keeping activations, backward from its slice of the
//      embedding gradient, adding into the parameter gradients.
// Peak activation memory is one mini-batch's, whatever Q and G are; the price is a second
// forward. When one mini-batch holds a whole side (queries or passages), its activations from
// step 1 are kept and step 3 does not recompute them.
//
// Hidden dropout: each piece gets its own seed, a function of the step's seed, its side and
// its first row, so the two forwards of a recomputed piece draw the same masks (what the
// original GradCache gets by saving and restoring the RNG state around the first pass).

import { type PaddedBatch, padBatch } from '../data/batch.ts';
import type { Gpu } from '../gpu/device.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { contrastiveLoss } from '../kernels/loss.ts';
import type { Encoder, EncoderWeights, SavedActivations } from '../model/encoder.ts';
import { type HeadSaved, headBackward, headForward } from '../model/pooling.ts';
import { type DropoutSpec, triple32 } from '../util/random.ts';

export interface StepOptions {
  /** Passages per query: 1 positive then groupSize - 1 negatives, query by query. */
  groupSize: number;
  temperature: number;
  pooling: 'cls' | 'mean';
  /** Rows (texts) per forward/backward piece; Infinity = no GradCache. */
  miniBatch: number;
  /** Gradients are of scale * loss (1 / accumulation steps). */
  scale: number;
  padId: number;
  /** Gradient checkpointing: keep only each layer's input and recompute the layer in the backward. */
  recompute?: boolean;
  /** Hidden dropout for this step (p and the step's seed); absent or p = 0: none (the encoder skips p = 0). */
  dropout?: DropoutSpec;
}

/** The dropout spec of the piece starting at row `start` of side 0 (queries) or 1 (passages). */
function pieceDropout(d: DropoutSpec | undefined, side: number, start: number): DropoutSpec | undefined {
  if (!d) return undefined;
  return { p: d.p, seed: triple32((triple32(d.seed >>> 0) ^ (side * 2 ** 24 + start)) >>> 0) };
}

/** A padded mini-batch of token ids: rows [start, start + rows) of its side. */
interface Piece extends PaddedBatch {
  start: number;
}

/** Cut rows into padded pieces of at most `size` rows, in order (the loss needs the order). */
export function pieces(encoded: number[][], size: number, padId: number): Piece[] {
  const out: Piece[] = [];
  const n = Math.max(1, Math.min(size, encoded.length));
  for (let s = 0; s < encoded.length; s += n) out.push({ ...padBatch(encoded.slice(s, s + n), padId), start: s });
  return out;
}

interface Forwarded {
  saved: SavedActivations;
  head: HeadSaved;
}

/**
 * Encoder + pooling + L2 normalise of one piece, embeddings copied into out's rows. With
 * `train`, keeps what the backward needs (activations, pooled, norm, mask); else frees it all
 * (GradCache's first pass).
 */
function forwardPiece(gpu: Gpu, enc: Encoder, p: Piece, pooling: 'cls' | 'mean', out: Tensor, train: boolean, recompute: boolean, dropout: DropoutSpec | undefined): Forwarded | null {
  const ids = gpu.upload(p.ids, [p.rows, p.seqLen], 'u32');
  const mask = gpu.upload(p.mask, [p.rows, p.seqLen], 'u32');
  const input = { ids, mask, typeIds: null, batch: p.rows, seqLen: p.seqLen };
  const { last, saved } = train ? enc.forwardTrain(input, { ids: p.ids, typeIds: null }, { recompute, dropout }) : { ...enc.forward(input, { dropout }), saved: null };
  ids.release();
  const { emb, saved: head } = headForward(gpu, last, mask, { pooling, normalize: true }, !!saved);
  gpu.copy(out.rows(p.start, p.rows), emb); // a copy: a bound view's offset must be 256-byte aligned, a copy's only 4
  emb.release();
  if (saved && head) return { saved, head };
  for (const t of [mask, last]) t.release();
  return null;
}

/** Backward of forwardPiece from d loss / d embedding rows; parameter gradients added into grads. */
function backwardPiece(gpu: Gpu, enc: Encoder, p: Piece, f: Forwarded, dEmb: Tensor, grads: EncoderWeights): void {
  const dRows = gpu.empty([p.rows, enc.config.hiddenSize]);
  gpu.copy(dRows, dEmb.rows(p.start, p.rows)); // a copy, since a bound view's offset must be 256-byte aligned
  const dLast = headBackward(gpu, f.head, dRows);
  dRows.release();
  enc.backward(f.saved, dLast, grads, { accumulate: true });
  f.head.mask.release();
}

export interface StepResult {
  /** The loss tensor [1] (unscaled mean InfoNCE over the step's queries); read it when needed. */
  loss: Tensor;
  tokens: number;
}

/**
 * Add d(scale * loss)/d params of one step into grads (which must be zeroed by the caller at
 * the start of an accumulation cycle). queries: Q token lists; passages: Q * groupSize lists.
 */
export function contrastiveStep(gpu: Gpu, enc: Encoder, queries: number[][], passages: number[][], grads: EncoderWeights, o: StepOptions): StepResult {
  const Q = queries.length;
  if (passages.length !== Q * o.groupSize) throw new Error(`step: ${passages.length} passages for ${Q} queries x group ${o.groupSize}`);
  const H = enc.config.hiddenSize;
  const sides = [
    { rows: queries, emb: gpu.empty([Q, H]), pieces: pieces(queries, o.miniBatch, o.padId) },
    { rows: passages, emb: gpu.empty([passages.length, H]), pieces: pieces(passages, o.miniBatch, o.padId) },
  ];
  // 1. embeddings; a side that fits in one piece keeps its activations for step 3.
  const kept: (Forwarded | null)[] = [];
  const recompute = !!o.recompute;
  const drop = (s: number, p: Piece) => pieceDropout(o.dropout, s, p.start);
  sides.forEach((side, s) => {
    if (side.pieces.length === 1) {
      kept.push(forwardPiece(gpu, enc, side.pieces[0], o.pooling, side.emb, true, recompute, drop(s, side.pieces[0])));
      return;
    }
    kept.push(null);
    for (const p of side.pieces) forwardPiece(gpu, enc, p, o.pooling, side.emb, false, false, drop(s, p));
  });
  // 2. loss and embedding gradients over the whole step.
  const loss = gpu.empty([1]);
  const dq = gpu.empty([Q, H]);
  const dp = gpu.empty([passages.length, H]);
  contrastiveLoss(gpu, { loss, dq, dp }, sides[0].emb, sides[1].emb, { groupSize: o.groupSize, temperature: o.temperature, scale: o.scale });
  // 3. backward piece by piece (recomputing the forward unless kept).
  const dEmb = [dq, dp];
  sides.forEach((side, s) => {
    const k = kept[s];
    if (k) {
      backwardPiece(gpu, enc, side.pieces[0], k, dEmb[s], grads);
      return;
    }
    const scratch = gpu.empty(side.emb.shape);
    for (const p of side.pieces) backwardPiece(gpu, enc, p, forwardPiece(gpu, enc, p, o.pooling, scratch, true, recompute, drop(s, p))!, dEmb[s], grads);
    scratch.release();
  });
  for (const t of [dq, dp, sides[0].emb, sides[1].emb]) t.release();
  const tokens = sides.reduce((a, side) => a + side.pieces.reduce((b, p) => b + p.tokens, 0), 0);
  return { loss, tokens };
}
