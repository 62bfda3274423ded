// `aqa index`: embed a corpus into an on-disk index (resumable shards; node/index-store.ts).
// Data problems are one line naming the file and line (core/data readers); index problems name
// the index directory.
//
// node/cli.ts imports this file on every start to register the command, so the modules the
// action needs (model loader, GPU, progress) load inside runIndex only: importing them
// eagerly added about a second to `aqa --help` on the 2-core test machine.

import { basename } from 'node:path';
import { type Command, Option } from 'commander';
import type { Gpu } from '../core/gpu/device.ts';
import type { VectorDType } from '../core/retrieval/index-format.ts';
import { gpuOptions, positiveInt } from './cli-options.ts';
import type { NodeGpuOptions } from './device.ts';
import { addLanceIndexOptions, type LanceIndexOptions } from './lancedb/options.ts';
import { engineOption } from './onnx/engine-option.ts';
import { type PrecisionChoice, precisionOption } from './precision-option.ts';
import type { Progress } from './progress.ts';
import { parseShardSpec, resolveShard, type ShardSpec } from './shard-option.ts';

/** Crash simulation for tests: kill the process (no cleanup runs) after this many shards. */
export const STOP_AFTER_ENV = 'AQA_INDEX_STOP_AFTER_SHARDS';

export interface IndexCommandOptions extends Partial<LanceIndexOptions> {
  model: string;
  corpus: string;
  out: string;
  dtype: VectorDType;
  /** Storage type the model runs in (default f32); recorded in the index identity. */
  precision?: PrecisionChoice;
  maxLength?: number;
  batchSize: number;
  shardSize: number;
  export?: string;
  /** Source and licences of the corpus, written into the export for the demo page to show. */
  credit?: string;
  force: boolean;
  /** Build only part i of n (node/shard-option.ts). */
  shard?: ShardSpec;
  /** webgpu (default) or onnx (onnx/model.onnx on the CPU; f32). */
  engine?: 'webgpu' | 'onnx';
  /** Also store this compressed form (made from the stored vectors) and make it the default. */
  quantize?: 'int8' | 'binary';
  /** With quantize: candidates per result that search rescores exactly (default: 4 int8, 10 binary). */
  rescore?: number;
  gpu: NodeGpuOptions;
}

export async function runIndex(o: IndexCommandOptions): Promise<void> {
  const [store, device, format, { info, warn, loadModel, resolveModelDir }, { progress, rate }, { devicePrecision }] = await Promise.all([
    import('./index-store.ts'),
    import('./device.ts'),
    import('../core/retrieval/index-format.ts'),
    import('./command-model.ts'),
    import('./progress.ts'),
    import('../core/retrieval/embed.ts'),
  ]);
  const part = o.shard && resolveShard(o.shard, process.env, warn);
  if (part && o.export) throw new Error(`--export needs the whole index: merge the parts (aqa index merge <dirs...> --out <dir> --export ${o.export})`);
  const dir = await resolveModelDir(o.model);
  const m = await store.describeModel(dir, o.model, o.maxLength);
  const s = m.settings;
  info(`model: ${basename(dir)} (${m.arch}, dim ${m.dim}); pooling ${s.pooling}, normalize ${s.normalize}, max length ${m.maxLength}, ${o.dtype}, shards of ${o.shardSize}`);
  const stopAfter = process.env[STOP_AFTER_ENV] ? Number(process.env[STOP_AFTER_ENV]) : undefined;

  let gpu: Gpu | null = null;
  let bar: Progress | null = null;
  let built = 0;
  const openGpu = async (): Promise<Gpu> => {
    if (gpu) return gpu;
    const g = await device.createNodeGpu(o.gpu);
    info(`adapter: ${g.name}`);
    (await import('./onnx/engine.ts')).noteCpuAdapter(g);
    return (gpu = g);
  };
  try {
    // The identity records the precision the vectors are made in, so an f16 build asks the
    // adapter first (an f16 index built in f32 would be mislabelled); f32 needs no GPU until a
    // shard is missing.
    let precision: PrecisionChoice = o.precision ?? 'f32';
    const onnx = o.engine === 'onnx';
    if (onnx && precision === 'f16') {
      warn('--engine onnx runs in f32; --precision f16 is ignored');
      precision = 'f32';
    }
    if (precision === 'f16') {
      const d = devicePrecision(await openGpu(), 'f16');
      if (d.warning) warn(d.warning);
      precision = d.precision;
    }
    const r = await store.buildIndex({
      out: o.out,
      corpus: o.corpus,
      model: m,
      dtype: o.dtype,
      precision,
      batchSize: o.batchSize,
      shardSize: o.shardSize,
      force: o.force,
      part,
      log: info,
      // Both engines give the same vectors within 1e-5 (test/engine-onnx.test.ts), far below f16
      // rounding, so the engine is not part of the index identity: either engine resumes or
      // searches an index the other built.
      loadModel: async () => (onnx ? (await import('./onnx/engine.ts')).loadOnnxModel(m.dir, m.name) : loadModel(await openGpu(), m.dir, m.name, precision)),
      onProgress: (p) => {
        bar ??= progress({ label: 'indexing', unit: 'passages', total: p.total, start: p.done - p.embedded });
        bar.update(p.done, `shard ${p.shard + 1}/${p.shards}`);
      },
      onShard: (e, i, n) => {
        built++;
        // A line per shard too when stderr is not a terminal.
        if (!process.stderr.isTTY) info(`shard ${i + 1}/${n}: ${e.rows} passages in ${e.seconds.toFixed(1)} s (${rate(e.rows, e.seconds)} passages/s)`);
        if (stopAfter !== undefined && built >= stopAfter) process.kill(process.pid, 'SIGKILL');
      },
    });
    (bar as Progress | null)?.stop();
    const st = r.corpusStats;
    if (st.duplicates) warn(`${o.corpus}: ${st.duplicates} duplicate pid(s); the first entry of each is indexed`);
    if (st.empty) warn(`${o.corpus}: ${st.empty} paper(s) with no title and no abstract (indexed as empty passages)`);
    const id = r.manifest.identity;
    const p = r.manifest.part;
    const total = p ? p.endShard - p.firstShard : format.shardCount(id.count, id.shardSize);
    if (p) info(`part ${p.index} of ${p.of}: shards [${p.firstShard}, ${p.endShard}) of ${format.shardCount(id.count, id.shardSize)}`);
    if (r.built) {
      info(`indexed ${r.embedded} passages in ${r.seconds.toFixed(1)} s (${rate(r.embedded, r.seconds)} passages/s); ${r.kept + r.built}/${total} shards in ${o.out}`);
    } else {
      info(`${o.out}: up to date (${total} shards, ${p ? `part ${p.index} of ${p.of} of ` : ''}${id.count} passages)`);
    }
    if (o.quantize) {
      const { quantizeIndex } = await import('./index-quantize.ts');
      const t0 = performance.now();
      const q = await quantizeIndex(await store.openIndex(o.out), o.quantize, o.rescore, info);
      const bytes = q.form.files.reduce((n, f) => n + f.bytes, 0);
      info(q.built ? `${o.quantize} form: ${q.form.files.length} file(s), ${bytes} bytes in ${((performance.now() - t0) / 1000).toFixed(1)} s (rescore x${q.form.rescore})` : `${o.quantize} form: up to date (rescore x${q.form.rescore})`);
    }
    if (o.export) {
      const idx = await store.openIndex(o.out);
      const e = await store.exportIndex(idx, o.export, o.corpus, { credit: o.credit });
      if (e.missing) warn(`${e.missing} indexed pid(s) not found in ${o.corpus}: exported without title or snippet`);
      info(`exported ${id.count} x ${id.dim} ${id.dtype} to ${o.export}`);
    }
    if (o.exportLancedb) {
      const { exportIndexToLance } = await import('./lancedb/commands.ts');
      await exportIndexToLance(o.out, o.corpus, o.exportLancedb, o.lancedbTable ?? 'passages', o.lancedbAnn, info);
    }
  } finally {
    (bar as Progress | null)?.stop();
    (gpu as Gpu | null)?.destroy();
  }
}

export function registerIndexCommand(program: Command): void {
  const index = program
    .command('index')
    .description('embed a corpus into an on-disk index (shards; an interrupted build resumes where it stopped)')
    // Required, but checked in the action: commander would demand them of `index merge` too.
    .option('--model <dir|hub-id>', 'local model folder or Hugging Face Hub id (required)')
    .option('--corpus <file>', 'AQA corpus JSON {pid: {title, abstract}} (pid_to_title_abs*.json) (required)')
    .option('--out <dir>', 'index directory (manifest.json, pids.json, shard-NNNNN.f16) (required)')
    .addOption(new Option('--dtype <t>', 'stored vector type').choices(['f16', 'f32']).default('f16'))
    .addOption(precisionOption())
    .option('--max-length <n>', "max tokens per passage (default: the model's)", positiveInt)
    .option('--batch-size <n>', 'passages per GPU batch', positiveInt, 32)
    .option('--shard-size <n>', 'passages per shard file', positiveInt, 50_000)
    .option('--export <dir>', 'also write the browser format (vectors, manifest.json, passages.json) to this folder')
    .option('--credit <text>', "with --export: where the corpus comes from and its licences, shown on the demo page")
    .addOption(new Option('--quantize <form>', 'also store a compressed form of the vectors and search it by default (added to a finished index without re-embedding)').choices(['int8', 'binary']))
    .option('--rescore <n>', 'with --quantize: candidates per result that search rescores with the full vectors (default: 4 int8, 10 binary)', positiveInt)
    .option('--force', 'rebuild an index that was built with another model or settings', false)
    .option('--shard <i/n>', 'build part i of n (0 <= i < n) for a multi-machine build: whole shard files by position; auto/n takes i from JOB_COMPLETION_INDEX (Kubernetes Indexed Job); join the parts with aqa index merge', parseShardSpec)
    .addOption(engineOption());
  addLanceIndexOptions(index)
    .action(async (opts) => {
      for (const k of ['model', 'corpus', 'out']) if (!opts[k]) throw new Error(`--${k} is required (see aqa index --help)`);
      await runIndex({ ...opts, gpu: gpuOptions(program) });
    });
  // Commander gives the options anywhere after `index` to `index` itself, so merge's --out,
  // --export, --corpus and --credit are the ones declared above, read with optsWithGlobals().
  index
    .command('merge')
    .description('join the parts of aqa index --shard i/n into one index, byte for byte what one machine builds')
    .usage('<dirs...> --out <dir> [--export <dir> [--corpus <file>] [--credit <text>]]')
    .argument('<dirs...>', 'the part directories (one per part, any order)')
    .addHelpText('after', MERGE_HELP)
    .action(async (dirs: string[], _opts, cmd: Command) => {
      const { out, export: exp, corpus, credit } = cmd.optsWithGlobals<{ out?: string; export?: string; corpus?: string; credit?: string }>();
      if (!out) throw new Error('index merge: --out <dir> is required (the merged index directory)');
      await (await import('./index-merge.ts')).runIndexMerge(dirs, { out, export: exp, corpus, credit });
    });
}

const MERGE_HELP = `
Options:
  --out <dir>      the merged index directory (must not exist, or be empty)
  --export <dir>   also write the browser format, as aqa index --export does
  --corpus <file>  with --export: the corpus for titles and snippets (default: the file the parts recorded)
  --credit <text>  with --export: where the corpus comes from and its licences`;
