// Launchers for shaders/attention.wgsl: fused multi-head self-attention over the packed qkv
// projection (GTE's qkv_proj layout; BERT's q/k/v weights are concatenated at load to match).

import type { Gpu } from '../gpu/device.ts';
import { f32 } from '../gpu/device.ts';
import { type DType, type Tensor, bytesPerElement, expectShape } from '../gpu/tensor.ts';
import { fixedSubgroupSize, isCpuAdapter } from '../gpu/adapter.ts';
import { chunkRows } from '../gpu/launch.ts';
import { tunedAttention, tunedAttentionBackward } from '../tune/table.ts';

/** Largest head dim: q and the output accumulators of an invocation's rows are private arrays. */
export const MAX_HEAD_DIM = 128;

/**
 * lse of a query row with no real key at all (only possible without a [CLS] token): the output
 * row is 0 and lse is float32 max, so exp(s - lse) = 0 for every key in a backward, never NaN.
 */
export const LSE_NO_KEYS = 3.4028234663852886e38;

/**
 * Block shapes (pipeline defines). bq: invocations per workgroup; rq: query rows per invocation
 * (a workgroup covers bq * rq rows); bk: keys per online-softmax step (<= 32); subgroup: share
 * each k/v row across a subgroup of bq lanes with subgroupShuffle (needs the 'subgroups' feature
 * and a fixed subgroup size equal to bq).
 */
export interface AttentionTiles {
  bq: number;
  rq: number;
  bk: number;
  subgroup?: boolean;
}

/**
 * Defaults. CPU drivers: 8 lanes (one AVX2 SIMD batch) sharing k/v rows through subgroupShuffle
 * where the subgroup size is 8 (llvmpipe), several query rows per invocation so each k/v vec4 is
 * reused, fewer of them for large d (q and the accumulators are 2 * rq * d floats per lane and
 * spill: d = 64 with rq = 8 ran 3.5x slower than rq = 4), and fewer for short sequences so a
 * workgroup does not compute mostly clamped duplicate rows (L = 13 with 32 rows would waste
 * 60%). Measured on llvmpipe, 2 shared cores, GFLOP/s of wall time (4 L^2 d per head):
 *   B=16 L=128 heads=12 d=32: subgroup rq=4 bk=4..8: 8-10; no subgroup rq=4..8: ~4; rq=1: ~0.7
 *   B=2 L=512 heads=16 d=64:  subgroup rq=4: 11-17; rq=8: 4; no subgroup rq=4..8: 3.2
 * f16 qkv/out use the same tiles: the private arrays stay f32, so the spill limits are the same.
 * Same machine, default tiles, best of 4, f32 vs f16: B=16 L=128 heads=12 d=32 42 vs 48 ms,
 * B=2 L=512 heads=16 d=64 154 vs 144 ms, i.e. equal within the noise (a CPU driver gains
 * nothing from f16 but memory: the math is f32 and each load adds a conversion).
 * Real GPUs: one row per invocation, 64-wide workgroups (not measured: no GPU in CI).
 */
export function attentionTiles(gpu: Gpu, seqLen: number, headDim: number): AttentionTiles {
  const tuned = tunedAttention(gpu, headDim, seqLen); // what `aqa tune` measured fastest
  if (tuned) return tuned;
  if (!isCpuAdapter(gpu)) return { bq: 64, rq: 1, bk: 16 };
  const byDim = headDim <= 16 ? 8 : headDim <= 64 ? 4 : 2;
  const byLen = 2 ** Math.ceil(Math.log2(Math.max(1, Math.ceil(seqLen / 8))));
  return { bq: 8, rq: Math.min(byDim, byLen), bk: 8, subgroup: fixedSubgroupSize(gpu) === 8 };
}

export interface AttentionOptions {
  /** Block shapes; default attentionTiles(gpu, L, d). */
  tiles?: AttentionTiles;
  /**
   * Storage binding limit in bytes used to plan batch chunks; default gpu.limits.maxBinding.
   * Only tests lower it, to exercise chunking on small tensors.
   */
  maxBinding?: number;
}

/**
 * out = softmax(q k^T / sqrt(d) + maskbias) v per (batch, head), heads concatenated head-major;
 * lse = log-sum-exp (natural log) of each row's scaled, masked scores, saved for the backward.
 *
 *   out  [B, L, H]      lse [B, heads, L]
 *   qkv  [B, L, 3H]     per token [q | k | v], each [heads, d]; H = heads * d, d <= 128
 *   mask [B, L] u32     1 = real token, 0 = padding
 *
 * qkv and out are both f32 or both f16 (f16 needs the adapter's 'shader-f16'; the pipeline
 * refuses it otherwise); lse is f32 either way, and so is all the arithmetic: the f16 variant
 * only converts on load and rounds the output on store. Every tile shape works in both.
 * Padded keys are excluded; padded query rows are still computed (they attend to the real keys),
 * since HF's last_hidden_state includes them. A row with no real key gets out = 0 and
 * lse = LSE_NO_KEYS. Batches over the storage-binding limit are split into chunks of whole rows.
 */
export function attentionForward(gpu: Gpu, out: Tensor, lse: Tensor, qkv: Tensor, mask: Tensor, heads: number, o: AttentionOptions = {}): void {
  const { B, L, d, dtype } = checkAttention(gpu, 'attention', heads, { out, lse, qkv, mask });
  if (B === 0 || L === 0) return;
  const maxBinding = o.maxBinding ?? gpu.limits.maxBinding;
  const t = o.tiles ?? attentionTiles(gpu, L, d);
  if (!(t.bk >= 1 && t.bk <= 32) || !(t.rq >= 1) || !(t.bq >= 1)) throw new Error(`attention: bad tiles ${JSON.stringify(t)} (bk must be 1..32)`);
  checkSubgroup(gpu, 'attention', t);
  const defines = {
    D: d,
    D_ALIGN4: d % 4 === 0,
    BQ: t.bq,
    RQ: t.rq,
    BK: t.bk,
    ...(t.subgroup ? { SUBGROUP: true, SG: t.bq } : {}),
    ...(dtype === 'f16' ? { F16: true } : {}),
  };
  const scaleLog2e = Math.LOG2E / Math.sqrt(d);
  forEachBatchChunk(gpu, 'attention', qkv, maxBinding, (b0, nb, view) => {
    gpu.dispatch({
      kernel: 'attention',
      entry: 'forward',
      defines,
      bindings: [view(out), lse, view(qkv), mask],
      uniforms: { seqLen: L, heads, b0, scaleLog2e: f32(scaleLog2e) },
      workgroups: [Math.ceil(L / (t.bq * t.rq)), heads, nb],
    });
  });
}

/**
 * Backward block shapes (pipeline defines). bq: invocations per workgroup in both passes;
 * rq: query rows per invocation of the dq pass; rk: key rows per invocation of the dk/dv pass;
 * subgroup: as in AttentionTiles (the streamed rows are shared through subgroupShuffle).
 */
export interface AttentionBackwardTiles {
  bq: number;
  rq: number;
  rk: number;
  subgroup?: boolean;
}

/**
 * Defaults. CPU drivers: as attentionTiles, but the private arrays are larger (dq pass: q, dout
 * and the dq accumulator, 3 rq d floats; dk/dv pass: k, v and two accumulators, 4 rk d floats),
 * so the row counts keep them near 512 floats, past which they spill. Measured on llvmpipe
 * (2 shared, busy cores; best of 8 rounds, ms, subgroup variant):
 *   B=8 L=128 heads=12 d=32: rq/rk 4/4 165, 4/2 162, 2/2 180, 8/4 339, 4/8 793 (forward 56)
 *   B=2 L=256 heads=12 d=64: rq/rk 2/2 383, 1/1 436, 2/1 563, 4/2 728 (forward 148)
 * The plain-load variant (what SwiftShader and Chromium get) ran 2.1x slower there (d = 32, 4/4).
 * f16 tensors use the same tiles: the private arrays stay f32, so the spill limits are the same.
 * Real GPUs: one row per invocation, 64-wide workgroups (not measured: no GPU in CI).
 */
export function attentionBackwardTiles(gpu: Gpu, seqLen: number, headDim: number): AttentionBackwardTiles {
  const tuned = tunedAttentionBackward(gpu, headDim, seqLen); // what `aqa tune` measured fastest
  if (tuned) return tuned;
  if (!isCpuAdapter(gpu)) return { bq: 64, rq: 1, rk: 1 };
  const byLen = 2 ** Math.ceil(Math.log2(Math.max(1, Math.ceil(seqLen / 8))));
  const rq = headDim <= 16 ? 8 : headDim <= 32 ? 4 : headDim <= 64 ? 2 : 1;
  const rk = headDim <= 32 ? 4 : headDim <= 64 ? 2 : 1;
  return { bq: 8, rq: Math.min(rq, byLen), rk: Math.min(rk, byLen), subgroup: fixedSubgroupSize(gpu) === 8 };
}

export interface AttentionBackwardOptions {
  /** Block shapes; default attentionBackwardTiles(gpu, L, d). */
  tiles?: AttentionBackwardTiles;
  /** As AttentionOptions.maxBinding: only tests lower it, to exercise chunking. */
  maxBinding?: number;
}

/**
 * Backward of attentionForward: dqkv = d(sum dout * out) / d qkv, from the forward's out and
 * lse (probabilities are recomputed, FlashAttention-2 style; nothing L x L is stored):
 *
 *   p = exp(q k^T * scale - lse),  delta_i = rowsum(dout_i * out_i),  dP = dout v^T,
 *   dS = p * (dP - delta),  dq = scale dS k,  dk = scale dS^T q,  dv = p^T dout
 *
 *   dqkv [B, L, 3H] (written whole: [dq | dk | dv] per token, the layout of qkv)
 *   dout [B, L, H]   out [B, L, H]   lse [B, heads, L]   (out and lse from attentionForward)
 *   qkv  [B, L, 3H]  the forward's input (after RoPE)     mask [B, L] u32
 *
 * Padded keys get dk = dv = 0 and contribute nothing; padded query rows are ordinary rows (the
 * forward computed them), so a non-zero dout there reaches q and the real keys. A row with no
 * real key (lse = LSE_NO_KEYS) gets dq = 0 and contributes nothing. Two passes per batch chunk
 * (dq and delta, then dk and dv), each output written by one invocation in a fixed order: no
 * atomics, bit-identical from run to run. Chunked over the storage-binding limit as the forward.
 * dqkv, dout, out and qkv are all f32 or all f16 (f16 needs 'shader-f16', refused by the
 * pipeline otherwise; every tile shape works in both); lse and the internal delta are f32, and
 * so is all the arithmetic: the f16 variant converts on load and rounds each gradient once.
 */
export function attentionBackward(
  gpu: Gpu,
  dqkv: Tensor /* [B, L, 3H] */,
  dout: Tensor /* [B, L, H] */,
  out: Tensor /* [B, L, H] */,
  lse: Tensor /* [B, heads, L] */,
  qkv: Tensor /* [B, L, 3H] */,
  mask: Tensor /* [B, L] u32 */,
  heads: number,
  o: AttentionBackwardOptions = {},
): void {
  const { B, L, d, dtype } = checkAttention(gpu, 'attention backward', heads, { dqkv, dout, out, lse, qkv, mask });
  // A buffer written by a dispatch may not also be bound for reading (WebGPU usage rules).
  for (const [n, t] of Object.entries({ dout, out, lse, qkv, mask })) {
    if (t.buffer === dqkv.buffer) throw new Error(`attention backward: dqkv and ${n} share a buffer; dqkv must be separate from every input`);
  }
  if (B === 0 || L === 0) return;
  const maxBinding = o.maxBinding ?? gpu.limits.maxBinding;
  const t = o.tiles ?? attentionBackwardTiles(gpu, L, d);
  if (!(t.bq >= 1) || !(t.rq >= 1) || !(t.rk >= 1)) throw new Error(`attention backward: bad tiles ${JSON.stringify(t)}`);
  checkSubgroup(gpu, 'attention backward', t);
  const defines = {
    BACKWARD: true,
    D: d,
    D_ALIGN4: d % 4 === 0,
    BQ: t.bq,
    RQ: t.rq,
    RK: t.rk,
    ...(t.subgroup ? { SUBGROUP: true, SG: t.bq } : {}),
    ...(dtype === 'f16' ? { F16: true } : {}),
  };
  const scale = 1 / Math.sqrt(d);
  const uniforms = (b0: number) => ({ seqLen: L, heads, b0, scaleLog2e: f32(Math.LOG2E * scale), scale: f32(scale), d4: Math.ceil(d / 4) });
  // delta_i = rowsum(dout_i * out_i), [B, heads, L] like lse and bound whole like it.
  const delta = gpu.empty([B, heads, L]);
  try {
    forEachBatchChunk(gpu, 'attention backward', qkv, maxBinding, (b0, nb, view) => {
      gpu.dispatch({
        kernel: 'attention',
        entry: 'backward_dq',
        defines,
        bindings: [view(dqkv), delta, view(qkv), view(dout), view(out), lse, mask],
        uniforms: uniforms(b0),
        workgroups: [Math.ceil(L / (t.bq * t.rq)), heads, nb],
      });
      gpu.dispatch({
        kernel: 'attention',
        entry: 'backward_dkv',
        defines,
        bindings: [view(dqkv), delta, view(qkv), view(dout), null, lse, mask],
        uniforms: uniforms(b0),
        workgroups: [Math.ceil(L / (t.bq * t.rk)), heads, nb],
      });
    });
  } finally {
    delta.release(); // also when the pipeline is refused (no 'shader-f16')
  }
}

/** The tensors of one attention launch; qkv and mask always, the others as the launch binds them. */
interface AttentionTensors {
  qkv: Tensor;
  mask: Tensor;
  lse: Tensor;
  out: Tensor;
  dout?: Tensor;
  dqkv?: Tensor;
}

/**
 * The shape and dtype checks forward and backward share: qkv [B, L, 3H] with H = heads * d and
 * d <= MAX_HEAD_DIM; out and dout [B, L, H], dqkv [B, L, 3H], lse [B, heads, L], mask [B, L];
 * mask u32, lse f32, qkv f32 or f16 and out, dout, dqkv the dtype of qkv; mask and lse (bound
 * whole) under the storage binding limit. Checks the tensors in the order given; `what`
 * prefixes every message.
 */
function checkAttention(gpu: Gpu, what: string, heads: number, ts: AttentionTensors): { B: number; L: number; d: number; dtype: DType } {
  const { qkv } = ts;
  if (qkv.shape.length !== 3) throw new Error(`${what}: qkv must be [B, L, 3H], got [${qkv.shape.join(', ')}]`);
  const [B, L, H3] = qkv.shape;
  if (!Number.isInteger(heads) || heads < 1 || H3 % (3 * heads) !== 0) throw new Error(`${what}: qkv last dim ${H3} is not 3 * heads(${heads}) * d`);
  const H = H3 / 3;
  const d = H / heads;
  if (d > MAX_HEAD_DIM) throw new Error(`${what}: head dim ${d} is over the supported ${MAX_HEAD_DIM}`);
  const shapes: Record<keyof AttentionTensors, number[]> = { qkv: [B, L, H3], dqkv: [B, L, H3], out: [B, L, H], dout: [B, L, H], lse: [B, heads, L], mask: [B, L] };
  const given = Object.entries(ts).filter((e): e is [keyof AttentionTensors, Tensor] => e[1] !== undefined);
  for (const [n, t] of given) if (n !== 'qkv') expectShape(`${what}: ${n}`, t, shapes[n]);
  const dtype = qkv.dtype;
  if (dtype !== 'f32' && dtype !== 'f16') throw new Error(`${what}: qkv must be f32 or f16, got ${dtype}`);
  for (const [n, t] of given) {
    if (n === 'mask' || n === 'lse') {
      const dt = n === 'mask' ? 'u32' : 'f32';
      if (t.dtype !== dt) throw new Error(`${what}: ${n} must be ${dt}, got ${t.dtype}`);
    } else if (t.dtype !== dtype) {
      throw new Error(`${what}: ${n} is ${t.dtype} but qkv is ${dtype}`);
    }
  }
  for (const [n, t] of [['mask', ts.mask], ['lse', ts.lse]] as const) {
    if (t.byteLength > gpu.limits.maxBinding) throw new Error(`${what}: ${n} [${t.shape.join(', ')}] is over the storage binding limit; use a smaller batch`);
  }
  return { B, L, d, dtype };
}

/**
 * fn(b0, nb, view) for each chunk of whole batch rows of qkv [B, L, 3H]: rows [b0, b0 + nb),
 * view(x) the same rows of another [B, ...] tensor (x itself when one chunk is the whole batch).
 * qkv rows are 3x out/dout rows, so a chunk start aligned for qkv is aligned for them too
 * (gcd(3n, 256) = gcd(n, 256)). Batch rows go in workgroup z, so a chunk also stays under the
 * per-dimension workgroup limit.
 */
function forEachBatchChunk(gpu: Gpu, what: string, qkv: Tensor, maxBinding: number, fn: (b0: number, nb: number, view: (x: Tensor) => Tensor) => void): void {
  const [B, L, H3] = qkv.shape;
  const rowBytes = L * H3 * bytesPerElement(qkv.dtype);
  const maxWg = gpu.limits.maxWorkgroupsPerDim;
  const fits = qkv.byteLength <= maxBinding && B <= maxWg;
  const chunk = fits ? B : chunkRows([rowBytes], Math.min(maxBinding, maxWg * rowBytes), gpu.limits.offsetAlign, what);
  for (let b0 = 0; b0 < B; b0 += chunk) {
    const nb = Math.min(chunk, B - b0);
    fn(b0, nb, (x) => (nb === B ? x : x.rows(b0, nb)));
  }
}

/** Subgroup tiles share rows through subgroupShuffle across bq lanes: the subgroup size must be fixed at bq. */
function checkSubgroup(gpu: Gpu, what: string, t: { bq: number; subgroup?: boolean }): void {
  if (t.subgroup && fixedSubgroupSize(gpu) !== t.bq) throw new Error(`${what}: subgroup tiles need a fixed subgroup size of ${t.bq}; this adapter has ${fixedSubgroupSize(gpu) || 'none'}`);
}
