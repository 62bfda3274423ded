// The `aqa` command line as a user meets it: real processes, real files. User errors must be
// one line on stderr naming the file (and line/field or tensor), with exit code 1 and no stack.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { copyFileSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { readNpy } from '../node/npy.ts';
import { formatDuration, lineProgress } from '../node/progress.ts';
import { filterLines, isDawnNoise } from '../node/stderr-filter.mjs';
import { tempDir, runAqa, assertOneLineError } from './helpers.ts';

const TINY = 'test/fixtures/tiny-bert';

function tmp(t: TestContext): string {
  return tempDir(t, 'cli');
}

test('embed writes an .npy of unit vectors and a JSON sidecar; invalid UTF-8, empty and very long texts are handled', (t) => {
  const d = tmp(t);
  const input = join(d, 'in.txt');
  const long = 'transformer '.repeat(50_000); // 600 kB: truncated to the model's 64 positions
  writeFileSync(input, Buffer.concat([Buffer.from(`hello world\n\n${long}\nbad `), Buffer.from([0xff, 0xfe]), Buffer.from(' bytes\n')]));
  const out = join(d, 'out.npy');
  const r = runAqa(['embed', '--model', TINY, '--input', input, '--out', out]);
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

test('embed: malformed JSONL names file and line; missing field names the field', (t) => {
  const d = tmp(t);
  const bad = join(d, 'q.jsonl');
  writeFileSync(bad, '{"text": "ok"}\n{"text": "broken"\n');
  assertOneLineError(runAqa(['embed', '--model', TINY, '--input', bad, '--out', join(d, 'o.npy')]), 'q.jsonl:2', 'malformed JSON');
  writeFileSync(bad, '{"text": "ok"}\n{"title": "no text"}\n');
  assertOneLineError(runAqa(['embed', '--model', TINY, '--input', bad, '--out', join(d, 'o.npy')]), 'q.jsonl:2', "field 'text' is missing");
  writeFileSync(bad, '{"text": 5}\n');
  assertOneLineError(runAqa(['embed', '--model', TINY, '--input', bad, '--out', join(d, 'o.npy')]), 'q.jsonl:1', 'not a string');
});

test('embed: missing input, unknown input type and missing model are one-line errors', (t) => {
  const d = tmp(t);
  assertOneLineError(runAqa(['embed', '--model', TINY, '--input', join(d, 'nope.txt'), '--out', join(d, 'o.npy')]), 'nope.txt', 'cannot read');
  writeFileSync(join(d, 'x.csv'), 'a,b\n');
  assertOneLineError(runAqa(['embed', '--model', TINY, '--input', join(d, 'x.csv'), '--out', join(d, 'o.npy')]), 'x.csv', 'unsupported input type');
  writeFileSync(join(d, 'in.txt'), 'hello\n');
  assertOneLineError(runAqa(['embed', '--model', join(d, 'no-such-model'), '--input', join(d, 'in.txt'), '--out', join(d, 'o.npy')], { HF_HUB_OFFLINE: '1' }), 'no-such-model');
});

test('embed: a corrupt checkpoint is a one-line error naming the file and tensor', (t) => {
  const d = tmp(t);
  const model = join(d, 'model');
  // a copy of tiny-bert whose safetensors header promises more bytes than the file has
  spawnSync('cp', ['-r', TINY, model]);
  const st = readFileSync(join(model, 'model.safetensors'));
  writeFileSync(join(model, 'model.safetensors'), st.subarray(0, st.length - 1000));
  writeFileSync(join(d, 'in.txt'), 'hello\n');
  const r = runAqa(['embed', '--model', model, '--input', join(d, 'in.txt'), '--out', join(d, 'o.npy')]);
  assertOneLineError(r, 'model.safetensors', "tensor '");
  // and an unsupported architecture is named as such
  const cfg = JSON.parse(readFileSync(join(TINY, 'config.json'), 'utf8'));
  copyFileSync(join(TINY, 'model.safetensors'), join(model, 'model.safetensors'));
  writeFileSync(join(model, 'config.json'), JSON.stringify({ ...cfg, model_type: 'gpt2' }));
  assertOneLineError(runAqa(['embed', '--model', model, '--input', join(d, 'in.txt'), '--out', join(d, 'o.npy')]), "unsupported architecture 'gpt2'");
});

test('no matching adapter is a clear one-line error', () => {
  const r = runAqa(['info'], { AQA_ADAPTER: 'no-such-gpu-xyz' });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /aqa: no adapter matches 'no-such-gpu-xyz'; available: /);
});

test('bench: malformed --shapes and --sizes are one-line errors naming the bad item', () => {
  assertOneLineError(runAqa(['bench', 'embed', '--shapes', '32x128,32by256']), '--shapes', "'32by256'");
  assertOneLineError(runAqa(['bench', 'matmul', '--sizes', '256,-1']), '--sizes', "'-1'");
  assertOneLineError(runAqa(['bench', 'train', '--shape', '16x10,64-512']), '--shape', "'16x10,64-512'");
  assertOneLineError(runAqa(['bench', 'train', '--grad-cache', '0,four']), '--grad-cache', "'four'");
  assertOneLineError(runAqa(['bench', 'train', '--runs', '0']), '--runs', "'0'");
});

test('aqa fuse: reciprocal rank fusion of two result files, metrics per run, one-line errors', (t) => {
  const dir = tmp(t);
  const a = join(dir, 'a.jsonl');
  const b = join(dir, 'b.jsonl');
  const q = join(dir, 'q.jsonl');
  // Question 1: run a ranks p1, p2; run b ranks p2, p3. Question 2: both rank p9 first.
  writeFileSync(a, '{"p1": 0.9, "p2": 0.5}\n{"p9": 0.7, "p8": 0.1}\n');
  writeFileSync(b, '{"p2": 12.0, "p3": 3.0}\n{"p9": 5.0}\n');
  writeFileSync(q, '{"question": "one", "body": "", "pids": ["p3"]}\n{"question": "two", "body": "", "pids": ["p9"]}\n');
  const out = join(dir, 'fused.jsonl');
  const r = runAqa(['fuse', '--results', a, b, '--method', 'rrf', '--out', out, '--questions', q]);
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
  assertOneLineError(runAqa(['fuse', '--results', a, b, '--out', out]), b, '1 questions');
  assertOneLineError(runAqa(['fuse', '--results', a, b, '--weights', '1,x', '--out', out]), '--weights', "'x'");
  assertOneLineError(runAqa(['fuse', '--results', a, '--out', out]), 'at least two');
});

test('aqa fuse: a --questions file with another question count fails before anything is written', (t) => {
  const dir = tmp(t);
  const a = join(dir, 'a.jsonl');
  const b = join(dir, 'b.jsonl');
  const q = join(dir, 'q.jsonl');
  writeFileSync(a, '{"p1": 0.9}\n{"p9": 0.7}\n');
  writeFileSync(b, '{"p2": 12.0}\n{"p9": 5.0}\n');
  writeFileSync(q, '{"question": "one", "body": "", "pids": ["p3"]}\n{"question": "two", "body": "", "pids": ["p9"]}\n{"question": "three", "body": "", "pids": ["p1"]}\n');
  const out = join(dir, 'fused.jsonl');
  assertOneLineError(runAqa(['fuse', '--results', a, b, '--out', out, '--questions', q]), 'q.jsonl', '3 questions', '2 lines');
  assert.ok(!existsSync(out), 'the fused file was written before the question count was checked');
  // and a missing --out folder is created, as in the other commands
  const nested = join(dir, 'new', 'fused.jsonl');
  const r = runAqa(['fuse', '--results', a, b, '--out', nested]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(existsSync(nested));
});

test('aqa fuse: an infinite score (1e400) is refused naming file, line and pid', (t) => {
  const dir = tmp(t);
  const a = join(dir, 'a.jsonl');
  const b = join(dir, 'b.jsonl');
  writeFileSync(a, '{"p1": 0.9, "p2": 0.5}\n{"p9": 0.7, "p8": 0.1}\n');
  writeFileSync(b, '{"p2": 12.0, "p3": 3.0}\n{"p9": 1e400, "p8": 5.0}\n');
  const out = join(dir, 'fused.jsonl');
  assertOneLineError(runAqa(['fuse', '--results', a, b, '--out', out]), 'b.jsonl:2', 'p9', 'not a finite number');
  writeFileSync(b, '{"p2": 12.0, "p3": -1e999}\n{"p9": 1, "p8": 5.0}\n');
  assertOneLineError(runAqa(['fuse', '--results', a, b, '--out', out]), 'b.jsonl:1', 'p3', 'not a finite number');
  assert.ok(!existsSync(out));
});

test('embed: a missing --out folder is created first; one that cannot be is an error before any work', (t) => {
  const d = tmp(t);
  writeFileSync(join(d, 'in.txt'), 'hello\n');
  const nested = join(d, 'new', 'deeper', 'o.npy');
  const ok = runAqa(['embed', '--model', TINY, '--input', join(d, 'in.txt'), '--out', nested]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.ok(existsSync(nested) && existsSync(join(d, 'new', 'deeper', 'o.json')));
  // a regular file where a folder should be: named in one line, before the model or GPU is touched
  writeFileSync(join(d, 'file'), 'x');
  const r = runAqa(['embed', '--model', TINY, '--input', join(d, 'in.txt'), '--out', join(d, 'file', 'o.npy')]);
  assertOneLineError(r, join(d, 'file'), '--out');
  assert.ok(!r.stderr.includes('adapter:') && !r.stderr.includes('.tmp'), r.stderr);
});

/** One tiny-bert index of the 40-paper fixture corpus, built once for the search tests below. */
let sharedIndex: string | null = null;
function tinyIndex(): string {
  if (sharedIndex) return sharedIndex;
  const d = tempDir({ after: (fn: () => void) => process.on('exit', fn) }, 'cli-index'); // removed when the file's tests end
  const out = join(d, 'idx');
  const r = runAqa(['index', '--model', TINY, '--corpus', 'test/fixtures/index/corpus.json', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  sharedIndex = out;
  return out;
}

test('search: a missing --out folder is created first; one that cannot be is an error before any work', (t) => {
  const d = tmp(t);
  const index = tinyIndex();
  const nested = join(d, 'new', 'r.jsonl');
  const ok = runAqa(['search', '--index', index, '--questions', 'test/fixtures/index/questions.jsonl', '--out', nested, '--k', '5']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(readFileSync(nested, 'utf8').trim().split('\n').length, 20);
  writeFileSync(join(d, 'file'), 'x');
  const r = runAqa(['search', '--index', index, '--questions', 'test/fixtures/index/questions.jsonl', '--out', join(d, 'file', 'r.jsonl')]);
  assertOneLineError(r, join(d, 'file'), '--out');
  assert.ok(!r.stderr.includes('adapter:') && !r.stderr.includes('.tmp'), r.stderr);
});

test('search and mine warn about empty questions', (t) => {
  const d = tmp(t);
  const index = tinyIndex();
  const qs = join(d, 'q.jsonl');
  const lines = readFileSync('test/fixtures/index/questions.jsonl', 'utf8').trim().split('\n');
  const gold = (JSON.parse(lines[0]) as { pids: string[] }).pids;
  writeFileSync(qs, `${lines[0]}\n{"question": "  ", "body": "<p></p>", "pids": ${JSON.stringify(gold)}}\n`);
  const s = runAqa(['search', '--index', index, '--questions', qs, '--out', join(d, 'r.jsonl'), '--k', '5']);
  assert.equal(s.code, 0, s.stderr);
  assert.match(s.stderr, /warning: .*q\.jsonl: 1 empty question\(s\) \(question 2\)/);
  const m = runAqa(['mine', '--index', index, '--questions', qs, '--out', join(d, 'g.jsonl'), '--range', '1-10', '--negatives', '2']);
  assert.equal(m.code, 0, m.stderr);
  assert.match(m.stderr, /warning: .*q\.jsonl: 1 empty question\(s\) \(question 2\)/);
});

test('search: a .txt question file holds one question per line; --show prints titles', (t) => {
  const d = tmp(t);
  const index = tinyIndex();
  const qs = join(d, 'q.txt');
  writeFileSync(qs, 'what do vitamins do\nhow do cells divide\n');
  const out = join(d, 'r.jsonl');
  const r = runAqa(['search', '--index', index, '--questions', qs, '--out', out, '--k', '5', '--show', '2']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(readFileSync(out, 'utf8').trim().split('\n').length, 2);
  // two rows per question, each with rank, score, pid and the paper's title from the corpus
  const corpus = JSON.parse(readFileSync('test/fixtures/index/corpus.json', 'utf8')) as Record<string, { title: string }>;
  const first = Object.keys(JSON.parse(readFileSync(out, 'utf8').split('\n')[0]) as Record<string, number>)[0];
  assert.ok(r.stdout.includes('what do vitamins do'), r.stdout);
  assert.ok(r.stdout.includes(first) && r.stdout.includes(corpus[first].title.slice(0, 40)), r.stdout);
  const rows = r.stdout.split('\n').filter((l) => /^\s*[12]\s+-?\d+\.\d+\s+\d+\s/.test(l));
  assert.equal(rows.length, 4, r.stdout);
  // an AQA question file named .txt (as the AQA release names them) is still JSONL with gold pids
  const aqaTxt = join(d, 'qa_valid.txt');
  copyFileSync('test/fixtures/index/questions.jsonl', aqaTxt);
  const judged = runAqa(['search', '--index', index, '--questions', aqaTxt, '--out', out, '--k', '5']);
  assert.equal(judged.code, 0, judged.stderr);
  assert.match(judged.stdout, /official MAP@20 .*\(n=20\)/);
  // without --show and not on a terminal: no table
  const quiet = runAqa(['search', '--index', index, '--questions', qs, '--out', out, '--k', '5']);
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.equal(quiet.stdout, '');
  assertOneLineError(runAqa(['mine', '--index', index, '--questions', qs, '--out', join(d, 'g.jsonl')]), 'q.txt', 'no gold pids');
});

test("Dawn's harmless limit warnings are filtered from stderr; other lines pass", async () => {
  const raw = runAqa(['info'], { AQA_RAW_STDERR: '1' });
  const r = runAqa(['info']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!r.stderr.includes('artificially reduced'), r.stderr);
  // Where Dawn prints them at all (llvmpipe does, twice per start), raw mode still shows them.
  if (process.env.AQA_ADAPTER === undefined && /llvmpipe/.test(r.stdout)) assert.match(raw.stderr, /artificially reduced/);
  assert.equal(raw.stdout, r.stdout);

  const noise = 'Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.';
  assert.ok(isDawnNoise(noise));
  assert.ok(isDawnNoise(noise.replace('Uniform', 'Storage')));
  assert.ok(!isDawnNoise('Warning: maxStorageBufferBindingSize artificially reduced from 1 to 2.'));
  const input = new PassThrough();
  const output = new PassThrough();
  let text = '';
  output.on('data', (c: Buffer) => (text += c.toString()));
  const done = filterLines(input, output);
  input.write(`${noise}\nWarning: some`);
  input.end(` other warning\n${noise}\nError: a real error`);
  await done;
  assert.equal(text, 'Warning: some other warning\nError: a real error');
});

test('progress without a terminal: a line every 5 s with done/total, the rate after the warm-up batch, and ETA', () => {
  let t = 0;
  const lines: string[] = [];
  const stream = { isTTY: false, write: (s: string) => lines.push(s) } as unknown as NodeJS.WritableStream;
  const p = lineProgress({ label: 'indexing', unit: 'passages', total: 3600, start: 400, stream, now: () => t });
  // The first batch (warm-up: 32 passages in 30 s): its own rate, the only one known yet.
  t = 30_000;
  p.update(432, 'shard 1/2');
  assert.deepEqual(lines, ['indexing: 432/3600 passages (12%), 1.07 passages/s, ETA 49m30s, shard 1/2\n']);
  // Then 2 passages/s: 40 s later 80 more, and the rate counts from the end of the warm-up.
  t = 70_000;
  p.update(512, 'shard 1/2');
  assert.equal(lines[1], 'indexing: 512/3600 passages (14%), 2.00 passages/s, ETA 25m44s, shard 1/2\n');
  t = 72_000;
  p.update(516);
  assert.equal(lines.length, 2, 'a line within 5 s of the last');
  t = 76_000;
  p.update(524);
  assert.equal(lines[2], 'indexing: 524/3600 passages (14%), 2.00 passages/s, ETA 25m38s\n');
  // Finished: the command prints its own summary.
  t = 2_000_000;
  p.update(3600);
  assert.equal(lines.length, 3);
  assert.deepEqual([formatDuration(42), formatDuration(185), formatDuration(7620), formatDuration(Infinity)], ['42s', '3m05s', '2h07m', '-']);
});
