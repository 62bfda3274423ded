// demo/library/parse.ts: the files a person drops on the demo page (BibTeX, CSL-JSON as Zotero
// exports it, the AQA corpus JSON and JSONL) become the same corpus entries, and bad input is a
// one-line error naming the file, the entry and the field. demo/library/build.ts: a paper whose
// passage text has a stored vector is not embedded again (with a stand-in model, no GPU).

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import type { EmbeddingModel } from '../core/retrieval/embed.ts';
import { type EmbedProgress, buildLibrary } from '../demo/library/build.ts';
import { LibraryError, type LibraryPaper, detectFormat, parseLibrary, toCorpusJson } from '../demo/library/parse.ts';

const FIXTURES = 'test/fixtures/library';

const bib = `% exported by hand
@article{smith2020,
  title = {The {DNA} of M{\\"u}ller cells: 50\\% fewer},
  abstract = {We study {RNA} \\& proteins.},
  doi = {10.1234/abc.5},
  url = {https://example.org/a_b}
}

@inproceedings{doe2019, title = "Title only", author = {Doe, Jane}}
@article{smith2020, title = {A duplicate key}, abstract = {dropped}}
`;

describe('library files', () => {
  test('BibTeX: LaTeX to Unicode, keys as pids, doi and url kept, duplicates dropped', () => {
    const lib = parseLibrary('mine.bib', bib);
    assert.equal(lib.format, 'bibtex');
    assert.deepEqual(lib.papers, [
      { pid: 'smith2020', title: 'The DNA of Müller cells: 50% fewer', abstract: 'We study RNA & proteins.', doi: '10.1234/abc.5', url: 'https://example.org/a_b' },
      { pid: 'doe2019', title: 'Title only', abstract: '' },
    ]);
    assert.equal(lib.duplicates, 1);
    assert.equal(lib.noAbstract, 1);
  });

  test('CSL-JSON as Zotero writes it: id, title, abstract, DOI, URL', () => {
    const csl = JSON.stringify([
      { id: 'http://zotero.org/users/1/items/AB', type: 'article-journal', title: 'One', abstract: 'First.', DOI: '10.1/x', URL: 'https://x.org/' },
      { id: 42, type: 'book', title: 'Two' },
    ]);
    const lib = parseLibrary('My Library.json', csl);
    assert.equal(lib.format, 'csl-json');
    assert.deepEqual(lib.papers, [
      { pid: 'http://zotero.org/users/1/items/AB', title: 'One', abstract: 'First.', doi: '10.1/x', url: 'https://x.org/' },
      { pid: '42', title: 'Two', abstract: '' },
    ]);
  });

  test('AQA corpus JSON and JSONL, with optional doi and url', () => {
    const json = '{\n "p1": {"title": "A", "abstract": "a.", "doi": "10.2/y"},\n "p2": {"title": null, "abstract": "b."}\n}';
    const a = parseLibrary('corpus.json', json);
    assert.equal(a.format, 'aqa-json');
    assert.deepEqual(a.papers, [
      { pid: 'p1', title: 'A', abstract: 'a.', doi: '10.2/y' },
      { pid: 'p2', title: '', abstract: 'b.' },
    ]);
    const jsonl = '{"pid": "p1", "title": "A", "abstract": "a.", "doi": "10.2/y"}\n{"pid": "p2", "abstract": "b."}\n';
    assert.equal(detectFormat('x.txt', jsonl), 'aqa-jsonl');
    assert.deepEqual(parseLibrary('corpus.jsonl', jsonl).papers, a.papers);
    // toCorpusJson round-trips through the corpus reader.
    assert.deepEqual(parseLibrary('again.json', toCorpusJson(a.papers)).papers, a.papers);
  });

  test('bad input: one line naming the file, the entry and the field', () => {
    const bad = (name: string, text: string, re: RegExp) => {
      assert.throws(
        () => parseLibrary(name, text),
        (e: Error) => {
          assert.ok(e instanceof LibraryError, String(e));
          assert.doesNotMatch(e.message, /\n/);
          assert.match(e.message, re);
          return true;
        },
      );
    };
    bad('x.jsonl', '{"pid": "a", "title": "t"}\n{"pid": "b", "title": 7}\n', /^x\.jsonl: line 2: title: expected a string, got number 7$/);
    bad('x.jsonl', '{"pid": "a", "title": "t"}\n{"pid": "b",\n', /^x\.jsonl:2: not valid JSON/);
    bad('x.jsonl', '{"title": "t"}\n', /^x\.jsonl: line 1: id: expected a non-empty string, got undefined/);
    bad('z.json', JSON.stringify([{ id: 'a', title: 'ok' }, { id: 'b', title: ['no'] }]), /^z\.json: item 2 "b": title: expected a string, got an array$/);
    bad('z.json', JSON.stringify([{ title: 'no id' }]), /^z\.json: item 1: id: expected a non-empty string/);
    bad('z.json', JSON.stringify([{ id: 'e', title: '  ' }]), /^z\.json: item 1 "e": title, abstract: both missing or empty/);
    bad('c.json', '{\n"a": {"title": "t"},\n"b": {"title": 3}\n}', /^c\.json:3: paper "b": title: a number/);
    bad('m.bib', '@article{ok, title={Fine}}\n\n@article{broken, title={no end}\n', /^m\.bib: entry "broken" \(line 3\): /);
    bad('m.bib', '% nothing here\n', /^m\.bib: no papers found$/);
    bad('notes.txt', 'hello', /^notes\.txt: not a BibTeX, CSL-JSON or AQA corpus file/);
  });

  test('the SciFact fixtures: BibTeX and CSL-JSON hold the same papers as the corpus JSON', { skip: !existsSync(`${FIXTURES}/scifact.bib`) && 'no fixtures' }, () => {
    const corpus = parseLibrary('scifact.json', readFileSync(`${FIXTURES}/scifact.json`, 'utf8'));
    const bibLib = parseLibrary('scifact.bib', readFileSync(`${FIXTURES}/scifact.bib`, 'utf8'));
    const csl = parseLibrary('scifact-csl.json', readFileSync(`${FIXTURES}/scifact-csl.json`, 'utf8'));
    assert.ok(corpus.papers.length >= 200, `${corpus.papers.length} papers`);
    assert.equal(bibLib.format, 'bibtex');
    assert.equal(csl.format, 'csl-json');
    const plain = (l: typeof corpus) => l.papers.map((p) => ({ pid: p.pid, title: p.title, abstract: p.abstract }));
    assert.deepEqual(plain(bibLib), plain(corpus));
    assert.deepEqual(plain(csl), plain(corpus));
  });
});

describe('library build: stored vectors are reused', () => {
  /** A stand-in model: one "token" per text (its length), a vector made from it; counts what it embeds. */
  function fakeModel() {
    const embedded: number[] = [];
    const model = {
      dim: 4,
      settings: { pooling: 'mean', normalize: true, queryPrefix: '', passagePrefix: '' },
      tokenize: (texts: string[]) => texts.map((t) => [t.length]),
      embedTokens: async (encoded: number[][], o: { onProgress?: (p: { done: number; total: number; tokens: number }) => void }) => {
        const out = new Float32Array(encoded.length * 4);
        encoded.forEach(([n], i) => out.set([n / 100, 1 / n, 0.5, -n / 1000], i * 4));
        embedded.push(...encoded.map(([n]) => n));
        o.onProgress?.({ done: encoded.length, total: encoded.length, tokens: encoded.length });
        return out;
      },
    };
    return { model: model as unknown as EmbeddingModel, embedded };
  }
  const paper = (pid: string, title: string, abstract: string): LibraryPaper => ({ pid, title, abstract });
  const first = [paper('a', 'Alpha', 'First abstract.'), paper('b', 'Beta', 'Second abstract, longer.'), paper('c', 'Gamma', 'Third.')];

  test('only new or changed papers are embedded; the rows equal a full build', async () => {
    const one = fakeModel();
    const built = await buildLibrary(one.model, 'm', first, 32, () => {});
    assert.equal(built.reused, 0);
    assert.equal(one.embedded.length, 3);
    const rows = new Map(built.hashes.map((h, r) => [h, built.vectors.slice(r * 8, (r + 1) * 8)]));
    const asked: string[][] = [];
    const find = async (h: readonly string[]) => {
      asked.push([...h]);
      return new Map([...rows].filter(([k]) => h.includes(k)));
    };

    // An updated export: other ids and order, one abstract changed, one paper new.
    const next = [paper('c2', 'Gamma', 'Third.'), paper('a', 'Alpha', 'First abstract, revised.'), paper('d', 'Delta', 'New.'), paper('b', 'Beta', 'Second abstract, longer.')];
    const two = fakeModel();
    const progress: EmbedProgress[] = [];
    const again = await buildLibrary(two.model, 'm', next, 32, (p) => progress.push(p), find);
    assert.equal(asked.length, 1);
    assert.equal(again.reused, 2);
    assert.deepEqual(progress[0], { done: 0, total: 2, etaS: null, reused: 2 });
    assert.deepEqual(two.embedded, ['Alpha. First abstract, revised.'.length, 'Delta. New.'.length]);
    const full = await buildLibrary(fakeModel().model, 'm', next, 32, () => {});
    assert.deepEqual(again.vectors, full.vectors);
    assert.deepEqual(again.manifest, full.manifest);
    assert.deepEqual(again.hashes, full.hashes);

    // Everything stored: nothing to embed.
    const three = fakeModel();
    const same = await buildLibrary(three.model, 'm', first, 32, () => {}, find);
    assert.equal(same.reused, 3);
    assert.deepEqual(three.embedded, []);
    assert.deepEqual(same.vectors, built.vectors);
  });
});
