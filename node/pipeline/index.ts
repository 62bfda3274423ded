// `aqa pipeline`: the whole AQA job from one JSON config, as a chain of stages that each skip
// themselves when their outputs are up to date.
//
// Stages and what each unit's stamp hashes (a unit is one stage for one model, or the stage):
//
//   prepare          corpus, train, valid, test file hashes         -> prepare/summary.json
//   mine   <model>   miner model fingerprint + max_length, corpus, train, range/count/seed
//                                                                   -> mine/<model>.jsonl
//   train  <model>   base fingerprint, train settings, corpus + train (random negatives)
//                    or the mine stamp (mined)                      -> models/<model>/
//   index  <model>   model fingerprint or the train stamp, max_length, corpus, batch size
//                                                                   -> index/<model>/
//   search <run>     index stamp (BM25: corpus, k1, b), valid + test files, retrieve_k
//                                                                   -> search/<run>.<split>.jsonl
//   fuse             every search stamp, fusion section, valid file -> fuse/<method>.<split>.jsonl
//   evaluate         search + fuse stamps, valid + test files       -> metrics.json
//   submission       evaluate stamp, submission section, its question file, train file
//                                                                   -> the submission file
//
// A stamp (stamps/<stage>.<unit>.json) holds the sha256 of its inputs as listed, the outputs'
// sizes and when it finished; an upstream stamp enters a downstream hash as (hash, finish time),
// so anything that reruns reruns everything that reads it, and nothing else does. A unit is up to
// date when its stamp's hash equals the current one and its outputs still have the recorded
// sizes. Input files are hashed by content (cached by size + mtime), so `touch` alone reruns
// nothing; editing the valid questions reruns prepare, search, fuse, evaluate and submission, not
// mining, training or indexing. The stamp is removed before a unit runs and written after its
// outputs are in place (each written atomically), so a crash leaves the unit to be redone: index
// builds resume shard by shard, training from its last checkpoint (same inputs only; other
// inputs start it afresh).
//
// Every config problem is one line naming the file and the field (config.ts).
//
// The parts: config.ts (the config file), stamps.ts (what is up to date), stages.ts (the eight
// stages), table.ts (the metrics table), lock.ts (one pipeline per work dir).

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { loadPipelineConfig, type PipelineConfig } from './config.ts';
import { takeLock } from './lock.ts';
import { Pipeline, type PipelineOptions } from './stages.ts';
import { formatTable, type MetricsFile } from './table.ts';

export { loadPipelineConfig, parseConfig, PipelineConfigError } from './config.ts';
export type { FusionConfig, ModelConfig, Negatives, PipelineConfig, Split, SubmissionConfig, TrainConfig } from './config.ts';
export { STAGES, type Stage } from './stage-names.ts';
export { KILL_AFTER_STEPS_ENV, type PipelineOptions } from './stages.ts';
export { bestRun, formatTable, type MetricsFile, type RunMetrics } from './table.ts';

export interface PipelineResult {
  config: PipelineConfig;
  /** Units that ran, as `stage` or `stage:name`. */
  ran: string[];
  /** Units found up to date. */
  skipped: string[];
  metrics: MetricsFile;
  table: string;
  submission: string | null;
}

export async function runPipeline(o: PipelineOptions): Promise<PipelineResult> {
  const cfg = await loadPipelineConfig(o.config, { workDir: o.workDir });
  await mkdir(join(cfg.workDir, 'stamps'), { recursive: true });
  const releaseLock = await takeLock(cfg.workDir);
  const p = new Pipeline(cfg, o);
  try {
    const t0 = performance.now();
    await p.prepare();
    await p.mine();
    await p.train();
    await p.index();
    await p.search();
    await p.fuse();
    const metrics = await p.evaluate();
    const submission = await p.submission();
    const table = formatTable(metrics);
    (o.print ?? ((t: string) => console.log(t)))(table);
    p.log(`pipeline: ${p.units.ran.length} step(s) ran, ${p.units.skipped.length} up to date, ${((performance.now() - t0) / 1000).toFixed(1)} s; metrics in ${p.show(join(cfg.workDir, 'metrics.json'))}`);
    return { config: cfg, ran: p.units.ran, skipped: p.units.skipped, metrics, table, submission };
  } finally {
    p.close();
    await releaseLock();
  }
}
