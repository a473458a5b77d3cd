"""What differs between the ComfyUI versions the pack runs on, found by feature detection (never version strings).

Other nodes on the same model that TaylorSeer must not silently stack with (``peer_step_cache``):

- ComfyUI's own step caches, EasyCache and LazyCache (``comfy_extras/nodes_easycache.py``), skip whole model
  evaluations from their own estimate: a holder under ``transformer_options["easycache"]`` (both nodes) and wrappers
  keyed ``"easycache"`` or ``"lazycache"``. Kandinsky 6's MagCache (newest ComfyUI) is a holder under
  ``transformer_options["k6_magcache"]`` that skips the model's blocks from its own estimate.
- Newest ComfyUI's block-sparse attention publishes a forecast-history contract under
  ``transformer_options["attention_backend_history_v1"]`` (``comfy_extras/sparse_attention_history.py``): its
  attention takes another numerical route between steps (dense outside its sigma window, sparse inside it, then
  reusing the statistics of the previous computed step), and a forecast may only extrapolate a history made on the
  route the step takes. The pack cannot see that route, so it forecasts nothing beside it.

The policy for all of them: warn when TaylorSeer is applied, and at sampling time warn again and compute every step
of TaylorSeer's run (the other node keeps working); the log says to pick one.

Newest ComfyUI's model compiler (``comfy/model_prefetch.py``) records the allocations a model makes inside its
forward into a graph it replays on later calls (``malloc_graph_enabled(device)``: CUDA, comfy-aimdo, not started
with ``--disable-comfy-compiler``). Only models whose own code opens that graph record into it (MiniMax H3 and
Qwen-Image 2.1 do; Wan does not). A block level changes those allocations from one step to the next (skipped
blocks, the pack's own copies), so such a model on such a device does not get the block levels
(``block_level_blocker``); the output level never runs the model on a forecast step and is unaffected. Inside that
graph the compiler may also capture a block's computation as a CUDA graph and replay it on later calls
(``prefetch_queue_pop(..., enable_graph=True)``), where no Python of the block runs: one more reason the block
levels stay off there. No ComfyUI API switches the compiler off for one model or one run (only the command-line
flags ``--disable-comfy-compiler`` and ``--disable-cuda-graphs``, global), so the pack does not.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys

import torch

PEER_CACHE_KEYS = {"easycache": "EasyCache", "lazycache": "LazyCache"}
# transformer_options entries another node leaves on the model -> what it is called in the log
PEER_HOLDERS = {"k6_magcache": "Kandinsky 6 MagCache"}
ATTENTION_HISTORY_KEY = "attention_backend_history_v1"
ATTENTION_HISTORY_PEER = "block-sparse attention"

# What the pack attaches through: ModelPatcher methods, wrapper types, and the leading parameters of the calls
# its wrappers receive (``nodes/wrappers.py`` reads them by position).
PATCHER_METHODS = ("clone", "get_model_object", "add_wrapper_with_key", "remove_wrappers_with_key", "get_wrappers",
                   "set_model_patch_replace", "add_object_patch")
WRAPPER_TYPES = ("OUTER_SAMPLE", "PREDICT_NOISE", "APPLY_MODEL")
CALL_PARAMETERS = {
    ("comfy.model_base", "BaseModel", "apply_model"): ("x", "t", "c_concat", "c_crossattn", "control",
                                                       "transformer_options"),
    ("comfy.samplers", "CFGGuider", "outer_sample"): ("noise", "latent_image", "sampler", "sigmas"),
    ("comfy.samplers", "CFGGuider", "outer_predict_noise"): ("x", "timestep", "model_options", "seed"),
}


def peer_step_cache(model_patcher, model_options: dict | None = None) -> str | None:
    """The name of another step cache, or of an attention with a forecast-history contract, on ``model_patcher``
    (or in ``model_options``); None when there is none."""
    options = model_options if model_options is not None else model_patcher.model_options
    transformer_options = options.get("transformer_options", {})
    holder = transformer_options.get("easycache")
    if holder is not None:
        return str(getattr(holder, "name", "EasyCache"))
    for key, name in PEER_HOLDERS.items():
        if transformer_options.get(key) is not None:
            return name
    for keyed in getattr(model_patcher, "wrappers", {}).values():
        for key in keyed:
            if key in PEER_CACHE_KEYS:
                return PEER_CACHE_KEYS[key]
    if transformer_options.get(ATTENTION_HISTORY_KEY):
        return ATTENTION_HISTORY_PEER
    return None


def peer_cache_message(peer: str) -> str:
    if peer == ATTENTION_HISTORY_PEER:
        return (f"{peer} is on the same model: its attention changes route between steps and the pack cannot see "
                "which one a step takes, so TaylorSeer computes every step of this run. Remove one of the two nodes")
    return (f"{peer} is on the same model: two step caches would skip steps on top of each other's guesses, so "
            f"TaylorSeer computes every step of this run and only {peer} skips. Remove one of the two nodes")


def allocation_graph_on(device: torch.device) -> bool:
    """Whether ComfyUI's model compiler records an allocation graph for models run on ``device``. False where this
    ComfyUI has no such graph (0.3.75 has no ``comfy.model_prefetch``, 0.33 no ``malloc_graph_enabled``)."""
    try:
        import comfy.model_prefetch as prefetch
    except ImportError:
        return False
    enabled = getattr(prefetch, "malloc_graph_enabled", None)
    return bool(enabled(device)) if callable(enabled) else False


@functools.cache
def opens_allocation_graph(cls: type) -> bool:
    """Whether the ComfyUI code of model class ``cls`` (the modules of it and its bases) opens the compiler's
    allocation graph (``malloc_graph_begin`` / ``malloc_graph_scope``); True when that code cannot be read."""
    for base in cls.__mro__:
        if not base.__module__.startswith("comfy."):
            continue
        try:
            source = inspect.getsource(sys.modules[base.__module__])
        except (KeyError, OSError, TypeError):
            return True
        if "malloc_graph_begin" in source or "malloc_graph_scope" in source:
            return True
    return False


def block_level_blocker(device: torch.device, diffusion_model: torch.nn.Module) -> str | None:
    """Why the block levels cannot run ``diffusion_model`` on ``device`` in this ComfyUI (one clause for the log),
    None when they can."""
    if allocation_graph_on(device) and opens_allocation_graph(type(diffusion_model)):
        return (f"{type(diffusion_model).__name__} records its allocations into ComfyUI's model compiler graph on "
                f"{device}, and skipped blocks would change what it replays (start ComfyUI with "
                "--disable-comfy-compiler to forecast blocks)")
    return None


def _leading_parameters(module: str, cls: str, method: str) -> tuple[str, ...] | None:
    """The parameter names of ``module.cls.method`` after ``self``, None when it does not exist."""
    function = getattr(getattr(importlib.import_module(module), cls, None), method, None)
    if not callable(function):
        return None
    return tuple(inspect.signature(function).parameters)[1:]


def missing_entry_points(model_patcher) -> list[str]:
    """The ComfyUI entry points the pack attaches through that this ComfyUI lacks or calls with other leading
    parameters (empty on every supported version)."""
    import comfy.model_patcher
    import comfy.patcher_extension

    missing = [f"ModelPatcher.{name}" for name in PATCHER_METHODS if not callable(getattr(model_patcher, name, None))]
    wrapper_types = getattr(comfy.patcher_extension, "WrappersMP", None)
    missing += [f"WrappersMP.{kind}" for kind in WRAPPER_TYPES if not hasattr(wrapper_types, kind)]
    if not callable(getattr(comfy.model_patcher, "create_model_options_clone", None)):
        missing.append("comfy.model_patcher.create_model_options_clone")
    for (module, cls, method), expected in CALL_PARAMETERS.items():
        found = _leading_parameters(module, cls, method)
        if found is None or found[:len(expected)] != expected:
            missing.append(f"{cls}.{method}({', '.join(expected)}, ...)")
    return missing
