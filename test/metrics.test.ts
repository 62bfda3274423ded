// Ranking metrics on hand-computed cases; the arithmetic is in the comments.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { evaluate, formatReport, type Judged, ndcgAt, officialAP, officialMAP, recallAt, standardAP } from '../core/eval/metrics.ts';

// Sums of a few fractions: exact to ~1 ulp; 1e-12 leaves room and still catches any wrong term.
const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);

const fill = (n: number, prefix = 'x') => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

// Q1: gold {a, b, c, d}; hits at ranks 1, 3, 5.
const q1 = { ranked: ['a', 'x1', 'b', 'x2', 'c'], gold: ['a', 'b', 'c', 'd'] };
// Q2: one gold paper, at rank 21 (just outside the official 20).
const q2 = { ranked: [...fill(20), 'g'], gold: ['g'] };
// Q4: one gold paper at rank 2.
const q4 = { ranked: ['x', 'a'], gold: ['a'] };

test('officialAP: divides by the hits found in the top 20, not by the gold count', () => {
  // Q1: hits@1/1 + hits@3/3 + hits@5/5 = 1/1 + 2/3 + 3/5 = 34/15; 3 hits -> 34/45 = 0.75556
  close(officialAP(q1.ranked, q1.gold), 34 / 45, 'q1');
  // Q2: no hit within the top 20 -> 0 (the hit at 21 is not seen)
  close(officialAP(q2.ranked, q2.gold), 0, 'q2');
  // Q4: 1/2 over 1 hit = 0.5
  close(officialAP(q4.ranked, q4.gold), 0.5, 'q4');
  // one gold found at rank 1 out of five gold papers: 1/1 / 1 hit = 1 (standard AP would give 1/5)
  close(officialAP(['a', 'x'], ['a', 'b', 'c', 'd', 'e']), 1, 'one of five');
  close(standardAP(['a', 'x'], ['a', 'b', 'c', 'd', 'e']), 1 / 5, 'standard one of five');
  // the scorer takes positions at face value: a repeated gold pid counts twice.
  // ranked [x, a, a], gold {a, b}: hits at 2 and 3: 1/2 + 2/3 = 7/6, over 2 hits = 7/12
  close(officialAP(['x', 'a', 'a'], ['a', 'b']), 7 / 12, 'repeat, official');
  // standard AP skips the repeat: [x, a]: 1/2 over min(2 gold, 20) = 1/4
  close(standardAP(['x', 'a', 'a'], ['a', 'b']), 1 / 4, 'repeat, standard');
  // no gold at all -> 0
  close(officialAP(['a'], []), 0, 'no gold');
});

test('standardAP: divides by min(#gold, 20)', () => {
  // Q1: same numerator 34/15, over min(4, 20) = 4 -> 34/60 = 17/30 = 0.56667
  close(standardAP(q1.ranked, q1.gold), 17 / 30, 'q1');
  // 25 gold papers, the top 20 all gold: numerator 1/1 + 2/2 + ... + 20/20 = 20, over min(25, 20) = 20 -> 1
  const gold25 = fill(25, 'g');
  close(standardAP(gold25.slice(0, 20), gold25), 1, '25 gold');
  close(officialAP(gold25.slice(0, 20), gold25), 1, '25 gold, official'); // 20 / 20 hits
  // k = 3 on Q1: hits at 1 and 3 -> 1 + 2/3 = 5/3, over min(4, 3) = 3 -> 5/9
  close(standardAP(q1.ranked, q1.gold, 3), 5 / 9, 'q1 at 3');
});

test('recall@k: distinct gold pids in the top k over #gold', () => {
  close(recallAt(q1.ranked, q1.gold, 20), 3 / 4, 'q1@20'); // a, b, c of 4
  close(recallAt(q1.ranked, q1.gold, 3), 2 / 4, 'q1@3'); // a, b
  close(recallAt(q2.ranked, q2.gold, 20), 0, 'q2@20');
  close(recallAt(q2.ranked, q2.gold, 100), 1, 'q2@100'); // rank 21 <= 100
  close(recallAt(['a', 'a', 'b'], ['a', 'b'], 2), 1, 'repeat skipped: top 2 distinct = a, b');
  const gold25 = fill(25, 'g');
  close(recallAt(gold25, gold25, 20), 20 / 25, '25 gold @20');
});

test('nDCG@10: binary gains, 1/log2(rank + 1) discounts, ideal over min(#gold, 10)', () => {
  // Q1: DCG = 1/log2(2) + 1/log2(4) + 1/log2(6) = 1 + 0.5 + 0.386853 = 1.886853
  //     ideal (4 gold) = 1/log2(2) + 1/log2(3) + 1/log2(4) + 1/log2(5) = 1 + 0.630930 + 0.5 + 0.430677 = 2.561606
  //     nDCG = 0.7365897
  const dcg = 1 + 1 / Math.log2(4) + 1 / Math.log2(6);
  const ideal = 1 + 1 / Math.log2(3) + 1 / Math.log2(4) + 1 / Math.log2(5);
  close(ndcgAt(q1.ranked, q1.gold), dcg / ideal, 'q1');
  assert.ok(Math.abs(ndcgAt(q1.ranked, q1.gold) - 0.7365897) < 1e-7);
  // Q4: gold at rank 2: 1/log2(3) = 0.630930, ideal 1
  close(ndcgAt(q4.ranked, q4.gold), 1 / Math.log2(3), 'q4');
  // gold only at rank 11 -> 0 at 10
  close(ndcgAt([...fill(10), 'g'], ['g']), 0, 'rank 11');
  // perfect ranking -> 1
  close(ndcgAt(['a', 'b'], ['b', 'a']), 1, 'perfect');
});

test('official MAP@20: flag-weighted; flag 0 ignored, no flag counts with weight 1', () => {
  const ranked = [q1.ranked, q2.ranked, ['a'], q4.ranked];
  const questions: Judged[] = [
    { pids: q1.gold, flag: 1 },
    { pids: q2.gold, flag: 1 },
    { pids: ['a'], flag: 0 }, // AP 1, ignored
    { pids: q4.gold }, // no flag: weight 1
  ];
  // (34/45 + 0 + 0.5) / 3 = (68/90 + 45/90) / 3 = 113/270 = 0.418519
  close(officialMAP(ranked, questions), 113 / 270, 'MAP');
  const r = evaluate(ranked, questions);
  close(r.officialMap20, 113 / 270, 'report MAP');
  // standard MAP@20 over the same 3 questions: (17/30 + 0 + 1/2) / 3 = (16/15) / 3 = 16/45 = 0.355556
  close(r.map20, 16 / 45, 'MAP@20');
  // recall@20: (3/4 + 0 + 1) / 3 = 7/12; recall@100 and @200: (3/4 + 1 + 1) / 3 = 11/12
  close(r.recall20, 7 / 12, 'R@20');
  close(r.recall100, 11 / 12, 'R@100');
  close(r.recall200, 11 / 12, 'R@200');
  // nDCG@10: (0.7365897 + 0 + 0.6309298) / 3 = 0.4558398
  close(r.ndcg10, (dcg1() + 0 + 1 / Math.log2(3)) / 3, 'nDCG@10');
  assert.equal(r.questions, 3);
  assert.equal(r.noGold, 0);
  assert.equal(formatReport(r), 'official MAP@20 0.4185 | MAP@20 0.3556 | R@20 0.5833 | R@100 0.9167 | R@200 0.9167 | nDCG@10 0.4558 (n=3)');
  assert.throws(() => officialMAP([q1.ranked], questions), /1 rankings for 4 questions/);
});

function dcg1(): number {
  return (1 + 1 / Math.log2(4) + 1 / Math.log2(6)) / (1 + 1 / Math.log2(3) + 1 / Math.log2(4) + 1 / Math.log2(5));
}

test('questions without gold: 0 in the official MAP, left out of the standard means', () => {
  const r = evaluate(
    [['a'], ['a']],
    [{ pids: ['a'] }, { pids: [], flag: 1 }],
  );
  close(r.officialMap20, 0.5, 'official: (1 + 0) / 2');
  close(r.map20, 1, 'standard: only the first question');
  assert.equal(r.noGold, 1);
  assert.equal(evaluate([], []).officialMap20, 0);
});

test('official AP only looks at the first 20 ranks even when given 200', () => {
  // gold at ranks 20 and 21: only rank 20 counts: 1/20 over 1 hit = 0.05
  const ranked = [...fill(19), 'g1', 'g2', ...fill(179, 'y')];
  close(officialAP(ranked, ['g1', 'g2']), 1 / 20, 'k=20');
  close(officialAP(ranked, ['g1', 'g2'], 21), (1 / 20 + 2 / 21) / 2, 'k=21');
});
