#!/usr/bin/env bash
# The GPU-machine kit (DESIGN.md section 7). On a GPU machine, from the repository root, after
# tools/gpu-bench/pack.sh filled .gpu-bench/:
#
#   bash .gpu-bench/run.sh [--routes-only]
#
# 1. Unpacks Node, dawn.node and the bundled CLI, and the Debian packages for diagnosis
#    (kit-prefix.sh: used only where the machine lacks them).
# 2. Tries the three routes to an adapter (routes.sh) and prints one line per route; keeps
#    `aqa info --diagnose`, vulkaninfo, eglinfo and nvidia-smi output in $OUT.
# 3. Unless --routes-only: with the first route that found a hardware adapter, `aqa tune`, then
#    `aqa bench matmul|embed|train` (f32, and f16 where the adapter has shader-f16), each beside
#    the PyTorch baseline (tools/bench_torch.py) at the same shapes; then a summary (summary.mjs).
#    Every step has its own time limit, and all of it fits in AQA_KIT_BUDGET_S (480 s).
#
# From a checkout without pack.sh (`bash tools/gpu-bench/run.sh`) it uses the checkout's CLI
# (node node/bin.mjs) and the machine's Node; AQA_CMD overrides the CLI command in either case.
# Results go to $OUT (default /tmp/gpu-bench-out): log.txt, routes.txt, JSON per bench.
# AQA_KIT_SOFTWARE=1 runs our benches on a software adapter when there is no hardware one;
# AQA_KIT_QUICK=1 shrinks the shapes and AQA_KIT_MODEL names a model folder (to try the kit).
set -uo pipefail
ROUTES_ONLY=0
for a in "$@"; do
  case $a in
    --routes-only) ROUTES_ONLY=1 ;;
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option '$a' (--routes-only, --help)" >&2; exit 2 ;;
  esac
done
K=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-/tmp/gpu-bench-out}
mkdir -p "$OUT" || exit 1
# A run's files are its own (the summary reads them all).
rm -f "$OUT"/{log,routes,steps,machine,bench-route,summary,diagnose,vulkaninfo,eglinfo,nvidia-smi,strace-vulkaninfo}.{txt,tsv} \
  "$OUT"/route[123].{txt,err} "$OUT"/ours-*.json "$OUT"/torch-*.json
T=$(mktemp -d "${TMPDIR:-/tmp}/aqa-gpu-bench.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
exec > >(tee "$OUT/log.txt") 2>&1
export XDG_RUNTIME_DIR=$T/xdg && mkdir -p -m 0700 "$XDG_RUNTIME_DIR"

# ------------------------------------------------------------------ the CLI, Node, the debs
if [ -f "$K/aqa.mjs" ]; then # packed by pack.sh
  xz -dc "$K/node.xz" > "$T/node" && chmod +x "$T/node"
  cp -r "$K/node_modules" "$K/aqa.mjs" "$K/diagnose-probe.mjs" "$T/"
  xz -df "$T/node_modules/webgpu/dist/linux-x64/dawn.node.xz"
  NODE=$T/node
  AQA_CMD=${AQA_CMD:-"$T/node $T/aqa.mjs"}
  DEBS=$K/debs TOKENIZER=$K/tokenizer TORCH_PY=$K/bench_torch.py
else # a checkout
  REPO=$(cd "$K/../.." && pwd)
  NODE=$(command -v node) || { echo "run.sh: no node on PATH and no packed Node (run tools/gpu-bench/pack.sh)"; exit 1; }
  AQA_CMD=${AQA_CMD:-"$NODE $REPO/node/bin.mjs"}
  DEBS=$REPO/.gpu-bench/debs TOKENIZER=$REPO/test/models/all-MiniLM-L6-v2 TORCH_PY=$REPO/tools/bench_torch.py
fi
# Wrappers as files, since `timeout` runs programs, not shell functions.
printf '#!/bin/sh\nexec %s "$@"\n' "$AQA_CMD" > "$T/aqa"
printf '#!/bin/sh\nPYTHONUNBUFFERED=1 exec python3 %s "$@"\n' "$TORCH_PY" > "$T/py"
chmod +x "$T/aqa" "$T/py"
export PATH=$T:$PATH
. "$K/kit-prefix.sh"
kit_prefix "$DEBS" "$T"
. "$K/routes.sh"

step() { # step <seconds> <label> <command...>: within the budget; status to steps.tsv
  local secs=$1 label=$2 left rc t0=$SECONDS
  shift 2
  left=$((BUDGET - SECONDS - 10))
  echo
  echo "=== $label"
  if [ "$left" -lt 5 ]; then
    echo "=== $label: skipped (the ${BUDGET} s budget is spent)"
    printf '%s\tskipped\t0\n' "$label" >> "$OUT/steps.tsv"
    return 0
  fi
  [ "$secs" -gt "$left" ] && secs=$left
  timeout -k 5 "$secs" "$@"
  rc=$?
  echo "=== $label: rc=$rc$([ "$rc" -eq 124 ] && echo " (stopped after $secs s)"), $((SECONDS - t0)) s"
  printf '%s\t%s\t%s\n' "$label" "$rc" "$((SECONDS - t0))" >> "$OUT/steps.tsv"
}
BUDGET=${AQA_KIT_BUDGET_S:-480}

# ------------------------------------------------------------------ the machine, diagnosis
ver=$(nvidia_version)
{
  echo "host: $(uname -srm)$( [ -r /etc/os-release ] && . /etc/os-release && echo ", ${PRETTY_NAME:-}")"
  if command -v nvidia-smi >/dev/null 2>&1; then
    echo "nvidia-smi: $(timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)"
    timeout 20 nvidia-smi -q > "$OUT/nvidia-smi.txt" 2>&1
    grep -m1 -i 'Virtualization Mode' "$OUT/nvidia-smi.txt" | sed 's/^ */nvidia-smi: /'
  fi
  [ -n "$ver" ] && echo "NVIDIA kernel module $ver; nvidia-modeset $(grep -q nvidia-modeset /proc/devices && echo loaded || echo 'not loaded (offscreen Vulkan does not need it)')"
} | tee "$OUT/machine.txt"
# Diagnosis tools, each bounded: their output stays in $OUT for reading later.
diag() { # diag <file> <seconds> <command...>
  local f=$1 secs=$2
  shift 2
  command -v "$1" >/dev/null 2>&1 || { echo "$1: not available"; return 0; }
  timeout -k 5 "$secs" "$@" > "$OUT/$f" 2>&1
  echo "$*: rc=$?, output in $OUT/$f"
}
diag diagnose.txt 60 aqa info --diagnose
VK_LOADER_DEBUG=error,warn diag vulkaninfo.txt 30 vulkaninfo --summary
diag eglinfo.txt 30 eglinfo

# ------------------------------------------------------------------ the routes
echo
run_routes
# NVIDIA driver but no hardware adapter: which driver files the Vulkan loader failed to open.
if [ -n "$ver" ] && [ -z "$ROUTE_CHOSEN" ] && command -v strace >/dev/null 2>&1 && command -v vulkaninfo >/dev/null 2>&1; then
  timeout -k 5 30 strace -f -e trace=openat,open -o "$OUT/strace-vulkaninfo.txt" vulkaninfo --summary > /dev/null 2>&1
  missing=$(grep -E 'ENOENT' "$OUT/strace-vulkaninfo.txt" | grep -oE '[^/"]*(nvidia|EGL|GLX|GLdispatch)[^/"]*\.so[^/"]*' | sort -u |
    while read -r lib; do grep -v ENOENT "$OUT/strace-vulkaninfo.txt" | grep -q "/$lib\"" || echo "$lib"; done | tr '\n' ' ')
  echo "strace vulkaninfo: never opened: ${missing:-nothing NVIDIA-related} (all in $OUT/strace-vulkaninfo.txt)"
fi
if [ "$ROUTES_ONLY" -eq 1 ]; then
  exit 0
fi

# ------------------------------------------------------------------ benches
use=$ROUTE_CHOSEN
if [ -z "$use" ] && [ -n "${AQA_KIT_SOFTWARE:-}" ] && [ -n "$ROUTE_ANY" ]; then use=$ROUTE_ANY; fi
if [ -n "$use" ]; then
  set -a
  . "$T/route$use.env"
  set +a
  echo "benches run on route $use (${ROUTE_NAMES[$use]}): $(tr '\n' ';' < "$T/route$use.env" | sed 's/;$//')"
  echo "route $use ${ROUTE_NAMES[$use]}" > "$OUT/bench-route.txt"
else
  echo "no route found a hardware adapter: our benches are skipped (AQA_KIT_SOFTWARE=1 runs them on a software one); the PyTorch baseline still runs"
fi
PREC=f32
[ -n "$use" ] && [ "${ROUTE_F16[$use]}" = yes ] && PREC=f32,f16
SIZES=1024,2048,4096
SHAPES=32x128,32x256,256x256
TRAIN_SHAPE=16x10,64/512
# AQA_KIT_QUICK=1: tiny shapes, to try the kit itself on a software adapter.
QUICK=()
if [ -n "${AQA_KIT_QUICK:-}" ]; then SIZES=128 SHAPES=4x16 TRAIN_SHAPE=2x2,8/16 QUICK=(--quick); fi
# AQA_KIT_MODEL: an existing model folder instead of a random-weight MiniLM from bench_torch.py.
M=${AQA_KIT_MODEL:-$T/models/minilm}
[ -z "${AQA_KIT_MODEL:-}" ] && step 90 'make model (MiniLM shape, random weights)' py make-model --shape minilm --tokenizer "$TOKENIZER" --out "$M"
if [ -n "$use" ]; then
  # Tuning first, so that the benches use its winners (`aqa tune` may not exist in this build).
  step 90 'aqa tune' aqa tune --model "$M" --json "$OUT/ours-tune.json"
  # --experimental: where the adapter offers subgroup matrices, that kernel gets rows too (and
  # its maxdiff against float64, the only check of it a machine without such an adapter cannot run).
  step 20 'subgroup matrix' bash -c "aqa --experimental info | grep '^subgroup matrix'"
  step 80 'ours matmul' aqa --experimental bench matmul "${QUICK[@]}" --sizes "$SIZES" --precision "$PREC" --json "$OUT/ours-matmul.json"
fi
step 40 'pytorch matmul' py matmul --sizes "$SIZES" --dtype "${PREC//f/fp}" --json "$OUT/torch-matmul.json"
[ -n "$use" ] && step 70 'ours embed' aqa bench embed "${QUICK[@]}" --model "$M" --peers '' --shapes "$SHAPES" --precision "$PREC" --json "$OUT/ours-embed.json"
step 40 'pytorch embed fp32' py embed --model "$M" --shapes "$SHAPES" --json "$OUT/torch-embed-fp32.json"
[[ $PREC == *f16 ]] && step 40 'pytorch embed fp16' py embed --model "$M" --shapes "$SHAPES" --dtype fp16 --json "$OUT/torch-embed-fp16.json"
[ -n "$use" ] && step 90 'ours train' aqa bench train "${QUICK[@]}" --model "$M" --shape "$TRAIN_SHAPE" --grad-cache 0 --precision "$PREC" --json "$OUT/ours-train.json"
step 45 'pytorch train fp32' py train --model "$M" --shape "$TRAIN_SHAPE" --json "$OUT/torch-train-fp32.json"
[[ $PREC == *f16 ]] && step 45 'pytorch train fp16' py train --model "$M" --shape "$TRAIN_SHAPE" --dtype fp16 --json "$OUT/torch-train-fp16.json"
echo
"$NODE" "$K/summary.mjs" "$OUT" | tee "$OUT/summary.txt"
echo "total $SECONDS s"
