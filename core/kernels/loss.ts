// Launcher for shaders/loss.wgsl: the contrastive (InfoNCE) loss of a retrieval step and its
// gradients with respect to both embedding sets, in one call (the loss is a scalar at the end
// of the graph, so its forward and backward always run together).
//
// FlagEmbedding's layout and loss: Q queries, P = Q * G passages ordered [q0's positive,
// q0's G - 1 negatives, q1's positive, ...]; logits s = q p^T / temperature over ALL passages
// of the step (in-batch negatives); the target of query i is passage i * G;
// loss = mean_i cross_entropy(s_i, i * G). With dS = softmax(s) - onehot(target) per row:
//   dq = scale / (Q T) * dS p        [Q, P] x [P, H]
//   dp = scale / (Q T) * dS^T q      [P, Q] x [Q, H]
// Both products and the logits use matmul; shaders/loss.wgsl does the row softmax and the mean.

import type { Gpu } from '../gpu/device.ts';
import { type Tensor, expectShape } from '../gpu/tensor.ts';
import { expectDtype, forEachRowChunk, rowReduceWg } from '../gpu/launch.ts';
import { matmul } from './matmul.ts';

export interface ContrastiveLossOptions {
  /** Passages per query (1 positive + groupSize - 1 negatives); P = Q * groupSize. */
  groupSize: number;
  /** Logits are q . p / temperature (FlagEmbedding default 0.02). */
  temperature: number;
  /**
   * dq and dp are the gradients of scale * loss (default 1), so GradCache and gradient
   * accumulation can divide by their number of pieces here. The loss written is unscaled.
   */
  scale?: number;
  /** Threads per row for the softmax (power of two); default rowReduceWg(). */
  wg?: number;
}

export interface ContrastiveLossOutputs {
  loss: Tensor /* [1] */;
  dq: Tensor /* [Q, H] */;
  dp: Tensor /* [P, H] */;
}

/**
 * InfoNCE loss of L2-normalised query embeddings q [Q, H] against passage embeddings
 * p [Q * groupSize, H] (see the file header), and d(scale * loss)/dq, d(scale * loss)/dp.
 * Writes out.loss [1], out.dq [Q, H], out.dp [P, H]. Deterministic: fixed-order reductions.
 * Scratch: a [Q, P] logits matrix and [Q] row losses, taken from and returned to the pool.
 */
export function contrastiveLoss(gpu: Gpu, out: ContrastiveLossOutputs, q: Tensor /* [Q, H] */, p: Tensor /* [P, H] */, o: ContrastiveLossOptions): void {
  const what = 'contrastiveLoss';
  if (q.shape.length !== 2) throw new Error(`${what}: q must be [Q, H], got [${q.shape.join(', ')}]`);
  const [Q, H] = q.shape;
  const G = o.groupSize;
  if (!Number.isInteger(G) || G < 1) throw new Error(`${what}: groupSize must be a positive integer, got ${G}`);
  if (!(o.temperature > 0) || !Number.isFinite(o.temperature)) throw new Error(`${what}: temperature must be a positive number, got ${o.temperature}`);
  const scale = o.scale ?? 1;
  if (!Number.isFinite(scale)) throw new Error(`${what}: scale must be finite, got ${scale}`);
  if (Q === 0) throw new Error(`${what}: no queries (Q = 0): the mean over queries is undefined`);
  if (H === 0) throw new Error(`${what}: embeddings have no dimensions (H = 0)`);
  const P = Q * G;
  expectShape(`${what}: p (Q * groupSize = ${Q} * ${G} passages)`, p, [P, H]);
  expectShape(`${what}: loss`, out.loss, [1]);
  expectShape(`${what}: dq`, out.dq, [Q, H]);
  expectShape(`${what}: dp`, out.dp, [P, H]);
  for (const [w, t] of [['q', q], ['p', p], ['loss', out.loss], ['dq', out.dq], ['dp', out.dp]] as const) expectDtype(`${what}: ${w}`, t, 'f32');
  for (const [w, t] of [['loss', out.loss], ['dq', out.dq], ['dp', out.dp]] as const) {
    if (t.buffer === q.buffer || t.buffer === p.buffer) throw new Error(`${what}: ${w} shares a GPU buffer with q or p; the inputs are read after it is written`);
  }
  const wg = o.wg ?? rowReduceWg(gpu);
  if (!Number.isInteger(Math.log2(wg)) || wg > gpu.limits.maxInvocations) {
    throw new Error(`${what}: workgroup size ${wg} must be a power of two <= ${gpu.limits.maxInvocations}`);
  }
  if (Q * 4 > gpu.limits.maxBinding) throw new Error(`${what}: ${Q} queries: the row losses do not fit one storage binding`);

  // logits [Q, P] = q p^T / T, then overwritten in place by dS = softmax - onehot
  const logits = gpu.empty([Q, P]);
  const rowLoss = gpu.empty([Q]);
  matmul(gpu, logits, q, p, { transB: true, alpha: 1 / o.temperature });
  // Only the logits are chunked; the row losses (Q * 4 bytes) are bound whole and indexed by
  // global row, as a [count] view would need chunks of a multiple of 64 rows to start aligned.
  forEachRowChunk(gpu, what, Q, [P * 4], (start, count) => {
    gpu.dispatch({
      kernel: 'loss',
      entry: 'row_xent',
      defines: { WG: wg },
      bindings: [logits.rows(start, count), rowLoss],
      uniforms: { rows: count, P, G, row0: start },
      workgroups: gpu.grid(count),
    });
  });
  gpu.dispatch({
    kernel: 'loss',
    entry: 'loss_mean',
    defines: { WG: wg },
    bindings: [out.loss, rowLoss],
    uniforms: { rows: Q, P: 0, G: 0, row0: 0 },
    workgroups: [1],
  });
  // d(scale * mean_i loss_i)/ds = scale / Q * dS, and ds/dq = p / T, ds/dp = q / T
  const alpha = scale / (Q * o.temperature);
  matmul(gpu, out.dq, logits, p, { alpha });
  matmul(gpu, out.dp, logits, q, { transA: true, alpha });
  logits.release();
  rowLoss.release();
}
