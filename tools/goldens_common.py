"""Shared paths, model checks and file writers of tools/make_goldens.py."""

from __future__ import annotations

import hashlib
import json
import os
import re
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
