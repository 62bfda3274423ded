#!/usr/bin/env bash
# System packages for a Debian 12 (bookworm) machine: a Vulkan driver Dawn accepts (mesa 25
# from bookworm-backports: bookworm's own mesa 22.3 lavapipe is rejected by Dawn) and Debian's
# Chromium for the browser tests. Idempotent; needs root (or sudo).
set -euo pipefail
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

have_backports_mesa() {
  dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | grep -q bpo
}

if have_backports_mesa && [ -x /usr/bin/chromium ]; then
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
$SUDO apt-get update -q
$SUDO apt-get install -y -q -t bookworm-backports mesa-vulkan-drivers libvulkan1
$SUDO apt-get install -y -q --no-install-recommends chromium
