// Progress on stderr for the long commands (embed, index, search, mine).

import cliProgress from 'cli-progress';

/** Items per second for logs: whole numbers from 10 up, else two decimals (a software driver does ~0.5 passages/s). */
export function rate(n: number, seconds: number): string {
  const r = seconds > 0 ? n / seconds : 0;
  return r >= 10 ? String(Math.round(r)) : r.toFixed(2);
}

/** A cli-progress bar on stderr with `format` (its {placeholders} filled by update payloads). */
export function progressBar(format: string): cliProgress.SingleBar {
  return new cliProgress.SingleBar({ format, stream: process.stderr, hideCursor: true, etaBuffer: 50 }, cliProgress.Presets.shades_classic);
}
