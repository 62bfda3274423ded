// The training page's model sources (demo/train/model-source.ts) in Node, no GPU: a Hub id served
// by test/hub-fake.ts through an injected fetch, and a picked folder as File objects (the
// `<input webkitdirectory>` fallback) or as a directory handle. The same model from any source
// has the same identity (the OPFS run key), a changed model another, and what the page cannot
// train is refused in one line. test/browser-model-source.test.ts loads and embeds in Chromium.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type ModelSource, ModelSourceError, openModelSource, parseHubInput } from '../demo/train/model-source.ts';
import { FAKE_HUB, type FakeRepos, fakeHubAnswer, folderFiles } from './hub-fake.ts';

const TINY = folderFiles('test/fixtures/tiny-bert');

/** tiny-bert with every weight scaled: the layout (header) of a fine-tune, other values. */
function scaledWeights(bytes: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  const out = bytes.slice();
  const n = Number(new DataView(out.buffer).getBigUint64(0, true));
  const f = new Float32Array(out.buffer, 8 + n, (out.byteLength - 8 - n) / 4);
  for (let i = 0; i < f.length; i++) f[i] *= 1.001;
  return out;
}

const REPOS: FakeRepos = new Map([
  ['test-owner/tiny-bert', TINY],
  ['test-owner/no-tokenizer', new Map([...TINY].filter(([p]) => p !== 'tokenizer.json'))],
  ['test-owner/no-weights', new Map([...TINY].filter(([p]) => p !== 'model.safetensors'))],
  ['test-owner/llama', new Map([...TINY, ['config.json', new TextEncoder().encode(JSON.stringify({ ...JSON.parse(new TextDecoder().decode(TINY.get('config.json'))), model_type: 'llama' }))]])],
  ['test-owner/tuned', new Map([...TINY, ['model.safetensors', scaledWeights(TINY.get('model.safetensors')!)]])],
]);

const requests: string[] = [];
const hubFetch: typeof fetch = async (input, init) => {
  const url = String(input);
  const method = init?.method ?? 'GET';
  requests.push(`${method} ${url}`);
  const a = fakeHubAnswer(REPOS, method, url, new Headers(init?.headers).get('range'));
  return new Response(method === 'HEAD' || a.status === 204 ? null : a.body, { status: a.status, headers: a.headers });
};
const offline: typeof fetch = async () => {
  throw new TypeError('fetch failed');
};

const hub = (id: string, revision = 'main'): ModelSource => ({ kind: 'hub', id, revision });

/** The fixture as the File objects of a picked folder named `name`. */
function pickedFiles(name: string, files = TINY): File[] {
  return [...files].map(([p, b]) => {
    const f = new File([b], p.split('/').pop()!);
    Object.defineProperty(f, 'webkitRelativePath', { value: `${name}/${p}` });
    return f;
  });
}

/** A FileSystemDirectoryHandle over the fixture (what showDirectoryPicker gives). */
function dirHandle(name: string, files: Map<string, Uint8Array<ArrayBuffer>>): FileSystemDirectoryHandle {
  const notFound = () => Object.assign(new Error(`not found`), { name: 'NotFoundError' });
  const dir = (prefix: string, dname: string): unknown => ({
    kind: 'directory',
    name: dname,
    async getDirectoryHandle(n: string) {
      if (![...files.keys()].some((p) => p.startsWith(`${prefix}${n}/`))) throw notFound();
      return dir(`${prefix}${n}/`, n);
    },
    async getFileHandle(n: string) {
      const b = files.get(`${prefix}${n}`);
      if (!b) throw notFound();
      return { kind: 'file', name: n, getFile: async () => new File([b], n) };
    },
  });
  return dir('', name) as FileSystemDirectoryHandle;
}

async function refusal(src: ModelSource, f: typeof fetch = hubFetch): Promise<string> {
  const e = await openModelSource(src, { fetch: f }).then(
    () => assert.fail('expected a refusal'),
    (err: Error) => err,
  );
  assert.ok(!e.message.includes('\n'), `not one line: ${e.message}`);
  assert.ok(!/\bat .*\.ts:\d+/.test(e.message), `a stack in the message: ${e.message}`);
  return e.message;
}

describe('model sources', () => {
  test('Hub ids as typed or copied', () => {
    assert.deepEqual(parseHubInput(' sentence-transformers/all-MiniLM-L6-v2 '), { id: 'sentence-transformers/all-MiniLM-L6-v2', revision: 'main' });
    assert.deepEqual(parseHubInput('BAAI/bge-small-en-v1.5@v1.0'), { id: 'BAAI/bge-small-en-v1.5', revision: 'v1.0' });
    assert.deepEqual(parseHubInput('https://huggingface.co/BAAI/bge-small-en-v1.5'), { id: 'BAAI/bge-small-en-v1.5', revision: 'main' });
    assert.deepEqual(parseHubInput('https://huggingface.co/BAAI/bge-small-en-v1.5/tree/refs/pr/3'), { id: 'BAAI/bge-small-en-v1.5', revision: 'refs/pr/3' });
    for (const bad of ['', 'minilm', 'a/b/c', '../x/y', 'a/b@']) assert.throws(() => parseHubInput(bad), ModelSourceError, bad);
  });

  test('one model from the Hub, a picked folder and a directory handle: same files, same identity', async () => {
    requests.length = 0;
    const fromHub = await openModelSource(hub('test-owner/tiny-bert'), { fetch: hubFetch });
    assert.equal(fromHub.name, 'test-owner/tiny-bert');
    assert.equal(fromHub.summary, 'test-owner/tiny-bert: bert, 2 layers, 32 dims');
    assert.ok(requests.every((r) => r.includes(`${FAKE_HUB}/test-owner/tiny-bert/resolve/main/`)), requests.join('\n'));
    // Small files are fetched once, the weights by range (never whole).
    const gets = requests.filter((r) => r.startsWith('GET') && !r.endsWith('.safetensors'));
    assert.equal(new Set(gets).size, gets.length, `a file fetched twice:\n${gets.join('\n')}`);
    const picked = await openModelSource({ kind: 'files', files: pickedFiles('tiny-bert') });
    assert.equal(picked.name, 'tiny-bert');
    const handle = await openModelSource({ kind: 'folder', handle: dirHandle('tiny-bert', TINY) });
    assert.equal(handle.name, 'tiny-bert');
    assert.match(fromHub.identity, /^[0-9a-f]{64}$/);
    assert.equal(picked.identity, fromHub.identity);
    assert.equal(handle.identity, fromHub.identity);
    for (const m of [picked, handle]) {
      assert.equal(await m.files.text('vocab.txt'), await fromHub.files.text('vocab.txt'));
      const [a, b] = [await m.files.file('model.safetensors'), await fromHub.files.file('model.safetensors')];
      assert.deepEqual(await a!.read(100, 164), await b!.read(100, 164));
    }
  });

  test('a fine-tune of the same layout has another identity', async () => {
    const base = await openModelSource(hub('test-owner/tiny-bert'), { fetch: hubFetch });
    const tuned = await openModelSource(hub('test-owner/tuned'), { fetch: hubFetch });
    assert.notEqual(tuned.identity, base.identity);
  });

  test('what the page cannot use is refused in one line', async () => {
    assert.equal(await refusal(hub('test-owner/nothing-here')), "test-owner/nothing-here: no such model on the Hub, or it is private or gated (HTTP 401 for config.json; the page sends no token)");
    assert.equal(await refusal(hub('test-owner/no-tokenizer')), "test-owner/no-tokenizer: tokenizer.json not found on the Hub at revision 'main' (the page needs the fast tokenizer's tokenizer.json)");
    assert.match(await refusal(hub('test-owner/no-weights')), /^test-owner\/no-weights: has neither model\.safetensors nor model\.safetensors\.index\.json/);
    assert.match(await refusal(hub('test-owner/llama')), /^test-owner\/llama\/config\.json: unsupported architecture 'llama' \(supported: .*bert/);
    assert.equal(await refusal(hub('test-owner/tiny-bert'), offline), 'test-owner/tiny-bert: cannot reach huggingface.co for config.json: no network, or the site is blocked here; pick a local folder instead');
    assert.equal(await refusal({ kind: 'files', files: pickedFiles('notes', new Map([['a.txt', new Uint8Array(1)]])) }), 'notes: config.json not found in the picked folder: not a Hugging Face model folder');
    assert.equal(await refusal({ kind: 'folder', handle: dirHandle('half', new Map([...TINY].filter(([p]) => p !== 'tokenizer.json'))) }), "half: tokenizer.json not found in the picked folder (the page needs the fast tokenizer's tokenizer.json)");
  });
});
