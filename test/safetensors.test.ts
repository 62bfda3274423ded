// safetensors reader/writer: the committed GTE fixture, dtype conversions, a writer round trip,
// and every malformed-file case, each written to a temp dir and read back through node/files.ts.

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  expectTensorShape,
  f16BitsToF32,
  f32ToF16Bits,
  parseSafetensorsHeader,
  readInt32Tensor,
  readInt64Tensor,
  readTensor,
  readTensorF16Bits,
  safetensorsLayout,
  SafetensorsError,
  serializeSafetensors,
  type SafetensorsFile,
} from '../core/model/safetensors.ts';
import { bytesSource } from '../core/model/source.ts';
import { fileSource, writeFileAtomic, writeSafetensorsFile } from '../node/files.ts';

const FIXTURE = new URL('./fixtures/gte-dev/', import.meta.url).pathname;

async function open(path: string): Promise<SafetensorsFile> {
  return parseSafetensorsHeader(await fileSource(path));
}

/** Run `fn`, expect a one-line SafetensorsError whose message contains every `parts`. */
async function expectError(fn: () => Promise<unknown>, ...parts: (string | RegExp)[]): Promise<SafetensorsError> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof SafetensorsError, `expected SafetensorsError, got ${(e as Error)?.name}: ${(e as Error)?.message}`);
    assert.ok(!e.message.includes('\n'), `message is not one line: ${JSON.stringify(e.message)}`);
    for (const p of parts) {
      if (typeof p === 'string') assert.ok(e.message.includes(p), `message lacks '${p}': ${e.message}`);
      else assert.match(e.message, p);
    }
    if (process.env.AQA_TEST_VERBOSE) console.log(`  ${e.message}`);
    return e;
  }
  assert.fail(`expected a SafetensorsError containing ${parts.join(' / ')}`);
}

describe('safetensors: fixture', () => {
  test('model.safetensors header: 26 tensors, offsets and metadata', async () => {
    const f = await open(join(FIXTURE, 'model.safetensors'));
    assert.equal(f.tensors.size, 26);
    assert.deepEqual(f.metadata, { format: 'pt' });
    assert.equal(f.headerLength, 2592);
    assert.equal(f.dataStart, 2600);
    const w = f.tensors.get('embeddings.word_embeddings.weight')!;
    assert.deepEqual([w.dtype, w.shape, w.start, w.end], ['F32', [1000, 64], 2600, 2600 + 256000]);
    assert.equal(f.tensors.get('encoder.layer.1.mlp_ln.bias')!.end, f.source.size);
  });

  test('readTensor values match the bytes Python reads (struct.unpack)', async () => {
    const f = await open(join(FIXTURE, 'model.safetensors'));
    const w = await readTensor(f, 'embeddings.word_embeddings.weight', { shape: [1000, 64] });
    assert.deepEqual(w.shape, [1000, 64]);
    // Exact f32 values: any offset error would change them.
    assert.deepEqual([...w.data.subarray(0, 3)], [-0.005585928447544575, -0.024829505011439323, 0.008153685368597507]);
    assert.equal(w.data[w.data.length - 1], -0.002288875635713339);
    const b = await readTensor(f, 'encoder.layer.1.mlp_ln.bias');
    assert.deepEqual([b.data[0], b.data[1], b.data[63]], [0.029208211228251457, -0.0660313218832016, 0.05553825572133064]);
    // float64 sum, as Python summed it: 12 significant digits is far below f32 element noise.
    assert.ok(Math.abs(b.data.reduce((s, x) => s + x, 0) - 0.649190692754928) < 1e-12);
  });

  test('golden.safetensors I64 inputs as Int32Array and BigInt64Array', async () => {
    const f = await open(join(FIXTURE, 'golden.safetensors'));
    const ids = await readInt32Tensor(f, 'input_ids', { shape: [3, 13] });
    // README: input_ids[:, 0] = 101 and padded positions are 0; real lengths 13, 9, 5.
    assert.deepEqual([ids.data[0], ids.data[13], ids.data[26]], [101, 101, 101]);
    assert.deepEqual([...ids.data.subarray(13, 26)], [101, 445, 859, 846, 631, 863, 674, 820, 815, 0, 0, 0, 0]);
    const mask = await readInt64Tensor(f, 'attention_mask');
    const lengths = [0, 1, 2].map((r) => mask.data.subarray(r * 13, r * 13 + 13).reduce((s, x) => s + Number(x), 0));
    assert.deepEqual(lengths, [13, 9, 5]);
    const loss = await readTensor(f, 'loss', { shape: [1] });
    assert.equal(loss.data[0], Math.fround(-3.628689765930176));
    assert.equal(f.metadata.generator, 'gen.py');
    await expectError(() => readTensor(f, 'input_ids'), 'input_ids', 'not a float type');
    await expectError(() => readInt32Tensor(f, 'loss'), 'loss', 'F32 is not I32 or I64');
  });
});

describe('safetensors: dtype conversion', () => {
  test('f16 bits -> f32 -> f16 bits is the identity for all 65536 halves (NaN stays NaN)', () => {
    for (let h = 0; h < 65536; h++) {
      const x = f16BitsToF32(h);
      const back = f32ToF16Bits(x);
      if (Number.isNaN(x)) assert.ok(Number.isNaN(f16BitsToF32(back)), `NaN ${h.toString(16)}`);
      else assert.equal(back, h, `half 0x${h.toString(16)} -> ${x} -> 0x${back.toString(16)}`);
    }
  });

  test('f32 -> f16 rounds to nearest even, overflows to inf, underflows through subnormals', () => {
    const cases: [number, number][] = [
      [1 + 2 ** -11, 0x3c00], // tie between 1 and 1+2^-10: even mantissa (1)
      [1 + 3 * 2 ** -11, 0x3c02], // tie between mantissas 1 and 2: even (2)
      [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the tie rounds up
      [65504, 0x7bff], // largest half
      [65519.99, 0x7bff], // below the 65520 midpoint
      [65520, 0x7c00], // midpoint, odd mantissa below: rounds to inf
      [-1e6, 0xfc00],
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -25, 0x0000], // tie with 0: even (0)
      [3 * 2 ** -25, 0x0002], // tie between 1 and 2 units: even (2)
      [2 ** -26, 0x0000],
      [-0, 0x8000],
      [2 ** -14 - 2 ** -25, 0x0400], // top subnormal tie rounds up into the normals (even)
    ];
    for (const [x, want] of cases) assert.equal(f32ToF16Bits(x), want, `${x}: got 0x${f32ToF16Bits(x).toString(16)}, want 0x${want.toString(16)}`);
  });

  test('F16, BF16 and F64 tensors read as f32; F32 read as f16 bits', async () => {
    const vals = [0, 1, -2, 0.5, 65504, 2 ** -24, Infinity, 1 / 3];
    const f16 = Uint16Array.from(vals, f32ToF16Bits);
    // bf16 = top 16 bits of the f32 (truncation; all values are exact in bf16 except 65504 and 1/3).
    const bf16 = Uint16Array.from(new Uint32Array(Float32Array.from(vals).buffer), (u) => u >>> 16);
    const bytes = serializeSafetensors({
      h: { dtype: 'F16', shape: [2, 4], data: f16 },
      b: { dtype: 'BF16', shape: [8], data: bf16 },
      d: { dtype: 'F64', shape: [8], data: Float64Array.from(vals) },
      s: { dtype: 'F32', shape: [8], data: Float32Array.from(vals) },
    });
    const f = await parseSafetensorsHeader(bytesSource('mem.safetensors', bytes));
    const h = await readTensor(f, 'h');
    assert.deepEqual(h.shape, [2, 4]);
    assert.deepEqual([...h.data], [0, 1, -2, 0.5, 65504, 2 ** -24, Infinity, f16BitsToF32(f32ToF16Bits(1 / 3))]);
    // 1/3 in half: 0x3555 = 0.333251953125 (error 8e-5 < half ulp 2^-12 at 0.33).
    assert.equal(h.data[7], 0.333251953125);
    const b = await readTensor(f, 'b');
    // 65504 = 0x477fe000 -> 0x477f = 65280, 1/3 = 0x3eaaaaab -> 0x3eaa = 0.33203125 (8 mantissa bits).
    assert.deepEqual([...b.data], [0, 1, -2, 0.5, 65280, 2 ** -24, Infinity, 0.33203125]);
    const d = await readTensor(f, 'd');
    assert.deepEqual([...d.data], vals.map(Math.fround));
    assert.deepEqual([...(await readTensorF16Bits(f, 'h')).data], [...f16]);
    assert.deepEqual([...(await readTensorF16Bits(f, 's')).data], [...f16]);
  });
});

describe('safetensors: writer', () => {
  test('round trip with metadata, mixed dtypes, aligned offsets, space padding', async () => {
    const tensors = {
      'a.weight': { dtype: 'F32' as const, shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6.5]) },
      mask: { dtype: 'U8' as const, shape: [3], data: Uint8Array.from([1, 0, 1]) },
      half: { dtype: 'F16' as const, shape: [1], data: Uint16Array.from([0x3c00]) },
      ids: { dtype: 'I64' as const, shape: [2], data: BigInt64Array.from([101n, -5n]) },
      i32: { dtype: 'I32' as const, shape: [2], data: Int32Array.from([7, -8]) },
      empty: { dtype: 'F32' as const, shape: [0, 4], data: new Float32Array(0) },
      scalar: { dtype: 'F32' as const, shape: [], data: Float32Array.from([42]) },
    };
    const bytes = serializeSafetensors(tensors, { format: 'pt', note: 'round trip' });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assert.equal(n % 8, 0, 'header padded to 8 bytes');
    const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    assert.match(headerText, /^\{.*\} *$/, 'JSON then spaces only');
    const f = await parseSafetensorsHeader(bytesSource('rt.safetensors', bytes));
    assert.deepEqual(f.metadata, { format: 'pt', note: 'round trip' });
    // Largest element size first: the I64 tensor leads, U8 comes last.
    assert.deepEqual([...f.tensors.keys()], ['ids', 'a.weight', 'i32', 'empty', 'scalar', 'half', 'mask']);
    for (const t of f.tensors.values()) {
      const size = { F32: 4, U8: 1, F16: 2, I64: 8, I32: 4 }[t.dtype as 'F32'];
      assert.equal(t.start % size, 0, `${t.name} naturally aligned`);
    }
    assert.deepEqual([...(await readTensor(f, 'a.weight')).data], [1, 2, 3, 4, 5, 6.5]);
    assert.deepEqual([...(await readInt64Tensor(f, 'ids')).data], [101n, -5n]);
    assert.deepEqual([...(await readInt32Tensor(f, 'ids')).data], [101, -5]);
    assert.deepEqual([...(await readInt32Tensor(f, 'i32')).data], [7, -8]);
    assert.deepEqual((await readTensor(f, 'empty')).shape, [0, 4]);
    assert.deepEqual([...(await readTensor(f, 'scalar')).data], [42]);
    assert.deepEqual([...(await readTensorF16Bits(f, 'half')).data], [0x3c00]);
  });

  test('re-serializing the fixture keeps every tensor bit-identical', async () => {
    const f = await open(join(FIXTURE, 'model.safetensors'));
    const out: Parameters<typeof serializeSafetensors>[0] = {};
    for (const [name, t] of f.tensors) out[name] = { dtype: 'F32', shape: t.shape, data: (await readTensor(f, name)).data };
    const g = await parseSafetensorsHeader(bytesSource('copy', serializeSafetensors(out, f.metadata)));
    assert.deepEqual([...g.tensors.keys()], [...f.tensors.keys()]);
    for (const name of f.tensors.keys()) assert.deepEqual((await readTensor(g, name)).data, (await readTensor(f, name)).data, name);
  });

  test('writer rejects data that does not match the shape', () => {
    assert.throws(
      () => safetensorsLayout({ w: { dtype: 'F32', shape: [2, 2], data: new Float32Array(3) } }),
      (e: Error) => e instanceof SafetensorsError && /tensor 'w': data has 12 bytes but shape \[2, 2\] of F32 needs 16/.test(e.message),
    );
  });
});

describe('safetensors: malformed files', () => {
  let dir = '';
  let model: Uint8Array;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'aqa-safetensors-'));
    model = new Uint8Array(await readFile(join(FIXTURE, 'model.safetensors')));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Write bytes to the temp dir and return the path. */
  const put = async (name: string, bytes: Uint8Array) => {
    const path = join(dir, name);
    await writeFile(path, bytes);
    return path;
  };
  /** A file with header `json` (string, written as is) and `dataBytes` zero bytes of data. */
  const withHeader = (json: string, dataBytes = 0) => {
    const h = new TextEncoder().encode(json);
    const out = new Uint8Array(8 + h.byteLength + dataBytes);
    new DataView(out.buffer).setBigUint64(0, BigInt(h.byteLength), true);
    out.set(h, 8);
    return out;
  };

  test('truncated download: header length past end of file', async () => {
    const path = await put('truncated.safetensors', model.subarray(0, 1000));
    await expectError(() => open(path), path, 'header length 2592 runs past the end of the file (1000 bytes');
  });

  test('file shorter than the 8-byte length', async () => {
    const path = await put('tiny.safetensors', model.subarray(0, 5));
    await expectError(() => open(path), path, '5 bytes is too small');
  });

  test('header is not valid JSON', async () => {
    const bad = model.slice();
    bad[8 + 100] = 0x7b; // '{' in the middle of a key: invalid JSON, length unchanged
    const path = await put('corrupt-json.safetensors', bad);
    await expectError(() => open(path), path, 'header is not valid JSON');
  });

  test('header is JSON but not an object', async () => {
    const path = await put('array.safetensors', withHeader('[1, 2]  '));
    await expectError(() => open(path), path, 'header is not a JSON object (got an array)');
  });

  test('unknown dtype names the tensor', async () => {
    const path = await put('dtype.safetensors', withHeader('{"w":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}}', 8));
    await expectError(() => open(path), path, "tensor 'w'", "unknown dtype 'F33'", 'known: BOOL');
  });

  test('data_offsets past end of file (data truncated)', async () => {
    const path = await put('short-data.safetensors', model.subarray(0, model.byteLength - 100));
    await expectError(() => open(path), path, "tensor 'encoder.layer.1.mlp_ln.bias'", 'run past the end of the data', 'truncated');
  });

  test('data_offsets inconsistent with shape * dtype size', async () => {
    const path = await put('size.safetensors', withHeader('{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}', 24));
    await expectError(() => open(path), path, "tensor 'w'", 'hold 20 bytes but shape [2, 3] of F32 needs 24');
  });

  test('bad shape and data_offsets types name the tensor', async () => {
    const p1 = await put('shape.safetensors', withHeader('{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}'));
    await expectError(() => open(p1), "tensor 'w'", 'shape [-1] is not a list of non-negative integers');
    const p2 = await put('offsets.safetensors', withHeader('{"w":{"dtype":"F32","shape":[1],"data_offsets":[4]}}', 4));
    await expectError(() => open(p2), "tensor 'w'", 'data_offsets [4] is not a pair');
  });

  test('missing tensor lists the closest names', async () => {
    const f = await open(join(FIXTURE, 'model.safetensors'));
    await expectError(
      () => readTensor(f, 'encoder.layer.0.attention.qkv.weight'),
      'model.safetensors',
      "tensor 'encoder.layer.0.attention.qkv.weight': missing (26 tensors in file; closest: 'encoder.layer.0.attention.qkv_proj.weight'",
    );
  });

  test('wrong shape names expected and actual', async () => {
    const f = await open(join(FIXTURE, 'model.safetensors'));
    assert.equal(expectTensorShape(f, 'encoder.layer.0.attention.o_proj.weight', [64, 64]).dtype, 'F32');
    await expectError(
      async () => expectTensorShape(f, 'encoder.layer.0.attention.qkv_proj.weight', [64, 192]),
      'model.safetensors',
      "tensor 'encoder.layer.0.attention.qkv_proj.weight': expected shape [64, 192], got [192, 64]",
    );
    await expectError(() => readTensor(f, 'embeddings.LayerNorm.weight', { shape: [65] }), 'expected shape [65], got [64]');
  });

  test('file changed after the header was read: short read is an error, not zeros', async () => {
    const path = await put('shrinks.safetensors', model);
    const f = await open(path);
    await writeFile(path, model.subarray(0, 3000));
    await expectError(() => readTensor(f, 'embeddings.word_embeddings.weight'), path, "tensor 'embeddings.word_embeddings.weight'", 'read failed');
  });

  test('writeSafetensorsFile streams an atomic file that reads back', async () => {
    const path = join(dir, 'written.safetensors');
    await writeFileAtomic(path, 'placeholder');
    await writeSafetensorsFile(path, { x: { dtype: 'F32', shape: [3], data: Float32Array.from([1, 2, 3]) } }, { format: 'pt' });
    const f = await open(path);
    assert.deepEqual([...(await readTensor(f, 'x')).data], [1, 2, 3]);
    assert.deepEqual(f.metadata, { format: 'pt' });
  });
});
