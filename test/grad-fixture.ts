// Whole-model gradients of a golden fixture's loss, host-neutral (no node:* imports) so the
// same function can run on Dawn and in Chromium.
//
// The fixtures (test/fixtures/gte-dev from the official GTE code, test/fixtures/tiny-bert from
// Hugging Face BertModel) define
//   loss      = sum_b dot(normalize(cls_b),  R_b)        (grad.*)
//   loss_mean = sum_b dot(normalize(mean_b), S_b)        (grad_mean.*, tiny-bert only)
//   loss_drop = loss with hidden dropout at fixed masks   (grad_drop.*, tiny-bert only)
// so dL/d(normalised embedding) = R (or S): that is the dout fed to the L2-normalise backward.

import type { Gpu } from '../core/gpu/device.ts';
import { loadEncoder } from '../core/model/load.ts';
import { type HostTensor, toHfTensors } from '../core/model/params.ts';
import { headBackward, headForward } from '../core/model/pooling.ts';
import { parseSafetensorsHeader, readInt64Tensor, readTensor } from '../core/model/safetensors.ts';
import type { ModelFiles } from '../core/model/source.ts';
import type { DropoutSpec } from '../core/ref/dropout.ts';

export interface FixtureGrads {
  loss: number;
  /** Parameter gradients under Hugging Face names (Linear weights [out, in]). */
  grads: Map<string, HostTensor>;
}

export async function fixtureGrads(gpu: Gpu, files: ModelFiles, pooling: 'cls' | 'mean', dropout?: DropoutSpec): Promise<FixtureGrads> {
  const enc = await loadEncoder(gpu, files);
  const src = await files.file('golden.safetensors');
  if (!src) throw new Error(`${files.name}/golden.safetensors is missing`);
  const g = await parseSafetensorsHeader(src);
  const ids64 = await readInt64Tensor(g, 'input_ids');
  const [B, L] = ids64.shape;
  const ids = Uint32Array.from(ids64.data, Number);
  const mask = Uint32Array.from((await readInt64Tensor(g, 'attention_mask')).data, Number);
  const types = Uint32Array.from((await readInt64Tensor(g, 'token_type_ids')).data, Number);
  const weights = (await readTensor(g, pooling === 'cls' ? 'R' : 'S')).data;
  const H = enc.config.hiddenSize;

  const tMask = gpu.upload(mask, [B, L], 'u32');
  const input = { ids: gpu.upload(ids, [B, L], 'u32'), mask: tMask, typeIds: gpu.upload(types, [B, L], 'u32'), batch: B, seqLen: L };
  const { last, saved } = enc.forwardTrain(input, { ids, typeIds: types }, { dropout });

  const { emb, saved: head } = headForward(gpu, last, tMask, { pooling, normalize: true }, true);
  const e = await gpu.readF32(emb);
  let loss = 0;
  for (let i = 0; i < e.length; i++) loss += e[i] * weights[i];

  const dEmb = gpu.upload(weights, [B, H]);
  const dLast = headBackward(gpu, head!, dEmb);
  const grads = enc.zeroGrads();
  enc.backward(saved, dLast, grads);
  const out = await toHfTensors(gpu, enc.config, grads);
  enc.dispose();
  return { loss, grads: out };
}
