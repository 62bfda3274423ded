// Chromium entry for the kernel conformance cases (bundled by test/browser/runner.ts).
// run() creates the browser Gpu, runs every case of every family in test/cases/index.ts (new
// families are picked up with no change here), evaluates each Check against its CPU reference
// with the same evaluate() and tolerances as the Node tests, and returns a serialisable
// report. Actual arrays travel back as their exact bytes (./encoding.ts) so Node can compare
// them with Dawn's answers (test/browser.test.ts) without rounding through decimal text.

import { createBrowserGpu } from '../../browser/device.ts';
import type { AdapterSummary } from '../../core/gpu/device.ts';
import { allCases } from '../cases/index.ts';
import { type CheckResult, evaluate } from '../cases/types.ts';
import { type EncodedArray, encodeArray } from './encoding.ts';

export interface BrowserCheck extends CheckResult {
  /** The actual values, or an even sample of them when the case is big (see maxActualElements). */
  actual: EncodedArray;
  /**
   * Up to 4096 evenly spaced reference values: Node compares actuals only where both sides
   * computed the same reference (see sameReference()).
   */
  expectedSample: EncodedArray;
}

export interface BrowserCase {
  family: string;
  name: string;
  ok: boolean;
  /** Set when the case threw instead of returning checks. */
  error?: string;
  ms: number;
  checks: BrowserCheck[];
}

export interface KernelReport {
  adapterName: string;
  adapter: AdapterSummary;
  features: string[];
  userAgent: string;
  ms: number;
  cases: BrowserCase[];
}

export interface KernelRunOptions {
  /** Run only these families (default: all). */
  families?: string[];
  /**
   * Per case, actual values shipped back in full up to this many elements in total; bigger
   * cases send an even sample of each check. 4 bytes each plus a third for base64: the 1M
   * default caps a case at ~5.3 MB through the DevTools pipe (a 16.8M-element case would be 90 MB).
   */
  maxActualElements?: number;
}

export async function run(opts: KernelRunOptions = {}): Promise<KernelReport> {
  const t0 = performance.now();
  const gpu = await createBrowserGpu();
  const cap = opts.maxActualElements ?? 1_000_000;
  const cases: BrowserCase[] = [];
  for (const [family, list] of Object.entries(allCases)) {
    if (opts.families && !opts.families.includes(family)) continue;
    for (const kc of list) {
      const c0 = performance.now();
      try {
        const checks = await kc.run(gpu);
        const total = checks.reduce((n, c) => n + c.actual.length, 0);
        const perCheck = total <= cap ? Infinity : Math.floor(cap / checks.length);
        const results = checks.map(
          (c): BrowserCheck => ({ ...evaluate(c), actual: encodeArray(c.actual, perCheck), expectedSample: encodeArray(c.expected, 4096) }),
        );
        cases.push({ family, name: kc.name, ok: results.every((r) => r.ok), ms: performance.now() - c0, checks: results });
      } catch (e) {
        const err = e as Error;
        cases.push({ family, name: kc.name, ok: false, error: `${err.name}: ${err.message}`, ms: performance.now() - c0, checks: [] });
        // A failed case may leave recorded work or errors behind; drain them so the next case
        // starts clean (and a lost device shows up on every later case, which is the truth).
        await gpu.sync().catch(() => undefined);
      }
    }
  }
  gpu.destroy();
  return {
    adapterName: gpu.name,
    adapter: gpu.adapter,
    features: [...gpu.features].sort(),
    userAgent: navigator.userAgent,
    ms: performance.now() - t0,
    cases,
  };
}
