// out[z, c, r] = a[z, r, c]: swap the last two dims of a [batch, R, C] into out [batch, C, R].
// Matmul stages transposed operands through this on CPU drivers, where its plain [M, K] x
// [K, N] kernel is faster than reading either operand across its rows (core/kernels/matmul.ts).
//
// Every invocation moves one 4 x 4 block: four row pieces of a in, four row pieces of out
// out, the transpose itself in registers. No workgroup memory: on llvmpipe a barrier splits
// the shader into coroutine pieces, and a 16 x 16 shared-memory version ran 4.8x slower than
// this one (1.37 s against 0.29 s of GPU time for one MiniLM training step's 98 transposes).
// VEC4 (R % 4 == 0 and C % 4 == 0): every block is whole and row pieces are vec4 loads and
// stores. Otherwise scalar accesses with the block clipped at the edges.
// F16: the elements are f16 ('shader-f16'); a copy, so they move as they are, no conversion.

#float act

struct Params {
  rows: u32, // R
  cols: u32, // C
}

@group(0) @binding(0) var<uniform> P: Params;
#if VEC4
@group(0) @binding(1) var<storage, read_write> out: array<vec4<act>>;
@group(0) @binding(2) var<storage, read> a: array<vec4<act>>;
#else
@group(0) @binding(1) var<storage, read_write> out: array<act>;
@group(0) @binding(2) var<storage, read> a: array<act>;
#endif

@compute @workgroup_size({{WG}}, 1, 1)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let R = P.rows;
  let C = P.cols;
  let bc = (C + 3u) / 4u; // blocks along a row of a
  let blk = (wid.x + wid.y * nwg.x) * {{WG}}u + lid.x;
  if (blk >= bc * ((R + 3u) / 4u)) { return; }
  let r0 = (blk / bc) * 4u;
  let c0 = (blk % bc) * 4u;
  let base = wid.z * R * C;
#if VEC4
  // m[i] = a[r0 + i, c0 .. c0+3]; the transpose's row j is out[c0 + j, r0 .. r0+3].
  let m = transpose(mat4x4<act>(a[(base + r0 * C + c0) / 4u], a[(base + (r0 + 1u) * C + c0) / 4u],
                                a[(base + (r0 + 2u) * C + c0) / 4u], a[(base + (r0 + 3u) * C + c0) / 4u]));
  for (var j = 0u; j < 4u; j++) {
    out[(base + (c0 + j) * R + r0) / 4u] = m[j];
  }
#else
  let nr = min(4u, R - r0);
  let nc = min(4u, C - c0);
  for (var i = 0u; i < nr; i++) {
    for (var j = 0u; j < nc; j++) {
      out[base + (c0 + j) * R + r0 + i] = a[base + (r0 + i) * C + c0 + j];
    }
  }
#endif
}
