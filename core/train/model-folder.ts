// The fine-tuned model folder, host-neutral: the files `aqa train` writes into checkpoint-<step>/
// and, at the end, into its output folder (Hugging Face config and tokenizer files copied from
// the base model, the sentence-transformers module files, model.safetensors with the trained
// weights plus the base model's tensors the encoder does not use, and for a checkpoint the AdamW
// moments and trainer state). node/train-run.ts writes these to disk; the training page keeps
// checkpoints in OPFS and exports the final folder as a zip or into a picked folder. One
// definition, so a model trained in a tab has `aqa train`'s layout file for file.

import { parseSafetensorsHeader, readTensor, type TensorToWrite, serializeSafetensors } from '../model/safetensors.ts';
import type { ModelFiles } from '../model/source.ts';
import { toHfTensors } from '../model/params.ts';
import { withoutWeightPrefix } from '../model/weights.ts';
import { sentenceTransformersFiles, type TrainerState } from './session.ts';
import type { Trainer } from './trainer.ts';

/** Files of the base model folder that the fine-tuned folder copies unchanged (when present). */
export const COPIED_MODEL_FILES = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.txt', 'config_sentence_transformers.json'] as const;

/** A model folder in memory: relative path -> bytes or UTF-8 text. */
export type ModelFolderFiles = Record<string, Uint8Array | string>;

/**
 * Tensors of the base model that the encoder does not use (BERT's pooler), unchanged, so loaders
 * do not warn about freshly initialised weights. A sharded or absent model.safetensors has
 * nothing to carry over.
 */
export async function unusedBaseTensors(base: ModelFiles, used: Map<string, unknown>): Promise<Map<string, { data: Float32Array; shape: number[] }>> {
  const out = new Map<string, { data: Float32Array; shape: number[] }>();
  let f;
  try {
    const src = await base.file('model.safetensors');
    if (!src) return out;
    f = await parseSafetensorsHeader(src);
  } catch {
    return out;
  }
  for (const [name, info] of f.tensors) {
    const plain = withoutWeightPrefix(name);
    if (used.has(plain) || !plain.startsWith('pooler.') || !['F32', 'F16', 'BF16'].includes(info.dtype)) continue;
    out.set(plain, await readTensor(f, name));
  }
  return out;
}

/** model.safetensors' tensors: the trainer's current weights in Hugging Face names, plus the carried-over ones. */
export async function modelTensors(trainer: Trainer, base: ModelFiles): Promise<Record<string, TensorToWrite>> {
  const { model, gpu } = trainer;
  const weights = await toHfTensors(gpu, model.config, model.encoder.weights);
  for (const [name, t] of await unusedBaseTensors(base, weights)) weights.set(name, t);
  return Object.fromEntries([...weights].map(([k, t]) => [k, { dtype: 'F32' as const, shape: t.shape, data: t.data }]));
}

/** optimizer.safetensors' tensors: the AdamW moments, flat. */
export async function optimizerTensors(trainer: Trainer): Promise<Record<string, TensorToWrite>> {
  const opt = await trainer.optimizerState();
  return Object.fromEntries([...opt].map(([k, d]) => [k, { dtype: 'F32' as const, shape: [d.length], data: d }]));
}

/** The sentence-transformers files (modules.json, 1_Pooling/config.json, sentence_bert_config.json) of the trainer's model. */
export function trainedSentenceTransformersFiles(trainer: Trainer): Record<string, string> {
  const { model } = trainer;
  return sentenceTransformersFiles(model.dim, model.settings.pooling, model.settings.normalize, trainer.s.passageMaxLen);
}

/** Folders the model folder has even when empty (sentence-transformers looks for 2_Normalize). */
export function modelFolderDirs(trainer: Trainer): string[] {
  return trainer.model.settings.normalize ? ['1_Pooling', '2_Normalize'] : ['1_Pooling'];
}

/**
 * The whole folder in memory, as `aqa train` writes it: with `state`, a checkpoint (adds
 * optimizer.safetensors and trainer_state.json); without, the final model. Copied files keep
 * the base model's bytes.
 */
export async function modelFolderFiles(trainer: Trainer, base: ModelFiles, state?: TrainerState): Promise<ModelFolderFiles> {
  const out: ModelFolderFiles = {};
  for (const f of COPIED_MODEL_FILES) {
    const src = await base.file(f);
    if (src) out[f] = await src.read(0, src.size);
  }
  Object.assign(out, trainedSentenceTransformersFiles(trainer));
  out['model.safetensors'] = serializeSafetensors(await modelTensors(trainer, base), { format: 'pt' });
  if (state) {
    out['optimizer.safetensors'] = serializeSafetensors(await optimizerTensors(trainer));
    out['trainer_state.json'] = JSON.stringify(state, null, 2);
  }
  return out;
}
