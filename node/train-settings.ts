// Training settings for the commands: `aqa train`'s flags made from the option table
// (core/train/options.ts), and the defaults that depend on the model folder (the training query
// instruction = the model's own query prefix; dropout = its config.json hidden_dropout_prob).

import { type Command, Option } from 'commander';
import { loadConfig } from '../core/model/config.ts';
import { type EmbeddingSettings, resolveEmbeddingSettings } from '../core/model/presets.ts';
import { followsOptionRule, ruleSays, type SaveSettings, TRAIN_OPTIONS, type TrainOption, type TrainSettings } from '../core/train/options.ts';
import { localModelFiles } from './files.ts';

export async function loadEmbeddingSettingsFor(dir: string, name: string): Promise<EmbeddingSettings> {
  return resolveEmbeddingSettings(localModelFiles(dir), name);
}

/** The model's hidden_dropout_prob (config.json; BERT's default 0.1 when absent): the training default. */
export async function modelHiddenDropout(dir: string): Promise<number> {
  return (await loadConfig(localModelFiles(dir))).hiddenDropout;
}

/** Settings the table leaves to the model (its modelDefault entries), filled in where not given. */
export type SettingsWithModelDefaults = Omit<TrainSettings, 'queryInstruction' | 'hiddenDropout'> & { queryInstruction: string | null; hiddenDropout: number | null };

export async function withModelDefaults(s: SettingsWithModelDefaults, dir: string, name: string): Promise<TrainSettings> {
  const queryInstruction = s.queryInstruction ?? (await loadEmbeddingSettingsFor(dir, name)).queryPrefix;
  const hiddenDropout = s.hiddenDropout ?? (await modelHiddenDropout(dir));
  return { ...s, queryInstruction, hiddenDropout };
}

function placeholder(o: TrainOption): string {
  if (o.rule === 'string') return '<text>';
  if (o.rule === 'posInt' || o.rule === 'nonNegInt') return '<n>';
  return o.rule === 'probability' || o.rule === 'unit' ? '<p>' : '<x>';
}

function parseFlag(flag: string, o: TrainOption): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (v.trim() === '' || !followsOptionRule(n, o.rule)) throw new Error(`${flag}: must be ${ruleSays(o.rule)}, got '${v}'`);
    return n;
  };
}

/** Every option of the table as an `aqa train` flag (`--learning_rate <x>`, ...), with its default. */
export function addTrainOptions(cmd: Command): Command {
  for (const o of TRAIN_OPTIONS) {
    const flag = `--${o.name}`;
    if (o.rule === 'boolean') {
      cmd.option(flag, o.help, o.default as boolean);
      continue;
    }
    const opt = new Option(`${flag} ${placeholder(o)}`, o.modelDefault ? `${o.help} (default: ${o.modelDefault})` : o.help);
    if (o.rule !== 'string') opt.argParser(parseFlag(flag, o));
    if (!o.modelDefault) opt.default(o.default);
    cmd.addOption(opt);
  }
  return cmd;
}

/** The settings and checkpoint cadence from parsed `aqa train` flags (model defaults still null). */
export function settingsFromFlags(flags: Record<string, unknown>): { settings: SettingsWithModelDefaults; save: SaveSettings } {
  const out: Record<string, unknown> = {};
  for (const o of TRAIN_OPTIONS) out[o.key] = flags[o.name] ?? (o.modelDefault ? null : o.default);
  const { saveSteps, saveTotalLimit, ...settings } = out;
  return { settings: settings as unknown as SettingsWithModelDefaults, save: { saveSteps: saveSteps as number, saveTotalLimit: saveTotalLimit as number } };
}
