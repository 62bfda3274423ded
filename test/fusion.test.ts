// Fusion methods on a hand-computed two-run example, deterministic ties, and weight tuning on a
// case whose optimum is worked out by hand.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fuse, fuseRuns, normalizeScores, splitIndices, tuneWeights, weightGrid } from '../core/retrieval/fusion.ts';
import { rankPids, type ScoreMap } from '../core/retrieval/results.ts';

const m = (o: Record<string, number>): ScoreMap => new Map(Object.entries(o));
// Values below are sums/quotients of a few doubles: exact to a few ulp; 1e-12 is far below any
// difference a wrong formula would make (the smallest gap in these cases is 1/61 - 1/62 = 2.6e-4).
const close = (a: number | undefined, b: number, what: string) => assert.ok(a !== undefined && Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);

// One question, two runs:
//   A = {a: 0.9, b: 0.8, c: 0.4}
//   B = {b: 0.7, d: 0.6}
const A = m({ a: 0.9, b: 0.8, c: 0.4 });
const B = m({ b: 0.7, d: 0.6 });

test('sum (the original): raw scores added, missing = 0', () => {
  const f = fuse([A, B]);
  // a = 0.9, b = 0.8 + 0.7 = 1.5, c = 0.4, d = 0.6
  close(f.get('a'), 0.9, 'a');
  close(f.get('b'), 1.5, 'b');
  close(f.get('c'), 0.4, 'c');
  close(f.get('d'), 0.6, 'd');
  assert.deepEqual(rankPids(f), ['b', 'a', 'd', 'c']);
  // weights [1, 3]: b = 0.8 + 2.1 = 2.9, d = 1.8, a = 0.9, c = 0.4
  const w = fuse([A, B], { weights: [1, 3] });
  close(w.get('b'), 2.9, 'weighted b');
  close(w.get('d'), 1.8, 'weighted d');
  assert.deepEqual(rankPids(w), ['b', 'd', 'a', 'c']);
});

test('zscore: per-question standardisation, missing = the run\'s lowest z; an exact tie breaks by pid', () => {
  // A: mean 0.7, deviations 0.2, 0.1, -0.3; variance (0.04 + 0.01 + 0.09) / 3 = 0.14/3; std = 0.2160247
  //    z: a = 0.2/std = 0.9258201, b = 0.1/std = 0.4629100, c = -0.3/std = -1.3887301; missing = -1.3887301
  // B: mean 0.65, deviations +-0.05, std 0.05: z b = 1, d = -1; missing = -1
  const std = Math.sqrt(0.14 / 3);
  const zA = normalizeScores(A, 'zscore');
  close(zA.values.get('a'), 0.2 / std, 'z a');
  close(zA.missing, -0.3 / std, 'missing A');
  const f = fuse([A, B], { method: 'zscore' });
  // a = 0.9258201 + (-1) = -0.0741799;  b = 0.4629100 + 1 = 1.4629100
  // c = -1.3887301 + (-1) (missing in B);  d = -1.3887301 (missing in A) + (-1): c and d tie exactly
  close(f.get('a'), 0.2 / std - 1, 'a');
  close(f.get('b'), 0.1 / std + 1, 'b');
  close(f.get('c'), -0.3 / std - 1, 'c');
  assert.equal(f.get('c'), f.get('d'));
  assert.deepEqual(rankPids(f), ['b', 'a', 'c', 'd']); // tie c = d: 'c' < 'd'
  // all-equal scores: std 0 -> every z is 0
  assert.deepEqual([...normalizeScores(m({ p: 2, q: 2 }), 'zscore').values.values()], [0, 0]);
});

test('minmax: (s - min) / (max - min), missing = 0', () => {
  // A: lo 0.4, hi 0.9: a = 1, b = 0.4/0.5 = 0.8, c = 0;  B: lo 0.6, hi 0.7: b = 1, d = 0
  const f = fuse([A, B], { method: 'minmax' });
  close(f.get('a'), 1, 'a');
  close(f.get('b'), 0.4 / 0.5 + 1, 'b');
  close(f.get('c'), 0, 'c');
  close(f.get('d'), 0, 'd');
  assert.deepEqual(rankPids(f), ['b', 'a', 'c', 'd']);
  // one-element or all-equal lists: every listed pid gets 1
  assert.deepEqual([...normalizeScores(m({ p: 5 }), 'minmax').values.values()], [1]);
});

test('rrf: 1 / (60 + rank), missing = 0', () => {
  // A ranks a 1, b 2, c 3; B ranks b 1, d 2
  // a = 1/61 = 0.016393, b = 1/62 + 1/61 = 0.032522, c = 1/63 = 0.015873, d = 1/62 = 0.016129
  const f = fuse([A, B], { method: 'rrf' });
  close(f.get('a'), 1 / 61, 'a');
  close(f.get('b'), 1 / 62 + 1 / 61, 'b');
  close(f.get('c'), 1 / 63, 'c');
  close(f.get('d'), 1 / 62, 'd');
  assert.deepEqual(rankPids(f), ['b', 'a', 'd', 'c']);
  // k is configurable: k = 0 gives a = 1/1, d = 1/2
  close(fuse([A, B], { method: 'rrf', rrfK: 0 }).get('d'), 1 / 2, 'k=0');
});

test('rank: minus the weighted mean rank, missing = list length + 1', () => {
  // A: a 1, b 2, c 3, missing 4;  B: b 1, d 2, missing 3
  // a = -(1 + 3)/2 = -2, b = -(2 + 1)/2 = -1.5, c = -(3 + 3)/2 = -3, d = -(4 + 2)/2 = -3
  const f = fuse([A, B], { method: 'rank' });
  assert.deepEqual(Object.fromEntries(f), { a: -2, b: -1.5, c: -3, d: -3 });
  assert.deepEqual(rankPids(f), ['b', 'a', 'c', 'd']);
  // weights [3, 1]: a = -(3*1 + 1*3)/4 = -1.5, b = -(3*2 + 1*1)/4 = -1.75
  const w = fuse([A, B], { method: 'rank', weights: [3, 1] });
  assert.equal(w.get('a'), -1.5);
  assert.equal(w.get('b'), -1.75);
});

test('ranking ties are broken by pid code-unit order whatever the input order', () => {
  const x = m({ b: 1, a: 1, B: 1, '10': 1, '9': 1, 'é': 1 });
  const y = new Map([...x].reverse());
  const order = ['10', '9', 'B', 'a', 'b', 'é'];
  assert.deepEqual(rankPids(fuse([x])), order);
  assert.deepEqual(rankPids(fuse([y])), order);
});

test('fuseRuns: per question, checks run sizes and weights', () => {
  const out = fuseRuns([
    [A, m({ z: 1 })],
    [B, m({})],
  ]);
  assert.equal(out.length, 2);
  close(out[0].get('b'), 1.5, 'q0 b');
  assert.deepEqual(Object.fromEntries(out[1]), { z: 1 });
  assert.throws(() => fuseRuns([[A], [A, B]]), /run 1 has 2 questions, run 0 has 1/);
  assert.throws(() => fuse([A, B], { weights: [1] }), /1 weights for 2 runs/);
  assert.throws(() => fuse([A], { weights: [-1] }), /must be finite and >= 0/);
});

test('weightGrid: the simplex at a step, first run\'s weight largest first', () => {
  assert.deepEqual(weightGrid(2, 0.5), [
    [1, 0],
    [0.5, 0.5],
    [0, 1],
  ]);
  assert.equal(weightGrid(2, 0.1).length, 11); // C(11, 1)
  assert.equal(weightGrid(3, 0.1).length, 66); // C(12, 2)
  for (const w of weightGrid(3, 0.1)) close(w.reduce((a, b) => a + b, 0), 1, 'sum');
  assert.throws(() => weightGrid(2, 0.3), /must divide 1/);
});

test('tuneWeights: hand-worked optimum; ties go to the weights nearest uniform', () => {
  // Three questions, each with one gold paper and one distractor; runs A and B, weights (1-w, w):
  //  Q1 gold g1: A {g1 .5, x .9}, B {g1 .9, x .1}: g1 = .5(1-w) + .9w beats x = .9(1-w) + .1w iff w > 1/3
  //  Q2 gold g2: A {g2 .9, y .5}, B {g2 .1, y .9}: g2 wins iff .4(1-w) > .8w iff w < 1/3
  //  Q3 gold g3: A {g3 .1, z .75}, B {g3 .8, z .45}: g3 wins iff .35w > .65(1-w) iff w > 0.65
  // AP is 1 when the gold paper wins, else 1/2 (rank 2). On the 0.1 grid:
  //  w <= 0.3: (1/2 + 1 + 1/2)/3 = 2/3;  w in 0.4..0.6: (1 + 1/2 + 1/2)/3 = 2/3;  w >= 0.7: (1 + 1/2 + 1)/3 = 5/6
  const runA = [m({ g1: 0.5, x: 0.9 }), m({ g2: 0.9, y: 0.5 }), m({ g3: 0.1, z: 0.75 })];
  const runB = [m({ g1: 0.9, x: 0.1 }), m({ g2: 0.1, y: 0.9 }), m({ g3: 0.8, z: 0.45 })];
  const questions = [{ pids: ['g1'] }, { pids: ['g2'] }, { pids: ['g3'] }];
  const r = tuneWeights([runA, runB], questions);
  // best 5/6 at w = 0.7, 0.8, 0.9, 1.0: the nearest to (0.5, 0.5) is (0.3, 0.7)
  assert.deepEqual(r.weights, [0.3, 0.7]);
  close(r.score, 5 / 6, 'best');
  close(r.equalScore, 2 / 3, 'equal weights');
  assert.equal(r.tried.length, 11);
  // On Q1 and Q2 only, every grid point scores (1 + 1/2)/2 = 3/4: the tie goes to (0.5, 0.5),
  // not to the first grid point (1, 0).
  const t = tuneWeights([runA, runB], questions, { indices: [0, 1] });
  assert.deepEqual(t.weights, [0.5, 0.5]);
  close(t.score, 3 / 4, 'flat');
  assert.ok(t.tried.every((p) => Math.abs(p.score - 3 / 4) < 1e-12));
  // Rank fusion ignores the score gaps: each run ranks each question's pair 1, 2.
  //  Q1: g1 = -(2(1-w) + 1w) = -(2 - w), x = -(1 + w): g1 wins iff w >= 0.5 (the tie at 0.5 goes to 'g1' < 'x')
  //  Q2: g2 = -(1 + w), y = -(2 - w): g2 wins iff w <= 0.5 (tie: 'g2' < 'y');  Q3 like Q1 ('g3' < 'z')
  // so w = 0.5 alone wins all three (MAP 1); w > 0.5 gives 5/6, w < 0.5 gives 2/3.
  const rk = tuneWeights([runA, runB], questions, { method: 'rank' });
  assert.deepEqual(rk.weights, [0.5, 0.5]);
  close(rk.score, 1, 'rank best');
  close(rk.tried.find((p) => p.weights[1] === 0.6)!.score, 5 / 6, 'rank w=0.6');
  close(rk.tried.find((p) => p.weights[1] === 0.4)!.score, 2 / 3, 'rank w=0.4');
});

test('splitIndices: seeded, disjoint, covering, sorted', () => {
  const s = splitIndices(300, 0.5, 7);
  assert.equal(s.tune.length, 150);
  assert.equal(s.test.length, 150);
  assert.deepEqual([...s.tune, ...s.test].sort((a, b) => a - b), Array.from({ length: 300 }, (_, i) => i));
  assert.deepEqual(splitIndices(300, 0.5, 7), s);
  assert.notDeepEqual(splitIndices(300, 0.5, 8).tune, s.tune);
  assert.deepEqual(s.tune, [...s.tune].sort((a, b) => a - b));
});
