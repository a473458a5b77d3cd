"""The keyed ComfyUI wrappers that run TaylorSeer on a model clone.

- OUTER_SAMPLE: one fresh ``RunState`` per sampling run, its plan logged before sampling; in ``finally``
  (interrupted runs included) every cached tensor freed, its report logged and sent to the front end.
- PREDICT_NOISE: marks the start of each sampler model evaluation (the unit a full/forecast decision covers).
- APPLY_MODEL: the step-level entry. It exists on every ComfyUI model (the DIFFUSION_MODEL wrapper does not:
  SD3, Mochi, HunyuanDiT, PixArt lack it), so one entry serves every family. At the output level it
  forecasts the eps-equivalent ``(x - denoised) / sigma`` (the model output itself for eps and flow models);
  at the residual level it sets the per-call ``ResidualPass`` the block replacements act on, at the modules
  level a ``ModulePass`` (``nodes/module_level.py``) on the same replacements.

The wrappers are stateless closures over the frozen config: per-run state is looked up at call time.
"""

from __future__ import annotations

import functools
import logging

import torch

from ..taylor_core import Reason, StepPlan
from .block_hooks import (
    ACTIVE_MODEL,
    ACTIVE_PASS,
    ADAPTER_ERRORS,
    AdapterMismatch,
    ForecastUnavailable,
    ResidualPass,
    adapter_error,
    tracking,
)
from .compat import peer_cache_message, peer_step_cache
from .config import ForecastConfig
from .families import family_of, no_adapter_reason, resolve_layout
from .module_level import ModulePass, module_layout
from .report import report_lines, run_report
from .run_state import LOG_PREFIX, RUN_KEY, CallPlan, RunState
from .telemetry import send_report

WRAPPER_KEY = "taylor_forecast"
logger = logging.getLogger("taylor_forecast")


def _sigma_list(sigmas: torch.Tensor) -> list[float]:
    return [float(s) for s in sigmas.reshape(-1).tolist()]


def outer_sample_wrapper(config: ForecastConfig, level: str, executor, *args, **kwargs):
    """args follow ``CFGGuider.outer_sample(noise, latent_image, sampler, sigmas, ...)``. The guider's
    ``model_options`` are swapped for a clone holding the run state and restored on every way out."""
    import comfy.model_patcher

    guider = executor.class_obj
    peer = peer_step_cache(guider.model_patcher, guider.model_options)
    if peer is not None:
        logger.warning("%s %s", LOG_PREFIX, peer_cache_message(peer))
        return executor(*args, **kwargs)
    original_options = guider.model_options
    run = None
    try:
        guider.model_options = comfy.model_patcher.create_model_options_clone(original_options)
        run = _start_run(config, level, guider, args[3] if len(args) > 3 else kwargs["sigmas"])
        return executor(*args, **kwargs)
    finally:
        guider.model_options = original_options
        if run is not None:
            run.release()
            report = run_report(run)
            for line in report_lines(report):
                logger.info("%s %s", LOG_PREFIX, line)
            send_report(report)


def _start_run(config: ForecastConfig, level: str, guider, sigmas: torch.Tensor) -> RunState | None:
    """A fresh run state in the guider's (cloned) options, its plan logged; None, logged, when ComfyUI's
    objects do not answer as expected (the run is then sampled without forecasting)."""
    try:
        model_sampling = guider.model_patcher.get_model_object("model_sampling")
        run = RunState(config, level, _sigma_list(sigmas),
                       float(model_sampling.percent_to_sigma(config.start_percent)),
                       float(model_sampling.percent_to_sigma(config.end_percent)))
    except ADAPTER_ERRORS as exc:
        logger.warning("%s %s while planning the run (%s): sampling it without forecasting", LOG_PREFIX,
                       type(exc).__name__, exc)
        return None
    guider.model_options.setdefault("transformer_options", {})[RUN_KEY] = run
    shown = run.budget_plan or run.plan  # the gate's budget: the map its pacer keeps to
    if shown.note:
        logger.warning("%s %s", LOG_PREFIX, shown.note)
    logger.info("%s plan (%d steps, level %s, %s): %s%s", LOG_PREFIX, run.num_steps, level, config.describe(),
                shown.render(run.forecast_char),
                f" (the gate may run each F up to {run.pacer.slack} steps early or late)"
                if run.pacer is not None else "")
    return run


def predict_noise_wrapper(executor, *args, **kwargs):
    """args follow ``CFGGuider.outer_predict_noise(x, timestep, model_options, seed)``."""
    model_options = args[2] if len(args) > 2 else kwargs.get("model_options", {})
    run = model_options.get("transformer_options", {}).get(RUN_KEY)
    if run is not None:
        run.next_evaluation()
    return executor(*args, **kwargs)


def apply_model_wrapper(executor, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options=None,
                        **kwargs):
    """Signature of ``BaseModel.apply_model``; ``t`` is sigma, the return value is the denoised latent.
    A failure of the pack's own code (``ADAPTER_ERRORS`` not raised by the model) is logged, the call computed in
    full and forecasting stopped for the rest of the run."""
    transformer_options = transformer_options if transformer_options is not None else {}
    run: RunState | None = transformer_options.get(RUN_KEY)
    raised_by_model: list[BaseException] = []

    def run_model() -> torch.Tensor:
        token = ACTIVE_MODEL.set(executor.class_obj.diffusion_model)
        try:
            return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)
        finally:
            ACTIVE_MODEL.reset(token)

    compute = tracking(run_model, raised_by_model)
    if run is None:
        return compute()
    if run.forecasting:
        try:
            return _forecast_call(run, executor.class_obj.diffusion_model, x, t, c_crossattn, transformer_options,
                                  compute)
        except Exception as exc:
            if not (isinstance(exc, ForecastUnavailable) or adapter_error(exc, raised_by_model)):
                raise
            logger.warning("%s %s in the pack's %s level (%s): this step is computed in full, and every later "
                           "step of the run too", LOG_PREFIX, type(exc).__name__, run.level, exc)
            run.stop_forecasting()
    out = compute()
    run.note_stopped(t)
    return out


def _forecast_call(run: RunState, diffusion_model: torch.nn.Module, x: torch.Tensor, t: torch.Tensor,
                   context: torch.Tensor | None, transformer_options: dict, compute) -> torch.Tensor:
    if run.level in ("residual", "modules") and run.layouts is None:
        _resolve_layouts(run, diffusion_model)
    plan = run.plan_call(t, x, context, transformer_options)
    resets = run.resets_seen()
    try:
        level = run.level
        if level == "residual":
            out = _residual_call(run, plan, compute)
        elif level == "modules":
            out = _residual_call(run, plan, compute, lambda p: ModulePass(run, p, diffusion_model))
        else:
            out = _output_call(run, plan, x, t, compute)
    finally:
        run.settle(plan)
    if run.resets_seen() != resets:
        logger.warning("%s step %d: the input's shape changed mid-run (now %s, text %s): its forecast history "
                       "restarts and the step was computed in full", LOG_PREFIX, plan.step,
                       tuple(plan.chunks[0].signature[0]), plan.chunks[0].signature[1])
    return out


def _resolve_layouts(run: RunState, diffusion_model: torch.nn.Module) -> None:
    with run.lock:  # the first call of every device thread may get here at once
        if run.layouts is not None or run.level not in ("residual", "modules"):
            return
        family = family_of(diffusion_model)
        if family is None:
            _degrade(run, no_adapter_reason(diffusion_model))
            return
        layouts = resolve_layout(family, diffusion_model)
        if run.level == "modules":
            run.modules = module_layout(family, diffusion_model, layouts)
            if run.modules is None:
                logger.warning("%s %s: a block has no module adapter: falling back to level=residual for this run",
                               LOG_PREFIX, type(diffusion_model).__name__)
                run.level = "residual"
        run.layouts = layouts


def _degrade(run: RunState, why: str) -> None:
    """Fall back to the output level for the rest of the run (the caller holds the run's lock)."""
    if run.level == "output":
        return
    if run.gate is not None:
        logger.warning("%s %s: the gate needs the model's blocks; computing every step of this run", LOG_PREFIX,
                       why)
        run.plan = StepPlan((True,) * run.num_steps)
        run.gate = None
    else:
        logger.warning("%s %s: falling back to level=output for this run", LOG_PREFIX, why)
    run.level = "output"
    run.layouts = None


def _step_down(run: RunState, level: str, why: str) -> None:
    """After a failure of ``level``'s adapter: modules falls back to residual, residual to output (once, whichever
    thread gets here first)."""
    with run.lock:
        if run.level != level:
            return
        if level != "modules":
            _degrade(run, why)
            return
        logger.warning("%s %s: falling back to level=residual for this run", LOG_PREFIX, why)
        run.level, run.modules = "residual", None


def _sigma_view(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1, *([1] * (like.ndim - 1))).to(device=like.device, dtype=torch.float32)


def _output_call(run: RunState, plan: CallPlan, x: torch.Tensor, t: torch.Tensor, compute) -> torch.Tensor:
    sigma = _sigma_view(t, x)
    if not plan.full:
        eps = run.predict(plan, "output")
        if torch.isfinite(eps).all():
            run.note(plan, False, plan.reason)
            return (x.float() - sigma * eps.float()).to(x.dtype)
        logger.warning("%s forecast at step %d is not finite: computing it in full", LOG_PREFIX, plan.step)
        run.forget(plan)
        plan = plan.as_full(Reason.NON_FINITE)
    denoised = compute()
    run.note(plan, True, plan.reason)
    if plan.record:
        run.record(plan, "output", (x.float() - denoised.float()) / sigma)
    return denoised


def _residual_call(run: RunState, plan: CallPlan, compute, make_pass=None) -> torch.Tensor:
    """One call at a block level: ``make_pass(plan)`` gives the per-call pass (default ``ResidualPass``)."""
    make_pass = make_pass or (lambda p: ResidualPass(run, p))
    active = make_pass(plan)
    token = ACTIVE_PASS.set(active)
    try:
        out = compute()
    except AdapterMismatch as exc:
        logger.warning("%s step %d: %s; computing it in full", LOG_PREFIX, plan.step, exc)
        run.forget(plan)
        _step_down(run, active.level, f"the model's blocks do not match the {active.level} adapter ({exc})")
        plan = plan.as_full(Reason.ADAPTER_MISMATCH)
        if run.level != "residual":
            run.note(plan, True, plan.reason)
            ACTIVE_PASS.set(None)
            return compute()
        active = ResidualPass(run, plan)  # modules fell back: this full step starts the residual level's history
        ACTIVE_PASS.set(active)
        out = compute()
    except ForecastUnavailable as exc:
        logger.warning("%s step %d: %s; computing it in full", LOG_PREFIX, plan.step, exc)
        run.forget(plan)
        plan = plan.as_full(Reason.NON_FINITE)
        active = make_pass(plan)
        ACTIVE_PASS.set(active)
        out = compute()
    finally:
        ACTIVE_PASS.reset(token)
    missing = active.expected_stacks() - active.finished
    if not missing or not (active.forecast or plan.record):  # a full call that records nothing is exact anyway
        run.note(plan, not active.forecast, plan.reason, active.gate_error)
        return out
    # The model did not call our block replacements as its adapter says (another node replaced them, or a
    # model variant runs its blocks differently): never trust a half-skipped result.
    run.forget(plan)
    with run.lock:
        _degrade(run, f"blocks of stack(s) {sorted(missing)} were not reached through patches_replace")
    run.note(plan, True, plan.reason if not active.forecast else Reason.ADAPTER_MISMATCH)
    return compute() if active.forecast else out


def install_wrappers(model_patcher, config: ForecastConfig, level: str) -> None:
    """Attach the three wrappers under one key, replacing any earlier TaylorSeer Apply on this clone."""
    import comfy.patcher_extension as ext

    if model_patcher.get_wrappers(ext.WrappersMP.OUTER_SAMPLE, WRAPPER_KEY):
        logger.info("%s this model already had a TaylorSeer Apply or CG-Taylor Gate: the later one replaces it",
                    LOG_PREFIX)
    for wrapper_type in (ext.WrappersMP.OUTER_SAMPLE, ext.WrappersMP.PREDICT_NOISE, ext.WrappersMP.APPLY_MODEL):
        model_patcher.remove_wrappers_with_key(wrapper_type, WRAPPER_KEY)
    model_patcher.add_wrapper_with_key(ext.WrappersMP.OUTER_SAMPLE, WRAPPER_KEY,
                                       functools.partial(outer_sample_wrapper, config, level))
    model_patcher.add_wrapper_with_key(ext.WrappersMP.PREDICT_NOISE, WRAPPER_KEY, predict_noise_wrapper)
    model_patcher.add_wrapper_with_key(ext.WrappersMP.APPLY_MODEL, WRAPPER_KEY, apply_model_wrapper)
