// Model folder -> GPU-resident Encoder (the tokenizer and pooling settings join it in
// core/retrieval/embed.ts loadEmbeddingModel). Host-neutral: the files come
// through ModelFiles (fs in Node, fetch in the browser).

import type { Gpu } from '../gpu/device.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { type EncoderConfig, loadConfig } from './config.ts';
import { Encoder, type EncoderWeights, type LayerWeights } from './encoder.ts';
import type { ModelFiles } from './source.ts';
import { bindWeights, openWeights, readParam } from './weights.ts';

export interface LoadProgress {
  loaded: number; // parameters uploaded so far
  total: number;
}

/** Read every parameter (F16/BF16 converted to f32) and upload it. */
export async function loadEncoder(
  gpu: Gpu,
  files: ModelFiles,
  config?: EncoderConfig,
  onProgress?: (p: LoadProgress) => void,
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
  const up = async (name: string): Promise<Tensor> => {
    const p = bound.params.get(name)!;
    return gpu.upload(await host(name), p.spec.shape);
  };
  const maybe = async (name: string) => (bound.params.has(name) ? up(name) : null);
  // Linear weights [out, in] -> [in, out] (see encoder.ts for why).
  const upT = async (name: string): Promise<Tensor> => {
    const [rows, cols] = bound.params.get(name)!.spec.shape;
    return gpu.upload(transpose(await host(name), rows, cols), [cols, rows]);
  };
  const H = cfg.hiddenSize;

  const layers: LayerWeights[] = [];
  for (let l = 0; l < cfg.numLayers; l++) {
    const L = `encoder.layer.${l}`;
    if (cfg.arch === 'bert') {
      // Pack q, k, v into GTE's [3H, H] layout so both families share the attention path.
      const qkvW = new Float32Array(3 * H * H);
      const qkvB = new Float32Array(3 * H);
      for (const [i, part] of ['query', 'key', 'value'].entries()) {
        qkvW.set(await host(`${L}.attention.self.${part}.weight`), i * H * H);
        qkvB.set(await host(`${L}.attention.self.${part}.bias`), i * H);
      }
      layers.push({
        qkvWt: gpu.upload(transpose(qkvW, 3 * H, H), [H, 3 * H]),
        qkvB: gpu.upload(qkvB, [3 * H]),
        oWt: await upT(`${L}.attention.output.dense.weight`),
        oB: await up(`${L}.attention.output.dense.bias`),
        attnLnW: await up(`${L}.attention.output.LayerNorm.weight`),
        attnLnB: await up(`${L}.attention.output.LayerNorm.bias`),
        upWt: await upT(`${L}.intermediate.dense.weight`),
        upB: await up(`${L}.intermediate.dense.bias`),
        downWt: await upT(`${L}.output.dense.weight`),
        downB: await up(`${L}.output.dense.bias`),
        mlpLnW: await up(`${L}.output.LayerNorm.weight`),
        mlpLnB: await up(`${L}.output.LayerNorm.bias`),
      });
    } else {
      layers.push({
        qkvWt: await upT(`${L}.attention.qkv_proj.weight`),
        qkvB: await up(`${L}.attention.qkv_proj.bias`),
        oWt: await upT(`${L}.attention.o_proj.weight`),
        oB: await up(`${L}.attention.o_proj.bias`),
        attnLnW: await up(`${L}.attn_ln.weight`),
        attnLnB: await up(`${L}.attn_ln.bias`),
        upWt: await upT(`${L}.mlp.up_gate_proj.weight`),
        upB: null,
        downWt: await upT(`${L}.mlp.down_proj.weight`),
        downB: await up(`${L}.mlp.down_proj.bias`),
        mlpLnW: await up(`${L}.mlp_ln.weight`),
        mlpLnB: await up(`${L}.mlp_ln.bias`),
      });
    }
  }
  const weights: EncoderWeights = {
    word: await up('embeddings.word_embeddings.weight'),
    position: await maybe('embeddings.position_embeddings.weight'),
    tokenType: await maybe('embeddings.token_type_embeddings.weight'),
    embLnW: await up('embeddings.LayerNorm.weight'),
    embLnB: await up('embeddings.LayerNorm.bias'),
    layers,
  };
  await gpu.sync();
  return new Encoder(gpu, cfg, weights);
}

/** [rows, cols] -> [cols, rows]. */
export function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = a[r * cols + c];
  return t;
}
