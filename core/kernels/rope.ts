// Rotary position embedding for GTE v1.5: the float32 cos/sin tables (built on the CPU exactly as
// the reference builds them) and the launcher for shaders/rope.wgsl.

import type { Gpu } from '../gpu/device.ts';
import { type Tensor, bytesPerElement, expectShape } from '../gpu/tensor.ts';
import { chunkRows } from '../gpu/launch.ts';

const WG = 256;

export interface RopeTables {
  /** [d/2] inverse frequencies actually used (float32). */
  invFreq: Float32Array;
  /** [length, d] cos(pos * invFreq[j % (d/2)]), i.e. cat(freqs, freqs) per position. */
  cos: Float32Array;
  /** [length, d] sin of the same angles. */
  sin: Float32Array;
}

/**
 * RoPE tables for positions 0..length-1, matching the reference's float32 arithmetic step by step
 * (NTKScalingRotaryEmbedding, fixed NTK, always on; ntkFactor = 1 gives plain RoPE):
 *
 *   base       = theta * s                                  (exact in f32 for the real configs)
 *   e_j        = f32(f32(2j) / d)                           torch.arange(0, d, 2).float() / d
 *   inv_freq_j = f32(f32(1 / f32(base ** e_j)) / f32(s ** (2/d)))
 *   angle      = f32(pos * inv_freq_j)                      einsum of float32 tensors
 *   cos, sin   = f32(cos(angle)), f32(sin(angle))
 *
 * Each f32() is one float32 rounding, emulated with Math.fround on a double result, i.e. a
 * correctly rounded float32 op (powf/cos/sin up to the double's own < 1e-16 error). Against the
 * GTE dev golden tables inv_freq is bit-exact and cos/sin are within 1 ulp: torch's vectorised
 * float32 cos/sin are 1-ulp, not correctly rounded.
 */
export function ropeTables(headDim: number, length: number, theta: number, ntkFactor: number): RopeTables {
  if (!Number.isInteger(headDim) || headDim < 2 || headDim % 2 !== 0) throw new Error(`ropeTables: head dim ${headDim} must be a positive even integer`);
  if (!Number.isInteger(length) || length < 0) throw new Error(`ropeTables: length ${length} must be a non-negative integer`);
  if (!(theta > 0) || !(ntkFactor > 0)) throw new Error(`ropeTables: theta ${theta} and ntkFactor ${ntkFactor} must be positive`);
  const f = Math.fround;
  const d = headDim;
  const half = d / 2;
  const base = f(theta * ntkFactor);
  const scaleDiv = f(Math.pow(ntkFactor, 2 / d)); // python float, cast to f32 by the tensor op
  const invFreq = new Float32Array(half);
  for (let j = 0; j < half; j++) {
    const e = f(f(2 * j) / d);
    invFreq[j] = f(f(1 / f(Math.pow(base, e))) / scaleDiv);
  }
  const cos = new Float32Array(length * d);
  const sin = new Float32Array(length * d);
  for (let p = 0; p < length; p++) {
    for (let j = 0; j < half; j++) {
      const angle = f(p * invFreq[j]);
      const c = f(Math.cos(angle));
      const s = f(Math.sin(angle));
      cos[p * d + j] = cos[p * d + j + half] = c;
      sin[p * d + j] = sin[p * d + j + half] = s;
    }
  }
  return { invFreq, cos, sin };
}

export interface RopeOptions {
  /**
   * Storage binding limit in bytes used to plan chunks; default gpu.limits.maxBinding. Only
   * tests lower it, to exercise chunking on small tensors.
   */
  maxBinding?: number;
}

/**
 * Rotate the q and k parts of qkv [B, L, 3H] in place (v untouched), NeoX half-split layout,
 * positions 0..L-1 in every row. cos, sin: [Lmax, d] tables from ropeTables() with Lmax >= L.
 * qkv may be f32 or f16 (f16 needs the adapter's 'shader-f16'; the pipeline refuses it
 * otherwise); the tables are f32 either way and the rotation is computed in f32, rounded once to
 * f16 per element. Work over the storage-binding limit is split into chunks of whole rows.
 */
export function ropeForward(gpu: Gpu, qkv: Tensor, cos: Tensor, sin: Tensor, heads: number, o: RopeOptions = {}): void {
  rope(gpu, 'forward', qkv, cos, sin, heads, o);
}

/**
 * Backward of ropeForward, in place on dqkv [B, L, 3H] (the gradient with respect to the
 * rotated qkv becomes the gradient with respect to the unrotated one): dq and dk get the
 * transposed rotation, which for tables from ropeTables() (both halves the same angle) is the
 * inverse one, rotation by -angle; dv is the identity's gradient and stays as it is. Same
 * tables, shapes and chunking as the forward. dqkv may be f32 or f16, as qkv in the forward
 * (f32 tables, f32 rotation, one rounding to f16 per element written).
 */
export function ropeBackward(gpu: Gpu, dqkv: Tensor, cos: Tensor, sin: Tensor, heads: number, o: RopeOptions = {}): void {
  rope(gpu, 'backward', dqkv, cos, sin, heads, o);
}

function rope(gpu: Gpu, entry: 'forward' | 'backward', qkv: Tensor, cos: Tensor, sin: Tensor, heads: number, o: RopeOptions): void {
  const what = entry === 'forward' ? 'rope' : 'rope backward';
  const name = entry === 'forward' ? 'qkv' : 'dqkv';
  if (qkv.shape.length !== 3) throw new Error(`${what}: ${name} must be [B, L, 3H], got [${qkv.shape.join(', ')}]`);
  const [B, L, H3] = qkv.shape;
  if (!Number.isInteger(heads) || heads < 1 || H3 % (3 * heads) !== 0) throw new Error(`${what}: ${name} last dim ${H3} is not 3 * heads(${heads}) * d`);
  const d = H3 / (3 * heads);
  if (d % 2 !== 0) throw new Error(`${what}: head dim ${d} must be even`);
  if (cos.shape.length !== 2 || cos.shape[1] !== d || cos.shape[0] < L) {
    throw new Error(`${what}: cos must be [Lmax >= ${L}, ${d}], got [${cos.shape.join(', ')}]`);
  }
  expectShape(`${what}: sin`, sin, cos.shape);
  if (qkv.dtype !== 'f32' && qkv.dtype !== 'f16') throw new Error(`${what}: ${name} must be f32 or f16, got ${qkv.dtype}`);
  for (const [n, t] of [['cos', cos], ['sin', sin]] as const) {
    if (t.dtype !== 'f32') throw new Error(`${what}: ${n} must be f32, got ${t.dtype}`);
  }
  const f16 = qkv.dtype === 'f16';
  if (B === 0 || L === 0) return;
  const maxBinding = o.maxBinding ?? gpu.limits.maxBinding;
  const chunk = qkv.byteLength <= maxBinding ? B : chunkRows([L * H3 * bytesPerElement(qkv.dtype)], maxBinding, gpu.limits.offsetAlign, what);
  for (let b0 = 0; b0 < B; b0 += chunk) {
    const nb = Math.min(chunk, B - b0);
    const part = nb === B ? qkv : qkv.rows(b0, nb);
    const tokens = nb * L;
    gpu.dispatch({
      kernel: 'rope',
      entry,
      defines: f16 ? { WG, F16: true } : { WG },
      bindings: [part, cos, sin],
      uniforms: { tokens, seqLen: L, heads, headDim: d },
      workgroups: gpu.grid(Math.ceil((tokens * heads * d) / WG)), // tokens * 2 * heads * d/2 pairs
    });
  }
}
