// ModelFiles over HTTP: a model folder served at a URL prefix (a static server, the Hub's
// `resolve/main/`, a CDN). Small files are fetched whole; weights are read in byte ranges, so
// a loader that reads the safetensors header and then one tensor at a time never holds a
// multi-hundred-MB checkpoint in memory twice, nor downloads parts it does not use (pooler).
//
// file(path) learns the size with HEAD (Content-Length), or, where HEAD is refused or says
// nothing usable, with a `Range: bytes=0-0` GET (Content-Range `bytes 0-0/SIZE`). Each read is
// a GET with `Range: bytes=start-(end-1)`, answered 206. A server that ignores Range answers
// 200 with the whole file: that body is kept (once, shared by later and concurrent reads) and
// sliced, since asking again would download the whole file again for every tensor.
//
// Uses only fetch, so it runs in browsers, workers and Node >= 18 alike.

import { type ByteSource, checkRange, type ModelFiles } from '../core/model/source.ts';

export interface FetchModelFilesOptions {
  /**
   * Bytes received so far for one file and its size, after each response. Weight files are
   * read in ranges: `loaded` ends at the bytes the loader asked for, which is below `total`
   * when the checkpoint holds tensors the model does not use (BERT's pooler).
   */
  onProgress?: (file: string, loaded: number, total: number) => void;
  /** fetch to use (default: the global one); lets callers add headers, auth or counting. */
  fetch?: typeof fetch;
}

/** One line naming the URL and what failed, e.g. `http://x/model.safetensors: GET failed: HTTP 500 Internal Server Error`. */
export class FetchError extends Error {
  constructor(
    readonly url: string,
    readonly status: number | null,
    detail: string,
  ) {
    super(`${url}: ${detail}`);
    this.name = 'FetchError';
  }
}

/** A path inside the model folder: relative, no '..', so a config cannot point elsewhere. */
function checkInside(base: string, path: string): void {
  if (path === '' || path.startsWith('/') || path.includes('\\') || path.split('/').some((s) => s === '..' || s === '.' || s === '')) {
    throw new Error(`${base}: refusing path '${path}' outside the model folder`);
  }
}

function httpError(method: string, url: string, res: Response, extra = ''): FetchError {
  const text = res.statusText ? ` ${res.statusText}` : '';
  return new FetchError(url, res.status, `${method} failed: HTTP ${res.status}${text}${extra}`);
}

// Content-Range `bytes a-b/size` or `bytes */size` -> its parts (null where absent or "*").
export function parseContentRange(header: string | null): { start: number | null; end: number | null; size: number | null } | null {
  if (!header) return null;
  const m = /^\s*bytes\s+(?:(\d+)-(\d+)|\*)\/(\d+|\*)\s*$/i.exec(header);
  if (!m) return null;
  const num = (s: string | undefined) => (s === undefined || s === '*' ? null : Number(s));
  return { start: num(m[1]), end: num(m[2]), size: num(m[3]) };
}

export function fetchModelFiles(baseUrl: string, opts: FetchModelFilesOptions = {}): ModelFiles {
  const base = baseUrl.replace(/\/+$/, '');
  const doFetch = opts.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => fetch(input, init));
  const urlOf = (path: string) => {
    checkInside(base, path);
    return `${base}/${path.split('/').map(encodeURIComponent).join('/')}`;
  };

  /** fetch, with network failures (DNS, refused, CORS) turned into one line naming the URL. */
  async function request(method: string, url: string, headers?: Record<string, string>): Promise<Response> {
    try {
      return await doFetch(url, { method, headers });
    } catch (e) {
      throw new FetchError(url, null, `${method} failed: ${(e as Error).message}`);
    }
  }

  return {
    name: base,

    async text(path) {
      const url = urlOf(path);
      const res = await request('GET', url);
      if (res.status === 404) {
        await drain(res);
        return null;
      }
      if (!res.ok) {
        await res.body?.cancel();
        throw httpError('GET', url, res);
      }
      const bytes = new Uint8Array(await res.arrayBuffer());
      opts.onProgress?.(path, bytes.byteLength, bytes.byteLength);
      return new TextDecoder().decode(bytes);
    },

    async file(path) {
      const url = urlOf(path);
      const probe = await probeSize(url, request);
      if (probe === null) return null;
      return rangeSource(path, url, probe.size, probe.whole, request, opts.onProgress);
    },
  };
}

type Requester = (method: string, url: string, headers?: Record<string, string>) => Promise<Response>;

/**
 * The file's size, or null when it does not exist. `whole` is set when the size probe had to
 * download the file (a server that ignores Range on GET and gave no size on HEAD).
 */
async function probeSize(url: string, request: Requester): Promise<{ size: number; whole: Uint8Array | null } | null> {
  const head = await request('HEAD', url);
  await drain(head);
  if (head.status === 404) return null;
  // Content-Length of an encoded (gzip) response is the compressed size: not the file's.
  const length = head.headers.get('content-length');
  if (head.ok && length !== null && /^\d+$/.test(length.trim()) && !head.headers.get('content-encoding')) {
    return { size: Number(length), whole: null };
  }
  // HEAD refused (405/501) or without a usable length: ask for the first byte.
  const res = await request('GET', url, { range: 'bytes=0-0' });
  if (res.status === 404) {
    await drain(res);
    return null;
  }
  if (res.status === 206) {
    const cr = parseContentRange(res.headers.get('content-range'));
    await drain(res);
    if (cr?.size == null) throw new FetchError(url, 206, `GET bytes=0-0 answered 206 without a usable Content-Range (${res.headers.get('content-range')}); cannot learn the file size`);
    return { size: cr.size, whole: null };
  }
  if (res.status === 416) {
    // Only an empty file has no byte 0.
    const cr = parseContentRange(res.headers.get('content-range'));
    await drain(res);
    if (cr?.size === 0) return { size: 0, whole: null };
    throw httpError('GET', url, res, ' for bytes=0-0');
  }
  if (res.status === 200) {
    const whole = new Uint8Array(await res.arrayBuffer());
    return { size: whole.byteLength, whole };
  }
  await res.body?.cancel();
  throw httpError('GET', url, res, head.ok ? ' for bytes=0-0' : ` for bytes=0-0 (HEAD answered ${head.status})`);
}

function rangeSource(
  path: string,
  url: string,
  size: number,
  initialWhole: Uint8Array | null,
  request: Requester,
  onProgress: FetchModelFilesOptions['onProgress'],
): ByteSource {
  let loaded = initialWhole?.byteLength ?? 0;
  const progress = (n: number) => {
    loaded += n;
    onProgress?.(path, loaded, size);
  };
  if (initialWhole) onProgress?.(path, loaded, size);
  // Set once the server has shown it ignores Range: every later read slices this body.
  let whole: Promise<Uint8Array> | null = initialWhole ? Promise.resolve(initialWhole) : null;

  return {
    name: url,
    size,
    async read(start, end) {
      checkRange(url, size, start, end);
      if (start === end) return new Uint8Array(0);
      if (whole) return (await whole).slice(start, end);
      const res = await request('GET', url, { range: `bytes=${start}-${end - 1}` });
      if (res.status === 206) {
        const cr = parseContentRange(res.headers.get('content-range'));
        // Content-Range is hidden from cross-origin pages unless the server exposes it: check it when visible.
        if (cr && (cr.start !== start || cr.end !== end - 1)) {
          await res.body?.cancel();
          throw new FetchError(url, 206, `asked for bytes ${start}-${end - 1}, the server sent ${res.headers.get('content-range')}`);
        }
        return readBody(res, url, end - start, progress);
      }
      if (res.status === 200) {
        // Range ignored: this body is the whole file. Keep the first such download; a
        // concurrent read that raced it drops its own copy.
        // (`whole` may have been set while this request was in flight; TS cannot see that.)
        const raced = whole as Promise<Uint8Array> | null;
        if (raced) {
          await res.body?.cancel();
          return (await raced).slice(start, end);
        }
        const body = readBody(res, url, size, progress);
        whole = body;
        body.catch(() => (whole = null)); // a failed download may be retried by the next read
        return (await body).slice(start, end);
      }
      await res.body?.cancel();
      throw httpError('GET', url, res, ` for bytes=${start}-${end - 1}`);
    },
  };
}

/**
 * Finish a response whose body is empty or small (HEAD, 404 page, the 1-byte probe) by reading
 * it: Chromium reports a response dropped unread as net::ERR_ABORTED.
 */
async function drain(res: Response): Promise<void> {
  await res.arrayBuffer().catch(() => undefined);
}

/**
 * Exactly `expected` bytes of the body, in a buffer the caller owns. A body of another length
 * is an error: the file changed on the server, or a proxy cut it.
 *
 * arrayBuffer(), not a stream reader: Chromium (156) reports a fetch whose body was read to the
 * end through getReader() as net::ERR_ABORTED in DevTools and Playwright, although every byte
 * arrived; arrayBuffer() completes cleanly. Progress therefore moves once per response: per
 * tensor when ranges work, once for the whole file when they do not.
 */
async function readBody(res: Response, url: string, expected: number, progress: (n: number) => void): Promise<Uint8Array> {
  let buf: Uint8Array;
  try {
    buf = new Uint8Array(await res.arrayBuffer());
  } catch (e) {
    throw new FetchError(url, res.status, `reading the body failed: ${(e as Error).message}`);
  }
  if (buf.byteLength !== expected) {
    throw new FetchError(url, res.status, `the response body has ${buf.byteLength} bytes, expected ${expected} (file changed on the server, or the transfer was cut)`);
  }
  progress(buf.byteLength);
  return buf;
}
