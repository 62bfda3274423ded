// Contrastive (InfoNCE) loss over a [Q, P] matrix of logits s = q p^T / temperature, whose
// row i has its target at column i * G (FlagEmbedding's layout: P = Q * G passages, each
// query's group [positive, negatives...] in order, every passage of the step a candidate).
// core/kernels/loss.ts forms the logits and the embedding gradients with matmul; the two
// entries here are the parts between:
//
//   row_xent   one workgroup per row: lse = log sum_j exp(s_j), loss_i = lse - s_target, and
//              the logits overwritten in place by their gradient softmax(s) - onehot(target)
//              (the 1 / Q of the mean and the caller's scale go into the matmul's alpha)
//   loss_mean  one workgroup: loss = sum_i loss_i / Q
//
// Numerics, f32. Two passes over the row: the max m, then sum_j exp(s_j - m) (every term <= 1,
// the largest exactly 1, so the sum is in [1, P] and cannot overflow; with temperature 0.02
// and unit embeddings logits span [-50, 50], whose exp alone would overflow f32 at 88).
// loss_i = (m - s_target) + log(sum): both terms are >= 0 (m is the row max, sum >= 1), so
// nothing cancels, and a confidently right row (s_target = m, sum ~ 1) keeps full relative
// precision, where (m + log(sum)) - s_target would carry an absolute ulp(50) = 3.8e-6 at T = 0.02.
// Probabilities exp(s_j - m) / sum: WGSL's exp is good to 3 + 2|x| ulp, so terms that matter
// (p_j >= 1e-4, |s_j - m| <= 9 + log P) are within ~30 ulp; tiny ones are off by a larger
// relative error of a value that is itself negligible.
// Reductions are strided per-thread sums followed by a fixed tree: bit-identical run to run.

struct Params {
  rows: u32, // row_xent: rows in this dispatch; loss_mean: Q
  P: u32, // row_xent: columns (passages)
  G: u32, // row_xent: group size; the target of global row r is column r * G
  row0: u32, // row_xent: global index of this dispatch's first row (chunked launches)
}
@group(0) @binding(0) var<uniform> params: Params;

var<workgroup> partial: array<f32, {{WG}}>;

// Lowest finite f32: the identity of max for threads that see no column (P < WG).
const F32_LOWEST: f32 = -0x1.fffffep+127f; // -3.4028235e38

// ---------------------------------------------------------------- row_xent
@group(0) @binding(1) var<storage, read_write> xent_logits: array<f32>; // [rows, P]: in logits, out dlogits
@group(0) @binding(2) var<storage, read_write> xent_loss: array<f32>; // [Q]: per-row cross-entropy, by global row

@compute @workgroup_size({{WG}})
fn row_xent(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= params.rows) { return; } // uniform per workgroup: no thread reaches a barrier alone
  let P = params.P;
  let base = row * P;
  let tgt = (params.row0 + row) * params.G; // ('target' is a WGSL reserved word)

  var m = F32_LOWEST;
  for (var j = lid.x; j < P; j += {{WG}}u) {
    m = max(m, xent_logits[base + j]);
  }
  partial[lid.x] = m;
  workgroupBarrier();
  for (var s = {{WG}}u / 2u; s > 0u; s >>= 1u) {
    if (lid.x < s) {
      partial[lid.x] = max(partial[lid.x], partial[lid.x + s]);
    }
    workgroupBarrier();
  }
  let mx = partial[0];
  workgroupBarrier(); // every thread has read partial[0] before the sum below overwrites it

  var sum = 0.0;
  for (var j = lid.x; j < P; j += {{WG}}u) {
    sum += exp(xent_logits[base + j] - mx);
  }
  partial[lid.x] = sum;
  workgroupBarrier();
  for (var s = {{WG}}u / 2u; s > 0u; s >>= 1u) {
    if (lid.x < s) {
      partial[lid.x] += partial[lid.x + s];
    }
    workgroupBarrier();
  }
  let total = partial[0];
  // Every read of the logits above precedes a barrier; from here each thread rewrites only
  // its own columns, so the in-place update races with nothing.
  let target_logit = xent_logits[base + tgt];
  workgroupBarrier(); // the target column is read before its owner overwrites it
  for (var j = lid.x; j < P; j += {{WG}}u) {
    let p = exp(xent_logits[base + j] - mx) / total;
    xent_logits[base + j] = select(p, p - 1.0, j == tgt);
  }
  if (lid.x == 0u) {
    xent_loss[params.row0 + row] = (mx - target_logit) + log(total);
  }
}

// ---------------------------------------------------------------- loss_mean
@group(0) @binding(1) var<storage, read_write> mean_loss: array<f32>; // [1]
@group(0) @binding(2) var<storage, read> mean_rows: array<f32>; // [Q]

@compute @workgroup_size({{WG}})
fn loss_mean(@builtin(local_invocation_id) lid: vec3u) {
  let Q = params.rows;
  var s = 0.0;
  for (var i = lid.x; i < Q; i += {{WG}}u) {
    s += mean_rows[i];
  }
  partial[lid.x] = s;
  workgroupBarrier();
  for (var k = {{WG}}u / 2u; k > 0u; k >>= 1u) {
    if (lid.x < k) {
      partial[lid.x] += partial[lid.x + k];
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    mean_loss[0] = partial[0] / f32(Q);
  }
}
