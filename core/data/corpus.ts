// The AQA paper corpus, `{pid: {"title": str|null, "abstract": str|null}, ...}`, parsed
// incrementally: the real file holds ~466k papers in several hundred MB of one JSON object, which
// a JSON.parse of one string cannot take (V8 strings stop at ~512 MB; two copies would be held).
//
// CorpusParser is a small state machine for exactly this shape. It accepts text chunks of any
// size, cut anywhere (inside a key, a string, an escape), finds where each entry's value starts
// and ends (tracking strings, escapes and {}/[] depth; string bodies are skipped with indexOf,
// so the scan runs near memory speed), and hands only that one value to JSON.parse. So every
// entry is validated by the real JSON grammar, memory stays at one entry plus one chunk, and a
// bad entry can be skipped because its end is known. Structural damage (a missing ':' or ',')
// cannot be skipped: it is reported with the line and ends the parse.
//
// Policy, counted in CorpusStats: duplicate pids keep the FIRST entry (JSON.parse would keep the
// last; the first is what a streaming reader sees and is stable under appends); null/empty titles
// and abstracts become '' (the passage builder then uses what is left); entries whose text holds
// U+FFFD are counted, so a reader that repaired invalid UTF-8 can say where.

import { type Paper, DataError, describe, note } from './aqa.ts';

export interface CorpusEntry {
  pid: string;
  paper: Paper;
  /** 1-based line of the entry's key (the real file is one line; pretty-printed ones are not). */
  line: number;
}

export interface CorpusReadOptions {
  /** Skip and count entries whose value is not a valid paper instead of throwing (default false). */
  skipBad?: boolean;
}

export interface CorpusStats {
  file: string;
  /** Entries produced (first occurrence of each pid). */
  entries: number;
  /** Later entries of an already seen pid, dropped. */
  duplicates: number;
  /** Invalid entries skipped under skipBad. */
  skipped: number;
  /** Entries with a null, missing or blank title. */
  noTitle: number;
  /** Entries with a null, missing or blank abstract. */
  noAbstract: number;
  /** Entries with neither (kept, with an empty passage). */
  empty: number;
  /** Entries whose title or abstract contains U+FFFD. */
  withReplacement: number;
  /** Invalid UTF-8 sequences the byte reader replaced (set by node/data.ts; 0 for text input). */
  invalidUtf8: number;
  messages: string[];
}

function newCorpusStats(file: string): CorpusStats {
  return { file, entries: 0, duplicates: 0, skipped: 0, noTitle: 0, noAbstract: 0, empty: 0, withReplacement: 0, invalidUtf8: 0, messages: [] };
}

const enum S {
  Start, // before the opening '{'
  KeyOrEnd, // after '{' or ','
  Key, // inside a key string
  Colon,
  ValueStart,
  Value,
  AfterValue, // expecting ',' or '}'
  Done, // after the closing '}'
}

const isWs = (c: number) => c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0d || c === 0xfeff;

export class CorpusParser {
  readonly stats: CorpusStats;
  private state = S.Start;
  private line = 1;
  private afterComma = false;
  private parts: string[] = []; // pieces of the key or value being read
  private inString = false;
  private escape = false; // a backslash ended the previous chunk
  private depth = 0;
  private key = '';
  private keyLine = 1;
  private readonly seen = new Set<string>();

  constructor(
    readonly file: string,
    readonly opts: CorpusReadOptions = {},
  ) {
    this.stats = newCorpusStats(file);
  }

  private fail(what: string): never {
    throw new DataError(`${this.file}:${this.line}: ${what}`);
  }

  /** Feed the next piece of text; returns the entries completed by it. */
  push(chunk: string): CorpusEntry[] {
    const out: CorpusEntry[] = [];
    const n = chunk.length;
    let i = 0;
    let nextBs = -2; // cached position of the next backslash (-1 = none in this chunk)
    // Find the end of a string starting at i: returns the index after the closing quote, or n.
    const scanString = (): number => {
      let j = i;
      if (this.escape) {
        this.escape = false;
        j++;
      }
      for (;;) {
        if (j >= n) return n;
        const q = chunk.indexOf('"', j);
        if (nextBs !== -1 && nextBs < j) nextBs = chunk.indexOf('\\', j);
        if (nextBs !== -1 && (q === -1 || nextBs < q)) {
          j = nextBs + 2;
          if (j > n) {
            this.escape = true; // the escaped character is in the next chunk
            return n;
          }
          continue;
        }
        if (q === -1) return n;
        this.inString = false;
        return q + 1;
      }
    };
    while (i < n) {
      switch (this.state) {
        case S.Start:
        case S.KeyOrEnd:
        case S.Colon:
        case S.ValueStart:
        case S.AfterValue:
        case S.Done: {
          const c = chunk.charCodeAt(i);
          if (isWs(c)) {
            if (c === 0x0a) this.line++;
            i++;
            continue;
          }
          this.structural(c);
          if ((this.state as S) !== S.Value) i++; // a value's first character belongs to the value
          continue;
        }
        case S.Key: {
          const start = i;
          i = scanString();
          if (this.inString) {
            this.parts.push(chunk.slice(start, i));
            continue;
          }
          this.parts.push(chunk.slice(start, i - 1));
          const raw = this.parts.join('');
          this.parts = [];
          try {
            this.key = JSON.parse(`"${raw}"`) as string;
          } catch (e) {
            this.fail(`key "${raw.slice(0, 40)}": not a valid JSON string (${(e as Error).message})`);
          }
          this.state = S.Colon;
          continue;
        }
        case S.Value: {
          const start = i;
          let end = -1; // index after the value's last character, once known
          while (i < n) {
            if (this.inString) {
              i = scanString();
              continue;
            }
            const c = chunk.charCodeAt(i);
            if (c === 0x22) {
              this.inString = true;
              i++;
            } else if (c === 0x7b || c === 0x5b) {
              this.depth++;
              i++;
            } else if (c === 0x7d || c === 0x5d) {
              if (this.depth === 0) {
                end = i; // a primitive value ended by the outer '}'
                break;
              }
              i++;
              if (--this.depth === 0) {
                end = i;
                break;
              }
            } else if (this.depth === 0 && (c === 0x2c || isWs(c))) {
              end = i; // a primitive value ended by ',' or whitespace
              break;
            } else {
              if (c === 0x0a) this.line++;
              i++;
            }
          }
          if (end < 0) {
            this.parts.push(chunk.slice(start, n));
            continue;
          }
          this.parts.push(chunk.slice(start, end));
          const text = this.parts.join('');
          this.parts = [];
          this.state = S.AfterValue;
          const e = this.entry(text);
          if (e) out.push(e);
          continue;
        }
      }
    }
    return out;
  }

  /** Everything has been pushed: the object must be complete. */
  end(): CorpusEntry[] {
    if (this.state !== S.Done) {
      const where = this.state === S.Start ? 'empty input' : `input ended inside the object${this.key ? ` (last pid "${this.key}")` : ''}: truncated file?`;
      this.fail(where);
    }
    return [];
  }

  private structural(c: number): void {
    const ch = String.fromCharCode(c);
    switch (this.state) {
      case S.Start:
        if (ch !== '{') this.fail(`expected '{' (the corpus is one JSON object {pid: {title, abstract}}), got '${ch}'`);
        this.state = S.KeyOrEnd;
        this.afterComma = false;
        return;
      case S.KeyOrEnd:
        if (ch === '"') {
          this.state = S.Key;
          this.inString = true;
          this.keyLine = this.line;
          return;
        }
        if (ch === '}' && !this.afterComma) {
          this.state = S.Done;
          return;
        }
        this.fail(this.afterComma && ch === '}' ? `trailing ',' before '}'` : `expected a pid string, got '${ch}'`);
      case S.Colon:
        if (ch !== ':') this.fail(`expected ':' after pid "${this.key}", got '${ch}'`);
        this.state = S.ValueStart;
        return;
      case S.ValueStart:
        if (ch === ',' || ch === '}') this.fail(`pid "${this.key}": missing value`);
        this.state = S.Value;
        this.depth = 0;
        this.inString = false;
        return;
      case S.AfterValue:
        if (ch === ',') {
          this.state = S.KeyOrEnd;
          this.afterComma = true;
          return;
        }
        if (ch === '}') {
          this.state = S.Done;
          return;
        }
        this.fail(`expected ',' or '}' after the entry for pid "${this.key}", got '${ch}'`);
      case S.Done:
        this.fail(`unexpected '${ch}' after the corpus object's closing '}'`);
    }
  }

  /** Validate one entry's value text; null when skipped or a duplicate. */
  private entry(text: string): CorpusEntry | null {
    const s = this.stats;
    const pid = this.key;
    const where = `${this.file}:${this.keyLine}: paper "${pid}"`;
    const bad = (what: string): null => {
      if (!this.opts.skipBad) throw new DataError(`${where}: ${what}`);
      s.skipped++;
      note(s.messages, `${where}: ${what} (skipped)`);
      return null;
    };
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      return bad(`not valid JSON (${(e as Error).message})`);
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return bad(`expected an object {title, abstract}, got ${describe(v)}`);
    const o = v as Record<string, unknown>;
    for (const f of ['title', 'abstract'] as const) {
      const x = o[f];
      if (x !== undefined && x !== null && typeof x !== 'string') return bad(`${f}: ${describe(x)}, not a string or null`);
    }
    if (this.seen.has(pid)) {
      s.duplicates++;
      note(s.messages, `${where}: duplicate pid, the first entry is kept`);
      return null;
    }
    this.seen.add(pid);
    const title = typeof o.title === 'string' ? o.title : '';
    const abstract = typeof o.abstract === 'string' ? o.abstract : '';
    const noTitle = title.trim() === '';
    const noAbstract = abstract.trim() === '';
    if (noTitle) s.noTitle++;
    if (noAbstract) s.noAbstract++;
    if (noTitle && noAbstract) {
      s.empty++;
      note(s.messages, `${where}: no title and no abstract (kept, empty passage)`);
    }
    if (title.includes('\uFFFD') || abstract.includes('\uFFFD')) {
      if (s.withReplacement++ === 0) note(s.messages, `${where}: text contains U+FFFD (first such paper)`);
    }
    s.entries++;
    return { pid, paper: { title, abstract }, line: this.keyLine };
  }
}

/** Parse a whole corpus text (browser, tests) into a Map in file order. */
export function parseCorpus(text: string, file: string, opts: CorpusReadOptions = {}): { papers: Map<string, Paper>; stats: CorpusStats } {
  const p = new CorpusParser(file, opts);
  const papers = new Map<string, Paper>();
  for (const e of p.push(text)) papers.set(e.pid, e.paper);
  p.end();
  return { papers, stats: p.stats };
}
