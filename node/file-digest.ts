// Whole-file sha256 digests with a small on-disk cache, so that identifying a 1.7 GB checkpoint
// reads it once, not on every `aqa index`, `aqa search --model` or pipeline run.
//
// The cache is one JSON object { "<absolute path>": { size, mtimeMs, ino, sha256 } }. An entry is
// believed only while the file's size, mtime and inode are all unchanged (the same test `make`
// and git's index use: a rewrite or a copy over it changes the mtime or the inode). It lives in
// the user's cache folder, not in the model folder (which may be read-only, or shared between
// users) nor beside one index (a model serves many indexes and the pipeline): by default
// ~/.cache/aqa/file-sha256.json, or $AQA_HASH_CACHE. Writes are atomic and best effort: a
// missing, corrupt or unwritable cache only costs a re-read of the file.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { writeFileAtomic } from './files.ts';

interface Entry {
  size: number;
  mtimeMs: number;
  ino: number;
  sha256: string;
}

/** The default digest cache file ($AQA_HASH_CACHE, else ~/.cache/aqa/file-sha256.json). */
export function defaultHashCache(): string {
  return process.env.AQA_HASH_CACHE || join(homedir(), '.cache', 'aqa', 'file-sha256.json');
}

/** Past this many entries, those whose file is gone are dropped, then the oldest. */
const MAX_ENTRIES = 256;

async function readCache(file: string): Promise<Record<string, Entry>> {
  try {
    const v = JSON.parse(await readFile(file, 'utf8')) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, Entry>) : {};
  } catch {
    return {};
  }
}

/** sha256 of a whole file, streamed (4 MiB reads); errors name the file. */
export async function streamSha256(path: string): Promise<string> {
  const h = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: 4 << 20 })) h.update(chunk as Buffer);
  } catch (e) {
    throw new Error(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return h.digest('hex');
}

/**
 * sha256 of the whole file at `path`, from `cacheFile` when its (size, mtime, inode) entry still
 * matches; `cacheFile` null always reads the file and writes nothing.
 */
export async function cachedSha256(path: string, cacheFile: string | null = defaultHashCache()): Promise<string> {
  const abs = resolve(path);
  const st = await stat(abs);
  if (!cacheFile) return streamSha256(abs);
  const hit = (await readCache(cacheFile))[abs];
  if (hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs && hit.ino === st.ino && typeof hit.sha256 === 'string') return hit.sha256;
  const sha256 = await streamSha256(abs);
  // Unchanged while we read it? Otherwise the digest is of a file in flux: return it, keep nothing.
  const now = await stat(abs);
  if (now.size !== st.size || now.mtimeMs !== st.mtimeMs || now.ino !== st.ino) return sha256;
  try {
    // Re-read just before writing, so entries another process added meanwhile are kept.
    const cache = await readCache(cacheFile);
    cache[abs] = { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, sha256 };
    const keys = Object.keys(cache);
    if (keys.length > MAX_ENTRIES) {
      for (const k of keys) if (k !== abs && !(await stat(k).catch(() => null))) delete cache[k];
      for (const k of Object.keys(cache).slice(0, Math.max(0, Object.keys(cache).length - MAX_ENTRIES))) delete cache[k];
    }
    await mkdir(dirname(cacheFile), { recursive: true });
    await writeFileAtomic(cacheFile, `${JSON.stringify(cache, null, 1)}\n`);
  } catch {
    // A read-only home or a full disk: the digest is still right, only not remembered.
  }
  return sha256;
}
