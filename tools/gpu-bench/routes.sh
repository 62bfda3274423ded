# Sourced by run.sh: the three ways to a WebGPU adapter, tried in order, each in a subshell with
# its own environment and time limit (DESIGN.md section 7, issue 13's "Why"):
#
#   route 1 vulkan      Vulkan as found: the loader's own ICD search (plus a manifest the driver
#                       mounted under /usr/local/nvidia, where the loader does not look).
#   route 2 nvidia-egl  Vulkan through an ICD json naming libEGL_nvidia.so.<driver version>
#                       instead of libGLX_nvidia.so.0 (whose vkCreateInstance fails without X or
#                       nvidia-modeset), with __EGL_VENDOR_LIBRARY_FILENAMES naming NVIDIA's glvnd
#                       vendor file (written when glvnd has none). Skipped without an NVIDIA driver.
#   route 3 opengles    Dawn's OpenGL ES backend at the compatibility feature level, DISPLAY unset,
#                       EGL_PLATFORM=surfaceless.
#
# Each route writes its settings to $T/route<n>.env (export/unset lines), runs `aqa info` with
# them (the Vulkan ones with VK_LOADER_DEBUG=error,warn, whose words go to $OUT/route<n>.err) and
# prints one line (route-line.mjs). Afterwards ROUTE_CHOSEN is the first route with a hardware
# adapter (empty if none), ROUTE_ANY the first with any adapter, ROUTE_F16[n] yes/no, and
# $OUT/routes.txt holds the lines. Needs: T, OUT, NODE, K (this folder), `aqa` on PATH.

ROUTE_S=${AQA_KIT_ROUTE_S:-45}

# The loaded NVIDIA kernel module's version (e.g. 580.65.06), else nvidia-smi's; empty if none.
nvidia_version() {
  local v
  v=$(grep -o -m1 -E '\b[0-9]{3,}\.[0-9]+(\.[0-9]+)?\b' /proc/driver/nvidia/version 2>/dev/null | head -1)
  [ -z "$v" ] && command -v nvidia-smi >/dev/null 2>&1 &&
    v=$(timeout 20 nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1 | tr -d ' ')
  echo "$v"
}

# The first file with that name under /usr/lib* and /usr/local/nvidia/lib*, 64-bit folders first.
find_driver_lib() {
  local f
  f=$(find /usr/lib* /usr/local/nvidia/lib* -maxdepth 3 -name "$1" 2>/dev/null | grep -v -e i386 -e lib32 | sort | head -1)
  [ -n "$f" ] && echo "$f"
}

# NVIDIA's glvnd EGL vendor file: the one glvnd finds, one the driver mount carries, or one
# written here naming libEGL_nvidia.so.0 beside the given libEGL_nvidia.so.<version> (or that
# file itself when the unversioned link is missing). Prints its path.
nvidia_egl_vendor() { # <path of libEGL_nvidia.so.<version>>
  local dirs f d lib
  IFS=: read -ra dirs <<< "${__EGL_VENDOR_LIBRARY_DIRS:-/etc/glvnd/egl_vendor.d:/usr/share/glvnd/egl_vendor.d}"
  for d in "${dirs[@]}" /usr/local/nvidia/share/glvnd/egl_vendor.d; do
    for f in "$d"/*nvidia*.json; do
      [ -f "$f" ] && { echo "$f"; return; }
    done
  done
  lib=$(dirname "$1")/libEGL_nvidia.so.0
  [ -e "$lib" ] || lib=$1
  mkdir -p "$T/egl_vendor.d"
  printf '{"file_format_version":"1.0.0","ICD":{"library_path":"%s"}}\n' "$lib" > "$T/egl_vendor.d/10_nvidia.json"
  echo "$T/egl_vendor.d/10_nvidia.json"
}

# Whether glvnd's default search finds an NVIDIA vendor file.
glvnd_has_nvidia() {
  ls /etc/glvnd/egl_vendor.d/*nvidia*.json /usr/share/glvnd/egl_vendor.d/*nvidia*.json >/dev/null 2>&1
}

# Fills $T/route<n>.env; prints a skip reason and fails when the route cannot be set up here.
route_env_1() {
  echo "export AQA_BACKEND=vulkan"
  if ! ls /usr/share/vulkan/icd.d/*nvidia* /etc/vulkan/icd.d/*nvidia* >/dev/null 2>&1 &&
    [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
    echo "export VK_ADD_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json"
  fi
}

route_env_2() {
  local ver lib api vendor existing
  ver=$(nvidia_version)
  if [ -z "$ver" ]; then
    echo "no NVIDIA driver: no /proc/driver/nvidia/version and no nvidia-smi" >&2
    return 1
  fi
  lib=$(find_driver_lib "libEGL_nvidia.so.$ver")
  if [ -z "$lib" ]; then
    echo "NVIDIA driver $ver, but no libEGL_nvidia.so.$ver under /usr/lib* or /usr/local/nvidia/lib*" >&2
    return 1
  fi
  # The api_version of the driver's own manifest, when there is one.
  existing=$(ls /usr/share/vulkan/icd.d/*nvidia*.json /etc/vulkan/icd.d/*nvidia*.json /usr/local/nvidia/share/vulkan/icd.d/*nvidia*.json 2>/dev/null | head -1)
  api=$( [ -n "$existing" ] && grep -o '"api_version"[^,}]*' "$existing" | grep -o '[0-9][0-9.]*' | head -1)
  printf '{"file_format_version":"1.0.1","ICD":{"library_path":"%s","api_version":"%s"}}\n' "$lib" "${api:-1.3.0}" > "$T/nvidia_egl_icd.json"
  vendor=$(nvidia_egl_vendor "$lib")
  echo "export AQA_BACKEND=vulkan"
  echo "export VK_DRIVER_FILES=$T/nvidia_egl_icd.json"
  echo "export __EGL_VENDOR_LIBRARY_FILENAMES=$vendor"
}

route_env_3() {
  echo "export AQA_BACKEND=opengles"
  echo "unset DISPLAY WAYLAND_DISPLAY"
  echo "export EGL_PLATFORM=surfaceless"
  # NVIDIA's EGL is reached only through a glvnd vendor file; name it when glvnd has none.
  local ver lib
  ver=$(nvidia_version)
  if [ -n "$ver" ] && ! glvnd_has_nvidia; then
    lib=$(find_driver_lib "libEGL_nvidia.so.$ver")
    [ -n "$lib" ] && echo "export __EGL_VENDOR_LIBRARY_FILENAMES=$(nvidia_egl_vendor "$lib")"
  fi
  return 0
}

ROUTE_NAMES=(unused vulkan nvidia-egl opengles)
ROUTE_CHOSEN=
ROUTE_ANY=
declare -a ROUTE_F16

run_routes() {
  : > "$OUT/routes.txt"
  local n name why rc line debug
  for n in 1 2 3; do
    name=${ROUTE_NAMES[$n]}
    ROUTE_F16[$n]=no
    if ! "route_env_$n" > "$T/route$n.env" 2> "$T/route$n.why"; then
      why=$(head -1 "$T/route$n.why")
      line="route $n $name: skipped (${why:-not applicable here})"
      echo "$line" | tee -a "$OUT/routes.txt"
      continue
    fi
    debug=
    [ "$name" != opengles ] && debug=error,warn
    (
      set -a
      . "$T/route$n.env"
      set +a
      [ -n "$debug" ] && export VK_LOADER_DEBUG=$debug
      exec timeout -k 5 "$ROUTE_S" aqa info
    ) > "$OUT/route$n.txt" 2> "$OUT/route$n.err"
    rc=$?
    line=$("$NODE" "$K/route-line.mjs" "$n" "$name" "$OUT/route$n.txt" "$OUT/route$n.err" "$rc" "$ROUTE_S")
    rc=$?
    echo "$line" | tee -a "$OUT/routes.txt"
    [[ $line == *"shader-f16 yes)" ]] && ROUTE_F16[$n]=yes
    [ "$rc" -eq 0 ] && [ -z "$ROUTE_CHOSEN" ] && ROUTE_CHOSEN=$n
    { [ "$rc" -eq 0 ] || [ "$rc" -eq 3 ]; } && [ -z "$ROUTE_ANY" ] && ROUTE_ANY=$n
  done
  return 0
}
