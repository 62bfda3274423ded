// Pacing for Dawn's event pump in Node.
//
// Dawn's Node binding delivers GPU completions (mapAsync, onSubmittedWorkDone, popErrorScope) on
// the JS thread: while any of those promises is pending, a native callback ticks the device and
// re-posts itself with the global setImmediate, so every wait spins one core at 100%
// (dawn-gpu/node-webgpu#17). On a real GPU that core is otherwise idle. On a CPU adapter
// (llvmpipe) it is taken from the driver's worker threads, which run the kernels: on a 2-core
// machine a 1024^3 matmul ran at 8.5 GFLOP/s while the pump spun and at 12 when it polled.
//
// pacePump() wraps the global setImmediate. A callback that Dawn's pump posts from inside its
// own running callback keeps spinning for the first `spinMs` of a wait (short waits pay nothing)
// and after that is posted with setTimeout(pollMs), adding at most about pollMs to each wait.
// Every other setImmediate call goes through unchanged.

import { promisify } from 'node:util';

export interface PumpPace {
  /** Spin (setImmediate) for this long after a wait starts; 0 = poll from the start. */
  spinMs: number;
  /** Poll period after that, in ms (Node's timers are 1 ms at their finest). */
  pollMs: number;
}

let pace: PumpPace | null = null;
/** When the running wait began, while one of Dawn's pump callbacks is executing; else null. */
let pumping: number | null = null;

/** Dawn's pump callback is an anonymous native function (Napi::Function). */
function looksNative(fn: unknown): fn is () => void {
  return typeof fn === 'function' && fn.name === '' && Function.prototype.toString.call(fn).includes('[native code]');
}

/** Turn pacing on (or change it). Idempotent: the global is wrapped once. */
export function pacePump(p: PumpPace): void {
  const first = pace === null;
  pace = p;
  if (!first) return;
  const original = globalThis.setImmediate;
  const paced = function setImmediate(fn: (...args: unknown[]) => void, ...args: unknown[]) {
    if (!pace || !looksNative(fn) || args.length) return original(fn, ...args);
    const now = performance.now();
    const repost = pumping !== null;
    const start = repost ? (pumping as number) : now;
    const run = () => {
      pumping = start;
      try {
        fn();
      } finally {
        pumping = null;
      }
    };
    if (repost && now - start >= pace.spinMs) return setTimeout(run, pace.pollMs);
    return original(run);
  } as typeof globalThis.setImmediate;
  // util.promisify(setImmediate) and friends keep working.
  Object.assign(paced, { [promisify.custom]: (original as unknown as Record<symbol, unknown>)[promisify.custom] });
  globalThis.setImmediate = paced;
}

/** Pacing now in force (null when Dawn's default spinning is in place). */
export function pumpPace(): PumpPace | null {
  return pace;
}

/** The pump mode in words, for bench output: it changes CPU-adapter numbers a lot. */
export function describePump(): string {
  return pace ? `paced (spin ${pace.spinMs} ms, then poll every ${pace.pollMs} ms)` : "spinning (Dawn's default)";
}

/**
 * The pacing to use for an adapter: on CPU adapters by default (spin 2 ms, then poll each 1 ms);
 * AQA_DAWN_POLL_MS overrides it for every adapter ("0" keeps Dawn's spinning).
 */
export function pumpPaceFor(cpuAdapter: boolean, env: string | undefined = process.env.AQA_DAWN_POLL_MS): PumpPace | null {
  if (env !== undefined && env !== '') {
    const ms = Number(env);
    if (!Number.isFinite(ms) || ms < 0) throw new Error(`AQA_DAWN_POLL_MS must be a number of milliseconds >= 0, got '${env}'`);
    return ms === 0 ? null : { spinMs: 2, pollMs: ms };
  }
  return cpuAdapter ? { spinMs: 2, pollMs: 1 } : null;
}
