"""Input definitions the forecasting nodes share (ComfyUI V3 schema inputs).

The schema is the one place of every input's default, range and tooltip; ``validation`` makes ComfyUI's own
checks of them complete.
"""

from __future__ import annotations

from typing import Any

from comfy_api.latest import io

from ..taylor_core import MAX_TARGET_SPEEDUP, PREDICTORS
from ..taylor_core.calibration import CALIBRATION_MODES, CHOICE_MARGIN_DB, MAX_CANDIDATES
from ..taylor_core.pacing import DEFAULT_SLACK
from .calibration import PROBES
from .config import (
    AUTO_WARMUP,
    BUDGET_WARMUP,
    CACHE_DEVICES,
    CLOCKS,
    FACTOR_DTYPES,
    INTERVAL_WARMUP,
    MAX_ORDER,
    ForecastConfig,
)
from .validation import Minimum

DEFAULTS = ForecastConfig()
RECOMMENDED_SPEEDUP = 3.0
"""TaylorSeer Apply's default ``target_speedup``: the measured recommended setting (README, settings table). An API
prompt that leaves the input out gets it; 0 selects TaylorSeer's fixed ``interval``."""


def order_input(name: str, default: int, tooltip: str, optional: bool = False) -> io.Int.Input:
    return io.Int.Input(name, default=default, min=0, max=MAX_ORDER, optional=optional, tooltip=tooltip)


def window_inputs(optional: bool = False) -> list[io.Input]:
    """warmup_steps, tail_steps, start_percent, end_percent."""
    d = DEFAULTS
    return [
        io.Int.Input("warmup_steps", default=AUTO_WARMUP, min=AUTO_WARMUP, max=100, optional=optional,
                     tooltip="The first N steps are always computed (they fix the composition). -1 = auto: "
                     f"{INTERVAL_WARMUP} with an interval (TaylorSeer's), {BUDGET_WARMUP} with a target_speedup "
                     "(measured closer: the budget places the early computes itself)."),
        io.Int.Input("tail_steps", default=d.tail_steps, min=0, max=100, optional=optional,
                     tooltip="The last N steps are always computed (they fix fine detail)."),
        io.Float.Input("start_percent", default=d.start_percent, min=0.0, max=1.0, step=0.01, optional=optional,
                       tooltip="Forecast only from this point of the denoising (0 = start)."),
        io.Float.Input("end_percent", default=d.end_percent, min=0.0, max=1.0, step=0.01, optional=optional,
                       tooltip="Forecast only up to this point of the denoising (1 = end)."),
    ]


def storage_inputs(optional: bool = False) -> list[io.Input]:
    """clock and cache_device."""
    d = DEFAULTS
    return [
        io.Combo.Input("clock", options=list(CLOCKS), default=d.clock, optional=optional, tooltip=
                       "Time axis of the Taylor series: step (the sampling step, fractional for the extra "
                       "evaluations of multi-step samplers; measured closer to the uncached image) or sigma "
                       "(the noise level itself)."),
        io.Combo.Input("cache_device", options=list(CACHE_DEVICES), default=d.cache_device, optional=optional,
                       tooltip="auto: keep the forecast factors on the model's device; cpu: offload them to "
                       "system memory (slower, saves GPU memory; the choice for level modules on large models)."),
    ]


def factor_dtype_input() -> io.Combo.Input:
    """The optional input both forecasting nodes share."""
    return io.Combo.Input("factor_dtype", options=list(FACTOR_DTYPES), default=DEFAULTS.factor_dtype,
                          optional=True, tooltip="float32: keep forecast factors in float32 (accurate); model: in "
                          "the model's dtype (half the memory with bf16/fp16 models).")


def forecaster_input() -> io.Combo.Input:
    """The optional predictor choice both forecasting nodes share (appended: saved graphs keep loading)."""
    return io.Combo.Input("forecaster", options=list(PREDICTORS), default=DEFAULTS.forecaster, optional=True,
                          tooltip="How a skipped step is forecast from the full steps. newton: TaylorSeer's Taylor "
                          "series (max_order + 1 copies of each feature; the closest measured with a "
                          "target_speedup). hermite: HiCache's scaled Hermite series as published (s = 0.5 on the "
                          "step axis: halves the slope, damps the higher orders; same memory). foca: FoCa's "
                          "predictor-corrector, damped after 3 steps (up to 4 copies). spectral: Spectrum's "
                          "Chebyshev fit over the last 10 full steps blended with newton (10 copies: the "
                          "memory-heavy one). auto: foca or newton, whichever forecast the last full steps better "
                          "(both held).")


def calibration_input() -> io.Combo.Input:
    """TaylorSeer Apply's last input: measure the model once and plan later runs from the measurement."""
    return io.Combo.Input("calibration", options=list(CALIBRATION_MODES), default=DEFAULTS.calibration,
                          optional=True, tooltip="Needs a target_speedup. auto: the first run with this model "
                          "(LoRAs included), prompt (conditioning), cfg, latent size, sampler, sigmas, steps, budget, "
                          "window and level samples uncached (its image is the unpatched model's), measures how far "
                          f"an error at {PROBES} steps carries to the image ({PROBES} more uncached samplings), then "
                          f"tries up to {MAX_CANDIDATES} plans of the budget (newton order 1 or 2, or foca, on the "
                          "back-loaded or an even plan, and newton 1 on a plan fitted to this run by dynamic "
                          "programming) on its noise and on a fixed "
                          "second one, keeps the closest of those at least "
                          f"{CHOICE_MARGIN_DB:g} dB closer than the default plan on both (else the default) in a "
                          "profile in ComfyUI's user directory (taylor_forecast/profiles), and later runs with the "
                          "same settings (any seed or batch size) use it (the log and badge say calibrated): that "
                          f"first run costs up to {2 + PROBES + 2 * MAX_CANDIDATES} samplings; another prompt "
                          "calibrates anew. recalibrate: measure anew. off: the default plan.")


def target_speedup_input(gate: bool = False) -> io.Float.Input:
    """The optional speed-up budget of TaylorSeer Apply (default ``RECOMMENDED_SPEEDUP``; 0 keeps ``interval``)
    or of the gate (default 0: the threshold alone decides)."""
    zero = "the threshold alone decides" if gate else "use interval"
    where = (f"the gate's probe runs each early or late, at most {DEFAULT_SLACK} steps from where the budget's map "
             "has it"
             if gate else "placed more densely toward the end (measured closer to the uncached image)")
    return io.Float.Input("target_speedup", default=DEFAULTS.target_speedup if gate else RECOMMENDED_SPEEDUP,
                          min=Minimum(0.0, 1.0, zero), max=MAX_TARGET_SPEEDUP, step=0.05, optional=True,
                          tooltip=f"0 = {zero}. Otherwise a speed-up budget in sampling steps: round(steps / "
                          f"target_speedup) steps are computed in full, {where}; step 0, the warm-up, the tail and the "
                          "steps outside the window count against it (a budget they exceed is logged and those steps "
                          "alone are computed). Steps, not model evaluations: a sampler with two evaluations per step "
                          "(heun, dpmpp_2s_ancestral, dpmpp_sde) computes or forecasts both together, so its "
                          "evaluations' ratio can be higher (its last step, always computed, has one evaluation); "
                          "the badge shows both. 1 = every step computed; values below 1 are refused.")


def schema_defaults(schema: io.Schema) -> dict[str, Any]:
    """Input id -> default of every schema input that has one (what an API prompt that leaves it out gets)."""
    return {spec.id: spec.default for spec in schema.inputs if getattr(spec, "default", None) is not None}
