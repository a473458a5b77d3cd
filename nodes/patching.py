"""Attach forecasting to a ModelPatcher clone: the one entry both nodes use."""

from __future__ import annotations

import dataclasses
import logging

from .block_hooks import install_block_replacements
from .compat import peer_cache_message, peer_step_cache
from .config import ForecastConfig
from .families import family_of, no_adapter_reason
from .module_level import unsupported_blocks
from .run_state import LOG_PREFIX
from .wrappers import install_wrappers

logger = logging.getLogger("taylor_forecast")


def apply_forecasting(model, config: ForecastConfig):
    """Return a clone of ``model`` (a ComfyUI ModelPatcher) that forecasts as ``config`` says.

    Raises ValueError on an invalid config. A family without a residual adapter gets level "output" with
    TaylorSeer (logged), and no acceleration with the gate, which needs the blocks (logged): never an error.
    A negative ``gate_threshold`` means the family's default.
    """
    auto_threshold = config.gate_threshold is not None and config.gate_threshold < 0
    (dataclasses.replace(config, gate_threshold=0.0) if auto_threshold else config).validate()
    patched = model.clone()
    diffusion_model = patched.get_model_object("diffusion_model")
    family = family_of(diffusion_model)
    name = type(diffusion_model).__name__
    level = config.level
    if family is None and config.gate_threshold is not None:
        logger.warning("%s CG-Taylor Gate: %s has no block adapter, so no first block to probe: every step is "
                       "computed", LOG_PREFIX, name)
        return patched
    if family is None and level in ("residual", "modules"):
        logger.warning("%s %s; level %s requested: using level=output", LOG_PREFIX, no_adapter_reason(diffusion_model),
                       level)
        level = "output"
    peer = peer_step_cache(patched)
    if peer is not None:
        logger.warning("%s %s", LOG_PREFIX, peer_cache_message(peer))
    if level == "modules":
        missing = unsupported_blocks(family, diffusion_model)
        if missing:
            logger.warning("%s %s: no module adapter for %s blocks yet: using level=residual", LOG_PREFIX, name,
                           ", ".join(missing))
            level = "residual"
    if auto_threshold:
        config = dataclasses.replace(config, gate_threshold=family.gate_threshold)
        logger.info("%s CG-Taylor Gate: threshold auto = %g for %s (%s)", LOG_PREFIX, family.gate_threshold,
                    family.name, family.gate_threshold_source)
    if level in ("residual", "modules"):
        hooked = install_block_replacements(patched, family, diffusion_model)
        logger.info("%s %s level on %s (%d blocks hooked)", LOG_PREFIX, level, family.name, hooked)
    install_wrappers(patched, config, level)
    return patched
