// The one object every kernel receives: a GPUDevice plus what we learned about it (limits,
// features), a pipeline cache, a buffer pool, a command recorder and readback.
//
// Hosts (node/device.ts, browser/device.ts) obtain the GPUDevice; nothing here touches
// node:* or the DOM, so the same code runs under Dawn and in Chromium.

import { shaderSources } from '../../shaders/index.ts';
import { type Defines, pipelineKey, preprocess } from './wgsl.ts';
import { type DType, Tensor, bytesPerElement } from './tensor.ts';
import { KernelProfiler } from './profiler.ts';
import { type UniformLayout, uniformLayout, uniformMismatch } from './uniforms.ts';

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  features: string[];
  limits: Record<string, number>;
}

/** Uniform field: plain numbers are u32; wrap floats with f32(), signed with i32(). */
export type Uniform = number | { f32: number } | { i32: number };
export const f32 = (v: number): Uniform => ({ f32: v });
export const i32 = (v: number): Uniform => ({ i32: v });

export interface DispatchSpec {
  kernel: string; // shader file name without .wgsl
  entry: string; // entry point
  defines?: Defines;
  /** Storage bindings in order: index i is @binding(i + 1); null = not used by this entry. */
  bindings: (Tensor | null)[];
  /**
   * The uniform struct at @binding(0), packed 4 bytes per field in order. Name the fields as
   * the shader's struct does, in its order ({ M, N, K }): every dispatch checks names, count
   * and types against the struct parsed when its pipeline was built (uniforms.ts), so a
   * reordered struct fails loudly. A positional list is checked for count and types only.
   */
  uniforms: Record<string, Uniform> | Uniform[];
  /** Workgroup counts; x may exceed the per-dimension limit (see grid()). */
  workgroups: [number, number?, number?];
}

export class GpuError extends Error {
  override name = 'GpuError';
}

export function summarizeAdapter(adapter: GPUAdapter, info?: GPUAdapterInfo): AdapterSummary {
  const i = info ?? adapter.info;
  const limits: Record<string, number> = {};
  for (const k of [
    'maxBufferSize',
    'maxStorageBufferBindingSize',
    'maxComputeWorkgroupStorageSize',
    'maxComputeInvocationsPerWorkgroup',
    'maxComputeWorkgroupSizeX',
    'maxComputeWorkgroupsPerDimension',
    'maxStorageBuffersPerShaderStage',
    'minStorageBufferOffsetAlignment',
  ] as const) {
    limits[k] = Number(adapter.limits[k]);
  }
  return {
    vendor: i?.vendor ?? '',
    architecture: i?.architecture ?? '',
    device: i?.device ?? '',
    description: i?.description ?? '',
    features: [...adapter.features].map(String).sort(),
    limits,
  };
}

/**
 * Ask for the adapter's real limits (defaults are far lower, and lower still at the
 * compatibility feature level: 128 invocations per workgroup, 16 KiB of workgroup storage and
 * of uniform buffer) and the optional features we use, plus `extraFeatures` where offered.
 */
export async function requestDevice(adapter: GPUAdapter, extraFeatures: readonly string[] = []): Promise<GPUDevice> {
  const want = ['shader-f16', 'timestamp-query', 'subgroups', ...extraFeatures] as GPUFeatureName[];
  const requiredFeatures = want.filter((f) => adapter.features.has(f));
  const l = adapter.limits;
  const requiredLimits: Record<string, number> = {
    maxBufferSize: l.maxBufferSize,
    maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
    maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupSizeY: l.maxComputeWorkgroupSizeY,
    maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    maxUniformBufferBindingSize: l.maxUniformBufferBindingSize,
  };
  return adapter.requestDevice({ requiredFeatures, requiredLimits });
}

export class Gpu {
  readonly limits: {
    maxBufferSize: number;
    maxBinding: number; // maxStorageBufferBindingSize, bytes
    maxWorkgroupsPerDim: number;
    offsetAlign: number; // minStorageBufferOffsetAlignment, bytes
    maxWorkgroupStorage: number;
    maxInvocations: number;
  };
  readonly features: Set<string>;
  private pipelines = new Map<string, GPUComputePipeline>();
  /** The uniform struct each pipeline's entry reads (null: none), parsed once at creation. */
  private layouts = new WeakMap<GPUComputePipeline, UniformLayout | null>();
  private pendingChecks: Promise<void>[] = [];
  private encoder: GPUCommandEncoder | null = null;
  private pool = new Map<number, GPUBuffer[]>();
  private lostReason: string | null = null;
  private uncaptured: string[] = [];
  /** Per-kernel GPU time while profiling (see profile()); null otherwise. */
  profiler: KernelProfiler | null = null;
  /** Counters for benches and leak checks. */
  readonly stats = { dispatches: 0, submits: 0, buffersCreated: 0, bytesLive: 0, bytesPeak: 0 };

  constructor(
    readonly device: GPUDevice,
    readonly adapter: AdapterSummary,
  ) {
    const l = device.limits;
    this.limits = {
      maxBufferSize: Number(l.maxBufferSize),
      maxBinding: Number(l.maxStorageBufferBindingSize),
      maxWorkgroupsPerDim: l.maxComputeWorkgroupsPerDimension,
      offsetAlign: l.minStorageBufferOffsetAlignment,
      maxWorkgroupStorage: l.maxComputeWorkgroupStorageSize,
      maxInvocations: l.maxComputeInvocationsPerWorkgroup,
    };
    this.features = new Set([...device.features].map(String));
    device.lost.then((info) => {
      this.lostReason = `${info.reason}: ${info.message}`;
    });
    device.addEventListener('uncapturederror', (ev) => {
      const e = (ev as GPUUncapturedErrorEvent).error;
      this.uncaptured.push(e.message);
    });
  }

  get name(): string {
    const a = this.adapter;
    return [a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ') || 'unknown adapter';
  }

  // ---------------------------------------------------------------- buffers and tensors

  /** Storage buffers come from a pool keyed by rounded size; released tensors go back there. */
  private acquire(bytes: number): GPUBuffer {
    const size = roundBucket(Math.max(bytes, 16));
    if (size > this.limits.maxBufferSize) {
      throw new GpuError(
        `buffer of ${fmtBytes(size)} exceeds this adapter's maxBufferSize ${fmtBytes(this.limits.maxBufferSize)}; use a smaller batch`,
      );
    }
    const free = this.pool.get(size);
    if (free && free.length) return free.pop()!;
    this.stats.buffersCreated++;
    this.stats.bytesLive += size;
    this.stats.bytesPeak = Math.max(this.stats.bytesPeak, this.stats.bytesLive);
    return this.device.createBuffer({
      size,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
  }

  /** Return a buffer to the pool. Safe while earlier work still uses it: the queue is ordered. */
  recycle(buffer: GPUBuffer): void {
    const list = this.pool.get(buffer.size) ?? [];
    list.push(buffer);
    this.pool.set(buffer.size, list);
  }

  /** Drop every pooled buffer (frees memory between phases). */
  trim(): void {
    for (const list of this.pool.values()) {
      for (const b of list) {
        this.stats.bytesLive -= b.size;
        b.destroy();
      }
    }
    this.pool.clear();
  }

  /** A new tensor with uninitialised contents (pooled buffers are reused). */
  empty(shape: readonly number[], dtype: DType = 'f32'): Tensor {
    checkShape(shape);
    const n = shape.reduce((a, b) => a * b, 1);
    return new Tensor(this, this.acquire(n * bytesPerElement(dtype)), shape, dtype);
  }

  /** A new tensor filled with zeros. */
  zeros(shape: readonly number[], dtype: DType = 'f32'): Tensor {
    const t = this.empty(shape, dtype);
    this.record().clearBuffer(t.buffer, 0, t.buffer.size);
    return t;
  }

  /** Set a tensor's bytes to zero (a recorded clearBuffer: no host data, no kernel). */
  clear(t: Tensor): void {
    if (t.byteLength) this.record().clearBuffer(t.buffer, t.offset, alignUp(t.byteLength, 4));
  }

  /** Upload host data into a new tensor. */
  upload(data: Float32Array | Uint32Array | Int32Array | Uint16Array, shape: readonly number[], dtype?: DType): Tensor {
    const dt: DType = dtype ?? (data instanceof Float32Array ? 'f32' : data instanceof Int32Array ? 'i32' : data instanceof Uint16Array ? 'f16' : 'u32');
    const n = shape.reduce((a, b) => a * b, 1);
    if (n !== data.length) throw new GpuError(`upload: shape [${shape}] holds ${n} elements but data has ${data.length}`);
    const t = this.empty(shape, dt);
    this.write(t, data);
    return t;
  }

  /** Overwrite a tensor's contents from host memory. */
  write(t: Tensor, data: ArrayBufferView): void {
    if (data.byteLength > t.byteLength) throw new GpuError(`write: ${data.byteLength} bytes into a ${t.byteLength}-byte tensor`);
    this.flush(); // writes are queue operations: keep them ordered after recorded work
    // writeBuffer wants a multiple of 4 bytes
    const bytes = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
    if (bytes.byteLength % 4 === 0) this.device.queue.writeBuffer(t.buffer, t.offset, bytes);
    else {
      const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
      padded.set(bytes);
      this.device.queue.writeBuffer(t.buffer, t.offset, padded);
    }
  }

  /** Copy src into dst (same byte length or a prefix). */
  copy(dst: Tensor, src: Tensor, bytes = src.byteLength): void {
    this.record().copyBufferToBuffer(src.buffer, src.offset, dst.buffer, dst.offset, alignUp(bytes, 4));
  }

  // ---------------------------------------------------------------- pipelines and dispatch

  /**
   * The pipeline of one entry under `defines`, built once per device. Given the uniform values
   * a launcher passes, checks them against the struct the entry reads (parsed from the WGSL when
   * the pipeline is built) and throws on a mismatch; a pipeline that fails the check is not
   * kept, so nothing is built for a launcher and shader that disagree.
   */
  pipeline(kernel: string, entry: string, defines: Defines = {}, uniforms?: DispatchSpec['uniforms']): GPUComputePipeline {
    const key = pipelineKey(kernel, entry, defines);
    let p = this.pipelines.get(key);
    if (p) {
      if (uniforms) this.checkUniforms(key, this.layouts.get(p) ?? null, uniforms);
      return p;
    }
    const src = shaderSources[kernel];
    if (src === undefined) throw new GpuError(`no shader named '${kernel}' (have: ${Object.keys(shaderSources).join(', ')})`);
    let code = preprocess(src, defines, `${kernel}.wgsl`);
    if (/\benable f16\b/.test(code) && !this.features.has('shader-f16')) {
      throw new GpuError(`${key} needs shader-f16, which ${this.name} does not support`);
    }
    let layout: UniformLayout | null;
    try {
      layout = uniformLayout(code, entry, `${kernel}.wgsl`);
    } catch (e) {
      throw new GpuError(`pipeline ${key}: ${(e as Error).message}`);
    }
    if (uniforms) this.checkUniforms(key, layout, uniforms);
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code, label: key });
    p = this.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: entry }, label: key });
    const scope = this.device.popErrorScope();
    // Errors surface on the next sync() with the pipeline key and the WGSL line.
    this.pendingChecks.push(
      scope.then(async (err) => {
        if (!err) return;
        const info = await module.getCompilationInfo();
        const srcLines = code.split('\n');
        const msgs = info.messages
          .filter((m) => m.type === 'error')
          .map((m) => `${kernel}.wgsl:${m.lineNum}:${m.linePos}: ${m.message}\n    ${srcLines[m.lineNum - 1]?.trim() ?? ''}`);
        throw new GpuError(`pipeline ${key} failed to build: ${msgs.length ? msgs.join('\n') : err.message}`);
      }),
    );
    this.pipelines.set(key, p);
    this.layouts.set(p, layout);
    return p;
  }

  private checkUniforms(key: string, layout: UniformLayout | null, uniforms: DispatchSpec['uniforms']): void {
    const mismatch = layout ? uniformMismatch(layout, uniforms) : null;
    if (mismatch) throw new GpuError(`pipeline ${key}: ${mismatch}`);
  }

  /** Record one compute dispatch. Work is submitted at flush()/read(). */
  dispatch(spec: DispatchSpec): void {
    const pipe = this.pipeline(spec.kernel, spec.entry, spec.defines, spec.uniforms);
    const ubuf = this.uniformBuffer(Array.isArray(spec.uniforms) ? spec.uniforms : Object.values(spec.uniforms));
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: ubuf } }];
    spec.bindings.forEach((t, i) => {
      if (!t) return;
      if (t.offset % this.limits.offsetAlign !== 0) {
        throw new GpuError(`${spec.kernel}.${spec.entry}: binding ${i + 1} at byte offset ${t.offset} is not aligned to ${this.limits.offsetAlign}`);
      }
      const size = alignUp(t.byteLength, 4);
      if (size > this.limits.maxBinding) {
        throw new GpuError(
          `${spec.kernel}.${spec.entry}: binding ${i + 1} [${t.shape}] is ${fmtBytes(size)}, over this adapter's ${fmtBytes(this.limits.maxBinding)} storage binding limit; the caller must chunk it`,
        );
      }
      entries.push({ binding: i + 1, resource: { buffer: t.buffer, offset: t.offset, size } });
    });
    const group = this.device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries });
    const [x, y = 1, z = 1] = spec.workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    const max = this.limits.maxWorkgroupsPerDim;
    if (y > max || z > max) throw new GpuError(`${spec.kernel}.${spec.entry}: workgroups [${x},${y},${z}] over the ${max} per-dimension limit`);
    // Only x is allowed to overflow: kernels that may see huge x fold it with grid().
    if (x > max) throw new GpuError(`${spec.kernel}.${spec.entry}: ${x} workgroups in x, over ${max}; use grid()`);
    if (this.profiler?.full()) this.flush();
    const timestampWrites = this.profiler?.writes(profileLabel(spec));
    const pass = this.record().beginComputePass({ label: spec.kernel, timestampWrites });
    pass.setPipeline(pipe);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(x, y, z);
    pass.end();
    this.stats.dispatches++;
  }

  /**
   * Fold a 1-D workgroup count into [x, y] under the per-dimension limit. A kernel using this
   * computes its linear index as `wid.x + wid.y * nwg.x` (nwg = @builtin(num_workgroups)) and
   * bounds-checks it, since x * y may exceed n.
   */
  grid(workgroups: number): [number, number] {
    const max = this.limits.maxWorkgroupsPerDim;
    if (workgroups <= max) return [Math.max(workgroups, 1), 1];
    const y = Math.ceil(workgroups / max);
    return [Math.ceil(workgroups / y), y];
  }

  private uniformBuffer(fields: Uniform[]): GPUBuffer {
    const bytes = Math.max(16, alignUp(fields.length * 4, 16));
    const buf = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.UNIFORM, mappedAtCreation: true });
    const ab = buf.getMappedRange();
    const u = new Uint32Array(ab);
    const f = new Float32Array(ab);
    const s = new Int32Array(ab);
    fields.forEach((v, i) => {
      if (typeof v === 'number') {
        if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new GpuError(`uniform ${i}: ${v} is not a u32 (wrap floats in f32())`);
        u[i] = v;
      } else if ('f32' in v) f[i] = v.f32;
      else s[i] = v.i32;
    });
    buf.unmap();
    // Destroyed after the work using it is submitted (see flush()).
    this.uniformsInFlight.push(buf);
    return buf;
  }
  private uniformsInFlight: GPUBuffer[] = [];

  private record(): GPUCommandEncoder {
    this.throwIfLost();
    if (!this.encoder) {
      this.device.pushErrorScope('validation');
      this.device.pushErrorScope('out-of-memory');
      this.encoder = this.device.createCommandEncoder();
    }
    return this.encoder;
  }

  /** Submit recorded work. Errors from it are reported by the next sync()/read(). */
  flush(): void {
    if (!this.encoder) return;
    this.profiler?.resolve(this.encoder);
    const cmd = this.encoder.finish();
    this.encoder = null;
    this.device.queue.submit([cmd]);
    this.stats.submits++;
    const oom = this.device.popErrorScope();
    const val = this.device.popErrorScope();
    this.pendingChecks.push(
      Promise.all([oom, val]).then(([o, v]) => {
        if (o) throw new GpuError(`GPU out of memory: ${o.message}. Try a smaller --batch-size.`);
        if (v) throw new GpuError(`GPU validation error: ${v.message}`);
      }),
    );
    const done = this.uniformsInFlight;
    this.uniformsInFlight = [];
    if (done.length) this.device.queue.onSubmittedWorkDone().then(() => done.forEach((b) => b.destroy()));
  }

  /** Wait for all submitted work and surface any error it raised. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    await this.checkErrors();
    await this.profiler?.collect();
  }

  /**
   * Start timing every compute pass on the GPU (timestamp queries); totals per kernel entry
   * are read with profiler.report() after a sync(). Throws without 'timestamp-query'.
   */
  profile(): KernelProfiler {
    this.profiler ??= new KernelProfiler(this.device);
    return this.profiler;
  }

  private async checkErrors(): Promise<void> {
    const checks = this.pendingChecks;
    this.pendingChecks = [];
    await Promise.all(checks);
    if (this.uncaptured.length) {
      const msg = this.uncaptured.join('\n');
      this.uncaptured = [];
      throw new GpuError(`GPU error: ${msg}`);
    }
    this.throwIfLost();
  }

  private throwIfLost(): void {
    if (this.lostReason) throw new GpuError(`GPU device lost (${this.lostReason})`);
  }

  /** Read a tensor back to host memory as its natural typed array. */
  async read(t: Tensor): Promise<Float32Array | Uint32Array | Int32Array | Uint16Array> {
    const bytes = alignUp(t.byteLength, 4);
    const staging = this.device.createBuffer({ size: Math.max(bytes, 4), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.record().copyBufferToBuffer(t.buffer, t.offset, staging, 0, bytes);
    this.flush();
    try {
      await staging.mapAsync(GPUMapMode.READ);
      await this.checkErrors();
      const copy = staging.getMappedRange().slice(0, t.byteLength);
      staging.unmap();
      switch (t.dtype) {
        case 'f32':
          return new Float32Array(copy);
        case 'u32':
          return new Uint32Array(copy);
        case 'i32':
          return new Int32Array(copy);
        case 'f16':
          return new Uint16Array(copy);
      }
    } finally {
      staging.destroy();
    }
  }

  async readF32(t: Tensor): Promise<Float32Array> {
    if (t.dtype !== 'f32') throw new GpuError(`readF32 on a ${t.dtype} tensor`);
    return (await this.read(t)) as Float32Array;
  }

  destroy(): void {
    this.trim();
    this.device.destroy();
  }
}

/** "kernel.entry" plus the boolean defines that are on (e.g. matmul.forward TRANS_B VEC_A). */
function profileLabel(spec: DispatchSpec): string {
  const flags = Object.entries(spec.defines ?? {})
    .filter(([, v]) => v === true)
    .map(([k]) => k)
    .sort();
  return [`${spec.kernel}.${spec.entry}`, ...flags].join(' ');
}

// Pool buckets: sizes rounded up to 1/8 steps of the next power of two (at most 12.5% waste).
function roundBucket(n: number): number {
  if (n <= 256) return 256;
  const p = 2 ** Math.floor(Math.log2(n));
  const step = Math.max(256, p / 8);
  return Math.ceil(n / step) * step;
}

export function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

function checkShape(shape: readonly number[]): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new GpuError(`bad tensor shape [${shape}]`);
  }
}

export function fmtBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}
