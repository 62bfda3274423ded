// Held-out questions for a before/after evaluation of a fine-tuning run (the training page).
//
// The split is a pure function of (keys, fraction, seed), so any host reproduces it: the page
// in its worker, a Node test that checks the page's numbers. `keys[i]` names the question item
// i belongs to; items with the same key go to the same side, so the per-pair layout (one group
// per question and gold paper) never puts a question in training and in the held-out set at once.
//
// Distinct keys are taken in first-appearance order and shuffled with the seeded generator of
// core/util/random.ts (Fisher-Yates); the first round(fraction * keys) of the shuffle are held
// out. With a fraction above 0 and at least two keys, at least one key is held out and at least
// one is kept for training. Both index lists come back in the input's order.

import { rng } from '../util/random.ts';

export const DEFAULT_HOLDOUT_FRACTION = 0.2;
export const DEFAULT_HOLDOUT_SEED = 42;

export interface HoldoutOptions {
  /** Share of the distinct keys held out, in [0, 1) (default 0.2). */
  fraction?: number;
  seed?: number;
}

export interface Holdout {
  /** Item indices to train on, ascending. */
  train: number[];
  /** Item indices to evaluate on, ascending. */
  heldOut: number[];
}

/** How many of `n` distinct keys a fraction holds out. */
export function heldOutCount(n: number, fraction: number): number {
  if (!(fraction >= 0 && fraction < 1)) throw new Error(`hold-out fraction: must be at least 0 and below 1, got ${fraction}`);
  if (fraction === 0 || n < 2) return 0;
  return Math.min(n - 1, Math.max(1, Math.round(fraction * n)));
}

export function holdOut(keys: readonly string[], o: HoldoutOptions = {}): Holdout {
  const distinct: string[] = [];
  const seen = new Set<string>();
  for (const k of keys) if (!seen.has(k)) (seen.add(k), distinct.push(k));
  const m = heldOutCount(distinct.length, o.fraction ?? DEFAULT_HOLDOUT_FRACTION);
  const random = rng(o.seed ?? DEFAULT_HOLDOUT_SEED);
  const order = distinct.slice();
  for (let i = 0; i < m; i++) {
    const j = i + Math.floor(random() * (order.length - i));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const held = new Set(order.slice(0, m));
  const out: Holdout = { train: [], heldOut: [] };
  keys.forEach((k, i) => (held.has(k) ? out.heldOut : out.train).push(i));
  return out;
}
