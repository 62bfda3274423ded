// Dropout with a counter-based mask: out[i] = keep(i) ? x[i] * scale : 0, scale = 1 / (1 - p).
//
// Nothing is stored between the forward and the backward: element i of a site is kept when
// hash(i ^ hash(seed)) >= threshold (threshold = floor(p * 2^32)), a pure function of the
// element's index and the site's seed. The backward (dx = keep(i) ? dout[i] * scale : 0) is this
// same entry on dout with the same seed, and so is a recomputed forward (GradCache's second
// pass, gradient checkpointing): the masks match bit for bit.
//
// hash: Chris Wellons' "triple32" integer hash (hash-prospector; bias 0.021); the launcher
// passes key = hash(seed). Neighbouring seeds' masks, and neighbouring elements, agree as often
// as independent bits would (test/dropout.test.ts); the 2-D pcg2d(i, seed) hash did not (10
// standard deviations for seeds s and s + 1). u32 arithmetic wraps, as in the CPU reference
// (core/ref/dropout.ts, Math.imul).
//
// One flat dispatch per binding-sized chunk: `base` is the chunk's first element, so the mask
// does not depend on how a tensor is chunked.
//
// F16: out and x are f16 (type `act`); the mask is the same integer hash, x is widened to f32,
// multiplied by the f32 scale and rounded to f16 once, so an f16 site drops exactly the
// elements the f32 site with the same seed drops.

#float act

struct Params {
  n: u32, // elements in this chunk
  base: u32, // index of the chunk's first element in the whole tensor
  key: u32, // hash(seed)
  threshold: u32, // keep when hash(index ^ key) >= threshold
  scale: f32,
}
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> out: array<act>;
@group(0) @binding(2) var<storage, read> x: array<act>;

fn triple32(x0: u32) -> u32 {
  var x = x0;
  x ^= x >> 17u;
  x *= 0xed5ad4bbu;
  x ^= x >> 11u;
  x *= 0xac4c1b51u;
  x ^= x >> 15u;
  x *= 0x31848babu;
  x ^= x >> 14u;
  return x;
}

@compute @workgroup_size({{WG}})
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = (wid.x + wid.y * nwg.x) * {{WG}}u + lid.x;
  if (i >= params.n) { return; }
  let keep = triple32((params.base + i) ^ params.key) >= params.threshold;
  out[i] = act(select(0.0, f32(x[i]) * params.scale, keep));
}
