// AQA data on the training page: a corpus JSON {pid: {title, abstract}} and questions JSONL with
// gold pids, read with the CLI's parsers (core/data/corpus.ts, core/data/aqa.ts: the same
// one-line `file:line: field: what` errors), split into training and held-out questions
// (core/train/holdout.ts), and training groups mined with the current model as `aqa mine` does
// (core/retrieval/mine.ts with its defaults: positions 10-210, 15 negatives, seed 42, one group
// per question and gold paper). Host-neutral.
//
// What differs from `aqa mine` on an index built by `aqa index`: that index stores f16 vectors
// by default, the page searches the f32 vectors it just embedded (as `aqa index --dtype f32`
// does); passages are embedded with passage_max_len and questions with query_max_len (the CLI's
// --max-length of `aqa index` and of `aqa mine`), so mining sees the texts as training will.

import { type AqaQuestion, checkPids, DataError, parseQuestions } from '../../core/data/aqa.ts';
import { queryText } from '../../core/data/clean.ts';
import { parseCorpus } from '../../core/data/corpus.ts';
import { groupTexts, type PidGroup, type TrainGroup, trainingPairs } from '../../core/data/pairs.ts';
import { buildPassages, PASSAGE_MAX_CHARS, type Passages } from '../../core/data/passages.ts';
import { type MineOptions, type MineStats, mineHardNegatives } from '../../core/retrieval/mine.ts';
import { holdOut } from '../../core/train/holdout.ts';
import type { CorpusIndex, EvalSet } from './evaluate.ts';

/** The two files as text, with their names for messages. */
export interface AqaSource {
  corpus: string;
  corpusName: string;
  questions: string;
  questionsName: string;
}

export interface AqaData {
  passages: Passages;
  /** Questions with at least one gold pid in the corpus, in file order. */
  questions: AqaQuestion[];
  /** Non-fatal notes (gold pids the corpus lacks, skipped questions), one line each. */
  warnings: string[];
}

/** Parse and check both files; throws a one-line DataError naming the file (and line) on bad input. */
export function parseAqaData(src: AqaSource): AqaData {
  const { papers } = parseCorpus(src.corpus, src.corpusName);
  if (!papers.size) throw new DataError(`${src.corpusName}: no papers (expected {pid: {title, abstract}})`);
  const passages = buildPassages(papers, { maxChars: PASSAGE_MAX_CHARS });
  const { questions: all } = parseQuestions(src.questions, src.questionsName, { requirePids: true });
  const has = (pid: string) => passages.index.has(pid);
  const check = checkPids(all, has, src.questionsName);
  const warnings = check.missing ? [`${check.missing} gold pid(s) of ${check.questionsAffected} question(s) are not in ${src.corpusName}`, ...check.messages.slice(0, 3)] : [];
  const questions = all.filter((q) => q.pids?.some(has));
  if (all.length > questions.length) warnings.push(`${all.length - questions.length} question(s) have no gold pid in the corpus and are left out`);
  if (!questions.length) throw new DataError(`${src.questionsName}: no question has a gold pid in ${src.corpusName}`);
  return { passages, questions, warnings };
}

/** Training and held-out questions: each question is its own key (core/train/holdout.ts). */
export function splitAqa(questions: readonly AqaQuestion[], fraction: number, seed: number): { train: AqaQuestion[]; heldOut: AqaQuestion[] } {
  const s = holdOut(questions.map((_, i) => String(i)), { fraction, seed });
  return { train: s.train.map((i) => questions[i]), heldOut: s.heldOut.map((i) => questions[i]) };
}

/** The corpus and the held-out questions (query text as `aqa search` builds it, gold pids). */
export function aqaEvalSet(passages: Passages, heldOut: readonly AqaQuestion[]): EvalSet {
  return { pids: passages.pids, texts: passages.texts, questions: heldOut.map((q) => ({ text: queryText(q), pids: q.pids ?? [] })) };
}

/**
 * Training groups with hard negatives from `index` (the corpus embedded with the current model),
 * as `aqa mine` writes them for the same questions file: pairs from trainingPairs, one ranking
 * per question with a pair (range end results), mineHardNegatives over the corpus pids.
 */
export async function mineGroups(index: CorpusIndex, passages: Passages, questions: readonly AqaQuestion[], o: MineOptions = {}): Promise<{ groups: TrainGroup[]; pidGroups: PidGroup[]; stats: MineStats }> {
  const { pairs } = trainingPairs(questions, { has: (p) => passages.index.has(p) });
  if (!pairs.length) throw new DataError('no training question has a gold pid in the corpus');
  const passage = (pid: string) => {
    const i = passages.index.get(pid);
    return i === undefined ? undefined : passages.texts[i];
  };
  const range = o.range ?? [10, 210];
  const asked = [...new Set(pairs.map((p) => p.question))];
  const ranked = (await index.rank(asked.map((i) => queryText(questions[i])), range[1])).pids;
  const byQuestion = new Map(asked.map((q, i) => [q, ranked[i]]));
  const r = mineHardNegatives(pairs, (q) => byQuestion.get(q)!, passages.pids, { ...o, range, passage });
  return { groups: r.groups.map((g) => groupTexts(g, passage)), pidGroups: r.groups, stats: r.stats };
}
