// Optimizer kernels: the AdamW update and the global gradient norm for clipping.
//
//   adamw_step      one thread per element of a parameter (or of a run of parameters that lie
//                   back to back in memory): g *= grad_scale, then torch.optim.AdamW's update
//   sumsq_partial   sum of g^2 over a fixed block of CHUNK elements per workgroup -> partial[]
//   sumsq_final     one workgroup: the partials in a fixed order -> out[0]; with ORDER, the
//                   i-th term is partial order[i] (a parameter arena that stores tensors in
//                   another order than the model lists them adds them in the model's order)
//
// AdamW, as torch.optim.AdamW's per-tensor path (foreach=False) with t = step:
//   p = p * (1 - lr * wd)                      (decoupled decay; 1 for decay = false)
//   m = lerp(m, g, 1 - beta1)                  = m + (1 - beta1) (g - m)
//   v = v * beta2 + (1 - beta2) * g * g
//   p = p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// Every scalar coefficient is formed in float64 on the host and rounded once to f32, as torch
// rounds its Python-float scalars when it applies them to f32 tensors; the f32 operations
// follow torch's order (addcdiv is p + (value * m) / denom, addcmul v + (value * g) * g), so
// the result differs from torch on the CPU by the accuracy of WGSL's sqrt and division
// (2.5 ulp each) and fma contraction, a few ulp of the update.
//
// The norm: sum of squares in two fixed-order stages (no atomics), bit-identical run to run.
// Stage 1 gives each workgroup CHUNK = WG * PER consecutive elements; thread t adds elements
// t, t + WG, ... (PER terms, neighbouring threads on neighbouring addresses), then a tree over
// WG. Stage 2 adds the partials, strided per thread, then a tree. Every term is >= 0, so
// nothing cancels: each value passes PER + 2 log2 WG + partials / WG roundings at most.

struct AdamParams {
  n: u32, // elements in this dispatch
  decay: f32, // 1 - lr * weight_decay, or 1
  beta1: f32,
  one_minus_beta1: f32,
  beta2: f32,
  one_minus_beta2: f32,
  step_size: f32, // lr / (1 - beta1^t)
  bc2_sqrt: f32, // sqrt(1 - beta2^t)
  eps: f32,
  grad_scale: f32,
}
@group(0) @binding(0) var<uniform> adam: AdamParams;

@group(0) @binding(1) var<storage, read_write> adam_p: array<f32>;
@group(0) @binding(2) var<storage, read_write> adam_m: array<f32>;
@group(0) @binding(3) var<storage, read_write> adam_v: array<f32>;
@group(0) @binding(4) var<storage, read> adam_g: array<f32>;

@compute @workgroup_size({{WG}})
fn adamw_step(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = (wid.x + wid.y * nwg.x) * {{WG}}u + lid.x;
  if (i >= adam.n) { return; }
  let g = adam_g[i] * adam.grad_scale;
  let p = adam_p[i] * adam.decay;
  let m = fma(adam.one_minus_beta1, g - adam_m[i], adam_m[i]);
  let v = adam_v[i] * adam.beta2 + (adam.one_minus_beta2 * g) * g;
  let denom = sqrt(v) / adam.bc2_sqrt + adam.eps;
  adam_p[i] = p - (adam.step_size * m) / denom;
  adam_m[i] = m;
  adam_v[i] = v;
}

// ---------------------------------------------------------------- gradient norm
struct NormParams {
  n: u32, // sumsq_partial: elements in this dispatch; sumsq_final: terms (partials, or order[])
  base: u32, // sumsq_partial: index of this dispatch's first partial
  per: u32, // sumsq_partial: elements per thread (PER); a workgroup covers WG * PER
}
@group(0) @binding(0) var<uniform> norm: NormParams;

@group(0) @binding(1) var<storage, read_write> sumsq_partials: array<f32>; // [all partials]
@group(0) @binding(2) var<storage, read> sumsq_g: array<f32>; // [n]

var<workgroup> tree: array<f32, {{WG}}>;

// Sum of v over the workgroup into tree[0]. Call from uniform control flow.
fn tree_sum(v: f32, lid: u32) {
  tree[lid] = v;
  workgroupBarrier();
  for (var s = {{WG}}u / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      tree[lid] += tree[lid + s];
    }
    workgroupBarrier();
  }
}

@compute @workgroup_size({{WG}})
fn sumsq_partial(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let w = wid.x + wid.y * nwg.x;
  let start = w * {{WG}}u * norm.per;
  if (start >= norm.n) { return; } // uniform per workgroup
  var s = 0.0;
  for (var k = 0u; k < norm.per; k++) {
    let i = start + k * {{WG}}u + lid.x;
    if (i < norm.n) {
      let g = sumsq_g[i];
      s = fma(g, g, s);
    }
  }
  tree_sum(s, lid.x);
  if (lid.x == 0u) {
    sumsq_partials[norm.base + w] = tree[0];
  }
}

@group(0) @binding(1) var<storage, read_write> final_out: array<f32>; // [1]
@group(0) @binding(2) var<storage, read> final_partials: array<f32>; // [n], or [all partials] with ORDER
#if ORDER
@group(0) @binding(3) var<storage, read> final_order: array<u32>; // [n]
#endif

@compute @workgroup_size({{WG}})
fn sumsq_final(@builtin(local_invocation_id) lid: vec3u) {
  var s = 0.0;
  for (var i = lid.x; i < norm.n; i += {{WG}}u) {
#if ORDER
    s += final_partials[final_order[i]];
#else
    s += final_partials[i];
#endif
  }
  tree_sum(s, lid.x);
  if (lid.x == 0u) {
    final_out[0] = tree[0];
  }
}
