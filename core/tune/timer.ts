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
  return async (record) => {
    const t = await timeSubmission(gpu, record);
    return t.gpuMs ?? t.wallMs;
  };
}

export interface SubmissionTiming {
  /** Wall ms from recording the work to the end of the sync that waits for it. */
  wallMs: number;
  /** GPU ms between timestamps written right before and after the work; null without 'timestamp-query' or when the clock gave end <= begin. */
  gpuMs: number | null;
}

/**
 * Times the work `record` records in one submission: empty compute passes that only write a
 * timestamp go right before and after it (with 'timestamp-query'), and the wall clock is read
 * around the recording and the sync. `around` runs right before the clock starts and right
 * after it stops (the matmul bench reads the driver's CPU time there).
 */
export async function timeSubmission(gpu: Gpu, record: () => void, around: { start?(): void; stop?(): void } = {}): Promise<SubmissionTiming> {
  const stamps = gpu.features.has('timestamp-query');
  const dev = gpu.device;
  const qs = stamps ? dev.createQuerySet({ type: 'timestamp', count: 2 }) : null;
  const resolved = stamps ? dev.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC }) : null;
  const read = stamps ? dev.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }) : null;
  try {
    await gpu.sync();
    const mark = (index: 0 | 1) => {
      if (!qs || !resolved || !read) return;
      const enc = dev.createCommandEncoder();
      const ts: GPUComputePassTimestampWrites = index === 0 ? { querySet: qs, beginningOfPassWriteIndex: 0 } : { querySet: qs, endOfPassWriteIndex: 1 };
      enc.beginComputePass({ timestampWrites: ts }).end();
      if (index === 1) {
        enc.resolveQuerySet(qs, 0, 2, resolved, 0);
        enc.copyBufferToBuffer(resolved, 0, read, 0, 16);
      }
      dev.queue.submit([enc.finish()]);
    };
    around.start?.();
    const t0 = performance.now();
    mark(0);
    record();
    gpu.flush();
    mark(1);
    await gpu.sync();
    const wallMs = performance.now() - t0;
    around.stop?.();
    if (!read) return { wallMs, gpuMs: null };
    await read.mapAsync(GPUMapMode.READ);
    const [s0, s1] = new BigUint64Array(read.getMappedRange());
    read.unmap();
    // a clock that wraps or runs per core gives end <= begin
    return { wallMs, gpuMs: s1 > s0 ? Number(s1 - s0) / 1e6 : null };
  } finally {
    qs?.destroy();
    resolved?.destroy();
    read?.destroy();
  }
}

export function median(v: readonly number[]): number {
  const s = [...v].sort((x, y) => x - y);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}
