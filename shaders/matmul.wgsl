// Matrix multiply: out = alpha * op(a) @ op(b) (+ bias[N] on every row) (+ out if ACCUMULATE).
//
//   op(a) is [M, K]: a stored [M, K], or [K, M] with TRANS_A
//   op(b) is [K, N]: b stored [K, N], or [N, K] with TRANS_B
//   batch index = workgroup z; element strides between batch items are uniforms (0 = shared b).
//
// One entry point, `forward`, in four variants; core/kernels/matmul.ts picks one per adapter.
// Every invocation computes a TM x TN block of out; out-of-range rows and columns are clamped
// on load (reads stay in bounds, the results are dropped at the store), so the k loop has no
// branches.
//
// * register, looped (default variant; SUBGROUP: llvmpipe's default). Straight from global
//   memory, four k at a time, vec4 loads where the layout allows (VEC_A / VEC_B), no shared
//   memory: on CPU drivers a barrier ends a SIMD "fiber" and costs more than the reuse buys.
//   llvmpipe turns every storage load into a per-lane extract, bounds check and branch, so
//   loads per FMA set the speed; with SUBGROUP the TM rows of a, the same for the whole
//   subgroup, are loaded once (TM / SG rows per lane) and handed out by subgroupShuffle, a
//   register permute there: 2-3x faster (numbers in core/kernels/matmul.ts).
// * UNROLLED: a fixed 8x8 block as four mat4x4 accumulators, no loops over the tile, for
//   compilers that keep loop-indexed arrays in memory (SwiftShader: 10x faster than looped).
// * SHARED: classic shared-memory tiling for real GPUs. The workgroup stages a BM x BK tile of
//   op(a) and a BK x BN tile of op(b) in workgroup memory (zero-filled past the edges), then each
//   invocation accumulates TM x TN outputs strided by the workgroup size, so neighbouring
//   invocations read neighbouring shared words (no bank conflicts) and global loads coalesce.
//   BM = WG_Y*TM, BN = WG_X*TN; with 16x16 invocations, 4x4 each, BK 16: 2 * 16 * 64 * 4 B = 8 KiB
//   of the 16 KiB WebGPU guarantees.
// * BLOCK (with SHARED): 2D block tiling after the published GPU SGEMM designs (BLOCK_TILE_64 in
//   core/kernels/matmul-tiles.ts): op(a) staged transposed, [BK][BM], beside op(b) as [BK][BN],
//   both as vec4 words, so each k costs TM/4 + TN/4 vec4 reads of workgroup memory for TM*TN
//   FMAs; invocation (x, y) owns vec4 rows i*WG_Y + y and columns q*WG_X + x of the block. The
//   staging loads vec4s along the stored contiguous axis where VEC_A / VEC_B (that axis a
//   multiple of 4: a quad is wholly in or out of range), else four guarded scalars.
//
// Defines: WG_X, WG_Y, TM, TN (multiples of 4 outside SHARED and with BLOCK), SHARED + BK, BLOCK,
// SUBGROUP (WG_X is the subgroup size), UNROLLED (TM = TN = 8), TRANS_A, TRANS_B, VEC_A, VEC_B,
// BIAS, ACCUMULATE.
// F16: a and b hold f16 (storage type `act`; needs 'shader-f16'); every load converts to f32 and
// the sums and the epilogue are f32. bias and out hold f16 too (one rounding at the store), or,
// with OUT_F32 as well, f32 (storage type `out_t`): no rounding of the result, for the
// backward's parameter gradients (dW = X^T dY accumulated into an f32 gradient).
// Sizes are uniforms. The backward of a product needs no entry of its own: dA and dB are
// products too (core/kernels/matmul.ts shows the calls). The bias gradient is shaders/colsum.wgsl.

#if SUBGROUP
enable subgroups;
#endif
#float act
#if OUT_F32
alias out_t = f32;
#else
alias out_t = act;
#endif

struct Params {
  M: u32,
  N: u32,
  K: u32,
  strideA: u32, // elements between batch items of a
  strideB: u32, // 0 when every batch item shares b
  strideC: u32,
  alpha: f32,
  // TM and TN again, as run-time values: the epilogue loops use them as bounds so that the
  // driver cannot unroll them. Unrolled, each of the TM*TN store() copies (a bias load, an out
  // load and a store, each a per-lane branchy sequence on llvmpipe) made compiling 2-5x slower
  // (8x8 with bias and accumulate: 20 s -> 4 s).
  tm: u32,
  tn: u32,
}
@group(0) @binding(0) var<uniform> params: Params;

#if VEC_A
@group(0) @binding(2) var<storage, read> a: array<vec4<act>>;
#else
@group(0) @binding(2) var<storage, read> a: array<act>;
#endif
#if VEC_B
@group(0) @binding(3) var<storage, read> b: array<vec4<act>>;
#else
@group(0) @binding(3) var<storage, read> b: array<act>;
#endif
@group(0) @binding(1) var<storage, read_write> out: array<out_t>;
#if BIAS
@group(0) @binding(4) var<storage, read> bias: array<out_t>;
#endif

const TM = {{TM}}u;
const TN = {{TN}}u;

// Every read of a, b, bias and out goes through these conversions (f32(x) and vec4<f32>(v) are
// the identity when act is f32): the math below is f32 whatever the storage type.
#if VEC_A
fn a4(i: u32) -> vec4<f32> { return vec4<f32>(a[i]); } // vec4 i of a
#endif
#if VEC_B
fn b4(i: u32) -> vec4<f32> { return vec4<f32>(b[i]); }
#endif
// Scalar element e of a / b whatever the declared element type.
fn loadA(e: u32) -> f32 {
#if VEC_A
  return f32(a[e >> 2u][e & 3u]);
#else
  return f32(a[e]);
#endif
}
fn loadB(e: u32) -> f32 {
#if VEC_B
  return f32(b[e >> 2u][e & 3u]);
#else
  return f32(b[e]);
#endif
}

// out[c] = alpha * v (+ bias[n]) (+ out[c]) for one in-range element.
fn store(c: u32, n: u32, v: f32) {
  var r = params.alpha * v;
#if BIAS
  r += f32(bias[n]);
#endif
#if ACCUMULATE
  r += f32(out[c]);
#endif
  out[c] = out_t(r);
}

#if UNROLLED
// ---------------------------------------------------------------- unrolled 8x8 (no loops over the tile)
// For compilers that keep loop-indexed local arrays in memory (SwiftShader's Subzero: the
// looped 8x8 ran 6x slower than this on it). Four 4x4 blocks per invocation; a block of out is
// a mat4x4 whose column i is row i, so `acc += bw * aw` is 64 FMAs with no indexing:
//   aw[i] = op(a)[r+i, k .. k+3],  bw[kk] = op(b)[k+kk, c .. c+3],  (bw * aw)[i] = sum_kk bw[kk] * aw[i][kk].

// aw for rows r..r+3 (clamped to M-1), k..k+3 (all < K).
fn aBlock(base: u32, r: u32, k: u32) -> mat4x4<f32> {
  let M = params.M;
  let K = params.K;
#if TRANS_A
#if VEC_A
  let q = min(r >> 2u, (M >> 2u) - 1u); // M % 4 == 0, r % 4 == 0
  return transpose(mat4x4<f32>(a4(((base + k * M) >> 2u) + q), a4(((base + (k + 1u) * M) >> 2u) + q),
                               a4(((base + (k + 2u) * M) >> 2u) + q), a4(((base + (k + 3u) * M) >> 2u) + q)));
#else
  let r0 = min(r, M - 1u); let r1 = min(r + 1u, M - 1u); let r2 = min(r + 2u, M - 1u); let r3 = min(r + 3u, M - 1u);
  var t: mat4x4<f32>; // t[kk] = op(a)[r..r+3, k+kk]
  for (var kk = 0u; kk < 4u; kk++) {
    let e = base + (k + kk) * M;
    t[kk] = vec4<f32>(loadA(e + r0), loadA(e + r1), loadA(e + r2), loadA(e + r3));
  }
  return transpose(t);
#endif
#else
  let e0 = base + min(r, M - 1u) * K + k;
  let e1 = base + min(r + 1u, M - 1u) * K + k;
  let e2 = base + min(r + 2u, M - 1u) * K + k;
  let e3 = base + min(r + 3u, M - 1u) * K + k;
#if VEC_A
  return mat4x4<f32>(a4(e0 >> 2u), a4(e1 >> 2u), a4(e2 >> 2u), a4(e3 >> 2u));
#else
  return mat4x4<f32>(vec4<f32>(loadA(e0), loadA(e0 + 1u), loadA(e0 + 2u), loadA(e0 + 3u)), vec4<f32>(loadA(e1), loadA(e1 + 1u), loadA(e1 + 2u), loadA(e1 + 3u)),
                     vec4<f32>(loadA(e2), loadA(e2 + 1u), loadA(e2 + 2u), loadA(e2 + 3u)), vec4<f32>(loadA(e3), loadA(e3 + 1u), loadA(e3 + 2u), loadA(e3 + 3u)));
#endif
#endif
}

// bw for k..k+3 (all < K), columns c..c+3 (clamped to N-1).
fn bBlock(base: u32, k: u32, c: u32) -> mat4x4<f32> {
  let N = params.N;
  let K = params.K;
#if TRANS_B
  let e0 = base + min(c, N - 1u) * K + k;
  let e1 = base + min(c + 1u, N - 1u) * K + k;
  let e2 = base + min(c + 2u, N - 1u) * K + k;
  let e3 = base + min(c + 3u, N - 1u) * K + k;
#if VEC_B
  return transpose(mat4x4<f32>(b4(e0 >> 2u), b4(e1 >> 2u), b4(e2 >> 2u), b4(e3 >> 2u)));
#else
  return transpose(mat4x4<f32>(vec4<f32>(loadB(e0), loadB(e0 + 1u), loadB(e0 + 2u), loadB(e0 + 3u)), vec4<f32>(loadB(e1), loadB(e1 + 1u), loadB(e1 + 2u), loadB(e1 + 3u)),
                               vec4<f32>(loadB(e2), loadB(e2 + 1u), loadB(e2 + 2u), loadB(e2 + 3u)), vec4<f32>(loadB(e3), loadB(e3 + 1u), loadB(e3 + 2u), loadB(e3 + 3u))));
#endif
#else
#if VEC_B
  let q = min(c >> 2u, (N >> 2u) - 1u); // N % 4 == 0, c % 4 == 0
  return mat4x4<f32>(b4(((base + k * N) >> 2u) + q), b4(((base + (k + 1u) * N) >> 2u) + q),
                     b4(((base + (k + 2u) * N) >> 2u) + q), b4(((base + (k + 3u) * N) >> 2u) + q));
#else
  let c0 = min(c, N - 1u); let c1 = min(c + 1u, N - 1u); let c2 = min(c + 2u, N - 1u); let c3 = min(c + 3u, N - 1u);
  var t: mat4x4<f32>;
  for (var kk = 0u; kk < 4u; kk++) {
    let e = base + (k + kk) * N;
    t[kk] = vec4<f32>(loadB(e + c0), loadB(e + c1), loadB(e + c2), loadB(e + c3));
  }
  return t;
#endif
#endif
}

// op(a)[r..r+3, k] and op(b)[k, c..c+3] for one leftover k (K % 4).
fn aCol(base: u32, r: u32, k: u32) -> vec4<f32> {
  let M = params.M;
  let K = params.K;
#if TRANS_A
  let e = base + k * M;
  return vec4<f32>(loadA(e + min(r, M - 1u)), loadA(e + min(r + 1u, M - 1u)), loadA(e + min(r + 2u, M - 1u)), loadA(e + min(r + 3u, M - 1u)));
#else
  return vec4<f32>(loadA(base + min(r, M - 1u) * K + k), loadA(base + min(r + 1u, M - 1u) * K + k),
                   loadA(base + min(r + 2u, M - 1u) * K + k), loadA(base + min(r + 3u, M - 1u) * K + k));
#endif
}
fn bRow(base: u32, k: u32, c: u32) -> vec4<f32> {
  let N = params.N;
  let K = params.K;
#if TRANS_B
  return vec4<f32>(loadB(base + min(c, N - 1u) * K + k), loadB(base + min(c + 1u, N - 1u) * K + k),
                   loadB(base + min(c + 2u, N - 1u) * K + k), loadB(base + min(c + 3u, N - 1u) * K + k));
#else
  let e = base + k * N;
  return vec4<f32>(loadB(e + min(c, N - 1u)), loadB(e + min(c + 1u, N - 1u)), loadB(e + min(c + 2u, N - 1u)), loadB(e + min(c + 3u, N - 1u)));
#endif
}

// outer(av, bv)[i] = bv * av[i]: the rank-1 update of one leftover k.
fn outer4(av: vec4<f32>, bv: vec4<f32>) -> mat4x4<f32> {
  return mat4x4<f32>(bv * av.x, bv * av.y, bv * av.z, bv * av.w);
}


@compute @workgroup_size({{WG_X}}, {{WG_Y}}, 1)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let K = params.K;
  let m0 = (wid.y * {{WG_Y}}u + lid.y) * 8u;
  let n0 = (wid.x * {{WG_X}}u + lid.x) * 8u;
  // No early return for invocations past the edge: their loads are clamped and stores guarded,
  // and llvmpipe compiles code after a divergent return with per-lane mask tests on every load.
  let aBase = wid.z * params.strideA;
  let bBase = wid.z * params.strideB;
  var acc00 = mat4x4<f32>(); // rows m0..m0+3, columns n0..n0+3
  var acc01 = mat4x4<f32>(); // rows m0..m0+3, columns n0+4..n0+7
  var acc10 = mat4x4<f32>();
  var acc11 = mat4x4<f32>();
  var k = 0u;
  for (; k + 4u <= K; k += 4u) {
    let a0 = aBlock(aBase, m0, k);
    let a1 = aBlock(aBase, m0 + 4u, k);
    let b0 = bBlock(bBase, k, n0);
    let b1 = bBlock(bBase, k, n0 + 4u);
    acc00 += b0 * a0;
    acc01 += b1 * a0;
    acc10 += b0 * a1;
    acc11 += b1 * a1;
  }
  for (; k < K; k++) {
    let a0 = aCol(aBase, m0, k);
    let a1 = aCol(aBase, m0 + 4u, k);
    let b0 = bRow(bBase, k, n0);
    let b1 = bRow(bBase, k, n0 + 4u);
    acc00 += outer4(a0, b0);
    acc01 += outer4(a0, b1);
    acc10 += outer4(a1, b0);
    acc11 += outer4(a1, b1);
  }
  // Dynamically indexed copy: indexing the accumulators themselves would move them to memory.
  var res = array<mat4x4<f32>, 4>(acc00, acc01, acc10, acc11);
  let cBase = wid.z * params.strideC;
  let rows = min(params.tm, params.M - min(m0, params.M));
  let cols = min(params.tn, params.N - min(n0, params.N));
  for (var i = 0u; i < rows; i++) {
    for (var j = 0u; j < cols; j++) {
      let n = n0 + j;
      store(cBase + (m0 + i) * params.N + n, n, res[(i >> 2u) * 2u + (j >> 2u)][i & 3u][j & 3u]);
    }
  }
}
#elif BLOCK
// ---------------------------------------------------------------- 2D block tiling (GPU-class)
const BM4 = {{WG_Y}}u * TM / 4u; // vec4 words across a staged row of op(a)
const BN4 = {{WG_X}}u * TN / 4u;
const TN4 = TN / 4u;
const BK = {{BK}}u;
const BK4 = BK / 4u;
const THREADS = {{WG_X}}u * {{WG_Y}}u;
var<workgroup> tileA: array<vec4<f32>, BK * BM4>; // op(a)[m, k] at [k * BM4 + m / 4][m % 4]
var<workgroup> tileB: array<vec4<f32>, BK * BN4>; // op(b)[k, n] at [k * BN4 + n / 4][n % 4]

// Stored elements e .. e+3 of a (b): the first `valid` (0 or 4 with VEC_A, e % 4 == 0 then),
// the rest 0.
#if VEC_A
fn quadA(e: u32, valid: u32) -> vec4<f32> { if (valid > 0u) { return a4(e >> 2u); } return vec4<f32>(); }
#else
fn quadA(e: u32, valid: u32) -> vec4<f32> { var v = vec4<f32>(); for (var c = 0u; c < valid; c++) { v[c] = loadA(e + c); } return v; }
#endif
#if VEC_B
fn quadB(e: u32, valid: u32) -> vec4<f32> { if (valid > 0u) { return b4(e >> 2u); } return vec4<f32>(); }
#else
fn quadB(e: u32, valid: u32) -> vec4<f32> { var v = vec4<f32>(); for (var c = 0u; c < valid; c++) { v[c] = loadB(e + c); } return v; }
#endif
// How many of the four elements from i on are below n; 0 when the quad's row is out (!ok).
fn inRange(ok: bool, i: u32, n: u32) -> u32 { return select(0u, min(4u, n - min(i, n)), ok); }

@compute @workgroup_size({{WG_X}}, {{WG_Y}}, 1)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u,
           @builtin(local_invocation_index) li: u32) {
  let M = params.M; let N = params.N; let K = params.K;
  let wm = wid.y * BM4 * 4u; let wn = wid.x * BN4 * 4u;
  let aBase = wid.z * params.strideA; let bBase = wid.z * params.strideB;
  var acc: array<vec4<f32>, TM * TN4>; // acc[i * TN4 + q]: row i, vec4 column q of this invocation
  for (var k0 = 0u; k0 < K; k0 += BK) {
    for (var t = li; t < BK * BM4; t += THREADS) {
#if TRANS_A
      let gk = k0 + t / BM4; // a stored [K, M]: a quad along m is one staged word
      let gm = wm + (t % BM4) * 4u;
      tileA[t] = quadA(aBase + gk * M + gm, inRange(gk < K, gm, M));
#else
      let m = t / BK4; // a stored [M, K]: a quad along k goes to four staged rows
      let kk = (t % BK4) * 4u;
      let v = quadA(aBase + (wm + m) * K + k0 + kk, inRange(wm + m < M, k0 + kk, K));
      for (var c = 0u; c < 4u; c++) { tileA[(kk + c) * BM4 + m / 4u][m % 4u] = v[c]; }
#endif
    }
    for (var t = li; t < BK * BN4; t += THREADS) {
#if TRANS_B
      let n = t / BK4; // b stored [N, K]: along k, to four staged rows
      let kk = (t % BK4) * 4u;
      let v = quadB(bBase + (wn + n) * K + k0 + kk, inRange(wn + n < N, k0 + kk, K));
      for (var c = 0u; c < 4u; c++) { tileB[(kk + c) * BN4 + n / 4u][n % 4u] = v[c]; }
#else
      let gk = k0 + t / BN4; // b stored [K, N]: along n, one staged word
      let gn = wn + (t % BN4) * 4u;
      tileB[t] = quadB(bBase + gk * N + gn, inRange(gk < K, gn, N));
#endif
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      var bv: array<vec4<f32>, TN4>;
      for (var q = 0u; q < TN4; q++) { bv[q] = tileB[kk * BN4 + q * {{WG_X}}u + lid.x]; }
      for (var i4 = 0u; i4 < TM / 4u; i4++) {
        let av = tileA[kk * BM4 + i4 * {{WG_Y}}u + lid.y];
        for (var r = 0u; r < 4u; r++) {
          let i = i4 * 4u + r;
          for (var q = 0u; q < TN4; q++) { acc[i * TN4 + q] = fma(vec4<f32>(av[r]), bv[q], acc[i * TN4 + q]); }
        }
      }
    }
    workgroupBarrier();
  }

  var res = acc; // dynamically indexed below (see Params.tm)
  let cBase = wid.z * params.strideC;
  for (var i = 0u; i < params.tm; i++) {
    let m = wm + ((i >> 2u) * {{WG_Y}}u + lid.y) * 4u + (i & 3u); // increases with i
    if (m >= M) { break; }
    for (var j = 0u; j < params.tn; j++) {
      let n = wn + ((j >> 2u) * {{WG_X}}u + lid.x) * 4u + (j & 3u);
      if (n < N) { store(cBase + m * N + n, n, res[i * TN4 + (j >> 2u)][j & 3u]); }
    }
  }
}
#elif SHARED
// ---------------------------------------------------------------- shared-memory tiling
const BM = {{WG_Y}}u * TM;
const BN = {{WG_X}}u * TN;
const BK = {{BK}}u;
const THREADS = {{WG_X}}u * {{WG_Y}}u;
var<workgroup> tileA: array<f32, BK * BM>; // [BK][BM]: op(a)[m, k] at k * BM + m
var<workgroup> tileB: array<f32, BK * BN>; // [BK][BN]: op(b)[k, n] at k * BN + n

@compute @workgroup_size({{WG_X}}, {{WG_Y}}, 1)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u,
           @builtin(local_invocation_index) li: u32) {
  let M = params.M;
  let N = params.N;
  let K = params.K;
  let wm = wid.y * BM;
  let wn = wid.x * BN;
  let aBase = wid.z * params.strideA;
  let bBase = wid.z * params.strideB;
  var acc: array<f32, TM * TN>; // acc[i * TN + j] = out[wm + i*WG_Y + ly, wn + j*WG_X + lx]

  for (var k0 = 0u; k0 < K; k0 += BK) {
    // Stage the tiles; consecutive invocations load consecutive addresses of the stored layout.
    for (var t = li; t < BM * BK; t += THREADS) {
#if TRANS_A
      let m = t % BM; // a stored [K, M]: contiguous along m
      let kk = t / BM;
#else
      let kk = t % BK; // a stored [M, K]: contiguous along k
      let m = t / BK;
#endif
      let gm = wm + m;
      let gk = k0 + kk;
      var v = 0.0;
      if (gm < M && gk < K) {
#if TRANS_A
        v = loadA(aBase + gk * M + gm);
#else
        v = loadA(aBase + gm * K + gk);
#endif
      }
      tileA[kk * BM + m] = v;
    }
    for (var t = li; t < BN * BK; t += THREADS) {
#if TRANS_B
      let kk = t % BK; // b stored [N, K]: contiguous along k
      let n = t / BK;
#else
      let n = t % BN; // b stored [K, N]: contiguous along n
      let kk = t / BN;
#endif
      let gn = wn + n;
      let gk = k0 + kk;
      var v = 0.0;
      if (gn < N && gk < K) {
#if TRANS_B
        v = loadB(bBase + gn * K + gk);
#else
        v = loadB(bBase + gk * N + gn);
#endif
      }
      tileB[kk * BN + n] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      var bv: array<f32, TN>;
      for (var j = 0u; j < TN; j++) { bv[j] = tileB[kk * BN + j * {{WG_X}}u + lid.x]; }
      for (var i = 0u; i < TM; i++) {
        let av = tileA[kk * BM + i * {{WG_Y}}u + lid.y];
        for (var j = 0u; j < TN; j++) { acc[i * TN + j] = fma(av, bv[j], acc[i * TN + j]); }
      }
    }
    workgroupBarrier();
  }

  var res = acc; // dynamically indexed below (see Params.tm)
  let cBase = wid.z * params.strideC;
  for (var i = 0u; i < params.tm; i++) {
    let m = wm + i * {{WG_Y}}u + lid.y;
    if (m >= M) { break; }
    for (var j = 0u; j < params.tn; j++) {
      let n = wn + j * {{WG_X}}u + lid.x;
      if (n < N) { store(cBase + m * N + n, n, res[i * TN + j]); }
    }
  }
}
#else
// ---------------------------------------------------------------- register-blocked, looped
const TN4 = TN / 4u;
#if SUBGROUP
const SG = {{WG_X}}u; // subgroup size: one subgroup is one x-row of the workgroup
const RA = TM / SG; // rows of a each invocation loads per k step
#else
const RA = TM;
#endif

@compute @workgroup_size({{WG_X}}, {{WG_Y}}, 1)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let M = params.M;
  let N = params.N;
  let K = params.K;
  let m0 = (wid.y * {{WG_Y}}u + lid.y) * TM;
  let n0 = (wid.x * {{WG_X}}u + lid.x) * TN;
  // No early return past the edge (see the unrolled variant); with SUBGROUP every lane must also
  // stay for the shuffles.
  let aBase = wid.z * params.strideA;
  let bBase = wid.z * params.strideB;

  // Clamped row/column indices, fixed for the whole k loop.
#if SUBGROUP
  // The TM rows m0.. are the same for every lane of the subgroup: lane l loads rows
  // m0 + r*SG + l and the others get them by subgroupShuffle, SG times fewer loads of a.
  var ai: array<u32, TM / SG>;
  for (var r = 0u; r < TM / SG; r++) { ai[r] = min(m0 + r * SG + lid.x, M - 1u); }
#else
  var ai: array<u32, TM>; // op(a) row m0+i, clamped to M-1
  for (var i = 0u; i < TM; i++) { ai[i] = min(m0 + i, M - 1u); }
#endif
  var bj: array<u32, TN>; // op(b) column n0+j, clamped to N-1
  for (var j = 0u; j < TN; j++) { bj[j] = min(n0 + j, N - 1u); }

  var acc: array<vec4<f32>, TM * TN4>; // acc[i * TN4 + q] = out[m0+i, n0+4q .. n0+4q+3]
  var k = 0u;
  for (; k + 4u <= K; k += 4u) {
    // av[r] = op(a)[row r, k .. k+3], row r = ai[r]
    var av: array<vec4<f32>, RA>;
#if TRANS_A
    // a stored [K, M]: column ai[r] of the 4 rows k..k+3.
    for (var kk = 0u; kk < 4u; kk++) {
      let row = aBase + (k + kk) * M;
#if VEC_A
      // M % 4 == 0 here, so a clamped vec4 index stays in this row (never with SUBGROUP).
      for (var iq = 0u; iq < TM / 4u; iq++) {
        let v = a4((row >> 2u) + min((m0 >> 2u) + iq, (M >> 2u) - 1u));
        av[4u * iq][kk] = v.x;
        av[4u * iq + 1u][kk] = v.y;
        av[4u * iq + 2u][kk] = v.z;
        av[4u * iq + 3u][kk] = v.w;
      }
#else
      for (var r = 0u; r < RA; r++) { av[r][kk] = loadA(row + ai[r]); }
#endif
    }
#else
    // a stored [M, K]: 4 consecutive floats of each row.
    for (var r = 0u; r < RA; r++) {
      let e = aBase + ai[r] * K + k;
#if VEC_A
      av[r] = a4(e >> 2u); // K % 4 == 0, so e is a multiple of 4
#else
      av[r] = vec4<f32>(loadA(e), loadA(e + 1u), loadA(e + 2u), loadA(e + 3u));
#endif
    }
#endif

#if TRANS_B
    // b stored [N, K]: bt[j] = op(b)[k .. k+3, n0+j]
    var bt: array<vec4<f32>, TN>;
    for (var j = 0u; j < TN; j++) {
      let e = bBase + bj[j] * K + k;
#if VEC_B
      bt[j] = b4(e >> 2u);
#else
      bt[j] = vec4<f32>(loadB(e), loadB(e + 1u), loadB(e + 2u), loadB(e + 3u));
#endif
    }
#endif

    for (var kk = 0u; kk < 4u; kk++) {
      // bv[q] = op(b)[k+kk, n0+4q .. n0+4q+3]
      var bv: array<vec4<f32>, TN4>;
#if TRANS_B
      for (var q = 0u; q < TN4; q++) {
        bv[q] = vec4<f32>(bt[4u * q][kk], bt[4u * q + 1u][kk], bt[4u * q + 2u][kk], bt[4u * q + 3u][kk]);
      }
#else
      let row = bBase + (k + kk) * N;
#if VEC_B
      // N % 4 == 0 here, so a clamped vec4 index stays in this row.
      for (var q = 0u; q < TN4; q++) { bv[q] = b4((row >> 2u) + min((n0 >> 2u) + q, (N >> 2u) - 1u)); }
#else
      for (var q = 0u; q < TN4; q++) {
        bv[q] = vec4<f32>(loadB(row + bj[4u * q]), loadB(row + bj[4u * q + 1u]), loadB(row + bj[4u * q + 2u]), loadB(row + bj[4u * q + 3u]));
      }
#endif
#endif
      for (var i = 0u; i < TM; i++) {
#if SUBGROUP
        let s = vec4<f32>(subgroupShuffle(av[i / SG][kk], i % SG));
#else
        let s = vec4<f32>(av[i][kk]);
#endif
        for (var q = 0u; q < TN4; q++) { acc[i * TN4 + q] = fma(s, bv[q], acc[i * TN4 + q]); }
      }
    }
  }

  // K % 4 leftover columns, one k at a time with scalar loads.
  for (; k < K; k++) {
    var bv: array<vec4<f32>, TN4>;
    for (var q = 0u; q < TN4; q++) {
      for (var c = 0u; c < 4u; c++) {
#if TRANS_B
        bv[q][c] = loadB(bBase + bj[4u * q + c] * K + k);
#else
        bv[q][c] = loadB(bBase + k * N + bj[4u * q + c]);
#endif
      }
    }
#if SUBGROUP
    var mine: array<f32, TM / SG>;
    for (var r = 0u; r < TM / SG; r++) {
#if TRANS_A
      mine[r] = loadA(aBase + k * M + ai[r]);
#else
      mine[r] = loadA(aBase + ai[r] * K + k);
#endif
    }
#endif
    for (var i = 0u; i < TM; i++) {
#if SUBGROUP
      let s = vec4<f32>(subgroupShuffle(mine[i / SG], i % SG));
#elif TRANS_A
      let s = vec4<f32>(loadA(aBase + k * M + ai[i]));
#else
      let s = vec4<f32>(loadA(aBase + ai[i] * K + k));
#endif
      for (var q = 0u; q < TN4; q++) { acc[i * TN4 + q] = fma(s, bv[q], acc[i * TN4 + q]); }
    }
  }

  var res = acc; // dynamically indexed below (see Params.tm)
  let cBase = wid.z * params.strideC;
  let rows = min(params.tm, M - min(m0, M));
  let cols = min(params.tn, N - min(n0, N));
  for (var i = 0u; i < rows; i++) {
    for (var j = 0u; j < cols; j++) {
      let n = n0 + j;
      store(cBase + (m0 + i) * N + n, n, res[i * TN4 + (j >> 2u)][j & 3u]);
    }
  }
}
#endif
