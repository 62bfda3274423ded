// The kernel conformance cases (test/cases/index.ts) on Dawn's OpenGL ES backend at the
// compatibility feature level: the third platform beside Dawn/Vulkan and Chromium, and the one
// a machine without a Vulkan driver falls back to. Lower default limits, no subgroups, no
// shader-f16 (the f16 cases then check their one-line refusal) and a different shader compiler
// (WGSL -> GLSL) than Vulkan's SPIR-V path. The whole-model forward parity and gradient
// checks run on the same device in test/compat-model.test.ts (1 min 20 s of CPU warm, 2 min
// 20 s cold).
//
// One test per family; every case runs even after another fails, and the test reports each
// failing case with its first bad element. 2-core llvmpipe: 1 min 50 s with Mesa's shader
// cache warm, 6 min 40 s cold (MESA_SHADER_CACHE_DISABLE=true), 4 min 50 s of it building the
// attention pipelines through GLSL.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { allCases } from './cases/index.ts';
import { evaluate } from './cases/types.ts';
import { glTestGpu, runAqa } from './helpers.ts';

for (const [family, cases] of Object.entries(allCases)) {
  test(`compat (OpenGL ES): ${family}, ${cases.length} cases`, async () => {
    const gpu = await glTestGpu();
    const failures: string[] = [];
    for (const kc of cases) {
      try {
        for (const c of await kc.run(gpu)) {
          const r = evaluate({ ...c, name: `${kc.name}: ${c.name}` });
          if (!r.ok) failures.push(r.message);
        }
      } catch (e) {
        failures.push(`${kc.name}: threw ${(e as Error).message}`);
        // Leave no half-recorded work or pending error for the next case.
        await gpu.sync().catch(() => undefined);
      }
    }
    gpu.trim();
    assert.equal(failures.length, 0, `${failures.length} of ${cases.length} ${family} cases fail on ${gpu.name}:\n${failures.join('\n')}`);
  });
}

test('compat: without a core-level adapter, the CLI falls back to OpenGL ES and says so', async () => {
  await glTestGpu();
  // A Vulkan loader that finds no driver stands for a machine without one.
  const r = runAqa(['info'], { VK_ICD_FILENAMES: '/nonexistent/icd.json', VK_DRIVER_FILES: '/nonexistent/icd.json', AQA_BACKEND: '', AQA_ADAPTER: '' });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^warning: no core WebGPU adapter found; using OpenGL ES at the compatibility feature level$/m);
  assert.match(r.stdout, /^selected: .*OpenGL ES/m);
});
