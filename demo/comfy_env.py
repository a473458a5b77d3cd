"""Shared set-up of the demo scripts: find ComfyUI, make ``comfy.*`` and the demo codec importable.

Call :func:`setup` before importing anything from ``comfy``. The ComfyUI root is, in order: the explicit
argument, ``$COMFYUI_PATH``, the repository's own host picked by ``$COMFY_HOST`` (``.host/ComfyUI`` for 0.3.75,
the default, ``.host-0.33/ComfyUI`` for 0.33; built by ``scripts/comfy_host.py``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
import comfy_host  # noqa: E402  (scripts/comfy_host.py: which host folder $COMFY_HOST names)

CODEC_DIR = Path(__file__).resolve().parent / "comfy_nodes"


def comfy_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The ComfyUI folder to use (the one holding ``comfy/`` and ``nodes.py``)."""
    candidates = [explicit, os.environ.get("COMFYUI_PATH"), comfy_host.host_dir() / "ComfyUI"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "comfy" / "model_detection.py").is_file():
            return Path(candidate).resolve()
    raise SystemExit("ComfyUI not found: pass --comfyui PATH, set COMFYUI_PATH "
                     "or run scripts/comfy_host.py ensure")


def setup(explicit: str | os.PathLike[str] | None = None, cpu: bool = True) -> Path:
    """Put ComfyUI and the codec on ``sys.path`` and enable ComfyUI's argument parsing; return the root.

    ComfyUI parses ``sys.argv`` when ``comfy.cli_args`` is first imported, so ``sys.argv`` is replaced by
    ``[prog, "--cpu"]`` (or ``[prog]``); parse the script's own arguments before calling this.
    """
    root = comfy_root(explicit)
    for path in (str(CODEC_DIR), str(root)):
        if path not in sys.path:
            sys.path.insert(0, path)
    sys.argv = [sys.argv[0], "--cpu"] if cpu else [sys.argv[0]]
    import comfy.options

    comfy.options.enable_args_parsing()
    return root


_booted = False


def boot(explicit: str | os.PathLike[str] | None = None, cpu: bool = True) -> Path:
    """``setup`` plus ComfyUI's built-in and custom nodes, loaded as the server loads them (this pack from
    ``custom_nodes/taylor_forecast``, the demo nodes from ``custom_nodes/taylor_forecast_demo``). Once per
    process; returns the ComfyUI root. ``cpu=False`` lets ComfyUI pick its accelerator."""
    global _booted
    root = setup(explicit, cpu)
    if not _booted:
        import asyncio

        import nodes

        asyncio.run(nodes.init_extra_nodes(init_custom_nodes=True, init_api_nodes=False))
        if "TaylorSeerApply" not in nodes.NODE_CLASS_MAPPINGS:
            raise RuntimeError("ComfyUI did not load the pack from custom_nodes/taylor_forecast: see the log above")
        _booted = True
    return root


def input_names(node_class: type) -> list[str]:
    """The node's inputs in the order of its definition (required, then optional), V1 and V3 nodes alike."""
    spec = node_class.INPUT_TYPES()
    return [*spec.get("required", {}), *spec.get("optional", {})]


def run_node(name: str, *args: Any, node_id: str = "1", **kwargs: Any) -> tuple:
    """Execute the registered node ``name`` the way ComfyUI's executor does (``execution.get_input_data`` then
    ``get_output_data``: hidden inputs such as the unique id ``node_id`` filled in, V3's class clone; V1 and V3
    nodes alike). ``args``: its inputs in definition order, ``kwargs``: by name. Returns its outputs; a node's
    exception propagates. Needs :func:`boot` first."""
    import asyncio

    import execution

    import nodes

    node_class = nodes.NODE_CLASS_MAPPINGS[name]
    inputs = dict(zip(input_names(node_class), args)) | kwargs
    input_data, _missing, hidden = execution.get_input_data(inputs, node_class, node_id)
    # hidden inputs go positionally: 0.3.75 names the parameter hidden_inputs, 0.33 v3_data
    output, _ui, _subgraph, _pending = asyncio.run(
        execution.get_output_data("harness", node_id, node_class(), input_data, None, None, hidden))
    return tuple(values[0] for values in output)


def validate_node(name: str, **inputs: Any) -> list[str]:
    """ComfyUI's own validation of one node with the widget values ``inputs`` (``execution.validate_inputs``,
    what ``POST /prompt`` runs; the inputs left out, e.g. its MODEL, are not reported missing): every error as
    ``"message: details"``; [] when valid."""
    import asyncio

    import execution

    prompt = {"1": {"class_type": name, "inputs": dict(inputs)}}
    _valid, errors, _node = asyncio.run(execution.validate_inputs("harness", prompt, "1", {}))
    return [f"{e['message']}: {e['details']}" for e in errors if e["type"] != "required_input_missing"]
