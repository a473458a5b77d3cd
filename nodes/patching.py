"""Attach forecasting to a ModelPatcher clone: the one entry both nodes use."""

from __future__ import annotations

import dataclasses

from .adapters.block_hooks import install_block_replacements
from .adapters.families import family_of
from .compat import missing_entry_points, peer_cache_message, peer_step_cache
from .config import ForecastConfig
from .levels import fall
from .logs import LOG_PREFIX, logger
from .wrappers import install_wrappers


def apply_forecasting(model, config: ForecastConfig):
    """Return a clone of ``model`` (a ComfyUI ModelPatcher) that forecasts as ``config`` says.

    Raises ValueError on an invalid config. A level the model cannot run falls down the ladder
    (``levels.fall``, logged): the gate without the model's blocks computes every step, never an error.
    A negative ``gate_threshold`` means the family's default.
    """
    auto_threshold = config.gate_threshold is not None and config.gate_threshold < 0
    (dataclasses.replace(config, gate_threshold=0.0) if auto_threshold else config).validate()
    patched = model.clone()
    missing = missing_entry_points(patched)
    if missing:
        logger.warning("%s this ComfyUI has no %s, which the pack attaches through: sampling without forecasting",
                       LOG_PREFIX, ", ".join(missing))
        return patched
    diffusion_model = patched.get_model_object("diffusion_model")
    level = fall(config.level, diffusion_model, config.gate_threshold is not None, applying=True,
                 device=patched.load_device)
    if level == "off":
        return patched
    peer = peer_step_cache(patched)
    if peer is not None:
        logger.warning("%s %s", LOG_PREFIX, peer_cache_message(peer))
    family = family_of(diffusion_model)
    if auto_threshold:
        config = dataclasses.replace(config, gate_threshold=family.gate_threshold)
        logger.info("%s CG-Taylor Gate: threshold auto = %g for %s (%s)", LOG_PREFIX, family.gate_threshold,
                    family.name, family.gate_threshold_source)
    if level in ("residual", "modules"):
        hooked = install_block_replacements(patched, family, diffusion_model)
        logger.info("%s %s level on %s (%d blocks hooked)", LOG_PREFIX, level, family.name, hooked)
    install_wrappers(patched, config, level)
    return patched
