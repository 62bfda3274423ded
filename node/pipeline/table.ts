// `aqa pipeline`'s results: the metrics file's shape, the best run, and the text table.

import type { EvalReport } from '../../core/eval/metrics.ts';

export interface RunMetrics {
  name: string;
  kind: 'model' | 'bm25' | 'fusion';
  /** Fusion only: the runs fused and their weights. */
  fused?: { runs: string[]; weights: number[]; tuned: boolean };
  valid: EvalReport;
  /** Fusion tuned on valid only: each valid question ranked with weights tuned on the other half. */
  validHeldOut?: EvalReport;
  /** When the test questions have gold pids. */
  test?: EvalReport;
}

export interface MetricsFile {
  questions: { valid: number; test: number | null };
  runs: RunMetrics[];
}

/** Official MAP@20 used to rank runs: the held-out one for tuned fusions. */
export function officialOf(r: RunMetrics): number {
  return (r.validHeldOut ?? r.valid).officialMap20;
}

/** The run with the highest official MAP@20 on valid (held-out for tuned fusions); earlier wins ties. */
export function bestRun(m: MetricsFile): RunMetrics {
  return m.runs.reduce((a, b) => (officialOf(b) > officialOf(a) + 1e-12 ? b : a));
}

/** Every run's metrics as a text table: valid first, then test when it was scored. */
export function formatTable(m: MetricsFile): string {
  const f = (x: number) => x.toFixed(4);
  const head = ['run', 'split', 'official MAP@20', 'MAP@20', 'R@20', 'R@100', 'R@200', 'nDCG@10', 'note'];
  const rows: string[][] = [];
  const row = (name: string, split: string, r: EvalReport, note: string) =>
    rows.push([name, split, f(r.officialMap20), f(r.map20), f(r.recall20), f(r.recall100), f(r.recall200), f(r.ndcg10), note]);
  for (const r of m.runs) {
    const w = r.fused ? `weights ${r.fused.runs.map((n, i) => `${n} ${r.fused!.weights[i].toFixed(2)}`).join(', ')}${r.fused.tuned ? ' (tuned on valid)' : ''}` : '';
    row(r.name, 'valid', r.valid, w);
    if (r.validHeldOut) row('', 'valid', r.validHeldOut, 'held out: each half fused with weights tuned on the other');
    if (r.test) row('', 'test', r.test, '');
  }
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i >= 2 && i < 8 ? c.padStart(width[i]) : c.padEnd(width[i])))
      .join('  ')
      .trimEnd();
  const best = bestRun(m);
  return [line(head), ...rows.map(line), `(${m.questions.valid} valid questions${m.questions.test !== null ? `, ${m.questions.test} test` : ''}; best: ${best.name} ${officialOf(best).toFixed(4)})`].join('\n');
}
