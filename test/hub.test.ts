// resolveModel against a local stub of the Hub's `/{id}/resolve/{revision}/{file}` endpoint
// (node:http on 127.0.0.1, random port) serving the gte-dev fixture: download, cache hit without
// requests, optional and required 404s, interrupted downloads, resume, auth, no network.

import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HubError, isHubId, modelCacheDir, resolveModel } from '../node/hub.ts';

const FIXTURE = new URL('./fixtures/gte-dev/', import.meta.url).pathname;
const ID = 'test-org/gte-dev';

interface Stub {
  endpoint: string;
  requests: { file: string; range?: string; auth?: string }[];
  /** Files of ID at revision 'main'. */
  files: Map<string, Uint8Array>;
  /** Cut these files' next response after half the body (once each). */
  interrupt: Set<string>;
  /** Answer Range requests with the whole file (200), like a server without range support. */
  ignoreRange: boolean;
  /** Bearer token the server demands; null = public. */
  token: string | null;
  server: Server;
}

async function startStub(): Promise<Stub> {
  const stub = { requests: [], files: new Map(), interrupt: new Set(), ignoreRange: false, token: null } as unknown as Stub;
  stub.server = createServer((req, res) => {
    const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(req.url ?? '');
    const file = m ? m[3].split('/').map(decodeURIComponent).join('/') : '';
    stub.requests.push({ file, range: req.headers.range, auth: req.headers.authorization });
    if (stub.token && req.headers.authorization !== `Bearer ${stub.token}`) {
      res.writeHead(401, { 'x-error-code': 'GatedRepo' }).end('Unauthorized');
      return;
    }
    const body = m && m[1] === ID && decodeURIComponent(m[2]) === 'main' ? stub.files.get(file) : undefined;
    if (!body) {
      res.writeHead(404, { 'x-error-code': 'EntryNotFound' }).end('Entry not found');
      return;
    }
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range && !stub.ignoreRange) {
      const start = Number(range[1]);
      if (start >= body.byteLength) {
        res.writeHead(416).end();
        return;
      }
      res.writeHead(206, { 'content-length': body.byteLength - start, 'content-range': `bytes ${start}-${body.byteLength - 1}/${body.byteLength}` });
      res.end(body.subarray(start));
      return;
    }
    res.writeHead(200, { 'content-length': body.byteLength, 'content-type': 'application/octet-stream' });
    if (stub.interrupt.delete(file)) {
      // Promise the whole file, send half, drop the connection.
      res.write(body.subarray(0, body.byteLength >> 1), () => res.socket?.destroy());
      return;
    }
    res.end(body);
  });
  await new Promise<void>((r) => stub.server.listen(0, '127.0.0.1', r));
  stub.endpoint = `http://127.0.0.1:${(stub.server.address() as AddressInfo).port}`;
  return stub;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

function assertHubError(e: unknown, ...parts: string[]): true {
  assert.ok(e instanceof HubError, `expected HubError, got ${(e as Error)?.name}: ${(e as Error)?.message}`);
  assert.ok(!e.message.includes('\n'), 'one line');
  for (const p of parts) assert.ok(e.message.includes(p), `message lacks '${p}': ${e.message}`);
  if (process.env.AQA_TEST_VERBOSE) console.log(`  ${e.message}`);
  return true;
}

describe('hub', () => {
  let stub: Stub;
  let tmp = '';
  let fixture: Record<string, Uint8Array>;
  const tokenizer = new TextEncoder().encode(JSON.stringify({ version: '1.0', model: { type: 'WordPiece', vocab: { '[PAD]': 0 } } }));

  before(async () => {
    stub = await startStub();
    tmp = await mkdtemp(join(tmpdir(), 'aqa-hub-'));
    fixture = {};
    for (const f of ['config.json', 'model.safetensors']) fixture[f] = new Uint8Array(await readFile(join(FIXTURE, f)));
  });
  after(async () => {
    stub.server.closeAllConnections();
    await new Promise((r) => stub.server.close(r));
    await rm(tmp, { recursive: true, force: true });
  });

  /** Reset the stub to serve the fixture (+ tokenizer.json and extras) and give a fresh cache dir. */
  let n = 0;
  const fresh = async (extra: Record<string, Uint8Array | string> = {}) => {
    stub.files = new Map(Object.entries({ ...fixture, 'tokenizer.json': tokenizer, ...extra }).map(([k, v]) => [k, typeof v === 'string' ? new TextEncoder().encode(v) : v]));
    stub.requests.length = 0;
    stub.interrupt.clear();
    stub.ignoreRange = false;
    stub.token = null;
    const cacheDir = join(tmp, `cache${n++}`);
    return { cacheDir, endpoint: stub.endpoint, retries: 0, retryDelayMs: 1 };
  };

  test('downloads into <cache>/<owner>--<name>/<revision>; missing optional files are fine', async () => {
    const opts = await fresh({ 'modules.json': '[]', '1_Pooling/config.json': '{"pooling_mode_cls_token": true}' });
    const progress: [string, number, number][] = [];
    const dir = await resolveModel(ID, { ...opts, onProgress: (f, l, t) => progress.push([f, l, t]) });
    assert.equal(dir, join(resolve(opts.cacheDir), 'test-org--gte-dev', 'main'));
    assert.equal(dir, modelCacheDir(ID, 'main', opts.cacheDir));
    for (const [f, bytes] of stub.files) assert.deepEqual(new Uint8Array(await readFile(join(dir, f))), bytes, f);
    // Optional files the repo lacks: asked once, not created, no .part left behind.
    for (const f of ['vocab.txt', 'tokenizer_config.json', 'sentence_bert_config.json']) {
      assert.ok(stub.requests.some((r) => r.file === f));
      assert.ok(!(await exists(join(dir, f))));
    }
    const leftovers = (await readdir(dir, { recursive: true })).filter((f) => String(f).endsWith('.part') || String(f).endsWith('.tmp'));
    assert.deepEqual(leftovers, []);
    const manifest = JSON.parse(await readFile(join(dir, '.aqa-download.json'), 'utf8'));
    assert.deepEqual(manifest.files.sort(), [...stub.files.keys()].sort());
    assert.ok(manifest.absent.includes('vocab.txt'));
    const last = progress.filter(([f]) => f === 'model.safetensors').at(-1);
    assert.deepEqual(last, ['model.safetensors', 591912, 591912]);
    // Required files first (a bad id fails before the big download), weights last.
    assert.equal(stub.requests[0].file, 'config.json');
    assert.equal(stub.requests.at(-1)!.file, 'model.safetensors');
  });

  test('second call is served from the cache without any request', async () => {
    const opts = await fresh();
    const dir = await resolveModel(ID, opts);
    const before = stub.requests.length;
    assert.ok(before > 0);
    assert.equal(await resolveModel(ID, opts), dir);
    assert.equal(stub.requests.length, before);
    // Even with a fetch that would fail.
    assert.equal(await resolveModel(ID, { ...opts, fetch: () => Promise.reject(new Error('network used')) }), dir);
  });

  test('missing required file: one-line error naming the id and the file', async () => {
    const opts = await fresh();
    stub.files.delete('tokenizer.json');
    await assert.rejects(resolveModel(ID, opts), (e) => assertHubError(e, ID, 'tokenizer.json not found', 'HTTP 404'));
    const cfg = await fresh();
    await assert.rejects(resolveModel('test-org/no-such-model', cfg), (e) => assertHubError(e, 'test-org/no-such-model', 'config.json not found', "no local directory 'test-org/no-such-model'"));
    const weights = await fresh();
    stub.files.delete('model.safetensors');
    await assert.rejects(resolveModel(ID, weights), (e) => assertHubError(e, ID, 'neither model.safetensors nor model.safetensors.index.json'));
    assert.ok(!(await exists(join(modelCacheDir(ID, 'main', weights.cacheDir), '.aqa-download.json'))));
  });

  test('interrupted download leaves no complete-looking file; the next call resumes with Range', async () => {
    const opts = await fresh();
    stub.interrupt.add('model.safetensors');
    const dir = modelCacheDir(ID, 'main', opts.cacheDir);
    await assert.rejects(resolveModel(ID, opts), (e) => assertHubError(e, ID, 'model.safetensors', 'interrupted after', 'run again to resume'));
    assert.ok(!(await exists(join(dir, 'model.safetensors'))), 'no file under the real name');
    assert.ok(!(await exists(join(dir, '.aqa-download.json'))), 'no manifest');
    const partial = (await stat(join(dir, 'model.safetensors.part'))).size;
    assert.ok(partial > 0 && partial < 591912, `partial .part (${partial} bytes)`);

    stub.requests.length = 0;
    assert.equal(await resolveModel(ID, opts), dir);
    assert.deepEqual(new Uint8Array(await readFile(join(dir, 'model.safetensors'))), fixture['model.safetensors']);
    assert.ok(!(await exists(join(dir, 'model.safetensors.part'))));
    // Complete files were not fetched again; the weights resumed where the .part ended.
    assert.ok(!stub.requests.some((r) => r.file === 'config.json' || r.file === 'tokenizer.json'));
    assert.deepEqual(stub.requests.filter((r) => r.file === 'model.safetensors').map((r) => r.range), [`bytes=${partial}-`]);
  });

  test('retries within one call; a server that ignores Range restarts the file cleanly', async () => {
    const opts = await fresh();
    stub.interrupt.add('model.safetensors');
    stub.ignoreRange = true;
    const dir = await resolveModel(ID, { ...opts, retries: 2 });
    assert.deepEqual(new Uint8Array(await readFile(join(dir, 'model.safetensors'))), fixture['model.safetensors']);
    assert.equal(stub.requests.filter((r) => r.file === 'model.safetensors').length, 2);
  });

  test('HF_TOKEN is sent as a bearer token; without it a gated model says so', async () => {
    const opts = await fresh();
    stub.token = 'hf_secret';
    await assert.rejects(resolveModel(ID, { ...opts, token: '' }), (e) => assertHubError(e, ID, 'config.json', 'HTTP 401', 'HF_TOKEN'));
    const dir = await resolveModel(ID, { ...opts, token: 'hf_secret' });
    assert.ok(await exists(join(dir, 'model.safetensors')));
    assert.ok(stub.requests.filter((r) => r.auth).every((r) => r.auth === 'Bearer hf_secret'));
  });

  test('sharded weights: the index and every shard it names', async () => {
    const opts = await fresh({
      'model.safetensors.index.json': JSON.stringify({ weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors', c: 'model-00001-of-00002.safetensors' } }),
      'model-00001-of-00002.safetensors': 'shard one',
      'model-00002-of-00002.safetensors': 'shard two',
    });
    stub.files.delete('model.safetensors');
    const dir = await resolveModel(ID, opts);
    assert.equal(await readFile(join(dir, 'model-00002-of-00002.safetensors'), 'utf8'), 'shard two');
    assert.equal(stub.requests.filter((r) => r.file.startsWith('model-0000')).length, 2);
  });

  test('no network: a clear error, quickly', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const opts = await fresh();
    await assert.rejects(
      resolveModel(ID, { ...opts, endpoint: `http://127.0.0.1:${port}`, retries: 3 }),
      (e) => assertHubError(e, `cannot reach http://127.0.0.1:${port}`, ID, 'ECONNREFUSED', 'local model directory'),
    );
  });

  test('local directories are used as is; other strings must be owner/name', async () => {
    const noNet = { fetch: () => Promise.reject(new Error('network used')) };
    assert.equal(await resolveModel(FIXTURE, noNet), resolve(FIXTURE));
    await assert.rejects(resolveModel(join(FIXTURE, 'config.json'), noNet), (e) => assertHubError(e, 'is a file'));
    await assert.rejects(resolveModel('gte-dev', noNet), (e) => assertHubError(e, "'gte-dev' is neither an existing directory nor a Hub model id"));
    assert.ok(isHubId('BAAI/bge-small-en-v1.5'));
    assert.ok(!isHubId('../etc/passwd') && !isHubId('a/../b') && !isHubId('a/b/c') && !isHubId('/abs/path'));
    // Revisions with '/' stay one directory level.
    assert.ok(modelCacheDir(ID, 'refs/pr/1', '/c').endsWith('test-org--gte-dev/refs%2Fpr%2F1'));
  });
});
