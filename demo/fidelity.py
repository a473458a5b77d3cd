"""Fidelity sweeps on the trained demo model, in one process: TaylorSeer (level x interval x order) and the
CG-Taylor Gate (threshold sweep, and thresholds matched to fixed intervals' full-compute counts), each
against the uncached output of the same seed. The tests on the demo model use the same functions.

``python demo/fidelity.py [--seeds 8] [--steps 30] [--sampler euler] [--levels residual,output,modules]
[--skip-gate] [--out docs/fidelity.md]``

Units: PSNR in dB of the decoded 128x128 images (peak 1.0); "full" = full computes per run, counted as real
calls of the model's last block (forward hook), never read from the pack's own statistics.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import comfy_env  # noqa: E402
from demo_model import ensure_trained  # noqa: E402

CFG = 4.0
DIGITS_PER_RUN = 2


@dataclass(frozen=True)
class Case:
    """One sampling run: ``seed`` for the noise, the digit drawn (the batch repeats it)."""

    seed: int
    digit: int


def cases(seeds: int) -> list[Case]:
    return [Case(seed, seed % 10) for seed in range(seeds)]


def load_demo_model():
    """The demo model through ComfyUI's stock loader (trained first if missing)."""
    import comfy.sd

    return comfy.sd.load_diffusion_model(str(ensure_trained(comfy_env.comfy_root())))


def _conditioning(digit: int | None) -> list:
    import digits_codec

    return [[digits_codec.digit_context(digit), {}]]


def sample(model, case: Case, steps: int, sampler: str = "euler", scheduler: str = "simple") -> torch.Tensor:
    """One KSampler run (the real node) of ``DIGITS_PER_RUN`` images; returns the LATENT samples."""
    import nodes

    latent = {"samples": torch.zeros(DIGITS_PER_RUN, 16, 1, 16, 16)}
    (out,) = nodes.NODE_CLASS_MAPPINGS["KSampler"]().sample(
        model, case.seed, steps, CFG, sampler, scheduler, _conditioning(case.digit), _conditioning(None), latent)
    return out["samples"]


def psnr(latent_a: torch.Tensor, latent_b: torch.Tensor) -> float:
    """PSNR (dB, peak 1) between the decoded images of two latents."""
    import digits_codec

    mse = float(torch.mean((digits_codec.decode(latent_a) - digits_codec.decode(latent_b)) ** 2))
    return float("inf") if mse == 0 else 10.0 * torch.log10(torch.tensor(1.0 / mse)).item()


@dataclass(frozen=True)
class Result:
    psnr: float  # mean over cases, dB
    full: float  # mean full computes per run
    evaluations: float  # mean model calls per run
    seconds: float  # mean wall time per run

    @property
    def ratio(self) -> float:
        return self.evaluations / self.full


class Bench:
    """The demo model, its uncached references and call counters, for one steps/sampler setting.

    ``model`` is a clone carrying an outermost APPLY_MODEL wrapper that counts model calls; build the patched
    models from it so every call is counted. Full computes are real calls of the last block.
    """

    def __init__(self, model, seeds: int, steps: int, sampler: str = "euler") -> None:
        import comfy.patcher_extension as ext

        self.calls = 0
        self.model = model.clone()
        self.model.add_wrapper_with_key(ext.WrappersMP.APPLY_MODEL, "fidelity_count", self._count)
        self.steps, self.sampler = steps, sampler
        self.cases = cases(seeds)
        self.references = {case: sample(model, case, steps, sampler) for case in self.cases}

    def _count(self, executor, *args, **kwargs):
        self.calls += 1
        return executor(*args, **kwargs)

    def run(self, patched, case: Case) -> tuple[float, int, int, float]:
        """(PSNR, full computes, model calls, seconds) of one patched run against its reference."""
        full = [0]
        hook = self.model.model.diffusion_model.blocks[-1].register_forward_hook(
            lambda *_: full.__setitem__(0, full[0] + 1))
        calls_before = self.calls
        try:
            start = time.perf_counter()
            out = sample(patched, case, self.steps, self.sampler)
            seconds = time.perf_counter() - start
        finally:
            hook.remove()
        return psnr(out, self.references[case]), full[0], self.calls - calls_before, seconds

    def evaluate(self, patched) -> Result:
        rows = [self.run(patched, case) for case in self.cases]
        return Result(*(statistics.mean(column) for column in zip(*rows)))


def taylorseer(model, interval: int, max_order: int, level: str = "residual", warmup: int = 3, tail: int = 1,
               clock: str = "step", **optional):
    """TaylorSeer Apply on ``model``; ``optional``: its optional inputs by name (forecaster, target_speedup...)."""
    optional = {"target_speedup": 0.0} | optional  # an interval unless a budget is given
    return comfy_env.run_node("TaylorSeerApply", model, interval=interval, max_order=max_order, warmup_steps=warmup,
                              tail_steps=tail, level=level, clock=clock, **optional)[0]


def budget_only(model, speedup: float, calibration: str = "off"):
    """TaylorSeer Apply with only ``target_speedup`` and ``calibration`` set, as a user would: every other input the
    node's own."""
    return comfy_env.run_node("TaylorSeerApply", model, target_speedup=speedup, calibration=calibration)[0]


def cg_gate(model, threshold: float, max_consecutive: int = 0, max_order: int = 1, first_block_order: int = 2,
            warmup: int = 3, tail: int = 1, clock: str = "step", error_budget: str = "accumulated", **optional):
    """CG-Taylor Gate on ``model``; ``optional``: its other optional inputs by name."""
    return comfy_env.run_node("CGTaylorGate", model, threshold, max_order, first_block_order, warmup, tail, 0.0,
                              1.0, max_consecutive, clock, "auto", error_budget=error_budget, **optional)[0]


def match_threshold(bench: Bench, case: Case, target_full: int, make: Callable[[float], object],
                    low: float = 0.0, high: float = 2.0, iterations: int = 10) -> tuple[float, float, int]:
    """Bisect the gate threshold for one case until its run makes ``target_full`` full computes (fewer
    computes as the threshold rises). Returns (threshold, PSNR, full) of the closest run found with at least
    the target's computes, so the gate never gets more compute than the fixed interval it is compared to."""
    best = None
    for _ in range(iterations):
        middle = (low + high) / 2
        value, full, _evaluations, _seconds = bench.run(make(middle), case)
        if full >= target_full and (best is None or full < best[2] or (full == best[2] and value > best[1])):
            best = (middle, value, full)
        if full == target_full:
            break
        low, high = (middle, high) if full > target_full else (low, middle)
    return best if best is not None else (0.0, float("inf"), bench.steps)


def order_table(bench: Bench, level: str, intervals: list[int], orders: list[int]) -> str:
    lines = [f"| interval | compute ratio | {' | '.join(f'order {o} PSNR' for o in orders)} |",
             "|---" * (len(orders) + 2) + "|"]
    for interval in intervals:
        results = [bench.evaluate(taylorseer(bench.model, interval, order, level)) for order in orders]
        lines.append(f"| {interval} | {results[0].ratio:.2f}x | "
                     + " | ".join(f"{r.psnr:.2f}" for r in results) + " |")
    return "\n".join(lines)


def gate_sweep_table(bench: Bench, thresholds: list[float], max_consecutive: int) -> str:
    lines = ["| threshold | full computes | compute ratio | PSNR dB |", "|---|---|---|---|"]
    for threshold in thresholds:
        r = bench.evaluate(cg_gate(bench.model, threshold, max_consecutive))
        lines.append(f"| {threshold:g} | {r.full:.2f} | {r.ratio:.2f}x | {r.psnr:.2f} |")
    return "\n".join(lines)


@dataclass(frozen=True)
class Matched:
    """The gate at thresholds bisected per case to a number of full computes: means over cases."""

    psnr: float
    full: float
    thresholds: tuple[float, float]  # smallest and largest threshold found


def matched_gate(bench: Bench, target_full: int, max_order: int, error_budget: str) -> Matched:
    matched = [match_threshold(bench, case, target_full,
                               lambda t: cg_gate(bench.model, t, 0, max_order, error_budget=error_budget))
               for case in bench.cases]
    thresholds, values, fulls = zip(*matched)
    return Matched(statistics.mean(values), statistics.mean(fulls), (min(thresholds), max(thresholds)))


def matched_table(bench: Bench, intervals: list[int], max_order: int) -> str:
    """Per fixed interval: TaylorSeer's PSNR, and the gate's (both error budgets) at thresholds bisected per
    case to the same number of full computes."""
    lines = ["| interval | full computes | TaylorSeer residual PSNR | TaylorSeer output PSNR | "
             "gate accumulated PSNR (thresholds) | gate per_step PSNR (thresholds) |", "|---|---|---|---|---|---|"]
    for interval in intervals:
        fixed = bench.evaluate(taylorseer(bench.model, interval, max_order))
        output = bench.evaluate(taylorseer(bench.model, interval, max_order, "output"))
        cells = []
        for budget in ("accumulated", "per_step"):
            gate = matched_gate(bench, round(fixed.full), max_order, budget)
            low, high = gate.thresholds
            cells.append(f"{gate.psnr:.2f} ({low:.3g}-{high:.3g}){'' if gate.full == fixed.full else ' *'}")
        lines.append(f"| {interval} | {fixed.full:.0f} | {fixed.psnr:.2f} | {output.psnr:.2f} | {' | '.join(cells)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--sampler", default="euler")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--levels", default="residual,output", help="comma-separated TaylorSeer levels to sweep")
    parser.add_argument("--skip-gate", action="store_true", help="only the TaylorSeer tables")
    args = parser.parse_args()
    comfy_env.boot()
    bench = Bench(load_demo_model(), args.seeds, args.steps, args.sampler)
    sections = [f"Demo model, {args.steps} steps {args.sampler}, cfg {CFG}, {args.seeds} seeds x "
                f"{DIGITS_PER_RUN} images; PSNR of decoded images against the uncached run (mean over seeds)."]
    for level in args.levels.split(","):
        sections.append(f"TaylorSeer, level {level}, warmup 3, tail 1:\n\n"
                        + order_table(bench, level, [2, 3, 4, 5, 6], [0, 1, 2]))
    if not args.skip_gate:
        sections.append("CG-Taylor Gate sweep (max_order 1, first_block_order 2, warmup 3, tail 1, no cap, "
                        "error budget accumulated):\n\n"
                        + gate_sweep_table(bench, [0.0, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0], 0))
        sections.append("Matched compute (order 1): gate thresholds bisected per seed to the fixed interval's full "
                        "computes (* = a case could not be matched exactly and got more computes):\n\n"
                        + matched_table(bench, [3, 4, 5, 6], 1))
    text = "\n\n".join(sections) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
