"""Other nodes on the same model that TaylorSeer must not silently stack with.

ComfyUI's own step caches, EasyCache and LazyCache (``comfy_extras/nodes_easycache.py``), skip whole model
evaluations from their own estimate. Stacked with a forecast, one would skip on top of the other's guesses
(a silent double skip). They are found by what they leave on the model in every ComfyUI version that has
them: a holder under ``transformer_options["easycache"]`` (both nodes) and wrappers keyed ``"easycache"`` or
``"lazycache"``. The policy: warn when TaylorSeer is applied, and at sampling time warn again and compute
every step of TaylorSeer's run (the other cache keeps working); the log tells the user to pick one.
"""

from __future__ import annotations

import logging

logger = logging.getLogger("taylor_forecast")

PEER_CACHE_KEYS = {"easycache": "EasyCache", "lazycache": "LazyCache"}


def peer_step_cache(model_patcher, model_options: dict | None = None) -> str | None:
    """The name of another step cache on ``model_patcher`` (or in ``model_options``), None when there is none."""
    options = model_options if model_options is not None else model_patcher.model_options
    holder = options.get("transformer_options", {}).get("easycache")
    if holder is not None:
        return str(getattr(holder, "name", "EasyCache"))
    for keyed in getattr(model_patcher, "wrappers", {}).values():
        for key in keyed:
            if key in PEER_CACHE_KEYS:
                return PEER_CACHE_KEYS[key]
    return None


def peer_cache_message(peer: str) -> str:
    return (f"{peer} is on the same model: two step caches would skip steps on top of each other's guesses, so "
            f"TaylorSeer computes every step of this run and only {peer} skips. Remove one of the two nodes")
