// A node:test test that needs Chromium: skipped with AQA_SKIP_BROWSER=1, and failing with how to
// install Chromium when it is missing (never silently skipped: CI must run it).

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { type TestContext, test } from 'node:test';
import { CHROMIUM_HELP, chromiumExecutable } from './runner.ts';

export function chromiumTest(name: string, fn: (t: TestContext) => Promise<void>): void {
  if (process.env.AQA_SKIP_BROWSER === '1') test(name, { skip: 'AQA_SKIP_BROWSER=1: Chromium tests are not run' }, () => {});
  else if (!existsSync(chromiumExecutable())) test(name, () => assert.fail(`no Chromium at ${chromiumExecutable()}. ${CHROMIUM_HELP}`));
  else test(name, fn);
}
