// Conformance cases for shaders/rope.wgsl: q and k rotated in place, v untouched, tables longer
// than the sequence, one-token rows, head dims 16..64, plain and NTK-scaled tables, chunking;
// then the backward on the same shapes, and gradient checks of the float64 forward. The f16
// forward and backward (names ending in ' f16') run on the same shapes, or, on an adapter
// without 'shader-f16', check that the launch is refused.

import type { Gpu } from '../../core/gpu/device.ts';
import { fromHalf, roundHalf, toHalf } from '../../core/gpu/half.ts';
import { ropeBackward, ropeForward, ropeTables } from '../../core/kernels/rope.ts';
import { ropeBackwardRef, ropeRef } from '../../core/ref/rope.ts';
import { gradChecks, projection } from '../gradcheck.ts';
import type { Check, KernelCase } from './types.ts';
import { refusalCheck } from './half-io.ts';
import { randu } from './util.ts';

interface Shape {
  B: number;
  L: number;
  heads: number;
  d: number;
  /** Table length (>= L): the kernel must index positions, not assume Lmax = L. */
  Lmax: number;
  theta: number;
  ntk: number;
  /** Lowered storage binding limit, to exercise chunking. */
  maxBinding?: number;
}

// Tolerance for q and k: each output is x1 * c -/+ x2 * s with |x| <= 1 and |c|, |s| <= 1, i.e.
// two products and a sum rounded to f32 (three roundings of values <= sqrt(2): <= 3 * 2^-23 =
// 3.6e-7), or fewer with FMA contraction. atol 5e-7 (measured on llvmpipe: <= 1.2e-7). A wrong
// layout (interleaved pairs), sign or position moves outputs by ~1e-1. v is compared exactly: the
// kernel must not write it.
const QK_TOL = { atol: 5e-7 };

/** Split every token into its q|k part and its v part. */
function pick(a: Float32Array, tokens: number, H: number, v: boolean): Float32Array {
  const r = new Float32Array(tokens * (v ? H : 2 * H));
  for (let t = 0; t < tokens; t++) r.set(a.subarray(t * 3 * H + (v ? 2 * H : 0), t * 3 * H + (v ? 3 * H : 2 * H)), t * (v ? H : 2 * H));
  return r;
}

/** The forward (or backward) in place on U(-1, 1) data against the reference. */
async function runRope(gpu: Gpu, s: Shape, seed: number, dir: 'forward' | 'backward'): Promise<Check[]> {
  const { B, L, heads, d } = s;
  const H = heads * d;
  const x = randu(B * L * 3 * H, seed);
  const tab = ropeTables(d, s.Lmax, s.theta, s.ntk);
  const tq = gpu.upload(x, [B, L, 3 * H]);
  const tc = gpu.upload(tab.cos, [s.Lmax, d]);
  const ts = gpu.upload(tab.sin, [s.Lmax, d]);
  (dir === 'forward' ? ropeForward : ropeBackward)(gpu, tq, tc, ts, heads, { maxBinding: s.maxBinding });
  const actual = await gpu.readF32(tq);
  for (const t of [tq, tc, ts]) t.release();
  const expected = (dir === 'forward' ? ropeRef : ropeBackwardRef)(x, B, L, heads, d, tab.cos, tab.sin);
  const [q, v] = dir === 'forward' ? ['q, k', 'v'] : ['dq, dk', 'dv'];
  return [
    { name: q, actual: pick(actual, B * L, H, false), expected: pick(expected, B * L, H, false), tol: QK_TOL },
    { name: `${v} untouched`, actual: pick(actual, B * L, H, true), expected: pick(x, B * L, H, true), tol: { atol: 0 } },
  ];
}

function label(s: Shape): string {
  return `B=${s.B} L=${s.L} heads=${s.heads} d=${s.d} Lmax=${s.Lmax} theta=${s.theta} ntk=${s.ntk}${s.maxBinding ? ` maxBinding=${s.maxBinding}` : ''}`;
}

function ropeCase(s: Shape, seed: number): KernelCase {
  return { name: `forward ${label(s)}`, run: (gpu) => runRope(gpu, s, seed, 'forward') };
}

// The backward is the same arithmetic on the gradient (two products and a sum per output), so
// it has the forward's tolerance QK_TOL; dv must pass through bit for bit.
function backwardCase(s: Shape, seed: number): KernelCase {
  return { name: `backward ${label(s)}`, run: (gpu) => runRope(gpu, s, seed, 'backward') };
}

// Gradient checks: ropeBackward of a projection R against central differences of the float64
// ropeRef (test/gradcheck.ts, rtol 1e-5 of the largest gradient). The forward is linear, so the
// differences are exact up to float64 rounding (~1e-10); the GPU gradient carries the f32
// roundings above (<= 3.6e-7 of values <= sqrt(2)). A forward rotation used as its own
// backward (sign of sin flipped) misses by ~|sin| (up to 1); the dv pass-through is checked too.
function gradCase(s: Shape, seed: number): KernelCase {
  return {
    name: `gradcheck ${label(s)}`,
    async run(gpu) {
      const { B, L, heads, d } = s;
      const n = B * L * 3 * heads * d;
      const x = randu(n, seed);
      const R = projection(n, seed + 1);
      const tab = ropeTables(d, s.Lmax, s.theta, s.ntk);
      const tg = gpu.upload(R, [B, L, 3 * heads * d]);
      const tc = gpu.upload(tab.cos, [s.Lmax, d]);
      const ts = gpu.upload(tab.sin, [s.Lmax, d]);
      ropeBackward(gpu, tg, tc, ts, heads);
      const grad = await gpu.readF32(tg);
      for (const t of [tg, tc, ts]) t.release();
      return gradChecks({
        f: ([xx]) => ropeRef(xx, B, L, heads, d, tab.cos, tab.sin),
        inputs: [{ name: 'qkv', value: x, grad }],
        R,
      });
    },
  };
}

const shapes: Shape[] = [
  { B: 1, L: 1, heads: 1, d: 16, Lmax: 1, theta: 160000, ntk: 2 },
  { B: 2, L: 5, heads: 2, d: 24, Lmax: 8, theta: 10000, ntk: 1 },
  { B: 3, L: 13, heads: 4, d: 16, Lmax: 13, theta: 160000, ntk: 2 }, // GTE dev fixture shape
  { B: 1, L: 33, heads: 3, d: 32, Lmax: 40, theta: 500000, ntk: 2 },
  { B: 2, L: 130, heads: 2, d: 64, Lmax: 512, theta: 160000, ntk: 2 },
  { B: 3, L: 130, heads: 1, d: 32, Lmax: 130, theta: 10000, ntk: 1 },
  // qkv rows of 5 * 3 * 48 * 4 = 2880 bytes: 4-row chunks (11520 bytes) keep views 256-aligned,
  // so B = 9 runs as 4 + 4 + 1 and each chunk restarts positions at its own rows.
  { B: 9, L: 5, heads: 2, d: 24, Lmax: 5, theta: 160000, ntk: 2, maxBinding: 4 * 2880 },
];

const gradShapes: Shape[] = [
  { B: 1, L: 2, heads: 1, d: 2, Lmax: 2, theta: 10000, ntk: 1 },
  { B: 2, L: 3, heads: 2, d: 8, Lmax: 5, theta: 10000, ntk: 1 },
  { B: 1, L: 7, heads: 1, d: 16, Lmax: 9, theta: 160000, ntk: 2 },
];

// f16 forward: qkv in f16, the f32 cos/sin tables, the rotation in f32. The reference is the
// float64 ropeRef on the f16-rounded input (exactly what the kernel reads), so the error is the
// f32 arithmetic, as in QK_TOL (<= 3.6e-7 of values <= sqrt(2)), plus one rounding of each
// output to f16: WGSL lets an inexact f32 -> f16 conversion return either neighbour, so one f16
// ulp, 2^-10 of |y| (round-to-nearest would be half that; f16 subnormals below 6.1e-5 are
// spaced 6e-8 apart, inside atol). Nothing intermediate is stored in f16. v must come back
// bit for bit (the kernel does not write it). Chunked shape: the same 11520-byte limit holds 8
// f16 qkv rows of 1440 bytes, the smallest 256-byte-aligned step, so B = 9 runs as 8 + 1.
const F16_TOL = { atol: 5e-7, rtol: 2 ** -10 };

// The backward in place on an f16 dqkv is the same arithmetic on the gradient (two products and
// a sum in f32, one f16 rounding per element written) against ropeBackwardRef on the rounded
// input: F16_TOL again, dv bit for bit. Gradients reaching it are small (unscaled loss
// gradients of ~1e-4, much of it f16 subnormal) or large (~1e3 after loss scaling), so the
// backward also runs at those scales: the rotation keeps magnitudes, so nothing overflows. The
// f32 arithmetic term of F16_TOL scales with the values (atol 5e-7 x scale); below 6.1e-5 the
// results are f16 subnormals, spaced 2^-24 apart, so a scaled case adds that absolute bound of
// the output rounding (unscaled, it is inside the 5e-7).
function f16Case(s: Shape, seed: number, dir: 'forward' | 'backward' = 'forward', scale = 1): KernelCase {
  const fwd = dir === 'forward';
  return {
    name: `${dir} ${label(s)}${scale !== 1 ? ` x${scale}` : ''} f16`,
    async run(gpu) {
      const { B, L, heads, d } = s;
      const H = heads * d;
      const x = randu(B * L * 3 * H, seed).map((v) => v * scale);
      const tab = ropeTables(d, s.Lmax, s.theta, s.ntk);
      const tq = gpu.upload(toHalf(x), [B, L, 3 * H], 'f16');
      const tc = gpu.upload(tab.cos, [s.Lmax, d]);
      const ts = gpu.upload(tab.sin, [s.Lmax, d]);
      const launch = () => (fwd ? ropeForward : ropeBackward)(gpu, tq, tc, ts, heads, { maxBinding: s.maxBinding });
      if (!gpu.features.has('shader-f16')) {
        const checks = refusalCheck(launch);
        for (const t of [tq, tc, ts]) t.release();
        return checks;
      }
      launch();
      const actual = fromHalf((await gpu.read(tq)) as Uint16Array);
      for (const t of [tq, tc, ts]) t.release();
      const xh = roundHalf(x);
      const expected = (fwd ? ropeRef : ropeBackwardRef)(Float64Array.from(xh), B, L, heads, d, tab.cos, tab.sin);
      const tol = scale === 1 ? F16_TOL : { atol: F16_TOL.atol * scale + 2 ** -24, rtol: F16_TOL.rtol };
      return [
        { name: fwd ? 'q, k' : 'dq, dk', actual: pick(actual, B * L, H, false), expected: pick64(expected, B * L, H), tol },
        { name: `${fwd ? 'v' : 'dv'} untouched`, actual: pick(actual, B * L, H, true), expected: pick(xh, B * L, H, true), tol: { atol: 0 } },
      ];
    },
  };
}

/** The q|k part of every token of a float64 [tokens, 3H] array. */
function pick64(a: Float64Array, tokens: number, H: number): Float64Array {
  const r = new Float64Array(tokens * 2 * H);
  for (let t = 0; t < tokens; t++) r.set(a.subarray(t * 3 * H, t * 3 * H + 2 * H), t * 2 * H);
  return r;
}

export const ropeCases: KernelCase[] = [
  ...shapes.map((s, i) => ropeCase(s, i + 1)),
  ...shapes.map((s, i) => backwardCase(s, 21 + i)),
  ...gradShapes.map((s, i) => gradCase(s, 41 + i)),
  ...shapes.map((s, i) => f16Case(s, 61 + i)),
  ...shapes.map((s, i) => f16Case(s, 81 + i, 'backward')),
  f16Case(shapes[3], 91, 'backward', 1e-4),
  f16Case(shapes[3], 92, 'backward', 1e3),
];
