// config.json parsing (BERT and GTE v1.5), the model-type registry, and embedding settings from
// sentence-transformers files / presets.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig, parseConfig, type EncoderConfig } from '../core/model/config.ts';
import { findPreset, resolveEmbeddingSettings } from '../core/model/presets.ts';
import { lookupModelType, supportedModelTypes } from '../core/model/registry.ts';
import { memoryModelFiles } from '../core/model/source.ts';
import { FieldError, Fields, isHubId } from '../core/util/fields.ts';
import { localModelFiles } from '../node/files.ts';

const FIXTURE = new URL('./fixtures/gte-dev/', import.meta.url).pathname;

/** bge-small-en-v1.5's config.json (BertModel, 384 wide). */
const BGE_SMALL = {
  architectures: ['BertModel'],
  attention_probs_dropout_prob: 0.1,
  classifier_dropout: null,
  hidden_act: 'gelu',
  hidden_dropout_prob: 0.1,
  hidden_size: 384,
  id2label: { '0': 'LABEL_0' },
  initializer_range: 0.02,
  intermediate_size: 1536,
  label2id: { LABEL_0: 0 },
  layer_norm_eps: 1e-12,
  max_position_embeddings: 512,
  model_type: 'bert',
  num_attention_heads: 12,
  num_hidden_layers: 12,
  pad_token_id: 0,
  position_embedding_type: 'absolute',
  torch_dtype: 'float32',
  type_vocab_size: 2,
  use_cache: true,
  vocab_size: 30522,
};

/** gte-large-en-v1.5's config.json fields that matter. */
const GTE_LARGE = {
  architectures: ['NewModel'],
  hidden_act: 'gelu',
  hidden_size: 1024,
  intermediate_size: 4096,
  layer_norm_eps: 1e-12,
  layer_norm_type: 'layer_norm',
  logn_attention_scale: false,
  max_position_embeddings: 8192,
  model_type: 'new',
  num_attention_heads: 16,
  num_hidden_layers: 24,
  pack_qkv: true,
  pad_token_id: 0,
  position_embedding_type: 'rope',
  rope_scaling: { factor: 2.0, type: 'ntk' },
  rope_theta: 160000,
  type_vocab_size: 2,
  unpad_inputs: true,
  use_memory_efficient_attention: true,
  vocab_size: 30528,
};

function expectConfigError(json: unknown, ...parts: string[]): void {
  assert.throws(
    () => parseConfig(json, 'models/x/config.json'),
    (e: Error) => {
      assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e.name}: ${e.message}`);
      assert.ok(!e.message.includes('\n'), 'one line');
      assert.ok(e.message.startsWith('models/x/config.json: '), `names the file: ${e.message}`);
      for (const p of parts) assert.ok(e.message.includes(p), `message lacks '${p}': ${e.message}`);
      if (process.env.AQA_TEST_VERBOSE) console.log(`  ${e.message}`);
      return true;
    },
  );
}

describe('config', () => {
  test('GTE fixture config.json', async () => {
    const cfg = await loadConfig(localModelFiles(FIXTURE));
    const want: EncoderConfig = {
      arch: 'gte',
      hiddenSize: 64,
      numLayers: 2,
      numHeads: 4,
      headDim: 16,
      intermediateSize: 128,
      vocabSize: 1000,
      maxPositions: 512,
      typeVocabSize: 2,
      layerNormEps: 1e-12,
      hiddenAct: 'gelu',
      positionEmbedding: 'rope',
      ropeTheta: 160000,
      ropeNtkFactor: 2,
      padTokenId: 0,
      hiddenDropout: 0,
    };
    assert.deepEqual(cfg, want);
  });

  test('BERT (bge-small-en-v1.5)', () => {
    assert.deepEqual(parseConfig(BGE_SMALL), {
      arch: 'bert',
      hiddenSize: 384,
      numLayers: 12,
      numHeads: 12,
      headDim: 32,
      intermediateSize: 1536,
      vocabSize: 30522,
      maxPositions: 512,
      typeVocabSize: 2,
      layerNormEps: 1e-12,
      hiddenAct: 'gelu',
      positionEmbedding: 'absolute',
      padTokenId: 0,
      hiddenDropout: 0.1,
    });
  });

  test('GTE large: NTK factor 2, theta 160000, head_dim 64', () => {
    const cfg = parseConfig(GTE_LARGE);
    assert.deepEqual([cfg.arch, cfg.headDim, cfg.ropeTheta, cfg.ropeNtkFactor, cfg.maxPositions], ['gte', 64, 160000, 2, 8192]);
  });

  test('Hugging Face class defaults for optional fields', () => {
    const { layer_norm_eps: _a, type_vocab_size: _b, pad_token_id: _c, hidden_act: _d, position_embedding_type: _e, hidden_dropout_prob: _j, ...bert } = BGE_SMALL;
    const b = parseConfig(bert);
    assert.deepEqual([b.layerNormEps, b.typeVocabSize, b.padTokenId, b.positionEmbedding, b.hiddenDropout], [1e-12, 2, 0, 'absolute', 0.1]);
    const { rope_scaling: _f, rope_theta: _g, type_vocab_size: _h, pad_token_id: _i, ...gte } = GTE_LARGE;
    const g = parseConfig(gte);
    // NewConfig: rope_theta 10000, no scaling (factor 1), type_vocab_size 1, pad_token_id unset.
    assert.deepEqual([g.ropeTheta, g.ropeNtkFactor, g.typeVocabSize, g.padTokenId], [10000, 1, 1, null]);
    assert.equal(parseConfig({ ...GTE_LARGE, type_vocab_size: 0 }).typeVocabSize, 0);
  });

  test('unsupported architectures list the supported ones', () => {
    expectConfigError({ ...BGE_SMALL, model_type: 'roberta' }, "unsupported architecture 'roberta' (supported: bert, new)");
    expectConfigError({ ...BGE_SMALL, model_type: 'gpt2' }, "unsupported architecture 'gpt2' (supported: bert, new)");
    expectConfigError({ hidden_size: 8 }, 'model_type is missing');
  });

  test('missing or ill-typed fields name the field', () => {
    const { hidden_size: _, ...noHidden } = BGE_SMALL;
    expectConfigError(noHidden, 'hidden_size is missing');
    expectConfigError({ ...BGE_SMALL, num_hidden_layers: '12' }, "num_hidden_layers is '12', expected an integer >= 1");
    expectConfigError({ ...BGE_SMALL, intermediate_size: 1.5 }, 'intermediate_size is 1.5');
    expectConfigError({ ...BGE_SMALL, layer_norm_eps: -1 }, 'layer_norm_eps is -1, expected a positive number');
    expectConfigError({ ...BGE_SMALL, num_attention_heads: 7 }, 'hidden_size 384 is not a multiple of num_attention_heads 7');
    expectConfigError({ ...BGE_SMALL, pad_token_id: 40000 }, 'pad_token_id 40000 is outside the vocabulary');
    expectConfigError({ ...BGE_SMALL, hidden_dropout_prob: 1 }, 'hidden_dropout_prob is 1, expected a probability in [0, 1)');
    expectConfigError({ ...BGE_SMALL, hidden_dropout_prob: '0.1' }, "hidden_dropout_prob is '0.1'");
    expectConfigError([1, 2], 'is an array, expected a JSON object');
  });

  test('numerics we do not implement are errors naming the value', () => {
    expectConfigError({ ...BGE_SMALL, hidden_act: 'gelu_new' }, "hidden_act 'gelu_new' is not supported");
    expectConfigError({ ...GTE_LARGE, hidden_act: 'relu' }, "hidden_act 'relu' is not supported");
    expectConfigError({ ...BGE_SMALL, position_embedding_type: 'relative_key' }, "position_embedding_type 'relative_key' is not supported for model_type 'bert'");
    expectConfigError({ ...GTE_LARGE, rope_scaling: { type: 'linear', factor: 2 } }, "rope_scaling.type 'linear' is not supported");
    expectConfigError({ ...GTE_LARGE, rope_scaling: { type: 'ntk', factor: 2, mixed_b: 0.5 } }, 'rope_scaling.mixed_b 0.5 is not supported');
    expectConfigError({ ...GTE_LARGE, rope_scaling: { type: 'ntk' } }, 'rope_scaling.factor is undefined, expected a positive number');
    expectConfigError({ ...GTE_LARGE, layer_norm_type: 'rms_norm' }, "layer_norm_type 'rms_norm' is not supported");
    expectConfigError({ ...GTE_LARGE, pack_qkv: false }, 'pack_qkv is false');
    expectConfigError({ ...GTE_LARGE, logn_attention_scale: true }, 'logn_attention_scale is true');
    expectConfigError({ ...BGE_SMALL, is_decoder: true }, 'is_decoder is true');
  });

  test('loadConfig: missing and invalid config.json name the file', async () => {
    await assert.rejects(loadConfig(memoryModelFiles('m', {})), /^ConfigError: m\/config\.json: not found/);
    await assert.rejects(loadConfig(memoryModelFiles('m', { 'config.json': '{"model_type": bert}' })), (e: Error) => /^m\/config\.json: not valid JSON \(/.test(e.message) && !e.message.includes('\n'));
  });

  test('registry', () => {
    assert.deepEqual(supportedModelTypes(), ['bert', 'new']);
    assert.equal(lookupModelType('new')?.family, 'gte');
    assert.equal(lookupModelType('bert')?.hfClass, 'BertModel');
    assert.equal(lookupModelType('roberta'), null);
  });
});

const ST = {
  transformer: { idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' },
  pooling: { idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling' },
  normalize: { idx: 2, name: '2', path: '2_Normalize', type: 'sentence_transformers.models.Normalize' },
};
const pool = (mode: 'cls_token' | 'mean_tokens' | 'max_tokens') =>
  JSON.stringify({
    word_embedding_dimension: 384,
    pooling_mode_cls_token: mode === 'cls_token',
    pooling_mode_mean_tokens: mode === 'mean_tokens',
    pooling_mode_max_tokens: mode === 'max_tokens',
    pooling_mode_mean_sqrt_len_tokens: false,
  });

describe('embedding settings', () => {
  test('all-MiniLM-L6-v2 layout: mean pooling, Normalize module, max_seq_length 256', async () => {
    const files = memoryModelFiles('minilm', {
      'config.json': JSON.stringify({ ...BGE_SMALL, num_hidden_layers: 6 }),
      'modules.json': JSON.stringify([ST.transformer, ST.pooling, ST.normalize]),
      '1_Pooling/config.json': pool('mean_tokens'),
      'sentence_bert_config.json': JSON.stringify({ max_seq_length: 256, do_lower_case: false }),
      'tokenizer_config.json': JSON.stringify({ model_max_length: 512 }),
    });
    const s = await resolveEmbeddingSettings(files, 'some/local-minilm');
    assert.deepEqual(s, {
      pooling: 'mean',
      normalize: true,
      queryPrefix: '',
      passagePrefix: '',
      maxLength: 256,
      source: 'sentence-transformers files (modules.json, 1_Pooling/config.json, sentence_bert_config.json)',
      warnings: [],
    });
  });

  test('prompts in config_sentence_transformers.json give the query prefix', async () => {
    const files = memoryModelFiles('arctic', {
      'config.json': JSON.stringify({ ...BGE_SMALL, hidden_size: 1024 }),
      'modules.json': JSON.stringify([ST.transformer, ST.pooling, ST.normalize]),
      '1_Pooling/config.json': pool('cls_token'),
      'config_sentence_transformers.json': JSON.stringify({ prompts: { query: 'Query: ', document: '' }, default_prompt_name: null }),
      'sentence_bert_config.json': JSON.stringify({ max_seq_length: 512 }),
    });
    const s = await resolveEmbeddingSettings(files, 'unknown/model');
    assert.deepEqual([s.pooling, s.normalize, s.queryPrefix, s.passagePrefix, s.maxLength], ['cls', true, 'Query: ', '', 512]);
    assert.deepEqual(s.warnings, []);
  });

  test('files without prompts keep the preset prefix (bge-small-en-v1.5)', async () => {
    const files = memoryModelFiles('bge', {
      'config.json': JSON.stringify(BGE_SMALL),
      'modules.json': JSON.stringify([ST.transformer, ST.pooling, ST.normalize]),
      '1_Pooling/config.json': pool('cls_token'),
      'config_sentence_transformers.json': JSON.stringify({ __version__: { sentence_transformers: '2.2.2' } }),
    });
    const s = await resolveEmbeddingSettings(files, '/home/u/.cache/aqa/models/BAAI--bge-small-en-v1.5/main');
    assert.equal(s.queryPrefix, 'Represent this sentence for searching relevant passages: ');
    assert.equal(s.maxLength, 512);
    assert.match(s.source, /sentence-transformers files .* \+ preset BAAI\/bge-small-en-v1\.5$/);
  });

  test('presets by Hub id when the folder has no sentence-transformers files', async () => {
    const empty = memoryModelFiles('x', { 'config.json': JSON.stringify(GTE_LARGE) });
    const gte = await resolveEmbeddingSettings(empty, 'Alibaba-NLP/gte-large-en-v1.5');
    assert.deepEqual(
      [gte.pooling, gte.normalize, gte.queryPrefix, gte.maxLength, gte.source, gte.warnings],
      ['cls', true, '', 8192, 'preset Alibaba-NLP/gte-large-en-v1.5', []],
    );
    const arctic = await resolveEmbeddingSettings(memoryModelFiles('y', { 'config.json': JSON.stringify(BGE_SMALL) }), 'snowflake/Snowflake-Arctic-Embed-L');
    assert.deepEqual([arctic.pooling, arctic.queryPrefix, arctic.maxLength], ['cls', 'Represent this sentence for searching relevant passages: ', 512]);
    const minilm = await resolveEmbeddingSettings(memoryModelFiles('z', {}), 'models/all-MiniLM-L6-v2');
    assert.deepEqual([minilm.pooling, minilm.normalize, minilm.maxLength], ['mean', true, 256]);
    assert.equal(findPreset('models--Alibaba-NLP--gte-base-en-v1.5')?.id, 'Alibaba-NLP/gte-base-en-v1.5');
    assert.equal(findPreset('my-gte-large-en-v1.5-finetune'), null);
  });

  test('unknown model: CLS + normalize with a warning; max length = min(config, tokenizer)', async () => {
    const s = await resolveEmbeddingSettings(localModelFiles(FIXTURE), 'gte-dev');
    assert.deepEqual([s.pooling, s.normalize, s.queryPrefix, s.maxLength, s.source], ['cls', true, '', 512, 'defaults']);
    assert.equal(s.warnings.length, 1);
    assert.match(s.warnings[0], /^gte-dev: no sentence-transformers files and not a known model .*; using CLS pooling \+ L2 normalization, no query prefix$/);
    // model_max_length int(1e30) means "unset" in transformers; the config's 512 wins.
    const t = await resolveEmbeddingSettings(
      memoryModelFiles('t', { 'config.json': JSON.stringify(BGE_SMALL), 'tokenizer_config.json': JSON.stringify({ model_max_length: 1e30 }) }),
      't',
    );
    assert.equal(t.maxLength, 512);
    const u = await resolveEmbeddingSettings(
      memoryModelFiles('u', { 'config.json': JSON.stringify(GTE_LARGE), 'tokenizer_config.json': JSON.stringify({ model_max_length: 1024 }) }),
      'u',
    );
    assert.equal(u.maxLength, 1024);
  });

  test('dot-product similarity without Normalize module: no normalization', async () => {
    const s = await resolveEmbeddingSettings(
      memoryModelFiles('d', {
        'modules.json': JSON.stringify([ST.transformer, ST.pooling]),
        '1_Pooling/config.json': pool('cls_token'),
        'config_sentence_transformers.json': JSON.stringify({ similarity_fn_name: 'dot' }),
      }),
      'd',
    );
    assert.equal(s.normalize, false);
    // No Normalize module and no similarity_fn_name: sentence-transformers ranks by cosine.
    const c = await resolveEmbeddingSettings(memoryModelFiles('c', { 'modules.json': JSON.stringify([ST.transformer, ST.pooling]), '1_Pooling/config.json': pool('cls_token') }), 'c');
    assert.equal(c.normalize, true);
  });

  test('BERT max length is capped at the position table', async () => {
    const s = await resolveEmbeddingSettings(
      memoryModelFiles('b', { 'config.json': JSON.stringify(BGE_SMALL), 'sentence_bert_config.json': JSON.stringify({ max_seq_length: 1024 }) }),
      'b',
    );
    assert.equal(s.maxLength, 512);
    assert.ok(s.warnings.some((w) => w.includes('capped at max_position_embeddings 512')));
  });

  test('unsupported pooling modes are errors naming the file', async () => {
    const files = memoryModelFiles('p', { 'modules.json': JSON.stringify([ST.transformer, ST.pooling]), '1_Pooling/config.json': pool('max_tokens') });
    await assert.rejects(resolveEmbeddingSettings(files, 'p'), /^Error: p\/1_Pooling\/config\.json: pooling_mode_max_tokens is not supported/);
    const custom = memoryModelFiles('q', {
      'modules.json': JSON.stringify([ST.transformer, { ...ST.pooling, path: 'pool' }]),
      'pool/config.json': pool('mean_tokens'),
    });
    assert.equal((await resolveEmbeddingSettings(custom, 'q')).pooling, 'mean');
  });
});

describe('the config-field reader (core/util/fields.ts)', () => {
  const throwsLine = (fn: () => unknown, want: string) =>
    assert.throws(fn, (e: Error) => {
      assert.ok(e instanceof FieldError, e.name);
      assert.equal(e.message, want);
      return true;
    });

  test('errors name the file and the full path of the field', () => {
    const cfg = { a: { b: [{ n: -1 }, { n: 'x' }], s: '', flag: 1 }, extra: 1 };
    const top = Fields.of('c.json', cfg);
    const a = top.object('a');
    const items = a.objects('b');
    throwsLine(() => items[0].number('n', 'nonNegInt'), 'c.json: a.b[0].n: must be an integer >= 0');
    throwsLine(() => items[1].number('n', 'positive'), 'c.json: a.b[1].n: must be a number > 0');
    throwsLine(() => a.string('s', undefined, { nonEmpty: true }), 'c.json: a.s: must be a non-empty string');
    throwsLine(() => a.string('missing'), 'c.json: a.missing: missing (must be a string)');
    throwsLine(() => a.bool('flag'), 'c.json: a.flag: must be true or false');
    throwsLine(() => a.oneOf('s', ['x', 'y'] as const), 'c.json: a.s: must be one of "x", "y"');
    throwsLine(() => top.object('nope'), 'c.json: nope: missing');
    throwsLine(() => Fields.of('c.json', cfg, '', {}, ['a']), 'c.json: extra: unknown field (known: a)');
    throwsLine(() => Fields.of('c.json', [1]), 'c.json: must be an object, got [1]');
    assert.equal(items[0].number('absent', 'posInt', 7), 7, 'absent fields take the default');
  });

  test("Hugging Face wording: 'field is value, expected rule', with the caller's error class", () => {
    const f = new Fields('config.json', { hidden_size: '8', eps: null }, '', { wording: 'is' });
    throwsLine(() => f.number('hidden_size', 'posInt'), "config.json: hidden_size is '8', expected an integer >= 1");
    throwsLine(() => f.number('layers', 'posInt'), 'config.json: layers is missing (expected an integer >= 1)');
    assert.equal(f.number('eps', 'positive', 1e-12, { nullIsAbsent: true }), 1e-12);
    // a config.json problem is a ConfigError (core/model/config.ts), a pipeline one is not
    assert.throws(() => parseConfig({ model_type: 'bert', hidden_size: '8' }, 'm/config.json'), (e: Error) => e instanceof ConfigError && e.name === 'ConfigError');
  });

  test('isHubId: owner/name only', () => {
    assert.ok(isHubId('sentence-transformers/all-MiniLM-L6-v2'));
    for (const s of ['a', 'a/b/c', '../x', 'a/..b', '.a/b', './models/x']) assert.ok(!isHubId(s), s);
  });
});
