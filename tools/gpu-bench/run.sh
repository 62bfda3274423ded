#!/usr/bin/env bash
# Runs on a GPU machine, from the repository root, after tools/gpu-bench/pack.sh filled
# .gpu-bench/: unpacks Node and dawn.node, finds the NVIDIA Vulkan driver, prints `aqa info`,
# then runs our benches and the PyTorch baseline (tools/bench_torch.py) on the same GPU with the
# same shapes. Results go to $OUT (default /tmp/gpu-bench-out) as JSON plus log.txt.
# Each step has its own timeout; a failing step is reported and the next one still runs.
set -uo pipefail
B=$(pwd)/.gpu-bench
OUT=${OUT:-/tmp/gpu-bench-out}
T=/tmp/aqa-gpu-bench
mkdir -p "$OUT" "$T" /tmp/aqa-models
exec > >(tee -a "$OUT/log.txt") 2>&1

xz -dc "$B/node.xz" > "$T/node" && chmod +x "$T/node"
cp -r "$B/node_modules" "$B/aqa.mjs" "$T/"
xz -df "$T/node_modules/webgpu/dist/linux-x64/dawn.node.xz"

# Vulkan loader: bring it (deb files in .gl/, see the device notes) when the image lacks it.
if ! ldconfig -p | grep -q 'libvulkan.so.1'; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
# Driver manifest: the image may mount the NVIDIA driver without a manifest in the usual places.
if ! ls /usr/share/vulkan/icd.d/*nvidia* /etc/vulkan/icd.d/*nvidia* >/dev/null 2>&1; then
  if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  else
    printf '{"file_format_version":"1.0.1","ICD":{"library_path":"libGLX_nvidia.so.0","api_version":"1.3"}}\n' > "$T/nvidia_icd.json"
    export VK_DRIVER_FILES=$T/nvidia_icd.json
  fi
fi
# Seen on Firecracker H100/H200 machines: without the nvidia-modeset kernel module, NVIDIA's
# Vulkan driver (libGLX_nvidia) hands the loader no vkCreateInstance, so Dawn finds no adapter.
grep -q nvidia-modeset /proc/devices || echo "note: the nvidia-modeset kernel module is not loaded; NVIDIA's Vulkan driver needs it (expect 'No WebGPU adapter found')"
export XDG_RUNTIME_DIR=$T/xdg && mkdir -p -m 0700 "$XDG_RUNTIME_DIR"

step() { # step <seconds> <label> <command...>
  local secs=$1 label=$2; shift 2
  echo; echo "=== $label"
  local t0=$SECONDS
  timeout "$secs" "$@"; local rc=$?
  echo "=== $label: rc=$rc, $((SECONDS - t0)) s"
}
# Wrappers as files, since `timeout` runs programs, not shell functions.
printf '#!/bin/sh\ncd %s && exec ./node aqa.mjs "$@"\n' "$T" > "$T/aqa"
printf '#!/bin/sh\nPYTHONUNBUFFERED=1 exec python3 %s/bench_torch.py "$@"\n' "$B" > "$T/py"
chmod +x "$T/aqa" "$T/py"
export PATH=$T:$PATH

step 15 'nvidia-smi' nvidia-smi -L
step 45 'aqa info' aqa info
step 90 'make models' bash -c "python3 '$B/bench_torch.py' make-model --shape minilm --tokenizer '$B/tokenizer' --out /tmp/aqa-models/minilm >/dev/null 2>&1 &&
  python3 '$B/bench_torch.py' make-model --shape bert-large --tokenizer '$B/tokenizer' --out /tmp/aqa-models/bert-large >/dev/null 2>&1 && ls /tmp/aqa-models"
step 90 'ours matmul' aqa bench matmul --sizes 1024,2048,4096 --json "$OUT/ours-matmul.json"
step 40 'pytorch matmul' py matmul --sizes 1024,2048,4096 --json "$OUT/torch-matmul.json"
step 60 'ours embed minilm' aqa bench embed --model /tmp/aqa-models/minilm --peers '' --shapes 32x128,32x256,256x256 --json "$OUT/ours-embed-minilm.json"
step 45 'pytorch embed minilm fp32' py embed --model /tmp/aqa-models/minilm --shapes 32x128,32x256,256x256 --json "$OUT/torch-embed-minilm.json"
step 90 'ours embed bert-large' aqa bench embed --model /tmp/aqa-models/bert-large --peers '' --shapes 32x128,32x512 --json "$OUT/ours-embed-bert-large.json"
step 45 'pytorch embed bert-large fp32' py embed --model /tmp/aqa-models/bert-large --shapes 32x128,32x512 --json "$OUT/torch-embed-bert-large.json"
step 40 'pytorch embed bert-large bf16' py embed --model /tmp/aqa-models/bert-large --shapes 32x128,32x512 --dtype bf16 --json "$OUT/torch-embed-bert-large-bf16.json"
echo "done"
