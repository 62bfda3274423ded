// The parameter arena: weights, gradients and both AdamW moments each as views of a few large
// GPU buffers (one set per role, all four with the same layout), so that one optimizer update
// is a handful of dispatches (AdamW, the gradient norm's partial sums, zeroing the gradients)
// per buffer instead of one per tensor (llm.c keeps its parameters the same way).
//
// Layout: the decayed tensors first, then the others (biases, LayerNorm), each group in the
// model's parameter order, so AdamW is one dispatch per group and buffer (a run: the padding
// between its tensors is zeros in all four roles, which AdamW leaves zero). Every tensor starts
// at a multiple of blockBytes, the larger (both are powers of two) of the adapter's storage offset
// alignment (each view must be bindable alone: the forward and backward kernels bind single
// tensors) and NORM_CHUNK elements: the gradient norm over a whole buffer then has the very
// partial sums of the tensors one by one, and normOrder() makes its final stage add them in the
// model's order. The arena changes no bit of the norm, the clipping coefficient or the update.
// The padding costs under 16 KiB per tensor and role (about 1 MiB per role for MiniLM's 77).
//
// One buffer holds at most one storage binding (maxStorageBufferBindingSize, 128 MiB by
// default, or maxBufferSize if smaller): a model larger than that gets several segments, split
// between tensors. A tensor that alone exceeds the limit has a segment of its own, which the
// kernels chunk as before.

import type { Gpu } from '../gpu/device.ts';
import { Tensor } from '../gpu/tensor.ts';
import { type AdamwParam, NORM_CHUNK, normPartials } from '../kernels/optim.ts';

export interface ArenaEntry {
  key: string;
  shape: readonly number[];
  decay: boolean;
}

export interface ArenaSlot extends ArenaEntry {
  /** Position in the entries planArena was given (the model's order). */
  index: number;
  segment: number;
  /** Byte offset inside the segment's buffer. */
  offset: number;
  size: number;
}

export interface ArenaSegment {
  /** Indices into slots, in buffer order. */
  slots: number[];
  /** f32 elements up to the end of the last tensor (what the whole-segment kernels cover). */
  elements: number;
}

export interface ArenaLayout {
  /** One per entry, in the entries' order. */
  slots: ArenaSlot[];
  segments: ArenaSegment[];
  /** Bytes every tensor start is a multiple of. */
  blockBytes: number;
}

export interface ArenaLimits {
  maxBinding: number;
  maxBufferSize: number;
  offsetAlign: number;
}

const alignUp = (n: number, a: number) => Math.ceil(n / a) * a;

/**
 * Place f32 tensors (decayed ones first) into segments of at most one storage binding each,
 * split between tensors.
 */
export function planArena(entries: readonly ArenaEntry[], limits: ArenaLimits): ArenaLayout {
  // WebGPU requires the offset alignment to be a power of two, as NORM_CHUNK is.
  const blockBytes = Math.max(limits.offsetAlign, NORM_CHUNK * 4);
  const cap = Math.min(limits.maxBinding, limits.maxBufferSize);
  const slots: ArenaSlot[] = new Array(entries.length);
  const segments: ArenaSegment[] = [];
  let cur: ArenaSegment | null = null;
  let end = 0; // bytes used in cur
  const order = [...entries.keys()].sort((a, b) => Number(entries[b].decay) - Number(entries[a].decay) || a - b);
  for (const index of order) {
    const e = entries[index];
    const size = e.shape.reduce((a, b) => a * b, 1);
    const bytes = size * 4;
    if (!cur || alignUp(end, blockBytes) + bytes > cap) {
      cur = { slots: [], elements: 0 };
      segments.push(cur);
      end = 0;
    }
    const at = alignUp(end, blockBytes);
    cur.slots.push(index);
    slots[index] = { ...e, index, segment: segments.length - 1, offset: at, size };
    end = at + bytes;
    cur.elements = end / 4;
    // A tensor over the limit keeps its segment to itself.
    if (bytes > cap) cur = null;
  }
  return { slots, segments, blockBytes };
}

/** One role (weights, gradients, first or second moments): its buffers and a view per tensor. */
export interface ArenaRole {
  /** Each segment as one flat f32 tensor [elements] (the whole-segment kernels' operand). */
  segments: Tensor[];
  /** One view per slot, shaped like the tensor it stands for. */
  views: Tensor[];
}

/**
 * Allocate a zero-filled role. With ownedByViews, each segment's first view owns the buffer
 * (releasing that view frees the segment, so a weights structure holding the views frees them
 * as it frees separate tensors); otherwise `segments` own them.
 */
export function allocateRole(gpu: Gpu, layout: ArenaLayout, ownedByViews = false): ArenaRole {
  const buffers = layout.segments.map((s) => gpu.zeros([Math.max(s.elements, 1)]).buffer);
  return viewRole(gpu, layout, buffers, ownedByViews);
}

function viewRole(gpu: Gpu, layout: ArenaLayout, buffers: GPUBuffer[], ownedByViews: boolean): ArenaRole {
  const segments = layout.segments.map((s, i) => new Tensor(gpu, buffers[i], [s.elements], 'f32', 0, !ownedByViews));
  const owner = (s: ArenaSlot) => ownedByViews && layout.segments[s.segment].slots[0] === s.index;
  const views = layout.slots.map((s) => new Tensor(gpu, buffers[s.segment], s.shape, 'f32', s.offset, owner(s)));
  return { segments, views };
}

/**
 * The weights role: tensors already laid out as `layout` (by an earlier arena on the same
 * model) are used where they are; otherwise each is copied into a new arena, byte for byte, and
 * its old buffer released. `moved` says which happened: the caller must then point the model
 * at the new views. The new buffers are owned by the views.
 */
export function placeWeights(gpu: Gpu, layout: ArenaLayout, tensors: readonly Tensor[]): ArenaRole & { moved: boolean } {
  if (tensors.length !== layout.slots.length) throw new Error(`parameter arena: ${tensors.length} tensors for ${layout.slots.length} slots`);
  const buffers = layout.segments.map((s) => tensors[s.slots[0]].buffer);
  const inPlace = layout.slots.every((s, i) => tensors[i].dtype === 'f32' && tensors[i].buffer === buffers[s.segment] && tensors[i].offset === s.offset);
  if (inPlace) return { ...viewRole(gpu, layout, buffers, true), moved: false };
  const role = allocateRole(gpu, layout, true);
  layout.slots.forEach((s, i) => {
    const t = tensors[i];
    if (t.dtype !== 'f32' || t.size !== s.size) throw new Error(`parameter arena: ${s.key} is ${t}, expected f32 [${s.shape}]`);
    gpu.copy(role.views[i], t);
  });
  for (const t of tensors) t.release();
  return { ...role, moved: true };
}

/**
 * The AdamW operands of an arena: per segment, one flat run over each decay group (from its
 * first tensor's start to its last tensor's end, padding included).
 */
export function arenaAdamwParams(layout: ArenaLayout, roles: { p: ArenaRole; g: ArenaRole; m: ArenaRole; v: ArenaRole }): AdamwParam[] {
  const out: AdamwParam[] = [];
  layout.segments.forEach((seg, i) => {
    for (const decay of [true, false]) {
      const group = seg.slots.map((k) => layout.slots[k]).filter((s) => s.decay === decay && s.size > 0);
      if (!group.length) continue;
      const start = group[0].offset / 4;
      const last = group[group.length - 1];
      const n = last.offset / 4 + last.size - start;
      const run = (r: ArenaRole) => r.segments[i].rows(start, n);
      out.push({ p: run(roles.p), g: run(roles.g), m: run(roles.m), v: run(roles.v), decay });
    }
  });
  return out;
}

/**
 * The `order` table for gradNormSquared over the gradient role's segments: the partial sums of
 * every tensor, in the entries' (the model's) order, so the norm is bit-identical to the norm
 * of the tensors passed one by one.
 */
export function normOrder(gpu: Gpu, layout: ArenaLayout): Tensor {
  const chunkBytes = NORM_CHUNK * 4;
  // Where each segment's partials start when the segments are the operands, in buffer order.
  const segBase: number[] = [];
  let total = 0;
  for (const seg of layout.segments) {
    segBase.push(total);
    total += normPartials(gpu, seg.elements);
  }
  const order: number[] = [];
  for (const s of layout.slots) {
    const first = segBase[s.segment] + s.offset / chunkBytes;
    for (let k = 0; k < normPartials(gpu, s.size); k++) order.push(first + k);
  }
  return gpu.upload(Uint32Array.from(order), [order.length], 'u32');
}

/**
 * Point the tensor field named by a parameter key ('word', 'layers.3.qkvWt') of a weights (or
 * gradients) structure at t.
 */
export function rebind(root: object, key: string, t: Tensor): void {
  const path = key.split('.');
  let o = root as Record<string, unknown>;
  for (const p of path.slice(0, -1)) {
    const next = o[p];
    if (next === null || typeof next !== 'object') throw new Error(`parameter arena: no field '${key}' in the weights`);
    o = next as Record<string, unknown>;
  }
  const last = path[path.length - 1];
  if (!(o[last] instanceof Tensor)) throw new Error(`parameter arena: no tensor '${key}' in the weights`);
  o[last] = t;
}

/**
 * The f16 working copy of the weights for mixed-precision training: the same layout at half
 * the bytes, so that one cast per segment refreshes it from the f32 master weights. A tensor
 * starts at blockBytes / 2 (at least NORM_CHUNK * 2 = 8 KiB, a multiple of every storage offset
 * alignment up to that), so each view is bindable alone as the f32 ones are. The segments own
 * the buffers.
 */
export function allocateHalfRole(gpu: Gpu, layout: ArenaLayout): ArenaRole {
  const half = layout.blockBytes / 2;
  if (half % gpu.limits.offsetAlign !== 0) throw new Error(`parameter arena: f16 copy needs ${gpu.limits.offsetAlign}-byte aligned tensors, the layout gives ${half}`);
  const buffers = layout.segments.map((s) => gpu.zeros([Math.max(s.elements, 1)], 'f16').buffer);
  const segments = layout.segments.map((s, i) => new Tensor(gpu, buffers[i], [s.elements], 'f16', 0, true));
  const views = layout.slots.map((s) => new Tensor(gpu, buffers[s.segment], s.shape, 'f16', s.offset / 2, false));
  return { segments, views };
}
