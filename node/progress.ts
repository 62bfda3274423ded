// Progress on stderr for the long commands (embed, index, search, mine): a bar on a terminal,
// and where stderr is not one (CI, a log file) a plain line every few seconds, so a run of
// hours is not silent. Rate and ETA count the work done since the first update: that first
// batch carries the warm-up (pipeline compilation, first upload), and a rate taken from a
// fraction of a second of it read "2336449 passages/s" before sinking to the real 0.95/s.

import cliProgress from 'cli-progress';

/** Items per second for logs: whole numbers from 10 up, else two decimals (a software driver does ~0.5 passages/s). */
export function rate(n: number, seconds: number): string {
  const r = seconds > 0 ? n / seconds : 0;
  return r >= 10 ? String(Math.round(r)) : r.toFixed(2);
}

/** 42s, 3m05s, 2h07m. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '-';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export interface ProgressOptions {
  /** First word of the bar or line, e.g. 'indexing'. */
  label: string;
  /** What is counted, plural, e.g. 'passages'. */
  unit: string;
  total: number;
  /** Already done before this run (a resumed build): not counted in the rate. */
  start?: number;
  /** Default process.stderr. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Milliseconds clock (tests pass a fake one). */
  now?: () => number;
  /** Least time between two plain lines; default 5 s. */
  intervalMs?: number;
}

export interface Progress {
  /** `done` items of `total` so far; `note` is appended (e.g. 'shard 2/3', '812 tokens/s'). */
  update(done: number, note?: string): void;
  stop(): void;
}

/** Rate and ETA from the work after the first update (see the file comment). */
class Meter {
  private first: { t: number; done: number } | null = null;
  constructor(
    private readonly created: number,
    private readonly start: number,
    private readonly total: number,
  ) {}

  /** Items per second, or null while unknown. */
  perSecond(t: number, done: number): number | null {
    this.first ??= { t, done };
    const dt = (t - this.first.t) / 1000;
    if (dt > 0 && done > this.first.done) return (done - this.first.done) / dt;
    // Only the warm-up batch so far: its rate, warm-up included, is better than none.
    const all = (t - this.created) / 1000;
    return all > 0 && done > this.start ? (done - this.start) / all : null;
  }

  eta(perSecond: number | null, done: number): string {
    return perSecond ? formatDuration((this.total - done) / perSecond) : '-';
  }
}

/** A plain line per interval: `indexing: 1200/3600 passages (33%), 0.95 passages/s, ETA 42m06s, shard 1/1`. */
export function lineProgress(o: ProgressOptions): Progress {
  const now = o.now ?? (() => performance.now());
  const stream = o.stream ?? process.stderr;
  const interval = o.intervalMs ?? 5000;
  const created = now();
  const meter = new Meter(created, o.start ?? 0, o.total);
  let last = created;
  let lastDone = o.start ?? 0;
  return {
    update(done, note) {
      const t = now();
      const r = meter.perSecond(t, done);
      // A line per interval while work advances; when it stalls (a very slow batch), one a minute.
      const due = t - last >= (done > lastDone ? interval : 12 * interval);
      if (!due || done >= o.total) return;
      last = t;
      lastDone = done;
      const pct = o.total ? Math.floor((100 * done) / o.total) : 100;
      const speed = r === null ? '-' : rate(r, 1);
      stream.write(`${o.label}: ${done}/${o.total} ${o.unit} (${pct}%), ${speed} ${o.unit}/s, ETA ${meter.eta(r, done)}${note ? `, ${note}` : ''}\n`);
    },
    stop() {},
  };
}

/** The cli-progress bar with rate and ETA from Meter. */
function barProgress(o: ProgressOptions): Progress {
  const now = o.now ?? (() => performance.now());
  const meter = new Meter(now(), o.start ?? 0, o.total);
  const bar = new cliProgress.SingleBar(
    {
      format: `${o.label} {bar} {value}/{total} ${o.unit} | {speed} ${o.unit}/s | ETA {remaining}{note}`,
      stream: o.stream ?? process.stderr,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(o.total, o.start ?? 0, { speed: '-', remaining: '-', note: '' });
  return {
    update(done, note) {
      const r = meter.perSecond(now(), done);
      bar.update(done, { speed: r === null ? '-' : rate(r, 1), remaining: meter.eta(r, done), note: note ? ` | ${note}` : '' });
    },
    stop: () => bar.stop(),
  };
}

/** A bar when the stream is a terminal, else plain lines every few seconds. */
export function progress(o: ProgressOptions): Progress {
  return (o.stream ?? process.stderr).isTTY ? barProgress(o) : lineProgress(o);
}
