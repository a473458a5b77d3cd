"""What a calibration reads off its uncached runs, through ComfyUI's post-CFG hook
(``model_options["sampler_post_cfg_function"]``, set on a clone of the guider's options for one run).

- ``TrajectoryRecorder``: per sampling step, the eps-equivalent output ``(x - denoised) / sigma`` after CFG (a
  forecast of the conds' outputs combined as CFG combines them: the forecasts are linear in their anchors), as a
  fixed evenly strided subsample of at most ``FEATURE_ELEMENTS`` values (float32, CPU) and the rms of the whole.
  The step's last evaluation at its own sigma is the one kept (heun's second evaluation of the step before is at
  the same sigma, and comes first). Memory: steps x ``FEATURE_ELEMENTS`` x 4 bytes at most (16 MiB at 64 steps).
- ``Perturbation``: adds ``scale`` times a fixed noise (``PERTURBATION_SEED``, drawn on the CPU) to the eps-equivalent
  output of every evaluation at one step's sigma, leaving the others untouched.

Both return the denoised tensor they were given when the sigma is not a step's: the run is the model's own.
"""

from __future__ import annotations

import math
from typing import Any

import torch

FEATURE_ELEMENTS = 1 << 16
PERTURBATION_SEED = 20261205


def step_of(sigma: torch.Tensor, step_sigmas: list[float]) -> int | None:
    """The step ``i`` (``0..n-1``) evaluated at ``sigma`` (a sampler's timestep tensor), None for any other sigma."""
    value = float(sigma.reshape(-1)[0])
    return next((i for i, s in enumerate(step_sigmas[:-1]) if math.isclose(value, s, rel_tol=1e-6, abs_tol=0.0)),
                None)


def eps_of(args: dict[str, Any]) -> torch.Tensor:
    """The eps-equivalent ``(x - denoised) / sigma`` of one post-CFG call's arguments."""
    x, denoised = args["input"], args["denoised"]
    sigma = args["sigma"].reshape(-1, *[1] * (x.ndim - 1)).to(x.dtype)
    return (x - denoised) / sigma


def subsample(tensor: torch.Tensor) -> torch.Tensor:
    """At most ``FEATURE_ELEMENTS`` evenly strided values of ``tensor``, float32 on the CPU."""
    flat = tensor.detach().reshape(-1)
    stride = max(1, math.ceil(flat.numel() / FEATURE_ELEMENTS))
    return flat[::stride].to(device="cpu", dtype=torch.float32).clone()


class TrajectoryRecorder:
    """A post-CFG function recording one run's per-step feature (owned here: ``features[i]``, ``rms[i]``)."""

    def __init__(self, step_sigmas: list[float]) -> None:
        self.step_sigmas = step_sigmas
        self.features: dict[int, torch.Tensor] = {}
        self.rms: dict[int, float] = {}

    def __call__(self, args: dict[str, Any]) -> torch.Tensor:
        step = step_of(args["sigma"], self.step_sigmas)
        if step is not None:
            eps = eps_of(args).float()
            self.features[step] = subsample(eps)
            self.rms[step] = float(eps.pow(2).mean().sqrt())
        return args["denoised"]

    @property
    def complete(self) -> bool:
        """Whether every step was recorded, each finite."""
        n = len(self.step_sigmas) - 1
        return (sorted(self.features) == list(range(n))
                and all(bool(torch.isfinite(f).all()) and math.isfinite(self.rms[i]) for i, f in self.features.items()))

    def clear(self) -> None:
        self.features.clear()
        self.rms.clear()


class Perturbation:
    """A post-CFG function adding ``scale`` x a fixed unit-variance noise to the eps-equivalent output at ``step``."""

    def __init__(self, step_sigmas: list[float], step: int, scale: float) -> None:
        self.step_sigmas, self.step, self.scale = step_sigmas, step, scale

    def noise(self, like: torch.Tensor) -> torch.Tensor:
        """The perturbation's fixed noise, of ``like``'s shape, dtype and device."""
        generator = torch.Generator().manual_seed(PERTURBATION_SEED)
        return torch.randn(like.shape, generator=generator).to(device=like.device, dtype=like.dtype)

    def __call__(self, args: dict[str, Any]) -> torch.Tensor:
        denoised = args["denoised"]
        if step_of(args["sigma"], self.step_sigmas) != self.step:
            return denoised
        sigma = args["sigma"].reshape(-1, *[1] * (denoised.ndim - 1)).to(denoised.dtype)
        return denoised - sigma * self.scale * self.noise(denoised)
