// Per-kernel GPU time from timestamp queries: every compute pass gets a begin and an end
// timestamp, so the sum per label is GPU time, not the host's view of it (which on a queue
// that runs asynchronously would mostly measure waiting). Needs the 'timestamp-query' feature.
//
// Gpu.dispatch asks writes() for each pass; Gpu.flush() calls resolve() on the encoder it is
// about to submit (one query set per submit, resolved into a buffer and copied to a readable
// one); Gpu.sync() calls collect(), which maps those buffers and adds the pass times into
// totals. A query set holds CAPACITY passes; when it fills, the Gpu flushes early.

export interface KernelTime {
  label: string;
  /** Passes timed. */
  count: number;
  /** Summed GPU time, milliseconds. */
  ms: number;
}

const CAPACITY = 1024; // passes per query set (2 timestamps each)

interface Pending {
  set: GPUQuerySet;
  resolved: GPUBuffer;
  readback: GPUBuffer;
  labels: string[];
}

export class KernelProfiler {
  private set: GPUQuerySet | null = null;
  private labels: string[] = [];
  private pending: Pending[] = [];
  private totals = new Map<string, KernelTime>();

  constructor(private readonly device: GPUDevice) {
    if (!device.features.has('timestamp-query')) throw new Error('kernel profiling needs the timestamp-query feature, which this adapter does not offer');
  }

  /** Whether the current query set has no room for another pass. */
  full(): boolean {
    return this.labels.length >= CAPACITY;
  }

  /** Timestamp slots for the next compute pass, recorded under `label`. */
  writes(label: string): GPUComputePassTimestampWrites {
    this.set ??= this.device.createQuerySet({ type: 'timestamp', count: 2 * CAPACITY });
    const i = this.labels.length;
    this.labels.push(label);
    return { querySet: this.set, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  /** Record the copy-out of this submit's timestamps at the end of `encoder`. */
  resolve(encoder: GPUCommandEncoder): void {
    if (!this.set || this.labels.length === 0) return;
    const bytes = this.labels.length * 16;
    const resolved = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    const readback = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    encoder.resolveQuerySet(this.set, 0, 2 * this.labels.length, resolved, 0);
    encoder.copyBufferToBuffer(resolved, 0, readback, 0, bytes);
    this.pending.push({ set: this.set, resolved, readback, labels: this.labels });
    this.set = null;
    this.labels = [];
  }

  /** Add every submitted pass's time into the totals (call after the work is done). */
  async collect(): Promise<void> {
    const pending = this.pending;
    this.pending = [];
    for (const p of pending) {
      await p.readback.mapAsync(GPUMapMode.READ);
      const t = new BigUint64Array(p.readback.getMappedRange());
      p.labels.forEach((label, i) => {
        // An end before its begin (a driver whose clock wraps or is per-core) counts as 0.
        const ns = t[2 * i + 1] > t[2 * i] ? Number(t[2 * i + 1] - t[2 * i]) : 0;
        const k = this.totals.get(label) ?? { label, count: 0, ms: 0 };
        k.count++;
        k.ms += ns / 1e6;
        this.totals.set(label, k);
      });
      p.readback.unmap();
      p.readback.destroy();
      p.resolved.destroy();
      p.set.destroy();
    }
  }

  /** Totals so far, largest first. */
  report(): KernelTime[] {
    return [...this.totals.values()].sort((a, b) => b.ms - a.ms);
  }

  reset(): void {
    this.totals.clear();
  }
}
