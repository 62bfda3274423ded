// The `aqa` command line. Each subcommand parses its options here and calls into node/ and
// core/; user errors print one line (no stack trace unless AQA_DEBUG=1) and exit 1.

import { Command, Option } from 'commander';
import { fmtBytes } from '../core/gpu/device.ts';
import { NO_ADAPTER_HELP, createNodeGpu, listAdapters } from './device.ts';
import { registerFuseCommand } from './fuse-command.ts';
import { registerIndexCommands } from './index-command.ts';
import { registerPipelineCommand } from './pipeline-command.ts';

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

// Defaults: the values of FlagEmbedding's fine-tuning examples (lr 1e-5, group 8, query 32 /
// passage 128 tokens, temperature 0.02) with a short warmup and decay as its docs use.
const T = { learningRate: 1e-5, epochs: 1, batch: 8, group: 8 };

program
  .command('train')
  .description('contrastive fine-tuning (InfoNCE, in-batch negatives), FlagEmbedding-style options')
  .requiredOption('--model_name_or_path <dir|hub-id>', 'base model: local folder or Hugging Face Hub id')
  .requiredOption('--output_dir <dir>', 'checkpoints, train_log.jsonl and the final model')
  .option('--train_data <file>', 'FlagEmbedding JSONL: {"query": str, "pos": [str], "neg": [str]} (e.g. from `aqa mine`)')
  .option('--questions <file>', 'AQA questions with gold pids (qa_train.txt); with --corpus: random negatives, as the original')
  .option('--corpus <file>', 'AQA corpus pid_to_title_abs.json, for --questions')
  .option('--learning_rate <x>', 'peak learning rate', parseFloatArg, T.learningRate)
  .option('--num_train_epochs <n>', 'epochs', parseIntArg, T.epochs)
  .option('--per_device_train_batch_size <n>', 'queries per micro-batch', parseIntArg, T.batch)
  .option('--train_group_size <n>', 'passages per query: 1 positive + n-1 negatives', parseIntArg, T.group)
  .option('--temperature <x>', 'InfoNCE temperature', parseFloatArg, 0.02)
  .option('--query_max_len <n>', 'max query tokens', parseIntArg, 32)
  .option('--passage_max_len <n>', 'max passage tokens', parseIntArg, 128)
  .option('--query_instruction_for_retrieval <text>', "prefix added to queries (default: the model's query prefix)")
  .option('--warmup_ratio <x>', 'fraction of steps of linear warmup', parseFloatArg, 0.1)
  .option('--weight_decay <x>', 'AdamW decoupled weight decay (not on biases and LayerNorm weights)', parseFloatArg, 0.01)
  .option('--max_grad_norm <x>', 'global gradient-norm clipping (0 = off)', parseFloatArg, 1.0)
  .option('--gradient_accumulation_steps <n>', 'micro-batches per optimizer step', parseIntArg, 1)
  .option('--grad_cache_mini_batch <n>', 'GradCache: texts per forward/backward piece (0 = off; bounds activation memory)', parseNonNegIntArg, 0)
  .option('--gradient_checkpointing', 'keep only each layer input and recompute the layer in the backward (less memory, one more forward)', false)
  .option('--hidden_dropout_prob <p>', "dropout on embedding, attention and MLP outputs while training (default: the model's config.json value; 0 = off)", parseProbabilityArg)
  .option('--seed <n>', 'seed of data order and negative sampling', parseNonNegIntArg, 42)
  .option('--save_steps <n>', 'checkpoint every n optimizer steps (0 = only at the end)', parseNonNegIntArg, 500)
  .option('--save_total_limit <n>', 'checkpoints kept', parseIntArg, 2)
  .option('--max_steps <n>', 'stop (with a checkpoint) after n optimizer steps; continue later with --resume', parseIntArg)
  .option('--resume', 'continue from the newest checkpoint in --output_dir', false)
  .action(async (o) => {
    const { trainCommand } = await import('./train-command.ts');
    const { resolveModel } = await import('./hub.ts');
    const { loadEmbeddingSettingsFor, modelHiddenDropout } = await import('./train-settings.ts');
    const baseDir = await resolveModel(o.model_name_or_path);
    const queryInstruction = o.query_instruction_for_retrieval ?? (await loadEmbeddingSettingsFor(baseDir, o.model_name_or_path)).queryPrefix;
    const hiddenDropout = o.hidden_dropout_prob ?? (await modelHiddenDropout(baseDir));
    await trainCommand({
      model_name_or_path: o.model_name_or_path,
      output_dir: o.output_dir,
      train_data: o.train_data,
      questions: o.questions,
      corpus: o.corpus,
      resume: o.resume,
      save_steps: o.save_steps,
      save_total_limit: o.save_total_limit,
      max_steps: o.max_steps,
      gpu: gpuOptions(),
      settings: {
        learningRate: o.learning_rate,
        numTrainEpochs: o.num_train_epochs,
        queriesPerStep: o.per_device_train_batch_size,
        trainGroupSize: o.train_group_size,
        temperature: o.temperature,
        queryMaxLen: o.query_max_len,
        passageMaxLen: o.passage_max_len,
        queryInstruction,
        warmupRatio: o.warmup_ratio,
        weightDecay: o.weight_decay,
        seed: o.seed,
        gradCacheMiniBatch: o.grad_cache_mini_batch,
        gradientCheckpointing: o.gradient_checkpointing,
        hiddenDropout,
        gradientAccumulationSteps: o.gradient_accumulation_steps,
        maxGradNorm: o.max_grad_norm,
        adamBeta1: 0.9,
        adamBeta2: 0.999,
        adamEpsilon: 1e-8,
      },
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

function parseNonNegIntArg(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`expected an integer >= 0, got '${v}'`);
  return n;
}

function parseProbabilityArg(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !(n >= 0 && n < 1)) throw new Error(`expected a probability in [0, 1), got '${v}'`);
  return n;
}

function parseFloatArg(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new Error(`expected a number, got '${v}'`);
  return n;
}

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
