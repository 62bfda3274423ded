// Conformance cases for shaders/embedding.wgsl against core/ref/embedding.ts.
//
// Tolerance: exact (atol 0). The reference adds the same f32 values in the same order as the
// shader and Hugging Face ((word + token_type) + position), each add rounded to f32, so any
// difference is a wrong row, a wrong order or a missing term.

import type { Gpu } from '../../core/gpu/device.ts';
import type { Tensor } from '../../core/gpu/tensor.ts';
import { embeddingForward } from '../../core/kernels/embedding.ts';
import { embeddingRef } from '../../core/ref/embedding.ts';
import { nanTensor, withBindingLimit } from './elementwise.ts';
import type { Check, KernelCase } from './types.ts';
import { randu, rng } from './util.ts';

interface Spec {
  name: string;
  B: number;
  L: number;
  H: number;
  V: number;
  P?: number; // position table rows (none if undefined)
  T?: number; // token_type table rows (none if undefined)
  typeIds?: boolean; // pass tokenTypes ids
  badIds?: boolean; // include out-of-range ids (clamped by the shader)
  limit?: { bytes: number; dispatches: number };
}

function randIds(n: number, below: number, seed: number): Uint32Array {
  const r = rng(seed);
  return Uint32Array.from({ length: n }, () => Math.floor(r() * below));
}

async function runSpec(gpu: Gpu, s: Spec, seed: number): Promise<Check[]> {
  const { B, L, H, V } = s;
  const ids = randIds(B * L, V, seed);
  const typeIds = s.typeIds ? randIds(B * L, s.T ?? 2, seed + 1) : null;
  if (s.badIds) {
    ids.set([V, V + 100, 0xffffffff].slice(0, ids.length));
    if (typeIds && typeIds.length > 1) typeIds[1] = 7;
  }
  const word = randu(V * H, seed + 2);
  const pos = s.P ? randu(s.P * H, seed + 3) : null;
  const tt = s.T ? randu(s.T * H, seed + 4) : null;
  const owned: Tensor[] = [];
  const up = (d: Float32Array | Uint32Array, shape: number[]) => {
    const t = gpu.upload(d, shape);
    owned.push(t);
    return t;
  };
  const tIds = up(ids, [B, L]);
  const tTypeIds = typeIds ? up(typeIds, [B, L]) : null;
  const tWord = up(word, [V, H]);
  const tPos = pos ? up(pos, [s.P!, H]) : null;
  const tTt = tt ? up(tt, [s.T!, H]) : null;
  const out = nanTensor(gpu, [B, L, H]);
  owned.push(out);
  const { dispatches } = await withBindingLimit(gpu, s.limit?.bytes ?? gpu.limits.maxBinding, () =>
    embeddingForward(gpu, out, tIds, tTypeIds, tWord, tPos, tTt),
  );
  const actual = await gpu.readF32(out);
  for (const t of owned) t.release();
  const checks: Check[] = [{ name: 'out', actual, expected: embeddingRef(ids, typeIds, word, pos, tt, B, L, H), tol: { atol: 0 } }];
  // exact: the chunked path really split the batch
  if (s.limit) checks.push({ name: 'dispatches', actual: [dispatches], expected: [s.limit.dispatches], tol: { atol: 0 } });
  return checks;
}

const specs: Spec[] = [
  { name: 'word only, B=L=H=V=1', B: 1, L: 1, H: 1, V: 1 },
  { name: 'BERT: word + token_type[tt] + position', B: 2, L: 5, H: 7, V: 11, P: 8, T: 2, typeIds: true },
  { name: 'GTE: word + token_type row 0, no position', B: 3, L: 4, H: 129, V: 50, T: 2 },
  { name: 'tokenTypes ignored without a token_type table', B: 2, L: 3, H: 5, V: 9, P: 3, typeIds: true },
  { name: 'out-of-range ids and type ids are clamped', B: 2, L: 4, H: 6, V: 10, P: 4, T: 2, typeIds: true, badIds: true },
  // 9 rows of 2 KiB output + 64 B ids: chunks must be multiples of 4 rows (256 B of ids), so
  // 4 + 4 + 1 under 8 KiB
  { name: 'BERT chunked under an 8 KiB binding limit', B: 9, L: 16, H: 32, V: 50, P: 16, T: 2, typeIds: true, limit: { bytes: 8192, dispatches: 3 } },
  // GTE-large's real table (30528 x 1024 f32 = 125 MB, one binding) and 33 x 512 x 1024 outputs,
  // past 65535 workgroups of 256 (folded grid)
  { name: 'GTE-large table [30528, 1024], out [33, 512, 1024] (big grid)', B: 33, L: 512, H: 1024, V: 30528, T: 1 },
];

export const embeddingCases: KernelCase[] = specs.map((s, i) => ({
  name: s.name,
  run: (gpu: Gpu) => runSpec(gpu, s, 700 + 10 * i),
}));
