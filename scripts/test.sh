#!/usr/bin/env bash
# The test command: builds (or reuses) the ComfyUI host, then runs ruff and the whole test suite against it.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k flux`.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 scripts/comfy_host.py ensure
# The browser test needs Chromium and its driver; install them where we can (root + apt-get), else it skips.
if ! command -v chromedriver >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[test.sh] installing chromium and chromium-driver for the browser test"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } \
        >/dev/null 2>&1 || echo "[test.sh] could not install chromium: the browser test will be skipped"
fi
PY="$(python3 scripts/comfy_host.py python)"
"$PY" -m ruff check .
"$PY" -m pytest "$@"
