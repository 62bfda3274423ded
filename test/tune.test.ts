// `aqa tune` and core/tune: every candidate the tuner would time is right against the float64
// references on awkward shapes (the tuner itself only compares candidates with the default),
// the pick is the measured fastest, the tuned choices are what the kernels then use, and the
// cache file is written, used by later commands, and ignored when stale or corrupt.

import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { attentionBackward, attentionForward, attentionBackwardTiles, attentionTiles } from '../core/kernels/attention.ts';
import { type MatmulTile, CPU_TILE, defaultMatmulTile, matmul, stagesTransposed } from '../core/kernels/matmul.ts';
import { fromHalf, roundHalf, toHalf } from '../core/gpu/half.ts';
import { attentionBackwardRef, attentionRef } from '../core/ref/attention.ts';
import { matmulRef } from '../core/ref/matmul.ts';
import { MATMUL_TILES, attentionBackwardCandidates, attentionCandidates, matmulCandidates, matmulDtypes } from '../core/tune/candidates.ts';
import { encoderShapes } from '../core/tune/shapes.ts';
import { emptyTable, matmulKey, attentionKey, setTuning } from '../core/tune/table.ts';
import { type TuningResult, tune } from '../core/tune/tuner.ts';
import type { Timer } from '../core/tune/timer.ts';
import { matmulTol } from './cases/matmul.ts';
import { matmulTolF16, matmulTolF32Out } from './cases/matmul-f16.ts';
import { CHROMIUM_HELP, chromiumExecutable, runInChromium } from './browser/runner.ts';
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

test('tune: with an injected timer a known-fastest candidate wins, and one that fails to run is discarded with a note', async () => {
  const gpu = await testGpu();
  // a tile the launcher refuses (tm not a multiple of 4): the tuner must note it and go on
  const broken: MatmulTile = { wgX: 8, wgY: 8, tm: 3, tn: 4, shared: false };
  (MATMUL_TILES as MatmulTile[]).push(broken);
  const names = matmulCandidates(gpu, 'a@b').map((c) => c.name);
  (MATMUL_TILES as MatmulTile[]).pop();
  names.pop();
  const fast = names[names.length - 1]; // not the default: the pick must follow the timer
  const timer: Timer = async (record, what) => {
    record();
    await gpu.sync();
    return what.candidate === fast ? 1 : 5 + names.indexOf(what.candidate);
  };
  (MATMUL_TILES as MatmulTile[]).push(broken);
  let r: TuningResult;
  try {
    r = await tune(gpu, tinyShapes(), { reps: 3, timer, kinds: ['matmul'], dtypes: ['f32'], targetMs: 1, maxIters: 1 });
  } finally {
    (MATMUL_TILES as MatmulTile[]).pop();
  }
  assert.equal(r.ops[0].winner, fast);
  const bad = r.ops[0].candidates.find((c) => c.name === 'register 8x8x3x4');
  assert.ok(bad && !bad.ok && /failed at .*tm and tn must be multiples of 4/.test(bad.note ?? ''), JSON.stringify(bad));
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

// ---------------------------------------------------------------- the command and its cache file

/** stderr lines starting with "warning:" (progress lines and Dawn's own messages are not counted). */
const warnings = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('warning:'));

test('aqa tune on tiny-bert writes the file; aqa info then uses it, and ignores a stale or corrupt one with one warning', async (t) => {
  const dir = tempDir(t, 'tune');
  const env = { AQA_TUNING_DIR: dir, AQA_TUNING: 'on' };
  const json = join(dir, 'run.json');
  const r = runAqa(['tune', '--model', 'test/fixtures/tiny-bert', '--batch', '2', '--max-length', '16', '--reps', '1', '--precision', 'f32', '--json', json], env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^op\s+shape\s+candidate\s+median ms\s+GFLOP\/s\s+verdict\s+winner$/m);
  for (const op of ['matmul a@b f32', 'matmul a@b^T f32', 'matmul a^T@b f32', 'attention d8 L16', 'attention backward d8 L16']) {
    const winners = r.stdout.split('\n').filter((l) => l.startsWith(`${op} `) && l.endsWith('*'));
    assert.equal(winners.length, 1, `${op}: one winner row in\n${r.stdout}`);
  }
  const files = readdirSync(dir).filter((f) => f !== 'run.json');
  assert.equal(files.length, 1, `one tuning file, got ${files.join(', ')}`);
  const file = join(dir, files[0]);
  assert.match(r.stdout, new RegExp(`wrote ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  const stored = JSON.parse(readFileSync(file, 'utf8'));
  const gpu = await testGpu();
  assert.equal(stored.driver, gpu.adapter.description);
  assert.equal(stored.aqa, JSON.parse(readFileSync('package.json', 'utf8')).version);
  assert.deepEqual(Object.keys(stored.table.matmul), ['a@b f32', 'a@b^T f32', 'a^T@b f32']);
  assert.deepEqual(Object.keys(stored.table.attention), ['d8 L16']);
  // the JSON record's winners are the argmin of its medians, and the file holds those winners
  const run = JSON.parse(readFileSync(json, 'utf8')).result as TuningResult;
  assertPicksArgmin(run);
  assert.deepEqual(stored.table, run.table);

  const info = runAqa(['info'], env);
  assert.equal(info.code, 0, info.stderr);
  assert.ok(info.stdout.includes(`tuning: in use, from ${file}`), info.stdout);
  assert.deepEqual(warnings(info.stderr), []);
  const off = runAqa(['info'], { ...env, AQA_TUNING: 'off' });
  assert.match(off.stdout, /tuning: off \(AQA_TUNING=off\), built-in defaults/);

  writeFileSync(file, JSON.stringify({ ...stored, driver: 'llvmpipe: Mesa 24.0.0 (LLVM 14)' }));
  const stale = runAqa(['info'], env);
  assert.equal(stale.code, 0, stale.stderr);
  assert.deepEqual(warnings(stale.stderr), [
    `warning: tuning for ${gpu.adapter.device} was made with driver 'llvmpipe: Mesa 24.0.0 (LLVM 14)'; this is '${gpu.adapter.description}': using defaults; rerun aqa tune`,
  ]);
  assert.match(stale.stdout, /tuning: ignored, built-in defaults: .* was made with driver/);

  writeFileSync(file, '{"driver": "x", "table": {"matmul": {"a@b f32": {"tile": {"wgX": -1}}}}}');
  const corrupt = runAqa(['info'], env);
  assert.equal(corrupt.code, 0, corrupt.stderr);
  const w = warnings(corrupt.stderr);
  assert.equal(w.length, 1, corrupt.stderr);
  assert.ok(w[0].startsWith(`warning: ignoring the tuning file ${file}: table: matmul.a@b f32.tile.wgX is -1, expected an integer >= 1`), w[0]);
});

test('aqa embed runs with the tuned table (non-default winners) and gives the same embeddings', async (t) => {
  const dir = tempDir(t, 'tune-embed');
  const texts = join(dir, 'texts.txt');
  writeFileSync(texts, 'a short text\nanother, somewhat longer text about attention and tuning\n');
  const embed = (env: Record<string, string>, out: string) =>
    runAqa(['embed', '--model', 'test/fixtures/tiny-bert', '--input', texts, '--out', join(dir, out)], { AQA_TUNING_DIR: dir, ...env });
  const base = embed({ AQA_TUNING: 'off' }, 'base.npy');
  assert.equal(base.code, 0, base.stderr);
  // a table whose every entry differs from the built-in choice on this adapter
  const gpu = await testGpu();
  const table = emptyTable();
  table.matmul[matmulKey('a@b', 'f32')] = { tile: { wgX: 4, wgY: 4, tm: 4, tn: 4, shared: false }, stage: false };
  for (const L of [8, 16, 32]) table.attention[attentionKey(8, L)] = { bq: 4, rq: 3, bk: 5 };
  const { saveTuning, loadTuning } = await import('../node/tuning-cache.ts');
  const saved = process.env.AQA_TUNING_DIR;
  process.env.AQA_TUNING_DIR = dir;
  try {
    loadTuning(gpu, undefined, () => {}); // records the backend the CLI will use for its key
    await saveTuning(gpu, { timer: 'test', reps: 1, shapes: 'test', table });
  } finally {
    if (saved === undefined) delete process.env.AQA_TUNING_DIR;
    else process.env.AQA_TUNING_DIR = saved;
    setTuning(gpu, null);
  }
  const tuned = embed({ AQA_TUNING: 'on' }, 'tuned.npy');
  assert.equal(tuned.code, 0, tuned.stderr);
  assert.deepEqual(warnings(tuned.stderr).filter((l) => /tuning/.test(l)), [], 'the tuning file is taken as it is');
  const { readNpy } = await import('../node/npy.ts');
  const [a, b] = [await readNpy(join(dir, 'base.npy')), await readNpy(join(dir, 'tuned.npy'))];
  assert.deepEqual(b.shape, a.shape);
  // other tiles sum in another order: f32 rounding differences only
  assertClose('tuned vs default embeddings', b.data, a.data, { atol: 1e-5 });
});

// SwiftShader in Chromium (as test/browser.test.ts: AQA_SKIP_BROWSER=1 skips, no Chromium fails).
test('chromium: the tuner picks the measured fastest on the page adapter', { skip: process.env.AQA_SKIP_BROWSER === '1' && 'AQA_SKIP_BROWSER=1' }, async () => {
  const exe = chromiumExecutable();
  assert.ok(existsSync(exe), `no Chromium at ${exe}. ${CHROMIUM_HELP}`);
  const run = await runInChromium<TuningResult>('test/browser/tune.ts', Number(process.env.AQA_BROWSER_TIMEOUT_MS) || 180_000);
  assert.deepEqual(run.errors, [], `the page reported errors:\n${run.errors.join('\n')}`);
  const r = run.value;
  console.log(`chromium ${run.browserVersion}, ${r.adapter}: ${r.ops.map((o) => `${o.kind} ${o.key} -> ${o.winner}`).join('; ')}`);
  assert.deepEqual(r.ops.map((o) => `${o.kind} ${o.key}`), ['matmul a@b f32', 'attention d8 L16']);
  for (const op of r.ops) for (const c of op.candidates) assert.ok(c.ok, `${op.kind} ${op.key} ${c.name} was discarded in Chromium: ${c.note}`);
  assertPicksArgmin(r);
});
