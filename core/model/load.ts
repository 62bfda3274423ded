// Model folder -> GPU-resident Encoder (the tokenizer and pooling settings join it in
// core/retrieval/embed.ts loadEmbeddingModel). Host-neutral: the files come
// through ModelFiles (fs in Node, fetch in the browser).

import type { Gpu } from '../gpu/device.ts';
import { toHalf } from '../gpu/half.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { architectureOf, layerPrefix } from './architectures.ts';
import { type EncoderConfig, loadConfig } from './config.ts';
import { Encoder, type EncoderWeights, type LayerWeights } from './encoder.ts';
import { transpose } from './params.ts';
import type { ModelFiles } from './source.ts';
import { bindWeights, openWeights, readParam } from './weights.ts';
import { SafetensorsError } from './safetensors.ts';

/** The storage type of the encoder's weights and activations (the math is f32 in both). */
export type Precision = 'f32' | 'f16';
export const PRECISIONS: readonly Precision[] = ['f32', 'f16'];

export interface LoadProgress {
  loaded: number; // parameters uploaded so far
  total: number;
}

/**
 * Read every parameter (F16/BF16 converted to f32) and upload it, as f32 or, with precision
 * 'f16', rounded to f16 on the host (an F16 checkpoint round-trips exactly; F32 and BF16 are
 * rounded once, to nearest even). The caller checks that the device has shader-f16.
 */
export async function loadEncoder(
  gpu: Gpu,
  files: ModelFiles,
  config?: EncoderConfig,
  onProgress?: (p: LoadProgress) => void,
  precision: Precision = 'f32',
): Promise<Encoder> {
  const cfg = config ?? (await loadConfig(files));
  const bound = bindWeights(cfg, await openWeights(files));
  const total = bound.params.size;
  let loaded = 0;
  const host = async (name: string): Promise<Float32Array> => {
    const p = bound.params.get(name);
    if (!p) throw new Error(`${files.name}: tensor '${name}' is not in the checkpoint`);
    const data = await readParam(p);
    onProgress?.({ loaded: ++loaded, total });
    return data;
  };
  // `name` names the (first) checkpoint tensor the data comes from, for the overflow message.
  const toGpu = (data: Float32Array, shape: readonly number[], name: string): Tensor => {
    if (precision === 'f32') return gpu.upload(data, shape);
    const half = toHalf(data);
    const bad = half.findIndex((h) => (h & 0x7c00) === 0x7c00);
    if (bad >= 0) {
      const p = bound.params.get(name)!;
      throw new SafetensorsError(p.file.name, p.stored, `a value of ${data[bad]} is beyond f16's range (+-65504); load this model with precision f32`);
    }
    return gpu.upload(half, shape, 'f16');
  };
  const up = async (name: string): Promise<Tensor> => {
    const p = bound.params.get(name)!;
    return toGpu(await host(name), p.spec.shape, name);
  };
  const arch = architectureOf(cfg);

  const layers: LayerWeights[] = [];
  for (let l = 0; l < cfg.numLayers; l++) {
    const lw: Partial<Record<keyof LayerWeights, Tensor | null>> = {};
    for (const m of arch.layer) {
      const names = m.hf.map((part) => `${layerPrefix(l)}.${part}`);
      if (m.kind === 'norm') {
        lw[m.weight] = await up(`${names[0]}.weight`);
        lw[m.bias] = await up(`${names[0]}.bias`);
        continue;
      }
      // Linear [out, in] -> [in, out] (see encoder.ts for why); packed parts stacked along out first.
      const ws: Float32Array[] = [];
      const bs: Float32Array[] = [];
      for (const name of names) {
        ws.push(await host(`${name}.weight`));
        if (m.hasBias) bs.push(await host(`${name}.bias`));
      }
      const [out, inp] = m.shape(cfg);
      const rows = names.length * out;
      lw[m.weight] = toGpu(transpose(concat(ws), rows, inp), [inp, rows], `${names[0]}.weight`);
      lw[m.bias] = m.hasBias ? toGpu(concat(bs), [rows], `${names[0]}.bias`) : null;
    }
    layers.push(lw as LayerWeights);
  }
  const emb: Partial<Record<keyof EncoderWeights, Tensor | null>> = {};
  for (const e of arch.embeddings) emb[e.field] = bound.params.has(e.hf) ? await up(e.hf) : null;
  const weights = { ...emb, layers } as EncoderWeights;
  await gpu.sync();
  return new Encoder(gpu, cfg, weights);
}

/** The arrays one after the other (the array itself when there is one). */
function concat(parts: Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0];
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
