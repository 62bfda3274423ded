// How the tuner times recorded work: GPU timestamps written right before and after it where the
// adapter has 'timestamp-query' (GPU time, not the host's wait), else the wall clock around the
// recording and one sync. Either way every measurement is one submission of several
// iterations, so the per-sync cost (on a CPU driver, a polling thread taking a core) is shared.

import type { Gpu } from '../gpu/device.ts';

/** What is being timed, for timers that want to know (a test's fake timer, a progress line). */
export interface TimedWork {
  op: string;
  shape: string;
  candidate: string;
}

/** Milliseconds the work `record` records takes (it is called once; it records, the timer submits and waits). */
export type Timer = (record: () => void, what: TimedWork) => Promise<number>;

export function timerKind(gpu: Gpu): 'gpu timestamps' | 'wall clock' {
  return gpu.features.has('timestamp-query') ? 'gpu timestamps' : 'wall clock';
}

/** The timer for this Gpu (see the top of this file). */
export function defaultTimer(gpu: Gpu): Timer {
  return gpu.features.has('timestamp-query') ? (record) => timestamped(gpu, record) : (record) => wall(gpu, record);
}

async function wall(gpu: Gpu, record: () => void): Promise<number> {
  await gpu.sync();
  const t0 = performance.now();
  record();
  await gpu.sync();
  return performance.now() - t0;
}

async function timestamped(gpu: Gpu, record: () => void): Promise<number> {
  const dev = gpu.device;
  const qs = dev.createQuerySet({ type: 'timestamp', count: 2 });
  const resolved = dev.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  const read = dev.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  try {
    await gpu.sync();
    // empty passes that only write a timestamp, submitted before and after the work
    const mark = (index: 0 | 1) => {
      const enc = dev.createCommandEncoder();
      const ts: GPUComputePassTimestampWrites = index === 0 ? { querySet: qs, beginningOfPassWriteIndex: 0 } : { querySet: qs, endOfPassWriteIndex: 1 };
      enc.beginComputePass({ timestampWrites: ts }).end();
      if (index === 1) {
        enc.resolveQuerySet(qs, 0, 2, resolved, 0);
        enc.copyBufferToBuffer(resolved, 0, read, 0, 16);
      }
      dev.queue.submit([enc.finish()]);
    };
    const t0 = performance.now();
    mark(0);
    record();
    gpu.flush();
    mark(1);
    await gpu.sync();
    const wallMs = performance.now() - t0;
    await read.mapAsync(GPUMapMode.READ);
    const [s0, s1] = new BigUint64Array(read.getMappedRange());
    read.unmap();
    // a clock that wraps or runs per core gives end <= begin: fall back to the wall time then
    return s1 > s0 ? Number(s1 - s0) / 1e6 : wallMs;
  } finally {
    qs.destroy();
    resolved.destroy();
    read.destroy();
  }
}

export function median(v: readonly number[]): number {
  const s = [...v].sort((x, y) => x - y);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}
