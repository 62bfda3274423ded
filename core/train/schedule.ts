// Learning-rate schedules, as Hugging Face transformers computes them for the Trainer that
// FlagEmbedding fine-tunes with.
//
// linear: get_linear_schedule_with_warmup under torch's LambdaLR: lr * step / warmup while
// step < warmup, then lr * max(0, (total - step) / (total - warmup)). `step` counts optimizer
// updates already made, so the first update (step 0) runs at lr 0 when there is a warmup,
// exactly as the Trainer, which steps the scheduler after each optimizer step.
// A warmup ratio becomes ceil(total * ratio) steps (TrainingArguments.get_warmup_steps), with
// the float64 product as Python forms it: 30 * 0.1 = 3.0000000000000004 gives 4 steps.

export type ScheduleOptions = {
  /** Peak learning rate (the optimizer's lr). */
  lr: number;
  /** Number of optimizer updates in the whole run. */
  totalSteps: number;
  kind: 'linear';
} & ({ warmupSteps: number; warmupRatio?: undefined } | { warmupRatio: number; warmupSteps?: undefined });

/** Warmup length in optimizer steps: warmupSteps, or ceil(totalSteps * warmupRatio). */
export function warmupSteps(o: ScheduleOptions): number {
  if (o.warmupSteps !== undefined && o.warmupRatio !== undefined) throw new Error('schedule: give warmupSteps or warmupRatio, not both');
  if (o.warmupSteps !== undefined) {
    if (!Number.isInteger(o.warmupSteps) || o.warmupSteps < 0) throw new Error(`schedule: warmupSteps must be an integer >= 0, got ${o.warmupSteps}`);
    return o.warmupSteps;
  }
  if (o.warmupRatio === undefined) throw new Error('schedule: give warmupSteps or warmupRatio');
  if (!(o.warmupRatio >= 0 && o.warmupRatio <= 1)) throw new Error(`schedule: warmupRatio must be in [0, 1], got ${o.warmupRatio}`);
  return Math.ceil(o.totalSteps * o.warmupRatio);
}

/** Learning rate of the update that follows `step` completed updates (see the header). */
export function learningRate(step: number, o: ScheduleOptions): number {
  if (o.kind !== 'linear') throw new Error(`schedule: unknown kind '${String(o.kind)}' (have: linear)`);
  if (!Number.isInteger(step) || step < 0) throw new Error(`schedule: step must be an integer >= 0, got ${step}`);
  if (!Number.isInteger(o.totalSteps) || o.totalSteps < 1) throw new Error(`schedule: totalSteps must be an integer >= 1, got ${o.totalSteps}`);
  const warmup = warmupSteps(o);
  // The same float64 operations, in the same order, as transformers'
  // _get_linear_schedule_with_warmup_lr_lambda and LambdaLR (base_lr * factor).
  const factor = step < warmup ? step / Math.max(1, warmup) : Math.max(0, (o.totalSteps - step) / Math.max(1, o.totalSteps - warmup));
  return o.lr * factor;
}
