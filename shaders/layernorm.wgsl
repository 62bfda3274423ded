// LayerNorm over the last dimension (HF/PyTorch semantics): biased variance, eps inside the
// square root, out = (x - mean) * rstd * weight + bias with rstd = 1 / sqrt(var + eps).
//
// forward: one workgroup per row ({{WG}} threads, a power of two), rows folded into a 2-D
// grid (row = wid.x + wid.y * nwg.x) since B * L can pass 65535. Saves mean and rstd per row
// for the backward (which recomputes xhat = (x - mean) * rstd instead of storing it).
//
// Numerics, all f32: two passes over the row, shifted by its first element k. The first pass
// sums d = x - k; the second sums (d - m)^2 with m = mean(d). The shift matters for rows with a
// large common offset: for x = 1000 + noise of std 0.006, a mean accumulated in f32 carries an
// error of ~1e-4 (a few ulp of 1000), i.e. 2% of the std, which every output would inherit;
// x - k is exact there (Sterbenz) and m is computed on values of size ~std. (One-pass
// E[x^2] - E[x]^2 would lose everything: 1e6 * 6e-8 = 0.06 against a variance of 4e-5.)
// Each pass is a strided per-thread sum (C / WG terms) then a tree over WG partial sums, so
// the rounding error grows with C / WG + log2(WG), ~24 additions for C = 4096, WG = 256.

struct Params {
  rows: u32, // rows in this dispatch
  C: u32, // row length
  eps: f32,
}
@group(0) @binding(0) var<uniform> params: Params;

@group(0) @binding(1) var<storage, read_write> fwd_out: array<f32>; // [rows, C]
@group(0) @binding(2) var<storage, read_write> fwd_mean: array<f32>; // [rows], saved for backward
@group(0) @binding(3) var<storage, read_write> fwd_rstd: array<f32>; // [rows], saved for backward
@group(0) @binding(4) var<storage, read> fwd_x: array<f32>; // [rows, C]
@group(0) @binding(5) var<storage, read> fwd_weight: array<f32>; // [C]
@group(0) @binding(6) var<storage, read> fwd_bias: array<f32>; // [C]

var<workgroup> partial: array<f32, {{WG}}>;

// Sum of v over the workgroup; every thread gets the result. Call from uniform control flow.
fn workgroup_sum(v: f32, lid: u32) -> f32 {
  partial[lid] = v;
  workgroupBarrier();
  for (var s = {{WG}}u / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      partial[lid] += partial[lid + s];
    }
    workgroupBarrier();
  }
  let total = partial[0];
  workgroupBarrier(); // all reads of partial[0] happen before the next call overwrites it
  return total;
}

@compute @workgroup_size({{WG}})
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= params.rows) { return; } // uniform per workgroup: no thread reaches a barrier alone
  let C = params.C;
  let base = row * C;
  let k = fwd_x[base];

  var s1 = 0.0;
  for (var c = lid.x; c < C; c += {{WG}}u) {
    s1 += fwd_x[base + c] - k;
  }
  let m = workgroup_sum(s1, lid.x) / f32(C);

  var s2 = 0.0;
  for (var c = lid.x; c < C; c += {{WG}}u) {
    let d = fwd_x[base + c] - k - m;
    s2 = fma(d, d, s2);
  }
  let rstd = inverseSqrt(workgroup_sum(s2, lid.x) / f32(C) + params.eps);

  for (var c = lid.x; c < C; c += {{WG}}u) {
    let xhat = (fwd_x[base + c] - k - m) * rstd;
    fwd_out[base + c] = fma(xhat, fwd_weight[c], fwd_bias[c]);
  }
  if (lid.x == 0u) {
    fwd_mean[row] = k + m;
    fwd_rstd[row] = rstd;
  }
}
