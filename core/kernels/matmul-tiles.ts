// Tile shapes of the matmul launcher (core/kernels/matmul.ts): the MatmulTile type, the tiles
// it ships, and the checks of a tile against a device's limits.

import type { Gpu } from '../gpu/device.ts';
import { fixedSubgroupSize } from '../gpu/adapter.ts';

/**
 * Tile shape of one launch. Every invocation computes tm x tn outputs; a workgroup of
 * wgX x wgY invocations covers (wgY*tm) x (wgX*tn) of out. Four variants:
 * shared-memory tiles (`shared`), 2D block tiles (`shared` and `block`), register tiles with
 * loops over the tile (the default variant, optionally `subgroup`), and a fixed 8x8 register
 * tile written out without loops (`unrolled`).
 */
export interface MatmulTile {
  wgX: number;
  wgY: number;
  tm: number;
  tn: number;
  /** Stage bk-deep tiles in workgroup memory (fast on real GPUs, slow on CPU drivers). */
  shared: boolean;
  /** k depth of the shared-memory tiles (shared only). Default 16. */
  bk?: number;
  /**
   * The GPU-class 2D block variant of the shared tiles (needs `shared`): vec4 global loads,
   * op(a) staged transposed so the inner loop reads vec4s of both tiles from workgroup memory,
   * each invocation's tm x tn outputs (multiples of 4) in registers; bk a multiple of 4.
   */
  block?: boolean;
  /**
   * Share loads of a across a subgroup with subgroupShuffle (register variant). Needs the
   * 'subgroups' feature and a fixed subgroup size equal to wgX; tm a multiple of wgX.
   */
  subgroup?: boolean;
  /** The loop-free 8x8 variant (tm = tn = 8), for compilers that do not unroll loops. */
  unrolled?: boolean;
}

// Tile numbers below: llvmpipe, 2 shared cores, so compare ratios; GFLOP/s by GPU timestamps
// at N=1024 and GFLOP/(worker-s), flops per CPU second of the driver's worker threads (times 2),
// at N=512 unless said otherwise. How they were taken, why loads per FMA decide the speed there,
// and the variants tried and not kept: docs/matmul-notes.md.

/**
 * No shared memory, no subgroups: for CPU drivers without a usable subgroup size, e.g.
 * SwiftShader, whose compiler keeps loop-indexed arrays in memory: the looped 8x8 ran 0.26,
 * this one 2.5 GFLOP/(worker-s) there; on llvmpipe it runs 7-9 vs 4.5-6.5 for looped 8x8/8x16.
 */
export const CPU_TILE: MatmulTile = { wgX: 8, wgY: 8, tm: 8, tn: 8, shared: false, unrolled: true };
/**
 * llvmpipe (8-wide subgroups): the 16 rows of a an invocation needs are loaded once per
 * subgroup (two rows per lane) and handed around with subgroupShuffle, which llvmpipe compiles
 * to a register permute: 23-32 GFLOP/(worker-s) at N=512, 13.8 GFLOP/s at N=1024 under load,
 * vs 7-9 for CPU_TILE. wgY 4 beat 1 and 8 (11.6 and 7.7 GFLOP/s).
 */
export const SUBGROUP_TILE: MatmulTile = { wgX: 8, wgY: 4, tm: 16, tn: 8, shared: false, subgroup: true };
/**
 * The same for transB (b stored [N, K], e.g. Linear weights): each lane then reads tn rows of b
 * in different cache lines and holds them across the k step; 32x4 ran 25 GFLOP/(worker-s)
 * against 18 for 16x8 (16x4: 22).
 */
export const SUBGROUP_TILE_TRANS_B: MatmulTile = { wgX: 8, wgY: 4, tm: 32, tn: 4, shared: false, subgroup: true };

/** Shared-memory tiles for real GPUs: 16x16 invocations, 4x4 outputs each, 64x64x16 tiles (8 KiB). */
export const GPU_TILE: MatmulTile = { wgX: 16, wgY: 16, tm: 4, tn: 4, shared: true, bk: 16 };

/**
 * 2D block tiles after the published GPU SGEMM designs (Simon Boehm's "How to optimize a CUDA
 * matmul kernel", kernels 5-6; AnswerDotAI/gpu.cpp#35, 3.68 TFLOP/s f32 on an RTX 3080 Laptop):
 * 8x8 invocations, 8x8 outputs each, 64x64x8 tiles (4 KiB). 64 invocations: fits every adapter,
 * compatibility level included. A candidate for per-adapter tuning, not a default; not yet
 * timed on a hardware GPU (llvmpipe: docs/matmul-notes.md).
 */
export const BLOCK_TILE_64: MatmulTile = { wgX: 8, wgY: 8, tm: 8, tn: 8, shared: true, block: true, bk: 8 };
/**
 * The same at 128x128x8 (16x16 invocations, 8 KiB): the shape of gpu.cpp's fastest kernel.
 * 256 invocations, over the 128 of compatibility-level adapters: check tileFits().
 */
export const BLOCK_TILE_128: MatmulTile = { wgX: 16, wgY: 16, tm: 8, tn: 8, shared: true, block: true, bk: 8 };

/** Bytes of workgroup memory the tile stages (f32 words whatever the operand dtype). */
export function sharedBytes(t: MatmulTile): number {
  return t.shared ? (t.bk ?? 16) * (t.wgY * t.tm + t.wgX * t.tn) * 4 : 0;
}

/** Why `t` exceeds this device's workgroup limits, or null when it fits. */
export function tileLimitProblem(gpu: Pick<Gpu, 'limits' | 'device'>, t: MatmulTile): string | null {
  const inv = t.wgX * t.wgY;
  if (inv > gpu.limits.maxInvocations) return `${inv} invocations, over ${gpu.limits.maxInvocations}`;
  // the per-dimension sizes are not in gpu.limits; compatibility-level adapters lower them too
  const { maxComputeWorkgroupSizeX: maxX, maxComputeWorkgroupSizeY: maxY } = gpu.device.limits;
  if (t.wgX > maxX) return `wgX ${t.wgX}, over maxComputeWorkgroupSizeX ${maxX}`;
  if (t.wgY > maxY) return `wgY ${t.wgY}, over maxComputeWorkgroupSizeY ${maxY}`;
  const bytes = sharedBytes(t);
  if (bytes > gpu.limits.maxWorkgroupStorage) return `${bytes} bytes of shared tiles, over ${gpu.limits.maxWorkgroupStorage}`;
  return null;
}

/**
 * Whether `tile`'s workgroup fits this device: invocations per workgroup, workgroup size in x
 * and y, and workgroup memory (compatibility-level adapters have lower limits, e.g. 128
 * invocations, which rules out the 256 of GPU_TILE and BLOCK_TILE_128).
 */
export function tileFits(gpu: Pick<Gpu, 'limits' | 'device'>, tile: MatmulTile): boolean {
  return tileLimitProblem(gpu, tile) === null;
}

/** Whether `tile` can run on this device: it fits (tileFits), and subgroup tiles need a matching fixed subgroup size. */
export function tileSupported(gpu: Gpu, tile: MatmulTile): boolean {
  if (!tileFits(gpu, tile)) return false;
  return !tile.subgroup || (fixedSubgroupSize(gpu) === tile.wgX && tile.tm % tile.wgX === 0);
}

/** Throws a one-line error naming the tile when it is malformed or does not fit this device. */
export function checkTile(gpu: Gpu, t: MatmulTile): void {
  const bad = (why: string) => new Error(`matmul: tile ${JSON.stringify(t)}: ${why}`);
  for (const k of ['wgX', 'wgY', 'tm', 'tn'] as const) {
    if (!Number.isInteger(t[k]) || t[k] < 1) throw bad(`${k} must be a positive integer`);
  }
  const limit = tileLimitProblem(gpu, t);
  if (limit) throw bad(limit);
  if (t.block) {
    if (!t.shared || t.subgroup || t.unrolled) throw bad('block is a shared-memory variant: shared true, no subgroup, not unrolled');
    const bk = t.bk ?? 16;
    if (t.tm % 4 || t.tn % 4 || !Number.isInteger(bk) || bk < 4 || bk % 4) throw bad('block tiles need tm, tn and bk multiples of 4 (vec4 words)');
  } else if (!t.shared && (t.tm % 4 || t.tn % 4)) {
    throw bad('tm and tn must be multiples of 4 without shared memory (vec4 accumulators)');
  }
  if (t.unrolled && (t.tm !== 8 || t.tn !== 8 || t.shared || t.subgroup)) throw bad('unrolled is the 8x8 register variant: tm = tn = 8, no shared, no subgroup');
  if (t.subgroup) {
    if (t.shared) throw bad('subgroup applies to the register variant only (shared: false)');
    const sg = fixedSubgroupSize(gpu);
    if (sg !== t.wgX) throw bad(`needs a fixed subgroup size equal to wgX; this device has ${sg ? sg : "no fixed size (or no 'subgroups' feature)"}`);
    if (t.tm % t.wgX) throw bad('tm must be a multiple of wgX (rows of a are spread over the subgroup)');
  }
}
