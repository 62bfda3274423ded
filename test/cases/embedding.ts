// Conformance cases for shaders/embedding.wgsl against core/ref/embedding.ts.
//
// Forward tolerance: exact (atol 0). The reference adds the same f32 values in the same order
// as the shader and Hugging Face ((word + token_type) + position), each add rounded to f32, so
// any difference is a wrong row, a wrong order or a missing term.
//
// Backward tolerances, against float64 sums (u = 2^-24, D = max|dout|): a table row that n
// tokens map to is an f32 sum of n terms in segments, then the segment sums, then one add per
// batch chunk; every segment and chunk holds a token, so at most 2n + 1 roundings, bounded by
// 4 sqrt(2n + 1) u n D (Higham & Mary's probabilistic bound, lambda = 4), with n the longest
// row list of the case. Accumulating adds the old value: plus rtol u. Exact checks: rows no
// token maps to (and the pad row of dword) are 0, or keep their old bits when accumulating;
// a second run gives the same bits (fixed summation order, no atomics).
// f16 dout (the backward's names ending in ' f16'): dout is rounded to f16 on the host and the
// reference sums exactly those values; the kernel widens them to f32 exactly and sums into the
// f32 tables as before, so the tolerance is the f32 one (no f16 store: the gradients are f32).
// Gradient checks: central differences of a float64 forward (test/gradcheck.ts, rtol 1e-5);
// the forward reads the pad row as a constant, which is what padding_idx means for autograd.

import type { Gpu } from '../../core/gpu/device.ts';
import type { Tensor } from '../../core/gpu/tensor.ts';
import { embeddingBackward, embeddingForward } from '../../core/kernels/embedding.ts';
import { embeddingBackwardRef, embeddingRef } from '../../core/ref/embedding.ts';
import { gradChecks, projection } from '../gradcheck.ts';
import { nanTensor, withBindingLimit } from './elementwise.ts';
import { halfOutTol, hasF16, nanHalf, readHalf, refusalCheck, uploadHalf } from './half-io.ts';
import type { Check, KernelCase } from './types.ts';
import { randu, rng } from './util.ts';

interface Spec {
  name: string;
  B: number;
  L: number;
  H: number;
  V: number;
  P?: number; // position table rows (none if undefined)
  T?: number; // token_type table rows (none if undefined)
  typeIds?: boolean; // pass tokenTypes ids
  badIds?: boolean; // include out-of-range ids (clamped by the shader)
  limit?: { bytes: number; dispatches: number };
}

function randIds(n: number, below: number, seed: number): Uint32Array {
  const r = rng(seed);
  return Uint32Array.from({ length: n }, () => Math.floor(r() * below));
}

/** A spec's ids and type ids (seeds seed, seed + 1), with the out-of-range ones when it asks. */
function specIds(s: Spec, seed: number): { ids: Uint32Array; typeIds: Uint32Array | null } {
  const ids = randIds(s.B * s.L, s.V, seed);
  const typeIds = s.typeIds ? randIds(s.B * s.L, s.T ?? 2, seed + 1) : null;
  if (s.badIds) {
    ids.set([s.V, s.V + 100, 0xffffffff].slice(0, ids.length));
    if (typeIds && typeIds.length > 1) typeIds[1] = 7;
  }
  return { ids, typeIds };
}

async function runSpec(gpu: Gpu, s: Spec, seed: number): Promise<Check[]> {
  const { B, L, H, V } = s;
  const { ids, typeIds } = specIds(s, seed);
  const word = randu(V * H, seed + 2);
  const pos = s.P ? randu(s.P * H, seed + 3) : null;
  const tt = s.T ? randu(s.T * H, seed + 4) : null;
  const owned: Tensor[] = [];
  const up = (d: Float32Array | Uint32Array, shape: number[]) => {
    const t = gpu.upload(d, shape);
    owned.push(t);
    return t;
  };
  const tIds = up(ids, [B, L]);
  const tTypeIds = typeIds ? up(typeIds, [B, L]) : null;
  const tWord = up(word, [V, H]);
  const tPos = pos ? up(pos, [s.P!, H]) : null;
  const tTt = tt ? up(tt, [s.T!, H]) : null;
  const out = nanTensor(gpu, [B, L, H]);
  owned.push(out);
  const { dispatches } = await withBindingLimit(gpu, s.limit?.bytes ?? gpu.limits.maxBinding, () =>
    embeddingForward(gpu, out, tIds, tTypeIds, tWord, tPos, tTt),
  );
  const actual = await gpu.readF32(out);
  for (const t of owned) t.release();
  const checks: Check[] = [{ name: 'out', actual, expected: embeddingRef(ids, typeIds, word, pos, tt, B, L, H), tol: { atol: 0 } }];
  // exact: the chunked path really split the batch
  if (s.limit) checks.push({ name: 'dispatches', actual: [dispatches], expected: [s.limit.dispatches], tol: { atol: 0 } });
  return checks;
}

const specs: Spec[] = [
  { name: 'word only, B=L=H=V=1', B: 1, L: 1, H: 1, V: 1 },
  { name: 'BERT: word + token_type[tt] + position', B: 2, L: 5, H: 7, V: 11, P: 8, T: 2, typeIds: true },
  { name: 'GTE: word + token_type row 0, no position', B: 3, L: 4, H: 129, V: 50, T: 2 },
  { name: 'tokenTypes ignored without a token_type table', B: 2, L: 3, H: 5, V: 9, P: 3, typeIds: true },
  { name: 'out-of-range ids and type ids are clamped', B: 2, L: 4, H: 6, V: 10, P: 4, T: 2, typeIds: true, badIds: true },
  // 9 rows of 2 KiB output + 64 B ids: chunks must be multiples of 4 rows (256 B of ids), so
  // 4 + 4 + 1 under 8 KiB
  { name: 'BERT chunked under an 8 KiB binding limit', B: 9, L: 16, H: 32, V: 50, P: 16, T: 2, typeIds: true, limit: { bytes: 8192, dispatches: 3 } },
  // GTE-large's real table (30528 x 1024 f32 = 125 MB, one binding) and 33 x 512 x 1024 outputs,
  // past 65535 workgroups of 256 (folded grid)
  { name: 'GTE-large table [30528, 1024], out [33, 512, 1024] (big grid)', B: 33, L: 512, H: 1024, V: 30528, T: 1 },
];

const forwardCases: KernelCase[] = specs.map((s, i) => ({
  name: s.name,
  run: (gpu: Gpu) => runSpec(gpu, s, 700 + 10 * i),
}));

// ---------------------------------------------------------------- forward, f16
//
// f16 tables and output, u32 ids (half-io.ts). The kernel widens the f16 rows to f32 and adds
// them in the same order as the f32 path, so embeddingRef on the f16-rounded tables (f32 adds)
// is its exact value before the one rounding to f16: tolerance halfOutTol({ atol: 0 }) =
// atol 2^-24, rtol 2^-10 (one f16 ulp; WGSL leaves the rounding direction open). Against a
// float64 sum the f32 adds would add at most 2 * 2^-24 of the summed magnitudes.

async function runHalf(gpu: Gpu, s: Spec, seed: number): Promise<Check[]> {
  const { B, L, H, V } = s;
  const { ids, typeIds } = specIds(s, seed);
  const tIds = gpu.upload(ids, [B, L]);
  const tTypeIds = typeIds ? gpu.upload(typeIds, [B, L]) : null;
  const word = uploadHalf(gpu, randu(V * H, seed + 2), [V, H]);
  const pos = s.P ? uploadHalf(gpu, randu(s.P * H, seed + 3), [s.P, H]) : null;
  const tt = s.T ? uploadHalf(gpu, randu(s.T * H, seed + 4), [s.T, H]) : null;
  const out = nanHalf(gpu, [B, L, H]);
  const owned = [tIds, tTypeIds, word.t, pos?.t, tt?.t, out].filter((t): t is Tensor => !!t);
  const launch = () => embeddingForward(gpu, out, tIds, tTypeIds, word.t, pos?.t ?? null, tt?.t ?? null);
  if (!hasF16(gpu)) return refusalCheck(launch, owned);
  const { dispatches } = await withBindingLimit(gpu, s.limit?.bytes ?? gpu.limits.maxBinding, launch);
  const actual = await readHalf(gpu, out);
  for (const t of owned) t.release();
  const expected = embeddingRef(ids, typeIds, word.v, pos?.v ?? null, tt?.v ?? null, B, L, H);
  const checks: Check[] = [{ name: 'out f16', actual, expected, tol: halfOutTol({ atol: 0 }) }];
  if (s.limit) checks.push({ name: 'dispatches', actual: [dispatches], expected: [s.limit.dispatches], tol: { atol: 0 } });
  return checks;
}

const halfSpecs: Spec[] = [
  { name: 'word only, B=L=H=V=1 f16', B: 1, L: 1, H: 1, V: 1 },
  { name: 'BERT: word + token_type[tt] + position f16', B: 2, L: 5, H: 7, V: 11, P: 8, T: 2, typeIds: true },
  { name: 'GTE: word + token_type row 0, no position f16', B: 3, L: 4, H: 129, V: 50, T: 2 },
  { name: 'out-of-range ids and type ids are clamped f16', B: 2, L: 4, H: 6, V: 10, P: 4, T: 2, typeIds: true, badIds: true },
  // f16 rows of 16 x 33 x 2 = 1056 B: aligned chunk starts need multiples of 8 rows, 15 fit
  // 16 KiB, so 8 + 8 + 4
  { name: 'BERT, H = 33, chunked under a 16 KiB binding limit f16', B: 20, L: 16, H: 33, V: 50, P: 16, T: 2, typeIds: true, limit: { bytes: 16384, dispatches: 3 } },
  // GTE-large's table in f16 (62.5 MB) and 33 x 512 x 1024 outputs: the folded grid
  { name: 'GTE-large table [30528, 1024], out [33, 512, 1024] (big grid) f16', B: 33, L: 512, H: 1024, V: 30528, T: 1 },
];

const halfCases: KernelCase[] = halfSpecs.map((s, i) => ({ name: s.name, run: (gpu: Gpu) => runHalf(gpu, s, 1700 + 10 * i) }));

// ---------------------------------------------------------------- backward

const U = 2 ** -24;

interface BwdSpec {
  name: string;
  B: number;
  L: number;
  H: number;
  V: number;
  P?: number;
  T?: number;
  typeIds?: boolean;
  pad?: number; // padTokenId; the last two tokens of sequence 0 are set to it
  idsBelow?: number; // draw ids from [0, idsBelow) (long row lists), default V
  segment?: number;
  accumulate?: boolean;
  limit?: { bytes: number; dispatches: number };
  /** Only compare rows some token maps to, and count the elements elsewhere that are not 0. */
  sparse?: boolean;
  /** dout in f16 (the tables stay f32). */
  half?: boolean;
}

/** Rows [n] of a table that some token maps to. */
function usedRows(keys: ArrayLike<number>, rows: number, skip: number | null): Uint8Array {
  const used = new Uint8Array(rows);
  for (let i = 0; i < keys.length; i++) if (keys[i] !== skip) used[keys[i]] = 1;
  return used;
}

function tableChecks(
  what: string,
  actual: Float32Array,
  again: Float32Array,
  expected: Float64Array,
  init: Float32Array | null,
  used: Uint8Array,
  H: number,
  atol: number,
  sparse: boolean,
): Check[] {
  const rows = used.length;
  const rowsOf = (a: ArrayLike<number>, keep: boolean) => {
    const out: number[] = [];
    for (let r = 0; r < rows; r++) if (!!used[r] === keep) for (let h = 0; h < H; h++) out.push(a[r * H + h]);
    return out;
  };
  const checks: Check[] = [];
  const exp = init ? expected.map((v, i) => v + init[i]) : expected;
  if (sparse) {
    checks.push({ name: `${what} used rows`, actual: rowsOf(actual, true), expected: rowsOf(exp, true), tol: { atol, rtol: init ? U : 0 } });
    // exact: every other element was cleared (a NaN or stale value counts)
    let bad = 0;
    for (let r = 0; r < rows; r++) if (!used[r]) for (let h = 0; h < H; h++) if (actual[r * H + h] !== 0) bad++;
    checks.push({ name: `${what} elements of unused rows that are not 0`, actual: [bad], expected: [0], tol: { atol: 0 } });
  } else {
    checks.push({ name: what, actual, expected: exp, tol: { atol, rtol: init ? U : 0 } });
    // exact: rows no token maps to are 0, or keep their old value
    const other = rowsOf(actual, false);
    if (other.length) checks.push({ name: `${what} unused rows`, actual: other, expected: init ? rowsOf(init, false) : other.map(() => 0), tol: { atol: 0 } });
  }
  // exact: fixed summation order
  if (again !== actual) checks.push({ name: `${what} run to run`, actual: again, expected: actual, tol: { atol: 0 } });
  return checks;
}

async function runBackward(gpu: Gpu, s: BwdSpec, seed: number): Promise<Check[]> {
  const { B, L, H, V } = s;
  const P = s.P ?? 0, T = s.T ?? 0;
  const ids = randIds(B * L, s.idsBelow ?? V, seed);
  if (s.pad !== undefined) ids.set([s.pad, s.pad].slice(0, L), Math.max(0, L - 2));
  const typeIds = s.typeIds ? randIds(B * L, T || 2, seed + 1) : null;
  const init = s.accumulate ? { word: randu(V * H, seed + 3), pos: randu(P * H, seed + 4), tt: randu(T * H, seed + 5) } : null;
  const dout0 = randu(B * L * H, seed + 2);
  const { t: tDout, v: dout } = s.half ? uploadHalf(gpu, dout0, [B, L, H]) : { t: gpu.upload(dout0, [B, L, H]), v: dout0 };
  if (s.half && !hasF16(gpu)) {
    const tables = [gpu.empty([V, H]), P ? gpu.empty([P, H]) : null, T ? gpu.empty([T, H]) : null];
    return refusalCheck(() => embeddingBackward(gpu, tables[0]!, tables[1], tables[2], tDout, ids, typeIds, { padTokenId: s.pad ?? null }), [tDout, ...tables.filter((t) => t !== null)]);
  }
  const run = async () => {
    const mk = (n: number, data: Float32Array | undefined) => (data ? gpu.upload(data, [n, H]) : nanTensor(gpu, [n, H]));
    const dw = mk(V, init?.word), dp = P ? mk(P, init?.pos) : null, dt = T ? mk(T, init?.tt) : null;
    const { dispatches } = await withBindingLimit(gpu, s.limit?.bytes ?? gpu.limits.maxBinding, () =>
      embeddingBackward(gpu, dw, dp, dt, tDout, ids, typeIds, { padTokenId: s.pad ?? null, accumulate: s.accumulate, segment: s.segment }),
    );
    const r = { dw: await gpu.readF32(dw), dp: dp ? await gpu.readF32(dp) : null, dt: dt ? await gpu.readF32(dt) : null, dispatches };
    for (const t of [dw, dp, dt]) t?.release();
    return r;
  };
  const first = await run();
  const second = s.sparse ? first : await run(); // the big case checks run-to-run bits elsewhere: spare its 125 MB twice
  tDout.release();
  const ref = embeddingBackwardRef(dout, ids, typeIds, B, L, H, V, P, T, s.pad ?? null);
  let D = 0;
  for (const v of dout) D = Math.max(D, Math.abs(v));
  const tol = (keys: ArrayLike<number>, rows: number, skip: number | null) => {
    const n = new Uint32Array(rows);
    for (let i = 0; i < keys.length; i++) if (keys[i] !== skip) n[keys[i]]++;
    const nmax = Math.max(...n);
    return 4 * Math.sqrt(2 * nmax + 1) * U * nmax * D;
  };
  const positions = Uint32Array.from({ length: B * L }, (_, i) => i % L);
  const types = typeIds && T ? typeIds : new Uint32Array(B * L);
  const sparse = !!s.sparse;
  const checks = tableChecks('dword', first.dw, second.dw, ref.dword, init?.word ?? null, usedRows(ids, V, s.pad ?? null), H, tol(ids, V, s.pad ?? null), sparse);
  if (P) checks.push(...tableChecks('dposition', first.dp!, second.dp!, ref.dposition!, init?.pos ?? null, usedRows(positions, P, null), H, tol(positions, P, null), sparse));
  if (T) checks.push(...tableChecks('dtokenType', first.dt!, second.dt!, ref.dtokenType!, init?.tt ?? null, usedRows(types, T, null), H, tol(types, T, null), sparse));
  if (s.limit) checks.push({ name: 'dispatches', actual: [first.dispatches], expected: [s.limit.dispatches], tol: { atol: 0 } });
  return checks;
}

const bwdSpecs: BwdSpec[] = [
  { name: 'word only, B=L=H=V=1', B: 1, L: 1, H: 1, V: 1 },
  { name: 'BERT: word (pad 0) + position (P > L) + token_type[tt]', B: 2, L: 5, H: 7, V: 11, P: 8, T: 2, typeIds: true, pad: 0 },
  { name: 'GTE: word + token_type row 0 for every token, no position', B: 3, L: 4, H: 129, V: 50, T: 1, pad: 0 },
  // ids in {0, 1, 2} over 132 tokens: rows of ~44 tokens in segments of 4, two passes
  { name: 'long row lists: segments of 4 tokens, then their sums', B: 4, L: 33, H: 5, V: 3, P: 40, T: 2, typeIds: true, pad: 2, segment: 4 },
  { name: 'segments of 1 token, L = 1', B: 6, L: 1, H: 3, V: 4, P: 1, T: 2, typeIds: true, pad: 1, idsBelow: 3, segment: 1 },
  { name: 'accumulate into existing gradients (pad row keeps its value)', B: 3, L: 6, H: 9, V: 12, P: 6, T: 2, typeIds: true, pad: 3, accumulate: true },
  { name: 'accumulate, two passes', B: 3, L: 20, H: 4, V: 5, P: 20, T: 2, typeIds: true, segment: 3, accumulate: true },
  // dout rows of 2 KiB: 4 sequences per chunk under 8 KiB, so chunks 4 + 4 + 1; 3 clears,
  // then one pass per table and chunk (lists of <= 64 tokens): 3 + 9
  { name: 'BERT chunked under an 8 KiB binding limit', B: 9, L: 16, H: 32, V: 50, P: 16, T: 2, typeIds: true, pad: 0, limit: { bytes: 8192, dispatches: 12 } },
  // GTE-large's table: clearing 31M elements needs the folded grid (> 65535 workgroups of 256)
  { name: 'GTE-large table [30528, 1024], B=2, L=128 (big grid clear)', B: 2, L: 128, H: 1024, V: 30528, T: 1, pad: 0, sparse: true },
  { name: 'word only, B=L=H=V=1 f16', B: 1, L: 1, H: 1, V: 1, half: true },
  { name: 'BERT: word (pad 0) + position (P > L) + token_type[tt], odd H f16', B: 2, L: 5, H: 7, V: 11, P: 8, T: 2, typeIds: true, pad: 0, half: true },
  { name: 'GTE: word + token_type row 0 for every token, no position f16', B: 3, L: 4, H: 129, V: 50, T: 1, pad: 0, half: true },
  { name: 'long row lists: segments of 4 tokens, then their sums f16', B: 4, L: 33, H: 5, V: 3, P: 40, T: 2, typeIds: true, pad: 2, segment: 4, half: true },
  { name: 'accumulate into existing gradients f16', B: 3, L: 6, H: 9, V: 12, P: 6, T: 2, typeIds: true, pad: 3, accumulate: true, half: true },
  // f16 dout rows of 1 KiB: 8 sequences per chunk under 8 KiB, so chunks 8 + 8 + 1; 3 clears,
  // then one pass per table and chunk (segments of 128 tokens hold any row's list): 3 + 9
  { name: 'BERT chunked under an 8 KiB binding limit f16', B: 17, L: 16, H: 32, V: 50, P: 16, T: 2, typeIds: true, pad: 0, segment: 128, limit: { bytes: 8192, dispatches: 12 }, half: true },
];

const backwardCases: KernelCase[] = bwdSpecs.map((s, i) => ({
  name: `backward ${s.name}`,
  run: (gpu: Gpu) => runBackward(gpu, s, 1700 + 10 * i),
}));

// ---------------------------------------------------------------- gradient checks

interface GradSpec {
  name: string;
  B: number;
  L: number;
  H: number;
  ids: number[];
  V: number;
  P: number; // 0: no position table
  T: number; // 0: no token_type table
  typeIds?: number[];
  pad: number | null;
  segment?: number;
}

/** float64 forward; the pad row is read from `frozen`, a constant (padding_idx semantics). */
function embedding64(s: GradSpec, frozen: Float32Array): (xs: Float64Array[]) => Float64Array {
  const { B, L, H } = s;
  return ([word, pos, tt]) => {
    const out = new Float64Array(B * L * H);
    for (let tok = 0; tok < B * L; tok++) {
      const id = s.ids[tok];
      for (let h = 0; h < H; h++) {
        let v = id === s.pad ? frozen[id * H + h] : word[id * H + h];
        if (s.T) v += tt[(s.typeIds ? s.typeIds[tok] : 0) * H + h];
        if (s.P) v += pos[(tok % L) * H + h];
        out[tok * H + h] = v;
      }
    }
    return out;
  };
}

async function runGradcheck(gpu: Gpu, s: GradSpec, seed: number): Promise<Check[]> {
  const { B, L, H, V, P, T } = s;
  const word = randu(V * H, seed), pos = randu(P * H, seed + 1), tt = randu(T * H, seed + 2);
  const R = projection(B * L * H, seed + 3);
  const ids = Uint32Array.from(s.ids), typeIds = s.typeIds ? Uint32Array.from(s.typeIds) : null;
  const tR = gpu.upload(R, [B, L, H]);
  const dw = nanTensor(gpu, [V, H]), dp = P ? nanTensor(gpu, [P, H]) : null, dt = T ? nanTensor(gpu, [T, H]) : null;
  embeddingBackward(gpu, dw, dp, dt, tR, ids, typeIds, { padTokenId: s.pad, segment: s.segment });
  const gw = await gpu.readF32(dw), gp = dp ? await gpu.readF32(dp) : undefined, gt = dt ? await gpu.readF32(dt) : undefined;
  for (const t of [tR, dw, dp, dt]) t?.release();
  return gradChecks({
    f: embedding64(s, word),
    inputs: [
      { name: 'word', value: word, grad: gw },
      { name: 'position', value: pos, grad: gp },
      { name: 'tokenType', value: tt, grad: gt },
    ],
    R,
  });
}

const gradSpecs: GradSpec[] = [
  // pad id 1 at two positions, id 2 at three positions in both sequences, id 0 and 5 unused
  { name: 'BERT [2, 3, 5], pad 1, repeated ids', B: 2, L: 3, H: 5, V: 6, P: 4, T: 2, ids: [2, 1, 3, 2, 2, 1], typeIds: [0, 0, 1, 0, 1, 1], pad: 1 },
  { name: 'GTE [3, 1, 1]: L = 1, H = 1, token_type row 0, pad 0 used', B: 3, L: 1, H: 1, V: 5, P: 0, T: 1, ids: [0, 4, 4], pad: 0 },
  { name: 'segments of 2, no pad', B: 2, L: 4, H: 2, V: 3, P: 4, T: 2, ids: [1, 1, 1, 0, 1, 1, 2, 1], typeIds: [1, 1, 1, 1, 0, 1, 1, 1], pad: null, segment: 2 },
];

const gradCases: KernelCase[] = gradSpecs.map((s, i) => ({
  name: `gradcheck ${s.name}`,
  run: (gpu: Gpu) => runGradcheck(gpu, s, 1900 + 10 * i),
}));

export const embeddingCases: KernelCase[] = [...forwardCases, ...halfCases, ...backwardCases, ...gradCases];
