// Launchers for shaders/matmul.wgsl and shaders/colsum.wgsl: shape checks, batching, tile and
// variant choice, and chunking of work larger than one storage binding.
//
// matmul(gpu, out, a, b, o)                out = alpha * op(a) @ op(b) (+ bias) (+ out)
// linear(gpu, out, x, w, b)                out = x @ w^T + b, w stored [out, in] as in Hugging Face Linear
// denseForward(gpu, y, x, wt, b)           y = x @ wt + b, wt stored [in, out] (the encoder's layout)
// denseBackward(gpu, {dx, dwt, db}, dy, x, wt)   its gradients, below it
// colsum(gpu, out, x, o)                   out (+)= column sums of x (the bias gradient)
//
// The encoder's dense layers (X [BL, in], Wt [in, out], Y [BL, out]):
//   forward  Y    = X Wt + b     matmul(gpu, y, x, wt, { bias })
//   backward dX   = dY Wt^T      matmul(gpu, dx, dy, wt, { transB: true })
//            dWt += X^T dY       matmul(gpu, dwt, x, dy, { transA: true, accumulate: true })
//            db  += colsum(dY)
// On CPU drivers a transposed operand is first copied transposed (stageTransposed below, with
// kernels/transpose.ts) and the product runs on the plain kernel: there its transposed-operand
// variants were 1.1-1.8x slower at the encoder's backward shapes, and the copy costs one pass
// over the operand.
//
// f16 (needs 'shader-f16'). The operands a and b share one dtype, f32 or f16; out is f32, or
// f16 when the operands are; bias has out's dtype; accumulate needs an f32 out. So three
// combinations: all f32; a, b, out (and bias) f16 (the f16 forward: one rounding to f16 at the
// store); a, b f16 with an f32 out (mixed-precision training's parameter gradients, e.g.
// dWt += X^T dY, unrounded). Loads convert to f32 and sums and the epilogue are f32 in every
// case; every tile variant (unrolled, subgroup, vec4, shared, block), transA, transB and the staged
// transposes work the same way. colsum sums an f16 x into an f32 out, and denseBackward takes
// f16 dy, x, wt with an f16 dx and f32 dwt, db.

import { type Gpu, f32 } from '../gpu/device.ts';
import { type DType, type Tensor, bytesPerElement, expectShape } from '../gpu/tensor.ts';
import { isCpuAdapter } from '../gpu/adapter.ts';
import { chunkRows, expectDtype, forEachRowChunk } from '../gpu/launch.ts';
import { transpose } from './transpose.ts';
import { CPU_TILE, GPU_TILE, type MatmulTile, SUBGROUP_TILE, SUBGROUP_TILE_TRANS_B, checkTile, tileSupported } from './matmul-tiles.ts';
import { tunedMatmul } from '../tune/table.ts';

// The tile shapes and their checks live in matmul-tiles.ts; re-exported so callers import one module.
export * from './matmul-tiles.ts';

/**
 * Whether matmul copies transposed operands into the plain layout by default: on CPU drivers
 * (isCpuAdapter). Measured on llvmpipe at the backward shapes of all-MiniLM-L6-v2 (2,176 rows,
 * 384/1,152/1,536 features, load ~4, so ratios): dY Wt^T 1,252 ms on the transB kernel against
 * 948 plain, X^T dY 1,120 against 966 (sums over the four layer shapes). In a whole training
 * step (`aqa bench train --quick --profile`, GPU timestamps) the transposed products took
 * 10.1 s, staged 8.4 s plus 0.29 s of copies. Real GPUs keep the transposed variants: their shared-memory tiles read
 * either layout coalesced.
 * A tuning table on the Gpu decides first where it has the product kind and dtype.
 */
export function stagesTransposed(gpu: Gpu, o: MatmulKind = {}): boolean {
  const tuned = tunedMatmul(gpu, !!o.transA, !!o.transB, o.dtype ?? 'f32');
  if (tuned) return tuned.stage;
  return isCpuAdapter(gpu);
}

/**
 * The tile matmul uses when none is given: shared-memory tiles on real GPUs; on CPU drivers
 * the subgroup tiles where the subgroup size is 8 (llvmpipe on AVX2), else CPU_TILE.
 * SwiftShader's subgroups are 4 wide and the subgroup variant ran 6x slower than CPU_TILE there.
 * A tuning table on the Gpu (`aqa tune`, core/tune/table.ts) comes first, for the product kind,
 * dtype and staging it was measured with.
 */
export function defaultMatmulTile(gpu: Gpu, o: MatmulKind & { staged?: boolean } = {}): MatmulTile {
  const tuned = tunedMatmul(gpu, !!o.transA, !!o.transB, o.dtype ?? 'f32');
  if (tuned && tuned.stage === !!o.staged) return tuned.tile; // what `aqa tune` measured fastest
  let d = defaults.get(gpu);
  if (!d) {
    const cpu = isCpuAdapter(gpu);
    const pick = (sg: MatmulTile) => (!cpu ? GPU_TILE : tileSupported(gpu, sg) ? sg : CPU_TILE);
    d = { nn: pick(SUBGROUP_TILE), nt: pick(SUBGROUP_TILE_TRANS_B) };
    defaults.set(gpu, d);
  }
  return o.transB && !o.staged ? d.nt : d.nn;
}

/**
 * Which product a default is chosen for (the tuning table's key, core/tune/table.ts); staged:
 * the transposed operands are copied into the plain layout first, so the plain kernel runs.
 */
export interface MatmulKind {
  transA?: boolean;
  transB?: boolean;
  /** Operand dtype; default f32. */
  dtype?: DType;
}
const defaults = new WeakMap<Gpu, { nn: MatmulTile; nt: MatmulTile }>();

export interface MatmulOptions {
  /** a is stored [K, M] (op(a) = a^T), e.g. the backward's dW = X^T dY. */
  transA?: boolean;
  /** b is stored [N, K] (op(b) = b^T), e.g. Linear weights [out, in]. */
  transB?: boolean;
  /** [N], added to every row of the product (after alpha). */
  bias?: Tensor;
  /** Add to out's previous contents instead of overwriting them (gradient sums). Needs an f32 out. */
  accumulate?: boolean;
  /** Scale of the product (not of bias or the accumulated value). Default 1. */
  alpha?: number;
  /** Tile shape; default defaultMatmulTile(gpu). */
  tile?: MatmulTile;
  /**
   * Copy a transposed operand into its plain layout first (transpose()) and run the plain
   * kernel. Default: on CPU drivers when no tile is given (stagesTransposed()).
   */
  stageTransposed?: boolean;
  /**
   * Storage binding limit in bytes used to plan chunks; default gpu.limits.maxBinding. Only
   * tests lower it, to exercise chunking on small tensors.
   */
  maxBinding?: number;
}

/** Shapes as [d0, d1, ...] for messages. */
const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;
const prod = (s: readonly number[]) => s.reduce((x, y) => x * y, 1);

/**
 * out = alpha * op(a) @ op(b) (+ bias[N] broadcast over rows) (+ out if accumulate).
 *
 * a: [..., M, K] ([..., K, M] with transA). b: [K, N] ([N, K] with transB), shared by every
 * leading index of a, or [..., K, N] with the same leading dims as a (a batched matmul).
 * out: [..., M, N]. With a 2-D b and no transA, a's leading dims fold into M (one big matmul).
 *
 * Dtypes (anything else throws one line naming the tensor): a and b share the operand dtype,
 * f32 or f16; out is f32, or f16 when a is (then rounded once at the store); bias has out's
 * dtype; accumulate needs an f32 out (an f16 running sum would be rounded at every call).
 */
export function matmul(gpu: Gpu, out: Tensor, a: Tensor, b: Tensor, o: MatmulOptions = {}): void {
  const dtype = a.dtype;
  if (dtype !== 'f32' && dtype !== 'f16') throw new Error(`matmul: a ${a} must be f32 or f16`);
  expectDtype(`matmul: b (a is ${dtype})`, b, dtype);
  const outDtype = out.dtype;
  if (dtype === 'f32') expectDtype('matmul: out (a is f32)', out, 'f32');
  else if (outDtype !== 'f16' && outDtype !== 'f32') throw new Error(`matmul: out (a is f16): expected f16 or f32 elements, got ${outDtype} ${out}`);
  if (o.bias) expectDtype(`matmul: bias (out is ${outDtype})`, o.bias, outDtype);
  if (o.accumulate && outDtype !== 'f32') throw new Error(`matmul: accumulate needs an f32 out (an f16 running sum would be rounded at every call), got out ${out}`);
  if (a.shape.length < 2) throw new Error(`matmul: a ${fmt(a.shape)} must have at least 2 dims (a ${fmt(a.shape)}, b ${fmt(b.shape)})`);
  if (b.shape.length < 2) throw new Error(`matmul: b ${fmt(b.shape)} must have at least 2 dims (a ${fmt(a.shape)}, b ${fmt(b.shape)})`);
  const transA = !!o.transA;
  const transB = !!o.transB;
  const ra = a.shape.length;
  const rb = b.shape.length;
  const lead = a.shape.slice(0, ra - 2);
  const [M, Ka] = transA ? [a.shape[ra - 1], a.shape[ra - 2]] : [a.shape[ra - 2], a.shape[ra - 1]];
  const [Kb, N] = transB ? [b.shape[rb - 1], b.shape[rb - 2]] : [b.shape[rb - 2], b.shape[rb - 1]];
  const ops = `op(a) [${M}, ${Ka}] from a ${fmt(a.shape)}${transA ? ' (transA)' : ''}, op(b) [${Kb}, ${N}] from b ${fmt(b.shape)}${transB ? ' (transB)' : ''}`;
  if (Ka !== Kb) throw new Error(`matmul: inner dims differ: ${ops}`);
  const K = Ka;
  if (rb > 2) {
    const bl = b.shape.slice(0, rb - 2);
    if (bl.length !== lead.length || bl.some((d, i) => d !== lead[i])) {
      throw new Error(`matmul: batched b ${fmt(b.shape)} must have the leading dims of a ${fmt(a.shape)} (or be 2-D)`);
    }
  }
  expectShape(`matmul: out (${ops})`, out, [...lead, M, N]);
  if (o.bias) expectShape(`matmul: bias (for out ${fmt(out.shape)})`, o.bias, [N]);
  if (K === 0) throw new Error(`matmul: K = 0 (${ops}); nothing to multiply`);
  // out is bound read_write: WebGPU forbids binding its buffer again in the same dispatch.
  for (const [name, t] of [['a', a], ['b', b], ['bias', o.bias]] as const) {
    if (t && t.buffer === out.buffer) throw new Error(`matmul: out ${fmt(out.shape)} shares its GPU buffer with ${name} ${fmt(t.shape)}; write to a separate tensor`);
  }
  if (out.size === 0) return;

  const kind = { transA, transB, dtype };
  const stage = (transA || transB) && (o.stageTransposed ?? (o.tile === undefined && stagesTransposed(gpu, kind)));
  const tile = o.tile ?? defaultMatmulTile(gpu, { ...kind, staged: stage });
  checkTile(gpu, tile);
  const maxBinding = Math.min(o.maxBinding ?? Infinity, gpu.limits.maxBinding);
  const batch = prod(lead);
  const p: Plan = { dtype, outDtype, M, N, K, transA, transB, stage, alpha: o.alpha ?? 1, bias: o.bias ?? null, accumulate: !!o.accumulate, tile, maxBinding };

  if (rb === 2 && !transA) {
    // Fold every leading dim of a/out into M: one [batch*M, K] x [K, N] product.
    matmul2d(gpu, out.reshape([batch * M, N]), a.reshape([batch * M, K]), b, { ...p, M: batch * M });
    return;
  }
  if (batch === 1) {
    matmul2d(gpu, out.reshape([M, N]), a.reshape(transA ? [K, M] : [M, K]), b.reshape(transB ? [N, K] : [K, N]), p);
    return;
  }
  // True batch: item z of a/out (and of b, unless b is shared) in workgroup z.
  const bShared = rb === 2;
  const a3 = a.reshape([batch, M * K]);
  const b3 = b.reshape(bShared ? [1, K * N] : [batch, K * N]);
  const o3 = out.reshape([batch, M * N]);
  const el = bytesPerElement(dtype);
  const itemBytes = [M * K * el, M * N * bytesPerElement(outDtype), ...(bShared ? [] : [K * N * el])];
  if (bShared && b.byteLength > maxBinding) throw bTooBig(b, maxBinding);
  let per: number;
  try {
    per = Math.min(chunkRows(itemBytes, maxBinding, gpu.limits.offsetAlign, 'matmul'), gpu.limits.maxWorkgroupsPerDim);
  } catch {
    throw new Error(
      `matmul: one batch item of a ${fmt(a.shape)} / b ${fmt(b.shape)} / out ${fmt(out.shape)} cannot be bound under the ${maxBinding}-byte storage binding limit at ${gpu.limits.offsetAlign}-byte alignment; split the batch yourself`,
    );
  }
  for (let z0 = 0; z0 < batch; z0 += per) {
    const n = Math.min(per, batch - z0);
    launch(gpu, o3.rows(z0, n), a3.rows(z0, n), bShared ? b3 : b3.rows(z0, n), n, bShared, p);
  }
}

/** out = x @ weight^T (+ bias): x [..., in], weight [out, in] (Hugging Face layout), out [..., out]. */
export function linear(gpu: Gpu, out: Tensor, x: Tensor, weight: Tensor, bias?: Tensor): void {
  if (weight.shape.length !== 2) throw new Error(`linear: weight ${fmt(weight.shape)} must be 2-D [out, in] (x ${fmt(x.shape)})`);
  if (x.shape.length === 1) {
    matmul(gpu, out.reshape([1, out.size]), x.reshape([1, x.size]), weight, { transB: true, bias });
    return;
  }
  matmul(gpu, out, x, weight, { transB: true, bias });
}

// ---------------------------------------------------------------- dense (Linear with Wt stored [in, out])

/**
 * y = x @ wt (+ b): x [..., in], wt [in, out] (the transposed Hugging Face weight, as the
 * encoder stores it: a plain [K, N] operand, the faster layout for the CPU tiles), b [out] or
 * null, y [..., out]. Leading dims of x fold into the rows of one product.
 */
export function denseForward(gpu: Gpu, y: Tensor /* [..., out] */, x: Tensor /* [..., in] */, wt: Tensor /* [in, out] */, b: Tensor | null): void {
  if (wt.shape.length !== 2) throw new Error(`dense: wt ${fmt(wt.shape)} must be 2-D [in, out] (x ${fmt(x.shape)})`);
  const o: MatmulOptions = b ? { bias: b } : {};
  if (x.shape.length === 1) {
    matmul(gpu, y.reshape([1, y.size]), x.reshape([1, x.size]), wt, o);
    return;
  }
  matmul(gpu, y, x, wt, o);
}

/** Gradients denseBackward writes; a missing or null one is not computed. */
export interface DenseGrads {
  dx?: Tensor | null; // [..., in], always overwritten
  dwt?: Tensor | null; // [in, out]
  db?: Tensor | null; // [out]
  /** Add into dwt and db (gradient accumulation over micro-batches) instead of overwriting them. */
  accumulate?: boolean;
}

/**
 * Backward of denseForward, with x and dy flattened to rows [R, in] and [R, out]:
 *   dx  = dy @ wt^T      matmul(dx, dy, wt, transB)
 *   dwt = x^T @ dy       matmul(dwt, x, dy, transA), split over rows when x or dy passes the
 *                        binding limit (the chunks accumulate)
 *   db  = column sums of dy   colsum()
 * g.accumulate adds dwt and db into their previous contents (+=); dx is always overwritten
 * (where x also feeds another branch, add the two gradients with accumulateForward). Every sum
 * runs in a fixed order (no atomics): the results are bit-identical from run to run.
 * Outputs must not share a buffer with dy, x or wt (WebGPU forbids a read_write binding of a
 * buffer bound again in the same dispatch).
 *
 * Dtypes: dy, x and wt share one dtype, f32 or f16 (mixed-precision training: activations and
 * the f16 working copy of the weights); dx has that dtype too (an f16 dx is rounded once);
 * the parameter gradients dwt and db are always f32 and summed in f32.
 */
export function denseBackward(gpu: Gpu, g: DenseGrads, dy: Tensor /* [..., out] */, x: Tensor /* [..., in] */, wt: Tensor /* [in, out] */): void {
  if (wt.shape.length !== 2) throw new Error(`dense backward: wt ${fmt(wt.shape)} must be 2-D [in, out] (x ${fmt(x.shape)}, dy ${fmt(dy.shape)})`);
  const [nIn, nOut] = wt.shape;
  if (x.shape.length === 0 || x.shape[x.shape.length - 1] !== nIn) throw new Error(`dense backward: x ${fmt(x.shape)} must be [..., ${nIn}] for wt ${fmt(wt.shape)}`);
  const lead = x.shape.slice(0, -1);
  expectShape(`dense backward: dy (x ${fmt(x.shape)}, wt ${fmt(wt.shape)})`, dy, [...lead, nOut]);
  if (g.dx) expectShape('dense backward: dx (the shape of x)', g.dx, x.shape);
  if (g.dwt) expectShape('dense backward: dwt (the shape of wt)', g.dwt, wt.shape);
  if (g.db) expectShape('dense backward: db', g.db, [nOut]);
  const dt = dy.dtype;
  if (dt !== 'f32' && dt !== 'f16') throw new Error(`dense backward: dy ${dy} must be f32 or f16`);
  for (const [name, t] of [['x', x], ['wt', wt], ['dx', g.dx]] as const) {
    if (t) expectDtype(`dense backward: ${name} (dy is ${dt})`, t, dt);
  }
  // parameter gradients stay f32 whatever the activations' dtype
  for (const [name, t] of [['dwt', g.dwt], ['db', g.db]] as const) {
    if (t) expectDtype(`dense backward: ${name} (a parameter gradient)`, t, 'f32');
  }
  const R = prod(lead);
  const dy2 = dy.reshape([R, nOut]);
  const x2 = x.reshape([R, nIn]);
  if (g.dx && R > 0) matmul(gpu, g.dx.reshape([R, nIn]), dy2, wt, { transB: true });
  if (g.dwt) {
    if (R > 0) matmul(gpu, g.dwt, x2, dy2, { transA: true, accumulate: g.accumulate });
    else if (!g.accumulate) zeroFill(gpu, g.dwt); // an empty sum (matmul refuses K = 0)
  }
  if (g.db) colsum(gpu, g.db, dy2, { accumulate: g.accumulate });
}

function zeroFill(gpu: Gpu, t: Tensor): void {
  const z = gpu.zeros(t.shape);
  gpu.copy(t, z);
  z.release();
}

export interface ColsumOptions {
  /** Add into out instead of overwriting it. */
  accumulate?: boolean;
  /** Rows each thread of the first pass sums (default 64; see colsum). */
  blockRows?: number;
}

/** Threads per colsum workgroup, all along the columns. */
const COLSUM_WG = 64;

/**
 * out[c] (+)= sum over rows r of x[r, c]: x [..., C] with leading dims folded into rows, out [C].
 * x is f32 or f16 (widened on load; needs 'shader-f16'); out and the sums are f32.
 * The bias gradient of a dense layer. Two passes of one entry, no atomics:
 *   rows <= blockRows   one thread per column sums every row into out
 *   otherwise           one thread per (column, block of blockRows rows) writes a block sum to
 *                       partial [ceil(rows / blockRows), C], then colsum(out, partial) adds the
 *                       block sums in block order (recursing if there are still many)
 * so the sums run in a fixed order (bit-identical from run to run) with about
 * blockRows + rows / blockRows additions in each path instead of rows, and x is read in row
 * chunks under the storage binding limit.
 */
export function colsum(gpu: Gpu, out: Tensor /* [C] */, x: Tensor /* [..., C] */, o: ColsumOptions = {}): void {
  if (x.shape.length === 0) throw new Error(`colsum: x ${fmt(x.shape)} must have at least one dimension`);
  const C = x.shape[x.shape.length - 1];
  const rows = C === 0 ? 0 : x.size / C;
  expectShape(`colsum: out (column sums of x ${fmt(x.shape)})`, out, [C]);
  if (x.dtype !== 'f32' && x.dtype !== 'f16') throw new Error(`colsum: x ${x} must be f32 or f16`);
  expectDtype('colsum: out (the sums are f32)', out, 'f32');
  if (out.buffer === x.buffer) throw new Error(`colsum: out ${fmt(out.shape)} shares its GPU buffer with x ${fmt(x.shape)}; write to a separate tensor`);
  const blockRows0 = o.blockRows ?? 64;
  // blockRows 1 would copy x into partial and recurse forever
  if (!Number.isInteger(blockRows0) || blockRows0 < 2) throw new Error(`colsum: blockRows must be an integer >= 2, got ${blockRows0}`);
  if (C === 0) return;
  const colGroups = Math.ceil(C / COLSUM_WG);
  if (colGroups > gpu.limits.maxWorkgroupsPerDim) throw new Error(`colsum: C = ${C} columns need ${colGroups} workgroups, over ${gpu.limits.maxWorkgroupsPerDim}`);
  const x2 = x.reshape([rows, C]);
  const dispatch = (dst: Tensor, src: Tensor, count: number, blockRows: number, outRow: number, blocks: number, accumulate: boolean) =>
    gpu.dispatch({
      kernel: 'colsum',
      entry: 'colsum',
      // the block sums of an f16 x are f32, so only its first pass is F16
      defines: { WG: COLSUM_WG, ACCUMULATE: accumulate, ...(src.dtype === 'f16' ? { F16: true } : {}) },
      bindings: [dst, src],
      uniforms: { rows: count, C, blockRows, outRow },
      workgroups: [colGroups, blocks],
    });
  if (rows === 0) {
    // an empty sum: out = 0, or unchanged when accumulating (src is never read: bind out's size)
    if (!o.accumulate) zeroFill(gpu, out);
    return;
  }
  if (rows <= blockRows0 && x2.byteLength <= gpu.limits.maxBinding) {
    dispatch(out, x2, rows, rows, 0, 1, !!o.accumulate);
    return;
  }
  const chunks: { start: number; count: number; blockRows: number; blocks: number; outRow: number }[] = [];
  let blocks = 0;
  forEachRowChunk(gpu, 'colsum', rows, [C * bytesPerElement(x.dtype)], (start, count) => {
    // at most maxWorkgroupsPerDim blocks per dispatch (workgroups in y)
    const blockRows = Math.max(blockRows0, Math.ceil(count / gpu.limits.maxWorkgroupsPerDim));
    const nb = Math.ceil(count / blockRows);
    chunks.push({ start, count, blockRows, blocks: nb, outRow: blocks });
    blocks += nb;
  });
  if (blocks >= rows) throw new Error(`colsum: rows of x ${fmt(x.shape)} fit the ${gpu.limits.maxBinding}-byte binding limit only one at a time; nothing to sum per dispatch`);
  const partial = gpu.empty([blocks, C]);
  for (const k of chunks) dispatch(partial, x2.rows(k.start, k.count), k.count, k.blockRows, k.outRow, k.blocks, false);
  colsum(gpu, out, partial, o);
  partial.release();
}

interface Plan {
  /** Element type of a and b (f32 sums either way). */
  dtype: DType;
  /** Element type of out and bias: dtype, or f32 with f16 operands. */
  outDtype: DType;
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  /** Transpose the transposed operands into temporaries at launch (see stageTransposed). */
  stage: boolean;
  alpha: number;
  bias: Tensor | null;
  accumulate: boolean;
  tile: MatmulTile;
  maxBinding: number;
}

function bTooBig(b: Tensor, maxBinding: number): Error {
  return new Error(
    `matmul: b ${fmt(b.shape)} is ${b.byteLength} bytes, over the ${maxBinding}-byte storage binding limit; only a and out are chunked (split b's N yourself)`,
  );
}

/**
 * One [M, K] x [K, N] product, split into row chunks of M (out and, unless transA, a) or,
 * when a transposed a [K, M] is too big, into chunks of K that accumulate into out.
 */
function matmul2d(gpu: Gpu, out: Tensor, a: Tensor, b: Tensor, p: Plan): void {
  const { M, N, K, maxBinding } = p;
  const align = gpu.limits.offsetAlign;
  const el = bytesPerElement(p.dtype);
  const bm = p.tile.wgY * p.tile.tm;
  const maxRows = gpu.limits.maxWorkgroupsPerDim * bm; // workgroups in y
  const fits = (t: Tensor) => t.byteLength <= maxBinding;

  if (p.transA && (!fits(a) || (!fits(b) && !p.transB))) {
    // a stored [K, M] (and b [K, N], e.g. dW = X^T dY over many rows): split K. Chunk c adds
    // alpha * a_c^T b_c to out; only the first chunk applies bias and the caller's accumulate flag.
    if (p.transB) throw new Error(`matmul: a ${fmt(a.shape)} (transA) is over the ${maxBinding}-byte binding limit and b ${fmt(b.shape)} is transposed; K can only be split when b is stored [K, N]`);
    if (!fits(out)) throw new Error(`matmul: out ${fmt(out.shape)} is over the ${maxBinding}-byte binding limit too (a ${fmt(a.shape)} transA, b ${fmt(b.shape)}); only K is split here, out is bound whole`);
    const rows = chunkRows([M * el, N * el], maxBinding, align, 'matmul');
    for (let k0 = 0; k0 < K; k0 += rows) {
      const kc = Math.min(rows, K - k0);
      const first = k0 === 0;
      matmul2d(gpu, out, a.rows(k0, kc), b.rows(k0, kc), {
        ...p,
        K: kc,
        bias: first ? p.bias : null,
        accumulate: first ? p.accumulate : true,
      });
    }
    return;
  }
  if (!fits(b)) throw bTooBig(b, maxBinding);
  if (fits(out) && fits(a) && M <= maxRows) {
    launch(gpu, out, a, b, 1, true, p);
    return;
  }
  if (p.transA) throw new Error(`matmul: out ${fmt(out.shape)} is over the ${maxBinding}-byte binding limit with transA a ${fmt(a.shape)}; only non-transposed a is split by rows`);
  const rows = Math.min(chunkRows([N * bytesPerElement(p.outDtype), K * el], maxBinding, align, 'matmul'), maxRows);
  for (let m0 = 0; m0 < M; m0 += rows) {
    const mc = Math.min(rows, M - m0);
    launch(gpu, out.rows(m0, mc), a.rows(m0, mc), b, 1, true, { ...p, M: mc });
  }
}

/** Dispatch one (possibly batched) product whose operands all fit one binding each. */
function launch(gpu: Gpu, out: Tensor, a: Tensor, b: Tensor, batch: number, bShared: boolean, p: Plan): void {
  const { M, N, K, transA, transB, tile } = p;
  if (p.stage && (transA || transB)) {
    // The copies have the bytes of the operands they replace, so they fit a binding too. A b
    // shared by a chunked product is copied once per chunk (only past the binding limit).
    const bItems = bShared ? 1 : batch;
    const at = transA ? gpu.empty([batch, M, K], p.dtype) : null;
    const bt = transB ? gpu.empty([bItems, K, N], p.dtype) : null;
    if (at) transpose(gpu, at, a.reshape([batch, K, M]));
    if (bt) transpose(gpu, bt, b.reshape([bItems, N, K]));
    launch(gpu, out, at ?? a, bt ?? b, batch, bShared, { ...p, transA: false, transB: false, stage: false });
    at?.release(); // back to the pool: later work is queued after this product
    bt?.release();
    return;
  }
  // vec4 loads need every vec4 to start at a multiple of 4 elements along the loaded axis:
  // a along k ([M, K], K % 4) or along m ([K, M], M % 4); b along n ([K, N]) or k ([N, K]).
  // Binding offsets are multiples of 16 bytes (offsetAlign >= 16), so the views start aligned
  // (a vec4 is 16 bytes in f32, 8 in f16). The plain shared variant loads scalars; the block
  // variant loads vec4s where this allows and four guarded scalars elsewhere.
  const vec = !tile.shared || !!tile.block;
  const vecA = vec && (transA ? M % 4 === 0 && !tile.subgroup : K % 4 === 0);
  const vecB = vec && (transB ? K % 4 === 0 : N % 4 === 0);
  gpu.dispatch({
    kernel: 'matmul',
    entry: 'forward',
    defines: {
      WG_X: tile.wgX,
      WG_Y: tile.wgY,
      TM: tile.tm,
      TN: tile.tn,
      SHARED: tile.shared,
      SUBGROUP: !!tile.subgroup,
      UNROLLED: !!tile.unrolled,
      ...(tile.block ? { BLOCK: true } : {}), // the other variants keep their pipeline keys
      BK: tile.shared ? (tile.bk ?? 16) : 0,
      TRANS_A: transA,
      TRANS_B: transB,
      VEC_A: vecA,
      VEC_B: vecB,
      BIAS: !!p.bias,
      ACCUMULATE: p.accumulate,
      // f32 keeps its pipeline keys
      ...(p.dtype === 'f16' ? { F16: true } : {}),
      ...(p.dtype === 'f16' && p.outDtype === 'f32' ? { OUT_F32: true } : {}),
    },
    bindings: [out, a, b, p.bias],
    uniforms: { M, N, K, strideA: M * K, strideB: bShared ? 0 : K * N, strideC: M * N, alpha: f32(p.alpha), tm: tile.tm, tn: tile.tn },
    workgroups: [Math.ceil(N / (tile.wgX * tile.tn)), Math.ceil(M / (tile.wgY * tile.tm)), batch],
  });
}
