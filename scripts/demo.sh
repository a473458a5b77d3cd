#!/usr/bin/env bash
# The main job: builds (or reuses) the ComfyUI host, trains the demo model if needed, starts the server,
# queues the shipped demo workflow without and with TaylorSeer Apply, prints speed-up and fidelity.
# Extra arguments go to demo/run_demo.py, e.g. `bash scripts/demo.sh --seeds 8`.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 scripts/comfy_host.py ensure
PY="$(python3 scripts/comfy_host.py python)"
"$PY" demo/run_demo.py "$@"
