// Helpers every kernel launcher shares: dtype checks, flat views, the workgroup width of row
// reductions, and the planning of row chunks that fit one storage binding.
//
// Big inputs: launchers split their work into chunks that fit one storage binding (128 MiB on
// llvmpipe; GTE-large's GLU input [B*L, 8192] is 1 GiB at B*L = 32768). A chunk is a view
// (Tensor.rows) whose byte offset must be a multiple of minStorageBufferOffsetAlignment.

import type { Gpu } from './device.ts';
import type { DType, Tensor } from './tensor.ts';
import { isCpuAdapter } from './adapter.ts';

/** Throw a clear error unless t holds `dtype` elements. */
export function expectDtype(what: string, t: Tensor, dtype: DType): void {
  if (t.dtype !== dtype) throw new Error(`${what}: expected ${dtype} elements, got ${t.dtype} ${t}`);
}

/** A [count] view of elements [start, start + count) of t, as a flat array. */
export function flatView(t: Tensor, start: number, count: number): Tensor {
  return t.reshape([t.size]).rows(start, count);
}

/**
 * Threads per row for the workgroup-per-row reductions (layernorm, l2 normalize). Real GPUs
 * want wide workgroups (256: 4 columns per thread at H = 1024). Software drivers run a
 * workgroup as SIMD batches of 8 (llvmpipe, 256-bit) that switch at every barrier, so width
 * costs far more than it gives: LayerNorm [4096, 1024] on llvmpipe (2 cores) took 1008 ms at
 * WG = 256, 225 ms at 64 and 121-241 ms at 8, about what an add over the same 4M elements takes.
 */
export function rowReduceWg(gpu: Gpu): number {
  return isCpuAdapter(gpu) ? 8 : 256;
}

export function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

export function lcm(a: number, b: number): number {
  return (a / gcd(a, b)) * b;
}

/** Smallest row count r such that a view starting at any multiple of r rows of `rowBytes` is aligned. */
export function alignStep(rowBytes: number, align: number): number {
  return align / gcd(rowBytes, align);
}

/**
 * Largest row count such that a chunk of `rows` rows fits maxBinding for every operand (one
 * entry of rowBytes each, all chunked along their first dimension) and every chunk start is
 * aligned for every operand (rows * rowBytes a multiple of align). Throws when not even one
 * aligned step of rows fits; `what` prefixes the message.
 */
export function chunkRows(rowBytes: readonly number[], maxBinding: number, align: number, what = 'chunk'): number {
  let step = 1;
  for (const r of rowBytes) step = lcm(step, alignStep(r, align));
  const rows = Math.floor(maxBinding / Math.max(...rowBytes));
  const aligned = rows - (rows % step);
  if (aligned < 1) {
    throw new Error(`${what}: rows of ${rowBytes.join('/')} bytes cannot be chunked under a ${maxBinding}-byte binding at ${align}-byte alignment`);
  }
  return aligned;
}

/**
 * Split `rows` rows into chunks planned by chunkRows under the device's binding limit and
 * alignment, and call fn(start, count) per chunk, in order. All rows in one call when they fit
 * (the first chunk starts at 0, so it needs no alignment); nothing for rows = 0 (a zero-sized
 * binding is invalid).
 */
export function forEachRowChunk(
  gpu: Gpu,
  what: string,
  rows: number,
  rowBytes: readonly number[],
  fn: (start: number, count: number) => void,
): void {
  if (rows === 0) return;
  const { maxBinding, offsetAlign } = gpu.limits;
  if (rows <= Math.floor(maxBinding / Math.max(...rowBytes))) {
    fn(0, rows);
    return;
  }
  const chunk = chunkRows(rowBytes, maxBinding, offsetAlign, what);
  for (let s = 0; s < rows; s += chunk) fn(s, Math.min(chunk, rows - s));
}
