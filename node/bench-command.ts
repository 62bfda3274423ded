// `aqa bench <what>`: registration only; the benchmarks (node/bench/) load when one runs.

import type { Command } from 'commander';
import { gpuOptions } from './cli-options.ts';

export function registerBenchCommand(program: Command): void {
  program
    .command('bench')
    .description('benchmarks: matmul (GFLOP/s), embed (tokens/s vs transformers.js), train (step vs forward, memory), search (exact top-k vs a CPU scan)')
    .argument('<what>', 'matmul | embed | train | search')
    .option('--json <file>', 'also write the results as JSON')
    .option('--model <dir>', 'model folder for `bench embed` and `bench train`', 'test/models/all-MiniLM-L6-v2')
    .option('--quick', 'fewer iterations', false)
    .option('--peers <list>', 'transformers.js devices to compare with in `bench embed`', 'webgpu,cpu')
    .option('--shapes <list>', '`bench embed` shapes as BATCHxTOKENS, comma-separated (default 32x128,32x256)')
    .option('--sizes <list>', '`bench matmul` square sizes N, comma-separated (default 256,512,1024)')
    .option('--precision <list>', '`bench matmul`, `bench embed` and `bench train` (f16 = --fp16) storage types, comma-separated: f32,f16 (default both where the adapter has shader-f16)')
    .option('--profile', '`bench train`: also print GPU time per kernel (timestamp queries)', false)
    .option('--shape <s>', '`bench train` step shape QUERIESxGROUP,QUERY_LEN/PASSAGE_LEN (default 4x4,32/128)')
    .option('--grad-cache <list>', '`bench train` GradCache texts per piece to compare, 0 = off (default 0,4)')
    .option('--checkpointing', '`bench train`: also run each GradCache setting with gradient checkpointing', false)
    .option('--runs <n>', 'measured runs, median reported (default 3; 1 with --quick)')
    .action(async (what: string, opts) => {
      const { runBench } = await import('./bench/index.ts');
      await runBench(what, { ...opts, gpu: gpuOptions(program) });
    });
}
