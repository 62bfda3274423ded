// `aqa pipeline <config>`: the whole AQA job from one JSON config (node/pipeline/ does the
// work). Registered on every start of the CLI, so this file imports nothing heavy: the pipeline
// module (models, GPU search, training) loads only when the command runs.

import { type Command, Option } from 'commander';
import { gpuOptions } from './cli-options.ts';
import { type Stage, STAGES } from './pipeline/stage-names.ts';


/** Add `pipeline` to the `aqa` program. */
export function registerPipelineCommand(program: Command): void {
  program
    .command('pipeline')
    .description('the whole job from a JSON config: prepare, mine, train, index, search, fuse, evaluate, submission (finished stages are skipped)')
    .argument('<config>', 'pipeline config JSON (e.g. demo/data/pipeline/config.json)')
    .addOption(new Option('--force <stage>', 'rerun this stage and every later one, even if up to date').choices(STAGES))
    .option('--work-dir <dir>', "write here instead of the config's work_dir")
    .action(async (config: string, opts: { force?: Stage; workDir?: string }) => {
      const { runPipeline } = await import('./pipeline/index.ts');
      await runPipeline({ config, force: opts.force, workDir: opts.workDir, gpu: gpuOptions(program) });
    });
}
