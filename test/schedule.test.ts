import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { type ScheduleOptions, learningRate, warmupSteps } from '../core/train/schedule.ts';

interface GoldenCase {
  lr: number;
  totalSteps: number;
  warmupSteps?: number;
  warmupRatio?: number;
  resolvedWarmupSteps: number;
  lrs: number[];
}

// Learning rates recorded from torch's LambdaLR over transformers' get_linear_schedule_with_warmup
// (tools/make_optim_goldens.py), before each optimizer step and two steps past the end.
const golden = JSON.parse(readFileSync('test/fixtures/optim/schedule.json', 'utf8')) as { cases: GoldenCase[] };

test('schedule: the golden covers warmup ratio rounding, no warmup and warmup past the end', () => {
  assert.ok(golden.cases.length >= 5);
  assert.ok(golden.cases.some((c) => c.warmupRatio !== undefined && c.resolvedWarmupSteps !== c.totalSteps * c.warmupRatio));
  assert.ok(golden.cases.some((c) => c.resolvedWarmupSteps === 0));
  assert.ok(golden.cases.some((c) => c.resolvedWarmupSteps > c.totalSteps));
});

for (const c of golden.cases) {
  const warm = c.warmupRatio !== undefined ? `warmupRatio ${c.warmupRatio}` : `warmupSteps ${c.warmupSteps}`;
  test(`schedule: linear, lr ${c.lr}, ${c.totalSteps} steps, ${warm} = transformers`, () => {
    const o: ScheduleOptions =
      c.warmupRatio !== undefined
        ? { lr: c.lr, totalSteps: c.totalSteps, warmupRatio: c.warmupRatio, kind: 'linear' }
        : { lr: c.lr, totalSteps: c.totalSteps, warmupSteps: c.warmupSteps!, kind: 'linear' };
    assert.equal(warmupSteps(o), c.resolvedWarmupSteps);
    // exact: the same float64 operations in the same order as the Python code
    const got = c.lrs.map((_, k) => learningRate(k, o));
    assert.deepEqual(got, c.lrs);
  });
}

test('schedule: the recipe (lr 1e-5, warmup ratio 0.1) starts at 0, peaks after warmup, ends at 0', () => {
  const o: ScheduleOptions = { lr: 1e-5, totalSteps: 1000, warmupRatio: 0.1, kind: 'linear' };
  assert.equal(learningRate(0, o), 0);
  assert.equal(learningRate(100, o), 1e-5);
  assert.equal(learningRate(550, o), 5e-6);
  assert.equal(learningRate(1000, o), 0);
  assert.equal(learningRate(5000, o), 0);
});

test('schedule: argument errors', () => {
  const o: ScheduleOptions = { lr: 1e-5, totalSteps: 10, warmupSteps: 2, kind: 'linear' };
  assert.throws(() => learningRate(-1, o), /step must be an integer >= 0/);
  assert.throws(() => learningRate(1.5, o), /step must be an integer >= 0/);
  assert.throws(() => learningRate(0, { ...o, totalSteps: 0 }), /totalSteps must be an integer >= 1/);
  assert.throws(() => learningRate(0, { lr: 1, totalSteps: 10, warmupSteps: 2, warmupRatio: 0.1, kind: 'linear' } as unknown as ScheduleOptions), /not both/);
  assert.throws(() => learningRate(0, { lr: 1, totalSteps: 10, kind: 'linear' } as unknown as ScheduleOptions), /give warmupSteps or warmupRatio/);
  assert.throws(() => learningRate(0, { lr: 1, totalSteps: 10, warmupRatio: 1.5, kind: 'linear' }), /warmupRatio must be in \[0, 1\]/);
  assert.throws(() => learningRate(0, { ...o, kind: 'cosine' } as unknown as ScheduleOptions), /unknown kind 'cosine'/);
});
