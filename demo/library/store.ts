// Where a built library lives between visits: the origin private file system (OPFS,
// navigator.storage.getDirectory()), private to this site in this browser, never uploaded.
//
//   aqa-library/<key>/manifest.json     the browser export's manifest (core/retrieval/index-format.ts)
//   aqa-library/<key>/vectors-00000.f16 its vectors
//   aqa-library/<key>/passages.json     titles and snippets in row order
//   aqa-library/<key>/corpus.json       the papers as an AQA corpus JSON (BM25, links)
//   aqa-library/<key>/library.json      LibraryMeta: which file, when, how long it took
//   aqa-library/<key>/hashes.json       SHA-256 of each row's passage text, in row order
//   aqa-library/current                 the key the page opens on a reload
//
// <key> = SHA-256 of the file's digest and the model's identity (libraryKey): the same file
// embedded by the same model at the same length is found again instead of re-embedded; another
// model or length builds anew. manifest.json is written last, so a key whose manifest is
// missing was cut off mid-write and counts as absent.
//
// Another file of partly the same papers finds their vectors by (model identity, passage text
// hash) in every stored library (findStoredVectors), so only its new or changed papers are
// embedded; the vectors are stored once per library, and Forget removes them all.

import { type ExportManifest, type ExportPassage, parseExportManifest, parseExportPassages } from '../../core/retrieval/index-format.ts';
import { type BuiltLibrary, sha256Hex } from './build.ts';
import type { LibraryFormat } from './parse.ts';

const ROOT = 'aqa-library';
const CURRENT = 'current';
const HASHES = 'hashes.json';

export interface LibraryMeta {
  /** The file's name as picked or dropped. */
  file: string;
  format: LibraryFormat;
  count: number;
  /** Seconds the embedding took. */
  embedS: number;
  /** Papers whose vector came from an earlier library instead of being embedded (absent: 0). */
  reused?: number;
  /** The model and settings that embedded it: a reload with another model does not open it. */
  identity: ModelIdentity;
  created: string;
}

export interface StoredLibrary extends BuiltLibrary {
  key: string;
  meta: LibraryMeta;
}

/** What must be equal for two builds of one file to give the same vectors. */
export interface ModelIdentity {
  model: string;
  maxLength: number;
  precision: string;
  passagePrefix: string;
  pooling: string;
  normalize: boolean;
}

export async function libraryKey(fileDigest: string, id: ModelIdentity): Promise<string> {
  return sha256Hex(`${fileDigest}\n${JSON.stringify(id)}`);
}

async function root(): Promise<FileSystemDirectoryHandle> {
  if (!navigator.storage?.getDirectory) throw new Error("this browser has no origin private file system (navigator.storage.getDirectory), so the papers cannot be kept between visits");
  return (await navigator.storage.getDirectory()).getDirectoryHandle(ROOT, { create: true });
}

async function writeFile(dir: FileSystemDirectoryHandle, name: string, data: Uint8Array | string): Promise<void> {
  const w = await (await dir.getFileHandle(name, { create: true })).createWritable();
  await w.write(data as FileSystemWriteChunkType);
  await w.close();
}

async function readText(dir: FileSystemDirectoryHandle, name: string): Promise<string | null> {
  try {
    return await (await (await dir.getFileHandle(name)).getFile()).text();
  } catch {
    return null;
  }
}

export async function saveLibrary(key: string, lib: BuiltLibrary, meta: LibraryMeta): Promise<void> {
  const dir = await (await root()).getDirectoryHandle(key, { create: true });
  await writeFile(dir, lib.manifest.files[0].file, lib.vectors);
  await writeFile(dir, lib.manifest.passages, JSON.stringify(lib.passages));
  await writeFile(dir, 'corpus.json', lib.corpus);
  await writeFile(dir, 'library.json', JSON.stringify(meta));
  await writeFile(dir, HASHES, JSON.stringify(lib.hashes));
  await writeFile(dir, 'manifest.json', JSON.stringify(lib.manifest, null, 2));
  await setCurrentKey(key);
}

/** The stored library under `key`, or null when there is none (or only part of one). */
export async function loadLibrary(key: string): Promise<StoredLibrary | null> {
  let dir: FileSystemDirectoryHandle;
  try {
    dir = await (await root()).getDirectoryHandle(key);
  } catch {
    return null;
  }
  const text = await readText(dir, 'manifest.json');
  if (text === null) return null;
  const where = `${ROOT}/${key}`;
  const manifest: ExportManifest = parseExportManifest(text, `${where}/manifest.json`);
  const f = manifest.files[0];
  const vectors = new Uint8Array(await (await (await dir.getFileHandle(f.file)).getFile()).arrayBuffer());
  if (vectors.byteLength !== f.bytes || (await sha256Hex(vectors)) !== f.sha256) return null; // damaged: build again
  const passages: ExportPassage[] = parseExportPassages((await readText(dir, manifest.passages)) ?? '', manifest.count, `${where}/${manifest.passages}`);
  const corpus = (await readText(dir, 'corpus.json')) ?? '{}';
  const meta = JSON.parse((await readText(dir, 'library.json')) ?? '{}') as LibraryMeta;
  const hashes = readHashes(await readText(dir, HASHES), manifest.count) ?? [];
  return { key, manifest, vectors, passages, corpus, meta, hashes, reused: meta.reused ?? 0 };
}

/** hashes.json's rows, or null when it is missing or does not fit the library. */
function readHashes(text: string | null, count: number): string[] | null {
  if (text === null) return null;
  try {
    const h = JSON.parse(text) as unknown;
    return Array.isArray(h) && h.length === count && h.every((x) => typeof x === 'string') ? (h as string[]) : null;
  } catch {
    return null;
  }
}

/**
 * The stored f16 vectors of the passage `hashes` that any stored library embedded with the model
 * `id`, each row as its own bytes. A library with another identity, no hashes.json (stored before
 * there was one) or vectors that fail their checksum gives nothing.
 */
export async function findStoredVectors(id: ModelIdentity, hashes: readonly string[]): Promise<Map<string, Uint8Array>> {
  const found = new Map<string, Uint8Array>();
  const wanted = new Set(hashes);
  const want = JSON.stringify(id);
  const top = await root();
  // keys() is an async iterator that TypeScript's DOM library does not declare yet.
  for await (const key of (top as unknown as { keys(): AsyncIterable<string> }).keys()) {
    if (found.size === wanted.size) break;
    if (key === CURRENT) continue;
    const dir = await top.getDirectoryHandle(key).catch(() => null);
    const metaText = dir && (await readText(dir, 'library.json'));
    if (!dir || !metaText) continue;
    let meta: LibraryMeta;
    try {
      meta = JSON.parse(metaText) as LibraryMeta;
    } catch {
      continue;
    }
    if (JSON.stringify(meta.identity) !== want) continue;
    const lib = await loadLibrary(key).catch(() => null);
    if (!lib || lib.manifest.dtype !== 'f16' || lib.hashes.length !== lib.manifest.count) continue;
    const rowBytes = lib.manifest.dim * 2;
    lib.hashes.forEach((h, r) => {
      if (wanted.has(h) && !found.has(h)) found.set(h, lib.vectors.slice(r * rowBytes, (r + 1) * rowBytes));
    });
  }
  return found;
}

/** Open `key` on the next visit. */
export async function setCurrentKey(key: string): Promise<void> {
  await writeFile(await root(), CURRENT, key);
}

/** The key of the library opened last, or null. */
export async function currentKey(): Promise<string | null> {
  return (await readText(await root(), CURRENT))?.trim() || null;
}

/** Remove every stored library. */
export async function forgetLibraries(): Promise<void> {
  const storage = await navigator.storage.getDirectory();
  await storage.removeEntry(ROOT, { recursive: true }).catch((e: unknown) => {
    if ((e as DOMException)?.name !== 'NotFoundError') throw e;
  });
}
