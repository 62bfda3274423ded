// Scores of f32 queries against a quantized index block (core/retrieval/quantize.ts has the
// formats), written as the [rows, n] f32 score block that topk's select kernels read.
//
//   scores_int8    out[q, j] = sum_h queries[q, h] code[j, h]: 4 int8 codes per u32; the host
//                  has multiplied each query by the per-dimension scales, so this is the query
//                  times the dequantized passage.
//   scores_binary  out[q, j] = sum_h queries[q, h] s[j, h], s = +1 for a set sign bit, -1 for a
//                  clear one: 32 bits per u32.
//
// Binary is asymmetric (f32 query x sign bits), not the Hamming distance between the query's
// and the passage's sign bits: only the passage side loses information, so the candidate order
// is closer to the exact one and fewer candidates need rescoring for the same recall. It costs
// dim adds per passage instead of dim / 32 popcounts, but it reads the same 1 bit per value,
// and on a GPU the scan of the index is bound by memory, not by these adds.
//
// Each invocation computes TQ queries x TP passages; rows past the end are clamped (computed
// twice, stored once). Passage j is row rowOff + j of the codes buffer (a chunk), so blocks
// need no aligned buffer views. Queries are padded with zeros to whole words (4 or 32 values),
// which cancels the padding codes / bits.

struct Params {
  rows: u32, // queries
  n: u32, // passages in the block
  words: u32, // u32 words per passage row
  rowOff: u32, // first passage row of the block in the codes buffer
}
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>; // [rows, n]
@group(0) @binding(2) var<storage, read> queries: array<vec4f>; // [rows, words * VPW]
@group(0) @binding(3) var<storage, read> codes: array<u32>; // [chunk rows, words]

const WG = {{WG}}u;
const TQ = {{TQ}}u; // queries per invocation
const TP = {{TP}}u; // passages per invocation

#if INT8
// vec4s per word: one (4 dims)
const VPW = 1u;

fn unpack_codes(w: u32) -> vec4f {
  let v = vec4i(bitcast<i32>(w << 24u), bitcast<i32>(w << 16u), bitcast<i32>(w << 8u), bitcast<i32>(w)) >> vec4u(24u);
  return vec4f(v);
}

@compute @workgroup_size({{WG}})
fn scores_int8(@builtin(global_invocation_id) gid: vec3u) {
  let p0 = gid.x * TP;
  let q0 = gid.y * TQ;
  if (p0 >= params.n || q0 >= params.rows) {
    return;
  }
  let W = params.words;
  var acc: array<array<f32, TP>, TQ>;
  for (var w = 0u; w < W; w++) {
    var pv: array<vec4f, TP>;
    for (var j = 0u; j < TP; j++) {
      pv[j] = unpack_codes(codes[(params.rowOff + min(p0 + j, params.n - 1u)) * W + w]);
    }
    for (var i = 0u; i < TQ; i++) {
      let qv = queries[min(q0 + i, params.rows - 1u) * W + w];
      for (var j = 0u; j < TP; j++) {
        acc[i][j] += dot(qv, pv[j]);
      }
    }
  }
  store(p0, q0, acc);
}
#endif

#if BINARY
// vec4s per word: eight (32 dims)
const VPW = 8u;

@compute @workgroup_size({{WG}})
fn scores_binary(@builtin(global_invocation_id) gid: vec3u) {
  let p0 = gid.x * TP;
  let q0 = gid.y * TQ;
  if (p0 >= params.n || q0 >= params.rows) {
    return;
  }
  let W = params.words;
  var acc: array<array<f32, TP>, TQ>;
  for (var w = 0u; w < W; w++) {
    var bits: array<u32, TP>;
    for (var j = 0u; j < TP; j++) {
      bits[j] = codes[(params.rowOff + min(p0 + j, params.n - 1u)) * W + w];
    }
    for (var t = 0u; t < 8u; t++) {
      var sv: array<vec4f, TP>;
      for (var j = 0u; j < TP; j++) {
        let m = (vec4u(bits[j] >> (4u * t)) >> vec4u(0u, 1u, 2u, 3u)) & vec4u(1u);
        sv[j] = vec4f(m) * 2.0 - 1.0;
      }
      for (var i = 0u; i < TQ; i++) {
        let qv = queries[min(q0 + i, params.rows - 1u) * W * VPW + w * VPW + t];
        for (var j = 0u; j < TP; j++) {
          acc[i][j] += dot(qv, sv[j]);
        }
      }
    }
  }
  store(p0, q0, acc);
}
#endif

fn store(p0: u32, q0: u32, acc: array<array<f32, TP>, TQ>) {
  for (var i = 0u; i < TQ; i++) {
    for (var j = 0u; j < TP; j++) {
      if (q0 + i < params.rows && p0 + j < params.n) {
        out[(q0 + i) * params.n + p0 + j] = acc[i][j];
      }
    }
  }
}
