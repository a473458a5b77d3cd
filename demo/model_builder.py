"""Build a ComfyUI diffusion-model class from a parameter dict, on every ComfyUI version the pack supports.

The demo and the tests build tiny models by code with ComfyUI's own classes. Newer ComfyUI versions add required
constructor arguments for features those models do not use (0.33: Flux's ``txt_ids_dims``, Chroma's
``vec_in_dim``, HunyuanVideo's ``meanflow_sum``). Which arguments a class requires is read from its signature
and from the parameter dataclasses of its module (Flux builds ``FluxParams(**kwargs)``); a required name the
caller did not give is filled with the value that switches its feature off, and only then. Once built, the
weights are loaded back through ComfyUI's detection, which sets those arguments from the weights' shapes.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import sys
from typing import Any

# A feature-off value for each argument a ComfyUI version made required (``[]``: no extra text-id axes;
# ``None``: no pooled-vector input; ``False``: the mean-flow average, the older behaviour).
FEATURE_OFF = {"txt_ids_dims": [], "vec_in_dim": None, "meanflow_sum": False}


def params_dataclasses(cls: type) -> list[type]:
    """The ``*Params`` dataclasses defined in ``cls``'s module (what a ``**kwargs`` constructor forwards to)."""
    return [value for value in vars(sys.modules[cls.__module__]).values()
            if isinstance(value, type) and value.__module__ == cls.__module__ and value.__name__.endswith("Params")
            and dataclasses.is_dataclass(value)]


def required_arguments(cls: type) -> set[str]:
    """Names ``cls(...)`` needs a value for: required parameters of its ``__init__`` plus required fields of the
    ``*Params`` dataclasses defined in its module (what a ``**kwargs`` constructor forwards them to)."""
    names = {name for name, p in inspect.signature(cls.__init__).parameters.items()
             if name != "self" and p.default is inspect.Parameter.empty
             and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    for params in params_dataclasses(cls):
        names |= {f.name for f in dataclasses.fields(params)
                  if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    return names


def feature_off_values(cls: type) -> dict[str, Any]:
    """What each optional argument of ``cls`` (its ``__init__`` and its module's ``*Params`` dataclasses) is when the
    caller leaves it out, plus ``FEATURE_OFF`` for the required ones: the values that leave a feature unused."""
    values = {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()
              if p.default is not inspect.Parameter.empty}
    for params in params_dataclasses(cls):
        values |= {f.name: f.default for f in dataclasses.fields(params) if f.default is not dataclasses.MISSING}
    return values | FEATURE_OFF


def completed_params(cls: type, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` plus the feature-off value of every argument ``cls`` requires that ``params`` lacks."""
    missing = required_arguments(cls) - set(params)
    return {**params, **{name: FEATURE_OFF[name] for name in missing if name in FEATURE_OFF}}


def build(cls: type, params: dict[str, Any], **kwargs: Any):
    """``cls(**params, **kwargs)`` with ``completed_params``; ``kwargs`` are e.g. ``operations``."""
    return cls(**completed_params(cls, params), **kwargs)


def class_at(path: str) -> type:
    """A ComfyUI class by dotted path, e.g. ``"comfy.ldm.flux.model.Flux"`` (``comfy`` must be importable)."""
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)
