# Sourced by run.sh: unpack the Debian packages that pack.sh downloaded (vulkaninfo, eglinfo,
# strace, glvnd's libEGL.so.1, libvulkan.so.1, libxext6 and their small dependencies) into a
# private prefix, never into /, and expose only what the machine lacks: a tool that is not on
# PATH, a library the dynamic linker cannot find. The machine's own files always win, so the
# routes test its driver, with the kit filling gaps only.
#
#   kit_prefix <folder with .deb files> <scratch folder>
#
# Prepends to PATH and LD_LIBRARY_PATH as needed and prints one line saying what it supplied.

# Where the dynamic linker finds a library without us (ldconfig's cache, then the usual
# folders); prints nothing and fails when it does not.
_kit_system_lib() {
  awk -v n="$1" '$1 == n { print $2; found = 1; exit } END { exit !found }' "$_KIT_SYSTEM_LIBS" && return 0
  local d
  for d in /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /lib64 /usr/lib64 /lib /usr/lib; do
    [ -e "$d/$1" ] && echo "$d/$1" && return 0
  done
  return 1
}

# dpkg -x where dpkg exists; otherwise the same with ar and tar (a .deb is an ar archive).
_kit_unpack_deb() { # <deb> <prefix>
  if command -v dpkg >/dev/null 2>&1; then
    dpkg -x "$1" "$2"
  elif command -v ar >/dev/null 2>&1; then
    local data z
    data=$(ar t "$1" | grep -m1 '^data\.tar') || return 1
    case $data in *.xz) z=-J ;; *.gz) z=-z ;; *.zst) z=--zstd ;; *) z= ;; esac
    ar p "$1" "$data" | tar -x $z -C "$2"
  else
    return 1
  fi
}

kit_prefix() {
  local debs=$1 scratch=$2
  if ! ls "$debs"/*.deb >/dev/null 2>&1; then
    echo "kit: no Debian packages in $debs (tools/gpu-bench/pack.sh downloads them); using the machine's tools only"
    return 0
  fi
  local prefix=$scratch/prefix bin=$scratch/kit-bin lib=$scratch/kit-lib f name
  mkdir -p "$prefix" "$bin" "$lib"
  for f in "$debs"/*.deb; do
    _kit_unpack_deb "$f" "$prefix" || { echo "kit: cannot unpack $(basename "$f") (neither dpkg nor ar here)"; return 0; }
  done
  _KIT_SYSTEM_LIBS=$scratch/system-libs.txt
  { /sbin/ldconfig -p 2>/dev/null || ldconfig -p 2>/dev/null; } | awk '/x86-64/ { print $1, $NF }' > "$_KIT_SYSTEM_LIBS"
  local supplied=() tools=()
  # Sonames only (libX.so.N): what the dynamic linker and dlopen ask for.
  for f in "$prefix"/usr/lib/x86_64-linux-gnu/lib*.so.* "$prefix"/lib/x86_64-linux-gnu/lib*.so.*; do
    [ -e "$f" ] || continue
    name=$(basename "$f")
    [[ $name =~ ^lib.+\.so\.[0-9]+$ ]] || continue
    _kit_system_lib "$name" >/dev/null && continue
    ln -sf "$(readlink -f "$f")" "$lib/$name"
    supplied+=("$name")
  done
  # Dawn's OpenGL backends dlopen the unversioned libEGL.so, which only a -dev package installs.
  if ! _kit_system_lib libEGL.so >/dev/null; then
    ln -sf "$(_kit_system_lib libEGL.so.1 || readlink -f "$lib/libEGL.so.1")" "$lib/libEGL.so"
    supplied+=(libEGL.so)
  fi
  # mesa-utils-bin installs eglinfo as eglinfo.<triplet> (mesa-utils adds the plain name).
  for name in vulkaninfo eglinfo strace; do
    command -v "$name" >/dev/null 2>&1 && continue
    for f in "$prefix/usr/bin/$name" "$prefix/usr/bin/$name.x86_64-linux-gnu"; do
      if [ -x "$f" ]; then ln -sf "$f" "$bin/$name" && tools+=("$name") && break; fi
    done
  done
  [ ${#tools[@]} -gt 0 ] && export PATH=$bin:$PATH
  [ ${#supplied[@]} -gt 0 ] && export LD_LIBRARY_PATH=$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  echo "kit: tools supplied: ${tools[*]:-none (the machine has them)}; libraries supplied: ${supplied[*]:-none (the machine has them)}"
}
