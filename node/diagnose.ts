// `aqa info --diagnose`: why Dawn finds (or does not find) a WebGPU adapter on this machine.
// Each Dawn backend and each driver library is tried in its own child process
// (node/diagnose-probe.mjs) with a time limit, since a broken driver may crash or hang its
// host; the Vulkan try runs with VK_LOADER_DEBUG so that the loader says what it rejected.
// The report ends with the known fixes that apply, each an exact command.

import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type IcdManifest,
  type IcdSearch,
  findManifests,
  icdSearch,
  isNvidiaLibrary,
  locateLibrary,
  missingDependencies,
  nvidiaDriverVersion,
} from './vulkan-icd.ts';

type Env = Record<string, string | undefined>;

/** The Dawn backends that exist on Linux. */
export const LINUX_BACKENDS = ['vulkan', 'opengles', 'opengl'] as const;

export interface AdapterFound {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  featureLevel: 'core' | 'compatibility';
}

export interface BackendResult {
  backend: string;
  /** The adapter, or null when requestAdapter returned null; absent when it failed (see error). */
  adapter?: AdapterFound | null;
  error?: string;
}

export interface LibraryLoad {
  library: string;
  loaded: boolean;
  error?: string;
  /** The library itself was not found. */
  notFound?: boolean;
  /** Dependencies the dynamic linker cannot find (from dlopen's error and ldd). */
  missing: string[];
}

export interface Diagnosis {
  backends: BackendResult[];
  search: IcdSearch;
  icds: (IcdManifest & { load?: LibraryLoad })[];
  /** libvulkan.so.1 (the loader Dawn opens) and libEGL.so.1 (what Dawn's GL backends open). */
  vulkanLoader: LibraryLoad;
  egl: LibraryLoad;
  /** The loader's ERROR/WARNING lines from the Vulkan try, deduplicated. */
  loaderLines: string[];
  nvidiaVersion?: string;
  /** Set for the OpenGL (ES) tries because there is no display (Mesa's EGL needs it then). */
  surfaceless: boolean;
  fixes: string[];
}

export interface DiagnoseOptions {
  env?: Env;
  /** Per child process (default 20 s). */
  timeoutMs?: number;
}

const PROBE = fileURLToPath(new URL('./diagnose-probe.mjs', import.meta.url));

interface ChildResult {
  json?: Record<string, unknown>;
  stderr: string;
  failure?: string;
}

function runProbe(args: string[], env: Env, timeoutMs: number): Promise<ChildResult> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [PROBE, ...args],
      { env: env as NodeJS.ProcessEnv, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 << 20, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const line = stdout.split('\n').find((l) => l.startsWith('{'));
        if (line) return done({ json: JSON.parse(line), stderr });
        const e = err as (NodeJS.ErrnoException & { killed?: boolean; signal?: string; code?: number | string }) | null;
        const failure = e?.killed
          ? `no answer within ${timeoutMs / 1000} s (killed)`
          : e?.signal
            ? `crashed (${e.signal})`
            : `exited with ${e?.code ?? 0} and no answer${stderr.trim() ? `: ${lastLine(stderr)}` : ''}`;
        done({ stderr, failure });
      },
    );
  });
}

const lastLine = (s: string) => s.trim().split('\n').pop()!.trim();

/** Loader lines tagged ERROR or WARNING ("ERROR:", "ERROR | DRIVER:"), whitespace squeezed, unique. */
export function loaderMessages(stderr: string, max = 8): string[] {
  const out = new Set<string>();
  for (const line of stderr.split('\n')) {
    const m = /^((?:ERROR|WARNING)(?: \| [A-Z]+)*):\s+(.*)$/.exec(line.trim());
    if (m) out.add(`${m[1].split(' ')[0]}: ${m[2].replace(/\s+/g, ' ')}`);
  }
  return [...out].slice(0, max);
}

/** Mesa's EGL needs a platform; without a display only the surfaceless one works. */
const needsSurfaceless = (env: Env) => !env.DISPLAY && !env.WAYLAND_DISPLAY && !env.EGL_PLATFORM;

async function probeBackend(backend: string, env: Env, timeoutMs: number): Promise<{ result: BackendResult; stderr: string }> {
  const childEnv = { ...env };
  if (backend === 'vulkan') childEnv.VK_LOADER_DEBUG = 'error,warn';
  else if (needsSurfaceless(env)) childEnv.EGL_PLATFORM = 'surfaceless';
  const r = await runProbe(['adapter', backend], childEnv, timeoutMs);
  if (!r.json) return { result: { backend, error: r.failure }, stderr: r.stderr };
  const result: BackendResult = { backend };
  if ('error' in r.json) result.error = String(r.json.error);
  else result.adapter = (r.json.adapter as AdapterFound | null) ?? null;
  return { result, stderr: r.stderr };
}

async function probeLibrary(library: string, env: Env, timeoutMs: number): Promise<LibraryLoad> {
  const r = await runProbe(['dlopen', library], env, timeoutMs);
  if (!r.json) return { library, loaded: false, error: r.failure, missing: [] };
  if (r.json.loaded) return { library, loaded: true, missing: [] };
  const error = String(r.json.error);
  // glibc names the file it could not open: the library itself, or one of its dependencies.
  const named = /^(.*?): cannot open shared object file/.exec(error)?.[1];
  const notFound = named !== undefined && basename(named) === basename(library);
  const missing = new Set<string>(named !== undefined && !notFound ? [basename(named)] : []);
  const file = notFound ? undefined : locateLibrary(library, env);
  if (file) for (const dep of missingDependencies(file)) missing.add(dep);
  return { library, loaded: false, error, notFound, missing: [...missing] };
}

interface OsRelease {
  id: string[];
  codename?: string;
}

function osRelease(): OsRelease {
  try {
    const text = readFileSync('/etc/os-release', 'utf8');
    const get = (k: string) => new RegExp(`^${k}="?([^"\\n]*)"?$`, 'm').exec(text)?.[1];
    return { id: [get('ID'), ...(get('ID_LIKE') ?? '').split(' ')].filter((s): s is string => !!s), codename: get('VERSION_CODENAME') };
  } catch {
    return { id: [] };
  }
}

type Need = 'mesa' | 'loader' | 'egl';
const PACKAGES: Record<string, Record<Need, string>> = {
  debian: { mesa: 'mesa-vulkan-drivers', loader: 'libvulkan1', egl: 'libegl1' },
  fedora: { mesa: 'mesa-vulkan-drivers', loader: 'vulkan-loader', egl: 'libglvnd-egl' },
  arch: { mesa: 'vulkan-swrast', loader: 'vulkan-icd-loader', egl: 'libglvnd' },
};

/** The install command for this distribution (Debian 12: Mesa from bookworm-backports, as Dawn rejects Mesa 22). */
export function installCommand(need: Need, os: OsRelease = osRelease(), root = process.getuid?.() === 0): string {
  const sudo = root ? '' : 'sudo ';
  if (os.id.includes('debian') || os.id.includes('ubuntu')) {
    const pkg = PACKAGES.debian[need];
    if (need === 'mesa' && os.codename === 'bookworm') {
      return (
        `echo 'deb http://deb.debian.org/debian bookworm-backports main' | ${sudo}tee /etc/apt/sources.list.d/backports.list ` +
        `&& ${sudo}apt-get update && ${sudo}apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1`
      );
    }
    return `${sudo}apt-get install -y ${pkg}`;
  }
  if (os.id.includes('fedora') || os.id.includes('rhel')) return `${sudo}dnf install -y ${PACKAGES.fedora[need]}`;
  if (os.id.includes('arch')) return `${sudo}pacman -S ${PACKAGES.arch[need]}`;
  const what = { mesa: "Mesa's Vulkan drivers (lavapipe) or your GPU's Vulkan driver", loader: 'the Vulkan loader (libvulkan.so.1)', egl: "glvnd's libEGL.so.1" }[need];
  return `install ${what} with the system's package manager`;
}

/** An ICD manifest for NVIDIA's EGL library, which also serves Vulkan without X or modeset. */
function nvidiaEglFix(d: Diagnosis, env: Env): string {
  const version = d.nvidiaVersion;
  const nvidiaIcd = d.icds.find((m) => isNvidiaLibrary(m.library));
  const near = (nvidiaIcd?.library && locateLibrary(nvidiaIcd.library, env)) || locateLibrary('libEGL_nvidia.so.0', env);
  let library = version ? `libEGL_nvidia.so.${version}` : 'libEGL_nvidia.so.0';
  if (near && locateLibrary(join(dirname(near), library), env)) library = join(dirname(near), library);
  const json = join(env.HOME || homedir(), 'nvidia_egl_icd.json');
  const manifest = JSON.stringify({ file_format_version: '1.0.1', ICD: { library_path: library, api_version: nvidiaIcd?.apiVersion ?? '1.3.0' } });
  return `NVIDIA driver${version ? ` ${version}` : ''} without a working Vulkan ICD: point the loader at NVIDIA's EGL library: printf '%s\\n' '${manifest}' > ${json} && export VK_DRIVER_FILES=${json}`;
}

/** The known fixes that apply to what was found, one line each. */
export function knownFixes(d: Diagnosis, env: Env = process.env, os: OsRelease = osRelease()): string[] {
  const fixes: string[] = [];
  const found = (b: string) => d.backends.find((r) => r.backend === b)?.adapter;
  const vulkan = found('vulkan');
  if (!d.vulkanLoader.loaded) fixes.push(`the Vulkan loader (libvulkan.so.1) does not load: ${installCommand('loader', os)}`);
  const usable = d.icds.filter((m) => m.library);
  if (!usable.length) {
    fixes.push(`no Vulkan ICD found: ${installCommand('mesa', os)}`);
    const name = d.search.override;
    const defaults = name ? findManifests(icdSearch({ ...env, VK_DRIVER_FILES: undefined, VK_ICD_FILENAMES: undefined })).filter((m) => m.library) : [];
    if (name && defaults.length) fixes.push(`or use the ICDs the default search finds (${defaults.map((m) => basename(m.path)).join(', ')}): unset ${name}`);
  }
  for (const m of usable) {
    if (m.load?.notFound && !isNvidiaLibrary(m.library)) {
      const remedy = d.search.override ? `correct it or unset ${d.search.override}` : `reinstall the driver package that installed ${m.path} (dpkg -S ${m.path}), or remove it`;
      fixes.push(`${m.path} names ${m.libraryPath}, which is not found: ${remedy}`);
    }
    for (const dep of m.load?.missing ?? []) {
      const where = m.library && locateLibrary(m.library, env);
      fixes.push(
        dep.startsWith('libnvidia-')
          ? `${basename(m.library!)} needs ${dep}, which is missing: copy it from the NVIDIA driver${d.nvidiaVersion ? ` ${d.nvidiaVersion}` : ''} beside ${where ? dirname(where) : 'the ICD library'} (in a container: NVIDIA_DRIVER_CAPABILITIES=all)`
          : `${basename(m.library!)} needs ${dep}, which is missing: install the package that provides ${dep}`,
      );
    }
  }
  const nvidiaIcds = usable.filter((m) => isNvidiaLibrary(m.library));
  const nvidiaAdapter = !!vulkan && /nvidia/i.test(`${vulkan.vendor} ${vulkan.description}`);
  const eglIcdOnly = nvidiaIcds.length > 0 && nvidiaIcds.every((m) => /libEGL_nvidia/.test(m.library!));
  if (!nvidiaAdapter && !eglIcdOnly && (nvidiaIcds.length > 0 || d.nvidiaVersion)) {
    fixes.push(nvidiaEglFix(d, env));
  }
  if (!d.egl.loaded && (nvidiaIcds.length > 0 || d.nvidiaVersion || !vulkan)) {
    fixes.push(`glvnd's libEGL.so.1 does not load (NVIDIA's EGL ICD and Dawn's OpenGL ES backend need it): ${installCommand('egl', os)}`);
  }
  const gl = ['opengles', 'opengl'].find((b) => found(b));
  if (!vulkan && gl) {
    const egl = d.surfaceless ? 'export EGL_PLATFORM=surfaceless (no display here) and ' : '';
    fixes.push(`Vulkan gives no adapter but ${gl === 'opengles' ? 'OpenGL ES' : 'OpenGL'} does: ${egl}run aqa with --backend ${gl} (or AQA_BACKEND=${gl})`);
  }
  return fixes;
}

export async function diagnose(o: DiagnoseOptions = {}): Promise<Diagnosis> {
  const env: Env = { ...(o.env ?? process.env) };
  // Dawn logs to XDG_RUNTIME_DIR and warns on every start without one (as in node/device.ts).
  env.XDG_RUNTIME_DIR ||= join(tmpdir(), `aqa-xdg-${process.getuid?.() ?? 0}`);
  const timeoutMs = o.timeoutMs ?? 20_000;
  const search = icdSearch(env);
  const manifests = findManifests(search);
  const [backends, loads, vulkanLoader, egl] = await Promise.all([
    Promise.all(LINUX_BACKENDS.map((b) => probeBackend(b, env, timeoutMs))),
    Promise.all(manifests.map((m) => (m.library ? probeLibrary(m.library, env, timeoutMs) : undefined))),
    probeLibrary('libvulkan.so.1', env, timeoutMs),
    probeLibrary('libEGL.so.1', env, timeoutMs),
  ]);
  const d: Diagnosis = {
    backends: backends.map((b) => b.result),
    search,
    icds: manifests.map((m, i) => ({ ...m, load: loads[i] })),
    vulkanLoader,
    egl,
    loaderLines: loaderMessages(backends[0].stderr),
    nvidiaVersion: nvidiaDriverVersion(),
    surfaceless: needsSurfaceless(env),
    fixes: [],
  };
  d.fixes = knownFixes(d, env);
  return d;
}

function describeLoad(l: LibraryLoad): string {
  if (l.loaded) return 'loads';
  if (l.notFound) return `does not load: not found (${l.error})`;
  if (l.missing.length) return `does not load: missing ${l.missing.join(', ')}`;
  return `does not load: ${l.error}`;
}

export function formatDiagnosis(d: Diagnosis): string {
  const out: string[] = [`Dawn backends (each tried in a child process${d.surfaceless ? '; OpenGL with EGL_PLATFORM=surfaceless, as there is no display' : ''}):`];
  for (const b of d.backends) {
    const what = b.adapter ? `${b.adapter.description || b.adapter.device} (${b.adapter.vendor ? `${b.adapter.vendor}, ` : ''}${b.adapter.featureLevel} feature level)` : b.adapter === null ? 'no adapter (requestAdapter returned null)' : `failed: ${b.error}`;
    out.push(`  ${b.backend.padEnd(9)} ${what}`);
  }
  out.push(`libvulkan.so.1 ${describeLoad(d.vulkanLoader)}; libEGL.so.1 ${describeLoad(d.egl)}`);
  if (d.nvidiaVersion) out.push(`NVIDIA kernel module ${d.nvidiaVersion}`);
  const from = d.search.override ? `${d.search.override}=${d.search.places.join(':')}` : 'the default search path';
  out.push(`Vulkan ICD manifests (${from}):`);
  if (!d.icds.length) out.push(`  none: no Vulkan ICD found in ${d.search.places.join(', ') || '(an empty list)'}`);
  for (const m of d.icds) {
    out.push(m.error ? `  ${m.path}: unusable: ${m.error}` : `  ${m.path} -> ${m.libraryPath}: ${describeLoad(m.load!)}`);
  }
  out.push('Vulkan loader messages (VK_LOADER_DEBUG=error,warn):');
  out.push(...(d.loaderLines.length ? d.loaderLines.map((l) => `  ${l}`) : ['  none']));
  out.push('Known fixes:');
  const anyAdapter = d.backends.some((b) => b.adapter);
  if (d.fixes.length) out.push(...d.fixes.map((f) => `  ${f}`));
  else out.push(anyAdapter ? '  none needed: Dawn finds an adapter' : '  none of the known fixes applies: see the loader messages above');
  return out.join('\n');
}
