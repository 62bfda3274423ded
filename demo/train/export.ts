// Export from the training page: the tuned model as `aqa train`'s output folder (the files come
// from the worker, core/train/model-folder.ts, the same code `aqa train` writes with), either as
// a zip download or written into a folder the visitor picks (File System Access API, where the
// browser has it). Both hold one folder named after the model and the step, so an export of a
// paused run never looks like the finished one; `aqa embed` and sentence-transformers load it.

import { type Zippable, zipSync } from 'fflate';
import type { ModelFolderFiles } from '../../core/train/model-folder.ts';

/** What the worker hands over for an export: the model folder at the run's current step. */
export interface ExportedModel {
  modelName: string;
  step: number;
  totalSteps: number;
  /** Folders the layout has even when empty (2_Normalize). */
  dirs: string[];
  files: ModelFolderFiles;
}

/** '<model>-step-<n>' with anything a file name should not hold replaced ('BAAI/bge-small' -> 'BAAI-bge-small'). */
export function exportName(m: Pick<ExportedModel, 'modelName' | 'step'>): string {
  const model = m.modelName.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[-.]+|-+$/g, '') || 'model';
  return `${model}-step-${m.step}`;
}

const enc = new TextEncoder();
const bytesOf = (f: Uint8Array | string) => (typeof f === 'string' ? enc.encode(f) : f);

/**
 * The folder as one zip holding <name>/... . Weights are stored, not deflated: float32 noise
 * shrinks by a few percent at the cost of seconds on a large model; text files are deflated.
 */
export function zipModelFolder(m: ExportedModel, name = exportName(m)): Uint8Array {
  const entries: Zippable = {};
  for (const d of m.dirs) entries[`${name}/${d}`] = {};
  for (const [path, data] of Object.entries(m.files)) entries[`${name}/${path}`] = [bytesOf(data), { level: path.endsWith('.safetensors') ? 0 : 6 }];
  return zipSync(entries);
}

/** Save bytes as a download named `fileName`. */
export function download(bytes: Uint8Array, fileName: string, type = 'application/zip'): void {
  const url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  document.body.append(a);
  a.click();
  a.remove();
  // The download has its own reference to the blob once started.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

type DirectoryPicker = (o?: { id?: string; mode?: 'read' | 'readwrite' }) => Promise<FileSystemDirectoryHandle>;

/** Whether this browser can write into a folder the visitor picks (Chromium-based, not Firefox/Safari). */
export function canPickFolder(): boolean {
  return typeof (globalThis as { showDirectoryPicker?: DirectoryPicker }).showDirectoryPicker === 'function';
}

async function makeDirs(dir: FileSystemDirectoryHandle, parts: string[]): Promise<FileSystemDirectoryHandle> {
  let d = dir;
  for (const p of parts) d = await d.getDirectoryHandle(p, { create: true });
  return d;
}

async function writeInto(dir: FileSystemDirectoryHandle, path: string, data: Uint8Array | string): Promise<void> {
  const parts = path.split('/');
  const d = await makeDirs(dir, parts.slice(0, -1));
  const w = await (await d.getFileHandle(parts[parts.length - 1], { create: true })).createWritable();
  await w.write(typeof data === 'string' ? data : new Blob([data as Uint8Array<ArrayBuffer>]));
  await w.close();
}

/**
 * Ask for a folder and write the model into a new <name>/ inside it (never over the picked
 * folder's own files). Resolves to the path written, or null when the visitor closed the picker.
 */
export async function saveToPickedFolder(m: ExportedModel, name = exportName(m)): Promise<string | null> {
  let parent: FileSystemDirectoryHandle;
  try {
    parent = await (globalThis as unknown as { showDirectoryPicker: DirectoryPicker }).showDirectoryPicker({ id: 'aqa-export', mode: 'readwrite' });
  } catch (e) {
    if ((e as DOMException).name === 'AbortError') return null;
    throw e;
  }
  const dir = await parent.getDirectoryHandle(name, { create: true });
  for (const d of m.dirs) await makeDirs(dir, d.split('/'));
  for (const [path, data] of Object.entries(m.files)) await writeInto(dir, path, data);
  return `${parent.name}/${name}`;
}

/** The page's export controls (#export, #export-folder, #export-status): enabled while a run is paused or done. */
export function exportControls(exportModel: () => Promise<ExportedModel>): (state: string) => void {
  const zipButton = document.getElementById('export') as HTMLButtonElement;
  const folderButton = document.getElementById('export-folder') as HTMLButtonElement;
  const say = (text: string) => {
    document.getElementById('export-status')!.textContent = text;
  };
  folderButton.hidden = !canPickFolder();
  let ready = false;
  let busy = false;
  const update = () => {
    zipButton.disabled = folderButton.disabled = !ready || busy;
  };
  const run = async (how: (m: ExportedModel) => Promise<string | null>) => {
    busy = true;
    update();
    say('Exporting...');
    try {
      const m = await exportModel();
      const where = await how(m);
      say(where === null ? '' : `Exported step ${m.step} of ${m.totalSteps}: ${where}`);
    } catch (e) {
      say(`Export failed: ${(e as Error).message ?? String(e)}`);
    } finally {
      busy = false;
      update();
    }
  };
  zipButton.addEventListener('click', () =>
    void run(async (m) => {
      const name = `${exportName(m)}.zip`;
      download(zipModelFolder(m), name);
      return name;
    }),
  );
  folderButton.addEventListener('click', () => void run((m) => saveToPickedFolder(m)));
  return (state) => {
    ready = state === 'paused' || state === 'done';
    update();
  };
}
