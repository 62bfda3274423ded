// Hard-negative mining: negatives come from the asked ranking positions, never gold, the same for
// the same seed; short ranges are topped up; the command writes groups the pairs reader accepts.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseGroupLine, type TrainPair } from '../core/data/pairs.ts';
import { queryText } from '../core/data/clean.ts';
import { loadEmbeddingModel } from '../core/retrieval/embed.ts';
import { readPassages, readQuestions } from '../node/data.ts';
import { localModelFiles } from '../node/files.ts';
import { runMine } from '../node/mine-command.ts';
import { buildIndex, describeModel, openIndex, readAllVectors } from '../node/index-store.ts';
import { mineHardNegatives, parseRange, sample } from '../core/retrieval/mine.ts';
import { tempDir, testGpu } from './helpers.ts';

const TINY = 'test/fixtures/tiny-bert';
const CORPUS = 'test/fixtures/index/corpus.json';
const QUESTIONS = 'test/fixtures/index/questions.jsonl';

// A synthetic corpus of 300 pids; question q ranks them in an order of its own.
const POOL = Array.from({ length: 300 }, (_, i) => `p${i}`);
function rankingOf(q: number): string[] {
  return POOL.map((_, i) => POOL[(i * 7 + q * 31) % 300]);
}
const PAIRS: TrainPair[] = [
  { query: 'q0', pid: rankingOf(0)[12], question: 0 }, // gold inside the range
  { query: 'q0', pid: rankingOf(0)[3], question: 0 }, // gold above the range
  { query: 'q1', pid: rankingOf(1)[0], question: 1 },
  { query: 'q2', pid: rankingOf(2)[250], question: 2 }, // gold below the range
];

test('parseRange and sample', () => {
  assert.deepEqual(parseRange('10-210'), [10, 210]);
  assert.deepEqual(parseRange(' 0 - 5 '), [0, 5]);
  assert.throws(() => parseRange('210-10'), /END must be greater than START/);
  assert.throws(() => parseRange('10:210'), /expected START-END like 10-210/);
  let x = 0;
  const r = () => ((x = (x * 9301 + 49297) % 233280), x / 233280);
  const s = sample([1, 2, 3, 4, 5, 6], 4, r);
  assert.equal(new Set(s).size, 4);
  assert.deepEqual(sample([1, 2], 5, r).sort(), [1, 2]);
});

test('mined negatives: positions [10, 210) of the ranking, no gold of the question, 15 per group, seeded', () => {
  const { groups, stats } = mineHardNegatives(PAIRS, rankingOf, POOL, { range: [10, 210], negatives: 15, seed: 7 });
  assert.equal(groups.length, 4, 'one group per pair');
  const gold = new Map<number, Set<string>>();
  for (const p of PAIRS) gold.set(p.question, (gold.get(p.question) ?? new Set()).add(p.pid));
  groups.forEach((g, i) => {
    const q = PAIRS[i].question;
    assert.deepEqual(g.pos, [PAIRS[i].pid]);
    assert.equal(g.neg.length, 15);
    assert.equal(new Set(g.neg).size, 15, 'no repeats');
    for (const pid of g.neg) {
      const rank = rankingOf(q).indexOf(pid);
      assert.ok(rank >= 10 && rank < 210, `group ${i}: ${pid} at position ${rank}`);
      assert.ok(!gold.get(q)!.has(pid), `group ${i}: gold ${pid} as a negative`);
    }
  });
  // Question 0's gold at position 12 is met in both of its groups' ranges and skipped.
  assert.equal(stats.goldInRange, 2);
  assert.equal(stats.hard, 60);
  assert.equal(stats.toppedUp, 0);
  // Same seed, same groups; another seed, other samples.
  assert.deepEqual(mineHardNegatives(PAIRS, rankingOf, POOL, { range: [10, 210], negatives: 15, seed: 7 }).groups, groups);
  const other = mineHardNegatives(PAIRS, rankingOf, POOL, { range: [10, 210], negatives: 15, seed: 8 }).groups;
  assert.notDeepEqual(other, groups);
  // Not simply the first 15 of the range: sampled across it.
  assert.ok(groups.some((g, i) => g.neg.some((pid) => rankingOf(PAIRS[i].question).indexOf(pid) >= 25)));
});

test('mined negatives: a short range is topped up with random non-gold papers; per-question groups; query-equal passages dropped', () => {
  const { groups, stats } = mineHardNegatives(PAIRS, rankingOf, POOL, { range: [0, 8], negatives: 10, seed: 1, per: 'question' });
  assert.equal(groups.length, 3, 'one group per question');
  assert.deepEqual(new Set(groups[0].pos), new Set([PAIRS[0].pid, PAIRS[1].pid]));
  // Positions 0-7 hold question 0's gold (position 3) and question 1's (position 0): 7
  // candidates + 3 random papers each; question 2's gold is at 250: 8 + 2.
  assert.equal(stats.hard, 7 + 7 + 8);
  assert.equal(stats.toppedUp, 3 + 3 + 2);
  assert.equal(stats.groupsToppedUp, 3);
  groups.forEach((g, i) => {
    assert.equal(g.neg.length, 10);
    assert.equal(new Set(g.neg).size, 10);
    for (const pid of g.neg) assert.ok(!g.pos.includes(pid));
    // The mined part comes first, from positions 0-7.
    const mined = i === 2 ? 8 : 7;
    for (const pid of g.neg.slice(0, mined)) assert.ok(rankingOf(i).indexOf(pid) < 8);
  });
  const texts = (pid: string) => (pid === rankingOf(1)[20] ? 'q1' : `text of ${pid}`);
  const r = mineHardNegatives(PAIRS, rankingOf, POOL, { range: [20, 21], negatives: 1, seed: 1, passage: texts });
  assert.equal(r.stats.sameAsQuery, 1);
  assert.notEqual(r.groups[2].neg[0], rankingOf(1)[20]);
});

test('aqa mine on a tiny-bert index: negatives from the retrieval positions, never gold, deterministic per seed; --random', async (t) => {
  const d = tempDir(t, 'mine');
  const out = join(d, 'idx');
  const gpu = await testGpu();
  const desc = await describeModel(TINY, TINY);
  const model = await loadEmbeddingModel(gpu, localModelFiles(TINY), TINY);
  await buildIndex({ out, corpus: CORPUS, model: desc, loadModel: async () => model, shardSize: 16 });
  const index = await openIndex(out);
  const { questions } = await readQuestions(QUESTIONS);

  const opts = { index: out, questions: QUESTIONS, range: [2, 30] as [number, number], negatives: 5, seed: 42, random: false, per: 'pair' as const, batchSize: 32, gpu: {} };
  await runMine({ ...opts, out: join(d, 'a.jsonl') });
  await runMine({ ...opts, out: join(d, 'b.jsonl') });
  await runMine({ ...opts, out: join(d, 'c.jsonl'), seed: 43 });
  const a = readFileSync(join(d, 'a.jsonl'), 'utf8');
  assert.equal(a, readFileSync(join(d, 'b.jsonl'), 'utf8'), 'same seed, same file');
  assert.notEqual(a, readFileSync(join(d, 'c.jsonl'), 'utf8'));

  // The ranking each question gets: the same query embedding against the stored vectors.
  const q = await model.embed(questions.map((x) => queryText(x)), { query: true, batchSize: 32, maxLength: desc.maxLength });
  const vectors = await readAllVectors(index);
  const ranking = (i: number) => {
    const s = index.pids.map((_, r) => {
      let dot = 0;
      for (let h = 0; h < 32; h++) dot += q[i * 32 + h] * vectors[r * 32 + h];
      return dot;
    });
    return s.map((_, r) => r).sort((x, y) => s[y] - s[x] || x - y).map((r) => index.pids[r]);
  };
  const { passages } = await readPassages(CORPUS);
  const lines = a.trim().split('\n');
  assert.equal(lines.length, 23, 'one group per (question, gold pid)');
  let li = 0;
  questions.forEach((qq, i) => {
    const rank = ranking(i);
    for (const pid of qq.pids!) {
      const raw = JSON.parse(lines[li]);
      const g = parseGroupLine(lines[li], `a.jsonl:${li + 1}`);
      li++;
      assert.equal(g.query, queryText(qq));
      assert.deepEqual(raw.pos_pids, [pid]);
      assert.equal(raw.neg_pids.length, 5);
      for (const n of raw.neg_pids as string[]) {
        const pos = rank.indexOf(n);
        assert.ok(pos >= 2 && pos < 30, `question ${i + 1}: ${n} at position ${pos}`);
        assert.ok(!qq.pids!.includes(n), `question ${i + 1}: gold ${n} mined as a negative`);
      }
      assert.deepEqual(g.neg, (raw.neg_pids as string[]).map((p) => passages.texts[passages.index.get(p)!]));
      assert.deepEqual(g.pos, [passages.texts[passages.index.get(pid)!]]);
    }
  });

  await runMine({ ...opts, random: true, negatives: 9, out: join(d, 'r.jsonl') });
  const rl = readFileSync(join(d, 'r.jsonl'), 'utf8').trim().split('\n');
  assert.equal(rl.length, 23);
  for (const l of rl) {
    const raw = JSON.parse(l);
    assert.equal(raw.neg_pids.length, 9);
    for (const n of raw.neg_pids) assert.ok(!raw.pos_pids.includes(n));
  }
  model.dispose();

  await assert.rejects(runMine({ ...opts, out: join(d, 'x.jsonl'), corpus: 'test/fixtures/data/corpus.json' }), /corpus\.json: not the corpus .* was built from \(sha256 differs\)/);
  await assert.rejects(runMine({ ...opts, out: join(d, 'x.jsonl'), range: [10, 2000] }), /--range end: 2000 is more than the 1024 results/);
  await assert.rejects(runMine({ ...opts, out: join(d, 'x.jsonl'), questions: 'test/fixtures/data/questions-bad.jsonl' }), /questions-bad\.jsonl:2: question: missing/);
});
