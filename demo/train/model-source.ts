// Where the training page's model comes from: a folder served by the page (the bundled model), a
// Hugging Face Hub id, or a folder on the visitor's disk (a FileSystemDirectoryHandle from
// showDirectoryPicker, or the File objects of an `<input type=file webkitdirectory>` where that
// API is missing). A ModelSource is plain data, File objects and handles, all structured-cloneable,
// so the page picks it and the worker opens it: openModelSource() turns it into ModelFiles, checks
// that the page can train it (one-line errors), and gives its content identity for the OPFS key.
//
// Runs in the worker, the page and Node (tests): it uses only fetch, Blob and crypto.subtle.

import { FetchError, fetchModelFiles } from '../../browser/fetch.ts';
import { type EncoderConfig, loadConfig } from '../../core/model/config.ts';
import { type ByteSource, checkRange, type ModelFiles } from '../../core/model/source.ts';
import { openWeights, quantizedTensor, type WeightSet } from '../../core/model/weights.ts';
import { isHubId } from '../../core/util/fields.ts';

export const HUB_ENDPOINT = 'https://huggingface.co';

export type ModelSource =
  /** A model folder at a URL (the bundled model: './models/tiny-bert'). */
  | { kind: 'url'; url: string }
  /** `owner/name` on the Hub at a branch, tag or commit. */
  | { kind: 'hub'; id: string; revision: string }
  /** A folder picked with showDirectoryPicker. */
  | { kind: 'folder'; handle: FileSystemDirectoryHandle }
  /** The files of a folder picked with `<input webkitdirectory>` (paths in webkitRelativePath). */
  | { kind: 'files'; files: File[] };

/** A bad choice or a model the page cannot train: one line, shown as is. */
export class ModelSourceError extends Error {
  override name = 'ModelSourceError';
}

export interface OpenedModel {
  files: ModelFiles;
  /** What presets and messages go by: the Hub id, the folder's name, or the URL's last segment. */
  name: string;
  /** Hex digest of the model's content (see modelIdentity): equal for the same model from any source. */
  identity: string;
  /** One line for the page: `sentence-transformers/all-MiniLM-L6-v2: bert, 6 layers, 384 dims`. */
  summary: string;
}

/**
 * `owner/name` or `owner/name@revision` (what the page's Hub box takes), trimmed; a full
 * `https://huggingface.co/owner/name` URL is accepted too, since that is what people copy.
 */
export function parseHubInput(text: string): { id: string; revision: string } {
  let s = text.trim().replace(/^https?:\/\/(www\.)?huggingface\.co\//, '').replace(/\/+$/, '');
  let revision = 'main';
  const at = s.lastIndexOf('@');
  if (at > 0) {
    revision = s.slice(at + 1);
    s = s.slice(0, at);
  }
  const tree = /^([^/]+\/[^/]+)\/tree\/(.+)$/.exec(s); // a copied ".../tree/<branch>" URL
  if (tree) [, s, revision] = tree;
  if (!isHubId(s)) throw new ModelSourceError(`Hub id '${text.trim()}': expected owner/name, optionally @revision (e.g. sentence-transformers/all-MiniLM-L6-v2)`);
  if (revision === '' || /\s/.test(revision)) throw new ModelSourceError(`Hub id '${text.trim()}': the revision after '@' is empty or has spaces`);
  return { id: s, revision };
}

/** The folder URL the Hub serves a repo's files from at `revision`. */
export function hubFolderUrl(id: string, revision: string, endpoint = HUB_ENDPOINT): string {
  return `${endpoint.replace(/\/+$/, '')}/${id}/resolve/${encodeURIComponent(revision)}`;
}

export interface OpenOptions {
  /** fetch for the URL and Hub sources (tests count or fake requests). */
  fetch?: typeof fetch;
  /** The Hub's address (a mirror); default https://huggingface.co. */
  endpoint?: string;
}

/** ModelFiles for a source, with the page's checks and its identity. */
export async function openModelSource(src: ModelSource, o: OpenOptions = {}): Promise<OpenedModel> {
  const { files, name, where } = sourceFiles(src, o);
  const cached = memoTexts(files);
  const { config, weights } = await checkModel(cached, where);
  const identity = await modelIdentity(cached, weights);
  const summary = `${cached.name}: ${config.arch}, ${config.numLayers} layers, ${config.hiddenSize} dims`;
  return { files: cached, name, identity, summary };
}

function sourceFiles(src: ModelSource, o: OpenOptions): { files: ModelFiles; name: string; where: string } {
  switch (src.kind) {
    case 'url': {
      const files = fetchModelFiles(src.url, { fetch: o.fetch });
      return { files, name: src.url.replace(/\/+$/, '').split('/').pop() || src.url, where: `at ${files.name}` };
    }
    case 'hub':
      return { files: hubModelFiles(src.id, src.revision, o), name: src.id, where: `on the Hub at revision '${src.revision}'` };
    case 'folder':
      return { files: blobModelFiles(src.handle.name, handleLookup(src.handle)), name: src.handle.name, where: 'in the picked folder' };
    case 'files': {
      const name = pickedFolderName(src.files);
      return { files: blobModelFiles(name, fileListLookup(src.files)), name, where: 'in the picked folder' };
    }
  }
}

/**
 * The repo's files over fetchModelFiles (Range reads of the weights), with the Hub's answers put
 * in words: 401/403 is how it answers an anonymous request for a missing, private or gated repo;
 * a request that never got an answer means no network (or a blocker).
 */
export function hubModelFiles(id: string, revision: string, o: OpenOptions = {}): ModelFiles {
  const endpoint = o.endpoint ?? HUB_ENDPOINT;
  const inner = fetchModelFiles(hubFolderUrl(id, revision, endpoint), { fetch: o.fetch });
  const name = revision === 'main' ? id : `${id}@${revision}`;
  const explain = (path: string, e: unknown): Error => {
    if (!(e instanceof FetchError)) return e as Error;
    const host = endpoint.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
    if (e.status === null) return new ModelSourceError(`${name}: cannot reach ${host} for ${path}: no network, or the site is blocked here; pick a local folder instead`);
    if (e.status === 401 || e.status === 403) return new ModelSourceError(`${name}: no such model on the Hub, or it is private or gated (HTTP ${e.status} for ${path}; the page sends no token)`);
    return new ModelSourceError(`${name}: ${path}: HTTP ${e.status} from ${host}`);
  };
  return {
    name,
    file: (path) => inner.file(path).catch((e) => Promise.reject(explain(path, e))),
    text: (path) => inner.text(path).catch((e) => Promise.reject(explain(path, e))),
  };
}

/**
 * What the page needs before it loads anything onto the GPU: config.json of an architecture it
 * supports, the fast tokenizer's tokenizer.json, and float safetensors weights. Returns the
 * weights' headers (for the identity).
 */
export async function checkModel(files: ModelFiles, where: string): Promise<{ config: EncoderConfig; weights: WeightSet }> {
  if ((await files.text('config.json')) === null) {
    throw new ModelSourceError(`${files.name}: config.json not found ${where}: not a Hugging Face model folder${where.startsWith('on the Hub') ? ' (check the id and revision)' : ''}`);
  }
  const config = await loadConfig(files); // one line naming config.json and the field: an architecture we do not support, a bad value
  if ((await files.text('tokenizer.json')) === null) {
    throw new ModelSourceError(`${files.name}: tokenizer.json not found ${where} (the page needs the fast tokenizer's tokenizer.json)`);
  }
  const weights = await openWeights(files);
  const q = quantizedTensor(weights);
  if (q) throw new ModelSourceError(`${q}: int8 weights cannot be fine-tuned; pick the original float model`);
  return { config, weights };
}

/** Small files read once: the checks, the identity, the loader and every checkpoint read them. */
function memoTexts(files: ModelFiles): ModelFiles {
  const texts = new Map<string, Promise<string | null>>();
  return {
    name: files.name,
    file: (path) => files.file(path),
    text(path) {
      let t = texts.get(path);
      if (!t) {
        t = files.text(path);
        texts.set(path, t);
        t.catch(() => texts.delete(path)); // a failed read may be tried again
      }
      return t;
    },
  };
}

// ---- local folders ----

type Lookup = (path: string) => Promise<Blob | null>;

/** Bytes of a Blob (a File from the disk) by range: Blob.slice reads only that part. */
export function blobSource(name: string, blob: Blob): ByteSource {
  return {
    name,
    size: blob.size,
    async read(start, end) {
      checkRange(name, blob.size, start, end);
      try {
        return new Uint8Array(await blob.slice(start, end).arrayBuffer());
      } catch (e) {
        throw new ModelSourceError(`${name}: cannot read the file (${(e as Error).message}); was it changed or moved after it was picked?`);
      }
    },
  };
}

export function blobModelFiles(name: string, lookup: Lookup): ModelFiles {
  const find = (path: string) => {
    if (path === '' || path.startsWith('/') || path.split('/').some((s) => s === '..' || s === '.' || s === '')) {
      throw new ModelSourceError(`${name}: refusing path '${path}' outside the model folder`);
    }
    return lookup(path);
  };
  return {
    name,
    async file(path) {
      const b = await find(path);
      return b && blobSource(`${name}/${path}`, b);
    },
    async text(path) {
      const b = await find(path);
      return b && b.text();
    },
  };
}

function handleLookup(dir: FileSystemDirectoryHandle): Lookup {
  return async (path) => {
    const parts = path.split('/');
    try {
      let d = dir;
      for (const p of parts.slice(0, -1)) d = await d.getDirectoryHandle(p);
      return await (await d.getFileHandle(parts[parts.length - 1])).getFile();
    } catch (e) {
      const kind = (e as DOMException).name;
      if (kind === 'NotFoundError' || kind === 'TypeMismatchError') return null;
      throw new ModelSourceError(`${dir.name}/${path}: cannot read (${kind}: ${(e as Error).message})`);
    }
  };
}

/** A file's path inside the picked folder: webkitRelativePath without the folder's own name. */
function relativePath(f: File): string {
  const rel = f.webkitRelativePath || f.name;
  const i = rel.indexOf('/');
  return i < 0 ? rel : rel.slice(i + 1);
}

/** The picked folder's name (the first segment every webkitRelativePath shares). */
export function pickedFolderName(files: readonly File[]): string {
  const rel = files.find((f) => f.webkitRelativePath)?.webkitRelativePath;
  return rel ? rel.split('/')[0] : 'picked folder';
}

function fileListLookup(files: readonly File[]): Lookup {
  const byPath = new Map(files.map((f) => [relativePath(f), f] as const));
  return async (path) => byPath.get(path) ?? null;
}

// ---- identity ----

/** Files that decide how the model tokenizes, pools and embeds, hashed whole when present. */
const IDENTITY_TEXTS = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'modules.json', '1_Pooling/config.json', 'sentence_bert_config.json', 'config_sentence_transformers.json'];
/** Blocks read from each weights file's data, evenly spaced from its first byte to its last. */
const SAMPLES = 16;
const SAMPLE_BYTES = 4096;

/**
 * The model's identity, whatever the source: SHA-256 over the small files above, each weights
 * file's safetensors header (names, shapes, dtypes, offsets) and SAMPLES blocks of its data. The
 * header alone would not tell a fine-tuned model from its base (same layout); a fine-tune moves
 * every weight, so the sampled blocks differ. Hashing every byte would download a Hub model's
 * weights twice (the loader reads them again by tensor), which the samples avoid.
 */
export async function modelIdentity(files: ModelFiles, weights: WeightSet): Promise<string> {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  const add = (label: string, bytes: Uint8Array) => parts.push(enc.encode(`${label}\n${bytes.byteLength}\n`), bytes);
  for (const path of IDENTITY_TEXTS) {
    const t = await files.text(path);
    if (t !== null) add(path, enc.encode(t));
  }
  for (const f of weights.files) {
    add('header', await f.source.read(0, f.dataStart));
    const n = f.source.size - f.dataStart;
    const ranges: [number, number][] = [];
    if (n <= SAMPLES * SAMPLE_BYTES) ranges.push([f.dataStart, f.source.size]);
    else for (let i = 0; i < SAMPLES; i++) {
      const at = f.dataStart + Math.floor((i * (n - SAMPLE_BYTES)) / (SAMPLES - 1));
      ranges.push([at, at + SAMPLE_BYTES]);
    }
    // In parallel: over the Hub each is a round trip.
    const blocks = await Promise.all(ranges.map(([a, b]) => f.source.read(a, b)));
    ranges.forEach(([a], i) => add(`${a}`, blocks[i]));
  }
  const all = new Uint8Array(parts.reduce((s, p) => s + p.byteLength, 0));
  let off = 0;
  for (const p of parts) {
    all.set(p, off);
    off += p.byteLength;
  }
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', all));
  return Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('');
}
