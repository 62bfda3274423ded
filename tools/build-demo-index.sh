#!/usr/bin/env bash
# Builds the index the browser demo searches: the corpus embedded with all-MiniLM-L6-v2 by
# `aqa index ... --export`, plus the demo config that lists the exported folders.
#
#   bash tools/build-demo-index.sh                    # demo/data/pipeline/corpus.json, max lengths 128 and 32
#   bash tools/build-demo-index.sh my-corpus.json     # another AQA corpus {pid: {title, abstract}}
#   bash tools/build-demo-index.sh corpus.json 128    # one export per max length given (two or more are fused)
#
# Environment: AQA_DEMO_MODEL (model folder, default test/models/all-MiniLM-L6-v2; fetch it with
# bash tools/fetch-test-models.sh), AQA_DEMO_INDEX_DIR (output, default out/demo-index).
#
# Output (git-ignored), for each max length L:
#   out/demo-index/minilm-L/index/    the on-disk index (aqa search reads it)
#   out/demo-index/minilm-L/export/   the browser export (manifest.json, vectors-*.f16, passages.json)
#   out/demo-index/demo.json          the demo config: which exports to search, with which model
#   out/demo-index/corpus.json        a copy of the corpus, for the page's BM25
#   out/demo-index/model-onnx/        the model as `aqa export --format onnx` writes it: the page
#                                     embeds questions with its onnx/model.onnx (onnxruntime-web,
#                                     WebAssembly) where the browser has no WebGPU, and the
#                                     index embeds the corpus with it (aqa index --engine onnx)
#   out/demo-index.model-links/       the model folder as links plus model-onnx/onnx/ (what
#                                     --engine onnx reads); its path is the manifests' model name
#
# One build serves `npm run demo`, `npm run demo:build` and test/demo.test.ts: a stamp
# (out/demo-index/build.stamp) records a digest of every input (the model folder's files, the
# corpus, the example questions, the credit, the max lengths and this script); while they are
# unchanged a rerun does nothing, not even start the CLI. Otherwise `aqa index` still finds an
# index with the same model, corpus and settings up to date, and an index `npm start` (the
# pipeline, out/pipeline/index/minilm) built with the same settings is copied instead of
# re-embedded. As for aqa index, the program's own code is not an input: after a change to the
# numerics, remove out/demo-index. On the 2-core development machine a whole build of the 360
# sample papers takes about 30 s (onnxruntime's CPU kernels; WebGPU on llvmpipe took 3 minutes).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

corpus=${1:-demo/data/pipeline/corpus.json}
shift || true
lengths=("$@")
[ ${#lengths[@]} -eq 0 ] && lengths=(128 32)
model=${AQA_DEMO_MODEL:-test/models/all-MiniLM-L6-v2}
out=${AQA_DEMO_INDEX_DIR:-out/demo-index}

if [ ! -f "$corpus" ]; then
  echo "build-demo-index: no corpus at $corpus" >&2
  exit 2
fi
if [ ! -f "$model/model.safetensors" ]; then
  echo "build-demo-index: no model at $model (run: bash tools/fetch-test-models.sh)" >&2
  exit 2
fi
for len in "${lengths[@]}"; do
  if ! [[ "$len" =~ ^[1-9][0-9]*$ ]]; then
    echo "build-demo-index: max length '$len' is not a positive integer" >&2
    exit 2
  fi
done

# Where the papers come from, written into each export for the page's footer: AQA_DEMO_CREDIT,
# else the sample's own credit when the corpus is the bundled SciFact sample, else none (the page
# then credits no source).
credit=${AQA_DEMO_CREDIT:-}
if [ -z "$credit" ] && [ "$corpus" = demo/data/pipeline/corpus.json ]; then
  credit='SciFact (Wadden et al., EMNLP 2020; claims CC BY 4.0, abstracts from S2ORC, ODC-By 1.0)'
fi
credit_args=()
[ -n "$credit" ] && credit_args=(--credit "$credit")

# Example questions offered on the page: the first three of a questions file (AQA JSONL), by
# default the sample's validation claims when the corpus is the sample's.
questions=${AQA_DEMO_QUESTIONS:-}
if [ -z "$questions" ] && [ "$corpus" = demo/data/pipeline/corpus.json ]; then questions=demo/data/pipeline/qa_valid_flag.txt; fi
examples='[]'
if [ -n "$questions" ]; then
  examples=$(node -e '
    const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter((l) => l.trim());
    console.log(JSON.stringify(lines.slice(0, 3).map((l) => JSON.parse(l).question)));
  ' "$questions")
fi

# Everything the output depends on, as one digest.
inputs_digest() {
  {
    printf 'lengths %s\ncredit %s\nmodel %s\nquestions %s\n' "${lengths[*]}" "$credit" "$(basename "$model")" "$examples"
    sha256sum <"${BASH_SOURCE[0]}"
    sha256sum <"$corpus"
    (cd "$model" && find -L . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
  } | sha256sum | cut -d' ' -f1
}
stamp="$out/build.stamp"
digest=$(inputs_digest)
built_all() {
  [ -f "$out/demo.json" ] && [ -f "$out/corpus.json" ] || return 1
  for len in "${lengths[@]}"; do [ -f "$out/minilm-$len/export/manifest.json" ] || return 1; done
  [ -f "$out/model-onnx/onnx/model.onnx" ] || return 1
}
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ] && built_all; then
  echo "build-demo-index: $out is up to date (same model files, corpus and settings); nothing to do" >&2
  exit 0
fi
rm -f "$stamp"

# shaders/index.ts is generated; the CLI needs it.
node tools/embed-shaders.mjs

mkdir -p "$out"
# The model as an ONNX graph, for pages without WebGPU (a few seconds: no embedding involved),
# and for embedding the corpus below.
# Written under a temporary name and swapped in, so a reader never sees a half-written folder.
echo "build-demo-index: ONNX export of $model -> $out/model-onnx" >&2
rm -rf "$out/model-onnx.tmp" "$out/model-onnx.old"
node node/bin.mjs export --format onnx --model "$model" --out "$out/model-onnx.tmp" >&2
[ -d "$out/model-onnx" ] && mv "$out/model-onnx" "$out/model-onnx.old"
mv "$out/model-onnx.tmp" "$out/model-onnx"
rm -rf "$out/model-onnx.old"

# The corpus is embedded with that graph on onnxruntime's CPU kernels (--engine onnx): several
# times faster than WebGPU on a CPU driver, and the same vectors within 1e-5 (test/engine-onnx.test.ts),
# so the index has the model's identity either way. The engine reads onnx/ inside the model folder:
# a folder of links named like the model (its presets match by name) joins the two.
# It lives beside $out, not in it (the demo build copies $out); its path is the model name the
# manifests record.
src="${out%/}.model-links/$(basename "$model")"
rm -rf "$src"
mkdir -p "$src"
for f in "$model"/*; do [ "$(basename "$f")" = onnx ] && continue; ln -s "$(cd "$(dirname "$f")" && pwd)/$(basename "$f")" "$src/"; done
ln -s "$(cd "$out/model-onnx" && pwd)/onnx" "$src/onnx"

entries=()
for len in "${lengths[@]}"; do
  name=minilm-$len
  echo "build-demo-index: $name: $corpus -> $out/$name" >&2
  # The pipeline's index of the same corpus, model and max length (npm start) is the same index:
  # copy it rather than embed the corpus again. aqa index checks its identity either way.
  pipeline_index=${AQA_DEMO_PIPELINE_INDEX:-out/pipeline/index/minilm}
  if [ ! -f "$out/$name/index/manifest.json" ] && [ -f "$pipeline_index/manifest.json" ] &&
    node -e '
      const m = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      process.exit(m.complete && m.identity.maxLength === Number(process.argv[2]) ? 0 : 1);
    ' "$pipeline_index/manifest.json" "$len"; then
    echo "build-demo-index: $name: starting from the pipeline's index $pipeline_index" >&2
    mkdir -p "$out/$name/index"
    cp "$pipeline_index"/* "$out/$name/index/"
  fi
  # --force: a corpus given as an argument replaces the previous one instead of being refused.
  node node/bin.mjs index --engine onnx --model "$src" --corpus "$corpus" --max-length "$len" \
    --out "$out/$name/index" --export "$out/$name/export" --force "${credit_args[@]}"
  entries+=("{ \"name\": \"$name\", \"index\": \"$name/export/\", \"model\": \"../models/$(basename "$model")/\", \"onnx\": \"model-onnx/onnx/model.onnx\" }")
done

# The corpus itself, for the page's BM25 (lexical and hybrid ranking).
cp "$corpus" "$out/corpus.json.tmp"
mv "$out/corpus.json.tmp" "$out/corpus.json"

# Paths in demo.json are relative to demo.json itself (served as /indexes/demo.json; the model
# as /models/<folder>/). Written last, through a rename, so a reader never sees half of it.
{
  echo '{'
  echo '  "indexes": ['
  for i in "${!entries[@]}"; do
    sep=','
    [ "$i" -eq $((${#entries[@]} - 1)) ] && sep=''
    echo "    ${entries[$i]}$sep"
  done
  echo '  ],'
  echo '  "fusion": { "method": "zscore" },'
  echo '  "corpus": "corpus.json",'
  echo "  \"examples\": $examples"
  echo '}'
} >"$out/demo.json.tmp"
mv "$out/demo.json.tmp" "$out/demo.json"
echo "$digest" >"$stamp"
echo "build-demo-index: wrote $out/demo.json (${#lengths[@]} index(es))" >&2
