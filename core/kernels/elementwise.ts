// Launchers for shaders/elementwise.wgsl. Every launcher splits its work into chunks that fit
// one storage binding (forEachRowChunk), and flat kernels fold their workgroup count with
// gpu.grid() past 65535 workgroups per dimension.

import type { Gpu } from '../gpu/device.ts';
import { type DType, Tensor, bytesPerElement, expectShape } from '../gpu/tensor.ts';
import { expectDtype, flatView, forEachRowChunk } from '../gpu/launch.ts';

const WG = 256;

/**
 * The shared float dtype of a forward's operands (f32, or f16 with 'shader-f16'): the first
 * tensor's, which every other one must match (`add: b: expected f16 elements, got f32 ...`).
 */
function actDtype(what: string, tensors: [string, Tensor][]): DType {
  const [name0, t0] = tensors[0];
  const dt = t0.dtype;
  if (dt !== 'f32' && dt !== 'f16') throw new Error(`${what}: ${name0} must hold f32 or f16 elements, got ${t0}`);
  for (const [name, t] of tensors.slice(1)) expectDtype(`${what}: ${name}`, t, dt);
  return dt;
}

/** Defines of an elementwise pipeline: F16 only when set, so the f32 pipeline keys stay as they were. */
function definesFor(dt: DType): { WG: number; F16?: boolean } {
  return dt === 'f16' ? { WG, F16: true } : { WG };
}

/** One flat dispatch per chunk over n elements of same-dtype tensors (all bound in `tensors`). */
function flatForward(gpu: Gpu, entry: string, tensors: Tensor[]): void {
  const n = tensors[0].size;
  const dt = tensors[0].dtype;
  forEachRowChunk(gpu, `elementwise.${entry}`, n, tensors.map((t) => bytesPerElement(t.dtype)), (start, count) => {
    gpu.dispatch({
      kernel: 'elementwise',
      entry,
      defines: definesFor(dt),
      bindings: tensors.map((t) => flatView(t, start, count)),
      uniforms: { n: count, cols: 0 },
      workgroups: gpu.grid(Math.ceil(count / WG)),
    });
  });
}

/** out = a + b, any shape (all three the same); all f32, or all f16 (f32 add, one rounding). */
export function addForward(gpu: Gpu, out: Tensor, a: Tensor, b: Tensor): void {
  expectShape('add: a', a, out.shape);
  expectShape('add: b', b, out.shape);
  actDtype('add', [['out', out], ['a', a], ['b', b]]);
  flatForward(gpu, 'add', [out, a, b]);
}

// add's backward needs no kernel: d a = d b = dout, so callers pass dout on to both branches.
// Where two gradients meet (the residual stream of a post-LN block receives dout from the
// LayerNorm and from the branch's input), the second is added with accumulateForward.

/**
 * dst += src, any shape (both the same): sums gradients where a tensor feeds two consumers,
 * and accumulates gradients over micro-batches. dst and src must be different buffers. Both
 * f32, or both f16 (the sum in f32, rounded to f16 once).
 */
export function accumulateForward(gpu: Gpu, dst: Tensor, src: Tensor): void {
  expectShape('accumulate: src', src, dst.shape);
  actDtype('accumulate', [['dst', dst], ['src', src]]);
  if (dst.buffer === src.buffer) throw new Error('accumulate: dst and src share a buffer; use a separate src');
  flatForward(gpu, 'accumulate', [dst, src]);
}

/**
 * out = erf(x), any shape: the f32 erf approximation GELU uses (|error| < 2.5e-7 on any
 * conforming device; see shaders/elementwise.wgsl). Exposed so the tests can check it alone.
 */
export function erfForward(gpu: Gpu, out: Tensor, x: Tensor): void {
  expectShape('erf: x', x, out.shape);
  expectDtype('erf: out', out, 'f32');
  expectDtype('erf: x', x, 'f32');
  flatForward(gpu, 'erf_forward', [out, x]);
}

/**
 * Exact (erf) GELU, out = x * 0.5 * (1 + erf(x / sqrt 2)), any shape. This is BERT's and GTE's
 * "gelu"; the tanh approximation differs by up to 4.7e-4 and would fail the goldens.
 * out and x are both f32 or both f16 (computed in f32, out rounded once).
 */
export function geluForward(gpu: Gpu, out: Tensor, x: Tensor): void {
  expectShape('gelu: x', x, out.shape);
  actDtype('gelu', [['out', out], ['x', x]]);
  flatForward(gpu, 'gelu_forward', [out, x]);
}

/**
 * Backward of geluForward: dx = dout * gelu'(x), gelu'(x) = Phi(x) + x phi(x) with the exact
 * erf-based Phi (|error of gelu'| < 2e-7 on any conforming device; see the shader). Any shape;
 * dx must not share a buffer with dout or x. dx, dout and x are all f32 or all f16 (computed
 * in f32, dx rounded once).
 */
export function geluBackward(gpu: Gpu, dx: Tensor, dout: Tensor, x: Tensor): void {
  expectShape('gelu backward: dout', dout, dx.shape);
  expectShape('gelu backward: x', x, dx.shape);
  actDtype('gelu backward', [['dx', dx], ['dout', dout], ['x', x]]);
  if (dx.buffer === dout.buffer || dx.buffer === x.buffer) throw new Error('gelu backward: dx shares a buffer with dout or x');
  flatForward(gpu, 'gelu_backward', [dx, dout, x]);
}

/**
 * GEGLU of GTE v1.5: out = gelu(gate) * up, where up = upGate[..., :I] and gate = upGate[..., I:]
 * (the first I columns of up_gate_proj's output are up, the last I are gate).
 * out: [N, I], upGate: [N, 2I]; any leading dims are folded into N (they must match). Both f32
 * or both f16 (computed in f32, out rounded once).
 */
export function gluForward(gpu: Gpu, out: Tensor /* [N, I] */, upGate: Tensor /* [N, 2I] */): void {
  const dt = actDtype('glu', [['out', out], ['upGate', upGate]]);
  if (out.shape.length === 0) throw new Error(`glu: out must have at least one dimension, got ${out}`);
  const cols = out.shape[out.shape.length - 1];
  expectShape('glu: upGate (out is [..., I], upGate must be [..., 2I])', upGate, [...out.shape.slice(0, -1), 2 * cols]);
  if (cols === 0) return;
  const rows = out.size / cols;
  const out2 = out.reshape([rows, cols]);
  const ug2 = upGate.reshape([rows, 2 * cols]);
  const eb = bytesPerElement(dt);
  forEachRowChunk(gpu, 'glu', rows, [cols * eb, 2 * cols * eb], (start, count) => {
    const n = count * cols;
    gpu.dispatch({
      kernel: 'elementwise',
      entry: 'glu_forward',
      defines: definesFor(dt),
      bindings: [out2.rows(start, count), ug2.rows(start, count)],
      uniforms: { n, cols },
      workgroups: gpu.grid(Math.ceil(n / WG)),
    });
  });
}

/**
 * Backward of gluForward: dUpGate[..., :I] = dout * gelu(gate) (d up) and
 * dUpGate[..., I:] = dout * up * gelu'(gate) (d gate), gelu'(x) = Phi(x) + x phi(x) exactly.
 * dUpGate: [N, 2I], dout: [N, I], upGate: [N, 2I] (the forward's input); leading dims fold
 * into N. dUpGate must not share a buffer with dout or upGate. All three f32 or all f16
 * (computed in f32, each gradient rounded once).
 */
export function gluBackward(gpu: Gpu, dUpGate: Tensor /* [N, 2I] */, dout: Tensor /* [N, I] */, upGate: Tensor /* [N, 2I] */): void {
  const dt = actDtype('glu backward', [['dUpGate', dUpGate], ['dout', dout], ['upGate', upGate]]);
  if (dout.shape.length === 0) throw new Error(`glu backward: dout must have at least one dimension, got ${dout}`);
  const cols = dout.shape[dout.shape.length - 1];
  const wide = [...dout.shape.slice(0, -1), 2 * cols];
  expectShape('glu backward: upGate (dout is [..., I], upGate must be [..., 2I])', upGate, wide);
  expectShape('glu backward: dUpGate (dout is [..., I], dUpGate must be [..., 2I])', dUpGate, wide);
  if (dUpGate.buffer === dout.buffer || dUpGate.buffer === upGate.buffer) throw new Error('glu backward: dUpGate shares a buffer with dout or upGate');
  if (cols === 0) return;
  const rows = dout.size / cols;
  const dug2 = dUpGate.reshape([rows, 2 * cols]);
  const dout2 = dout.reshape([rows, cols]);
  const ug2 = upGate.reshape([rows, 2 * cols]);
  const eb = bytesPerElement(dt);
  forEachRowChunk(gpu, 'glu backward', rows, [2 * cols * eb, cols * eb, 2 * cols * eb], (start, count) => {
    const n = count * cols;
    gpu.dispatch({
      kernel: 'elementwise',
      entry: 'glu_backward',
      defines: definesFor(dt),
      bindings: [dug2.rows(start, count), dout2.rows(start, count), ug2.rows(start, count)],
      uniforms: { n, cols },
      workgroups: gpu.grid(Math.ceil(n / WG)),
    });
  });
}

/**
 * out = x converted between f32 and f16, any shapes holding the same number of elements:
 * - f32 -> f16 rounds to nearest even, as WGSL's f16() conversion may (WGSL leaves the
 *   direction open; this kernel always rounds to nearest even). Values beyond the f16 range
 *   (|x| >= 65520, which would round past 65504) become +-inf; NaN stays NaN, f32 subnormals
 *   become +-0. The bits equal f32ToF16Bits' (core/gpu/half.ts toHalf) on every device.
 * - f16 -> f32 is exact (inf and NaN pass through).
 * The kernel works on the bits (u32 words), so it needs no 'shader-f16'. It takes tensor views
 * at any element offset whose f16 side starts on a 4-byte boundary (elements of even index in
 * a buffer at offset 0, such as the arena's tensors): each side is bound from the
 * offset-aligned byte below its first element, which the binding alignment (256 bytes) does
 * not otherwise allow. out and x must be different buffers. One flat dispatch per chunk, each
 * chunk an even number of elements that fits one binding.
 */
export function castForward(gpu: Gpu, out: Tensor, x: Tensor): void {
  const toHalf = x.dtype === 'f32' && out.dtype === 'f16';
  if (!toHalf && !(x.dtype === 'f16' && out.dtype === 'f32')) throw new Error(`cast: converts f32 to f16 or f16 to f32, got x ${x} and out ${out}`);
  if (out.size !== x.size) throw new Error(`cast: x ${x} and out ${out} hold different numbers of elements (${x.size} vs ${out.size})`);
  const half = toHalf ? out : x;
  if (half.offset % 4 !== 0) throw new Error(`cast: the f16 tensor ${half} starts at byte ${half.offset}, not a multiple of 4`);
  if (out.buffer === x.buffer) throw new Error('cast: out and x share a buffer; use separate buffers');
  const n = x.size;
  if (n === 0) return;
  const { maxBinding, offsetAlign } = gpu.limits;
  // the f32 side's chunk plus up to offsetAlign - 4 bytes before it must fit one binding
  const chunk = 2 * Math.floor((maxBinding - offsetAlign) / 8);
  if (chunk < 2) throw new Error(`cast: a ${maxBinding}-byte binding cannot hold a chunk at ${offsetAlign}-byte alignment`);
  for (let start = 0; start < n; start += chunk) {
    const count = Math.min(chunk, n - start);
    const dst = wordWindow(out, start, count, offsetAlign);
    const src = wordWindow(x, start, count, offsetAlign);
    gpu.dispatch({
      kernel: 'elementwise',
      entry: toHalf ? 'to_half' : 'from_half',
      defines: { WG },
      bindings: [dst.view, src.view],
      uniforms: { n: count, src_off: src.off, dst_off: dst.off },
      workgroups: gpu.grid(Math.ceil(Math.ceil(count / 2) / WG)),
    });
  }
}

/**
 * Elements [start, start + count) of t as a u32 view that starts at the offset-aligned byte at
 * or below them, and the number of words before element `start` in it. The end is rounded up
 * to a whole word (an odd f16 count: the kernel keeps the other half of the last word).
 */
function wordWindow(t: Tensor, start: number, count: number, align: number): { view: Tensor; off: number } {
  const eb = bytesPerElement(t.dtype);
  const begin = t.offset + start * eb;
  const base = begin - (begin % align);
  const off = (begin - base) / 4;
  return { view: new Tensor(t.gpu, t.buffer, [off + Math.ceil((count * eb) / 4)], 'u32', base, false), off };
}
