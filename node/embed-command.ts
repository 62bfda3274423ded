// `aqa embed`: texts from a .txt or .jsonl file -> an .npy matrix [N, dim] plus a JSON sidecar
// that records the model and the settings used (pooling, normalisation, prefix, max length).

//
// Registered on every start of the CLI: the model code, the GPU and the progress bar load inside
// runEmbed only.

import { readFile } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { type Command, Option } from 'commander';
import { gpuOptions, positiveInt } from './cli-options.ts';
import type { NodeGpuOptions } from './device.ts';
import type { NpyDType } from './npy.ts';
import { engineOption } from './onnx/engine-option.ts';
import { type PrecisionChoice, precisionOption } from './precision-option.ts';

export interface EmbedCommandOptions {
  model: string;
  input: string;
  out: string;
  field: string;
  query: boolean;
  maxLength?: number;
  batchSize: number;
  dtype: NpyDType;
  /** Storage type the model runs in (default f32). */
  precision?: PrecisionChoice;
  /** webgpu (default) or onnx: the folder's onnx/model.onnx on onnxruntime-node's CPU provider. */
  engine?: 'webgpu' | 'onnx';
  gpu: NodeGpuOptions;
}

/** One-line user error: file, line and field. */
export class InputError extends Error {
  override name = 'InputError';
}

export interface InputTexts {
  texts: string[];
  warnings: string[];
}

/**
 * .txt: one text per line (a final newline does not add an empty text). .jsonl: one JSON
 * object per line with a string field. Invalid UTF-8 is replaced with U+FFFD and reported.
 * Empty texts are kept (the caller says what it does with them).
 */
export async function readInputTexts(path: string, field = 'text'): Promise<InputTexts> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new InputError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const warnings: string[] = [];
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  const lines = text.split(/\r?\n/);
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  const badLine = lines.findIndex((l) => l.includes('\uFFFD'));
  if (badLine >= 0) {
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      warnings.push(`${path}:${badLine + 1}: invalid UTF-8 replaced with U+FFFD (first of possibly several lines)`);
    }
  }
  const ext = extname(path).toLowerCase();
  let texts: string[];
  if (ext === '.jsonl' || ext === '.ndjson') {
    texts = [];
    lines.forEach((line, i) => {
      if (line.trim() === '') return; // blank lines in JSONL carry no record
      let obj: unknown;
      try {
        obj = JSON.parse(line);
      } catch (e) {
        throw new InputError(`${path}:${i + 1}: malformed JSON (${(e as Error).message})`);
      }
      if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new InputError(`${path}:${i + 1}: expected a JSON object`);
      const v = (obj as Record<string, unknown>)[field];
      if (typeof v !== 'string') {
        throw new InputError(`${path}:${i + 1}: field '${field}' is ${v === undefined ? 'missing' : `a ${v === null ? 'null' : typeof v}, not a string`} (choose it with --field)`);
      }
      texts.push(v);
    });
  } else if (ext === '.txt' || ext === '') {
    texts = lines;
  } else {
    throw new InputError(`${path}: unsupported input type '${ext}' (use .txt with one text per line, or .jsonl)`);
  }
  return { texts, warnings };
}

export async function runEmbed(o: EmbedCommandOptions): Promise<void> {
  const { texts, warnings } = await readInputTexts(o.input, o.field);
  if (!texts.length) throw new InputError(`${o.input}: no texts to embed`);
  const empty = texts.filter((t) => t.trim() === '').length;
  if (empty) warnings.push(`${o.input}: ${empty} empty text(s); each is embedded as an empty input ([CLS] [SEP])`);
  for (const w of warnings) console.error(`warning: ${w}`);

  const [{ createNodeGpu }, { prepareOutputFolder, writeFileAtomic }, { npyBytes }, { loadModel, resolveModelDir }, { progress }, { firstNonFiniteRow }] = await Promise.all([
    import('./device.ts'),
    import('./files.ts'),
    import('./npy.ts'),
    import('./command-model.ts'),
    import('./progress.ts'),
    import('../core/retrieval/embed.ts'),
  ]);
  await prepareOutputFolder(o.out, '--out');
  const dir = await resolveModelDir(o.model);
  const { model, adapter, release } = await loadEmbedModel(o, dir, createNodeGpu, loadModel);
  const s = model.settings;
  const maxLength = o.maxLength ?? s.maxLength;
  console.error(
    `model: ${basename(dir)} (${model.config.arch}, ${model.config.numLayers} layers, dim ${model.dim}); pooling ${s.pooling}, ` +
      `normalize ${s.normalize}, max length ${maxLength}, ${o.query ? `query prefix ${JSON.stringify(s.queryPrefix)}` : 'passages'}, ${model.precision}`,
  );

  const bar = progress({ label: 'embedding', unit: 'texts', total: texts.length });
  const t0 = performance.now();
  let tokens = 0;
  const vectors = await model.embed(texts, {
    query: o.query,
    batchSize: o.batchSize,
    maxLength,
    onProgress: (p) => {
      tokens = p.tokens;
      bar.update(p.done);
    },
  });
  bar.stop();
  const secs = (performance.now() - t0) / 1000;

  const bad = firstNonFiniteRow(vectors, model.dim);
  if (bad >= 0) throw new InputError(`${o.input}: the embedding of text ${bad + 1} (${JSON.stringify(texts[bad].slice(0, 40))}) is not finite (NaN or infinity); nothing written: check the model's weights`);
  await writeFileAtomic(o.out, npyBytes(vectors, [texts.length, model.dim], o.dtype));
  const sidecar = {
    format: 'npy',
    dtype: o.dtype === 'f32' ? 'float32' : 'float16',
    shape: [texts.length, model.dim],
    model: o.model,
    modelDir: dir,
    pooling: s.pooling,
    normalize: s.normalize,
    prefix: o.query ? s.queryPrefix : s.passagePrefix,
    maxLength,
    precision: model.precision,
    input: o.input,
    count: texts.length,
    tokens,
    seconds: Number(secs.toFixed(3)),
    adapter,
    created: new Date().toISOString(),
  };
  await writeFileAtomic(`${o.out.replace(/\.npy$/, '')}.json`, JSON.stringify(sidecar, null, 2) + '\n');
  console.error(`wrote ${o.out} [${texts.length}, ${model.dim}] ${o.dtype} in ${secs.toFixed(1)} s (${Math.round(tokens / secs)} tokens/s)`);
  model.dispose();
  release();
}

/** The model on the engine asked for, the adapter name to record, and what frees them. */
async function loadEmbedModel(
  o: EmbedCommandOptions,
  dir: string,
  createNodeGpu: typeof import('./device.ts').createNodeGpu,
  loadModel: typeof import('./command-model.ts').loadModel,
) {
  const engine = await import('./onnx/engine.ts');
  if (o.engine === 'onnx') {
    if (o.precision === 'f16') console.error('warning: --engine onnx runs in f32; --precision f16 is ignored');
    console.error(`engine: ${engine.ONNX_ADAPTER_NAME}`);
    return { model: await engine.loadOnnxModel(dir, o.model), adapter: engine.ONNX_ADAPTER_NAME, release: () => {} };
  }
  const gpu = await createNodeGpu(o.gpu);
  console.error(`adapter: ${gpu.name}`);
  engine.noteCpuAdapter(gpu);
  const model = await loadModel(gpu, dir, o.model, o.precision ?? 'f32');
  return { model, adapter: gpu.name, release: () => gpu.destroy() };
}

export function registerEmbedCommand(program: Command): void {
  program
    .command('embed')
    .description('embed texts with a Hugging Face embedding model (BERT or GTE v1.5)')
    .requiredOption('--model <dir|hub-id>', 'local model folder or Hugging Face Hub id')
    .requiredOption('--input <file>', '.txt (one text per line) or .jsonl (field --field, default "text")')
    .requiredOption('--out <file>', 'output .npy (float32 [N, dim]); a .json sidecar with the settings is written beside it')
    .option('--field <name>', 'JSONL field holding the text', 'text')
    .option('--query', 'treat inputs as queries (adds the model\'s query prefix, if any)', false)
    .option('--max-length <n>', 'max tokens per text (default: the model\'s)', positiveInt)
    .option('--batch-size <n>', 'texts per GPU batch', positiveInt, 32)
    .addOption(new Option('--dtype <t>', 'output dtype').choices(['f32', 'f16']).default('f32'))
    .addOption(precisionOption())
    .addOption(engineOption())
    .action(async (opts) => {
      await runEmbed({ ...opts, gpu: gpuOptions(program) });
    });
}
