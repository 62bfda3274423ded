// `aqa pipeline`'s stamps: a unit (one stage for one model, or the stage) is up to date when
// its stamp (stamps/<stage>.<unit>.json) holds the hash of its current inputs and its outputs
// still have the recorded sizes. See index.ts for what each stage hashes.

import { readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { DataError } from '../../core/data/aqa.ts';
import { cachedSha256 } from '../file-digest.ts';
import { writeFileAtomic } from '../files.ts';
import { sha256 } from '../index-store.ts';

/** Bumped when a stage's outputs change meaning: every stamp of an older version is stale. */
const STAMP_VERSION = 1;

interface Stamp {
  version: number;
  unit: string;
  hash: string;
  finished: string;
  seconds: number;
  /** Paths relative to the work dir, with their sizes when written. */
  outputs: { path: string; size: number }[];
  note: string;
  /** What was hashed, so a rerun can say which input changed. */
  inputs: Record<string, unknown>;
}

/** Top-level input fields that differ between two stamps' inputs, for the log. */
function changedInputs(before: Record<string, unknown> | undefined, now: Record<string, unknown>): string[] {
  if (!before) return [];
  const keys = new Set([...Object.keys(before), ...Object.keys(now)]);
  return [...keys].filter((k) => JSON.stringify(before[k]) !== JSON.stringify(now[k]));
}

/** What a unit's run reports: its output files (relative to the work dir) and a one-line summary. */
export interface UnitOutput {
  outputs: string[];
  note: string;
}

/** The units of one run: which ran, which were up to date, and the stamps read or written. */
export class Units {
  /** Input files' digests, cached by (size, mtime, inode) so a 400 MB corpus is read once, not per run. */
  private readonly hashCache: string;
  readonly ran: string[] = [];
  readonly skipped: string[] = [];
  private readonly stamps = new Map<string, Stamp>();

  constructor(
    private readonly workDir: string,
    private readonly log: (line: string) => void,
  ) {
    this.hashCache = join(workDir, 'stamps', 'file-hashes.json');
  }

  async fileHash(path: string | null): Promise<string | null> {
    if (!path) return null;
    await stat(path).catch(() => {
      throw new DataError(`${path}: cannot read (no such file)`);
    });
    return cachedSha256(path, this.hashCache);
  }

  /** (hash, finish time) of an upstream stamp: a rerun upstream changes it even with equal inputs. */
  upstream(unit: string): string {
    const s = this.stamps.get(unit);
    if (!s) throw new Error(`internal: stamp ${unit} is missing`);
    return `${s.hash}@${s.finished}`;
  }

  private stampPath(unit: string): string {
    return join(this.workDir, 'stamps', `${unit.replace(':', '.')}.json`);
  }

  private async readStamp(unit: string): Promise<Stamp | null> {
    try {
      const s = JSON.parse(await readFile(this.stampPath(unit), 'utf8')) as Stamp;
      return s.version === STAMP_VERSION && s.unit === unit ? s : null;
    } catch {
      return null;
    }
  }

  private async intact(s: Stamp): Promise<boolean> {
    for (const out of s.outputs) {
      const st = await stat(join(this.workDir, out.path)).catch(() => null);
      if (!st || st.size !== out.size) return false;
    }
    return true;
  }

  /**
   * Run one unit unless its stamp says its outputs are up to date for `inputs`. The stamp is
   * removed first and written last, so an interrupted unit is never taken for a finished one.
   */
  async run(stage: string, name: string | null, inputs: Record<string, unknown>, forced: boolean, run: (fresh: boolean) => Promise<UnitOutput>): Promise<void> {
    const unit = name ? `${stage}:${name}` : stage;
    const label = name ? `[${stage}] ${name}:` : `[${stage}]`;
    // Round-tripped through JSON so the stamp compares like what it stores (undefined fields drop).
    inputs = JSON.parse(JSON.stringify(inputs)) as Record<string, unknown>;
    const hash = sha256(new TextEncoder().encode(JSON.stringify({ version: STAMP_VERSION, unit, inputs })));
    const old = await this.readStamp(unit);
    if (old && old.hash === hash && !forced && (await this.intact(old))) {
      this.stamps.set(unit, old);
      this.skipped.push(unit);
      this.log(`${label} up to date (${old.note})`);
      return;
    }
    const why = forced ? 'forced' : !old ? '' : old.hash !== hash ? `changed: ${changedInputs(old.inputs, inputs).join(', ') || 'version'}` : 'outputs missing or changed';
    if (why) this.log(`${label} rerun (${why})`);
    await unlink(this.stampPath(unit)).catch(() => {});
    const t0 = performance.now();
    const r = await run(forced);
    const seconds = (performance.now() - t0) / 1000;
    const outputs: Stamp['outputs'] = [];
    for (const path of r.outputs) outputs.push({ path, size: (await stat(join(this.workDir, path))).size });
    const stamp: Stamp = { version: STAMP_VERSION, unit, hash, finished: new Date().toISOString(), seconds: Number(seconds.toFixed(3)), outputs, note: r.note, inputs };
    await writeFileAtomic(this.stampPath(unit), `${JSON.stringify(stamp, null, 2)}\n`);
    this.stamps.set(unit, stamp);
    this.ran.push(unit);
    this.log(`${label} ${r.note} (${seconds.toFixed(1)} s)`);
  }
}
