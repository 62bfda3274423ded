// tune(gpu, shapes): time every candidate variant of matmul and attention on the given shapes and
// return the fastest of each as a TuningTable (core/tune/table.ts), with every measurement.
//
// Per op group (one matmul kind and dtype over all its shapes, or attention at one head dim and
// sequence length):
//   1. each candidate runs once per shape and its output is compared with the built-in default
//      variant's (workloads.ts); a wrong or failing candidate is discarded with a note
//   2. one more wall-timed run sets the iterations per measurement (about targetMs of work)
//   3. reps rounds, each timing every candidate on every shape in turn (interleaved, so a load
//      change on a shared machine hits all of them), by GPU timestamps where available
//   4. a candidate's time is the sum over the shapes of its median per launch; the winner is
//      the candidate with the least time (the shapes appear once per layer each)
// The built-in defaults are in force while tuning (any table on the Gpu is set aside and put
// back after), so "default" means today's choice.

import type { Gpu } from '../gpu/device.ts';
import { attentionBackwardCandidates, attentionCandidates, matmulCandidates, matmulDtypes } from './candidates.ts';
import { type MatmulDtype, type MatmulOp, type TuningTable, attentionKey, emptyTable, matmulKey, setTuning, tuningOf } from './table.ts';
import type { TuneShapes } from './shapes.ts';
import { type Timer, defaultTimer, median, timerKind } from './timer.ts';
import { type Workload, attentionBackwardWorkload, attentionWorkload, matmulWorkload } from './workloads.ts';

export type TuneKind = 'matmul' | 'attention' | 'attention backward';

export interface TuneOptions {
  /** Measurements per candidate and shape; the median counts. Default 3. */
  reps?: number;
  /** Replaces the timer (tests inject a fake one). Default: defaultTimer(gpu). */
  timer?: Timer;
  /** Work per measurement, ms: iterations = targetMs / (one launch's wall time), 1..maxIters. Default 100. */
  targetMs?: number;
  /** Default 50. */
  maxIters?: number;
  /** Which ops to tune. Default all three. */
  kinds?: TuneKind[];
  /** Matmul operand dtypes. Default f32, and f16 where the adapter has 'shader-f16'. */
  dtypes?: MatmulDtype[];
  /** One line per step (for a progress display). */
  onProgress?: (line: string) => void;
}

export interface ShapeTime {
  shape: string;
  what: string;
  flops: number;
  iters: number;
  /** ms per launch, one per rep. */
  times: number[];
  /** Median of times. */
  ms: number;
  /** How the output compared with the default's. */
  check: string;
}

export interface CandidateResult {
  name: string;
  /** False: discarded (wrong output or failed to run); see note. */
  ok: boolean;
  note?: string;
  shapes: ShapeTime[];
  /** Sum of the per-shape medians (NaN when discarded). */
  ms: number;
  /** Sum of the shapes' flops. */
  flops: number;
  winner: boolean;
}

export interface OpResult {
  kind: TuneKind;
  /** The TuningTable key: 'a@b f32', 'd32 L128'. */
  key: string;
  candidates: CandidateResult[];
  /** Name of the winning candidate; null when none ran correctly. */
  winner: string | null;
}

export interface TuningResult {
  adapter: string;
  timer: string;
  reps: number;
  ops: OpResult[];
  table: TuningTable;
}

interface Group {
  kind: TuneKind;
  key: string;
  names: string[];
  /** Built lazily so only one group's tensors exist at a time. */
  workloads: () => Workload[];
  /** Store candidate i as the winner in table. */
  store: (table: TuningTable, i: number) => void;
}

export async function tune(gpu: Gpu, shapes: TuneShapes, o: TuneOptions = {}): Promise<TuningResult> {
  const kinds = o.kinds ?? ['matmul', 'attention', 'attention backward'];
  const saved = tuningOf(gpu);
  setTuning(gpu, null);
  try {
    const groups = [
      ...(kinds.includes('matmul') ? matmulGroups(gpu, shapes, o.dtypes ?? matmulDtypes(gpu)) : []),
      ...attentionGroups(gpu, shapes, kinds),
    ];
    const table = emptyTable();
    const ops: OpResult[] = [];
    for (const g of groups) {
      const r = await tuneGroup(gpu, g, o);
      const w = r.candidates.findIndex((c) => c.winner);
      if (w >= 0) g.store(table, w);
      ops.push(r);
    }
    return { adapter: gpu.name, timer: o.timer ? 'injected' : timerKind(gpu), reps: o.reps ?? 3, ops, table };
  } finally {
    setTuning(gpu, saved);
  }
}

function matmulGroups(gpu: Gpu, shapes: TuneShapes, dtypes: MatmulDtype[]): Group[] {
  const ops = [...new Set(shapes.matmul.map((s) => s.op))] as MatmulOp[];
  return dtypes.flatMap((dtype) =>
    ops.map((op): Group => {
      const cands = matmulCandidates(gpu, op);
      return {
        kind: 'matmul',
        key: matmulKey(op, dtype),
        names: cands.map((c) => c.name),
        workloads: () => shapes.matmul.filter((s) => s.op === op).map((s, i) => matmulWorkload(gpu, s, dtype, cands, 1000 + 10 * i)),
        store: (t, i) => (t.matmul[matmulKey(op, dtype)] = { tile: cands[i].tile, stage: cands[i].stage }),
      };
    }),
  );
}

function attentionGroups(gpu: Gpu, shapes: TuneShapes, kinds: TuneKind[]): Group[] {
  const groups: Group[] = [];
  for (const s of shapes.attention) {
    const key = attentionKey(s.headDim, s.L);
    if (kinds.includes('attention')) {
      const cands = attentionCandidates(gpu, s.L, s.headDim);
      groups.push({
        kind: 'attention',
        key,
        names: cands.map((c) => c.name),
        workloads: () => [attentionWorkload(gpu, s, cands, 2000)],
        store: (t, i) => (t.attention[key] = cands[i].tiles),
      });
    }
    if (kinds.includes('attention backward')) {
      const cands = attentionBackwardCandidates(gpu, s.L, s.headDim);
      groups.push({
        kind: 'attention backward',
        key,
        names: cands.map((c) => c.name),
        workloads: () => [attentionBackwardWorkload(gpu, s, cands, 3000)],
        store: (t, i) => (t.attentionBackward[key] = cands[i].tiles),
      });
    }
  }
  return groups;
}

const firstLine = (e: unknown) => String((e as Error)?.message ?? e).split('\n')[0];

async function tuneGroup(gpu: Gpu, g: Group, o: TuneOptions): Promise<OpResult> {
  const reps = o.reps ?? 3;
  const targetMs = o.targetMs ?? 100;
  const maxIters = o.maxIters ?? 50;
  const timer = o.timer ?? defaultTimer(gpu);
  const say = o.onProgress ?? (() => {});
  const label = `${g.kind} ${g.key}`;
  const res: CandidateResult[] = g.names.map((name) => ({ name, ok: true, shapes: [], ms: NaN, flops: 0, winner: false }));
  const workloads = g.workloads();
  try {
    // 1, 2: check every candidate against the default, and size its measurements
    for (const w of workloads) {
      say(`${label} ${w.shape} (${w.what}): checking ${res.length} candidates`);
      const ref = await w.reference();
      for (const [i, c] of res.entries()) {
        if (!c.ok) continue;
        try {
          const v = await w.check(i, ref);
          if (!v.ok) {
            discard(c, `wrong output at ${w.shape}: ${v.detail}`);
            continue;
          }
          const t0 = performance.now();
          w.run(i);
          await gpu.sync();
          const once = performance.now() - t0;
          const iters = Math.max(1, Math.min(maxIters, Math.round(targetMs / Math.max(once, 1e-3))));
          c.shapes.push({ shape: w.shape, what: w.what, flops: w.flops, iters, times: [], ms: NaN, check: v.detail });
        } catch (e) {
          await gpu.sync().catch(() => undefined); // drain what the failed launch left behind
          discard(c, `failed at ${w.shape}: ${firstLine(e)}`);
        }
      }
    }
    // 3: interleaved measurements
    for (let rep = 0; rep < reps; rep++) {
      say(`${label}: round ${rep + 1} of ${reps}`);
      for (const [wi, w] of workloads.entries()) {
        for (const [i, c] of res.entries()) {
          if (!c.ok) continue;
          const st = c.shapes[wi];
          const ms = await timer(() => {
            for (let k = 0; k < st.iters; k++) w.run(i);
          }, { op: label, shape: w.shape, candidate: c.name });
          st.times.push(ms / st.iters);
        }
      }
    }
  } finally {
    for (const w of workloads) w.release();
  }
  // 4: medians and the winner
  let best = -1;
  for (const [i, c] of res.entries()) {
    if (!c.ok) continue;
    for (const st of c.shapes) st.ms = median(st.times);
    c.ms = c.shapes.reduce((s, st) => s + st.ms, 0);
    c.flops = c.shapes.reduce((s, st) => s + st.flops, 0);
    if (best < 0 || c.ms < res[best].ms) best = i;
  }
  if (best >= 0) res[best].winner = true;
  return { kind: g.kind, key: g.key, candidates: res, winner: best >= 0 ? res[best].name : null };
}

function discard(c: CandidateResult, note: string): void {
  c.ok = false;
  c.note = note;
  c.shapes = [];
}
