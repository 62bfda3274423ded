// Vite config of the browser demo (root demo/).
//
//   npx vite --config demo/vite.config.ts           dev server on http://127.0.0.1:5173/
//   npx vite build --config demo/vite.config.ts     static site in out/demo/ (AQA_DEMO_OUT)
//
// The page fetches two kinds of data next to itself:
//   /models/<folder>/  the model (default test/models/all-MiniLM-L6-v2; AQA_DEMO_MODEL)
//   /indexes/          demo.json, the exported indexes, corpus.json and model-onnx/onnx/model.onnx
//                      (out/demo-index; AQA_DEMO_INDEX_DIR), from bash tools/build-demo-index.sh
// onnxruntime-web's .wasm (for pages without WebGPU) is imported with ?url by demo/wasm-engine.ts,
// so Vite serves it from node_modules and emits it into the build: nothing comes from a CDN.
// The dev server serves them from where they are, answering HTTP Range requests (the loader
// reads safetensors tensor by tensor); the build copies them into the output so any static
// server that honours Range (nginx, GitHub Pages, `npx serve`) can host the result. The copy
// leaves out what the page never reads: the model's onnx/ folder and the on-disk index/
// folders (the export/ folders hold the same vectors).

import { cpSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { basename, dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Plugin, defineConfig } from 'vite';
import { sendFile } from '../node/serve-file.ts';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..');
const modelDir = resolve(repo, process.env.AQA_DEMO_MODEL ?? 'test/models/all-MiniLM-L6-v2');
const indexDir = resolve(repo, process.env.AQA_DEMO_INDEX_DIR ?? 'out/demo-index');
const outDir = resolve(repo, process.env.AQA_DEMO_OUT ?? 'out/demo');
// The training page's bundled model (train.html): small enough to fine-tune in seconds anywhere.
const tinyDir = resolve(repo, 'test/fixtures/tiny-bert');

/** URL prefix -> local directory. */
const mounts: [string, string][] = [
  [`/models/${basename(modelDir)}/`, modelDir],
  ['/indexes/', indexDir],
  ['/models/tiny-bert/', tinyDir],
];

/** Model files the page may read (fetchModelFiles asks for these; 404 is fine for the optional ones). */
const SKIP_IN_MODEL = new Set(['onnx', 'README.md']);

const TYPES: Record<string, string> = {
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

/** GET/HEAD with single byte ranges; false when the path is not under a mount (Vite handles it). */
function serveFile(req: IncomingMessage, res: ServerResponse): boolean {
  const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
  const mount = mounts.find(([prefix]) => path.startsWith(prefix));
  if (!mount) return false;
  const [prefix, dir] = mount;
  const file = normalize(join(dir, path.slice(prefix.length)));
  if (!file.startsWith(dir + sep) || !existsSync(file) || !statSync(file).isFile()) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${path}`);
    return true;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
    return true;
  }
  sendFile(req, res, file, TYPES[extname(file)] ?? 'application/octet-stream');
  return true;
}

function demoData(): Plugin {
  // closeBundle also runs when the dev server closes: only a build copies data into its output.
  let building = false;
  return {
    name: 'aqa-demo-data',
    configResolved(config) {
      building = config.command === 'build';
    },
    configureServer(server) {
      if (!existsSync(join(indexDir, 'demo.json'))) {
        server.config.logger.warn(`no ${join(indexDir, 'demo.json')}: run bash tools/build-demo-index.sh (the page will say so too)`);
      }
      server.middlewares.use((req, res, next) => {
        if (!serveFile(req, res)) next();
      });
    },
    // After the bundle is written: copy the model and the exports next to it.
    closeBundle() {
      if (!building) return;
      if (!existsSync(join(modelDir, 'model.safetensors'))) {
        this.warn(`no model at ${modelDir} (bash tools/fetch-test-models.sh): the build will have none`);
      } else {
        const dest = join(outDir, 'models', basename(modelDir));
        mkdirSync(dest, { recursive: true });
        for (const f of readdirSync(modelDir)) {
          if (!SKIP_IN_MODEL.has(f)) cpSync(join(modelDir, f), join(dest, f), { recursive: true });
        }
      }
      const tinyDest = join(outDir, 'models', 'tiny-bert');
      mkdirSync(tinyDest, { recursive: true });
      for (const f of readdirSync(tinyDir)) if (f !== 'golden.safetensors' && !SKIP_IN_MODEL.has(f)) cpSync(join(tinyDir, f), join(tinyDest, f));
      if (!existsSync(join(indexDir, 'demo.json'))) {
        this.warn(`no ${join(indexDir, 'demo.json')} (bash tools/build-demo-index.sh): the build will have no index`);
        return;
      }
      const dest = join(outDir, 'indexes');
      mkdirSync(dest, { recursive: true });
      cpSync(join(indexDir, 'demo.json'), join(dest, 'demo.json'));
      // The corpus demo.json names for BM25 (lexical and hybrid ranking).
      if (existsSync(join(indexDir, 'corpus.json'))) cpSync(join(indexDir, 'corpus.json'), join(dest, 'corpus.json'));
      // The ONNX graph a page without WebGPU embeds questions with; the rest of that folder
      // (tokenizer, config) is the model folder's own, already copied above.
      const onnx = join(indexDir, 'model-onnx', 'onnx', 'model.onnx');
      if (existsSync(onnx)) {
        mkdirSync(join(dest, 'model-onnx', 'onnx'), { recursive: true });
        cpSync(onnx, join(dest, 'model-onnx', 'onnx', 'model.onnx'));
      }
      for (const name of readdirSync(indexDir)) {
        const exp = join(indexDir, name, 'export');
        if (existsSync(join(exp, 'manifest.json'))) cpSync(exp, join(dest, name, 'export'), { recursive: true });
      }
    },
  };
}

export default defineConfig({
  root: here,
  base: './', // relative URLs: the built site works from any folder of a static host
  publicDir: false,
  // No SPA fallback: a missing file must be a 404 (the model loader probes optional files, and
  // a missing index must say so), not index.html with status 200.
  appType: 'mpa',
  clearScreen: false,
  server: { host: '127.0.0.1', port: 5173 },
  // `vite preview` serves the build as any static host would: the copied model and exports, no
  // middleware (its server answers Range requests).
  preview: { host: '127.0.0.1', port: 4173 },
  worker: { format: 'es' },
  // The training page (train.html) offers the search demo's model next to the bundled tiny one.
  define: { __AQA_DEMO_MODEL__: JSON.stringify(basename(modelDir)) },
  // Pre-bundled at start-up, so the dev server does not discover them mid-load and reload the page.
  optimizeDeps: { include: ['comlink', '@huggingface/tokenizers', 'fflate'] },
  build: {
    outDir,
    emptyOutDir: true,
    target: 'es2022',
    // The bundle holds every WGSL shader as a string (~100 kB) next to the tokenizer.
    chunkSizeWarningLimit: 1000,
    // Two pages: search (index.html) and fine-tuning (train.html).
    rollupOptions: { input: { main: join(here, 'index.html'), train: join(here, 'train.html') } },
  },
  plugins: [demoData()],
});
