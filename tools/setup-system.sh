#!/usr/bin/env bash
# System packages for a Debian 12 (bookworm) machine: a Vulkan driver Dawn accepts (mesa 25
# from bookworm-backports: bookworm's own mesa 22.3 lavapipe is rejected by Dawn) and Debian's
# Chromium for the browser tests. Idempotent; needs root (or sudo).
set -euo pipefail
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

# Another apt or dpkg (unattended-upgrades, a second setup) may hold the dpkg lock: wait for
# it (up to 10 minutes) instead of failing at once.
APT=(apt-get -o DPkg::Lock::Timeout=600)

# `apt-get update` takes the package-lists lock, which that option does not cover on every apt
# version: retry while another process holds it (10 minutes at most).
apt_update() {
  local log; log=$(mktemp)
  for _ in $(seq 60); do
    if $SUDO "${APT[@]}" update -q 2>&1 | tee "$log"; [ "${PIPESTATUS[0]}" = 0 ]; then rm -f "$log"; return 0; fi
    grep -q "Could not get lock" "$log" || { rm -f "$log"; return 1; }
    echo "waiting for another apt to release its lock..."
    sleep 10
  done
  rm -f "$log"
  return 1
}

have_backports_mesa() {
  dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | grep -q bpo
}

# The OpenGL ES conformance run (test/compat.test.ts) needs Mesa's EGL; test/diagnose.test.ts
# builds a stand-in driver library with cc.
have_egl_and_cc() {
  dpkg-query -W -f='${Status}' libegl-mesa0 2>/dev/null | grep -q "ok installed" && command -v cc >/dev/null
}

if have_backports_mesa && have_egl_and_cc && [ -x /usr/bin/chromium ]; then
  echo "system packages: already installed"
  exit 0
fi

if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  # Same mirror and keyring as the existing Debian source.
  $SUDO tee /etc/apt/sources.list.d/backports.sources >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
export DEBIAN_FRONTEND=noninteractive
apt_update
$SUDO "${APT[@]}" install -y -q -t bookworm-backports mesa-vulkan-drivers libvulkan1 libegl-mesa0 libegl1
$SUDO "${APT[@]}" install -y -q --no-install-recommends gcc libc6-dev
$SUDO "${APT[@]}" install -y -q --no-install-recommends chromium
