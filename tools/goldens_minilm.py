"""Real all-MiniLM-L6-v2 goldens and the tokenizer probe (tools/make_goldens.py minilm)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np

from goldens_common import FIX, MODEL_DIR, aqa_clean, load_aqa, need_model, raw_tokenizer, save_safetensors, sha256, truncate, versions

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
