"""CPU benchmark, in one process: TaylorSeer Apply (every forecaster, on intervals and speed-up budgets), the
published FoCa / HiCache / Spectrum forecasters (``demo/ref_*.py``) and cache-dit's own calibrators
(``demo/ref_cachedit.py``, when installed), run on the same plans by ``demo/ref_runner.py``, the CG-Taylor Gate,
ComfyUI's own EasyCache / LazyCache, the equal-call baseline (the uncached model with ``round(steps / x)`` steps
at every budget ``x``) and TaylorSeer Apply calibrated (``calibration = auto`` with only the budget set; each
prompt calibrated on another seed of it, ``CALIBRATION_SEED_OFFSET``) on the trained demo models (tiny Wan 2.1 and
tiny Flux.1-dev, digits), each against the uncached run of ``steps`` steps. Interval plans run with TaylorSeer's
warm-up (``--warmup``, 3), budget plans with the nodes' auto warm-up under a budget (``--budget-warmup``, 1).

``python demo/benchmark.py [--archs wan,flux] [--samplers euler,dpmpp_2m] [--seeds 8] [--timed 3] [--pack ...]
[--plans ...] [--out docs]`` (host Python)

Per configuration and (model, sampler): full computes per run (real calls of the model's last block, forward
hook; for every method), compute ratio (sampler evaluations / full computes), wall-time speed-up (median of
the uncached run's time over the median of the configuration's, ``--timed`` pairs run back to back, reference
first), PSNR of the decoded 128x128 images and of the model-space latents, SSIM of the decoded images,
cache memory (the pack: its run report's peak cache bytes; EasyCache/LazyCache: bytes of the tensors their
holder keeps, largest seen at the end of a model call), the growth of the process's peak RSS during the
configuration's runs (``ru_maxrss``), and the forecast overhead: median time of a model call whose last block
did not run over that of one where it ran (the outermost APPLY_MODEL wrapper times every call).
Writes ``benchmarks.csv``, ``benchmarks.md`` and ``pareto.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.append(str(HERE.parent))  # taylor_core (pure PyTorch); last, so ComfyUI's own `nodes` module comes first
import benchmark_evidence  # noqa: E402
import benchmark_report  # noqa: E402
import comfy_env  # noqa: E402
import fidelity  # noqa: E402
import ref_cachedit  # noqa: E402
from demo_model import family, load_demo_model  # noqa: E402

from taylor_core.calibration import PROFILE_FOLDER  # noqa: E402

SETTINGS = {"euler": 30, "dpmpp_2m": 20}  # sampler -> steps
PACK_GRID = ("output/newton:0,output/newton:1,output/newton:2,output/hermite:2,output/foca:1,output/spectral:1,"
             "output/auto:1,residual/newton:1,residual/foca:1")
PLANS = "2,3,4,5,6,7,8,x2,x2.5,x3,x3.75,x4.3,x5,x6"
CACHEDIT = tuple(ref_cachedit.CALIBRATORS)  # cache-dit's calibrators, as references
SPECTRUM_OWN = ((2.0, 0.25), (2.0, 0.75), (2.0, 1.5))  # Spectrum's own growing windows: (window, flex)
WARMUP, TAIL = 3, 1
CALIBRATION_SEED_OFFSET = 10
"""A calibrated configuration's case ``(seed, digit)`` is calibrated on ``(seed + 10, digit)``: the same prompt
(digit = seed mod 10), another noise, so the measured run is held out from its calibration."""
COLUMNS = ["arch", "sampler", "steps", "method", "level", "forecaster", "interval", "target_speedup", "warmup",
           "max_order",
           "threshold", "label", "full_mean", "compute_ratio", "speedup_median", "seconds_ref_median",
           "seconds_median", "psnr_db", "psnr_min_db", "latent_psnr_db", "ssim", "cache_bytes",
           "peak_rss_growth_kib", "forecast_overhead", "seeds", "timed_pairs"]


@dataclass(frozen=True)
class Config:
    """One method setting; ``make(model)`` returns the patched model (None = no cache). A plan is an ``interval``
    or a ``target_speedup`` budget (the pack's ``SpeedupSchedule``; a reference runs on the very same plan)."""

    method: str  # none | taylorseer | calibrated | cg_taylor | reference | easycache | lazycache | equal_calls
    level: str = ""
    interval: int | None = None
    max_order: int | None = None
    threshold: float | None = None
    max_consecutive: int = 0  # the gate's cap on consecutive forecasts (0: none)
    forecaster: str = ""  # taylorseer: the pack's predictor; reference: a ref_runner.REFERENCES name
    target_speedup: float = 0.0
    spectrum_windows: tuple[float, float] | None = None  # reference spectrum on its own schedule: (window, flex)
    warmup: int = WARMUP

    @property
    def plan_label(self) -> str:
        warmup = f" warmup={self.warmup}" if self.warmup != WARMUP else ""
        if self.spectrum_windows:
            return f"own w={self.spectrum_windows[0]:g} f={self.spectrum_windows[1]:g}{warmup}"
        return (f"x{self.target_speedup:g}" if self.target_speedup else f"N={self.interval}") + warmup

    @property
    def label(self) -> str:
        if self.method == "taylorseer":
            return f"TaylorSeer {self.level} {self.forecaster or 'newton'} {self.plan_label} O={self.max_order}"
        if self.method == "reference":
            return f"reference {self.forecaster} {self.plan_label}"
        if self.method == "equal_calls":
            return f"equal calls x{self.target_speedup:g}"
        if self.method == "calibrated":
            return f"TaylorSeer calibrated {self.plan_label}"
        cap = f" cap={self.max_consecutive}" if self.max_consecutive else ""
        budget = f" {self.plan_label}" if self.target_speedup else ""
        return self.method if self.threshold is None else f"{self.method} t={self.threshold:g}{cap}{budget}"

    def plan_for(self, num_steps: int) -> list[bool]:
        """The full steps of this plan on a run of ``num_steps`` (the window spans the whole run)."""
        import ref_runner

        from taylor_core import make_schedule

        if self.spectrum_windows:
            return ref_runner.spectrum_plan(*self.spectrum_windows, warmup_steps=self.warmup)(num_steps)
        schedule = make_schedule(self.interval or 1, self.target_speedup, self.warmup, TAIL, 0.0, 1.0)
        return list(schedule.plan(num_steps, [True] * num_steps).full)

    def sampling_steps(self, num_steps: int) -> int:
        """The steps this configuration samples with: the equal-call baseline's ``round(num_steps / x)`` (the
        full steps of the budget ``x``, ``taylor_core.speedup_full_steps``), else ``num_steps``."""
        from taylor_core import speedup_full_steps

        return speedup_full_steps(num_steps, self.target_speedup) if self.method == "equal_calls" else num_steps

    def make(self, model):
        if self.method in ("none", "equal_calls"):
            return model
        if self.method == "taylorseer":
            return fidelity.taylorseer(model, self.interval or 1, self.max_order, self.level, self.warmup, TAIL,
                                       forecaster=self.forecaster or "newton", target_speedup=self.target_speedup)
        if self.method == "calibrated":
            return fidelity.budget_only(model, self.target_speedup, "auto")
        if self.method == "reference":
            import ref_runner

            return ref_runner.reference_cache(model, self.forecaster, self.plan_for)
        if self.method == "cg_taylor":
            budget = {"target_speedup": self.target_speedup} if self.target_speedup else {}
            return fidelity.cg_gate(model, self.threshold, self.max_consecutive, warmup=self.warmup, tail=TAIL,
                                    **budget)
        import nodes

        node = nodes.NODE_CLASS_MAPPINGS["EasyCache" if self.method == "easycache" else "LazyCache"]
        return node.execute(model, self.threshold, 0.15, 0.95, False)[0]  # the node's defaults: 0.15 to 0.95


def plans(text: str) -> list[tuple[int | None, float]]:
    """``--plans``: ``"6"`` an interval, ``"x3.75"`` a speed-up budget; as (interval, target_speedup) pairs."""
    return [(None, float(p[1:])) if p.startswith("x") else (int(p), 0.0) for p in text.split(",") if p]


def pack_settings(text: str) -> list[tuple[str, str, int]]:
    """``--pack``: ``level/forecaster:order`` items as (level, forecaster, order)."""
    items = []
    for item in (i for i in text.split(",") if i):
        level, rest = item.split("/")
        name, order = rest.split(":")
        items.append((level, name, int(order)))
    return items


def grid(pack: list[tuple[str, str, int]], plan_list: list[tuple[int | None, float]], references: list[str],
         gate: list[float], gate_budgets: list[tuple[float, float]], peers: list[float],
         warmup_pack: list[tuple[str, str, int]] = (), warmups: list[int] = (),
         warmup: int = WARMUP, budget_warmup: int = benchmark_report.BUDGET_WARMUP,
         calibrated: bool = False) -> list[Config]:
    """The reference run first, then the pack's (level, forecaster, order) settings on every plan (the
    ``warmup_pack`` ones also with each of ``warmups`` on the budget plans), TaylorSeer Apply calibrated on every
    budget (when ``calibrated``), the published forecasters on the same plans (and Spectrum on its own schedule),
    the gate's thresholds and its (threshold, budget) pairs, the peers' thresholds, the equal-call baseline at
    every budget of ``plan_list``. Warm-up: ``warmup`` on interval plans (and for the gate's thresholds, Spectrum's
    own windows and the peers), ``budget_warmup`` on budget plans, but for the ``warmups`` variants."""

    def start(x: float) -> int:
        return budget_warmup if x else warmup

    budgets = [x for n, x in plan_list if x]
    configs = [Config("none")]
    configs += [Config("taylorseer", level, n, order, forecaster=name, target_speedup=x, warmup=start(x))
                for level, name, order in pack for n, x in plan_list]
    configs += [Config("taylorseer", level, None, order, forecaster=name, target_speedup=x, warmup=w)
                for level, name, order in warmup_pack for w in warmups for x in budgets]
    configs += [Config("calibrated", "output", target_speedup=x, warmup=benchmark_report.BUDGET_WARMUP)
                for x in budgets if calibrated]  # the node's own warm-up
    configs += [Config("reference", "output", n, forecaster=name, target_speedup=x, warmup=start(x))
                for name in references for n, x in plan_list]
    if "spectrum" in references:
        configs += [Config("reference", "output", forecaster="spectrum", spectrum_windows=w, warmup=warmup)
                    for w in SPECTRUM_OWN]
    configs += [Config("cg_taylor", "residual", threshold=t, warmup=warmup) for t in gate]
    configs += [Config("cg_taylor", "residual", threshold=t, target_speedup=x, warmup=budget_warmup)
                for t, x in gate_budgets]
    configs += [Config(m, threshold=t, warmup=warmup) for m in ("easycache", "lazycache") for t in peers]
    configs += [Config("equal_calls", target_speedup=x, warmup=budget_warmup) for x in budgets]
    return configs


def last_block(diffusion_model: torch.nn.Module) -> torch.nn.Module:
    """The block whose real call marks a full compute (Flux: the last single block; Wan: the last block)."""
    blocks = getattr(diffusion_model, "single_blocks", None) or diffusion_model.blocks
    return blocks[-1]


def tensor_bytes(value) -> int:
    """Bytes of the tensors in ``value`` (a tensor, or a dict / list / tuple of them; other values count 0)."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(tensor_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(tensor_bytes(v) for v in value)
    return 0


def _copy_input(executor, x, *args, **kwargs):
    """Hands the diffusion model a copy of its input. ComfyUI 0.3.75's EasyCache adds its cached difference to
    the input in place on skipped steps; for a float32 flow model ``apply_model``'s input is that very tensor
    (no dtype cast, ``calculate_input`` returns it), so ``denoised = x - sigma * out`` would read the modified
    tensor (what that costs: docs/performance.md). The copy costs one latent-sized clone per call, for every
    configuration alike; a bf16/fp16 model gets such a copy from ComfyUI's own cast."""
    return executor(x.clone(), *args, **kwargs)


@dataclass
class Probe:
    """Counters of one run, fed by the outermost APPLY_MODEL wrapper and the last block's forward hook.
    ``calls``: (start mark, end mark, the last block ran) per model call, turned into seconds by ``Probed.finish``."""

    full: int = 0
    full_call_s: list[float] = field(default_factory=list)
    skipped_call_s: list[float] = field(default_factory=list)
    cache_bytes: int = 0
    run_state: object | None = None
    calls: list[tuple] = field(default_factory=list)


def _seconds_between(start: float, end: float) -> float:
    return end - start


class Probed:
    """A model clone with probes: an outermost APPLY_MODEL wrapper (per-call times, the peers' cache bytes, the
    pack's run state) and a forward hook on the last block (full computes). Call times are ``mark()`` before and
    after each call, turned into seconds by ``elapsed(start, end)`` once the run is over (on a GPU: CUDA events,
    which add no synchronization; by default the host clock)."""

    def __init__(self, model, mark: Callable[[], object] = time.perf_counter,
                 elapsed: Callable[[object, object], float] = _seconds_between) -> None:
        import comfy.patcher_extension as ext

        self.model = model.clone()
        self.mark, self.elapsed = mark, elapsed
        # keyed apart from "easycache"/"lazycache": the pack treats those keys as a peer cache on the model
        self.model.add_wrapper_with_key(ext.WrappersMP.APPLY_MODEL, "benchmark_probe", self._apply_model)
        self.probe = Probe()
        self._hook = last_block(self.model.model.diffusion_model).register_forward_hook(self._block_ran)

    def close(self) -> None:
        self._hook.remove()

    def _block_ran(self, *_args) -> None:
        self.probe.full += 1

    def _apply_model(self, executor, *args, **kwargs):
        options = kwargs.get("transformer_options") or (args[5] if len(args) > 5 else {})
        before = self.probe.full
        start = self.mark()
        out = executor(*args, **kwargs)
        self.probe.calls.append((start, self.mark(), self.probe.full > before))
        holder = options.get("easycache")
        if holder is not None:
            self.probe.cache_bytes = max(self.probe.cache_bytes, tensor_bytes(vars(holder)))
        self.probe.run_state = options.get("taylor_forecast_run", self.probe.run_state)
        return out

    def finish(self) -> Probe:
        """The probe of the run that just ended (call for call after the device finished its work): call times in
        seconds, the pack's cache bytes read from its run state."""
        for start, end, full in self.probe.calls:
            (self.probe.full_call_s if full else self.probe.skipped_call_s).append(self.elapsed(start, end))
        self.probe.calls.clear()
        run = self.probe.run_state
        if run is not None:
            self.probe.cache_bytes = int(run.stats.peak_cache_bytes)
        return self.probe


class Harness(Probed):
    """A demo model with probes, for one arch; ``sample`` runs the real KSampler node."""

    def __init__(self, arch: str) -> None:
        import comfy.patcher_extension as ext

        self.arch = arch
        super().__init__(load_demo_model(comfy_env.comfy_root(), arch))
        self.model.add_wrapper_with_key(ext.WrappersMP.DIFFUSION_MODEL, "benchmark_input_copy", _copy_input)

    def sample(self, model, case: fidelity.Case, steps: int, sampler: str) -> tuple[torch.Tensor, float, Probe]:
        """(latent samples, seconds, probe) of one KSampler run of ``fidelity.DIGITS_PER_RUN`` images."""
        self.probe = Probe()
        start = time.perf_counter()
        if family(self.arch) != "flux":
            out = fidelity.sample(model, case, steps, sampler)
        else:
            import digits_codec

            import nodes

            def cond(digit):
                return [[digits_codec.digit_context(digit), {"pooled_output": torch.zeros(1, 768)}]]

            latent = {"samples": torch.zeros(fidelity.DIGITS_PER_RUN, 16, 16, 16)}
            (result,) = nodes.NODE_CLASS_MAPPINGS["KSampler"]().sample(
                model, case.seed, steps, fidelity.CFG, sampler, "simple", cond(case.digit), cond(None), latent)
            out = result["samples"]
        seconds = time.perf_counter() - start
        return out, seconds, self.finish()

    def images(self, latent: torch.Tensor) -> torch.Tensor:
        """Decoded grey images ``[B, 1, 128, 128]`` in [0, 1] (the demo codec; Flux latents carried over)."""
        import comfy.latent_formats
        import digits_codec

        if family(self.arch) == "flux":
            latent = digits_codec.from_model_space(comfy.latent_formats.Flux().process_in(latent)[:, :, None])
        return digits_codec.decode(latent)[..., :1].permute(0, 3, 1, 2)

    def model_space(self, latent: torch.Tensor) -> torch.Tensor:
        return self.model.model.latent_format.process_in(latent)


def mse(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.mean((a.double() - b.double()) ** 2))


def psnr_of(error: float, peak: float = 1.0) -> float:
    """PSNR in dB of a mean squared error (inf when 0)."""
    return math.inf if error == 0 else 10.0 * math.log10(peak * peak / error)


def psnr(a: torch.Tensor, b: torch.Tensor, peak: float = 1.0) -> float:
    """PSNR in dB (inf when equal)."""
    return psnr_of(mse(a, b), peak)


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean SSIM of grey images ``[B, 1, H, W]`` in [0, 1] (Gaussian window 11, sigma 1.5; Wang et al. 2004)."""
    coords = torch.arange(11, dtype=torch.float64) - 5
    g = torch.exp(-coords**2 / (2 * 1.5**2))
    window = (g[:, None] * g[None, :] / g.sum() ** 2)[None, None]
    a, b = a.double(), b.double()

    def blur(x):
        return torch.nn.functional.conv2d(x, window)

    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b, cov = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2, blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    value = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(value.mean())


def max_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def profile_folder() -> Path:
    """Where TaylorSeer Apply keeps calibration profiles: ``<ComfyUI user directory>/taylor_forecast/profiles``."""
    import folder_paths

    return Path(folder_paths.get_user_directory(), *PROFILE_FOLDER)


@contextmanager
def own_profiles() -> Iterator[Path]:
    """ComfyUI's user directory set to a fresh temporary one for the block (its calibration profiles are this
    run's only), the old one restored after; yields the profile folder."""
    import folder_paths

    user = folder_paths.get_user_directory()
    with tempfile.TemporaryDirectory() as home:
        folder_paths.set_user_directory(home)
        try:
            yield profile_folder()
        finally:
            folder_paths.set_user_directory(user)


def profiles() -> dict[str, int]:
    """The calibration profiles in ComfyUI's user directory now: file name -> modification time (ns)."""
    folder = profile_folder()
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.json")} if folder.is_dir() else {}


def measure(h: Harness, config: Config, sampler: str, steps: int, seeds: int, timed: int,
            references: dict) -> dict:
    """One CSV row: every case once for fidelity; the first ``timed`` cases timed against a fresh reference run
    made right before (so both see the same machine load). A calibrated configuration first calibrates the case's
    prompt on another seed (untimed, unscored); its measured run must use that profile, not write one."""
    patched, config_steps = config.make(h.model), config.sampling_steps(steps)
    rss_before = max_rss_kib()
    rows, ref_s, cfg_s, full_calls, skipped_calls = [], [], [], [], []
    for index, case in enumerate(fidelity.cases(seeds)):
        if config.method == "calibrated":
            h.sample(patched, fidelity.Case(case.seed + CALIBRATION_SEED_OFFSET, case.digit), steps, sampler)
            written = profiles()
        if index < timed:
            ref_s.append(h.sample(h.model, case, steps, sampler)[1])
        out, seconds, probe = h.sample(patched, case, config_steps, sampler)
        if config.method == "calibrated" and (not written or profiles() != written):
            raise RuntimeError(f"{config.label}: seed {case.seed} did not run on its prompt's profile")
        if index < timed:
            cfg_s.append(seconds)
        full_calls += probe.full_call_s
        skipped_calls += probe.skipped_call_s
        ref = references[case]
        peak = float(h.model_space(ref).abs().max()) * 2
        rows.append((probe.full, mse(h.images(out), h.images(ref)),
                     mse(h.model_space(out), h.model_space(ref)) / peak**2, ssim(h.images(out), h.images(ref)),
                     probe.cache_bytes))
    fulls, errors, latent_errors, ssims, caches = zip(*rows)
    evaluations = references["evaluations"]
    overhead = (statistics.median(skipped_calls) / statistics.median(full_calls)
                if skipped_calls and full_calls else None)
    return {
        "arch": h.arch, "sampler": sampler, "steps": steps, "method": config.method, "level": config.level,
        "forecaster": config.forecaster, "interval": config.interval, "target_speedup": config.target_speedup,
        "warmup": config.warmup, "max_order": config.max_order, "threshold": config.threshold,
        "label": config.label, "full_mean": statistics.mean(fulls),
        "compute_ratio": evaluations / statistics.mean(fulls),
        "speedup_median": statistics.median(ref_s) / statistics.median(cfg_s) if timed else None,
        "seconds_ref_median": statistics.median(ref_s) if timed else None,
        "seconds_median": statistics.median(cfg_s) if timed else None,
        "psnr_db": psnr_of(statistics.mean(errors)), "psnr_min_db": psnr_of(max(errors)),
        "latent_psnr_db": psnr_of(statistics.mean(latent_errors)), "ssim": statistics.mean(ssims),
        "cache_bytes": max(caches) if config.method != "none" else 0,
        "peak_rss_growth_kib": max_rss_kib() - rss_before, "forecast_overhead": overhead,
        "seeds": seeds, "timed_pairs": timed,
    }


def run_setting(h: Harness, sampler: str, steps: int, configs: list[Config], seeds: int, timed: int,
                progress: Callable) -> list[dict]:
    """Every configuration on one (model, sampler): references first, then the sweep."""
    references: dict = {}
    for case in fidelity.cases(seeds):
        out, _seconds, probe = h.sample(h.model, case, steps, sampler)
        references[case] = out
        references["evaluations"] = probe.full
    rows = []
    for config in progress(configs, desc=f"{h.arch} {sampler} {steps} steps", unit="config"):
        rows.append(measure(h, config, sampler, steps, seeds, timed, references))
    return rows


def floats(text: str) -> list[float]:
    """A comma-separated command-line list of numbers."""
    return [float(v) for v in text.split(",") if v]


def ints(text: str) -> list[int]:
    """A comma-separated command-line list of integers."""
    return [int(v) for v in text.split(",") if v]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--archs", default="wan,flux")
    parser.add_argument("--samplers", default="euler,dpmpp_2m", help=f"of {sorted(SETTINGS)}")
    parser.add_argument("--steps", type=int, help="override every sampler's step count")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--timed", type=int, default=3, help="timed (reference, configuration) pairs")
    parser.add_argument("--pack", default=PACK_GRID, help="the pack's settings: level/forecaster:order items")
    parser.add_argument("--plans", default=PLANS, help="intervals (6) and speed-up budgets (x3.75) every pack "
                        "setting and every reference runs on")
    parser.add_argument("--references", default="foca,hicache,spectrum," + ",".join(CACHEDIT),
                        help="published forecasters (demo/ref_*.py; cache-dit's calibrators, demo/ref_cachedit.py, "
                        "skipped when cache-dit is not installed), at the output level")
    parser.add_argument("--gate", default="0.02,0.05,0.1,0.2,0.4", help="CG-Taylor thresholds")
    parser.add_argument("--gate-budgets", default="2,2.5,3,3.75,4.3,5,6",
                        help="CG-Taylor target_speedup budgets, at each --gate-budget-thresholds")
    parser.add_argument("--gate-budget-thresholds", default="0.05,0.2")
    parser.add_argument("--warmup-pack", default="output/newton:1,output/foca:1",
                        help="pack settings also run with each --warmups on the budget plans")
    parser.add_argument("--warmups", default="2,3")
    parser.add_argument("--warmup", type=int, default=WARMUP, help="the warm-up on interval plans (and of the "
                        "gate's thresholds, Spectrum's own windows and the peers)")
    parser.add_argument("--budget-warmup", type=int, default=benchmark_report.BUDGET_WARMUP,
                        help="the warm-up on budget plans (the nodes' auto warm-up under a budget)")
    parser.add_argument("--calibrated", choices=("on", "off"), default="on",
                        help="TaylorSeer Apply with calibration = auto on every budget of --plans")
    parser.add_argument("--peers", default="0.02,0.05,0.1,0.2,0.35,0.6,1.0", help="EasyCache/LazyCache thresholds")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is; 1 is steadier on a "
                        "shared machine)")
    parser.add_argument("--out", type=Path, default=comfy_env.REPO / "docs")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="keep the caches' per-run log lines")
    parser.add_argument("--evidence-cost", action="store_true", help="only time the adaptive controller's "
                        "evidence per full step against a full model call, per --archs (a Markdown table)")
    parser.add_argument("--from-csv", type=Path, help="only rewrite benchmarks.md / pareto.png from this CSV (the "
                        "other arguments as in the run that wrote it, for the text)")
    parser.add_argument("--run-minutes", type=float, default=0.0, help="with --from-csv: the run's time, for the text")
    parser.add_argument("--note", action="append", default=[], help="with --from-csv: a paragraph for the text "
                        "(e.g. how the CSV was put together from several runs)")
    return parser.parse_args(argv)


def notes(args: argparse.Namespace) -> tuple[str, ...]:
    """The grid, in words, for ``benchmarks.md``."""
    return (f"Pack settings (level/forecaster:order) {args.pack} on plans {args.plans} (N = interval, x = "
            f"target_speedup budget); warm-up {args.warmup} on intervals, {args.budget_warmup} on budgets (the nodes' "
            f"auto warm-up there), tail {TAIL}, clock step. References (their own code, "
            f"`demo/ref_*.py`, output level, on the same plans; Spectrum also on its own growing windows "
            f"{SPECTRUM_OWN}): {args.references or 'none'}. CG-Taylor thresholds {args.gate or 'none'} (max_order 1, "
            f"first_block_order 2, no cap); with budgets {args.gate_budgets or 'none'} at thresholds "
            f"{args.gate_budget_thresholds}. Warm-up variants: {args.warmup_pack or 'none'} with warmup "
            f"{args.warmups or 'none'} on the budget plans. Calibrated ({args.calibrated}): TaylorSeer Apply with "
            f"only target_speedup and calibration = auto set, on every budget of the plans, each prompt (digit) "
            f"calibrated on seed + {CALIBRATION_SEED_OFFSET} (the same digit) before the measured run, which uses "
            f"that profile. Equal-call baseline (`equal calls xB`): the uncached model "
            f"sampled with round(steps / B) steps, same sampler, scheduler and seeds, at every budget B of the plans. "
            f"EasyCache / LazyCache reuse_threshold {args.peers or 'none'} (start 0.15, end 0.95: the nodes' "
            "defaults).", *("\n" + note for note in args.note))


def usable_references(names: list[str]) -> list[str]:
    """``names`` without cache-dit's calibrators when cache-dit does not import (one message saying so)."""
    wanted = [n for n in names if n in CACHEDIT]
    why = ref_cachedit.available() if wanted else ""
    if why:
        print(f"benchmark: cache-dit is not importable ({why}); skipping the references {', '.join(wanted)} "
              "(install: demo/requirements-bench.txt, docs/benchmarks.md)", file=sys.stderr)
        return [n for n in names if n not in CACHEDIT]
    return names


def sweep(args: argparse.Namespace) -> list[dict]:
    """Every (arch, sampler) setting's rows; the CSV is rewritten after each setting."""
    import comfy.utils
    from tqdm import tqdm

    references = usable_references([r for r in args.references.split(",") if r])
    gate_budgets = [(t, x) for t in floats(args.gate_budget_thresholds) for x in floats(args.gate_budgets)]
    configs = grid(pack_settings(args.pack), plans(args.plans), references, floats(args.gate), gate_budgets,
                   floats(args.peers), pack_settings(args.warmup_pack), ints(args.warmups), args.warmup,
                   args.budget_warmup, args.calibrated == "on")
    rows: list[dict] = []
    bars = comfy.utils.PROGRESS_BAR_ENABLED
    comfy.utils.set_progress_bar_enabled(False)  # ComfyUI's per-sampling bars; ours stay
    root_level = logging.getLogger().level
    if not args.verbose:
        logging.getLogger().setLevel(logging.WARNING)  # one report line per run from every cache otherwise
    try:
        with own_profiles():  # the calibrated configurations' profiles: this run's only
            for arch in args.archs.split(","):
                h = Harness(arch)
                try:
                    for sampler in args.samplers.split(","):
                        rows += run_setting(h, sampler, args.steps or SETTINGS[sampler], configs, args.seeds,
                                            args.timed, tqdm)
                        args.out.mkdir(parents=True, exist_ok=True)
                        # after every setting: partial results survive
                        benchmark_report.write_csv(rows, args.out / "benchmarks.csv", COLUMNS)
                finally:
                    h.close()
    finally:
        comfy.utils.set_progress_bar_enabled(bars)
        logging.getLogger().setLevel(root_level)
    return rows


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    given = list(argv if argv is not None else sys.argv[1:])
    for option in ("--from-csv", "--run-minutes", "--note"):  # the command of the run itself
        while option in given:
            i = given.index(option)
            given[i:i + 2] = []
    command = "python demo/benchmark.py " + " ".join(given)
    machine = f"{platform.machine()}, {os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f} at the end"
    if args.evidence_cost:
        comfy_env.boot()
        if args.threads:
            torch.set_num_threads(args.threads)
        print("| model | output shape | full call (ms) | evidence per full step (ms) | share |\n|---|---|---|---|---|")
        print("\n".join(benchmark_evidence.evidence_cost(Harness, args.archs.split(","),
                                                          SETTINGS["euler"])))
        return
    if args.from_csv:
        rows, seconds = benchmark_report.read_csv(args.from_csv), args.run_minutes * 60
    else:
        comfy_env.boot()
        if args.threads:
            torch.set_num_threads(args.threads)
        started = time.time()
        rows = sweep(args)
        seconds = time.time() - started
    benchmark_report.write(rows, args.out, command, machine, seconds, args.threads, plot_png=not args.no_plot,
                           notes=notes(args))


if __name__ == "__main__":
    main()
