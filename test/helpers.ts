// Node-side test utilities: one GPU per test process and registration of conformance cases.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Gpu } from '../core/gpu/device.ts';
import { createNodeGpu } from '../node/device.ts';
import { type Check, type KernelCase, evaluate } from './cases/types.ts';

export { rng, randu } from './cases/util.ts';

// Tests check the built-in kernel defaults: a tuning file from `aqa tune` on this machine must
// not change them (test/tune.test.ts turns it on for its own commands).
process.env.AQA_TUNING ??= 'off';

let gpuPromise: Promise<Gpu> | null = null;

/** The process-wide test GPU (Dawn; llvmpipe on CI). */
export function testGpu(): Promise<Gpu> {
  gpuPromise ??= createNodeGpu();
  return gpuPromise;
}

let glPromise: Promise<Gpu> | null = null;

/**
 * The process-wide OpenGL ES test GPU: Dawn's GL backend at the compatibility feature level.
 * Mesa's EGL (libegl-mesa0, installed by tools/setup-system.sh) gives one on every machine the
 * suite supports, so its absence is a failure, not a skip.
 */
export function glTestGpu(): Promise<Gpu> {
  glPromise ??= createNodeGpu({ backend: 'opengles', adapter: '' }).catch((e: Error) => {
    throw new Error(`no OpenGL ES adapter at the compatibility feature level (install Mesa's EGL: tools/setup-system.sh): ${e.message.split('\n')[0]}`);
  });
  return glPromise;
}

/** A named check that runs on whichever Gpu it is given, so one check serves several devices. */
export interface GpuCheck {
  name: string;
  run(gpu: Gpu): Promise<void>;
}

/** One node:test per check, on the Gpu `device` gives; `prefix` goes before each name. */
export function registerGpuChecks(checks: GpuCheck[], device: () => Promise<Gpu>, prefix = ''): void {
  for (const c of checks) test(`${prefix}${c.name}`, async () => c.run(await device()));
}

/**
 * A fresh `aqa-<prefix>-*` folder in the system temp folder, removed when the test `t` ends
 * (its TestContext), whether it passed or failed (a full run used to leave ~40 folders, ~100 MB, behind).
 */
export function tempDir(t: { after(fn: () => void): unknown }, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `aqa-${prefix}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true, maxRetries: 3 }));
  return dir;
}

/** Runs the `aqa` CLI (node/bin.mjs) as a user would; `env` adds to this process's environment. */
export function runAqa(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['node/bin.mjs', ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 300_000 });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** Exit code 1 and exactly one stderr line starting with "aqa: " holding every fragment, no stack trace. */
export function assertOneLineError(r: { code: number | null; stderr: string }, ...fragments: string[]): void {
  assert.equal(r.code, 1, `exit code ${r.code}; stderr: ${r.stderr}`);
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('aqa: '));
  assert.equal(lines.length, 1, `expected one error line, got:\n${r.stderr}`);
  assert.ok(!/\n\s+at /.test(r.stderr), `stack trace printed:\n${r.stderr}`);
  for (const f of fragments) assert.ok(lines[0].includes(f), `'${lines[0]}' should mention '${f}'`);
}

/** Fails with the first out-of-tolerance element and the max difference. */
export function assertCheck(c: Check): void {
  const r = evaluate(c);
  if (process.env.AQA_TEST_VERBOSE) console.log(`  ${r.message}`);
  if (!r.ok) assert.fail(r.message);
}

export function assertClose(name: string, actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Check['tol']): void {
  assertCheck({ name, actual, expected, tol });
}

/** One node:test per case; each check inside it must pass. */
export function registerCases(family: string, cases: KernelCase[]): void {
  for (const kc of cases) {
    test(`${family}: ${kc.name}`, async () => {
      const gpu = await testGpu();
      for (const c of await kc.run(gpu)) assertCheck({ ...c, name: `${kc.name}: ${c.name}` });
    });
  }
}

/**
 * A family's ' f16' cases run on a Gpu that does not list 'shader-f16' (a second Gpu over the
 * test device, with its own empty pipeline cache), as on an adapter without the feature: each
 * must refuse in one line before dispatching anything (its check says so).
 */
export function registerF16RefusalTest(family: string, cases: KernelCase[], minCases = 1): void {
  test(`${family}: without shader-f16 every f16 case gets the one-line refusal`, async () => {
    const gpu = await testGpu();
    const bare = new Gpu(gpu.device, gpu.adapter);
    bare.features.delete('shader-f16');
    const f16 = cases.filter((c) => c.name.endsWith(' f16'));
    assert.ok(f16.length >= minCases, `${family}: ${f16.length} f16 cases`);
    try {
      for (const kc of f16) for (const c of await kc.run(bare)) assertCheck({ ...c, name: `${kc.name}: ${c.name}` });
      assert.equal(bare.stats.dispatches, 0);
    } finally {
      bare.trim();
    }
  });
}
