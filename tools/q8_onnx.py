"""Write <model>/onnx/model_quantized.onnx, the file transformers.js loads for dtype 'q8'.

transformers.js' q8 weights are made by onnxruntime's dynamic quantization of the f32 ONNX
export. This does the same, with the settings of Xenova's conversion script (scripts/convert.py
of transformers.js v2, which made the published Xenova/* q8 files): quantize_dynamic with
QInt8 weights, per_channel=True, reduce_range=True (7-bit weights), QUInt8 dynamic activations,
every op type onnxruntime can quantize (MatMul with a constant B, Gather, ...), and extra options
EnableSubgraph and MatMulConstBOnly.

The f32 input is <model>/onnx/model.onnx from tools/export_onnx.py (torch). Where that file is
missing and torch is not installed, a BERT-family model folder is written to ONNX here directly
from model.safetensors with onnx.helper: the graph BertModel computes (absolute positions,
erf GELU, post-LayerNorm), inputs input_ids, attention_mask, token_type_ids, output
last_hidden_state, as export_onnx.py produces; its fp32 embeddings are checked against ours
by tools/int8-parity.ts.

    python3 tools/q8_onnx.py test/models/all-MiniLM-L6-v2

Needs onnx, onnxruntime, numpy, safetensors (pip install onnx onnxruntime numpy safetensors).
Not used by the tests.
"""
import json
import math
import os
import subprocess
import sys

import numpy as np


def load_weights(model_dir: str) -> dict:
    from safetensors.numpy import load_file

    raw = load_file(os.path.join(model_dir, "model.safetensors"))
    out = {}
    for name, t in raw.items():
        for prefix in ("bert.", "model."):
            if name.startswith(prefix):
                name = name[len(prefix):]
        out[name] = t.astype(np.float32) if t.dtype != np.int64 else t
    return out


def build_bert_onnx(model_dir: str, out_path: str) -> None:
    """The f32 BertModel graph (last_hidden_state) from the folder's config and safetensors."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    if cfg.get("model_type") != "bert" or cfg.get("position_embedding_type", "absolute") != "absolute":
        sys.exit(f"{model_dir}: only BERT with absolute positions is built here; use tools/export_onnx.py (torch)")
    if cfg.get("hidden_act", "gelu") != "gelu":
        sys.exit(f"{model_dir}: hidden_act {cfg.get('hidden_act')} is not built here")
    w = load_weights(model_dir)
    H = cfg["hidden_size"]
    heads = cfg["num_attention_heads"]
    hd = H // heads
    eps = float(cfg.get("layer_norm_eps", 1e-12))

    inits, nodes = [], []

    def init(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def const(name, values, dtype=np.int64):
        return init(name, np.array(values, dtype=dtype))

    def node(op, inputs, name, **attrs):
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def linear(x, prefix, tag):
        # torch.nn.Linear exports as MatMul with the [in, out] transpose as initializer, then Add.
        wt = init(f"{prefix}.weight_t", w[f"{prefix}.weight"].T)
        b = init(f"{prefix}.bias", w[f"{prefix}.bias"])
        return node("Add", [node("MatMul", [x, wt], f"{tag}/MatMul"), b], f"{tag}/Add")

    def layer_norm(x, prefix, tag):
        g = init(f"{prefix}.weight", w[f"{prefix}.weight"])
        b = init(f"{prefix}.bias", w[f"{prefix}.bias"])
        return node("LayerNormalization", [x, g, b], tag, axis=-1, epsilon=eps)

    # embeddings
    word = node("Gather", [init("embeddings.word_embeddings.weight", w["embeddings.word_embeddings.weight"]), "input_ids"], "emb/word")
    tt = node("Gather", [init("embeddings.token_type_embeddings.weight", w["embeddings.token_type_embeddings.weight"]), "token_type_ids"], "emb/type")
    # positions as BertEmbeddings exports them: position_ids[:, :S], then a Gather of the table
    seq = node("Shape", ["input_ids"], "emb/seq", start=1, end=2)
    table = w["embeddings.position_embeddings.weight"]
    pos_ids = node("Slice", [const("position_ids", [list(range(table.shape[0]))]), const("zero1", [0]), seq, const("axis1", [1])], "emb/pos_ids")
    pos = node("Gather", [init("embeddings.position_embeddings.weight", table), pos_ids], "emb/pos")
    x = node("Add", [node("Add", [word, tt], "emb/add1"), pos], "emb/add2")
    x = layer_norm(x, "embeddings.LayerNorm", "emb/ln")

    # additive mask [B, 1, 1, S]: 0 where attended, the f32 minimum where masked (as BertModel)
    m = node("Cast", ["attention_mask"], "mask/cast", to=TensorProto.FLOAT)
    inv = node("Sub", [init("one_f", np.array(1.0, np.float32)), m], "mask/inv")
    neg = node("Mul", [inv, init("min_f", np.array(np.finfo(np.float32).min, np.float32))], "mask/neg")
    mask = node("Unsqueeze", [neg, const("axes12", [1, 2])], "mask/4d")
    heads_shape = const("heads_shape", [0, 0, heads, hd])
    merge_shape = const("merge_shape", [0, 0, H])
    inv_sqrt = init("inv_sqrt_hd", np.array(1.0 / math.sqrt(hd), np.float32))
    half = init("half", np.array(0.5, np.float32))
    one = init("one_g", np.array(1.0, np.float32))
    rsqrt2 = init("rsqrt2", np.array(1.0 / math.sqrt(2.0), np.float32))

    for l in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{l}"
        t = f"l{l}"

        def split(name):
            return node("Reshape", [name, heads_shape], f"{name}/heads")

        q = node("Transpose", [split(linear(x, f"{p}.attention.self.query", f"{t}/q"))], f"{t}/qT", perm=[0, 2, 1, 3])
        k = node("Transpose", [split(linear(x, f"{p}.attention.self.key", f"{t}/k"))], f"{t}/kT", perm=[0, 2, 3, 1])
        v = node("Transpose", [split(linear(x, f"{p}.attention.self.value", f"{t}/v"))], f"{t}/vT", perm=[0, 2, 1, 3])
        s = node("Add", [node("Mul", [node("MatMul", [q, k], f"{t}/qk"), inv_sqrt], f"{t}/scaled"), mask], f"{t}/masked")
        probs = node("Softmax", [s], f"{t}/softmax", axis=-1)
        ctx = node("Transpose", [node("MatMul", [probs, v], f"{t}/ctx")], f"{t}/ctxT", perm=[0, 2, 1, 3])
        ctx = node("Reshape", [ctx, merge_shape], f"{t}/merge")
        a = linear(ctx, f"{p}.attention.output.dense", f"{t}/o")
        x = layer_norm(node("Add", [a, x], f"{t}/res1"), f"{p}.attention.output.LayerNorm", f"{t}/ln1")
        up = linear(x, f"{p}.intermediate.dense", f"{t}/up")
        erf = node("Erf", [node("Mul", [up, rsqrt2], f"{t}/gelu/div")], f"{t}/gelu/erf")
        g = node("Mul", [node("Mul", [up, half], f"{t}/gelu/half"), node("Add", [erf, one], f"{t}/gelu/1p")], f"{t}/gelu")
        down = linear(g, f"{p}.output.dense", f"{t}/down")
        x = layer_norm(node("Add", [down, x], f"{t}/res2"), f"{p}.output.LayerNorm", f"{t}/ln2")

    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="output"))
    dyn = ["batch_size", "sequence_length"]
    graph = helper.make_graph(
        nodes,
        "bert",
        [helper.make_tensor_value_info(n, TensorProto.INT64, dyn) for n in ("input_ids", "attention_mask", "token_type_ids")],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, dyn + [H])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    tmp = out_path + ".part"
    onnx.save(model, tmp)
    os.replace(tmp, out_path)
    print(f"wrote {out_path} (built from model.safetensors)")


def quantize(src: str, dst: str) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = dst + ".part.onnx"
    quantize_dynamic(
        src,
        tmp,
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=True,
        extra_options={"EnableSubgraph": True, "MatMulConstBOnly": True},
    )
    os.replace(tmp, dst)
    print(f"wrote {dst} ({os.path.getsize(dst) / 2**20:.2f} MiB; f32 {os.path.getsize(src) / 2**20:.2f} MiB)")


def main(model_dir: str) -> None:
    onnx_dir = os.path.join(model_dir, "onnx")
    src = os.path.join(onnx_dir, "model.onnx")
    os.makedirs(onnx_dir, exist_ok=True)
    if not os.path.exists(src):
        try:
            import torch  # noqa: F401

            subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "export_onnx.py"), model_dir], check=True)
        except ImportError:
            build_bert_onnx(model_dir, src)
    quantize(src, os.path.join(onnx_dir, "model_quantized.onnx"))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
