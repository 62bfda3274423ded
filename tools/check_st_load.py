#!/usr/bin/env python3
"""Check that a model folder written by `aqa train` loads in sentence-transformers and embeds
like our runtime does.

  node node/bin.mjs embed --model OUT --input texts.txt --out ours.npy
  python3 tools/check_st_load.py OUT texts.txt ours.npy

Prints the modules sentence-transformers built, and the min cosine / max abs difference between
its embeddings and ours; exits 1 if any cosine is below 0.99999.
"""

import sys

import numpy as np
from sentence_transformers import SentenceTransformer


def main():
    model_dir, texts_path, ours_path = sys.argv[1:4]
    texts = [line.rstrip('\n') for line in open(texts_path, encoding='utf-8')]
    model = SentenceTransformer(model_dir, device='cpu')
    print(model)
    ref = model.encode(texts, batch_size=32, convert_to_numpy=True, normalize_embeddings=False)
    ours = np.load(ours_path)
    assert ours.shape == ref.shape, f'shape {ours.shape} vs {ref.shape}'
    cos = (ours * ref).sum(1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(ref, axis=1))
    print(f'{len(texts)} texts: min cosine {cos.min():.9f}, max abs diff {np.abs(ours - ref).max():.2e}')
    sys.exit(0 if cos.min() >= 0.99999 else 1)


if __name__ == '__main__':
    main()
