// `aqa pipeline` end to end on test/fixtures/pipeline (40 SciFact papers, 12 training, 8
// validation and 5 unjudged test claims) with the tiny BERT fixture: a zero-shot run, a run
// fine-tuned on negatives mined with it, BM25, three fusions and a submission.
//
// The tests share one work dir and run in order, because training is the slow part (its first
// step compiles the backward kernels: ~25 s on a loaded 2-core machine): the first run is killed
// after one of the two training steps, the second resumes it and finishes, and the later ones
// check what reruns.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { parseResults, parseSubmission } from '../core/retrieval/results.ts';
import { TRAIN_OPTIONS } from '../core/train/options.ts';
import { KILL_AFTER_STEPS_ENV, type MetricsFile, parseConfig, PipelineConfigError, type PipelineResult, runPipeline } from '../node/pipeline/index.ts';

const FIXTURE = 'test/fixtures/pipeline';

// tmp/pipeline/ holds a copy of the fixture (the tests edit its question files) and
// tmp/tiny-bert links to the model, so the config's "../tiny-bert" resolves as in the repo.
const root = mkdtempSync(join(tmpdir(), 'aqa-pipeline-'));
const dir = join(root, 'pipeline');
cpSync(FIXTURE, dir, { recursive: true });
symlinkSync(resolve('test/fixtures/tiny-bert'), join(root, 'tiny-bert'));
const config = join(dir, 'config.json');
const work = join(root, 'work');
after(() => rmSync(root, { recursive: true, force: true }));

async function run(extra: { force?: 'index' } = {}): Promise<PipelineResult & { lines: string[] }> {
  const lines: string[] = [];
  const r = await runPipeline({ config, workDir: work, ...extra, log: (l) => lines.push(l), print: () => {} });
  return { ...r, lines };
}

function raw(): Record<string, unknown> {
  return JSON.parse(readFileSync(join(FIXTURE, 'config.json'), 'utf8'));
}

/** The one-line error parseConfig gives for the fixture config changed by `edit`. */
function configError(edit: (c: Record<string, any>) => void): string {
  const c = raw();
  edit(c);
  try {
    parseConfig(c, join(FIXTURE, 'config.json'));
  } catch (e) {
    assert.ok(e instanceof PipelineConfigError, `expected a PipelineConfigError, got ${(e as Error).stack}`);
    assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
    return e.message;
  }
  assert.fail('the config was accepted');
}

test('a bad config is one line naming the file and the field', () => {
  const file = join(FIXTURE, 'config.json');
  const cases: [(c: Record<string, any>) => void, string][] = [
    [(c) => (c.models[1].train.learning_rate = -1), 'models[1].train.learning_rate: must be a number > 0'],
    [(c) => (c.models[1].train.learning_rate = '1e-5'), 'models[1].train.learning_rate: must be a number > 0'],
    [(c) => (c.models[1].train.num_train_epochs = 1.5), 'models[1].train.num_train_epochs: must be an integer >= 1'],
    [(c) => (c.models[1].train.warmup_ratio = 2), 'models[1].train.warmup_ratio: must be a number in [0, 1]'],
    [(c) => (c.models[0].trian = {}), 'models[0].trian: unknown field'],
    [(c) => delete c.models[0].max_length, 'models[0].max_length: missing'],
    [(c) => (c.models[1].name = 'tiny'), "models[1].name: 'tiny' is used by an earlier entry"],
    [(c) => (c.models[0].model = 'no/such/folder'), "models[0].model: 'no/such/folder' is neither a folder"],
    [(c) => (c.models[1].train.negatives.mine_with = 'big'), "models[1].train.negatives.mine_with: 'big' is not a model name"],
    [(c) => (c.models[1].train.negatives.mine_with = 'tiny-ft'), "models[1].train.negatives.mine_with: 'tiny-ft' is fine-tuned here"],
    [(c) => (c.models[1].train.negatives.range = '20-10'), 'models[1].train.negatives.range: must be "START-END"'],
    [(c) => (c.models[1].train.negatives = 'hard'), 'models[1].train.negatives: must be "random" or an object'],
    [(c) => (c.data.valid = 'nope.txt'), 'data.valid: '],
    [(c) => delete c.data.corpus, 'data.corpus: missing'],
    [(c) => (c.retrieve_k = 10), 'retrieve_k: must be an integer in [20, 1024]'],
    [(c) => (c.fusion.methods = ['sum', 'mean']), 'fusion.methods[1]: must be one of'],
    [(c) => (c.fusion.weights_step = 0.3), 'fusion.weights_step: must be a number in (0, 1] that divides 1'],
    [(c) => (c.submission.run = 'fusion:max'), "submission.run: 'fusion:max' is not a run"],
    [(c) => (c.models = []) && (c.bm25 = false), 'models: no enabled model and bm25 is off'],
  ];
  for (const [edit, want] of cases) {
    const msg = configError(edit);
    assert.ok(msg.startsWith(`${file}: ${want}`), `expected "${file}: ${want}...", got "${msg}"`);
  }
  // The example of the documentation, word for word.
  assert.equal(
    configError((c) => (c.models[1].train.learning_rate = 0)),
    `${file}: models[1].train.learning_rate: must be a number > 0`,
  );
});

test('the bundled default config is valid, and so is its fine-tuning entry once enabled', () => {
  const file = 'demo/data/pipeline/config.json';
  assert.ok(existsSync('test/models/all-MiniLM-L6-v2/model.safetensors'), 'test/models/all-MiniLM-L6-v2 is missing: run bash tools/fetch-test-models.sh');
  const c = JSON.parse(readFileSync(file, 'utf8'));
  const cfg = parseConfig(c, file);
  assert.deepEqual(
    cfg.models.map((m) => [m.name, m.enabled, m.maxLength]),
    [
      ['minilm', true, 128],
      ['minilm-ft', false, 128],
    ],
  );
  assert.equal(cfg.models[0].model, resolve('test/models/all-MiniLM-L6-v2'), 'model paths are relative to the config file');
  assert.equal(cfg.submission?.out, resolve('out/pipeline/submission.txt'));
  c.models[1].enabled = true;
  const ft = parseConfig(c, file).models[1];
  assert.deepEqual(ft.train?.negatives, { kind: 'mined', mineWith: 'minilm', range: [10, 210], count: 15 });
});

test("train section defaults are the option table's, with the pipeline's own where the table says so", () => {
  const c = raw();
  (c.models as Record<string, unknown>[])[1].train = { negatives: 'random' };
  const t = parseConfig(c, join(FIXTURE, 'config.json')).models[1].train!;
  for (const o of TRAIN_OPTIONS) {
    const got = o.key === 'saveSteps' || o.key === 'saveTotalLimit' ? t[o.key] : t.settings[o.key];
    const want = o.modelDefault ? null : o.pipelineDefault ? o.pipelineDefault.value({ maxLength: 32 }, o.default as number) : o.default;
    assert.equal(got, want, o.name);
  }
  assert.equal(t.settings.passageMaxLen, 32, "passages are cut at the model entry's max_length");
  assert.equal(t.saveSteps, 100);
});

test('a bad config fails the command with that line and exit code 1, before any work', () => {
  const bad = join(dir, 'bad.json'); // beside the data its relative paths name
  const c = raw();
  (c.models as Record<string, any>[])[1].train.temperature = 0;
  writeFileSync(bad, JSON.stringify(c));
  const r = spawnSync(process.execPath, ['--import', 'tsx', `${FIXTURE}/run.ts`, bad, '--work-dir', join(root, 'bad-work')], { encoding: 'utf8' });
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stderr.trim(), `aqa: ${bad}: models[1].train.temperature: must be a number > 0`);
  assert.ok(!existsSync(join(root, 'bad-work')), 'nothing written');
  writeFileSync(bad, '{"data": ');
  const r2 = spawnSync(process.execPath, ['--import', 'tsx', `${FIXTURE}/run.ts`, bad], { encoding: 'utf8' });
  assert.equal(r2.status, 1);
  assert.match(r2.stderr.trim(), /^aqa: .*bad\.json: not valid JSON \(/);
});

test('a run killed during training leaves its checkpoint and no train stamp', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', `${FIXTURE}/run.ts`, config, '--work-dir', work], {
    encoding: 'utf8',
    env: { ...process.env, [KILL_AFTER_STEPS_ENV]: '1' },
  });
  assert.equal(r.signal, 'SIGKILL', `expected the test hook's SIGKILL; status ${r.status}, stderr:\n${r.stderr}`);
  const stamps = join(work, 'stamps');
  assert.ok(existsSync(join(stamps, 'prepare.json')) && existsSync(join(stamps, 'mine.tiny-ft.json')), 'prepare and mine finished before');
  assert.ok(!existsSync(join(stamps, 'train.tiny-ft.json')), 'training did not finish');
  assert.ok(existsSync(join(work, 'models/tiny-ft/checkpoint-1/trainer_state.json')), 'the step-1 checkpoint is there');
  assert.ok(!existsSync(join(work, 'models/tiny-ft/model.safetensors')), 'no final model yet');
  assert.ok(existsSync(join(work, '.lock')), "the dead run's lock is left behind");
});

let first: Awaited<ReturnType<typeof run>>;

test('the next run resumes training and finishes: results, metrics and a valid submission', async () => {
  first = await run();
  const r = first;
  assert.deepEqual(r.skipped, ['prepare', 'mine:tiny-ft'], 'what finished before the crash is not redone');
  assert.deepEqual(r.ran, ['train:tiny-ft', 'index:tiny', 'index:tiny-ft', 'search:tiny', 'search:tiny-ft', 'search:bm25', 'fuse', 'evaluate', 'submission']);
  assert.ok(r.lines.some((l) => l.includes('[train] tiny-ft: resuming from the last checkpoint')), r.lines.join('\n'));
  assert.ok(r.lines.some((l) => /\[train\] tiny-ft: 2 steps \(resumed\)/.test(l)), r.lines.join('\n'));
  // one log line per optimizer step, across the two processes: step 1 was not trained twice
  const steps = readFileSync(join(work, 'models/tiny-ft/train_log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).step);
  assert.deepEqual(steps, [1, 2]);

  // results: one line per question, at most retrieve_k (20) pids, best first
  for (const name of ['tiny', 'tiny-ft', 'bm25']) {
    for (const [split, n] of [['valid', 8], ['test', 5]] as const) {
      const res = parseResults(readFileSync(join(work, `search/${name}.${split}.jsonl`), 'utf8'), name);
      assert.equal(res.length, n, `${name} ${split}`);
      assert.ok(res.every((m) => m.size <= 20 && m.size > 0));
      if (name !== 'bm25') assert.ok(res.every((m) => m.size === 20), 'a dense run ranks the whole corpus');
    }
  }
  for (const method of ['sum', 'zscore', 'rrf']) assert.equal(parseResults(readFileSync(join(work, `fuse/${method}.test.jsonl`), 'utf8'), method).length, 5);

  // metrics: every run and fusion, in the JSON file and the table
  const metrics = JSON.parse(readFileSync(join(work, 'metrics.json'), 'utf8')) as MetricsFile;
  assert.deepEqual(metrics, r.metrics);
  assert.deepEqual(
    metrics.runs.map((x) => x.name),
    ['tiny', 'tiny-ft', 'bm25', 'fusion:sum', 'fusion:zscore', 'fusion:rrf'],
  );
  assert.equal(metrics.questions.valid, 8);
  for (const x of metrics.runs) {
    assert.equal(x.valid.questions, 7, 'the flag-0 question is not scored');
    for (const v of Object.values(x.valid)) assert.ok(Number.isFinite(v) && v >= 0);
    assert.equal(x.test, undefined, 'the test questions have no gold pids');
    if (x.kind === 'fusion') {
      assert.equal(x.fused!.weights.length, 3);
      assert.ok(Math.abs(x.fused!.weights.reduce((a, b) => a + b) - 1) < 1e-9);
      assert.ok(x.validHeldOut, 'tuned fusions carry a held-out score');
    }
  }
  // BM25 on SciFact claims finds their papers easily in 40 (the fixture's words overlap a lot)
  const bm25 = metrics.runs.find((x) => x.name === 'bm25')!;
  assert.ok(bm25.valid.recall20 > 0.8, `bm25 R@20 ${bm25.valid.recall20}`);
  for (const name of ['run', 'tiny', 'tiny-ft', 'bm25', 'fusion:zscore', 'official MAP@20', 'held out']) assert.ok(r.table.includes(name), `table lacks ${name}:\n${r.table}`);

  // submission: 5 test questions, exactly 20 distinct pids each, all from the corpus
  const corpus = new Set(Object.keys(JSON.parse(readFileSync(join(dir, 'corpus.json'), 'utf8'))));
  const sub = parseSubmission(readFileSync(join(work, 'submission.txt'), 'utf8'), 'submission.txt');
  assert.equal(sub.length, 5);
  assert.ok(sub.every((l) => l.length === 20 && l.every((p) => corpus.has(p))));
  assert.equal(r.submission, join(work, 'submission.txt'));
  assert.ok(!existsSync(join(work, '.lock')), 'the lock is released');
});

test('a second run skips every stage', async () => {
  const r = await run();
  assert.deepEqual(r.ran, []);
  assert.equal(r.skipped.length, 11);
  assert.deepEqual(r.metrics, first.metrics);
  assert.ok(r.lines.every((l) => !l.startsWith('[') || l.includes('up to date') || l.includes('nothing to do')), r.lines.join('\n'));
});

test('touching the valid questions reruns nothing; editing them reruns prepare and search onwards', async () => {
  const valid = join(dir, 'qa_valid_flag.txt');
  const later = new Date(Date.now() + 5000);
  utimesSync(valid, later, later);
  assert.deepEqual((await run()).ran, [], 'same content: inputs are hashed, not dated');

  // score the flag-0 question too: the metrics change, the models and indexes do not
  writeFileSync(valid, readFileSync(valid, 'utf8').replace('"flag": 0', '"flag": 1'));
  const r = await run();
  assert.deepEqual(r.ran, ['prepare', 'search:tiny', 'search:tiny-ft', 'search:bm25', 'fuse', 'evaluate', 'submission']);
  assert.deepEqual(r.skipped, ['mine:tiny-ft', 'train:tiny-ft', 'index:tiny', 'index:tiny-ft']);
  assert.ok(r.lines.includes('[prepare] rerun (changed: valid)'), r.lines.join('\n'));
  assert.ok(r.lines.includes('[search] tiny: rerun (changed: questions)'), r.lines.join('\n'));
  assert.ok(r.metrics.runs.every((x) => x.valid.questions === 8));
});

test('--force index reruns the indexes and everything after them', async () => {
  const before = readFileSync(join(work, 'index/tiny-ft/shard-00000.f16'));
  const r = await run({ force: 'index' });
  assert.deepEqual(r.skipped, ['prepare', 'mine:tiny-ft', 'train:tiny-ft']);
  assert.deepEqual(r.ran, ['index:tiny', 'index:tiny-ft', 'search:tiny', 'search:tiny-ft', 'search:bm25', 'fuse', 'evaluate', 'submission']);
  assert.ok(r.lines.some((l) => l.startsWith('[index] tiny-ft: 40 passages')), 'embedded again, not found built');
  assert.ok(readFileSync(join(work, 'index/tiny-ft/shard-00000.f16')).equals(before), 'the same vectors (every kernel is deterministic)');
});
