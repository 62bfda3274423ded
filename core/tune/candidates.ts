// What `aqa tune` times on this Gpu: the matmul tiles (with and without staging a transposed
// operand, f16 operands where the adapter has 'shader-f16') and the attention block shapes,
// each filtered by what the device can run. A new variant is one line in a list below; the
// tuner checks its output against the current default before it times it.

import type { Gpu } from '../gpu/device.ts';
import { fixedSubgroupSize } from '../gpu/adapter.ts';
import { type AttentionBackwardTiles, type AttentionTiles, attentionBackwardTiles, attentionTiles } from '../kernels/attention.ts';
import { BLOCK_TILE_128, BLOCK_TILE_64, CPU_TILE, GPU_TILE, type MatmulTile, SUBGROUP_TILE, SUBGROUP_TILE_TRANS_B, tileSupported } from '../kernels/matmul.ts';
import type { MatmulDtype, MatmulOp } from './table.ts';

/** 128x128 outputs per workgroup from shared tiles 8 deep, 8x8 per invocation (8 KiB of tiles). */
export const SHARED_8X8_TILE: MatmulTile = { wgX: 16, wgY: 16, tm: 8, tn: 8, shared: true, bk: 8 };

/** Matmul tiles tried for every product kind, in this order. */
export const MATMUL_TILES: readonly MatmulTile[] = [CPU_TILE, SUBGROUP_TILE, SUBGROUP_TILE_TRANS_B, GPU_TILE, SHARED_8X8_TILE, BLOCK_TILE_64, BLOCK_TILE_128];

/** Attention forward block shapes tried besides the built-in default (subgroup forms added where they can run). */
export const ATTENTION_TILES: readonly AttentionTiles[] = [
  { bq: 64, rq: 1, bk: 16 },
  { bq: 32, rq: 2, bk: 16 },
  { bq: 8, rq: 1, bk: 8 },
  { bq: 8, rq: 2, bk: 8 },
  { bq: 8, rq: 4, bk: 8 },
  { bq: 8, rq: 8, bk: 8 },
];

/** Attention backward block shapes tried besides the built-in default. */
export const ATTENTION_BACKWARD_TILES: readonly AttentionBackwardTiles[] = [
  { bq: 64, rq: 1, rk: 1 },
  { bq: 8, rq: 1, rk: 1 },
  { bq: 8, rq: 2, rk: 2 },
  { bq: 8, rq: 4, rk: 2 },
  { bq: 8, rq: 4, rk: 4 },
];

export interface MatmulCandidate {
  name: string;
  tile: MatmulTile;
  /** Copy the transposed operand into the plain layout first (transposed products only). */
  stage: boolean;
}

export interface AttentionCandidate<T> {
  name: string;
  tiles: T;
}

export function matmulTileName(t: MatmulTile): string {
  const kind = t.block ? `block bk${t.bk ?? 16}` : t.shared ? `shared bk${t.bk ?? 16}` : t.subgroup ? 'subgroup' : t.unrolled ? 'unrolled' : 'register';
  return `${kind} ${t.wgX}x${t.wgY}x${t.tm}x${t.tn}`;
}

/** Whether the device runs `t`: subgroup size, workgroup size and storage (tileSupported). */
export function matmulTileFits(gpu: Gpu, t: MatmulTile): boolean {
  return tileSupported(gpu, t);
}

/** The dtypes the matmul candidates run in: f32, and f16 where the adapter has 'shader-f16'. */
export function matmulDtypes(gpu: Gpu): MatmulDtype[] {
  return gpu.features.has('shader-f16') ? ['f32', 'f16'] : ['f32'];
}

/** Every runnable tile for `op`; the transposed products also with the operand staged. */
export function matmulCandidates(gpu: Gpu, op: MatmulOp): MatmulCandidate[] {
  const tiles = MATMUL_TILES.filter((t) => matmulTileFits(gpu, t));
  const stages = op === 'a@b' ? [false] : [false, true];
  return stages.flatMap((stage) => tiles.map((tile) => ({ name: `${matmulTileName(tile)}${stage ? ' staged' : ''}`, tile, stage })));
}

const fitsWorkgroup = (gpu: Gpu, bq: number) => bq <= gpu.limits.maxInvocations;

/** Subgroup forms of a list: the same shape with bq = the fixed subgroup size, rows shared by shuffles. */
function withSubgroups<T extends { bq: number; subgroup?: boolean }>(gpu: Gpu, list: readonly T[]): T[] {
  const sg = fixedSubgroupSize(gpu);
  if (!sg) return [...list];
  const shared = list.filter((t) => t.bq === sg || t.bq === 8).map((t) => ({ ...t, bq: sg, subgroup: true }));
  return [...list, ...shared];
}

function attentionName(t: { bq: number; subgroup?: boolean }, rest: string): string {
  return `${t.subgroup ? 'subgroup ' : ''}bq${t.bq} ${rest}`;
}

/** Unique by shape, the built-in default for (L, d) first. */
function unique<T>(gpu: Gpu, first: T, list: T[], bq: (t: T) => number): T[] {
  const seen = new Set<string>();
  return [first, ...list].filter((t) => {
    const k = JSON.stringify(t, Object.keys(t as object).sort());
    if (seen.has(k) || !fitsWorkgroup(gpu, bq(t))) return false;
    seen.add(k);
    return true;
  });
}

/** Forward block shapes for sequences of `seqLen` and head dim `headDim` (call with no tuning set: the first is the built-in default). */
export function attentionCandidates(gpu: Gpu, seqLen: number, headDim: number): AttentionCandidate<AttentionTiles>[] {
  const norm = (t: AttentionTiles): AttentionTiles => (t.subgroup ? t : { bq: t.bq, rq: t.rq, bk: t.bk });
  const all = unique(gpu, norm(attentionTiles(gpu, seqLen, headDim)), withSubgroups(gpu, ATTENTION_TILES).map(norm), (t) => t.bq);
  return all.map((tiles) => ({ name: attentionName(tiles, `rq${tiles.rq} bk${tiles.bk}`), tiles }));
}

/** Backward block shapes, as attentionCandidates. */
export function attentionBackwardCandidates(gpu: Gpu, seqLen: number, headDim: number): AttentionCandidate<AttentionBackwardTiles>[] {
  const norm = (t: AttentionBackwardTiles): AttentionBackwardTiles => (t.subgroup ? t : { bq: t.bq, rq: t.rq, rk: t.rk });
  const all = unique(gpu, norm(attentionBackwardTiles(gpu, seqLen, headDim)), withSubgroups(gpu, ATTENTION_BACKWARD_TILES).map(norm), (t) => t.bq);
  return all.map((tiles) => ({ name: attentionName(tiles, `rq${tiles.rq} rk${tiles.rk}`), tiles }));
}
