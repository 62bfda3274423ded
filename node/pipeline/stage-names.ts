// The stages of `aqa pipeline` in run order, in a module of their own so that registering the
// command (pipeline-command.ts, loaded on every start of the CLI) imports nothing heavy.

/** The stages in run order; `--force <stage>` reruns that one and every later one. */
export const STAGES = ['prepare', 'mine', 'train', 'index', 'search', 'fuse', 'evaluate', 'submission'] as const;
export type Stage = (typeof STAGES)[number];
