// The `aqa` command line. Each subcommand parses its options here and calls into node/ and
// core/; user errors print one line (no stack trace unless AQA_DEBUG=1) and exit 1.

import { Command, Option } from 'commander';
import { fmtBytes } from '../core/gpu/device.ts';
import { NO_ADAPTER_HELP, createNodeGpu, listAdapters } from './device.ts';
import { registerFuseCommand } from './fuse-command.ts';
import { registerIndexCommands } from './index-command.ts';
import { registerPipelineCommand } from './pipeline-command.ts';
import { addTrainOptions, settingsFromFlags, withModelDefaults } from './train-settings.ts';

const program = new Command();
program
  .name('aqa')
  .description('Fine-tune and serve text-embedding models on WebGPU for academic question answering.')
  .option('--adapter <name>', 'WebGPU adapter to use (substring of its name; env AQA_ADAPTER)')
  .option('--backend <name>', 'Dawn backend: vulkan, opengl, metal, d3d12 (env AQA_BACKEND)')
  .showHelpAfterError();

function gpuOptions() {
  const o = program.opts<{ adapter?: string; backend?: string }>();
  return { adapter: o.adapter, backend: o.backend };
}

program
  .command('info')
  .description('list WebGPU adapters and the limits that matter here')
  .action(async () => {
    const adapters = await listAdapters(gpuOptions());
    if (!adapters.length) {
      const wanted = gpuOptions().adapter ?? process.env.AQA_ADAPTER;
      const all = wanted ? await listAdapters({ backend: gpuOptions().backend, adapter: '' }) : [];
      if (wanted && all.length) {
        throw new Error(`no adapter matches '${wanted}'; available: ${all.map((a) => a.description || a.device).join('; ')}`);
      }
      throw new Error(NO_ADAPTER_HELP);
    }
    for (const a of adapters) {
      console.log(`${a.vendor || '?'} ${a.architecture} ${a.device} ${a.description}`.replace(/\s+/g, ' ').trim());
      console.log(`  features: ${a.features.join(', ')}`);
      for (const [k, v] of Object.entries(a.limits)) {
        console.log(`  ${k}: ${k.startsWith('max') && v >= 1 << 20 ? `${v} (${fmtBytes(v)})` : v}`);
      }
    }
    const gpu = await createNodeGpu(gpuOptions());
    console.log(`selected: ${gpu.name}`);
    gpu.destroy();
  });

program
  .command('embed')
  .description('embed texts with a Hugging Face embedding model (BERT or GTE v1.5)')
  .requiredOption('--model <dir|hub-id>', 'local model folder or Hugging Face Hub id')
  .requiredOption('--input <file>', '.txt (one text per line) or .jsonl (field --field, default "text")')
  .requiredOption('--out <file>', 'output .npy (float32 [N, dim]); a .json sidecar with the settings is written beside it')
  .option('--field <name>', 'JSONL field holding the text', 'text')
  .option('--query', 'treat inputs as queries (adds the model\'s query prefix, if any)', false)
  .option('--max-length <n>', 'max tokens per text (default: the model\'s)', parseIntArg)
  .option('--batch-size <n>', 'texts per GPU batch', parseIntArg, 32)
  .addOption(new Option('--dtype <t>', 'output dtype').choices(['f32', 'f16']).default('f32'))
  .action(async (opts) => {
    const { runEmbed } = await import('./embed-command.ts');
    await runEmbed({ ...opts, gpu: gpuOptions() });
  });

// Training options, defaults and rules: the table in core/train/options.ts.
addTrainOptions(
  program
    .command('train')
    .description('contrastive fine-tuning (InfoNCE, in-batch negatives), FlagEmbedding-style options')
    .requiredOption('--model_name_or_path <dir|hub-id>', 'base model: local folder or Hugging Face Hub id')
    .requiredOption('--output_dir <dir>', 'checkpoints, train_log.jsonl and the final model')
    .option('--train_data <file>', 'FlagEmbedding JSONL: {"query": str, "pos": [str], "neg": [str]} (e.g. from `aqa mine`)')
    .option('--questions <file>', 'AQA questions with gold pids (qa_train.txt); with --corpus: random negatives, as the original')
    .option('--corpus <file>', 'AQA corpus pid_to_title_abs.json, for --questions'),
)
  .option('--max_steps <n>', 'stop (with a checkpoint) after n optimizer steps; continue later with --resume', parseIntArg)
  .option('--resume', 'continue from the newest checkpoint in --output_dir', false)
  .action(async (o) => {
    const { trainCommand } = await import('./train-command.ts');
    const { resolveModel } = await import('./hub.ts');
    const { settings, save } = settingsFromFlags(o);
    const baseDir = await resolveModel(o.model_name_or_path);
    await trainCommand({
      model_name_or_path: o.model_name_or_path,
      output_dir: o.output_dir,
      train_data: o.train_data,
      questions: o.questions,
      corpus: o.corpus,
      resume: o.resume,
      save_steps: save.saveSteps,
      save_total_limit: save.saveTotalLimit,
      max_steps: o.max_steps,
      gpu: gpuOptions(),
      settings: await withModelDefaults(settings, baseDir, o.model_name_or_path),
    });
  });

registerIndexCommands(program);
registerFuseCommand(program);
registerPipelineCommand(program);

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
  .option('--profile', '`bench train`: also print GPU time per kernel (timestamp queries)', false)
  .option('--shape <s>', '`bench train` step shape QUERIESxGROUP,QUERY_LEN/PASSAGE_LEN (default 4x4,32/128)')
  .option('--grad-cache <list>', '`bench train` GradCache texts per piece to compare, 0 = off (default 0,4)')
  .option('--checkpointing', '`bench train`: also run each GradCache setting with gradient checkpointing', false)
  .option('--runs <n>', 'measured runs, median reported (default 3; 1 with --quick)')
  .action(async (what: string, opts) => {
    const { runBench } = await import('./bench/index.ts');
    await runBench(what, { ...opts, gpu: gpuOptions() });
  });

function parseIntArg(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`expected a positive integer, got '${v}'`);
  return n;
}

program.parseAsync(process.argv).then(
  () => process.exit(0),
  (e: unknown) => {
    const err = e as Error;
    if (process.env.AQA_DEBUG) console.error(err.stack);
    else console.error(`aqa: ${err.message.split('\n')[0]}`);
    process.exit(1);
  },
);
