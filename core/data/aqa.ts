// OAG-AQA records: validation of question lines and corpus entries, shared by the Node readers
// (node/data.ts, streaming from disk) and the browser (fetched text). No node:* imports here.
//
// Formats (KDD Cup 2024 OAG-AQA):
//   questions: JSONL, one `{"question": str, "body": html str, "pids": [str], "flag": 0|1}` per
//              line; `pids` is absent from the *_wo_ans files and `flag` only in qa_valid_flag.
//   corpus:    one JSON object `{pid: {"title": str|null, "abstract": str|null}}` (core/data/corpus.ts).
//
// Every problem is reported as one line `file:line: field: what`, because the fix is always in
// the file (a hand-edited line, a truncated download, the wrong file): the user needs to know
// where to look. With `skipBad` a malformed record is skipped and counted instead.

import { oneLine } from '../model/source.ts';
import { describeKind as describe } from '../util/fields.ts';

export interface AqaQuestion {
  question: string;
  /** Raw StackExchange HTML; '' when the file has none (SciFact claims) or holds null. */
  body: string;
  /** Gold paper ids; absent in *_wo_ans files. */
  pids?: string[];
  /** 1 = scored, 0 = ignored by the official metric; absent = scored (weight 1). */
  flag?: 0 | 1;
}

/** A paper as stored: either field may be null or empty in the wild. */
export interface Paper {
  title: string;
  abstract: string;
}

/** A data-file problem, already formatted as one line naming the file and line. */
export class DataError extends Error {
  override name = 'DataError';
  constructor(message: string) {
    super(oneLine(message));
  }
}

/** How many example messages a reader keeps per file; the counts are always complete. */
const MAX_MESSAGES = 10;

/** Append `msg` to `list` while it is short: a file with 100k bad lines must not hold 100k strings. */
export function note(list: string[], msg: string): void {
  if (list.length < MAX_MESSAGES) list.push(oneLine(msg));
}

/** "a number", "null", "an array": what a JSON value is, for messages. */
export { describe };

export interface QuestionRules {
  /** Training/validation files: a missing `pids` field is an error (default false). */
  requirePids?: boolean;
  /** qa_valid_flag files: a missing `flag` is an error (default false). */
  requireFlag?: boolean;
}

/**
 * Check one parsed JSON value against the question schema. Returns the record or a message
 * `field: what` (without the file:line prefix, which the caller knows).
 */
export function validateQuestion(obj: unknown, rules: QuestionRules = {}): AqaQuestion | string {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return `expected a JSON object, got ${describe(obj)}`;
  const o = obj as Record<string, unknown>;
  if (typeof o.question !== 'string') return `question: ${o.question === undefined ? 'missing' : `${describe(o.question)}, not a string`}`;
  // body: null and missing both mean "no body" (SciFact claims have ""); anything else is corrupt.
  if (o.body !== undefined && o.body !== null && typeof o.body !== 'string') return `body: ${describe(o.body)}, not a string`;
  const rec: AqaQuestion = { question: o.question, body: typeof o.body === 'string' ? o.body : '' };
  if (o.pids !== undefined) {
    if (!Array.isArray(o.pids)) return `pids: ${describe(o.pids)}, not an array of strings`;
    const bad = o.pids.findIndex((p) => typeof p !== 'string');
    if (bad >= 0) return `pids: element ${bad} is ${describe(o.pids[bad])}, not a string`;
    rec.pids = o.pids as string[];
  } else if (rules.requirePids) {
    return 'pids: missing (this file must list the gold paper ids)';
  }
  if (o.flag !== undefined) {
    if (o.flag !== 0 && o.flag !== 1) return `flag: must be 0 or 1, got ${JSON.stringify(o.flag) ?? describe(o.flag)}`;
    rec.flag = o.flag;
  } else if (rules.requireFlag) {
    return 'flag: missing (expected 0 or 1)';
  }
  return rec;
}

export interface QuestionReadOptions extends QuestionRules {
  /** Skip and count malformed lines instead of throwing (default false). */
  skipBad?: boolean;
}

export interface QuestionStats {
  file: string;
  /** Lines seen, blank ones included. */
  lines: number;
  /** Valid records produced. */
  records: number;
  /** Blank lines (ignored: they carry no record). */
  blank: number;
  /** Malformed lines skipped under skipBad. */
  skipped: number;
  /** Lines whose bytes were not valid UTF-8 (decoded with U+FFFD in place of the bad bytes). */
  invalidUtf8: number;
  /** The first MAX_MESSAGES warnings, one line each, `file:line: ...`. */
  messages: string[];
}

function newQuestionStats(file: string): QuestionStats {
  return { file, lines: 0, records: 0, blank: 0, skipped: 0, invalidUtf8: 0, messages: [] };
}

/**
 * Line-by-line question parser: the Node reader feeds it lines from a byte stream, the browser
 * the lines of a fetched text. `lineNo` is 1-based; `invalidUtf8` says the line's bytes had to be
 * repaired (the caller decodes). Returns null for blank and skipped lines.
 */
export class QuestionParser {
  readonly stats: QuestionStats;

  constructor(
    readonly file: string,
    readonly opts: QuestionReadOptions = {},
  ) {
    this.stats = newQuestionStats(file);
  }

  line(text: string, lineNo: number, invalidUtf8 = false): AqaQuestion | null {
    const s = this.stats;
    s.lines++;
    if (invalidUtf8) {
      s.invalidUtf8++;
      note(s.messages, `${this.file}:${lineNo}: invalid UTF-8 replaced with U+FFFD`);
    }
    if (text.trim() === '') {
      s.blank++;
      return null;
    }
    let problem: string;
    let obj: unknown;
    try {
      obj = JSON.parse(text);
      const r = validateQuestion(obj, this.opts);
      if (typeof r !== 'string') {
        s.records++;
        return r;
      }
      problem = r;
    } catch (e) {
      problem = `not valid JSON (${(e as Error).message})`;
    }
    const msg = `${this.file}:${lineNo}: ${problem}`;
    if (!this.opts.skipBad) throw new DataError(msg);
    s.skipped++;
    note(s.messages, `${msg} (skipped)`);
    return null;
  }
}

/** Parse a whole JSONL text (browser, tests). Lines split on \n; a trailing \r is dropped. */
export function parseQuestions(text: string, file: string, opts: QuestionReadOptions = {}): { questions: AqaQuestion[]; stats: QuestionStats } {
  const p = new QuestionParser(file, opts);
  const questions: AqaQuestion[] = [];
  const lines = text.split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop(); // the final newline ends a line, it does not start one
  lines.forEach((l, i) => {
    const q = p.line(l.endsWith('\r') ? l.slice(0, -1) : l, i + 1);
    if (q) questions.push(q);
  });
  return { questions, stats: p.stats };
}

export interface PidCheck {
  /** Gold pid mentions not found in the corpus. */
  missing: number;
  /** Questions with at least one missing gold pid. */
  questionsAffected: number;
  /** Questions whose gold pids are all missing (they cannot be trained on or scored fairly). */
  questionsWithoutKnown: number;
  messages: string[];
}

/**
 * Gold pids absent from the corpus: counted and reported, never fatal (the real AQA files cite
 * papers the released corpus lacks). `has` is e.g. `(pid) => corpus.has(pid)`.
 */
export function checkPids(questions: readonly AqaQuestion[], has: (pid: string) => boolean, file = 'questions'): PidCheck {
  const r: PidCheck = { missing: 0, questionsAffected: 0, questionsWithoutKnown: 0, messages: [] };
  questions.forEach((q, i) => {
    if (!q.pids?.length) return;
    const gone = q.pids.filter((p) => !has(p));
    if (!gone.length) return;
    r.missing += gone.length;
    r.questionsAffected++;
    if (gone.length === q.pids.length) r.questionsWithoutKnown++;
    note(r.messages, `${file}: question ${i + 1}: pids: ${gone.slice(0, 3).join(', ')}${gone.length > 3 ? ', ...' : ''} not in the corpus`);
  });
  return r;
}
