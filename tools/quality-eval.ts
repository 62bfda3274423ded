// Score rankings written by tools/quality_scifact.py (`rank`) with the project's own metric code
// (core/eval/metrics.ts), so the Python-made runs are judged exactly like `aqa search` runs.
//
//   node --import tsx tools/quality-eval.ts [--questions FILE] [--json out.json] RANKINGS.json...
//
// A rankings file is `{"model": str, "questions": str, "corpus": int, "rankings": [[pid, ...], ...]}`
// with one ranking per line of the questions file, in file order. Prints one row per file:
// official MAP@20 (the KDD Cup scorer's, flag-weighted), recall@20, nDCG@10 and the full report.

import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { type EvalReport, evaluate, formatReport } from '../core/eval/metrics.ts';
import { readQuestions } from '../node/data.ts';

interface RankingsFile {
  model: string;
  rankings: string[][];
}

function readRankings(path: string, n: number): RankingsFile {
  let obj: unknown;
  try {
    obj = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: not readable JSON (${(e as Error).message})`);
  }
  const r = obj as Partial<RankingsFile>;
  if (!Array.isArray(r.rankings)) throw new Error(`${path}: rankings: missing or not an array`);
  if (r.rankings.length !== n) throw new Error(`${path}: rankings: ${r.rankings.length} rankings for ${n} questions`);
  const bad = r.rankings.findIndex((x) => !Array.isArray(x) || x.some((p) => typeof p !== 'string'));
  if (bad >= 0) throw new Error(`${path}: rankings[${bad}]: not an array of pid strings`);
  return { model: typeof r.model === 'string' ? r.model : path, rankings: r.rankings };
}

async function main(): Promise<void> {
  const { values: a, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      questions: { type: 'string', default: '../shared/data/scifact-aqa/qa_valid_flag.txt' },
      json: { type: 'string' },
    },
  });
  if (!positionals.length) throw new Error('usage: quality-eval.ts [--questions FILE] [--json OUT] RANKINGS.json...');
  const { questions } = await readQuestions(a.questions!, { requirePids: true });
  const rows: { file: string; model: string; report: EvalReport }[] = [];
  for (const file of positionals) {
    const r = readRankings(file, questions.length);
    const report = evaluate(r.rankings, questions);
    rows.push({ file, model: r.model, report });
    console.log(`${file} (${r.model})\n  ${formatReport(report)}`);
  }
  console.log('\n| model | official MAP@20 | recall@20 | nDCG@10 |\n| --- | ---: | ---: | ---: |');
  for (const { model, report: r } of rows) console.log(`| ${model} | ${r.officialMap20.toFixed(4)} | ${r.recall20.toFixed(4)} | ${r.ndcg10.toFixed(4)} |`);
  if (a.json) writeFileSync(a.json, JSON.stringify(rows, null, 1) + '\n');
}

main().catch((e: Error) => {
  console.error(`quality-eval: ${e.message.split('\n')[0]}`);
  process.exit(1);
});
