// The demo's pure logic without a browser: what the results list marks and links
// (demo/cues.ts), the progress bar's states, and the lexical ranking's equality with the
// pipeline's BM25 run (demo/ranking.ts against node/data.ts readPassages + Bm25Index, as
// node/pipeline/stages.ts builds it).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { queryText } from '../core/data/clean.ts';
import { parseCorpus } from '../core/data/corpus.ts';
import { Bm25Index } from '../core/retrieval/bm25.ts';
import { fuse } from '../core/retrieval/fusion.ts';
import { DemoConfigError, applyParams, parseDemoConfig } from '../demo/config.ts';
import { WEAK_BELOW, barState, corpusLinks, highlight, isWeak, paperLink, queryTerms } from '../demo/cues.ts';
import { combineRuns, lexicalIndex, lexicalRun } from '../demo/ranking.ts';
import { readPassages } from '../node/data.ts';

const CORPUS = 'demo/data/pipeline/corpus.json';
const QUESTIONS = 'demo/data/pipeline/qa_valid_flag.txt';

describe('demo cues', () => {
  test('query terms are the BM25 tokens: lowercased, stopwords dropped', () => {
    assert.deepEqual([...queryTerms('Does Vitamin D reduce the risk of COVID-19?')], ['does', 'vitamin', 'd', 'reduce', 'risk', 'covid', '19']);
  });

  test('highlight marks whole words equal to a term, case-insensitively, and keeps every character', () => {
    const terms = queryTerms('vitamin fractures');
    const text = 'Vitamin D and <b>fractures</b>: vitamins, fracture; FRACTURES.';
    const segs = highlight(text, terms);
    assert.equal(segs.map((s) => s.text).join(''), text, 'the pieces put back together are the text');
    assert.deepEqual(
      segs.filter((s) => s.mark).map((s) => s.text),
      ['Vitamin', 'fractures', 'FRACTURES'],
      'exact tokens only: "vitamins" and "fracture" are other BM25 terms',
    );
    assert.ok(segs.every((s, i) => i === 0 || s.mark !== segs[i - 1].mark), 'neighbouring pieces are merged');
    assert.deepEqual(highlight('no terms here', new Set()), [{ text: 'no terms here', mark: false }]);
    assert.deepEqual(highlight('', terms), []);
  });

  test('links: a DOI (bare, doi:, doi.org URL) wins over a URL; only http(s) is linked', () => {
    assert.equal(paperLink({ doi: '10.1016/j.cell.2009.01.002' }), 'https://doi.org/10.1016/j.cell.2009.01.002');
    assert.equal(paperLink({ DOI: 'doi: 10.1000/x y', URL: 'https://example.org/p' }), 'https://example.org/p', 'a DOI with a space is not a DOI');
    assert.equal(paperLink({ doi: 'https://doi.org/10.1000/a<b>', url: 'https://example.org/' }), 'https://doi.org/10.1000/a%3Cb%3E');
    assert.equal(paperLink({ url: 'https://example.org/paper?id=1' }), 'https://example.org/paper?id=1');
    assert.equal(paperLink({ url: 'javascript:alert(1)' }), null);
    assert.equal(paperLink({ url: 'not a url' }), null);
    assert.equal(paperLink({ title: 't', abstract: 'a' }), null);
    assert.equal(paperLink(null), null);
    const links = corpusLinks(JSON.stringify({ 1: { title: 'a', abstract: '', doi: '10.5555/12345678' }, 2: { title: 'b', abstract: '' }, 3: { title: 'c', abstract: '', url: 'http://x.org/3' } }));
    assert.deepEqual([...links], [['1', 'https://doi.org/10.5555/12345678'], ['3', 'http://x.org/3']]);
    assert.equal(corpusLinks('{not json').size, 0);
    // The AQA format carries no link: the sample has none, and the corpus parser ignores the fields.
    assert.equal(corpusLinks(readFileSync(CORPUS, 'utf8')).size, 0);
  });

  test('weak match: under the threshold only, never without a dense score or a threshold', () => {
    assert.equal(isWeak(0.39, WEAK_BELOW), true);
    assert.equal(isWeak(WEAK_BELOW, WEAK_BELOW), false);
    assert.equal(isWeak(null, WEAK_BELOW), false, 'lexical ranking has no dense score');
    assert.equal(isWeak(0.1, null), false, 'the config turned the mark off');
  });

  test('the progress bar is never full before the total is known', () => {
    assert.equal(barState({ what: 'device', loaded: 0, total: 0 }), null);
    assert.deepEqual(barState({ what: 'index a', loaded: 5, total: 10 }), { value: 5, max: 10 });
    assert.deepEqual(barState({ what: 'index a', loaded: 10, total: 10 }), { value: 10, max: 10 }, 'a known total may be reached');
    // A model's files report one by one: the first file done is not the model done.
    assert.equal(barState({ what: 'model m', loaded: 700, total: 700, partial: true }), null);
    assert.deepEqual(barState({ what: 'model m', loaded: 700, total: 90_000_000, partial: true }), { value: 700, max: 90_000_000 });
  });
});

describe('demo ranking', () => {
  test('lexical: the BM25 run equals the pipeline search stage on the sample', async () => {
    const { papers } = parseCorpus(readFileSync(CORPUS, 'utf8'), CORPUS);
    const page = lexicalIndex(papers);
    const { passages } = await readPassages(CORPUS);
    const cli = Bm25Index.build(passages.pids, passages.texts, { k1: 0.9, b: 0.4 }); // the pipeline config's defaults
    const questions = readFileSync(QUESTIONS, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as { question: string; body: string });
    for (const q of questions) {
      assert.deepEqual([...lexicalRun(page, q.question)], cli.search(queryText(q), 200), q.question);
    }
  });

  test('hybrid fuses every run with equal weights; dense fusion keeps the config weights', () => {
    const a = new Map([['x', 0.9], ['y', 0.5], ['z', 0.1]]);
    const b = new Map([['y', 3], ['w', 1]]);
    assert.deepEqual(combineRuns([a, b], 'hybrid', 'zscore', [5, 1]), fuse([a, b], { method: 'zscore' }));
    assert.deepEqual(combineRuns([a, b], 'dense', 'zscore', [5, 1]), fuse([a, b], { method: 'zscore', weights: [5, 1] }));
    assert.equal(combineRuns([b], 'lexical', 'zscore'), b, 'one run is shown as it is');
  });

  test('config: corpus and ?ranking=', () => {
    const file = 'http://h/indexes/demo.json';
    const page = 'http://h/';
    const p = (s: string) => new URLSearchParams(s);
    const withCorpus = parseDemoConfig('{"indexes":[{"index":"a/","model":"./m/"}],"corpus":"corpus.json"}', file);
    assert.equal(withCorpus.corpus, 'http://h/indexes/corpus.json');
    assert.equal(withCorpus.ranking, 'hybrid', 'hybrid by default when there is a corpus');
    assert.equal(applyParams(withCorpus, p('ranking=lexical'), page).ranking, 'lexical');
    assert.equal(applyParams(withCorpus, p(''), page).ranking, 'hybrid');
    const bare = parseDemoConfig('{"indexes":[{"index":"a/","model":"./m/"}]}', file);
    assert.equal(bare.corpus, null);
    assert.equal(applyParams(bare, p(''), page).ranking, 'dense', 'dense without a corpus');
    assert.throws(() => applyParams(bare, p('ranking=hybrid'), page), /needs the corpus/);
    assert.equal(applyParams(bare, p('corpus=c.json'), page).ranking, 'hybrid');
    assert.throws(() => applyParams(withCorpus, p('ranking=bm25'), page), DemoConfigError);
    assert.throws(() => parseDemoConfig('{"indexes":[{"index":"a/","model":"./m/"}],"corpus":3}', file), /corpus: expected the URL/);
    assert.equal(bare.weakBelow, WEAK_BELOW);
    assert.equal(parseDemoConfig('{"indexes":[{"index":"a/","model":"./m/"}],"weakBelow":null}', file).weakBelow, null);
    assert.throws(() => parseDemoConfig('{"indexes":[{"index":"a/","model":"./m/"}],"weakBelow":"low"}', file), /weakBelow: expected a number/);
  });
});
