import assert from 'node:assert/strict';
import { test } from 'node:test';
import { matmul } from '../core/kernels/matmul.ts';
import { pacePump, pumpPace, pumpPaceFor } from '../node/dawn-pump.ts';
import { testGpu } from './helpers.ts';

test('pump pacing: on for CPU adapters by default, AQA_DAWN_POLL_MS overrides, bad values are refused', () => {
  assert.deepEqual(pumpPaceFor(true, undefined), { spinMs: 2, pollMs: 1 });
  assert.equal(pumpPaceFor(false, undefined), null);
  assert.equal(pumpPaceFor(true, '0'), null);
  assert.deepEqual(pumpPaceFor(false, '3'), { spinMs: 2, pollMs: 3 });
  assert.deepEqual(pumpPaceFor(true, ''), { spinMs: 2, pollMs: 1 });
  assert.throws(() => pumpPaceFor(true, 'fast'), /AQA_DAWN_POLL_MS must be a number of milliseconds >= 0, got 'fast'/);
  assert.throws(() => pumpPaceFor(true, '-1'), /AQA_DAWN_POLL_MS/);
});

test('pump pacing: waiting on a long dispatch polls instead of spinning, and the result is unchanged', async () => {
  const gpu = await testGpu();
  pacePump({ spinMs: 2, pollMs: 1 }); // whatever the adapter
  // Count the posts Dawn's pump makes (it looks the global up on every post).
  const paced = globalThis.setImmediate;
  let posts = 0;
  globalThis.setImmediate = ((fn: () => void, ...args: unknown[]) => {
    if (typeof fn === 'function' && fn.name === '') posts++;
    return paced(fn, ...(args as []));
  }) as typeof setImmediate;
  try {
    // Enough work to keep the device busy for a while on any adapter; checked against the CPU.
    const n = 256, reps = 40;
    const av = new Float32Array(n * n).map((_, i) => ((i * 7) % 13) - 6);
    const bv = new Float32Array(n * n).map((_, i) => ((i * 5) % 11) - 5);
    const a = gpu.upload(av, [n, n]);
    const b = gpu.upload(bv, [n, n]);
    const c = gpu.empty([n, n]);
    await gpu.sync();
    posts = 0;
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) matmul(gpu, c, a, b);
    const out = await gpu.read(c);
    const ms = performance.now() - t0;
    // Spinning posts tens per millisecond (about 66 per ms measured on llvmpipe); paced, one per
    // poll period, plus whatever fits in the first spinMs and a little slack for timer jitter.
    const spinPart = 2 * 100;
    assert.ok(posts <= ms * 1.5 + spinPart + 50, `${posts} pump posts in ${ms.toFixed(0)} ms: still spinning`);
    // Integer-valued inputs: every product and partial sum is exact in f32.
    for (const [i, j] of [[0, 0], [n - 1, n - 1], [17, 200]]) {
      let s = 0;
      for (let k = 0; k < n; k++) s += av[i * n + k] * bv[k * n + j];
      assert.equal(out[i * n + j], s, `c[${i},${j}]`);
    }
  } finally {
    globalThis.setImmediate = paced;
  }
  assert.deepEqual(pumpPace(), { spinMs: 2, pollMs: 1 });
});

test('pump pacing: ordinary setImmediate calls pass straight through', async () => {
  pacePump({ spinMs: 2, pollMs: 1 });
  const order: string[] = [];
  const h = setImmediate((x: string) => order.push(x), 'arrow');
  assert.equal(h.constructor.name, 'Immediate');
  // A native anonymous function (a promise resolver) posted from outside Dawn's pump is not paced.
  let resolve!: (v: unknown) => void;
  const p = new Promise((r) => (resolve = r));
  assert.equal(setImmediate(resolve).constructor.name, 'Immediate');
  await p;
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, ['arrow']);
});
