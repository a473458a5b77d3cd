"""The keyed ComfyUI wrappers that run TaylorSeer on a model clone.

- OUTER_SAMPLE: one fresh ``RunState`` per sampling run, its plan logged before sampling; in ``finally``
  (interrupted runs included) every cached tensor freed, its report logged and sent to the front end.
- PREDICT_NOISE: marks the start of each sampler model evaluation (the unit a full/forecast decision covers).
- APPLY_MODEL: the step-level entry. It exists on every ComfyUI model (the DIFFUSION_MODEL wrapper does not:
  SD3, Mochi, HunyuanDiT, PixArt lack it), so one entry serves every family. It hands the call to
  ``runtime.run_call`` (the flow of one call: ``nodes/runtime.py``).

The wrappers only call: they are stateless closures over the frozen config, per-run state is looked up at call
time.
"""

from __future__ import annotations

import contextlib
import functools

import torch

from ..taylor_core.calibration import held_out_noise
from .calibration import run_with_calibration
from .compat import peer_cache_message, peer_step_cache
from .config import ForecastConfig
from .failures import ADAPTER_ERRORS
from .levels import ModelCall
from .log_context import CURRENT_NODE
from .logs import LOG_PREFIX, logger
from .ranks import model_consensus
from .report import report_lines, run_report
from .run_state import RUN_KEY, RunState
from .runtime import run_call
from .telemetry import send_report

WRAPPER_KEY = "taylor_forecast"


def _sigma_list(sigmas: torch.Tensor) -> list[float]:
    return [float(s) for s in sigmas.reshape(-1).tolist()]


def outer_sample_wrapper(config: ForecastConfig, level: str, executor, *args, **kwargs):
    """args follow ``CFGGuider.outer_sample(noise, latent_image, sampler, sigmas, ...)``. With ``calibration``,
    the run's profile plans it, or a calibration samples it (``nodes/calibration.py``)."""
    guider = executor.class_obj
    peer = peer_step_cache(guider.model_patcher, guider.model_options)
    if peer is not None:
        logger.warning("%s %s", LOG_PREFIX, peer_cache_message(peer))
        return executor(*args, **kwargs)
    scope = CURRENT_NODE.set(config.node_id)  # the run's log lines name its node
    try:
        noise = args[0] if args else kwargs.get("noise")
        if config.calibration != "off" and not isinstance(noise, torch.Tensor):
            logger.warning("%s calibration: this ComfyUI's sampler gives no noise tensor: the default plan is used",
                           LOG_PREFIX)
        elif config.calibration != "off":
            sampler, sigmas = (args[2], args[3]) if len(args) > 3 else (kwargs["sampler"], kwargs["sigmas"])
            trial = functools.partial(_calibration_sample, level, executor, args, kwargs)
            config, output = run_with_calibration(config, level, guider, sampler, _sigma_list(sigmas),
                                                  list(noise.shape[1:]), trial)
            if output is not None:
                return output
        return _sample(config, level, executor, args, kwargs)
    finally:
        CURRENT_NODE.reset(scope)


def _calibration_sample(level: str, executor, args: tuple, kwargs: dict, config: ForecastConfig | None,
                        held_out: bool, post_cfg=None):
    """One run of a calibration (``nodes.calibration.Sample``): uncached when ``config`` is None (with ``post_cfg``
    as a post-CFG function of the run when given), quiet otherwise; on ``held_out_noise`` in place of the run's
    noise (``args[0]`` or ``kwargs["noise"]``) when ``held_out``."""
    if held_out:
        if args:
            args = (held_out_noise(args[0]), *args[1:])
        else:
            kwargs = {**kwargs, "noise": held_out_noise(kwargs["noise"])}
    if config is not None:
        return _sample(config, level, executor, args, kwargs, quiet=True)
    if post_cfg is None:
        return executor(*args, **kwargs)
    import comfy.model_patcher

    with _cloned_options(executor.class_obj) as options:
        comfy.model_patcher.set_model_options_post_cfg_function(options, post_cfg)
        return executor(*args, **kwargs)


@contextlib.contextmanager
def _cloned_options(guider):
    """The guider's ``model_options`` swapped for a clone for one run (yielded), restored on every way out."""
    import comfy.model_patcher

    original_options = guider.model_options
    try:
        guider.model_options = comfy.model_patcher.create_model_options_clone(original_options)
        yield guider.model_options
    finally:
        guider.model_options = original_options


def _sample(config: ForecastConfig, level: str, executor, args: tuple, kwargs: dict, quiet: bool = False):
    """One sampling run forecasting as ``config`` says, in a clone of the guider's ``model_options`` holding the
    run state; ``quiet``: no plan line, no report (a calibration's trial)."""
    guider = executor.class_obj
    run = None
    try:
        with _cloned_options(guider):
            run = _start_run(config, level, guider, args[3] if len(args) > 3 else kwargs["sigmas"], quiet)
            return executor(*args, **kwargs)
    finally:
        if run is not None:
            run.release()
        if run is not None and not quiet:
            report = run_report(run)
            for line in report_lines(report):
                logger.info("%s %s", LOG_PREFIX, line)
            send_report(report)


def _start_run(config: ForecastConfig, level: str, guider, sigmas: torch.Tensor,
               quiet: bool = False) -> RunState | None:
    """A fresh run state in the guider's (cloned) options, its plan logged unless ``quiet``; None, logged, when
    ComfyUI's objects do not answer as expected (the run is then sampled without forecasting)."""
    try:
        model_sampling = guider.model_patcher.get_model_object("model_sampling")
        run = RunState(config, level, _sigma_list(sigmas),
                       float(model_sampling.percent_to_sigma(config.start_percent)),
                       float(model_sampling.percent_to_sigma(config.end_percent)),
                       model_consensus(guider.model_options, guider.model_patcher.get_model_object("diffusion_model")))
    except ADAPTER_ERRORS as exc:
        logger.warning("%s %s while planning the run (%s): sampling it without forecasting", LOG_PREFIX,
                       type(exc).__name__, exc)
        return None
    guider.model_options.setdefault("transformer_options", {})[RUN_KEY] = run
    if not quiet:
        _log_plan(run, config, level)
    return run


def _log_plan(run: RunState, config: ForecastConfig, level: str) -> None:
    shown = run.speedup_plan or run.plan  # the gate's speed-up budget: the map its pacer keeps to
    if shown.note:
        logger.warning("%s %s", LOG_PREFIX, shown.note)
    gate_decides = run.gated and run.pacer is None  # the forced steps' plan: the gate decides the rest
    logger.info("%s plan (%d steps, level %s, %s): %s%s", LOG_PREFIX, run.num_steps, level, config.describe(),
                shown.render("?" if gate_decides else run.forecast_char),
                " (F computed, ? the gate decides at the step)" if gate_decides else
                f" (the gate may run each F up to {run.pacer.slack} steps early or late)"
                if run.pacer is not None else " (adaptive: each F moves with the forecast errors, the count stays)"
                if run.adaptive is not None else "")


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
    call = ModelCall(executor, x, t, (c_concat, c_crossattn, control, transformer_options), kwargs)
    return run_call(run, call) if run is not None else call.compute()


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
