// Kernel conformance in real Chromium WebGPU (SwiftShader here, the user's GPU elsewhere):
// every case of every family in test/cases/index.ts must (a) pass against its CPU reference
// in Chromium with the Node tolerances, and (b) give the same answers as Dawn in Node, within
// each check's own tolerance. The page side is test/browser/kernels.ts, the launcher
// test/browser/runner.ts.
//
// Needs Chromium (/usr/bin/chromium or AQA_CHROMIUM); missing, the test fails with the install
// command. AQA_SKIP_BROWSER=1 skips it. AQA_BROWSER_TIMEOUT_MS bounds the Chromium run: default
// 480 s, about twice what the file takes on a busy 2-core machine (~260 s at load 12 with the
// block-tile matmul cases), because a loaded machine is slow
// (SwiftShader compiles each pipeline variant on the CPU: ~0.5 s plain, ~4 s with shared
// memory, with other jobs running). The slowest cases are printed on every run.
// AQA_BROWSER_FAMILIES=matmul,attention limits the run to those families while working on them.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { before, describe, test } from 'node:test';
import type { BrowserCheck, KernelReport } from './browser/kernels.ts';
import { decodeArray, pickLike, sameReference } from './browser/encoding.ts';
import { CHROMIUM_HELP, type ChromiumRun, chromiumExecutable, runInChromium } from './browser/runner.ts';
import { allCases } from './cases/index.ts';
import { evaluate } from './cases/types.ts';
import { testGpu } from './helpers.ts';

const verbose = !!process.env.AQA_TEST_VERBOSE;
const exe = chromiumExecutable();
const only = process.env.AQA_BROWSER_FAMILIES?.split(',').map((f) => f.trim()).filter(Boolean);
const families = Object.entries(allCases).filter(([f]) => !only || only.includes(f));

if (process.env.AQA_SKIP_BROWSER === '1') {
  const reason = 'AQA_SKIP_BROWSER=1: Chromium WebGPU kernel tests not run';
  console.log(reason);
  test('chromium: kernel conformance', { skip: reason }, () => {});
} else if (!existsSync(exe)) {
  test('chromium: kernel conformance', () => assert.fail(`no Chromium at ${exe}. ${CHROMIUM_HELP}`));
} else {
  describe('chromium', () => {
    let run: ChromiumRun<KernelReport>;
    const byName = new Map<string, KernelReport['cases'][number]>();

    before(async () => {
      const timeoutMs = Number(process.env.AQA_BROWSER_TIMEOUT_MS) || 480_000;
      run = await runInChromium<KernelReport>('test/browser/kernels.ts', timeoutMs, {
        arg: { families: only },
        onConsole: verbose ? (type, text) => console.log(`  [chromium ${type}] ${text}`) : undefined,
      });
      for (const c of run.value.cases) byName.set(`${c.family}: ${c.name}`, c);
    });

    test('adapter, timings and page errors', () => {
      const r = run.value;
      const t = run.timings;
      console.log(`chromium ${run.browserVersion}, adapter: ${r.adapterName}; features: ${r.features.join(', ') || 'none'}`);
      console.log(`flags added to Playwright's defaults: ${run.args.join(' ')}`);
      console.log(
        `bundle ${ms(t.buildMs)}, launch ${ms(t.launchMs)}, run ${ms(t.runMs)} (cases ${ms(r.ms)}), total ${ms(t.totalMs)}`,
      );
      const perFamily = new Map<string, number>();
      for (const c of r.cases) perFamily.set(c.family, (perFamily.get(c.family) ?? 0) + c.ms);
      console.log(`per family: ${[...perFamily].map(([f, t]) => `${f} ${ms(t)}`).join(', ')}`);
      const slow = [...r.cases].sort((a, b) => b.ms - a.ms).slice(0, 3);
      console.log(`slowest cases: ${slow.map((c) => `${c.family}: ${c.name} ${ms(c.ms)}`).join('; ')}`);
      assert.ok(r.adapterName && r.adapterName !== 'unknown adapter', 'Chromium reported no adapter name');
      assert.deepEqual(run.errors, [], `the page reported errors:\n${run.errors.join('\n')}`);
    });

    test('every registered case ran in Chromium', () => {
      const want = families.flatMap(([family, list]) => list.map((kc) => `${family}: ${kc.name}`));
      assert.deepEqual([...byName.keys()], want);
    });

    for (const [family, list] of families) {
      for (const kc of list) {
        const key = `${family}: ${kc.name}`;

        test(`chromium: ${key}`, () => {
          const c = byName.get(key);
          assert.ok(c, `${key} did not run in Chromium`);
          if (c.error) assert.fail(`${key} threw in Chromium: ${c.error}`);
          assert.ok(c.checks.length > 0, `${key} returned no checks`);
          for (const r of c.checks) {
            if (verbose) console.log(`  chromium ${kc.name}: ${r.message}`);
            if (!r.ok) assert.fail(`${kc.name} in Chromium: ${r.message}`);
          }
        });

        // Same inputs through Dawn: the two WebGPU implementations must agree within the
        // check's tolerance (atol 0 checks bit for bit). Checks whose reference differs between
        // the adapters (dispatch counts follow the binding limit) are left to (a); cases over
        // maxActualElements are compared on an even sample of every check.
        test(`chromium = node: ${key}`, async (t) => {
          const c = byName.get(key);
          assert.ok(c && !c.error, `${key} has no Chromium result to compare`);
          const node = await kc.run(await testGpu());
          // A case whose path depends on an optional feature (e.g. f16 storage without
          // 'shader-f16' in Chromium's SwiftShader) runs different checks on each adapter; each
          // side was already held to its reference (the test above and the Node suite).
          if (!node.some((n) => c.checks.some((b) => b.name === n.name))) {
            t.diagnostic(`${key}: Chromium ran other checks (${c.checks.map((b) => b.name).join('; ')}): adapter-dependent, not compared`);
            return;
          }
          assert.equal(c.checks.length, node.length, `${key}: ${c.checks.length} checks in Chromium, ${node.length} in Node`);
          let compared = 0;
          for (const [i, n] of node.entries()) {
            const b: BrowserCheck | undefined = c.checks[i];
            assert.ok(b && b.name === n.name, `${key}: check ${i} is '${b?.name}' in Chromium, '${n.name}' in Node`);
            if (!sameReference(b.expectedSample, n.expected)) {
              t.diagnostic(`${n.name}: the reference depends on the adapter, not compared`);
              continue;
            }
            const actual = decodeArray(b.actual);
            const r = evaluate({ name: `${kc.name}: ${n.name} chromium vs node`, actual, expected: pickLike(b.actual, n.actual), tol: n.tol });
            if (b.actual.stride > 1) t.diagnostic(`${n.name}: compared ${actual.length} of ${b.actual.length} elements (stride ${b.actual.stride})`);
            if (verbose) console.log(`  ${r.message}`);
            if (!r.ok) assert.fail(r.message);
            compared++;
          }
          // Such cases are still checked against the CPU reference in the test above.
          if (compared === 0) t.diagnostic('every reference of this case depends on the adapter: Chromium vs Node not compared');
        });
      }
    }
  });
}

function ms(x: number): string {
  return x >= 1000 ? `${(x / 1000).toFixed(1)} s` : `${x.toFixed(0)} ms`;
}
