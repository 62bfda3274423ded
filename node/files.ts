// Node file access for models and checkpoints: random-access ByteSources over fs (never whole
// files: a 1.7 GB checkpoint is near Node's 2 GB readFile limit and would be held twice), a
// ModelFiles over a local directory, and atomic writes (temp file in the same directory, fsync,
// rename), so a crash leaves either the old file or the new one, never half of one.

import { randomBytes } from 'node:crypto';
import { access, constants, cp, type FileHandle, mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { safetensorsLayout, type TensorToWrite } from '../core/model/safetensors.ts';
import { type ByteSource, checkRange, type ModelFiles } from '../core/model/source.ts';

// One read/write call moves at most 1 GiB: fs caps a single call's length below 2 GiB.
const IO_CHUNK = 1 << 30;

function isMissing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * A ByteSource over a file. Each read opens the file, reads the range and closes it: no handle
 * outlives a call, and the ~400 reads of a model load cost nothing next to the data.
 */
export async function fileSource(path: string): Promise<ByteSource> {
  const st = await stat(path);
  if (!st.isFile()) throw new Error(`${path}: not a regular file`);
  const size = st.size;
  return {
    name: path,
    size,
    async read(start, end) {
      checkRange(path, size, start, end);
      const out = new Uint8Array(end - start);
      const fh = await open(path, 'r');
      try {
        let done = 0;
        while (done < out.byteLength) {
          const len = Math.min(IO_CHUNK, out.byteLength - done);
          const { bytesRead } = await fh.read(out, done, len, start + done);
          if (bytesRead === 0) throw new Error(`${path}: file ended at byte ${start + done}, expected ${size} bytes (changed while reading?)`);
          done += bytesRead;
        }
      } finally {
        await fh.close();
      }
      return out;
    },
  };
}

/** A path inside the model folder: relative, no '..', so a downloaded index cannot point outside. */
function checkInside(dir: string, path: string): string {
  if (path === '' || path.startsWith('/') || path.includes('\\') || path.split('/').some((s) => s === '..')) {
    throw new Error(`${dir}: refusing path '${path}' outside the model folder`);
  }
  return join(dir, path);
}

/** ModelFiles over a local directory (a checkout, a hub cache snapshot, a fine-tuned output). */
export function localModelFiles(dir: string): ModelFiles {
  const root = resolve(dir);
  return {
    name: dir,
    async file(path) {
      try {
        return await fileSource(checkInside(root, path));
      } catch (e) {
        if (isMissing(e)) return null;
        throw e;
      }
    },
    async text(path) {
      try {
        return await readFile(checkInside(root, path), 'utf8');
      } catch (e) {
        if (isMissing(e)) return null;
        throw e;
      }
    },
  };
}

export type WriteData = Uint8Array | string | Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

async function writeAll(fh: FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) {
    const { bytesWritten } = await fh.write(bytes, done, Math.min(IO_CHUNK, bytes.byteLength - done));
    done += bytesWritten;
  }
}

/**
 * Write `data` to `path` atomically: into a temp file in the same directory (same filesystem, so
 * rename is atomic), fsync, rename over `path`, then fsync the directory so the rename itself
 * survives a power cut. Chunks may be given as an (async) iterable to stream large files.
 */
export async function writeFileAtomic(path: string, data: WriteData): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx');
  try {
    if (typeof data === 'string') await writeAll(fh, new TextEncoder().encode(data));
    else if (data instanceof Uint8Array) await writeAll(fh, data);
    else for await (const chunk of data) await writeAll(fh, chunk);
    await fh.sync();
    await fh.close();
  } catch (e) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw e;
  }
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await syncDir(dir);
}

/**
 * Create the folder an output file goes into and check that it can be written, before a command
 * does its work: otherwise a typo in `option` is found only at the end, as a raw errno naming
 * writeFileAtomic's hidden temp file. A one-line error names the folder and the option.
 */
export async function prepareOutputFolder(file: string, option: string): Promise<void> {
  const dir = dirname(resolve(file));
  try {
    await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK);
  } catch (e) {
    throw new Error(`${option} ${file}: cannot create or write to the folder ${dirname(file)} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/** fsync a directory after a rename; not possible on every platform (Windows), so best effort. */
export async function syncDir(dir: string): Promise<void> {
  let fh: FileHandle | null = null;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // EISDIR/EPERM on platforms that cannot fsync a directory: the rename is still atomic.
  } finally {
    await fh?.close().catch(() => {});
  }
}

/** Write a safetensors file atomically, streaming tensor data (no whole-file buffer). */
export async function writeSafetensorsFile(path: string, tensors: Record<string, TensorToWrite>, metadata?: Record<string, string>): Promise<void> {
  const layout = safetensorsLayout(tensors, metadata, path);
  await writeFileAtomic(path, [layout.header, ...layout.parts.map((p) => p.bytes)]);
}

/**
 * Writes a model folder as a whole: a copy of `from`'s files (those `skip` does not match, and
 * no dot files) plus what `fill` writes, under a temporary name beside `target`, renamed into
 * place when complete, so a crash never leaves a half-written folder. `target` must not exist
 * or be empty (the caller checks that first, with its own message).
 */
export async function writeModelFolderAtomic(from: string, target: string, skip: RegExp, fill: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = join(dirname(target), `.${basename(target)}.tmp-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  try {
    for (const entry of await readdir(from)) {
      if (skip.test(entry) || entry.startsWith('.')) continue;
      await cp(join(from, entry), join(tmp, entry), { recursive: true });
    }
    await fill(tmp);
    await rm(target, { recursive: true, force: true }); // the empty folder, if any
    await rename(tmp, target);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  await syncDir(dirname(target)).catch(() => {});
}
