"""Calibration profiles on disk, for TaylorSeer Apply's ``calibration`` input (the pure part:
``taylor_core/calibration.py``).

In the OUTER_SAMPLE wrapper, before the run: ``auto`` with a valid profile for this run's key plans the run from
it (``ForecastConfig.full_steps``: a fixed plan through the step controller's ``PlannedSteps``); ``auto`` without
one, or ``recalibrate``, samples the run uncached (the result the user gets), recording its trajectory
(``nodes/trajectory.py``); samples it again uncached with one step's output perturbed, at ``PROBES`` steps, to
measure how far a forecast error there carries to the result; fits a plan to both
(``taylor_core.calibration.fitted_candidate``); then samples once per candidate plan, and writes the best as
``<user directory>/taylor_forecast/profiles/<key>.json`` (atomically, after every run finished: an interrupted
calibration writes nothing). A profile that does not load is ignored with one log line and the run keeps the
default plan."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..taylor_core import PREDICTORS
from ..taylor_core.calibration import (
    CANDIDATE_WARMUP,
    PROFILE_FOLDER,
    Candidate,
    Profile,
    ProfileError,
    candidate_plans,
    fingerprint,
    fitted_candidate,
    load_profile,
    profile_key,
    psnr,
    rounded_sigmas,
    with_candidate,
)
from ..taylor_core.clock import time_coordinate
from ..taylor_core.placement import probe_steps
from ..taylor_core.schedule import forced_full, speedup_full_steps, window_flags
from .config import ForecastConfig
from .logs import LOG_PREFIX, logger
from .trajectory import Perturbation, TrajectoryRecorder

PROBES = 4
"""Steps at which a calibration measures how a forecast error propagates (one uncached run each)."""
PERTURBATION_SIZE = 0.01
"""The perturbation's rms, relative to the perturbed step's recorded output rms."""
PostCfg = Callable[[dict], torch.Tensor]
Sample = Callable[[ForecastConfig | None, bool, PostCfg | None], torch.Tensor]
"""One sampling run of the guider: (``config``'s forecasting, no log, no report; None: uncached, ``held_out``: on
``taylor_core.calibration.held_out_noise`` instead of the run's noise, a post-CFG function for the run or None)
-> its output latent."""


def profile_dir() -> Path | None:
    """``<ComfyUI user directory>/taylor_forecast/profiles``; None when this ComfyUI has no user directory."""
    import folder_paths

    get = getattr(folder_paths, "get_user_directory", None)
    return Path(get()).joinpath(*PROFILE_FOLDER) if callable(get) and get() else None


def sampler_name(sampler: Any) -> str:
    """The sampler's name: a KSAMPLER's sampling function, else its class."""
    function = getattr(sampler, "sampler_function", None)
    return getattr(function, "__name__", None) or type(sampler).__name__


def model_fingerprint(model_patcher: Any) -> str:
    """sha256 over every tensor of the model's state dict (names, shapes, dtypes, a few strided values), the
    unpatched weight where ComfyUI holds a backup (a loaded model carries its patches in its weights)."""
    backup = getattr(model_patcher, "backup", {}) or {}
    return fingerprint((name, getattr(backup[name], "weight", tensor) if name in backup else tensor)
                       for name, tensor in model_patcher.model.state_dict().items())


def patches_fingerprint(model_patcher: Any) -> str:
    """sha256 over the ModelPatcher's weight patches (LoRAs): keys, strengths, and their tensors' fingerprints."""
    def plain(patch: tuple) -> list:
        return [getattr(p, "weights", p) if not callable(p) else getattr(p, "__name__", "function") for p in patch]

    return fingerprint((str(key), [plain(p) for p in patches])
                       for key, patches in getattr(model_patcher, "patches", {}).items())


def conditioning_fingerprint(guider: Any) -> str:
    """sha256 over the guider's conditioning as the graph set it (``original_conds``, else ``conds``: positive,
    negative and any other key), every tensor by all its bytes (the prompt's embedding, pooled output, masks,
    reference latents); objects such as a ControlNet count by their type."""
    conds = getattr(guider, "original_conds", None) or guider.conds
    return fingerprint(((str(name), value) for name, value in conds.items()), whole=True)


def guidance(guider: Any) -> list:
    """The guider's class and its numeric settings (CFGGuider's ``cfg``, a dual guider's ``cfg1``/``cfg2``)."""
    return [type(guider).__name__, {name: value for name, value in sorted(vars(guider).items())
                                    if isinstance(value, (int, float)) and not isinstance(value, bool)}]


def key_fields(config: ForecastConfig, level: str, guider: Any, sampler: Any, sigmas: list[float],
               latent_shape: list[int]) -> dict[str, Any]:
    """The plain values a profile is keyed by (``taylor_core.calibration.profile_key``); ``latent_shape``: the
    noise's shape without its batch dimension."""
    return {"model": model_fingerprint(guider.model_patcher), "patches": patches_fingerprint(guider.model_patcher),
            "conditioning": conditioning_fingerprint(guider), "guidance": guidance(guider),
            "latent": list(latent_shape),
            "sampler": sampler_name(sampler), "sigmas": rounded_sigmas(sigmas), "steps": len(sigmas) - 1,
            "target_speedup": config.target_speedup, "level": level, "clock": config.clock,
            "window": [config.warmup_steps, config.tail_steps, config.start_percent, config.end_percent]}


def read_profile(path: Path, fields: dict[str, Any]) -> Profile | None:
    """The profile at ``path`` for ``fields``; None when there is none, or (one log line) when it does not load."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        logger.warning("%s calibration profile %s is unreadable (%s): ignored, the default plan is used", LOG_PREFIX,
                       path, exc)
        return None
    try:
        return load_profile(text, fields, PREDICTORS)
    except ProfileError as exc:
        logger.warning("%s calibration profile %s is not used: %s; the default plan is used (calibration "
                       "recalibrate replaces it)", LOG_PREFIX, path, exc)
        return None


def write_profile(path: Path, profile: Profile) -> None:
    """Write ``profile`` to ``path`` atomically (a temporary file in the same folder, then ``os.replace``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(profile.to_json())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _saved(path: Path, profile: Profile) -> bool:
    """Whether ``profile`` was written to ``path``; a file system that refuses it is logged, the run goes on."""
    try:
        write_profile(path, profile)
    except OSError as exc:
        logger.warning("%s calibration: profile %s could not be written (%s): the next run calibrates again",
                       LOG_PREFIX, path, exc)
        return False
    return True


def calibrated_config(config: ForecastConfig, profile: Profile) -> ForecastConfig:
    """``config`` planned by ``profile``: its forecaster and order on its full steps."""
    return dataclasses.replace(config, forecaster=profile.forecaster, max_order=profile.max_order,
                               full_steps=tuple(profile.full_steps))


def rms(tensor: torch.Tensor) -> float:
    return float(tensor.detach().float().pow(2).mean().sqrt())


def fitted(config: ForecastConfig, steps: int, in_window: tuple[bool, ...], sigmas: list[float],
           recorder: TrajectoryRecorder, uncached: torch.Tensor, sample: Sample) -> Candidate | None:
    """The plan fitted to the recorded run, after ``PROBES`` perturbed uncached runs measured the propagation
    gains (final change over ``|sigma step| x`` the perturbation's rms); None when the record is incomplete or the
    forced steps take the whole budget."""
    if not recorder.complete:
        logger.info("%s calibration: the run's trajectory was not recorded at every step: no fitted plan", LOG_PREFIX)
        return None
    forced = forced_full(steps, CANDIDATE_WARMUP, config.tail_steps, in_window)
    budget = speedup_full_steps(steps, config.target_speedup)
    if sum(forced) >= budget:
        return None
    sizes = [sigmas[i + 1] - sigmas[i] for i in range(steps)]
    gains = {}
    for step in probe_steps(forced, PROBES):
        scale = PERTURBATION_SIZE * recorder.rms[step]
        if scale > 0 and sizes[step] != 0:
            moved = sample(None, False, Perturbation(sigmas, step, scale))
            gains[step] = rms(moved - uncached) / (scale * abs(sizes[step]))
    times = [time_coordinate(config.clock, s, sigmas) for s in sigmas[:-1]]
    return fitted_candidate([recorder.features[i] for i in range(steps)], times, sizes, gains, forced, budget)


def calibrate(config: ForecastConfig, fields: dict[str, Any], in_window: tuple[bool, ...], uncached: torch.Tensor,
              sample: Sample, extra: Candidate | None = None) -> Profile | None:
    """Sample every candidate plan (``extra`` too, when its plan is new) on the run's noise (scored against
    ``uncached``) and on the held-out noise (against that noise's uncached run) and return the chosen one as a
    profile; None (logged) when the budget leaves no plan to choose."""
    candidates = with_candidate(candidate_plans(fields["steps"], config.target_speedup, config.tail_steps,
                                                in_window), extra)
    if not candidates:
        logger.warning("%s calibration: target_speedup %g leaves no free full step of %d steps to place: nothing "
                       "to calibrate", LOG_PREFIX, config.target_speedup, fields["steps"])
        return None
    trials = {candidate.name: dataclasses.replace(config, calibration="off", forecaster=candidate.forecaster,
                                                  max_order=candidate.max_order, warmup_steps=CANDIDATE_WARMUP,
                                                  full_steps=candidate.full_steps) for candidate in candidates}
    scores = {name: psnr(sample(trial, False, None), uncached) for name, trial in trials.items()}
    held_out_uncached = sample(None, True, None)
    held_out = {name: psnr(sample(trial, True, None), held_out_uncached) for name, trial in trials.items()}
    return Profile.chosen_from(fields, candidates, scores, held_out)


def run_with_calibration(config: ForecastConfig, level: str, guider: Any, sampler: Any, sigmas: list[float],
                         latent_shape: list[int], sample: Sample) -> tuple[ForecastConfig, torch.Tensor | None]:
    """(the run's config, its output when the calibration sampled it): a valid profile's plan, or a calibration
    (``sample(None, False)``, the run without forecasting, is returned as the run's output), or the default
    plan."""
    folder = profile_dir()
    if folder is None:
        logger.warning("%s calibration: this ComfyUI has no user directory for profiles: the default plan is used",
                       LOG_PREFIX)
        return config, None
    try:
        fields = key_fields(config, level, guider, sampler, sigmas, latent_shape)
        model_sampling = guider.model_patcher.get_model_object("model_sampling")
        in_window = window_flags(sigmas, float(model_sampling.percent_to_sigma(config.start_percent)),
                                 float(model_sampling.percent_to_sigma(config.end_percent)))
    except Exception as exc:  # ComfyUI's objects did not answer as expected
        logger.warning("%s calibration: this run's key could not be read (%s: %s): the default plan is used",
                       LOG_PREFIX, type(exc).__name__, exc)
        return config, None
    path = folder / f"{profile_key(fields)}.json"
    if config.calibration == "auto" and path.exists():
        profile = read_profile(path, fields)
        if profile is not None:
            logger.info("%s calibration: profile %s, %s (%.2f dB on its calibration run)", LOG_PREFIX, path.name,
                        profile.chosen, profile.scores.get(profile.chosen, float("nan")))
        return (calibrated_config(config, profile) if profile is not None else config), None
    logger.info("%s calibration: sampling this run uncached, then each candidate plan", LOG_PREFIX)
    recorder = TrajectoryRecorder(sigmas)
    output = sample(None, False, recorder)
    try:
        extra = fitted(config, fields["steps"], in_window, sigmas, recorder, output, sample)
    finally:
        recorder.clear()
    profile = calibrate(config, fields, in_window, output, sample, extra)
    if profile is not None and _saved(path, profile):
        logger.info("%s calibration: %s chosen (dB on this noise / the held-out one: %s); profile written to %s",
                    LOG_PREFIX, profile.chosen, ", ".join(f"{name} {score:.2f}/{profile.held_out[name]:.2f}"
                                                          for name, score in profile.scores.items()), path)
    return config, output
