"""Per-run state: one object per sampling run (one ``CFGGuider.sample`` call), owned by the OUTER_SAMPLE
wrapper, reached by the other wrappers through ``transformer_options[RUN_KEY]`` (an object, so ComfyUI's
per-call dict copies share it), and released in that wrapper's ``finally``.

Threads: ComfyUI 0.33 runs the cond batches of one evaluation in one thread per device, each on a deep clone of
the model, all sharing this object. So the full/forecast decision of an evaluation is one ``Decision`` made by
its first call (under the run's lock) that every other call, in any thread, obeys (waiting for a gate's verdict);
every forecast key starts with the call's device, so a thread only reads the histories it wrote; the bank's
structure, the statistics and the gate's counters change under the lock. The tensor math of a forecast runs
outside it.

Units: ``sigma`` is the sampler's noise level passed to ``apply_model``; a step is an index into the run's
sigma list (n + 1 sigmas for n steps); the forecast time coordinate is sigma or the fractional step index,
as the config's ``clock`` says.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from dataclasses import dataclass

import torch

from ..taylor_core import (
    ForecastBank,
    GateBudget,
    Mode,
    Reason,
    RunStats,
    StepPlan,
    decide,
    fall_back,
    locate_step,
    relative_l1,
    run_options,
    time_coordinate,
    window_flags,
)
from ..taylor_core.pacing import BudgetPacer
from .config import ForecastConfig

RUN_KEY = "taylor_forecast_run"
LOG_PREFIX = "[TaylorSeer]"
PROBE = "probe"
logger = logging.getLogger("taylor_forecast")

FULL, FORECAST, GATE = Mode.FULL, Mode.FORECAST, Mode.GATE


@dataclass(frozen=True)
class Chunk:
    """The slice of a model call's batch that belongs to one conditioning (one uuid) in one context window."""

    key: tuple  # (device, uuid, window) prefix of every forecast key of this chunk
    rows: slice  # along the batch dimension
    signature: tuple  # shapes/dtype/device that must match for a forecast to be valid


class Decision:
    """The full/forecast decision of one evaluation, shared by all its calls and device threads. FULL and FORECAST
    are final when made; GATE is pending until the deciding call (the evaluation's first) settles it at its probe
    (or on any other way out of the call: ``RunState.settle``); other calls wait for that verdict."""

    def __init__(self, evaluation: int, mode: str, reason: str) -> None:
        self.evaluation = evaluation
        self.mode, self.reason = mode, reason
        self._final = threading.Event()
        if mode != GATE:
            self._final.set()

    def settle(self, mode: str, reason: str) -> None:
        """The verdict of a pending gate (a final decision is kept: the first verdict wins)."""
        if not self._final.is_set():
            self.mode, self.reason = mode, reason
            self._final.set()

    def verdict(self) -> tuple[str, str]:
        """``(mode, reason)``, waiting for the deciding call while a gate is pending."""
        self._final.wait()
        return self.mode, self.reason


@dataclass(frozen=True)
class CallPlan:
    """What one ``apply_model`` call does: ``mode`` FULL (computed, recorded when ``record``), FORECAST, or
    GATE (the confidence gate decides at the first block; only the deciding call of an evaluation gates)."""

    step: int
    sigma: float
    time: float
    mode: str
    record: bool
    reason: str
    chunks: tuple[Chunk, ...]
    decision: Decision
    deciding: bool  # the evaluation's first call: it settles a gate and advances the run of forecasts

    @property
    def full(self) -> bool:
        return self.mode == FULL

    def as_full(self, reason: Reason) -> CallPlan:
        """This call computed in full instead, for ``reason`` (a fall-back: ``taylor_core.fall_back``)."""
        answer = fall_back(reason)
        return dataclasses.replace(self, mode=answer.mode, reason=answer.reason)


def _batch_chunks(x: torch.Tensor, context: torch.Tensor | None, uuids: list | None, window: tuple | None,
                  device) -> tuple[Chunk, ...]:
    batch = x.shape[0]
    ids = list(uuids) if uuids else [None]
    if batch % len(ids) != 0:  # not one equal slice per conditioning: treat the call as one chunk
        ids = [tuple(ids)]
    size = batch // len(ids)
    ctx_shape = tuple(context.shape[1:]) if isinstance(context, torch.Tensor) else None
    signature = (tuple(x.shape[1:]), ctx_shape, x.dtype, x.device)
    return tuple(Chunk((device, uid, window), slice(i * size, (i + 1) * size), signature) for i, uid in enumerate(ids))


def _clock_span(clock: str, step_sigmas: list[float]) -> tuple[float, float] | None:
    """``(lo, hi)`` of the clock's time over the run's sigmas (every evaluation lies between the first and the
    last); None for fewer than two sigmas or an empty span."""
    if len(step_sigmas) < 2:
        return None
    lo, hi = sorted(time_coordinate(clock, s, step_sigmas) for s in (step_sigmas[0], step_sigmas[-1]))
    return (lo, hi) if lo < hi else None


class RunState:
    """Schedule (or gate), forecast caches and statistics of one sampling run; safe to share between the device
    threads of one evaluation (see the module docstring)."""

    def __init__(self, config: ForecastConfig, level: str, step_sigmas: list[float], start_sigma: float,
                 end_sigma: float) -> None:
        self.config = config
        self.level = level
        self.step_sigmas = step_sigmas
        self.num_steps = max(len(step_sigmas) - 1, 0)
        self.gate = config.gate
        window = window_flags(step_sigmas, start_sigma, end_sigma)
        self.plan = config.schedule.plan(self.num_steps, window) if self.num_steps else StepPlan(())
        budget = config.budget_schedule
        self.budget_plan = budget.plan(self.num_steps, window) if budget is not None and self.num_steps else None
        """The gate's budget: the map its pacer keeps to (None without a budget)."""
        self.pacer = (BudgetPacer(self.budget_plan.full, self.plan.full) if self.budget_plan is not None
                      else None)
        self.bank = self._new_bank(config.max_order)
        self.probe_bank = self._new_bank(config.first_block_order) if self.gate is not None else None
        self.stats = RunStats()
        self.lock = threading.Lock()  # guards the decision, the banks' keys, the statistics and the counters
        self.evaluation = 0  # advanced by the PREDICT_NOISE wrapper: one per sampler model evaluation
        self._decision = Decision(-1, FULL, Reason.SCHEDULE)
        self._seen: set[tuple] = set()
        self._thread = threading.local()  # per thread: the history resets its own records caused
        self.consecutive_forecasts = 0
        self.gate_budget = GateBudget(self.gate) if self.gate is not None else None
        self.forecasting = True  # False after a failure of the pack's own code: every later call computed in full
        self.layouts = None  # residual level: the model's block layout, resolved at the first call
        self.modules = None  # modules level: its ModuleLayout (nodes/module_level.py), resolved with layouts

    def _new_bank(self, max_order: int) -> ForecastBank:
        """A bank of the config's forecaster fitted to this run's clock (``run_options``): the forecast times span
        the clock from the first sigma to the last, a typical step is that span over the steps (1 on the step
        clock)."""
        config = self.config
        span = _clock_span(config.clock, self.step_sigmas)
        step = (span[1] - span[0]) / self.num_steps if span is not None else None
        return ForecastBank(max_order, config.torch_factor_dtype, config.storage_device, config.forecaster,
                            **run_options(config.forecaster, span, step))

    @property
    def forecasts_hidden_state(self) -> bool:
        """Residual level: the gate forecasts the last block's output, TaylorSeer what the skipped blocks add."""
        return self.gate is not None

    @property
    def forecast_char(self) -> str:
        return "R" if self.config.max_order == 0 else "T"

    def next_evaluation(self) -> None:
        with self.lock:
            self.evaluation += 1
            self._seen.clear()

    def plan_call(self, sigma_tensor: torch.Tensor, x: torch.Tensor, context: torch.Tensor | None,
                  transformer_options: dict) -> CallPlan:
        """Decide one call. The first call of an evaluation decides for the whole evaluation (through the gate
        when gated: the other calls, in any thread, wait for its verdict); other conds follow it with their own
        caches; a second call for the same cond in one evaluation (e.g. skip-layer guidance re-running the model)
        is computed and not recorded."""
        sigma = float(sigma_tensor.reshape(-1)[0])
        step = locate_step(sigma, self.step_sigmas) if self.num_steps else 0
        window = transformer_options.get("context_window")
        window_key = tuple(getattr(window, "index_list", ())) if window is not None else None
        device = transformer_options.get("multigpu_thread_device", x.device)
        chunks = _batch_chunks(x, context, transformer_options.get("uuids"), window_key, device)
        time = time_coordinate(self.config.clock, sigma, self.step_sigmas) if self.num_steps else sigma

        with self.lock:
            deciding = self._decision.evaluation != self.evaluation
            if deciding:
                self._decision = self._first_decision(step, chunks)
            decision = self._decision
            keys = {chunk.key for chunk in chunks}
            repeat = bool(keys & self._seen)
            self._seen |= keys
        if repeat:
            return CallPlan(step, sigma, time, FULL, False, Reason.REPEAT_CALL, chunks, decision, False)
        mode, reason = (decision.mode, decision.reason) if deciding else decision.verdict()
        plan = CallPlan(step, sigma, time, mode, sigma > 0.0, reason, chunks, decision, deciding)
        if mode != FULL and not deciding and not all(self.ready(chunk) for chunk in chunks):
            plan = plan.as_full(Reason.NO_HISTORY)  # this call's conds lack what the deciding call's had
        return plan

    def _first_decision(self, step: int, chunks: tuple[Chunk, ...]) -> Decision:
        """The one place an evaluation's decision is made (``taylor_core.decide``), from the deciding call's step
        and its chunks' history; the caller holds the lock."""
        gated = self.gate is not None
        pace = self.pacer.pace(step) if self.pacer is not None and not self.plan.is_full(step) else None
        answer = decide(step, self.plan, gated=gated, capped=gated and self.gate.capped(self.consecutive_forecasts),
                        history_ready=all(self._ready(chunk) for chunk in chunks), pace=pace)
        return Decision(self.evaluation, answer.mode, answer.reason)

    def gate_verdict(self, error: float) -> tuple[bool, float]:
        """(whether the gate trusts this evaluation's forecast, the score it compared with the threshold)."""
        with self.lock:
            return self.gate_budget.verdict(error)

    def resolve_gate(self, plan: CallPlan, forecast: bool) -> None:
        """The gate's verdict for the deciding call's evaluation; the other calls of it follow."""
        plan.decision.settle(FORECAST if forecast else FULL, Reason.GATE)

    def settle(self, plan: CallPlan) -> None:
        """End of a deciding call: a gate it left pending (it never reached its probe) is settled as full."""
        if plan.deciding:
            plan.decision.settle(FULL, Reason.NO_PROBE)

    def feature_keys(self, chunk: Chunk) -> list[tuple]:
        """Every forecast key of a chunk at this run's level (the gate's probe excluded)."""
        if self.level == "output":
            return [chunk.key + ("output",)]
        if self.level == "modules":
            return [chunk.key + (name,) for name in (self.modules.features if self.modules else ())]
        return [chunk.key + (f"{index}/{stream}",) for index, layout in enumerate(self.layouts or ())
                if layout.first_skipped is not None for stream in layout.spec.streams]

    def ready(self, chunk: Chunk) -> bool:
        with self.lock:
            return self._ready(chunk)

    def _ready(self, chunk: Chunk) -> bool:
        """Whether every feature of ``chunk`` (and the gate's probe) has history under its signature; the caller
        holds the lock."""
        keys = self.feature_keys(chunk)
        probe_ready = self.probe_bank is None or self.probe_bank.ready(chunk.key + (PROBE,), chunk.signature)
        return bool(keys) and probe_ready and all(self.bank.ready(key, chunk.signature) for key in keys)

    def record(self, plan: CallPlan, feature: str, value: torch.Tensor) -> None:
        """Store one full-compute feature (batch-first) of every chunk at the call's time coordinate."""
        bank = self.probe_bank if feature == PROBE else self.bank
        with self.lock:
            resets = bank.resets
            for chunk in plan.chunks:
                bank.update(chunk.key + (feature,), plan.time, value[chunk.rows], chunk.signature)
            self._thread.resets = self.resets_seen() + bank.resets - resets
            self.stats.note_cache_bytes(self.cache_bytes())

    def resets_seen(self) -> int:
        """History resets (a feature's shape changed) caused by the records of the calling thread."""
        return getattr(self._thread, "resets", 0)

    def predict(self, plan: CallPlan, feature: str) -> torch.Tensor:
        """The forecast of one feature for the whole batch (chunks concatenated in batch order). Only the
        calling thread writes these keys (they start with its device), so the math runs outside the lock."""
        bank = self.probe_bank if feature == PROBE else self.bank
        parts = [bank.predict(chunk.key + (feature,), plan.time) for chunk in plan.chunks]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)

    def probe_error(self, plan: CallPlan, actual: torch.Tensor) -> float:
        """The gate's error: relative L1 of the probe's forecast against its real value, whole batch."""
        return relative_l1(self.predict(plan, PROBE), actual)

    def forget(self, plan: CallPlan) -> None:
        """Drop the history of every chunk of a call (after a fallback): the next full step starts afresh."""
        with self.lock:
            for chunk in plan.chunks:
                for key in self.feature_keys(chunk):
                    self.bank.drop(key)
                if self.probe_bank is not None:
                    self.probe_bank.drop(chunk.key + (PROBE,))

    def note(self, plan: CallPlan, full: bool, reason: str, gate_error: float | None = None) -> None:
        """Record one call in the statistics; the evaluation's deciding call also advances the run of
        consecutive forecasts the gate's cap counts."""
        with self.lock:
            self.stats.record(plan.step, plan.sigma, full, reason, gate_error)
            if plan.deciding:
                self.consecutive_forecasts = 0 if full else self.consecutive_forecasts + 1
                if full and self.gate_budget is not None:
                    self.gate_budget.reset()
                if self.pacer is not None:
                    self.pacer.note(plan.step, full)

    def note_stopped(self, sigma_tensor: torch.Tensor) -> None:
        """Record a call computed in full because forecasting stopped (``stop_forecasting``)."""
        sigma = float(sigma_tensor.reshape(-1)[0])
        step = locate_step(sigma, self.step_sigmas) if self.num_steps else 0
        with self.lock:
            self.stats.record(step, sigma, True, Reason.STOPPED)

    def stop_forecasting(self) -> None:
        """Compute every later call of this run in full (after a failure of the pack's own code)."""
        with self.lock:
            self.forecasting = False
            self.bank.release()
            if self.probe_bank is not None:
                self.probe_bank.release()

    def cache_bytes(self) -> int:
        return self.bank.bytes_held() + (self.probe_bank.bytes_held() if self.probe_bank is not None else 0)

    def release(self) -> None:
        """Free every cached tensor; the statistics stay for the report."""
        with self.lock:
            self.bank.release()
            if self.probe_bank is not None:
                self.probe_bank.release()
            self._seen.clear()
