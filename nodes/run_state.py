"""Per-run state: one object per sampling run (one ``CFGGuider.sample`` call), owned by the OUTER_SAMPLE
wrapper, reached by the other wrappers through ``transformer_options[RUN_KEY]`` (an object, so ComfyUI's
per-call dict copies share it), and released in that wrapper's ``finally``.

It holds the run's ``StepController`` (``taylor_core.controller``), its forecast histories (``FeatureCache``),
its statistics and its level (``nodes/levels.py``), and is the one door to the controller: every call's
evidence enters it in ``plan_call``, ``verdict`` (the gate's probe error), ``fall_back`` and ``finish``.

Threads: ComfyUI 0.33 runs the cond batches of one evaluation in one thread per device, each on a deep clone of
the model, all sharing this object. So an evaluation's decision is made by its first call (under the run's lock)
and every other call, in any thread, follows it (waiting for a gate's verdict: ``EvaluationDecision``).

Units: ``sigma`` is the sampler's noise level passed to ``apply_model``; a step is an index into the run's
sigma list (n + 1 sigmas for n steps); the forecast time coordinate is sigma or the fractional step index,
as the config's ``clock`` says.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from ..taylor_core import (
    Decision,
    Evidence,
    Mode,
    Reason,
    RunStats,
    StepController,
    StepPlan,
    locate_step,
    time_coordinate,
    window_flags,
)
from ..taylor_core.adaptive import AdaptiveBudget
from ..taylor_core.consensus import Consensus, Reading
from ..taylor_core.evidence import mean_errors
from .call_plan import CallPlan, EvaluationDecision
from .config import ForecastConfig
from .feature_cache import Chunk, FeatureCache, batch_chunks
from .logs import LOG_PREFIX, logger

if TYPE_CHECKING:
    from .levels import Level

RUN_KEY = "taylor_forecast_run"
LADDER = ("modules", "residual", "output", "off")
"""The levels a run can forecast at, from the highest; a run falls down it (``nodes/levels.py``)."""
__all__ = ["LADDER", "LOG_PREFIX", "RUN_KEY", "CallPlan", "EvaluationDecision", "RunState", "logger"]


class RunState:
    """Controller, forecast histories, statistics and level of one sampling run; safe to share between the
    device threads of one evaluation (see the module docstring)."""

    def __init__(self, config: ForecastConfig, level: str, step_sigmas: list[float], start_sigma: float,
                 end_sigma: float, consensus: Consensus | None = None) -> None:
        self.config = config
        self.requested_level = level
        self.consensus = consensus or Consensus()
        """The ranks sharing the model (``nodes/ranks.py``): every local reading a decision reads goes through it."""
        self.agreed_level = level
        """The level the ranks agreed on at the latest evaluation (below ``level``: this rank must fall to it)."""
        self.step_sigmas = step_sigmas
        self.num_steps = max(len(step_sigmas) - 1, 0)
        window = window_flags(step_sigmas, start_sigma, end_sigma)
        self.plan = config.schedule.plan(self.num_steps, window) if self.num_steps else StepPlan(())
        speedup = config.speedup_schedule
        self.speedup_plan = speedup.plan(self.num_steps, window) if speedup is not None and self.num_steps else None
        """The gate's speed-up budget: the map its pacer keeps to (None without a budget)."""
        adaptive = config.forecaster == "auto" and config.target_speedup and config.gate is None
        self.adaptive = (AdaptiveBudget.for_run(self.num_steps, config.target_speedup, config.warmup_steps,
                                                config.tail_steps, window, config.max_order)
                         if adaptive and not config.full_steps else None)
        """The adaptive step policy (``forecaster`` auto with a speed-up budget, no gate, no calibrated plan),
        else None."""
        self.controller = (StepController(self.adaptive) if self.adaptive is not None
                           else StepController.planned(self.plan, config.gate, self.speedup_plan))
        self.lock = threading.RLock()  # guards the controller, the evaluation's decision, the cache keys, the stats
        self.cache = FeatureCache(config, step_sigmas, self.controller.gated, self.lock)
        self.stats = RunStats()
        self.evaluation = 0  # advanced by the PREDICT_NOISE wrapper: one per sampler model evaluation
        self._decision = EvaluationDecision(-1, Decision(Mode.FULL, Reason.SCHEDULE))
        self._seen: set[tuple] = set()
        self.active_level: Level | None = None  # nodes/levels.py: resolved at the run's first call

    @property
    def level(self) -> str:
        """The name of the level the run forecasts at now."""
        return self.active_level.name if self.active_level is not None else self.requested_level

    @property
    def modules(self):
        """The modules level's ``ModuleLayout`` while the run is at that level, else None."""
        return getattr(self.active_level, "modules", None)

    @property
    def bank(self):
        return self.cache.bank

    @property
    def gated(self) -> bool:
        """Whether the confidence gate decides the free steps (its probe forecasts the blocks' output)."""
        return self.controller.gated

    @property
    def pacer(self):
        """The gate's pacer of the speed-up budget, None without one."""
        return self.controller.gate.pacer if self.controller.gate is not None else None

    @property
    def forecast_char(self) -> str:
        return "R" if self.config.max_order == 0 else "T"

    @property
    def forecasting(self) -> bool:
        return not self.controller.stopped

    def next_evaluation(self) -> None:
        with self.lock:
            self.evaluation += 1
            self._seen.clear()

    def locate(self, sigma_tensor: torch.Tensor) -> tuple[int, float]:
        """``(step, sigma)`` of a call's sigma tensor."""
        sigma = float(sigma_tensor.reshape(-1)[0])
        return (locate_step(sigma, self.step_sigmas) if self.num_steps else 0), sigma

    def plan_call(self, sigma_tensor: torch.Tensor, x: torch.Tensor, context: torch.Tensor | None,
                  transformer_options: dict, features: tuple[str, ...]) -> CallPlan:
        """Decide one call whose level forecasts ``features``. The first call of an evaluation decides for the
        whole evaluation; the others follow it (waiting for a gate's verdict) with their own histories."""
        step, sigma = self.locate(sigma_tensor)
        window = transformer_options.get("context_window")
        window_key = tuple(getattr(window, "index_list", ())) if window is not None else None
        device = transformer_options.get("multigpu_thread_device", x.device)
        chunks = batch_chunks(x, context, transformer_options.get("uuids"), window_key, device)
        time = time_coordinate(self.config.clock, sigma, self.step_sigmas) if self.num_steps else sigma
        with self.lock:
            deciding = self._decision.evaluation != self.evaluation
            if deciding:
                first = self.controller.decide(step, Evidence(history=self._agreed_missing(chunks, features)))
                self._decision = EvaluationDecision(self.evaluation, first)
            shared = self._decision
            keys = {chunk.key for chunk in chunks}
            repeat = bool(keys & self._seen)
            self._seen |= keys
        decision = shared.decision if deciding else self._follow(step, shared, chunks, features, repeat)
        return CallPlan(step, sigma, time, decision, sigma > 0.0 and not repeat, chunks, shared, deciding)

    def _follow(self, step: int, shared: EvaluationDecision, chunks: tuple[Chunk, ...], features: tuple[str, ...],
                repeat: bool) -> Decision:
        """A later call of an evaluation: the evaluation's final decision, unless the controller says otherwise
        for this call (a repeat, or conds lacking the history the deciding call had)."""
        leader = shared.final() if not repeat else None
        with self.lock:
            missing = self._missing(chunks, features)
            if leader is not None and not leader.full and not self.consensus.all_ok(missing is None):
                missing = missing or Reason.NO_HISTORY  # another rank's conds lack it
            return self.controller.decide(step, Evidence(missing, repeat, leader))

    def _missing(self, chunks: tuple[Chunk, ...], features: tuple[str, ...]) -> Reason | None:
        """Why some chunk lacks history (the first reason found), None when all have it; the caller holds the
        lock."""
        return next((reason for chunk in chunks if (reason := self.cache.missing(chunk, features))), None)

    def _agreed_missing(self, chunks: tuple[Chunk, ...], features: tuple[str, ...]) -> Reason | None:
        """``_missing`` of an evaluation's deciding call, agreed between the ranks sharing the model with their
        levels (one collective with several ranks): history any rank lacks, or levels that differ (the ranks
        above the lowest fall to it: ``agreed_level``), make every rank compute; the caller holds the lock."""
        missing = self._missing(chunks, features)
        if self.consensus.size > 1:
            lowest_first = LADDER[::-1]
            agreed = self.consensus.agree(Reading(failed=missing is not None, level=lowest_first.index(self.level)))
            self.agreed_level = lowest_first[agreed.level]
            if agreed.failed:
                missing = missing or Reason.NO_HISTORY
        return missing

    def verdict(self, plan: CallPlan, probe_error: float) -> tuple[Decision, float]:
        """The gate's verdict for the deciding call's evaluation, from its probe's error (the one place the probe
        error enters the controller); the evaluation's other calls follow it."""
        probe_error = self.consensus.mean_error(probe_error)  # averaged over the ranks sharing the model
        with self.lock:
            decision, score = self.controller.verdict(probe_error)
        plan.evaluation.settle(decision)
        return decision, score

    def fall_back(self, plan: CallPlan, reason: Reason, features: tuple[str, ...]) -> CallPlan:
        """The call redone in full for ``reason`` (a forecast that failed or could not run; the one place
        fall-backs enter the controller): the history of its chunks is dropped first."""
        self.forget(plan, features)
        with self.lock:
            decision = self.controller.fallback(reason)
        return dataclasses.replace(plan, decision=decision)

    def forget(self, plan: CallPlan, features: tuple[str, ...]) -> None:
        """Drop the history of the call's chunks (its ``features`` and the probe): the next full step starts
        afresh."""
        self.cache.forget(plan.chunks, features)

    def settle(self, plan: CallPlan) -> Decision:
        """End of a deciding call: a gate it left pending (it never reached its probe) is settled as full;
        returns that full decision."""
        with self.lock:
            decision = self.controller.fallback(Reason.NO_PROBE)
        if plan.deciding:
            plan.evaluation.settle(decision)
        return decision

    def level_for(self, resolve: Callable[[], Level]) -> Level:
        """The run's level, ``resolve()`` at the first call of any thread."""
        with self.lock:
            if self.active_level is None:
                self.active_level = resolve()
            return self.active_level

    def replace_level(self, current: Level, lower: Callable[[], Level]) -> Level:
        """Move the run to ``lower()`` if it is still at ``current``; the run's level after."""
        with self.lock:
            if self.active_level is current:
                self.active_level = lower()
            return self.active_level

    def record(self, plan: CallPlan, feature: str, value: torch.Tensor) -> None:
        """Store one full-compute feature (batch-first) of every chunk at the call's time coordinate."""
        held = self.cache.record(plan.chunks, plan.time, feature, value)
        with self.lock:
            self.stats.note_cache_bytes(held)
            if self.adaptive is not None and plan.deciding:  # each auto candidate's error of this full step
                self.adaptive.observe_errors(plan.step, mean_errors([getattr(
                    self.bank.predictor(chunk.key + (feature,)), "last_errors", {}) for chunk in plan.chunks]))

    def predict(self, plan: CallPlan, feature: str) -> torch.Tensor:
        return self.cache.predict(plan.chunks, plan.time, feature)

    def finish(self, plan: CallPlan, decision: Decision, gate_error: float | None = None) -> None:
        """Record one call's final decision in the statistics; an evaluation's deciding call also tells the
        controller what the step did."""
        with self.lock:
            self.stats.record(plan.step, plan.sigma, decision.full, decision.reason, gate_error)
            if plan.deciding:
                self.controller.observe(plan.step, decision.full, gate_error)

    def finish_stopped(self, sigma_tensor: torch.Tensor) -> None:
        """Record a call computed in full because forecasting stopped (``stop_forecasting``)."""
        step, sigma = self.locate(sigma_tensor)
        with self.lock:
            decision = self.controller.decide(step)
            self.stats.record(step, sigma, decision.full, decision.reason)

    def stop_forecasting(self) -> None:
        """Compute every later call of this run in full (after a failure of the pack's own code)."""
        with self.lock:
            self.controller.stop()
        self.cache.release()

    def cache_bytes(self) -> int:
        return self.cache.bytes_held()

    def release(self) -> None:
        """Free every cached tensor; the statistics stay for the report."""
        self.cache.release()
        with self.lock:
            self._seen.clear()

