"""The "TaylorSeer Apply" node: MODEL -> MODEL with TaylorSeer forecasting attached to a clone."""

from __future__ import annotations

from comfy_api.latest import io

from .config import LEVELS, ForecastConfig
from .inputs import (
    DEFAULTS,
    factor_dtype_input,
    forecaster_input,
    order_input,
    storage_inputs,
    target_speedup_input,
    window_inputs,
)
from .patching import apply_forecasting
from .validation import checked_schema, window_result


class TaylorSeerApply(io.ComfyNode):
    """ComfyUI V3 node; the schema's tooltips say what each input does."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        d = DEFAULTS
        return checked_schema(io.Schema(
            node_id="TaylorSeerApply",
            display_name="TaylorSeer Apply",
            category="TaylorSeer",
            description=("Speeds up sampling by computing the model only on some steps and forecasting the "
                         "others with a Taylor series over the stored full steps (TaylorSeer). interval 1 = no "
                         "change."),
            inputs=[
                io.Model.Input("model"),
                io.Int.Input("interval", default=d.interval, min=1, max=50, tooltip=
                             "Compute the full model every N steps and forecast the steps between. "
                             "1 = every step computed (output identical to the unpatched model)."),
                order_input("max_order", d.max_order, "Taylor order of the forecast. 0 = plain reuse of the "
                            "last full step (for comparison); 1-2 recommended; each order keeps one more copy of "
                            "the forecast features."),
                *window_inputs(),
                io.Combo.Input("level", options=list(LEVELS), default=d.level, tooltip=
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
                *storage_inputs(),
                factor_dtype_input(),
                forecaster_input(),
                target_speedup_input(),
            ],
            outputs=[io.Model.Output()],
            hidden=[io.Hidden.unique_id],
        ))

    @classmethod
    def validate_inputs(cls, end_percent: float | None = None) -> bool | str:
        """The one input ComfyUI reports this on (``validation``); None: linked."""
        return window_result(cls, end_percent)

    @classmethod
    def execute(cls, model, interval: int, max_order: int, warmup_steps: int, tail_steps: int,
                start_percent: float, end_percent: float, level: str, clock: str, cache_device: str,
                factor_dtype: str = DEFAULTS.factor_dtype, forecaster: str = DEFAULTS.forecaster,
                target_speedup: float = DEFAULTS.target_speedup) -> io.NodeOutput:
        config = ForecastConfig(interval, max_order, warmup_steps, tail_steps, start_percent, end_percent,
                                level, clock, cache_device, factor_dtype, forecaster=forecaster,
                                target_speedup=target_speedup, node_id=cls.hidden.unique_id)
        return io.NodeOutput(apply_forecasting(model, config))
