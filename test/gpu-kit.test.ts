// The GPU-machine kit (tools/gpu-bench): `run.sh --routes-only` from this checkout (no pack.sh
// needed) tries the three routes to an adapter and prints one line per route; here Mesa gives
// lavapipe on route 1, route 2 has no NVIDIA driver to point at, and llvmpipe answers route 3
// through EGL. Also the one-line reasons of route-line.mjs and the ratios of summary.mjs, on
// made-up inputs (no GPU needed).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir } from './helpers.ts';

const KIT = 'tools/gpu-bench';
const hasNvidia = existsSync('/proc/driver/nvidia/version');

test('gpu kit: run.sh --routes-only prints the three routes in order, with lavapipe and llvmpipe here', { timeout: 120_000 }, (t) => {
  const out = tempDir(t, 'gpu-kit');
  const r = spawnSync('bash', [join(KIT, 'run.sh'), '--routes-only'], {
    encoding: 'utf8',
    timeout: 110_000,
    env: { ...process.env, OUT: out, AQA_CMD: `${process.execPath} ${join(process.cwd(), 'node/bin.mjs')}` },
  });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const routes = r.stdout.split('\n').filter((l) => /^route \d/.test(l));
  assert.equal(routes.length, 3, r.stdout);
  assert.match(routes[0], /^route 1 vulkan: adapter .*(llvmpipe|lavapipe).* \(core, shader-f16 (yes|no)\)$/);
  if (hasNvidia) assert.match(routes[1], /^route 2 nvidia-egl: (adapter|no adapter|skipped) /);
  else assert.equal(routes[1], 'route 2 nvidia-egl: skipped (no NVIDIA driver: no /proc/driver/nvidia/version and no nvidia-smi)');
  assert.match(routes[2], /^route 3 opengles: adapter .*OpenGL ES.* \(compatibility, shader-f16 (yes|no)\)$/);
  // The same lines are kept, with the diagnosis; --routes-only runs no bench.
  assert.deepEqual(readFileSync(join(out, 'routes.txt'), 'utf8').trim().split('\n'), routes);
  assert.match(readFileSync(join(out, 'diagnose.txt'), 'utf8'), /^Dawn backends/);
  assert.doesNotMatch(r.stdout, /^=== /m);
});

test('gpu kit: run.sh refuses an unknown option in one line', () => {
  const r = spawnSync('bash', [join(KIT, 'run.sh'), '--bogus'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.equal(r.stderr.trim(), "run.sh: unknown option '--bogus' (--routes-only, --help)");
});

function routeLine(t: { after(fn: () => void): unknown }, stdout: string, stderr: string, rc: number) {
  const dir = tempDir(t, 'route-line');
  writeFileSync(join(dir, 'out'), stdout);
  writeFileSync(join(dir, 'err'), stderr);
  const r = spawnSync(process.execPath, [join(KIT, 'route-line.mjs'), '2', 'nvidia-egl', join(dir, 'out'), join(dir, 'err'), String(rc), '45'], { encoding: 'utf8' });
  return { line: r.stdout.trim(), code: r.status };
}

test('gpu kit: a route without an adapter says why in one line (loader error, library file name only)', (t) => {
  const err = [
    'WARNING:          vkEnumerateInstanceLayerProperties: Unable to resolve symbol ""',
    "ERROR:            loader_scanned_icd_add: Could not get 'vkCreateInstance' via 'vk_icdGetInstanceProcAddr' for ICD /usr/lib/x86_64-linux-gnu/libGLX_nvidia.so.0",
    'Warning: vkCreateInstance failed with VK_ERROR_INCOMPATIBLE_DRIVER',
    'aqa: No WebGPU adapter found. Install a GPU driver with Vulkan support, or a software one.',
  ].join('\n');
  assert.deepEqual(routeLine(t, '', err, 1), {
    line: "route 2 nvidia-egl: no adapter (vkCreateInstance: VK_ERROR_INCOMPATIBLE_DRIVER; loader: loader_scanned_icd_add: Could not get 'vkCreateInstance' via 'vk_icdGetInstanceProcAddr' for ICD libGLX_nvidia.so.0)",
    code: 1,
  });
  assert.deepEqual(routeLine(t, '', 'aqa: No WebGPU adapter found. Install a GPU driver with Vulkan support.', 1), { line: 'route 2 nvidia-egl: no adapter (No WebGPU adapter found.)', code: 1 });
  assert.deepEqual(routeLine(t, '', '', 124), { line: 'route 2 nvidia-egl: no adapter (no answer within 45 s (killed))', code: 1 });
});

test('gpu kit: a hardware adapter is told from a software one, with its feature level and shader-f16', (t) => {
  const info = (name: string, header: string, features: string) => `${header}\n  features: ${features}\n  maxBufferSize: 1\nselected: ${name}\n`;
  const h100 = info('nvidia / hopper / NVIDIA H100 80GB HBM3', 'nvidia hopper NVIDIA H100 80GB HBM3', 'core-features-and-limits, shader-f16, subgroups');
  assert.deepEqual(routeLine(t, h100, '', 0), { line: 'route 2 nvidia-egl: adapter nvidia / hopper / NVIDIA H100 80GB HBM3 (core, shader-f16 yes)', code: 0 });
  const gl = info('llvmpipe / OpenGL ES 3.2 Mesa', '? llvmpipe OpenGL ES 3.2 Mesa', 'float32-blendable');
  assert.deepEqual(routeLine(t, gl, '', 0), { line: 'route 2 nvidia-egl: adapter llvmpipe / OpenGL ES 3.2 Mesa (compatibility, shader-f16 no)', code: 3 });
});

test('gpu kit: the summary gives one line per bench with the ratio to PyTorch, and says why a number is missing', (t) => {
  const out = tempDir(t, 'gpu-kit-summary');
  const write = (f: string, v: unknown) => writeFileSync(join(out, f), typeof v === 'string' ? v : JSON.stringify(v));
  write('routes.txt', 'route 1 vulkan: adapter nvidia / hopper / H100 (core, shader-f16 yes)\n');
  write('bench-route.txt', 'route 1 vulkan\n');
  write('steps.tsv', 'ours matmul\t0\t30\npytorch matmul\t0\t20\nours train\t124\t90\npytorch train fp32\t0\t30\n');
  write('ours-matmul.json', {
    adapter: 'nvidia / hopper / H100',
    rows: [
      { impl: 'webgpu', op: 'a@b', precision: 'f32', tile: 'default: block 64x64', n: 2048, gflops: 10000 },
      { impl: 'webgpu', op: 'a@b', precision: 'f32', tile: 'shared: bk16', n: 2048, gflops: 12000 },
      { impl: 'webgpu', op: 'a@b^T', precision: 'f32', tile: 'default', n: 2048, gflops: 99999 },
    ],
  });
  write('torch-matmul.json', { rows: [{ op: 'a@b', precision: 'f32', n: 2048, gflops: 40000 }] });
  write('torch-train-fp32.json', { rows: [{ shape: '16 x 10, 64/512', tokensPerSec: 100000, stepMs: 880 }] });
  const r = spawnSync(process.execPath, [join(KIT, 'summary.mjs'), out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.ok(lines.includes('benches on route 1 vulkan: nvidia / hopper / H100'), r.stdout);
  assert.ok(lines.includes('matmul f32 N=2048: ours 10,000 GFLOP/s (best tile 12,000: shared: bk16) | PyTorch 40,000 GFLOP/s | ours/PyTorch 0.25'), r.stdout);
  assert.ok(lines.includes('train f32 16 x 10, 64/512: ours timed out | PyTorch 100,000 tokens/s (step 880 ms)'), r.stdout);
  assert.ok(lines.includes("step 'ours train': timed out"), r.stdout);
});
