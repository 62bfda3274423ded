// Launcher for shaders/matmul-subgroup-matrix.wgsl: matrix multiply on the matrix units that
// Dawn's experimental 'chromium-experimental-subgroup-matrix' feature exposes (tensor cores,
// XMX, WMMA, simdgroup matrices). Opt-in: the Node host requests the feature only under
// `--experimental` (it needs Dawn's allow_unsafe_apis), and the default matmul never picks this
// kernel; subgroupMatrixCandidate() offers it to a tuner, which times it against the others.
//
// subgroupMatrixSupport(gpu)          {ok, configs} or {ok: false, reason}
// subgroupMatrixCandidate(gpu, dtype) a candidate for operands of `dtype`, or null when absent
// matmulSubgroupMatrix(gpu, out, a, b, o)   out = alpha * op(a) @ op(b) (+ bias) (+ out)
//
// Operands and dtypes follow matmul() (core/kernels/matmul.ts): a and b f32 or f16; out f32,
// or f16 when they are; bias has out's dtype; accumulate needs an f32 out. The configuration
// decides the precision of the products: with f16 components, f32 operands are rounded to f16
// as they are staged (as TF32 does on cuBLAS), and sums are f32 in every configuration used.
// Limits: b is 2-D and shared by every row; a may have leading dims (folded into M) unless
// transA; each operand must fit one storage binding (no chunking).

import { type Gpu, GpuError, f32 } from '../gpu/device.ts';
import { type Tensor, expectShape } from '../gpu/tensor.ts';
import { expectDtype } from '../gpu/launch.ts';

export const SUBGROUP_MATRIX_FEATURE = 'chromium-experimental-subgroup-matrix';

/** One of GPUAdapterInfo.subgroupMatrixConfigs, as a plain object. */
export interface SubgroupMatrixConfig {
  componentType: string;
  resultComponentType: string;
  M: number;
  N: number;
  K: number;
}

export type SubgroupMatrixSupport = { ok: true; configs: SubgroupMatrixConfig[] } | { ok: false; reason: string };

/** The configs the kernel can use: f32 or f16 components with an f32 result. */
export function usableConfig(c: SubgroupMatrixConfig): boolean {
  return (c.componentType === 'f32' || c.componentType === 'f16') && c.resultComponentType === 'f32';
}

/** f16 components need 'shader-f16' for the f16 workgroup arrays. */
export function runnableConfig(gpu: Gpu, c: SubgroupMatrixConfig): boolean {
  return usableConfig(c) && (c.componentType !== 'f16' || gpu.features.has('shader-f16'));
}

/** The adapter's configs. They are WebIDL objects: spreading one gives {}, so name the fields. */
function adapterConfigs(gpu: Gpu): SubgroupMatrixConfig[] {
  const info = gpu.device.adapterInfo as unknown as { subgroupMatrixConfigs?: Iterable<SubgroupMatrixConfig> } | undefined;
  return [...(info?.subgroupMatrixConfigs ?? [])].map((c) => ({
    componentType: String(c.componentType),
    resultComponentType: String(c.resultComponentType),
    M: Number(c.M),
    N: Number(c.N),
    K: Number(c.K),
  }));
}

function subgroupSizes(gpu: Gpu): { min: number; max: number } {
  const info = gpu.device.adapterInfo as GPUAdapterInfo | undefined;
  return { min: info?.subgroupMinSize ?? 0, max: info?.subgroupMaxSize ?? 0 };
}

/**
 * Whether this device can run the kernel: the feature enabled on the device (which on Node
 * takes `--experimental`), 'subgroups' with a known largest subgroup size, and at least one
 * config the kernel uses (f16 ones need 'shader-f16'). All the adapter's configs are returned.
 */
export function subgroupMatrixSupport(gpu: Gpu): SubgroupMatrixSupport {
  if (!gpu.features.has(SUBGROUP_MATRIX_FEATURE)) {
    const offered = gpu.adapter.features.includes(SUBGROUP_MATRIX_FEATURE);
    return { ok: false, reason: offered ? `${SUBGROUP_MATRIX_FEATURE} is offered but not enabled (run with --experimental)` : `adapter offers no ${SUBGROUP_MATRIX_FEATURE}` };
  }
  if (!gpu.features.has('subgroups') || !subgroupSizes(gpu).max) return { ok: false, reason: `${SUBGROUP_MATRIX_FEATURE} needs 'subgroups', which this device lacks` };
  const configs = adapterConfigs(gpu);
  if (!configs.length) return { ok: false, reason: 'the adapter lists no subgroup matrix configs' };
  const kinds = configs.filter(usableConfig);
  if (!kinds.length) return { ok: false, reason: `no config with f32 or f16 components and an f32 result (adapter has ${configs.map(formatConfig).join(', ')})` };
  if (!kinds.some((c) => runnableConfig(gpu, c))) return { ok: false, reason: `its f16 configs need shader-f16, which this device lacks (adapter has ${configs.map(formatConfig).join(', ')})` };
  return { ok: true, configs };
}

/** e.g. "f16->f32 16x16x16" (component -> result, M x N x K). */
export function formatConfig(c: SubgroupMatrixConfig): string {
  return `${c.componentType}->${c.resultComponentType} ${c.M}x${c.N}x${c.K}`;
}

/** The `aqa info` line's text after "subgroup matrix: ". */
export function formatSubgroupMatrixSupport(s: SubgroupMatrixSupport): string {
  return s.ok ? s.configs.map(formatConfig).join(', ') : `absent (${s.reason})`;
}

/**
 * The config for operands of `dtype`: the same component type when the adapter has it (f32
 * components keep f32 products), else f16 components (f32 operands rounded to f16); among
 * equals the largest block. Null when none is usable.
 */
export function pickConfig(gpu: Gpu, dtype: 'f32' | 'f16'): SubgroupMatrixConfig | null {
  const s = subgroupMatrixSupport(gpu);
  if (!s.ok) return null;
  const usable = s.configs.filter((c) => runnableConfig(gpu, c));
  const rank = (c: SubgroupMatrixConfig) => (c.componentType === dtype ? 1 : 0) * 1e9 + c.M * c.N * c.K;
  return usable.sort((x, y) => rank(y) - rank(x))[0] ?? null;
}

/** Workgroup shape for a config (see the shader's header for the names). */
export interface SubgroupMatrixPlan {
  config: SubgroupMatrixConfig;
  sgM: number;
  sgN: number;
  pm: number;
  pn: number;
  bk: number;
  /** Invocations per workgroup: sgM * sgN * the largest subgroup size. */
  wg: number;
  bm: number;
  bn: number;
}

/** Target tile edge: 32x32 outputs and 32-deep steps, 12 KiB of workgroup memory in f32. */
const TARGET = 32;

/**
 * The tile for `config` on this device: 2x2 subgroups (fewer when the workgroup would pass the
 * invocation limit), blocks per subgroup and k depth up to 32, shrunk until the three
 * workgroup arrays fit the device's workgroup storage.
 */
export function subgroupMatrixPlan(gpu: Gpu, config: SubgroupMatrixConfig, sgMax = subgroupSizes(gpu).max): SubgroupMatrixPlan {
  if (!sgMax) throw new GpuError('subgroup matrix: the adapter reports no subgroup size');
  const { M, N, K } = config;
  let sgM = 2;
  let sgN = 2;
  while (sgM * sgN * sgMax > gpu.limits.maxInvocations && sgM * sgN > 1) {
    if (sgN >= sgM) sgN /= 2;
    else sgM /= 2;
  }
  if (sgM * sgN * sgMax > gpu.limits.maxInvocations) {
    throw new GpuError(`subgroup matrix: one subgroup of ${sgMax} invocations is over this device's ${gpu.limits.maxInvocations} per workgroup`);
  }
  let pm = Math.max(1, Math.floor(TARGET / (sgM * M)));
  let pn = Math.max(1, Math.floor(TARGET / (sgN * N)));
  let kSteps = Math.max(1, Math.floor(TARGET / K));
  const el = config.componentType === 'f16' ? 2 : 4;
  const bytes = () => {
    const bm = sgM * pm * M, bn = sgN * pn * N, bk = kSteps * K;
    return (bm * bk + bk * bn) * el + bm * bn * 4;
  };
  while (bytes() > gpu.limits.maxWorkgroupStorage) {
    if (kSteps > 1) kSteps = Math.floor(kSteps / 2);
    else if (pm > 1 || pn > 1) {
      if (pm >= pn) pm = Math.floor(pm / 2);
      else pn = Math.floor(pn / 2);
    } else {
      throw new GpuError(`subgroup matrix: the ${formatConfig(config)} tiles need ${bytes()} bytes of workgroup memory, over this device's ${gpu.limits.maxWorkgroupStorage}`);
    }
  }
  return { config, sgM, sgN, pm, pn, bk: kSteps * K, wg: sgM * sgN * sgMax, bm: sgM * pm * M, bn: sgN * pn * N };
}

export interface SubgroupMatrixOptions {
  /** a is stored [K, M]. */
  transA?: boolean;
  /** b is stored [N, K] (Linear weights). */
  transB?: boolean;
  /** [N], added to every row (after alpha). */
  bias?: Tensor;
  /** Add to out's previous contents (needs an f32 out). */
  accumulate?: boolean;
  alpha?: number;
  /** Default: pickConfig(gpu, a.dtype). */
  config?: SubgroupMatrixConfig;
  /**
   * Run the shader's EMULATED variant: the same tiles, offsets and epilogue with plain code in
   * place of the subgroup-matrix calls, on any device with 'subgroups' (tests).
   */
  emulate?: boolean;
}

const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;

/** out = alpha * op(a) @ op(b) (+ bias) (+ out if accumulate) on subgroup matrices. */
export function matmulSubgroupMatrix(gpu: Gpu, out: Tensor, a: Tensor, b: Tensor, o: SubgroupMatrixOptions = {}): void {
  const dtype = a.dtype;
  if (dtype !== 'f32' && dtype !== 'f16') throw new Error(`subgroup matrix matmul: a ${a} must be f32 or f16`);
  expectDtype(`subgroup matrix matmul: b (a is ${dtype})`, b, dtype);
  if (dtype === 'f32') expectDtype('subgroup matrix matmul: out (a is f32)', out, 'f32');
  else if (out.dtype !== 'f16' && out.dtype !== 'f32') throw new Error(`subgroup matrix matmul: out (a is f16): expected f16 or f32 elements, got ${out.dtype} ${out}`);
  if (o.bias) expectDtype(`subgroup matrix matmul: bias (out is ${out.dtype})`, o.bias, out.dtype);
  if (o.accumulate && out.dtype !== 'f32') throw new Error(`subgroup matrix matmul: accumulate needs an f32 out, got out ${out}`);
  if (b.shape.length !== 2) throw new Error(`subgroup matrix matmul: b ${fmt(b.shape)} must be 2-D (batched b is not supported; use matmul)`);
  if (a.shape.length < 2 || (o.transA && a.shape.length !== 2)) throw new Error(`subgroup matrix matmul: a ${fmt(a.shape)} must be 2-D with transA, else [..., M, K]`);
  const ra = a.shape.length;
  const [M, Ka] = o.transA ? [a.shape[1], a.shape[0]] : [a.shape.slice(0, ra - 1).reduce((x, y) => x * y, 1), a.shape[ra - 1]];
  const [Kb, N] = o.transB ? [b.shape[1], b.shape[0]] : [b.shape[0], b.shape[1]];
  if (Ka !== Kb) throw new Error(`subgroup matrix matmul: inner dims differ: op(a) [${M}, ${Ka}] from a ${fmt(a.shape)}, op(b) [${Kb}, ${N}] from b ${fmt(b.shape)}`);
  if (Ka === 0) throw new Error('subgroup matrix matmul: K = 0; nothing to multiply');
  expectShape('subgroup matrix matmul: out', out, o.transA ? [M, N] : [...a.shape.slice(0, ra - 1), N]);
  if (o.bias) expectShape('subgroup matrix matmul: bias', o.bias, [N]);
  for (const [name, t] of [['a', a], ['b', b], ['bias', o.bias]] as const) {
    if (t && t.buffer === out.buffer) throw new Error(`subgroup matrix matmul: out ${fmt(out.shape)} shares its GPU buffer with ${name}; write to a separate tensor`);
  }
  if (out.size === 0) return;

  let config = o.config;
  if (!o.emulate) {
    const s = subgroupMatrixSupport(gpu);
    if (!s.ok) throw new GpuError(`subgroup matrix matmul: ${s.reason}`);
    config ??= pickConfig(gpu, dtype) ?? undefined;
    if (!config || !s.configs.some((c) => sameConfig(c, config!))) {
      throw new GpuError(`subgroup matrix matmul: ${config ? formatConfig(config) : 'no usable config'} is not one of this adapter's (${s.configs.map(formatConfig).join(', ')})`);
    }
  } else if (!gpu.features.has('subgroups')) {
    throw new GpuError('subgroup matrix matmul: the emulated variant needs the subgroups feature');
  }
  if (!config) throw new Error('subgroup matrix matmul: emulate needs a config');
  if (!usableConfig(config)) throw new Error(`subgroup matrix matmul: ${formatConfig(config)} is not f32 or f16 components with an f32 result`);

  const plan = subgroupMatrixPlan(gpu, config);
  const sgMin = subgroupSizes(gpu).min || 1;
  const wgX = Math.ceil(N / plan.bn);
  const wgY = Math.ceil(M / plan.bm);
  if (wgX > gpu.limits.maxWorkgroupsPerDim || wgY > gpu.limits.maxWorkgroupsPerDim) {
    throw new GpuError(`subgroup matrix matmul: [${M}, ${N}] needs ${wgX} x ${wgY} workgroups, over the ${gpu.limits.maxWorkgroupsPerDim} per-dimension limit`);
  }
  gpu.dispatch({
    kernel: 'matmul-subgroup-matrix',
    entry: 'forward',
    defines: {
      SM: config.M,
      SN: config.N,
      SK: config.K,
      SG_M: plan.sgM,
      SG_N: plan.sgN,
      PM: plan.pm,
      PN: plan.pn,
      BK: plan.bk,
      WG: plan.wg,
      CT_F16: config.componentType === 'f16',
      F16: dtype === 'f16',
      OUT_F32: dtype === 'f16' && out.dtype === 'f32',
      TRANS_A: !!o.transA,
      TRANS_B: !!o.transB,
      BIAS: !!o.bias,
      ACCUMULATE: !!o.accumulate,
      EMULATED: !!o.emulate,
      ...(o.emulate ? { BLOCK_SLOTS: Math.ceil((config.M * config.N) / sgMin) } : {}),
    },
    bindings: [out, a, b, o.bias ?? null],
    uniforms: { M, N, K: Ka, alpha: f32(o.alpha ?? 1) },
    workgroups: [wgX, wgY],
  });
}

function sameConfig(x: SubgroupMatrixConfig, y: SubgroupMatrixConfig): boolean {
  return x.componentType === y.componentType && x.resultComponentType === y.resultComponentType && x.M === y.M && x.N === y.N && x.K === y.K;
}

/** A matmul variant a tuner can time against the others. */
export interface SubgroupMatrixCandidate {
  name: string;
  config: SubgroupMatrixConfig;
  run(gpu: Gpu, out: Tensor, a: Tensor, b: Tensor, o?: Omit<SubgroupMatrixOptions, 'config' | 'emulate'>): void;
}

/** The subgroup-matrix matmul for operands of `dtype` on this device, or null when absent. */
export function subgroupMatrixCandidate(gpu: Gpu, dtype: 'f32' | 'f16' = 'f32'): SubgroupMatrixCandidate | null {
  const config = pickConfig(gpu, dtype);
  if (!config) return null;
  return {
    name: `subgroup-matrix ${formatConfig(config)}`,
    config,
    run: (g, out, a, b, o = {}) => matmulSubgroupMatrix(g, out, a, b, { ...o, config }),
  };
}
