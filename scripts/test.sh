#!/usr/bin/env bash
# The test command: builds (or reuses) the ComfyUI host, then runs ruff and the whole test suite against it.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k flux`.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 scripts/comfy_host.py ensure
PY="$(python3 scripts/comfy_host.py python)"
"$PY" -m ruff check .
"$PY" -m pytest "$@"
