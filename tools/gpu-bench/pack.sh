#!/usr/bin/env bash
# Pack what a bare GPU machine with no Node.js and no package registry needs to run `aqa bench`
# (DESIGN.md section 7): an xz-compressed Node binary, dawn.node, the CLI bundled into one file,
# the tokenizer files, and the scripts. Writes .gpu-bench/ (git-ignored, ~35 MB); then run
# `bash .gpu-bench/run.sh` on the GPU machine from the repository root.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=.gpu-bench
rm -rf "$out/node_modules" "$out/aqa.mjs"
mkdir -p "$out/node_modules/webgpu/dist/linux-x64" "$out/tokenizer"
npm run -s shaders
# import.meta.url is defined away: node/bench/matmul.ts runs its own main() when it is the entry
# script, and in a bundle every module shares the entry's URL.
npx esbuild node/cli.ts --bundle --platform=node --format=esm --target=node20 --log-level=warning \
  --external:webgpu --external:onnxruntime-node --external:@huggingface/transformers \
  --define:import.meta.url='"bundle:aqa"' \
  --banner:js="import { createRequire } from 'module'; const require = createRequire(process.cwd() + '/');" \
  --outfile="$out/aqa.mjs"
cp node_modules/webgpu/package.json node_modules/webgpu/index.js "$out/node_modules/webgpu/"
xz -T2 -6 -c node_modules/webgpu/dist/linux-x64/dawn.node > "$out/node_modules/webgpu/dist/linux-x64/dawn.node.xz"
[ -f "$out/node.xz" ] || xz -T2 -6 -c "$(command -v node)" > "$out/node.xz"
for f in tokenizer.json tokenizer_config.json special_tokens_map.json vocab.txt; do
  cp "test/models/all-MiniLM-L6-v2/$f" "$out/tokenizer/"
done
cp tools/bench_torch.py tools/gpu-bench/run.sh "$out/"
du -sh "$out"
