// Helpers of test/demo.test.ts for the page without WebGPU (demo/wasm-engine.ts): the texts both
// engines embed for the parity check, the page's engine line, and answers compared page to page.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { queryText } from '../../core/data/clean.ts';
import type { Answer } from './page.ts';

/**
 * Texts embedded by both engines in Chromium: the first PARITY_WORDS words of the first
 * PARITY_TEXTS questions of the AQA validation fixture, cleaned as the page cleans a question.
 * Short on purpose: SwiftShader embeds only ~30 tokens/s on the shared 2-core machine; whole
 * claims (~30 tokens) took 140 s there, their first six words 63 s. Whole texts are compared in
 * Node by test/onnx-export.test.ts (this graph on onnxruntime-node, 281 texts; the WebAssembly
 * backend on the fixtures' graphs).
 */
export const PARITY_TEXTS = 200;
const PARITY_WORDS = 4;
const PARITY_FILE = 'test/fixtures/aqa-questions/qa_valid_flag.txt';
/** The bound for ONNX against our embeddings, as in test/onnx-export.test.ts. */
export const MIN_COS = 0.99999;

export function parityTexts(): string[] {
  const lines = readFileSync(PARITY_FILE, 'utf8').split('\n').filter((l) => l.trim()).slice(0, PARITY_TEXTS);
  return lines.map((l) => queryText({ question: (JSON.parse(l) as { question: string }).question }).split(' ').slice(0, PARITY_WORDS).join(' '));
}

/** The fallback line and engine (data-engine) of a loaded page. */
export async function engineOf(page: Page): Promise<{ fallback: string; engine: string }> {
  return { fallback: (await page.textContent('#fallback')) ?? '', engine: (await page.evaluate(() => document.body.dataset.engine)) ?? '' };
}

/** Asserts the same top pids in the same order and scores within `atol`, question by question; returns the score maxdiff. */
export function sameTop(got: Answer[], want: Answer[], questions: string[], atol: number, what: string): number {
  assert.equal(got.length, want.length, `${what}: ${got.length} answers, ${want.length} to compare with`);
  let maxdiff = 0;
  for (const [i, a] of got.entries()) {
    assert.deepEqual(a.hits.map((h) => h.pid), want[i].hits.map((h) => h.pid), `${what}, question ${i + 1} (${questions[i]}): another top list than the WebGPU page`);
    for (const [j, h] of a.hits.entries()) {
      const d = Math.abs(h.score - want[i].hits[j].score);
      maxdiff = Math.max(maxdiff, d);
      assert.ok(d <= atol, `${what}, question ${i + 1}, rank ${j + 1}: ${h.score} on WebAssembly, ${want[i].hits[j].score} on WebGPU`);
    }
  }
  return maxdiff;
}
