// Small FlagEmbedding training files for the training tests: seeded phrases over a fixed
// vocabulary, so every run trains on the same text.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const WORDS = ['protein', 'folding', 'graph', 'neural', 'network', 'quantum', 'energy', 'cell', 'gene', 'signal', 'theory', 'data'];

export function phrase(i: number, n: number): string {
  return Array.from({ length: n }, (_, j) => WORDS[(i * 5 + j * 3) % WORDS.length]).join(' ');
}

/** n groups with 1 positive and 4 negatives each, as a FlagEmbedding JSONL file. */
export function groupsFile(dir: string, n: number): string {
  const path = join(dir, 'train.jsonl');
  const lines = Array.from({ length: n }, (_, i) => JSON.stringify({ query: `what about ${phrase(i, 3)}?`, pos: [phrase(i, 9)], neg: [1, 2, 3, 4].map((k) => phrase(i + 7 * k, 8)) }));
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}
