// The `aqa` command line: registers the commands (each in its node/*-command.ts, options shared
// through node/cli-options.ts) and turns a user error into one line (no stack trace unless
// AQA_DEBUG=1) and exit code 1. Every command loads its heavy modules (WebGPU, tokenizer, model
// code) inside its action, so `aqa --help` starts without them.

import { Command } from 'commander';
import { registerBenchCommand } from './bench-command.ts';
import { registerEmbedCommand } from './embed-command.ts';
import { registerExportCommand } from './export-command.ts';
import { registerFuseCommand } from './fuse-command.ts';
import { registerIndexCommand } from './index-command.ts';
import { registerInfoCommand } from './info-command.ts';
import { registerMineCommand } from './mine-command.ts';
import { registerPipelineCommand } from './pipeline-command.ts';
import { registerSearchCommand } from './search-command.ts';
import { registerTrainCommand } from './train-command.ts';
import { registerTuneCommand } from './tune-command.ts';

const program = new Command();
program
  .name('aqa')
  .description('Fine-tune and serve text-embedding models on WebGPU for academic question answering.')
  .option('--adapter <name>', 'WebGPU adapter to use (substring of its name; env AQA_ADAPTER)')
  .option('--backend <name>', 'Dawn backend: vulkan, opengles, opengl, metal, d3d12 (env AQA_BACKEND)')
  .option('--experimental', "Dawn's experimental features: allow_unsafe_apis and subgroup-matrix matmul where the adapter offers it")
  .showHelpAfterError();

registerInfoCommand(program);
registerEmbedCommand(program);
registerTrainCommand(program);
registerIndexCommand(program);
registerSearchCommand(program);
registerMineCommand(program);
registerFuseCommand(program);
registerPipelineCommand(program);
registerExportCommand(program);
registerBenchCommand(program);
registerTuneCommand(program);

program.parseAsync(process.argv).then(
  () => process.exit(0),
  (e: unknown) => {
    const err = e as Error;
    if (process.env.AQA_DEBUG) console.error(err.stack);
    else console.error(`aqa: ${err.message.split('\n')[0]}`);
    process.exit(1);
  },
);
