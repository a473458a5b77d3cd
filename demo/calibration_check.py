"""Calibration on held-out seeds: TaylorSeer Apply's ``calibration`` calibrated on one seed, measured on others.

For each budget: a calibration run (``recalibrate``) on the first seed writes a profile to a temporary ComfyUI user
directory; then, on each held-out seed, the default (newton order 1 on the budget plan, growth 0.5, warm-up 1) and
the calibrated run (``auto``: the profile's predictor and plan) are scored against the uncached run of that seed:
PSNR in dB of the decoded images (``benchmark.measure``'s measure: the mean squared error over the seeds).
Prints a Markdown table (docs/adaptive.md, "Calibration").

Usage (host Python)::

    nice -n 10 .host/venv/bin/python demo/calibration_check.py --arch wan --sampler euler --steps 30 \\
        --budgets 2,3,5 --calibrate-seed 0 --seeds 1,2,3 --threads 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import comfy_env
import fidelity
import torch
from benchmark import Harness, floats, ints, mse, psnr_of


def apply(model, speedup: float, calibration: str = "off"):
    return comfy_env.run_node("TaylorSeerApply", model, target_speedup=speedup, level="output",
                              calibration=calibration)[0]


def budget_row(h: Harness, args: argparse.Namespace, speedup: float, references: dict, profiles: Path) -> str:
    """One table row: the budget, the chosen candidate, and the default's and calibrated PSNR over the seeds."""
    calibrating = fidelity.Case(args.calibrate_seed, args.calibrate_seed % 10)
    h.sample(apply(h.model, speedup, "recalibrate"), calibrating, args.steps, args.sampler)
    newest = max(profiles.glob("*.json"), key=lambda p: p.stat().st_mtime)
    profile = json.loads(newest.read_text())
    errors: dict[str, list[float]] = {"default": [], "calibrated": []}
    for seed in args.seeds:
        case = fidelity.Case(seed, seed % 10)
        for name, model in (("default", apply(h.model, speedup)), ("calibrated", apply(h.model, speedup, "auto"))):
            out = h.sample(model, case, args.steps, args.sampler)[0]
            errors[name].append(mse(h.images(out), h.images(references[seed])))
    default, calibrated = (psnr_of(statistics.mean(errors[k])) for k in ("default", "calibrated"))
    best = profile["scores"][profile["chosen"]]
    return (f"| x{speedup:g} | {len(profile['full_steps'])} | {profile['chosen']} ({best:.2f}) | {default:.2f} | "
            f"{calibrated:.2f} | {calibrated - default:+.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="wan")
    parser.add_argument("--sampler", default="euler")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--budgets", type=floats, default=[2.0, 3.0, 5.0])
    parser.add_argument("--calibrate-seed", type=int, default=0)
    parser.add_argument("--seeds", type=ints, default=[1, 2, 3])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    comfy_env.boot()
    torch.set_num_threads(args.threads)
    import folder_paths

    h = Harness(args.arch)
    references = {seed: h.sample(h.model, fidelity.Case(seed, seed % 10), args.steps, args.sampler)[0]
                  for seed in args.seeds}
    with tempfile.TemporaryDirectory() as user:
        folder_paths.set_user_directory(user)
        print(f"{args.arch} {args.sampler} {args.steps} steps; calibrated on seed {args.calibrate_seed}, PSNR (dB) "
              f"over seeds {args.seeds}\n")
        print("| budget | full steps | chosen on the calibration seed (its dB there) | default | calibrated | "
              "difference |\n|---|---|---|---|---|---|")
        for speedup in args.budgets:
            print(budget_row(h, args, speedup, references, Path(user) / "taylor_forecast" / "profiles"), flush=True)


if __name__ == "__main__":
    main()
