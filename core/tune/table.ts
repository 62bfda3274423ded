// The winners of `aqa tune` for one adapter, and where the kernels' default choices look them up.
//
// setTuning(gpu, table) attaches a table to a Gpu; defaultMatmulTile, stagesTransposed,
// attentionTiles and attentionBackwardTiles consult it first (tuningOf) and fall back to their
// built-in defaults for anything it does not hold, so an untuned Gpu behaves exactly as before.
// Keys: matmul by the product's kind and the operands' dtype ('a@b^T f16'); attention by head
// dim and sequence-length bucket ('d32 L128', the next power of two of L), since its best block
// shape changes with both (private-array spills with d, clamped duplicate rows with short L).

import type { Gpu } from '../gpu/device.ts';
import type { AttentionBackwardTiles, AttentionTiles } from '../kernels/attention.ts';
import type { MatmulTile } from '../kernels/matmul.ts';

/** The three products the encoder runs: forward X Wt, backward dY Wt^T and X^T dY. */
export type MatmulOp = 'a@b' | 'a@b^T' | 'a^T@b' | 'a^T@b^T';
export type MatmulDtype = 'f32' | 'f16';

/** A matmul winner: the tile, and whether the transposed operand is first copied into the plain layout. */
export interface MatmulChoice {
  tile: MatmulTile;
  stage: boolean;
}

export interface TuningTable {
  /** matmulKey(op, dtype) -> winner. */
  matmul: Record<string, MatmulChoice>;
  /** attentionKey(headDim, seqLen) -> winner. */
  attention: Record<string, AttentionTiles>;
  attentionBackward: Record<string, AttentionBackwardTiles>;
}

export function emptyTable(): TuningTable {
  return { matmul: {}, attention: {}, attentionBackward: {} };
}

export function matmulOp(transA: boolean, transB: boolean): MatmulOp {
  return transA ? (transB ? 'a^T@b^T' : 'a^T@b') : transB ? 'a@b^T' : 'a@b';
}

export function matmulKey(op: MatmulOp, dtype: string): string {
  return `${op} ${dtype}`;
}

/** The power of two at or above L (at least 8): tuned block shapes apply within one bucket. */
export function seqBucket(seqLen: number): number {
  return Math.max(8, 2 ** Math.ceil(Math.log2(Math.max(1, seqLen))));
}

export function attentionKey(headDim: number, seqLen: number): string {
  return `d${headDim} L${seqBucket(seqLen)}`;
}

const tables = new WeakMap<Gpu, TuningTable>();

/** Use `table` for this Gpu's default kernel choices from now on; null restores the built-in defaults. */
export function setTuning(gpu: Gpu, table: TuningTable | null): void {
  if (table) tables.set(gpu, table);
  else tables.delete(gpu);
}

export function tuningOf(gpu: Gpu): TuningTable | null {
  return tables.get(gpu) ?? null;
}

export function tunedMatmul(gpu: Gpu, transA: boolean, transB: boolean, dtype: string): MatmulChoice | undefined {
  return tables.get(gpu)?.matmul[matmulKey(matmulOp(transA, transB), dtype)];
}

export function tunedAttention(gpu: Gpu, headDim: number, seqLen: number): AttentionTiles | undefined {
  return tables.get(gpu)?.attention[attentionKey(headDim, seqLen)];
}

export function tunedAttentionBackward(gpu: Gpu, headDim: number, seqLen: number): AttentionBackwardTiles | undefined {
  return tables.get(gpu)?.attentionBackward[attentionKey(headDim, seqLen)];
}

// ---------------------------------------------------------------- reading a stored table

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const posInt = (v: unknown) => Number.isInteger(v) && (v as number) >= 1;

/**
 * A TuningTable from parsed JSON, checked field by field; throws one line naming `where` and
 * the field ("tuning.json: matmul.a@b f32.tile.wgX is -1, expected an integer >= 1").
 */
export function parseTuningTable(json: unknown, where: string): TuningTable {
  const fail = (field: string, what: string): never => {
    throw new Error(`${where}: ${field} ${what}`);
  };
  if (!isObject(json)) return fail('table', 'is not a JSON object');
  const section = (name: keyof TuningTable): Record<string, unknown> => {
    const s = json[name] ?? {};
    return isObject(s) ? s : fail(name, 'is not a JSON object');
  };
  const ints = (field: string, o: unknown, keys: string[], flags: string[]): Record<string, number | boolean> => {
    if (!isObject(o)) return fail(field, 'is not a JSON object');
    const r: Record<string, number | boolean> = {};
    for (const k of keys) {
      if (o[k] === undefined && k === 'bk') continue;
      if (!posInt(o[k])) fail(`${field}.${k}`, `is ${JSON.stringify(o[k])}, expected an integer >= 1`);
      r[k] = o[k] as number;
    }
    for (const k of flags) {
      if (o[k] === undefined) continue;
      if (typeof o[k] !== 'boolean') fail(`${field}.${k}`, `is ${JSON.stringify(o[k])}, expected true or false`);
      r[k] = o[k] as boolean;
    }
    return r;
  };
  const table = emptyTable();
  for (const [k, v] of Object.entries(section('matmul'))) {
    if (!isObject(v)) fail(`matmul.${k}`, 'is not a JSON object');
    const tile = ints(`matmul.${k}.tile`, (v as Record<string, unknown>).tile, ['wgX', 'wgY', 'tm', 'tn', 'bk'], ['shared', 'subgroup', 'unrolled']);
    if (typeof tile.shared !== 'boolean') fail(`matmul.${k}.tile.shared`, 'is missing, expected true or false');
    const stage = (v as Record<string, unknown>).stage;
    if (typeof stage !== 'boolean') fail(`matmul.${k}.stage`, `is ${JSON.stringify(stage)}, expected true or false`);
    table.matmul[k] = { tile: tile as unknown as MatmulTile, stage: stage as boolean };
  }
  for (const [k, v] of Object.entries(section('attention'))) {
    table.attention[k] = ints(`attention.${k}`, v, ['bq', 'rq', 'bk'], ['subgroup']) as unknown as AttentionTiles;
    if (table.attention[k].bk > 32) fail(`attention.${k}.bk`, `is ${table.attention[k].bk}, expected at most 32`);
  }
  for (const [k, v] of Object.entries(section('attentionBackward'))) {
    table.attentionBackward[k] = ints(`attentionBackward.${k}`, v, ['bq', 'rq', 'rk'], ['subgroup']) as unknown as AttentionBackwardTiles;
  }
  return table;
}
