// Cases for the 2D block tiles (BLOCK_TILE_64, BLOCK_TILE_128 and an odd shape of the same
// variant), listed in matmulCases (test/cases/matmul.ts, which runs them and states the
// tolerances). Awkward shapes: length-1 dims, M, N, K not multiples of the tile or of 4 (the
// scalar staging loads), multiples of 4 with ragged tile edges (vec4 loads), more than one
// workgroup and more than one k step in every direction; every layout, the epilogue, batches,
// chunks of M and of K, and the f16 combinations.
//
// Every tile runs the same shader text with other constants, and each pipeline costs compile
// and run time (SwiftShader in Chromium, 2 cores under load ~11: 0.7-0.9 s a case at 4x8
// invocations, 1.6-1.7 s at 8x8, 2.2-3.8 s at 16x16, whose 256 invocations it runs slowly
// across barriers), so the whole grid runs on the small BLOCK_ODD and the shipped tiles get a
// sample that reaches each staging path, layout and epilogue at their sizes.

import type { Gpu } from '../../core/gpu/device.ts';
import { BLOCK_TILE_128, BLOCK_TILE_64, CPU_TILE, GPU_TILE, type MatmulTile, matmul, tileFits, tileSupported } from '../../core/kernels/matmul.ts';
import { chunkRows } from '../../core/gpu/launch.ts';
import type { Spec } from './matmul.ts';
import type { Check, KernelCase } from './types.ts';

/**
 * Block tile with wgX != wgY, tm != tn and bk 12 (three vec4 quads along k per staged row):
 * 32 x 32 outputs, so three workgroups along M at 65 rows and K tails at every k step size.
 */
export const BLOCK_ODD: MatmulTile = { wgX: 4, wgY: 8, tm: 4, tn: 8, shared: true, block: true, bk: 12 };

export const BLOCK_TILES = [BLOCK_TILE_64, BLOCK_TILE_128, BLOCK_ODD];

const layouts: Partial<Spec>[] = [{}, { transA: true }, { transB: true }, { transA: true, transB: true }];

/** f32 specs (the whole grid): every layout on the awkward shapes, then the epilogue, batches and chunks. */
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

/**
 * The sample for the shipped tiles: scalar staging (65x67x33, 130x129x17, 1x1x1) in the plain
 * and the doubly transposed layout, vec4 staging (multiples of 4), the epilogue, chunks of M,
 * and f16; BLOCK_TILE_64 also exact tile multiples, a batch, chunks of K and the f32 out.
 */
function sampleSpecs(tile: MatmulTile, align: number): Spec[] {
  const rowsM = chunkRows([64 * 4, 24 * 4], 8192, align);
  const rowsK = chunkRows([16 * 4, 20 * 4], 4096, align);
  const specs: Spec[] = [
    { M: 130, K: 129, N: 17, bias: true, accumulate: true, alpha: -0.37 },
    { M: 65, K: 67, N: 33, transA: true, transB: true, bias: true, accumulate: true },
    { M: 68, K: 36, N: 44, transB: true, bias: true, accumulate: true, alpha: 0.5 },
    { M: 70, K: 24, N: 64, bias: true, accumulate: true, alpha: 0.75, maxBinding: 8192, chunks: Math.ceil(70 / rowsM) },
    { M: 65, K: 67, N: 33, f16: true },
  ];
  if (tile === BLOCK_TILE_64) {
    specs.push(
      { M: 1, K: 1, N: 1 },
      { M: 65, K: 67, N: 33 },
      { M: 128, K: 64, N: 128, bias: true },
      { lead: [4], M: 12, K: 16, N: 12, batchedB: true, transB: true, alpha: 0.125 },
      { M: 16, K: 300, N: 20, transA: true, bias: true, accumulate: true, maxBinding: 4096, chunks: Math.ceil(300 / rowsK) },
      { M: 68, K: 36, N: 44, transA: true, bias: true, alpha: 0.5, f16: true, outF32: true },
    );
  }
  return specs.map((s) => ({ ...s, tile }));
}

/** Every block case; the chunk specs depend on gpu.limits.offsetAlign (build them when run). */
export function blockSpecs(align: number): Spec[] {
  const specs = [
    ...f32Specs(BLOCK_ODD, align),
    ...f16Specs(BLOCK_ODD, align),
    ...[BLOCK_TILE_64, BLOCK_TILE_128].flatMap((tile) => sampleSpecs(tile, align)),
  ];
  for (const s of specs) {
    if (s.chunks !== undefined && !(s.chunks >= 2)) throw new Error(`block case M=${s.M} K=${s.K} N=${s.N} would not chunk at ${align}-byte alignment`);
  }
  return specs;
}

/**
 * tileFits against compatibility-level limits (128 invocations, 128 per dimension, 16 KiB of
 * workgroup memory, as Dawn's OpenGL ES backend reports at that level) and lower ones, and on
 * this device: tileSupported agrees with tileFits, and a tile that does not fit is a one-line
 * error naming the limit, not a pipeline failure.
 */
export const tileFitsCase: KernelCase = {
  name: 'tileFits: block tiles against compatibility-level and lower workgroup limits',
  async run(gpu) {
    const limited = (invocations: number, sizeX: number, sizeY: number, storage: number) => ({
      limits: { ...gpu.limits, maxInvocations: invocations, maxWorkgroupStorage: storage },
      device: { limits: { maxComputeWorkgroupSizeX: sizeX, maxComputeWorkgroupSizeY: sizeY } } as Gpu['device'],
    });
    const compat = limited(128, 128, 128, 16384);
    const fits = (g: Parameters<typeof tileFits>[0], ts: MatmulTile[]) => ts.map((t) => Number(tileFits(g, t)));
    const checks: Check[] = [
      { name: 'compat: BLOCK_TILE_64, BLOCK_TILE_128, GPU_TILE, CPU_TILE', actual: fits(compat, [BLOCK_TILE_64, BLOCK_TILE_128, GPU_TILE, CPU_TILE]), expected: [1, 0, 0, 1], tol: { atol: 0 } },
      // BLOCK_TILE_64 stages 64 x 8 words of each operand: 4096 bytes
      { name: 'BLOCK_TILE_64 at 4096 / 4095 bytes of workgroup memory', actual: [...fits(limited(256, 256, 256, 4096), [BLOCK_TILE_64]), ...fits(limited(256, 256, 256, 4095), [BLOCK_TILE_64])], expected: [1, 0], tol: { atol: 0 } },
      { name: 'BLOCK_ODD (4 x 8) at workgroup size x 4 / y 4', actual: [...fits(limited(256, 4, 256, 16384), [BLOCK_ODD]), ...fits(limited(256, 256, 4, 16384), [BLOCK_ODD])], expected: [1, 0], tol: { atol: 0 } },
      { name: 'this device: tileSupported = tileFits for the block tiles', actual: BLOCK_TILES.map((t) => Number(tileSupported(gpu, t))), expected: fits(gpu, BLOCK_TILES), tol: { atol: 0 } },
    ];
    const big: MatmulTile = { ...BLOCK_TILE_128, wgX: 64, wgY: 64 }; // over every adapter known (1,024 at most)
    const a = gpu.empty([4, 4]), b = gpu.empty([4, 4]), out = gpu.empty([4, 4]);
    let message = '';
    try {
      matmul(gpu, out, a, b, { tile: big });
    } catch (e) {
      message = (e as Error).message;
    }
    for (const t of [a, b, out]) t.release();
    const ok = /^matmul: tile .*: 4096 invocations, over \d+$/.test(message) || (tileFits(gpu, big) && message === '');
    // the name is the same on every device (the Chromium runner compares checks by name with Node's)
    checks.push({ name: '4096 invocations: a one-line error naming the limit', actual: [Number(ok)], expected: [1], tol: { atol: 0 } });
    return checks;
  },
};
