// The encoder of encoder.ts as an ONNX graph (opset 17): the same math, op for op, with the
// weights as f32 initializers. Inputs input_ids and attention_mask (and token_type_ids where the
// checkpoint has a token-type table; our embed feeds zeros), int64 [batch_size, sequence_length]; outputs
// last_hidden_state [batch_size, sequence_length, H] and sentence_embedding [batch_size, H],
// pooled (CLS row or masked mean) and L2-normalised as the model's sentence-transformers files
// say, which is what `aqa embed` returns.
//
// BERT (post-LN):  x = LN(word[ids] + pos[0..L) + type[tt])
// GTE v1.5:        x = LN(word[ids] + type[tt]) (type only if it has the table); RoPE (NTK)
//                  on q and k; GEGLU MLP
// per layer:       h = LN(x + O(attn(q, k, v))), out = LN(h + down(act(up h)))
// Attention masks padded keys with the most negative f32 added to their scores (Hugging Face's
// extended attention mask), so their softmax weight is exactly 0, as in our kernel.
//
// Opset 17 has LayerNormalization (ONNX Runtime's CPU and WebAssembly providers both run it);
// GELU is written with Erf (exact GELU, as BERT's and GTE's "gelu"). Linear weights are stored
// [in, out] for MatMul; BERT's query/key/value and GTE's packed qkv_proj / up_gate_proj become
// separate matrices, so the projections need no Split (RoPE's rotate_half has the only one).

import { ropeTables } from '../../kernels/rope.ts';
import { layerPrefix } from '../architectures.ts';
import type { EncoderConfig } from '../config.ts';
import type { HeadOptions } from '../pooling.ts';
import { transpose } from '../params.ts';
import { GraphBuilder, valueInfo } from './builder.ts';
import { DataType, type ModelMsg } from './proto.ts';

export const ONNX_OPSET = 17;
const IR_VERSION = 8; // the IR version of opset 17

/** A checkpoint tensor by canonical Hugging Face name (weights.ts), f32, HF layout; null if absent. */
export type TensorSource = (name: string) => Float32Array | null;

export interface EncoderGraphOptions extends HeadOptions {
  /** Written into the model's doc string and producer fields. */
  producer?: { name: string; version: string };
  doc?: string;
}

const F32_MIN = -3.4028234663852886e38;

export function buildEncoderModel(cfg: EncoderConfig, tensor: TensorSource, o: EncoderGraphOptions): ModelMsg {
  const g = new GraphBuilder();
  const H = cfg.hiddenSize;
  const need = (name: string): Float32Array => {
    const t = tensor(name);
    if (!t) throw new Error(`ONNX export: tensor '${name}' is not in the checkpoint`);
    return t;
  };
  const gte = cfg.arch === 'gte';
  const typeTable = tensor('embeddings.token_type_embeddings.weight');

  const ids = 'input_ids';
  const maskI = 'attention_mask';
  const seqLen = g.op1('Shape', [ids], { start: 1, end: 2 }); // [L]

  // ---- embeddings
  const word = g.weight('embeddings.word_embeddings.weight', need('embeddings.word_embeddings.weight'), [cfg.vocabSize, H]);
  let x = g.op1('Gather', [word, ids], { axis: 0 });
  if (cfg.positionEmbedding === 'absolute') {
    const pos = g.weight('embeddings.position_embeddings.weight', need('embeddings.position_embeddings.weight'), [cfg.maxPositions, H]);
    const rows = g.op1('Slice', [pos, g.int64([0]), seqLen, g.int64([0])]); // [L, H]
    x = g.op1('Add', [x, rows]);
  }
  if (typeTable) {
    const type = g.weight('embeddings.token_type_embeddings.weight', typeTable, [cfg.typeVocabSize, H]);
    x = g.op1('Add', [x, g.op1('Gather', [type, 'token_type_ids'], { axis: 0 })]);
  }
  const layerNorm = (input: string, prefix: string) =>
    g.op1('LayerNormalization', [input, g.weight(`${prefix}.weight`, need(`${prefix}.weight`), [H]), g.weight(`${prefix}.bias`, need(`${prefix}.bias`), [H])], { axis: -1, epsilon: { float: cfg.layerNormEps } });
  x = layerNorm(x, 'embeddings.LayerNorm');

  // ---- attention mask as an additive bias [B, 1, 1, L]: 0 for tokens, F32_MIN for padding
  const maskF = g.op1('Cast', [maskI], { to: DataType.FLOAT });
  const inverted = g.op1('Sub', [g.scalar(1), maskF]);
  const bias = g.op1('Unsqueeze', [g.op1('Mul', [inverted, g.scalar(F32_MIN)]), g.int64([1, 2])]);

  // ---- RoPE tables [L, 1, d], sliced from the trained context's table
  let rope: { cos: string; sin: string } | null = null;
  if (cfg.positionEmbedding === 'rope') {
    const d = cfg.headDim;
    const t = ropeTables(d, cfg.maxPositions, cfg.ropeTheta ?? 10000, cfg.ropeNtkFactor ?? 1);
    const table = (name: string, data: Float32Array) => g.op1('Unsqueeze', [g.op1('Slice', [g.weight(name, data, [cfg.maxPositions, d]), g.int64([0]), seqLen, g.int64([0])]), g.int64([1])]);
    rope = { cos: table('rope.cos', t.cos), sin: table('rope.sin', t.sin) };
  }
  const half = cfg.headDim / 2;
  const rotate = (t: string): string => {
    // t * cos + rotate_half(t) * sin, rotate_half(t) = cat(-t[d/2:], t[:d/2]) (NeoX layout)
    const [a, b] = g.op('Split', [t, g.int64([half, half])], { axis: -1 }, 2);
    const rot = g.op1('Concat', [g.op1('Neg', [b]), a], { axis: -1 });
    return g.op1('Add', [g.op1('Mul', [t, rope!.cos]), g.op1('Mul', [rot, rope!.sin])]);
  };

  const linear = (input: string, name: string, w: Float32Array, out: number, inp: number, b: Float32Array | null): string => {
    const y = g.op1('MatMul', [input, g.weight(`${name}.weight_t`, transpose(w, out, inp), [inp, out])]);
    return b ? g.op1('Add', [y, g.weight(`${name}.bias`, b, [out])]) : y;
  };
  const gelu = (u: string): string => {
    const erf = g.op1('Erf', [g.op1('Div', [u, g.scalar(Math.SQRT2)])]);
    return g.op1('Mul', [g.op1('Mul', [u, g.op1('Add', [erf, g.scalar(1)])]), g.scalar(0.5)]);
  };
  const headShape = g.int64([0, 0, cfg.numHeads, cfg.headDim]);
  const hiddenShape = g.int64([0, 0, H]);
  const I = cfg.intermediateSize;

  for (let l = 0; l < cfg.numLayers; l++) {
    const p = layerPrefix(l);
    // q, k, v weights [H, H] and biases [H] in HF layout, whichever way the family stores them
    const qkv: { w: Float32Array; b: Float32Array }[] = [];
    if (gte) {
      const w = need(`${p}.attention.qkv_proj.weight`);
      const b = need(`${p}.attention.qkv_proj.bias`);
      for (let i = 0; i < 3; i++) qkv.push({ w: w.subarray(i * H * H, (i + 1) * H * H), b: b.subarray(i * H, (i + 1) * H) });
    } else {
      for (const part of ['query', 'key', 'value']) qkv.push({ w: need(`${p}.attention.self.${part}.weight`), b: need(`${p}.attention.self.${part}.bias`) });
    }
    const heads = ['q', 'k', 'v'].map((n, i) => {
      let t = g.op1('Reshape', [linear(x, `${p}.attention.${n}`, qkv[i].w, H, H, qkv[i].b), headShape]); // [B, L, nH, d]
      if (rope && n !== 'v') t = rotate(t);
      return g.op1('Transpose', [t], { perm: n === 'k' ? [0, 2, 3, 1] : [0, 2, 1, 3] });
    });
    const scores = g.op1('Add', [g.op1('Mul', [g.op1('MatMul', [heads[0], heads[1]]), g.scalar(1 / Math.sqrt(cfg.headDim))]), bias]);
    const probs = g.op1('Softmax', [scores], { axis: -1 });
    const ctx = g.op1('Reshape', [g.op1('Transpose', [g.op1('MatMul', [probs, heads[2]])], { perm: [0, 2, 1, 3] }), hiddenShape]);
    const oName = gte ? 'attention.o_proj' : 'attention.output.dense';
    const attn = linear(ctx, `${p}.${oName}`, need(`${p}.${oName}.weight`), H, H, need(`${p}.${oName}.bias`));
    const h = layerNorm(g.op1('Add', [x, attn]), `${p}.${gte ? 'attn_ln' : 'attention.output.LayerNorm'}`);

    let act: string;
    let downName: string;
    if (gte) {
      const w = need(`${p}.mlp.up_gate_proj.weight`); // rows up | gate
      const up = linear(h, `${p}.mlp.up_proj`, w.subarray(0, I * H), I, H, null);
      const gate = linear(h, `${p}.mlp.gate_proj`, w.subarray(I * H), I, H, null);
      act = g.op1('Mul', [gelu(gate), up]);
      downName = `${p}.mlp.down_proj`;
    } else {
      act = gelu(linear(h, `${p}.intermediate.dense`, need(`${p}.intermediate.dense.weight`), I, H, need(`${p}.intermediate.dense.bias`)));
      downName = `${p}.output.dense`;
    }
    const m = linear(act, downName, need(`${downName}.weight`), H, I, need(`${downName}.bias`));
    x = layerNorm(g.op1('Add', [h, m]), `${p}.${gte ? 'mlp_ln' : 'output.LayerNorm'}`);
  }
  g.op1('Identity', [x]);
  const last = g.nameLast('last_hidden_state');

  // ---- sentence embedding: pooling.ts's head
  let pooled: string;
  if (o.pooling === 'cls') {
    pooled = g.op1('Gather', [last, g.int64([0], [])], { axis: 1 });
  } else {
    const sum = g.op1('ReduceSum', [g.op1('Mul', [last, g.op1('Unsqueeze', [maskF, g.int64([2])])]), g.int64([1])], { keepdims: 0 });
    const count = g.op1('ReduceSum', [maskF, g.int64([1])], { keepdims: 1 });
    pooled = g.op1('Div', [sum, g.op1('Max', [count, g.scalar(1e-9)])]);
  }
  if (o.normalize) {
    const norm = g.op1('ReduceL2', [pooled], { axes: [1], keepdims: 1 });
    g.op1('Div', [pooled, g.op1('Max', [norm, g.scalar(1e-12)])]);
  } else {
    g.op1('Identity', [pooled]);
  }
  g.nameLast('sentence_embedding');

  const dims = ['batch_size', 'sequence_length'];
  const inputs = [valueInfo(ids, DataType.INT64, dims), valueInfo(maskI, DataType.INT64, dims)];
  if (typeTable) inputs.push(valueInfo('token_type_ids', DataType.INT64, dims));
  const outputs = [valueInfo('last_hidden_state', DataType.FLOAT, [...dims, H]), valueInfo('sentence_embedding', DataType.FLOAT, ['batch_size', H])];
  return {
    ir_version: IR_VERSION,
    producer_name: o.producer?.name ?? 'aqa-webgpu',
    producer_version: o.producer?.version ?? '',
    opset_import: [{ domain: '', version: ONNX_OPSET }],
    graph: g.graph(`${cfg.arch}_encoder`, inputs, outputs, o.doc),
    metadata_props: [
      { key: 'pooling', value: o.pooling },
      { key: 'normalize', value: String(o.normalize) },
    ],
  };
}
