// fetchModelFiles (browser/fetch.ts) against a local node:http server that can honour Range,
// ignore it, refuse HEAD, or fail: sizes, byte ranges, the whole-body fallback, 404 -> null,
// HTTP errors naming URL and status, and a safetensors model read through it matching the
// same file read from disk. Node 20's global fetch is the one browsers have.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { FetchError, fetchModelFiles, parseContentRange } from '../browser/fetch.ts';
import { readTensorBytes } from '../core/model/safetensors.ts';
import { openWeights } from '../core/model/weights.ts';
import { localModelFiles } from '../node/files.ts';

interface Behaviour {
  /** Answer GET with Range by 206 (true) or with the whole file, 200 (false). */
  ranges: boolean;
  /** Answer HEAD (true) or 405 (false). */
  head: boolean;
  /** Send a body one byte shorter than the headers promise (a cut transfer). */
  truncate?: boolean;
}

interface Logged {
  method: string;
  path: string;
  range: string | null;
  status: number;
  bytes: number;
}

// A 1000-byte file whose byte i is i % 251, so any misplaced range shows.
const DATA = Uint8Array.from({ length: 1000 }, (_, i) => i % 251);
const TINY = 'test/fixtures/tiny-bert';

const FILES: Record<string, Uint8Array> = {
  'data.bin': DATA,
  'sub dir/x.json': new TextEncoder().encode('{"ok": "é"}'),
  'empty.bin': new Uint8Array(0),
  'model.safetensors': readFileSync(`${TINY}/model.safetensors`),
  'config.json': readFileSync(`${TINY}/config.json`),
};

let server: Server;
let origin = '';
const log: Logged[] = [];

function handle(req: IncomingMessage, res: ServerResponse): void {
  // URL: /<behaviour>/<file path>, behaviour one of range|norange|nohead-range|nohead-norange|truncate|fail
  const url = new URL(req.url ?? '/', 'http://x');
  const [, mode, ...rest] = url.pathname.split('/');
  const path = decodeURIComponent(rest.join('/'));
  const entry: Logged = { method: req.method ?? '', path, range: req.headers.range ?? null, status: 0, bytes: 0 };
  log.push(entry);
  const send = (status: number, headers: Record<string, string | number>, body?: Uint8Array) => {
    entry.status = status;
    entry.bytes = body?.byteLength ?? 0;
    res.writeHead(status, headers);
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  if (mode === 'fail') return send(500, { 'content-type': 'text/plain' }, new TextEncoder().encode('boom'));
  const b: Behaviour = {
    ranges: mode === 'range' || mode === 'nohead-range' || mode === 'truncate',
    head: !mode.startsWith('nohead'),
    truncate: mode === 'truncate',
  };
  const file = FILES[path];
  if (!file) return send(404, { 'content-type': 'text/plain' }, new TextEncoder().encode('not found'));
  if (req.method === 'HEAD') {
    if (!b.head) return send(405, { allow: 'GET' });
    return send(200, { 'content-length': file.byteLength, ...(b.ranges ? { 'accept-ranges': 'bytes' } : {}) });
  }
  const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
  if (!b.ranges || !m) return send(200, { 'content-length': file.byteLength }, file);
  const start = Number(m[1]);
  const end = Math.min(Number(m[2]), file.byteLength - 1);
  if (start >= file.byteLength) return send(416, { 'content-range': `bytes */${file.byteLength}` });
  let body = file.subarray(start, end + 1);
  // Headers promise the full range; the body stops one byte early.
  if (b.truncate && body.byteLength > 1) {
    entry.status = 206;
    entry.bytes = body.byteLength - 1;
    res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${file.byteLength}` });
    res.end(body.subarray(0, body.byteLength - 1));
    return;
  }
  send(206, { 'content-range': `bytes ${start}-${end}/${file.byteLength}`, 'content-length': body.byteLength }, body);
}

before(async () => {
  server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (e) {
      res.writeHead(500).end(String(e));
    }
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => new Promise<void>((ok) => server.close(() => ok())));

function since(n: number): Logged[] {
  return log.slice(n);
}

describe('fetchModelFiles', () => {
  test('parseContentRange', () => {
    assert.deepEqual(parseContentRange('bytes 0-0/1234'), { start: 0, end: 0, size: 1234 });
    assert.deepEqual(parseContentRange('bytes */0'), { start: null, end: null, size: 0 });
    assert.deepEqual(parseContentRange('bytes 5-9/*'), { start: 5, end: 9, size: null });
    assert.equal(parseContentRange('items 0-1/2'), null);
    assert.equal(parseContentRange(null), null);
  });

  for (const mode of ['range', 'nohead-range']) {
    test(`${mode}: size from ${mode === 'range' ? 'HEAD' : 'a bytes=0-0 probe'}, then only the asked ranges travel`, async () => {
      const n = log.length;
      const progress: [string, number, number][] = [];
      const files = fetchModelFiles(`${origin}/${mode}/`, { onProgress: (f, l, t) => progress.push([f, l, t]) });
      assert.equal(files.name, `${origin}/${mode}`);
      const src = await files.file('data.bin');
      assert.ok(src);
      assert.equal(src.size, 1000);
      assert.equal(src.name, `${origin}/${mode}/data.bin`);
      const a = await src.read(10, 20);
      assert.deepEqual([...a], [...DATA.subarray(10, 20)]);
      assert.equal(a.byteOffset, 0);
      assert.equal(a.byteLength, 10);
      const b = await src.read(990, 1000);
      assert.deepEqual([...b], [...DATA.subarray(990, 1000)]);
      assert.equal((await src.read(5, 5)).byteLength, 0);
      await assert.rejects(src.read(990, 1001), /outside the file \(1000 bytes\)/);
      await assert.rejects(src.read(-1, 3), RangeError);
      const reqs = since(n);
      const gets = reqs.filter((r) => r.method === 'GET');
      if (mode === 'range') assert.deepEqual(reqs[0], { method: 'HEAD', path: 'data.bin', range: null, status: 200, bytes: 0 });
      else assert.deepEqual(reqs.slice(0, 2).map((r) => [r.method, r.status, r.range]), [['HEAD', 405, null], ['GET', 206, 'bytes=0-0']]);
      const reads = gets.filter((r) => r.range !== 'bytes=0-0');
      assert.deepEqual(reads.map((r) => [r.range, r.status, r.bytes]), [['bytes=10-19', 206, 10], ['bytes=990-999', 206, 10]]);
      assert.deepEqual(progress, [['data.bin', 10, 1000], ['data.bin', 20, 1000]]);
    });
  }

  for (const mode of ['norange', 'nohead-norange']) {
    test(`${mode}: a server that ignores Range is downloaded once and sliced`, async () => {
      const n = log.length;
      const src = await fetchModelFiles(`${origin}/${mode}`).file('data.bin');
      assert.ok(src);
      assert.equal(src.size, 1000);
      // Concurrent reads racing the first 200: still one whole body kept, every slice right.
      const parts = await Promise.all([src.read(0, 4), src.read(100, 200), src.read(996, 1000)]);
      assert.deepEqual([...parts[0]], [...DATA.subarray(0, 4)]);
      assert.deepEqual([...parts[1]], [...DATA.subarray(100, 200)]);
      assert.deepEqual([...parts[2]], [...DATA.subarray(996, 1000)]);
      // The caller owns what read returns: writing into it must not change the cached body.
      parts[1].fill(0);
      assert.deepEqual([...(await src.read(100, 104))], [...DATA.subarray(100, 104)]);
      const afterwards = log.length;
      await src.read(500, 600);
      assert.equal(log.length, afterwards, 'a read after the fallback went to the server again');
      const gets = since(n).filter((r) => r.method === 'GET');
      assert.ok(gets.every((r) => r.status === 200));
      // nohead-norange learns the size from the probe, whose 200 body is the file: one GET in all.
      if (mode === 'nohead-norange') assert.equal(gets.length, 1);
      // The reads that raced the first 200 may each have started a download, but no read after it.
      else assert.ok(gets.length <= 3, `${gets.length} whole-file GETs`);
    });
  }

  test('text: UTF-8, paths with spaces are encoded, 404 -> null for text and file', async () => {
    const files = fetchModelFiles(`${origin}/range`);
    assert.equal(await files.text('sub dir/x.json'), '{"ok": "é"}');
    assert.equal(log.at(-1)?.path, 'sub dir/x.json');
    assert.equal(await files.text('missing.json'), null);
    assert.equal(await files.file('missing.bin'), null);
    assert.equal(await fetchModelFiles(`${origin}/nohead-range`).file('missing.bin'), null);
  });

  test('an empty file has size 0 with HEAD or with the 416 probe', async () => {
    for (const mode of ['range', 'nohead-range', 'nohead-norange']) {
      const src = await fetchModelFiles(`${origin}/${mode}`).file('empty.bin');
      assert.equal(src?.size, 0, mode);
      assert.equal((await src!.read(0, 0)).byteLength, 0);
    }
  });

  test('HTTP errors: one line naming the URL and the status', async () => {
    const files = fetchModelFiles(`${origin}/fail`);
    const url = `${origin}/fail/config.json`;
    await assert.rejects(files.text('config.json'), (e: Error) => {
      assert.ok(e instanceof FetchError);
      assert.equal(e.status, 500);
      assert.equal(e.message, `${url}: GET failed: HTTP 500 Internal Server Error`);
      return true;
    });
    await assert.rejects(files.file('config.json'), (e: Error) => e.message === `${url}: GET failed: HTTP 500 Internal Server Error for bytes=0-0 (HEAD answered 500)`);
    // Nothing listens on port 9 of 127.0.0.1 (discard; not served here): a network error, with the URL.
    await assert.rejects(fetchModelFiles('http://127.0.0.1:9/m').text('config.json'), (e: Error) => {
      assert.ok(e instanceof FetchError && e.status === null);
      assert.match(e.message, /^http:\/\/127\.0\.0\.1:9\/m\/config\.json: GET failed: /);
      assert.ok(!e.message.includes('\n'));
      return true;
    });
  });

  test('a cut transfer or a path outside the folder is an error, not wrong bytes', async () => {
    const src = await fetchModelFiles(`${origin}/truncate`).file('data.bin');
    assert.ok(src);
    await assert.rejects(src.read(0, 100), /data\.bin: .*(body has 99 bytes, expected 100|reading the body failed)/);
    const files = fetchModelFiles(`${origin}/range`);
    for (const bad of ['../secret', '/etc/passwd', 'a/../../b', 'a\\b', '']) {
      await assert.rejects(files.file(bad), /refusing path/);
    }
  });

  test('a safetensors checkpoint read through Range requests equals the file on disk', async () => {
    const n = log.length;
    const remote = await openWeights(fetchModelFiles(`${origin}/range`));
    const local = await openWeights(localModelFiles(TINY));
    assert.deepEqual([...remote.tensors.keys()], [...local.tensors.keys()]);
    let read = 0;
    for (const [name, { file }] of remote.tensors) {
      const a = await readTensorBytes(file, name);
      const b = await readTensorBytes(local.tensors.get(name)!.file, name);
      assert.ok(Buffer.from(a.bytes).equals(Buffer.from(b.bytes)), name);
      read += a.bytes.byteLength;
    }
    const gets = since(n).filter((r) => r.method === 'GET');
    // Header length (8 bytes), header, then one ranged GET per tensor; nothing read whole.
    assert.equal(gets.length, 2 + remote.tensors.size);
    assert.ok(gets.every((r) => r.status === 206 && r.range !== null));
    const size = FILES['model.safetensors'].byteLength;
    assert.equal(gets.reduce((s, r) => s + r.bytes, 0), 8 + remote.files[0].headerLength + read);
    assert.ok(read <= size);
  });
});
