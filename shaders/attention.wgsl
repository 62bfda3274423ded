// Fused multi-head self-attention (flash-attention style online softmax). forward saves the
// per-row log-sum-exp so a backward can recompute probabilities without an L x L buffer.
//
// Layouts (f32): qkv [B, L, 3H] packed per token as [q | k | v], each H = heads * D, head-major
// ([heads, D]); mask [B, L] u32 (1 = real token, 0 = padding); out [B, L, H] head-major;
// lse [B, heads, L].
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
// rows past L are computed as clamped duplicates and not stored).

#if SUBGROUP
enable subgroups;
#endif

const D = {{D}}u;
const D4 = (D + 3u) / 4u; // vec4 chunks per head row; the tail chunk of D % 4 != 0 is zero-padded
const BQ = {{BQ}}u;
const RQ = {{RQ}}u;
const BK = {{BK}}u;
#if SUBGROUP
const SG = {{SG}}u; // subgroup size (fixed on the adapters this variant is chosen for)
const DS = (D4 + SG - 1u) / SG; // vec4 chunks of a k or v row each lane loads
#endif
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
@group(0) @binding(1) var<storage, read_write> fwd_out: array<vec4f>; // [nb, L, H] (chunk view)
#else
@group(0) @binding(1) var<storage, read_write> fwd_out: array<f32>;
#endif
@group(0) @binding(2) var<storage, read_write> fwd_lse: array<f32>; // [B, heads, L] (whole)
#if D_ALIGN4
@group(0) @binding(3) var<storage, read> fwd_qkv: array<vec4f>; // [nb, L, 3H] (chunk view)
#else
@group(0) @binding(3) var<storage, read> fwd_qkv: array<f32>;
#endif
@group(0) @binding(4) var<storage, read> fwd_mask: array<u32>; // [B, L] (whole)

// Columns 4c..4c+3 of the head row starting at element `at` (a multiple of 4 when D_ALIGN4);
// columns >= D read as 0.
fn fwd_load4(at: u32, c: u32) -> vec4f {
#if D_ALIGN4
  return fwd_qkv[at / 4u + c];
#else
  let i = at + 4u * c;
  var r = vec4f(0.0);
  for (var e = 0u; e < 4u; e++) {
    if (4u * c + e < D) { r[e] = fwd_qkv[i + e]; }
  }
  return r;
#endif
}

fn fwd_store4(at: u32, c: u32, v: vec4f) {
#if D_ALIGN4
  fwd_out[at / 4u + c] = v;
#else
  for (var e = 0u; e < 4u; e++) {
    if (4u * c + e < D) { fwd_out[at + 4u * c + e] = v[e]; }
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
