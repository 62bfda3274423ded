// Model folder -> model.onnx bytes: the config, the checkpoint's float weights (F16/BF16 and
// aqa's int8 exports read back as f32, like the GPU loader does) and the pooling settings of
// the sentence-transformers files, through encoder-graph.ts. Host-neutral (ModelFiles).

import { loadConfig } from '../config.ts';
import { resolveEmbeddingSettings } from '../presets.ts';
import type { ModelFiles } from '../source.ts';
import { bindWeights, openWeights, readParam } from '../weights.ts';
import { buildEncoderModel } from './encoder-graph.ts';
import { encodeModel } from './proto.ts';

/** The largest initializer total accepted (leaving room for the graph under protobuf's 2 GiB). */
const MAX_PROTO_BYTES = 2 ** 31 - 2 ** 24;

export interface OnnxExport {
  bytes: Uint8Array;
  pooling: 'cls' | 'mean';
  normalize: boolean;
  /** Parameters written as initializers. */
  params: number;
}

export async function exportOnnx(files: ModelFiles, modelName: string, producer?: { name: string; version: string }): Promise<OnnxExport> {
  const cfg = await loadConfig(files);
  const bound = bindWeights(cfg, await openWeights(files));
  // A protobuf message is at most 2 GiB; bigger models need ONNX external data, not written here.
  const bytes = [...bound.params.values()].reduce((n, p) => n + 4 * p.spec.shape.reduce((a, b) => a * b, 1), 0);
  if (bytes > MAX_PROTO_BYTES) throw new Error(`${files.name}: ${(bytes / 2 ** 30).toFixed(2)} GiB of f32 weights is beyond the 2 GiB an ONNX file can hold without external data, which this export does not write`);
  const host = new Map<string, Float32Array>();
  for (const [name, p] of bound.params) host.set(name, await readParam(p));
  const settings = await resolveEmbeddingSettings(files, modelName);
  const head = { pooling: settings.pooling, normalize: settings.normalize };
  const model = buildEncoderModel(cfg, (n) => host.get(n) ?? null, {
    ...head,
    ...(producer ? { producer } : {}),
    doc: `${modelName}: ${cfg.arch} encoder, ${head.pooling} pooling${head.normalize ? ', L2-normalised' : ''}`,
  });
  const params = [...host.values()].reduce((n, t) => n + t.length, 0);
  return { bytes: encodeModel(model), ...head, params };
}
