// Cases for the 2D block tiles (BLOCK_TILE_64, BLOCK_TILE_128 and an odd shape of the same
// variant), listed in matmulCases (test/cases/matmul.ts, which runs them and states the
// tolerances). Awkward shapes: length-1 dims, M, N, K not multiples of the tile or of 4 (the
// scalar staging loads), multiples of 4 with ragged tile edges (vec4 loads), more than one
// workgroup and more than one k step in every direction; every layout, the epilogue, batches,
// chunks of M and of K, and the f16 combinations.

import { BLOCK_TILE_128, BLOCK_TILE_64, type MatmulTile } from '../../core/kernels/matmul.ts';
import { chunkRows } from '../../core/gpu/launch.ts';
import type { Spec } from './matmul.ts';

/**
 * Block tile with wgX != wgY, tm != tn and bk 12 (three vec4 quads along k per staged row):
 * 32 x 32 outputs, so three workgroups along M at 65 rows and K tails at every k step size.
 */
export const BLOCK_ODD: MatmulTile = { wgX: 4, wgY: 8, tm: 4, tn: 8, shared: true, block: true, bk: 12 };

export const BLOCK_TILES = [BLOCK_TILE_64, BLOCK_TILE_128, BLOCK_ODD];

const layouts: Partial<Spec>[] = [{}, { transA: true }, { transB: true }, { transA: true, transB: true }];

/** f32 specs: every layout on the awkward shapes, then the epilogue, batches and chunks. */
function f32Specs(tile: MatmulTile, align: number): Spec[] {
  const shapes: Spec[] = [
    { M: 1, K: 1, N: 1 },
    { M: 65, K: 67, N: 33 },
    { M: 130, K: 129, N: 17 },
    { M: 68, K: 36, N: 44 },
  ];
  // Row chunks of M (32 rows at 256-byte alignment: partial tiles) and chunks of K (transA).
  const rowsM = chunkRows([64 * 4, 24 * 4], 8192, align);
  const rowsK = chunkRows([16 * 4, 20 * 4], 4096, align);
  return [
    ...shapes.flatMap((s) => layouts.map((f) => ({ ...s, ...f }))),
    { M: 130, K: 129, N: 17, bias: true, accumulate: true, alpha: -0.37 },
    { M: 68, K: 36, N: 44, transB: true, bias: true, accumulate: true, alpha: 0.5 },
    { M: 19, K: 40, N: 24, transA: true, bias: true, accumulate: true, alpha: 2 },
    { M: 65, K: 67, N: 33, transA: true, transB: true, bias: true, accumulate: true },
    { M: 128, K: 64, N: 128, bias: true },
    { lead: [3], M: 8, K: 20, N: 12, transA: true, accumulate: true },
    { lead: [4], M: 12, K: 16, N: 12, batchedB: true, transB: true, alpha: 0.125 },
    { lead: [2, 3], M: 17, K: 8, N: 17, batchedB: true, transA: true },
    { M: 70, K: 24, N: 64, bias: true, accumulate: true, alpha: 0.75, maxBinding: 8192, chunks: Math.ceil(70 / rowsM) },
    { M: 16, K: 300, N: 20, transA: true, bias: true, accumulate: true, maxBinding: 4096, chunks: Math.ceil(300 / rowsK) },
  ].map((s) => ({ ...s, tile }));
}

/** f16 operands: f16 out (rounded once), and f32 out (the parameter gradients' transA). */
function f16Specs(tile: MatmulTile, align: number): Spec[] {
  const rowsM = chunkRows([64 * 2, 24 * 2], 4096, align);
  const half: Spec[] = [
    { M: 65, K: 67, N: 33 },
    { M: 68, K: 36, N: 44, transB: true, bias: true },
    { M: 130, K: 129, N: 17, bias: true, alpha: -0.37 },
    { M: 70, K: 24, N: 64, bias: true, maxBinding: 4096, chunks: Math.ceil(70 / rowsM) },
  ];
  const f32Out: Spec[] = [
    { M: 65, K: 67, N: 33, transA: true, accumulate: true },
    { M: 68, K: 36, N: 44, transA: true, bias: true, alpha: 0.5 },
  ];
  return [...half.map((s) => ({ ...s, f16: true })), ...f32Out.map((s) => ({ ...s, f16: true, outF32: true }))].map((s) => ({ ...s, tile }));
}

/** Every block case; the chunk specs depend on gpu.limits.offsetAlign (build them when run). */
export function blockSpecs(align: number): Spec[] {
  for (const s of [...f32Specs(BLOCK_ODD, align), ...f16Specs(BLOCK_ODD, align)]) {
    if (s.chunks !== undefined && !(s.chunks >= 2)) throw new Error(`block case M=${s.M} K=${s.K} N=${s.N} would not chunk at ${align}-byte alignment`);
  }
  return BLOCK_TILES.flatMap((tile) => [...f32Specs(tile, align), ...f16Specs(tile, align)]);
}
