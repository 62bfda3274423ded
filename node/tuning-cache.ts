// Where `aqa tune` keeps its winners and how every command picks them up.
//
// One JSON file per adapter: <dir>/<vendor>-<architecture>-<device>-<backend>-<feature level>.json
// with dir = $AQA_TUNING_DIR, else ~/.cache/aqa/tuning (beside the model cache's
// ~/.cache/aqa/models). The file records the driver (the adapter's description, e.g.
// 'llvmpipe: Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6) 0.0.1') and the aqa version that wrote it.
// createNodeGpu calls loadTuning(): a file made under another driver is ignored with one
// warning line (a driver update can change which variant is fastest), a corrupt one too; no
// file means the built-in defaults. AQA_TUNING=off ignores the files altogether.

import { mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Gpu } from '../core/gpu/device.ts';
import { type TuningTable, parseTuningTable, setTuning } from '../core/tune/table.ts';
import { writeFileAtomic } from './files.ts';

export interface TuningFile {
  format: 1;
  aqa: string;
  date: string;
  adapter: { vendor: string; architecture: string; device: string; description: string };
  backend: string;
  featureLevel: 'core' | 'compatibility';
  /** The adapter description the winners were measured under. */
  driver: string;
  timer: string;
  reps: number;
  /** The shapes tuned, for the record (e.g. 'all-MiniLM-L6-v2 batch 16 x 128'). */
  shapes: string;
  table: TuningTable;
}

/** What a Gpu's tuning came from: `aqa info` prints it. */
export interface TuningStatus {
  file: string;
  /** 'used', or why not. */
  state: 'used' | 'off' | 'missing' | 'stale' | 'corrupt';
  detail?: string;
}

export function tuningDir(): string {
  return process.env.AQA_TUNING_DIR || join(homedir(), '.cache', 'aqa', 'tuning');
}

/** The backend a command asked for ('default': Dawn's own choice) and the feature level the adapter offers. */
const backends = new WeakMap<Gpu, string>();
const statuses = new WeakMap<Gpu, TuningStatus>();

function featureLevel(gpu: Gpu): 'core' | 'compatibility' {
  return gpu.adapter.features.includes('core-features-and-limits') ? 'core' : 'compatibility';
}

/** The file name part that names this adapter, backend and feature level. */
export function adapterKey(gpu: Gpu): string {
  const a = gpu.adapter;
  const parts = [a.vendor || 'unknown', a.architecture, a.device, backends.get(gpu) ?? 'default', featureLevel(gpu)];
  return parts
    .filter(Boolean)
    .map((p) => p.toLowerCase().replace(/[^a-z0-9.]+/g, '-').replace(/^-+|-+$/g, ''))
    .join('-');
}

export function tuningFile(gpu: Gpu): string {
  return join(tuningDir(), `${adapterKey(gpu)}.json`);
}

export function tuningStatus(gpu: Gpu): TuningStatus | undefined {
  return statuses.get(gpu);
}

let cachedVersion: string | null = null;
export function aqaVersion(): string {
  cachedVersion ??= (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  return cachedVersion;
}

/**
 * Attach this adapter's tuning file to `gpu` (setTuning) when there is one made under the same
 * driver; `backend` is the Dawn backend the command asked for (undefined: Dawn's default).
 * Warnings go to `warn` as one line each.
 */
export function loadTuning(gpu: Gpu, backend: string | undefined, warn: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): TuningStatus {
  backends.set(gpu, backend ?? 'default');
  const file = tuningFile(gpu);
  const status = ((): TuningStatus => {
    if (/^(off|0|false|no)$/i.test(process.env.AQA_TUNING ?? '')) return { file, state: 'off', detail: 'AQA_TUNING=off' };
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return { file, state: 'missing' };
    }
    let stored: TuningFile;
    try {
      stored = JSON.parse(text) as TuningFile;
      if (stored === null || typeof stored !== 'object') throw new Error('not a JSON object');
      if (typeof stored.driver !== 'string') throw new Error('driver is missing');
      stored.table = parseTuningTable(stored.table, 'table');
    } catch (e) {
      const detail = (e as Error).message.split('\n')[0];
      warn(`warning: ignoring the tuning file ${file}: ${detail}; using defaults (rerun aqa tune)`);
      return { file, state: 'corrupt', detail };
    }
    const driver = gpu.adapter.description;
    if (stored.driver !== driver) {
      warn(`warning: tuning for ${gpu.adapter.device || gpu.name} was made with driver '${stored.driver}'; this is '${driver}': using defaults; rerun aqa tune`);
      return { file, state: 'stale', detail: `made with driver '${stored.driver}'` };
    }
    setTuning(gpu, stored.table);
    return { file, state: 'used', detail: `made ${stored.date} by aqa ${stored.aqa} for ${stored.shapes}` };
  })();
  statuses.set(gpu, status);
  return status;
}

/** Write `record` for `gpu` atomically (a temp file renamed over the old one); returns the path. */
export async function saveTuning(gpu: Gpu, record: Omit<TuningFile, 'format' | 'aqa' | 'date' | 'adapter' | 'backend' | 'featureLevel' | 'driver'>): Promise<string> {
  const file = tuningFile(gpu);
  const a = gpu.adapter;
  const full: TuningFile = {
    format: 1,
    aqa: aqaVersion(),
    date: new Date().toISOString(),
    adapter: { vendor: a.vendor, architecture: a.architecture, device: a.device, description: a.description },
    backend: backends.get(gpu) ?? 'default',
    featureLevel: featureLevel(gpu),
    driver: a.description,
    ...record,
  };
  mkdirSync(dirname(file), { recursive: true });
  await writeFileAtomic(file, JSON.stringify(full, null, 2) + '\n');
  return file;
}

/** One line for `aqa info`: whether tuning is in use and from which file. */
export function describeTuning(gpu: Gpu): string {
  const s = statuses.get(gpu);
  if (!s) return 'not loaded';
  switch (s.state) {
    case 'used':
      return `in use, from ${s.file} (${s.detail})`;
    case 'missing':
      return `none, built-in defaults (\`aqa tune\` writes ${s.file})`;
    case 'off':
      return `off (${s.detail}), built-in defaults`;
    default:
      return `ignored, built-in defaults: ${s.file} ${s.state === 'stale' ? 'was ' : 'is corrupt: '}${s.detail}`;
  }
}
