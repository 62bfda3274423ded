// Fused multi-head self-attention (flash-attention style online softmax). forward saves the
// per-row log-sum-exp so the backward (second section, entries backward_dq and backward_dkv)
// recomputes probabilities without an L x L buffer.
//
// Layouts (f32; qkv, out, dout and dqkv f16 with F16): qkv [B, L, 3H] packed per token as
// [q | k | v], each H = heads * D, head-major ([heads, D]); mask [B, L] u32 (1 = real token,
// 0 = padding); out [B, L, H] head-major; lse [B, heads, L].
//
// One workgroup per (query block, head, batch row). Each invocation owns RQ query rows (rows
// row0 + r * BQ, r < RQ), keeps their q and output accumulators in private arrays and streams
// every key of its (batch, head) straight from the storage buffer, BK keys per online-softmax
// step. No workgroup memory and no barriers.
//
// Why several rows per invocation: on llvmpipe (Mesa 25) a storage load whose address the
// compiler cannot prove uniform becomes a loop over the 8 SIMD lanes with a bounds-check branch
// per component, far dearer than the FMAs it feeds. Each loaded k or v vec4 serves RQ rows, and
// with SUBGROUP each lane loads only every SG-th vec4 of a k/v row and the others arrive by
// subgroupShuffle (a register permute there). 2-core llvmpipe, B=16 L=128 heads=12 D=32, BK=8,
// CPU time of the driver's threads: RQ=1 545 ms, RQ=4 133 ms, RQ=4 + SUBGROUP 63 ms. Fully
// unrolled code measured ~10x slower than these loops (code size), and workgroup memory would
// not help: its reads take the same per-lane path. On real GPUs RQ = 1 with a wide workgroup is
// the usual choice (all lanes read the same key: a broadcast).
//
// Numerics: q is pre-multiplied by scale * log2(e) (scale = 1/sqrt(D)) so scores live in the
// base-2 domain and exp2 is used. The running max m and sum l give lse = ln(2) * (m + log2(l)),
// the natural-log log-sum-exp of the scaled scores. Padded keys are skipped outright, which is
// what HF's additive float32-min bias amounts to whenever the row has a real key (exp(min - max)
// is exactly 0 in float32). A row with no real key at all (impossible with a [CLS] token) gets
// out = 0 and lse = F32_MAX: a backward computing p = exp(s - lse) sees p = 0, never NaN.
//
// Defines: D (head dim, 1..128), D_ALIGN4 (D % 4 == 0: qkv and out are bound as vec4 arrays,
// one load per 4 columns), BQ (workgroup size), RQ (query rows per invocation), BK (keys per
// online-softmax step, <= 32: the block's real-key set is a u32 bit mask), SUBGROUP + SG (the
// workgroup is one subgroup of SG = BQ lanes; every lane stays to the end for the shuffles:
// rows past L are computed as clamped duplicates and not stored). BACKWARD selects the
// backward section below instead of the forward (one define set serves both backward entries:
// RQ rows per invocation in backward_dq, RK key rows per invocation in backward_dkv). F16: see
// below (forward and backward).

#if SUBGROUP
enable subgroups;
#endif
// F16: qkv and out (and in the backward dout and dqkv) hold f16; every load converts to f32 and
// every store rounds once, so scores, softmax, accumulators, lse and delta are f32 as in f32.
#float act

const D = {{D}}u;
const D4 = (D + 3u) / 4u; // vec4 chunks per head row; the tail chunk of D % 4 != 0 is zero-padded
const BQ = {{BQ}}u;
const RQ = {{RQ}}u;
#if SUBGROUP
const SG = {{SG}}u; // subgroup size (fixed on the adapters this variant is chosen for)
const DS = (D4 + SG - 1u) / SG; // vec4 chunks of a k or v row each lane loads
#endif

#if !BACKWARD
const BK = {{BK}}u;
const NEG = -3.0e38; // "no score yet": below any real base-2 score, and exp2(NEG - m) == 0
const F32_MAX = 0x1.fffffep+127f; // 3.4028235e38
const LN2 = 0.693147180559945;

struct Params {
  seqLen: u32, // L
  heads: u32,
  b0: u32, // first batch row of this dispatch inside mask and lse (qkv/out are bound as views)
  scaleLog2e: f32, // log2(e) / sqrt(D)
}
@group(0) @binding(0) var<uniform> params: Params;

// ---- forward
#if D_ALIGN4
@group(0) @binding(1) var<storage, read_write> fwd_out: array<vec4<act>>; // [nb, L, H] (chunk view)
#else
@group(0) @binding(1) var<storage, read_write> fwd_out: array<act>;
#endif
@group(0) @binding(2) var<storage, read_write> fwd_lse: array<f32>; // [B, heads, L] (whole)
#if D_ALIGN4
@group(0) @binding(3) var<storage, read> fwd_qkv: array<vec4<act>>; // [nb, L, 3H] (chunk view)
#else
@group(0) @binding(3) var<storage, read> fwd_qkv: array<act>;
#endif
@group(0) @binding(4) var<storage, read> fwd_mask: array<u32>; // [B, L] (whole)

// Columns 4c..4c+3 of the head row starting at element `at` (a multiple of 4 when D_ALIGN4);
// columns >= D read as 0.
fn fwd_load4(at: u32, c: u32) -> vec4f {
#if D_ALIGN4
  return vec4f(fwd_qkv[at / 4u + c]);
#else
  let i = at + 4u * c;
  var r = vec4f(0.0);
  for (var e = 0u; e < 4u; e++) {
    if (4u * c + e < D) { r[e] = f32(fwd_qkv[i + e]); }
  }
  return r;
#endif
}

fn fwd_store4(at: u32, c: u32, v: vec4f) {
#if D_ALIGN4
  fwd_out[at / 4u + c] = vec4<act>(v);
#else
  for (var e = 0u; e < 4u; e++) {
    if (4u * c + e < D) { fwd_out[at + 4u * c + e] = act(v[e]); }
  }
#endif
}

@compute @workgroup_size({{BQ}})
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u
#if SUBGROUP
  , @builtin(subgroup_invocation_id) lane: u32
#endif
) {
  let L = params.seqLen;
  let heads = params.heads;
  let h = wid.y;
  let bl = wid.z; // batch row inside the bound chunk
  let H = heads * D;
  let stride = 3u * H; // elements per token
  let tok0 = bl * L; // first token of this batch row inside the chunk
  let row0 = wid.x * (BQ * RQ) + lid.x;

  var q: array<array<vec4f, D4>, RQ>;
  var acc: array<array<vec4f, D4>, RQ>;
  var m: array<f32, RQ>; // running max of base-2 scores
  var l: array<f32, RQ>; // running sum of exp2(s - m)
  for (var r = 0u; r < RQ; r++) {
    // Rows past L compute a duplicate of row L-1 and are not stored.
    let qAt = (tok0 + min(row0 + r * BQ, L - 1u)) * stride + h * D;
    for (var c = 0u; c < D4; c++) {
      q[r][c] = fwd_load4(qAt, c) * params.scaleLog2e;
      acc[r][c] = vec4f(0.0);
    }
    m[r] = NEG;
    l[r] = 0.0;
  }

  let maskAt = (params.b0 + bl) * L;
  let kAt0 = tok0 * stride + H + h * D; // key j starts at kAt0 + j * stride, its value H later
  for (var j0 = 0u; j0 < L; j0 += BK) {
    // Real keys of this block, from the mask alone: every branch below is uniform.
    var real = 0u;
    for (var jj = 0u; jj < BK; jj++) {
      let j = j0 + jj;
      if (j < L) {
        if (fwd_mask[maskAt + j] != 0u) { real |= 1u << jj; }
      }
    }
    if (real == 0u) { continue; }

    // Scores s[r][jj] (NEG for skipped keys); each k vec4 is loaded once for all RQ rows.
    var s: array<array<f32, BK>, RQ>;
    for (var jj = 0u; jj < BK; jj++) {
      if ((real & (1u << jj)) != 0u) {
        let kAt = kAt0 + (j0 + jj) * stride;
#if SUBGROUP
        var mine: array<vec4f, DS>;
        for (var t = 0u; t < DS; t++) { mine[t] = fwd_load4(kAt, min(t * SG + lane, D4 - 1u)); }
#endif
        // Zeroed explicitly: on llvmpipe (Dawn/Tint + Mesa 25) a `var` declared without an
        // initializer inside a loop kept the previous iteration's value.
        var dv: array<vec4f, RQ>;
        for (var r = 0u; r < RQ; r++) { dv[r] = vec4f(0.0); }
        for (var c = 0u; c < D4; c++) {
#if SUBGROUP
          let k4 = subgroupShuffle(mine[c / SG], c % SG);
#else
          let k4 = fwd_load4(kAt, c);
#endif
          for (var r = 0u; r < RQ; r++) { dv[r] += q[r][c] * k4; }
        }
        for (var r = 0u; r < RQ; r++) { s[r][jj] = dv[r].x + dv[r].y + dv[r].z + dv[r].w; }
      } else {
        for (var r = 0u; r < RQ; r++) { s[r][jj] = NEG; }
      }
    }

    // Online softmax step: rescale by exp2(m_old - m_new) once per block, s becomes p.
    for (var r = 0u; r < RQ; r++) {
      var bmax = NEG;
      for (var jj = 0u; jj < BK; jj++) { bmax = max(bmax, s[r][jj]); }
      let mNew = max(m[r], bmax); // finite: the block has a real key
      let corr = exp2(m[r] - mNew); // 0 on the first real block (m = NEG)
      var sum = l[r] * corr;
      for (var c = 0u; c < D4; c++) { acc[r][c] *= corr; }
      for (var jj = 0u; jj < BK; jj++) {
        let p = select(0.0, exp2(s[r][jj] - mNew), (real & (1u << jj)) != 0u);
        s[r][jj] = p;
        sum += p;
      }
      l[r] = sum;
      m[r] = mNew;
    }

    // acc += p v; each v vec4 is loaded once for all RQ rows.
    for (var jj = 0u; jj < BK; jj++) {
      if ((real & (1u << jj)) != 0u) {
        let vAt = kAt0 + H + (j0 + jj) * stride;
#if SUBGROUP
        var mine: array<vec4f, DS>;
        for (var t = 0u; t < DS; t++) { mine[t] = fwd_load4(vAt, min(t * SG + lane, D4 - 1u)); }
#endif
        for (var c = 0u; c < D4; c++) {
#if SUBGROUP
          let v4 = subgroupShuffle(mine[c / SG], c % SG);
#else
          let v4 = fwd_load4(vAt, c);
#endif
          for (var r = 0u; r < RQ; r++) { acc[r][c] += s[r][jj] * v4; }
        }
      }
    }
  }

  for (var r = 0u; r < RQ; r++) {
    let row = row0 + r * BQ;
    if (row < L) {
      // l is 0 (no real key) or >= 1 (the max key contributes exp2(0)); max() only keeps the
      // unused branches of select() finite.
      let some = l[r] > 0.0;
      let inv = select(0.0, 1.0 / max(l[r], 1.0), some);
      let oAt = (tok0 + row) * H + h * D;
      for (var c = 0u; c < D4; c++) { fwd_store4(oAt, c, acc[r][c] * inv); }
      fwd_lse[((params.b0 + bl) * heads + h) * L + row] = select(F32_MAX, LN2 * (m[r] + log2(max(l[r], 1.0))), some);
    }
  }
}
#endif

#if BACKWARD
// ---- backward (FlashAttention-2 style: nothing of size L x L is stored)
//
// With s = q.k * scale, p = exp(s - lse) recomputed from the forward's lse, dP = dout v^T and
// delta_i = rowsum(dout_i * out_i) (= sum_j p_ij dP_ij):
//   dS = p * (dP - delta),  dV = p^T dout,  dQ = scale * dS K,  dK = scale * dS^T Q.
// Two entries, each writing disjoint slices of dqkv with no atomics (bit-identical run to run):
//   backward_dq   one workgroup per (query block, head, batch row), RQ query rows per
//                 invocation, streams every real key; writes dq and delta (which it needs first).
//   backward_dkv  one workgroup per (key block, head, batch row), RK key rows per invocation,
//                 streams every query row (padded query rows included: HF computes them, so a
//                 non-zero dout there is real gradient); runs after backward_dq, reads delta.
// Cost per (query, key) pair: 3 D FMAs in backward_dq (q.k, dout.v, dq += ds k) and 4 D in
// backward_dkv (q.k, dout.v, dv += p dout, dk += ds q), against 2 D in the forward.
// The invocation layout, clamped duplicate rows and subgroup sharing follow the forward; in
// backward_dkv the streamed rows (q_i, dout_i) are the shared ones.
//
// Compile time: every storage load whose address differs per lane expands, on llvmpipe, to a
// per-lane loop with bounds checks, and LLVM's SROA/mem2reg time grows steeply with the number
// of such loads in straight-line code (replacing the dq prologue's loads by arithmetic cut its
// build from 5 s to 1.5 s at D = 16). So each row is loaded by a loop whose trip count is a
// uniform (bparams.d4, = D4: the driver cannot unroll it) into a staging array, then copied
// into the register arrays with constant indices; results leave the same way. 2-core
// llvmpipe, D = 32, RQ = RK = 4, no shader cache, CPU seconds to build the pipeline: loads
// and stores unrolled dq 41, dkv 39; staged dq 3.5, dkv 4.9 (D = 64, RQ = RK = 2: 49 and 43
// unrolled, 3.1 and 4.4 staged); run times equal within the +-10% noise of a shared machine.
// Staging happens once per invocation, outside the loops over keys or queries.
//
// Numerics: the owned rows of q (dq) or k (dkv) are pre-multiplied by scale * log2(e) and lse
// by log2(e), so p = exp2(s2 - lse2) as in the forward. Padded keys are skipped by backward_dq
// and get dk = dv = 0 (written, not computed) in backward_dkv; their k and v may hold anything
// (NaN included): a select() discards what they feed. A query row has no real key (lse =
// F32_MAX, whose log2(e) multiple is inf) only when its whole batch row has none; then
// backward_dq finds no key to visit (dq = 0) and every backward_dkv block exits early
// (dk = dv = 0), so that lse is never used.
// F16: delta comes from out as stored (the forward's f32 value rounded once to f16) and dq, dk
// and dv are each rounded once on store; lse, delta and every sum stay f32.
const RK = {{RK}}u;
const LOG2E = 1.4426950408889634;

struct BwdParams {
  seqLen: u32, // L
  heads: u32,
  b0: u32, // first batch row of this dispatch inside mask, lse and delta (whole bindings)
  scaleLog2e: f32, // log2(e) / sqrt(D)
  scale: f32, // 1 / sqrt(D)
  d4: u32, // D4, as a uniform: the trip count of the row-load loops (see above)
}
@group(0) @binding(0) var<uniform> bparams: BwdParams;

#if D_ALIGN4
@group(0) @binding(1) var<storage, read_write> bwd_dqkv: array<vec4<act>>; // [nb, L, 3H] (chunk view)
#else
@group(0) @binding(1) var<storage, read_write> bwd_dqkv: array<act>;
#endif
// [B, heads, L] (whole): delta_i, written by backward_dq, read by backward_dkv
@group(0) @binding(2) var<storage, read_write> bwd_delta: array<f32>;
#if D_ALIGN4
@group(0) @binding(3) var<storage, read> bwd_qkv: array<vec4<act>>; // [nb, L, 3H] (chunk view)
@group(0) @binding(4) var<storage, read> bwd_dout: array<vec4<act>>; // [nb, L, H] (chunk view)
@group(0) @binding(5) var<storage, read> bwd_out: array<vec4<act>>; // [nb, L, H] (chunk view; dq only)
#else
@group(0) @binding(3) var<storage, read> bwd_qkv: array<act>;
@group(0) @binding(4) var<storage, read> bwd_dout: array<act>;
@group(0) @binding(5) var<storage, read> bwd_out: array<act>;
#endif
@group(0) @binding(6) var<storage, read> bwd_lse: array<f32>; // [B, heads, L] (whole)
@group(0) @binding(7) var<storage, read> bwd_mask: array<u32>; // [B, L] (whole)

// Columns 4c..4c+3 of a head row starting at element `at`, as fwd_load4 (columns >= D are 0).
fn bwd_qkv4(at: u32, c: u32) -> vec4f {
#if D_ALIGN4
  return vec4f(bwd_qkv[at / 4u + c]);
#else
  var r = vec4f(0.0);
  for (var e = 0u; e < 4u; e++) {
    if (4u * c + e < D) { r[e] = f32(bwd_qkv[at + 4u * c + e]); }
  }
  return r;
#endif
}

fn bwd_dout4(at: u32, c: u32) -> vec4f {
#if D_ALIGN4
  return vec4f(bwd_dout[at / 4u + c]);
#else
  var r = vec4f(0.0);
  for (var e = 0u; e < 4u; e++) {
    if (4u * c + e < D) { r[e] = f32(bwd_dout[at + 4u * c + e]); }
  }
  return r;
#endif
}

fn bwd_out4(at: u32, c: u32) -> vec4f {
#if D_ALIGN4
  return vec4f(bwd_out[at / 4u + c]);
#else
  var r = vec4f(0.0);
  for (var e = 0u; e < 4u; e++) {
    if (4u * c + e < D) { r[e] = f32(bwd_out[at + 4u * c + e]); }
  }
  return r;
#endif
}

fn bwd_store4(at: u32, c: u32, v: vec4f) {
#if D_ALIGN4
  bwd_dqkv[at / 4u + c] = vec4<act>(v);
#else
  for (var e = 0u; e < 4u; e++) {
    if (4u * c + e < D) { bwd_dqkv[at + 4u * c + e] = act(v[e]); }
  }
#endif
}

fn hsum(v: vec4f) -> f32 {
  return v.x + v.y + v.z + v.w;
}

@compute @workgroup_size({{BQ}})
fn backward_dq(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u
#if SUBGROUP
  , @builtin(subgroup_invocation_id) lane: u32
#endif
) {
  let L = bparams.seqLen;
  let heads = bparams.heads;
  let h = wid.y;
  let bl = wid.z; // batch row inside the bound chunk
  let H = heads * D;
  let stride = 3u * H;
  let tok0 = bl * L;
  let rowAt0 = ((bparams.b0 + bl) * heads + h) * L; // row i of (batch, head) in lse and delta
  let row0 = wid.x * (BQ * RQ) + lid.x;

  var q: array<array<vec4f, D4>, RQ>; // q * scale * log2(e)
  var g: array<array<vec4f, D4>, RQ>; // dout
  var acc: array<array<vec4f, D4>, RQ>; // sum_j ds_ij k_j
  var lse2: array<f32, RQ>; // lse * log2(e)
  var delta: array<f32, RQ>;
  // dout's staging has one row per r, unlike q's: with a single array reused by every r, Mesa's
  // OpenGL ES compiler (llvmpipe, Mesa 25; Dawn's compatibility level) read g[0] from the
  // staging array after the last row had overwritten it whenever RQ = 2 and D4 >= 2 (dq of each
  // invocation's first row came out with the last row's dout). Same values, same arithmetic.
  var sdo: array<array<vec4f, D4>, RQ>;
  for (var r = 0u; r < RQ; r++) {
    // Rows past L compute a duplicate of row L-1 and are not stored.
    let row = min(row0 + r * BQ, L - 1u);
    let qAt = (tok0 + row) * stride + h * D;
    let oAt = (tok0 + row) * H + h * D;
    var sq: array<vec4f, D4>; // staging (see "Compile time" above)
    var dd = vec4f(0.0);
    for (var c = 0u; c < bparams.d4; c++) {
      sq[c] = bwd_qkv4(qAt, c);
      sdo[r][c] = bwd_dout4(oAt, c);
      dd += sdo[r][c] * bwd_out4(oAt, c);
    }
    for (var c = 0u; c < D4; c++) {
      q[r][c] = sq[c] * bparams.scaleLog2e;
      g[r][c] = sdo[r][c];
      acc[r][c] = vec4f(0.0);
    }
    delta[r] = hsum(dd);
    lse2[r] = bwd_lse[rowAt0 + row] * LOG2E;
  }

  let maskAt = (bparams.b0 + bl) * L;
  let kAt0 = tok0 * stride + H + h * D; // key j starts at kAt0 + j * stride, its value H later
  for (var j = 0u; j < L; j++) {
    if (bwd_mask[maskAt + j] == 0u) { continue; } // uniform: the same key for every lane
    let kAt = kAt0 + j * stride;
#if SUBGROUP
    var mk: array<vec4f, DS>;
    var mv: array<vec4f, DS>;
    for (var t = 0u; t < DS; t++) {
      let c = min(t * SG + lane, D4 - 1u);
      mk[t] = bwd_qkv4(kAt, c);
      mv[t] = bwd_qkv4(kAt + H, c);
    }
#else
    var sk: array<vec4f, D4>;
    var sv: array<vec4f, D4>;
    for (var c = 0u; c < bparams.d4; c++) {
      sk[c] = bwd_qkv4(kAt, c);
      sv[c] = bwd_qkv4(kAt + H, c);
    }
#endif
    // Zeroed explicitly (see the forward: uninitialised loop-local vars kept old values).
    var sd: array<vec4f, RQ>;
    var pd: array<vec4f, RQ>;
    for (var r = 0u; r < RQ; r++) {
      sd[r] = vec4f(0.0);
      pd[r] = vec4f(0.0);
    }
    for (var c = 0u; c < D4; c++) {
#if SUBGROUP
      let k4 = subgroupShuffle(mk[c / SG], c % SG);
      let v4 = subgroupShuffle(mv[c / SG], c % SG);
#else
      let k4 = sk[c];
      let v4 = sv[c];
#endif
      for (var r = 0u; r < RQ; r++) {
        sd[r] += q[r][c] * k4;
        pd[r] += g[r][c] * v4;
      }
    }
    var ds: array<f32, RQ>;
    for (var r = 0u; r < RQ; r++) {
      let p = exp2(hsum(sd[r]) - lse2[r]);
      ds[r] = p * (hsum(pd[r]) - delta[r]);
    }
    for (var c = 0u; c < D4; c++) {
#if SUBGROUP
      let k4 = subgroupShuffle(mk[c / SG], c % SG);
#else
      let k4 = sk[c];
#endif
      for (var r = 0u; r < RQ; r++) { acc[r][c] += ds[r] * k4; }
    }
  }

  for (var r = 0u; r < RQ; r++) {
    let row = row0 + r * BQ;
    if (row < L) {
      let at = (tok0 + row) * stride + h * D;
      var so: array<vec4f, D4>; // staging, as for the loads
      for (var c = 0u; c < D4; c++) { so[c] = acc[r][c] * bparams.scale; }
      for (var c = 0u; c < bparams.d4; c++) { bwd_store4(at, c, so[c]); }
      bwd_delta[rowAt0 + row] = delta[r];
    }
  }
}

@compute @workgroup_size({{BQ}})
fn backward_dkv(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u
#if SUBGROUP
  , @builtin(subgroup_invocation_id) lane: u32
#endif
) {
  let L = bparams.seqLen;
  let heads = bparams.heads;
  let h = wid.y;
  let bl = wid.z;
  let H = heads * D;
  let stride = 3u * H;
  let tok0 = bl * L;
  let rowAt0 = ((bparams.b0 + bl) * heads + h) * L;
  let maskAt = (bparams.b0 + bl) * L;
  let blockKey0 = wid.x * (BQ * RK);
  let key0 = blockKey0 + lid.x; // this invocation's keys: key0 + r * BQ, r < RK

  // A block of padded keys (the tail of a short row) has nothing to compute: every lane of the
  // workgroup reads the same mask words, so the early exit is uniform (subgroup-safe).
  var anyReal = false;
  for (var j = blockKey0; j < min(blockKey0 + BQ * RK, L); j++) {
    if (bwd_mask[maskAt + j] != 0u) { anyReal = true; break; }
  }

  var k: array<array<vec4f, D4>, RK>; // k * scale * log2(e)
  var v: array<array<vec4f, D4>, RK>;
  var dk: array<array<vec4f, D4>, RK>; // sum_i ds_ij q_i
  var dv: array<array<vec4f, D4>, RK>; // sum_i p_ij dout_i
  var real: array<bool, RK>;
  for (var r = 0u; r < RK; r++) {
    let key = min(key0 + r * BQ, L - 1u); // keys past L: a clamped duplicate, not stored
    real[r] = key0 + r * BQ < L && bwd_mask[maskAt + key] != 0u;
    let kAt = (tok0 + key) * stride + H + h * D;
    var sk: array<vec4f, D4>; // staging (see "Compile time" above)
    var sv: array<vec4f, D4>;
    for (var c = 0u; c < bparams.d4; c++) {
      sk[c] = bwd_qkv4(kAt, c);
      sv[c] = bwd_qkv4(kAt + H, c);
    }
    for (var c = 0u; c < D4; c++) {
      k[r][c] = sk[c] * bparams.scaleLog2e;
      v[r][c] = sv[c];
      dk[r][c] = vec4f(0.0);
      dv[r][c] = vec4f(0.0);
    }
  }

  if (anyReal) {
    for (var i = 0u; i < L; i++) {
      let lse2 = bwd_lse[rowAt0 + i] * LOG2E;
      let delta = bwd_delta[rowAt0 + i];
      let qAt = (tok0 + i) * stride + h * D;
      let oAt = (tok0 + i) * H + h * D;
#if SUBGROUP
      var mq: array<vec4f, DS>;
      var mg: array<vec4f, DS>;
      for (var t = 0u; t < DS; t++) {
        let c = min(t * SG + lane, D4 - 1u);
        mq[t] = bwd_qkv4(qAt, c);
        mg[t] = bwd_dout4(oAt, c);
      }
#else
      var sq: array<vec4f, D4>;
      var sdo: array<vec4f, D4>;
      for (var c = 0u; c < bparams.d4; c++) {
        sq[c] = bwd_qkv4(qAt, c);
        sdo[c] = bwd_dout4(oAt, c);
      }
#endif
      var sd: array<vec4f, RK>;
      var pd: array<vec4f, RK>;
      for (var r = 0u; r < RK; r++) {
        sd[r] = vec4f(0.0);
        pd[r] = vec4f(0.0);
      }
      for (var c = 0u; c < D4; c++) {
#if SUBGROUP
        let q4 = subgroupShuffle(mq[c / SG], c % SG);
        let g4 = subgroupShuffle(mg[c / SG], c % SG);
#else
        let q4 = sq[c];
        let g4 = sdo[c];
#endif
        for (var r = 0u; r < RK; r++) {
          sd[r] += q4 * k[r][c];
          pd[r] += g4 * v[r][c];
        }
      }
      var p: array<f32, RK>;
      var ds: array<f32, RK>;
      for (var r = 0u; r < RK; r++) {
        p[r] = select(0.0, exp2(hsum(sd[r]) - lse2), real[r]);
        ds[r] = p[r] * (hsum(pd[r]) - delta);
      }
      for (var c = 0u; c < D4; c++) {
#if SUBGROUP
        let q4 = subgroupShuffle(mq[c / SG], c % SG);
        let g4 = subgroupShuffle(mg[c / SG], c % SG);
#else
        let q4 = sq[c];
        let g4 = sdo[c];
#endif
        for (var r = 0u; r < RK; r++) {
          dk[r][c] += ds[r] * q4;
          dv[r][c] += p[r] * g4;
        }
      }
    }
  }

  for (var r = 0u; r < RK; r++) {
    let key = key0 + r * BQ;
    if (key < L) {
      let at = (tok0 + key) * stride + H + h * D;
      var sk: array<vec4f, D4>; // staging, as for the loads
      var sv: array<vec4f, D4>;
      for (var c = 0u; c < D4; c++) {
        // select, not a product: a padded key's ds may be NaN (0 * garbage)
        sk[c] = select(vec4f(0.0), dk[r][c] * bparams.scale, real[r]);
        sv[c] = select(vec4f(0.0), dv[r][c], real[r]);
      }
      for (var c = 0u; c < bparams.d4; c++) {
        bwd_store4(at, c, sk[c]);
        bwd_store4(at + H, c, sv[c]);
      }
    }
  }
}
#endif
