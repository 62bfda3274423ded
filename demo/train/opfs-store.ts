// Training checkpoints in the origin private file system (OPFS), so a closed or reloaded tab
// resumes where it stopped. One folder per run key (model, data and settings hashed by the
// worker): aqa-train/<key>/checkpoint-<step>/ holds the files `aqa train` writes into its
// checkpoint folders, and aqa-train/<key>/latest.json names the newest complete one. The pointer
// is written after every file of its checkpoint (createWritable commits on close), so a tab
// closed mid-write resumes from the previous checkpoint; older folders are removed after it.

import type { CheckpointFiles, CheckpointStore } from './session.ts';

const ROOT = 'aqa-train';

async function runDir(key: string, create: boolean): Promise<FileSystemDirectoryHandle | null> {
  try {
    const root = await (await navigator.storage.getDirectory()).getDirectoryHandle(ROOT, { create });
    return await root.getDirectoryHandle(key, { create });
  } catch (e) {
    if ((e as DOMException).name === 'NotFoundError') return null;
    throw e;
  }
}

async function writeFile(dir: FileSystemDirectoryHandle, path: string, data: Uint8Array | string): Promise<void> {
  const parts = path.split('/');
  let d = dir;
  for (const p of parts.slice(0, -1)) d = await d.getDirectoryHandle(p, { create: true });
  const w = await (await d.getFileHandle(parts[parts.length - 1], { create: true })).createWritable();
  await w.write(typeof data === 'string' ? data : new Blob([data as Uint8Array<ArrayBuffer>]));
  await w.close();
}

async function readFile(dir: FileSystemDirectoryHandle, path: string): Promise<File> {
  const parts = path.split('/');
  let d = dir;
  for (const p of parts.slice(0, -1)) d = await d.getDirectoryHandle(p);
  return (await d.getFileHandle(parts[parts.length - 1])).getFile();
}

interface Pointer {
  dir: string;
  step: number;
  files: string[];
}

export function opfsAvailable(): boolean {
  return typeof navigator !== 'undefined' && typeof navigator.storage?.getDirectory === 'function';
}

/** The checkpoint store of one run key. */
export function opfsStore(key: string): CheckpointStore & { discard(): Promise<void> } {
  return {
    async latest() {
      const dir = await runDir(key, false);
      if (!dir) return null;
      let ptr: Pointer;
      try {
        ptr = JSON.parse(await (await readFile(dir, 'latest.json')).text()) as Pointer;
      } catch {
        return null; // no finished checkpoint yet
      }
      const ck = await dir.getDirectoryHandle(ptr.dir);
      const out: CheckpointFiles = {};
      for (const f of ptr.files) {
        const file = await readFile(ck, f);
        out[f] = f.endsWith('.json') || f.endsWith('.txt') ? await file.text() : new Uint8Array(await file.arrayBuffer());
      }
      return out;
    },
    async save(files) {
      const dir = (await runDir(key, true))!;
      const state = JSON.parse(String(files['trainer_state.json'])) as { position: { step: number } };
      const name = `checkpoint-${state.position.step}`;
      await dir.removeEntry(name, { recursive: true }).catch(() => undefined);
      const ck = await dir.getDirectoryHandle(name, { create: true });
      for (const [f, data] of Object.entries(files)) await writeFile(ck, f, data);
      await writeFile(dir, 'latest.json', JSON.stringify({ dir: name, step: state.position.step, files: Object.keys(files) } satisfies Pointer));
      for await (const [n] of (dir as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }).entries()) {
        if (n !== name && n.startsWith('checkpoint-')) await dir.removeEntry(n, { recursive: true });
      }
    },
    async discard() {
      const root = await (await navigator.storage.getDirectory()).getDirectoryHandle(ROOT, { create: true });
      await root.removeEntry(key, { recursive: true }).catch(() => undefined);
    },
  };
}
