// The words the page shows for a library's embedding: how many stored vectors were reused, how
// many papers were embedded and how fast. Pure, so the page (demo/main.ts) only places them.

/** Before embedding starts, when stored vectors were found. */
export function reuseProgressText(reused: number, toEmbed: number): string {
  return `${reused.toLocaleString('en')} reused from this browser's storage, ${toEmbed.toLocaleString('en')} to embed...`;
}

/** The embedding rate, and how many vectors an earlier library gave when some did. */
export function embedWorkText(info: { count: number; reused: number; embedS: number }): string {
  const embedded = info.count - info.reused;
  const rate = `${(embedded / Math.max(info.embedS, 1e-3)).toFixed(1)} papers/s`;
  return info.reused ? `${info.reused.toLocaleString('en')} reused, ${embedded.toLocaleString('en')} embedded${embedded ? ` at ${rate}` : ''}` : rate;
}
