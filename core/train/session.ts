// A training run around the Trainer, host-neutral: what a checkpoint's trainer state holds, how
// a resume is checked against it, one train_log.jsonl line per step, when to checkpoint, and
// the sentence-transformers files of a model folder. `aqa train` (node/train-run.ts) and the
// browser's training worker (demo/train/worker.ts) both run this loop; each host only says how
// to store a checkpoint and where a log line goes (files in Node, OPFS in a browser tab), so
// the same settings, data and seed take the same steps in both.

import type { TrainGroup } from '../data/pairs.ts';
import { DEFAULT_SETTINGS, type TrainSettings } from './options.ts';
import type { StepInfo, Trainer, TrainPosition } from './trainer.ts';

/** A checkpoint's trainer_state.json. */
export interface TrainerState {
  position: TrainPosition;
  totalSteps: number;
  settings: TrainSettings;
  /** sha256 of the training examples as used (texts), so a resume refuses different data. */
  dataHash: string;
  baseModel: string;
  log: { step: number; loss: number }[];
  /** --fp16 runs: the loss scaler's state, so a resume scales as the uninterrupted run would. */
  lossScale?: { scale: number; goodSteps: number };
}

/**
 * The text whose sha256 is a run's dataHash: one JSON line [query, pos, neg] per group. Hosts
 * hash it with what they have (node:crypto, crypto.subtle); the digest is the same.
 */
export function groupsDigestText(groups: readonly TrainGroup[]): string {
  return groups.map((g) => `${JSON.stringify([g.query, g.pos, g.neg])}\n`).join('');
}

/** Whether a parsed trainer_state.json has what a resume reads (position, settings, dataHash, log). */
export function isTrainerState(state: unknown): state is TrainerState {
  const s = state as TrainerState | null;
  const p = s?.position;
  const isCount = (x: unknown) => Number.isInteger(x) && (x as number) >= 0;
  return !!p && isCount(p.step) && isCount(p.epoch) && isCount(p.batch) && typeof s!.dataHash === 'string' && Array.isArray(s!.log) && typeof s!.settings === 'object' && s!.settings !== null;
}

/**
 * The settings that differ between a checkpoint and this run, as "name was -> now". A setting
 * added after the checkpoint was written counts as its default.
 */
export function changedSettings(saved: Partial<TrainSettings>, now: TrainSettings): string[] {
  const was = { ...DEFAULT_SETTINGS, ...saved };
  return (Object.keys(now) as (keyof TrainSettings)[]).filter((k) => now[k] !== was[k]).map((k) => `${k} ${was[k]} -> ${now[k]}`);
}

/** One train_log.jsonl line (field order is the file's). */
export interface StepLogLine {
  step: number;
  epoch: number;
  loss: number;
  lr: number;
  grad_norm: number | null;
  tokens: number;
  tokens_per_s: number;
  elapsed_s: number;
  gpu_peak_mib: number;
  loss_scale?: number;
  skipped?: boolean;
}

export function stepLogLine(info: StepInfo, trainer: Trainer, elapsedMs: number): StepLogLine {
  return {
    step: info.step,
    epoch: info.epoch + info.batch / trainer.batchesPerEpoch,
    loss: info.loss,
    lr: info.lr,
    grad_norm: Number.isFinite(info.gradNorm) ? info.gradNorm : null,
    tokens: info.tokens,
    tokens_per_s: Math.round(info.tokens / (info.ms / 1000)),
    elapsed_s: elapsedMs / 1000,
    gpu_peak_mib: Math.round(trainer.gpu.stats.bytesPeak / 2 ** 20),
    ...(info.lossScale !== null ? { loss_scale: info.lossScale, skipped: info.skipped } : {}),
  };
}

/** The log text of one step: its line, then a loss-scale change on its own line (same step number, so a resume truncates both alike). */
export function stepLogText(info: StepInfo, line: StepLogLine): string {
  const event = info.scaleEvent ? `${JSON.stringify({ step: info.step, ...info.scaleEvent })}\n` : '';
  return `${JSON.stringify(line)}\n${event}`;
}

export interface RunHooks {
  /** Where the run starts (a resume's checkpoint position) and the loss log so far. */
  position: TrainPosition;
  lossLog: { step: number; loss: number }[];
  /** Checkpoint every n optimizer steps (0 = only at the end and at stopAt). */
  saveSteps: number;
  /** Stop after this optimizer step (with a checkpoint); Infinity = run to the end. */
  stopAt: number;
  baseModel: string;
  dataHash: string;
  /** The step's log text (stepLogText), before any checkpoint of that step. */
  log(text: string, line: StepLogLine, info: StepInfo): Promise<void> | void;
  /** Store a checkpoint of the trainer's current weights and moments with this state. */
  save(state: TrainerState): Promise<void>;
  /** Asked after each step (after its checkpoint): false pauses the run there (browser pause/cancel). */
  keepGoing?(info: StepInfo): boolean;
}

/**
 * Run the trainer from hooks.position: every step logs a line, steps on the saveSteps cadence,
 * the last step and stopAt checkpoint. Returns where it stopped and the last loss.
 */
export async function runTraining(trainer: Trainer, hooks: RunHooks): Promise<{ position: TrainPosition; lastLoss: number }> {
  const settings = trainer.s;
  const t0 = performance.now();
  let lastLoss = NaN;
  const lossLog = hooks.lossLog;
  const position = await trainer.run(hooks.position, async (info) => {
    lastLoss = info.loss;
    lossLog.push({ step: info.step, loss: info.loss });
    const line = stepLogLine(info, trainer, performance.now() - t0);
    await hooks.log(stepLogText(info, line), line, info);
    const last = info.step === info.totalSteps;
    if ((hooks.saveSteps > 0 && info.step % hooks.saveSteps === 0) || last || info.step >= hooks.stopAt) {
      const lossScale = trainer.lossScaleState ?? undefined;
      const state: TrainerState = { position: { step: info.step, epoch: info.epoch, batch: info.batch }, totalSteps: info.totalSteps, settings, dataHash: hooks.dataHash, baseModel: hooks.baseModel, log: lossLog, ...(lossScale ? { lossScale } : {}) };
      await hooks.save(state);
    }
    return info.step < hooks.stopAt && (hooks.keepGoing?.(info) ?? true);
  });
  return { position, lastLoss };
}

/** sentence-transformers files of a model folder: Transformer -> Pooling -> Normalize. */
export function sentenceTransformersFiles(dim: number, pooling: 'cls' | 'mean', normalize: boolean, maxSeqLength: number): Record<string, string> {
  const modules = [
    { idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' },
    { idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling' },
  ];
  if (normalize) modules.push({ idx: 2, name: '2', path: '2_Normalize', type: 'sentence_transformers.models.Normalize' });
  return {
    'modules.json': JSON.stringify(modules, null, 2),
    '1_Pooling/config.json': JSON.stringify({ word_embedding_dimension: dim, pooling_mode_cls_token: pooling === 'cls', pooling_mode_mean_tokens: pooling === 'mean', pooling_mode_max_tokens: false, pooling_mode_mean_sqrt_len_tokens: false }, null, 2),
    'sentence_bert_config.json': JSON.stringify({ max_seq_length: maxSeqLength, do_lower_case: false }, null, 2),
  };
}
