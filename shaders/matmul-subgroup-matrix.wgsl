// Matrix multiply on subgroup matrices (Dawn's experimental 'chromium-experimental-subgroup-matrix'
// feature, the WGSL extension chromium_experimental_subgroup_matrix):
//   out = alpha * op(a) @ op(b) (+ bias[N] on every row) (+ out if ACCUMULATE)
// with op(a) [M, K] (a stored [M, K], or [K, M] with TRANS_A) and op(b) [K, N] (b stored [K, N],
// or [N, K] with TRANS_B). core/kernels/matmul-subgroup-matrix.ts launches it.
//
// The extension as this file relies on it. Sources: google/dawn docs/dawn/features/subgroup_matrix.md
// (types, the configuration rules, the workgroup_size rule, uniformity), google/dawn
// test/tint/extensions/subgroup_matrix/override_array.wgsl and function_param.wgsl (the current
// load/store form with the layout as a template argument; the design doc still shows an older
// form with a col_major bool argument, which the Dawn in npm `webgpu` 0.6 no longer accepts: its
// Tint asserts two template arguments on subgroupMatrixLoad and one on subgroupMatrixStore), and
// ggml-org/llama.cpp ggml/src/ggml-webgpu/wgsl-shaders/mul_mat_subgroup_matrix.wgsl (a workgroup
// sized for the largest subgroup, extra subgroups idle; the uniformity diagnostic turned off).
//   subgroup_matrix_left<T, K, M>    op(a) block: M rows, K columns
//   subgroup_matrix_right<T, N, K>   op(b) block: K rows, N columns
//   subgroup_matrix_result<R, N, M>  out block: M rows, N columns
//   subgroupMatrixLoad<TYPE, row_major>(&array, offset, stride) -> TYPE
//       element [r, c] is array[offset + r * stride + c]; array in workgroup or storage memory,
//       its element type the scalar type of T (f16 or f32)
//   subgroupMatrixStore<row_major>(&array, offset, value, stride)
//   subgroupMatrixMultiplyAccumulate(left, right, acc) -> left * right + acc
// (T, M, N, K) and R must form one of the adapter's GPUAdapterInfo.subgroupMatrixConfigs
// (componentType, M, N, K, resultComponentType), else pipeline creation fails. The x size of
// the workgroup must be a multiple of the adapter's subgroupMaxSize. Every call must run in
// subgroup-uniform control flow with subgroup-uniform arguments; Tint can only prove workgroup
// uniformity, so the diagnostic chromium.subgroup_matrix_uniformity is turned off: here the
// calls depend on subgroup_id only, which is the same across a subgroup.
//
// Layout. A workgroup computes a BM x BN tile of out. For each BK-deep step it stages op(a)
// [BM, BK] and op(b) [BK, BN] in workgroup memory, converted to the component type `ct` and
// zero-filled past the edges of the matrices, so M, N and K need not be multiples of anything.
// Its SG_M x SG_N subgroups each own PM x PN blocks of SM x SN outputs (the config's M and N)
// and multiply SK (the config's K) at a time. The workgroup holds SG_M * SG_N subgroups of the
// largest subgroup size; with smaller subgroups there are more of them and the extra ones only
// help with the staging and the store. At the end the blocks go through workgroup memory
// (f32) so the epilogue (alpha, bias, accumulate, bounds) is plain per-element code.
//
// EMULATED: the same kernel with each subgroup-matrix call replaced by plain code that reads
// and writes the same workgroup arrays at the same offsets and strides (lanes of the subgroup
// share a block element-wise). It runs wherever 'subgroups' does, so the staging, the edges,
// the block offsets and the epilogue are tested on adapters without subgroup matrices.
//
// Defines: SM, SN, SK (the config), SG_M, SG_N, PM, PN, BK (a multiple of SK), WG (= SG_M *
// SG_N * the largest subgroup size), CT_F16 (f16 components, else f32), F16 (a, b stored f16;
// bias and out f16 too unless OUT_F32), TRANS_A, TRANS_B, BIAS, ACCUMULATE, EMULATED +
// BLOCK_SLOTS (ceil(SM * SN / smallest subgroup size)).

// Kept in EMULATED too: Tint knows the rule without the extension, so that compile checks it.
diagnostic(off, chromium.subgroup_matrix_uniformity);
enable subgroups;
#if !EMULATED
enable chromium_experimental_subgroup_matrix;
#endif
#if CT_F16
#if !F16
enable f16;
#endif
#endif
#float act
#if OUT_F32
alias out_t = f32;
#else
alias out_t = act;
#endif
#if CT_F16
alias ct = f16;
#else
alias ct = f32;
#endif

struct Params {
  M: u32,
  N: u32,
  K: u32,
  alpha: f32,
}
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> out: array<out_t>;
@group(0) @binding(2) var<storage, read> a: array<act>;
@group(0) @binding(3) var<storage, read> b: array<act>;
#if BIAS
@group(0) @binding(4) var<storage, read> bias: array<out_t>;
#endif

const SM = {{SM}}u;
const SN = {{SN}}u;
const SK = {{SK}}u;
const SG_M = {{SG_M}}u;
const SG_N = {{SG_N}}u;
const PM = {{PM}}u;
const PN = {{PN}}u;
const BK = {{BK}}u;
const WG = {{WG}}u;
const BM = SG_M * PM * SM;
const BN = SG_N * PN * SN;

var<workgroup> tileA: array<ct, BM * BK>; // op(a) rows m0.., k0..: row-major, stride BK
var<workgroup> tileB: array<ct, BK * BN>; // op(b) rows k0.., columns n0..: row-major, stride BN
var<workgroup> tileC: array<f32, BM * BN>; // the workgroup's out tile: row-major, stride BN

/** op(a)[row, k], 0 past the edges. */
fn loadA(row: u32, k: u32) -> ct {
  if (row >= params.M || k >= params.K) {
    return ct(0);
  }
#if TRANS_A
  return ct(a[k * params.M + row]);
#else
  return ct(a[row * params.K + k]);
#endif
}

/** op(b)[k, col], 0 past the edges. */
fn loadB(k: u32, col: u32) -> ct {
  if (k >= params.K || col >= params.N) {
    return ct(0);
  }
#if TRANS_B
  return ct(b[col * params.K + k]);
#else
  return ct(b[k * params.N + col]);
#endif
}

@compute @workgroup_size(WG)
fn forward(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(local_invocation_index) lid: u32,
  @builtin(subgroup_id) sg: u32,
  @builtin(subgroup_invocation_id) lane: u32,
  @builtin(subgroup_size) sgSize: u32,
) {
  let m0 = wid.y * BM;
  let n0 = wid.x * BN;
  // Subgroups past SG_M * SG_N exist only when the device runs smaller subgroups than the
  // largest it reports; they sit out the multiply.
  let owner = sg < SG_M * SG_N;
  let rowBase = (sg / SG_N) * PM * SM; // first tile row of this subgroup's blocks
  let colBase = (sg % SG_N) * PN * SN;
#if EMULATED
  var acc: array<f32, PM * PN * {{BLOCK_SLOTS}}u>;
#else
  var acc: array<array<subgroup_matrix_result<f32, SN, SM>, PN>, PM>;
#endif

  for (var k0 = 0u; k0 < params.K; k0 += BK) {
    // Staging: neighbouring invocations read neighbouring elements of the stored layout.
    for (var e = lid; e < BM * BK; e += WG) {
#if TRANS_A
      let r = e % BM;
      let kk = e / BM;
#else
      let r = e / BK;
      let kk = e % BK;
#endif
      tileA[r * BK + kk] = loadA(m0 + r, k0 + kk);
    }
    for (var e = lid; e < BK * BN; e += WG) {
#if TRANS_B
      let kk = e % BK;
      let c = e / BK;
#else
      let kk = e / BN;
      let c = e % BN;
#endif
      tileB[kk * BN + c] = loadB(k0 + kk, n0 + c);
    }
    workgroupBarrier();
    if (owner) {
      for (var kk = 0u; kk < BK; kk += SK) {
        for (var i = 0u; i < PM; i++) {
          let offL = (rowBase + i * SM) * BK + kk;
#if !EMULATED
          let left = subgroupMatrixLoad<subgroup_matrix_left<ct, SK, SM>, row_major>(&tileA, offL, BK);
#endif
          for (var j = 0u; j < PN; j++) {
            let offR = kk * BN + colBase + j * SN;
#if EMULATED
            let slot0 = (i * PN + j) * {{BLOCK_SLOTS}}u;
            for (var s = 0u; s < {{BLOCK_SLOTS}}u; s++) {
              let e = lane + s * sgSize;
              if (e < SM * SN) {
                let r = e / SN;
                let c = e % SN;
                var sum = acc[slot0 + s];
                for (var q = 0u; q < SK; q++) {
                  sum += f32(tileA[offL + r * BK + q]) * f32(tileB[offR + q * BN + c]);
                }
                acc[slot0 + s] = sum;
              }
            }
#else
            let right = subgroupMatrixLoad<subgroup_matrix_right<ct, SN, SK>, row_major>(&tileB, offR, BN);
            acc[i][j] = subgroupMatrixMultiplyAccumulate(left, right, acc[i][j]);
#endif
          }
        }
      }
    }
    // The next step overwrites the tiles this one read.
    workgroupBarrier();
  }

  if (owner) {
    for (var i = 0u; i < PM; i++) {
      for (var j = 0u; j < PN; j++) {
        let offC = (rowBase + i * SM) * BN + colBase + j * SN;
#if EMULATED
        let slot0 = (i * PN + j) * {{BLOCK_SLOTS}}u;
        for (var s = 0u; s < {{BLOCK_SLOTS}}u; s++) {
          let e = lane + s * sgSize;
          if (e < SM * SN) {
            tileC[offC + (e / SN) * BN + e % SN] = acc[slot0 + s];
          }
        }
#else
        subgroupMatrixStore<row_major>(&tileC, offC, acc[i][j], BN);
#endif
      }
    }
  }
  workgroupBarrier();

  for (var e = lid; e < BM * BN; e += WG) {
    let row = m0 + e / BN;
    let col = n0 + e % BN;
    if (row < params.M && col < params.N) {
      var v = params.alpha * tileC[e];
#if BIAS
      v += f32(bias[col]);
#endif
      let o = row * params.N + col;
#if ACCUMULATE
      v += f32(out[o]);
#endif
      out[o] = out_t(v);
    }
  }
}
