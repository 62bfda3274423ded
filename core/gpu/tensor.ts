// A tensor is a typed, shaped window onto a GPUBuffer. Views (rows()) share the buffer and
// carry a byte offset, which lets kernel launchers split work larger than one storage binding.

import type { Gpu } from './device.ts';

export type DType = 'f32' | 'f16' | 'u32' | 'i32';

export function bytesPerElement(dtype: DType): number {
  return dtype === 'f16' ? 2 : 4;
}

export class Tensor {
  private released = false;
  constructor(
    readonly gpu: Gpu,
    readonly buffer: GPUBuffer,
    readonly shape: readonly number[],
    readonly dtype: DType,
    /** Byte offset of element 0 inside buffer. */
    readonly offset = 0,
    /** Views do not own their buffer. */
    readonly owner = true,
  ) {}

  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  get byteLength(): number {
    return this.size * bytesPerElement(this.dtype);
  }

  /** Same data, new shape (element count must match). */
  reshape(shape: readonly number[]): Tensor {
    const n = shape.reduce((a, b) => a * b, 1);
    if (n !== this.size) throw new Error(`reshape [${this.shape}] -> [${shape}]: ${this.size} vs ${n} elements`);
    return new Tensor(this.gpu, this.buffer, shape, this.dtype, this.offset, false);
  }

  /**
   * A view of rows [start, start + count) along the first dimension. The byte offset must meet
   * the adapter's storage offset alignment (256 bytes on most adapters) to be bound.
   */
  rows(start: number, count: number): Tensor {
    const [n, ...rest] = this.shape;
    if (start < 0 || count < 0 || start + count > n) throw new Error(`rows(${start}, ${count}) out of range for [${this.shape}]`);
    const rowBytes = rest.reduce((a, b) => a * b, 1) * bytesPerElement(this.dtype);
    return new Tensor(this.gpu, this.buffer, [count, ...rest], this.dtype, this.offset + start * rowBytes, false);
  }

  /** Give the buffer back to the pool. Using the tensor afterwards is a bug. */
  release(): void {
    if (!this.owner || this.released) return;
    this.released = true;
    this.gpu.recycle(this.buffer);
  }

  toString(): string {
    return `Tensor<${this.dtype}>[${this.shape.join(', ')}]`;
  }
}

/** Throw a clear error unless t has exactly the expected shape. */
export function expectShape(what: string, t: Tensor, shape: readonly number[]): void {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`${what}: expected shape [${shape.join(', ')}], got [${t.shape.join(', ')}]`);
  }
}
