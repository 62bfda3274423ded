// One shape of one tuned op, ready to run any of its candidates: inputs uploaded once
// (uniform(-1, 1), seeded), one output set every candidate writes, the reference output of the
// built-in default variant, and the check of a candidate's output against it.
//
// Tolerances (candidate vs default, both f32 sums in another order): each is within
// 4 sqrt(K + 3) 2^-24 sum_k |a_k b_k| of the exact product (test/cases/matmul.ts), and with
// inputs in (-1, 1) that sum is under K, so two of them differ by at most
// 8 sqrt(K + 3) 2^-24 K (f16 operands too: their products are exact in f32, the sums are
// f32); an f16 output adds one f16 rounding of each, 2^-10 |y| (+ 2^-14 for a
// flushed subnormal). Attention: out and lse as the flat-softmax conformance cases
// (2e-6 each against float64, so 1e-5 between two), the backward 1e-3 of its largest gradient
// (measured errors are ~1e-5 of it). A wrong index, a missed tile or block moves outputs by a
// large fraction of their size, far beyond all of these.

import type { Gpu } from '../gpu/device.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { fromHalf, toHalf } from '../gpu/half.ts';
import { randu } from '../util/random.ts';
import { matmul } from '../kernels/matmul.ts';
import { type AttentionBackwardTiles, type AttentionTiles, attentionBackward, attentionForward } from '../kernels/attention.ts';
import type { AttentionCandidate, MatmulCandidate } from './candidates.ts';
import type { MatmulDtype } from './table.ts';
import { type AttentionShape, type MatmulShape, attentionShapeName, matmulShapeName } from './shapes.ts';

export interface Workload {
  shape: string;
  what: string;
  flops: number;
  /** Record candidate i's launch. */
  run(i: number): void;
  /** Outputs of the built-in default variant (recorded, read back). */
  reference(): Promise<Float32Array[]>;
  /** Clear the outputs, run candidate i once and compare with ref: the largest difference and whether it is within tolerance. */
  check(i: number, ref: Float32Array[]): Promise<{ ok: boolean; detail: string }>;
  release(): void;
}

const U = 2 ** -24;

/** |x - y| <= atol + rtol |y| everywhere (NaN fails); the largest |x - y| and the tolerance there. */
function compare(name: string, x: Float32Array, y: Float32Array, atol: number, rtol = 0): { ok: boolean; detail: string } {
  let max = 0;
  let bad = -1;
  for (let i = 0; i < y.length; i++) {
    const d = Math.abs(x[i] - y[i]);
    if (!(d <= atol + rtol * Math.abs(y[i])) && bad < 0) bad = i;
    if (d > max || Number.isNaN(d)) max = Number.isNaN(d) ? NaN : Math.max(max, d);
  }
  const tol = `atol ${atol.toExponential(1)}${rtol ? ` rtol ${rtol.toExponential(1)}` : ''}`;
  return bad < 0 ? { ok: true, detail: `${name} maxdiff ${max.toExponential(2)}` } : { ok: false, detail: `${name} at ${bad}: ${x[bad]} vs default ${y[bad]} (maxdiff ${max.toExponential(2)}, ${tol})` };
}

async function readAll(gpu: Gpu, ts: Tensor[]): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const t of ts) out.push(t.dtype === 'f16' ? fromHalf((await gpu.read(t)) as Uint16Array) : await gpu.readF32(t));
  return out;
}

function both(checks: { ok: boolean; detail: string }[]): { ok: boolean; detail: string } {
  const bad = checks.find((c) => !c.ok);
  return bad ?? { ok: true, detail: checks.map((c) => c.detail).join(', ') };
}

export function matmulWorkload(gpu: Gpu, s: MatmulShape, dtype: MatmulDtype, cands: MatmulCandidate[], seed: number): Workload {
  const { M, K, N } = s;
  const transA = s.op.startsWith('a^T');
  const transB = s.op.endsWith('^T');
  const up = (x: Float32Array, shape: number[]) => (dtype === 'f16' ? gpu.upload(toHalf(x), shape) : gpu.upload(x, shape));
  const a = up(randu(M * K, seed), transA ? [K, M] : [M, K]);
  const b = up(randu(K * N, seed + 1), transB ? [N, K] : [K, N]);
  // the encoder's dWt = X^T dY keeps an f32 output under f16 activations (parameter gradients)
  const out = gpu.empty([M, N], dtype === 'f16' && !transA ? 'f16' : 'f32');
  const halfOut = out.dtype === 'f16';
  const atol = 8 * Math.sqrt(K + 3) * U * K + (halfOut ? 2 * 2 ** -14 : 0);
  return {
    shape: matmulShapeName(s),
    what: s.what,
    flops: 2 * M * N * K,
    run: (i) => matmul(gpu, out, a, b, { transA, transB, tile: cands[i].tile, stageTransposed: cands[i].stage }),
    async reference() {
      matmul(gpu, out, a, b, { transA, transB });
      return readAll(gpu, [out]);
    },
    async check(i, ref) {
      gpu.clear(out);
      this.run(i);
      const [got] = await readAll(gpu, [out]);
      return compare('out', got, ref[0], atol, halfOut ? 2 ** -9 : 0);
    },
    release: () => [a, b, out].forEach((t) => t.release()),
  };
}

/** qkv uniform(-1, 1) (a flat softmax), the last sequence padded to half its length. */
function attentionInputs(gpu: Gpu, s: AttentionShape, seed: number): { qkv: Tensor; mask: Tensor } {
  const { B, L, heads, headDim } = s;
  const mask = new Uint32Array(B * L);
  for (let b = 0; b < B; b++) {
    const len = b === B - 1 && B > 1 ? Math.max(1, Math.ceil(L / 2)) : L;
    mask.fill(1, b * L, b * L + len);
  }
  return { qkv: gpu.upload(randu(B * L * 3 * heads * headDim, seed), [B, L, 3 * heads * headDim]), mask: gpu.upload(mask, [B, L]) };
}

export function attentionWorkload(gpu: Gpu, s: AttentionShape, cands: AttentionCandidate<AttentionTiles>[], seed: number): Workload {
  const { B, L, heads, headDim } = s;
  const { qkv, mask } = attentionInputs(gpu, s, seed);
  const out = gpu.empty([B, L, heads * headDim]);
  const lse = gpu.empty([B, heads, L]);
  const launch = (tiles?: AttentionTiles) => attentionForward(gpu, out, lse, qkv, mask, heads, { tiles });
  return {
    shape: attentionShapeName(s),
    what: 'attention',
    flops: 4 * B * heads * L * L * headDim,
    run: (i) => launch(cands[i].tiles),
    async reference() {
      launch();
      return readAll(gpu, [out, lse]);
    },
    async check(i, ref) {
      gpu.clear(out);
      gpu.clear(lse);
      this.run(i);
      const [o, l] = await readAll(gpu, [out, lse]);
      return both([compare('out', o, ref[0], 1e-5), compare('lse', l, ref[1], 1e-5, 2e-6)]);
    },
    release: () => [qkv, mask, out, lse].forEach((t) => t.release()),
  };
}

export function attentionBackwardWorkload(gpu: Gpu, s: AttentionShape, cands: AttentionCandidate<AttentionBackwardTiles>[], seed: number): Workload {
  const { B, L, heads, headDim } = s;
  const H = heads * headDim;
  const { qkv, mask } = attentionInputs(gpu, s, seed);
  const out = gpu.empty([B, L, H]);
  const lse = gpu.empty([B, heads, L]);
  attentionForward(gpu, out, lse, qkv, mask, heads);
  const dout = gpu.upload(randu(B * L * H, seed + 1), [B, L, H]);
  const dqkv = gpu.empty([B, L, 3 * H]);
  const launch = (tiles?: AttentionBackwardTiles) => attentionBackward(gpu, dqkv, dout, out, lse, qkv, mask, heads, { tiles });
  return {
    shape: attentionShapeName(s),
    what: 'attention backward',
    // FlashAttention's count: five L x L x d products (s, dP, dq, dk, dv)
    flops: 10 * B * heads * L * L * headDim,
    run: (i) => launch(cands[i].tiles),
    async reference() {
      launch();
      return readAll(gpu, [dqkv]);
    },
    async check(i, ref) {
      gpu.clear(dqkv);
      this.run(i);
      const [got] = await readAll(gpu, [dqkv]);
      let max = 0;
      for (const v of ref[0]) max = Math.max(max, Math.abs(v));
      return compare('dqkv', got, ref[0], 1e-3 * max);
    },
    release: () => [qkv, mask, out, lse, dout, dqkv].forEach((t) => t.release()),
  };
}
