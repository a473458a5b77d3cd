"""Calibration on held-out seeds: TaylorSeer Apply's ``calibration`` calibrated on one seed of a prompt, measured on
other seeds of the same prompt (a profile is keyed by the conditioning: another prompt calibrates anew).

``collect``: for each budget and each digit (the demo's prompt), a calibration run (``recalibrate``) on the
calibration seed writes a profile to a temporary ComfyUI user directory; its every candidate (the profile's
``plans``: the fixed ones and the fitted one) is then sampled with ``auto`` (the profile rewritten to that
candidate) on each held-out seed of the digit and scored against the uncached run of that seed (squared error of
the decoded images). One JSON line per budget and digit: the calibration's own scores (dB on its noise and on the
held-out one) and each candidate's errors on the held-out seeds.

``report``: reads those lines and prints the default picked leave-one-model-out among the fixed candidates (per
model, each one's mean regret: dB below the cell's best fixed candidate; per model left out, the one of least mean
regret on the others, reported there); then, per margin of ``MARGINS`` and model, the worst and the mean gain over the
default (one gain per budget and digit); then picks ``taylor_core.calibration.choose``'s margin (dB) by
leave-one-model-out: for each model, the margin with the best mean gain on the other models among those whose
worst gain there is above ``-LOSS_TOLERANCE_DB``, and that margin's result on the model left out; then, per model,
sampler and budget, the default, the fitted plan alone (the default where a calibration had no new one), the
calibrated run at the pack's ``CHOICE_MARGIN_DB``, and the best fixed candidate over the cell's digits, picked in
hindsight (PSNR of the mean squared error over every digit and seed). ``--drop`` reads the records as if the
candidates named had not been tried.
Prints Markdown (docs/adaptive.md, "Calibration").

``cost``: per budget, the wall time of a calibration run, of the default run and of a run on the profile, each as
a multiple of the uncached run timed in the same repeat (medians of the repeats).

Usage (host Python)::

    nice -n 10 .host/venv/bin/python demo/calibration_check.py collect --arch wan --sampler euler --steps 30 \\
        --budgets 2,3,5 --digits 0,1,2 --calibrate-seed 0 --seeds 1,2,3 --threads 1 >> records.jsonl
    .host/venv/bin/python demo/calibration_check.py report records.jsonl
    .host/venv/bin/python demo/calibration_check.py cost --arch flux --budgets 2,3,5 --repeats 5 --threads 2
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from collections.abc import Callable
from pathlib import Path

from benchmark import floats, ints, own_profiles, psnr_of  # puts the repository (taylor_core) on the path
from fidelity import budget_only

from taylor_core.calibration import CHOICE_MARGIN_DB, DEFAULT_CANDIDATE, FITTED_CANDIDATE, choose

MARGINS = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0)
"""The margins (dB) ``report`` picks from."""

LOSS_TOLERANCE_DB = 0.3
"""The largest loss (dB) against the default, on any budget and prompt, that a margin may show to be picked."""


def collect_digit(h, args: argparse.Namespace, speedup: float, digit: int, references: dict, profiles: Path) -> dict:
    """One record: the calibration of ``digit`` on the calibration seed, every candidate on the held-out seeds."""
    import fidelity
    from benchmark import mse

    h.sample(budget_only(h.model, speedup, "recalibrate"), fidelity.Case(args.calibrate_seed, digit), args.steps,
             args.sampler)
    path = max(profiles.glob("*.json"), key=lambda p: p.stat().st_mtime)
    written = len(list(profiles.glob("*.json")))
    profile = json.loads(path.read_text())
    errors = {}
    for name, plan in profile["plans"].items():
        forecaster, order = re.fullmatch(r"([a-z]+)(\d+)/\w+", name).groups()  # candidate names: newton1/even
        path.write_text(json.dumps({**profile, "chosen": name, "forecaster": forecaster,
                                    "max_order": int(order), "full_steps": plan}))
        errors[name] = [
            mse(h.images(h.sample(budget_only(h.model, speedup, "auto"), case, args.steps, args.sampler)[0]),
                h.images(references[case])) for case in (fidelity.Case(seed, digit) for seed in args.seeds)]
    if len(list(profiles.glob("*.json"))) != written:
        raise RuntimeError(f"a held-out seed of digit {digit} calibrated anew instead of using the profile")
    return {"arch": args.arch, "sampler": args.sampler, "steps": args.steps, "budget": speedup, "digit": digit,
            "scores": profile["scores"], "held_out": profile["held_out"], "errors": errors}


def collect(args: argparse.Namespace) -> None:
    """Print one JSON line per budget and digit (``collect_digit``)."""
    import comfy_env
    import fidelity
    import torch
    from benchmark import Harness

    comfy_env.boot()
    torch.set_num_threads(args.threads)
    h = Harness(args.arch)
    references = {case: h.sample(h.model, case, args.steps, args.sampler)[0]
                  for case in (fidelity.Case(seed, digit) for digit in args.digits for seed in args.seeds)}
    with own_profiles() as profiles:
        for speedup in args.budgets:
            for digit in args.digits:
                record = collect_digit(h, args, speedup, digit, references, profiles)
                print(json.dumps(record), flush=True)


def gain(record: dict, margin: float) -> float:
    """dB of the candidate ``choose`` keeps at ``margin`` over the default, on the record's held-out seeds."""
    kept = choose(record["scores"], record["held_out"], margin)
    return psnr_of(statistics.mean(record["errors"][kept])) - psnr_of(
        statistics.mean(record["errors"][DEFAULT_CANDIDATE]))


def best_margin(records: list[dict]) -> float:
    """The margin of ``MARGINS`` with the best mean gain over ``records`` among those whose worst gain is above
    ``-LOSS_TOLERANCE_DB``; the largest margin where none is."""
    safe = [m for m in MARGINS if min(gain(r, m) for r in records) > -LOSS_TOLERANCE_DB] or [max(MARGINS)]
    return max(safe, key=lambda m: statistics.mean(gain(r, m) for r in records))


def pooled(records: list[dict], pick: Callable[[dict], str]) -> float:
    """PSNR (dB) of the mean squared error of each record's candidate ``pick(record)`` over all its seeds."""
    return psnr_of(statistics.mean(e for r in records for e in r["errors"][pick(r)]))


def cells_of(records: list[dict]) -> dict[tuple, list[dict]]:
    """The records by cell: (model, sampler, steps, budget)."""
    cells: dict[tuple, list[dict]] = {}
    for r in records:
        cells.setdefault((r["arch"], r["sampler"], r["steps"], r["budget"]), []).append(r)
    return cells


def fixed_table(cells: dict[tuple, list[dict]]) -> dict[tuple, dict[str, float]]:
    """Per cell: every fixed candidate's PSNR (``pooled`` over the cell's records); only candidates every record
    holds."""
    names = set.intersection(*(set(r["errors"]) for rs in cells.values() for r in rs)) - {FITTED_CANDIDATE}
    return {cell: {name: pooled(rs, lambda r, name=name: name) for name in sorted(names)}
            for cell, rs in cells.items()}


def default_report(table: dict[tuple, dict[str, float]], models: list[str]) -> None:
    """The default by leave-one-model-out over ``fixed_table``'s cells: per fixed candidate and model, its mean
    regret (dB below the cell's best fixed candidate) and the cells within 1 dB of that best; then, per model left
    out, the candidate with the least mean regret over the other models' cells and how it does on the one left
    out."""
    names = list(next(iter(table.values())))

    def regret(name: str, cells: list[tuple]) -> float:
        return statistics.mean(max(table[c].values()) - table[c][name] for c in cells)

    def within(name: str, cells: list[tuple]) -> int:
        return sum(max(table[c].values()) - table[c][name] <= 1.0 for c in cells)

    of = {m: [c for c in table if c[0] == m] for m in models}
    print("\n| fixed candidate as the default | " + " | ".join(f"{m}: mean regret (dB), cells within 1 dB"
                                                          for m in models) + " |\n" + "|---" * (len(models) + 1) + "|")
    for name in names:
        print(f"| {name} | " + " | ".join(f"{regret(name, of[m]):.2f}, {within(name, of[m])} of {len(of[m])}"
                                        for m in models) + " |")
    print("\n| held-out model | picked on the others (their mean regret) | its mean regret there | within 1 dB there |"
          "\n|---|---|---|---|")
    for model in models:
        others = [c for m in models if m != model for c in of[m]]
        pick = min(names, key=lambda name: regret(name, others))
        print(f"| {model} | {pick} ({regret(pick, others):.2f}) | {regret(pick, of[model]):.2f} | "
              f"{within(pick, of[model])} of {len(of[model])} |")


def without(record: dict, names: set[str]) -> dict:
    """``record`` as if its calibration had not tried the candidates ``names``."""
    return {**record, **{part: {n: v for n, v in record[part].items() if n not in names}
                         for part in ("scores", "held_out", "errors")}}


def report(args: argparse.Namespace) -> None:
    records = [without(json.loads(line), set(args.drop))
               for path in args.records for line in Path(path).read_text().splitlines() if line]
    models = sorted({r["arch"] for r in records})
    cells = cells_of(records)
    table = fixed_table(cells)
    default_report(table, models)
    print("\n| margin (dB) | " + " | ".join(f"{m}: worst, mean gain (dB)" for m in models) + " |\n"
          + "|---" * (len(models) + 1) + "|")
    for margin in MARGINS:
        gains = [[gain(r, margin) for r in records if r["arch"] == m] for m in models]
        print(f"| {margin:g} | " + " | ".join(f"{min(g):+.2f}, {statistics.mean(g):+.2f}" for g in gains) + " |")
    print("\n| held-out model | margin picked on the others | worst cell there (dB) | mean gain there (dB) |\n"
          "|---|---|---|---|")
    for model in models:
        margin = best_margin([r for r in records if r["arch"] != model])
        gains = [gain(r, margin) for r in records if r["arch"] == model]
        print(f"| {model} | {margin:g} | {min(gains):+.2f} | {statistics.mean(gains):+.2f} |")
    print(f"\nAt the pack's margin ({CHOICE_MARGIN_DB:g} dB):\n\n| model | sampler, steps | budget | chosen per "
          "digit | default | fitted plan alone | calibrated | difference | best fixed candidate | calibrated - best |\n"
          "|---|---|---|---|---|---|---|---|---|---|")
    differences = []
    for key, fixed in sorted(table.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][3])):
        arch, sampler, steps, budget = key
        cell = cells[key]
        default = pooled(cell, lambda r: DEFAULT_CANDIDATE)
        calibrated = pooled(cell, lambda r: choose(r["scores"], r["held_out"], CHOICE_MARGIN_DB))
        chosen = ", ".join(choose(r["scores"], r["held_out"], CHOICE_MARGIN_DB) for r in cell)
        fitted = pooled(cell, lambda r: FITTED_CANDIDATE if FITTED_CANDIDATE in r["errors"] else DEFAULT_CANDIDATE)
        best = max(fixed, key=fixed.__getitem__)
        differences.append((calibrated - default, calibrated - fixed[best]))
        print(f"| {arch} | {sampler} {steps} | x{budget:g} | {chosen} | {default:.2f} | {fitted:.2f} | "
              f"{calibrated:.2f} | {calibrated - default:+.2f} | {best} ({fixed[best]:.2f}) | "
              f"{calibrated - fixed[best]:+.2f} |")
    over_default = [d for d, _ in differences]
    print(f"\nOver these {len(differences)} cells calibrated is above the default in "
          f"{sum(d > 0.005 for d in over_default)} (mean over all cells {statistics.mean(over_default):+.2f} dB, "
          f"least {min(over_default):+.2f}), at or above the best fixed candidate in "
          f"{sum(b >= -0.005 for _, b in differences)} and within 1 dB of it in "
          f"{sum(b >= -1 for _, b in differences)}.")


def cost(args: argparse.Namespace) -> None:
    """Print, per budget, the median wall time of an uncached run and the calibration's, default and calibrated
    runs' medians as multiples of it (each repeat times all four back to back, on the calibration seed and digit)."""
    import comfy_env
    import fidelity
    import torch
    from benchmark import Harness

    comfy_env.boot()
    torch.set_num_threads(args.threads)
    h = Harness(args.arch)
    case = fidelity.Case(args.calibrate_seed, args.calibrate_seed % 10)
    print(f"{args.arch} {args.sampler} {args.steps} steps, {args.repeats} repeats, {args.threads} threads\n\n"
          "| budget | uncached (s) | calibration run | default run | calibrated run |\n|---|---|---|---|---|")
    with own_profiles():
        for speedup in args.budgets:
            runs = {"uncached": h.model, "calibration": budget_only(h.model, speedup, "recalibrate"),
                    "default": budget_only(h.model, speedup), "calibrated": budget_only(h.model, speedup, "auto")}
            h.sample(h.model, case, args.steps, args.sampler)  # warm-up
            seconds: dict[str, list[float]] = {name: [] for name in runs}
            for _ in range(args.repeats):
                for name, model in runs.items():
                    seconds[name].append(h.sample(model, case, args.steps, args.sampler)[1])
            base = statistics.median(seconds["uncached"])
            ratios = [statistics.median(b / a for a, b in zip(seconds["uncached"], seconds[name]))
                      for name in ("calibration", "default", "calibrated")]
            print(f"| x{speedup:g} | {base:.3f} | " + " | ".join(f"{r:.2f}x" for r in ratios) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("collect")
    run.add_argument("--arch", default="wan")
    run.add_argument("--sampler", default="euler")
    run.add_argument("--steps", type=int, default=30)
    run.add_argument("--budgets", type=floats, default=[2.0, 3.0, 5.0])
    run.add_argument("--digits", type=ints, default=[0, 1, 2])
    run.add_argument("--calibrate-seed", type=int, default=0)
    run.add_argument("--seeds", type=ints, default=[1, 2, 3])
    run.add_argument("--threads", type=int, default=1)
    timing = commands.add_parser("cost")
    for name, default in (("--arch", "wan"), ("--sampler", "euler")):
        timing.add_argument(name, default=default)
    timing.add_argument("--steps", type=int, default=30)
    timing.add_argument("--budgets", type=floats, default=[2.0, 3.0, 5.0])
    timing.add_argument("--calibrate-seed", type=int, default=0)
    timing.add_argument("--repeats", type=int, default=5)
    timing.add_argument("--threads", type=int, default=1)
    read = commands.add_parser("report")
    read.add_argument("records", nargs="+")
    read.add_argument("--drop", type=lambda text: [n for n in text.split(",") if n], default=[],
                      help="candidates (names, comma-separated) to read the records without, as if not tried")
    args = parser.parse_args()
    {"collect": collect, "cost": cost, "report": report}[args.command](args)


if __name__ == "__main__":
    main()
