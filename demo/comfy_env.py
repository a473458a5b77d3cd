"""Shared set-up of the demo scripts: find ComfyUI, make ``comfy.*`` and the demo codec importable.

Call :func:`setup` before importing anything from ``comfy``. The ComfyUI root is, in order: the explicit
argument, ``$COMFYUI_PATH``, the repository's own host picked by ``$COMFY_HOST`` (``.host/ComfyUI`` for 0.3.75,
the default, ``.host-0.33/ComfyUI`` for 0.33; built by ``scripts/comfy_host.py``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

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
