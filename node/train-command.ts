// `aqa train`: its options come from the training-option table (core/train/options.ts) through
// node/train-settings.ts; the trainer and the model code load inside the action (node/train-run.ts).

import type { Command } from 'commander';
import { gpuOptions, positiveInt as parseIntArg } from './cli-options.ts';
import { addTrainOptions, settingsFromFlags, withModelDefaults } from './train-settings.ts';

/** Add `train` to the `aqa` program. */
export function registerTrainCommand(program: Command): void {
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
      const { trainCommand } = await import('./train-run.ts');
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
}
