// `aqa train`'s work: contrastive fine-tuning from the command line (core/train/trainer.ts does the
// work). This file reads the training data, writes checkpoints and logs, and resumes.
//
// Output folder layout:
//   <output_dir>/checkpoint-<step>/   Hugging Face + sentence-transformers model folder, plus
//                                     optimizer.safetensors (AdamW moments) and trainer_state.json
//   <output_dir>/                     the final model (same layout, without optimizer state)
//   <output_dir>/train_log.jsonl      one line per optimizer step
// A checkpoint is written to a hidden temporary folder and renamed into place, so a crash never
// leaves a half-written checkpoint that --resume would pick up.

import { createHash } from 'node:crypto';
import { cp, mkdir, readdir, readFile, rename, rm, stat, appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DataError, note } from '../core/data/aqa.ts';
import { parseGroupLine, randomGroups, trainingPairs, groupTexts, type TrainGroup } from '../core/data/pairs.ts';
import { loadEmbeddingModel } from '../core/retrieval/embed.ts';
import { parseSafetensorsHeader, readTensor } from '../core/model/safetensors.ts';
import { openWeights, quantizedTensor } from '../core/model/weights.ts';
import { DEFAULT_SETTINGS, NonFiniteLossError, Trainer, type TrainPosition, type TrainSettings, validateSettings } from '../core/train/trainer.ts';
import { checkTrainingFits } from '../core/train/fit.ts';
import { COPIED_MODEL_FILES, modelFolderDirs, modelTensors, optimizerTensors, trainedSentenceTransformersFiles } from '../core/train/model-folder.ts';
import { changedSettings, groupsDigestText, isTrainerState, runTraining, type TrainerState } from '../core/train/session.ts';
import { readLines, readPassages, readQuestions } from './data.ts';
import { createNodeGpu, type NodeGpuOptions } from './device.ts';
import { fileSource, localModelFiles, syncDir, writeFileAtomic, writeSafetensorsFile } from './files.ts';
import { resolveModel } from './hub.ts';
import { progress } from './progress.ts';

export interface TrainCommandOptions {
  model_name_or_path: string;
  output_dir: string;
  train_data?: string;
  questions?: string;
  corpus?: string;
  resume: boolean;
  save_steps: number;
  save_total_limit: number;
  max_steps?: number;
  settings: TrainSettings;
  gpu: NodeGpuOptions;
  quiet?: boolean;
}

// ---------------------------------------------------------------- training data

export interface LoadedData {
  groups: TrainGroup[];
  messages: string[];
  skipped: number;
}

/**
 * FlagEmbedding JSONL groups ({query, pos: [texts], neg: [texts]}). Malformed lines and groups
 * without a positive are reported with file:line and skipped (counted); zero usable groups is
 * an error.
 */
export async function readTrainGroups(path: string): Promise<LoadedData> {
  const groups: TrainGroup[] = [];
  const messages: string[] = [];
  let skipped = 0;
  let lines = 0;
  try {
    await stat(path);
  } catch {
    throw new DataError(`${path}: cannot read the training file`);
  }
  for await (const l of readLines(path)) {
    lines++;
    if (l.text.trim() === '') continue;
    try {
      if (l.invalidUtf8) note(messages, `${path}:${l.line}: invalid UTF-8 replaced with U+FFFD`);
      groups.push(parseGroupLine(l.text, `${path}:${l.line}`));
    } catch (e) {
      if (!(e instanceof DataError)) throw e;
      skipped++;
      note(messages, e.message);
    }
  }
  if (groups.length === 0) throw new DataError(`${path}: no usable training groups in ${lines} lines${messages.length ? ` (first problem: ${messages[0]})` : ''}`);
  return { groups, messages, skipped };
}

/**
 * The original AQA recipe's data: one group per (question, gold pid), random negatives from
 * the corpus (seeded). Gold pids missing from the corpus are reported and dropped.
 */
export async function aqaTrainGroups(questionsPath: string, corpusPath: string, negatives: number, seed: number): Promise<LoadedData> {
  const { questions, stats } = await readQuestions(questionsPath, { requirePids: true, skipBad: true });
  const { passages } = await readPassages(corpusPath);
  const has = (pid: string) => passages.index.has(pid);
  const { pairs, stats: ps } = trainingPairs(questions, { has });
  const messages = [...stats.messages];
  const dropped = ps.missingPids ?? 0;
  if (dropped) note(messages, `${questionsPath}: ${dropped} gold pids are not in ${corpusPath} and were dropped`);
  if (pairs.length === 0) throw new DataError(`${questionsPath}: no usable (question, paper) pairs (${stats.skipped} lines skipped; ${dropped} pids not in the corpus)`);
  const text = (pid: string) => {
    const i = passages.index.get(pid);
    return i === undefined ? undefined : passages.texts[i];
  };
  const groups = randomGroups(pairs, passages.pids, { negatives, seed }).map((g) => groupTexts(g, text));
  return { groups, messages, skipped: stats.skipped };
}

function hashGroups(groups: readonly TrainGroup[]): string {
  return createHash('sha256').update(groupsDigestText(groups)).digest('hex');
}

// ---------------------------------------------------------------- checkpoints

async function latestCheckpoint(outDir: string): Promise<string | null> {
  let names: string[];
  try {
    names = await readdir(outDir);
  } catch {
    return null;
  }
  const steps = names
    .map((n) => /^checkpoint-(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => b - a);
  for (const s of steps) {
    const dir = join(outDir, `checkpoint-${s}`);
    try {
      await stat(join(dir, 'trainer_state.json'));
      return dir;
    } catch {
      // not a finished checkpoint
    }
  }
  return null;
}

async function writeModelFolder(dir: string, baseDir: string, trainer: Trainer, extra: { state?: TrainerState }): Promise<void> {
  for (const d of modelFolderDirs(trainer)) await mkdir(join(dir, d), { recursive: true });
  for (const f of COPIED_MODEL_FILES) {
    try {
      await cp(join(baseDir, f), join(dir, f));
    } catch {
      // optional file absent in the base model
    }
  }
  for (const [name, text] of Object.entries(trainedSentenceTransformersFiles(trainer))) await writeFileAtomic(join(dir, name), text);
  await writeSafetensorsFile(join(dir, 'model.safetensors'), await modelTensors(trainer, localModelFiles(baseDir)), { format: 'pt' });
  if (extra.state) {
    await writeSafetensorsFile(join(dir, 'optimizer.safetensors'), await optimizerTensors(trainer));
    await writeFileAtomic(join(dir, 'trainer_state.json'), JSON.stringify(extra.state, null, 2));
  }
}

/** Write checkpoint-<step> atomically (temp folder + rename), then keep the newest `limit`. */
async function saveCheckpoint(outDir: string, baseDir: string, trainer: Trainer, state: TrainerState, limit: number): Promise<string> {
  const final = join(outDir, `checkpoint-${state.position.step}`);
  const tmp = join(outDir, `.checkpoint-${state.position.step}.tmp`);
  await rm(tmp, { recursive: true, force: true });
  await writeModelFolder(tmp, baseDir, trainer, { state });
  await rm(final, { recursive: true, force: true });
  await rename(tmp, final);
  await syncDir(outDir);
  const names = (await readdir(outDir)).filter((n) => /^checkpoint-\d+$/.test(n)).sort((a, b) => Number(b.slice(11)) - Number(a.slice(11)));
  for (const old of names.slice(Math.max(1, limit))) await rm(join(outDir, old), { recursive: true, force: true });
  return final;
}

/** What to do about a damaged checkpoint, for the one-line errors below. */
function damagedHint(dir: string): string {
  return `the checkpoint is damaged: remove ${dir} to resume from an earlier checkpoint, or train again without --resume`;
}

/** A checkpoint's trainer_state.json, checked enough that resuming from it cannot go wrong quietly. */
async function readTrainerState(dir: string): Promise<TrainerState> {
  const path = join(dir, 'trainer_state.json');
  let state: TrainerState;
  try {
    state = JSON.parse(await readFile(path, 'utf8')) as TrainerState;
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? `not valid JSON: ${(e as Error).message}`;
    throw new Error(`${path}: ${why}; ${damagedHint(dir)}`);
  }
  if (!isTrainerState(state)) {
    throw new Error(`${path}: not a trainer state (position, settings, dataHash and log expected); ${damagedHint(dir)}`);
  }
  return state;
}

async function loadOptimizer(dir: string): Promise<Map<string, Float32Array>> {
  const path = join(dir, 'optimizer.safetensors');
  try {
    const f = await parseSafetensorsHeader(await fileSource(path));
    const out = new Map<string, Float32Array>();
    for (const name of f.tensors.keys()) out.set(name, (await readTensor(f, name)).data);
    return out;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'missing (it holds the AdamW moments a resume needs)' : code ?? (e as Error).message.split('\n')[0].replace(`${path}: `, '');
    throw new Error(`${path}: ${why}; ${damagedHint(dir)}`);
  }
}

/**
 * Keep only the log lines of steps up to `step`, where this run starts: after a crash, the steps
 * between the checkpoint and the crash are run again and would otherwise be listed twice (a
 * half-written last line goes too). Rewritten atomically, so a second crash loses nothing.
 */
async function truncateLog(path: string, step: number): Promise<void> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return; // no log yet
  }
  const kept = text.split('\n').filter((l) => {
    try {
      return (JSON.parse(l) as { step: number }).step <= step;
    } catch {
      return false;
    }
  });
  const next = kept.map((l) => `${l}\n`).join('');
  if (next !== text) await writeFileAtomic(path, next);
}

// ---------------------------------------------------------------- the command

export interface TrainSummary {
  position: TrainPosition;
  totalSteps: number;
  lastLoss: number;
  outputDir: string;
}

export async function trainCommand(o: TrainCommandOptions): Promise<TrainSummary> {
  validateSettings(o.settings);
  const log = o.quiet ? () => {} : (m: string) => console.error(m);
  const outDir = o.output_dir;
  await mkdir(outDir, { recursive: true });
  const resumeFrom = o.resume ? await latestCheckpoint(outDir) : null;
  if (o.resume && !resumeFrom) throw new Error(`--resume: no finished checkpoint-<step> folder in ${outDir}`);

  // data
  let data: LoadedData;
  if (o.train_data) data = await readTrainGroups(o.train_data);
  else if (o.questions && o.corpus) data = await aqaTrainGroups(o.questions, o.corpus, o.settings.trainGroupSize - 1, o.settings.seed);
  else throw new Error('give --train_data <groups.jsonl> (FlagEmbedding layout), or --questions <qa_train.txt> with --corpus <pid_to_title_abs.json>');
  for (const m of data.messages) log(`warning: ${m}`);
  if (data.skipped) log(`warning: ${data.skipped} training lines skipped`);
  const dataHash = hashGroups(data.groups);

  // model: the base, or the checkpoint being resumed
  const baseDir = await resolveModel(o.model_name_or_path);
  const modelDir = resumeFrom ?? baseDir;
  // An int8 export loads (dequantized) for inference, but its rounding is not a base to train from.
  const int8 = quantizedTensor(await openWeights(localModelFiles(modelDir)));
  if (int8) throw new Error(`${int8} is int8 (aqa export --dtype int8): training needs the original float weights; train the model it was exported from`);
  const gpu = await createNodeGpu(o.gpu);
  const model = await loadEmbeddingModel(gpu, localModelFiles(modelDir), o.model_name_or_path);
  const settings: TrainSettings = { ...o.settings };
  await checkTrainingFits(gpu, model, settings); // one line, with the largest batch that fits, instead of failing mid-step
  const trainer = new Trainer(gpu, model, data.groups, settings);
  let position: TrainPosition = { step: 0, epoch: 0, batch: 0 };
  let lossLog: { step: number; loss: number }[] = [];
  if (resumeFrom) {
    const state = await readTrainerState(resumeFrom);
    if (state.dataHash !== dataHash) throw new Error(`--resume: ${resumeFrom} was trained on different data (hash ${state.dataHash.slice(0, 12)} vs ${dataHash.slice(0, 12)})`);
    const changed = changedSettings(state.settings, settings);
    if (changed.length) throw new Error(`--resume: settings differ from ${resumeFrom}: ${changed.join(', ')}`);
    trainer.loadOptimizerState(await loadOptimizer(resumeFrom), join(resumeFrom, 'optimizer.safetensors'));
    trainer.loadLossScaleState(state.lossScale, join(resumeFrom, 'trainer_state.json'));
    position = state.position;
    lossLog = state.log;
    log(`resuming from ${resumeFrom} (step ${position.step} of ${trainer.totalSteps})`);
  }
  const logPath = join(outDir, 'train_log.jsonl');
  await truncateLog(logPath, position.step);
  log(
    `training ${o.model_name_or_path} on ${data.groups.length} groups: ${trainer.totalSteps} steps (${trainer.updatesPerEpoch}/epoch x ${settings.numTrainEpochs}), ` +
      `${settings.queriesPerStep} queries x ${settings.trainGroupSize} passages per micro-batch, GradCache ${settings.gradCacheMiniBatch || 'off'}` +
      `, dropout ${settings.hiddenDropout}${settings.gradientCheckpointing ? ', gradient checkpointing' : ''}` +
      `${settings.fp16 ? `, fp16 (f16 activations, f32 master weights, loss scale ${trainer.lossScaleState!.scale})` : ''}`,
  );

  // A bar on a terminal, a line every few seconds in a log (node/progress.ts).
  const bar = o.quiet ? null : progress({ label: 'train', unit: 'steps', total: trainer.totalSteps, start: position.step });
  let lastLoss = NaN;
  try {
    ({ position, lastLoss } = await runTraining(trainer, {
      position,
      lossLog,
      saveSteps: o.save_steps,
      stopAt: o.max_steps ?? Infinity,
      baseModel: o.model_name_or_path,
      dataHash,
      log: async (text, line, info) => {
        await appendFile(logPath, text);
        const scale = info.lossScale === null ? '' : `, loss scale ${info.lossScale}${info.skipped ? ' (overflow: update skipped)' : ''}`;
        bar?.update(info.step, `loss ${info.loss.toFixed(4)}, lr ${info.lr.toExponential(2)}, ${line.tokens_per_s} tok/s${scale}`);
      },
      save: async (state) => {
        await saveCheckpoint(outDir, baseDir, trainer, state, o.save_total_limit);
      },
    }));
  } catch (e) {
    bar?.stop();
    if (e instanceof NonFiniteLossError) {
      const last = await latestCheckpoint(outDir);
      throw new Error(`${e.message}; ${last ? `the last good checkpoint is ${last}` : 'no checkpoint was written yet'}`);
    }
    throw e;
  }
  bar?.stop();
  if (position.step >= trainer.totalSteps) {
    await writeModelFolder(outDir, baseDir, trainer, {});
    log(`wrote the fine-tuned model to ${outDir} (${position.step} steps, last loss ${lastLoss.toFixed(4)})`);
  } else {
    log(`stopped at step ${position.step} of ${trainer.totalSteps}; continue with --resume`);
  }
  trainer.dispose();
  model.dispose();
  gpu.destroy();
  return { position, totalSteps: trainer.totalSteps, lastLoss, outputDir: outDir };
}

export { DEFAULT_SETTINGS };
