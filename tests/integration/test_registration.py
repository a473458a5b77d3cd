"""Registration per node group, for real: a child process imports ComfyUI and loads the pack with ComfyUI's own
``nodes.load_custom_node`` (what its boot does for each custom node folder), after making one import fail with a
``sys.modules`` entry of None. Nothing of ComfyUI is mocked.

- One node group that cannot load (its module missing, as on a torch without float8 types for the FP8 Loader) is
  logged in one line naming it and the reason; the other group's nodes register.
- A ComfyUI without the V3 node API (``comfy_api.latest``) gets one logged line and no nodes, no traceback.
- Loading the pack logs nothing of ComfyUI's about quantized layers (the FP8 Loader's feature probe is silent).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from comfy_harness import REPO

NODES = ("TaylorSeerApply", "CGTaylorGate", "FP8Loader")
FP8_FAILS = "<pack>.nodes.fp8.quantize"
TAYLORSEER_FAILS = "<pack>.nodes.patching"
NO_V3_API = "comfy_api.latest"
SCENARIOS = ("", FP8_FAILS, TAYLORSEER_FAILS, NO_V3_API)

_CHILD = """
import asyncio, json, logging, os, sys
sys.path.insert(0, {demo!r})
import comfy_env
comfy_env.setup()
import folder_paths
import nodes

pack = os.path.join(folder_paths.get_folder_paths("custom_nodes")[0], "taylor_forecast")
module = pack.replace(".", "_x_")  # ComfyUI imports a custom node folder under its path, "." spelled "_x_"
records = []
handler = logging.Handler()
handler.emit = lambda record: records.append(record.levelname + " " + record.getMessage())
logging.getLogger().addHandler(handler)
logging.getLogger().setLevel(logging.INFO)
for poisoned in {scenarios!r}:
    for name in [k for k in sys.modules if k == module or k.startswith(module + ".")]:
        del sys.modules[name]  # a fresh load of the pack each time, as in a fresh ComfyUI
    for name in {nodes!r}:
        nodes.NODE_CLASS_MAPPINGS.pop(name, None)
    saved = {{}}
    if poisoned:
        name = poisoned.replace("<pack>", module)
        saved[name] = sys.modules.get(name)
        sys.modules[name] = None
    records.clear()
    loaded = asyncio.run(nodes.load_custom_node(pack))
    for name, value in saved.items():
        sys.modules[name] = value
    print("RESULT", json.dumps({{"poisoned": poisoned, "loaded": loaded, "log": records,
                                "nodes": [n for n in {nodes!r} if n in nodes.NODE_CLASS_MAPPINGS]}}))
"""


@pytest.fixture(scope="module")
def loads() -> dict[str, dict]:
    """One fresh ComfyUI process loading the pack once per scenario, each with one module (``<pack>`` = the
    pack's module name) unimportable: scenario -> ``{"loaded": ComfyUI's answer, "nodes": ours registered,
    "log": every log record of the load}``."""
    script = _CHILD.format(demo=str(REPO / "demo"), scenarios=list(SCENARIOS), nodes=NODES)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    results = [json.loads(x[len("RESULT "):]) for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    return {r.pop("poisoned"): r for r in results}


def ours(result: dict) -> list[str]:
    return [line for line in result["log"] if "[TaylorSeer]" in line]


@pytest.mark.parametrize(("poisoned", "group", "registered"), [
    (FP8_FAILS, "FP8 (FP8 Loader)", ["TaylorSeerApply", "CGTaylorGate"]),
    (TAYLORSEER_FAILS, "TaylorSeer (TaylorSeer Apply, CG-Taylor Gate)", ["FP8Loader"]),
])
def test_a_node_group_that_cannot_load_is_logged_and_the_others_register(loads, poisoned, group, registered):
    result = loads[poisoned]
    assert (result["loaded"], result["nodes"]) == (True, registered), result
    (line,) = ours(result)
    assert f"ERROR [TaylorSeer] the {group} nodes are not registered: ModuleNotFoundError: " in line
    assert poisoned.split("<pack>")[-1] + " halted" in line  # the reason names the module that failed
    assert not any("Traceback" in x for x in result["log"])


def test_every_node_group_registers_when_nothing_fails(loads):
    result = loads[""]
    assert (result["loaded"], result["nodes"], ours(result)) == (True, list(NODES), []), result


def test_loading_the_pack_logs_nothing_about_quantized_layers(loads):
    """The FP8 Loader's schema probes ComfyUI's quantized Linear; what ComfyUI logs loading that layer (its
    quantization metadata, QuantizedTensor dtype notes) is left out: no model is loaded."""
    lines = [line for line in loads[""]["log"] if "quantization metadata" in line or "QuantizedTensor" in line]
    assert lines == [], lines


def test_a_comfyui_without_the_v3_node_api_gets_one_line_and_no_nodes(loads):
    result = loads[NO_V3_API]
    assert (result["loaded"], result["nodes"]) == (True, []), result
    (line,) = ours(result)
    assert "no V3 node API (comfy_api.latest" in line and "no nodes registered" in line
    assert not any("Traceback" in x for x in result["log"])
