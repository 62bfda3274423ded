#!/usr/bin/env bash
# Pack what a bare GPU machine with no Node.js and no package registry needs to find an adapter
# and run `aqa bench` (DESIGN.md section 7): an xz-compressed Node binary, dawn.node, the CLI
# bundled into one file, the tokenizer files, the scripts, and the Debian packages a diagnosis
# needs (see DEBS below). Writes .gpu-bench/ (git-ignored, ~33 MB); then run
# `bash .gpu-bench/run.sh` on the GPU machine from the repository root (see run.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=.gpu-bench
rm -rf "$out/node_modules" "$out/aqa.mjs" "$out/debs"
mkdir -p "$out/node_modules/webgpu/dist/linux-x64" "$out/tokenizer" "$out/debs"
npm run -s shaders
# import.meta.url is replaced by the URL of a file beside the bundle that is not the entry script:
# node/bench/matmul.ts runs its own main() when it is the entry script (in a bundle every module
# shares the entry's URL), and node/diagnose.ts finds diagnose-probe.mjs beside itself.
npx esbuild node/cli.ts --bundle --platform=node --format=esm --target=node20 --log-level=warning \
  --external:webgpu --external:onnxruntime-node --external:@huggingface/transformers \
  --define:import.meta.url=__aqaModuleUrl \
  --banner:js="import { createRequire } from 'module'; const require = createRequire(process.cwd() + '/'); const __aqaModuleUrl = new URL('./aqa-bundle.mjs', import.meta.url).href;" \
  --outfile="$out/aqa.mjs"
cp node_modules/webgpu/package.json node_modules/webgpu/index.js "$out/node_modules/webgpu/"
xz -T2 -6 -c node_modules/webgpu/dist/linux-x64/dawn.node > "$out/node_modules/webgpu/dist/linux-x64/dawn.node.xz"
[ -f "$out/node.xz" ] || xz -T2 -6 -c "$(command -v node)" > "$out/node.xz"
for f in tokenizer.json tokenizer_config.json special_tokens_map.json vocab.txt; do
  cp "test/models/all-MiniLM-L6-v2/$f" "$out/tokenizer/"
done
cp tools/bench_torch.py node/diagnose-probe.mjs "$out/"
cp tools/gpu-bench/{run.sh,routes.sh,kit-prefix.sh,route-line.mjs,summary.mjs} "$out/"

# Debian (bookworm, amd64) packages for diagnosing a driver, unpacked by run.sh with dpkg -x into
# a private prefix and used only where the machine lacks them: vulkaninfo (vulkan-tools), glvnd's
# libEGL.so.1 (libegl1, libglvnd0; NVIDIA's EGL and Vulkan ICDs need it), libxext6 (the GLX ICD
# needs it), eglinfo (mesa-utils-bin), strace, and the small libraries these need that a minimal
# image may lack. Not Mesa's own EGL/GLX drivers (libegl-mesa0, libglx-mesa0): tens of MB that
# only a machine without a GPU driver would use. libc6, libgcc-s1, libstdc++6 and liblzma5 are
# on every machine that runs Node.
DEBS=(
  vulkan-tools libvulkan1 libegl1 libglvnd0 libxext6 mesa-utils-bin strace
  libgl1 libglx0 libgles2 libx11-6 libxcb1 libxau6 libxdmcp6 libbsd0 libmd0
  libwayland-client0 libwayland-egl1 libffi8 libunwind8
)
# (As root, apt warns that the download is unsandboxed: the _apt user cannot write here. Harmless.)
(cd "$out/debs" && apt-get download -q "${DEBS[@]}" 2>&1 | grep -v -e '^Get:' -e 'unsandboxed' || true)
missing=()
for p in "${DEBS[@]}"; do ls "$out/debs/${p}_"*.deb >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "pack.sh: could not download ${missing[*]} (apt-get download needs Debian's package lists: apt-get update)" >&2
  exit 1
fi
du -sh "$out"; du -sh "$out/debs"
