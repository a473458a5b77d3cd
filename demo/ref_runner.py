"""A published forecaster (``demo/ref_foca.py``, ``ref_hicache.py``, ``ref_spectrum.py``; cache-dit's own
calibrators through ``ref_cachedit.py``, when installed) inside a real ComfyUI sampling run, for the benchmark: the
same model calls, plans and output level the pack forecasts, another predictor.

``reference_cache(model, name, plan_for)`` returns a clone whose APPLY_MODEL wrapper (key ``benchmark_reference``)
computes the model on the steps ``plan_for(num_steps)`` marks full and forecasts the others: the eps-equivalent
``(x - denoised) / sigma`` (a flow model's velocity), per conditioning batch (``cond_or_uncond``) and latent shape,
the reference's time being the integer sampling-step index. One model call per step (euler, dpmpp_2m): a sampler
that evaluates twice a step would see both evaluations as that step.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.append(str(Path(__file__).resolve().parent.parent))  # taylor_core; last, after ComfyUI's own modules
from ref_cachedit import CALIBRATORS, CacheDitReference  # noqa: E402
from ref_foca import FoCaReference  # noqa: E402
from ref_hicache import HiCacheReference  # noqa: E402
from ref_spectrum import SpectrumReference, spectrum_full_steps  # noqa: E402

from taylor_core.clock import locate_step  # noqa: E402

REFERENCES: dict[str, Callable[[int], object]] = {  # name -> a fresh reference for a run of n steps
    "foca": lambda num_steps: FoCaReference(),
    "hicache": lambda num_steps: HiCacheReference(),
    "spectrum": lambda num_steps: SpectrumReference(num_steps),
    **{name: (lambda num_steps, name=name: CacheDitReference(name)) for name in CALIBRATORS},
}
WRAPPER_KEY = "benchmark_reference"


def spectrum_plan(window: float, flex: float, warmup_steps: int = 3) -> Callable[[int], list[bool]]:
    """Spectrum's own schedule (growing windows) as a ``plan_for``."""
    return lambda num_steps: spectrum_full_steps(num_steps, warmup_steps, window, flex)


class ReferenceCache:
    """The APPLY_MODEL wrapper: per (conds, shape) a reference and its plan, both made fresh at step 0."""

    def __init__(self, name: str, plan_for: Callable[[int], Sequence[bool]]) -> None:
        self.make, self.plan_for = REFERENCES[name], plan_for
        self.runs: dict[tuple, tuple[object, Sequence[bool]]] = {}

    def __call__(self, executor, x: torch.Tensor, t: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        options = kwargs.get("transformer_options") or (args[3] if len(args) > 3 else {})
        sigmas = [float(s) for s in options["sample_sigmas"].reshape(-1).tolist()]
        step = locate_step(float(t.reshape(-1)[0]), sigmas)
        key = (tuple(options.get("cond_or_uncond", ())), tuple(x.shape))
        fresh = step == 0 or key not in self.runs
        if fresh:  # a new run (or a batch first seen mid-run): its first call is computed
            self.runs[key] = (self.make(len(sigmas) - 1), list(self.plan_for(len(sigmas) - 1)))
        reference, plan = self.runs[key]
        sigma = t.reshape(-1, *([1] * (x.ndim - 1))).to(x.dtype)
        if fresh or plan[step]:
            denoised = executor(x, t, *args, **kwargs)
            reference.update(float(step), ((x - denoised) / sigma).float())
            return denoised
        return x - sigma * reference.predict(float(step)).to(x.dtype)


def reference_cache(model, name: str, plan_for: Callable[[int], Sequence[bool]]):
    """A clone of ``model`` (a ModelPatcher) forecasting with reference ``name`` on the plan ``plan_for`` gives."""
    import comfy.patcher_extension as ext

    patched = model.clone()
    patched.add_wrapper_with_key(ext.WrappersMP.APPLY_MODEL, WRAPPER_KEY, ReferenceCache(name, plan_for))
    return patched
