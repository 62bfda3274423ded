// Multi-machine index builds: aqa index --shard i/n in three separate processes (one killed after
// a shard and resumed, one taking i from JOB_COMPLETION_INDEX), joined by aqa index merge, give
// the same pids.json, shard files and browser export as one `aqa index` process, and the same
// manifest but for build times; merge refuses mixed, missing, duplicate, unfinished or damaged
// parts with one line. Model: test/fixtures/tiny-bert (dim 32); corpus: 40 SciFact papers in
// shards of 4, so 10 shards and parts of 3, 3 and 4 shards.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { partShards, shardCount } from '../core/retrieval/index-format.ts';
import { mergeIndexParts } from '../node/index-merge.ts';
import { openIndex, readAllVectors } from '../node/index-store.ts';
import { parseShardSpec, resolveShard } from '../node/shard-option.ts';
import { assertOneLineError, runAqa, tempDir } from './helpers.ts';

const CORPUS = 'test/fixtures/index/corpus.json';
const BASE = ['index', '--model', 'test/fixtures/tiny-bert', '--corpus', CORPUS, '--shard-size', '4', '--max-length', '32', '--batch-size', '8'];

/** runAqa without blocking, so the parts run as concurrent processes. */
function runAqaAsync(args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((done) => {
    const p = spawn(process.execPath, ['node/bin.mjs', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    p.on('close', (code, signal) => done({ code, signal, stderr }));
  });
}

function files(dir: string): string[] {
  return readdirSync(dir).sort();
}

/** The manifest text with its build times blanked: the only bytes two identical builds differ in. */
function withoutTimes(text: string): string {
  return text.replace(/"(seconds|created|updated)": [^,\n]+/g, '"$1": -');
}

test('parts are whole shard files by position: every shard in exactly one part, in order', () => {
  for (const shards of [1, 2, 7, 10, 100, 9333]) {
    for (const n of [1, 2, 3, 7, 16, 101]) {
      let next = 0;
      for (let i = 0; i < n; i++) {
        const [a, b] = partShards(i, n, shards);
        assert.equal(a, next, `S=${shards} n=${n} part ${i}`);
        assert.ok(b >= a && b - a <= Math.ceil(shards / n));
        next = b;
      }
      assert.equal(next, shards);
    }
  }
  assert.deepEqual([0, 1, 2].map((i) => partShards(i, 3, shardCount(40, 4))), [[0, 3], [3, 6], [6, 10]]);
});

test('--shard i/n and auto/n: one rule for the part number, one-line errors', () => {
  assert.deepEqual(parseShardSpec('1/3'), { index: 1, of: 3 });
  assert.deepEqual(parseShardSpec('auto/3'), { index: 'auto', of: 3 });
  assert.throws(() => parseShardSpec('3'), /^Error: --shard: expected i\/n \(part i of n, 0 <= i < n\) or auto\/n \(i from JOB_COMPLETION_INDEX\), got '3'$/);
  assert.throws(() => parseShardSpec('3/3'), /--shard 3\/3: i must be below n \(parts are numbered 0 to 2\)/);
  assert.throws(() => parseShardSpec('1/0'), /--shard 1\/0: n must be a positive integer/);
  assert.throws(() => parseShardSpec('-1/3'), /--shard -1\/3: i must be an integer from 0 to 2, or auto/);
  assert.throws(() => parseShardSpec('a/b'), /--shard a\/b: n must be a positive integer/);
  const warnings: string[] = [];
  const warn = (l: string) => warnings.push(l);
  assert.deepEqual(resolveShard({ index: 'auto', of: 3 }, { JOB_COMPLETION_INDEX: '2' }, warn), { index: 2, of: 3 });
  assert.deepEqual(resolveShard({ index: 1, of: 3 }, {}, warn), { index: 1, of: 3 });
  assert.deepEqual(warnings, []);
  // An explicit i wins, but a different JOB_COMPLETION_INDEX is worth a warning: n pods would all build part i.
  assert.deepEqual(resolveShard({ index: 0, of: 3 }, { JOB_COMPLETION_INDEX: '2' }, warn), { index: 0, of: 3 });
  assert.match(warnings[0], /--shard 0\/3: JOB_COMPLETION_INDEX=2 is ignored \(use --shard auto\/3/);
  assert.throws(() => resolveShard({ index: 'auto', of: 3 }, {}, warn), /--shard auto\/3: JOB_COMPLETION_INDEX is not set \(a Kubernetes Indexed Job sets it\); give the part number, --shard i\/3/);
  assert.throws(() => resolveShard({ index: 'auto', of: 3 }, { JOB_COMPLETION_INDEX: '3' }, warn), /JOB_COMPLETION_INDEX=3 is not a part number from 0 to 2 \(completions must equal n\)/);
  assert.throws(() => resolveShard({ index: 'auto', of: 3 }, { JOB_COMPLETION_INDEX: 'x' }, warn), /JOB_COMPLETION_INDEX=x is not a part number/);
});

test('three aqa index --shard processes + aqa index merge = one aqa index process, byte for byte', async (t) => {
  const d = tempDir(t, 'index-shard');
  const at = (n: string) => join(d, n);
  // One machine, and the three parts, all at once: part 1 takes its number from
  // JOB_COMPLETION_INDEX as in a Kubernetes Indexed Job, part 2 is killed after its first shard.
  const [whole, p0, p1, p2killed] = await Promise.all([
    runAqaAsync([...BASE, '--out', at('whole'), '--export', at('whole-web')]),
    runAqaAsync([...BASE, '--out', at('p0'), '--shard', '0/3']),
    runAqaAsync([...BASE, '--out', at('p1'), '--shard', 'auto/3'], { JOB_COMPLETION_INDEX: '1' }),
    runAqaAsync([...BASE, '--out', at('p2'), '--shard', '2/3'], { AQA_INDEX_STOP_AFTER_SHARDS: '1' }),
  ]);
  for (const r of [whole, p0, p1]) assert.equal(r.code, 0, r.stderr);
  assert.match(p1.stderr, /part 1 of 3: shards \[3, 6\) of 10/);
  assert.deepEqual(files(at('p1')), ['manifest.json', 'pids.json', 'shard-00003.f16', 'shard-00004.f16', 'shard-00005.f16']);
  assert.equal(p2killed.signal, 'SIGKILL', p2killed.stderr);
  cpSync(at('p2'), at('p2-unfinished'), { recursive: true });

  // A part resumes after the last shard it listed.
  const p2 = runAqa([...BASE, '--out', at('p2'), '--shard', '2/3']);
  assert.equal(p2.code, 0, p2.stderr);
  assert.match(p2.stderr, /1 of 4 shards of part 2\/3 already built/);
  assert.match(p2.stderr, /indexed 12 passages/);
  // A part is not an index the readers accept.
  await assert.rejects(openIndex(at('p0')), /p0: part 0 of 3 of a multi-machine build, not a whole index; join the parts with aqa index merge/);

  const m = runAqa(['index', 'merge', at('p2'), at('p0'), at('p1'), '--out', at('merged'), '--export', at('merged-web')]);
  assert.equal(m.code, 0, m.stderr);
  assert.match(m.stderr, /merged 3 part\(s\): 10 shards, 40 x 32 f16/);

  // Same files, same bytes; the manifest differs only in build times (per-shard seconds,
  // created, updated), which differ between any two builds, one machine or not.
  assert.deepEqual(files(at('merged')), files(at('whole')));
  for (const f of files(at('whole'))) {
    const [a, b] = [readFileSync(join(at('whole'), f), 'utf8'), readFileSync(join(at('merged'), f), 'utf8')];
    if (f === 'manifest.json') assert.equal(withoutTimes(b), withoutTimes(a));
    else assert.ok(readFileSync(join(at('whole'), f)).equals(readFileSync(join(at('merged'), f))), `${f} differs`);
  }
  // The browser export has no build times: identical in full.
  assert.deepEqual(files(at('merged-web')), files(at('whole-web')));
  for (const f of files(at('whole-web'))) assert.ok(readFileSync(join(at('whole-web'), f)).equals(readFileSync(join(at('merged-web'), f))), `export ${f} differs`);

  // Merging the same parts again gives the same bytes, manifest included.
  await mergeIndexParts([at('p0'), at('p1'), at('p2')], at('merged2'));
  for (const f of files(at('merged'))) assert.ok(readFileSync(join(at('merged'), f)).equals(readFileSync(join(at('merged2'), f))), `${f} differs`);
  // A normal index: the one-machine command finds it up to date, the readers read it.
  const again = runAqa([...BASE, '--out', at('merged')]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /up to date \(10 shards, 40 passages\)/);
  assert.deepEqual(await readAllVectors(await openIndex(at('merged'))), await readAllVectors(await openIndex(at('whole'))));

  // ---- refusals: one line each, naming the directory and what to do ----
  const merge = (dirs: string[], out = at('out')) => mergeIndexParts(dirs.map(at), out);
  assertOneLineError(runAqa(['index', 'merge', at('p0'), at('p1'), '--out', at('out')]), 'missing part 2 of 3; build it with aqa index --shard i/3');
  await assert.rejects(merge(['p0']), /missing parts 1, 2 of 3; build them/);
  cpSync(at('p1'), at('p1-copy'), { recursive: true });
  await assert.rejects(merge(['p0', 'p1', 'p1-copy', 'p2']), /duplicate part 1 of 3: .*p1 and .*p1-copy/);
  await assert.rejects(merge(['p0', 'p1', 'p2-unfinished']), /p2-unfinished: part 2 of 3 is unfinished \(1 of 4 shards\); run its aqa index --shard 2\/3 command again to finish it/);
  // A part built with another model (its weights hash) or settings.
  const other = at('p1-other');
  cpSync(at('p1'), other, { recursive: true });
  const mf = join(other, 'manifest.json');
  writeFileSync(mf, readFileSync(mf, 'utf8').replace(/"weightsHash": "[0-9a-f]{64}"/, `"weightsHash": "${'a'.repeat(64)}"`));
  await assert.rejects(merge(['p0', 'p1-other', 'p2']), /p1-other: built with another model, settings or corpus than .*p0 \(weightsHash: [0-9a-f]{12} vs aaaaaaaaaaaa\); build every part with the same aqa index command/);
  await assert.rejects(merge(['p0', 'whole']), /whole: a whole index, not a part \(built without --shard\)/);
  await assert.rejects(merge(['p0', 'nowhere']), /nowhere: no such directory \(expected a part built by aqa index --shard i\/n\)/);
  await assert.rejects(merge(['p0', 'p1', 'p2'], at('merged')), /--out .*merged: exists and is not empty; merge into a new directory/);
  // A damaged shard file: found by its sha256, and nothing is left at --out.
  const shard = join(at('p1-copy'), 'shard-00004.f16');
  const bytes = readFileSync(shard);
  bytes[0] ^= 1;
  writeFileSync(shard, bytes);
  await assert.rejects(merge(['p0', 'p1-copy', 'p2']), /p1-copy\/shard-00004\.f16: contents differ from .*manifest\.json; rerun aqa index --shard 1\/3/);
  assert.ok(!files(d).some((f) => f.startsWith('.out') || f === 'out'), files(d).join(' '));
  rmSync(at('p1-copy'), { recursive: true });

  // --shard errors through the command line; the same part in another directory's place is refused like other settings.
  assertOneLineError(runAqa([...BASE, '--out', at('x'), '--shard', 'auto/3'], { JOB_COMPLETION_INDEX: '' }), 'JOB_COMPLETION_INDEX is not set');
  assertOneLineError(runAqa([...BASE, '--out', at('x'), '--shard', '0/3', '--export', at('x-web')]), '--export needs the whole index');
  assertOneLineError(runAqa([...BASE, '--out', at('p0'), '--shard', '1/3']), 'p0: holds an index built with other settings (part: 0/3 vs 1/3)', '--force');
});
