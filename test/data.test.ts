// AQA data: readers and their one-line errors, the streaming corpus parser, cleaning (checked on
// the 2,919 real AQA questions), passages, training pairs and groups, results and submissions.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { checkPids, DataError, parseQuestions, validateQuestion } from '../core/data/aqa.ts';
import { CLEAN_ORIGINAL, cleanText, decodeEntities, queryText } from '../core/data/clean.ts';
import { CorpusParser, parseCorpus } from '../core/data/corpus.ts';
import { buildPassages, cutCodePoints, passageText } from '../core/data/passages.ts';
import { formatGroupLine, groupTexts, parseGroupLine, parsePairLine, formatPairLine, randomGroups, randomNegatives, rng, trainingPairs } from '../core/data/pairs.ts';
import { formatResultLine, formatSubmission, parseResultLine, parseSubmission, rankPids, topK } from '../core/retrieval/results.ts';
import { readCorpus, readGroups, readLines, readPassages, readQuestions, readResults, writeGroups, writeResults, writeSubmission } from '../node/data.ts';
import { tempDir } from './helpers.ts';

const FIX = 'test/fixtures/data';
const AQA = 'test/fixtures/aqa-questions/qa_valid_flag.txt';
const SCIFACT = '../shared/data/scifact-aqa/pid_to_title_abs.json';

// Removed after the test that made it (or, made after an await, after the file's tests).
function tmp(): string {
  return tempDir({ after }, 'data');
}

/** Runs `f`, expects a DataError whose message is one line and equals `msg`. */
async function throwsLine(f: () => unknown, msg: string | RegExp): Promise<void> {
  try {
    await f();
  } catch (e) {
    assert.ok(e instanceof DataError, `expected a DataError, got ${e}`);
    assert.ok(!e.message.includes('\n'), `not one line: ${e.message}`);
    if (typeof msg === 'string') assert.equal(e.message, msg);
    else assert.match(e.message, msg);
    return;
  }
  assert.fail(`expected an error matching ${msg}`);
}

// ---------------------------------------------------------------- questions

test('questions: valid file, blank line skipped, missing/null body -> "", CRLF, flag optional', async () => {
  const { questions, stats } = await readQuestions(`${FIX}/questions.jsonl`);
  assert.equal(questions.length, 5);
  assert.deepEqual(questions[0], { question: 'What is attention?', body: '<p>In a <b>transformer</b>, what does &quot;attention&quot; do?</p>', pids: ['p1', 'p2'], flag: 1 });
  assert.deepEqual(questions[2], { question: 'No flag, no body', body: '', pids: ['p4', 'p404'] });
  assert.deepEqual(questions[3], { question: 'Null body', body: '', pids: [] });
  assert.deepEqual(questions[4], { question: 'CRLF line', body: 'b', pids: ['p2'] });
  assert.deepEqual({ lines: stats.lines, records: stats.records, blank: stats.blank, skipped: stats.skipped }, { lines: 6, records: 5, blank: 1, skipped: 0 });
  // the same text through the browser-side parser gives the same records
  assert.deepEqual(parseQuestions(readFileSync(`${FIX}/questions.jsonl`, 'utf8'), 'q').questions, questions);
});

test('questions: each malformed line is a one-line file:line: field: what error', async () => {
  const f = `${FIX}/questions-bad.jsonl`;
  const lines = readFileSync(f, 'utf8').split('\n');
  // line number -> what follows `file:line: `
  const expected: [number, string | RegExp][] = [
    [2, 'question: missing'],
    [3, 'body: a number, not a string'],
    [4, 'pids: a string, not an array of strings'],
    [5, 'pids: element 1 is a number, not a string'],
    [6, 'flag: must be 0 or 1, got 2'],
    [7, /^not valid JSON \(Unterminated string in JSON at position \d+\)$/],
    [8, 'expected a JSON object, got an array'],
  ];
  for (const [n, what] of expected) {
    // a file holding just the good first line and line n, padded so n keeps its number
    const one = join(tmp(), 'one.jsonl');
    writeFileSync(one, lines.map((l, i) => (i === 0 || i === n - 1 ? l : '')).join('\n'));
    const prefix = `${one}:${n}: `;
    try {
      await readQuestions(one);
      assert.fail(`line ${n}: no error`);
    } catch (e) {
      assert.ok(e instanceof DataError && !e.message.includes('\n'), String(e));
      assert.ok(e.message.startsWith(prefix), e.message);
      const rest = e.message.slice(prefix.length);
      if (typeof what === 'string') assert.equal(rest, what);
      else assert.match(rest, what);
    }
  }
  // the first bad line stops a strict read
  await throwsLine(() => readQuestions(f), `${f}:2: question: missing`);
});

test('questions: skipBad skips and counts, keeping the first messages; requirePids/requireFlag', async () => {
  const f = `${FIX}/questions-bad.jsonl`;
  const { questions, stats } = await readQuestions(f, { skipBad: true });
  assert.deepEqual(
    questions.map((q) => q.question),
    ['fine', 'fine too'],
  );
  assert.equal(stats.skipped, 7);
  assert.equal(stats.records, 2);
  assert.equal(stats.messages.length, 7);
  assert.equal(stats.messages[0], `${f}:2: question: missing (skipped)`);
  assert.equal(validateQuestion({ question: 'q', body: '' }, { requirePids: true }), 'pids: missing (this file must list the gold paper ids)');
  assert.equal(validateQuestion({ question: 'q', pids: [] }, { requireFlag: true }), 'flag: missing (expected 0 or 1)');
  assert.equal(validateQuestion({ question: 'q', flag: '1' }), 'flag: must be 0 or 1, got "1"');
});

test('questions: invalid UTF-8 is replaced, counted and located; a 5 MB body spanning chunks reads back exactly', async () => {
  const d = tmp();
  const f = join(d, 'q.jsonl');
  const huge = 'é'.repeat(2_500_000) + '\u{1F600}'; // 5 MB of 2-byte chars: split across 1 MiB reads, mid-character
  writeFileSync(
    f,
    Buffer.concat([
      Buffer.from('{"question": "a", "body": "ok"}\n{"question": "b'),
      Buffer.from([0xff, 0xc3]), // an invalid byte, then a truncated 2-byte sequence
      Buffer.from('", "body": "x"}\n'),
      Buffer.from(JSON.stringify({ question: 'c', body: huge }) + '\n'),
      Buffer.from('{"question": "d", "body": "genuine \uFFFD is not damage"}'), // no final newline
    ]),
  );
  const { questions, stats } = await readQuestions(f);
  assert.equal(questions.length, 4);
  assert.equal(questions[1].question, 'b\uFFFD\uFFFD');
  assert.equal(questions[2].body, huge);
  assert.equal(questions[3].body, 'genuine \uFFFD is not damage');
  assert.equal(stats.invalidUtf8, 1);
  assert.deepEqual(stats.messages, [`${f}:2: invalid UTF-8 replaced with U+FFFD`]);
});

test('questions: line splitting over many 1 MiB chunks equals splitting the whole text; BOM dropped', async () => {
  const d = tmp();
  const f = join(d, 'many.jsonl');
  const r = rng(7);
  const lines: string[] = [];
  for (let i = 0; i < 3000; i++) lines.push(JSON.stringify({ question: `q${i}`, body: 'w'.repeat(Math.floor(r() * 3000)), pids: [`${i}`] }));
  writeFileSync(f, '\uFEFF' + lines.join('\n') + '\n');
  const got: string[] = [];
  for await (const l of readLines(f)) got.push(l.text);
  assert.deepEqual(got, lines);
});

test('questions: a missing file is a one-line error', async () => {
  await throwsLine(() => readQuestions(`${FIX}/nope.jsonl`), `${FIX}/nope.jsonl: cannot read (ENOENT)`);
});

test('checkPids: gold pids missing from the corpus are counted, never fatal', async () => {
  const { questions } = await readQuestions(`${FIX}/questions.jsonl`);
  const { papers } = await readCorpus(`${FIX}/corpus.json`);
  const r = checkPids(questions, (p) => papers.has(p), 'questions.jsonl');
  assert.deepEqual({ missing: r.missing, affected: r.questionsAffected, none: r.questionsWithoutKnown }, { missing: 1, affected: 1, none: 0 });
  assert.deepEqual(r.messages, ['questions.jsonl: question 3: pids: p404 not in the corpus']);
  const all = checkPids([{ question: 'x', body: '', pids: ['a', 'b'] }], () => false);
  assert.deepEqual({ missing: all.missing, none: all.questionsWithoutKnown }, { missing: 2, none: 1 });
});

// ---------------------------------------------------------------- corpus

test('corpus: duplicates keep the first entry; null/empty title and abstract; escapes; extra fields; counts', async () => {
  const { papers, stats } = await readCorpus(`${FIX}/corpus.json`);
  assert.deepEqual([...papers.keys()], ['p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7']);
  assert.equal(papers.get('p1')!.title, 'Attention is all you need'); // not the duplicate's
  assert.deepEqual(papers.get('p2'), { title: 'What is "attention"?', abstract: 'A tutorial.\nWith a newline, a tab\t, a backslash \\ and é.' });
  assert.deepEqual(papers.get('p3'), { title: '', abstract: 'An abstract without a title.' });
  assert.deepEqual(papers.get('p5'), { title: '', abstract: '' });
  assert.equal(papers.get('p7')!.title, 'Escaped key');
  assert.deepEqual(
    { entries: stats.entries, duplicates: stats.duplicates, noTitle: stats.noTitle, noAbstract: stats.noAbstract, empty: stats.empty },
    { entries: 7, duplicates: 1, noTitle: 2, noAbstract: 2, empty: 1 },
  );
  assert.ok(stats.messages.includes(`${FIX}/corpus.json:6: paper "p1": duplicate pid, the first entry is kept`), stats.messages.join('\n'));
  // Apart from the duplicate (JSON.parse keeps the last), the values are JSON.parse's.
  const ref = JSON.parse(readFileSync(`${FIX}/corpus.json`, 'utf8')) as Record<string, { title: string | null; abstract: string | null }>;
  for (const [pid, v] of Object.entries(ref)) if (pid !== 'p1') assert.deepEqual(papers.get(pid), { title: v.title ?? '', abstract: v.abstract ?? '' }, pid);
});

test('corpus: any chunking (1..64 chars, cut inside keys, strings and escapes) gives the same entries', () => {
  // the fixture (pretty-printed, a duplicate, \u escapes) plus entries dense in escapes
  const extra = Array.from({ length: 30 }, (_, i) => `"e\\"${i}": ${JSON.stringify({ title: `t\\"${i}\u00e9\u{1F600}`, abstract: '\\'.repeat(i % 4) + '"}{][,:' })}`);
  const text = readFileSync(`${FIX}/corpus.json`, 'utf8').replace(/\}\s*$/, `,\n${extra.join(',')}\n}`).replace(/\u00e9/g, '\\u00e9');
  const whole = parseCorpus(text, 'c');
  assert.equal(whole.papers.size, 37);
  const r = rng(3);
  for (let trial = 0; trial < 200; trial++) {
    const p = new CorpusParser('c');
    const got: [string, unknown][] = [];
    const max = trial < 20 ? 1 : 1 + Math.floor(r() * 64);
    for (let i = 0; i < text.length; ) {
      const n = 1 + Math.floor(r() * max);
      for (const e of p.push(text.slice(i, i + n))) got.push([e.pid, e.paper]);
      i += n;
    }
    p.end();
    assert.deepEqual(got, [...whole.papers], `trial ${trial}`);
    assert.deepEqual(p.stats, whole.stats);
  }
});

test('corpus: structural damage is a one-line error with the line; a bad entry is an error or skipped', async () => {
  await throwsLine(() => readCorpus(`${FIX}/corpus-truncated.json`), `${FIX}/corpus-truncated.json:2: input ended inside the object (last pid "p2"): truncated file?`);
  await throwsLine(() => readCorpus(`${FIX}/corpus-bad-entry.json`), `${FIX}/corpus-bad-entry.json:2: paper "p2": title: a number, not a string or null`);
  const { papers, stats } = await readCorpus(`${FIX}/corpus-bad-entry.json`, { skipBad: true });
  assert.deepEqual([...papers.keys()], ['p1', 'p3']);
  assert.equal(stats.skipped, 1);
  const cases: [string, string][] = [
    ['', 'c:1: empty input'],
    ['[]', "c:1: expected '{' (the corpus is one JSON object {pid: {title, abstract}}), got '['"],
    ['{"a" {"title": "t"}}', `c:1: expected ':' after pid "a", got '{'`],
    ['{"a": {"title": "t"},\n}', "c:2: trailing ',' before '}'"],
    ['{"a": {"title": "t"} "b": {}}', `c:1: expected ',' or '}' after the entry for pid "a", got '"'`],
    ['{"a": {"title": "t"}} x', "c:1: unexpected 'x' after the corpus object's closing '}'"],
    ['{"a": }', 'c:1: pid "a": missing value'],
    ['{"a": [1]}', 'c:1: paper "a": expected an object {title, abstract}, got an array'],
    ['{"a": nul}', 'c:1: paper "a": not valid JSON'],
    ['{"a": {"title": "t", "abstract": {"x": 1}}}', 'c:1: paper "a": abstract: an object, not a string or null'],
  ];
  for (const [text, msg] of cases) await throwsLine(() => parseCorpus(text, 'c'), msg.endsWith('not valid JSON') ? new RegExp(`^${msg} \\(`) : msg);
  assert.equal(parseCorpus('{}', 'c').papers.size, 0);
  assert.equal(parseCorpus(' \n{ "a" : { "title" : "t" , "abstract" : null } }\n', 'c').papers.get('a')!.title, 't');
});

test('corpus: invalid UTF-8 sequences are replaced and counted; genuine U+FFFD is not counted', async () => {
  const d = tmp();
  const f = join(d, 'c.json');
  // 1 MiB of padding first, so the bad bytes and a real U+FFFD sit across the 1 MiB read boundary
  const pad = 'a'.repeat((1 << 20) - 40);
  writeFileSync(
    f,
    Buffer.concat([
      Buffer.from(`{"p0": {"title": "pad", "abstract": "${pad}`),
      Buffer.from('"}, "p1": {"title": "bad '),
      Buffer.from([0xc0, 0xaf]), // overlong '/', two invalid bytes -> two U+FFFD
      Buffer.from('", "abstract": "real \uFFFD char"}}'),
    ]),
  );
  const { papers, stats } = await readCorpus(f);
  assert.equal(papers.get('p1')!.title, 'bad \uFFFD\uFFFD');
  assert.equal(papers.get('p1')!.abstract, 'real \uFFFD char');
  assert.equal(stats.invalidUtf8, 2);
  assert.equal(stats.withReplacement, 1);
  assert.ok(stats.messages.includes(`${f}: 2 invalid UTF-8 sequence(s) replaced with U+FFFD`));
});

test('corpus: the SciFact corpus streamed equals JSON.parse of the whole file', { skip: !existsSync(SCIFACT) && `${SCIFACT} not present` }, async () => {
  const { papers, stats } = await readCorpus(SCIFACT);
  const ref = JSON.parse(readFileSync(SCIFACT, 'utf8')) as Record<string, { title: string; abstract: string }>;
  assert.equal(papers.size, 5183);
  assert.equal(stats.entries, Object.keys(ref).length);
  for (const [pid, v] of Object.entries(ref)) assert.deepEqual(papers.get(pid), v, pid);
  const { passages } = await readPassages(SCIFACT);
  assert.equal(passages.pids.length, 5183);
  assert.equal(passages.texts[passages.index.get('4983')!], passageText(ref['4983']));
});

// ---------------------------------------------------------------- cleaning

test('clean: the original preset is exactly the original regexes (hash over all 2,919 real AQA queries)', () => {
  // Python: sha256('\n'.join(re.sub(r'http\S+|www.\S+', '', re.sub('<.*?>', '', q['question'] + ' ' + q['body']))
  //                          for q in questions).encode())
  const qs = readFileSync(AQA, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { question: string; body: string });
  assert.equal(qs.length, 2919);
  const joined = qs.map((q) => queryText(q, CLEAN_ORIGINAL)).join('\n');
  assert.equal(createHash('sha256').update(joined).digest('hex'), '63374d936f31fe737997fa3f3397dd718b2df3b1e64d41618c42a279394b03bd');
});

test('clean: on the real AQA questions, defaults leave no tags, encoded quotes, URLs or double spaces', () => {
  const qs = readFileSync(AQA, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { question: string; body: string });
  let decoded = 0;
  for (const [i, q] of qs.entries()) {
    const t = queryText(q);
    assert.ok(!/<\/?(p|code|pre|a|strong|em|li|ul|ol|br|blockquote)\b[^>]*>/.test(t), `question ${i}: tag left: ${t.slice(0, 200)}`);
    assert.ok(!/&(quot|#39|nbsp|amp|gt);/.test(t), `question ${i}: entity left`);
    assert.ok(!/https?:|www\./.test(t), `question ${i}: URL left`);
    assert.ok(!/\s\s/.test(t) && t === t.trim(), `question ${i}: whitespace`);
    if (queryText(q, CLEAN_ORIGINAL).includes('&')) decoded++;
  }
  assert.equal(decoded, 736, 'questions whose original-cleaned text still holds entities (770 raw, minus those only inside tags or URLs)');
  // hand-checked examples (question index in the file)
  assert.ok(queryText(qs[7]).startsWith("Why doesn't the human skin grow back")); // &#39;
  assert.ok(queryText(qs[182]).startsWith('Why not more TD(\u{1D706}) in actor-critic')); // &#120582;: astral
  assert.ok(queryText(qs[2450]).includes("I'm reading Grothendieck's Tōhoku paper")); // &#x14d;
  // code survives with its escaped '<' decoded: R's assignment arrow
  assert.ok(queryText(qs[2144]).includes('# just example data set.seed(1233) X <- scale(matrix(rnorm(30),ncol=3))[,]'));
  // a link's text survives, its URL does not, and '&lt;=' in prose decodes
  const t2783 = queryText(qs[2783]);
  assert.ok(t2783.includes('python code and I got this tutorial. On that tutorial'));
  assert.ok(t2783.includes('should be <= 1.'));
  // a URL as link text is removed, and `http\S+` takes the ')' after it too (as the original)
  assert.ok(queryText(qs[114]).includes('I read online ( that Monarch butterflies'));
  // the original keeps entities and glues blocks; defaults separate them
  assert.ok(queryText(qs[0], CLEAN_ORIGINAL).includes('(from this link)\n-0.5 * torch.sum'));
});

test('clean: each option on hand-written input', () => {
  const s = '<p>a&nbsp;&lt;b&gt;</p><p>see http://x.org/a?b=1&amp;c=2 and www.y.com.</p>\n<li>x &amp;amp; y&#x41;&#65;&#0;&bogus;</li>';
  assert.equal(cleanText(s, CLEAN_ORIGINAL), 'a&nbsp;&lt;b&gt;see  and \nx &amp;amp; y&#x41;&#65;&#0;&bogus;');
  assert.equal(cleanText(s), 'a <b> see and x &amp; yAA\uFFFD&bogus;');
  assert.equal(cleanText(s, { spaceBlocks: false }), 'a <b>see and x &amp; yAA\uFFFD&bogus;');
  assert.equal(cleanText(s, { stripTags: false, stripUrls: false, decodeEntities: false, normalizeSpace: false }), s);
  assert.equal(cleanText(s, { normalizeSpace: false, stripUrls: false }).slice(0, 12), ' a\u00a0<b>  see ');
  // a tag does not span lines (Python's '.' stops at \n), a '<' without '>' stays
  assert.equal(cleanText('x <a\nhref="y">z</a> 3 < 4', CLEAN_ORIGINAL), 'x <a\nhref="y">z 3 < 4');
  // 'www' needs any character and then at least one non-space; 'http' takes all to the next space
  // (expected strings in this test are Python's re.sub output on the same input)
  assert.equal(cleanText('wwwx www. wwwxy httpfoo,bar end', CLEAN_ORIGINAL), 'wwwx www.   end');
  assert.equal(decodeEntities('&amp;lt; &AElig; &#x1F600; &#xD800; &#1114112; &apos;'), '&lt; Æ \u{1F600} \uFFFD \uFFFD \'');
  assert.equal(queryText({ question: 'Q?', body: '' }), 'Q?');
  assert.equal(queryText({ question: 'Q?', body: '' }, CLEAN_ORIGINAL), 'Q? ');
});

// ---------------------------------------------------------------- passages

test('passages: title + ". " + abstract, no doubled mark, missing parts, 2,000 code point cut', async () => {
  assert.equal(passageText({ title: 'Deep nets', abstract: 'We show.' }), 'Deep nets. We show.');
  assert.equal(passageText({ title: 'Why deep nets?', abstract: 'We show.' }), 'Why deep nets? We show.');
  assert.equal(passageText({ title: 'Deep nets.', abstract: 'We show.' }), 'Deep nets. We show.');
  assert.equal(passageText({ title: null, abstract: 'We show.' }), 'We show.');
  assert.equal(passageText({ title: '  ', abstract: 'We show.' }), 'We show.');
  assert.equal(passageText({ title: 'Only a title', abstract: null }), 'Only a title');
  assert.equal(passageText({ title: null, abstract: null }), '');
  const long = 'x'.repeat(1999) + '\u{1F600}' + 'y'.repeat(10);
  assert.equal(passageText({ title: '', abstract: long }), 'x'.repeat(1999) + '\u{1F600}'); // 2,000 code points, 2,001 UTF-16 units
  assert.equal(passageText({ title: '', abstract: long }, { maxChars: 1999 }), 'x'.repeat(1999));
  assert.equal(passageText({ title: 'T', abstract: long }, { maxChars: Infinity }).length, 3 + long.length);
  assert.equal(cutCodePoints('ab\u{1F600}c', 3), 'ab\u{1F600}');
  const { papers } = await readCorpus(`${FIX}/corpus.json`);
  const p = buildPassages(papers);
  assert.deepEqual(p.texts.slice(0, 4), [
    'Attention is all you need. The dominant sequence transduction models are based on RNNs.',
    'What is "attention"? A tutorial.\nWith a newline, a tab\t, a backslash \\ and é.',
    'An abstract without a title.',
    'A title without an abstract',
  ]);
  assert.equal(p.index.get('p4'), 3);
});

// ---------------------------------------------------------------- pairs and groups

test('pairs: one per (question, distinct gold pid in the corpus); counts of what was dropped', async () => {
  const { questions } = await readQuestions(`${FIX}/questions.jsonl`);
  const { papers } = await readCorpus(`${FIX}/corpus.json`);
  questions[4].pids = ['p2', 'p2'];
  const { pairs, stats } = trainingPairs(questions, { has: (p) => papers.has(p) });
  assert.deepEqual(
    pairs.map((p) => `${p.question}:${p.pid}`),
    ['0:p1', '0:p2', '1:p3', '2:p4', '4:p2'],
  );
  assert.equal(pairs[0].query, 'What is attention? In a transformer, what does "attention" do?');
  assert.deepEqual(stats, { pairs: 5, noPids: 1, missingPids: 1, questionsDropped: 0, duplicatePids: 1 });
  for (const p of pairs) assert.deepEqual(parsePairLine(formatPairLine(p), 'x'), p);
});

test('negatives: seeded, distinct, never gold; the same seed gives the same groups', () => {
  const pool = Array.from({ length: 1000 }, (_, i) => `d${i}`);
  const gold = new Set(['d1', 'd2', 'd3']);
  const a = randomNegatives(pool, gold, 50, rng(5));
  assert.equal(a.length, 50);
  assert.equal(new Set(a).size, 50);
  assert.ok(a.every((p) => !gold.has(p)));
  assert.deepEqual(randomNegatives(pool, gold, 50, rng(5)), a);
  assert.notDeepEqual(randomNegatives(pool, gold, 50, rng(6)), a);
  // small pool: the shuffle branch returns every non-gold pid once
  const small = ['a', 'b', 'c', 'd', 'e'];
  assert.deepEqual(randomNegatives(small, new Set(['b']), 9, rng(1)).sort(), ['a', 'c', 'd', 'e']);
  // draws are spread: each of 997 candidates is drawn ~50 times in 50k single draws (5 sigma ~ 35)
  const counts = new Map<string, number>();
  const r = rng(9);
  for (let i = 0; i < 49_850; i++) for (const p of randomNegatives(pool, gold, 1, r)) counts.set(p, (counts.get(p) ?? 0) + 1);
  assert.equal(counts.size, 997);
  for (const c of counts.values()) assert.ok(c > 15 && c < 85, `count ${c}`);

  const pairs = [
    { query: 'q0', pid: 'd1', question: 0 },
    { query: 'q0', pid: 'd2', question: 0 },
    { query: 'q1', pid: 'd3', question: 1 },
  ];
  const perPair = randomGroups(pairs, pool, { negatives: 9, seed: 11 });
  assert.equal(perPair.length, 3);
  assert.deepEqual(perPair[0].pos, ['d1']);
  assert.ok(perPair[0].neg.every((p) => p !== 'd1' && p !== 'd2'), 'the other gold pid of the question is not a negative');
  assert.deepEqual(randomGroups(pairs, pool, { negatives: 9, seed: 11 }), perPair);
  const perQ = randomGroups(pairs, pool, { per: 'question', negatives: 4 });
  assert.deepEqual(
    perQ.map((g) => [g.query, g.pos, g.neg.length]),
    [
      ['q0', ['d1', 'd2'], 4],
      ['q1', ['d3'], 4],
    ],
  );
});

test('groups: FlagEmbedding JSONL written and read back; malformed lines are one-line errors', async () => {
  const texts = new Map([
    ['a', 'text a'],
    ['b', 'text b'],
    ['c', 'text "c"\nline 2'],
  ]);
  const g = groupTexts({ query: 'q', pos: ['a'], neg: ['b', 'c'] }, (p) => texts.get(p));
  assert.deepEqual(g, { query: 'q', pos: ['text a'], neg: ['text b', 'text "c"\nline 2'] });
  assert.equal(formatGroupLine(g), '{"query":"q","pos":["text a"],"neg":["text b","text \\"c\\"\\nline 2"]}');
  assert.throws(() => groupTexts({ query: 'q', pos: ['zz'], neg: [] }, (p) => texts.get(p)), /pid zz has no passage/);
  const d = tmp();
  const f = join(d, 'train.jsonl');
  await writeGroups(f, [g, { query: 'r', pos: ['x'], neg: [] }]);
  assert.deepEqual(await readGroups(f), [g, { query: 'r', pos: ['x'], neg: [] }]);
  assert.deepEqual(readdirSync(d), ['train.jsonl']);
  assert.deepEqual(parseGroupLine('{"query": "q", "pos": ["p"]}', 'f:1'), { query: 'q', pos: ['p'], neg: [] });
  await throwsLine(() => parseGroupLine('{"query": "q", "pos": []}', 'f:1'), 'f:1: pos: empty (a group needs a positive)');
  await throwsLine(() => parseGroupLine('{"query": "q", "pos": ["p"], "neg": [1]}', 'f:1'), 'f:1: neg: element 0 is a number, not a string');
  await throwsLine(() => parseGroupLine('{"pos": ["p"]}', 'f:2'), 'f:2: query: missing');
});

// ---------------------------------------------------------------- results and submission

test('results: top-k {pid: score} lines round-trip exact doubles; integer-like pids rank by score, not key order', async () => {
  const m = new Map<string, number>([
    ['200', 0.1],
    ['10', 0.9],
    ['abc', 0.5],
    ['3', 0.5],
    ['x', 1 / 3],
  ]);
  const line = formatResultLine(m, 4);
  assert.equal(line, '{"10":0.9,"3":0.5,"abc":0.5,"x":0.3333333333333333}'); // tie 0.5: "3" < "abc"
  const back = parseResultLine(line, 'r:1');
  assert.deepEqual(rankPids(back), ['10', '3', 'abc', 'x']);
  assert.equal(back.get('x'), 1 / 3);
  const d = tmp();
  const f = join(d, 'run.jsonl');
  await writeResults(f, [m, new Map()], 200);
  const read = await readResults(f);
  assert.deepEqual(read, [m, new Map()]);
  assert.deepEqual(readdirSync(d), ['run.jsonl']);
  await throwsLine(() => parseResultLine('{"a": "0.5"}', 'r:3'), 'r:3: a: score is a string, not a number');
  await throwsLine(() => parseResultLine('[1]', 'r:3'), 'r:3: expected an object {pid: score}, got an array');
  assert.throws(() => formatResultLine(new Map([['a', Infinity]])), /cannot be written as JSON/);
});

test('topK: heap selection equals a full sort, ties by pid', () => {
  const r = rng(2);
  const entries: [string, number][] = [];
  for (let i = 0; i < 5000; i++) entries.push([`p${Math.floor(r() * 1e6)}_${i}`, Math.floor(r() * 50) / 10]); // many ties
  const full = entries.slice().sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  for (const k of [1, 7, 200, 624, 625, 5000, 6000]) assert.deepEqual(topK(entries, k), full.slice(0, k), `k=${k}`);
  assert.deepEqual(topK(entries, 0), []);
});

test('submission: exactly 20 distinct pids per line, padded from a fallback, count checked', async () => {
  const many = Array.from({ length: 30 }, (_, i) => `p${i}`);
  const short = ['p5', 'p5', 'p6']; // a repeat, and only 2 distinct
  const { text, stats } = formatSubmission([many, short], { questions: 2, fallback: ['p6', 'f1', ...many] });
  const lines = text.trimEnd().split('\n');
  assert.equal(lines[0], many.slice(0, 20).join(','));
  assert.deepEqual(lines[1].split(',').slice(0, 4), ['p5', 'p6', 'f1', 'p0']);
  assert.deepEqual(stats, { padded: 1, repeats: 1 });
  assert.deepEqual(parseSubmission(text, 's'), lines.map((l) => l.split(',')));
  await throwsLine(() => formatSubmission([many, short], { questions: 2 }), 'submission line 2: only 2 distinct pids, the format needs exactly 20 (give a fallback list to pad from)');
  await throwsLine(() => formatSubmission([many, short], { questions: 2, fallback: ['f1'] }), 'submission line 2: only 3 distinct pids, the format needs exactly 20 (the fallback list ran out)');
  await throwsLine(() => formatSubmission([many], { questions: 2 }), "submission: 1 rankings for 2 questions (one line per question, in the question file's order)");
  await throwsLine(() => formatSubmission([['a,b', ...many]], { questions: 1 }), 'submission line 1: pid "a,b" cannot be written (empty, or holds \',\' or a line break)');
  await throwsLine(() => parseSubmission('a,b\n', 's'), 's:1: 2 pids, expected 20');
  const d = tmp();
  const f = join(d, 'sub.txt');
  await writeSubmission(f, [many], { questions: 1 });
  assert.equal(readFileSync(f, 'utf8'), `${many.slice(0, 20).join(',')}\n`);
});
