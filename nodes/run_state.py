"""Per-run state: one object per sampling run (one ``CFGGuider.sample`` call), owned by the OUTER_SAMPLE
wrapper, reached by the other wrappers through ``transformer_options[RUN_KEY]`` (an object, so ComfyUI's
per-call dict copies share it), and released in that wrapper's ``finally``.

Units: ``sigma`` is the sampler's noise level passed to ``apply_model``; a step is an index into the run's
sigma list (n + 1 sigmas for n steps); the forecast time coordinate is sigma or the fractional step index,
as the config's ``clock`` says.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from ..taylor_core import (
    ForecastBank,
    GateBudget,
    RunStats,
    StepPlan,
    locate_step,
    relative_l1,
    time_coordinate,
    window_flags,
)
from .config import ForecastConfig

RUN_KEY = "taylor_forecast_run"
LOG_PREFIX = "[TaylorSeer]"
PROBE = "probe"
logger = logging.getLogger("taylor_forecast")

FULL, FORECAST, GATE = "full", "forecast", "gate"


@dataclass(frozen=True)
class Chunk:
    """The slice of a model call's batch that belongs to one conditioning (one uuid) in one context window."""

    key: tuple  # (uuid, window) prefix of every forecast key of this chunk
    rows: slice  # along the batch dimension
    signature: tuple  # shapes/dtype/device that must match for a forecast to be valid


@dataclass(frozen=True)
class CallPlan:
    """What one ``apply_model`` call does: ``mode`` FULL (computed, recorded when ``record``), FORECAST, or
    GATE (the confidence gate decides at the first block; only the first call of an evaluation gates)."""

    step: int
    sigma: float
    time: float
    mode: str
    record: bool
    reason: str
    chunks: tuple[Chunk, ...]

    @property
    def full(self) -> bool:
        return self.mode == FULL

    def as_full(self, reason: str) -> CallPlan:
        return CallPlan(self.step, self.sigma, self.time, FULL, self.record, reason, self.chunks)


def _batch_chunks(x: torch.Tensor, context: torch.Tensor | None, uuids: list | None,
                  window: tuple | None) -> tuple[Chunk, ...]:
    batch = x.shape[0]
    ids = list(uuids) if uuids else [None]
    if batch % len(ids) != 0:  # not one equal slice per conditioning: treat the call as one chunk
        ids = [tuple(ids)]
    size = batch // len(ids)
    ctx_shape = tuple(context.shape[1:]) if isinstance(context, torch.Tensor) else None
    signature = (tuple(x.shape[1:]), ctx_shape, x.dtype, x.device)
    return tuple(Chunk((uid, window), slice(i * size, (i + 1) * size), signature) for i, uid in enumerate(ids))


class RunState:
    """Schedule (or gate), forecast caches and statistics of one sampling run."""

    def __init__(self, config: ForecastConfig, level: str, step_sigmas: list[float], start_sigma: float,
                 end_sigma: float) -> None:
        self.config = config
        self.level = level
        self.step_sigmas = step_sigmas
        self.num_steps = max(len(step_sigmas) - 1, 0)
        self.gate = config.gate
        self.plan = (config.schedule.plan(self.num_steps, window_flags(step_sigmas, start_sigma, end_sigma))
                     if self.num_steps else StepPlan(()))
        self.bank = ForecastBank(config.max_order, config.torch_factor_dtype, config.storage_device)
        self.probe_bank = (ForecastBank(config.first_block_order, config.torch_factor_dtype, config.storage_device)
                           if self.gate is not None else None)
        self.stats = RunStats()
        self.evaluation = 0  # advanced by the PREDICT_NOISE wrapper: one per sampler model evaluation
        self._decided_evaluation = -1
        self._decision: tuple[str, str] = (FULL, "first")
        self._seen: set[tuple] = set()
        self.consecutive_forecasts = 0
        self.gate_budget = GateBudget(self.gate) if self.gate is not None else None
        self._counted_evaluation = -1
        self.layouts = None  # residual level: the model's block layout, resolved at the first call
        self.modules = None  # modules level: its ModuleLayout (nodes/module_level.py), resolved with layouts

    @property
    def forecasts_hidden_state(self) -> bool:
        """Residual level: the gate forecasts the last block's output, TaylorSeer what the skipped blocks add."""
        return self.gate is not None

    @property
    def forecast_char(self) -> str:
        return "R" if self.config.max_order == 0 else "T"

    def next_evaluation(self) -> None:
        self.evaluation += 1
        self._seen.clear()

    def plan_call(self, sigma_tensor: torch.Tensor, x: torch.Tensor, context: torch.Tensor | None,
                  transformer_options: dict) -> CallPlan:
        """Decide one call. The first call of an evaluation decides for the whole evaluation (through the gate
        when gated); other conds follow it with their own caches; a second call for the same cond in one
        evaluation (e.g. skip-layer guidance re-running the model) is computed and not recorded."""
        sigma = float(sigma_tensor.reshape(-1)[0])
        step = locate_step(sigma, self.step_sigmas) if self.num_steps else 0
        window = transformer_options.get("context_window")
        window_key = tuple(getattr(window, "index_list", ())) if window is not None else None
        chunks = _batch_chunks(x, context, transformer_options.get("uuids"), window_key)
        time = time_coordinate(self.config.clock, sigma, self.step_sigmas) if self.num_steps else sigma

        if self._decided_evaluation != self.evaluation:
            self._decided_evaluation = self.evaluation
            self._decision = self._first_decision(step)
        mode, reason = self._decision
        keys = {chunk.key for chunk in chunks}
        if keys & self._seen:
            return CallPlan(step, sigma, time, FULL, False, "repeat-call", chunks)
        self._seen |= keys
        plan = CallPlan(step, sigma, time, mode, sigma > 0.0, reason, chunks)
        if mode != FULL and not all(self.ready(chunk) for chunk in chunks):
            plan = plan.as_full("no-history")
            if mode == GATE:
                self._decision = (FULL, "no-history")
        return plan

    def _first_decision(self, step: int) -> tuple[str, str]:
        if self.plan.is_full(step):
            return FULL, "schedule"
        if self.gate is None:
            return FORECAST, "schedule"
        if self.gate.capped(self.consecutive_forecasts):
            return FULL, "cap"
        return GATE, "gate"

    def gate_verdict(self, error: float) -> tuple[bool, float]:
        """(whether the gate trusts this evaluation's forecast, the score it compared with the threshold)."""
        return self.gate_budget.verdict(error)

    def resolve_gate(self, forecast: bool) -> None:
        """The gate's verdict for the current evaluation; the other conds of this evaluation follow it."""
        self._decision = (FORECAST if forecast else FULL, "gate")

    def feature_keys(self, chunk: Chunk) -> list[tuple]:
        """Every forecast key of a chunk at this run's level (the gate's probe excluded)."""
        if self.level == "output":
            return [chunk.key + ("output",)]
        if self.level == "modules":
            return [chunk.key + (name,) for name in (self.modules.features if self.modules else ())]
        return [chunk.key + (f"{index}/{stream}",) for index, layout in enumerate(self.layouts or ())
                if layout.first_skipped is not None for stream in layout.spec.streams]

    def ready(self, chunk: Chunk) -> bool:
        keys = self.feature_keys(chunk)
        probe_ready = self.probe_bank is None or self.probe_bank.ready(chunk.key + (PROBE,), chunk.signature)
        return bool(keys) and probe_ready and all(self.bank.ready(key, chunk.signature) for key in keys)

    def record(self, plan: CallPlan, feature: str, value: torch.Tensor) -> None:
        """Store one full-compute feature (batch-first) of every chunk at the call's time coordinate."""
        bank = self.probe_bank if feature == PROBE else self.bank
        for chunk in plan.chunks:
            bank.update(chunk.key + (feature,), plan.time, value[chunk.rows], chunk.signature)
        self.stats.note_cache_bytes(self.cache_bytes())

    def predict(self, plan: CallPlan, feature: str) -> torch.Tensor:
        """The forecast of one feature for the whole batch (chunks concatenated in batch order)."""
        bank = self.probe_bank if feature == PROBE else self.bank
        parts = [bank.predict(chunk.key + (feature,), plan.time) for chunk in plan.chunks]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)

    def probe_error(self, plan: CallPlan, actual: torch.Tensor) -> float:
        """The gate's error: relative L1 of the probe's forecast against its real value, whole batch."""
        return relative_l1(self.predict(plan, PROBE), actual)

    def forget(self, plan: CallPlan) -> None:
        """Drop the history of every chunk of a call (after a fallback): the next full step starts afresh."""
        for chunk in plan.chunks:
            for key in self.feature_keys(chunk):
                self.bank.drop(key)
            if self.probe_bank is not None:
                self.probe_bank.drop(chunk.key + (PROBE,))

    def note(self, plan: CallPlan, full: bool, reason: str, gate_error: float | None = None) -> None:
        """Record one call in the statistics; the evaluation's deciding call also advances the run of
        consecutive forecasts the gate's cap counts."""
        self.stats.record(plan.step, plan.sigma, full, reason, gate_error)
        if reason != "repeat-call" and self._counted_evaluation != self.evaluation:
            self._counted_evaluation = self.evaluation
            self.consecutive_forecasts = 0 if full else self.consecutive_forecasts + 1
            if full and self.gate_budget is not None:
                self.gate_budget.reset()

    def cache_bytes(self) -> int:
        return self.bank.bytes_held() + (self.probe_bank.bytes_held() if self.probe_bank is not None else 0)

    def release(self) -> None:
        """Free every cached tensor; the statistics stay for the report."""
        self.bank.release()
        if self.probe_bank is not None:
            self.probe_bank.release()
        self._seen.clear()
