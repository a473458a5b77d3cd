"""Calibration profiles, pure: the candidate plans a calibration run tries, their scores, the profile's key and
schema. No file or ComfyUI access (``nodes/calibration.py`` does both).

A calibration samples the user's run once uncached, then once per candidate (a predictor and order on a plan of
exactly ``speedup_full_steps(num_steps, target_speedup)`` full steps: the fixed plans of ``candidate_plans`` and
the plan ``fitted_candidate`` places by dynamic programming over the recorded uncached run), scores each output
against the uncached one (PSNR, dB), does the same on a held-out noise (``held_out_noise``), and keeps the
candidate ``choose`` picks as a profile: a small JSON document keyed by a sha256 over plain values (the model's
fingerprint, its patches, the conditioning's fingerprint, the guidance, the latent's shape, the sampler, the
sigmas, the budget, the window, the level). Units: steps are sampling-step indices ``0..n-1``; sigmas are the
sampler's noise levels.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from .placement import MAX_FITTED_STEPS, fitted_full_steps, sensitivity_weights, stretch_costs
from .schedule import SpeedupSchedule, speedup_full_steps

PROFILE_VERSION = 4
PROFILE_FOLDER = ("taylor_forecast", "profiles")
"""Where profiles live, under ComfyUI's user directory (``nodes/calibration.py`` reads and writes them there)."""
CALIBRATION_MODES = ("off", "auto", "recalibrate")
CANDIDATE_PREDICTORS = (("newton", 1), ("newton", 2), ("foca", 1))
"""(forecaster, max_order) of every candidate; each runs on every plan of ``CANDIDATE_GROWTHS``."""
CANDIDATE_GROWTHS = (("growth", 0.5), ("even", 1.0))
"""(name, ``SpeedupSchedule.growth``): the default back-loaded plan and an evenly spaced one."""
CANDIDATE_WARMUP = 1
FITTED_CANDIDATE = "newton1/fitted"
"""The candidate whose plan ``fitted_candidate`` places by dynamic programming over the recorded run."""
MAX_CANDIDATES = len(CANDIDATE_PREDICTORS) * len(CANDIDATE_GROWTHS) + 1
"""The most candidates a calibration samples: every predictor on every plan, and the fitted one."""
DEFAULT_CANDIDATE = "newton1/growth"
"""The candidate that is the node's default plan: a calibration keeps it unless another beats it on both noises."""
CHOICE_MARGIN_DB = 3.0
"""How far (dB) a candidate must beat ``DEFAULT_CANDIDATE`` on both noises to replace it (picked by
leave-one-model-out: ``demo/calibration_check.py report``, docs/adaptive.md)."""
HELD_OUT_SEED = 20260805
"""The seed of the held-out noise every calibration also scores its candidates on."""
MAX_PSNR = 300.0
"""The score of an output equal to the reference (an infinite PSNR, which JSON cannot hold)."""
SIGMA_DIGITS = 5
VALUES_PER_TENSOR = 4


class ProfileError(ValueError):
    """A profile that is not used: unreadable, of another version or key, or inconsistent."""


@dataclass(frozen=True)
class Candidate:
    """One plan a calibration tries: ``forecaster`` of order ``max_order`` on the full steps ``full_steps``."""

    name: str
    forecaster: str
    max_order: int
    full_steps: tuple[int, ...]


def candidate_plans(num_steps: int, target_speedup: float, tail_steps: int,
                    in_window: Sequence[bool]) -> list[Candidate]:
    """Every candidate of a run of ``num_steps`` steps (warm-up ``CANDIDATE_WARMUP``), each with exactly
    ``speedup_full_steps(num_steps, target_speedup)`` full steps; [] when the forced steps alone exceed that."""
    budget = speedup_full_steps(num_steps, target_speedup)
    plans = {}
    for plan_name, growth in CANDIDATE_GROWTHS:
        plan = SpeedupSchedule(target_speedup, CANDIDATE_WARMUP, tail_steps, 0.0, 1.0, growth).plan(num_steps,
                                                                                                   in_window)
        steps = tuple(i for i, full in enumerate(plan.full) if full)
        if len(steps) == budget and steps not in plans.values():
            plans[plan_name] = steps
    return [Candidate(f"{name}{order}/{plan_name}", name, order, steps)
            for name, order in CANDIDATE_PREDICTORS for plan_name, steps in plans.items()]


def fitted_candidate(features: Sequence[torch.Tensor], times: Sequence[float], step_sizes: Sequence[float],
                     gains: Mapping[int, float], forced: Sequence[bool], budget: int) -> Candidate | None:
    """Newton order 1 on the plan of ``budget`` full steps (``forced`` ones included) that
    ``taylor_core.placement`` fits to one recorded uncached run: per step its feature and clock time, the step's
    sigma change (``step_sizes``) and the propagation ``gains`` measured at a few steps; None when the run is
    longer than ``MAX_FITTED_STEPS`` or no plan of that count exists."""
    if len(features) > MAX_FITTED_STEPS:
        return None
    weights = sensitivity_weights(gains, step_sizes)
    steps = fitted_full_steps(stretch_costs(features, times, weights), forced, budget)
    return None if steps is None else Candidate(FITTED_CANDIDATE, "newton", 1, steps)


def with_candidate(candidates: Sequence[Candidate], extra: Candidate | None) -> list[Candidate]:
    """``candidates`` and ``extra`` when it is given and its plan differs from theirs."""
    plans = {c.full_steps for c in candidates}
    return [*candidates, *([extra] if extra is not None and extra.full_steps not in plans else [])]


def psnr(output: torch.Tensor, reference: torch.Tensor) -> float:
    """PSNR in dB of ``output`` against ``reference`` (same shape), the peak being the reference's range;
    ``MAX_PSNR`` when equal, ``-inf`` when ``output`` is not finite."""
    out, ref = output.detach().float().cpu(), reference.detach().float().cpu()
    if not torch.isfinite(out).all():
        return -math.inf
    mse = float(torch.mean((out - ref) ** 2))
    peak = float(ref.max() - ref.min()) or 1.0
    return MAX_PSNR if mse == 0.0 else min(10.0 * math.log10(peak * peak / mse), MAX_PSNR)


def held_out_noise(like: torch.Tensor) -> torch.Tensor:
    """Standard normal noise of ``like``'s shape, dtype and device from ``HELD_OUT_SEED`` (drawn on the CPU, so
    the same on every device): the second noise a calibration scores its candidates on."""
    generator = torch.Generator().manual_seed(HELD_OUT_SEED)
    return torch.randn(like.shape, generator=generator, dtype=torch.float32).to(device=like.device, dtype=like.dtype)


def choose(scores: Mapping[str, float], held_out: Mapping[str, float], margin: float = CHOICE_MARGIN_DB) -> str:
    """The candidate a calibration keeps: of those at least ``margin`` dB above ``DEFAULT_CANDIDATE`` on both the
    run's noise (``scores``, dB) and the held-out one (``held_out``, the same names), the best mean of the two; the
    default when none is; all of them where the default is not a candidate. Ties: the first."""
    default = DEFAULT_CANDIDATE
    eligible = [name for name in scores if default not in scores or name == default
                or (scores[name] >= scores[default] + margin and held_out[name] >= held_out[default] + margin)]
    return max(eligible, key=lambda name: scores[name] + held_out[name])


def rounded_sigmas(sigmas: Iterable[float]) -> list[float]:
    """The sigmas rounded to ``SIGMA_DIGITS`` significant digits: the key's form of a schedule."""
    return [float(f"{float(s):.{SIGMA_DIGITS}g}") for s in sigmas]


def tensor_fingerprint(tensor: torch.Tensor, whole: bool = False) -> list:
    """Shape, dtype and ``VALUES_PER_TENSOR`` evenly strided values (as float strings) of ``tensor``; with
    ``whole``, the sha256 of all its bytes in place of those values (for small tensors such as a prompt's
    embedding, where two prompts can share the strided values)."""
    flat = tensor.detach().reshape(-1)
    values: list | str = []
    if flat.numel() and flat.device.type != "meta":
        if whole:
            values = hashlib.sha256(flat.cpu().contiguous().view(torch.uint8).numpy().tobytes()).hexdigest()
        else:
            index = torch.linspace(0, flat.numel() - 1, min(VALUES_PER_TENSOR, flat.numel())).long().to(flat.device)
            values = [float(v).hex() for v in flat[index].float().cpu().tolist()]
    return [list(tensor.shape), str(tensor.dtype), values]


def fingerprint(named: Iterable[tuple[str, Any]], whole: bool = False) -> str:
    """sha256 over ``(name, item)`` pairs, sorted by name; each item a tensor (``tensor_fingerprint``, ``whole``
    or strided) or a plain JSON value (nested lists and dicts of tensors and plain values too; any other object
    counts by its type's name)."""
    digest = hashlib.sha256()
    for name, item in sorted(named, key=lambda pair: pair[0]):
        digest.update(json.dumps([name, _plain(item, whole)], sort_keys=True).encode())
    return digest.hexdigest()


def _plain(item: Any, whole: bool) -> Any:
    if isinstance(item, torch.Tensor):
        return tensor_fingerprint(item, whole)
    if isinstance(item, (list, tuple)):
        return [_plain(x, whole) for x in item]
    if isinstance(item, dict):
        return {str(k): _plain(v, whole) for k, v in item.items()}
    return item if isinstance(item, (str, int, float, bool, type(None))) else type(item).__name__


def profile_key(fields: Mapping[str, Any]) -> str:
    """sha256 (hex) of the key fields (plain JSON values), independent of their order."""
    text = json.dumps({"version": PROFILE_VERSION, **fields}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Profile:
    """A calibration's result: the chosen ``forecaster``/``max_order`` on ``full_steps`` (step indices), for the
    run described by ``fields`` (``key`` is ``profile_key(fields)``), with every candidate's score (dB) on the
    calibration run's noise (``scores``) and on the held-out noise (``held_out``), and every candidate's full steps
    (``plans``)."""

    key: str
    fields: dict
    chosen: str
    forecaster: str
    max_order: int
    full_steps: tuple[int, ...]
    scores: dict = field(default_factory=dict)
    held_out: dict = field(default_factory=dict)
    plans: dict = field(default_factory=dict)
    version: int = PROFILE_VERSION

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "full_steps": list(self.full_steps)}, indent=1, sort_keys=True)

    @classmethod
    def chosen_from(cls, fields: Mapping[str, Any], candidates: Sequence[Candidate],
                    scores: Mapping[str, float], held_out: Mapping[str, float]) -> Profile:
        """The profile of the candidate ``choose`` picks (``scores``, ``held_out``: dB by candidate name)."""
        best = next(c for c in candidates if c.name == choose(scores, held_out))
        return cls(profile_key(fields), dict(fields), best.name, best.forecaster, best.max_order, best.full_steps,
                   {name: round(score, 4) for name, score in scores.items()},
                   {name: round(score, 4) for name, score in held_out.items()},
                   {c.name: list(c.full_steps) for c in candidates})


def load_profile(text: str, fields: Mapping[str, Any], forecasters: Iterable[str]) -> Profile:
    """The profile in ``text`` when it is one for exactly ``fields`` (this version, this key) with a plan of the
    budget's count of distinct steps and a known forecaster; ``ProfileError`` saying why not otherwise."""
    try:
        data = json.loads(text)
        profile = Profile(**{**data, "full_steps": tuple(data["full_steps"])})
    except (ValueError, TypeError, KeyError) as exc:
        raise ProfileError(f"unreadable ({type(exc).__name__}: {exc})") from exc
    if profile.version != PROFILE_VERSION:
        raise ProfileError(f"version {profile.version!r}, not {PROFILE_VERSION}")
    if profile.key != profile_key(fields) or profile.fields != json.loads(json.dumps(dict(fields))):
        raise ProfileError("made for another model, sampler, schedule or setting (its key differs)")
    _check_plan(profile, int(fields["steps"]), float(fields["target_speedup"]), set(forecasters))
    return profile


def _check_plan(profile: Profile, num_steps: int, target_speedup: float, forecasters: set[str]) -> None:
    steps = profile.full_steps
    if not all(isinstance(s, int) and 0 <= s < num_steps for s in steps) or list(steps) != sorted(set(steps)):
        raise ProfileError(f"its full steps {list(steps)} are not distinct steps of 0..{num_steps - 1}")
    if len(steps) != speedup_full_steps(num_steps, target_speedup) or 0 not in steps:
        raise ProfileError(f"its plan has {len(steps)} full steps, not the budget's "
                           f"{speedup_full_steps(num_steps, target_speedup)} with step 0")
    if profile.forecaster not in forecasters or not isinstance(profile.max_order, int) or profile.max_order < 0:
        raise ProfileError(f"unknown forecaster {profile.forecaster!r} of order {profile.max_order!r}")
