// The training page's model choice in Chromium (test/browser/model-source.ts runs
// demo/train/model-picker.ts and model-source.ts): a Hub id, answered from the tiny-bert fixture
// through page.route on https://huggingface.co/** (test/hub-fake.ts; nothing leaves the
// machine), and a local folder given to the `<input webkitdirectory>` fallback with
// setInputFiles, and the same files as a directory handle, must load and embed exactly as the
// bundled URL does (the same bytes reach the same kernels on the same adapter, so the embeddings
// are bitwise equal) and have the same identity (the OPFS run key). Ids the page cannot use are
// refused with one line in the picker's status.
//
// Needs Chromium (see test/browser/runner.ts); AQA_SKIP_BROWSER=1 skips it. About 10 s here.

import assert from 'node:assert/strict';
import type { SourceArg, SourceReport } from './browser/model-source.ts';
import { runInChromium } from './browser/runner.ts';
import { FAKE_HUB, type FakeRepos, fakeHubAnswer, folderFiles } from './hub-fake.ts';
import { chromiumTest } from './browser/chromium-test.ts';

const TINY = 'test/fixtures/tiny-bert';
const NAME = 'chromium: the training page loads a model from a Hub id or a picked folder';

chromiumTest(NAME, async () => {
  const files = folderFiles(TINY);
  const repos: FakeRepos = new Map([
    ['test-owner/tiny-bert', files],
    ['test-owner/no-tokenizer', new Map([...files].filter(([p]) => p !== 'tokenizer.json'))],
  ]);
  const hubRequests: string[] = [];
  let folderSet: Promise<void> | null = null;
  const arg: SourceArg = {
    bundled: '/models/tiny-bert',
    hubId: 'test-owner/tiny-bert',
    refused: ['test-owner/no-tokenizer', 'test-owner/nothing-here', 'test-owner/offline'],
    texts: ['What binds EB1?', 'Microtubule plus-end tracking proteins regulate dynamics.', ''],
    maxLength: 16,
  };
  const run = await runInChromium<SourceReport>('test/browser/model-source.ts', 120_000, {
    serve: { '/models/tiny-bert/': TINY },
    arg,
    async onPage(page) {
      // Anything but the page's own server and the Hub would be real network: recorded, and the test fails.
      page.on('request', (q) => {
        const host = new URL(q.url()).hostname;
        if (host !== '127.0.0.1' && !q.url().startsWith(`${FAKE_HUB}/`)) hubRequests.push(`unexpected: ${q.method()} ${q.url()}`);
      });
      await page.route(`${FAKE_HUB}/**`, async (route) => {
        const req = route.request();
        const url = req.url();
        hubRequests.push(`${req.method()} ${url}`);
        if (url.includes('/test-owner/offline/')) return route.abort('internetdisconnected');
        const a = fakeHubAnswer(repos, req.method(), url, await req.headerValue('range'));
        await route.fulfill({ status: a.status, headers: a.headers, body: Buffer.from(a.body) });
      });
      folderSet = page.waitForSelector('body[data-pick-folder="ready"]', { state: 'attached', timeout: 0 }).then(() => page.setInputFiles('#folder-input', TINY));
      folderSet.catch(() => undefined); // awaited below
    },
  });
  await folderSet;
  const r = run.value;
  console.log(`chromium ${run.browserVersion}: bundle ${ms(run.timings.buildMs)}, launch ${ms(run.timings.launchMs)}, run ${ms(run.timings.runMs)} (${hubRequests.length} Hub requests)`);

  assert.deepEqual(hubRequests.filter((q) => q.startsWith('unexpected')), [], 'a request left for the network');
  assert.deepEqual(r.results.map((x) => x.kind), ['url', 'hub', 'files', 'folder']);
  const [bundled, ...others] = r.results;
  assert.match(bundled.summary, /^http:\/\/127\.0\.0\.1:\d+\/models\/tiny-bert: bert, 2 layers, 32 dims$/);
  for (const x of others) {
    assert.equal(x.embeddings.base64, bundled.embeddings.base64, `${x.kind}: other embeddings than the bundled URL's`);
    assert.equal(x.identity, bundled.identity, `${x.kind}: another identity than the bundled URL's`);
  }
  assert.equal(bundled.embeddings.length, arg.texts.length * 32);
  const hub = r.results[1];
  assert.equal(hub.name, 'test-owner/tiny-bert');
  assert.equal(hub.status, 'test-owner/tiny-bert: bert, 2 layers, 32 dims');
  assert.ok(new URL(r.hubUrl).searchParams.get('model') === 'test-owner/tiny-bert', `the page's address keeps the Hub id: ${r.hubUrl}`);
  // The weights came by range over the Hub too, never whole.
  const weightGets = hubRequests.filter((q) => q.startsWith('GET') && q.includes('test-owner/tiny-bert/') && q.endsWith('model.safetensors'));
  assert.ok(weightGets.length > 0, hubRequests.join('\n'));
  const picked = r.results[2];
  assert.equal(picked.name, 'tiny-bert');
  assert.equal(picked.status, 'tiny-bert: bert, 2 layers, 32 dims');

  assert.deepEqual(r.refusals, {
    'test-owner/no-tokenizer': "test-owner/no-tokenizer: tokenizer.json not found on the Hub at revision 'main' (the page needs the fast tokenizer's tokenizer.json)",
    'test-owner/nothing-here': 'test-owner/nothing-here: no such model on the Hub, or it is private or gated (HTTP 401 for config.json; the page sends no token)',
    'test-owner/offline': 'test-owner/offline: cannot reach huggingface.co for config.json: no network, or the site is blocked here; pick a local folder instead',
  });
});

function ms(x: number): string {
  return x >= 1000 ? `${(x / 1000).toFixed(1)} s` : `${x.toFixed(0)} ms`;
}
