// Comparing two fine-tuned model.safetensors files trained on different adapters (Chromium vs
// Node) from the same base model, data, seed and settings: the weight tolerance of the training
// parity tests (test/browser-train.test.ts states and justifies it in its header; the page test
// test/train-page.test.ts reuses it).
//
// AdamW moves each weight by about lr per step whatever its gradient's size, so adapter rounding
// does not grow through the update, except where the gradient itself is rounding noise: the
// attention key biases (their exact gradient is zero), held only to what AdamW can move in K
// steps, 2 * K * lr. Every other weight: |dw| <= 0.05 * lr, at most MAX_LOOSE elements over
// 1e-3 * lr, and mean |dw| <= 1e-5 * lr.

import assert from 'node:assert/strict';
import { parseSafetensorsHeader, readTensor } from '../core/model/safetensors.ts';
import type { ByteSource } from '../core/model/source.ts';

export const WEIGHT_ATOL_LR = 0.05;
export const WEIGHT_MEAN_LR = 1e-5;
export const LOOSE_LR = 1e-3;
export const MAX_LOOSE = 10;
/** Parameters whose gradient is zero in exact arithmetic (see the header). */
export const ZERO_GRADIENT = /attention\.self\.key\.bias$/;

export interface WeightDiff {
  maxDiff: number;
  meanDiff: number;
  /** Elements over LOOSE_LR * lr. */
  loose: number;
  count: number;
  /** Elements the Node run moved by more than lr from the base (the comparison says little if few). */
  moved: number;
  /** Max |dw| over the attention key biases. */
  zeroGradMax: number;
}

/** Differences between `ours` and `theirs` (every tensor of ours must be in theirs), with `base` for how far training moved. */
export async function weightDiff(ours: ByteSource, theirs: ByteSource, base: ByteSource, lr: number): Promise<WeightDiff> {
  const [o, t, b] = [await parseSafetensorsHeader(ours), await parseSafetensorsHeader(theirs), await parseSafetensorsHeader(base)];
  let maxDiff = 0;
  let sumDiff = 0;
  let count = 0;
  let moved = 0;
  let loose = 0;
  let zeroGradMax = 0;
  for (const name of o.tensors.keys()) {
    assert.ok(t.tensors.has(name), `${name}: not in ${theirs.name}`);
    const [c, n] = [(await readTensor(o, name)).data, (await readTensor(t, name)).data];
    const w0 = b.tensors.has(name) ? (await readTensor(b, name)).data : null;
    assert.equal(c.length, n.length, name);
    for (let i = 0; i < c.length; i++) {
      const d = Math.abs(c[i] - n[i]);
      if (ZERO_GRADIENT.test(name)) {
        zeroGradMax = Math.max(zeroGradMax, d);
        continue;
      }
      maxDiff = Math.max(maxDiff, d);
      sumDiff += d;
      if (d > LOOSE_LR * lr) loose++;
      count++;
      if (w0 && Math.abs(n[i] - w0[i]) > lr) moved++;
    }
  }
  return { maxDiff, meanDiff: sumDiff / count, loose, count, moved, zeroGradMax };
}

export function describeWeightDiff(d: WeightDiff, lr: number): string {
  return `weights max |dw| ${d.maxDiff.toExponential(2)}, mean ${d.meanDiff.toExponential(2)}, ${d.loose} over ${LOOSE_LR} * lr, of ${d.count} (lr ${lr}; ${d.moved} weights moved by > lr); key biases max |dw| ${d.zeroGradMax.toExponential(2)}`;
}

/** The parity bounds for a run of `steps` optimizer steps at peak learning rate `lr`. */
export function assertWeightsClose(d: WeightDiff, lr: number, steps: number): void {
  // Most of the parameters are embedding rows of tokens the data never uses (no gradient).
  assert.ok(d.moved > 10_000, `training moved only ${d.moved} of ${d.count} weights by more than lr: the comparison would say little`);
  assert.ok(d.maxDiff <= WEIGHT_ATOL_LR * lr, `max weight difference ${d.maxDiff} > ${WEIGHT_ATOL_LR} * lr`);
  assert.ok(d.meanDiff <= WEIGHT_MEAN_LR * lr, `mean weight difference ${d.meanDiff} > ${WEIGHT_MEAN_LR} * lr`);
  assert.ok(d.loose <= MAX_LOOSE, `${d.loose} weights differ by more than ${LOOSE_LR} * lr`);
  assert.ok(d.zeroGradMax <= 2 * steps * lr, `an attention key bias differs by ${d.zeroGradMax} > 2 * K * lr`);
}
