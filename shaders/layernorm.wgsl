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
//
// F16: x, weight, bias and out are f16 in memory (type `act`); every value is widened to f32 on
// load and the math above is unchanged, so the only new error is the final rounding of out to
// f16. mean and rstd stay f32. The backward likewise: dout, x, weight and dx are f16 (dx rounded
// once at the store), the statistics, the per-row shift, the block sums and dweight / dbias f32
// (backward_params_reduce reads only f32 and is compiled without F16).

#float act

struct Params {
  rows: u32, // rows in this dispatch
  C: u32, // row length
  eps: f32,
}
@group(0) @binding(0) var<uniform> params: Params;

@group(0) @binding(1) var<storage, read_write> fwd_out: array<act>; // [rows, C]
@group(0) @binding(2) var<storage, read_write> fwd_mean: array<f32>; // [rows], saved for backward
@group(0) @binding(3) var<storage, read_write> fwd_rstd: array<f32>; // [rows], saved for backward
@group(0) @binding(4) var<storage, read> fwd_x: array<act>; // [rows, C]
@group(0) @binding(5) var<storage, read> fwd_weight: array<act>; // [C]
@group(0) @binding(6) var<storage, read> fwd_bias: array<act>; // [C]

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
  let k = f32(fwd_x[base]);

  var s1 = 0.0;
  for (var c = lid.x; c < C; c += {{WG}}u) {
    s1 += f32(fwd_x[base + c]) - k;
  }
  let m = workgroup_sum(s1, lid.x) / f32(C);

  var s2 = 0.0;
  for (var c = lid.x; c < C; c += {{WG}}u) {
    let d = f32(fwd_x[base + c]) - k - m;
    s2 = fma(d, d, s2);
  }
  let rstd = inverseSqrt(workgroup_sum(s2, lid.x) / f32(C) + params.eps);

  for (var c = lid.x; c < C; c += {{WG}}u) {
    let xhat = (f32(fwd_x[base + c]) - k - m) * rstd;
    fwd_out[base + c] = act(fma(xhat, f32(fwd_weight[c]), f32(fwd_bias[c])));
  }
  if (lid.x == 0u) {
    fwd_mean[row] = k + m;
    fwd_rstd[row] = rstd;
  }
}

// ---------------------------------------------------------------- backward
//
// With g = dout * weight and xhat = (x - mean) * rstd (recomputed, not stored):
//   dx      = rstd * (g - mean_c(g) - xhat * mean_c(g * xhat))     (eps is inside rstd)
//   dweight = sum over rows of dout * xhat,   dbias = sum over rows of dout
// Three passes and no atomics, so every value is a sum in a fixed order and bit-identical
// from run to run:
//   backward                 one workgroup per row: dx, and the row's centring correction
//   backward_params_partial  one thread per (column, block of R rows): block sums [blocks, 2C]
//   backward_params_reduce   one thread per column of dweight | dbias: the block sums in block
//                            order, stored into or added to (gradient accumulation) the result
//
// Shifted statistics. The saved mean is k + m rounded to f32. At |mean| = 1000 that rounding
// is up to 3.1e-5 (half an ulp), 0.5% of the std 0.006 of a row 1000 + U(+-0.01): a backward
// that recomputed xhat = (x - mean) * rstd would shift every xhat of the row by ~5e-3, so
// dweight would be off by 5e-3 * dbias and dx by as much relative. Instead, d = x - mean is
// formed first (exact there: x and mean are within a factor 2 of each other, Sterbenz), the
// row mean m_d of d is summed from values of size ~std (it is minus the rounding of the saved
// mean), and xhat = (d - m_d) * rstd. m_d is kept per row in `shift` so the parameter passes
// use the same xhat. mean_c(g * xhat) = rstd * (sum(g d) - m_d sum(g)) / C comes out of the
// same single pass: m_d is tiny next to d, so nothing cancels.

struct BwdParams {
  rows: u32, // rows in this dispatch
  C: u32, // row length
  block_rows: u32, // partial: rows per block (R)
  block_offset: u32, // partial: index of this dispatch's first block in `partial`
  blocks: u32, // reduce: blocks in `partial`
  accumulate: u32, // reduce: 1 = add into dweight and dbias, 0 = overwrite them
}
@group(0) @binding(0) var<uniform> bwd_params: BwdParams;

@group(0) @binding(1) var<storage, read_write> bwd_dx: array<act>; // [rows, C]
@group(0) @binding(2) var<storage, read_write> bwd_shift: array<f32>; // [rows] scratch: m_d
@group(0) @binding(3) var<storage, read> bwd_dout: array<act>; // [rows, C]
@group(0) @binding(4) var<storage, read> bwd_x: array<act>; // [rows, C]
@group(0) @binding(5) var<storage, read> bwd_mean: array<f32>; // [rows]
@group(0) @binding(6) var<storage, read> bwd_rstd: array<f32>; // [rows]
@group(0) @binding(7) var<storage, read> bwd_weight: array<act>; // [C]

var<workgroup> partial3: array<vec3f, {{WG}}>;

// Three sums over the workgroup at once (one tree, log2(WG) barriers instead of 3x that).
fn workgroup_sum3(v: vec3f, lid: u32) -> vec3f {
  partial3[lid] = v;
  workgroupBarrier();
  for (var s = {{WG}}u / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      partial3[lid] += partial3[lid + s];
    }
    workgroupBarrier();
  }
  let total = partial3[0];
  workgroupBarrier();
  return total;
}

@compute @workgroup_size({{WG}})
fn backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= bwd_params.rows) { return; } // uniform per workgroup
  let C = bwd_params.C;
  let base = row * C;
  let mean = bwd_mean[row];
  let rstd = bwd_rstd[row];

  // (sum d, sum g, sum g * d) with d = x - mean
  var s = vec3f(0.0);
  for (var c = lid.x; c < C; c += {{WG}}u) {
    let d = f32(bwd_x[base + c]) - mean;
    let g = f32(bwd_dout[base + c]) * f32(bwd_weight[c]);
    s = vec3f(s.x + d, s.y + g, fma(g, d, s.z));
  }
  let t = workgroup_sum3(s, lid.x);
  let inv_c = 1.0 / f32(C);
  let m_d = t.x * inv_c;
  let mean_g = t.y * inv_c;
  let mean_gx = rstd * (t.z - m_d * t.y) * inv_c; // mean_c(g * xhat)

  for (var c = lid.x; c < C; c += {{WG}}u) {
    let xhat = (f32(bwd_x[base + c]) - mean - m_d) * rstd;
    let g = f32(bwd_dout[base + c]) * f32(bwd_weight[c]);
    bwd_dx[base + c] = act(rstd * (g - mean_g - xhat * mean_gx));
  }
  if (lid.x == 0u) {
    bwd_shift[row] = m_d;
  }
}

@group(0) @binding(1) var<storage, read_write> part_out: array<f32>; // [blocks, 2C]: dweight | dbias sums
@group(0) @binding(2) var<storage, read> part_dout: array<act>; // [rows, C]
@group(0) @binding(3) var<storage, read> part_x: array<act>; // [rows, C]
@group(0) @binding(4) var<storage, read> part_mean: array<f32>; // [rows]
@group(0) @binding(5) var<storage, read> part_rstd: array<f32>; // [rows]
@group(0) @binding(6) var<storage, read> part_shift: array<f32>; // [rows], from backward

// Workgroups [ceil(C / WG), blocks in this dispatch]: neighbouring threads read neighbouring
// columns of a row; each thread walks its block's rows in order.
@compute @workgroup_size({{WG}})
fn backward_params_partial(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let C = bwd_params.C;
  let c = wid.x * {{WG}}u + lid.x;
  if (c >= C) { return; }
  let r0 = wid.y * bwd_params.block_rows;
  let r1 = min(r0 + bwd_params.block_rows, bwd_params.rows);
  var dw = 0.0;
  var db = 0.0;
  for (var r = r0; r < r1; r++) {
    let g = f32(part_dout[r * C + c]);
    let xhat = (f32(part_x[r * C + c]) - part_mean[r] - part_shift[r]) * part_rstd[r];
    dw = fma(g, xhat, dw);
    db += g;
  }
  let o = (bwd_params.block_offset + wid.y) * 2u * C;
  part_out[o + c] = dw;
  part_out[o + C + c] = db;
}

@group(0) @binding(1) var<storage, read_write> red_dweight: array<f32>; // [C]
@group(0) @binding(2) var<storage, read_write> red_dbias: array<f32>; // [C]
@group(0) @binding(3) var<storage, read> red_partial: array<f32>; // [blocks, 2C]

// One thread per element of [dweight | dbias] (2C threads).
@compute @workgroup_size({{WG}})
fn backward_params_reduce(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let C = bwd_params.C;
  let i = wid.x * {{WG}}u + lid.x;
  if (i >= 2u * C) { return; }
  var s = 0.0;
  for (var b = 0u; b < bwd_params.blocks; b++) {
    s += red_partial[b * 2u * C + i];
  }
  let acc = bwd_params.accumulate != 0u;
  if (i < C) {
    red_dweight[i] = select(s, red_dweight[i] + s, acc);
  } else {
    red_dbias[i - C] = select(s, red_dbias[i - C] + s, acc);
  }
}
