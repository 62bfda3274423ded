#!/usr/bin/env node
// `aqa` entry point: the CLI is TypeScript, run through tsx's loader.
import { register } from 'tsx/esm/api';

register();
await import('./cli.ts');
