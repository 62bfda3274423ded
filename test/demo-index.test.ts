// tools/build-demo-index.sh: one demo index for `npm run demo`, `demo:build` and the demo test.
// A second build with unchanged inputs must do nothing (no file rewritten, no CLI started); a
// changed input rebuilds, and the export carries the credit the page shows. Runs on tiny-bert
// and the 40-paper index fixture, so the two real builds take seconds.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseExportManifest } from '../core/retrieval/index-format.ts';

const dir = mkdtempSync(join(tmpdir(), 'aqa-demo-index-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function build(env: Record<string, string> = {}) {
  const r = spawnSync('bash', ['tools/build-demo-index.sh', 'test/fixtures/index/corpus.json', '16', '8'], {
    encoding: 'utf8',
    env: { ...process.env, AQA_DEMO_MODEL: 'test/fixtures/tiny-bert', AQA_DEMO_INDEX_DIR: dir, AQA_DEMO_PIPELINE_INDEX: join(dir, 'no-pipeline'), ...env },
    timeout: 300_000,
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stderr;
}

/** Every file under dir with its size and modification time. */
function snapshot(): Map<string, string> {
  const files = new Map<string, string>();
  for (const f of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!f.isFile()) continue;
    const p = join(f.parentPath, f.name);
    const s = statSync(p);
    files.set(p, `${s.size} ${s.mtimeMs}`);
  }
  return files;
}

test('build-demo-index: a second build with unchanged inputs is a no-op; a changed input rebuilds', () => {
  const first = build();
  assert.match(first, /wrote .*demo\.json \(2 index\(es\)\)/);
  const before = snapshot();
  assert.ok(before.has(join(dir, 'build.stamp')) && before.has(join(dir, 'minilm-16/export/manifest.json')), [...before.keys()].join('\n'));
  assert.equal(parseExportManifest(readFileSync(join(dir, 'minilm-16/export/manifest.json'), 'utf8')).credit, undefined, 'no credit unless given');
  // The page's BM25 reads the corpus demo.json names: a copy of the one the indexes were built from.
  assert.equal(JSON.parse(readFileSync(join(dir, 'demo.json'), 'utf8')).corpus, 'corpus.json');
  assert.equal(readFileSync(join(dir, 'corpus.json'), 'utf8'), readFileSync('test/fixtures/index/corpus.json', 'utf8'));

  const t0 = performance.now();
  const second = build();
  const secs = (performance.now() - t0) / 1000;
  assert.match(second, /up to date .*nothing to do/);
  assert.doesNotMatch(second, /model:|exported/, 'the CLI must not run');
  assert.deepEqual(snapshot(), before, 'no file may be written by the second build');
  console.log(`second build: ${secs.toFixed(2)} s`);

  // Another credit is another input: the build runs again (aqa index finds the indexes up to date).
  const third = build({ AQA_DEMO_CREDIT: 'Test corpus (CC0)' });
  assert.match(third, /up to date \(\d+ shards/);
  assert.match(third, /wrote .*demo\.json/);
  assert.equal(parseExportManifest(readFileSync(join(dir, 'minilm-8/export/manifest.json'), 'utf8')).credit, 'Test corpus (CC0)');
  assert.match(build({ AQA_DEMO_CREDIT: 'Test corpus (CC0)' }), /nothing to do/);
});
