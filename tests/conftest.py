"""Shared fixtures. Integration tests ask for ``host``; pure ``taylor_core`` tests never boot ComfyUI."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


@pytest.fixture(scope="session")
def host():
    """The real ComfyUI, booted in process (CPU), with this pack loaded from custom_nodes."""
    import comfy_harness

    comfy_harness.boot()
    return comfy_harness
