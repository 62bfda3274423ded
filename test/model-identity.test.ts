// Model identity (node/index-store.ts modelFingerprint): it covers every weight byte, so an
// in-place edit of a middle tensor is a different model, and its per-file digest is cached by
// (path, size, mtime, inode) so a second look at an unchanged checkpoint reads nothing.

import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, openSync, readFileSync, closeSync, writeSync, rmSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { modelFingerprint } from '../node/index-store.ts';

const MINILM = 'test/models/all-MiniLM-L6-v2';

/** Byte range of one tensor's data in a safetensors file. */
function tensorRange(path: string, name: string): [number, number] {
  const bytes = readFileSync(path);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, { data_offsets: [number, number] }>;
  const [a, b] = header[name].data_offsets;
  return [8 + n + a, 8 + n + b];
}

function copyModel(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'aqa-identity-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const f of ['config.json', 'tokenizer.json', 'model.safetensors']) cpSync(join(MINILM, f), join(dir, f));
  return dir;
}

test('identity changes when a middle tensor is zeroed in place (same size)', async (t) => {
  const dir = copyModel(t);
  const cache = join(dir, 'hash-cache.json');
  const before = await modelFingerprint(dir, { hashCache: cache });
  const weights = join(dir, 'model.safetensors');
  const [start, end] = tensorRange(weights, 'encoder.layer.3.attention.self.query.weight');
  const size = statSync(weights).size;
  assert.ok(start > (1 << 20) && end < size - (1 << 20), 'the tensor lies outside the first and last MiB');
  const fd = openSync(weights, 'r+');
  try {
    writeSync(fd, Buffer.alloc(end - start), 0, end - start, start);
  } finally {
    closeSync(fd);
  }
  assert.equal(statSync(weights).size, size);
  const after = await modelFingerprint(dir, { hashCache: cache });
  assert.equal(after.configSha256, before.configSha256);
  assert.equal(after.tokenizerSha256, before.tokenizerSha256);
  assert.notEqual(after.weightsHash, before.weightsHash);
  // Without a cache the same answers come back.
  assert.equal((await modelFingerprint(dir, { hashCache: null })).weightsHash, after.weightsHash);
});

test('the weight digest is cached by path, size, mtime and inode', async (t) => {
  const dir = copyModel(t);
  const cache = join(dir, 'sub', 'hash-cache.json');
  const first = await modelFingerprint(dir, { hashCache: cache });
  assert.ok(existsSync(cache), 'the cache file is written (its folder created)');
  const entries = JSON.parse(readFileSync(cache, 'utf8')) as Record<string, { sha256: string }>;
  const key = Object.keys(entries).find((k) => k.endsWith('model.safetensors'));
  assert.ok(key, 'the weight file has an entry');
  // A planted digest for the same (size, mtime, inode) is believed: the file is not read again.
  entries[key].sha256 = '0'.repeat(64);
  const { writeFileSync } = await import('node:fs');
  writeFileSync(cache, JSON.stringify(entries));
  const cached = await modelFingerprint(dir, { hashCache: cache });
  assert.notEqual(cached.weightsHash, first.weightsHash);
  // A corrupt cache is ignored and rewritten.
  writeFileSync(cache, '{not json');
  assert.equal((await modelFingerprint(dir, { hashCache: cache })).weightsHash, first.weightsHash);
});
