// What `aqa search` and `aqa mine` share: an index with its query model (the one it was built
// with unless --model names another copy), a question file, and embedding + exact top-k search
// of the questions on the GPU. Loaded by those commands' actions only.

import { extname } from 'node:path';
import type { AqaQuestion } from '../core/data/aqa.ts';
import { checkPids } from '../core/data/aqa.ts';
import { queryText } from '../core/data/clean.ts';
import type { Gpu } from '../core/gpu/device.ts';
import { fmtBytes } from '../core/gpu/device.ts';
import type { Precision } from '../core/model/load.ts';
import { TOPK_MAX_K } from '../core/kernels/topk.ts';
import { info, loadModel, resolveModelDir, warn } from './command-model.ts';
import { readLines, readQuestions } from './data.ts';
import { readInputTexts } from './embed-command.ts';
import { checkSameModel, describeModel, IndexError, type ModelDescription, type OpenIndex, openIndex, retrieve, uploadIndex } from './index-store.ts';
import { progress } from './progress.ts';

/** The index and its query model, checked to be the model the index was built with. */
export async function openForQueries(indexDir: string, modelArg: string | undefined, maxLength: number | undefined) {
  const index = await openIndex(indexDir);
  return { index, desc: await queryModelFor(index, modelArg, maxLength) };
}

/** The query model of an opened index (or of an export that carries its manifest). */
export async function queryModelFor(index: OpenIndex, modelArg: string | undefined, maxLength: number | undefined) {
  const indexDir = index.dir;
  const name = modelArg ?? index.manifest.model.dir;
  let dir: string;
  try {
    dir = await resolveModelDir(name);
  } catch (e) {
    if (modelArg) throw e;
    // The folder recorded at build time is gone: try the name it was given as (a Hub id).
    dir = await resolveModelDir(index.manifest.model.name).catch(() => {
      throw new IndexError(`${indexDir}: the model it was built with (${index.manifest.model.dir}) is gone; pass it with --model`);
    });
  }
  const desc = await describeModel(dir, modelArg ?? index.manifest.model.name, maxLength);
  checkSameModel(index, desc);
  return desc;
}

/**
 * The precision queries run in: the one asked for, else the one the index's passages were
 * embedded in. Asking for another one works (the vectors stay comparable) but is said once.
 */
export function queryPrecision(index: OpenIndex, asked: Precision | undefined): Precision {
  const built = index.manifest.identity.precision;
  if (asked && asked !== built) warn(`${index.dir}: passages were embedded in ${built}, queries run in ${asked}`);
  return asked ?? built;
}

/** A .txt file whose first non-blank line is not a JSON object: plain questions, one per line. */
async function isPlainText(path: string): Promise<boolean> {
  if (extname(path).toLowerCase() !== '.txt') return false;
  for await (const l of readLines(path)) if (l.text.trim() !== '') return !l.text.trimStart().startsWith('{');
  return false;
}

/**
 * The questions of an AQA JSONL file (the AQA release names them qa_*.txt), or of a plain .txt
 * file with one question per line, as `aqa embed` reads it (no gold pids, so not for `aqa
 * mine`). Warns about questions whose query text is empty: each would be searched as an empty
 * input.
 */
export async function readQuestionFile(path: string, requirePids: boolean): Promise<AqaQuestion[]> {
  let questions: AqaQuestion[];
  if (await isPlainText(path)) {
    if (requirePids) throw new IndexError(`${path}: a .txt file has no gold pids; give the questions as JSONL with "pids"`);
    const { texts, warnings } = await readInputTexts(path);
    for (const msg of warnings) warn(msg);
    questions = texts.map((question) => ({ question, body: '' }));
  } else {
    const r = await readQuestions(path, { requirePids });
    for (const msg of r.stats.messages) warn(msg);
    questions = r.questions;
  }
  if (!questions.length) throw new IndexError(`${path}: no questions`);
  const empty = questions.flatMap((q, i) => (queryText(q).trim() === '' ? [i + 1] : []));
  if (empty.length) {
    const which = `${empty.slice(0, 5).join(', ')}${empty.length > 5 ? ', ...' : ''}`;
    warn(`${path}: ${empty.length} empty question(s) (question ${which}): each is searched as an empty query ([CLS] [SEP])`);
  }
  return questions;
}

export function warnMissingPids(index: OpenIndex, questions: readonly AqaQuestion[], file: string): void {
  const inIndex = new Set(index.pids);
  const r = checkPids(questions, (p) => inIndex.has(p), file);
  if (!r.missing) return;
  warn(`${r.missing} gold pid(s) of ${r.questionsAffected} question(s) are not in the index (${r.questionsWithoutKnown} question(s) have none left)`);
  for (const msg of r.messages.slice(0, 3)) warn(msg);
}

/** `what` (an option) asks for more results than one search returns. */
export function checkK(what: string, k: number): void {
  if (k > TOPK_MAX_K) throw new IndexError(`${what}: ${k} is more than the ${TOPK_MAX_K} results a search can return`);
}

export async function embedAndSearch(gpu: Gpu, index: OpenIndex, desc: ModelDescription, questions: AqaQuestion[], k: number, batchSize: number, precision: Precision = 'f32', engine: 'webgpu' | 'onnx' = 'webgpu') {
  const t0 = performance.now();
  const gindex = await uploadIndex(gpu, index);
  info(`index on the GPU: ${gindex.rows} x ${gindex.dim} ${gindex.dtype} (${fmtBytes(gindex.bytes)}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  try {
    const model = engine === 'onnx' ? await (await import('./onnx/engine.ts')).loadOnnxModel(desc.dir, desc.name) : await loadModel(gpu, desc.dir, desc.name, precision);
    try {
      const bar = progress({ label: 'queries', unit: 'queries', total: questions.length });
      const t1 = performance.now();
      const r = await retrieve(model, gindex, index.pids, questions, { k, batchSize, maxLength: desc.maxLength, onProgress: (p) => bar.update(p.done) });
      bar.stop();
      info(`${questions.length} queries embedded and searched in ${((performance.now() - t1) / 1000).toFixed(1)} s`);
      return r;
    } finally {
      model.dispose();
    }
  } finally {
    gindex.release();
  }
}
