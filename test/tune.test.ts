// `aqa tune` and core/tune: every candidate the tuner would time is right against the float64
// references on awkward shapes (the tuner itself only compares candidates with the default),
// the pick is the measured fastest, the tuned choices are what the kernels then use, and the
// cache file is written, used by later commands, and ignored when stale or corrupt.

import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { attentionBackward, attentionForward, attentionBackwardTiles, attentionTiles } from '../core/kernels/attention.ts';
import { type MatmulTile, CPU_TILE, defaultMatmulTile, matmul, stagesTransposed } from '../core/kernels/matmul.ts';
import { fromHalf, roundHalf, toHalf } from '../core/gpu/half.ts';
import { attentionBackwardRef, attentionRef } from '../core/ref/attention.ts';
import { matmulRef } from '../core/ref/matmul.ts';
import { attentionBackwardCandidates, attentionCandidates, matmulCandidates, matmulDtypes } from '../core/tune/candidates.ts';
import { encoderShapes } from '../core/tune/shapes.ts';
import { emptyTable, matmulKey, attentionKey, setTuning } from '../core/tune/table.ts';
import { type TuningResult, tune } from '../core/tune/tuner.ts';
import type { Timer } from '../core/tune/timer.ts';
import { matmulTol } from './cases/matmul.ts';
import { matmulTolF16, matmulTolF32Out } from './cases/matmul-f16.ts';
import { assertClose, randu, runAqa, tempDir, testGpu } from './helpers.ts';

const OPS = ['a@b', 'a@b^T', 'a^T@b'] as const;

test('tune: every matmul candidate matches the float64 reference on 33x47x19 (f32, and f16 where offered)', async () => {
  const gpu = await testGpu();
  const [M, K, N] = [33, 47, 19];
  for (const dtype of matmulDtypes(gpu)) {
    for (const op of OPS) {
      const transA = op.startsWith('a^T');
      const transB = op.endsWith('^T');
      const ah = randu(M * K, 5), bh = randu(K * N, 6);
      const f16 = dtype === 'f16';
      const up = (x: Float32Array, shape: number[]) => (f16 ? gpu.upload(toHalf(x), shape) : gpu.upload(x, shape));
      const a = up(ah, transA ? [K, M] : [M, K]);
      const b = up(bh, transB ? [N, K] : [K, N]);
      const outF16 = f16 && !transA;
      const out = gpu.empty([M, N], outF16 ? 'f16' : 'f32');
      const ref = f16 ? matmulRef(roundHalf(ah), roundHalf(bh), M, K, N, { transA, transB }) : matmulRef(ah, bh, M, K, N, { transA, transB });
      const tol = !f16 ? matmulTol(K, ref.absSum) : outF16 ? matmulTolF16(K, ref.absSum) : matmulTolF32Out(K, ref.absSum);
      const cands = matmulCandidates(gpu, op);
      assert.ok(cands.length >= 2, `${op}: only ${cands.length} candidates`);
      for (const c of cands) {
        gpu.clear(out);
        matmul(gpu, out, a, b, { transA, transB, tile: c.tile, stageTransposed: c.stage });
        const got = outF16 ? fromHalf((await gpu.read(out)) as Uint16Array) : await gpu.readF32(out);
        assertClose(`${op} ${dtype} ${c.name}`, got, ref.out, tol);
      }
      for (const t of [a, b, out]) t.release();
    }
  }
});

test('tune: every attention candidate matches the float64 reference (L=13, d=8 and 16, padded rows)', async () => {
  const gpu = await testGpu();
  for (const d of [8, 16]) {
    const B = 3, L = 13, heads = 2, H = heads * d;
    const mask = new Uint32Array(B * L);
    [13, 9, 1].forEach((len, b) => mask.fill(1, b * L, b * L + len));
    const qkvh = randu(B * L * 3 * H, 40 + d);
    const douth = randu(B * L * H, 50 + d);
    const qkv = gpu.upload(qkvh, [B, L, 3 * H]);
    const tm = gpu.upload(mask, [B, L]);
    const dout = gpu.upload(douth, [B, L, H]);
    const out = gpu.empty([B, L, H]);
    const lse = gpu.empty([B, heads, L]);
    const dqkv = gpu.empty([B, L, 3 * H]);
    const ref = attentionRef(qkvh, mask, B, L, heads, d);
    const bref = attentionBackwardRef(douth, qkvh, mask, B, L, heads, d);
    let maxM = 0;
    for (const m of bref.magnitude) maxM = Math.max(maxM, m);
    for (const c of attentionCandidates(gpu, L, d)) {
      gpu.clear(out);
      attentionForward(gpu, out, lse, qkv, tm, heads, { tiles: c.tiles });
      // tolerances of test/cases/attention.ts for a flat softmax (qk = 1)
      assertClose(`forward d=${d} ${c.name}: out`, await gpu.readF32(out), ref.out, { atol: 2e-6 });
      assertClose(`forward d=${d} ${c.name}: lse`, await gpu.readF32(lse), ref.lse, { atol: 2e-6, rtol: 1e-6 });
    }
    attentionForward(gpu, out, lse, qkv, tm, heads);
    const eps = 2e-6 + 4 * Math.sqrt(L) * 2 ** -24; // bwdEps of test/cases/attention.ts, flat
    for (const c of attentionBackwardCandidates(gpu, L, d)) {
      gpu.clear(dqkv);
      attentionBackward(gpu, dqkv, dout, out, lse, qkv, tm, heads, { tiles: c.tiles });
      assertClose(`backward d=${d} ${c.name}: dqkv`, await gpu.readF32(dqkv), bref.dqkv, { atol: eps * maxM });
    }
    for (const t of [qkv, tm, dout, out, lse, dqkv]) t.release();
  }
});

/** The candidate with the least recorded time among those that ran, per op. */
function assertPicksArgmin(r: TuningResult): void {
  for (const op of r.ops) {
    const ran = op.candidates.filter((c) => c.ok);
    assert.ok(ran.length > 0, `${op.kind} ${op.key}: no candidate ran`);
    const fastest = ran.reduce((x, y) => (y.ms < x.ms ? y : x));
    assert.equal(op.winner, fastest.name, `${op.kind} ${op.key}: picked ${op.winner}, fastest was ${fastest.name} (${ran.map((c) => `${c.name} ${c.ms}`).join('; ')})`);
    assert.deepEqual(op.candidates.filter((c) => c.winner).map((c) => c.name), [fastest.name]);
    for (const c of ran) for (const s of c.shapes) assert.equal(s.times.length, r.reps, `${c.name}: one time per rep`);
  }
}

const tinyShapes = () => encoderShapes({ arch: 'bert', hiddenSize: 32, intermediateSize: 64, numHeads: 4, headDim: 8 }, 2, 13);

test('tune: the winner is the argmin of the measured medians (real timer, tiny encoder shapes)', async () => {
  const gpu = await testGpu();
  const r = await tune(gpu, tinyShapes(), { reps: 2, targetMs: 5, maxIters: 4, dtypes: ['f32'] });
  assert.deepEqual(r.ops.map((o) => `${o.kind} ${o.key}`), ['matmul a@b f32', 'matmul a@b^T f32', 'matmul a^T@b f32', 'attention d8 L16', 'attention backward d8 L16']);
  assertPicksArgmin(r);
  for (const op of r.ops) for (const c of op.candidates) assert.ok(c.ok, `${op.kind} ${op.key} ${c.name} was discarded: ${c.note}`);
  assert.ok(r.table.matmul['a@b f32'] && r.table.attention['d8 L16'] && r.table.attentionBackward['d8 L16']);
});

test('tune: with an injected timer a known-fastest candidate wins, and a wrong output is discarded', async () => {
  const gpu = await testGpu();
  const names = matmulCandidates(gpu, 'a@b').map((c) => c.name);
  const fast = names[names.length - 1]; // not the default: the pick must follow the timer
  const timer: Timer = async (record, what) => {
    record();
    await gpu.sync();
    return what.candidate === fast ? 1 : 5 + names.indexOf(what.candidate);
  };
  const r = await tune(gpu, tinyShapes(), { reps: 3, timer, kinds: ['matmul'], dtypes: ['f32'], targetMs: 1, maxIters: 1 });
  assert.equal(r.ops[0].winner, fast);
  assertPicksArgmin(r);
  assert.deepEqual(r.table.matmul['a@b f32'].tile, matmulCandidates(gpu, 'a@b').find((c) => c.name === fast)!.tile);
});

test('tune: a tuned table changes the defaults; without one they are the built-in ones', async () => {
  const gpu = await testGpu();
  const builtIn = { nn: defaultMatmulTile(gpu), nt: defaultMatmulTile(gpu, { transB: true }), stage: stagesTransposed(gpu, { transB: true }) };
  const att = attentionTiles(gpu, 100, 32);
  const att64 = attentionTiles(gpu, 64, 32);
  const attD64 = attentionTiles(gpu, 100, 64);
  const bwd = attentionBackwardTiles(gpu, 100, 32);
  const other: MatmulTile = { wgX: 4, wgY: 4, tm: 4, tn: 4, shared: false };
  const table = emptyTable();
  table.matmul[matmulKey('a@b', 'f32')] = { tile: CPU_TILE, stage: false };
  table.matmul[matmulKey('a@b^T', 'f32')] = { tile: other, stage: !builtIn.stage };
  table.attention[attentionKey(32, 100)] = { bq: 4, rq: 3, bk: 5 };
  table.attentionBackward[attentionKey(32, 100)] = { bq: 4, rq: 3, rk: 2 };
  setTuning(gpu, table);
  try {
    assert.deepEqual(defaultMatmulTile(gpu), CPU_TILE);
    assert.equal(stagesTransposed(gpu, { transB: true }), !builtIn.stage);
    assert.deepEqual(defaultMatmulTile(gpu, { transB: true, staged: !builtIn.stage }), other);
    // the entry is for the staging it was measured with; another gets the built-in tile
    assert.deepEqual(defaultMatmulTile(gpu, { transB: true, staged: builtIn.stage }), builtIn.stage ? builtIn.nn : builtIn.nt);
    assert.deepEqual(defaultMatmulTile(gpu, { dtype: 'f16' }), builtIn.nn, 'f16 is not tuned here');
    assert.deepEqual(attentionTiles(gpu, 128, 32), { bq: 4, rq: 3, bk: 5 }, 'same bucket (L 65..128)');
    assert.deepEqual(attentionTiles(gpu, 64, 32), att64, 'other bucket: built-in');
    assert.deepEqual(attentionBackwardTiles(gpu, 100, 32), { bq: 4, rq: 3, rk: 2 });
    assert.deepEqual(attentionTiles(gpu, 100, 64), attD64, 'other head dim: built-in');
    // and the launch really runs the tuned tile: a product through the default path is right
    const a = gpu.upload(randu(33 * 47, 1), [33, 47]), b = gpu.upload(randu(47 * 19, 2), [19, 47]), out = gpu.empty([33, 19]);
    matmul(gpu, out, a, b, { transB: true });
    const ref = matmulRef(randu(33 * 47, 1), randu(47 * 19, 2), 33, 47, 19, { transB: true });
    assertClose('tuned a@b^T', await gpu.readF32(out), ref.out, matmulTol(47, ref.absSum));
    for (const t of [a, b, out]) t.release();
  } finally {
    setTuning(gpu, null);
  }
  assert.deepEqual(defaultMatmulTile(gpu), builtIn.nn);
  assert.deepEqual(attentionTiles(gpu, 100, 32), att);
  assert.deepEqual(attentionBackwardTiles(gpu, 100, 32), bwd);
});
