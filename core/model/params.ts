// The encoder's parameters as one flat, ordered list, and the way back from our GPU layout to
// Hugging Face tensors (checkpoints, and comparing gradients with PyTorch's).
//
// On the GPU, Linear weights are stored transposed ([in, out], see encoder.ts) and BERT's
// query/key/value are packed into one [H, 3H] matrix; a gradient structure (Encoder.zeroGrads)
// has exactly the weights' layout, so the same conversion serves weights and gradients.

import type { Gpu } from '../gpu/device.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { EncoderConfig } from './config.ts';
import type { EncoderWeights, LayerWeights } from './encoder.ts';

export interface ParamEntry {
  /** Stable key in our layout, e.g. 'layers.3.qkvWt' (optimizer state and resume use it). */
  key: string;
  tensor: Tensor;
  /**
   * Whether AdamW's weight decay applies: not for biases and LayerNorm weights, as the
   * Hugging Face Trainer (and so FlagEmbedding) groups them.
   */
  decay: boolean;
}

const LAYER_KEYS: (keyof LayerWeights)[] = ['qkvWt', 'qkvB', 'oWt', 'oB', 'attnLnW', 'attnLnB', 'upWt', 'upB', 'downWt', 'downB', 'mlpLnW', 'mlpLnB'];
const NO_DECAY = new Set<string>(['qkvB', 'oB', 'attnLnW', 'attnLnB', 'upB', 'downB', 'mlpLnW', 'mlpLnB', 'embLnW', 'embLnB']);

/** Every tensor of a weights (or gradients) structure, in a fixed order; absent ones skipped. */
export function paramList(w: EncoderWeights): ParamEntry[] {
  const out: ParamEntry[] = [];
  const add = (key: string, field: string, t: Tensor | null) => {
    if (t) out.push({ key, tensor: t, decay: !NO_DECAY.has(field) });
  };
  add('word', 'word', w.word);
  add('position', 'position', w.position);
  add('tokenType', 'tokenType', w.tokenType);
  add('embLnW', 'embLnW', w.embLnW);
  add('embLnB', 'embLnB', w.embLnB);
  w.layers.forEach((lw, l) => {
    for (const k of LAYER_KEYS) add(`layers.${l}.${k}`, k, lw[k]);
  });
  return out;
}

export interface HostTensor {
  data: Float32Array;
  shape: number[];
}

/** [rows, cols] -> [cols, rows]. */
function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = a[r * cols + c];
  return t;
}

/** Columns [c0, c0 + n) of a row-major [rows, cols] matrix, transposed: HF's [n, rows] Linear weight. */
function columnsT(a: Float32Array, rows: number, cols: number, c0: number, n: number): Float32Array {
  const t = new Float32Array(n * rows);
  for (let r = 0; r < rows; r++) for (let c = 0; c < n; c++) t[c * rows + r] = a[r * cols + c0 + c];
  return t;
}

/**
 * Read a weights (or gradients) structure back from the GPU as Hugging Face tensors with the
 * checkpoint's names (no 'bert.' prefix): Linear weights [out, in], BERT's q/k/v split again.
 */
export async function toHfTensors(gpu: Gpu, c: EncoderConfig, w: EncoderWeights): Promise<Map<string, HostTensor>> {
  const out = new Map<string, HostTensor>();
  const read = async (t: Tensor) => gpu.readF32(t);
  const put = async (name: string, t: Tensor | null) => {
    if (t) out.set(name, { data: await read(t), shape: [...t.shape] });
  };
  const putT = async (name: string, t: Tensor) => {
    const [rows, cols] = t.shape;
    out.set(name, { data: transpose(await read(t), rows, cols), shape: [cols, rows] });
  };
  await put('embeddings.word_embeddings.weight', w.word);
  await put('embeddings.position_embeddings.weight', w.position);
  await put('embeddings.token_type_embeddings.weight', w.tokenType);
  await put('embeddings.LayerNorm.weight', w.embLnW);
  await put('embeddings.LayerNorm.bias', w.embLnB);
  const H = c.hiddenSize;
  for (const [l, lw] of w.layers.entries()) {
    const L = `encoder.layer.${l}`;
    if (c.arch === 'bert') {
      const qkvWt = await read(lw.qkvWt);
      const qkvB = await read(lw.qkvB);
      for (const [i, part] of ['query', 'key', 'value'].entries()) {
        out.set(`${L}.attention.self.${part}.weight`, { data: columnsT(qkvWt, H, 3 * H, i * H, H), shape: [H, H] });
        out.set(`${L}.attention.self.${part}.bias`, { data: qkvB.slice(i * H, (i + 1) * H), shape: [H] });
      }
      await putT(`${L}.attention.output.dense.weight`, lw.oWt);
      await put(`${L}.attention.output.dense.bias`, lw.oB);
      await put(`${L}.attention.output.LayerNorm.weight`, lw.attnLnW);
      await put(`${L}.attention.output.LayerNorm.bias`, lw.attnLnB);
      await putT(`${L}.intermediate.dense.weight`, lw.upWt);
      await put(`${L}.intermediate.dense.bias`, lw.upB);
      await putT(`${L}.output.dense.weight`, lw.downWt);
      await put(`${L}.output.dense.bias`, lw.downB);
      await put(`${L}.output.LayerNorm.weight`, lw.mlpLnW);
      await put(`${L}.output.LayerNorm.bias`, lw.mlpLnB);
    } else {
      await putT(`${L}.attention.qkv_proj.weight`, lw.qkvWt);
      await put(`${L}.attention.qkv_proj.bias`, lw.qkvB);
      await putT(`${L}.attention.o_proj.weight`, lw.oWt);
      await put(`${L}.attention.o_proj.bias`, lw.oB);
      await put(`${L}.attn_ln.weight`, lw.attnLnW);
      await put(`${L}.attn_ln.bias`, lw.attnLnB);
      await putT(`${L}.mlp.up_gate_proj.weight`, lw.upWt);
      await putT(`${L}.mlp.down_proj.weight`, lw.downWt);
      await put(`${L}.mlp.down_proj.bias`, lw.downB);
      await put(`${L}.mlp_ln.weight`, lw.mlpLnW);
      await put(`${L}.mlp_ln.bias`, lw.mlpLnB);
    }
  }
  return out;
}
