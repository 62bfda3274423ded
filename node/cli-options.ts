// Option helpers shared by every `aqa` command: the global GPU choice and the value parsers
// commander calls. Imported on every start, so it imports nothing but types.

import type { Command } from 'commander';
import type { NodeGpuOptions } from './device.ts';

/**
 * The program-wide --adapter / --backend (device.ts falls back to AQA_ADAPTER / AQA_BACKEND)
 * and --experimental.
 */
export function gpuOptions(program: Command): NodeGpuOptions {
  const o = program.opts<{ adapter?: string; backend?: string; experimental?: boolean }>();
  return { adapter: o.adapter, backend: o.backend, ...(o.experimental ? { experimental: true } : {}) };
}

/** Commander parser for options that take an integer >= 1. */
export function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`expected a positive integer, got '${v}'`);
  return n;
}

/** Commander parser for options that take an integer >= 0. */
export function nonNegativeInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`expected an integer >= 0, got '${v}'`);
  return n;
}

/** Commander parser for options that take any finite number. */
export function finiteNumber(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new Error(`expected a number, got '${v}'`);
  return n;
}

/** Commander parser for a probability in [0, 1). */
export function probability(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !(n >= 0 && n < 1)) throw new Error(`expected a probability in [0, 1), got '${v}'`);
  return n;
}
