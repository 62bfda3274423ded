// The products and attention launches of one encoder layer at a batch and sequence length, as
// core/model/encoder.ts runs them: the dense layers (fused qkv, attention output, MLP up and
// down) forward as X Wt, backward as dY Wt^T and X^T dY, and attention over the packed qkv.

import { type EncoderConfig } from '../model/config.ts';
import { mlpUpWidth } from '../model/architectures.ts';
import type { MatmulOp } from './table.ts';

export interface MatmulShape {
  op: MatmulOp;
  /** out [M, N] = op(a) [M, K] op(b) [K, N]. */
  M: number;
  K: number;
  N: number;
  /** What it is in the encoder, e.g. 'qkv' or 'up dX'. */
  what: string;
}

export interface AttentionShape {
  B: number;
  L: number;
  heads: number;
  headDim: number;
}

export interface TuneShapes {
  matmul: MatmulShape[];
  attention: AttentionShape[];
}

type ShapeConfig = Pick<EncoderConfig, 'hiddenSize' | 'intermediateSize' | 'numHeads' | 'headDim' | 'arch'>;

/** The encoder's shapes for `batch` texts of `seqLen` tokens (every layer has the same ones). */
export function encoderShapes(c: ShapeConfig, batch: number, seqLen: number): TuneShapes {
  const R = batch * seqLen;
  const H = c.hiddenSize;
  const I = c.intermediateSize;
  // [name, in, out] of each dense layer: Wt is [in, out]
  const dense: [string, number, number][] = [
    ['qkv', H, 3 * H],
    ['attn out', H, H],
    ['mlp up', H, mlpUpWidth(c as EncoderConfig)],
    ['mlp down', I, H],
  ];
  const matmul: MatmulShape[] = [
    ...dense.map(([what, nIn, nOut]): MatmulShape => ({ op: 'a@b', M: R, K: nIn, N: nOut, what })), // Y = X Wt
    ...dense.map(([what, nIn, nOut]): MatmulShape => ({ op: 'a@b^T', M: R, K: nOut, N: nIn, what: `${what} dX` })), // dX = dY Wt^T
    ...dense.map(([what, nIn, nOut]): MatmulShape => ({ op: 'a^T@b', M: nIn, K: R, N: nOut, what: `${what} dWt` })), // dWt = X^T dY
  ];
  return { matmul, attention: [{ B: batch, L: seqLen, heads: c.numHeads, headDim: c.headDim }] };
}

export function matmulShapeName(s: MatmulShape): string {
  return `${s.M}x${s.K}x${s.N}`;
}

export function attentionShapeName(s: AttentionShape): string {
  return `B${s.B} L${s.L} h${s.heads} d${s.headDim}`;
}
