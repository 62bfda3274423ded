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
//
// F16, forward: the tables and out are f16 (type `act`); rows are widened to f32 and summed in
// f32 in the same order, and the sum is rounded to f16 once. Ids stay u32.
// F16, backward: dout is f16, widened exactly; the gradients (tables, part) stay f32.

#float act

struct Params {
  n: u32, // elements in this dispatch: rows * L * H
  L: u32,
  H: u32,
  vocab: u32, // rows of word
  types: u32, // rows of token_type
}
@group(0) @binding(0) var<uniform> params: Params;

@group(0) @binding(1) var<storage, read_write> fwd_out: array<act>; // [B, L, H]
@group(0) @binding(2) var<storage, read> fwd_ids: array<u32>; // [B, L]
@group(0) @binding(3) var<storage, read> fwd_word: array<act>; // [V, H]
#if HAS_POSITION
@group(0) @binding(4) var<storage, read> fwd_position: array<act>; // [P, H], P >= L
#endif
#if HAS_TOKEN_TYPE
@group(0) @binding(5) var<storage, read> fwd_token_type: array<act>; // [T, H]
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
  var v = f32(fwd_word[id * H + h]);
#if HAS_TOKEN_TYPE
#if HAS_TOKEN_TYPE_IDS
  let tt = min(fwd_token_type_ids[token], params.types - 1u);
#else
  let tt = 0u;
#endif
  v += f32(fwd_token_type[tt * H + h]);
#endif
#if HAS_POSITION
  let l = token % params.L;
  v += f32(fwd_position[l * H + h]);
#endif
  fwd_out[i] = act(v);
}

// ---------------------------------------------------------------- backward
//
// Scatter-add of dout [B, L, H] into one table's gradient (word, position or token_type),
// deterministic: no float atomics, every sum in a fixed order, bit-identical run to run.
// The host groups the tokens of the batch by table row (it has the ids: it tokenized them)
// and uploads that grouping as one u32 index buffer:
//   tokens    the token indexes (b * L + l) grouped by row, ascending within a row
//   seg       segment starts into tokens, nseg + 1 entries: a row's tokens are cut into
//             segments of at most S tokens so no thread walks a long list alone (GTE's single
//             token_type row collects all B * L tokens)
//   slot_seg  per distinct row, its first segment, nslot + 1 entries
//   slot_row  per distinct row, the table row
//   backward_segments  one thread per (segment, h): the segment's tokens in order. With
//                      DIRECT (every row has one segment) it adds the sum into the table,
//                      else it stores it in `part` [nseg, H]
//   backward_rows      one thread per (slot, h): its segments' sums in order, added into the
//                      table
//   backward_clear     table = 0 before the first scatter, unless the caller accumulates

struct BwdParams {
  n: u32, // threads: nseg * H, nslot * H or table elements
  H: u32,
  off_seg: u32, // offsets into the index buffer
  off_slot_seg: u32,
  off_slot_row: u32,
}
@group(0) @binding(0) var<uniform> bwd_params: BwdParams;

@group(0) @binding(1) var<storage, read_write> seg_dst: array<f32>; // DIRECT: table [rows, H]; else part [nseg, H]
@group(0) @binding(2) var<storage, read> seg_dout: array<act>; // [tokens, H]
@group(0) @binding(3) var<storage, read> seg_index: array<u32>;

@compute @workgroup_size({{WG}})
fn backward_segments(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = (wid.x + wid.y * nwg.x) * {{WG}}u + lid.x;
  if (i >= bwd_params.n) { return; }
  let H = bwd_params.H;
  let seg = i / H;
  let h = i - seg * H;
  let t0 = seg_index[bwd_params.off_seg + seg];
  let t1 = seg_index[bwd_params.off_seg + seg + 1u];
  var s = 0.0;
  for (var t = t0; t < t1; t++) {
    s += f32(seg_dout[seg_index[t] * H + h]);
  }
#if DIRECT
  let o = seg_index[bwd_params.off_slot_row + seg] * H + h;
  seg_dst[o] = seg_dst[o] + s;
#else
  seg_dst[i] = s;
#endif
}

@group(0) @binding(1) var<storage, read_write> rows_table: array<f32>; // [rows, H]
@group(0) @binding(2) var<storage, read> rows_part: array<f32>; // [nseg, H]
@group(0) @binding(3) var<storage, read> rows_index: array<u32>;

@compute @workgroup_size({{WG}})
fn backward_rows(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = (wid.x + wid.y * nwg.x) * {{WG}}u + lid.x;
  if (i >= bwd_params.n) { return; }
  let H = bwd_params.H;
  let slot = i / H;
  let h = i - slot * H;
  let k0 = rows_index[bwd_params.off_slot_seg + slot];
  let k1 = rows_index[bwd_params.off_slot_seg + slot + 1u];
  var s = 0.0;
  for (var k = k0; k < k1; k++) {
    s += rows_part[k * H + h];
  }
  let o = rows_index[bwd_params.off_slot_row + slot] * H + h;
  rows_table[o] = rows_table[o] + s;
}

@group(0) @binding(1) var<storage, read_write> clear_table: array<f32>;

@compute @workgroup_size({{WG}})
fn backward_clear(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = (wid.x + wid.y * nwg.x) * {{WG}}u + lid.x;
  if (i >= bwd_params.n) { return; }
  clear_table[i] = 0.0;
}
