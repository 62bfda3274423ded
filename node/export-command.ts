// `aqa export`: a model folder rewritten with its floating-point weights stored as f16, half
// the download for the browser demo (which loads F16 weights as they are) and for any Hugging
// Face or sentence-transformers loader. Every other file (config, tokenizer, pooling settings)
// is copied unchanged; sharded checkpoints come out as one model.safetensors; tensors that are
// not floats (e.g. position_ids buffers) keep their dtype. A weight that f16 cannot hold
// (beyond +-65504, or not finite) is refused, naming the tensor: nothing is written then.
// The folder is written under a temporary name and renamed into place when complete.
//
// --dtype int8 stores the Linear (matmul) weights of the architecture table as per-output-channel
// symmetric int8 with an F32 `<name>_scale` beside each (core/model/quantize.ts), everything else
// as with f16, and records the scheme under "quantization_config" in config.json. Our loader (CLI
// and demo) dequantizes it on the host; it is not a format Hugging Face loaders read.

import type { Command } from 'commander';
import type { TensorToWrite } from '../core/model/safetensors.ts';

export interface ExportOptions {
  model: string;
  out: string;
  dtype: ExportDType;
}

export type ExportDType = 'f16' | 'int8';
const DTYPES: readonly ExportDType[] = ['f16', 'int8'];

const WEIGHT_FILES = /^model(-\d+-of-\d+)?\.safetensors$|^model\.safetensors\.index\.json$/;

export async function runExport(o: ExportOptions): Promise<{ tensors: number; bytesIn: number; bytesOut: number }> {
  const [{ readdir, readFile, stat, writeFile }, { join }, { resolveModelDir }, files, weights, st, half, quant, config] = await Promise.all([
    import('node:fs/promises'),
    import('node:path'),
    import('./command-model.ts'),
    import('./files.ts'),
    import('../core/model/weights.ts'),
    import('../core/model/safetensors.ts'),
    import('../core/gpu/half.ts'),
    import('../core/model/quantize.ts'),
    import('../core/model/config.ts'),
  ]);
  const existing = await readdir(o.out).catch(() => null);
  if (existing && existing.length) throw new Error(`--out ${o.out}: folder exists and is not empty; choose a new folder`);
  const dir = await resolveModelDir(o.model);
  const modelFiles = files.localModelFiles(dir);
  const ws = await weights.openWeights(modelFiles);
  const already = weights.quantizedTensor(ws);
  if (already) throw new Error(`${already} is int8 already: export from the original (float) model folder`);
  // int8: the stored names of the architecture's Linear weights (prefixes resolved by the binder).
  let int8 = new Set<string>();
  if (o.dtype === 'int8') {
    const cfg = await config.loadConfig(modelFiles);
    const bound = weights.bindWeights(cfg, ws);
    int8 = new Set(quant.linearWeightNames(cfg).map((n) => bound.params.get(n)!.stored));
  }

  // Convert everything in memory first: a refused tensor leaves nothing on disk.
  const out: Record<string, TensorToWrite> = {};
  let bytesIn = 0;
  for (const [name, { file, info }] of ws.tensors) {
    bytesIn += info.end - info.start;
    if (info.dtype === 'F32' || info.dtype === 'F16' || info.dtype === 'BF16' || info.dtype === 'F64') {
      const { data, shape } = await st.readTensor(file, name);
      if (int8.has(name)) {
        const bad = data.findIndex((v) => !Number.isFinite(v));
        if (bad >= 0) throw new Error(`${file.name}: ${name}: element ${bad} is ${data[bad]}; weights must be finite to quantize`);
        const { q, scale } = quant.quantizeRows(data, shape[0]);
        out[name] = { dtype: 'I8', shape, data: q };
        out[quant.scaleName(name)] = { dtype: 'F32', shape: [shape[0]], data: scale };
        continue;
      }
      for (let i = 0; i < data.length; i++) {
        const v = data[i];
        if (!Number.isFinite(v) || Math.abs(v) > 65504) throw new Error(`${file.name}: ${name}: element ${i} is ${v}, which f16 cannot hold; export it as is`);
      }
      out[name] = { dtype: 'F16', shape, data: half.toHalf(data) };
    } else {
      const { info: i2, bytes } = await st.readTensorBytes(file, name);
      out[name] = { dtype: i2.dtype, shape: i2.shape.slice(), data: bytes };
    }
  }

  await files.writeModelFolderAtomic(dir, o.out, WEIGHT_FILES, async (tmp) => {
    if (o.dtype === 'int8') {
      const cfg = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
      cfg.quantization_config = quant.int8QuantizationConfig([...int8]);
      await writeFile(join(tmp, 'config.json'), JSON.stringify(cfg, null, 2) + '\n');
    }
    await files.writeSafetensorsFile(join(tmp, 'model.safetensors'), out, { format: 'pt' });
  });
  const bytesOut = (await stat(join(o.out, 'model.safetensors'))).size;
  return { tensors: Object.keys(out).length, bytesIn, bytesOut };
}

export type ExportFormat = 'safetensors' | 'onnx';
const FORMATS: readonly ExportFormat[] = ['safetensors', 'onnx'];

/** Add `export` to the `aqa` program. */
export function registerExportCommand(program: Command): void {
  program
    .command('export')
    .description('write a copy of a model folder with its float weights stored as f16 (half the download; the demo and Hugging Face loaders read it), or its matmul weights as per-channel int8 (the demo and aqa read it); or, with --format onnx, as an ONNX graph (onnx/model.onnx) for onnxruntime and transformers.js')
    .requiredOption('--model <dir|hub-id>', 'model folder or Hugging Face Hub id')
    .requiredOption('--out <dir>', 'new folder to write (must not exist, or be empty)')
    .option('--format <format>', 'safetensors: the weights at --dtype; onnx: onnx/model.onnx (f32 weights, outputs last_hidden_state and the pooled, normalised sentence_embedding) beside the tokenizer and config files', 'safetensors')
    .option('--dtype <type>', 'safetensors only. f16: every float weight as f16; int8: Linear weights as per-output-channel symmetric int8 with f32 scales, the rest f16', 'f16')
    .action(async (opts: { model: string; out: string; dtype: string; format: string }, cmd: Command) => {
      if (!(FORMATS as readonly string[]).includes(opts.format)) throw new Error(`--format: '${opts.format}' is not supported (${FORMATS.join(', ')})`);
      const mib = (n: number) => (n / 2 ** 20).toFixed(2);
      if (opts.format === 'onnx') {
        if (cmd.getOptionValueSource('dtype') !== 'default') throw new Error('--dtype applies to --format safetensors only; the ONNX graph stores f32 weights');
        const { runOnnxExport } = await import('./onnx/export.ts');
        const r = await runOnnxExport({ model: opts.model, out: opts.out });
        console.error(`wrote ${opts.out}/onnx/model.onnx: ${r.params} parameters, ${mib(r.bytes)} MiB, ${r.pooling} pooling${r.normalize ? ', normalised' : ''}`);
        return;
      }
      if (!(DTYPES as readonly string[]).includes(opts.dtype)) throw new Error(`--dtype: '${opts.dtype}' is not supported (${DTYPES.join(', ')})`);
      const r = await runExport({ model: opts.model, out: opts.out, dtype: opts.dtype as ExportDType });
      console.error(`wrote ${opts.out}: ${r.tensors} tensors, ${mib(r.bytesOut)} MiB (was ${mib(r.bytesIn)} MiB of tensor data)`);
    });
}
