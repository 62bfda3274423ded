// Per-output-channel symmetric int8 for Linear weights, as `aqa export --dtype int8` stores it
// and the loader reads it back.
//
// A weight W [out, in] (Hugging Face layout) becomes q = round(W / scale[o]) in [-127, 127],
// stored as I8 under the weight's own name, with scale[o] = max|W[o, :]| / 127 stored as F32
// [out] under `<name>_scale` (compressed-tensors' spelling: weight -> weight_scale). -128 is
// never used, so the range is symmetric and -q is always representable. Each row's largest
// weight is exact; every other weight is within scale[o] / 2 of its original. An all-zero row
// gets scale 1 (q is all zero either way), so dequantizing never divides by or multiplies into
// a zero that hides a damaged file.

import { architectureOf, layerPrefix } from './architectures.ts';
import type { EncoderConfig } from './config.ts';

/** Suffix of a quantized tensor's scale: `encoder.layer.0.output.dense.weight_scale`. */
export const SCALE_SUFFIX = '_scale';

export function scaleName(weight: string): string {
  return weight + SCALE_SUFFIX;
}

/** The value of config.json's "quantization_config" for an int8 export of `tensors` (stored names). */
export function int8QuantizationConfig(tensors: readonly string[]): Record<string, unknown> {
  return {
    quant_method: 'aqa-int8',
    bits: 8,
    symmetric: true,
    granularity: 'per-output-channel',
    weight_dtype: 'int8',
    scale_dtype: 'float32',
    scale_suffix: SCALE_SUFFIX,
    dequantize: 'w[o, i] = q[o, i] * scale[o]',
    other_float_dtype: 'float16',
    tensors: [...tensors],
  };
}

/** Canonical names of the Linear (matmul) weights of cfg's architecture table, layer by layer. */
export function linearWeightNames(cfg: EncoderConfig): string[] {
  const arch = architectureOf(cfg);
  const out: string[] = [];
  for (let l = 0; l < cfg.numLayers; l++) {
    for (const m of arch.layer) {
      if (m.kind !== 'linear') continue;
      for (const part of m.hf) out.push(`${layerPrefix(l)}.${part}.weight`);
    }
  }
  return out;
}

/** Round half away from zero, so that q(-w) = -q(w). */
function roundSymmetric(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

/**
 * Quantize `w`, `rows` rows of `w.length / rows` values. The caller has checked that every value
 * is finite.
 */
export function quantizeRows(w: Float32Array, rows: number): { q: Int8Array; scale: Float32Array } {
  const cols = rows ? w.length / rows : 0;
  const q = new Int8Array(w.length);
  const scale = new Float32Array(rows);
  for (let o = 0; o < rows; o++) {
    const at = o * cols;
    let max = 0;
    for (let i = 0; i < cols; i++) max = Math.max(max, Math.abs(w[at + i]));
    // The stored (f32) scale is what dequantizing multiplies by, so q is computed against it.
    const s = max > 0 ? Math.fround(max / 127) : 1;
    scale[o] = s;
    for (let i = 0; i < cols; i++) q[at + i] = Math.max(-127, Math.min(127, roundSymmetric(w[at + i] / s)));
  }
  return { q, scale };
}

/** w[o, i] = q[o, i] * scale[o], as f32. */
export function dequantizeRows(q: Int8Array, scale: Float32Array): Float32Array {
  const rows = scale.length;
  const cols = rows ? q.length / rows : 0;
  const out = new Float32Array(q.length);
  for (let o = 0; o < rows; o++) {
    const s = scale[o];
    const at = o * cols;
    for (let i = 0; i < cols; i++) out[at + i] = q[at + i] * s;
  }
  return out;
}
