"""Reference token ids of real AQA questions (tools/make_goldens.py aqa-questions)."""

from __future__ import annotations

import shutil

import numpy as np

from goldens_common import AQA_SRC, FIX, MODEL_DIR, load_aqa, need_model, raw_tokenizer, save_safetensors, sha256, truncate

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
