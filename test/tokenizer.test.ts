// Tokenizer parity with the Rust `tokenizers` crate (what transformers and sentence-transformers
// run). References were written by tools/make_goldens.py with the Python binding; the
// tokenizer files come from test/fixtures/tiny-bert/ (byte-for-byte all-MiniLM-L6-v2's), so
// no downloaded model is needed. Ids must match exactly: one differing id is a different input
// to the model.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseSafetensorsHeader, readTensorBytes } from '../core/model/safetensors.ts';
import type { Gpu } from '../core/gpu/device.ts';
import { loadEmbeddingModel } from '../core/retrieval/embed.ts';
import { bytesSource, memoryModelFiles } from '../core/model/source.ts';
import { EmbeddingTokenizer, toWellFormed } from '../core/model/tokenizer.ts';

const FIX = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
const readJson = (p: string): Record<string, unknown> => JSON.parse(readFileSync(join(FIX, p), 'utf8'));
const TOKENIZER_JSON = readJson('tiny-bert/tokenizer.json');
const TOKENIZER_CONFIG = readJson('tiny-bert/tokenizer_config.json');
const tok = EmbeddingTokenizer.fromJson(TOKENIZER_JSON, TOKENIZER_CONFIG);
const CLS = 101;
const SEP = 102;
const verbose = !!process.env.AQA_TEST_VERBOSE;

/** Integer tensors of a safetensors file as plain number arrays (U16, U32, I64). */
async function loadInts(path: string): Promise<{ get(name: string): number[]; metadata: Record<string, string> }> {
  const bytes = new Uint8Array(readFileSync(join(FIX, path)));
  const file = await parseSafetensorsHeader(bytesSource(path, bytes));
  const cache = new Map<string, number[]>();
  for (const name of file.tensors.keys()) {
    const { info, bytes: b } = await readTensorBytes(file, name);
    const buf = b.slice().buffer;
    if (info.dtype === 'U16') cache.set(name, Array.from(new Uint16Array(buf)));
    else if (info.dtype === 'U32') cache.set(name, Array.from(new Uint32Array(buf)));
    else if (info.dtype === 'I64') cache.set(name, Array.from(new BigInt64Array(buf), Number));
  }
  return {
    get(name) {
      const v = cache.get(name);
      if (!v) throw new Error(`${path}: no integer tensor ${name}`);
      return v;
    },
    metadata: file.metadata,
  };
}

/** Flat ids + offsets -> one array per text. */
function split(flat: number[], offsets: number[]): number[][] {
  return offsets.slice(0, -1).map((o, i) => flat.slice(o, offsets[i + 1]));
}

/** '' if equal, else where and how the first difference shows. */
function firstDiff(got: readonly number[], want: readonly number[]): string {
  const n = Math.min(got.length, want.length);
  let i = 0;
  while (i < n && got[i] === want[i]) i++;
  if (i === n && got.length === want.length) return '';
  const around = (a: readonly number[]) => `[${a.slice(Math.max(0, i - 2), i + 3).join(',')}]`;
  return `first difference at position ${i} (got ${around(got)}, want ${around(want)} from ${Math.max(0, i - 2)}; lengths ${got.length} vs ${want.length})`;
}

/** Collects every mismatch, fails once listing the first ten. */
function assertAllEqual(what: string, cases: { label: string; got: readonly number[]; want: readonly number[] }[]): void {
  const bad: string[] = [];
  for (const c of cases) {
    const d = firstDiff(c.got, c.want);
    if (d) bad.push(`${c.label}: ${d}`);
  }
  if (verbose) console.log(`  ${what}: ${cases.length - bad.length}/${cases.length} identical`);
  if (bad.length) assert.fail(`${what}: ${bad.length} of ${cases.length} differ\n  ${bad.slice(0, 10).join('\n  ')}`);
}

test('tokenizer: all 2,919 AQA questions (title, title + body) match the Rust tokenizer at 512 and untruncated', async () => {
  const ref = await loadInts('aqa-questions/reference-ids.safetensors');
  const qs = readFileSync(join(FIX, 'aqa-questions/qa_valid_flag.txt'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as { question: string; body: string });
  assert.equal(qs.length, 2919);
  for (const [tag, texts] of [
    ['title', qs.map((q) => q.question)],
    ['full', qs.map((q) => q.question + ' ' + q.body)],
  ] as const) {
    const want = split(ref.get(`${tag}.ids`), ref.get(`${tag}.offsets`));
    const wantLen = ref.get(`${tag}.untruncated_lengths`);
    assert.equal(want.length, qs.length);
    const t0 = performance.now();
    const got = texts.map((t) => tok.encode(t, 512));
    const t1 = performance.now();
    const lens = texts.map((t) => tok.tokenCount(t));
    const t2 = performance.now();
    if (verbose) console.log(`  ${tag}: encode@512 ${(t1 - t0).toFixed(0)} ms, untruncated ${(t2 - t1).toFixed(0)} ms`);
    assertAllEqual(`${tag} ids @512`, texts.map((_, i) => ({ label: `question ${i}`, got: got[i], want: want[i] })));
    assertAllEqual(`${tag} untruncated lengths`, [{ label: 'all questions (index = position)', got: lens, want: wantLen }]);
    // The reference really truncates: 515 bodies are longer than 512 tokens.
    if (tag === 'full') assert.equal(wantLen.filter((n) => n > 512).length, 515);
  }
});

test('tokenizer: MiniLM golden texts match sentence-transformers ids at 256 (and 128, and untruncated)', async () => {
  const ref = await loadInts('minilm/golden.safetensors');
  const texts = readFileSync(join(FIX, 'minilm/texts.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l)
    .map((l) => (JSON.parse(l) as { text: string }).text);
  const want256 = split(ref.get('ids_256'), ref.get('ids_256_offsets'));
  const wantLen = ref.get('untruncated_lengths');
  assert.equal(want256.length, texts.length);
  assertAllEqual('minilm ids @256', texts.map((t, i) => ({ label: `text ${i}`, got: tok.encode(t, 256), want: want256[i] })));
  // Truncation at 128 keeps the first 126 pieces of the 256 ids and re-appends [SEP].
  const want128 = want256.map((ids) => (ids.length <= 128 ? ids : [...ids.slice(0, 127), SEP]));
  assertAllEqual('minilm ids @128', texts.map((t, i) => ({ label: `text ${i}`, got: tok.encode(t, 128), want: want128[i] })));
  assertAllEqual('minilm untruncated lengths', [{ label: 'all texts', got: texts.map((t) => tok.tokenCount(t)), want: wantLen }]);
  assert.ok(wantLen.some((n) => n > 256) && wantLen.some((n) => n > 128 && n <= 256), 'fixture exercises both truncations');
});

/** FNV-1a 32 over ids as little-endian u32, as tools/make_goldens.py writes it. */
function fnv1a(ids: readonly number[]): number {
  let h = 0x811c9dc5;
  for (const v of ids) {
    for (let k = 0; k < 4; k++) {
      h ^= (v >>> (8 * k)) & 0xff;
      h = Math.imul(h, 0x01000193) >>> 0;
    }
  }
  return h >>> 0;
}

test('tokenizer: every Unicode code point tokenizes like the Rust tokenizer (4,352 block hashes)', () => {
  const { blocks } = readJson('minilm/unicode-blocks.json') as { blocks: [number, number][] };
  assert.equal(blocks.length, 0x110000 / 256);
  const bad: string[] = [];
  for (let blk = 0; blk < blocks.length; blk++) {
    const parts: string[] = [];
    for (let c = blk * 256; c < blk * 256 + 256; c++) {
      if (c >= 0xd800 && c <= 0xdfff) continue;
      const ch = String.fromCodePoint(c);
      parts.push(`x${ch}y ${ch} A${ch}${ch}`);
    }
    const ids = tok.pieces(parts.join(' '));
    const [n, h] = blocks[blk];
    if (ids.length !== n || fnv1a(ids) !== h) {
      const hex = (c: number) => c.toString(16).toUpperCase().padStart(4, '0');
      bad.push(`U+${hex(blk * 256)}..U+${hex(blk * 256 + 255)}: ${ids.length} ids (hash ${fnv1a(ids)}) vs ${n} (hash ${h})`);
    }
  }
  assert.deepEqual(bad, [], `blocks that differ (rerun the per-code-point probe in tools/make_goldens.py to find the characters):\n${bad.slice(0, 20).join('\n')}`);
});

test('tokenizer: tiny-bert golden inputs come out of encode (padded with 0, type ids all 0)', async () => {
  const ref = await loadInts('tiny-bert/golden.safetensors');
  const texts = JSON.parse(ref.metadata.texts) as string[];
  const rows = texts.map((t) => tok.encode(t, 16));
  assert.deepEqual(rows.map((r) => r.length), [12, 3, 16, 12]);
  const L = 16;
  assert.deepEqual(rows.flatMap((r) => [...r, ...new Array(L - r.length).fill(0)]), ref.get('input_ids'));
  assert.deepEqual(rows.flatMap((r) => [...new Array(r.length).fill(1), ...new Array(L - r.length).fill(0)]), ref.get('attention_mask'));
  // What the encoder is fed (typeIds null) is what the reference used.
  assert.deepEqual(ref.get('token_type_ids'), new Array(texts.length * L).fill(0));
});

test('tokenizer: edge cases (empty, whitespace, specials in text, lone surrogates, limits)', () => {
  assert.deepEqual(tok.encode('', 512), [CLS, SEP]);
  assert.deepEqual(tok.encode(' \n\t\u3000 ', 512), [CLS, SEP]);
  assert.deepEqual(tok.encode('\x00\x07\ufeff', 512), [CLS, SEP], 'control and format characters are dropped');
  // Special tokens typed in the text are matched on the raw text (case-sensitive), like HF.
  assert.deepEqual(tok.encode('a [SEP] b', 512), [CLS, 1037, SEP, 1038, SEP]);
  assert.deepEqual(tok.encode('[sep]', 512), [CLS, 1031, 19802, 1033, SEP]);
  // Σ lowercases to σ everywhere (the crate maps per character; JavaScript's toLowerCase would
  // give the final form ς at a word end, a different token).
  assert.deepEqual(tok.encode('ΟΔΟΣ', 512), [CLS, 1169, 29722, 29730, 29733, SEP]);
  // Lone surrogates become U+FFFD (what UTF-8 transport does), which clean_text drops.
  assert.equal(toWellFormed('a\ud800b\udc00c\ud83d\ude00'), 'a\ufffdb\ufffdc\ud83d\ude00');
  assert.deepEqual(tok.encode('x\ud800y', 512), tok.encode('x\ufffdy', 512));
  assert.deepEqual(tok.encode('x\ud800y', 512), tok.encode('xy', 512));
  assert.deepEqual(tok.encode('\udfff', 512), [CLS, SEP]);
  // Limits count the specials: exactly maxLength is kept whole, one more is cut.
  const words = Array.from({ length: 10 }, () => 'cat').join(' '); // 10 pieces
  assert.equal(tok.encode(words, 12).length, 12);
  assert.deepEqual(tok.encode(words, 12), [CLS, ...Array(10).fill(4937), SEP]);
  assert.deepEqual(tok.encode(words, 11), [CLS, ...Array(9).fill(4937), SEP]);
  assert.deepEqual(tok.encode(words, 2), [CLS, SEP]);
  assert.throws(() => tok.encode(words, 1), /maxLength must be an integer >= 2/);
  assert.throws(() => tok.encode(words, 12.5), /maxLength/);
  // A word over 100 characters is one [UNK]; 100 characters still splits into pieces.
  assert.deepEqual(tok.encode('a'.repeat(101), 512), [CLS, 100, SEP]);
  assert.ok(tok.encode('a'.repeat(100), 512).length > 3);
});

/** Deterministic pseudo-random text mixing words, punctuation, CJK, accents and control chars. */
function mixedText(chars: number, seed: number): string {
  const vocab = ['the', 'gradient', 'of', 'café', 'naïve', 'ΟΔΟΣ', '日本語', '😀', '(x)', 'a,b.', '\x07', 'https://x.org/a?b=1', 'O(n²)', '[SEP]', 'ﬁ'];
  const seps = [' ', ' ', ' ', '\n', '\t', '  ', '\u00a0', ''];
  let s = seed >>> 0;
  const r = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
  const out: string[] = [];
  let n = 0;
  while (n < chars) {
    const w = vocab[Math.floor(r() * vocab.length)] + seps[Math.floor(r() * seps.length)];
    out.push(w);
    n += w.length;
  }
  return out.join('');
}

test('tokenizer: cutting long texts before tokenizing is exact', () => {
  // Texts whose first 512 pieces need very different amounts of text: dense words, long runs
  // of dropped control characters or spaces (fewer pieces than characters), one huge word.
  const texts = [
    mixedText(50_000, 1),
    mixedText(50_000, 2),
    '\x07'.repeat(40_000) + ' ' + mixedText(20_000, 3),
    ' '.repeat(30_000) + mixedText(20_000, 4),
    'x'.repeat(30_000) + ' tail words here',
    'word '.repeat(600),
    '[SEP] '.repeat(600),
  ];
  for (const [i, t] of texts.entries()) {
    const full = tok.pieces(t);
    for (const max of [2, 3, 16, 128, 512, 100_000]) {
      const want = [CLS, ...full.slice(0, max - 2), SEP];
      const d = firstDiff(tok.encode(t, max), want);
      assert.equal(d, '', `text ${i} at ${max}: ${d}`);
    }
  }
});

test('tokenizer: 1 MB of text encodes in linear time', () => {
  const big = mixedText(1_000_000, 7);
  let t0 = performance.now();
  const ids = tok.encode(big, 512);
  const tCut = performance.now() - t0;
  t0 = performance.now();
  const n = tok.tokenCount(big);
  const tFull = performance.now() - t0;
  t0 = performance.now();
  const nTenth = tok.tokenCount(big.slice(0, 100_000));
  const tTenth = performance.now() - t0;
  if (verbose) console.log(`  1 MB: encode@512 ${tCut.toFixed(1)} ms, untruncated ${tFull.toFixed(0)} ms (${n} tokens); 100 KB ${tTenth.toFixed(0)} ms`);
  assert.equal(ids.length, 512);
  assert.ok(n > 200_000);
  assert.ok(nTenth > n / 12);
  // Generous bounds (CI machines are slow and shared): linear means ~10x the 100 KB time; a
  // quadratic step would be ~100x. The cut path only tokenizes a few KB.
  assert.ok(tFull < 30 * tTenth + 500, `1 MB took ${tFull.toFixed(0)} ms vs ${tTenth.toFixed(0)} ms for 100 KB`);
  assert.ok(tCut < 200, `encode(1 MB, 512) took ${tCut.toFixed(0)} ms`);
});

test('tokenizer: the template comes from the tokenizer files', () => {
  const withTemplate = (pp: unknown) => EmbeddingTokenizer.fromJson({ ...TOKENIZER_JSON, post_processor: pp }, TOKENIZER_CONFIG);
  // BertProcessing (older tokenizer.json files) gives the same ids.
  const bert = withTemplate({ type: 'BertProcessing', sep: ['[SEP]', 102], cls: ['[CLS]', 101] });
  assert.deepEqual(bert.encode('hello world', 512), tok.encode('hello world', 512));
  // A template with other specials and type ids is followed, and truncation counts them all.
  const tpl = withTemplate({
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { SpecialToken: { id: '[MASK]', type_id: 1 } }, { Sequence: { id: 'A', type_id: 1 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
    pair: [],
    special_tokens: { '[CLS]': { id: '[CLS]', ids: [101], tokens: ['[CLS]'] }, '[MASK]': { id: '[MASK]', ids: [103], tokens: ['[MASK]'] }, '[SEP]': { id: '[SEP]', ids: [102], tokens: ['[SEP]'] } },
  });
  assert.deepEqual(tpl.encode('a b c', 4), [101, 103, 1037, 102]);
  assert.deepEqual(tpl.encode('a b', 512), [101, 103, 1037, 1038, 102]);
  assert.throws(() => tpl.encode('a', 2), /maxLength must be an integer >= 3/);
  // No post-processor: no specials.
  assert.deepEqual(withTemplate(null).encode('a b c', 2), [1037, 1038]);
  assert.throws(() => withTemplate({ type: 'ByteLevel' }), /post_processor type "ByteLevel" is not supported/);
});

test('tokenizer: the fast BERT path and the library path give the same ids', () => {
  // An added token with rstrip set (none of the texts contains it) sends encoding through the
  // library's generic encode with the ported normalizer and pre-tokenizer.
  const added = (TOKENIZER_JSON.added_tokens as { content: string }[]).map((a) => (a.content === '[MASK]' ? { ...a, rstrip: true } : a));
  const generic = EmbeddingTokenizer.fromJson({ ...TOKENIZER_JSON, added_tokens: added }, TOKENIZER_CONFIG);
  const texts = readFileSync(join(FIX, 'minilm/texts.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l)
    .map((l) => (JSON.parse(l) as { text: string }).text)
    .filter((t) => !t.includes('[MASK]'));
  texts.push(mixedText(20_000, 11), mixedText(20_000, 12));
  assertAllEqual('fast vs library path', texts.map((t, i) => ({ label: `text ${i}`, got: tok.pieces(t), want: generic.pieces(t) })));
  assert.deepEqual(tok.encode(texts.at(-1)!, 64), generic.encode(texts.at(-1)!, 64));
});

test('a tokenizer.json of valid JSON but the wrong structure: one line naming the file', async () => {
  const config = readFileSync(join(FIX, 'tiny-bert/config.json'), 'utf8');
  const bad = [
    { model: { type: 'WordPiece', vocab: {} } }, // no decoder, post_processor, ...
    { ...TOKENIZER_JSON, post_processor: { type: 'TemplateProcessing', single: [] } },
  ];
  for (const tj of bad) {
    const files = memoryModelFiles('broken-model', { 'config.json': config, 'tokenizer.json': JSON.stringify(tj) });
    // The tokenizer is read before any weight, so no GPU is needed to reach the error.
    await assert.rejects(loadEmbeddingModel(null as unknown as Gpu, files, 'broken-model'), (e: Error) => {
      assert.match(e.message, /^broken-model\/tokenizer\.json: /);
      assert.ok(!e.message.includes('\n'), 'one line');
      if (verbose) console.log(`  ${e.message}`);
      return true;
    });
  }
});
