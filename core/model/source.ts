// Host-neutral access to a model's files. Node implements these over fs (node/files.ts), the
// browser over fetch with Range requests; core code only sees ByteSource and ModelFiles, so it
// never imports node:* or the DOM.
//
// Reads are ranged on purpose: a gte-large checkpoint is 1.7 GB, over Node's 2 GB readFile
// limit in f32 variants and far over what a browser tab should hold twice.

/** Random access to the bytes of one file. */
export interface ByteSource {
  /** For messages: a path or URL. */
  name: string;
  /** Total size in bytes. */
  size: number;
  /**
   * Bytes [start, end), in a buffer the caller owns (readers reinterpret and may keep it);
   * rejects when the range is outside [0, size].
   */
  read(start: number, end: number): Promise<Uint8Array>;
}

/** The files of one model folder (local directory, Hub snapshot, or a URL prefix). */
export interface ModelFiles {
  /** For messages: the directory, URL or Hub id. */
  name: string;
  /** A file inside the folder ('config.json', '1_Pooling/config.json'), or null if absent. */
  file(path: string): Promise<ByteSource | null>;
  /** The file as UTF-8 text, or null if absent. */
  text(path: string): Promise<string | null>;
}

/** Throws unless 0 <= start <= end <= size; shared by every ByteSource implementation. */
export function checkRange(name: string, size: number, start: number, end: number): void {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start || end > size) {
    throw new RangeError(`${name}: read [${start}, ${end}) is outside the file (${size} bytes)`);
  }
}

/** A ByteSource over bytes already in memory (tests, small downloaded files). */
export function bytesSource(name: string, bytes: Uint8Array): ByteSource {
  return {
    name,
    size: bytes.byteLength,
    async read(start, end) {
      checkRange(name, bytes.byteLength, start, end);
      return bytes.slice(start, end);
    },
  };
}

/** ModelFiles over an in-memory map of path -> content; browser-safe, used by tests. */
export function memoryModelFiles(name: string, files: Record<string, Uint8Array | string>): ModelFiles {
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  return {
    name,
    async file(path) {
      const f = files[path];
      if (f === undefined) return null;
      return bytesSource(`${name}/${path}`, typeof f === 'string' ? enc.encode(f) : f);
    },
    async text(path) {
      const f = files[path];
      if (f === undefined) return null;
      return typeof f === 'string' ? f : dec.decode(f);
    },
  };
}

/** Collapse whitespace so a message stays on one line (JSON.parse errors can quote newlines). */
export function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

/** Parse a JSON file of the folder; null if absent, a one-line error naming the file if invalid. */
export async function readJson(files: ModelFiles, path: string): Promise<unknown | null> {
  const text = await files.text(path);
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${files.name}/${path}: not valid JSON (${oneLine((e as Error).message)})`);
  }
}
