#!/usr/bin/env node
// `aqa` entry point: the CLI is TypeScript, run through tsx's loader, in a child process whose
// native stderr is filtered of Dawn's harmless start-up warnings (node/stderr-filter.mjs).
import { fileURLToPath } from 'node:url';
import { runFiltered, useStderrFd } from './stderr-filter.mjs';

if (!runFiltered(fileURLToPath(import.meta.url))) {
  useStderrFd();
  const { register } = await import('tsx/esm/api');
  register();
  await import('./cli.ts');
}
