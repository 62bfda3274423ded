import assert from 'node:assert/strict';
import { test } from 'node:test';
import { attentionBackward, attentionForward } from '../core/kernels/attention.ts';
import { attentionCases } from './cases/attention.ts';
import { registerCases, registerF16RefusalTest, testGpu } from './helpers.ts';

registerCases('attention', attentionCases);
registerF16RefusalTest('attention', attentionCases);

test('attention: forward and backward refuse the same bad shapes with the same messages', async () => {
  const gpu = await testGpu();
  const t = (shape: number[], dtype: 'f32' | 'u32' = 'f32') => gpu.empty(shape, dtype);
  // B 2, L 5, heads 2, d 4: qkv [2, 5, 24], out [2, 5, 8], lse [2, 2, 5], mask [2, 5]
  const ok = { qkv: t([2, 5, 24]), out: t([2, 5, 8]), lse: t([2, 2, 5]), mask: t([2, 5], 'u32') };
  type Args = typeof ok & { heads: number };
  const launches: [string, (a: Args) => void][] = [
    ['attention', (a) => attentionForward(gpu, a.out, a.lse, a.qkv, a.mask, a.heads)],
    ['attention backward', (a) => attentionBackward(gpu, t([2, 5, 24]), t([2, 5, 8]), a.out, a.lse, a.qkv, a.mask, a.heads)],
  ];
  for (const [what, run] of launches) {
    const bad = (change: Partial<Args>, message: string) =>
      assert.throws(() => run({ ...ok, heads: 2, ...change }), (e: Error) => e.message.startsWith(`${what}: ${message}`), `${what}: ${message}`);
    bad({ qkv: t([10, 24]) }, 'qkv must be [B, L, 3H], got [10, 24]');
    bad({ heads: 5 }, 'qkv last dim 24 is not 3 * heads(5) * d');
    bad({ qkv: t([2, 5, 3 * 2 * 132]), heads: 2 }, 'head dim 132 is over the supported 128');
    bad({ out: t([2, 5, 9]) }, 'out: expected shape [2, 5, 8], got [2, 5, 9]');
    bad({ lse: t([2, 5]) }, 'lse: expected shape [2, 2, 5], got [2, 5]');
    bad({ mask: t([2, 5]) }, 'mask must be u32, got f32');
  }
  assert.throws(
    () => attentionBackward(gpu, t([2, 5, 24]), t([2, 5, 7]), ok.out, ok.lse, ok.qkv, ok.mask, 2),
    /^Error: attention backward: dout: expected shape \[2, 5, 8\], got \[2, 5, 7\]/,
  );
});

test('attention: f16 dtype rules: out, dout and dqkv follow qkv, lse f32', async () => {
  const gpu = await testGpu();
  const t = (shape: number[], dtype: 'f32' | 'f16' | 'u32' = 'f32') => gpu.empty(shape, dtype);
  const qkv = t([2, 5, 24], 'f16');
  const mask = t([2, 5], 'u32');
  const fwd = (out: ReturnType<typeof t>, lse: ReturnType<typeof t>, q = qkv) => () => attentionForward(gpu, out, lse, q, mask, 2);
  assert.throws(fwd(t([2, 5, 8]), t([2, 2, 5])), /^Error: attention: out is f32 but qkv is f16$/);
  assert.throws(fwd(t([2, 5, 8], 'f16'), t([2, 2, 5], 'f16')), /^Error: attention: lse must be f32, got f16$/);
  assert.throws(fwd(t([2, 5, 8], 'f16'), t([2, 2, 5]), t([2, 5, 24], 'u32')), /^Error: attention: qkv must be f32 or f16, got u32$/);
  assert.throws(fwd(t([2, 5, 8], 'f16'), t([2, 2, 5]), t([2, 5, 24])), /^Error: attention: out is f16 but qkv is f32$/);
  // backward: every activation-side tensor has qkv's dtype, lse stays f32
  type T = ReturnType<typeof t>;
  const bwd = (a: { dqkv?: T; dout?: T; out?: T; lse?: T; q?: T }) => () =>
    attentionBackward(gpu, a.dqkv ?? t([2, 5, 24], 'f16'), a.dout ?? t([2, 5, 8], 'f16'), a.out ?? t([2, 5, 8], 'f16'), a.lse ?? t([2, 2, 5]), a.q ?? qkv, mask, 2);
  assert.throws(bwd({ dqkv: t([2, 5, 24]) }), /^Error: attention backward: dqkv is f32 but qkv is f16$/);
  assert.throws(bwd({ dout: t([2, 5, 8]) }), /^Error: attention backward: dout is f32 but qkv is f16$/);
  assert.throws(bwd({ out: t([2, 5, 8]) }), /^Error: attention backward: out is f32 but qkv is f16$/);
  assert.throws(bwd({ lse: t([2, 2, 5], 'f16') }), /^Error: attention backward: lse must be f32, got f16$/);
  assert.throws(bwd({ q: t([2, 5, 24], 'u32') }), /^Error: attention backward: qkv must be f32 or f16, got u32$/);
  assert.throws(
    () => attentionBackward(gpu, t([2, 5, 24]), t([2, 5, 8], 'f16'), t([2, 5, 8]), t([2, 2, 5]), t([2, 5, 24]), mask, 2),
    /^Error: attention backward: dout is f16 but qkv is f32$/,
  );
});

