// `aqa info --diagnose` (node/diagnose.ts): this machine (Mesa's lavapipe), a Vulkan ICD manifest
// naming a library that does not exist, one whose library lacks a libnvidia-* dependency, and
// no ICD at all. VK_DRIVER_FILES points the loader (and the diagnosis) at the test's manifests.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { diagnose, formatDiagnosis, loaderMessages } from '../node/diagnose.ts';
import { icdSearch } from '../node/vulkan-icd.ts';
import { runAqa, tempDir } from './helpers.ts';

const manifest = (library: string) => JSON.stringify({ file_format_version: '1.0.0', ICD: { library_path: library, api_version: '1.3.277' } });

test('diagnose: on this machine the lavapipe ICD loads and Dawn/Vulkan finds llvmpipe', () => {
  const r = runAqa(['info', '--diagnose']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^ {2}vulkan +llvmpipe.*\(mesa, core feature level\)$/m);
  assert.match(r.stdout, /^ {2}opengles +.*OpenGL ES.*\(compatibility feature level\)$/m);
  assert.match(r.stdout, /lvp_icd\.json -> libvulkan_lvp\.so: loads$/m);
  assert.match(r.stdout, /libvulkan\.so\.1 loads/);
  assert.match(r.stdout, /Known fixes:\n {2}none needed: Dawn finds an adapter/);
});

test('diagnose: an ICD manifest naming a missing library is reported with the file and a fix', (t) => {
  const dir = tempDir(t, 'diagnose');
  const lib = join(dir, 'libvulkan_gone.so');
  const json = join(dir, 'gone_icd.json');
  writeFileSync(json, manifest(lib));
  const r = runAqa(['info', '--diagnose'], { VK_DRIVER_FILES: json });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^ {2}vulkan +no adapter/m);
  assert.ok(r.stdout.includes(`${json} -> ${lib}: does not load: not found (${lib}: cannot open shared object file`), r.stdout);
  assert.ok(r.stdout.includes(`${json} names ${lib}, which is not found: correct it or unset VK_DRIVER_FILES`), r.stdout);
  // The loader's own words say the same.
  assert.match(r.stdout, /ERROR: .*Failed loading library associated with ICD JSON/);
  // OpenGL ES still finds llvmpipe here: the fallback is offered.
  assert.match(r.stdout, /run aqa with --backend opengles/);
  if (!process.env.DISPLAY && !process.env.WAYLAND_DISPLAY && !process.env.EGL_PLATFORM) assert.match(r.stdout, /export EGL_PLATFORM=surfaceless \(no display here\) and run aqa/);
});

test('diagnose: no ICD at all (an empty folder) says so and gives the install command', (t) => {
  const dir = tempDir(t, 'diagnose');
  const r = runAqa(['info', '--diagnose'], { VK_DRIVER_FILES: dir });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.includes(`none: no Vulkan ICD found in ${dir}`), r.stdout);
  assert.match(r.stdout, /no Vulkan ICD found: .*apt-get install -y -t bookworm-backports mesa-vulkan-drivers/);
  assert.match(r.stdout, /ERROR: vkCreateInstance: Found no drivers!/);
  // This machine's own ICDs (lavapipe) are there without the override.
  assert.match(r.stdout, /or use the ICDs the default search finds \(.*lvp_icd\.json.*\): unset VK_DRIVER_FILES$/m);
});

test('diagnose: no ICD at all (an empty VK_DRIVER_FILES list, a manifest without an ICD)', async (t) => {
  const dir = tempDir(t, 'diagnose');
  const list = join(dir, 'list.json');
  writeFileSync(list, '[]');
  for (const files of ['', list]) {
    const d = await diagnose({ env: { ...process.env, VK_DRIVER_FILES: files } });
    assert.equal(d.backends.find((b) => b.backend === 'vulkan')?.adapter, null);
    assert.ok(d.fixes.some((f) => f.startsWith('no Vulkan ICD found: ')), d.fixes.join('\n'));
  }
});

test('diagnose: a missing libnvidia-* dependency is named, with the EGL manifest fix', async (t) => {
  assert.equal(spawnSync('cc', ['--version']).status, 0, 'a C compiler builds the stand-in library (tools/setup-system.sh installs gcc)');
  const dir = tempDir(t, 'diagnose');
  // A stand-in libGLX_nvidia.so.0 linked against a libnvidia-glvkspirv that is then removed.
  const dep = 'libnvidia-glvkspirv.so.999.1';
  writeFileSync(join(dir, 'dep.c'), 'int dep(void) { return 1; }\n');
  writeFileSync(join(dir, 'icd.c'), 'int dep(void); int icd(void) { return dep(); }\n');
  const cc = (...args: string[]) => assert.equal(spawnSync('cc', args, { cwd: dir, encoding: 'utf8' }).status, 0);
  cc('-shared', '-fPIC', '-o', dep, `-Wl,-soname,${dep}`, 'dep.c');
  cc('-shared', '-fPIC', '-o', 'libGLX_nvidia.so.0', 'icd.c', '-L.', `-l:${dep}`);
  rmSync(join(dir, dep));
  mkdirSync(join(dir, 'icd.d'));
  writeFileSync(join(dir, 'icd.d/nvidia_icd.json'), manifest('../libGLX_nvidia.so.0'));
  const d = await diagnose({ env: { ...process.env, VK_DRIVER_FILES: join(dir, 'icd.d') } });
  const icd = d.icds[0];
  assert.equal(icd.library, join(dir, 'libGLX_nvidia.so.0'));
  assert.equal(icd.load?.loaded, false);
  assert.deepEqual(icd.load?.missing, [dep]);
  const text = formatDiagnosis(d);
  assert.match(text, /nvidia_icd\.json -> \.\.\/libGLX_nvidia\.so\.0: does not load: missing libnvidia-glvkspirv\.so\.999\.1$/m);
  assert.ok(d.fixes.some((f) => f.startsWith(`libGLX_nvidia.so.0 needs ${dep}, which is missing`)), d.fixes.join('\n'));
  const egl = d.fixes.find((f) => f.includes('libEGL_nvidia.so'));
  assert.ok(egl && /export VK_DRIVER_FILES=\S+nvidia_egl_icd\.json$/.test(egl), d.fixes.join('\n'));
});

test('diagnose: the loader search path follows the documented order; overrides replace it', () => {
  const env = { HOME: '/h', XDG_DATA_DIRS: '/a:/b', VK_ADD_DRIVER_FILES: '/x.json' };
  assert.deepEqual(icdSearch(env).places, [
    '/x.json',
    '/h/.config/vulkan/icd.d',
    '/etc/xdg/vulkan/icd.d',
    '/usr/local/etc/vulkan/icd.d',
    '/etc/vulkan/icd.d',
    '/h/.local/share/vulkan/icd.d',
    '/a/vulkan/icd.d',
    '/b/vulkan/icd.d',
  ]);
  assert.deepEqual(icdSearch({ ...env, VK_ICD_FILENAMES: '/old.json' }), { places: ['/old.json'], override: 'VK_ICD_FILENAMES' });
  assert.deepEqual(icdSearch({ ...env, VK_ICD_FILENAMES: '/old.json', VK_DRIVER_FILES: '/new.json:/d' }), { places: ['/new.json', '/d'], override: 'VK_DRIVER_FILES' });
});

test('diagnose: loader messages keep ERROR and WARNING lines once each, not Dawn\'s own', () => {
  const stderr = [
    'ERROR:            /x.so: cannot open shared object file',
    'ERROR | DRIVER:   loader_icd_scan: Failed loading library',
    'ERROR:            /x.so: cannot open shared object file',
    'INFO:             Found manifest file',
    'Warning: vkCreateInstance: Found no drivers!',
    'WARNING | DRIVER: terminator_CreateInstance: Failed to CreateInstance in ICD 0.  Skipping ICD.',
  ].join('\n');
  assert.deepEqual(loaderMessages(stderr), [
    'ERROR: /x.so: cannot open shared object file',
    'ERROR: loader_icd_scan: Failed loading library',
    'WARNING: terminator_CreateInstance: Failed to CreateInstance in ICD 0. Skipping ICD.',
  ]);
});

test('diagnose: a probe that does not answer in time is reported as killed, not waited for', async () => {
  const d = await diagnose({ timeoutMs: 5 });
  for (const b of d.backends) assert.equal(b.error, 'no answer within 0.005 s (killed)');
  assert.equal(d.vulkanLoader.loaded, false);
  assert.match(formatDiagnosis(d), /^ {2}vulkan +failed: no answer within 0\.005 s \(killed\)$/m);
});
