// Exact top-k by descending score, ties to the smaller id, for search over an embedding index.
//
//   scores_forward  out[q, j] = queries[q, :] . passages[j, :] for an f16 passage block (the
//                   f32 index uses matmul instead)
//   select_forward  each workgroup keeps the best min(k, len) keys of one segment of one row,
//                   in no particular order, and pads its k output slots with empty keys
//   sort_forward    each workgroup sorts one row of n <= SORT_N candidates, best first, and
//                   writes their scores (f32) and ids
//
// The launcher (core/kernels/topk.ts) keeps a running top-k per query: for each score block,
// select (THR_IN) the block's candidates, then select (IDS, THR_OUT) the best k of running +
// candidates, which also records the k-th best key as the next block's threshold. sort orders
// the final list.
//
// Order. A candidate is the 64-bit key (hi, lo) = (ordered(score), ~id): ordered() maps f32 to
// u32 so that unsigned order is float order (negatives have every bit flipped, positives only
// the sign bit; -0 is first turned into +0 so equal scores get equal keys), and ~id makes the
// smaller id the larger key. Keys are unique (ids are), so "the k largest keys" is one exact,
// deterministic set: the k best scores, equal scores going to the smaller id. Candidate lists
// hold (hi, id) pairs; hi = 0 (the key of the NaN with every bit set, below every non-NaN
// score) marks an empty slot, which is never selected. Scores must not be NaN.
//
// Threshold. Blocks come in id order, so once the running list holds k keys with a k-th best
// hi = T, a later key with hi <= T can never enter it (equal scores lose on the larger id).
// select with THR_IN ignores those keys. On data in no particular order almost every key of
// the later blocks falls under T (at k = 200 and 32,768-passage blocks, all but ~0.6% after
// the first block), so most segments finish after one counting pass and write only survivors.
//
// select is a radix select over the key, 8 bits per pass, most significant first: pass p
// histograms digit p of the live keys (hi > threshold) that match the digits chosen so far
// (256 workgroup atomics), then one invocation walks the bins from the top to the bin holding
// the rem-th largest key, where rem is how many keys are still to pick. It stops as soon as
// the chosen bin holds exactly rem keys (the whole bin is taken), or when fewer than k keys
// are live at all (all are taken): with no threshold, usually after the 4 score passes, since
// equal f32 scores are rare; ties in the score need the id passes (up to 8 in all). A last
// pass writes every key >= the chosen prefix through an atomic slot counter. Radix select
// reads each score (passes + 1) times but needs no sort, no workgroup copy of the segment and
// no limit on k; a bitonic sort of the segment would cost log2(len)^2 / 2 barrier stages (91
// at 8192), each a pass over workgroup memory.
//
// Loads. llvmpipe turns every storage load into a per-lane loop with a bounds check; with VEC4
// (row stride and segment starts multiples of 4) a lane loads 4 scores at once.
//
// Defines: SELECT, SORT or SCORES picks the section (each has its own bindings); WG
// (invocations per workgroup); select: KEYS (input is u32 keys, else f32 scores), VEC4, IDS
// (ids come from a buffer, else id = idBase + column), THR_IN (per-row threshold input),
// THR_OUT (write each row's k-th best hi, 0 if fewer than k keys); sort: SORT_N (a power of
// two >= n); scores: TQ, TP (tile per invocation).

#if SCORES
enable f16;
#endif

struct Params {
  rows: u32, // rows in this dispatch
  n: u32, // select, sort: columns to read per row; scores: passages in the block
  inStride: u32, // select, sort: elements between rows of the input; scores: H / 4
  seg: u32, // select: columns per workgroup (segment x reads [x * seg, min((x + 1) * seg, n)))
  k: u32, // select: keys kept per segment (segment x writes min(k, its length) at x * k)
  outStride: u32, // elements between rows of the output
  outCol: u32, // output column of segment 0
  outRow: u32, // output row of input row 0
  idBase: u32, // select without IDS: id of column 0
}
@group(0) @binding(0) var<uniform> params: Params;

const WG = {{WG}}u;

// f32 -> u32 with the same order (see the header); -0 maps like +0.
fn ordered(x: f32) -> u32 {
  var b = bitcast<u32>(x);
  if (b == 0x80000000u) {
    b = 0u;
  }
  if ((b & 0x80000000u) != 0u) {
    return ~b;
  }
  return b | 0x80000000u;
}

// The inverse of ordered().
fn unordered(k: u32) -> f32 {
  if ((k & 0x80000000u) != 0u) {
    return bitcast<f32>(k & 0x7fffffffu);
  }
  return bitcast<f32>(~k);
}

#if SELECT
// ---------------------------------------------------------------- select

// Input: f32 scores (block stage), or u32 keys (KEYS: candidate lists), 4 at a time with VEC4.
#if KEYS
#if VEC4
@group(0) @binding(1) var<storage, read> sel_in: array<vec4u>; // [rows, inStride / 4]
#else
@group(0) @binding(1) var<storage, read> sel_in: array<u32>; // [rows, inStride]
#endif
#else
#if VEC4
@group(0) @binding(1) var<storage, read> sel_in: array<vec4f>; // [rows, inStride / 4]
#else
@group(0) @binding(1) var<storage, read> sel_in: array<f32>; // [rows, inStride]
#endif
#endif
#if VEC4
const VW = 4u;
#else
const VW = 1u;
#endif

// Keys of group g (VW values from buffer index g * VW).
fn load_keys(g: u32) -> vec4u {
#if KEYS
#if VEC4
  return sel_in[g];
#else
  return vec4u(sel_in[g], 0u, 0u, 0u);
#endif
#else
#if VEC4
  let v = sel_in[g];
  return vec4u(ordered(v.x), ordered(v.y), ordered(v.z), ordered(v.w));
#else
  return vec4u(ordered(sel_in[g]), 0u, 0u, 0u);
#endif
#endif
}

#if IDS
@group(0) @binding(2) var<storage, read> sel_ids: array<u32>; // [rows, inStride]
#endif
@group(0) @binding(3) var<storage, read_write> sel_out_keys: array<u32>; // [*, outStride]
@group(0) @binding(4) var<storage, read_write> sel_out_ids: array<u32>; // [*, outStride]
#if THR_IN
@group(0) @binding(5) var<storage, read> sel_thr_in: array<u32>; // [rows]
#endif
#if THR_OUT
@group(0) @binding(6) var<storage, read_write> sel_thr_out: array<u32>; // [rows]
#endif

// The selection so far: live keys whose masked bits equal (ph, pl) are undecided, larger
// masked keys are taken; rem keys remain to pick; done = no more passes needed.
struct SelectState {
  ph: u32,
  pl: u32,
  mh: u32,
  ml: u32,
  rem: u32,
  done: u32,
}
var<workgroup> hist: array<atomic<u32>, 256>;
var<workgroup> state: SelectState;
var<workgroup> slot: atomic<u32>;
var<workgroup> kmin: atomic<u32>;

// Id of the candidate at buffer index `at`, column `col` of its row.
fn sel_id(at: u32, col: u32) -> u32 {
#if IDS
  return sel_ids[at];
#else
  return params.idBase + col;
#endif
}

@compute @workgroup_size({{WG}})
fn select_forward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.y;
  let c0 = wid.x * params.seg;
  let len = min(params.seg, params.n - c0);
  let groups = (len + VW - 1u) / VW;
  let inBase = row * params.inStride + c0; // buffer index of the segment's column 0
  let g0 = inBase / VW; // a whole number: VEC4 needs inStride and seg multiples of 4
  let outBase = (params.outRow + row) * params.outStride + params.outCol + wid.x * params.k;
#if THR_IN
  let thr = sel_thr_in[row];
#else
  let thr = 0u; // drops empty slots only
#endif

  if (lid == 0u) {
    state = SelectState(0u, 0u, 0u, 0u, params.k, 0u);
    atomicStore(&slot, 0u);
    atomicStore(&kmin, 0xffffffffu);
  }
  for (var p = 0u; p < 8u; p++) {
    for (var b = lid; b < 256u; b += WG) {
      atomicStore(&hist[b], 0u);
    }
    let s = workgroupUniformLoad(&state); // also the barrier after the clear
    let shift = 24u - 8u * (p & 3u);
    for (var g = lid; g < groups; g += WG) {
      let kv = load_keys(g0 + g);
      for (var e = 0u; e < VW; e++) {
        let i = g * VW + e;
        let kh = kv[e];
        if (i >= len || kh <= thr || (kh & s.mh) != s.ph) {
          continue;
        }
        var word = kh;
        if (p >= 4u) {
          let kl = ~sel_id(inBase + i, c0 + i);
          if ((kl & s.ml) != s.pl) {
            continue;
          }
          word = kl;
        }
        atomicAdd(&hist[(word >> shift) & 255u], 1u);
      }
    }
    workgroupBarrier();
    if (lid == 0u) {
      // The bin d holding the rem-th largest undecided key: keys in bins above d are taken.
      var above = 0u;
      var d = 255i;
      var c = 0u;
      loop {
        c = atomicLoad(&hist[u32(d)]);
        if (above + c >= s.rem) {
          break;
        }
        above += c;
        d -= 1;
        if (d < 0) {
          break;
        }
      }
      var t = s;
      if (d < 0) {
        t.done = 1u; // fewer than rem live keys (first pass only): take them all
      } else {
        if (p < 4u) {
          t.ph |= u32(d) << shift;
          t.mh |= 255u << shift;
        } else {
          t.pl |= u32(d) << shift;
          t.ml |= 255u << shift;
        }
        t.rem = s.rem - above;
        t.done = u32(c == t.rem);
      }
      state = t;
    }
    if (workgroupUniformLoad(&state.done) != 0u) {
      break;
    }
  }

  // Write every live key >= the prefix (min(k, live keys) of them), then pad to k slots.
  // Slots come from an atomic counter, so the order varies run to run; the set does not.
  let s = workgroupUniformLoad(&state);
  for (var g = lid; g < groups; g += WG) {
    let kv = load_keys(g0 + g);
    for (var e = 0u; e < VW; e++) {
      let i = g * VW + e;
      let kh = kv[e];
      if (i >= len || kh <= thr || (kh & s.mh) < s.ph) {
        continue;
      }
      let id = sel_id(inBase + i, c0 + i);
      if ((kh & s.mh) == s.ph && ((~id) & s.ml) < s.pl) {
        continue;
      }
      let at = outBase + atomicAdd(&slot, 1u);
      sel_out_keys[at] = kh;
      sel_out_ids[at] = id;
#if THR_OUT
      atomicMin(&kmin, kh);
#endif
    }
  }
  workgroupBarrier();
  let written = atomicLoad(&slot);
  for (var j = written + lid; j < params.k; j += WG) {
    sel_out_keys[outBase + j] = 0u;
    sel_out_ids[outBase + j] = 0xffffffffu;
  }
#if THR_OUT
  if (lid == 0u) {
    // The k-th best hi once k keys are held; 0 (no threshold) before that.
    sel_thr_out[row] = select(0u, atomicLoad(&kmin), written == params.k);
  }
#endif
}
#endif

#if SORT
// ---------------------------------------------------------------- sort

@group(0) @binding(1) var<storage, read> sort_keys: array<u32>; // [rows, inStride]
@group(0) @binding(2) var<storage, read> sort_ids: array<u32>; // [rows, inStride]
@group(0) @binding(3) var<storage, read_write> sort_out_scores: array<f32>; // [*, outStride]
@group(0) @binding(4) var<storage, read_write> sort_out_ids: array<u32>; // [*, outStride]

const SORT_N = {{SORT_N}}u;
// 8 bytes a slot: SORT_N = 1024 (k up to 1000) is 8 KiB, half of WebGPU's default 16 KiB.
var<workgroup> sk: array<u32, SORT_N>; // key hi = ordered(score), 0 = padding
var<workgroup> si: array<u32, SORT_N>; // id, 0xffffffff = padding

// Whether slot a belongs before slot b: larger score first, then smaller id.
fn before(ka: u32, ia: u32, kb: u32, ib: u32) -> bool {
  return ka > kb || (ka == kb && ia < ib);
}

// Bitonic sort in workgroup memory: log2(SORT_N) (log2(SORT_N) + 1) / 2 stages of SORT_N / 2
// compare-exchanges, one barrier each (55 stages at 1024).
@compute @workgroup_size({{WG}})
fn sort_forward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x;
  let inBase = row * params.inStride;
  for (var i = lid; i < SORT_N; i += WG) {
    if (i < params.n) {
      sk[i] = sort_keys[inBase + i];
      si[i] = sort_ids[inBase + i];
    } else {
      // Pads sort last, like empty slots: key 0, the largest id.
      sk[i] = 0u;
      si[i] = 0xffffffffu;
    }
  }
  workgroupBarrier();
  for (var size = 2u; size <= SORT_N; size <<= 1u) {
    for (var stride = size >> 1u; stride > 0u; stride >>= 1u) {
      for (var t = lid; t < SORT_N / 2u; t += WG) {
        let a = 2u * t - (t & (stride - 1u)); // lower slot of the pair
        let b = a + stride;
        let ka = sk[a];
        let ia = si[a];
        let kb = sk[b];
        let ib = si[b];
        // Blocks with bit `size` clear end up best first, the others worst first.
        let up = (a & size) == 0u;
        if (before(kb, ib, ka, ia) == up) {
          sk[a] = kb;
          si[a] = ib;
          sk[b] = ka;
          si[b] = ia;
        }
      }
      workgroupBarrier();
    }
  }
  let outBase = (params.outRow + row) * params.outStride + params.outCol;
  for (var i = lid; i < params.n; i += WG) {
    sort_out_scores[outBase + i] = unordered(sk[i]);
    sort_out_ids[outBase + i] = si[i];
  }
}
#endif

#if SCORES
// ---------------------------------------------------------------- scores (f16 index)

@group(0) @binding(1) var<storage, read_write> sc_out: array<f32>; // [rows, n]
@group(0) @binding(2) var<storage, read> sc_queries: array<vec4f>; // [rows, H / 4]
@group(0) @binding(3) var<storage, read> sc_passages: array<vec4<f16>>; // [n, H / 4]

const TQ = {{TQ}}u; // queries per invocation
const TP = {{TP}}u; // passages per invocation

// Each invocation: TQ queries x TP passages, f32 accumulation over H / 4 vec4 steps; passage
// values are exact in f32, so the only difference from the f32 path is the f16 storage itself.
// Rows past the end are clamped (computed twice, stored once).
@compute @workgroup_size({{WG}})
fn scores_forward(@builtin(global_invocation_id) gid: vec3u) {
  let H4 = params.inStride;
  let p0 = gid.x * TP;
  let q0 = gid.y * TQ;
  if (p0 >= params.n || q0 >= params.rows) {
    return;
  }
  var acc: array<array<f32, TP>, TQ>;
  for (var h = 0u; h < H4; h++) {
    var pv: array<vec4f, TP>;
    for (var j = 0u; j < TP; j++) {
      pv[j] = vec4f(sc_passages[min(p0 + j, params.n - 1u) * H4 + h]);
    }
    for (var i = 0u; i < TQ; i++) {
      let qv = sc_queries[min(q0 + i, params.rows - 1u) * H4 + h];
      for (var j = 0u; j < TP; j++) {
        acc[i][j] += dot(qv, pv[j]);
      }
    }
  }
  for (var i = 0u; i < TQ; i++) {
    for (var j = 0u; j < TP; j++) {
      if (q0 + i < params.rows && p0 + j < params.n) {
        sc_out[(q0 + i) * params.n + p0 + j] = acc[i][j];
      }
    }
  }
}
#endif
