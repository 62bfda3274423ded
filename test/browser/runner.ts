// Runs a module in real Chromium WebGPU and returns what its run() resolves to.
//
// The entry is any browser-safe TypeScript module exporting `run(arg?) => Promise<T>`, where T
// survives Playwright's serialisation (plain objects, arrays, strings, numbers including NaN).
// runInChromium() bundles it with esbuild into a temp dir, serves that dir plus any extra
// files on 127.0.0.1 (node:http, random port), launches Debian's Chromium through
// playwright-core, imports the bundle in a page, awaits run(arg), and closes browser, server
// and temp dirs whatever happens. The same entry works in a normal browser with a GPU:
// `node --import tsx test/browser/runner.ts serve <entry>` prints a URL ending in ?run.
//
// Kernel conformance: test/browser/kernels.ts. A full model forward works the same way:
//
//   const out = await runInChromium<number[]>('test/browser/forward.ts', 60_000, {
//     serve: { '/models/gte-dev/': 'test/fixtures/gte-dev' },   // URL prefix -> file or dir
//     arg: { model: '/models/gte-dev/' },                        // passed to run(arg)
//   });
//
// where forward.ts fetches /models/gte-dev/model.safetensors, builds the model on the
// browser Gpu and returns the embeddings (typed arrays: send them as encodeArray() from
// ./encoding.ts, exact and compact). Files are streamed and honour single Range requests, so a
// loader may read a safetensors header first.
//
// Launch recipe (Chromium 156 + playwright-core 1.65, see CHROMIUM_ARGS): Playwright's
// `headless: true` passes `--headless`, which in Chromium >= 132 is the new headless mode, the
// one with WebGPU (the old headless shell has none); `headless: false` plus `--headless=new`
// behaves the same and is not needed. WebGPU needs --enable-unsafe-webgpu
// (without it: "No available adapters") and a secure origin: about:blank has no navigator.gpu,
// http://127.0.0.1 does. A --user-data-dir arg is refused by Playwright, hence
// launchPersistentContext(freshDir).

import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { sendFile } from '../../node/serve-file.ts';

export const DEFAULT_CHROMIUM = '/usr/bin/chromium';

/** The browser to drive: AQA_CHROMIUM, else Debian's /usr/bin/chromium. */
export function chromiumExecutable(): string {
  return process.env.AQA_CHROMIUM || DEFAULT_CHROMIUM;
}

export const CHROMIUM_HELP =
  'Chromium is needed for the browser tests: on Debian/Ubuntu `apt-get install chromium` ' +
  '(or point AQA_CHROMIUM at a Chrome/Chromium >= 113 binary). Never `npx playwright install`: the tests ' +
  'use playwright-core with the system browser. Set AQA_SKIP_BROWSER=1 to skip these tests.';

/** Flags beyond Playwright's defaults (which already disable most background services). */
export const CHROMIUM_ARGS: readonly string[] = [
  '--enable-unsafe-webgpu', // WebGPU on Linux, where it is not yet on by default
  // no network beyond 127.0.0.1 here: stop the browser trying
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-sync',
  '--disable-quic',
];

export interface ChromiumOptions {
  /** Extra static files: URL prefix ('/models/x/') -> local file or directory. */
  serve?: Record<string, string>;
  /** Argument for the entry's run(); must be serialisable. */
  arg?: unknown;
  /** Browser binary (default chromiumExecutable()). */
  executablePath?: string;
  /** Extra Chromium flags. */
  args?: string[];
  /** Called with every console line as it arrives (e.g. to echo progress). */
  onConsole?: (type: string, text: string) => void;
  /** Called with the page before it opens the entry (page.route, file inputs); awaited. */
  onPage?: (page: import('playwright-core').Page) => void | Promise<void>;
}

/**
 * Headless Chromium with a fresh profile in `profileDir` and WebGPU on (CHROMIUM_ARGS, minus
 * any flag in `drop`), --no-sandbox when running as root.
 */
export async function launchChromium(
  profileDir: string,
  o: { executablePath?: string; args?: string[]; drop?: string[]; viewport?: { width: number; height: number }; timeoutMs?: number } = {},
): Promise<import('playwright-core').BrowserContext> {
  const executablePath = o.executablePath ?? chromiumExecutable();
  if (!existsSync(executablePath)) throw new Error(`no browser at ${executablePath}. ${CHROMIUM_HELP}`);
  const { chromium } = await import('playwright-core');
  return chromium.launchPersistentContext(profileDir, { executablePath, headless: true, args: chromiumArgs(o.args, o.drop), viewport: o.viewport, timeout: o.timeoutMs ?? 60_000 });
}

/** The flags launchChromium passes. */
export function chromiumArgs(extra: string[] = [], drop: string[] = []): string[] {
  return [...CHROMIUM_ARGS.filter((a) => !drop.includes(a)), ...(process.getuid?.() === 0 ? ['--no-sandbox'] : []), ...extra];
}

export interface ChromiumRun<T> {
  value: T;
  browserVersion: string;
  /** The flags we added to Playwright's defaults. */
  args: string[];
  console: { type: string; text: string }[];
  /** console.error lines, uncaught page errors and failed requests. */
  errors: string[];
  timings: { buildMs: number; launchMs: number; runMs: number; totalMs: number };
}

export async function runInChromium<T = unknown>(entry: string, timeoutMs: number, opts: ChromiumOptions = {}): Promise<ChromiumRun<T>> {
  const t0 = performance.now();
  const executablePath = opts.executablePath ?? chromiumExecutable();
  if (!existsSync(executablePath)) throw new Error(`no browser at ${executablePath}. ${CHROMIUM_HELP}`);

  const outDir = mkdtempSync(join(tmpdir(), 'aqa-bundle-'));
  const profileDir = mkdtempSync(join(tmpdir(), 'aqa-chromium-'));
  let server: Server | null = null;
  let context: import('playwright-core').BrowserContext | null = null;
  let timer: NodeJS.Timeout | undefined;
  try {
    const tb = performance.now();
    await bundle(entry, outDir);
    const buildMs = performance.now() - tb;
    server = await serveStatic(outDir, opts.serve ?? {});
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    const t1 = performance.now();
    context = await launchChromium(profileDir, { executablePath, args: opts.args, timeoutMs: Math.min(timeoutMs, 60_000) });
    const browserVersion = context.browser()?.version() ?? 'unknown';
    const launchMs = performance.now() - t1;

    const page = context.pages()[0] ?? (await context.newPage());
    const lines: { type: string; text: string }[] = [];
    const errors: string[] = [];
    page.on('console', (m) => {
      lines.push({ type: m.type(), text: m.text() });
      if (m.type() === 'error') errors.push(`console.error: ${m.text()}`);
      opts.onConsole?.(m.type(), m.text());
    });
    page.on('pageerror', (e) => errors.push(`uncaught in page: ${e.stack ?? e.message}`));
    page.on('response', (r) => {
      if (r.status() >= 400) errors.push(`HTTP ${r.status()} for ${r.url()}`);
    });
    page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()} (${r.failure()?.errorText})`));
    await opts.onPage?.(page);

    const t2 = performance.now();
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${entry}: run() did not finish within ${timeoutMs} ms`)), Math.max(1, timeoutMs - (t2 - t0)));
    });
    const crashed = new Promise<never>((_, reject) => page.on('crash', () => reject(new Error(`${entry}: the Chromium page crashed`))));
    const work = (async () => {
      await page.goto(`${origin}/`);
      return (await page.evaluate(async (arg) => {
        const url: string = '/entry.js'; // typed string: tsc must not try to resolve it
        const m = await import(url);
        if (typeof m.run !== 'function') throw new Error('the entry module exports no run()');
        const value = await m.run(arg);
        (globalThis as { __results?: unknown }).__results = value;
        return value;
      }, opts.arg)) as T;
    })();
    work.catch(() => undefined); // it may reject after the race is decided, while closing
    const value = await Promise.race([work, timeout, crashed]);
    const runMs = performance.now() - t2;
    return { value, browserVersion, args: chromiumArgs(opts.args), console: lines, errors, timings: { buildMs, launchMs, runMs, totalMs: performance.now() - t0 } };
  } finally {
    clearTimeout(timer);
    // Closing the persistent context ends the browser process and its children.
    if (context) await context.close().catch(() => undefined);
    if (server) await closeServer(server);
    rmSync(outDir, { recursive: true, force: true });
    rmSync(profileDir, { recursive: true, force: true, maxRetries: 3 });
  }
}

async function bundle(entry: string, outDir: string): Promise<void> {
  const { build } = await import('esbuild');
  try {
    await build({
      entryPoints: { entry: resolve(entry) },
      bundle: true,
      format: 'esm',
      platform: 'browser', // a node:* import fails here: core/ and test/cases/ must stay browser-safe
      target: 'es2022',
      outdir: outDir,
      sourcemap: 'linked',
      logLevel: 'silent',
    });
  } catch (e) {
    const errs = (e as { errors?: { text: string; location?: { file: string; line: number } | null }[] }).errors;
    const msg = errs?.map((x) => (x.location ? `${x.location.file}:${x.location.line}: ${x.text}` : x.text)).join('\n');
    throw new Error(`esbuild could not bundle ${entry} for the browser:\n${msg ?? (e as Error).message}`);
  }
  writeFileSync(
    join(outDir, 'index.html'),
    `<!doctype html>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<title>aqa-webgpu: ${escapeHtml(entry)}</title>
<pre id="out">Open with ?run to call the entry's run() (tests call it through Playwright).</pre>
<script type="module">
  if (new URLSearchParams(location.search).has('run')) {
    const out = document.getElementById('out');
    out.textContent = 'running...';
    try {
      const value = await (await import('./entry.js')).run();  // no arg: the entry's defaults
      window.__results = value;
      out.textContent = JSON.stringify(value, (k, v) => (k === 'base64' ? '[' + v.length + ' chars]' : v), 2);
    } catch (e) {
      out.textContent = String(e && e.stack || e);
    }
  }
</script>
`,
  );
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
  '.wgsl': 'text/plain; charset=utf-8',
};

/** 127.0.0.1 only, random port; `/` is the bundle dir, `extra` maps URL prefixes to paths. */
export async function serveStatic(root: string, extra: Record<string, string> = {}): Promise<Server> {
  // Longest prefix first so '/models/a/' wins over '/models/'.
  const mounts = Object.entries(extra)
    .map(([prefix, path]) => {
      if (!prefix.startsWith('/')) throw new Error(`serve: URL prefix '${prefix}' must start with '/'`);
      const abs = resolve(path);
      if (!existsSync(abs)) throw new Error(`serve: ${prefix} -> ${abs} does not exist`);
      return [prefix, abs] as const;
    })
    .concat([['/', resolve(root)] as const])
    .sort((a, b) => b[0].length - a[0].length);

  const server = createServer((req, res) => {
    try {
      handle(req, res, mounts);
    } catch (e) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(String(e));
    }
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', ok);
  });
  return server;
}

function handle(req: IncomingMessage, res: ServerResponse, mounts: (readonly [string, string])[]): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
    return;
  }
  const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
  const file = locate(path, mounts);
  if (!file) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${path}`);
    return;
  }
  sendFile(req, res, file, CONTENT_TYPES[extname(file)] ?? 'application/octet-stream');
}

function locate(path: string, mounts: (readonly [string, string])[]): string | null {
  for (const [prefix, abs] of mounts) {
    if (statSync(abs).isFile()) {
      if (path === prefix || path === prefix.replace(/\/$/, '')) return abs;
      continue;
    }
    const base = prefix.endsWith('/') ? prefix : `${prefix}/`;
    if (!path.startsWith(base) && path !== prefix) continue;
    const rel = path.slice(base.length) || 'index.html';
    const full = normalize(join(abs, rel));
    if (full !== abs && !full.startsWith(abs + sep)) return null; // no ../ escapes
    if (existsSync(full) && statSync(full).isFile()) return full;
    return null;
  }
  return null;
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections(); // keep-alive sockets would hold close() open
  await new Promise<void>((ok) => server.close(() => ok()));
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

// `node --import tsx test/browser/runner.ts serve <entry> [/prefix/=path ...]`: bundle and
// serve an entry for a browser of your choice (e.g. Chrome on a machine with a real GPU).
if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const [cmd, entry, ...mountArgs] = process.argv.slice(2);
  if (cmd !== 'serve' || !entry) {
    console.error('usage: node --import tsx test/browser/runner.ts serve <entry.ts> [/url-prefix/=local/path ...]');
    process.exit(2);
  }
  const outDir = mkdtempSync(join(tmpdir(), 'aqa-bundle-'));
  await bundle(entry, outDir);
  const extra = Object.fromEntries(mountArgs.map((m) => m.split('=', 2) as [string, string]));
  const server = await serveStatic(outDir, extra);
  console.log(`serving ${entry} at http://127.0.0.1:${(server.address() as AddressInfo).port}/?run  (Ctrl-C to stop)`);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      server.close();
      rmSync(outDir, { recursive: true, force: true });
      process.exit(0);
    });
  }
}
