// Conformance cases for shaders/quantized.wgsl (through QuantizedIndex) against core/ref/quantized.ts.
//
// Exact cases. Integer passages (int8: values in [-127, 127] quantized with unit scales, so the
// codes are the values; binary: the signs of integers in [-3, 3]) and integer queries in [-3, 3]
// give integer scores below 2^24, exact in f32 whatever the order of the sums, so the GPU must
// return the reference's ids and scores exactly, tie order included. Shapes: dim not a multiple
// of 4 or 32 (padding words), n = 1, k > n, several chunks and blocks, many equal rows (ties
// across segments, blocks and chunks and at the k-th place).
// Random cases. Unit vectors quantized with their own scales; f32 sums against the float64
// reference, checked as the topk random cases are (test/cases/topk.ts topkChecks, scoreTol).
// Rescoring. QuantizedIndex.search with readRows over the full rows must equal rescoreRef over
// the reference's candidates (exact data), and with every row a candidate, exact top-k.

import type { Gpu } from '../../core/gpu/device.ts';
import type { TopkOptions } from '../../core/kernels/topk.ts';
import { quantTopkRef, rescoreRef } from '../../core/ref/quantized.ts';
import { topkRef } from '../../core/ref/topk.ts';
import { type QuantKind, absMax, int8Scales, quantizeBinary, quantizeInt8, quantWords } from '../../core/retrieval/quantize.ts';
import { QuantizedIndex } from '../../core/retrieval/quantize-search.ts';
import { scoreTol, topkChecks } from './topk.ts';
import type { Check, KernelCase } from './types.ts';
import { randu, rng } from './util.ts';

/** Integers in [-r, r]. */
function ints(n: number, seed: number, r: number): Float32Array {
  const g = rng(seed);
  return Float32Array.from({ length: n }, () => Math.floor(g() * (2 * r + 1)) - r);
}

function unitRows(n: number, H: number, seed: number): Float32Array {
  const x = randu(n * H, seed);
  for (let r = 0; r < n; r++) {
    let s = 0;
    for (let h = 0; h < H; h++) s += x[r * H + h] ** 2;
    const inv = 1 / Math.sqrt(s || 1);
    for (let h = 0; h < H; h++) x[r * H + h] *= inv;
  }
  return x;
}

interface Spec {
  kind: QuantKind;
  Q: number;
  N: number;
  H: number;
  k: number;
  /** 'ints' exact; 'copies' of `distinct` integer rows (ties); 'unit' random unit vectors. */
  data: 'ints' | 'copies' | 'unit';
  distinct?: number;
  chunkRows?: number;
  topk?: TopkOptions;
  /** Search with rescoring from the full rows, c = k x rescore. */
  rescore?: number;
}

function data(s: Spec, seed: number): { queries: Float32Array; full: Float32Array; scales: Float32Array; codes: Uint32Array } {
  const { N, H, Q } = s;
  const r = s.kind === 'int8' ? 127 : 3;
  const queries = s.data === 'unit' ? unitRows(Q, H, seed) : ints(Q * H, seed, 3);
  let full: Float32Array;
  if (s.data === 'unit') full = unitRows(N, H, seed + 1);
  else if (s.data === 'ints') full = ints(N * H, seed + 1, r);
  else {
    const base = ints((s.distinct ?? 3) * H, seed + 1, r);
    full = new Float32Array(N * H);
    const g = rng(seed + 2);
    for (let j = 0; j < N; j++) {
      const d = Math.floor(g() * (s.distinct ?? 3));
      full.set(base.subarray(d * H, (d + 1) * H), j * H);
    }
  }
  const scales = s.data === 'unit' ? int8Scales(absMax(full, H, new Float32Array(H))) : new Float32Array(H).fill(1);
  const codes = s.kind === 'int8' ? quantizeInt8(full, H, scales) : quantizeBinary(full, H);
  return { queries, full, scales, codes };
}

async function run(gpu: Gpu, s: Spec, seed: number): Promise<Check[]> {
  const { Q, N, H, k, kind } = s;
  const { queries, full, scales, codes } = data(s, seed);
  const W = quantWords(kind, H);
  // Pieces of uneven size, as shard files come.
  const cut = Math.max(1, Math.floor(N / 3));
  const pieces = [codes.subarray(0, cut * W), codes.subarray(cut * W)].filter((p) => p.length);
  const readRows = async (ids: Uint32Array) => {
    const out = new Float32Array(ids.length * H);
    ids.forEach((id, i) => out.set(full.subarray(id * H, (id + 1) * H), i * H));
    return out;
  };
  const idx = await QuantizedIndex.upload(gpu, kind, pieces, H, N, { scales, chunkRows: s.chunkRows, rescore: s.rescore, readRows: s.rescore ? readRows : undefined });
  try {
    const exact = s.data !== 'unit';
    if (!s.rescore) {
      const got = await idx.search(queries, k, s.topk);
      const ref = quantTopkRef(queries, codes, kind, Q, N, H, k, scales);
      return topkChecks(got, ref, Q, N, exact ? 0 : scoreTol(W * (kind === 'int8' ? 4 : 32), ref.absSum));
    }
    const c = idx.candidates(k);
    const got = await idx.search(queries, k, s.topk);
    const cand = quantTopkRef(queries, codes, kind, Q, N, H, c, scales);
    const want = c >= N ? topkRef(queries, full, Q, N, H, k) : rescoreRef(queries, full, H, cand.ids, Q, cand.k, k);
    return [
      { name: 'candidates', actual: [c], expected: [Math.min(N, Math.max(k, k * s.rescore))], tol: { atol: 0 } },
      { name: 'results per row', actual: [got.k], expected: [want.k], tol: { atol: 0 } },
      { name: 'rescored ids', actual: got.ids, expected: want.ids, tol: { atol: 0 } },
      { name: 'rescored scores', actual: got.scores, expected: want.scores, tol: { atol: exact ? 0 : 1e-6 } },
    ];
  } finally {
    idx.release();
  }
}

function label(s: Spec): string {
  const o = { chunkRows: s.chunkRows, rescore: s.rescore, ...s.topk };
  const opts = Object.entries(o).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
  const d = s.data === 'copies' ? `${s.distinct ?? 3} distinct rows` : s.data;
  return `${s.kind} Q=${s.Q} N=${s.N} H=${s.H} k=${s.k} ${d}${opts.length ? ' ' + opts.join(' ') : ''}`;
}

const specs: Spec[] = [];
for (const kind of ['int8', 'binary'] as const) {
  specs.push(
    { kind, Q: 2, N: 1, H: 5, k: 3, data: 'ints' }, // n = 1, k > n, dim not a multiple of 4
    { kind, Q: 3, N: 37, H: 7, k: 50, data: 'ints' }, // k > n: all 37 sorted
    // dim 37 (a part word), 3 chunks, blocks and segments that divide nothing
    { kind, Q: 5, N: 2051, H: 37, k: 33, data: 'ints', chunkRows: 700, topk: { block: 640, segment: 132 } },
    // heavy ties across segments, blocks, chunks and at the k-th place
    { kind, Q: 4, N: 1500, H: 33, k: 200, data: 'copies', distinct: 3, chunkRows: 600, topk: { block: 256, segment: 400 } },
    // query groups of 2 (a last group of 1)
    { kind, Q: 5, N: 900, H: 64, k: 20, data: 'ints', topk: { queryRows: 2, block: 256, segment: 128 } },
    { kind, Q: 3, N: 1200, H: 96, k: 40, data: 'unit' },
    // rescoring: candidates from the codes, exact scores from the full rows
    { kind, Q: 3, N: 800, H: 37, k: 25, data: 'ints', rescore: 4, chunkRows: 300 },
    { kind, Q: 4, N: 600, H: 10, k: 30, data: 'copies', distinct: 4, rescore: 3 }, // ties in both stages
    { kind, Q: 2, N: 40, H: 9, k: 12, data: 'ints', rescore: 10 }, // every row a candidate: exact top-k
    { kind, Q: 3, N: 700, H: 48, k: 16, data: 'unit', rescore: 8 },
    // more candidates than the sort holds (1,200 > TOPK_MAX_K): unsorted candidate lists
    { kind, Q: 3, N: 2500, H: 12, k: 150, data: 'ints', rescore: 8, chunkRows: 1000, topk: { block: 512 } },
  );
}

export const quantizedCases: KernelCase[] = specs.map((s, i) => ({ name: label(s), run: (gpu) => run(gpu, s, 4100 + 10 * i) }));
