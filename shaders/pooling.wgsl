// Sentence-embedding heads: pooling of the last hidden state and L2 normalisation.
//
//   cls_forward           out[b, :] = x[b, 0, :]                                (bge, arctic, gte)
//   mean_forward          out[b, :] = sum_l mask[b, l] x[b, l, :] / max(sum_l mask[b, l], 1e-9)
//                         (sentence-transformers' masked mean, clamp included; all-MiniLM)
//   l2_normalize_forward  out[b, :] = x[b, :] / max(||x[b, :]||, 1e-12), torch F.normalize;
//                         saves norm[b] = ||x[b, :]|| (unclamped) for the backward
// and each one's backward right below it:
//   cls_backward          dx[b, 0, :] = dout[b, :], 0 at every other position
//   mean_backward         dx[b, l, :] = mask[b, l] * dout[b, :] / max(sum_l mask[b, l], 1e-9)
//   l2_normalize_backward dx = (dout - x (x . dout) / n^2) / n for n = norm >= 1e-12, else
//                         dout / 1e-12 (the clamp is active and passes no gradient to n)
//
// cls and mean use one thread per output element (b, h): neighbouring threads read
// neighbouring h, and mean walks l in order, accumulating in f32 (L <= 8192 terms).
// l2_normalize is one workgroup per row with a tree reduction, like layernorm; so are the
// backwards of mean (one thread per (b, h) writes its L values) and l2_normalize.
//
// F16: cls_forward and mean_forward read f16 hidden states (type `act`), widened to f32 on
// load; their output stays f32 (the pooled vector, which l2_normalize takes in f32).
// cls_backward and mean_backward write an f16 dx (computed in f32 from the f32 dout, rounded
// once). l2 normalisation keeps f32 bindings.

#float act

struct Params {
  n: u32, // cls, mean: output elements B * H in this dispatch; l2: rows
  L: u32,
  H: u32,
}
@group(0) @binding(0) var<uniform> params: Params;

fn flat_index(wid: vec3u, nwg: vec3u, lid: vec3u) -> u32 {
  return (wid.x + wid.y * nwg.x) * {{WG}}u + lid.x;
}

// ---------------------------------------------------------------- cls
@group(0) @binding(1) var<storage, read_write> cls_out: array<f32>; // [B, H]
@group(0) @binding(2) var<storage, read> cls_x: array<act>; // [B, L, H]

@compute @workgroup_size({{WG}})
fn cls_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = flat_index(wid, nwg, lid);
  if (i >= params.n) { return; }
  let b = i / params.H;
  let h = i - b * params.H;
  cls_out[i] = f32(cls_x[b * params.L * params.H + h]);
}

@group(0) @binding(1) var<storage, read_write> cls_bwd_dx: array<act>; // [B, L, H]
@group(0) @binding(2) var<storage, read> cls_bwd_dout: array<f32>; // [B, H]

// One thread per element of dx (n = B * L * H): every position is written, zeros included.
@compute @workgroup_size({{WG}})
fn cls_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = flat_index(wid, nwg, lid);
  if (i >= params.n) { return; }
  let H = params.H;
  let LH = params.L * H;
  let b = i / LH;
  let j = i - b * LH; // l * H + h
  var v = 0.0;
  if (j < H) {
    v = cls_bwd_dout[b * H + j];
  }
  cls_bwd_dx[i] = act(v);
}

// ---------------------------------------------------------------- mean
@group(0) @binding(1) var<storage, read_write> mean_out: array<f32>; // [B, H]
@group(0) @binding(2) var<storage, read> mean_x: array<act>; // [B, L, H]
@group(0) @binding(3) var<storage, read> mean_mask: array<u32>; // [B, L]

@compute @workgroup_size({{WG}})
fn mean_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = flat_index(wid, nwg, lid);
  if (i >= params.n) { return; }
  let L = params.L;
  let H = params.H;
  let b = i / H;
  let h = i - b * H;
  var sum = 0.0;
  var count = 0.0;
  for (var l = 0u; l < L; l++) {
    let w = f32(mean_mask[b * L + l]);
    // Skipping w = 0 instead of adding 0 * x also keeps a non-finite padded position out.
    if (w != 0.0) {
      sum = fma(w, f32(mean_x[(b * L + l) * H + h]), sum);
      count += w;
    }
  }
  mean_out[i] = sum / max(count, 1e-9);
}

@group(0) @binding(1) var<storage, read_write> mean_bwd_dx: array<act>; // [B, L, H]
@group(0) @binding(2) var<storage, read> mean_bwd_dout: array<f32>; // [B, H]
@group(0) @binding(3) var<storage, read> mean_bwd_mask: array<u32>; // [B, L]

// One thread per (b, h), n = B * H: the count as in the forward, then the L values of dx.
@compute @workgroup_size({{WG}})
fn mean_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = flat_index(wid, nwg, lid);
  if (i >= params.n) { return; }
  let L = params.L;
  let H = params.H;
  let b = i / H;
  let h = i - b * H;
  var count = 0.0;
  for (var l = 0u; l < L; l++) {
    count += f32(mean_bwd_mask[b * L + l]);
  }
  let g = mean_bwd_dout[i] / max(count, 1e-9);
  for (var l = 0u; l < L; l++) {
    // w = 0 writes an exact 0, whatever g is
    let w = f32(mean_bwd_mask[b * L + l]);
    mean_bwd_dx[(b * L + l) * H + h] = act(select(0.0, w * g, w != 0.0));
  }
}

// ---------------------------------------------------------------- l2 normalize
@group(0) @binding(1) var<storage, read_write> l2_out: array<f32>; // [B, H]
@group(0) @binding(2) var<storage, read_write> l2_norm: array<f32>; // [B], saved for backward
@group(0) @binding(3) var<storage, read> l2_x: array<f32>; // [B, H]

var<workgroup> partial: array<f32, {{WG}}>;

@compute @workgroup_size({{WG}})
fn l2_normalize_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= params.n) { return; } // uniform per workgroup
  let H = params.H;
  let base = row * H;
  var ss = 0.0;
  for (var h = lid.x; h < H; h += {{WG}}u) {
    let v = l2_x[base + h];
    ss = fma(v, v, ss);
  }
  partial[lid.x] = ss;
  workgroupBarrier();
  for (var s = {{WG}}u / 2u; s > 0u; s >>= 1u) {
    if (lid.x < s) {
      partial[lid.x] += partial[lid.x + s];
    }
    workgroupBarrier();
  }
  let norm = sqrt(partial[0]);
  let denom = max(norm, 1e-12);
  for (var h = lid.x; h < H; h += {{WG}}u) {
    l2_out[base + h] = l2_x[base + h] / denom;
  }
  if (lid.x == 0u) {
    l2_norm[row] = norm;
  }
}

@group(0) @binding(1) var<storage, read_write> l2_bwd_dx: array<f32>; // [B, H]
@group(0) @binding(2) var<storage, read> l2_bwd_dout: array<f32>; // [B, H]
@group(0) @binding(3) var<storage, read> l2_bwd_x: array<f32>; // [B, H]
@group(0) @binding(4) var<storage, read> l2_bwd_norm: array<f32>; // [B], from the forward

// out = x / n: dx = (dout - out (out . dout)) / n = (dout - x s) / n with s = (x . dout) / n^2
// (n^2 >= 1e-24 stays a normal f32; n^3 could underflow). Under the clamp out = x / 1e-12 is
// linear in x. torch's clamp_min passes the gradient where n >= eps, so n = eps takes the
// full formula, as there.
@compute @workgroup_size({{WG}})
fn l2_normalize_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= params.n) { return; } // uniform per workgroup
  let H = params.H;
  let base = row * H;
  var dot = 0.0;
  for (var h = lid.x; h < H; h += {{WG}}u) {
    dot = fma(l2_bwd_x[base + h], l2_bwd_dout[base + h], dot);
  }
  partial[lid.x] = dot;
  workgroupBarrier();
  for (var s = {{WG}}u / 2u; s > 0u; s >>= 1u) {
    if (lid.x < s) {
      partial[lid.x] += partial[lid.x + s];
    }
    workgroupBarrier();
  }
  let n = l2_bwd_norm[row];
  if (n >= 1e-12) {
    let s = partial[0] / (n * n);
    for (var h = lid.x; h < H; h += {{WG}}u) {
      l2_bwd_dx[base + h] = (l2_bwd_dout[base + h] - l2_bwd_x[base + h] * s) / n;
    }
  } else {
    for (var h = lid.x; h < H; h += {{WG}}u) {
      l2_bwd_dx[base + h] = l2_bwd_dout[base + h] / 1e-12;
    }
  }
}
