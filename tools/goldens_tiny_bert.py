"""tiny-bert goldens (tools/make_goldens.py tiny-bert)."""

from __future__ import annotations

import copy
import json
import shutil

import numpy as np

from goldens_common import FIX, MODEL_DIR, TOKENIZER_FILES, need_model, raw_tokenizer, save_safetensors, stats_row, truncate, versions

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
