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

from ..taylor_core import StepPlan
from .compat import peer_cache_message, peer_step_cache
from .config import ForecastConfig
from .families import family_of, no_adapter_reason, resolve_layout
from .module_level import ModulePass, module_layout
from .report import report_lines, run_report
from .residual import ACTIVE_MODEL, ACTIVE_PASS, AdapterMismatch, ForecastUnavailable, ResidualPass
from .run_state import LOG_PREFIX, RUN_KEY, CallPlan, RunState
from .telemetry import send_report

WRAPPER_KEY = "taylor_forecast"
logger = logging.getLogger("taylor_forecast")


def _sigma_list(sigmas: torch.Tensor) -> list[float]:
    return [float(s) for s in sigmas.reshape(-1).tolist()]


def outer_sample_wrapper(config: ForecastConfig, level: str, executor, *args, **kwargs):
    """args follow ``CFGGuider.outer_sample(noise, latent_image, sampler, sigmas, ...)``."""
    import comfy.model_patcher

    guider = executor.class_obj
    peer = peer_step_cache(guider.model_patcher, guider.model_options)
    if peer is not None:
        logger.warning("%s %s", LOG_PREFIX, peer_cache_message(peer))
        return executor(*args, **kwargs)
    original_options = guider.model_options
    guider.model_options = comfy.model_patcher.create_model_options_clone(original_options)
    sigmas = args[3] if len(args) > 3 else kwargs["sigmas"]
    model_sampling = guider.model_patcher.get_model_object("model_sampling")
    run = RunState(config, level, _sigma_list(sigmas), float(model_sampling.percent_to_sigma(config.start_percent)),
                   float(model_sampling.percent_to_sigma(config.end_percent)))
    guider.model_options.setdefault("transformer_options", {})[RUN_KEY] = run
    if run.plan.note:
        logger.warning("%s %s", LOG_PREFIX, run.plan.note)
    logger.info("%s plan (%d steps, level %s, %s): %s", LOG_PREFIX, run.num_steps, level, config.describe(),
                run.plan.render(run.forecast_char))
    try:
        return executor(*args, **kwargs)
    finally:
        run.release()
        guider.model_options = original_options
        report = run_report(run)
        for line in report_lines(report):
            logger.info("%s %s", LOG_PREFIX, line)
        send_report(report)


def predict_noise_wrapper(executor, *args, **kwargs):
    """args follow ``CFGGuider.outer_predict_noise(x, timestep, model_options, seed)``."""
    model_options = args[2] if len(args) > 2 else kwargs.get("model_options", {})
    run = model_options.get("transformer_options", {}).get(RUN_KEY)
    if run is not None:
        run.next_evaluation()
    return executor(*args, **kwargs)


def apply_model_wrapper(executor, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options=None,
                        **kwargs):
    """Signature of ``BaseModel.apply_model``; ``t`` is sigma, the return value is the denoised latent."""
    transformer_options = transformer_options if transformer_options is not None else {}
    run: RunState | None = transformer_options.get(RUN_KEY)

    def compute() -> torch.Tensor:
        token = ACTIVE_MODEL.set(executor.class_obj.diffusion_model)
        try:
            return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)
        finally:
            ACTIVE_MODEL.reset(token)

    if run is None:
        return compute()
    diffusion_model = executor.class_obj.diffusion_model
    if run.level in ("residual", "modules") and run.layouts is None:
        _resolve_layouts(run, diffusion_model)
    plan = run.plan_call(t, x, c_crossattn, transformer_options)
    resets = run.bank.resets
    if run.level == "residual":
        out = _residual_call(run, plan, compute)
    elif run.level == "modules":
        out = _residual_call(run, plan, compute, lambda p: ModulePass(run, p, diffusion_model))
    else:
        out = _output_call(run, plan, x, t, compute)
    if run.bank.resets != resets:
        logger.warning("%s step %d: the input's shape changed mid-run (now %s, text %s): its forecast history "
                       "restarts and the step was computed in full", LOG_PREFIX, plan.step,
                       tuple(plan.chunks[0].signature[0]), plan.chunks[0].signature[1])
    return out


def _resolve_layouts(run: RunState, diffusion_model: torch.nn.Module) -> None:
    family = family_of(diffusion_model)
    if family is None:
        _degrade(run, no_adapter_reason(diffusion_model))
        return
    run.layouts = resolve_layout(family, diffusion_model)
    if run.level == "modules":
        run.modules = module_layout(family, diffusion_model, run.layouts)
        if run.modules is None:
            logger.warning("%s %s: a block has no module adapter: falling back to level=residual for this run",
                           LOG_PREFIX, type(diffusion_model).__name__)
            run.level = "residual"


def _degrade(run: RunState, why: str) -> None:
    if run.gate is not None:
        logger.warning("%s %s: the gate needs the model's blocks; computing every step of this run", LOG_PREFIX,
                       why)
        run.plan = StepPlan((True,) * run.num_steps)
        run.gate = None
    else:
        logger.warning("%s %s: falling back to level=output for this run", LOG_PREFIX, why)
    run.level = "output"
    run.layouts = None


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
        plan = plan.as_full("non-finite")
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
        _degrade(run, f"the model's blocks do not match the {run.level} adapter ({exc})")
        run.forget(plan)
        run.note(plan, True, "adapter-mismatch")
        ACTIVE_PASS.set(None)
        return compute()
    except ForecastUnavailable as exc:
        logger.warning("%s step %d: %s; computing it in full", LOG_PREFIX, plan.step, exc)
        run.forget(plan)
        plan = plan.as_full("non-finite")
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
    _degrade(run, f"blocks of stack(s) {sorted(missing)} were not reached through patches_replace")
    run.forget(plan)
    run.note(plan, True, plan.reason if not active.forecast else "adapter-mismatch")
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
