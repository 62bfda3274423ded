// Node-side helpers for driving the demo page (demo/main.ts) through Playwright: wait for its
// state, ask a question the way a person does (type, press Enter), and read the results back
// from the DOM attributes the page writes (data-pid, data-score, per-index data-model/-score/-rank).

import { spawn } from 'node:child_process';
import type { Page } from 'playwright-core';

export interface PageHit {
  pid: string;
  score: number;
  title: string;
  /** Per index shown on the hit (only with two or more indexes). */
  models: { model: string; score: number | null; rank: number | null }[];
}

export interface Answer {
  hits: PageHit[];
  /** Worker time (embed + search + fuse) and page time (Enter to rendered list), ms. */
  workerMs: number;
  pageMs: number;
  summary: string;
  /** The ranking the list was made with (dense, lexical, hybrid). */
  ranking: string;
  /** The page marked the answer a weak match. */
  weak: boolean;
}

/** Waits until the page leaves 'loading'; throws with the page's own message if it shows an error. */
export async function waitReady(page: Page, timeoutMs: number): Promise<void> {
  await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state ?? ''), null, { timeout: timeoutMs, polling: 100 });
  const state = await page.evaluate(() => document.body.dataset.state);
  if (state === 'error') throw new Error(`the demo page shows an error: ${await page.textContent('#error')}`);
}

/** Type `question` into the box, press Enter, wait for answer number `seq` (1-based). */
export async function ask(page: Page, question: string, seq: number, timeoutMs: number): Promise<Answer> {
  await page.fill('#q', question);
  await page.press('#q', 'Enter');
  return answer(page, seq, timeoutMs);
}

/** Wait for answer number `seq` (asked by ask(), an example button or the ranking switch) and read it. */
export async function answer(page: Page, seq: number, timeoutMs: number): Promise<Answer> {
  await page.waitForFunction(
    (n) => document.body.dataset.state === 'error' || (document.getElementById('results')?.dataset.seq === String(n) && document.body.dataset.state === 'ready'),
    seq,
    { timeout: timeoutMs, polling: 50 },
  );
  if ((await page.evaluate(() => document.body.dataset.state)) === 'error') throw new Error(`the demo page shows an error: ${await page.textContent('#error')}`);
  // No named functions inside evaluate(): tsx compiles with keepNames, whose __name helper does
  // not exist in the page.
  return page.evaluate(() => {
    const results = document.getElementById('results')!;
    const hits = [...results.querySelectorAll<HTMLLIElement>('li.hit')].map((li) => ({
      pid: li.dataset.pid ?? '',
      score: Number(li.dataset.score),
      title: li.querySelector('.title')?.textContent ?? '',
      models: [...li.querySelectorAll<HTMLElement>('.model-score')].map((s) => ({
        model: s.dataset.model ?? '',
        score: s.dataset.score === undefined ? null : Number(s.dataset.score),
        rank: s.dataset.rank === undefined ? null : Number(s.dataset.rank),
      })),
    }));
    return {
      hits,
      workerMs: Number(results.dataset.ms),
      pageMs: Number(results.dataset.pageMs),
      summary: document.getElementById('summary')?.textContent ?? '',
      ranking: results.dataset.ranking ?? '',
      weak: results.dataset.weak === 'true' && !document.getElementById('weak')!.hidden,
    };
  });
}

export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Run a command without blocking the event loop (the browser side proceeds meanwhile). */
export function runCommand(cmd: string, args: string[], timeoutMs: number, env: Record<string, string> = {}): Promise<Finished> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')}: still running after ${timeoutMs} ms\n${stderr.slice(-2000)}`));
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

/** Throws with the command's stderr unless it exited 0. */
export function expectOk(what: string, r: Finished): Finished {
  if (r.code !== 0) throw new Error(`${what} exited with ${r.code}:\n${r.stderr.slice(-3000)}`);
  return r;
}
