// The Vulkan driver (ICD) manifests the loader would read on Linux, where their libraries are,
// and which of a library's dependencies the dynamic linker cannot find. Used by `aqa info
// --diagnose` (node/diagnose.ts); reads files and runs ldd/ldconfig, loads nothing itself.

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';

type Env = Record<string, string | undefined>;

export interface IcdSearch {
  /** Files or folders, in the loader's order. */
  places: string[];
  /** The variable that replaced the default search (VK_DRIVER_FILES or VK_ICD_FILENAMES), if any. */
  override?: string;
}

export interface IcdManifest {
  path: string;
  /** ICD.library_path as written. */
  libraryPath?: string;
  /** What dlopen gets: relative paths are relative to the manifest's folder; bare names are searched. */
  library?: string;
  /** ICD.api_version, when given. */
  apiVersion?: string;
  /** Why the manifest is unusable (unreadable, not JSON, no ICD.library_path). */
  error?: string;
}

const list = (v: string | undefined) => (v ?? '').split(':').filter(Boolean);

/**
 * Where the loader looks for driver manifests (Vulkan-Loader docs/LoaderDriverInterface.md,
 * "Driver Discovery on Linux"): VK_DRIVER_FILES (or the older VK_ICD_FILENAMES) replaces the
 * search; otherwise VK_ADD_DRIVER_FILES first, then icd.d under $XDG_CONFIG_HOME,
 * $XDG_CONFIG_DIRS, /usr/local/etc, /etc, $XDG_DATA_HOME and $XDG_DATA_DIRS, with their defaults.
 */
export function icdSearch(env: Env = process.env): IcdSearch {
  for (const name of ['VK_DRIVER_FILES', 'VK_ICD_FILENAMES']) {
    if (env[name] !== undefined) return { places: list(env[name]), override: name };
  }
  const home = env.HOME || homedir();
  const dirs = [
    env.XDG_CONFIG_HOME || join(home, '.config'),
    ...(env.XDG_CONFIG_DIRS ? list(env.XDG_CONFIG_DIRS) : ['/etc/xdg']),
    '/usr/local/etc',
    '/etc',
    env.XDG_DATA_HOME || join(home, '.local/share'),
    ...(env.XDG_DATA_DIRS ? list(env.XDG_DATA_DIRS) : ['/usr/local/share', '/usr/share']),
  ].map((d) => join(d, 'vulkan/icd.d'));
  return { places: [...list(env.VK_ADD_DRIVER_FILES), ...new Set(dirs)] };
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

export function readManifest(path: string): IcdManifest {
  let json: { ICD?: { library_path?: unknown; api_version?: unknown } };
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    return { path, error: (e as Error).message.split('\n')[0] };
  }
  const libraryPath = json?.ICD?.library_path;
  if (typeof libraryPath !== 'string' || !libraryPath) return { path, error: 'no ICD.library_path' };
  // The loader's rule: a path with a slash is relative to the manifest, a bare name is searched.
  const library = libraryPath.includes('/') && !isAbsolute(libraryPath) ? resolve(dirname(path), libraryPath) : libraryPath;
  const apiVersion = typeof json.ICD?.api_version === 'string' ? json.ICD.api_version : undefined;
  return { path, libraryPath, library, apiVersion };
}

/** The manifests found in those places, folders read in name order as the loader does. */
export function findManifests(search: IcdSearch): IcdManifest[] {
  const seen = new Set<string>();
  const out: IcdManifest[] = [];
  for (const place of search.places) {
    let files: string[];
    if (isDir(place)) {
      files = readdirSync(place)
        .filter((f) => f.endsWith('.json'))
        .sort()
        .map((f) => join(place, f));
    } else if (existsSync(place)) {
      files = [place];
    } else if (search.override) {
      out.push({ path: place, error: 'no such file' });
      continue;
    } else {
      continue;
    }
    for (const f of files) {
      if (seen.has(f)) continue;
      seen.add(f);
      out.push(readManifest(f));
    }
  }
  return out;
}

let ldCache: Map<string, string> | undefined;

/** ldconfig's cache (`ldconfig -p`): library name -> file, this architecture's entries only. */
function ldconfigCache(): Map<string, string> {
  if (ldCache) return ldCache;
  ldCache = new Map();
  const ldconfig = ['/sbin/ldconfig', '/usr/sbin/ldconfig'].find((f) => existsSync(f));
  if (!ldconfig) return ldCache;
  const r = spawnSync(ldconfig, ['-p'], { encoding: 'utf8', timeout: 10_000 });
  for (const line of (r.stdout ?? '').split('\n')) {
    const m = /^\s*(\S+) \(([^)]*)\) => (\S+)$/.exec(line);
    if (m && !ldCache.has(m[1]) && (process.arch !== 'x64' || m[2].includes('x86-64'))) ldCache.set(m[1], m[3]);
  }
  return ldCache;
}

/** The file a bare library name resolves to (LD_LIBRARY_PATH, then ldconfig's cache), if found. */
export function locateLibrary(name: string, env: Env = process.env): string | undefined {
  if (name.includes('/')) return existsSync(name) ? name : undefined;
  for (const dir of list(env.LD_LIBRARY_PATH)) {
    if (existsSync(join(dir, name))) return join(dir, name);
  }
  const cached = ldconfigCache().get(name);
  if (cached) return cached;
  for (const dir of ['/lib', '/usr/lib', '/lib64', '/usr/lib64', '/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu']) {
    if (existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** The libraries ldd reports as "not found" for that file ([] when ldd is absent or fails). */
export function missingDependencies(file: string): string[] {
  const r = spawnSync('ldd', [file], { encoding: 'utf8', timeout: 10_000 });
  if (r.error || r.status !== 0) return [];
  return [...(r.stdout ?? '').matchAll(/^\s*(\S+) => not found/gm)].map((m) => m[1]);
}

/** The loaded NVIDIA kernel module's version (e.g. "580.65.06"), if any. */
export function nvidiaDriverVersion(): string | undefined {
  for (const f of ['/sys/module/nvidia/version', '/proc/driver/nvidia/version']) {
    try {
      const m = /\b(\d{3,}\.\d+(?:\.\d+)?)\b/.exec(readFileSync(f, 'utf8'));
      if (m) return m[1];
    } catch {
      // not there: try the next
    }
  }
  return undefined;
}

export const isNvidiaLibrary = (lib: string | undefined) => !!lib && /nvidia/i.test(basename(lib));
