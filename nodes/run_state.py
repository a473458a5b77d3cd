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

from ..taylor_core import ForecastBank, RunStats, locate_step, time_coordinate, window_flags
from .config import ForecastConfig

RUN_KEY = "taylor_forecast_run"
LOG_PREFIX = "[TaylorSeer]"
logger = logging.getLogger("taylor_forecast")


@dataclass(frozen=True)
class Chunk:
    """The slice of a model call's batch that belongs to one conditioning (one uuid) in one context window."""

    key: tuple  # (uuid, window) prefix of every forecast key of this chunk
    rows: slice  # along the batch dimension
    signature: tuple  # shapes/dtype/device that must match for a forecast to be valid


@dataclass(frozen=True)
class CallPlan:
    """What one ``apply_model`` call does: computed (and recorded) in full, or forecast."""

    step: int
    sigma: float
    time: float
    full: bool
    record: bool
    reason: str
    chunks: tuple[Chunk, ...]


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
    """Schedule, forecast caches and statistics of one sampling run."""

    def __init__(self, config: ForecastConfig, level: str, step_sigmas: list[float], start_sigma: float,
                 end_sigma: float) -> None:
        self.config = config
        self.level = level
        self.step_sigmas = step_sigmas
        self.num_steps = max(len(step_sigmas) - 1, 0)
        self.plan = config.schedule.plan(self.num_steps, window_flags(step_sigmas, start_sigma, end_sigma))
        self.bank = ForecastBank(config.max_order, config.torch_factor_dtype, config.storage_device)
        self.stats = RunStats()
        self.evaluation = 0  # advanced by the PREDICT_NOISE wrapper: one per sampler model evaluation
        self._decided_evaluation = -1
        self._decision: tuple[bool, str] = (True, "first")
        self._seen: set[tuple] = set()
        self.layouts = None  # residual level: the model's block layout, resolved at the first call

    @property
    def forecast_char(self) -> str:
        return "R" if self.config.max_order == 0 else "T"

    def next_evaluation(self) -> None:
        self.evaluation += 1
        self._seen.clear()

    def plan_call(self, sigma_tensor: torch.Tensor, x: torch.Tensor, context: torch.Tensor | None,
                  transformer_options: dict) -> CallPlan:
        """Decide one call. The first call of an evaluation decides for the whole evaluation; other conds
        follow it with their own caches; a second call for the same cond in one evaluation (e.g. skip-layer
        guidance re-running the model) is computed and not recorded."""
        sigma = float(sigma_tensor.reshape(-1)[0])
        step = locate_step(sigma, self.step_sigmas) if self.num_steps else 0
        window = transformer_options.get("context_window")
        window_key = tuple(getattr(window, "index_list", ())) if window is not None else None
        chunks = _batch_chunks(x, context, transformer_options.get("uuids"), window_key)
        time = time_coordinate(self.config.clock, sigma, self.step_sigmas) if self.num_steps else sigma

        if self._decided_evaluation != self.evaluation:
            self._decided_evaluation = self.evaluation
            full = self.plan.is_full(step)
            self._decision = (full, "schedule" if full else "forecast")
        full, reason = self._decision
        keys = {chunk.key for chunk in chunks}
        if keys & self._seen:
            return CallPlan(step, sigma, time, True, False, "repeat-call", chunks)
        self._seen |= keys
        record = sigma > 0.0
        if not full and not all(self.ready(chunk) for chunk in chunks):
            full, reason = True, "no-history"
        return CallPlan(step, sigma, time, full, record, reason, chunks)

    def feature_keys(self, chunk: Chunk) -> list[tuple]:
        """Every forecast key of a chunk at this run's level."""
        if self.level == "output":
            return [chunk.key + ("output",)]
        return [chunk.key + (f"{index}/{stream}",) for index, layout in enumerate(self.layouts or ())
                if layout.first_skipped is not None for stream in layout.spec.streams]

    def ready(self, chunk: Chunk) -> bool:
        keys = self.feature_keys(chunk)
        return bool(keys) and all(self.bank.ready(key, chunk.signature) for key in keys)

    def record(self, plan: CallPlan, feature: str, value: torch.Tensor) -> None:
        """Store one full-compute feature (batch-first) of every chunk at the call's time coordinate."""
        for chunk in plan.chunks:
            self.bank.update(chunk.key + (feature,), plan.time, value[chunk.rows], chunk.signature)
        self.stats.note_cache_bytes(self.bank.bytes_held())

    def predict(self, plan: CallPlan, feature: str) -> torch.Tensor:
        """The forecast of one feature for the whole batch (chunks concatenated in batch order)."""
        parts = [self.bank.predict(chunk.key + (feature,), plan.time) for chunk in plan.chunks]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)

    def forget(self, plan: CallPlan) -> None:
        """Drop the history of every chunk of a call (after a fallback): the next full step starts afresh."""
        for chunk in plan.chunks:
            for key in self.feature_keys(chunk):
                self.bank.drop(key)

    def note(self, plan: CallPlan, full: bool, reason: str) -> None:
        self.stats.record(plan.step, plan.sigma, full, reason)

    def release(self) -> None:
        """Free every cached tensor; the statistics stay for the report."""
        self.bank.release()
        self._seen.clear()
