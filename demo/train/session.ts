// One training run in a browser tab: the CLI's trainer loop (core/train/session.ts runTraining,
// the same Trainer, GradCache and dropout) over a model the page fetched, with checkpoints kept
// by whatever store the caller gives (OPFS in the training worker, memory in tests). Host-neutral
// apart from crypto.subtle, so the parity test in Chromium runs exactly this code.

import type { Gpu } from '../../core/gpu/device.ts';
import { DataError } from '../../core/data/aqa.ts';
import { parseGroupLine, type TrainGroup } from '../../core/data/pairs.ts';
import { parseSafetensorsHeader, readTensor } from '../../core/model/safetensors.ts';
import { bytesSource, type ModelFiles } from '../../core/model/source.ts';
import { loadConfig } from '../../core/model/config.ts';
import { resolveEmbeddingSettings } from '../../core/model/presets.ts';
import { loadEmbeddingModel, type EmbeddingModel } from '../../core/retrieval/embed.ts';
import { type StepLogLine, changedSettings, groupsDigestText, isTrainerState, runTraining, type TrainerState } from '../../core/train/session.ts';
import { modelFolderFiles } from '../../core/train/model-folder.ts';
import { Trainer, type TrainPosition, type TrainSettings, validateSettings } from '../../core/train/trainer.ts';
import { checkTrainingFits, explainStepError } from '../../core/train/fit.ts';

/** FlagEmbedding JSONL text -> groups; a bad line is a one-line error naming file and line. */
export function parseGroupsText(text: string, name: string): TrainGroup[] {
  const groups: TrainGroup[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() !== '') groups.push(parseGroupLine(line, `${name}:${i + 1}`));
  });
  if (groups.length === 0) throw new DataError(`${name}: no training groups`);
  return groups;
}

export async function sha256Text(text: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
  return Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** A checkpoint as bytes: the files `aqa train` writes into checkpoint-<step>/. */
export type CheckpointFiles = Record<string, Uint8Array | string>;

export interface CheckpointStore {
  /** The newest checkpoint, or null. */
  latest(): Promise<CheckpointFiles | null>;
  save(files: CheckpointFiles): Promise<void>;
}

export interface BrowserTrainOptions {
  gpu: Gpu;
  model: ModelFiles;
  modelName: string;
  groups: readonly TrainGroup[];
  settings: TrainSettings;
  saveSteps: number;
  stopAt?: number;
  store: CheckpointStore;
  onStep?: (line: StepLogLine) => void;
  /** Asked after every step: false stops there (pause or cancel; the caller knows which). */
  keepGoing?: () => boolean;
  /** Bytes a training step may hold on the GPU; none: only the adapter's limits are checked. */
  memoryBudget?: number;
}

/** The model folder's files for the trainer's current weights (what `aqa train` writes; core/train/model-folder.ts). */
export function checkpointFiles(trainer: Trainer, base: ModelFiles, state?: TrainerState): Promise<CheckpointFiles> {
  return modelFolderFiles(trainer, base, state);
}

/** ModelFiles over a checkpoint's bytes, falling back to the base folder for what it lacks. */
function checkpointModel(ck: CheckpointFiles, base: ModelFiles): ModelFiles {
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  return {
    name: `${base.name} (checkpoint)`,
    async file(path) {
      const f = ck[path];
      return f === undefined ? base.file(path) : bytesSource(`checkpoint/${path}`, typeof f === 'string' ? enc.encode(f) : f);
    },
    async text(path) {
      const f = ck[path];
      return f === undefined ? base.text(path) : typeof f === 'string' ? f : dec.decode(f);
    },
  };
}

/** Settings the options table leaves to the model (null = the model's), as `aqa train` fills them. */
export type PageSettings = Omit<TrainSettings, 'queryInstruction' | 'hiddenDropout'> & { queryInstruction: string | null; hiddenDropout: number | null };

/** The model's query prefix and config.json dropout where the page left them to the model. */
export async function withModelDefaults(s: PageSettings, files: ModelFiles, name: string): Promise<TrainSettings> {
  const queryInstruction = s.queryInstruction ?? (await resolveEmbeddingSettings(files, name)).queryPrefix;
  const hiddenDropout = s.hiddenDropout ?? (await loadConfig(files)).hiddenDropout;
  return { ...s, queryInstruction, hiddenDropout };
}

/**
 * A run in a tab: opened from the store's newest checkpoint (if it was made from the same data
 * and settings) or from the base model; run() trains until the end, stopAt, or keepGoing says
 * stop (pause), and can be called again to continue from where it stopped.
 */
export class BrowserTraining {
  readonly lines: StepLogLine[] = [];
  private constructor(
    readonly o: BrowserTrainOptions,
    readonly trainer: Trainer,
    readonly model: EmbeddingModel,
    public position: TrainPosition,
    private lossLog: { step: number; loss: number }[],
    private dataHash: string,
  ) {}

  static async open(o: BrowserTrainOptions): Promise<BrowserTraining> {
    validateSettings(o.settings);
    const dataHash = await sha256Text(groupsDigestText(o.groups));
    const ck = await o.store.latest();
    let state: TrainerState | null = null;
    if (ck) {
      state = JSON.parse(String(ck['trainer_state.json'])) as TrainerState;
      if (!isTrainerState(state)) throw new Error('the saved checkpoint is damaged (no trainer state); discard it to start again');
      if (state.dataHash !== dataHash) throw new Error(`the saved checkpoint was trained on different data (hash ${state.dataHash.slice(0, 12)} vs ${dataHash.slice(0, 12)}); discard it to start again`);
      const changed = changedSettings(state.settings, o.settings);
      if (changed.length) throw new Error(`the saved checkpoint's settings differ: ${changed.join(', ')}; discard it to start again`);
    }
    const model = await loadEmbeddingModel(o.gpu, ck ? checkpointModel(ck, o.model) : o.model, o.modelName);
    // A setting too large for the adapter is refused here in one line, with the batch that fits.
    await checkTrainingFits(o.gpu, model, o.settings, { budget: o.memoryBudget }).catch((e) => {
      model.dispose();
      throw e;
    });
    const trainer = new Trainer(o.gpu, model, o.groups, { ...o.settings });
    if (ck && state) {
      const f = await parseSafetensorsHeader(bytesSource('optimizer.safetensors', ck['optimizer.safetensors'] as Uint8Array));
      const moments = new Map<string, Float32Array>();
      for (const name of f.tensors.keys()) moments.set(name, (await readTensor(f, name)).data);
      trainer.loadOptimizerState(moments, 'checkpoint/optimizer.safetensors');
      trainer.loadLossScaleState(state.lossScale, 'checkpoint/trainer_state.json');
    }
    return new BrowserTraining(o, trainer, model, state?.position ?? { step: 0, epoch: 0, batch: 0 }, state?.log ?? [], dataHash);
  }

  get totalSteps(): number {
    return this.trainer.totalSteps;
  }

  get done(): boolean {
    return this.position.step >= this.trainer.totalSteps;
  }

  /** The loss of every step so far, this tab's and the resumed checkpoint's. */
  get losses(): readonly { step: number; loss: number }[] {
    return this.lossLog;
  }

  async run(): Promise<{ position: TrainPosition; lastLoss: number }> {
    const { o, trainer } = this;
    const r = await runTraining(trainer, {
      position: this.position,
      lossLog: this.lossLog,
      saveSteps: o.saveSteps,
      stopAt: o.stopAt ?? Infinity,
      baseModel: o.modelName,
      dataHash: this.dataHash,
      log: (_text, line) => {
        this.lines.push(line);
        o.onStep?.(line);
      },
      save: async (s) => o.store.save(await checkpointFiles(trainer, o.model, s)),
      keepGoing: o.keepGoing,
    }).catch(async (e) => {
      throw await explainStepError(e, o.gpu, this.model, o.settings);
    });
    this.position = r.position;
    return r;
  }

  dispose(): void {
    this.trainer.dispose();
    this.model.dispose();
  }
}

/** A store that keeps the newest checkpoint in memory (tests, and pages without OPFS). */
export function memoryStore(): CheckpointStore {
  let last: CheckpointFiles | null = null;
  return {
    async latest() {
      return last;
    },
    async save(files) {
      last = files;
    },
  };
}
