"""The "TaylorSeer Apply" node: MODEL -> MODEL with TaylorSeer forecasting attached to a clone."""

from __future__ import annotations

from comfy_api.latest import io

from .config import LEVELS, ForecastConfig
from .inputs import (
    DEFAULTS,
    calibration_input,
    factor_dtype_input,
    forecaster_input,
    order_input,
    schema_defaults,
    storage_inputs,
    target_speedup_input,
    window_inputs,
)
from .log_context import node_scope
from .patching import apply_forecasting
from .validation import calibration_result, checked_schema, window_result


class TaylorSeerApply(io.ComfyNode):
    """ComfyUI V3 node; the schema's tooltips say what each input does. Every input but the model is optional,
    so the budget (``target_speedup``) is the first widget a user sees and an API prompt that leaves an input out
    gets the schema's default."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        d = DEFAULTS
        return checked_schema(io.Schema(
            node_id="TaylorSeerApply",
            display_name="TaylorSeer Apply",
            category="TaylorSeer",
            description=("Speeds up sampling by computing the model only on some steps and forecasting the "
                         "others with a Taylor series over the stored full steps (TaylorSeer). target_speedup 1 "
                         "or interval 1 = no change."),
            inputs=[
                io.Model.Input("model"),
                target_speedup_input(),
                io.Int.Input("interval", default=d.interval, min=1, max=50, optional=True, tooltip=
                             "Used only with target_speedup 0: compute the full model every N steps and forecast "
                             "the steps between. 1 = every step computed (output identical to the unpatched "
                             "model)."),
                order_input("max_order", d.max_order, "Taylor order of the forecast. 0 = plain reuse of the "
                            "last full step (for comparison); 1-2 recommended; each order keeps one more copy of "
                            "the forecast features.", optional=True),
                *window_inputs(optional=True),
                io.Combo.Input("level", options=list(LEVELS), default=d.level, optional=True, tooltip=
                               "residual: run the first block every step and forecast what the other blocks add "
                               "(Flux, Chroma, Wan, HunyuanVideo, Qwen-Image, SD3, LTXV, Mochi, AuraFlow, "
                               "HunyuanDiT, Lumina 2 / Z-Image, PixArt; other models use output, logged). output: "
                               "forecast the model's output; works for every model, UNets included. modules: the "
                               "original TaylorSeer: forecast every block's attention and MLP outputs while "
                               "modulation, gates and residual adds still run (Flux, Chroma, Wan; other models "
                               "fall back to residual). The expensive mode: it caches blocks x branches x tokens x "
                               "hidden x (max_order + 1) values, e.g. 38x the residual level on Flux, about 4.3 GB "
                               "per order at 1024x1024 in float32 (half with factor_dtype model on bf16); "
                               "cache_device cpu works with it."),
                *storage_inputs(optional=True),
                factor_dtype_input(),
                forecaster_input(),
                calibration_input(),
            ],
            outputs=[io.Model.Output()],
            hidden=[io.Hidden.unique_id],
            not_idempotent=True,  # identical nodes on one model stay apart: each run reports as its own node
        ))

    @classmethod
    def validate_inputs(cls, end_percent: float | None = None) -> bool | str:
        """The one input ComfyUI reports this on (``validation``); None: linked or left out (its default). The
        rules across inputs (the window's order, calibration's budget) read the others as submitted."""
        window = window_result(cls, end_percent)
        return calibration_result(cls) if window is True else window

    @classmethod
    def execute(cls, model, **inputs) -> io.NodeOutput:
        """``inputs``: the schema's inputs by name; one left out (an API prompt) takes its default."""
        config = ForecastConfig(**{**schema_defaults(cls.define_schema()), **inputs}, node_id=cls.hidden.unique_id)
        with node_scope(config.node_id):
            return io.NodeOutput(apply_forecasting(model, config))
