// The encoder forward pass for BERT and GTE v1.5, one loop over layers (llm.c style).
//
// BERT (post-LN):  x = LN(word[ids] + pos[l] + type[tt])
//                  per layer: h = LN(x + O(attn(QKV x))), x = LN(h + W2 gelu(W1 h + b1) + b2)
// GTE v1.5:        x = LN(word[ids] + type[0]); RoPE (NTK) on q, k; MLP is GEGLU:
//                  x = LN(h + down(gelu(gate) * up)) with [up | gate] = up_gate_proj(h)
// BERT's separate q/k/v weights are concatenated at load into GTE's packed [3H, H] layout, so
// both families share one attention path.
//
// Training may add hidden dropout (HF's hidden_dropout_prob) where both families apply it: on
// the embedding output and on each attention and MLP output before its residual add. Each site
// has its own seed (dropSite) and the masks are recomputed from it, never stored.
//
// Linear weights are kept transposed, [in, out] (Hugging Face stores [out, in]): y = x @ Wt
// runs 1.3-1.9x faster than x @ W^T on llvmpipe (measured at [4096, 384] x [384, 1152/1536]
// and [4096, 1536] x [1536, 384]), because each lane then reads contiguous columns of Wt.
//
// Precision: the weights' dtype (f32, or f16 from loadEncoder's precision) is the dtype of every
// activation of forward(); the statistics stay f32 (LayerNorm mean/rstd, attention LSE), as do
// the RoPE tables and whatever the caller pools from the last hidden state. Training runs on f32
// weights, or on the f16 working copy of mixed-precision training (the trainer keeps the f32
// master weights): then every activation and activation gradient is f16 and the parameter
// gradients, written into f32 tensors, are f32.

import type { Gpu } from '../gpu/device.ts';
import type { DType, Tensor } from '../gpu/tensor.ts';
import { attentionBackward, attentionForward } from '../kernels/attention.ts';
import { accumulateForward, addForward, geluBackward, geluForward, gluBackward, gluForward } from '../kernels/elementwise.ts';
import { embeddingBackward, embeddingForward } from '../kernels/embedding.ts';
import { layerNormBackward, layerNormForward } from '../kernels/layernorm.ts';
import { type DropoutSpec, dropped, droppedCopy } from '../kernels/dropout.ts';
import { denseBackward, denseForward } from '../kernels/matmul.ts';
import { ropeBackward, ropeForward, ropeTables } from '../kernels/rope.ts';
import { architectureOf, mlpUpWidth } from './architectures.ts';
import type { EncoderConfig } from './config.ts';

export interface LayerWeights {
  qkvWt: Tensor; // [H, 3H]  columns q | k | v
  qkvB: Tensor; // [3H]
  oWt: Tensor; // [H, H]
  oB: Tensor; // [H]
  attnLnW: Tensor; // [H]
  attnLnB: Tensor; // [H]
  /** BERT: intermediate.dense^T [H, I] with bias; GTE: up_gate_proj^T [H, 2I] (up | gate), no bias. */
  upWt: Tensor;
  upB: Tensor | null;
  downWt: Tensor; // [I, H]
  downB: Tensor; // [H]
  mlpLnW: Tensor; // [H]
  mlpLnB: Tensor; // [H]
}

export interface EncoderWeights {
  word: Tensor; // [V, H]
  position: Tensor | null; // [P, H]  BERT only
  tokenType: Tensor | null; // [T, H]
  embLnW: Tensor; // [H]
  embLnB: Tensor; // [H]
  layers: LayerWeights[];
}

export interface EncoderInput {
  ids: Tensor; // [B, L] u32
  mask: Tensor; // [B, L] u32, 1 = real token
  typeIds: Tensor | null; // [B, L] u32, null = all zeros
  batch: number;
  seqLen: number;
}

/** A tensor per weight of `w` (absent ones stay null), made by `f`: gradients, shadow copies. */
export function mapWeights(w: EncoderWeights, f: (t: Tensor) => Tensor): EncoderWeights {
  const m = (t: Tensor | null) => (t ? f(t) : null);
  return {
    word: m(w.word)!,
    position: m(w.position),
    tokenType: m(w.tokenType),
    embLnW: m(w.embLnW)!,
    embLnB: m(w.embLnB)!,
    layers: w.layers.map((lw) => Object.fromEntries(Object.entries(lw).map(([k, t]) => [k, m(t as Tensor | null)])) as unknown as LayerWeights),
  };
}

export class Encoder {
  private rope: { cos: Tensor; sin: Tensor; length: number } | null = null;

  constructor(
    readonly gpu: Gpu,
    readonly config: EncoderConfig,
    readonly weights: EncoderWeights,
    /** f16 weights that are the working copy of f32 master weights (mixed-precision training). */
    private readonly opts: { halfCopy?: boolean } = {},
  ) {}

  /** Storage type of the weights and of forward()'s activations. */
  get dtype(): DType {
    return this.weights.word.dtype;
  }

  /** RoPE tables [Lmax, d], f32 in both precisions, built once per length bucket (they only grow). */
  private ropeFor(length: number): { cos: Tensor; sin: Tensor } {
    if (this.rope && this.rope.length >= length) return this.rope;
    this.rope?.cos.release();
    this.rope?.sin.release();

    const c = this.config;
    const n = Math.max(length, 128);
    const t = ropeTables(c.headDim, n, c.ropeTheta ?? 10000, c.ropeNtkFactor ?? 1);
    this.rope = {
      cos: this.gpu.upload(t.cos, [n, c.headDim]),
      sin: this.gpu.upload(t.sin, [n, c.headDim]),
      length: n,
    };
    return this.rope;
  }

  /**
   * last_hidden_state [B, L, H] for one padded batch. With `hidden`, also returns the
   * embedding output and each layer's output (HF's hidden_states), for debugging and tests.
   */
  forward(input: EncoderInput, opts: { hidden?: boolean; dropout?: DropoutSpec } = {}): { last: Tensor; hidden: Tensor[] } {
    const { gpu, config: c, weights: w } = this;
    this.checkLength(input.seqLen);
    const d = opts.dropout ?? null;
    const hidden: Tensor[] = [];
    let x = embedForward(gpu, c, w, input, null, dropSite(d, 0));
    if (opts.hidden) hidden.push(x);
    const rope = c.positionEmbedding === 'rope' ? this.ropeFor(input.seqLen) : null;
    for (const [l, lw] of w.layers.entries()) {
      const next = layerForward(gpu, c, lw, x, input.mask, rope, null, layerDrop(d, l));
      if (!opts.hidden) x.release();
      x = next;
      if (opts.hidden) hidden.push(x);
    }
    return { last: x, hidden };
  }

  /**
   * The forward for training: returns last_hidden_state and everything the backward needs
   * (each layer's inputs and intermediate activations, LayerNorm statistics, attention LSE).
   * Memory grows with B * L * layers; bound it with smaller (GradCache) mini-batches, and/or
   * with `recompute` (gradient checkpointing): keep only each layer's input [B, L, H] and run
   * the layer's forward again in the backward, one layer at a time. That stores H floats per
   * token and layer instead of 7H + 2I (all-MiniLM-L6-v2: 384 vs 5,760) for one more forward
   * per step. The recomputed activations, so the gradients, are bit-identical (dropout masks
   * included: they are functions of the seed).
   *
   * `dropout`: hidden dropout with this probability; its seed is the first of 2 * layers + 1
   * consecutive site seeds. The same spec in forward() gives the same outputs.
   */
  forwardTrain(input: EncoderInput, host: TrainTokens, opts: { recompute?: boolean; dropout?: DropoutSpec } = {}): { last: Tensor; saved: SavedActivations } {
    const { gpu, config: c, weights: w } = this;
    this.checkTrainable('forwardTrain');
    this.checkLength(input.seqLen);
    if (host.ids.length !== input.batch * input.seqLen) throw new Error(`forwardTrain: ${host.ids.length} host ids for a [${input.batch}, ${input.seqLen}] batch`);
    const d = opts.dropout ?? null;
    const emb: SavedEmbedding = { emb: null!, mean: gpu.empty([input.batch * input.seqLen]), rstd: gpu.empty([input.batch * input.seqLen]) };
    let x = embedForward(gpu, c, w, input, emb, dropSite(d, 0));
    const rope = c.positionEmbedding === 'rope' ? this.ropeFor(input.seqLen) : null;
    const layers: SavedLayer[] = [];
    const inputs: Tensor[] = [];
    for (const [l, lw] of w.layers.entries()) {
      if (opts.recompute) {
        inputs.push(x); // layerForward without `save` leaves its input alone
        x = layerForward(gpu, c, lw, x, input.mask, rope, null, layerDrop(d, l));
        continue;
      }
      const s = {} as SavedLayer;
      x = layerForward(gpu, c, lw, x, input.mask, rope, s, layerDrop(d, l));
      layers.push(s);
    }
    return { last: x, saved: { input, host, emb, layers, inputs: opts.recompute ? inputs : null, last: x, dropout: d } };
  }

  /**
   * Backward of forwardTrain: given dL/d last_hidden_state, writes (or with accumulate, adds)
   * the gradient of every parameter into `grads` (same structure as the weights, Linear
   * gradients transposed like the weights). Releases the saved activations and dlast.
   */
  backward(saved: SavedActivations, dlast: Tensor, grads: EncoderWeights, opts: { accumulate?: boolean } = {}): void {
    const { gpu, config: c, weights: w } = this;
    this.checkTrainable('backward');
    const rope = c.positionEmbedding === 'rope' ? this.ropeFor(saved.input.seqLen) : null;
    const d = saved.dropout;
    let dx = dlast;
    for (let l = w.layers.length - 1; l >= 0; l--) {
      let s = saved.layers[l];
      if (saved.inputs) {
        // Gradient checkpointing: this layer's activations again, from its saved input.
        s = {} as SavedLayer;
        layerForward(gpu, c, w.layers[l], saved.inputs[l], saved.input.mask, rope, s, layerDrop(d, l)).release();
      }
      const dprev = layerBackward(gpu, c, w.layers[l], grads.layers[l], s, dx, saved.input.mask, rope, !!opts.accumulate, layerDrop(d, l));
      dx.release();
      dx = dprev;
    }
    embedBackward(gpu, c, w, grads, saved, dx, !!opts.accumulate, dropSite(d, 0));
    dx.release();
    saved.last.release();
  }

  /** Zero-filled gradient tensors shaped like the weights. */
  zeroGrads(): EncoderWeights {
    this.checkTrainable('zeroGrads');
    return mapWeights(this.weights, (t) => this.gpu.zeros(t.shape));
  }

  /**
   * Training runs on f32 models, or on an f16 working copy whose f32 master weights the
   * trainer keeps (halfCopy). A model loaded in f16 has no master weights to update: it is
   * refused here in one line.
   */
  private checkTrainable(what: string): void {
    if (this.dtype !== 'f32' && !this.opts.halfCopy) throw new Error(`${what}: training needs an f32 model, this one was loaded in ${this.dtype} (load it with precision f32)`);
  }

  private checkLength(L: number): void {
    const c = this.config;
    if (c.positionEmbedding === 'absolute' && L > c.maxPositions) {
      throw new Error(`sequence length ${L} exceeds the model's ${c.maxPositions} positions`);
    }
  }

  /** Free every weight and cached table. */
  dispose(): void {
    const w = this.weights;
    const all = [w.word, w.position, w.tokenType, w.embLnW, w.embLnB, ...w.layers.flatMap((l) => Object.values(l))];
    for (const t of all) (t as Tensor | null)?.release();
    this.rope?.cos.release();
    this.rope?.sin.release();

  }
}

/** Host copies of the batch's token ids (the embedding backward groups tokens on the host). */
export interface TrainTokens {
  ids: Uint32Array; // [B * L]
  typeIds: Uint32Array | null;
}

export interface SavedEmbedding {
  emb: Tensor; // word + position + type, the LayerNorm's input
  mean: Tensor;
  rstd: Tensor;
}

/** What layerBackward needs from layerForward. */
export interface SavedLayer {
  x: Tensor; // layer input [B, L, H]
  qkv: Tensor; // after RoPE [B, L, 3H]
  ctx: Tensor; // attention output [B, L, H]
  lse: Tensor; // [B, heads, L]
  sum1: Tensor; // x + attn
  mean1: Tensor;
  rstd1: Tensor;
  h: Tensor; // LN(sum1)
  up: Tensor; // BERT: W1 h + b1 [B, L, I]; GTE: [up | gate] [B, L, 2I]
  act: Tensor; // gelu(u) or gelu(gate) * up [B, L, I]
  sum2: Tensor; // h + m
  mean2: Tensor;
  rstd2: Tensor;
}

export interface SavedActivations {
  input: EncoderInput;
  host: TrainTokens;
  emb: SavedEmbedding;
  /** Every layer's activations; empty when recomputing. */
  layers: SavedLayer[];
  /** With recompute (gradient checkpointing): each layer's input only; else null. */
  inputs: Tensor[] | null;
  last: Tensor;
  /** The forward's hidden dropout (the backward regenerates its masks); null = none. */
  dropout: DropoutSpec | null;
}

type Rope = { cos: Tensor; sin: Tensor } | null;

// ---- hidden dropout sites -----------------------------------------------------------------

/** Site k's spec: 0 = embedding output, 1 + 2l / 2 + 2l = layer l's attention / MLP output. */
function dropSite(d: DropoutSpec | null, site: number): DropoutSpec | null {
  return d && d.p > 0 ? { p: d.p, seed: (d.seed + site) >>> 0 } : null;
}

interface LayerDrop {
  attn: DropoutSpec;
  mlp: DropoutSpec;
}

function layerDrop(d: DropoutSpec | null, layer: number): LayerDrop | null {
  const attn = dropSite(d, 1 + 2 * layer);
  const mlp = dropSite(d, 2 + 2 * layer);
  return attn && mlp ? { attn, mlp } : null;
}

// ---- embeddings: x = dropout(LN(word[ids] + pos + type)) ----------------------------------

function embedForward(gpu: Gpu, c: EncoderConfig, w: EncoderWeights, input: EncoderInput, save: SavedEmbedding | null, drop: DropoutSpec | null): Tensor {
  const { batch: B, seqLen: L } = input;
  const N = B * L;
  const dt = w.word.dtype;
  const emb = gpu.empty([B, L, c.hiddenSize], dt);
  embeddingForward(gpu, emb, input.ids, input.typeIds, w.word, w.position, w.tokenType);
  const x = gpu.empty([B, L, c.hiddenSize], dt);
  const mean = save?.mean ?? gpu.empty([N]);
  const rstd = save?.rstd ?? gpu.empty([N]);
  layerNormForward(gpu, x, mean, rstd, emb, w.embLnW, w.embLnB, c.layerNormEps);
  if (save) save.emb = emb;
  else for (const t of [emb, mean, rstd]) t.release();
  return drop ? dropped(gpu, x, drop) : x;
}

function embedBackward(gpu: Gpu, c: EncoderConfig, w: EncoderWeights, g: EncoderWeights, saved: SavedActivations, dx: Tensor, accumulate: boolean, drop: DropoutSpec | null): void {
  const s = saved.emb;
  const dln = drop ? droppedCopy(gpu, dx, drop) : dx; // d LN output
  const demb = gpu.empty(s.emb.shape, s.emb.dtype);
  layerNormBackward(gpu, demb, g.embLnW, g.embLnB, dln, s.emb, s.mean, s.rstd, w.embLnW, { accumulate });
  if (drop) dln.release();
  embeddingBackward(gpu, g.word, g.position, g.tokenType, demb, saved.host.ids, saved.host.typeIds, { padTokenId: c.padTokenId, accumulate });
  for (const t of [demb, s.emb, s.mean, s.rstd]) t.release();
}

// ---- one post-LN layer: h = LN(x + drop(O(attn(QKV x)))), out = LN(h + drop(MLP(h))) -------

/** One layer's output; with `save`, keeps its activations there (x included) for the backward. */
function layerForward(gpu: Gpu, c: EncoderConfig, lw: LayerWeights, x: Tensor, mask: Tensor, rope: Rope, save: SavedLayer | null, drop: LayerDrop | null): Tensor {
  const [B, L, H] = x.shape;
  const N = B * L;
  const I = c.intermediateSize;
  const dt = x.dtype; // the model's: every activation below, but the f32 statistics (lse, mean, rstd)
  // Inference frees each activation as soon as it is used, so the pool can reuse it inside the layer.
  const done = (...ts: Tensor[]) => {
    if (!save) for (const t of ts) t.release();
  };
  // attention block
  const qkv = gpu.empty([B, L, 3 * H], dt);
  denseForward(gpu, qkv, x, lw.qkvWt, lw.qkvB);
  if (rope) ropeForward(gpu, qkv, rope.cos, rope.sin, c.numHeads);
  const ctx = gpu.empty([B, L, H], dt);
  const lse = gpu.empty([B, c.numHeads, L]);
  attentionForward(gpu, ctx, lse, qkv, mask, c.numHeads);
  done(qkv, lse);
  let attn = gpu.empty([B, L, H], dt);
  denseForward(gpu, attn, ctx, lw.oWt, lw.oB);
  done(ctx);
  if (drop) attn = dropped(gpu, attn, drop.attn);
  const sum1 = gpu.empty([B, L, H], dt);
  addForward(gpu, sum1, x, attn);
  attn.release();
  const h = gpu.empty([B, L, H], dt);
  const mean1 = gpu.empty([N]);
  const rstd1 = gpu.empty([N]);
  layerNormForward(gpu, h, mean1, rstd1, sum1, lw.attnLnW, lw.attnLnB, c.layerNormEps);
  done(sum1, mean1, rstd1);

  // MLP block
  const act = gpu.empty([B, L, I], dt);
  const glu = architectureOf(c).mlp === 'geglu';
  const up = gpu.empty([B, L, mlpUpWidth(c)], dt);
  denseForward(gpu, up, h, lw.upWt, lw.upB);
  if (glu) gluForward(gpu, act, up);
  else geluForward(gpu, act, up);
  done(up);
  let m = gpu.empty([B, L, H], dt);
  denseForward(gpu, m, act, lw.downWt, lw.downB);
  done(act);
  if (drop) m = dropped(gpu, m, drop.mlp);
  const sum2 = gpu.empty([B, L, H], dt);
  addForward(gpu, sum2, h, m);
  m.release();
  done(h);
  const out = gpu.empty([B, L, H], dt);
  const mean2 = gpu.empty([N]);
  const rstd2 = gpu.empty([N]);
  layerNormForward(gpu, out, mean2, rstd2, sum2, lw.mlpLnW, lw.mlpLnB, c.layerNormEps);
  done(sum2, mean2, rstd2);
  if (save) Object.assign(save, { x, qkv, ctx, lse, sum1, mean1, rstd1, h, up, act, sum2, mean2, rstd2 });
  return out;
}

/** dL/d(layer input) from dL/d(layer output); parameter gradients into g. Releases s. */
function layerBackward(gpu: Gpu, c: EncoderConfig, lw: LayerWeights, g: LayerWeights, s: SavedLayer, dout: Tensor, mask: Tensor, rope: Rope, accumulate: boolean, drop: LayerDrop | null): Tensor {
  const shape = s.x.shape;
  const dt = s.x.dtype; // activation gradients share the activations' dtype; parameter gradients (g) are f32
  // out = LN(sum2), sum2 = h + drop(m): dm = drop(dsum2), and dsum2 also flows straight into dh.
  const dsum2 = gpu.empty(shape, dt);
  layerNormBackward(gpu, dsum2, g.mlpLnW, g.mlpLnB, dout, s.sum2, s.mean2, s.rstd2, lw.mlpLnW, { accumulate });
  const dm = drop ? droppedCopy(gpu, dsum2, drop.mlp) : dsum2;
  const dact = gpu.empty(s.act.shape, dt);
  denseBackward(gpu, { dx: dact, dwt: g.downWt, db: g.downB, accumulate }, dm, s.act, lw.downWt);
  if (drop) dm.release();
  const dup = gpu.empty(s.up.shape, dt);
  if (architectureOf(c).mlp === 'geglu') gluBackward(gpu, dup, dact, s.up);
  else geluBackward(gpu, dup, dact, s.up);
  dact.release();
  const dh = gpu.empty(shape, dt);
  denseBackward(gpu, { dx: dh, dwt: g.upWt, db: g.upB, accumulate }, dup, s.h, lw.upWt);
  dup.release();
  accumulateForward(gpu, dh, dsum2);
  dsum2.release();

  // h = LN(sum1), sum1 = x + drop(attn): dattn = drop(dsum1), and dsum1 also flows into dx.
  const dsum1 = gpu.empty(shape, dt);
  layerNormBackward(gpu, dsum1, g.attnLnW, g.attnLnB, dh, s.sum1, s.mean1, s.rstd1, lw.attnLnW, { accumulate });
  dh.release();
  const dattn = drop ? droppedCopy(gpu, dsum1, drop.attn) : dsum1;
  const dctx = gpu.empty(shape, dt);
  denseBackward(gpu, { dx: dctx, dwt: g.oWt, db: g.oB, accumulate }, dattn, s.ctx, lw.oWt);
  if (drop) dattn.release();
  const dqkv = gpu.empty(s.qkv.shape, dt);
  attentionBackward(gpu, dqkv, dctx, s.ctx, s.lse, s.qkv, mask, c.numHeads);
  dctx.release();
  if (rope) ropeBackward(gpu, dqkv, rope.cos, rope.sin, c.numHeads);
  const dx = gpu.empty(shape, dt);
  denseBackward(gpu, { dx, dwt: g.qkvWt, db: g.qkvB, accumulate }, dqkv, s.x, lw.qkvWt);
  dqkv.release();
  accumulateForward(gpu, dx, dsum1);
  dsum1.release();
  for (const t of [s.x, s.qkv, s.ctx, s.lse, s.sum1, s.mean1, s.rstd1, s.h, s.up, s.act, s.sum2, s.mean2, s.rstd2]) t.release();
  return dx;
}
