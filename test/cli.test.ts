// The `aqa` command line as a user meets it: real processes, real files. User errors must be
// one line on stderr naming the file (and line/field or tensor), with exit code 1 and no stack.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readNpy } from '../node/npy.ts';

const TINY = 'test/fixtures/tiny-bert';

function aqa(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['node/bin.mjs', ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 180_000 });
  // Dawn prints limit warnings on llvmpipe; they are not ours.
  const stderr = r.stderr
    .split('\n')
    .filter((l) => l && !l.includes('artificially reduced'))
    .join('\n');
  return { code: r.status, stdout: r.stdout, stderr };
}

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'aqa-cli-'));
}

/** Exactly one non-empty stderr line starting with "aqa: " and containing every fragment. */
function assertOneLineError(r: ReturnType<typeof aqa>, ...fragments: string[]): void {
  assert.equal(r.code, 1, `exit code ${r.code}; stderr: ${r.stderr}`);
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('aqa: '));
  assert.equal(lines.length, 1, `expected one error line, got:\n${r.stderr}`);
  assert.ok(!/\n\s+at /.test(r.stderr), `stack trace printed:\n${r.stderr}`);
  for (const f of fragments) assert.ok(lines[0].includes(f), `'${lines[0]}' should mention '${f}'`);
}

test('embed writes an .npy of unit vectors and a JSON sidecar; invalid UTF-8, empty and very long texts are handled', () => {
  const d = tmp();
  const input = join(d, 'in.txt');
  const long = 'transformer '.repeat(50_000); // 600 kB: truncated to the model's 64 positions
  writeFileSync(input, Buffer.concat([Buffer.from(`hello world\n\n${long}\nbad `), Buffer.from([0xff, 0xfe]), Buffer.from(' bytes\n')]));
  const out = join(d, 'out.npy');
  const r = aqa(['embed', '--model', TINY, '--input', input, '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /in\.txt:4: invalid UTF-8 replaced/);
  assert.match(r.stderr, /1 empty text/);
  return readNpy(out).then(({ shape, data }) => {
    assert.deepEqual(shape, [4, 32]);
    for (let i = 0; i < 4; i++) {
      let n = 0;
      for (let k = 0; k < 32; k++) n += data[i * 32 + k] ** 2;
      assert.ok(Math.abs(Math.sqrt(n) - 1) < 1e-5, `row ${i} norm ${Math.sqrt(n)}`);
    }
    const side = JSON.parse(readFileSync(join(d, 'out.json'), 'utf8'));
    assert.deepEqual(side.shape, [4, 32]);
    assert.equal(side.count, 4);
    // nothing but the two outputs is left behind (atomic writes leave no temp files)
    assert.deepEqual(readdirSync(d).sort(), ['in.txt', 'out.json', 'out.npy']);
  });
});

test('embed: malformed JSONL names file and line; missing field names the field', () => {
  const d = tmp();
  const bad = join(d, 'q.jsonl');
  writeFileSync(bad, '{"text": "ok"}\n{"text": "broken"\n');
  assertOneLineError(aqa(['embed', '--model', TINY, '--input', bad, '--out', join(d, 'o.npy')]), 'q.jsonl:2', 'malformed JSON');
  writeFileSync(bad, '{"text": "ok"}\n{"title": "no text"}\n');
  assertOneLineError(aqa(['embed', '--model', TINY, '--input', bad, '--out', join(d, 'o.npy')]), 'q.jsonl:2', "field 'text' is missing");
  writeFileSync(bad, '{"text": 5}\n');
  assertOneLineError(aqa(['embed', '--model', TINY, '--input', bad, '--out', join(d, 'o.npy')]), 'q.jsonl:1', 'not a string');
});

test('embed: missing input, unknown input type and missing model are one-line errors', () => {
  const d = tmp();
  assertOneLineError(aqa(['embed', '--model', TINY, '--input', join(d, 'nope.txt'), '--out', join(d, 'o.npy')]), 'nope.txt', 'cannot read');
  writeFileSync(join(d, 'x.csv'), 'a,b\n');
  assertOneLineError(aqa(['embed', '--model', TINY, '--input', join(d, 'x.csv'), '--out', join(d, 'o.npy')]), 'x.csv', 'unsupported input type');
  writeFileSync(join(d, 'in.txt'), 'hello\n');
  assertOneLineError(aqa(['embed', '--model', join(d, 'no-such-model'), '--input', join(d, 'in.txt'), '--out', join(d, 'o.npy')], { HF_HUB_OFFLINE: '1' }), 'no-such-model');
});

test('embed: a corrupt checkpoint is a one-line error naming the file and tensor', () => {
  const d = tmp();
  const model = join(d, 'model');
  // a copy of tiny-bert whose safetensors header promises more bytes than the file has
  spawnSync('cp', ['-r', TINY, model]);
  const st = readFileSync(join(model, 'model.safetensors'));
  writeFileSync(join(model, 'model.safetensors'), st.subarray(0, st.length - 1000));
  writeFileSync(join(d, 'in.txt'), 'hello\n');
  const r = aqa(['embed', '--model', model, '--input', join(d, 'in.txt'), '--out', join(d, 'o.npy')]);
  assertOneLineError(r, 'model.safetensors', "tensor '");
  // and an unsupported architecture is named as such
  const cfg = JSON.parse(readFileSync(join(TINY, 'config.json'), 'utf8'));
  copyFileSync(join(TINY, 'model.safetensors'), join(model, 'model.safetensors'));
  writeFileSync(join(model, 'config.json'), JSON.stringify({ ...cfg, model_type: 'gpt2' }));
  assertOneLineError(aqa(['embed', '--model', model, '--input', join(d, 'in.txt'), '--out', join(d, 'o.npy')]), "unsupported architecture 'gpt2'");
});

test('no matching adapter is a clear one-line error', () => {
  const r = aqa(['info'], { AQA_ADAPTER: 'no-such-gpu-xyz' });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /aqa: no adapter matches 'no-such-gpu-xyz'; available: /);
});

test('bench: malformed --shapes and --sizes are one-line errors naming the bad item', () => {
  assertOneLineError(aqa(['bench', 'embed', '--shapes', '32x128,32by256']), '--shapes', "'32by256'");
  assertOneLineError(aqa(['bench', 'matmul', '--sizes', '256,-1']), '--sizes', "'-1'");
  assertOneLineError(aqa(['bench', 'train', '--shape', '16x10,64-512']), '--shape', "'16x10,64-512'");
  assertOneLineError(aqa(['bench', 'train', '--grad-cache', '0,four']), '--grad-cache', "'four'");
  assertOneLineError(aqa(['bench', 'train', '--runs', '0']), '--runs', "'0'");
});

test('aqa fuse: reciprocal rank fusion of two result files, metrics per run, one-line errors', () => {
  const dir = tmp();
  const a = join(dir, 'a.jsonl');
  const b = join(dir, 'b.jsonl');
  const q = join(dir, 'q.jsonl');
  // Question 1: run a ranks p1, p2; run b ranks p2, p3. Question 2: both rank p9 first.
  writeFileSync(a, '{"p1": 0.9, "p2": 0.5}\n{"p9": 0.7, "p8": 0.1}\n');
  writeFileSync(b, '{"p2": 12.0, "p3": 3.0}\n{"p9": 5.0}\n');
  writeFileSync(q, '{"question": "one", "body": "", "pids": ["p3"]}\n{"question": "two", "body": "", "pids": ["p9"]}\n');
  const out = join(dir, 'fused.jsonl');
  const r = aqa(['fuse', '--results', a, b, '--method', 'rrf', '--out', out, '--questions', q]);
  assert.equal(r.code, 0, r.stderr);
  const lines = readFileSync(out, 'utf8').trim().split('\n').map((l) => Object.entries(JSON.parse(l) as Record<string, number>));
  // RRF, k = 60, 1-based ranks, missing = 0 (worked by hand):
  //   q1: p2 = 1/62 + 1/61, p1 = 1/61, p3 = 1/62;  q2: p9 = 2/61, p8 = 1/62
  const expect = [
    [['p2', 1 / 62 + 1 / 61], ['p1', 1 / 61], ['p3', 1 / 62]],
    [['p9', 2 / 61], ['p8', 1 / 62]],
  ];
  assert.deepEqual(lines.map((l) => l.map(([p]) => p)), expect.map((l) => l.map(([p]) => p)));
  lines.flat().forEach(([, s], i) => assert.ok(Math.abs(s - (expect.flat()[i][1] as number)) < 1e-12, `score ${i}`));
  // Official MAP@20 by hand: q1 gold p3 at rank 3 -> 1/3; q2 gold p9 at rank 1 -> 1. Run a never finds p3.
  assert.match(r.stdout, new RegExp(`${a.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s+official MAP@20 0\\.5000`));
  assert.match(r.stdout, /fused\s+official MAP@20 0\.6667/);
  writeFileSync(b, '{"p2": 12.0}\n');
  assertOneLineError(aqa(['fuse', '--results', a, b, '--out', out]), b, '1 questions');
  assertOneLineError(aqa(['fuse', '--results', a, b, '--weights', '1,x', '--out', out]), '--weights', "'x'");
  assertOneLineError(aqa(['fuse', '--results', a, '--out', out]), 'at least two');
});
