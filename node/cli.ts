// The `aqa` command line: registers the commands (each in its node/*-command.ts, options shared
// through node/cli-options.ts) and turns a user error into one line (no stack trace unless
// AQA_DEBUG=1) and exit code 1. Every command loads its heavy modules (WebGPU, tokenizer, model
// code) inside its action, so `aqa --help` starts without them.

import { Command } from 'commander';
import { registerBenchCommand } from './bench-command.ts';
import {
  finiteNumber as parseFloatArg,
  gpuOptions,
  nonNegativeInt as parseNonNegIntArg,
  positiveInt as parseIntArg,
  probability as parseProbabilityArg,
} from './cli-options.ts';
import { registerEmbedCommand } from './embed-command.ts';
import { registerFuseCommand } from './fuse-command.ts';
import { registerIndexCommand } from './index-command.ts';
import { registerInfoCommand } from './info-command.ts';
import { registerMineCommand } from './mine-command.ts';
import { registerPipelineCommand } from './pipeline-command.ts';
import { registerSearchCommand } from './search-command.ts';

const program = new Command();
program
  .name('aqa')
  .description('Fine-tune and serve text-embedding models on WebGPU for academic question answering.')
  .option('--adapter <name>', 'WebGPU adapter to use (substring of its name; env AQA_ADAPTER)')
  .option('--backend <name>', 'Dawn backend: vulkan, opengl, metal, d3d12 (env AQA_BACKEND)')
  .showHelpAfterError();

registerInfoCommand(program);
registerEmbedCommand(program);

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
      gpu: gpuOptions(program),
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

registerIndexCommand(program);
registerSearchCommand(program);
registerMineCommand(program);
registerFuseCommand(program);
registerPipelineCommand(program);
registerBenchCommand(program);

program.parseAsync(process.argv).then(
  () => process.exit(0),
  (e: unknown) => {
    const err = e as Error;
    if (process.env.AQA_DEBUG) console.error(err.stack);
    else console.error(`aqa: ${err.message.split('\n')[0]}`);
    process.exit(1);
  },
);
