// Conformance cases for shaders/elementwise.wgsl (add, erf, gelu, glu) against
// core/ref/elementwise.ts, plus small helpers the other small-kernel case files share.
//
// Tolerances (|actual - expected| <= atol + rtol * |expected|, expected in float64):
// - add: exact, the same single f32 add on both sides.
// - erf: atol 5e-7. Budget of the f32 evaluation: fit 1e-9 + Horner rounding (~2 ulp of
//   log(erfc) ~ -2 near |x| = 1, times erfc = 0.157: 8e-8) + exp() at the WGSL limit of
//   3 + 2|x| ulp (1.0e-7 near |x| = 1) + the final 1 - e rounding (3e-8) = 2.2e-7 worst case on
//   any conforming device; 5e-7 leaves margin yet is half the 1e-6 requirement. Simulated
//   exhaustively in f32 the approximation is within 9.3e-8.
// - gelu: atol 1e-6, rtol 3e-7. 0.5 |x| times the 1 + erf error (2.2e-7) is at most 6e-7 for
//   |x| < 5.55 (beyond, 1 + erf is exactly 2 or erfc directly), plus two roundings (1.2e-7
//   relative). The tanh approximation misses by up to 4.7e-4 (at x = -2.70), far outside.
// - glu: up times a gelu value: atol 1e-6 * max|up| (2) and the same rtol plus one more rounding.
// - accumulate: exact, the same single f32 add on both sides.
// - gelu backward: atol 3e-7 |dout|, rtol 2.4e-7. gelu'(x) = Phi(x) + x phi(x): Phi is half of
//   GELU's 1 + erf (<= 1.1e-7), x phi(x) is off by (3 + 1.5 x^2) u relative (rounding of x^2,
//   exp's 3 + 2|arg| ulp), at most 6e-8 absolute (|x| ~ 2); the fma and the product with dout
//   round twice (2u relative). The tanh approximation's derivative misses by up to 8.7e-4
//   (at x = 2.02).
// - glu backward: d up = dout gelu(gate) has GELU_TOL times |dout| <= 1 plus a rounding;
//   d gate = dout up gelu'(gate) has the gelu' tolerance times |dout up| <= 2 plus a rounding.
// - Gradient checks (test/gradcheck.ts): central differences of the float64 gelu/glu, rtol
//   1e-5 of the largest gradient, at points that include gelu''s zero (x = -0.7518), both
//   region joins of erf (|x| / sqrt 2 = 1 and 3.925) and the far tails.

import type { Gpu } from '../../core/gpu/device.ts';
import { accumulateForward, addForward, erfForward, geluBackward, geluForward, gluBackward, gluForward } from '../../core/kernels/elementwise.ts';
import { addRef, erfArrayRef, erfRef, erfcRef, geluBackwardRef, geluRef, geluScalarRef, gluBackwardRef, gluRef } from '../../core/ref/elementwise.ts';
import { gradChecks, projection } from '../gradcheck.ts';
import { halfOutTol, hasF16, nanHalf, readHalf, refusalCheck, uploadHalf } from './half-io.ts';
import type { Check, KernelCase } from './types.ts';
import { ERF_TOL, GELU_GRAD_POINTS, GELU_GRAD_TOL, GELU_TOL, GLU_TOL, geluInput, gluInput, nanTensor, withBindingLimit, gluHalf } from './elementwise-inputs.ts';
import { halfBackwardCases } from './elementwise-f16.ts';
import { castCases } from './cast.ts';
import { randu } from './util.ts';

export { ERF_TOL, GELU_GRAD_TOL, GELU_TOL, nanTensor, withBindingLimit } from './elementwise-inputs.ts';

const U = 2 ** -24;

// ---------------------------------------------------------------- shared helpers

/** n values repeating a random pattern of prime length p (cheap references for huge n). */
function periodic(n: number, p: number, seed: number, scale: number): { data: Float32Array; pattern: Float32Array } {
  const pattern = randu(p, seed, scale);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i += p) data.set(pattern.subarray(0, Math.min(p, n - i)), i);
  return { data, pattern };
}

// The folded grid is needed past 65535 workgroups of 256, i.e. n > 16,776,960.
const BIG_N = 65535 * 256 + 4099;

// ---------------------------------------------------------------- erf

// erf and erfc from mpmath at 40 digits: checks the float64 reference the GPU is compared with.
const ERF_TABLE: [x: number, erf: number, erfc: number][] = [
  [1e-10, 1.1283791670955125739e-10, 0.99999999988716208329],
  [0.1, 0.1124629160182848922, 0.8875370839817151078],
  [0.5, 0.52049987781304653768, 0.47950012218695346232],
  [0.9, 0.79690821242283212852, 0.20309178757716787148],
  [1, 0.84270079294971486934, 0.15729920705028513066],
  [1.5, 0.96610514647531072707, 0.033894853524689272933],
  [2, 0.99532226501895273416, 0.0046777349810472658379],
  [2.5, 0.99959304798255504106, 0.00040695201744495893956],
  [2.9999, 0.99997789557351783912, 0.000022104426482160879638],
  [3, 0.99997790950300141456, 0.000022090496998585441373],
  [3.5, 0.99999925690162765859, 7.4309837234141274552e-7],
  [4, 0.99999998458274209972, 1.5417257900280018852e-8],
  [5, 0.99999999999846254021, 1.5374597944280348502e-12],
  [6, 0.99999999999999997848, 2.1519736712498913117e-17],
  [8, 1, 1.122429717298292708e-29],
  [10, 1, 2.088487583762544757e-45],
];

/** Every f32 within `ulps` steps of v (both signs of v are added by the caller). */
function f32Around(v: number, ulps: number): number[] {
  const f = new Float32Array([v]);
  const u = new Uint32Array(f.buffer);
  const base = u[0];
  const out: number[] = [];
  for (let k = -ulps; k <= ulps; k++) {
    u[0] = base + k;
    out.push(f[0]);
  }
  return out;
}

/** The dense erf grid: [-10, 10] in steps of 2e-5, every f32 near the region joins, tiny and huge values. */
function erfGrid(): Float32Array {
  const xs: number[] = [];
  for (let i = -500000; i <= 500000; i++) xs.push(i * 2e-5);
  for (const v of [1, 3.925]) xs.push(...f32Around(v, 4096));
  for (let k = 10; k <= 126; k += 4) xs.push(2 ** -k);
  xs.push(0, 20, 100, 1e10, 3.4e38);
  const pos = Float32Array.from(xs);
  const all = new Float32Array(pos.length * 2);
  all.set(pos);
  for (let i = 0; i < pos.length; i++) all[pos.length + i] = -pos[i];
  return all;
}

const erfCases: KernelCase[] = [
  {
    name: 'erf float64 reference vs mpmath',
    async run() {
      const xs = ERF_TABLE.flatMap(([x]) => [x, -x]);
      const checks: Check[] = [
        {
          name: 'erf',
          actual: xs.map(erfRef),
          expected: ERF_TABLE.flatMap(([, e]) => [e, -e]),
          tol: { atol: 2e-15 }, // a few float64 ulps of 1: the GPU tolerance is 2.5e8 times larger
        },
        {
          name: 'erfc (relative)',
          actual: ERF_TABLE.map(([x, , c]) => erfcRef(x) / c),
          expected: ERF_TABLE.map(() => 1),
          tol: { atol: 1e-11 }, // 1 - erf cancels for 1.5 < x < 3 (measured 7e-12); exact elsewhere
        },
      ];
      return checks;
    },
  },
  {
    name: 'erf dense grid |x| <= 10, region joins, tiny and huge',
    async run(gpu) {
      const x = erfGrid();
      const tx = gpu.upload(x, [x.length]);
      const out = nanTensor(gpu, [x.length]);
      erfForward(gpu, out, tx);
      const actual = await gpu.readF32(out);
      for (const t of [tx, out]) t.release();
      return [{ name: `erf (${x.length} points)`, actual, expected: erfArrayRef(x), tol: ERF_TOL }];
    },
  },
];

// ---------------------------------------------------------------- add

// add shares flatForward (chunking, folded grid) with gelu, whose big-grid case covers it.
const addCases: KernelCase[] = [1, 255, 257, 65537].map((n) => ({
  name: `add n=${n}`,
  async run(gpu) {
    const a = randu(n, n), b = randu(n, n + 1);
    const ta = gpu.upload(a, [n]), tb = gpu.upload(b, [n]), out = gpu.empty([n]);
    addForward(gpu, out, ta, tb);
    const actual = await gpu.readF32(out);
    for (const t of [ta, tb, out]) t.release();
    // exact: the same single f32 add on both sides
    return [{ name: 'out', actual, expected: addRef(a, b), tol: { atol: 0 } }];
  },
}));

// ---------------------------------------------------------------- gelu

const geluCases: KernelCase[] = [1, 7, 1000, 65537].map((n) => ({
  name: `gelu n=${n}`,
  async run(gpu) {
    const x = geluInput(n, 100 + n);
    const tx = gpu.upload(x, [n]), out = nanTensor(gpu, [n]);
    geluForward(gpu, out, tx);
    const actual = await gpu.readF32(out);
    for (const t of [tx, out]) t.release();
    return [{ name: 'out', actual, expected: geluRef(x), tol: GELU_TOL }];
  },
}));

geluCases.push(
  {
    name: `gelu big grid n=${BIG_N}`,
    async run(gpu) {
      const P = 65521; // prime: a wrong index (off by a multiple of 256 workgroup slots) reads a different value
      const { data, pattern } = periodic(BIG_N, P, 7, 8);
      const refPattern = geluRef(pattern);
      const expected = new Float64Array(BIG_N);
      for (let i = 0; i < BIG_N; i++) expected[i] = refPattern[i % P];
      const tx = gpu.upload(data, [BIG_N]), out = nanTensor(gpu, [BIG_N]);
      geluForward(gpu, out, tx);
      const actual = await gpu.readF32(out);
      for (const t of [tx, out]) t.release();
      return [{ name: 'out', actual, expected, tol: GELU_TOL }];
    },
  },
  {
    name: 'gelu [3,5,7] chunked under a 4 KiB binding limit',
    async run(gpu) {
      const shape = [3, 5, 70];
      const n = 3 * 5 * 70;
      const x = geluInput(n, 5);
      const tx = gpu.upload(x, shape), out = nanTensor(gpu, shape);
      const { dispatches } = await withBindingLimit(gpu, 4096, () => geluForward(gpu, out, tx));
      const actual = await gpu.readF32(out);
      for (const t of [tx, out]) t.release();
      return [
        { name: 'out', actual, expected: geluRef(x), tol: GELU_TOL },
        // exact: 1050 elements in chunks of 1024 (4096 bytes) -> 2 dispatches
        { name: 'dispatches', actual: [dispatches], expected: [2], tol: { atol: 0 } },
      ];
    },
  },
);

// ---------------------------------------------------------------- glu

async function runGlu(gpu: Gpu, lead: number[], cols: number, seed: number, limit?: { bytes: number; dispatches: number }): Promise<Check[]> {
  const rows = lead.reduce((a, b) => a * b, 1);
  const ug = gluInput(rows, cols, seed);
  const tug = gpu.upload(ug, [...lead, 2 * cols]), out = nanTensor(gpu, [...lead, cols]);
  const { dispatches } = await withBindingLimit(gpu, limit?.bytes ?? gpu.limits.maxBinding, () => gluForward(gpu, out, tug));
  const actual = await gpu.readF32(out);
  for (const t of [tug, out]) t.release();
  const checks: Check[] = [{ name: 'out', actual, expected: gluRef(ug, cols), tol: GLU_TOL }];
  // exact: with a lowered limit the work must really be split (count from the chunk arithmetic)
  if (limit) checks.push({ name: 'dispatches', actual: [dispatches], expected: [limit.dispatches], tol: { atol: 0 } });
  return checks;
}

const gluCases: KernelCase[] = [
  { lead: [1], cols: 1 },
  { lead: [3], cols: 7 },
  { lead: [2, 3], cols: 129 },
  { lead: [2], cols: 1000 },
  { lead: [3], cols: 4096 },
].map(({ lead, cols }, i) => ({
  name: `glu [${lead}, ${2 * cols}] -> [${lead}, ${cols}]`,
  run: (gpu: Gpu) => runGlu(gpu, lead, cols, 300 + i),
}));

gluCases.push(
  {
    // out rows of 1200 B and upGate rows of 2400 B need chunks of a multiple of 16 rows for
    // 256-byte aligned starts; 27 upGate rows fit 64 KiB, so chunks of 16, 16, 5
    name: 'glu [37, 600] chunked under a 64 KiB binding limit',
    run: (gpu) => runGlu(gpu, [37], 300, 400, { bytes: 65536, dispatches: 3 }),
  },
  {
    // upGate is 134,250,496 bytes, over the real 128 MiB binding limit, and the first chunk's
    // 4096 x 4096 outputs need the folded grid (> 65535 workgroups of 256)
    name: 'glu [4097, 8192] over 128 MiB: chunked and big grid',
    async run(gpu) {
      const rows = 4097, cols = 4096;
      const P1 = 65521, P2 = 65519; // primes for up and gate: cheap references, index errors still show
      const up = periodic(rows * cols, P1, 21, 2), gate = periodic(rows * cols, P2, 22, 6);
      const ug = new Float32Array(rows * 2 * cols);
      for (let r = 0; r < rows; r++) {
        ug.set(up.data.subarray(r * cols, (r + 1) * cols), r * 2 * cols);
        ug.set(gate.data.subarray(r * cols, (r + 1) * cols), r * 2 * cols + cols);
      }
      const geluGate = geluRef(gate.pattern);
      const expected = new Float64Array(rows * cols);
      for (let i = 0; i < rows * cols; i++) expected[i] = geluGate[i % P2] * up.pattern[i % P1];
      const tug = gpu.upload(ug, [rows, 2 * cols]), out = nanTensor(gpu, [rows, cols]);
      const before = gpu.stats.dispatches;
      gluForward(gpu, out, tug);
      const dispatches = gpu.stats.dispatches - before;
      const actual = await gpu.readF32(out);
      for (const t of [tug, out]) t.release();
      return [
        { name: 'out', actual, expected, tol: GLU_TOL },
        // exact: 4096 upGate rows fit 128 MiB, so 2 chunks on llvmpipe (1 where bindings reach 1 GiB)
        { name: 'dispatches', actual: [dispatches], expected: [Math.ceil(rows / Math.floor(gpu.limits.maxBinding / (2 * cols * 4)))], tol: { atol: 0 } },
      ];
    },
  },
);

// ---------------------------------------------------------------- accumulate

async function runAccumulate(gpu: Gpu, shape: number[], seed: number, limit?: { bytes: number; dispatches: number }): Promise<Check[]> {
  const n = shape.reduce((a, b) => a * b, 1);
  const dst = randu(n, seed), src = randu(n, seed + 1);
  const tdst = gpu.upload(dst, shape), tsrc = gpu.upload(src, shape);
  const { dispatches } = await withBindingLimit(gpu, limit?.bytes ?? gpu.limits.maxBinding, () => accumulateForward(gpu, tdst, tsrc));
  const actual = await gpu.readF32(tdst);
  for (const t of [tdst, tsrc]) t.release();
  // exact: the same single f32 add on both sides
  const checks: Check[] = [{ name: 'dst', actual, expected: addRef(dst, src), tol: { atol: 0 } }];
  if (limit) checks.push({ name: 'dispatches', actual: [dispatches], expected: [limit.dispatches], tol: { atol: 0 } });
  return checks;
}

const accumulateCases: KernelCase[] = [
  { name: 'accumulate n=1', run: (gpu) => runAccumulate(gpu, [1], 30) },
  { name: 'accumulate [3, 5, 7]', run: (gpu) => runAccumulate(gpu, [3, 5, 7], 31) },
  // 1050 elements in chunks of 1024 (4096 bytes) -> 2 dispatches
  { name: 'accumulate [3, 5, 70] chunked under a 4 KiB binding limit', run: (gpu) => runAccumulate(gpu, [3, 5, 70], 32, { bytes: 4096, dispatches: 2 }) },
];

// ---------------------------------------------------------------- gelu and glu backward

async function runGeluBackward(gpu: Gpu, x: Float32Array, dout: Float32Array, shape: number[], limit?: { bytes: number; dispatches: number }): Promise<Check[]> {
  const tx = gpu.upload(x, shape), tdout = gpu.upload(dout, shape), dx = nanTensor(gpu, shape);
  const { dispatches } = await withBindingLimit(gpu, limit?.bytes ?? gpu.limits.maxBinding, () => geluBackward(gpu, dx, tdout, tx));
  const actual = await gpu.readF32(dx);
  for (const t of [tx, tdout, dx]) t.release();
  let D = 0;
  for (const v of dout) D = Math.max(D, Math.abs(v));
  const checks: Check[] = [{ name: 'dx', actual, expected: geluBackwardRef(dout, x), tol: { atol: GELU_GRAD_TOL.atol * D, rtol: GELU_GRAD_TOL.rtol } }];
  if (limit) checks.push({ name: 'dispatches', actual: [dispatches], expected: [limit.dispatches], tol: { atol: 0 } });
  return checks;
}

const geluBackwardCases: KernelCase[] = [
  {
    name: 'gelu backward grid [-10, 10] step 1e-3, dout = 1',
    run: (gpu) => {
      const { x } = geluGrid();
      return runGeluBackward(gpu, x, new Float32Array(x.length).fill(1), [x.length]);
    },
  },
  ...[1, 7, 1000, 65537].map(
    (n): KernelCase => ({
      name: `gelu backward n=${n}`,
      run: (gpu) => {
        const x = geluInput(n, 200 + n);
        for (let i = 0; i < Math.min(n, GELU_GRAD_POINTS.length); i++) x[i] = GELU_GRAD_POINTS[i];
        return runGeluBackward(gpu, x, randu(n, 300 + n), [n]);
      },
    }),
  ),
  {
    name: 'gelu backward [3, 5, 70] chunked under a 4 KiB binding limit',
    // 1050 elements, 3 tensors of 4-byte elements: chunks of 1024 -> 2 dispatches
    run: (gpu) => runGeluBackward(gpu, geluInput(1050, 9), randu(1050, 10), [3, 5, 70], { bytes: 4096, dispatches: 2 }),
  },
];

async function runGluBackward(gpu: Gpu, lead: number[], cols: number, seed: number, limit?: { bytes: number; dispatches: number }): Promise<Check[]> {
  const rows = lead.reduce((a, b) => a * b, 1);
  const ug = gluInput(rows, cols, seed);
  const dout = randu(rows * cols, seed + 7);
  if (ug.length >= 2) ug[cols] = -0.7517916; // gate at gelu''s zero
  const tug = gpu.upload(ug, [...lead, 2 * cols]), tdout = gpu.upload(dout, [...lead, cols]), dug = nanTensor(gpu, [...lead, 2 * cols]);
  const { dispatches } = await withBindingLimit(gpu, limit?.bytes ?? gpu.limits.maxBinding, () => gluBackward(gpu, dug, tdout, tug));
  const actual = await gpu.readF32(dug);
  for (const t of [tug, tdout, dug]) t.release();
  const expected = gluBackwardRef(dout, ug, cols);
  const half = (a: ArrayLike<number>, gate: boolean) => gluHalf(a, rows, cols, gate);
  const checks: Check[] = [
    { name: 'd up', actual: half(actual, false), expected: half(expected, false), tol: { atol: GELU_TOL.atol, rtol: (GELU_TOL.rtol ?? 0) + U } },
    { name: 'd gate', actual: half(actual, true), expected: half(expected, true), tol: { atol: 2 * GELU_GRAD_TOL.atol, rtol: (GELU_GRAD_TOL.rtol ?? 0) + U } },
  ];
  if (limit) checks.push({ name: 'dispatches', actual: [dispatches], expected: [limit.dispatches], tol: { atol: 0 } });
  return checks;
}

const gluBackwardCases: KernelCase[] = [
  { lead: [1], cols: 1 },
  { lead: [3], cols: 7 },
  { lead: [2, 3], cols: 129 },
  { lead: [3], cols: 4096 },
].map(({ lead, cols }, i) => ({
  name: `glu backward [${lead}, ${cols}] -> [${lead}, ${2 * cols}]`,
  run: (gpu: Gpu) => runGluBackward(gpu, lead, cols, 320 + i),
}));
gluBackwardCases.push({
  // dout rows of 1200 B, upGate and dUpGate rows of 2400 B: chunks of 16 rows (aligned starts),
  // 27 wide rows fit 64 KiB, so 16 + 16 + 5
  name: 'glu backward [37, 300] chunked under a 64 KiB binding limit',
  run: (gpu) => runGluBackward(gpu, [37], 300, 410, { bytes: 65536, dispatches: 3 }),
});

const gradCases: KernelCase[] = [
  {
    name: 'gradcheck gelu at its delicate points',
    async run(gpu) {
      const x = Float32Array.from(GELU_GRAD_POINTS.slice(0, 15)); // |x| <= 30
      const R = projection(x.length, 40);
      const tx = gpu.upload(x, [x.length]), tR = gpu.upload(R, [x.length]), dx = nanTensor(gpu, [x.length]);
      geluBackward(gpu, dx, tR, tx);
      const grad = await gpu.readF32(dx);
      for (const t of [tx, tR, dx]) t.release();
      return gradChecks({ f: ([v]) => geluRef(v), inputs: [{ name: 'x', value: x, grad }], R });
    },
  },
  ...[
    { rows: 1, cols: 1 },
    { rows: 3, cols: 7 },
  ].map(
    ({ rows, cols }, i): KernelCase => ({
      name: `gradcheck glu [${rows}, ${2 * cols}]`,
      async run(gpu) {
        const ug = gluInput(rows, cols, 50 + i);
        ug[cols] = -0.7517916;
        const R = projection(rows * cols, 60 + i);
        const tug = gpu.upload(ug, [rows, 2 * cols]), tR = gpu.upload(R, [rows, cols]), dug = nanTensor(gpu, [rows, 2 * cols]);
        gluBackward(gpu, dug, tR, tug);
        const grad = await gpu.readF32(dug);
        for (const t of [tug, tR, dug]) t.release();
        return gradChecks({ f: ([v]) => gluRef(v, cols), inputs: [{ name: 'upGate', value: ug, grad }], R });
      },
    }),
  ),
];

// ---------------------------------------------------------------- f16 forwards
//
// add, gelu and glu with f16 operands (half-io.ts: inputs rounded to f16 on the host, the
// float64 reference on those values, f32 math on the GPU, the output rounded to f16 once).
// - add: the f32 sum (exact reference: the same single f32 add) rounded to f16 once:
//   atol 2^-24, rtol 2^-10 (llvmpipe gives the correctly rounded sum, as double rounding
//   through f32 is innocuous for +: 24 >= 2 * 11 + 2 bits).
// - gelu, glu: their f32 tolerance widened by the f16 rounding, halfOutTol(GELU_TOL) and
//   halfOutTol(GLU_TOL): atol (1 + 2^-10) + 2^-24, rtol + 2^-10 (gelu's left tail and the
//   up * gelu(gate) products near 0 are f16 subnormals, which the 2^-24 covers).
// Awkward lengths: odd element counts (f16 bindings of 2 mod 4 bytes), odd glu widths (rows of
// 2 mod 4 bytes) and chunks whose starts must be 128-row aligned at 2-byte elements.

async function runHalfFlat(
  gpu: Gpu,
  op: 'add' | 'gelu',
  shape: number[],
  seed: number,
  limit?: { bytes: number; dispatches: number },
): Promise<Check[]> {
  const n = shape.reduce((a, b) => a * b, 1);
  const { t: ta, v: a } = uploadHalf(gpu, op === 'add' ? randu(n, seed) : geluInput(n, seed), shape);
  const { t: tb, v: b } = uploadHalf(gpu, randu(n, seed + 1), shape);
  const out = nanHalf(gpu, shape);
  const launch = () => (op === 'add' ? addForward(gpu, out, ta, tb) : geluForward(gpu, out, ta));
  if (!hasF16(gpu)) return refusalCheck(launch, [ta, tb, out]);
  const { dispatches } = await withBindingLimit(gpu, limit?.bytes ?? gpu.limits.maxBinding, launch);
  const actual = await readHalf(gpu, out);
  for (const t of [ta, tb, out]) t.release();
  const checks: Check[] =
    op === 'add'
      ? [{ name: 'out f16', actual, expected: addRef(a, b), tol: halfOutTol({ atol: 0 }) }]
      : [{ name: 'out f16', actual, expected: geluRef(a), tol: halfOutTol(GELU_TOL) }];
  if (limit) checks.push({ name: 'dispatches', actual: [dispatches], expected: [limit.dispatches], tol: { atol: 0 } });
  return checks;
}

async function runHalfGlu(gpu: Gpu, lead: number[], cols: number, seed: number, limit?: { bytes: number; dispatches: number }): Promise<Check[]> {
  const rows = lead.reduce((a, b) => a * b, 1);
  const { t: tug, v: ug } = uploadHalf(gpu, gluInput(rows, cols, seed), [...lead, 2 * cols]);
  const out = nanHalf(gpu, [...lead, cols]);
  const launch = () => gluForward(gpu, out, tug);
  if (!hasF16(gpu)) return refusalCheck(launch, [tug, out]);
  const { dispatches } = await withBindingLimit(gpu, limit?.bytes ?? gpu.limits.maxBinding, launch);
  const actual = await readHalf(gpu, out);
  for (const t of [tug, out]) t.release();
  const checks: Check[] = [{ name: 'out f16', actual, expected: gluRef(ug, cols), tol: halfOutTol(GLU_TOL) }];
  if (limit) checks.push({ name: 'dispatches', actual: [dispatches], expected: [limit.dispatches], tol: { atol: 0 } });
  return checks;
}

const halfCases: KernelCase[] = [
  ...[[1], [257], [3, 5, 7], [65537]].map((shape, i) => ({ name: `add [${shape}] f16`, run: (gpu: Gpu) => runHalfFlat(gpu, 'add', shape, 900 + i) })),
  ...[[1], [7], [1000], [65537]].map((shape, i) => ({ name: `gelu [${shape}] f16`, run: (gpu: Gpu) => runHalfFlat(gpu, 'gelu', shape, 910 + i) })),
  // 1050 f16 elements under a 2 KiB limit: chunks of 1024 (a multiple of 128) -> 2 dispatches
  { name: 'gelu [3, 5, 70] chunked under a 2 KiB binding limit f16', run: (gpu) => runHalfFlat(gpu, 'gelu', [3, 5, 70], 920, { bytes: 2048, dispatches: 2 }) },
  { name: 'add [3, 5, 70] chunked under a 2 KiB binding limit f16', run: (gpu) => runHalfFlat(gpu, 'add', [3, 5, 70], 921, { bytes: 2048, dispatches: 2 }) },
  ...[
    { lead: [1], cols: 1 },
    { lead: [3], cols: 7 },
    { lead: [2, 3], cols: 129 },
    { lead: [3], cols: 4096 },
  ].map(({ lead, cols }, i) => ({ name: `glu [${lead}, ${2 * cols}] -> [${lead}, ${cols}] f16`, run: (gpu: Gpu) => runHalfGlu(gpu, lead, cols, 930 + i) })),
  // out rows of 602 B and upGate rows of 1204 B: aligned starts need multiples of 128 rows;
  // 217 upGate rows fit 256 KiB, so chunks of 128, 128, 44
  { name: 'glu [300, 602] chunked under a 256 KiB binding limit f16', run: (gpu) => runHalfGlu(gpu, [300], 301, 940, { bytes: 262144, dispatches: 3 }) },
];

export const elementwiseCases: KernelCase[] = [
  ...addCases,
  ...accumulateCases,
  ...erfCases,
  ...geluCases,
  ...geluBackwardCases,
  ...gluCases,
  ...gluBackwardCases,
  ...gradCases,
  ...halfCases,
  ...halfBackwardCases,
  ...castCases,
];

/** Scalar GELU over a grid, for the test that the tolerance rejects the tanh approximation. */
export function geluGrid(): { x: Float32Array; exact: Float64Array } {
  const x = new Float32Array(20001);
  for (let i = 0; i < x.length; i++) x[i] = -10 + i * 1e-3;
  return { x, exact: Float64Array.from(x, geluScalarRef) };
}
