// Measures the browser demo in Chromium, on WebGPU and on the WebAssembly fallback:
//
//   node --import tsx tools/demo-bench.ts [--questions 20] [--papers 60] [--json out/demo-bench.json]
//
// Builds the demo index (tools/build-demo-index.sh: up to date after the first run) and the page
// (vite build into a temporary folder), serves it on 127.0.0.1 and opens it twice in headless
// Chromium: with --enable-unsafe-webgpu (WebGPU; SwiftShader where there is no GPU) and without
// it (requestAdapter() gives null, so the page embeds on onnxruntime-web's WebAssembly backend).
// Per path it reports:
//   download     bytes the server sent the page (headers included), by kind: code (HTML, JS,
//                CSS), wasm (onnxruntime-web), model (safetensors or ONNX graph, tokenizer and
//                config), index (vectors, passages, the corpus for BM25, demo.json); a fresh
//                profile, so nothing cached; counted at the server, which sees the worker's
//                requests too
//   load         navigation to the page ready (model and index loaded), the page's data-load-ms
//   first        navigation to the first question's rendered answer (data-first-result-ms)
//   per question Enter to rendered list, median (and min/max) over the validation claims of
//                the demo sample, hybrid ranking (the default), after the first question
//   papers/s     the "your own papers" embedding rate: the first --papers papers of the demo
//                corpus picked as a file (AQA corpus JSON), embedded at the index's max length
//                (WebGPU only: the fallback page says it needs WebGPU)
// Numbers depend on the machine and its load: run it niced on an otherwise idle machine.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { BrowserContext, Page } from 'playwright-core';
import { launchChromium, serveStatic } from '../test/browser/runner.ts';
import { ask, expectOk, runCommand, waitReady } from '../test/demo/page.ts';

const CORPUS = 'demo/data/pipeline/corpus.json';
const QUESTIONS = 'demo/data/pipeline/qa_valid_flag.txt';

type Kind = 'code' | 'wasm' | 'model' | 'index';

interface PathResult {
  path: 'webgpu' | 'wasm';
  engine: string;
  bytes: Record<Kind, number>;
  loadMs: number;
  firstResultMs: number;
  questions: number;
  medianMs: number;
  minMs: number;
  maxMs: number;
  /** Worker time (embed + search + fuse), median. */
  medianWorkerMs: number;
  papersPerS: number | null;
  papers: number | null;
}

function kindOf(url: string): Kind {
  const p = new URL(url).pathname;
  if (p.endsWith('.wasm')) return 'wasm';
  if (p.includes('/models/') || p.endsWith('.onnx')) return 'model';
  if (p.includes('/indexes/')) return 'index';
  return 'code';
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Bytes the server sends, by kind, from now until the returned function is called. */
function countBytes(server: Server, origin: string): () => Record<Kind, number> {
  const bytes: Record<Kind, number> = { code: 0, wasm: 0, model: 0, index: 0 };
  const listener = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    // One request at a time per connection (HTTP/1.1), so the socket's count moves for this one only.
    const before = req.socket.bytesWritten;
    res.on('finish', () => (bytes[kindOf(`${origin}${req.url ?? '/'}`)] += req.socket.bytesWritten - before));
  };
  server.prependListener('request', listener);
  return () => {
    server.off('request', listener);
    return bytes;
  };
}

async function measure(ctx: BrowserContext, server: Server, origin: string, path: PathResult['path'], questions: string[], papersFile: string | null, papers: number): Promise<PathResult> {
  const page: Page = await ctx.newPage();
  const stop = countBytes(server, origin);
  await page.goto(`${origin}/`);
  await waitReady(page, 300_000);
  const engine = (await page.evaluate(() => document.body.dataset.engine)) ?? '';
  const times: number[] = [];
  const worker: number[] = [];
  for (const [i, q] of questions.entries()) {
    const a = await ask(page, q, i + 1, 300_000);
    if (i > 0) {
      times.push(a.pageMs);
      worker.push(a.workerMs);
    }
  }
  const d = await page.evaluate(() => ({ load: Number(document.body.dataset.loadMs), first: Number(document.body.dataset.firstResultMs) }));
  const counted = stop();
  let rate: number | null = null;
  if (papersFile && engine === 'webgpu') {
    await page.setInputFiles('#library-file', papersFile);
    await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.library ?? ''), null, { timeout: 1_800_000, polling: 500 });
    const status = (await page.textContent('#library-status')) ?? '';
    // "Indexed 60 papers from papers.json in 312.4 s (0.2 papers/s, ...)": the rate from the time, for more digits.
    const m = /^Indexed [\d,]+ papers from .* in ([\d.]+) s \(/.exec(status);
    if (!m) throw new Error(`the library did not build: ${status}`);
    rate = papers / Number(m[1]);
  }
  await page.close();
  return {
    path,
    engine,
    bytes: counted,
    loadMs: d.load,
    firstResultMs: d.first,
    questions: times.length,
    medianMs: median(times),
    minMs: Math.min(...times),
    maxMs: Math.max(...times),
    medianWorkerMs: median(worker),
    papersPerS: rate,
    papers: rate === null ? null : papers,
  };
}

function table(rows: PathResult[]): string {
  const mb = (n: number) => (n / 1e6).toFixed(2);
  const s = (x: number) => (x / 1000).toFixed(2);
  const head = ['path', 'JS+HTML+CSS MB', 'wasm MB', 'model MB', 'index MB', 'total MB', 'load s', 'first result s', 'per question ms (median, min-max)', 'papers/s'];
  const body = rows.map((r) => {
    const total = r.bytes.code + r.bytes.wasm + r.bytes.model + r.bytes.index;
    return [r.path === 'webgpu' ? 'WebGPU' : 'WebAssembly', mb(r.bytes.code), mb(r.bytes.wasm), mb(r.bytes.model), mb(r.bytes.index), mb(total), s(r.loadMs), s(r.firstResultMs), `${r.medianMs.toFixed(0)} (${r.minMs.toFixed(0)}-${r.maxMs.toFixed(0)}) over ${r.questions}`, r.papersPerS === null ? 'needs WebGPU' : `${r.papersPerS.toFixed(2)} (${r.papers} papers)`];
  });
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...body.map((b) => `| ${b.join(' | ')} |`)].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { questions: { type: 'string', default: '20' }, papers: { type: 'string', default: '60' }, json: { type: 'string' } } });
  const nq = Number(values.questions);
  const np = Number(values.papers);
  if (!Number.isInteger(nq) || nq < 2) throw new Error(`--questions ${values.questions}: expected an integer >= 2 (the first is the time to first result)`);
  if (!Number.isInteger(np) || np < 0) throw new Error(`--papers ${values.papers}: expected an integer >= 0 (0: no library)`);
  const lines = readFileSync(QUESTIONS, 'utf8').split('\n').filter((l) => l.trim());
  const questions = lines.slice(0, nq + 1).map((l) => (JSON.parse(l) as { question: string }).question);

  expectOk('tools/build-demo-index.sh', await runCommand('bash', ['tools/build-demo-index.sh'], 1_800_000));
  const tmp = mkdtempSync(join(tmpdir(), 'aqa-demo-bench-'));
  const site = join(tmp, 'site');
  process.env.AQA_DEMO_OUT = site;
  const { build } = await import('vite');
  await build({ configFile: 'demo/vite.config.ts', logLevel: 'warn' });
  let papersFile: string | null = null;
  if (np > 0) {
    const corpus = JSON.parse(readFileSync(CORPUS, 'utf8')) as Record<string, unknown>;
    papersFile = join(tmp, 'papers.json');
    writeFileSync(papersFile, JSON.stringify(Object.fromEntries(Object.entries(corpus).slice(0, np))));
  }
  const server = await serveStatic(site);
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const rows: PathResult[] = [];
  const loadBefore = loadavg()[0];
  try {
    for (const path of ['webgpu', 'wasm'] as const) {
      const ctx = await launchChromium(join(tmp, `profile-${path}`), { drop: path === 'wasm' ? ['--enable-unsafe-webgpu'] : [], viewport: { width: 1100, height: 900 } });
      try {
        console.error(`demo-bench: ${path}...`);
        const r = await measure(ctx, server, origin, path, questions, papersFile, np);
        if (r.engine !== path) throw new Error(`asked for the ${path} path, the page ran ${r.engine}`);
        rows.push(r);
        console.error(`demo-bench: ${path}: first result ${(r.firstResultMs / 1000).toFixed(2)} s, median ${r.medianMs.toFixed(0)} ms per question`);
      } finally {
        await ctx.close();
      }
    }
  } finally {
    server.closeAllConnections();
    server.close();
    rmSync(tmp, { recursive: true, force: true });
  }
  const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}`;
  const load = `load average ${loadBefore.toFixed(1)} at the start, ${loadavg()[0].toFixed(1)} at the end (1 min)`;
  console.log(`Chromium, headless; ${machine}; ${load}; questions from ${QUESTIONS}, hybrid ranking`);
  console.log(table(rows));
  if (values.json) writeFileSync(values.json, `${JSON.stringify({ machine, load, date: new Date().toISOString(), rows }, null, 2)}\n`);
}

main().catch((e: unknown) => {
  console.error(`demo-bench: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
