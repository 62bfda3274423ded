// `aqa tune`: time the matmul and attention variants on a model's real shapes on this adapter,
// print every candidate's time, and store the winners where every later command finds them
// (node/tuning-cache.ts). The tuner itself is core/tune/tuner.ts.

import type { Command } from 'commander';
import { gpuOptions, positiveInt } from './cli-options.ts';
import type { NodeGpuOptions } from './device.ts';

export interface TuneCommandOptions {
  model: string;
  batch: number;
  maxLength: number;
  reps: number;
  /** Matmul operand types, comma-separated: f32,f16 (default both where the adapter has shader-f16). */
  precision?: string;
  json?: string;
}

export async function runTune(gpuOpts: NodeGpuOptions, o: TuneCommandOptions): Promise<void> {
  const [{ parsePrecisions }, { createNodeGpu }, { loadConfig }, { localModelFiles }, { resolveModelDir }, { encoderShapes }, { tune }, cache, { printTable, writeJson }] = await Promise.all([
    import('./bench/matmul.ts'),
    import('./device.ts'),
    import('../core/model/config.ts'),
    import('./files.ts'),
    import('./command-model.ts'),
    import('../core/tune/shapes.ts'),
    import('../core/tune/tuner.ts'),
    import('./tuning-cache.ts'),
    import('./bench/table.ts'),
  ]);
  const asked = o.precision ? parsePrecisions(o.precision) : undefined;
  const dir = await resolveModelDir(o.model);
  const config = await loadConfig(localModelFiles(dir));
  const gpu = await createNodeGpu(gpuOpts);
  try {
    const shapes = encoderShapes(config, o.batch, o.maxLength);
    const what = `${o.model} batch ${o.batch} x ${o.maxLength}`;
    console.error(`tuning on ${gpu.name} for ${what} (${o.reps} reps)`);
    const hasF16 = gpu.features.has('shader-f16');
    if (asked?.includes('f16') && !hasF16) console.error(`warning: ${gpu.name} lacks shader-f16: f16 matmuls not tuned`);
    const dtypes = asked?.filter((p) => p === 'f32' || hasF16);
    const result = await tune(gpu, shapes, { reps: o.reps, dtypes, onProgress: (line) => console.error(line) });
    const rows = result.ops.flatMap((op) =>
      op.candidates.map((c) => ({
        op: `${op.kind} ${op.key}`,
        shape: c.shapes.length === 1 ? c.shapes[0].shape : c.shapes.length ? `${c.shapes.length} shapes` : '-',
        candidate: c.name,
        ms: c.ok ? c.ms : null,
        gflops: c.ok ? c.flops / c.ms / 1e6 : null,
        verdict: c.ok ? 'ok' : (c.note ?? 'discarded'),
        winner: c.winner ? '*' : '',
      })),
    );
    printTable(rows, [
      { key: 'op' },
      { key: 'shape' },
      { key: 'candidate' },
      { key: 'ms', label: 'median ms', digits: 3 },
      { key: 'gflops', label: 'GFLOP/s', digits: 2 },
      { key: 'verdict' },
      { key: 'winner' },
    ]);
    console.log(`timer: ${result.timer}; median ms summed over each op's shapes (one launch each); * = winner`);
    const file = await cache.saveTuning(gpu, { timer: result.timer, reps: result.reps, shapes: what, table: result.table });
    console.log(`wrote ${file}`);
    if (o.json) writeJson(o.json, { adapter: gpu.name, model: o.model, batch: o.batch, maxLength: o.maxLength, result });
  } finally {
    gpu.destroy();
  }
}

export function registerTuneCommand(program: Command): void {
  program
    .command('tune')
    .description("time matmul and attention variants on a model's shapes and keep the fastest for this adapter (used by every command)")
    .option('--model <dir>', 'model folder or Hub id whose shapes are tuned', 'test/models/all-MiniLM-L6-v2')
    .option('--batch <n>', 'texts per batch', positiveInt, 16)
    .option('--max-length <n>', 'tokens per text', positiveInt, 128)
    .option('--reps <n>', 'measurements per candidate and shape (median kept)', positiveInt, 3)
    .option('--precision <list>', 'matmul operand types to tune, comma-separated: f32,f16 (default both where the adapter has shader-f16)')
    .option('--json <file>', 'also write every measurement as JSON')
    .action((opts: TuneCommandOptions) => runTune(gpuOptions(program), opts));
}
