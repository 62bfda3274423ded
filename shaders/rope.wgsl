// Rotary position embedding (GTE v1.5), NeoX half-split layout, applied in place to the q and k
// parts of the packed projection qkv [B, L, 3H] (per token [q | k | v], each H = heads * d,
// head-major). v is never touched.
//
//   q' = q * cos + rotate_half(q) * sin,   rotate_half(x) = cat(-x[d/2:], x[:d/2])
//
// so for i < d/2 the pair (x[i], x[i + d/2]) becomes
//   x[i]       * cos[p, i]       - x[i + d/2] * sin[p, i]
//   x[i + d/2] * cos[p, i + d/2] + x[i]       * sin[p, i + d/2]
// (cos/sin are cat(freqs, freqs), so both halves hold the same angle; reading both columns keeps
// the kernel exact for any table the caller builds.) Position p = token index in its row: padding
// does not shift positions. One invocation per (token, q|k, head, i): it owns both elements of its
// pair, so in-place update needs no barrier.
//
// backward applies the transpose of that 2 x 2 map to the gradient pair (g1, g2):
//   dx[i]       = g1 * cos[p, i] + g2 * sin[p, i + d/2]
//   dx[i + d/2] = g2 * cos[p, i + d/2] - g1 * sin[p, i]
// i.e. the inverse rotation (the map is orthogonal when both columns hold the same angle). The
// gradient of v passes through unchanged, so dv is not touched either.
//
// F16: qkv (dqkv in the backward) holds f16, the cos/sin tables stay f32 and the rotation is
// computed in f32, one rounding to f16 per stored element; dv is not written, so it stays exact.

#float act

struct Params {
  tokens: u32, // B * L tokens in this dispatch (a chunk of whole rows)
  seqLen: u32, // L: position of token t is t % L
  heads: u32,
  headDim: u32, // d (even)
}
@group(0) @binding(0) var<uniform> params: Params;

// ---- forward: qkv [B, L, 3H] rotated in place; cos, sin [Lmax, d] with Lmax >= L
@group(0) @binding(1) var<storage, read_write> fwd_qkv: array<act>;
@group(0) @binding(2) var<storage, read> fwd_cos: array<f32>;
@group(0) @binding(3) var<storage, read> fwd_sin: array<f32>;

// The pair of invocation idx: x: element index of its first element in qkv, y: index of its
// (position, i) in the tables; x = 0xffffffff past the end.
fn pairOf(idx: u32) -> vec2u {
  let d = params.headDim;
  let half = d / 2u;
  let perToken = 2u * params.heads * half; // rotated pairs per token (q and k)
  if (idx >= params.tokens * perToken) { return vec2u(0xffffffffu, 0u); }
  let t = idx / perToken;
  let r = idx - t * perToken; // = part * heads * half + h * half + i; part 0 = q, 1 = k
  let i = r % half;
  let col = (r / half) * d + i; // column inside [q | k]: q and k are contiguous, head-major
  let pos = t % params.seqLen;
  return vec2u(t * 3u * params.heads * d + col, pos * d + i);
}

@compute @workgroup_size({{WG}})
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let pair = pairOf((wid.x + wid.y * nwg.x) * {{WG}}u + lid.x);
  if (pair.x == 0xffffffffu) { return; }
  let half = params.headDim / 2u;
  let a = pair.x;
  let c = pair.y;
  let x1 = f32(fwd_qkv[a]);
  let x2 = f32(fwd_qkv[a + half]);
  fwd_qkv[a] = act(x1 * fwd_cos[c] - x2 * fwd_sin[c]);
  fwd_qkv[a + half] = act(x2 * fwd_cos[c + half] + x1 * fwd_sin[c + half]);
}

// ---- backward: dqkv [B, L, 3H] in place (dq, dk rotated back; dv untouched); cos, sin as above
@group(0) @binding(1) var<storage, read_write> bwd_dqkv: array<act>;
@group(0) @binding(2) var<storage, read> bwd_cos: array<f32>;
@group(0) @binding(3) var<storage, read> bwd_sin: array<f32>;

@compute @workgroup_size({{WG}})
fn backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let pair = pairOf((wid.x + wid.y * nwg.x) * {{WG}}u + lid.x);
  if (pair.x == 0xffffffffu) { return; }
  let half = params.headDim / 2u;
  let a = pair.x;
  let c = pair.y;
  let g1 = f32(bwd_dqkv[a]);
  let g2 = f32(bwd_dqkv[a + half]);
  bwd_dqkv[a] = act(g1 * bwd_cos[c] + g2 * bwd_sin[c + half]);
  bwd_dqkv[a + half] = act(g2 * bwd_cos[c + half] - g1 * bwd_sin[c]);
}
