// The `aqa` command line: registers the commands (each in its node/*-command.ts, options shared
// through node/cli-options.ts) and turns a user error into one line (no stack trace unless
// AQA_DEBUG=1) and exit code 1. Every command loads its heavy modules (WebGPU, tokenizer, model
// code) inside its action, so `aqa --help` starts without them.

import { Command } from 'commander';
import { registerBenchCommand } from './bench-command.ts';
import { gpuOptions, positiveInt as parseIntArg } from './cli-options.ts';
import { registerEmbedCommand } from './embed-command.ts';
import { registerFuseCommand } from './fuse-command.ts';
import { registerIndexCommand } from './index-command.ts';
import { registerInfoCommand } from './info-command.ts';
import { registerMineCommand } from './mine-command.ts';
import { registerPipelineCommand } from './pipeline-command.ts';
import { registerSearchCommand } from './search-command.ts';
import { addTrainOptions, settingsFromFlags, withModelDefaults } from './train-settings.ts';

const program = new Command();
program
  .name('aqa')
  .description('Fine-tune and serve text-embedding models on WebGPU for academic question answering.')
  .option('--adapter <name>', 'WebGPU adapter to use (substring of its name; env AQA_ADAPTER)')
  .option('--backend <name>', 'Dawn backend: vulkan, opengl, metal, d3d12 (env AQA_BACKEND)')
  .showHelpAfterError();

registerInfoCommand(program);
registerEmbedCommand(program);

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
      gpu: gpuOptions(program),
      settings: await withModelDefaults(settings, baseDir, o.model_name_or_path),
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
