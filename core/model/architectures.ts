// One weight table per encoder family: each parameter's Hugging Face name(s), the field that
// holds it in our layout (encoder.ts), how it is transformed between the two, and the family's
// MLP kind. The loader (load.ts), the parameter specs (weights.ts) and the checkpoint writer
// (params.ts toHfTensors) are loops over these tables, and the encoder reads `mlp`, so a
// BERT-like family is one more entry here (plus its model_type in registry.ts and a golden test).
//
// Transforms:
//   - Linear weights are [out, in] in Hugging Face files and [in, out] on the GPU (encoder.ts
//     says why); biases are stored as they are.
//   - A module with several `hf` names is packed: the parts are concatenated along the output
//     dimension (BERT's query | key | value become one [3H, H] matrix, GTE's qkv_proj layout),
//     and split again when written back.
// A family table's order is the order of its checkpoint tensors. Our layout itself (the fields,
// their order in paramList and so in optimizer state, and which are weight-decayed) is the
// same for every family: LAYOUT below.

import type { EncoderConfig } from './config.ts';
import type { EncoderWeights, LayerWeights } from './encoder.ts';
import type { EncoderFamily } from './registry.ts';

/** 'gelu': up = W1 h + b1, act = gelu(up). 'geglu': [up | gate] = W h (no bias), act = gelu(gate) * up. */
export type MlpKind = 'gelu' | 'geglu';

type EmbeddingField = Exclude<keyof EncoderWeights, 'layers'>;
type LayerField = keyof LayerWeights;

/**
 * Our layout's parameters in paramList order (optimizer state keys and files follow it), and
 * whether AdamW's weight decay applies: not to biases and LayerNorm parameters, as the Hugging
 * Face Trainer (and so FlagEmbedding) groups them.
 */
export const LAYOUT: {
  readonly embeddings: readonly { field: EmbeddingField; decay: boolean }[];
  readonly layer: readonly { field: LayerField; decay: boolean }[];
} = {
  embeddings: [
    { field: 'word', decay: true },
    { field: 'position', decay: true },
    { field: 'tokenType', decay: true },
    { field: 'embLnW', decay: false },
    { field: 'embLnB', decay: false },
  ],
  layer: [
    { field: 'qkvWt', decay: true },
    { field: 'qkvB', decay: false },
    { field: 'oWt', decay: true },
    { field: 'oB', decay: false },
    { field: 'attnLnW', decay: false },
    { field: 'attnLnB', decay: false },
    { field: 'upWt', decay: true },
    { field: 'upB', decay: false },
    { field: 'downWt', decay: true },
    { field: 'downB', decay: false },
    { field: 'mlpLnW', decay: false },
    { field: 'mlpLnB', decay: false },
  ],
};

export interface EmbeddingParam {
  field: EmbeddingField;
  /** Canonical Hugging Face name (no base-model prefix). */
  hf: string;
  /** Its shape, or null where this config has no such table (RoPE: no position table). */
  shape: (c: EncoderConfig) => number[] | null;
  /** May be absent from a checkpoint; the field is then null and the encoder skips it. */
  optional?: boolean;
}

/** One module of a layer: a Linear (weight [out, in], bias [out]) or a LayerNorm (weight, bias [H]). */
export interface LayerModule {
  kind: 'linear' | 'norm';
  /** Module name(s) under `encoder.layer.<l>.`; several = parts packed along the output dimension. */
  hf: readonly string[];
  /** Our fields for the (Linear: transposed, packed) weight and for the bias. */
  weight: LayerField;
  bias: LayerField;
  /** False for a Linear without bias: the bias field stays null. */
  hasBias: boolean;
  /** One part's weight shape in Hugging Face's layout: Linear [out, in], LayerNorm [H]; the bias is [shape[0]]. */
  shape: (c: EncoderConfig) => number[];
}

export interface Architecture {
  family: EncoderFamily;
  embeddings: readonly EmbeddingParam[];
  /** A layer's modules, in checkpoint order. */
  layer: readonly LayerModule[];
  mlp: MlpKind;
}

function embeddings(tokenTypeOptional: boolean): EmbeddingParam[] {
  return [
    { field: 'word', hf: 'embeddings.word_embeddings.weight', shape: (c) => [c.vocabSize, c.hiddenSize] },
    {
      field: 'position',
      hf: 'embeddings.position_embeddings.weight',
      shape: (c) => (c.positionEmbedding === 'absolute' ? [c.maxPositions, c.hiddenSize] : null),
    },
    {
      field: 'tokenType',
      hf: 'embeddings.token_type_embeddings.weight',
      shape: (c) => (c.typeVocabSize > 0 ? [c.typeVocabSize, c.hiddenSize] : null),
      ...(tokenTypeOptional ? { optional: true } : {}),
    },
    { field: 'embLnW', hf: 'embeddings.LayerNorm.weight', shape: (c) => [c.hiddenSize] },
    { field: 'embLnB', hf: 'embeddings.LayerNorm.bias', shape: (c) => [c.hiddenSize] },
  ];
}

const norm = (hf: string, weight: LayerField, bias: LayerField): LayerModule => ({ kind: 'norm', hf: [hf], weight, bias, hasBias: true, shape: (c) => [c.hiddenSize] });
const linear = (hf: string[], weight: LayerField, bias: LayerField, shape: (c: EncoderConfig) => number[], hasBias = true): LayerModule => ({ kind: 'linear', hf, weight, bias, hasBias, shape });

const H = (c: EncoderConfig) => c.hiddenSize;
const I = (c: EncoderConfig) => c.intermediateSize;

export const ARCHITECTURES: Readonly<Record<EncoderFamily, Architecture>> = {
  bert: {
    family: 'bert',
    embeddings: embeddings(false),
    layer: [
      linear(['attention.self.query', 'attention.self.key', 'attention.self.value'], 'qkvWt', 'qkvB', (c) => [H(c), H(c)]),
      linear(['attention.output.dense'], 'oWt', 'oB', (c) => [H(c), H(c)]),
      norm('attention.output.LayerNorm', 'attnLnW', 'attnLnB'),
      linear(['intermediate.dense'], 'upWt', 'upB', (c) => [I(c), H(c)]),
      linear(['output.dense'], 'downWt', 'downB', (c) => [H(c), I(c)]),
      norm('output.LayerNorm', 'mlpLnW', 'mlpLnB'),
    ],
    mlp: 'gelu',
  },
  gte: {
    family: 'gte',
    // GTE adds token_type only "if the checkpoint has that table" (gte-base has type_vocab_size 0).
    embeddings: embeddings(true),
    layer: [
      linear(['attention.qkv_proj'], 'qkvWt', 'qkvB', (c) => [3 * H(c), H(c)]), // rows q | k | v
      linear(['attention.o_proj'], 'oWt', 'oB', (c) => [H(c), H(c)]),
      norm('attn_ln', 'attnLnW', 'attnLnB'),
      linear(['mlp.up_gate_proj'], 'upWt', 'upB', (c) => [2 * I(c), H(c)], false), // rows up | gate
      linear(['mlp.down_proj'], 'downWt', 'downB', (c) => [H(c), I(c)]),
      norm('mlp_ln', 'mlpLnW', 'mlpLnB'),
    ],
    mlp: 'geglu',
  },
};

export function architectureOf(c: EncoderConfig): Architecture {
  return ARCHITECTURES[c.arch];
}

/** Width of the MLP's first projection per token: I, or 2I for GEGLU's [up | gate]. */
export function mlpUpWidth(c: EncoderConfig): number {
  return architectureOf(c).mlp === 'geglu' ? 2 * c.intermediateSize : c.intermediateSize;
}

/** Prefix of layer l's parameters. */
export function layerPrefix(l: number): string {
  return `encoder.layer.${l}`;
}
