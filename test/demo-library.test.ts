// "Search your own papers" in the browser demo, end to end in Chromium (WebGPU on SwiftShader):
// pick a BibTeX file of 240 real SciFact papers (test/fixtures/library, made by
// tools/make-library-fixtures.ts), let the page embed them, and check against the CLI on the
// same papers written as an AQA corpus JSON:
//   indexing    every paper indexed (the count the page shows), the progress text gave an ETA
//   ranking     for the first questions of the demo's validation claims, the page's top 10 =
//               `aqa search` on `aqa index --corpus scifact.json` at the same max length, same
//               order, scores within SCORE_ATOL
//   reload      the page finds the index in this browser's storage (OPFS) without embedding
//               again ("loaded ... from this browser's storage"), and answers the same
//   export      the Export button's files, served as an index folder (?index=), answer the same
//   forget      Forget clears the storage: a reload opens the demo's own index again
//   CSL-JSON    the Zotero-style CSL-JSON file of the same papers, picked next: every paper
//               indexed, none embedded (each vector is found in storage by model and passage
//               text, "240 reused, 0 to embed"), and the same top 10 and scores as the BibTeX
//               run, so the CLI's too; it parses to the same papers in Node as well
//
// Max length 32 keeps SwiftShader's embedding of the 240 papers short; the page embeds at the
// max length of the index it was opened with, so the test opens it with the CLI's own export of
// the same corpus (which also gives the page its model). SCORE_ATOL = 1e-3: both sides store the
// vectors as f16, rounded from embeddings that differ by a few 1e-7 between SwiftShader and
// llvmpipe, so a component may round to the neighbouring f16 value (1 ulp ~ 6e-5 at 0.1); the
// measured maximum difference is printed. Ranks are compared exactly.
//
// Needs Chromium (/usr/bin/chromium or AQA_CHROMIUM) and test/models/all-MiniLM-L6-v2;
// AQA_SKIP_BROWSER=1 skips it. Writes out/test-artifacts/demo-library.png.

import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { type ScoreMap, parseResults, topK } from '../core/retrieval/results.ts';
import { parseLibrary } from '../demo/library/parse.ts';
import { CHROMIUM_HELP, chromiumExecutable, launchChromium, serveStatic } from './browser/runner.ts';
import { type Answer, ask, expectOk, runCommand, waitReady } from './demo/page.ts';

const MODEL_DIR = 'test/models/all-MiniLM-L6-v2';
const FIXTURES = 'test/fixtures/library';
const QUESTIONS = 'demo/data/pipeline/qa_valid_flag.txt';
const MAX_LENGTH = 32;
const ASKED = 3;
const TOP = 10;
const SCORE_ATOL = 1e-3;
const ARTIFACTS = 'out/test-artifacts';
const PAPERS = 240;

const ms = (x: number) => `${(x / 1000).toFixed(1)} s`;

test('the CSL-JSON and BibTeX files hold the same papers as the corpus JSON', () => {
  const plain = (file: string) => parseLibrary(file, readFileSync(join(FIXTURES, file), 'utf8')).papers.map((p) => [p.pid, p.title, p.abstract]);
  const corpus = plain('scifact.json');
  assert.equal(corpus.length, PAPERS);
  assert.deepEqual(plain('scifact-csl.json'), corpus);
  assert.deepEqual(plain('scifact.bib'), corpus);
});

if (process.env.AQA_SKIP_BROWSER === '1') {
  test('chromium: search your own papers', { skip: 'AQA_SKIP_BROWSER=1' }, () => {});
} else if (!existsSync(chromiumExecutable())) {
  test('chromium: search your own papers', () => assert.fail(`no Chromium at ${chromiumExecutable()}. ${CHROMIUM_HELP}`));
} else {
  describe('chromium: search your own papers', () => {
    const lines = readFileSync(QUESTIONS, 'utf8').split('\n').filter((l) => l.trim()).slice(0, ASKED);
    const questions = lines.map((l) => (JSON.parse(l) as { question: string }).question);
    const tmp = mkdtempSync(join(tmpdir(), 'aqa-demo-library-'));
    const site = join(tmp, 'site');
    let server: Server | null = null;
    let context: BrowserContext | null = null;
    const pageErrors: string[] = [];
    let cliRuns: ScoreMap[] = [];
    let built: { count: string; source: string; status: string; statuses: string[]; s: number } | null = null;
    let fresh: Answer[] = [];
    let reloaded: { count: string; source: string; status: string; s: number; answer: Answer } | null = null;
    let fromExport: Answer | null = null;
    let afterForget = '';
    let csl: { count: string; source: string; status: string; reused: string; statuses: string[]; s: number; answers: Answer[] } | null = null;
    let initial = '';

    before(async () => {
      assert.ok(existsSync(`${MODEL_DIR}/model.safetensors`), `${MODEL_DIR} is missing: run bash tools/fetch-test-models.sh`);
      const qfile = join(tmp, 'questions.jsonl');
      writeFileSync(qfile, `${lines.join('\n')}\n`);
      // The CLI side: the corpus JSON indexed and exported at the same max length, then searched.
      const index = join(tmp, 'index');
      const exp = join(tmp, 'cli-export');
      const ti = performance.now();
      expectOk('aqa index', await runCommand(process.execPath, ['node/bin.mjs', 'index', '--model', MODEL_DIR, '--corpus', join(FIXTURES, 'scifact.json'), '--max-length', String(MAX_LENGTH), '--out', index, '--export', exp], 600_000));
      const res = join(tmp, 'results.jsonl');
      expectOk('aqa search', await runCommand(process.execPath, ['node/bin.mjs', 'search', '--index', index, '--questions', qfile, '--out', res], 300_000));
      cliRuns = parseResults(readFileSync(res, 'utf8'), res);
      console.log(`# CLI index + search of ${PAPERS} papers at ${MAX_LENGTH} tokens: ${ms(performance.now() - ti)}`);

      process.env.AQA_DEMO_OUT = site;
      process.env.AQA_DEMO_INDEX_DIR = join(tmp, 'no-demo-index'); // the page is told its index by ?index=
      const { build } = await import('vite');
      await build({ configFile: 'demo/vite.config.ts', logLevel: 'error' });
      cpSync(exp, join(site, 'indexes/cli/export'), { recursive: true });
      server = await serveStatic(site);
      const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      context = await launchChromium(join(tmp, 'profile'), { viewport: { width: 1100, height: 900 } });
      const open = async (path: string, what: string): Promise<Page> => {
        const page = await context!.newPage();
        page.on('console', (m) => {
          if (m.type() === 'error') pageErrors.push(`${what}: console.error: ${m.text()}`);
        });
        page.on('pageerror', (e) => pageErrors.push(`${what}: uncaught: ${e.stack ?? e.message}`));
        page.on('response', (r) => {
          if (r.status() >= 400) pageErrors.push(`${what}: HTTP ${r.status()} for ${r.url()}`);
        });
        await page.goto(`${origin}${path}`);
        await waitReady(page, 180_000);
        return page;
      };
      const library = (page: Page) =>
        page.evaluate(() => ({ count: document.body.dataset.libraryCount ?? '', source: document.body.dataset.librarySource ?? '', status: document.getElementById('library-status')?.textContent ?? '' }));
      const pageUrl = '/?index=indexes/cli/export/';

      const p1 = await open(pageUrl, 'build');
      initial = (await p1.evaluate(() => document.body.dataset.library)) ?? '';
      // Every status text the page shows while it works, to see the ETA.
      await p1.evaluate(
        "window.statuses = []; new MutationObserver(() => window.statuses.push(document.getElementById('library-status').textContent)).observe(document.getElementById('library-status'), { childList: true, characterData: true, subtree: true });",
      );
      const tb = performance.now();
      await p1.setInputFiles('#library-file', join(FIXTURES, 'scifact.bib'));
      await p1.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.library ?? ''), null, { timeout: 900_000, polling: 200 });
      const s = (performance.now() - tb) / 1000;
      built = { ...(await library(p1)), statuses: (await p1.evaluate('window.statuses')) as string[], s };
      console.log(`# page: ${PAPERS} papers embedded and stored in ${s.toFixed(1)} s: ${built.status}`);
      for (const [i, q] of questions.entries()) fresh.push(await ask(p1, q, i + 1, 120_000));
      mkdirSync(ARTIFACTS, { recursive: true });
      await p1.screenshot({ path: join(ARTIFACTS, 'demo-library.png'), fullPage: true });

      // Export: the downloads, put in one folder, are an index the page opens with ?index=.
      const dir = join(site, 'indexes/exported/export');
      mkdirSync(dir, { recursive: true });
      const names = new Set<string>();
      const saved = new Promise<void>((resolve, reject) => {
        p1.on('download', (d) => {
          d.saveAs(join(dir, d.suggestedFilename()))
            .then(() => {
              names.add(d.suggestedFilename());
              if (names.size === 4) resolve();
            })
            .catch(reject);
        });
      });
      await p1.click('#library-export');
      await saved;

      // The same papers as CSL-JSON: every vector comes from the stored BibTeX library.
      await p1.evaluate('window.statuses = []');
      const tc = performance.now();
      await p1.setInputFiles('#library-file', join(FIXTURES, 'scifact-csl.json'));
      await p1.waitForFunction(() => document.body.dataset.library === 'error' || (document.body.dataset.library === 'ready' && /scifact-csl/.test(document.getElementById('library-status')?.textContent ?? '')), null, {
        timeout: 300_000,
        polling: 100,
      });
      const cs = (performance.now() - tc) / 1000;
      csl = { ...(await library(p1)), reused: (await p1.evaluate(() => document.body.dataset.libraryReused)) ?? '', statuses: (await p1.evaluate('window.statuses')) as string[], s: cs, answers: [] };
      // The page numbers its answers from its load on: these follow the BibTeX run's.
      for (const [i, q] of questions.entries()) csl.answers.push(await ask(p1, q, questions.length + i + 1, 120_000));
      console.log(`# CSL-JSON of the same papers: ready in ${cs.toFixed(1)} s: ${csl.status}`);

      // A reload finds the stored index: no embedding.
      const tr = performance.now();
      await p1.reload();
      await waitReady(p1, 180_000);
      const rs = (performance.now() - tr) / 1000;
      const again = await library(p1);
      reloaded = { ...again, s: rs, answer: await ask(p1, questions[0], 1, 120_000) };
      console.log(`# reload: ready in ${rs.toFixed(1)} s: ${again.status}`);

      const pe = await open('/?index=indexes/exported/export/', 'exported');
      fromExport = await ask(pe, questions[0], 1, 120_000);
      await pe.close();

      await p1.click('#library-forget');
      await p1.waitForFunction(() => document.body.dataset.library === 'none', null, { timeout: 30_000 });
      await p1.reload();
      await waitReady(p1, 180_000);
      afterForget = (await p1.evaluate(() => document.body.dataset.library)) ?? '';
      await p1.close();
    });

    after(async () => {
      await context?.close();
      await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    });

    test('every paper is indexed, with progress and an ETA', () => {
      assert.equal(initial, 'none', 'a fresh profile has no stored library');
      assert.ok(built, 'the library was not built');
      assert.equal(built.count, String(PAPERS), built.status);
      assert.equal(built.source, 'built');
      assert.match(built.status, new RegExp(`^Indexed ${PAPERS} papers from scifact\\.bib`));
      assert.ok(
        built.statuses.some((t) => /Embedding papers on the GPU: \d+ of 240, about .* left/.test(t)),
        `no ETA among: ${built.statuses.slice(0, 8).join(' | ')}`,
      );
    });

    test('top 10 = aqa search on the same papers as an AQA corpus', () => {
      let maxDiff = 0;
      for (const [i, a] of fresh.entries()) {
        const want = topK(cliRuns[i], TOP);
        assert.deepEqual(
          a.hits.map((h) => h.pid),
          want.map(([pid]) => pid),
          `question ${i + 1}`,
        );
        for (const [j, h] of a.hits.entries()) {
          const d = Math.abs(h.score - want[j][1]);
          maxDiff = Math.max(maxDiff, d);
          assert.ok(d <= SCORE_ATOL, `question ${i + 1}, rank ${j + 1}: page ${h.score} vs CLI ${want[j][1]}`);
        }
      }
      console.log(`# page vs CLI: max score difference ${maxDiff.toExponential(2)} over ${fresh.length} questions`);
    });

    test('the same papers as CSL-JSON reuse every stored vector and rank the same', () => {
      assert.ok(csl, 'the CSL-JSON file was not opened');
      assert.equal(csl.count, String(PAPERS), csl.status);
      assert.equal(csl.source, 'built');
      assert.equal(csl.reused, String(PAPERS), csl.status);
      assert.match(csl.status, new RegExp(`^Indexed ${PAPERS} papers from scifact-csl\\.json in .* \\(${PAPERS} reused, 0 embedded,`));
      assert.ok(
        csl.statuses.some((t) => t.startsWith(`${PAPERS} reused from this browser's storage, 0 to embed`)),
        `no reuse count among: ${csl.statuses.slice(0, 8).join(' | ')}`,
      );
      assert.ok(!csl.statuses.some((t) => t.startsWith('Embedding papers on the GPU:')), 'papers were embedded again');
      assert.equal(csl.answers.length, fresh.length);
      for (const [i, a] of csl.answers.entries()) {
        assert.deepEqual(
          a.hits.map((h) => [h.pid, h.score]),
          fresh[i].hits.map((h) => [h.pid, h.score]),
          `question ${i + 1}`,
        );
      }
    });

    test('a reload opens the stored index without embedding again', () => {
      assert.ok(reloaded);
      assert.equal(reloaded.source, 'storage');
      assert.equal(reloaded.count, String(PAPERS));
      assert.match(reloaded.status, new RegExp(`^Loaded ${PAPERS} papers from this browser's storage`));
      assert.deepEqual(
        reloaded.answer.hits.map((h) => [h.pid, h.score]),
        fresh[0].hits.map((h) => [h.pid, h.score]),
      );
    });

    test('the exported files load again as an index', () => {
      assert.ok(fromExport);
      assert.deepEqual(
        fromExport.hits.map((h) => [h.pid, h.score]),
        fresh[0].hits.map((h) => [h.pid, h.score]),
      );
    });

    test('forget clears the storage', () => {
      assert.equal(afterForget, 'none');
    });

    test('no page errors', () => {
      assert.deepEqual(pageErrors, []);
    });
  });
}
