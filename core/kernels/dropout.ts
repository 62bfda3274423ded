// Launcher for shaders/dropout.wgsl: hidden-state dropout for training (BERT's and GTE's
// hidden_dropout_prob), with masks recomputed from (seed, element index) instead of stored.

import { type Gpu, f32 } from '../gpu/device.ts';
import { type Tensor, bytesPerElement, expectShape } from '../gpu/tensor.ts';
import { type DropoutSpec, dropKey, dropScale, dropThreshold } from '../util/random.ts';
import { expectDtype, flatView, forEachRowChunk } from '../gpu/launch.ts';

export type { DropoutSpec } from '../util/random.ts';

const WG = 256;

/**
 * out = keep ? x * 1/(1-p) : 0, any shape (out and x the same; they may not share a buffer).
 * The backward is this same call on dout with the same spec: dx = keep ? dout / (1-p) : 0.
 * out and x are both f32 or both f16; the mask depends only on (seed, element index), so an f16
 * tensor loses the same elements as an f32 one, and a kept f16 element is x * scale computed in
 * f32 and rounded to f16 once.
 */
export function dropout(gpu: Gpu, out: Tensor, x: Tensor, d: DropoutSpec): void {
  expectShape('dropout: x', x, out.shape);
  const dt = x.dtype;
  if (dt !== 'f32' && dt !== 'f16') throw new Error(`dropout: x must hold f32 or f16 elements, got ${x}`);
  expectDtype('dropout: out', out, dt);
  if (out.buffer === x.buffer) throw new Error('dropout: out and x share a buffer; use a separate out');
  if (!Number.isInteger(d.seed) || d.seed < 0 || d.seed > 0xffffffff) throw new Error(`dropout: seed ${d.seed} is not a u32`);
  const threshold = dropThreshold(d.p);
  const key = dropKey(d.seed);
  const scale = f32(dropScale(d.p));
  const eb = bytesPerElement(dt);
  forEachRowChunk(gpu, 'dropout', out.size, [eb, eb], (start, count) => {
    gpu.dispatch({
      kernel: 'dropout',
      entry: 'forward',
      defines: dt === 'f16' ? { WG, F16: true } : { WG },
      bindings: [flatView(out, start, count), flatView(x, start, count)],
      uniforms: { n: count, base: start, key, threshold, scale },
      workgroups: gpu.grid(Math.ceil(count / WG)),
    });
  });
}

/** A new tensor (x's dtype) holding dropout(x); x is kept (a gradient that also flows elsewhere). */
export function droppedCopy(gpu: Gpu, x: Tensor, d: DropoutSpec): Tensor {
  const out = gpu.empty(x.shape, x.dtype);
  dropout(gpu, out, x, d);
  return out;
}

/** A new tensor (x's dtype) holding dropout(x); releases x (an activation used only here). */
export function dropped(gpu: Gpu, x: Tensor, d: DropoutSpec): Tensor {
  const out = droppedCopy(gpu, x, d);
  x.release();
  return out;
}
