// Conformance cases for shaders/rope.wgsl: q and k rotated in place, v untouched, tables longer
// than the sequence, one-token rows, head dims 16..64, plain and NTK-scaled tables, chunking.

import { ropeForward, ropeTables } from '../../core/kernels/rope.ts';
import { ropeRef } from '../../core/ref/rope.ts';
import type { KernelCase } from './types.ts';
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

function ropeCase(s: Shape, seed: number): KernelCase {
  const chunked = s.maxBinding ? ` maxBinding=${s.maxBinding}` : '';
  return {
    name: `forward B=${s.B} L=${s.L} heads=${s.heads} d=${s.d} Lmax=${s.Lmax} theta=${s.theta} ntk=${s.ntk}${chunked}`,
    async run(gpu) {
      const { B, L, heads, d } = s;
      const H = heads * d;
      const x = randu(B * L * 3 * H, seed);
      const tab = ropeTables(d, s.Lmax, s.theta, s.ntk);
      const tq = gpu.upload(x, [B, L, 3 * H]);
      const tc = gpu.upload(tab.cos, [s.Lmax, d]);
      const ts = gpu.upload(tab.sin, [s.Lmax, d]);
      ropeForward(gpu, tq, tc, ts, heads, { maxBinding: s.maxBinding });
      const actual = await gpu.readF32(tq);
      for (const t of [tq, tc, ts]) t.release();
      const expected = ropeRef(x, B, L, heads, d, tab.cos, tab.sin);
      // Split every token into its q|k part and its v part.
      const pick = (a: Float32Array, v: boolean) => {
        const r = new Float32Array(B * L * (v ? H : 2 * H));
        for (let t = 0; t < B * L; t++) r.set(a.subarray(t * 3 * H + (v ? 2 * H : 0), t * 3 * H + (v ? 3 * H : 2 * H)), t * (v ? H : 2 * H));
        return r;
      };
      return [
        { name: 'q, k', actual: pick(actual, false), expected: pick(expected, false), tol: QK_TOL },
        { name: 'v untouched', actual: pick(actual, true), expected: pick(x, true), tol: { atol: 0 } },
      ];
    },
  };
}

export const ropeCases: KernelCase[] = [
  ropeCase({ B: 1, L: 1, heads: 1, d: 16, Lmax: 1, theta: 160000, ntk: 2 }, 1),
  ropeCase({ B: 2, L: 5, heads: 2, d: 24, Lmax: 8, theta: 10000, ntk: 1 }, 2),
  ropeCase({ B: 3, L: 13, heads: 4, d: 16, Lmax: 13, theta: 160000, ntk: 2 }, 3), // GTE dev fixture shape
  ropeCase({ B: 1, L: 33, heads: 3, d: 32, Lmax: 40, theta: 500000, ntk: 2 }, 4),
  ropeCase({ B: 2, L: 130, heads: 2, d: 64, Lmax: 512, theta: 160000, ntk: 2 }, 5),
  ropeCase({ B: 3, L: 130, heads: 1, d: 32, Lmax: 130, theta: 10000, ntk: 1 }, 6),
  // qkv rows of 5 * 3 * 48 * 4 = 2880 bytes: 4-row chunks (11520 bytes) keep views 256-aligned,
  // so B = 9 runs as 4 + 4 + 1 and each chunk restarts positions at its own rows.
  ropeCase({ B: 9, L: 5, heads: 2, d: 24, Lmax: 5, theta: 160000, ntk: 2, maxBinding: 4 * 2880 }, 7),
];
