"""The "CG-Taylor Gate" node: MODEL -> MODEL that forecasts a step only when the first block's own forecast
was accurate (CG-Taylor, arXiv 2508.02240), with the residual level's last-block forecast."""

from __future__ import annotations

from comfy_api.latest import io

from ..taylor_core import ERROR_BUDGETS
from .config import ForecastConfig
from .inputs import (
    DEFAULTS,
    factor_dtype_input,
    forecaster_input,
    order_input,
    storage_inputs,
    target_speedup_input,
    window_inputs,
)
from .log_context import node_scope
from .patching import apply_forecasting
from .validation import checked_schema, window_result

AUTO = -1.0
GATE_DEFAULTS = ForecastConfig(max_order=1, gate_threshold=AUTO, first_block_order=2, max_consecutive=4)


class CGTaylorGate(io.ComfyNode):
    """ComfyUI V3 node; the schema's tooltips say what each input does."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        g = GATE_DEFAULTS
        return checked_schema(io.Schema(
            node_id="CGTaylorGate",
            display_name="CG-Taylor Gate",
            category="TaylorSeer",
            description=("Confidence-gated TaylorSeer: runs the first block every step, compares it with its "
                         "Taylor forecast, and skips the other blocks (forecasting what they add) only when that "
                         "error is below the threshold. threshold 0 = no change."),
            inputs=[
                io.Model.Input("model"),
                io.Float.Input("threshold", default=AUTO, min=AUTO, max=10.0, step=0.001, tooltip=
                               "Largest relative L1 error of the first block's forecast that still allows a "
                               "forecast step. Higher = faster, lower = closer to the uncached image. 0 = never "
                               "forecast. Negative = auto: the model family's default."),
                order_input("max_order", g.max_order, "Taylor order of the forecast of what the blocks after the "
                            "first add."),
                order_input("first_block_order", g.first_block_order, "Taylor order of the first block's own "
                            "forecast, the gate's probe."),
                *window_inputs(),
                io.Int.Input("max_consecutive", default=g.max_consecutive, min=0, max=100, tooltip=
                             "At most this many forecast steps in a row (a safety rail). 0 = no cap."),
                *storage_inputs(),
                io.Combo.Input("error_budget", options=list(ERROR_BUDGETS), default=g.error_budget,
                               optional=True, tooltip=
                               "accumulated: the probe errors of consecutive forecast steps add up and their sum "
                               "must stay below the threshold (errors compound along the trajectory; measured "
                               "closer to the uncached image at equal speed). per_step: each step's error alone "
                               "(the CG-Taylor paper's rule)."),
                factor_dtype_input(),
                forecaster_input(),
                target_speedup_input(gate=True),
            ],
            outputs=[io.Model.Output()],
            hidden=[io.Hidden.unique_id],
            not_idempotent=True,  # identical nodes on one model stay apart: each run reports as its own node
        ))

    @classmethod
    def validate_inputs(cls, end_percent: float | None = None) -> bool | str:
        """The one input ComfyUI reports this on (``validation``); None: linked."""
        return window_result(cls, end_percent)

    @classmethod
    def execute(cls, model, threshold: float, max_order: int, first_block_order: int, warmup_steps: int,
                tail_steps: int, start_percent: float, end_percent: float, max_consecutive: int, clock: str,
                cache_device: str, factor_dtype: str = DEFAULTS.factor_dtype,
                error_budget: str = GATE_DEFAULTS.error_budget, forecaster: str = DEFAULTS.forecaster,
                target_speedup: float = DEFAULTS.target_speedup) -> io.NodeOutput:
        config = ForecastConfig(max_order=max_order, warmup_steps=warmup_steps, tail_steps=tail_steps,
                                start_percent=start_percent, end_percent=end_percent, level="residual",
                                clock=clock, cache_device=cache_device, factor_dtype=factor_dtype,
                                gate_threshold=threshold, first_block_order=first_block_order,
                                max_consecutive=max_consecutive, error_budget=error_budget, forecaster=forecaster,
                                target_speedup=target_speedup, node_id=cls.hidden.unique_id)
        with node_scope(config.node_id):
            return io.NodeOutput(apply_forecasting(model, config))
