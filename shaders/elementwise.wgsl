// Elementwise kernels over flat f32 or f16 arrays (see F16 below). Every
// entry uses the folded 1-D grid of Gpu.grid(): index = (wid.x + wid.y * nwg.x) * WG + lid.x,
// bounds-checked against n.
//
//   add            out = a + b (residual connections); its backward is dout for both inputs
//   accumulate     dst += src (gradients meeting at a residual branch, gradient accumulation)
//   erf_forward    out = erf(x) (exposes erf_f32 to the tests)
//   gelu_forward   out = x * 0.5 * (1 + erf(x / sqrt 2)), the exact GELU of BERT's "gelu"
//   gelu_backward  dx = dout * gelu'(x), gelu'(x) = Phi(x) + x phi(x)
//   glu_forward    out[r, c] = gelu(gate[r, c]) * up[r, c], upGate[r] = [up (I) | gate (I)]
//   glu_backward   dUpGate[r] = [dout * gelu(gate) | dout * up * gelu'(gate)]
//   to_half        f32 -> f16 bits, from_half f16 -> f32 (castForward; see the section below)
//
// One uniform struct for these entries (`cols` is only read by glu_forward; the casts have
// their own); each entry has its own binding variables because layout 'auto' only accepts
// bindings an entry uses.
//
// F16: add, accumulate, gelu_forward, gelu_backward, glu_forward and glu_backward read and
// write f16 (type `act`); values are widened to f32 on load, computed exactly as in f32 and
// each output is rounded to f16 once on store. erf_forward (test-only) keeps f32 bindings.

#float act

struct Params {
  n: u32, // elements to write
  cols: u32, // glu: I, the width of out (upGate rows are 2 * I wide)
}
@group(0) @binding(0) var<uniform> params: Params;

fn flat_index(wid: vec3u, nwg: vec3u, lid: vec3u) -> u32 {
  return (wid.x + wid.y * nwg.x) * {{WG}}u + lid.x;
}

// ---------------------------------------------------------------- erf and GELU
//
// WGSL has no erf. Two regions, coefficients fitted for this file (weighted minimax by Lawson
// iteration against float64 erf, then rounded to f32):
//   |x| < 1:          erf(x) = x + x * A(x^2), A of degree 6; fit error 1.2e-9 relative
//   1 <= |x| < 3.925: erf(x) = 1 - exp(B(|x|)), B of degree 6 fitting log(erfc); fit error
//                     1.0e-9 absolute
//   |x| >= 3.925:     erf(x) = +-1 (erfc(3.925) = 5.6e-8, under half an f32 ulp of 1)
// Evaluated in f32 (unfused Horner, simulated exhaustively over every f32 in [2^-60, 8]):
// max |error| 9.3e-8 (1.5 ulp of erf near 1.08), max relative error 1.07e-7. On a GPU, exp()
// may be off by up to 3 + 2|x| ulp (WGSL spec), which adds at most ~1.0e-7 near |x| = 1 where
// erfc = 0.157, so any conforming device stays under 2.5e-7, well inside the 1e-6 budget. The
// test checks a dense grid over [-10, 10] against a float64 reference.
//
// The tanh approximation of GELU differs from this by up to 4.7e-4 (at x = -2.70); that is
// what HF's "gelu_new"/"gelu_pytorch_tanh" compute, not BERT's or GTE's "gelu", and it would
// fail the golden comparison.

const ERF_CUT: f32 = 3.925;

// erf(x) = x + x * erf_small(x * x) for |x| < 1.
fn erf_small(s: f32) -> f32 {
  var r = 7.85382799e-05;
  r = fma(r, s, -8.01018439e-04);
  r = fma(r, s, 5.18832682e-03);
  r = fma(r, s, -2.68538110e-02);
  r = fma(r, s, 1.12835854e-01);
  r = fma(r, s, -3.76126260e-01);
  r = fma(r, s, 1.28379166e-01);
  return r;
}

// log(erfc(t)) for 1 <= t < ERF_CUT.
fn log_erfc_mid(t: f32) -> f32 {
  var r = 1.85575263e-04;
  r = fma(r, t, -2.93962006e-03);
  r = fma(r, t, 2.18053721e-02);
  r = fma(r, t, -1.03037484e-01);
  r = fma(r, t, -6.38225555e-01);
  r = fma(r, t, -1.12704015e+00);
  r = fma(r, t, -3.53697047e-04);
  return r;
}

fn erf_f32(x: f32) -> f32 {
  let t = abs(x);
  if (t < 1.0) {
    return fma(x, erf_small(x * x), x);
  }
  if (t < ERF_CUT) {
    return sign(x) * (1.0 - exp(log_erfc_mid(t)));
  }
  return sign(x);
}

// 1 + erf(z). For z <= -1 this is erfc(-z) = exp(B(-z)), computed directly so GELU keeps
// relative accuracy in the left tail instead of cancelling 1 + (-0.99...).
fn one_plus_erf(z: f32) -> f32 {
  let t = abs(z);
  if (t < 1.0) {
    return 1.0 + fma(z, erf_small(z * z), z);
  }
  var erfc_t = 0.0; // erfc(t), t >= ERF_CUT: under 5.6e-8
  if (t < ERF_CUT) {
    erfc_t = exp(log_erfc_mid(t));
  }
  return select(2.0 - erfc_t, erfc_t, z < 0.0);
}

fn gelu(x: f32) -> f32 {
  return 0.5 * x * one_plus_erf(x * 0.70710678118654752);
}

// gelu'(x) = Phi(x) + x phi(x), Phi the normal CDF (0.5 (1 + erf(x / sqrt 2)), tail-accurate
// as above) and phi(x) = exp(-x^2 / 2) / sqrt(2 pi) its density. Error on a conforming device:
// Phi as GELU's 1 + erf, <= 1.1e-7; x phi(x) relative (3 + 3 x^2 / 2) u from rounding x^2
// and from exp's 3 + 2|arg| ulp, at most 6e-8 absolute (near |x| = 2, where x phi = 0.11);
// plus the final add. For x < -5.55 Phi is dropped (< 1.5e-8) and x phi, which dominates
// there, keeps the derivative's relative accuracy; exp underflows to 0 past |x| ~ 14.
fn gelu_grad(x: f32) -> f32 {
  let cdf = 0.5 * one_plus_erf(x * 0.70710678118654752);
  let pdf = 0.39894228040143268 * exp(-0.5 * x * x);
  return fma(x, pdf, cdf);
}

// ---------------------------------------------------------------- add
@group(0) @binding(1) var<storage, read_write> add_out: array<act>;
@group(0) @binding(2) var<storage, read> add_a: array<act>;
@group(0) @binding(3) var<storage, read> add_b: array<act>;

@compute @workgroup_size({{WG}})
fn add(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = flat_index(wid, nwg, lid);
  if (i >= params.n) { return; }
  add_out[i] = act(f32(add_a[i]) + f32(add_b[i]));
}

// ---------------------------------------------------------------- accumulate
@group(0) @binding(1) var<storage, read_write> acc_dst: array<act>;
@group(0) @binding(2) var<storage, read> acc_src: array<act>;

@compute @workgroup_size({{WG}})
fn accumulate(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = flat_index(wid, nwg, lid);
  if (i >= params.n) { return; }
  acc_dst[i] = act(f32(acc_dst[i]) + f32(acc_src[i]));
}

// ---------------------------------------------------------------- erf
@group(0) @binding(1) var<storage, read_write> erf_out: array<f32>;
@group(0) @binding(2) var<storage, read> erf_x: array<f32>;

@compute @workgroup_size({{WG}})
fn erf_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = flat_index(wid, nwg, lid);
  if (i >= params.n) { return; }
  erf_out[i] = erf_f32(erf_x[i]);
}

// ---------------------------------------------------------------- gelu
@group(0) @binding(1) var<storage, read_write> gelu_out: array<act>;
@group(0) @binding(2) var<storage, read> gelu_x: array<act>;

@compute @workgroup_size({{WG}})
fn gelu_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = flat_index(wid, nwg, lid);
  if (i >= params.n) { return; }
  gelu_out[i] = act(gelu(f32(gelu_x[i])));
}

@group(0) @binding(1) var<storage, read_write> gelu_bwd_dx: array<act>;
@group(0) @binding(2) var<storage, read> gelu_bwd_dout: array<act>;
@group(0) @binding(3) var<storage, read> gelu_bwd_x: array<act>;

@compute @workgroup_size({{WG}})
fn gelu_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = flat_index(wid, nwg, lid);
  if (i >= params.n) { return; }
  gelu_bwd_dx[i] = act(f32(gelu_bwd_dout[i]) * gelu_grad(f32(gelu_bwd_x[i])));
}

// ---------------------------------------------------------------- glu (GEGLU of GTE v1.5)
@group(0) @binding(1) var<storage, read_write> glu_out: array<act>; // [N, I]
@group(0) @binding(2) var<storage, read> glu_up_gate: array<act>; // [N, 2I]: up | gate

@compute @workgroup_size({{WG}})
fn glu_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = flat_index(wid, nwg, lid);
  if (i >= params.n) { return; }
  let r = i / params.cols;
  let c = i - r * params.cols;
  let base = r * 2u * params.cols + c;
  glu_out[i] = act(gelu(f32(glu_up_gate[base + params.cols])) * f32(glu_up_gate[base]));
}

@group(0) @binding(1) var<storage, read_write> glu_bwd_dup_gate: array<act>; // [N, 2I]: d up | d gate
@group(0) @binding(2) var<storage, read> glu_bwd_dout: array<act>; // [N, I]
@group(0) @binding(3) var<storage, read> glu_bwd_up_gate: array<act>; // [N, 2I]: up | gate

// One thread per element of dout writes both halves: d up = dout * gelu(gate),
// d gate = dout * up * gelu'(gate).
@compute @workgroup_size({{WG}})
fn glu_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = flat_index(wid, nwg, lid);
  if (i >= params.n) { return; }
  let r = i / params.cols;
  let c = i - r * params.cols;
  let base = r * 2u * params.cols + c;
  let up = f32(glu_bwd_up_gate[base]);
  let gate = f32(glu_bwd_up_gate[base + params.cols]);
  let g = f32(glu_bwd_dout[i]);
  glu_bwd_dup_gate[base] = act(g * gelu(gate));
  glu_bwd_dup_gate[base + params.cols] = act(g * up * gelu_grad(gate));
}

// ---------------------------------------------------------------- cast f32 <-> f16
//
// to_half: f32 -> f16 bits, rounded to nearest even; |x| >= 65520 (what rounds past 65504)
// becomes inf, NaN stays NaN (quiet, top payload bits kept), f32 subnormals become 0: the rules
// of f32ToF16Bits on the host. from_half: f16 -> f32, exact (f16 subnormals are normal f32s).
// Both work on the bits in u32 words, without shader-f16: WGSL leaves the direction of f16()'s
// rounding to the implementation and lets it assume there is no inf or NaN, while these give
// the same bits on every device. A thread handles one word of the f16 side (two elements), so
// the f16 side's element 0 must start a word (4-byte aligned byte offset). Both sides are bound
// from an offset-aligned byte at or below their first element, and src_off / dst_off (in words)
// locate element 0 there, so tensor views at any 4-byte offset can be cast.

struct CastParams {
  n: u32, // elements in this dispatch
  src_off: u32, // words before element 0 in the src binding
  dst_off: u32, // words before element 0 in the dst binding
}
@group(0) @binding(0) var<uniform> cast_params: CastParams;

fn f32_bits_to_f16(b: u32) -> u32 {
  let sign = (b >> 16u) & 0x8000u;
  let ex = (b >> 23u) & 0xffu;
  let mant = b & 0x7fffffu;
  if (ex == 0xffu) { // inf, NaN (kept quiet)
    return sign | 0x7c00u | select(0u, 0x200u | (mant >> 13u), mant != 0u);
  }
  let e = i32(ex) - 112; // rebias 127 -> 15
  if (e >= 31) { return sign | 0x7c00u; }
  if (e <= 0) { // f16 subnormal or 0: m * 2^-24 with m = (1.mant) >> (14 - e), rounded
    if (e < -10) { return sign; }
    let m = mant | 0x800000u;
    let shift = u32(14 - e);
    var half = m >> shift;
    let rem = m & ((1u << shift) - 1u);
    let mid = 1u << (shift - 1u);
    if (rem > mid || (rem == mid && (half & 1u) == 1u)) { half += 1u; }
    return sign | half;
  }
  var half = (u32(e) << 10u) | (mant >> 13u);
  let rem = mant & 0x1fffu;
  // a carry out of the mantissa bumps the exponent: the right rounding, up to inf
  if (rem > 0x1000u || (rem == 0x1000u && (half & 1u) == 1u)) { half += 1u; }
  return sign | half;
}

fn f16_bits_to_f32(h: u32) -> u32 {
  let sign = (h & 0x8000u) << 16u;
  let ex = (h >> 10u) & 0x1fu;
  let mant = h & 0x3ffu;
  if (ex == 0x1fu) { return sign | 0x7f800000u | (mant << 13u); } // inf, NaN
  if (ex != 0u) { return sign | ((ex + 112u) << 23u) | (mant << 13u); }
  if (mant == 0u) { return sign; }
  // subnormal: mant * 2^-24 = 1.f * 2^(p - 24) with p its leading bit
  let p = firstLeadingBit(mant);
  return sign | ((p + 103u) << 23u) | ((mant << (23u - p)) & 0x7fffffu);
}

@group(0) @binding(1) var<storage, read_write> to_half_dst: array<u32>; // f16 pairs
@group(0) @binding(2) var<storage, read> to_half_src: array<u32>; // f32 bits

@compute @workgroup_size({{WG}})
fn to_half(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let j = flat_index(wid, nwg, lid); // word of dst: elements 2j, 2j + 1
  let i = 2u * j;
  if (i >= cast_params.n) { return; }
  let o = cast_params.dst_off + j;
  let lo = f32_bits_to_f16(to_half_src[cast_params.src_off + i]);
  var hi: u32;
  if (i + 1u < cast_params.n) {
    hi = f32_bits_to_f16(to_half_src[cast_params.src_off + i + 1u]);
  } else {
    hi = to_half_dst[o] >> 16u; // an odd end: the upper half belongs to whatever follows
  }
  to_half_dst[o] = lo | (hi << 16u);
}

@group(0) @binding(1) var<storage, read_write> from_half_dst: array<u32>; // f32 bits
@group(0) @binding(2) var<storage, read> from_half_src: array<u32>; // f16 pairs

@compute @workgroup_size({{WG}})
fn from_half(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let j = flat_index(wid, nwg, lid); // word of src: elements 2j, 2j + 1
  let i = 2u * j;
  if (i >= cast_params.n) { return; }
  let w = from_half_src[cast_params.src_off + j];
  from_half_dst[cast_params.dst_off + i] = f16_bits_to_f32(w & 0xffffu);
  if (i + 1u < cast_params.n) {
    from_half_dst[cast_params.dst_off + i + 1u] = f16_bits_to_f32(w >> 16u);
  }
}
