// Elementwise kernels over flat f32 arrays. Every entry uses the folded 1-D grid of
// Gpu.grid(): index = (wid.x + wid.y * nwg.x) * WG + lid.x, bounds-checked against n.

struct Params { n: u32 }
@group(0) @binding(0) var<uniform> params: Params;

// ---- add: out = a + b (residual connections)
@group(0) @binding(1) var<storage, read_write> add_out: array<f32>;
@group(0) @binding(2) var<storage, read> add_a: array<f32>;
@group(0) @binding(3) var<storage, read> add_b: array<f32>;

@compute @workgroup_size({{WG}})
fn add(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = (wid.x + wid.y * nwg.x) * {{WG}}u + lid.x;
  if (i >= params.n) { return; }
  add_out[i] = add_a[i] + add_b[i];
}
