// One file over HTTP with single byte ranges (RFC 7233 `bytes=a-b`, `bytes=a-`, `bytes=-n`),
// for the static servers of the browser demo (demo/vite.config.ts) and the Chromium tests
// (test/browser/runner.ts). Model and index files are read in ranges by browser/fetch.ts.

import { createReadStream, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Answer GET/HEAD `req` with `file` (which must exist): 200, 206 for a range, 416 past the end. */
export function sendFile(req: IncomingMessage, res: ServerResponse, file: string, contentType: string): void {
  const size = statSync(file).size;
  const headers: Record<string, string | number> = {
    'content-type': contentType,
    'cache-control': 'no-store', // a rebuilt index or model must not be mixed with cached pieces
    'accept-ranges': 'bytes',
  };
  let start = 0;
  let end = size - 1;
  let status = 200;
  const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
  if (range && (range[1] || range[2])) {
    if (range[1]) {
      start = Number(range[1]);
      if (range[2]) end = Math.min(Number(range[2]), size - 1);
    } else start = Math.max(0, size - Number(range[2])); // suffix: the last N bytes
    if (start > end || start >= size) {
      res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
      return;
    }
    status = 206;
    headers['content-range'] = `bytes ${start}-${end}/${size}`;
  }
  headers['content-length'] = end - start + 1;
  res.writeHead(status, headers);
  if (req.method === 'HEAD' || size === 0) res.end();
  else createReadStream(file, { start, end }).pipe(res);
}
