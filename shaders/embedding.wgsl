// Embedding gather (forward): one thread per output element, flat index over [B, L, H] folded
// into a 2-D grid (B * L * H passes 65535 * WG at ~16M elements, e.g. 32 x 512 x 1024).
//
//   out[b, l, :] = word[ids[b, l]] (+ token_type[tt[b, l] or 0]) (+ position[l])
//
// BERT uses all three tables; GTE v1.5 has no position table (RoPE) and adds token_type row 0
// when the checkpoint has one. Optional tables are compiled out by defines, so an entry never
// declares a binding it does not get. Ids are clamped to the table, so a bad id reads a wrong
// row instead of out of bounds; callers validate ids on the CPU first (checkIds()).
// The word table is bound whole: 30528 x 1024 f32 = 125 MB, inside a 128 MiB binding.

struct Params {
  n: u32, // elements in this dispatch: rows * L * H
  L: u32,
  H: u32,
  vocab: u32, // rows of word
  types: u32, // rows of token_type
}
@group(0) @binding(0) var<uniform> params: Params;

@group(0) @binding(1) var<storage, read_write> fwd_out: array<f32>; // [B, L, H]
@group(0) @binding(2) var<storage, read> fwd_ids: array<u32>; // [B, L]
@group(0) @binding(3) var<storage, read> fwd_word: array<f32>; // [V, H]
#if HAS_POSITION
@group(0) @binding(4) var<storage, read> fwd_position: array<f32>; // [P, H], P >= L
#endif
#if HAS_TOKEN_TYPE
@group(0) @binding(5) var<storage, read> fwd_token_type: array<f32>; // [T, H]
#endif
#if HAS_TOKEN_TYPE_IDS
@group(0) @binding(6) var<storage, read> fwd_token_type_ids: array<u32>; // [B, L]
#endif

@compute @workgroup_size({{WG}})
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = (wid.x + wid.y * nwg.x) * {{WG}}u + lid.x;
  if (i >= params.n) { return; }
  let H = params.H;
  let token = i / H; // b * L + l
  let h = i - token * H;
  let id = min(fwd_ids[token], params.vocab - 1u);
  // HF's order: (word + token_type) + position, so the f32 result matches it bit for bit
  var v = fwd_word[id * H + h];
#if HAS_TOKEN_TYPE
#if HAS_TOKEN_TYPE_IDS
  let tt = min(fwd_token_type_ids[token], params.types - 1u);
#else
  let tt = 0u;
#endif
  v += fwd_token_type[tt * H + h];
#endif
#if HAS_POSITION
  let l = token % params.L;
  v += fwd_position[l * H + h];
#endif
  fwd_out[i] = v;
}
