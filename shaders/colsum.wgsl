// Column sums: the bias gradient, colsum() in core/kernels/matmul.ts.
//
// dst[outRow + block, c] (+ dst if ACCUMULATE) = sum of src[r, c] over the block's rows, in row
// order. Workgroups [ceil(C / WG), blocks]: each thread owns one column of one block of
// blockRows rows, and neighbouring threads read neighbouring columns of a row. The launcher
// runs it twice (block sums into a scratch [blocks, C], then those sums in block order into
// the result), so every value is a sum in a fixed order: no atomics, same bits every run.
// Defines: WG, ACCUMULATE; F16: src holds f16 (storage type `act`), widened on load; dst and the
// sums stay f32 (the bias gradient of f16 activations).

#float act

struct ColsumParams {
  rows: u32, // rows of src in this dispatch
  C: u32, // columns
  blockRows: u32, // rows summed by one thread
  outRow: u32, // row of dst that block 0 of this dispatch writes
}
@group(0) @binding(0) var<uniform> cs_params: ColsumParams;
@group(0) @binding(1) var<storage, read_write> cs_dst: array<f32>; // [outRow + blocks, C]
@group(0) @binding(2) var<storage, read> cs_src: array<act>; // [rows, C]

@compute @workgroup_size({{WG}})
fn colsum(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let C = cs_params.C;
  let c = wid.x * {{WG}}u + lid.x;
  if (c >= C) { return; }
  let r0 = wid.y * cs_params.blockRows;
  let r1 = min(r0 + cs_params.blockRows, cs_params.rows);
  var s = 0.0;
  for (var r = r0; r < r1; r++) {
    s += f32(cs_src[r * C + c]);
  }
  let o = (cs_params.outRow + wid.y) * C + c;
#if ACCUMULATE
  s += cs_dst[o];
#endif
  cs_dst[o] = s;
}
