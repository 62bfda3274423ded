// A file of one's own papers -> AQA corpus entries {pid, title, abstract, doi?, url?}, for the
// demo's "Search your own papers". Pure (no DOM, no fetch), so Node tests run it too.
//
// Formats, told apart by the file name, else by the first character of the text:
//   BibTeX (.bib, or text starting with '@')   @retorquere/bibtex-parser, the parser behind
//       Better BibTeX for Zotero: LaTeX turned into Unicode (M{\"u}ller -> Müller, \% -> %),
//       titles kept as written (no sentence casing). pid = the citation key; title, abstract,
//       doi, url from the fields of the same names.
//   CSL-JSON (.json holding an array)          as Zotero exports it: id, title, abstract, DOI, URL.
//   AQA corpus JSON (.json holding an object)  {pid: {title, abstract}} (core/data/corpus.ts),
//       with optional doi / url per entry as the demo's corpus allows.
//   AQA corpus JSONL (.jsonl, .ndjson)         one {pid, title, abstract, doi?, url?} per line.
// Duplicate pids keep the first entry (as core/data/corpus.ts does) and are counted. An entry
// with neither title nor abstract has nothing to search and is an error. Every error is one
// line naming the file, the entry (with its line where the format has lines) and the field.

import { parse as parseBibtex } from '@retorquere/bibtex-parser';
import { parseCorpus } from '../../core/data/corpus.ts';
import type { LibraryPaper } from './papers.ts';

export { type LibraryPaper, toCorpusJson } from './papers.ts';

export type LibraryFormat = 'bibtex' | 'csl-json' | 'aqa-json' | 'aqa-jsonl';


export interface Library {
  format: LibraryFormat;
  papers: LibraryPaper[];
  /** Later entries of a pid already seen, dropped. */
  duplicates: number;
  /** Papers with a title but no abstract (searched by title alone). */
  noAbstract: number;
}

export class LibraryError extends Error {
  override name = 'LibraryError';
}

/** Which parser a file goes to. */
export function detectFormat(name: string, text: string): LibraryFormat {
  const lower = name.toLowerCase();
  if (lower.endsWith('.bib') || lower.endsWith('.bibtex')) return 'bibtex';
  if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson')) return 'aqa-jsonl';
  const first = text.replace(/^\uFEFF/, '').trimStart()[0];
  if (first === '[') return 'csl-json';
  if (first === '{') {
    // One JSON object per line is JSONL; one object over the whole text is the corpus JSON.
    const lines = text.split('\n').filter((l) => l.trim());
    if (lines.length > 1 && lines.every((l) => l.trim().startsWith('{') && l.trim().endsWith('}'))) {
      try {
        JSON.parse(lines[0]);
        return 'aqa-jsonl';
      } catch {
        // not a complete object on its own line: the pretty-printed corpus JSON
      }
    }
    return 'aqa-json';
  }
  if (first === '@' || first === '%') return 'bibtex';
  throw new LibraryError(`${name}: not a BibTeX, CSL-JSON or AQA corpus file (expected a .bib, .json or .jsonl file; it starts with ${JSON.stringify(first ?? '')})`);
}

/** Parse a picked or dropped file's text. */
export function parseLibrary(name: string, text: string): Library {
  const format = detectFormat(name, text);
  const acc = new Accumulator(name, format);
  if (format === 'bibtex') readBibtex(name, text, acc);
  else if (format === 'csl-json') readCsl(name, text, acc);
  else if (format === 'aqa-jsonl') readJsonl(name, text, acc);
  else readCorpusJson(name, text, acc);
  if (!acc.papers.length) throw new LibraryError(`${name}: no papers found`);
  return { format, papers: acc.papers, duplicates: acc.duplicates, noAbstract: acc.noAbstract };
}

class Accumulator {
  papers: LibraryPaper[] = [];
  duplicates = 0;
  noAbstract = 0;
  private seen = new Set<string>();

  constructor(
    readonly file: string,
    readonly format: LibraryFormat,
  ) {}

  /** `where` names the entry: `entry "key" (line 12)`. */
  add(where: string, fields: { pid: unknown; title: unknown; abstract: unknown; doi?: unknown; url?: unknown }): void {
    const at = `${this.file}: ${where}`;
    const pid = typeof fields.pid === 'number' && Number.isFinite(fields.pid) ? String(fields.pid) : fields.pid;
    if (typeof pid !== 'string' || !pid.trim()) throw new LibraryError(`${at}: id: expected a non-empty string, got ${describe(fields.pid)}`);
    const text = (f: 'title' | 'abstract' | 'doi' | 'url'): string => {
      const v = fields[f];
      if (v === undefined || v === null) return '';
      if (typeof v !== 'string') throw new LibraryError(`${at}: ${f}: expected a string, got ${describe(v)}`);
      return v.trim();
    };
    const title = text('title');
    const abstract = text('abstract');
    if (!title && !abstract) throw new LibraryError(`${at}: title, abstract: both missing or empty, nothing to search`);
    if (this.seen.has(pid)) {
      this.duplicates++;
      return;
    }
    this.seen.add(pid);
    if (!abstract) this.noAbstract++;
    const p: LibraryPaper = { pid, title, abstract };
    const doi = text('doi');
    const url = text('url');
    if (doi) p.doi = doi;
    if (url) p.url = url;
    this.papers.push(p);
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${JSON.stringify(v)?.slice(0, 40)}`;
}

/** 1-based line of character offset `at`. */
function lineAt(text: string, at: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i !== -1 && i < at; i = text.indexOf('\n', i + 1)) line++;
  return line;
}

function readBibtex(name: string, text: string, acc: Accumulator): void {
  let lib: ReturnType<typeof parseBibtex>;
  try {
    // english: false keeps titles as written; unknown TeX commands are dropped, not fatal.
    lib = parseBibtex(text, { english: false, caseProtection: false, unsupported: 'ignore' });
  } catch (e) {
    throw new LibraryError(`${name}: not valid BibTeX: ${oneLine((e as Error).message)}`);
  }
  if (lib.errors.length) {
    const err = lib.errors[0];
    const at = err.input ? text.indexOf(err.input) : -1;
    const key = /^\s*@\w+\s*[{(]\s*([^,\s]+)/.exec(err.input ?? '')?.[1];
    const where = key ? `entry "${key}"${at >= 0 ? ` (line ${lineAt(text, at)})` : ''}` : at >= 0 ? `line ${lineAt(text, at)}` : 'BibTeX';
    throw new LibraryError(`${name}: ${where}: ${oneLine(err.error)}`);
  }
  let from = 0;
  for (const e of lib.entries) {
    const at = e.input ? text.indexOf(e.input, from) : -1;
    if (at >= 0) from = at + e.input.length;
    const f = e.fields as Record<string, unknown>;
    // NFC: the LaTeX conversion writes accents as combining marks (M{\"u} -> u + U+0308).
    const nfc = (v: unknown) => (typeof v === 'string' ? v.normalize('NFC') : v);
    acc.add(`entry "${e.key}"${at >= 0 ? ` (line ${lineAt(text, at)})` : ''}`, { pid: e.key, title: nfc(f.title), abstract: nfc(f.abstract), doi: f.doi, url: f.url });
  }
}

function parseJson(name: string, text: string): unknown {
  try {
    return JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (e) {
    throw new LibraryError(`${name}: not valid JSON: ${oneLine((e as Error).message)}`);
  }
}

function readCsl(name: string, text: string, acc: Accumulator): void {
  const items = parseJson(name, text);
  if (!Array.isArray(items)) throw new LibraryError(`${name}: expected a CSL-JSON array of items`);
  items.forEach((it, i) => {
    if (!it || typeof it !== 'object' || Array.isArray(it)) throw new LibraryError(`${name}: item ${i + 1}: expected an object, got ${describe(it)}`);
    const o = it as Record<string, unknown>;
    acc.add(`item ${i + 1}${typeof o.id === 'string' || typeof o.id === 'number' ? ` "${o.id}"` : ''}`, { pid: o.id, title: o.title, abstract: o.abstract, doi: o.DOI ?? o.doi, url: o.URL ?? o.url });
  });
}

function readJsonl(name: string, text: string, acc: Accumulator): void {
  text
    .replace(/^\uFEFF/, '')
    .split('\n')
    .forEach((raw, i) => {
      const line = raw.trim();
      if (!line) return;
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch (e) {
        throw new LibraryError(`${name}:${i + 1}: not valid JSON: ${oneLine((e as Error).message)}`);
      }
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw new LibraryError(`${name}:${i + 1}: expected an object {pid, title, abstract}, got ${describe(v)}`);
      const o = v as Record<string, unknown>;
      acc.add(`line ${i + 1}`, { pid: o.pid, title: o.title, abstract: o.abstract, doi: o.doi ?? o.DOI, url: o.url ?? o.URL });
    });
}

function readCorpusJson(name: string, text: string, acc: Accumulator): void {
  let parsed;
  try {
    parsed = parseCorpus(text, name);
  } catch (e) {
    throw new LibraryError(oneLine((e as Error).message));
  }
  const { papers, stats } = parsed;
  acc.duplicates += stats.duplicates;
  // The corpus parser checks title and abstract; doi / url ride along in the same entries.
  const extra = parseJson(name, text) as Record<string, Record<string, unknown>>;
  for (const [pid, p] of papers) {
    const e = extra[pid] ?? {};
    acc.add(`paper "${pid}"`, { pid, title: p.title, abstract: p.abstract, doi: e.doi ?? e.DOI, url: e.url ?? e.URL });
  }
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}
