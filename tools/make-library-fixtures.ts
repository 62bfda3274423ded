// Writes test/fixtures/library/: the first PAPERS papers of the demo's SciFact sample
// (demo/data/pipeline/corpus.json, real abstracts) as the files a person would drop on the demo
// page's "Search your own papers":
//   scifact.json      the AQA corpus JSON {pid: {title, abstract}} (what aqa index --corpus reads)
//   scifact.bib       BibTeX, one @article per paper, key = pid, TeX specials escaped
//   scifact-csl.json  CSL-JSON as Zotero exports it: [{id, type, title, abstract}]
// Whitespace runs are one space in all three. All three parse (demo/library/parse.ts) to the same papers; test/library-parse.test.ts checks.
//
//   node --import tsx tools/make-library-fixtures.ts

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { parseCorpus } from '../core/data/corpus.ts';

const SOURCE = 'demo/data/pipeline/corpus.json';
const OUT = 'test/fixtures/library';
/** Enough for a real ranking (the demo tests ask for >= 200), small enough to embed quickly. */
const PAPERS = 240;

/** Characters that need a command rather than a backslash (< and > would print as ¡ and ¿ in OT1). */
const TEX_SPECIAL: Record<string, string> = { '\\': '\\textbackslash{}', '^': '\\textasciicircum{}', '~': '\\textasciitilde{}', '<': '\\textless{}', '>': '\\textgreater{}' };

/** Text -> a BibTeX field value that the parser reads back unchanged. */
function tex(s: string): string {
  return s
    .replace(/[\\{}$&%#_^~<>]/g, (c) => TEX_SPECIAL[c] ?? `\\${c}`)
    .replace(/-(?=-)/g, '-{}') // "--" would become an en dash
    .replace(/([`'])(?=\1)/g, '$1{}') // `` and '' would become curly quotes
    .replace(/([!?])`/g, '$1{}`'); // !` and ?` would become inverted marks
}

const { papers } = parseCorpus(readFileSync(SOURCE, 'utf8'), SOURCE);
// Whitespace runs become one space: BibTeX reads any run (a line break too) as one space, and
// all three files must hold the same text.
const flat = (s: string) => s.replace(/\s+/g, ' ').trim();
const chosen = [...papers].slice(0, PAPERS).map(([pid, p]) => ({ pid, title: flat(p.title), abstract: flat(p.abstract) }));
mkdirSync(OUT, { recursive: true });
writeFileSync(`${OUT}/scifact.json`, `${JSON.stringify(Object.fromEntries(chosen.map((p) => [p.pid, { title: p.title, abstract: p.abstract }])), null, 1)}\n`);
writeFileSync(`${OUT}/scifact.bib`, chosen.map((p) => `@article{${p.pid},\n  title = {${tex(p.title)}},\n  abstract = {${tex(p.abstract)}}\n}\n`).join('\n'));
writeFileSync(`${OUT}/scifact-csl.json`, `${JSON.stringify(chosen.map((p) => ({ id: p.pid, type: 'article-journal', title: p.title, abstract: p.abstract })), null, 2)}\n`);
console.log(`${OUT}: ${chosen.length} papers from ${SOURCE}`);
