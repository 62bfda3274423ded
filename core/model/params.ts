// The encoder's parameters as one flat, ordered list, and the way back from our GPU layout to
// Hugging Face tensors (checkpoints, and comparing gradients with PyTorch's).
//
// Both are loops over the family's table (architectures.ts): on the GPU, Linear weights are
// stored transposed ([in, out], see encoder.ts) and packed modules (BERT's query/key/value) as
// one matrix; a gradient structure (Encoder.zeroGrads) has exactly the weights' layout, so the
// same conversion serves weights and gradients.

import type { Gpu } from '../gpu/device.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { architectureOf, LAYOUT, layerPrefix } from './architectures.ts';
import type { EncoderConfig } from './config.ts';
import type { EncoderWeights } from './encoder.ts';

export interface ParamEntry {
  /** Stable key in our layout, e.g. 'layers.3.qkvWt' (optimizer state and resume use it). */
  key: string;
  tensor: Tensor;
  /** Whether AdamW's weight decay applies (see LAYOUT in architectures.ts). */
  decay: boolean;
}

/** Every tensor of a weights (or gradients) structure, in LAYOUT's order; absent ones skipped. */
export function paramList(w: EncoderWeights): ParamEntry[] {
  const out: ParamEntry[] = [];
  const add = (key: string, t: Tensor | null, decay: boolean) => {
    if (t) out.push({ key, tensor: t, decay });
  };
  for (const e of LAYOUT.embeddings) add(e.field, w[e.field], e.decay);
  w.layers.forEach((lw, l) => {
    for (const f of LAYOUT.layer) add(`layers.${l}.${f.field}`, lw[f.field], f.decay);
  });
  return out;
}

export interface HostTensor {
  data: Float32Array;
  shape: number[];
}

/** [rows, cols] -> [cols, rows]. */
export function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  return columnsT(a, rows, cols, 0, cols);
}

/** Columns [c0, c0 + n) of a row-major [rows, cols] matrix, transposed: HF's [n, rows] Linear weight. */
function columnsT(a: Float32Array, rows: number, cols: number, c0: number, n: number): Float32Array {
  const t = new Float32Array(n * rows);
  for (let r = 0; r < rows; r++) for (let c = 0; c < n; c++) t[c * rows + r] = a[r * cols + c0 + c];
  return t;
}

/**
 * Read a weights (or gradients) structure back from the GPU as Hugging Face tensors with the
 * checkpoint's names (no 'bert.' prefix), in the table's order: Linear weights [out, in],
 * packed modules (BERT's q/k/v) split again.
 */
export async function toHfTensors(gpu: Gpu, c: EncoderConfig, w: EncoderWeights): Promise<Map<string, HostTensor>> {
  const arch = architectureOf(c);
  const out = new Map<string, HostTensor>();
  const put = async (name: string, t: Tensor | null) => {
    if (t) out.set(name, { data: await gpu.readF32(t), shape: [...t.shape] });
  };
  for (const e of arch.embeddings) await put(e.hf, w[e.field]);
  for (const [l, lw] of w.layers.entries()) {
    for (const m of arch.layer) {
      const names = m.hf.map((part) => `${layerPrefix(l)}.${part}`);
      if (m.kind === 'norm') {
        await put(`${names[0]}.weight`, lw[m.weight]);
        await put(`${names[0]}.bias`, lw[m.bias]);
        continue;
      }
      const wt = lw[m.weight]!;
      const [rows, cols] = wt.shape;
      const n = cols / names.length;
      const data = await gpu.readF32(wt);
      const bias = lw[m.bias];
      const b = bias ? await gpu.readF32(bias) : null;
      for (const [i, name] of names.entries()) {
        out.set(`${name}.weight`, { data: columnsT(data, rows, cols, i * n, n), shape: [n, rows] });
        if (b) out.set(`${name}.bias`, { data: names.length === 1 ? b : b.slice(i * n, (i + 1) * n), shape: [n] });
      }
    }
  }
  return out;
}
