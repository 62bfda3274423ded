// Every tensor the encoder needs, under its canonical Hugging Face name (BertModel / NewModel,
// no prefix), and the matching of those names against what a checkpoint actually stores.
//
// Checkpoints differ in spelling, not content: saved from BertForMaskedLM they carry `bert.`,
// some exports use `model.` or GTE's `new.` base prefix, and TF-era BERT files name LayerNorm
// parameters gamma/beta. resolveWeightName tries those spellings in a fixed order; nothing is
// matched by guesswork beyond that.
//
// Linear weights are [out, in] as stored by torch.nn.Linear. Which tensors a family has comes
// from its table in architectures.ts.

import { architectureOf, layerPrefix } from './architectures.ts';
import type { EncoderConfig } from './config.ts';
import { dequantizeRows, scaleName } from './quantize.ts';
import { closestNames, expectTensorShape, parseSafetensorsHeader, readTensor, readTensorBytes, SafetensorsError, type SafetensorsFile, type TensorInfo } from './safetensors.ts';
import { type ModelFiles, readJson } from './source.ts';

export interface ParamSpec {
  /** Canonical name, e.g. `encoder.layer.3.attention.self.query.weight`. */
  name: string;
  shape: number[];
  /** May be absent from the checkpoint (GTE token_type_embeddings); the encoder then skips it. */
  optional?: boolean;
}

/**
 * The encoder's parameters in our layout's order (embeddings, then layer 0..L-1; see
 * architectures.ts), under their canonical names and Hugging Face shapes. Pooler weights are not used.
 */
export function paramSpecs(cfg: EncoderConfig): ParamSpec[] {
  const arch = architectureOf(cfg);
  const specs: ParamSpec[] = [];
  const p = (name: string, shape: number[], optional = false) => specs.push(optional ? { name, shape, optional } : { name, shape });
  for (const e of arch.embeddings) {
    const shape = e.shape(cfg);
    if (shape) p(e.hf, shape, e.optional);
  }
  for (let l = 0; l < cfg.numLayers; l++) {
    for (const m of arch.layer) {
      for (const part of m.hf) {
        const name = `${layerPrefix(l)}.${part}`;
        const shape = m.shape(cfg);
        p(`${name}.weight`, shape);
        if (m.hasBias) p(`${name}.bias`, [shape[0]]);
      }
    }
  }
  return specs;
}

/** Base-model prefixes seen in checkpoints, tried after the bare name. */
export const WEIGHT_PREFIXES = ['bert.', 'model.', 'new.'] as const;

const NORM_PARAM = /(LayerNorm|_ln)\.(weight|bias)$/;

/** `name` without a base-model prefix ('bert.pooler.dense.weight' -> 'pooler.dense.weight'). */
export function withoutWeightPrefix(name: string): string {
  const p = WEIGHT_PREFIXES.find((x) => name.startsWith(x));
  return p ? name.slice(p.length) : name;
}

/** The spellings a canonical name may have in a checkpoint, in the order they are tried. */
export function weightNameCandidates(canonical: string): string[] {
  const bases = [canonical];
  const m = NORM_PARAM.exec(canonical);
  if (m) bases.push(canonical.slice(0, m.index + m[1].length) + (m[2] === 'weight' ? '.gamma' : '.beta'));
  const out = [...bases];
  for (const prefix of WEIGHT_PREFIXES) for (const b of bases) out.push(prefix + b);
  return out;
}

/** The stored name for `canonical`, or null when no known spelling is present. */
export function resolveWeightName(canonical: string, available: Set<string>): string | null {
  for (const c of weightNameCandidates(canonical)) if (available.has(c)) return c;
  return null;
}

// ----- a model's weight files -----

/** One or more safetensors files (sharded checkpoints) seen as one set of tensors. */
export interface WeightSet {
  /** For messages: 'dir/model.safetensors' or 'dir/model.safetensors.index.json'. */
  name: string;
  files: SafetensorsFile[];
  /** Stored name -> its shard and header entry. */
  tensors: Map<string, { file: SafetensorsFile; info: TensorInfo }>;
}

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);

/** Shard names come from a downloaded JSON file: keep them inside the model folder. */
function safeRelativePath(p: string): boolean {
  return p.length > 0 && !p.startsWith('/') && !p.includes('\\') && !p.split('/').some((s) => s === '..' || s === '' || s === '.');
}

/**
 * Open model.safetensors, or the shards listed by model.safetensors.index.json. Only headers
 * are read. (pytorch_model.bin is a pickle; it is not supported.)
 */
export async function openWeights(files: ModelFiles): Promise<WeightSet> {
  const single = await files.file('model.safetensors');
  if (single) {
    const f = await parseSafetensorsHeader(single);
    const tensors = new Map([...f.tensors].map(([n, info]) => [n, { file: f, info }]));
    return { name: f.name, files: [f], tensors };
  }
  const indexName = `${files.name}/model.safetensors.index.json`;
  const index = await readJson(files, 'model.safetensors.index.json');
  if (index === null) {
    throw new SafetensorsError(files.name, null, 'has neither model.safetensors nor model.safetensors.index.json (only safetensors weights are supported; convert pytorch_model.bin first)');
  }
  const map = (index as { weight_map?: unknown }).weight_map;
  if (map === null || typeof map !== 'object' || Array.isArray(map)) throw new SafetensorsError(indexName, null, 'weight_map is missing or not an object');
  const byShard = new Map<string, string[]>();
  for (const [tensor, shard] of Object.entries(map as Record<string, unknown>)) {
    if (typeof shard !== 'string' || !safeRelativePath(shard)) throw new SafetensorsError(indexName, tensor, `shard ${JSON.stringify(shard)} is not a file name inside the model folder`);
    byShard.set(shard, [...(byShard.get(shard) ?? []), tensor]);
  }
  const ws: WeightSet = { name: indexName, files: [], tensors: new Map() };
  for (const [shard, names] of byShard) {
    const src = await files.file(shard);
    if (!src) throw new SafetensorsError(indexName, names[0], `shard '${shard}' is listed but not present`);
    const f = await parseSafetensorsHeader(src);
    ws.files.push(f);
    for (const n of names) {
      const info = f.tensors.get(n);
      if (!info) throw new SafetensorsError(f.name, n, `missing, although model.safetensors.index.json places it in this shard`);
      ws.tensors.set(n, { file: f, info });
    }
  }
  return ws;
}

/**
 * The first I8 tensor of `ws` (an `aqa export --dtype int8` folder) as 'file: tensor', or null.
 * Training and re-exporting refuse such a folder: they need the original float weights.
 */
export function quantizedTensor(ws: WeightSet): string | null {
  for (const [name, { file, info }] of ws.tensors) if (info.dtype === 'I8') return `${file.name}: tensor '${name}'`;
  return null;
}

export interface BoundParam {
  spec: ParamSpec;
  /** Name in the checkpoint (may carry a prefix or gamma/beta). */
  stored: string;
  file: SafetensorsFile;
  info: TensorInfo;
  /** For an I8 tensor (an int8 export, quantize.ts): its per-output-channel scale. */
  scale?: { stored: string; file: SafetensorsFile; info: TensorInfo };
}

export interface BoundWeights {
  /** Canonical name -> stored tensor, for every required and every present optional spec. */
  params: Map<string, BoundParam>;
  /** Optional specs not in the checkpoint (e.g. GTE without token_type_embeddings). */
  missingOptional: string[];
  /** Stored tensors no spec used (pooler, heads, position_ids buffers): informational. */
  unused: string[];
}

/**
 * Match paramSpecs(cfg) against a checkpoint and check every shape and dtype. Throws one
 * SafetensorsError naming the first missing or mismatched tensor (and how many more are missing).
 */
export function bindWeights(cfg: EncoderConfig, ws: WeightSet): BoundWeights {
  const available = new Set(ws.tensors.keys());
  const params = new Map<string, BoundParam>();
  const missing: ParamSpec[] = [];
  const missingOptional: string[] = [];
  for (const spec of paramSpecs(cfg)) {
    const stored = resolveWeightName(spec.name, available);
    if (stored === null) {
      if (spec.optional) missingOptional.push(spec.name);
      else missing.push(spec);
      continue;
    }
    const { file, info } = ws.tensors.get(stored)!;
    expectTensorShape(file, stored, spec.shape);
    if (info.dtype === 'I8') {
      params.set(spec.name, { spec, stored, file, info, scale: bindScale(ws, stored, spec.shape[0] ?? 1) });
      continue;
    }
    if (!FLOAT_DTYPES.has(info.dtype)) throw new SafetensorsError(file.name, stored, `dtype ${info.dtype} is not a float type`);
    params.set(spec.name, { spec, stored, file, info });
  }
  if (missing.length) {
    const first = missing[0].name;
    const close = closestNames(first, available);
    const more = missing.length > 1 ? `; ${missing.length - 1} more required tensors missing` : '';
    const hint = close.length ? `closest: ${close.map((c) => `'${c}'`).join(', ')}` : 'no tensors in checkpoint';
    throw new SafetensorsError(ws.name, first, `missing (also tried ${WEIGHT_PREFIXES.map((p) => `'${p}'`).join('/')} prefixes and gamma/beta; ${hint})${more}`);
  }
  const used = new Set([...params.values()].flatMap((b) => (b.scale ? [b.stored, b.scale.stored] : [b.stored])));
  return { params, missingOptional, unused: [...available].filter((n) => !used.has(n)) };
}

/** The F32 (or other float) [rows] scale an I8 tensor `stored` is dequantized with. */
function bindScale(ws: WeightSet, stored: string, rows: number): NonNullable<BoundParam['scale']> {
  const name = scaleName(stored);
  const t = ws.tensors.get(name);
  const weightFile = ws.tensors.get(stored)!.file.name;
  if (!t) throw new SafetensorsError(weightFile, stored, `is I8 but its per-output-channel scale '${name}' is missing (an int8 export stores both; the file is incomplete or was not written by aqa export)`);
  if (!FLOAT_DTYPES.has(t.info.dtype)) throw new SafetensorsError(t.file.name, name, `dtype ${t.info.dtype} is not a float type (the scale of I8 '${stored}')`);
  if (t.info.shape.length !== 1 || t.info.shape[0] !== rows) {
    throw new SafetensorsError(t.file.name, name, `shape [${t.info.shape.join(', ')}] does not match '${stored}', which has ${rows} output rows: expected [${rows}]`);
  }
  return { stored: name, file: t.file, info: t.info };
}

/**
 * Read one bound parameter as f32 (F16/BF16 checkpoints are converted; I8 is dequantized with
 * its scale, w = q * scale[o]). A NaN or infinity is
 * refused here, naming the tensor and file: on the GPU it would silently turn every embedding
 * into NaN. One pass over data just read is a few ms next to the read itself.
 */
export async function readParam(p: BoundParam): Promise<Float32Array> {
  const data = p.scale ? await readInt8Param(p, p.scale) : (await readTensor(p.file, p.stored, { shape: p.spec.shape })).data;
  for (let i = 0; i < data.length; i++) {
    const x = data[i];
    // x - x is 0 for every finite x and NaN for NaN and +-Infinity.
    if (x - x !== 0) throw new SafetensorsError(p.file.name, p.stored, `element ${i} is ${x} (the checkpoint is damaged or diverged in training; weights must be finite)`);
  }
  return data;
}

async function readInt8Param(p: BoundParam, s: NonNullable<BoundParam['scale']>): Promise<Float32Array> {
  const { bytes } = await readTensorBytes(p.file, p.stored, { shape: p.spec.shape });
  const q = new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const scale = (await readTensor(s.file, s.stored, { shape: s.info.shape })).data;
  return dequantizeRows(q, scale);
}
