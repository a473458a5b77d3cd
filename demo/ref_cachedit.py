"""cache-dit's own calibrators (PyPI ``cache-dit``, ``cache_dit/caching/cache_contexts/calibrators/``, unmodified)
as references for the benchmark: ``TaylorSeerCalibrator`` (order 1, its default), ``FoCaCalibrator`` and
``DMDCalibrator`` (its defaults: history 6, automatic rank), driven on the pack's plans at the output level by
``demo/ref_runner.py``.

They are called as cache-dit's cache context calls them: ``mark_step_begin()`` once per sampling step, then
``update(value)`` on a full step or ``approximate()`` on a cached one (one stream, the default name). Installed
in the benchmark's own environment only (``demo/requirements-bench.txt``, docs/benchmarks.md); ``import cache_dit``
pulls diffusers, so ``calibrators()`` imports the calibrators' package from the installed files without running
the parent packages' ``__init__`` (the library's own code, nothing copied).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path

import torch

CALIBRATORS = {  # reference name -> cache-dit class name
    "cachedit_taylorseer": "TaylorSeerCalibrator",
    "cachedit_foca": "FoCaCalibrator",
    "cachedit_dmd": "DMDCalibrator",
}
PACKAGE = "cache_dit.caching.cache_contexts.calibrators"


def calibrators() -> types.ModuleType:
    """cache-dit's ``calibrators`` package; ImportError when cache-dit is not installed."""
    if PACKAGE in sys.modules:
        return sys.modules[PACKAGE]
    try:
        return importlib.import_module(PACKAGE)
    except ModuleNotFoundError as error:
        if error.name is None or error.name.split(".")[0] == "cache_dit":
            raise
    for name in [n for n in sys.modules if n.split(".")[0] == "cache_dit"]:  # the failed import's leftovers
        del sys.modules[name]
    root = Path(importlib.util.find_spec("cache_dit").submodule_search_locations[0])
    for name in ("cache_dit", "cache_dit.caching", "cache_dit.caching.cache_contexts"):
        package = types.ModuleType(name)
        package.__path__ = [str(root.joinpath(*name.split(".")[1:]))]
        sys.modules[name] = package
    return importlib.import_module(PACKAGE)


def available() -> str:
    """'' when cache-dit's calibrators import, else why not (one line)."""
    try:
        calibrators()
    except ImportError as error:
        return f"{type(error).__name__}: {error}"
    return ""


class CacheDitReference:
    """``update(t, value)`` on full steps, ``predict(t)`` on cached ones (``t`` in integer steps), through a
    cache-dit calibrator: one ``mark_step_begin()`` per step reached."""

    def __init__(self, name: str) -> None:
        self.calibrator = getattr(calibrators(), CALIBRATORS[name])()
        self.step = -1.0

    def _reach(self, t: float) -> None:
        while self.step < t:
            self.calibrator.mark_step_begin()
            self.step += 1.0

    def update(self, t: float, value: torch.Tensor) -> None:
        self._reach(t)
        self.calibrator.update(value.detach().float().clone())

    def predict(self, t: float) -> torch.Tensor:
        self._reach(t)
        return self.calibrator.approximate()
