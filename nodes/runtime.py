"""One model call of a run, through the rooms: wrapper -> run state (controller) -> level -> run state.

    apply_model_wrapper ─ ModelCall ─> run_call
        level_at_run      the run's level (the ladder, ``levels.fall``, at the first call)
        run.plan_call     the controller's decision (``taylor_core.controller``) -> CallPlan
        level.attempt     the call at its level -> CallResult (out, final decision, gate error)
          on ForecastUnavailable: run.fall_back (the controller's full decision), the ladder on an adapter's
          failure, then the call redone in full once
        run.finish        the statistics and the controller's observation
    any other failure of the pack's own code: forecasting stopped, the call and the rest of the run computed.
"""

from __future__ import annotations

import torch

from .failures import AdapterMismatch, ForecastUnavailable, adapter_error
from .levels import CallResult, Level, ModelCall, fall_at_run, follow_agreed_level, level_at_run
from .logs import LOG_PREFIX, logger
from .run_state import CallPlan, RunState


def run_call(run: RunState, call: ModelCall) -> torch.Tensor:
    """The output of one ``apply_model`` call of a run. A failure of the pack's own code (``ADAPTER_ERRORS`` not
    raised by the model) is logged, the call computed in full and forecasting stopped for the rest of the run."""
    if run.forecasting:
        try:
            out = _forecast_call(run, call)
            if out is not None:
                return out
        except Exception as exc:
            if not (isinstance(exc, ForecastUnavailable) or adapter_error(exc, call.raised)):
                raise
            logger.warning("%s %s in the pack's %s level (%s): this step is computed in full, and every later "
                           "step of the run too", LOG_PREFIX, type(exc).__name__, run.level, exc)
            run.stop_forecasting()
    out = call.compute()
    run.finish_stopped(call.t)
    return out


def _forecast_call(run: RunState, call: ModelCall) -> torch.Tensor | None:
    """The call at the run's level; None when the run fell off the ladder at its first call."""
    level = level_at_run(run, call.diffusion_model, call.x.device)
    if not run.forecasting:
        return None
    plan = run.plan_call(call.t, call.x, call.context, call.options, level.features)
    level = follow_agreed_level(run, level, call.diffusion_model)
    resets = run.cache.resets_seen()
    try:
        result = _attempt(run, level, plan, call)
    finally:
        if plan.deciding:
            run.settle(plan)
    run.finish(plan, result.decision, result.gate_error)
    if run.cache.resets_seen() != resets:
        logger.warning("%s step %d: the input's shape changed mid-run (now %s, text %s): its forecast history "
                       "restarts and the step was computed in full", LOG_PREFIX, plan.step,
                       tuple(plan.chunks[0].signature[0]), plan.chunks[0].signature[1])
    return result.out


def _attempt(run: RunState, level: Level, plan: CallPlan, call: ModelCall) -> CallResult:
    """``level.attempt``; when its forecast fails, the call redone in full once (at the level below after an
    adapter's failure)."""
    try:
        return level.attempt(run, plan, call)
    except ForecastUnavailable as failure:
        logger.warning("%s step %d: %s; computing it in full", LOG_PREFIX, plan.step, failure)
        redo = run.fall_back(plan, failure.reason, level.features)
        if isinstance(failure, AdapterMismatch):
            why = f"the model's blocks do not match the {failure.level} adapter ({failure})"
            level = fall_at_run(run, level, failure.level, why, call.diffusion_model)
        if not run.forecasting:
            return CallResult(call.compute(), redo.decision)
        return level.attempt(run, redo, call)
