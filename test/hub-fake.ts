// A stand-in for huggingface.co's `/<owner>/<name>/resolve/<revision>/<file>` answers, so the
// training page's Hub source is tested without the network: as a fetch function in Node
// (test/model-source.test.ts) and behind Playwright's page.route in Chromium
// (test/browser-model-source.test.ts). It answers like the Hub does for an anonymous visitor:
// 401 for a repo that does not exist (the Hub does not tell missing from private), 404 with
// x-error-code EntryNotFound for a missing file, HEAD with the size, single byte ranges as 206,
// and CORS headers on every answer (the page is on another origin).

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const FAKE_HUB = 'https://huggingface.co';

type Bytes = Uint8Array<ArrayBuffer>;
/** Repo id -> its files (path -> bytes) at revision 'main'. */
export type FakeRepos = Map<string, Map<string, Bytes>>;

/** Every file under `dir` by its path inside it. */
export function folderFiles(dir: string): Map<string, Bytes> {
  const out = new Map<string, Bytes>();
  const walk = (rel: string) => {
    for (const e of readdirSync(join(dir, rel))) {
      const p = rel ? `${rel}/${e}` : e;
      if (statSync(join(dir, p)).isDirectory()) walk(p);
      else out.set(p, new Uint8Array(readFileSync(join(dir, p))));
    }
  };
  walk('');
  return out;
}

export interface FakeAnswer {
  status: number;
  headers: Record<string, string>;
  body: Bytes;
}

const CORS = { 'access-control-allow-origin': '*', 'access-control-expose-headers': 'content-range, content-length, accept-ranges, x-error-code' };

/** The Hub's answer to `method url` with an optional Range header. */
export function fakeHubAnswer(repos: FakeRepos, method: string, url: string, range: string | null): FakeAnswer {
  const text = (status: number, body: string, extra: Record<string, string> = {}): FakeAnswer => ({ status, headers: { ...CORS, 'content-type': 'text/plain; charset=utf-8', ...extra }, body: new TextEncoder().encode(method === 'HEAD' ? '' : body) });
  if (method === 'OPTIONS') return { status: 204, headers: { ...CORS, 'access-control-allow-headers': 'range', 'access-control-allow-methods': 'GET, HEAD' }, body: new Uint8Array(0) };
  const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(new URL(url).pathname);
  const repo = m ? repos.get(m[1]) : undefined;
  if (!m || !repo || decodeURIComponent(m[2]) !== 'main') return text(401, 'Invalid username or password.', { 'x-error-code': 'RepoNotFound' });
  const body = repo.get(m[3].split('/').map(decodeURIComponent).join('/'));
  if (!body) return text(404, 'Entry not found', { 'x-error-code': 'EntryNotFound' });
  const base = { ...CORS, 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes' };
  const r = /^bytes=(\d+)-(\d*)$/.exec(range ?? '');
  if (r && method === 'GET') {
    const start = Number(r[1]);
    const end = Math.min(r[2] ? Number(r[2]) : body.byteLength - 1, body.byteLength - 1);
    if (start > end) return { status: 416, headers: { ...base, 'content-range': `bytes */${body.byteLength}` }, body: new Uint8Array(0) };
    return { status: 206, headers: { ...base, 'content-range': `bytes ${start}-${end}/${body.byteLength}`, 'content-length': String(end - start + 1) }, body: body.subarray(start, end + 1) };
  }
  return { status: 200, headers: { ...base, 'content-length': String(body.byteLength) }, body: method === 'HEAD' ? new Uint8Array(0) : body };
}
