// The summary block at the end of run.sh, from the files it left in <out>: the machine, the route
// lines, then one line per bench with its key number and the ratio to PyTorch where both exist.
//
//   node summary.mjs <out folder>
//
// Ours are wall-clock numbers, like PyTorch's (which synchronises around each timed call).
// Plain JavaScript: it runs with the packed Node and no loader.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const out = process.argv[2] ?? '/tmp/gpu-bench-out';
const text = (f) => (existsSync(join(out, f)) ? readFileSync(join(out, f), 'utf8') : '');
const json = (f) => {
  try {
    return JSON.parse(text(f));
  } catch {
    return null;
  }
};
const rowsOf = (f) => json(f)?.rows ?? [];
const fmt = (x) => (x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toPrecision(3));
const ratio = (ours, theirs) => (ours && theirs ? ` | ours/PyTorch ${(ours / theirs).toFixed(2)}` : '');

/** label -> exit status from steps.tsv, for saying why a number is missing. */
const steps = new Map(text('steps.tsv').split('\n').filter(Boolean).map((l) => l.split('\t')).map(([label, rc]) => [label, rc]));
const why = (label) => {
  const rc = steps.get(label);
  if (rc === undefined) return 'not run';
  if (rc === 'skipped') return 'skipped: time budget spent';
  if (rc === '124' || rc === '137') return 'timed out';
  return rc === '0' ? 'no result' : `failed, rc=${rc}`;
};

const lines = ['==== summary'];
lines.push(...text('machine.txt').split('\n').filter(Boolean));
lines.push(...text('routes.txt').split('\n').filter(Boolean));
const ours = json('ours-matmul.json') ?? json('ours-embed.json') ?? json('ours-train.json');
lines.push(text('bench-route.txt') ? `benches on ${text('bench-route.txt').trim()}${ours?.adapter ? `: ${ours.adapter}` : ''}` : 'our benches: not run (no hardware adapter)');

const tune = steps.get('aqa tune');
const tuneAbsent = /unknown command 'tune'/.test(text('log.txt'));
if (tune !== undefined) {
  const absent = tuneAbsent;
  lines.push(`tune: ${absent ? 'not in this build' : tune === '0' ? `done${existsSync(join(out, 'ours-tune.json')) ? ' (ours-tune.json)' : ''}` : why('aqa tune')}`);
}

// matmul: the default tile (what the runtime uses) and the best tile, a@b, per precision and N.
const mmOurs = rowsOf('ours-matmul.json').filter((r) => r.impl === 'webgpu' && r.op === 'a@b');
const mmTorch = rowsOf('torch-matmul.json');
const mmKeys = new Set([...mmOurs.map((r) => `${r.precision}|${r.n}`), ...mmTorch.map((r) => `${r.precision ?? 'f32'}|${r.n}`)]);
for (const key of mmKeys) {
  const [precision, n] = key.split('|');
  const mine = mmOurs.filter((r) => r.precision === precision && r.n === Number(n));
  const def = mine.find((r) => String(r.tile).startsWith('default')) ?? mine[0];
  const best = mine.reduce((b, r) => (!b || r.gflops > b.gflops ? r : b), null);
  const torch = mmTorch.find((r) => (r.precision ?? 'f32') === precision && r.n === Number(n));
  const o = def ? `ours ${fmt(def.gflops)} GFLOP/s${best && best !== def ? ` (best tile ${fmt(best.gflops)}: ${best.tile})` : ''}` : `ours ${why('ours matmul')}`;
  const t = torch ? `PyTorch ${fmt(torch.gflops)} GFLOP/s` : `PyTorch ${why('pytorch matmul')}`;
  lines.push(`matmul ${precision} N=${n}: ${o} | ${t}${ratio(def?.gflops, torch?.gflops)}`);
}

// embed: tokens/s per precision and shape; f32 against PyTorch fp32 (sdpa), f16 against fp16.
const emOurs = rowsOf('ours-embed.json').filter((r) => r.impl === 'aqa (ours)');
const emTorch = { f32: rowsOf('torch-embed-fp32.json'), f16: rowsOf('torch-embed-fp16.json') };
const emKeys = new Set([...emOurs.map((r) => `${r.precision}|${r.batch}x${r.seq}`), ...Object.entries(emTorch).flatMap(([p, rs]) => rs.map((r) => `${p}|${r.batch}x${r.seq}`))]);
for (const key of emKeys) {
  const [precision, shape] = key.split('|');
  const mine = emOurs.find((r) => r.precision === precision && `${r.batch}x${r.seq}` === shape);
  const torch = emTorch[precision]?.find((r) => `${r.batch}x${r.seq}` === shape);
  const o = mine ? `ours ${fmt(mine.tokensPerSec)} tokens/s` : `ours ${why('ours embed')}`;
  const t = torch ? `PyTorch ${precision === 'f16' ? 'fp16' : 'fp32'} ${fmt(torch.tokensPerSec)} tokens/s` : `PyTorch ${why(`pytorch embed ${precision === 'f16' ? 'fp16' : 'fp32'}`)}`;
  lines.push(`embed ${precision} ${shape}: ${o} | ${t}${ratio(mine?.tokensPerSec, torch?.tokensPerSec)}`);
}

// train: one optimizer step, GradCache off, tokens/s per precision.
const trOurs = rowsOf('ours-train.json').filter((r) => r.gradCache === 'off');
const trTorch = { f32: rowsOf('torch-train-fp32.json'), f16: rowsOf('torch-train-fp16.json') };
for (const precision of ['f32', 'f16']) {
  const mine = trOurs.find((r) => r.precision === precision);
  const torch = trTorch[precision][0];
  if (!mine && !torch && (precision === 'f16' || !steps.has('pytorch train fp32'))) continue;
  const shape = mine?.shape ?? torch?.shape ?? '';
  const o = mine ? `ours ${fmt(mine.tokensPerSec)} tokens/s (step ${fmt(mine.stepMs)} ms)` : `ours ${why('ours train')}`;
  const t = torch ? `PyTorch ${fmt(torch.tokensPerSec)} tokens/s (step ${fmt(torch.stepMs)} ms)` : `PyTorch ${why(`pytorch train ${precision === 'f16' ? 'fp16' : 'fp32'}`)}`;
  lines.push(`train ${precision} ${shape}: ${o} | ${t}${ratio(mine?.tokensPerSec, torch?.tokensPerSec)}`);
}
for (const [label, rc] of steps) if (rc !== '0' && !(label === 'aqa tune' && tuneAbsent)) lines.push(`step '${label}': ${why(label)}`);
console.log(lines.join('\n'));
