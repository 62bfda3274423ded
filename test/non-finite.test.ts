// A non-finite embedding (NaN or an infinity) is never written: `aqa embed` and `aqa index`
// refuse with one line naming the text or pid, and leave no output file behind.
//
// The command-line cases use a copy of tiny-bert whose embedding LayerNorm weight is 3e38:
// finite, so it passes any load-time check of the weights, but the first LayerNorm's output
// overflows to infinity and the embeddings come out NaN, as a diverged fine-tune's would.

import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { firstNonFiniteRow } from '../core/retrieval/embed.ts';
import { buildIndex, describeModel } from '../node/index-store.ts';
import { runAqa, assertOneLineError } from './helpers.ts';

const TINY = 'test/fixtures/tiny-bert';
const CORPUS = 'test/fixtures/index/corpus.json';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'aqa-nonfinite-'));
  dirs.push(d);
  return d;
}

/** A copy of tiny-bert with every embedding LayerNorm weight set to 3e38 (finite; overflows in the forward). */
function overflowingModel(d: string): string {
  const dir = join(d, 'model');
  cpSync(TINY, dir, { recursive: true });
  const path = join(dir, 'model.safetensors');
  const bytes = readFileSync(path);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; data_offsets: [number, number] }>;
  const t = header['embeddings.LayerNorm.weight'];
  assert.equal(t.dtype, 'F32');
  for (let o = t.data_offsets[0]; o < t.data_offsets[1]; o += 4) bytes.writeFloatLE(3e38, 8 + n + o);
  writeFileSync(path, bytes);
  return dir;
}

test('firstNonFiniteRow: the first row holding a NaN or an infinity, -1 when all are finite', () => {
  const v = new Float32Array(12).fill(0.5);
  assert.equal(firstNonFiniteRow(v, 3), -1);
  v[10] = Infinity;
  assert.equal(firstNonFiniteRow(v, 3), 3);
  v[4] = NaN;
  assert.equal(firstNonFiniteRow(v, 3), 1);
  v[0] = -Infinity;
  assert.equal(firstNonFiniteRow(v, 3), 0);
  assert.equal(firstNonFiniteRow(new Float32Array(0), 3), -1);
});

test('buildIndex: a NaN embedding stops the build naming the pid; no shard is written or listed', async () => {
  const d = tmp();
  const out = join(d, 'idx');
  const desc = await describeModel(TINY, TINY);
  let calls = 0;
  const loadModel = async () => ({
    dim: desc.dim,
    embed: async (texts: string[]) => {
      const v = new Float32Array(texts.length * desc.dim).fill(0.1);
      // the second shard's third passage (row 18 of the corpus)
      if (++calls === 2) v[2 * desc.dim + 5] = NaN;
      return v;
    },
  });
  await assert.rejects(buildIndex({ out, corpus: CORPUS, model: desc, loadModel, shardSize: 16 }), (e: Error) => {
    const pids = Object.keys(JSON.parse(readFileSync(CORPUS, 'utf8')));
    assert.match(e.message, new RegExp(`pid ${pids[18]}\\b`));
    assert.match(e.message, /not finite/);
    return true;
  });
  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
  assert.deepEqual(
    manifest.shards.map((s: { file: string }) => s.file),
    ['shard-00000.f16'],
  );
  assert.deepEqual(readdirSync(out).filter((f) => f.startsWith('shard-') || f.endsWith('.tmp')), ['shard-00000.f16']);
});

test('aqa embed and aqa index refuse a model whose embeddings overflow, and write nothing', () => {
  const d = tmp();
  const model = overflowingModel(d);
  writeFileSync(join(d, 'in.txt'), 'a first text\nthe second text\n');
  const npy = join(d, 'o.npy');
  assertOneLineError(runAqa(['embed', '--model', model, '--input', join(d, 'in.txt'), '--out', npy]), 'in.txt', 'text 1', 'not finite');
  assert.ok(!existsSync(npy), 'no .npy written');
  assert.ok(!existsSync(join(d, 'o.json')), 'no sidecar written');
  assert.deepEqual(readdirSync(d).sort(), ['in.txt', 'model'], 'no temp files left');

  const out = join(d, 'idx');
  assertOneLineError(runAqa(['index', '--model', model, '--corpus', CORPUS, '--out', out, '--shard-size', '16', '--batch-size', '8']), 'pid ', 'not finite');
  assert.deepEqual(
    readdirSync(out).filter((f) => f.startsWith('shard-') || f.endsWith('.tmp')),
    [],
    'no shard written',
  );
});
