// BM25: scores on a 3-document corpus computed by hand, the tokenizer against its regex
// definition, and the inverted index against a direct per-document evaluation of the formula.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { queryText } from '../core/data/clean.ts';
import { rng } from '../core/data/pairs.ts';
import { Bm25Index, STOPWORDS, tokenize } from '../core/retrieval/bm25.ts';

// Each expected score is a product/quotient of a few doubles computed in another order than the
// implementation: they agree to ~1e-16 relative; 1e-12 is far below the 1e-3 gaps between ranks.
const close = (a: number | undefined, b: number, what: string) => assert.ok(a !== undefined && Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);

// d1 "The cat sat on the mat"  -> cat sat mat   (the, on are stopwords)  |d1| = 3
// d2 "the dog sat"             -> dog sat                                |d2| = 2
// d3 "Cat and dog, cat!"       -> cat dog cat   (and is a stopword)       |d3| = 3
// N = 3, avgdl = 8/3; df: cat 2, sat 2, dog 2, mat 1
// idf(df 2) = ln(1 + (3 - 2 + 0.5) / (2 + 0.5)) = ln(1.6)  = 0.4700036
// idf(df 1) = ln(1 + (3 - 1 + 0.5) / (1 + 0.5)) = ln(8/3)  = 0.9808293
// k1 = 0.9, b = 0.4: norm(|d|) = k1 (1 - b + b |d| / avgdl)
//   norm(3) = 0.9 (0.6 + 0.4 * 1.125) = 0.945;  norm(2) = 0.9 (0.6 + 0.4 * 0.75) = 0.81
// term score = idf * tf (k1 + 1) / (tf + norm)
const ids = ['d1', 'd2', 'd3'];
const docs = ['The cat sat on the mat', 'the dog sat', 'Cat and dog, cat!'];
const IDF2 = Math.log(1.6);
const IDF1 = Math.log(8 / 3);

test('bm25: hand-computed scores on a 3-document corpus (k1 0.9, b 0.4)', () => {
  const ix = Bm25Index.build(ids, docs);
  assert.deepEqual([...ix.lengths], [3, 2, 3]);
  close(ix.avgdl, 8 / 3, 'avgdl');
  close(ix.idf('cat'), IDF2, 'idf cat');
  close(ix.idf('mat'), IDF1, 'idf mat');
  // "cat": d1 tf 1: 0.4700036 * 1.9 / 1.945 = 0.4591295;  d3 tf 2: 0.4700036 * 3.8 / 2.945 = 0.6064563
  const cat = ix.search('cat', 10);
  assert.deepEqual(
    cat.map((e) => e[0]),
    ['d3', 'd1'],
  );
  close(cat[0][1], (IDF2 * 2 * 1.9) / 2.945, 'cat d3');
  close(cat[1][1], (IDF2 * 1.9) / 1.945, 'cat d1');
  assert.ok(Math.abs(cat[0][1] - 0.6064563) < 1e-7 && Math.abs(cat[1][1] - 0.4591295) < 1e-7);
  // "cat mat": d1 = 0.4591295 + 0.9808293 * 1.9 / 1.945 = 0.4591295 + 0.9581366 = 1.4172661
  const cm = ix.search('Cat MAT', 10);
  assert.equal(cm[0][0], 'd1');
  close(cm[0][1], (IDF2 * 1.9) / 1.945 + (IDF1 * 1.9) / 1.945, 'cat mat d1');
  assert.ok(Math.abs(cm[0][1] - 1.4172661) < 1e-7);
  // "dog sat": d2 = 2 * 0.4700036 * 1.9 / 1.81 = 0.9867480; d1 (sat) and d3 (dog) both 0.4591295:
  // an exact tie, broken by id: d1 before d3
  const ds = ix.search('dog sat', 10);
  assert.deepEqual(
    ds.map((e) => e[0]),
    ['d2', 'd1', 'd3'],
  );
  close(ds[0][1], (2 * IDF2 * 1.9) / 1.81, 'dog sat d2');
  assert.equal(ds[1][1], ds[2][1]);
  // a query term repeated counts twice (Anserini boosts by query term frequency)
  close(ix.search('cat cat', 1)[0][1], (2 * IDF2 * 2 * 1.9) / 2.945, 'cat cat');
  // k limits; no shared term -> nothing; stopwords only -> nothing
  assert.equal(ix.search('cat', 1).length, 1);
  assert.deepEqual(ix.search('zebra', 10), []);
  assert.deepEqual(ix.search('the and of', 10), []);
  const mat = ix.scores('mat');
  assert.deepEqual([...mat.keys()], ['d1']);
  close(mat.get('d1'), (IDF1 * 1.9) / 1.945, 'mat d1');
});

test('bm25: k1 and b are configurable (k1 1.2, b 0.75)', () => {
  // norm(3) = 1.2 (0.25 + 0.75 * 1.125) = 1.3125; "cat" on d3: 0.4700036 * 2 * 2.2 / 3.3125 = 0.6243067
  const ix = Bm25Index.build(ids, docs, { k1: 1.2, b: 0.75 });
  close(ix.search('cat', 1)[0][1], (IDF2 * 2 * 2.2) / 3.3125, 'cat d3');
  // b = 0: no length normalisation, so tf 1 in d1 (|d| 3) and d2 (|d| 2) score the same
  const flat = Bm25Index.build(ids, docs, { b: 0 });
  const sat = flat.search('sat', 10);
  assert.deepEqual(
    sat.map((e) => e[0]),
    ['d1', 'd2'],
  );
  assert.equal(sat[0][1], sat[1][1]);
  // a custom stopword list: with none, 'the' is a term (df 2: d1 tf 2, d2 tf 1)
  assert.equal(Bm25Index.build(ids, docs, { stopwords: new Set() }).df('the'), 2);
  assert.throws(() => Bm25Index.build(['a', 'a'], ['x', 'y']), /distinct/);
  assert.throws(() => Bm25Index.build(['a'], ['x', 'y']), /1 ids for 2 texts/);
});

test('tokenize: lowercased letter/digit runs minus stopwords, equal to its regex definition', () => {
  assert.deepEqual(tokenize("COVID-19: It's the β-cell's 2nd role, naïve 𝜆 x_y"), ['covid', '19', 's', 'β', 'cell', 's', '2nd', 'role', 'naïve', '𝜆', 'x', 'y']);
  assert.equal(STOPWORDS.size, 33);
  const byRegex = (t: string) => [...t.toLowerCase().matchAll(/[\p{L}\p{N}]+/gu)].map((m) => m[0]).filter((w) => !STOPWORDS.has(w));
  const qs = readFileSync('test/fixtures/aqa-questions/qa_valid_flag.txt', 'utf8').trim().split('\n');
  for (const [i, l] of qs.entries()) {
    const t = queryText(JSON.parse(l) as { question: string; body: string });
    assert.deepEqual(tokenize(t), byRegex(t), `question ${i}`);
  }
  for (const t of ['', '---', 'a', 'x\uD835', '\uDC00y', 'é\u0301', 'İstanbul']) assert.deepEqual(tokenize(t), byRegex(t), JSON.stringify(t));
});

test('bm25: the inverted index equals a direct evaluation of the formula on a random corpus', () => {
  const r = rng(4);
  const vocab = Array.from({ length: 60 }, (_, i) => `w${i}`);
  const pick = () => vocab[Math.floor(r() ** 2 * vocab.length)]; // skewed: some terms in most documents
  const texts = Array.from({ length: 300 }, () => Array.from({ length: 1 + Math.floor(r() * 40) }, pick).join(' '));
  const idsR = texts.map((_, i) => `doc${i}`);
  const ix = Bm25Index.build(idsR, texts);
  const toks = texts.map((t) => t.split(' '));
  const avgdl = toks.reduce((a, t) => a + t.length, 0) / toks.length;
  const df = (w: string) => toks.filter((t) => t.includes(w)).length;
  for (let q = 0; q < 30; q++) {
    const query = Array.from({ length: 1 + Math.floor(r() * 4) }, pick);
    const expect: [string, number][] = [];
    toks.forEach((t, d) => {
      let s = 0;
      let hit = false;
      for (const w of query) {
        const tf = t.filter((x) => x === w).length;
        if (!tf) continue;
        hit = true;
        const idf = Math.log(1 + (texts.length - df(w) + 0.5) / (df(w) + 0.5));
        s += (idf * tf * 1.9) / (tf + 0.9 * (0.6 + (0.4 * t.length) / avgdl));
      }
      if (hit) expect.push([idsR[d], s]);
    });
    const got = new Map(ix.search(query.join(' '), 1000));
    assert.equal(got.size, expect.length, `query ${q}: documents`);
    // summation order differs (per query term vs per occurrence): relative 1e-12
    for (const [id, s] of expect) assert.ok(Math.abs(got.get(id)! - s) <= 1e-12 * s, `query ${q} ${id}: ${got.get(id)} vs ${s}`);
  }
});
