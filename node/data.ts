// AQA files from disk, streamed: question JSONL line by line, the corpus JSON object entry by
// entry (core/data/corpus.ts; the real file is hundreds of MB in one object), results and
// training groups as JSONL; writes are atomic (node/files.ts).
//
// Bytes are split into lines before decoding, so each line is decoded on its own and a line with
// invalid UTF-8 is named (`file:line: invalid UTF-8 replaced with U+FFFD`), as `aqa embed` does.
// The corpus is decoded as a stream; the count of invalid sequences is the number of U+FFFD the
// decoder produced minus the U+FFFD already in the file (bytes EF BF BD), so genuine U+FFFD
// characters are not reported as damage.

import { isUtf8 } from 'node:buffer';
import { createReadStream } from 'node:fs';
import type { AqaQuestion, Paper, QuestionReadOptions, QuestionStats } from '../core/data/aqa.ts';
import { DataError, QuestionParser } from '../core/data/aqa.ts';
import { type CorpusEntry, CorpusParser, type CorpusReadOptions, type CorpusStats } from '../core/data/corpus.ts';
import { type PassageOptions, type Passages, passageText } from '../core/data/passages.ts';
import { type TrainGroup, formatGroupLine, parseGroupLine, type PidGroup } from '../core/data/pairs.ts';
import { type ScoreMap, type SubmissionOptions, type SubmissionStats, formatResultLine, formatSubmission, parseResultLine, RESULTS_K } from '../core/retrieval/results.ts';
import { writeFileAtomic } from './files.ts';

const CHUNK = 1 << 20; // 1 MiB reads: ~470 for the real corpus, each far below the decode cost

function openError(path: string, e: unknown): DataError {
  return new DataError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
}

async function* byteChunks(path: string): AsyncGenerator<Buffer> {
  const stream = createReadStream(path, { highWaterMark: CHUNK });
  try {
    for await (const chunk of stream) yield chunk as Buffer;
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw openError(path, e);
  } finally {
    stream.destroy();
  }
}

export interface Line {
  text: string;
  /** 1-based. */
  line: number;
  /** The line's bytes were not valid UTF-8 and were decoded with U+FFFD. */
  invalidUtf8: boolean;
}

/**
 * Lines of a file, split on \n (a trailing \r is dropped) and decoded one by one. A line may
 * be any length (a 26 kB body, or megabytes): its pieces are joined once, when it ends.
 */
export async function* readLines(path: string): AsyncGenerator<Line> {
  const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }); // a BOM is dropped by hand, on line 1 only
  let parts: Buffer[] = [];
  let lineNo = 0;
  const emit = (bytes: Buffer): Line => {
    lineNo++;
    let end = bytes.length;
    if (end && bytes[end - 1] === 0x0d) end--;
    const b = bytes.subarray(lineNo === 1 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0, end);
    const text = decoder.decode(b);
    return { text, line: lineNo, invalidUtf8: text.includes('\uFFFD') && !isUtf8(b) };
  };
  for await (const chunk of byteChunks(path)) {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      const piece = chunk.subarray(start, nl);
      const bytes = parts.length ? Buffer.concat([...parts, piece]) : piece;
      parts = [];
      yield emit(bytes);
      start = nl + 1;
    }
    if (start < chunk.length) parts.push(chunk.subarray(start));
  }
  if (parts.length) yield emit(Buffer.concat(parts)); // a last line without a final newline
}

export interface QuestionReader {
  /** Filled while `records` is iterated; complete once it ends. */
  stats: QuestionStats;
  records: AsyncIterable<AqaQuestion>;
}

/** Stream the questions of a JSONL file, validating each line (see core/data/aqa.ts). */
export function streamQuestions(path: string, opts: QuestionReadOptions = {}): QuestionReader {
  const parser = new QuestionParser(path, opts);
  return {
    stats: parser.stats,
    records: (async function* () {
      for await (const l of readLines(path)) {
        const q = parser.line(l.text, l.line, l.invalidUtf8);
        if (q) yield q;
      }
    })(),
  };
}

export async function readQuestions(path: string, opts: QuestionReadOptions = {}): Promise<{ questions: AqaQuestion[]; stats: QuestionStats }> {
  const r = streamQuestions(path, opts);
  const questions: AqaQuestion[] = [];
  for await (const q of r.records) questions.push(q);
  return { questions, stats: r.stats };
}

const FFFD_BYTES = Buffer.from([0xef, 0xbf, 0xbd]);

/** Counts byte sequences EF BF BD (an encoded U+FFFD) across chunk boundaries. */
class ReplacementBytes {
  count = 0;
  private tail = Buffer.alloc(0);
  add(chunk: Buffer): void {
    if (this.tail.length) {
      const w = Buffer.concat([this.tail, chunk.subarray(0, 2)]);
      for (let i = 0; i < this.tail.length && i + 3 <= w.length; i++) if (w[i] === 0xef && w[i + 1] === 0xbf && w[i + 2] === 0xbd) this.count++;
    }
    for (let i = chunk.indexOf(FFFD_BYTES); i >= 0; i = chunk.indexOf(FFFD_BYTES, i + 3)) this.count++;
    this.tail = Buffer.from(chunk.subarray(Math.max(0, chunk.length - 2)));
  }
}

function countChar(s: string, ch: string): number {
  let n = 0;
  for (let i = s.indexOf(ch); i >= 0; i = s.indexOf(ch, i + 1)) n++;
  return n;
}

export interface CorpusReader {
  /** Filled while `entries` is iterated; complete (incl. invalidUtf8) once it ends. */
  stats: CorpusStats;
  entries: AsyncIterable<CorpusEntry>;
}

/**
 * Stream the corpus `{pid: {title, abstract}}` entry by entry: memory holds one 1 MiB chunk and
 * the entry being parsed, never the file. Duplicate pids keep the first entry (counted).
 */
export function streamCorpus(path: string, opts: CorpusReadOptions = {}): CorpusReader {
  const parser = new CorpusParser(path, opts);
  const stats = parser.stats;
  return {
    stats,
    entries: (async function* () {
      const decoder = new TextDecoder('utf-8', { fatal: false });
      const raw = new ReplacementBytes();
      let decodedFFFD = 0;
      const take = (text: string) => {
        decodedFFFD += countChar(text, '\uFFFD');
        return parser.push(text);
      };
      for await (const chunk of byteChunks(path)) {
        raw.add(chunk);
        yield* take(decoder.decode(chunk, { stream: true }));
      }
      yield* take(decoder.decode());
      stats.invalidUtf8 = decodedFFFD - raw.count;
      if (stats.invalidUtf8 > 0) stats.messages.push(`${path}: ${stats.invalidUtf8} invalid UTF-8 sequence(s) replaced with U+FFFD`);
      parser.end();
    })(),
  };
}

export async function readCorpus(path: string, opts: CorpusReadOptions = {}): Promise<{ papers: Map<string, Paper>; stats: CorpusStats }> {
  const r = streamCorpus(path, opts);
  const papers = new Map<string, Paper>();
  for await (const e of r.entries) papers.set(e.pid, e.paper);
  return { papers, stats: r.stats };
}

/**
 * Passages straight from the corpus file, without holding the papers: each entry becomes its
 * cut passage at once (2,000 characters instead of a full abstract, ~30% less memory on AQA).
 */
export async function readPassages(path: string, opts: CorpusReadOptions & PassageOptions = {}): Promise<{ passages: Passages; stats: CorpusStats }> {
  const r = streamCorpus(path, opts);
  const passages: Passages = { pids: [], texts: [], index: new Map() };
  for await (const e of r.entries) {
    passages.index.set(e.pid, passages.pids.length);
    passages.pids.push(e.pid);
    passages.texts.push(passageText(e.paper, opts));
  }
  return { passages, stats: r.stats };
}

/** Lines as UTF-8 chunks of ~1 MiB for writeFileAtomic, each line ended by \n. */
function* jsonlChunks(lines: Iterable<string>): Generator<Uint8Array> {
  const enc = new TextEncoder();
  let buf: string[] = [];
  let size = 0;
  for (const l of lines) {
    buf.push(l, '\n');
    size += l.length + 1;
    if (size >= CHUNK) {
      yield enc.encode(buf.join(''));
      buf = [];
      size = 0;
    }
  }
  if (buf.length) yield enc.encode(buf.join(''));
}

/** Write lines (no newlines inside) as a JSONL file, atomically. */
export async function writeLines(path: string, lines: Iterable<string>): Promise<void> {
  await writeFileAtomic(path, jsonlChunks(lines));
}

/** Per-question top-k `{pid: score}` lines, in question order. */
export async function writeResults(path: string, perQuestion: readonly ScoreMap[], k = RESULTS_K): Promise<void> {
  await writeLines(
    path,
    (function* () {
      for (const m of perQuestion) yield formatResultLine(m, k);
    })(),
  );
}

/** Read a results file: one score map per line (every line is a question; blank lines are errors; scores finite). */
export async function readResults(path: string): Promise<ScoreMap[]> {
  const out: ScoreMap[] = [];
  for await (const l of readLines(path)) {
    if (l.invalidUtf8) throw new DataError(`${path}:${l.line}: invalid UTF-8`);
    const scores = parseResultLine(l.text, `${path}:${l.line}`);
    // JSON numbers beyond float64 (1e400) parse as Infinity; fusion would silently zero the line.
    for (const [pid, s] of scores) if (!Number.isFinite(s)) throw new DataError(`${path}:${l.line}: ${pid}: score ${s} is not a finite number`);
    out.push(scores);
  }
  return out;
}

/** The official submission file: `questions` lines of exactly 20 distinct pids (see results.ts). */
export async function writeSubmission(path: string, rankings: readonly (readonly string[])[], opts: SubmissionOptions): Promise<SubmissionStats> {
  const { text, stats } = formatSubmission(rankings, opts);
  await writeFileAtomic(path, text);
  return stats;
}

/** FlagEmbedding training groups `{query, pos, neg}` as JSONL. */
export async function writeGroups(path: string, groups: Iterable<TrainGroup | PidGroup>): Promise<void> {
  await writeLines(
    path,
    (function* () {
      for (const g of groups) yield formatGroupLine(g);
    })(),
  );
}

/** Read training groups; blank lines are skipped, anything malformed is an error naming the line. */
export async function readGroups(path: string): Promise<TrainGroup[]> {
  const out: TrainGroup[] = [];
  for await (const l of readLines(path)) {
    if (l.text.trim() === '') continue;
    if (l.invalidUtf8) throw new DataError(`${path}:${l.line}: invalid UTF-8`);
    out.push(parseGroupLine(l.text, `${path}:${l.line}`));
  }
  return out;
}
